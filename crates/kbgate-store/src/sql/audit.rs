//! [`Audit`] for both backends: on SQLite in the operational database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Executor};

use super::rows::{AuditRow, records};
use super::{Db, Scalar, SqlStore};
use crate::StoreError;
use crate::model::{AuditEvent, AuditFilter};
use crate::store::Audit;

#[async_trait]
impl<DB> Audit for SqlStore<DB>
where
    DB: Db,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> &'r str: ColumnIndex<DB::Row>,
    String: Scalar<DB>,
    i64: Scalar<DB>,
    DateTime<Utc>: Scalar<DB>,
{
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
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT ts, actor, action, detail FROM audit_log ORDER BY seq DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.ops)
        .await?;
        records(rows)
    }

    async fn query_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        // Absent bounds are bound as values that match everything, so the statement is fixed
        // (four-digit years: SQLite compares the stored times as text).
        let since = f.since.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let until = f
            .until
            .or_else(|| "9999-12-31T00:00:00Z".parse().ok())
            .unwrap_or_else(Utc::now);
        let actor = f.actor.as_deref().unwrap_or("").to_lowercase();
        // A prefix match without LIKE, whose wildcards `_` and `%` appear in action names.
        let action = f.action.as_deref().unwrap_or("");
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT ts, actor, action, detail FROM audit_log \
             WHERE ts >= $1 AND ts < $2 AND ($3 = '' OR lower(actor) = $3) \
             AND substr(action, 1, length($4)) = $4 \
             ORDER BY seq DESC LIMIT $5",
        )
        .bind(since)
        .bind(until)
        .bind(actor)
        .bind(action.to_owned())
        .bind(i64::from(f.limit))
        .fetch_all(&self.ops)
        .await?;
        records(rows)
    }
}
