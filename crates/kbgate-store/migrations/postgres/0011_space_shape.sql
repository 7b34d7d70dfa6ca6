-- What the portal's trees and space indexes show of each space moves only with commits that
-- changed a page's place, title, labels or restrictions, the space record, or removed a page:
-- an edit of a page body moves `content_generation` but not `shape_generation`, so a portal
-- keyed on it keeps its trees (and may serve a page's previous view while the new one is
-- built, the shape being the same). Existing spaces start changed at their current
-- generation.
ALTER TABLE space_generations ADD COLUMN shape_generation BIGINT NOT NULL DEFAULT 0;
UPDATE space_generations SET shape_generation = content_generation;
