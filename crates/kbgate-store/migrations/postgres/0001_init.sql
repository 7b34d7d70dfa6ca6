-- kbgate store (PostgreSQL): the mirror and the operational records.
CREATE TABLE spaces (
    id           TEXT PRIMARY KEY,
    key          TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    homepage_id  TEXT
);

CREATE TABLE pages (
    id                   TEXT PRIMARY KEY,
    space_id             TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    parent_id            TEXT,
    position             BIGINT NOT NULL DEFAULT 0,
    title                TEXT NOT NULL,
    version              BIGINT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    labels               TEXT NOT NULL DEFAULT '[]',
    restricted           BOOLEAN NOT NULL DEFAULT false,
    effective_restricted BOOLEAN NOT NULL DEFAULT false,
    body_storage         TEXT NOT NULL DEFAULT '',
    body_html            TEXT NOT NULL DEFAULT '',
    body_text            TEXT NOT NULL DEFAULT '',
    headings             TEXT NOT NULL DEFAULT '[]',
    attachment_names     TEXT NOT NULL DEFAULT '',
    sync_gen             BIGINT NOT NULL DEFAULT 0,
    -- Maintained by the triggers below (not a generated column: those are recomputed on
    -- every UPDATE, e.g. a sync marking pages as kept).
    search_vec           tsvector NOT NULL DEFAULT ''::tsvector
);

-- Title weighs most (A), then attachment names (B), then the body (D). The body is cut to
-- keep every document under tsvector's 1 MB limit. Non-alphanumerics become spaces, as the
-- query side splits words (otherwise `report.pdf` or `a-b.c` would be single file/host tokens).
CREATE FUNCTION kbgate_pages_search_vec() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vec :=
        setweight(to_tsvector('english'::regconfig,
            regexp_replace(NEW.title, '[^[:alnum:]]+', ' ', 'g')), 'A') ||
        setweight(to_tsvector('english'::regconfig,
            regexp_replace(NEW.attachment_names, '[^[:alnum:]]+', ' ', 'g')), 'B') ||
        setweight(to_tsvector('english'::regconfig,
            regexp_replace(left(NEW.body_text, 250000), '[^[:alnum:]]+', ' ', 'g')), 'D');
    RETURN NEW;
END;
$$;
CREATE TRIGGER pages_search_vec_ins BEFORE INSERT ON pages
    FOR EACH ROW EXECUTE FUNCTION kbgate_pages_search_vec();
CREATE TRIGGER pages_search_vec_upd BEFORE UPDATE OF title, body_text, attachment_names ON pages
    FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.body_text IS DISTINCT FROM NEW.body_text
          OR OLD.attachment_names IS DISTINCT FROM NEW.attachment_names)
    EXECUTE FUNCTION kbgate_pages_search_vec();

CREATE INDEX pages_space_parent ON pages(space_id, parent_id, position);
CREATE INDEX pages_parent ON pages(parent_id, position);
CREATE INDEX pages_space_title ON pages(space_id, title);
CREATE INDEX pages_search ON pages USING GIN (search_vec);

CREATE TABLE page_labels (
    page_id TEXT NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
    label   TEXT NOT NULL,
    PRIMARY KEY (page_id, label)
);
CREATE INDEX page_labels_label ON page_labels(label, page_id);

CREATE TABLE attachments (
    id          TEXT PRIMARY KEY,
    page_id     TEXT NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
    space_id    TEXT NOT NULL,
    title       TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    file_size   BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    blob_sha256 TEXT,
    blob_size   BIGINT,
    sync_gen    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX attachments_page ON attachments(page_id, title);
CREATE INDEX attachments_space ON attachments(space_id);

CREATE TABLE sync_state (
    space_key      TEXT PRIMARY KEY,
    space_id       TEXT NOT NULL,
    watermark      TIMESTAMPTZ,
    last_full_sync TIMESTAMPTZ,
    last_sync      TIMESTAMPTZ
);

-- Keep pages.attachment_names (searched) in line with the attachments table.
CREATE FUNCTION kbgate_refresh_attachment_names() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE pages SET attachment_names = coalesce(
            (SELECT string_agg(title, ' ' ORDER BY title) FROM attachments WHERE page_id = OLD.page_id), '')
        WHERE id = OLD.page_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        UPDATE pages SET attachment_names = coalesce(
            (SELECT string_agg(title, ' ' ORDER BY title) FROM attachments WHERE page_id = NEW.page_id), '')
        WHERE id = NEW.page_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER attachments_names_ai AFTER INSERT OR DELETE ON attachments
    FOR EACH ROW EXECUTE FUNCTION kbgate_refresh_attachment_names();
CREATE TRIGGER attachments_names_au AFTER UPDATE OF title, page_id ON attachments
    FOR EACH ROW EXECUTE FUNCTION kbgate_refresh_attachment_names();

-- Operational records.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    email        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    revoked      BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX sessions_email ON sessions(email);

CREATE TABLE used_jti (
    jti        TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX used_jti_expires ON used_jti(expires_at);

CREATE TABLE one_time_codes (
    code_hash  TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    email      TEXT NOT NULL,
    return_to  TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX one_time_codes_expires ON one_time_codes(expires_at);

CREATE TABLE audit_log (
    seq    BIGSERIAL PRIMARY KEY,
    ts     TIMESTAMPTZ NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_ts ON audit_log(ts);

CREATE TABLE people (
    email      TEXT PRIMARY KEY,
    domain     TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX people_domain ON people(domain);

CREATE TABLE provision_journal (
    action_id  TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    target     TEXT NOT NULL,
    state      TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX provision_journal_state ON provision_journal(state);

CREATE TABLE provision_owned (
    kind       TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, target)
);
