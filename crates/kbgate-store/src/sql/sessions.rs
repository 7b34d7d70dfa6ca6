//! [`Sessions`] for both backends: on SQLite in the operational database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Encode, Executor, Type};

use super::{Db, RowsAffected, Scalar, SqlStore};
use crate::StoreError;
use crate::model::*;
use crate::store::Sessions;

/// The columns of a session.
const SESSION_COLS: &str = "id_hash, email, created_at, last_seen_at, expires_at, revoked";

/// Ends the sessions not yet revoked that match `condition` (on `$1` = `arg`) and counts
/// the change. Returns how many.
async fn revoke_where<DB>(
    store: &SqlStore<DB>,
    condition: &str,
    arg: &str,
) -> Result<u64, StoreError>
where
    DB: Db,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> &'r str: Encode<'r, DB> + Type<DB>,
{
    let sql = format!("UPDATE sessions SET revoked = true WHERE NOT revoked AND {condition}");
    let n = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(arg)
        .execute(&store.ops)
        .await?
        .rows_affected();
    store.changes.bump();
    Ok(n)
}

/// Refuses what is not a bare domain (revocations by domain compare email suffixes).
fn domain_of(domain: &str) -> Result<String, StoreError> {
    let domain = domain.trim().to_ascii_lowercase();
    if domain.is_empty() || domain.contains('@') {
        return Err(StoreError::Invalid(format!("not a domain: {domain:?}")));
    }
    Ok(domain)
}

#[async_trait]
impl<DB> Sessions for SqlStore<DB>
where
    DB: Db,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> &'r str: ColumnIndex<DB::Row> + Encode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    String: Scalar<DB>,
    Option<String>: Scalar<DB>,
    i64: Scalar<DB>,
    bool: Scalar<DB>,
    DateTime<Utc>: Scalar<DB>,
{
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
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions \
             WHERE id_hash = $1 AND NOT revoked AND expires_at > $2"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.ops)
            .await?)
    }

    async fn ended_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions \
             WHERE id_hash = $1 AND revoked AND expires_at > $2"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.ops)
            .await?)
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
        Ok(revoke_where(self, "id_hash = $1", id_hash).await? > 0)
    }

    async fn revoke_sessions_by_email(&self, email: &str) -> Result<u64, StoreError> {
        revoke_where(self, "lower(email) = lower($1)", email).await
    }

    async fn revoke_sessions_by_domain(&self, domain: &str) -> Result<u64, StoreError> {
        let domain = domain_of(domain)?;
        // Suffix comparison, not LIKE: `_` and `%` must not act as wildcards.
        revoke_where(
            self,
            "lower(substr(email, length(email) - length($1))) = '@' || $1",
            &domain,
        )
        .await
    }

    async fn revoke_sessions_under_domain(&self, domain: &str) -> Result<u64, StoreError> {
        let domain = domain_of(domain)?;
        // Suffix comparison, not LIKE: `_` and `%` must not act as wildcards. A suffix
        // `.domain` lies inside the email's domain (it holds no `@`), so it names a
        // subdomain, never a look-alike (`evilacme.com`).
        revoke_where(
            self,
            "(lower(substr(email, length(email) - length($1))) = '@' || $1 \
             OR lower(substr(email, length(email) - length($1))) = '.' || $1)",
            &domain,
        )
        .await
    }

    async fn active_sessions(&self, now: DateTime<Utc>) -> Result<Vec<SessionRecord>, StoreError> {
        let sql =
            format!("SELECT {SESSION_COLS} FROM sessions WHERE NOT revoked AND expires_at > $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .fetch_all(&self.ops)
            .await?)
    }

    async fn sessions_per_domain(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        // The domain is what follows the last `@`: `rtrim(email, <every character but @>)`
        // keeps the email up to and including its last `@` (SQLite and PostgreSQL alike), so
        // `acme.com@other.org` counts for other.org.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT domain, COUNT(*) AS n FROM (\
               SELECT lower(substr(email, length(rtrim(email, replace(email, '@', ''))) + 1)) \
               AS domain FROM sessions WHERE NOT revoked AND expires_at > $1) AS live \
             GROUP BY domain ORDER BY n DESC, domain",
        )
        .bind(now)
        .fetch_all(&self.ops)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(domain, n)| (domain, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    async fn create_admin_session(&self, s: &AdminSessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_sessions (id_hash, reader_hash, email, created_at, expires_at, \
             revoked, view_as) VALUES ($1, $2, $3, $4, $5, false, $6)",
        )
        .bind(&s.id_hash)
        .bind(&s.reader_hash)
        .bind(&s.email)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(s.view_as.clone())
        .execute(&self.ops)
        .await?;
        Ok(())
    }

    async fn active_admin_session(
        &self,
        id_hash: &str,
        reader_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AdminSessionRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT a.id_hash, a.reader_hash, a.email, a.created_at, a.expires_at, a.view_as \
             FROM admin_sessions a JOIN sessions s ON s.id_hash = a.reader_hash \
             WHERE a.id_hash = $1 AND a.reader_hash = $2 AND NOT a.revoked \
             AND a.expires_at > $3 AND NOT s.revoked AND s.expires_at > $3",
        )
        .bind(id_hash)
        .bind(reader_hash)
        .bind(now)
        .fetch_optional(&self.ops)
        .await?)
    }

    async fn revoke_admin_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE admin_sessions SET revoked = true WHERE NOT revoked AND id_hash = $1",
        )
        .bind(id_hash)
        .execute(&self.ops)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn set_admin_view_as(
        &self,
        id_hash: &str,
        view_as: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE admin_sessions SET view_as = $1 WHERE id_hash = $2")
            .bind(view_as.map(str::to_owned))
            .bind(id_hash)
            .execute(&self.ops)
            .await?;
        Ok(())
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
        Ok(sqlx::query_as(
            "UPDATE one_time_codes SET used = true \
             WHERE code_hash = $1 AND purpose = $2 AND NOT used AND expires_at > $3 \
             RETURNING code_hash, purpose, email, return_to, created_at, expires_at",
        )
        .bind(code_hash)
        .bind(purpose)
        .bind(now)
        .fetch_optional(&self.ops)
        .await?)
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut n = 0;
        for sql in [
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM admin_sessions WHERE expires_at <= $1",
            "DELETE FROM used_jti WHERE expires_at <= $1",
            "DELETE FROM one_time_codes WHERE expires_at <= $1",
        ] {
            n += sqlx::query(sql)
                .bind(now)
                .execute(&self.ops)
                .await?
                .rows_affected();
        }
        self.changes.bump();
        Ok(n)
    }
}
