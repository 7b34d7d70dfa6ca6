//! The SQL both backends run, written once, generic over the backend.
//!
//! SQLite and PostgreSQL both accept `$N` placeholders, `ON CONFLICT`, `RETURNING`,
//! recursive CTEs, `UPDATE … FROM` and `true`/`false`, so every role except search is the
//! same statements on both: [`SqlStore<DB>`] implements the role traits of [`crate::store`]
//! for any `DB` that is one of them ([`Db`]). What differs — opening, the sync
//! transaction's `BEGIN`, full-text upkeep and search — is the [`Db`] implementation in
//! `crate::sqlite` and `crate::postgres`.
//!
//! Each role's impl block states in its `where` clause what its statements need of the
//! backend — an executor, column lookup by name (and by position for tuples), and the
//! column types it binds and reads ([`Scalar`]). Rust does not carry a trait's `where`
//! clauses over to its users, so they cannot live in [`Db`] once; both backends meet them
//! all, and the compiler names any one a new statement adds.

mod audit;
mod insights;
mod mirror_read;
mod mirror_write;
mod people;
mod rows;
mod sessions;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, QueryBuilder};

use crate::StoreError;
use std::sync::Arc;

use crate::blob::BlobStore;
use crate::changes::LocalChanges;
use crate::fts::Terms;
use crate::model::{ChangeStamp, ScopeEntry, SearchResults};
use crate::search::SearchLimits;
use crate::store::Backend;

/// Maximum rows per multi-row statement (keeps bind counts far below both backends' limits).
pub(crate) const BATCH_ROWS: usize = 100;

/// A SQL store: [`crate::SqliteStore`] or [`crate::PostgresStore`]. The mirror and the
/// operational records (sessions, codes, audit, provisioning, sync leases) have a pool
/// each; on PostgreSQL both are the same pool, on SQLite two database files, so a long sync
/// transaction on the mirror never blocks sign-ins.
pub struct SqlStore<DB: Database> {
    pub(crate) mirror: Pool<DB>,
    pub(crate) ops: Pool<DB>,
    /// Attachment bytes: [`crate::LocalBlobs`] for SQLite, [`crate::PgBlobs`] for
    /// PostgreSQL (shared by every instance on the database).
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) limits: SearchLimits,
    /// The in-process change counter, shared with sync transactions.
    pub(crate) changes: LocalChanges,
    /// The page count and word frequencies as of a change stamp (SQLite search, see
    /// [`crate::search::SearchStats`]).
    pub(crate) search_stats: crate::search::SearchStats,
}

impl<DB: Database> std::fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Connection URLs (and their passwords) are deliberately not kept.
        f.debug_struct("SqlStore")
            .field("database", &DB::NAME)
            .field("blobs", &self.blobs)
            .finish_non_exhaustive()
    }
}

/// What differs between the backends. Implemented for `sqlx::Sqlite` and `sqlx::Postgres`
/// in their modules; everything else is shared code here.
#[async_trait]
pub(crate) trait Db:
    Database<Arguments: IntoArguments<Self>, QueryResult: RowsAffected>
{
    /// The name [`Backend::backend`] reports.
    const BACKEND: &'static str;

    /// Opens the write transaction of a space sync or removal on the mirror.
    async fn begin_write(pool: &Pool<Self>)
    -> Result<sqlx::Transaction<'static, Self>, StoreError>;

    /// Full-text index upkeep at the end of a sync that wrote `writes` index-relevant rows,
    /// inside its transaction.
    async fn tidy_search_index(
        tx: &mut sqlx::Transaction<'static, Self>,
        writes: u64,
    ) -> Result<(), StoreError>;

    /// The backend's search plan over `terms`, for a non-empty `scope` and `limit`.
    async fn search(
        store: &SqlStore<Self>,
        terms: &Terms,
        scope: &[&ScopeEntry],
        limit: u32,
        offset: u32,
    ) -> Result<SearchResults, StoreError>;
}

/// The row count of a statement's result (an inherent method of each backend's result type).
pub(crate) trait RowsAffected {
    /// Rows inserted, updated or deleted.
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// A column type the shared statements bind and read: one bound instead of three.
pub(crate) trait Scalar<DB: Database>:
    for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + sqlx::Type<DB>
{
}

impl<DB: Database, T> Scalar<DB> for T where
    T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + sqlx::Type<DB>
{
}

#[async_trait]
impl<DB> Backend for SqlStore<DB>
where
    DB: Db,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Scalar<DB>,
{
    fn backend(&self) -> &'static str {
        DB::BACKEND
    }

    fn local_changes(&self) -> u64 {
        self.changes.get()
    }

    async fn change_stamp(&self) -> Result<ChangeStamp, StoreError> {
        let mirror: i64 = sqlx::query_scalar("SELECT n FROM mirror_changes WHERE id = 1")
            .fetch_one(&self.mirror)
            .await?;
        let sessions: i64 = sqlx::query_scalar("SELECT n FROM session_changes WHERE id = 1")
            .fetch_one(&self.ops)
            .await?;
        Ok(ChangeStamp { mirror, sessions })
    }
}

/// `(p.space_id = ?) OR (p.space_id = ? AND EXISTS (… label IN (…)))` — the exact scope
/// check both backends' search runs on the page rows it returns (QueryBuilder picks each
/// backend's placeholder syntax).
pub(crate) fn push_scope<DB>(qb: &mut QueryBuilder<DB>, scope: &[&ScopeEntry])
where
    DB: Database,
    String: Scalar<DB>,
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

/// ` AND NOT p.effective_restricted AND (scope)`: the exact check on the joined page row.
pub(crate) fn push_exact_scope<DB>(qb: &mut QueryBuilder<DB>, scope: &[&ScopeEntry])
where
    DB: Database,
    String: Scalar<DB>,
{
    qb.push(" AND NOT p.effective_restricted AND (");
    push_scope(qb, scope);
    qb.push(")");
}
