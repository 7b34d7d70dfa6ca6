-- Change counter of the mirror (see src/changes.rs): bumped in the writing transaction by
-- every space sync commit (each ends by writing sync_state) and every space removal, so a
-- portal in any process can cache the mirror between changes.
CREATE TABLE mirror_changes (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO mirror_changes (id, n) VALUES (1, 0);

CREATE TRIGGER sync_state_insert_bumps AFTER INSERT ON sync_state
BEGIN UPDATE mirror_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER sync_state_update_bumps AFTER UPDATE ON sync_state
BEGIN UPDATE mirror_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER sync_state_delete_bumps AFTER DELETE ON sync_state
BEGIN UPDATE mirror_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER spaces_delete_bumps AFTER DELETE ON spaces
BEGIN UPDATE mirror_changes SET n = n + 1 WHERE id = 1; END;
