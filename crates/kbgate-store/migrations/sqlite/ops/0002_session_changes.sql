-- Change counter of the sessions (see src/changes.rs): bumped in the writing transaction when
-- a session is revoked or removed, so a portal in any process may cache sessions between
-- changes and still see `kbgate sessions revoke` at once. Sign-ins and touches do not bump it.
CREATE TABLE session_changes (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO session_changes (id, n) VALUES (1, 0);

CREATE TRIGGER sessions_revoke_bumps AFTER UPDATE OF revoked ON sessions
BEGIN UPDATE session_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER sessions_delete_bumps AFTER DELETE ON sessions
BEGIN UPDATE session_changes SET n = n + 1 WHERE id = 1; END;
