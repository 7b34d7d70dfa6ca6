-- Change counters (see src/changes.rs): bumped in the writing transaction, so a portal in any
-- process can cache the mirror and the sessions between changes. The mirror's moves with every
-- space sync commit (each ends by writing sync_state) and space removal; the sessions' with
-- every revocation or removal of a session (not with sign-ins or touches).
CREATE TABLE mirror_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO mirror_changes (id, n) VALUES (1, 0);
CREATE TABLE session_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO session_changes (id, n) VALUES (1, 0);

CREATE FUNCTION bump_mirror_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mirror_changes SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END $$;
CREATE FUNCTION bump_session_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE session_changes SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END $$;

CREATE TRIGGER sync_state_bumps AFTER INSERT OR UPDATE OR DELETE ON sync_state
    FOR EACH STATEMENT EXECUTE FUNCTION bump_mirror_changes();
CREATE TRIGGER spaces_delete_bumps AFTER DELETE ON spaces
    FOR EACH STATEMENT EXECUTE FUNCTION bump_mirror_changes();
CREATE TRIGGER sessions_bumps AFTER UPDATE OF revoked OR DELETE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_session_changes();
