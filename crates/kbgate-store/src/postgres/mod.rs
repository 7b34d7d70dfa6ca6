//! PostgreSQL backend: one database for everything; tsvector + GIN search (`search.rs`).
//! The statements it shares with SQLite are in [`crate::sql`].

mod blobs;
mod search;

pub use blobs::PgBlobs;

use std::path::Path;

use async_trait::async_trait;
use sqlx::Postgres;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::StoreError;
use crate::fts::Terms;
use crate::model::{ScopeEntry, SearchResults};
use crate::search::SearchLimits;
use crate::sql::{Db, SqlStore};

/// The PostgreSQL store. Its `mirror` and `ops` pools are the same pool (PostgreSQL has no
/// single-writer lock to avoid).
pub type PostgresStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects to a `postgres://` URL and migrates; see [`crate::open`]. Attachment bytes
    /// are kept in the database ([`PgBlobs`]), so every instance sharing it serves every
    /// file; `data_dir` is not used by this backend.
    pub async fn open(url: &str, _data_dir: &Path) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(SqlStore {
            mirror: pool.clone(),
            blobs: std::sync::Arc::new(PgBlobs::new(pool.clone())),
            ops: pool,
            limits: SearchLimits::postgres(),
            changes: Default::default(),
            search_stats: Default::default(),
        })
    }

    /// Closes the pool (tests drop their database afterwards).
    pub async fn close(&self) {
        self.mirror.close().await;
    }
}

#[async_trait]
impl Db for Postgres {
    const BACKEND: &'static str = "postgres";

    async fn begin_write(
        pool: &PgPool,
    ) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        Ok(pool.begin().await?)
    }

    /// Upkeep at the end of a sync that wrote `writes` index-relevant rows: the GIN pending
    /// lists merged, and after a large sync fresh statistics (`ANALYZE pages, page_labels`,
    /// run in the sync's transaction, which counts its own rows), so search plans see the new
    /// word frequencies right away rather than after autovacuum gets round to it.
    async fn tidy_search_index(
        tx: &mut sqlx::Transaction<'static, Postgres>,
        writes: u64,
    ) -> Result<(), StoreError> {
        if writes == 0 {
            return Ok(());
        }
        // New GIN entries wait in a pending list that every search reads in full (and sorts)
        // until autovacuum merges it; merge it now.
        sqlx::query(
            "SELECT gin_clean_pending_list('pages_search'::regclass), \
             gin_clean_pending_list('pages_title_search'::regclass)",
        )
        .execute(&mut **tx)
        .await?;
        if writes >= ANALYZE_AFTER_WRITES {
            sqlx::raw_sql("ANALYZE pages; ANALYZE page_labels")
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn search(
        store: &PostgresStore,
        terms: &Terms,
        scope: &[&ScopeEntry],
        limit: u32,
        offset: u32,
    ) -> Result<SearchResults, StoreError> {
        store.search_impl(terms, scope, limit, offset).await
    }
}

/// A sync writing at least this many rows refreshes the planner statistics.
const ANALYZE_AFTER_WRITES: u64 = 1000;
