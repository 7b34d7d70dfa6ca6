-- Search reads, for hundreds of rows a query, a page's vectors (the newest-first walk tests
-- search_vec or title_vec row by row; ts_rank reads search_vec) and its id, space and
-- title. By default a body vector (a few KB) goes to the TOAST table, and once it alone
-- fills the row past the 2 KB toast target the toaster moves every other text column out
-- too, so each row read cost 4-5 extra buffer reads (≈ 3.5 µs). STORAGE MAIN keeps these
-- columns in the heap row (compressed if that helps), moving them out only when the row
-- cannot fit in a page; the bodies still go to TOAST first.
ALTER TABLE pages
    ALTER COLUMN search_vec SET STORAGE MAIN,
    ALTER COLUMN title_vec SET STORAGE MAIN,
    ALTER COLUMN id SET STORAGE MAIN,
    ALTER COLUMN space_id SET STORAGE MAIN,
    ALTER COLUMN title SET STORAGE MAIN;

-- Existing rows: a value is stored anew only when it is written as a new value (an
-- unchanged TOAST pointer is kept as it is). Same values, so neither the search-vector
-- trigger nor a foreign key check fires.
UPDATE pages SET
    search_vec = search_vec || ''::tsvector,
    title_vec = title_vec || ''::tsvector,
    id = id || '',
    space_id = space_id || '',
    title = title || '';
