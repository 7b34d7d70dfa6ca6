-- What readers see of each space moves only with commits that changed something: a sync that
-- found nothing new still commits (its watermark and generation move), but a portal keyed on
-- this column keeps its cached trees and page views. `content_generation` is the generation
-- of the last commit (or removal) of the space that changed a row readers read. Existing
-- spaces start changed at their current generation.
ALTER TABLE space_generations ADD COLUMN content_generation BIGINT NOT NULL DEFAULT 0;
UPDATE space_generations SET content_generation = generation;
