-- Search with the viewer's scope inside the full-text match (see src/scope.rs and the crate
-- docs, "Search"):
-- - pages.scope_tokens: the page's space token and label tokens (written by the store on
--   every page upsert; computed here for existing rows, the same string the store writes);
--   search_vec also holds them as lexemes unless the page is effectively restricted, so a
--   restricted page never matches a scoped query;
-- - pages.seq: the order pages were added to the mirror (newest = highest), kept across
--   updates, so a search can take the newest matches without sorting all of them;
-- - pages.title_vec: the title's lexemes and the scope lexemes, small enough to stay inline,
--   with a GIN index of its own: "every word in the title" is cheap to find.
ALTER TABLE pages ADD COLUMN scope_tokens TEXT NOT NULL DEFAULT '';
ALTER TABLE pages ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE pages ADD COLUMN title_vec tsvector NOT NULL DEFAULT ''::tsvector;

UPDATE pages SET
    seq = o.n,
    scope_tokens = chr(57344) || 's' || upper(encode(convert_to(pages.space_id, 'UTF8'), 'hex'))
        || '0' || coalesce((
            SELECT string_agg(' ' || chr(57344) || 'l'
                || upper(encode(convert_to(pages.space_id, 'UTF8'), 'hex')) || 'x'
                || upper(encode(convert_to(l.label, 'UTF8'), 'hex')) || '0',
                '' ORDER BY l.label COLLATE "C")
            FROM (SELECT DISTINCT jsonb_array_elements_text(pages.labels::jsonb) AS label) l
        ), '')
FROM (SELECT id, row_number() OVER (ORDER BY ctid) AS n FROM pages) o
WHERE o.id = pages.id;

CREATE INDEX pages_seq ON pages(seq);

-- The scope lexemes of a page (none when it is effectively restricted).
CREATE FUNCTION kbgate_scope_vec(scope_tokens text, restricted boolean)
RETURNS tsvector LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN restricted THEN ''::tsvector
           ELSE array_to_tsvector(array_remove(string_to_array(scope_tokens, ' '), ''))
           END
$$;

CREATE FUNCTION kbgate_title_vec(title text) RETURNS tsvector LANGUAGE sql IMMUTABLE AS $$
    SELECT to_tsvector('english'::regconfig, regexp_replace(title, '[^[:alnum:]]+', ' ', 'g'))
$$;

UPDATE pages SET
    search_vec = search_vec || kbgate_scope_vec(scope_tokens, effective_restricted),
    title_vec = kbgate_title_vec(title) || kbgate_scope_vec(scope_tokens, effective_restricted);
CREATE INDEX pages_title_search ON pages USING GIN (title_vec);

-- Content as before (title A, attachment names B, body D) plus the scope lexemes. When only
-- the scope or the restriction changed, the scope lexemes are swapped without re-parsing
-- the body. The title vector is rebuilt every time (titles are short). New rows get the
-- next `seq`.
CREATE OR REPLACE FUNCTION kbgate_pages_search_vec() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.seq := coalesce((SELECT max(seq) FROM pages), 0) + 1;
    END IF;
    IF TG_OP = 'INSERT' OR OLD.title IS DISTINCT FROM NEW.title
       OR OLD.body_text IS DISTINCT FROM NEW.body_text
       OR OLD.attachment_names IS DISTINCT FROM NEW.attachment_names THEN
        NEW.search_vec :=
            setweight(to_tsvector('english'::regconfig,
                regexp_replace(NEW.title, '[^[:alnum:]]+', ' ', 'g')), 'A') ||
            setweight(to_tsvector('english'::regconfig,
                regexp_replace(NEW.attachment_names, '[^[:alnum:]]+', ' ', 'g')), 'B') ||
            setweight(to_tsvector('english'::regconfig,
                regexp_replace(left(NEW.body_text, 250000), '[^[:alnum:]]+', ' ', 'g')), 'D') ||
            kbgate_scope_vec(NEW.scope_tokens, NEW.effective_restricted);
    ELSE
        NEW.search_vec :=
            ts_delete(OLD.search_vec, array_remove(string_to_array(OLD.scope_tokens, ' '), '')) ||
            kbgate_scope_vec(NEW.scope_tokens, NEW.effective_restricted);
    END IF;
    NEW.title_vec := kbgate_title_vec(NEW.title)
        || kbgate_scope_vec(NEW.scope_tokens, NEW.effective_restricted);
    RETURN NEW;
END;
$$;

DROP TRIGGER pages_search_vec_upd ON pages;
CREATE TRIGGER pages_search_vec_upd BEFORE UPDATE OF title, body_text, attachment_names,
    scope_tokens, effective_restricted ON pages
    FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.body_text IS DISTINCT FROM NEW.body_text
          OR OLD.attachment_names IS DISTINCT FROM NEW.attachment_names
          OR OLD.scope_tokens IS DISTINCT FROM NEW.scope_tokens
          OR OLD.effective_restricted IS DISTINCT FROM NEW.effective_restricted)
    EXECUTE FUNCTION kbgate_pages_search_vec();
