-- One sync at a time per space across every process sharing the store. Kept in the ops
-- database, so taking or renewing a lease never waits on the mirror's write lock. The holder
-- renews its lease while it works; an expired lease (a crashed holder) may be taken by anyone.
-- Times are milliseconds since the Unix epoch on the holder's clock.
CREATE TABLE sync_leases (
    space_key  TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
