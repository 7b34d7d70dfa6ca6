//! PostgreSQL backend: one database for everything; tsvector + GIN search.

use std::path::Path;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row};

use crate::StoreError;
use crate::blob::BlobStore;
use crate::fts::{MATCH_END, MATCH_START, Terms};
use crate::model::{ScopeEntry, SearchHit, SearchResults};
use crate::sqlite::push_scope;

/// The PostgreSQL store.
pub struct PostgresStore {
    mirror: PgPool,
    /// Same pool as `mirror` (PostgreSQL has no single-writer lock to avoid).
    ops: PgPool,
    blobs: BlobStore,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL (and its password) is deliberately not kept.
        f.debug_struct("PostgresStore")
            .field("blobs", &self.blobs)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to a `postgres://` URL and migrates; see [`crate::open`].
    pub async fn open(url: &str, data_dir: &Path) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(PostgresStore {
            mirror: pool.clone(),
            ops: pool,
            blobs: BlobStore::new(data_dir),
        })
    }

    /// Closes the pool (tests drop their database afterwards).
    pub async fn close(&self) {
        self.mirror.close().await;
    }

    async fn begin_tx(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        Ok(self.mirror.begin().await?)
    }

    async fn search_impl(
        &self,
        terms: &Terms,
        scope: &[&ScopeEntry],
        limit: u32,
        offset: u32,
    ) -> Result<SearchResults, StoreError> {
        let tsquery = terms.tsquery();
        // Rank and cut first; build headlines only for the page of results.
        let mut qb = QueryBuilder::<Postgres>::new(
            "SELECT h.id, h.space_id, h.title, h.rank, \
             ts_headline('english'::regconfig, left(h.body_text, 20000), \
               to_tsquery('english'::regconfig, ",
        );
        qb.push_bind(tsquery.clone());
        qb.push("), ");
        qb.push_bind(format!(
            "StartSel=\"{MATCH_START}\", StopSel=\"{MATCH_END}\", MaxWords=30, MinWords=12, \
             MaxFragments=2, FragmentDelimiter=\" … \""
        ));
        qb.push(
            ") AS excerpt FROM ( \
             SELECT p.id, p.space_id, p.title, p.body_text, \
               ts_rank(p.search_vec, q)::float8 AS rank \
             FROM pages p, to_tsquery('english'::regconfig, ",
        );
        qb.push_bind(tsquery);
        qb.push(") q WHERE p.search_vec @@ q AND NOT p.effective_restricted AND (");
        push_scope(&mut qb, scope);
        qb.push(") ORDER BY rank DESC, p.id LIMIT ");
        qb.push_bind(i64::from(limit) + 1);
        qb.push(" OFFSET ");
        qb.push_bind(i64::from(offset));
        qb.push(") h ORDER BY h.rank DESC, h.id");
        let rows = qb.build().fetch_all(&self.mirror).await?;
        let mut hits = rows
            .iter()
            .map(|r| {
                Ok(SearchHit {
                    page_id: r.try_get("id")?,
                    space_id: r.try_get("space_id")?,
                    title: r.try_get("title")?,
                    excerpt: r.try_get("excerpt")?,
                    rank: r.try_get("rank")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let has_more = hits.len() > limit as usize;
        hits.truncate(limit as usize);
        Ok(SearchResults { hits, has_more })
    }
}

mod shared {
    use super::PostgresStore;
    crate::common::impl_common!(
        PostgresStore,
        PostgresSpaceSync,
        sqlx::Postgres,
        sqlx::postgres::PgRow,
        "postgres"
    );
}
