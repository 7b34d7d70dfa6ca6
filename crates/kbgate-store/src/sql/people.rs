//! [`People`] for both backends: on SQLite in the operational database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Encode, Executor, Type};

use super::rows::{JournalRow, OwnedRow, record, records};
use super::{Db, RowsAffected, Scalar, SqlStore};
use crate::StoreError;
use crate::model::{JournalEntry, NativePlanRecord, OwnedResource, PersonRecord};
use crate::store::People;

/// The columns of a journal entry.
const JOURNAL_COLS: &str = "action_id, kind, target, state, detail, created_at, updated_at";

#[async_trait]
impl<DB> People for SqlStore<DB>
where
    DB: Db,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> &'r str: ColumnIndex<DB::Row> + Encode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    String: Scalar<DB>,
    Option<String>: Scalar<DB>,
    DateTime<Utc>: Scalar<DB>,
    i64: Scalar<DB>,
{
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
        Ok(
            sqlx::query_as("SELECT email, domain, source, created_at FROM people ORDER BY email")
                .fetch_all(&self.ops)
                .await?,
        )
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
        let sql = format!("SELECT {JOURNAL_COLS} FROM provision_journal WHERE action_id = $1");
        let row: Option<JournalRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(action_id)
            .fetch_optional(&self.ops)
            .await?;
        record(row)
    }

    async fn journal_list(&self, state: Option<&str>) -> Result<Vec<JournalEntry>, StoreError> {
        let sql = format!(
            "SELECT {JOURNAL_COLS} FROM provision_journal WHERE ($1 IS NULL OR state = $1) \
             ORDER BY created_at, action_id"
        );
        let rows: Vec<JournalRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(state.map(str::to_owned))
            .fetch_all(&self.ops)
            .await?;
        records(rows)
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
        let rows: Vec<OwnedRow> = sqlx::query_as(
            "SELECT kind, target, detail, created_at FROM provision_owned \
             WHERE ($1 IS NULL OR kind = $1) ORDER BY kind, target",
        )
        .bind(kind.map(str::to_owned))
        .fetch_all(&self.ops)
        .await?;
        records(rows)
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

    async fn put_native_plan(&self, p: &NativePlanRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO native_plan (id, computed_at, calls, plan) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET computed_at = excluded.computed_at, \
             calls = excluded.calls, plan = excluded.plan \
             WHERE native_plan.computed_at <= excluded.computed_at",
        )
        .bind(p.computed_at.timestamp_millis())
        .bind(i64::try_from(p.calls).unwrap_or(i64::MAX))
        .bind(serde_json::to_string(&p.plan)?)
        .execute(&self.ops)
        .await?;
        Ok(())
    }

    async fn native_plan(&self) -> Result<Option<NativePlanRecord>, StoreError> {
        let row: Option<(i64, i64, String)> =
            sqlx::query_as("SELECT computed_at, calls, plan FROM native_plan WHERE id = 1")
                .fetch_optional(&self.ops)
                .await?;
        row.map(|(ms, calls, plan)| {
            let computed_at = DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| {
                StoreError::Corrupt(format!("native plan: time {ms} out of range"))
            })?;
            Ok(NativePlanRecord {
                computed_at,
                calls: u64::try_from(calls).unwrap_or(0),
                plan: serde_json::from_str(&plan)
                    .map_err(|e| StoreError::Corrupt(format!("native plan: {e}")))?,
            })
        })
        .transpose()
    }
}
