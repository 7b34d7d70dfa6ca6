-- Admin console sessions: opened from a reader session (reader_hash), short-lived, ended
-- with it. Ids are stored hashed, like reader sessions.
CREATE TABLE admin_sessions (
    id_hash     TEXT PRIMARY KEY,
    reader_hash TEXT NOT NULL,
    email       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked     BOOLEAN NOT NULL DEFAULT false,
    view_as     TEXT
);
CREATE INDEX admin_sessions_reader ON admin_sessions(reader_hash);
