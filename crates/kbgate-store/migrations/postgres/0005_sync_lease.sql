-- Several instances (DESIGN.md §9). The committed sync generation of each space: every sync
-- commit moves it by one and commits only if it is still the value the sync read before it
-- looked at Confluence (compare-and-set), so a slow sync can never write over a newer one.
-- Keyed by space key and never deleted (a removed space keeps counting up).
CREATE TABLE space_generations (
    space_key  TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);

-- One sync at a time per space across every process sharing the store: the holder renews
-- its lease while it works; an expired lease (a crashed holder) may be taken by anyone.
-- Times are milliseconds since the Unix epoch on the holder's clock.
CREATE TABLE sync_leases (
    space_key  TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
