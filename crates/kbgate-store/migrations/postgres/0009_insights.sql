-- Reader feedback and search insights (issue #14 "Feedback", "Search people expect"; the
-- insights store of #13). Times are milliseconds since the Unix epoch (UTC), so `--since`
-- filters compare numbers, never differently formatted text.

-- "Was this helpful?": one vote per person (`voter`, a hash of the normalised email) per page;
-- a re-vote replaces the previous one. `email` is kept only when `[portal] record_emails`
-- says so.
CREATE TABLE page_feedback (
    page_id    TEXT NOT NULL,
    voter      TEXT NOT NULL,
    space_key  TEXT NOT NULL,
    page_title TEXT NOT NULL,
    domain     TEXT NOT NULL,
    email      TEXT,
    helpful    BOOLEAN NOT NULL,
    comment    TEXT,
    at_ms      BIGINT NOT NULL,
    PRIMARY KEY (page_id, voter)
);
CREATE INDEX page_feedback_at ON page_feedback(at_ms);
CREATE INDEX page_feedback_domain ON page_feedback(domain, at_ms);

-- Searches as readers ran them (at least those with no result), for the admin.
CREATE TABLE search_events (
    seq     BIGSERIAL PRIMARY KEY,
    at_ms   BIGINT NOT NULL,
    domain  TEXT NOT NULL,
    email   TEXT,
    query   TEXT NOT NULL,
    results BIGINT NOT NULL
);
CREATE INDEX search_events_at ON search_events(at_ms);
CREATE INDEX search_events_domain ON search_events(domain, at_ms);

-- Page views for per-domain insights (#13): `reader` is the same hash of the email as a
-- vote's `voter`, so unique readers are counted without keeping emails.
CREATE TABLE page_views (
    seq       BIGSERIAL PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    page_id   TEXT NOT NULL,
    space_key TEXT NOT NULL,
    domain    TEXT NOT NULL,
    reader    TEXT NOT NULL
);
CREATE INDEX page_views_at ON page_views(at_ms);
CREATE INDEX page_views_domain ON page_views(domain, at_ms);
