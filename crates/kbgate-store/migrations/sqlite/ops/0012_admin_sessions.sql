-- Admin console sessions: opened from a reader session (reader_hash), short-lived, ended
-- with it. Ids are stored hashed, like reader sessions.
CREATE TABLE admin_sessions (
    id_hash     TEXT PRIMARY KEY NOT NULL,
    reader_hash TEXT NOT NULL,
    email       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0,
    view_as     TEXT
);
CREATE INDEX admin_sessions_reader ON admin_sessions(reader_hash);
