-- The latest native-mode plan (one row): what `kbgate plan`, `kbgate apply` and the service's
-- reconcile loop computed last, for the admin console to show without calling Confluence.
-- `computed_at` is in milliseconds since the Unix epoch (a newer plan never loses to an older
-- one written late); `plan` is the plan's JSON. (Numbered 0014 so as not to collide with
-- migrations other branches add.)
CREATE TABLE native_plan (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    computed_at BIGINT NOT NULL,
    calls       BIGINT NOT NULL,
    plan        TEXT NOT NULL
);
