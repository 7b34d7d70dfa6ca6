//! [`MirrorWrite`] for both backends, and the sync transaction of one space ([`SqlSync`]).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Transaction, Type};

use super::{BATCH_ROWS, Db, RowsAffected, Scalar, SqlStore};
use crate::StoreError;
use crate::blob::BlobRef;
use crate::changes::LocalChanges;
use crate::fts::strip_markers;
use crate::model::*;
use crate::store::{MirrorWrite, SpaceSync};

#[async_trait]
impl<DB> MirrorWrite for SqlStore<DB>
where
    DB: Db,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> &'r str: ColumnIndex<DB::Row> + Encode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    String: Scalar<DB>,
    Option<String>: Scalar<DB>,
    i64: Scalar<DB>,
    Option<i64>: Scalar<DB>,
    bool: Scalar<DB>,
    DateTime<Utc>: Scalar<DB>,
    Option<DateTime<Utc>>: Scalar<DB>,
{
    async fn begin_space_sync(
        &self,
        space: &SpaceRecord,
        mode: SyncMode,
    ) -> Result<Box<dyn SpaceSync>, StoreError> {
        let tx = DB::begin_write(&self.mirror).await?;
        Ok(Box::new(
            SqlSync::start(tx, space, mode, None, self.changes.clone()).await?,
        ))
    }

    async fn begin_space_sync_at(
        &self,
        space: &SpaceRecord,
        mode: SyncMode,
        expected_generation: i64,
    ) -> Result<Box<dyn SpaceSync>, StoreError> {
        let tx = DB::begin_write(&self.mirror).await?;
        let expected = Some(expected_generation);
        Ok(Box::new(
            SqlSync::start(tx, space, mode, expected, self.changes.clone()).await?,
        ))
    }

    async fn sync_generation(&self, space_key: &str) -> Result<i64, StoreError> {
        let generation: Option<i64> =
            sqlx::query_scalar("SELECT generation FROM space_generations WHERE space_key = $1")
                .bind(space_key)
                .fetch_optional(&self.mirror)
                .await?;
        Ok(generation.unwrap_or(0))
    }

    async fn acquire_sync_lease(
        &self,
        space_key: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<SyncLease, StoreError> {
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(ttl)
            .map_err(|_| StoreError::Invalid("lease duration out of range".into()))?;
        let until = now + ttl;
        // Twice: a lease released between the two statements is taken on the second.
        for _ in 0..2 {
            let taken = sqlx::query(
                "INSERT INTO sync_leases (space_key, holder, expires_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (space_key) DO UPDATE \
                 SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE sync_leases.holder = excluded.holder \
                    OR sync_leases.expires_at <= $4",
            )
            .bind(space_key)
            .bind(holder)
            .bind(until.timestamp_millis())
            .bind(now.timestamp_millis())
            .execute(&self.ops)
            .await?
            .rows_affected();
            if taken > 0 {
                return Ok(SyncLease::Acquired);
            }
            let row: Option<(String, i64)> =
                sqlx::query_as("SELECT holder, expires_at FROM sync_leases WHERE space_key = $1")
                    .bind(space_key)
                    .fetch_optional(&self.ops)
                    .await?;
            if let Some((holder, ms)) = row {
                return Ok(SyncLease::HeldBy {
                    holder,
                    expires_at: DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(now),
                });
            }
        }
        Err(StoreError::Corrupt(format!(
            "sync lease of {space_key}: neither taken nor held"
        )))
    }

    async fn release_sync_lease(&self, space_key: &str, holder: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM sync_leases WHERE space_key = $1 AND holder = $2")
            .bind(space_key)
            .bind(holder)
            .execute(&self.ops)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn sync_lease_holder(&self, space_key: &str) -> Result<Option<LeaseHolder>, StoreError> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT holder, expires_at FROM sync_leases WHERE space_key = $1 AND expires_at > $2",
        )
        .bind(space_key)
        .bind(Utc::now().timestamp_millis())
        .fetch_optional(&self.ops)
        .await?;
        Ok(row.map(|(holder, ms)| LeaseHolder {
            holder,
            expires_at: DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default(),
        }))
    }

    async fn record_synced(
        &self,
        space_key: &str,
        holder: &str,
        synced_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_rounds (space_key, holder, synced_at) VALUES ($1, $2, $3) \
             ON CONFLICT (space_key) DO UPDATE \
             SET holder = excluded.holder, synced_at = excluded.synced_at \
             WHERE sync_rounds.synced_at <= excluded.synced_at",
        )
        .bind(space_key)
        .bind(holder)
        .bind(synced_at.timestamp_millis())
        .execute(&self.ops)
        .await?;
        Ok(())
    }

    async fn last_synced(&self, space_key: &str) -> Result<Option<LastSync>, StoreError> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT holder, synced_at FROM sync_rounds WHERE space_key = $1")
                .bind(space_key)
                .fetch_optional(&self.ops)
                .await?;
        row.map(|(holder, ms)| {
            let synced_at = DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| {
                StoreError::Corrupt(format!("sync round of {space_key}: time {ms} out of range"))
            })?;
            Ok(LastSync { holder, synced_at })
        })
        .transpose()
    }

    async fn delete_space(&self, space_id: &str) -> Result<bool, StoreError> {
        let mut tx = DB::begin_write(&self.mirror).await?;
        let key: Option<String> = sqlx::query_scalar("SELECT key FROM spaces WHERE id = $1")
            .bind(space_id)
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sync_state WHERE space_id = $1")
            .bind(space_id)
            .execute(&mut *tx)
            .await?;
        // A sync of the space that read the mirror before this removal must not commit
        // over it; and readers caching the space by its content stamp must drop it (a space
        // never committed through a generation gets its row here).
        if let Some(key) = &key {
            sqlx::query(
                "INSERT INTO space_generations \
                 (space_key, generation, content_generation, shape_generation) \
                 VALUES ($1, 1, 1, 1) ON CONFLICT (space_key) DO UPDATE \
                 SET generation = space_generations.generation + 1, \
                 content_generation = space_generations.generation + 1, \
                 shape_generation = space_generations.generation + 1",
            )
            .bind(key)
            .execute(&mut *tx)
            .await?;
        }
        // Cascades to pages, labels and attachments.
        sqlx::query("DELETE FROM spaces WHERE id = $1")
            .bind(space_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.changes.bump();
        Ok(key.is_some())
    }

    async fn page_versions(&self, space_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, version FROM pages WHERE space_id = $1 ORDER BY id")
                .bind(space_id)
                .fetch_all(&self.mirror)
                .await?,
        )
    }

    async fn attachment_versions(&self, space_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, version FROM attachments WHERE space_id = $1 ORDER BY id")
                .bind(space_id)
                .fetch_all(&self.mirror)
                .await?,
        )
    }

    async fn attachment_blobs(&self, space_id: &str) -> Result<Vec<(String, BlobRef)>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT id, blob_sha256, blob_size FROM attachments \
             WHERE space_id = $1 AND blob_sha256 IS NOT NULL AND blob_size IS NOT NULL \
             ORDER BY id",
        )
        .bind(space_id)
        .fetch_all(&self.mirror)
        .await?;
        rows.into_iter()
            .map(|(id, sha, size)| Ok((id, BlobRef::parse(&sha, size)?)))
            .collect()
    }

    async fn sync_state(&self, space_key: &str) -> Result<Option<SyncState>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT space_key, space_id, watermark, last_full_sync, last_sync \
             FROM sync_state WHERE space_key = $1",
        )
        .bind(space_key)
        .fetch_optional(&self.mirror)
        .await?)
    }

    async fn blob_hashes(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT blob_sha256 FROM attachments WHERE blob_sha256 IS NOT NULL \
             UNION SELECT icon_sha256 FROM spaces WHERE icon_sha256 IS NOT NULL",
        )
        .fetch_all(&self.mirror)
        .await?)
    }
}

/// The transaction of one space's sync (see [`SpaceSync`]).
pub(crate) struct SqlSync<DB: sqlx::Database> {
    tx: Transaction<'static, DB>,
    space_id: String,
    space_key: String,
    /// The space generation this sync read before it started (compare-and-set at commit);
    /// `None`: commit whatever is there.
    expected: Option<i64>,
    /// The `sync_gen` this sync stamps on what it writes or keeps (a full sync sweeps the
    /// rest).
    generation: i64,
    mode: SyncMode,
    /// Rows written that touch the full-text index (for its upkeep at commit).
    writes: u64,
    /// Whether anything readers read changed (then the commit moves the space's content
    /// stamp, [`crate::MirrorRead::space_stamps`]); marking rows kept does not count.
    changed: bool,
    /// Whether anything a tree or index shows, or who may read what, changed (then the
    /// commit moves the space's shape stamp too, [`crate::SpaceStamp`]): a page added,
    /// removed, moved, reordered, retitled, relabelled or (un)restricted, or the space
    /// record.
    shape_changed: bool,
    /// The store's in-process change counter, bumped after the commit.
    changes: LocalChanges,
}

impl<DB: sqlx::Database> std::fmt::Debug for SqlSync<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSync")
            .field("space_id", &self.space_id)
            .field("generation", &self.generation)
            .field("mode", &self.mode)
            .finish()
    }
}

impl<DB> SqlSync<DB>
where
    DB: Db,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> &'r str: ColumnIndex<DB::Row> + Encode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    String: Scalar<DB>,
    Option<String>: Scalar<DB>,
    i64: Scalar<DB>,
    Option<i64>: Scalar<DB>,
    bool: Scalar<DB>,
    DateTime<Utc>: Scalar<DB>,
    Option<DateTime<Utc>>: Scalar<DB>,
{
    /// Starts a space sync inside `tx`: upserts the space record (a different space holding
    /// the same key is replaced) and picks the next `sync_gen`.
    async fn start(
        mut tx: Transaction<'static, DB>,
        space: &SpaceRecord,
        mode: SyncMode,
        expected: Option<i64>,
        changes: LocalChanges,
    ) -> Result<Self, StoreError> {
        let replaced = sqlx::query("DELETE FROM spaces WHERE key = $1 AND id <> $2")
            .bind(&space.key)
            .bind(&space.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Only a new or different record counts as a change (the row is left alone when
        // equal, so `rows_affected` says which).
        // The description and icon are part of the record: a change moves the space's
        // shape stamp like a rename, so cached start pages show the new ones.
        let icon = space.icon.as_ref();
        let upserted = sqlx::query(
            "INSERT INTO spaces (id, key, name, homepage_id, description, icon_path, \
             icon_type, icon_sha256, icon_size) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET key = excluded.key, name = excluded.name, \
             homepage_id = excluded.homepage_id, description = excluded.description, \
             icon_path = excluded.icon_path, icon_type = excluded.icon_type, \
             icon_sha256 = excluded.icon_sha256, icon_size = excluded.icon_size \
             WHERE spaces.key IS DISTINCT FROM excluded.key \
             OR spaces.name IS DISTINCT FROM excluded.name \
             OR spaces.homepage_id IS DISTINCT FROM excluded.homepage_id \
             OR spaces.description IS DISTINCT FROM excluded.description \
             OR spaces.icon_path IS DISTINCT FROM excluded.icon_path \
             OR spaces.icon_type IS DISTINCT FROM excluded.icon_type \
             OR spaces.icon_sha256 IS DISTINCT FROM excluded.icon_sha256",
        )
        .bind(&space.id)
        .bind(&space.key)
        .bind(&space.name)
        .bind(&space.homepage_id)
        .bind(&space.description)
        .bind(&space.icon_path)
        .bind(icon.map(|i| i.media_type.clone()))
        .bind(icon.map(|i| i.blob.sha256().to_owned()))
        .bind(icon.map(|i| i.blob.size()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let max: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(g), 0) FROM ( \
               SELECT MAX(sync_gen) AS g FROM pages WHERE space_id = $1 \
               UNION ALL SELECT MAX(sync_gen) AS g FROM attachments WHERE space_id = $1) t",
        )
        .bind(&space.id)
        .fetch_one(&mut *tx)
        .await?;
        Ok(SqlSync {
            tx,
            space_id: space.id.clone(),
            space_key: space.key.clone(),
            expected,
            generation: max + 1,
            mode,
            writes: 0,
            changed: replaced + upserted > 0,
            shape_changed: replaced + upserted > 0,
            changes,
        })
    }

    fn check_space(&self, page: &PageRecord) -> Result<(), StoreError> {
        if page.space_id != self.space_id {
            return Err(StoreError::Invalid(format!(
                "page {} is in space {}, not in the space being synced ({})",
                page.id, page.space_id, self.space_id
            )));
        }
        Ok(())
    }

    /// Stamps this sync's generation on the rows `ids` of `table` in this space.
    async fn mark_ids(&mut self, table: &str, ids: &[String]) -> Result<u64, StoreError> {
        let mut n = 0;
        for chunk in ids.chunks(BATCH_ROWS * 5) {
            let mut qb = QueryBuilder::<DB>::new(format!("UPDATE {table} SET sync_gen = "));
            qb.push_bind(self.generation);
            qb.push(" WHERE space_id = ");
            qb.push_bind(self.space_id.clone());
            qb.push(" AND id IN (");
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.clone());
            }
            qb.push(")");
            n += qb.build().execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(n)
    }

    /// Deletes the row `id` of `table` if it is in this space. Returns whether it was.
    async fn delete_id(&mut self, table: &str, id: &str) -> Result<bool, StoreError> {
        let sql = format!("DELETE FROM {table} WHERE id = $1 AND space_id = $2");
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(&self.space_id)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        self.writes += n;
        self.changed |= n > 0;
        // A page removed leaves the trees; an attachment is only in its page's view.
        self.shape_changed |= n > 0 && table == "pages";
        Ok(n > 0)
    }

    /// Whether writing `chunk` changes the space's shape: a page that is new, or whose
    /// place, title, labels or restriction flags differ from the stored row (compared as
    /// stored: the title without markers, the labels as JSON).
    async fn changes_shape(&mut self, chunk: &[PageRecord]) -> Result<bool, StoreError> {
        let mut qb = QueryBuilder::<DB>::new(
            "SELECT id, space_id, parent_id, position, title, labels, restricted, \
             effective_restricted FROM pages WHERE id IN (",
        );
        let mut sep = qb.separated(", ");
        for p in chunk {
            sep.push_bind(p.id.clone());
        }
        qb.push(")");
        type Shape = (
            String,
            String,
            Option<String>,
            i64,
            String,
            String,
            bool,
            bool,
        );
        let stored: HashMap<String, Shape> = qb
            .build_query_as::<Shape>()
            .fetch_all(&mut *self.tx)
            .await?
            .into_iter()
            .map(|row| (row.0.clone(), row))
            .collect();
        for p in chunk {
            let Some((_, space_id, parent_id, position, title, labels, r, er)) = stored.get(&p.id)
            else {
                return Ok(true);
            };
            let same = *space_id == p.space_id
                && *parent_id == p.parent_id
                && *position == p.position
                && *title == strip_markers(&p.title)
                && *labels == serde_json::to_string(&p.labels)?
                && *r == p.restricted
                && *er == p.effective_restricted;
            if !same {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Writes one batch of pages (distinct ids, at most [`BATCH_ROWS`]) with their labels.
    async fn write_pages(&mut self, chunk: &[PageRecord]) -> Result<(), StoreError> {
        if !self.shape_changed && self.changes_shape(chunk).await? {
            self.shape_changed = true;
        }
        let mut qb = QueryBuilder::<DB>::new(
            "INSERT INTO pages (id, space_id, parent_id, position, title, version, \
             created_at, updated_at, labels, restricted, effective_restricted, \
             body_storage, body_html, body_text, headings, sync_gen, scope_tokens) ",
        );
        let mut encoded = Vec::with_capacity(chunk.len());
        for p in chunk {
            encoded.push((
                serde_json::to_string(&p.labels)?,
                serde_json::to_string(&p.headings)?,
                crate::scope::page_scope_tokens(&p.space_id, &p.labels),
            ));
        }
        let generation = self.generation;
        qb.push_values(
            chunk.iter().zip(encoded),
            |mut b, (p, (labels, headings, scope))| {
                b.push_bind(p.id.clone())
                    .push_bind(p.space_id.clone())
                    .push_bind(p.parent_id.clone())
                    .push_bind(p.position)
                    .push_bind(strip_markers(&p.title).into_owned())
                    .push_bind(p.version)
                    .push_bind(p.created_at)
                    .push_bind(p.updated_at)
                    .push_bind(labels)
                    .push_bind(p.restricted)
                    .push_bind(p.effective_restricted)
                    .push_bind(p.body_storage.clone())
                    .push_bind(p.body_html.clone())
                    .push_bind(strip_markers(&p.body_text).into_owned())
                    .push_bind(headings)
                    .push_bind(generation)
                    .push_bind(scope);
            },
        );
        qb.push(
            " ON CONFLICT (id) DO UPDATE SET space_id = excluded.space_id, \
             parent_id = excluded.parent_id, position = excluded.position, \
             title = excluded.title, version = excluded.version, \
             created_at = excluded.created_at, updated_at = excluded.updated_at, \
             labels = excluded.labels, restricted = excluded.restricted, \
             effective_restricted = excluded.effective_restricted, \
             body_storage = excluded.body_storage, body_html = excluded.body_html, \
             body_text = excluded.body_text, headings = excluded.headings, \
             sync_gen = excluded.sync_gen, scope_tokens = excluded.scope_tokens",
        );
        qb.build().execute(&mut *self.tx).await?;

        // Labels: replace the set of every page of the chunk.
        let mut qb = QueryBuilder::<DB>::new("DELETE FROM page_labels WHERE page_id IN (");
        let mut sep = qb.separated(", ");
        for p in chunk {
            sep.push_bind(p.id.clone());
        }
        qb.push(")");
        qb.build().execute(&mut *self.tx).await?;

        let mut pairs: Vec<(String, String)> = Vec::new();
        for p in chunk {
            let mut labels: Vec<&String> = p.labels.iter().collect();
            labels.sort();
            labels.dedup();
            pairs.extend(labels.into_iter().map(|l| (p.id.clone(), l.clone())));
        }
        for pairs in pairs.chunks(BATCH_ROWS * 5) {
            let mut qb = QueryBuilder::<DB>::new("INSERT INTO page_labels (page_id, label) ");
            qb.push_values(pairs, |mut b, (id, label)| {
                b.push_bind(id.clone()).push_bind(label.clone());
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Compare-and-set on the space's generation, first thing in the commit: under SQLite's
    /// write lock, and on PostgreSQL the row lock taken here orders concurrent commits (a
    /// waiting one re-reads the row and finds it moved). Returns whether it moved.
    async fn move_generation(&mut self) -> Result<bool, StoreError> {
        let moved = match self.expected {
            Some(expected) => sqlx::query(
                "INSERT INTO space_generations (space_key, generation) VALUES ($1, $2) \
                 ON CONFLICT (space_key) DO UPDATE SET generation = excluded.generation \
                 WHERE space_generations.generation = $3",
            )
            .bind(&self.space_key)
            .bind(expected + 1)
            .bind(expected)
            .execute(&mut *self.tx)
            .await?
            .rows_affected(),
            None => sqlx::query(
                "INSERT INTO space_generations (space_key, generation) VALUES ($1, 1) \
                 ON CONFLICT (space_key) DO UPDATE \
                 SET generation = space_generations.generation + 1",
            )
            .bind(&self.space_key)
            .execute(&mut *self.tx)
            .await?
            .rows_affected(),
        };
        Ok(moved > 0)
    }

    /// Full mode: removes what this sync neither wrote nor kept.
    async fn sweep(&mut self) -> Result<SyncCommitStats, StoreError> {
        let mut stats = SyncCommitStats::default();
        if self.mode != SyncMode::Full {
            return Ok(stats);
        }
        stats.swept_attachments =
            sqlx::query("DELETE FROM attachments WHERE space_id = $1 AND sync_gen <> $2")
                .bind(&self.space_id)
                .bind(self.generation)
                .execute(&mut *self.tx)
                .await?
                .rows_affected();
        stats.swept_pages = sqlx::query("DELETE FROM pages WHERE space_id = $1 AND sync_gen <> $2")
            .bind(&self.space_id)
            .bind(self.generation)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        Ok(stats)
    }
}

#[async_trait]
impl<DB> SpaceSync for SqlSync<DB>
where
    DB: Db,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> &'r str: ColumnIndex<DB::Row> + Encode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    String: Scalar<DB>,
    Option<String>: Scalar<DB>,
    i64: Scalar<DB>,
    Option<i64>: Scalar<DB>,
    bool: Scalar<DB>,
    DateTime<Utc>: Scalar<DB>,
    Option<DateTime<Utc>>: Scalar<DB>,
{
    fn mode(&self) -> SyncMode {
        self.mode
    }

    async fn upsert_page(&mut self, page: PageRecord) -> Result<(), StoreError> {
        self.upsert_pages(vec![page]).await
    }

    async fn upsert_pages(&mut self, pages: Vec<PageRecord>) -> Result<(), StoreError> {
        for p in &pages {
            self.check_space(p)?;
        }
        // One row per id per statement (PostgreSQL refuses to update a row twice); the last
        // write of an id wins.
        let mut seen = std::collections::HashSet::new();
        let mut pages: Vec<PageRecord> = pages
            .into_iter()
            .rev()
            .filter(|p| seen.insert(p.id.clone()))
            .collect();
        pages.reverse();
        self.writes += pages.len() as u64;
        self.changed |= !pages.is_empty();
        for chunk in pages.chunks(BATCH_ROWS) {
            self.write_pages(chunk).await?;
        }
        Ok(())
    }

    async fn keep_pages(&mut self, ids: &[String]) -> Result<u64, StoreError> {
        self.mark_ids("pages", ids).await
    }

    async fn delete_page(&mut self, id: &str) -> Result<bool, StoreError> {
        self.delete_id("pages", id).await
    }

    async fn set_restrictions(
        &mut self,
        page_id: &str,
        restricted: bool,
        effective_restricted: bool,
    ) -> Result<bool, StoreError> {
        // Two steps so that re-stating the flags a page already has is not a change
        // (readers keep their caches); either way the row is marked kept.
        let changed = sqlx::query(
            "UPDATE pages SET restricted = $1, effective_restricted = $2, sync_gen = $3 \
             WHERE id = $4 AND space_id = $5 \
             AND (restricted <> $1 OR effective_restricted <> $2)",
        )
        .bind(restricted)
        .bind(effective_restricted)
        .bind(self.generation)
        .bind(page_id)
        .bind(&self.space_id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        if changed > 0 {
            self.writes += changed;
            self.changed = true;
            self.shape_changed = true;
            return Ok(true);
        }
        let kept = sqlx::query("UPDATE pages SET sync_gen = $1 WHERE id = $2 AND space_id = $3")
            .bind(self.generation)
            .bind(page_id)
            .bind(&self.space_id)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        Ok(kept > 0)
    }

    async fn recompute_effective_restricted(&mut self) -> Result<u64, StoreError> {
        // Top-down from the roots; a missing parent counts as restricted.
        let reach = "WITH RECURSIVE eff(id, r, depth) AS ( \
               SELECT p.id, (p.restricted OR p.parent_id IS NOT NULL), 0 FROM pages p \
               WHERE p.space_id = $1 AND (p.parent_id IS NULL OR NOT EXISTS \
                 (SELECT 1 FROM pages q WHERE q.id = p.parent_id AND q.space_id = $1)) \
               UNION ALL \
               SELECT c.id, (e.r OR c.restricted), e.depth + 1 \
               FROM pages c JOIN eff e ON c.parent_id = e.id \
               WHERE c.space_id = $1 AND e.depth < 100000) ";
        let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{reach} UPDATE pages SET effective_restricted = eff.r FROM eff \
             WHERE pages.id = eff.id AND pages.effective_restricted <> eff.r"
        )))
        .bind(&self.space_id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        // Pages no root reaches (parent cycles) are restricted.
        let cyclic = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{reach} UPDATE pages SET effective_restricted = true \
             WHERE space_id = $1 AND NOT effective_restricted \
             AND id NOT IN (SELECT id FROM eff)"
        )))
        .bind(&self.space_id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        self.writes += changed + cyclic;
        self.changed |= changed + cyclic > 0;
        self.shape_changed |= changed + cyclic > 0;
        Ok(changed + cyclic)
    }

    async fn upsert_attachment(&mut self, a: AttachmentRecord) -> Result<(), StoreError> {
        let page_space: Option<String> =
            sqlx::query_scalar("SELECT space_id FROM pages WHERE id = $1")
                .bind(&a.page_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        if page_space.as_deref() != Some(self.space_id.as_str()) {
            return Err(StoreError::Invalid(format!(
                "attachment {}: page {} is not in the space being synced ({})",
                a.id, a.page_id, self.space_id
            )));
        }
        sqlx::query(
            "INSERT INTO attachments (id, page_id, space_id, title, media_type, \
             file_size, version, updated_at, blob_sha256, blob_size, sync_gen) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (id) DO UPDATE SET page_id = excluded.page_id, \
             space_id = excluded.space_id, title = excluded.title, \
             media_type = excluded.media_type, file_size = excluded.file_size, \
             version = excluded.version, updated_at = excluded.updated_at, \
             blob_sha256 = excluded.blob_sha256, blob_size = excluded.blob_size, \
             sync_gen = excluded.sync_gen",
        )
        .bind(&a.id)
        .bind(&a.page_id)
        .bind(&self.space_id)
        .bind(&a.title)
        .bind(&a.media_type)
        .bind(a.file_size)
        .bind(a.version)
        .bind(a.updated_at)
        .bind(a.blob.as_ref().map(|b| b.sha256().to_owned()))
        .bind(a.blob.as_ref().map(|b| b.size()))
        .bind(self.generation)
        .execute(&mut *self.tx)
        .await?;
        self.writes += 1;
        self.changed = true;
        Ok(())
    }

    async fn keep_attachments(&mut self, ids: &[String]) -> Result<u64, StoreError> {
        self.mark_ids("attachments", ids).await
    }

    async fn delete_attachment(&mut self, id: &str) -> Result<bool, StoreError> {
        self.delete_id("attachments", id).await
    }

    async fn commit(mut self: Box<Self>, state: SyncState) -> Result<SyncCommitStats, StoreError> {
        if state.space_id != self.space_id {
            return Err(StoreError::Invalid(format!(
                "sync state names space {}, not the space being synced ({})",
                state.space_id, self.space_id
            )));
        }
        if !self.move_generation().await? {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT generation FROM space_generations WHERE space_key = $1")
                    .bind(&self.space_key)
                    .fetch_optional(&mut *self.tx)
                    .await?;
            let expected = self.expected.unwrap_or_default();
            self.tx.rollback().await?;
            return Err(StoreError::Stale {
                space_key: self.space_key,
                expected,
                found: found.unwrap_or(0),
            });
        }
        let stats = self.sweep().await?;
        let shape = self.shape_changed || stats.swept_pages > 0;
        if shape || self.changed || stats.swept_attachments > 0 {
            let sql = if shape {
                "UPDATE space_generations SET content_generation = generation, \
                 shape_generation = generation WHERE space_key = $1"
            } else {
                "UPDATE space_generations SET content_generation = generation \
                 WHERE space_key = $1"
            };
            sqlx::query(sql)
                .bind(&self.space_key)
                .execute(&mut *self.tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO sync_state (space_key, space_id, watermark, last_full_sync, \
             last_sync) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (space_key) DO UPDATE \
             SET space_id = excluded.space_id, watermark = excluded.watermark, \
             last_full_sync = excluded.last_full_sync, last_sync = excluded.last_sync",
        )
        .bind(&state.space_key)
        .bind(&state.space_id)
        .bind(state.watermark)
        .bind(state.last_full_sync)
        .bind(state.last_sync)
        .execute(&mut *self.tx)
        .await?;
        let writes = self.writes + stats.swept_pages + stats.swept_attachments;
        DB::tidy_search_index(&mut self.tx, writes).await?;
        self.tx.commit().await?;
        self.changes.bump();
        Ok(stats)
    }

    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}
