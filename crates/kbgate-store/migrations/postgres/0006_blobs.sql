-- Attachment bytes in the database (issue 12: every instance sharing the store reads the same
-- blobs; a per-instance directory answered errors on instances that lacked a file).
--
-- An upload is registered first and its ~1 MiB chunks are written under its id, each in its
-- own short statement (no transaction stays open while a download from Confluence runs).
-- Only when every chunk is in does one transaction add the `blobs` row naming the upload by
-- the bytes' SHA-256: readers look blobs up by hash, so they never see a partial one. An
-- upload without a `blobs` row is a write in progress or abandoned (crash, failed source);
-- the sweep removes it once untouched for longer than the grace. Deleting an upload deletes
-- its chunks and its `blobs` row.
CREATE TABLE blob_uploads (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Renewed with every chunk, so a long download is never swept as abandoned.
    touched_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE blob_chunks (
    upload_id BIGINT NOT NULL REFERENCES blob_uploads (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    bytes     BYTEA NOT NULL,
    PRIMARY KEY (upload_id, seq)
);
-- Out of line and uncompressed: attachments are mostly compressed already (PDF, images,
-- office files), so pglz would spend CPU on every write for next to nothing.
ALTER TABLE blob_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL;

-- Complete blobs, content-addressed and immutable. `stored_at` is renewed when the same bytes
-- are written again, so a sweep running before that write's sync commits keeps them.
CREATE TABLE blobs (
    sha256    TEXT PRIMARY KEY,
    size      BIGINT NOT NULL,
    chunks    INTEGER NOT NULL,
    upload_id BIGINT NOT NULL UNIQUE REFERENCES blob_uploads (id) ON DELETE CASCADE,
    stored_at TIMESTAMPTZ NOT NULL
);
