//! SQLite backend: the embedded default. WAL, foreign keys, busy timeout; FTS5 search.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::StoreError;
use crate::blob::BlobStore;
use crate::fts::Terms;
use crate::model::{ScopeEntry, SearchHit, SearchResults};

/// How long a writer waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite store: the mirror in one database file, operational records (sessions, codes,
/// audit, provisioning) in a second one, so a long sync transaction never blocks sign-ins.
pub struct SqliteStore {
    mirror: SqlitePool,
    ops: SqlitePool,
    blobs: BlobStore,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("blobs", &self.blobs)
            .finish_non_exhaustive()
    }
}

/// Where the two databases of a SQLite URL live.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Memory,
    Files { mirror: PathBuf, ops: PathBuf },
}

fn parse_url(url: &str, data_dir: &Path) -> Result<Location, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::BadUrl("expected sqlite:".into()))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path == ":memory:" {
        return Ok(Location::Memory);
    }
    if path.is_empty() {
        return Err(StoreError::BadUrl("sqlite URL without a path".into()));
    }
    let mirror = data_dir.join(path);
    let stem = mirror
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kbgate".into());
    let ops_name = match mirror.extension() {
        Some(ext) => format!("{stem}.ops.{}", ext.to_string_lossy()),
        None => format!("{stem}.ops"),
    };
    let ops = mirror.with_file_name(ops_name);
    Ok(Location::Files { mirror, ops })
}

async fn pool_for(opts: SqliteConnectOptions, memory: bool) -> Result<SqlitePool, StoreError> {
    let opts = opts
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .synchronous(SqliteSynchronous::Normal);
    let pool_opts = if memory {
        // An in-memory database lives as long as one connection does.
        SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(4)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(8)
    };
    Ok(pool_opts.connect_with(opts).await?)
}

impl SqliteStore {
    /// Opens (creates, migrates) the store named by a `sqlite:` URL; see [`crate::open`].
    pub async fn open(url: &str, data_dir: &Path) -> Result<Self, StoreError> {
        let (mirror, ops) = match parse_url(url, data_dir)? {
            Location::Memory => (
                pool_for(SqliteConnectOptions::from_str("sqlite::memory:")?, true).await?,
                pool_for(SqliteConnectOptions::from_str("sqlite::memory:")?, true).await?,
            ),
            Location::Files { mirror, ops } => {
                if let Some(dir) = mirror.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                let file = |p: &Path| {
                    SqliteConnectOptions::new()
                        .filename(p)
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                };
                (
                    pool_for(file(&mirror), false).await?,
                    pool_for(file(&ops), false).await?,
                )
            }
        };
        sqlx::migrate!("migrations/sqlite/mirror")
            .run(&mirror)
            .await?;
        sqlx::migrate!("migrations/sqlite/ops").run(&ops).await?;
        Ok(SqliteStore {
            mirror,
            ops,
            blobs: BlobStore::new(data_dir),
        })
    }

    /// Sync transactions take the write lock up front, so they never fail half-way on a
    /// lock upgrade.
    async fn begin_tx(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        Ok(self.mirror.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn search_impl(
        &self,
        terms: &Terms,
        scope: &[&ScopeEntry],
        limit: u32,
        offset: u32,
    ) -> Result<SearchResults, StoreError> {
        // `CROSS JOIN` pins the join order (SQLite's planner may otherwise walk `pages` and
        // probe the full-text index once per page, which is quadratic for common words).
        // Two steps in one statement: rank and filter every match cheaply (bm25 and a few
        // columns of `pages`), keep the requested window, and only then build snippets —
        // SQLite would otherwise compute `snippet()` for every match before sorting.
        // bm25 weights: title 10, body 1, attachment names 3 (lower score = better).
        let mut qb = QueryBuilder::<Sqlite>::new(
            "WITH top AS (SELECT pages_fts.rowid AS rid, \
             bm25(pages_fts, 10.0, 1.0, 3.0) AS score, p.id AS id \
             FROM pages_fts CROSS JOIN pages p ON p.pk = pages_fts.rowid \
             WHERE pages_fts MATCH ",
        );
        qb.push_bind(terms.fts5());
        qb.push(" AND NOT p.effective_restricted AND (");
        push_scope(&mut qb, scope);
        qb.push(") ORDER BY score, p.id LIMIT ");
        qb.push_bind(i64::from(limit) + 1);
        qb.push(" OFFSET ");
        qb.push_bind(i64::from(offset));
        qb.push(
            ") SELECT p.id, p.space_id, p.title, \
             snippet(pages_fts, 1, char(57344), char(57345), '…', 24) AS excerpt, \
             top.score AS score \
             FROM top CROSS JOIN pages p ON p.pk = top.rid \
             CROSS JOIN pages_fts ON pages_fts.rowid = top.rid \
             WHERE pages_fts MATCH ",
        );
        qb.push_bind(terms.fts5());
        qb.push(" ORDER BY top.score, top.id");
        let rows = qb.build().fetch_all(&self.mirror).await?;
        let mut hits = rows
            .iter()
            .map(|r| {
                let score: f64 = r.try_get("score")?;
                Ok(SearchHit {
                    page_id: r.try_get("id")?,
                    space_id: r.try_get("space_id")?,
                    title: r.try_get("title")?,
                    excerpt: r.try_get("excerpt")?,
                    rank: -score,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let has_more = hits.len() > limit as usize;
        hits.truncate(limit as usize);
        Ok(SearchResults { hits, has_more })
    }
}

/// `(p.space_id = ?) OR (p.space_id = ? AND EXISTS (… label IN (…)))` — shared by both
/// backends' search (QueryBuilder picks each backend's placeholder syntax).
pub(crate) fn push_scope<DB>(qb: &mut QueryBuilder<DB>, scope: &[&ScopeEntry])
where
    DB: sqlx::Database,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    for (i, entry) in scope.iter().enumerate() {
        if i > 0 {
            qb.push(" OR ");
        }
        qb.push("(p.space_id = ");
        qb.push_bind(entry.space_id.clone());
        if let Some(labels) = &entry.labels {
            qb.push(
                " AND EXISTS (SELECT 1 FROM page_labels l WHERE l.page_id = p.id AND l.label IN (",
            );
            let mut sep = qb.separated(", ");
            for label in labels {
                sep.push_bind(label.clone());
            }
            qb.push("))");
        }
        qb.push(")");
    }
}

mod shared {
    use super::SqliteStore;
    crate::common::impl_common!(
        SqliteStore,
        SqliteSpaceSync,
        sqlx::Sqlite,
        sqlx::sqlite::SqliteRow,
        "sqlite"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_against_the_data_dir() {
        let dir = Path::new("/data");
        assert_eq!(parse_url("sqlite::memory:", dir).unwrap(), Location::Memory);
        assert_eq!(
            parse_url("sqlite://kbgate.db", dir).unwrap(),
            Location::Files {
                mirror: "/data/kbgate.db".into(),
                ops: "/data/kbgate.ops.db".into()
            }
        );
        assert_eq!(
            parse_url("sqlite:///abs/x?mode=rwc", dir).unwrap(),
            Location::Files {
                mirror: "/abs/x".into(),
                ops: "/abs/x.ops".into()
            }
        );
        assert!(parse_url("sqlite://", dir).is_err());
        assert!(parse_url("mysql://x", dir).is_err());
    }
}
