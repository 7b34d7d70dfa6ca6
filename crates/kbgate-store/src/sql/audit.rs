//! [`Audit`] for both backends: on SQLite in the operational database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Executor};

use super::rows::{AuditRow, records};
use super::{Db, Scalar, SqlStore};
use crate::StoreError;
use crate::model::AuditEvent;
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
}
