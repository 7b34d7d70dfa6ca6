-- Operational records (SQLite). Kept in a separate database file from the mirror so that a
-- long mirror sync transaction never blocks sign-ins and session writes.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    email        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_email ON sessions(email);

CREATE TABLE used_jti (
    jti        TEXT PRIMARY KEY NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX used_jti_expires ON used_jti(expires_at);

CREATE TABLE one_time_codes (
    code_hash  TEXT PRIMARY KEY NOT NULL,
    purpose    TEXT NOT NULL,
    email      TEXT NOT NULL,
    return_to  TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX one_time_codes_expires ON one_time_codes(expires_at);

CREATE TABLE audit_log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    ts     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_ts ON audit_log(ts);

CREATE TABLE people (
    email      TEXT PRIMARY KEY NOT NULL,
    domain     TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX people_domain ON people(domain);

CREATE TABLE provision_journal (
    action_id  TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    target     TEXT NOT NULL,
    state      TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX provision_journal_state ON provision_journal(state);

CREATE TABLE provision_owned (
    kind       TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    PRIMARY KEY (kind, target)
);
