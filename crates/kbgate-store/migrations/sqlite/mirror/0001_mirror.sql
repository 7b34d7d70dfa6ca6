-- Mirror of the allowed Confluence spaces (SQLite). Timestamps are RFC 3339 text in UTC.
CREATE TABLE spaces (
    id           TEXT PRIMARY KEY NOT NULL,
    key          TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    homepage_id  TEXT
);

-- `pk` is an explicit INTEGER PRIMARY KEY so the FTS5 external-content rowids stay stable
-- across VACUUM.
CREATE TABLE pages (
    pk                   INTEGER PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    space_id             TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    parent_id            TEXT,
    position             INTEGER NOT NULL DEFAULT 0,
    title                TEXT NOT NULL,
    version              INTEGER NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    labels               TEXT NOT NULL DEFAULT '[]',
    restricted           INTEGER NOT NULL DEFAULT 0,
    effective_restricted INTEGER NOT NULL DEFAULT 0,
    body_storage         TEXT NOT NULL DEFAULT '',
    body_html            TEXT NOT NULL DEFAULT '',
    body_text            TEXT NOT NULL DEFAULT '',
    headings             TEXT NOT NULL DEFAULT '[]',
    attachment_names     TEXT NOT NULL DEFAULT '',
    sync_gen             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pages_space_parent ON pages(space_id, parent_id, position);
CREATE INDEX pages_parent ON pages(parent_id, position);
CREATE INDEX pages_space_title ON pages(space_id, title);

CREATE TABLE page_labels (
    page_id TEXT NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
    label   TEXT NOT NULL,
    PRIMARY KEY (page_id, label)
) WITHOUT ROWID;
CREATE INDEX page_labels_label ON page_labels(label, page_id);

CREATE TABLE attachments (
    id          TEXT PRIMARY KEY NOT NULL,
    page_id     TEXT NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
    space_id    TEXT NOT NULL,
    title       TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    file_size   INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    blob_sha256 TEXT,
    blob_size   INTEGER,
    sync_gen    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX attachments_page ON attachments(page_id, title);
CREATE INDEX attachments_space ON attachments(space_id);

CREATE TABLE sync_state (
    space_key      TEXT PRIMARY KEY NOT NULL,
    space_id       TEXT NOT NULL,
    watermark      TEXT,
    last_full_sync TEXT,
    last_sync      TEXT
);

-- Full-text index over title (weighted in queries), body text and attachment file names.
CREATE VIRTUAL TABLE pages_fts USING fts5(
    title, body_text, attachment_names,
    content = 'pages', content_rowid = 'pk',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER pages_fts_ai AFTER INSERT ON pages BEGIN
    INSERT INTO pages_fts(rowid, title, body_text, attachment_names)
    VALUES (new.pk, new.title, new.body_text, new.attachment_names);
END;
CREATE TRIGGER pages_fts_ad AFTER DELETE ON pages BEGIN
    INSERT INTO pages_fts(pages_fts, rowid, title, body_text, attachment_names)
    VALUES ('delete', old.pk, old.title, old.body_text, old.attachment_names);
END;
CREATE TRIGGER pages_fts_au AFTER UPDATE OF title, body_text, attachment_names ON pages
WHEN old.title IS NOT new.title OR old.body_text IS NOT new.body_text
     OR old.attachment_names IS NOT new.attachment_names
BEGIN
    INSERT INTO pages_fts(pages_fts, rowid, title, body_text, attachment_names)
    VALUES ('delete', old.pk, old.title, old.body_text, old.attachment_names);
    INSERT INTO pages_fts(rowid, title, body_text, attachment_names)
    VALUES (new.pk, new.title, new.body_text, new.attachment_names);
END;

-- Keep pages.attachment_names (searched) in line with the attachments table.
CREATE TRIGGER attachments_names_ai AFTER INSERT ON attachments BEGIN
    UPDATE pages SET attachment_names = (
        SELECT coalesce(group_concat(title, ' '), '') FROM attachments WHERE page_id = new.page_id
    ) WHERE id = new.page_id;
END;
CREATE TRIGGER attachments_names_au AFTER UPDATE OF title, page_id ON attachments BEGIN
    UPDATE pages SET attachment_names = (
        SELECT coalesce(group_concat(title, ' '), '') FROM attachments WHERE page_id = old.page_id
    ) WHERE id = old.page_id;
    UPDATE pages SET attachment_names = (
        SELECT coalesce(group_concat(title, ' '), '') FROM attachments WHERE page_id = new.page_id
    ) WHERE id = new.page_id;
END;
CREATE TRIGGER attachments_names_ad AFTER DELETE ON attachments BEGIN
    UPDATE pages SET attachment_names = (
        SELECT coalesce(group_concat(title, ' '), '') FROM attachments WHERE page_id = old.page_id
    ) WHERE id = old.page_id;
END;
