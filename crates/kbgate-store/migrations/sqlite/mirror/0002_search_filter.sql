-- Search joins every full-text match to its page to apply the viewer's scope and the
-- restriction flag; this covering index answers that from a small b-tree instead of the
-- page rows (which carry the bodies).
CREATE INDEX pages_search_filter ON pages(pk, space_id, effective_restricted, id);
