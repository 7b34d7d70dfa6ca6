//! [`PgBlobs`]: attachment bytes in PostgreSQL itself, so every instance sharing the database
//! reads the same blobs (issue 12: with files per instance, an instance lacking one answered
//! 500 while the shared database said it was there).
//!
//! Tables (migration `0006_blobs.sql`): `blob_uploads` (one per write), `blob_chunks` (its
//! bytes in chunks of [`CHUNK`]) and `blobs` (complete blobs by SHA-256, naming the upload that
//! holds their bytes). Why chunked `bytea` rows rather than large objects: they are ordinary
//! rows, so deleting an upload deletes its bytes (`ON DELETE CASCADE`; large objects need
//! `lo_unlink` or `vacuumlo` and leak otherwise), they are copied by logical replication
//! (large objects are not) and need no privileges beyond the tables', and sqlx has no
//! large-object API, so large objects would be driven through `lo_*` SQL functions anyway.
//!
//! Writing: the upload row first, then each chunk in its own short statement (no transaction
//! stays open while a download from Confluence trickles in), then one transaction adds the
//! `blobs` row — or, when those bytes are already stored, renews the stored blob's age and
//! drops the new upload. Readers look blobs up by hash, so they never see a partial one; a
//! failed or abandoned upload is deleted at once or, after a crash, by the sweep.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgPool;

use crate::StoreError;
use crate::blob::{BlobReader, BlobRef, BlobSource, BlobStore};

/// Bytes per chunk row: large enough that a 20 MB file is 20 statements, small enough that a
/// chunk in flight costs little memory on both ends.
pub(crate) const CHUNK: usize = 1024 * 1024;

/// Chunks a reader fetches ahead of the one it hands out (one query each).
const READ_AHEAD: usize = 2;

/// Blobs in PostgreSQL (see the module docs). Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct PgBlobs {
    pool: PgPool,
}

impl std::fmt::Debug for PgBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgBlobs")
    }
}

impl PgBlobs {
    /// Blobs in the database of `pool` (migrated by [`crate::PostgresStore::open`]).
    pub fn new(pool: PgPool) -> Self {
        PgBlobs { pool }
    }

    /// Writes the chunks of `source` under `upload`; returns the bytes' reference and chunk
    /// count.
    async fn write_chunks(
        &self,
        upload: i64,
        mut source: BlobSource<'_>,
        cap: Option<u64>,
    ) -> Result<(BlobRef, i32), StoreError> {
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut seq: i32 = 0;
        let mut buf = BytesMut::with_capacity(CHUNK);
        while let Some(piece) = source.next().await {
            let piece = piece.map_err(StoreError::BlobSource)?;
            size += piece.len() as u64;
            if let Some(cap) = cap
                && size > cap
            {
                return Err(StoreError::BlobTooLarge { cap });
            }
            hasher.update(&piece);
            buf.extend_from_slice(&piece);
            while buf.len() >= CHUNK {
                let chunk = buf.split_to(CHUNK).freeze();
                self.insert_chunk(upload, seq, chunk).await?;
                seq += 1;
            }
        }
        if !buf.is_empty() {
            self.insert_chunk(upload, seq, buf.freeze()).await?;
            seq += 1;
        }
        let size = i64::try_from(size)
            .map_err(|_| StoreError::Invalid("blob larger than i64::MAX bytes".into()))?;
        Ok((BlobRef::parse(&hex::encode(hasher.finalize()), size)?, seq))
    }

    async fn insert_chunk(&self, upload: i64, seq: i32, bytes: Bytes) -> Result<(), StoreError> {
        // Renews the upload's time in the same statement, so a download slower than the
        // sweep's grace is not taken for an abandoned one.
        sqlx::query(
            "WITH touched AS (UPDATE blob_uploads SET touched_at = now() WHERE id = $1) \
             INSERT INTO blob_chunks (upload_id, seq, bytes) VALUES ($1, $2, $3)",
        )
        .bind(upload)
        .bind(seq)
        .bind(&bytes[..])
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Makes the written upload the blob `blob` in one transaction, or renews the stored
    /// blob with the same bytes and drops the upload.
    async fn complete(&self, upload: i64, blob: &BlobRef, chunks: i32) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let holder: i64 = sqlx::query_scalar(
            "INSERT INTO blobs (sha256, size, chunks, upload_id, stored_at) \
             VALUES ($1, $2, $3, $4, now()) \
             ON CONFLICT (sha256) DO UPDATE SET stored_at = now() \
             RETURNING upload_id",
        )
        .bind(blob.sha256())
        .bind(blob.size())
        .bind(chunks)
        .bind(upload)
        .fetch_one(&mut *tx)
        .await?;
        if holder != upload {
            // Same content already stored (blobs are immutable): keep that one, renewed.
            sqlx::query("DELETE FROM blob_uploads WHERE id = $1")
                .bind(upload)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl BlobStore for PgBlobs {
    async fn put(&self, source: BlobSource<'_>, cap: Option<u64>) -> Result<BlobRef, StoreError> {
        // Registered before any byte, so a crash mid-write leaves a row the sweep finds.
        let upload: i64 =
            sqlx::query_scalar("INSERT INTO blob_uploads (touched_at) VALUES (now()) RETURNING id")
                .fetch_one(&self.pool)
                .await?;
        let written = async {
            let (blob, chunks) = self.write_chunks(upload, source, cap).await?;
            self.complete(upload, &blob, chunks).await?;
            Ok::<_, StoreError>(blob)
        }
        .await;
        if written.is_err() {
            // Best effort: if this fails too, the sweep removes the upload after the grace.
            let _ = sqlx::query("DELETE FROM blob_uploads WHERE id = $1")
                .bind(upload)
                .execute(&self.pool)
                .await;
        }
        written
    }

    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, StoreError> {
        let row: Option<(i64, i64, i32)> =
            sqlx::query_as("SELECT upload_id, size, chunks FROM blobs WHERE sha256 = $1")
                .bind(blob.sha256())
                .fetch_optional(&self.pool)
                .await?;
        let Some((upload, size, chunks)) = row else {
            return Err(StoreError::BlobMissing(blob.sha256().to_owned()));
        };
        let pool = self.pool.clone();
        let sha = blob.sha256().to_owned();
        // Chunks are fetched one query each, `READ_AHEAD` at a time, so a large file is never
        // held in memory whole; the total is checked against the recorded size at the end.
        let fetched = futures::stream::iter(0..chunks)
            .map(move |seq| {
                let pool = pool.clone();
                async move {
                    let bytes: Option<Vec<u8>> = sqlx::query_scalar(
                        "SELECT bytes FROM blob_chunks WHERE upload_id = $1 AND seq = $2",
                    )
                    .bind(upload)
                    .bind(seq)
                    .fetch_optional(&pool)
                    .await
                    .map_err(std::io::Error::other)?;
                    bytes.map(|b| (seq, Bytes::from(b))).ok_or_else(|| {
                        std::io::Error::other(format!("blob chunk {seq} is missing"))
                    })
                }
            })
            .buffered(READ_AHEAD);
        let checked = fetched.scan(0i64, move |total, item| {
            let out = item.and_then(|(seq, bytes)| {
                *total += bytes.len() as i64;
                let last = seq + 1 == chunks;
                if *total > size || (last && *total != size) {
                    Err(std::io::Error::other(format!(
                        "blob {sha} has {} bytes in its chunks, {size} recorded",
                        *total
                    )))
                } else {
                    Ok(bytes)
                }
            });
            futures::future::ready(Some(out))
        });
        Ok(Box::new(tokio_util::io::StreamReader::new(checked.boxed())))
    }

    async fn exists(&self, blob: &BlobRef) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM blobs WHERE sha256 = $1)")
                .bind(blob.sha256())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn missing(&self, blobs: &[BlobRef]) -> Result<HashSet<String>, StoreError> {
        let wanted: Vec<String> = blobs.iter().map(|b| b.sha256().to_owned()).collect();
        let present: HashSet<String> =
            sqlx::query_scalar("SELECT sha256 FROM blobs WHERE sha256 = ANY($1)")
                .bind(&wanted)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
        Ok(wanted
            .into_iter()
            .filter(|h| !present.contains(h))
            .collect())
    }

    async fn remove_unreferenced(
        &self,
        referenced: &HashSet<String>,
        grace: Duration,
    ) -> Result<u64, StoreError> {
        let referenced: Vec<String> = referenced.iter().cloned().collect();
        let grace = grace.as_secs_f64();
        // Deleting the upload deletes the blob row and the chunks (cascade). A put renewing
        // a blob meanwhile holds its row lock; this delete then re-checks `stored_at` on the
        // renewed row and keeps it.
        let blobs = sqlx::query(
            "DELETE FROM blob_uploads u USING blobs b \
             WHERE b.upload_id = u.id \
               AND b.stored_at <= now() - make_interval(secs => $2) \
               AND NOT (b.sha256 = ANY($1))",
        )
        .bind(&referenced)
        .bind(grace)
        .execute(&self.pool)
        .await?
        .rows_affected();
        // Uploads that never became a blob and were not touched within the grace: writes a
        // crash or a lost connection abandoned.
        let abandoned = sqlx::query(
            "DELETE FROM blob_uploads u \
             WHERE u.touched_at <= now() - make_interval(secs => $1) \
               AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.upload_id = u.id)",
        )
        .bind(grace)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(blobs + abandoned)
    }
}
