-- What the start page shows of each space besides its name (issue 14): the description as
-- plain text (Confluence's `description-format=plain`; never markup, the portal escapes it)
-- and the icon. `icon_path` is the icon's path as Confluence reports it (its query carries the
-- icon's version), kept so a sync downloads the icon again only when it changed. The bytes
-- are a content-addressed blob like an attachment's (`icon_sha256`, `icon_size`), with the
-- image type checked at sync time (`icon_type`: png, jpeg, gif or webp only). No icon row
-- values: the space shows a neutral letter tile.
ALTER TABLE spaces ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE spaces ADD COLUMN icon_path TEXT;
ALTER TABLE spaces ADD COLUMN icon_type TEXT;
ALTER TABLE spaces ADD COLUMN icon_sha256 TEXT;
ALTER TABLE spaces ADD COLUMN icon_size INTEGER;
