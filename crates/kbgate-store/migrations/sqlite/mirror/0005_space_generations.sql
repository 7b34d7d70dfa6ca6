-- The committed sync generation of each space: every sync commit moves it by one and commits
-- only if it is still the value the sync read before it looked at Confluence (compare-and-set),
-- so a slow sync can never write over a newer one. Keyed by space key and never deleted.
CREATE TABLE space_generations (
    space_key  TEXT PRIMARY KEY NOT NULL,
    generation INTEGER NOT NULL
);
