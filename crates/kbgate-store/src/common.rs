//! SQL shared by both backends. Both accept `$N` placeholders, `ON CONFLICT`, `RETURNING`,
//! recursive CTEs, `UPDATE … FROM` and `true`/`false`, so everything except opening,
//! beginning a sync transaction and search is written once here and expanded per backend
//! by [`impl_common!`].

/// Maximum rows per multi-row statement (keeps bind counts far below both backends' limits).
pub(crate) const BATCH_ROWS: usize = 100;

macro_rules! summary_cols {
    () => {
        "p.id, p.space_id, p.parent_id, p.position, p.title, p.version, p.updated_at, \
         p.labels, p.effective_restricted"
    };
}

macro_rules! page_cols {
    () => {
        concat!(
            summary_cols!(),
            ", p.created_at, p.restricted, p.body_storage, p.body_html, p.body_text, p.headings"
        )
    };
}

macro_rules! attachment_cols {
    () => {
        "a.id, a.page_id, a.title, a.media_type, a.file_size, a.version, a.updated_at, \
         a.blob_sha256, a.blob_size"
    };
}

/// Expands the shared part of a backend: row decoding, the `SpaceSync` implementation
/// `$sync` over a `Transaction<'static, $db>`, and `impl Store for $store`. The store type
/// must have fields `mirror` and `ops` (pools), `blobs` (BlobStore), and inherent methods
/// `begin_tx(&self)` and `search_impl(&self, &Terms, &[ScopeEntry], u32, u32)`; the backend
/// module a free function `tidy_search_index(&mut Transaction, writes: u64)` that a sync
/// calls before it commits.
macro_rules! impl_common {
    ($store:ident, $sync:ident, $db:ty, $row:ty, $backend:literal) => {
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::{QueryBuilder, Row};

        use $crate::blob::{BlobRef, BlobStore};
        use $crate::common::BATCH_ROWS;
        use $crate::fts::{strip_markers, Terms};
        use $crate::model::*;
        use $crate::store::{SpaceSync, Store};
        use $crate::StoreError;

        fn json_list<T: serde::de::DeserializeOwned>(s: &str, col: &str) -> Result<T, StoreError> {
            serde_json::from_str(s)
                .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
        }

        fn summary_from_row(r: &$row) -> Result<PageSummary, StoreError> {
            let labels: String = r.try_get("labels")?;
            Ok(PageSummary {
                id: r.try_get("id")?,
                space_id: r.try_get("space_id")?,
                parent_id: r.try_get("parent_id")?,
                position: r.try_get("position")?,
                title: r.try_get("title")?,
                version: r.try_get("version")?,
                updated_at: r.try_get("updated_at")?,
                labels: json_list(&labels, "labels")?,
                effective_restricted: r.try_get("effective_restricted")?,
            })
        }

        fn page_from_row(r: &$row) -> Result<PageRecord, StoreError> {
            let s = summary_from_row(r)?;
            let headings: String = r.try_get("headings")?;
            Ok(PageRecord {
                id: s.id,
                space_id: s.space_id,
                parent_id: s.parent_id,
                position: s.position,
                title: s.title,
                version: s.version,
                created_at: r.try_get("created_at")?,
                updated_at: s.updated_at,
                labels: s.labels,
                restricted: r.try_get("restricted")?,
                effective_restricted: s.effective_restricted,
                body_storage: r.try_get("body_storage")?,
                body_html: r.try_get("body_html")?,
                body_text: r.try_get("body_text")?,
                headings: json_list(&headings, "headings")?,
            })
        }

        fn attachment_from_row(r: &$row) -> Result<AttachmentRecord, StoreError> {
            let sha: Option<String> = r.try_get("blob_sha256")?;
            let size: Option<i64> = r.try_get("blob_size")?;
            let blob = match (sha, size) {
                (Some(sha), Some(size)) => Some(BlobRef::parse(&sha, size)?),
                _ => None,
            };
            Ok(AttachmentRecord {
                id: r.try_get("id")?,
                page_id: r.try_get("page_id")?,
                title: r.try_get("title")?,
                media_type: r.try_get("media_type")?,
                file_size: r.try_get("file_size")?,
                version: r.try_get("version")?,
                updated_at: r.try_get("updated_at")?,
                blob,
            })
        }

        fn space_from_row(r: &$row) -> Result<SpaceRecord, StoreError> {
            Ok(SpaceRecord {
                id: r.try_get("id")?,
                key: r.try_get("key")?,
                name: r.try_get("name")?,
                homepage_id: r.try_get("homepage_id")?,
            })
        }

        fn session_from_row(r: &$row) -> Result<SessionRecord, StoreError> {
            Ok(SessionRecord {
                id_hash: r.try_get("id_hash")?,
                email: r.try_get("email")?,
                created_at: r.try_get("created_at")?,
                last_seen_at: r.try_get("last_seen_at")?,
                expires_at: r.try_get("expires_at")?,
                revoked: r.try_get("revoked")?,
            })
        }

        fn journal_from_row(r: &$row) -> Result<JournalEntry, StoreError> {
            let detail: String = r.try_get("detail")?;
            Ok(JournalEntry {
                action_id: r.try_get("action_id")?,
                kind: r.try_get("kind")?,
                target: r.try_get("target")?,
                state: r.try_get("state")?,
                detail: serde_json::from_str(&detail)?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        fn owned_from_row(r: &$row) -> Result<OwnedResource, StoreError> {
            let detail: String = r.try_get("detail")?;
            Ok(OwnedResource {
                kind: r.try_get("kind")?,
                target: r.try_get("target")?,
                detail: serde_json::from_str(&detail)?,
                created_at: r.try_get("created_at")?,
            })
        }

        fn collect<T>(
            rows: Vec<$row>,
            f: fn(&$row) -> Result<T, StoreError>,
        ) -> Result<Vec<T>, StoreError> {
            rows.iter().map(f).collect()
        }

        /// Upserts the space record; a different space holding the same key is replaced.
        async fn upsert_space(
            tx: &mut sqlx::Transaction<'static, $db>,
            space: &SpaceRecord,
        ) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM spaces WHERE key = $1 AND id <> $2")
                .bind(&space.key)
                .bind(&space.id)
                .execute(&mut **tx)
                .await?;
            sqlx::query(
                "INSERT INTO spaces (id, key, name, homepage_id) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET key = excluded.key, name = excluded.name, \
                 homepage_id = excluded.homepage_id",
            )
            .bind(&space.id)
            .bind(&space.key)
            .bind(&space.name)
            .bind(&space.homepage_id)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// Starts a space sync inside `tx`.
        async fn start_sync(
            mut tx: sqlx::Transaction<'static, $db>,
            space: &SpaceRecord,
            mode: SyncMode,
            expected: Option<i64>,
            changes: $crate::changes::LocalChanges,
        ) -> Result<Box<dyn SpaceSync>, StoreError> {
            upsert_space(&mut tx, space).await?;
            let max: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(g), 0) FROM ( \
                   SELECT MAX(sync_gen) AS g FROM pages WHERE space_id = $1 \
                   UNION ALL SELECT MAX(sync_gen) AS g FROM attachments WHERE space_id = $1) t",
            )
            .bind(&space.id)
            .fetch_one(&mut *tx)
            .await?;
            Ok(Box::new($sync {
                tx,
                space_id: space.id.clone(),
                space_key: space.key.clone(),
                expected,
                generation: max + 1,
                mode,
                writes: 0,
                changes,
            }))
        }

        /// The transaction of one space's sync (see [`SpaceSync`]).
        pub struct $sync {
            tx: sqlx::Transaction<'static, $db>,
            space_id: String,
            space_key: String,
            /// The space generation this sync read before it started (compare-and-set at
            /// commit); `None`: commit whatever is there.
            expected: Option<i64>,
            generation: i64,
            mode: SyncMode,
            /// Rows written that touch the full-text index (for its upkeep at commit).
            writes: u64,
            /// The store's in-process change counter, bumped after the commit.
            changes: $crate::changes::LocalChanges,
        }

        impl std::fmt::Debug for $sync {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($sync))
                    .field("space_id", &self.space_id)
                    .field("generation", &self.generation)
                    .field("mode", &self.mode)
                    .finish()
            }
        }

        impl $sync {
            fn check_space(&self, page: &PageRecord) -> Result<(), StoreError> {
                if page.space_id != self.space_id {
                    return Err(StoreError::Invalid(format!(
                        "page {} is in space {}, not in the space being synced ({})",
                        page.id, page.space_id, self.space_id
                    )));
                }
                Ok(())
            }

            async fn mark_ids(&mut self, table: &str, ids: &[String]) -> Result<u64, StoreError> {
                let mut n = 0;
                for chunk in ids.chunks(BATCH_ROWS * 5) {
                    let mut qb = QueryBuilder::<$db>::new(format!("UPDATE {table} SET sync_gen = "));
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
        }

        #[async_trait]
        impl SpaceSync for $sync {
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
                // One row per id per statement (PostgreSQL refuses to update a row twice);
                // the last write of an id wins.
                let mut seen = std::collections::HashSet::new();
                let mut pages: Vec<PageRecord> =
                    pages.into_iter().rev().filter(|p| seen.insert(p.id.clone())).collect();
                pages.reverse();
                self.writes += pages.len() as u64;
                for chunk in pages.chunks(BATCH_ROWS) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO pages (id, space_id, parent_id, position, title, version, \
                         created_at, updated_at, labels, restricted, effective_restricted, \
                         body_storage, body_html, body_text, headings, sync_gen, scope_tokens) ",
                    );
                    let mut encoded = Vec::with_capacity(chunk.len());
                    for p in chunk {
                        encoded.push((
                            serde_json::to_string(&p.labels)?,
                            serde_json::to_string(&p.headings)?,
                            $crate::scope::page_scope_tokens(&p.space_id, &p.labels),
                        ));
                    }
                    let generation = self.generation;
                    qb.push_values(chunk.iter().zip(encoded), |mut b, (p, (labels, headings, scope))| {
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
                    });
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
                    let mut qb = QueryBuilder::<$db>::new("DELETE FROM page_labels WHERE page_id IN (");
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
                        let mut qb =
                            QueryBuilder::<$db>::new("INSERT INTO page_labels (page_id, label) ");
                        qb.push_values(pairs, |mut b, (id, label)| {
                            b.push_bind(id.clone()).push_bind(label.clone());
                        });
                        qb.push(" ON CONFLICT DO NOTHING");
                        qb.build().execute(&mut *self.tx).await?;
                    }
                }
                Ok(())
            }

            async fn keep_pages(&mut self, ids: &[String]) -> Result<u64, StoreError> {
                self.mark_ids("pages", ids).await
            }

            async fn delete_page(&mut self, id: &str) -> Result<bool, StoreError> {
                let n = sqlx::query("DELETE FROM pages WHERE id = $1 AND space_id = $2")
                    .bind(id)
                    .bind(&self.space_id)
                    .execute(&mut *self.tx)
                    .await?
                    .rows_affected();
                self.writes += n;
                Ok(n > 0)
            }

            async fn set_restrictions(
                &mut self,
                page_id: &str,
                restricted: bool,
                effective_restricted: bool,
            ) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "UPDATE pages SET restricted = $1, effective_restricted = $2, sync_gen = $3 \
                     WHERE id = $4 AND space_id = $5",
                )
                .bind(restricted)
                .bind(effective_restricted)
                .bind(self.generation)
                .bind(page_id)
                .bind(&self.space_id)
                .execute(&mut *self.tx)
                .await?
                .rows_affected();
                self.writes += n;
                Ok(n > 0)
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
                Ok(changed + cyclic)
            }

            async fn upsert_attachment(
                &mut self,
                a: AttachmentRecord,
            ) -> Result<(), StoreError> {
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
                Ok(())
            }

            async fn keep_attachments(&mut self, ids: &[String]) -> Result<u64, StoreError> {
                self.mark_ids("attachments", ids).await
            }

            async fn delete_attachment(&mut self, id: &str) -> Result<bool, StoreError> {
                let n = sqlx::query("DELETE FROM attachments WHERE id = $1 AND space_id = $2")
                    .bind(id)
                    .bind(&self.space_id)
                    .execute(&mut *self.tx)
                    .await?
                    .rows_affected();
                self.writes += n;
                Ok(n > 0)
            }

            async fn commit(
                mut self: Box<Self>,
                state: SyncState,
            ) -> Result<SyncCommitStats, StoreError> {
                if state.space_id != self.space_id {
                    return Err(StoreError::Invalid(format!(
                        "sync state names space {}, not the space being synced ({})",
                        state.space_id, self.space_id
                    )));
                }
                // Compare-and-set on the space's generation first: under SQLite's write lock,
                // and on PostgreSQL the row lock taken here orders concurrent commits (a
                // waiting one re-reads the row and finds it moved).
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
                if moved == 0 {
                    let found: i64 = sqlx::query_scalar(
                        "SELECT generation FROM space_generations WHERE space_key = $1",
                    )
                    .bind(&self.space_key)
                    .fetch_optional(&mut *self.tx)
                    .await?
                    .unwrap_or(0);
                    let expected = self.expected.unwrap_or_default();
                    self.tx.rollback().await?;
                    return Err(StoreError::Stale {
                        space_key: self.space_key,
                        expected,
                        found,
                    });
                }
                let mut stats = SyncCommitStats::default();
                if self.mode == SyncMode::Full {
                    stats.swept_attachments = sqlx::query(
                        "DELETE FROM attachments WHERE space_id = $1 AND sync_gen <> $2",
                    )
                    .bind(&self.space_id)
                    .bind(self.generation)
                    .execute(&mut *self.tx)
                    .await?
                    .rows_affected();
                    stats.swept_pages =
                        sqlx::query("DELETE FROM pages WHERE space_id = $1 AND sync_gen <> $2")
                            .bind(&self.space_id)
                            .bind(self.generation)
                            .execute(&mut *self.tx)
                            .await?
                            .rows_affected();
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
                super::tidy_search_index(&mut self.tx, writes).await?;
                self.tx.commit().await?;
                self.changes.bump();
                Ok(stats)
            }

            async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
                self.tx.rollback().await?;
                Ok(())
            }
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn blobs(&self) -> &BlobStore {
                &self.blobs
            }

            fn local_changes(&self) -> u64 {
                self.changes.get()
            }

            async fn change_stamp(&self) -> Result<ChangeStamp, StoreError> {
                let mirror: i64 = sqlx::query_scalar("SELECT n FROM mirror_changes WHERE id = 1")
                    .fetch_one(&self.mirror)
                    .await?;
                let sessions: i64 =
                    sqlx::query_scalar("SELECT n FROM session_changes WHERE id = 1")
                        .fetch_one(&self.ops)
                        .await?;
                Ok(ChangeStamp { mirror, sessions })
            }

            async fn begin_space_sync(
                &self,
                space: &SpaceRecord,
                mode: SyncMode,
            ) -> Result<Box<dyn SpaceSync>, StoreError> {
                let tx = self.begin_tx().await?;
                start_sync(tx, space, mode, None, self.changes.clone()).await
            }

            async fn begin_space_sync_at(
                &self,
                space: &SpaceRecord,
                mode: SyncMode,
                expected_generation: i64,
            ) -> Result<Box<dyn SpaceSync>, StoreError> {
                let tx = self.begin_tx().await?;
                start_sync(tx, space, mode, Some(expected_generation), self.changes.clone())
                    .await
            }

            async fn sync_generation(&self, space_key: &str) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar::<_, i64>(
                    "SELECT generation FROM space_generations WHERE space_key = $1",
                )
                .bind(space_key)
                .fetch_optional(&self.mirror)
                .await?
                .unwrap_or(0))
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
                    let row: Option<(String, i64)> = sqlx::query_as(
                        "SELECT holder, expires_at FROM sync_leases WHERE space_key = $1",
                    )
                    .bind(space_key)
                    .fetch_optional(&self.ops)
                    .await?;
                    if let Some((holder, ms)) = row {
                        return Ok(SyncLease::HeldBy {
                            holder,
                            expires_at: DateTime::<Utc>::from_timestamp_millis(ms)
                                .unwrap_or(now),
                        });
                    }
                }
                Err(StoreError::Corrupt(format!(
                    "sync lease of {space_key}: neither taken nor held"
                )))
            }

            async fn release_sync_lease(
                &self,
                space_key: &str,
                holder: &str,
            ) -> Result<bool, StoreError> {
                Ok(sqlx::query("DELETE FROM sync_leases WHERE space_key = $1 AND holder = $2")
                    .bind(space_key)
                    .bind(holder)
                    .execute(&self.ops)
                    .await?
                    .rows_affected()
                    > 0)
            }

            async fn delete_space(&self, space_id: &str) -> Result<bool, StoreError> {
                let mut tx = self.begin_tx().await?;
                let key: Option<String> =
                    sqlx::query_scalar("SELECT key FROM spaces WHERE id = $1")
                        .bind(space_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                sqlx::query("DELETE FROM sync_state WHERE space_id = $1")
                    .bind(space_id)
                    .execute(&mut *tx)
                    .await?;
                // A sync of the space that read the mirror before this removal must not
                // commit over it.
                if let Some(key) = &key {
                    sqlx::query(
                        "UPDATE space_generations SET generation = generation + 1 \
                         WHERE space_key = $1",
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

            async fn list_spaces(&self) -> Result<Vec<SpaceRecord>, StoreError> {
                let rows = sqlx::query("SELECT id, key, name, homepage_id FROM spaces ORDER BY key")
                    .fetch_all(&self.mirror)
                    .await?;
                collect(rows, space_from_row)
            }

            async fn space_by_key(&self, key: &str) -> Result<Option<SpaceRecord>, StoreError> {
                sqlx::query("SELECT id, key, name, homepage_id FROM spaces WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.mirror)
                    .await?
                    .as_ref()
                    .map(space_from_row)
                    .transpose()
            }

            async fn space(&self, id: &str) -> Result<Option<SpaceRecord>, StoreError> {
                sqlx::query("SELECT id, key, name, homepage_id FROM spaces WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.mirror)
                    .await?
                    .as_ref()
                    .map(space_from_row)
                    .transpose()
            }

            async fn page(&self, id: &str) -> Result<Option<PageRecord>, StoreError> {
                sqlx::query(concat!("SELECT ", page_cols!(), " FROM pages p WHERE p.id = $1"))
                    .bind(id)
                    .fetch_optional(&self.mirror)
                    .await?
                    .as_ref()
                    .map(page_from_row)
                    .transpose()
            }

            async fn page_summary(&self, id: &str) -> Result<Option<PageSummary>, StoreError> {
                sqlx::query(concat!("SELECT ", summary_cols!(), " FROM pages p WHERE p.id = $1"))
                    .bind(id)
                    .fetch_optional(&self.mirror)
                    .await?
                    .as_ref()
                    .map(summary_from_row)
                    .transpose()
            }

            async fn page_summaries(&self, space_id: &str) -> Result<Vec<PageSummary>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    summary_cols!(),
                    " FROM pages p WHERE p.space_id = $1 \
                     ORDER BY p.parent_id NULLS FIRST, p.position, p.title, p.id"
                ))
                .bind(space_id)
                .fetch(&self.mirror);
                // Streamed, row by row: a 40,000-page space held as raw rows and as summaries
                // at once doubled the portal's memory peak for nothing.
                let mut rows = std::pin::pin!(rows);
                let mut out = Vec::new();
                while let Some(row) = futures::TryStreamExt::try_next(&mut rows).await? {
                    out.push(summary_from_row(&row)?);
                }
                out.shrink_to_fit();
                Ok(out)
            }

            async fn page_summaries_by_ids(
                &self,
                ids: &[String],
            ) -> Result<Vec<PageSummary>, StoreError> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(BATCH_ROWS * 5) {
                    let mut qb = QueryBuilder::<$db>::new(concat!(
                        "SELECT ",
                        summary_cols!(),
                        " FROM pages p WHERE p.id IN ("
                    ));
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.clone());
                    }
                    qb.push(")");
                    let rows = qb.build().fetch_all(&self.mirror).await?;
                    out.extend(collect(rows, summary_from_row)?);
                }
                Ok(out)
            }

            async fn page_by_title(
                &self,
                space_key: &str,
                title: &str,
            ) -> Result<Option<PageSummary>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    summary_cols!(),
                    " FROM pages p JOIN spaces s ON s.id = p.space_id \
                     WHERE s.key = $1 AND p.title = $2 ORDER BY p.id LIMIT 1"
                ))
                .bind(space_key)
                .bind(title)
                .fetch_optional(&self.mirror)
                .await?
                .as_ref()
                .map(summary_from_row)
                .transpose()
            }

            async fn children(&self, page_id: &str) -> Result<Vec<PageSummary>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    summary_cols!(),
                    " FROM pages p WHERE p.parent_id = $1 ORDER BY p.position, p.title, p.id"
                ))
                .bind(page_id)
                .fetch_all(&self.mirror)
                .await?;
                collect(rows, summary_from_row)
            }

            async fn ancestors(&self, page_id: &str) -> Result<Vec<PageSummary>, StoreError> {
                let rows = sqlx::query(concat!(
                    "WITH RECURSIVE anc(id, depth) AS ( \
                       SELECT parent_id, 1 FROM pages WHERE id = $1 AND parent_id IS NOT NULL \
                       UNION ALL \
                       SELECT q.parent_id, anc.depth + 1 FROM pages q JOIN anc ON q.id = anc.id \
                       WHERE q.parent_id IS NOT NULL AND anc.depth < 1000) \
                     SELECT ",
                    summary_cols!(),
                    " FROM anc JOIN pages p ON p.id = anc.id ORDER BY anc.depth DESC"
                ))
                .bind(page_id)
                .fetch_all(&self.mirror)
                .await?;
                // A parent cycle would repeat pages; keep the first (closest to the root).
                let mut seen = std::collections::HashSet::new();
                let mut out = collect(rows, summary_from_row)?;
                out.retain(|p| p.id != page_id && seen.insert(p.id.clone()));
                Ok(out)
            }

            async fn pages_with_label(
                &self,
                space_id: &str,
                label: &str,
            ) -> Result<Vec<PageSummary>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    summary_cols!(),
                    " FROM page_labels l JOIN pages p ON p.id = l.page_id \
                     WHERE l.label = $1 AND p.space_id = $2 ORDER BY p.title, p.id"
                ))
                .bind(label)
                .bind(space_id)
                .fetch_all(&self.mirror)
                .await?;
                collect(rows, summary_from_row)
            }

            async fn attachments(&self, page_id: &str) -> Result<Vec<AttachmentRecord>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    attachment_cols!(),
                    " FROM attachments a WHERE a.page_id = $1 ORDER BY a.title, a.id"
                ))
                .bind(page_id)
                .fetch_all(&self.mirror)
                .await?;
                collect(rows, attachment_from_row)
            }

            async fn attachment(&self, id: &str) -> Result<Option<AttachmentRecord>, StoreError> {
                sqlx::query(concat!("SELECT ", attachment_cols!(), " FROM attachments a WHERE a.id = $1"))
                    .bind(id)
                    .fetch_optional(&self.mirror)
                    .await?
                    .as_ref()
                    .map(attachment_from_row)
                    .transpose()
            }

            async fn attachment_by_name(
                &self,
                page_id: &str,
                file_name: &str,
            ) -> Result<Option<AttachmentRecord>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    attachment_cols!(),
                    " FROM attachments a WHERE a.page_id = $1 AND a.title = $2 \
                     ORDER BY a.version DESC, a.id LIMIT 1"
                ))
                .bind(page_id)
                .bind(file_name)
                .fetch_optional(&self.mirror)
                .await?
                .as_ref()
                .map(attachment_from_row)
                .transpose()
            }

            async fn page_versions(&self, space_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
                Ok(sqlx::query_as::<_, (String, i64)>(
                    "SELECT id, version FROM pages WHERE space_id = $1 ORDER BY id",
                )
                .bind(space_id)
                .fetch_all(&self.mirror)
                .await?)
            }

            async fn attachment_versions(
                &self,
                space_id: &str,
            ) -> Result<Vec<(String, i64)>, StoreError> {
                Ok(sqlx::query_as::<_, (String, i64)>(
                    "SELECT id, version FROM attachments WHERE space_id = $1 ORDER BY id",
                )
                .bind(space_id)
                .fetch_all(&self.mirror)
                .await?)
            }

            async fn blob_hashes(&self) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar::<_, String>(
                    "SELECT DISTINCT blob_sha256 FROM attachments WHERE blob_sha256 IS NOT NULL",
                )
                .fetch_all(&self.mirror)
                .await?)
            }

            async fn sync_state(&self, space_key: &str) -> Result<Option<SyncState>, StoreError> {
                let row = sqlx::query(
                    "SELECT space_key, space_id, watermark, last_full_sync, last_sync \
                     FROM sync_state WHERE space_key = $1",
                )
                .bind(space_key)
                .fetch_optional(&self.mirror)
                .await?;
                row.map(|r| {
                    Ok(SyncState {
                        space_key: r.try_get("space_key")?,
                        space_id: r.try_get("space_id")?,
                        watermark: r.try_get("watermark")?,
                        last_full_sync: r.try_get("last_full_sync")?,
                        last_sync: r.try_get("last_sync")?,
                    })
                })
                .transpose()
            }

            async fn mirror_stats(&self) -> Result<MirrorStats, StoreError> {
                let (spaces, pages, restricted, attachments, blobs) =
                    sqlx::query_as::<_, (i64, i64, i64, i64, i64)>(
                        "SELECT (SELECT COUNT(*) FROM spaces), (SELECT COUNT(*) FROM pages), \
                         (SELECT COUNT(*) FROM pages WHERE effective_restricted), \
                         (SELECT COUNT(*) FROM attachments), \
                         (SELECT COUNT(*) FROM attachments WHERE blob_sha256 IS NOT NULL)",
                    )
                    .fetch_one(&self.mirror)
                    .await?;
                let u = |n: i64| u64::try_from(n).unwrap_or(0);
                Ok(MirrorStats {
                    spaces: u(spaces),
                    pages: u(pages),
                    restricted_pages: u(restricted),
                    attachments: u(attachments),
                    stored_blobs: u(blobs),
                })
            }

            async fn search(
                &self,
                query: &str,
                scope: &[ScopeEntry],
                limit: u32,
                offset: u32,
            ) -> Result<SearchResults, StoreError> {
                let Some(terms) = Terms::parse(query) else {
                    return Ok(SearchResults::default());
                };
                let scope: Vec<&ScopeEntry> = scope
                    .iter()
                    .filter(|e| e.labels.as_ref().is_none_or(|l| !l.is_empty()))
                    .collect();
                if scope.is_empty() || limit == 0 {
                    return Ok(SearchResults::default());
                }
                self.search_impl(&terms, &scope, limit, offset).await
            }

            async fn create_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO sessions (id_hash, email, created_at, last_seen_at, \
                     expires_at, revoked) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&s.id_hash)
                .bind(&s.email)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.expires_at)
                .bind(s.revoked)
                .execute(&self.ops)
                .await?;
                Ok(())
            }

            async fn active_session(
                &self,
                id_hash: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<SessionRecord>, StoreError> {
                sqlx::query(
                    "SELECT id_hash, email, created_at, last_seen_at, expires_at, revoked \
                     FROM sessions WHERE id_hash = $1 AND NOT revoked AND expires_at > $2",
                )
                .bind(id_hash)
                .bind(now)
                .fetch_optional(&self.ops)
                .await?
                .as_ref()
                .map(session_from_row)
                .transpose()
            }

            async fn touch_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
                    .bind(now)
                    .bind(id_hash)
                    .execute(&self.ops)
                    .await?;
                Ok(())
            }

            async fn revoke_session(&self, id_hash: &str) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "UPDATE sessions SET revoked = true WHERE id_hash = $1 AND NOT revoked",
                )
                .bind(id_hash)
                .execute(&self.ops)
                .await?
                .rows_affected();
                self.changes.bump();
                Ok(n > 0)
            }

            async fn revoke_sessions_by_email(&self, email: &str) -> Result<u64, StoreError> {
                let n = sqlx::query(
                    "UPDATE sessions SET revoked = true WHERE lower(email) = lower($1) AND NOT revoked",
                )
                .bind(email)
                .execute(&self.ops)
                .await?
                .rows_affected();
                self.changes.bump();
                Ok(n)
            }

            async fn revoke_sessions_by_domain(&self, domain: &str) -> Result<u64, StoreError> {
                let domain = domain.trim().to_ascii_lowercase();
                if domain.is_empty() || domain.contains('@') {
                    return Err(StoreError::Invalid(format!("not a domain: {domain:?}")));
                }
                // Suffix comparison, not LIKE: `_` and `%` must not act as wildcards.
                let n = sqlx::query(
                    "UPDATE sessions SET revoked = true WHERE NOT revoked \
                     AND lower(substr(email, length(email) - length($1))) = '@' || $1",
                )
                .bind(&domain)
                .execute(&self.ops)
                .await?
                .rows_affected();
                self.changes.bump();
                Ok(n)
            }

            async fn revoke_sessions_under_domain(&self, domain: &str) -> Result<u64, StoreError> {
                let domain = domain.trim().to_ascii_lowercase();
                if domain.is_empty() || domain.contains('@') {
                    return Err(StoreError::Invalid(format!("not a domain: {domain:?}")));
                }
                // Suffix comparison, not LIKE: `_` and `%` must not act as wildcards. A suffix
                // `.domain` lies inside the email's domain (it holds no `@`), so it names a
                // subdomain, never a look-alike (`evilacme.com`).
                let n = sqlx::query(
                    "UPDATE sessions SET revoked = true WHERE NOT revoked \
                     AND (lower(substr(email, length(email) - length($1))) = '@' || $1 \
                     OR lower(substr(email, length(email) - length($1))) = '.' || $1)",
                )
                .bind(&domain)
                .execute(&self.ops)
                .await?
                .rows_affected();
                self.changes.bump();
                Ok(n)
            }

            async fn active_sessions(
                &self,
                now: DateTime<Utc>,
            ) -> Result<Vec<SessionRecord>, StoreError> {
                sqlx::query(
                    "SELECT id_hash, email, created_at, last_seen_at, expires_at, revoked \
                     FROM sessions WHERE NOT revoked AND expires_at > $1",
                )
                .bind(now)
                .fetch_all(&self.ops)
                .await?
                .iter()
                .map(session_from_row)
                .collect()
            }

            async fn consume_jti(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "INSERT INTO used_jti (jti, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (jti) DO NOTHING",
                )
                .bind(jti)
                .bind(expires_at)
                .execute(&self.ops)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn create_code(&self, c: &CodeRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO one_time_codes (code_hash, purpose, email, return_to, \
                     created_at, expires_at, used) VALUES ($1, $2, $3, $4, $5, $6, false)",
                )
                .bind(&c.code_hash)
                .bind(&c.purpose)
                .bind(&c.email)
                .bind(&c.return_to)
                .bind(c.created_at)
                .bind(c.expires_at)
                .execute(&self.ops)
                .await?;
                Ok(())
            }

            async fn consume_code(
                &self,
                code_hash: &str,
                purpose: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<CodeRecord>, StoreError> {
                let row = sqlx::query(
                    "UPDATE one_time_codes SET used = true \
                     WHERE code_hash = $1 AND purpose = $2 AND NOT used AND expires_at > $3 \
                     RETURNING code_hash, purpose, email, return_to, created_at, expires_at",
                )
                .bind(code_hash)
                .bind(purpose)
                .bind(now)
                .fetch_optional(&self.ops)
                .await?;
                row.map(|r| {
                    Ok(CodeRecord {
                        code_hash: r.try_get("code_hash")?,
                        purpose: r.try_get("purpose")?,
                        email: r.try_get("email")?,
                        return_to: r.try_get("return_to")?,
                        created_at: r.try_get("created_at")?,
                        expires_at: r.try_get("expires_at")?,
                    })
                })
                .transpose()
            }

            async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
                let mut n = 0;
                for sql in [
                    "DELETE FROM sessions WHERE expires_at <= $1",
                    "DELETE FROM used_jti WHERE expires_at <= $1",
                    "DELETE FROM one_time_codes WHERE expires_at <= $1",
                ] {
                    n += sqlx::query(sql).bind(now).execute(&self.ops).await?.rows_affected();
                }
                self.changes.bump();
                Ok(n)
            }

            async fn append_audit(&self, e: &AuditEvent) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO audit_log (ts, actor, action, detail) VALUES ($1, $2, $3, $4)")
                    .bind(e.ts)
                    .bind(&e.actor)
                    .bind(&e.action)
                    .bind(serde_json::to_string(&e.detail)?)
                    .execute(&self.ops)
                    .await?;
                Ok(())
            }

            async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
                let rows = sqlx::query(
                    "SELECT ts, actor, action, detail FROM audit_log ORDER BY seq DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.ops)
                .await?;
                rows.iter()
                    .map(|r| {
                        let detail: String = r.try_get("detail")?;
                        Ok(AuditEvent {
                            ts: r.try_get("ts")?,
                            actor: r.try_get("actor")?,
                            action: r.try_get("action")?,
                            detail: serde_json::from_str(&detail)?,
                        })
                    })
                    .collect()
            }

            async fn add_person(&self, p: &PersonRecord) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "INSERT INTO people (email, domain, source, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (email) DO NOTHING",
                )
                .bind(&p.email)
                .bind(&p.domain)
                .bind(&p.source)
                .bind(p.created_at)
                .execute(&self.ops)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn remove_person(&self, email: &str) -> Result<bool, StoreError> {
                let n = sqlx::query("DELETE FROM people WHERE email = $1")
                    .bind(email)
                    .execute(&self.ops)
                    .await?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn people(&self) -> Result<Vec<PersonRecord>, StoreError> {
                let rows = sqlx::query(
                    "SELECT email, domain, source, created_at FROM people ORDER BY email",
                )
                .fetch_all(&self.ops)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(PersonRecord {
                            email: r.try_get("email")?,
                            domain: r.try_get("domain")?,
                            source: r.try_get("source")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn journal_put(&self, e: &JournalEntry) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO provision_journal (action_id, kind, target, state, detail, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (action_id) DO UPDATE SET kind = excluded.kind, \
                     target = excluded.target, state = excluded.state, \
                     detail = excluded.detail, updated_at = excluded.updated_at",
                )
                .bind(&e.action_id)
                .bind(&e.kind)
                .bind(&e.target)
                .bind(&e.state)
                .bind(serde_json::to_string(&e.detail)?)
                .bind(e.created_at)
                .bind(e.updated_at)
                .execute(&self.ops)
                .await?;
                Ok(())
            }

            async fn journal_get(&self, action_id: &str) -> Result<Option<JournalEntry>, StoreError> {
                sqlx::query(
                    "SELECT action_id, kind, target, state, detail, created_at, updated_at \
                     FROM provision_journal WHERE action_id = $1",
                )
                .bind(action_id)
                .fetch_optional(&self.ops)
                .await?
                .as_ref()
                .map(journal_from_row)
                .transpose()
            }

            async fn journal_list(&self, state: Option<&str>) -> Result<Vec<JournalEntry>, StoreError> {
                let rows = sqlx::query(
                    "SELECT action_id, kind, target, state, detail, created_at, updated_at \
                     FROM provision_journal WHERE ($1 IS NULL OR state = $1) \
                     ORDER BY created_at, action_id",
                )
                .bind(state)
                .fetch_all(&self.ops)
                .await?;
                collect(rows, journal_from_row)
            }

            async fn record_owned(&self, r: &OwnedResource) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO provision_owned (kind, target, detail, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (kind, target) DO NOTHING",
                )
                .bind(&r.kind)
                .bind(&r.target)
                .bind(serde_json::to_string(&r.detail)?)
                .bind(r.created_at)
                .execute(&self.ops)
                .await?;
                Ok(())
            }

            async fn owned(&self, kind: Option<&str>) -> Result<Vec<OwnedResource>, StoreError> {
                let rows = sqlx::query(
                    "SELECT kind, target, detail, created_at FROM provision_owned \
                     WHERE ($1 IS NULL OR kind = $1) ORDER BY kind, target",
                )
                .bind(kind)
                .fetch_all(&self.ops)
                .await?;
                collect(rows, owned_from_row)
            }

            async fn forget_owned(&self, kind: &str, target: &str) -> Result<bool, StoreError> {
                let n = sqlx::query("DELETE FROM provision_owned WHERE kind = $1 AND target = $2")
                    .bind(kind)
                    .bind(target)
                    .execute(&self.ops)
                    .await?
                    .rows_affected();
                Ok(n > 0)
            }
        }
    };
}

pub(crate) use impl_common;
