-- Several instances: when each space was last synced to the end (committed, changed or not),
-- by whom. A background round skips a space some process synced within its interval, so N
-- instances spend one instance's Confluence calls. Kept next to the leases, in the ops
-- database. `synced_at` is when that sync's round started, in milliseconds since the Unix epoch
-- on its holder's clock.
CREATE TABLE sync_rounds (
    space_key TEXT PRIMARY KEY NOT NULL,
    holder    TEXT NOT NULL,
    synced_at INTEGER NOT NULL
);
