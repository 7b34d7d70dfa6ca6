-- Search with the viewer's scope inside the full-text match (see src/scope.rs and the crate
-- docs, "Search"):
-- - pages.scope_tokens: the page's space token and label tokens (written by the store on
--   every page upsert; computed here for existing rows, the same string the store writes);
-- - pages_search: what is indexed — the scope column is empty for effectively restricted
--   pages, so they are never candidates;
-- - pages_fts gains a `scope` column (a new table: FTS5 columns cannot be added), and
--   pages_title_fts indexes titles alone, so "every word in the title" is found at doclist
--   speed across a whole match set.
ALTER TABLE pages ADD COLUMN scope_tokens TEXT NOT NULL DEFAULT '';

UPDATE pages SET scope_tokens =
    char(57344) || 's' || hex(space_id) || '0' || coalesce((
        SELECT group_concat(' ' || char(57344) || 'l' || hex(pages.space_id) || 'x' || hex(l.value) || '0', '')
        FROM (SELECT DISTINCT value FROM json_each(pages.labels) ORDER BY value) l
    ), '');

DROP TRIGGER pages_fts_ai;
DROP TRIGGER pages_fts_ad;
DROP TRIGGER pages_fts_au;
DROP TABLE pages_fts;

-- FTS5 reads content (snippets, rebuilds) through this view; the triggers below index the
-- same expressions.
CREATE VIEW pages_search AS
SELECT pk, title, body_text, attachment_names,
       CASE WHEN effective_restricted THEN '' ELSE scope_tokens END AS scope
FROM pages;

-- bm25 weights in queries: title 10, body 1, attachment names 3, scope 0.
CREATE VIRTUAL TABLE pages_fts USING fts5(
    title, body_text, attachment_names, scope,
    content = 'pages_search', content_rowid = 'pk',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE pages_title_fts USING fts5(
    title, scope,
    content = 'pages_search', content_rowid = 'pk',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO pages_fts(pages_fts) VALUES ('rebuild');
INSERT INTO pages_title_fts(pages_title_fts) VALUES ('rebuild');

CREATE TRIGGER pages_fts_ai AFTER INSERT ON pages BEGIN
    INSERT INTO pages_fts(rowid, title, body_text, attachment_names, scope)
    VALUES (new.pk, new.title, new.body_text, new.attachment_names,
            CASE WHEN new.effective_restricted THEN '' ELSE new.scope_tokens END);
    INSERT INTO pages_title_fts(rowid, title, scope)
    VALUES (new.pk, new.title,
            CASE WHEN new.effective_restricted THEN '' ELSE new.scope_tokens END);
END;

CREATE TRIGGER pages_fts_ad AFTER DELETE ON pages BEGIN
    INSERT INTO pages_fts(pages_fts, rowid, title, body_text, attachment_names, scope)
    VALUES ('delete', old.pk, old.title, old.body_text, old.attachment_names,
            CASE WHEN old.effective_restricted THEN '' ELSE old.scope_tokens END);
    INSERT INTO pages_title_fts(pages_title_fts, rowid, title, scope)
    VALUES ('delete', old.pk, old.title,
            CASE WHEN old.effective_restricted THEN '' ELSE old.scope_tokens END);
END;

CREATE TRIGGER pages_fts_au AFTER UPDATE OF title, body_text, attachment_names,
    scope_tokens, effective_restricted ON pages
WHEN old.title IS NOT new.title OR old.body_text IS NOT new.body_text
     OR old.attachment_names IS NOT new.attachment_names
     OR (CASE WHEN old.effective_restricted THEN '' ELSE old.scope_tokens END)
        IS NOT (CASE WHEN new.effective_restricted THEN '' ELSE new.scope_tokens END)
BEGIN
    INSERT INTO pages_fts(pages_fts, rowid, title, body_text, attachment_names, scope)
    VALUES ('delete', old.pk, old.title, old.body_text, old.attachment_names,
            CASE WHEN old.effective_restricted THEN '' ELSE old.scope_tokens END);
    INSERT INTO pages_fts(rowid, title, body_text, attachment_names, scope)
    VALUES (new.pk, new.title, new.body_text, new.attachment_names,
            CASE WHEN new.effective_restricted THEN '' ELSE new.scope_tokens END);
END;

CREATE TRIGGER pages_title_fts_au AFTER UPDATE OF title, scope_tokens, effective_restricted
    ON pages
WHEN old.title IS NOT new.title
     OR (CASE WHEN old.effective_restricted THEN '' ELSE old.scope_tokens END)
        IS NOT (CASE WHEN new.effective_restricted THEN '' ELSE new.scope_tokens END)
BEGIN
    INSERT INTO pages_title_fts(pages_title_fts, rowid, title, scope)
    VALUES ('delete', old.pk, old.title,
            CASE WHEN old.effective_restricted THEN '' ELSE old.scope_tokens END);
    INSERT INTO pages_title_fts(rowid, title, scope)
    VALUES (new.pk, new.title,
            CASE WHEN new.effective_restricted THEN '' ELSE new.scope_tokens END);
END;
