//! [`Insights`] for both backends: on SQLite in the operational database. Times are stored
//! as milliseconds since the Unix epoch, so `since` compares numbers on both backends.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Executor, QueryBuilder};

use super::{BATCH_ROWS, Db, RowsAffected, Scalar, SqlStore};
use crate::StoreError;
use crate::model::{
    DomainInsights, FeedbackFilter, FeedbackRecord, InsightsQuery, InsightsSummary, PageViewEvent,
    SearchEvent,
};
use crate::store::Insights;

fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64, col: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("column {col}: {ms} is not a time")))
}

/// The row of `domain` in a per-domain table, made empty on first use.
fn row(by: &mut BTreeMap<String, DomainInsights>, domain: String) -> &mut DomainInsights {
    by.entry(domain.clone()).or_insert_with(|| DomainInsights {
        domain,
        ..Default::default()
    })
}

#[derive(sqlx::FromRow)]
struct FeedbackRow {
    page_id: String,
    voter: String,
    space_key: String,
    page_title: String,
    domain: String,
    email: Option<String>,
    helpful: bool,
    comment: Option<String>,
    at_ms: i64,
}

impl TryFrom<FeedbackRow> for FeedbackRecord {
    type Error = StoreError;
    fn try_from(r: FeedbackRow) -> Result<Self, StoreError> {
        Ok(FeedbackRecord {
            at: from_ms(r.at_ms, "page_feedback.at_ms")?,
            page_id: r.page_id,
            voter: r.voter,
            space_key: r.space_key,
            page_title: r.page_title,
            domain: r.domain,
            email: r.email,
            helpful: r.helpful,
            comment: r.comment,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SearchEventRow {
    at_ms: i64,
    domain: String,
    email: Option<String>,
    query: String,
    results: i64,
}

impl TryFrom<SearchEventRow> for SearchEvent {
    type Error = StoreError;
    fn try_from(r: SearchEventRow) -> Result<Self, StoreError> {
        Ok(SearchEvent {
            at: from_ms(r.at_ms, "search_events.at_ms")?,
            domain: r.domain,
            email: r.email,
            query: r.query,
            results: u64::try_from(r.results).map_err(|_| {
                StoreError::Corrupt(format!("column search_events.results: {}", r.results))
            })?,
        })
    }
}

#[async_trait]
impl<DB> Insights for SqlStore<DB>
where
    DB: Db,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> &'r str: ColumnIndex<DB::Row>,
    String: Scalar<DB>,
    Option<String>: Scalar<DB>,
    i64: Scalar<DB>,
    Option<i64>: Scalar<DB>,
    bool: Scalar<DB>,
    for<'r> FeedbackRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> SearchEventRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> (i64, i64): sqlx::FromRow<'r, DB::Row>,
    for<'r> (Option<i64>, Option<i64>): sqlx::FromRow<'r, DB::Row>,
    for<'r> (i64, Option<i64>): sqlx::FromRow<'r, DB::Row>,
    for<'r> (String, i64, Option<i64>): sqlx::FromRow<'r, DB::Row>,
    for<'r> (String, Option<i64>, Option<i64>): sqlx::FromRow<'r, DB::Row>,
    for<'r> (String, String, i64): sqlx::FromRow<'r, DB::Row>,
    for<'r> (String, i64): sqlx::FromRow<'r, DB::Row>,
{
    async fn put_feedback(&self, v: &FeedbackRecord) -> Result<bool, StoreError> {
        // Update first, so the answer says whether a vote was replaced; an insert racing
        // with another one for the same person and page still ends as one row (the conflict
        // clause), its answer then merely says "new".
        let replaced = sqlx::query(
            "UPDATE page_feedback SET space_key = $3, page_title = $4, domain = $5, \
             email = $6, helpful = $7, comment = $8, at_ms = $9 \
             WHERE page_id = $1 AND voter = $2",
        )
        .bind(&v.page_id)
        .bind(&v.voter)
        .bind(&v.space_key)
        .bind(&v.page_title)
        .bind(&v.domain)
        .bind(&v.email)
        .bind(v.helpful)
        .bind(&v.comment)
        .bind(to_ms(v.at))
        .execute(&self.ops)
        .await?
        .rows_affected();
        if replaced > 0 {
            return Ok(true);
        }
        sqlx::query(
            "INSERT INTO page_feedback (page_id, voter, space_key, page_title, domain, email, \
             helpful, comment, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (page_id, voter) DO UPDATE SET space_key = excluded.space_key, \
             page_title = excluded.page_title, domain = excluded.domain, \
             email = excluded.email, helpful = excluded.helpful, comment = excluded.comment, \
             at_ms = excluded.at_ms",
        )
        .bind(&v.page_id)
        .bind(&v.voter)
        .bind(&v.space_key)
        .bind(&v.page_title)
        .bind(&v.domain)
        .bind(&v.email)
        .bind(v.helpful)
        .bind(&v.comment)
        .bind(to_ms(v.at))
        .execute(&self.ops)
        .await?;
        Ok(false)
    }

    async fn feedback(&self, f: &FeedbackFilter) -> Result<Vec<FeedbackRecord>, StoreError> {
        let rows: Vec<FeedbackRow> = sqlx::query_as(
            "SELECT page_id, voter, space_key, page_title, domain, email, helpful, comment, \
             at_ms FROM page_feedback \
             WHERE ($1 IS NULL OR at_ms >= $1) AND ($2 IS NULL OR domain = $2) \
             AND ($3 IS NULL OR at_ms < $3) \
             ORDER BY at_ms, page_id, voter",
        )
        .bind(f.since.map(to_ms))
        .bind(f.domain.clone())
        .bind(f.until.map(to_ms))
        .fetch_all(&self.ops)
        .await?;
        rows.into_iter().map(FeedbackRecord::try_from).collect()
    }

    async fn record_searches(&self, events: &[SearchEvent]) -> Result<(), StoreError> {
        for chunk in events.chunks(BATCH_ROWS) {
            let mut qb = QueryBuilder::<DB>::new(
                "INSERT INTO search_events (at_ms, domain, email, query, results) ",
            );
            qb.push_values(chunk, |mut b, e| {
                b.push_bind(to_ms(e.at))
                    .push_bind(e.domain.clone())
                    .push_bind(e.email.clone())
                    .push_bind(e.query.clone())
                    .push_bind(i64::try_from(e.results).unwrap_or(i64::MAX));
            });
            qb.build().execute(&self.ops).await?;
        }
        Ok(())
    }

    async fn search_events(
        &self,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<SearchEvent>, StoreError> {
        let rows: Vec<SearchEventRow> = sqlx::query_as(
            "SELECT at_ms, domain, email, query, results FROM search_events \
             WHERE ($1 IS NULL OR at_ms >= $1) ORDER BY seq DESC LIMIT $2",
        )
        .bind(since.map(to_ms))
        .bind(i64::from(limit))
        .fetch_all(&self.ops)
        .await?;
        rows.into_iter().map(SearchEvent::try_from).collect()
    }

    async fn record_page_views(&self, views: &[PageViewEvent]) -> Result<(), StoreError> {
        for chunk in views.chunks(BATCH_ROWS) {
            let mut qb = QueryBuilder::<DB>::new(
                "INSERT INTO page_views (at_ms, page_id, space_key, domain, reader) ",
            );
            qb.push_values(chunk, |mut b, v| {
                b.push_bind(to_ms(v.at))
                    .push_bind(v.page_id.clone())
                    .push_bind(v.space_key.clone())
                    .push_bind(v.domain.clone())
                    .push_bind(v.reader.clone());
            });
            qb.build().execute(&self.ops).await?;
        }
        Ok(())
    }

    async fn insights_summary(&self, q: &InsightsQuery) -> Result<InsightsSummary, StoreError> {
        // $1 since, $2 until, $3 domain: the same period filter on every table.
        const WHERE: &str = "($1 IS NULL OR at_ms >= $1) AND ($2 IS NULL OR at_ms < $2) \
             AND ($3 IS NULL OR domain = $3)";
        let since = q.since.map(to_ms);
        let until = q.until.map(to_ms);
        let domain = q.domain.clone();
        let top = i64::from(q.top);
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let (views, readers): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), count(DISTINCT reader) FROM page_views WHERE {WHERE}"
        )))
        .bind(since)
        .bind(until)
        .bind(domain.clone())
        .fetch_one(&self.ops)
        .await?;
        let top_pages: Vec<(String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT page_id, space_key, count(*) AS n FROM page_views WHERE {WHERE} \
             GROUP BY page_id, space_key ORDER BY n DESC, page_id LIMIT $4"
        )))
        .bind(since)
        .bind(until)
        .bind(domain.clone())
        .bind(top)
        .fetch_all(&self.ops)
        .await?;
        let (searches, zero_searches): (i64, Option<i64>) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT count(*), sum(CASE WHEN results = 0 THEN 1 ELSE 0 END) \
                 FROM search_events WHERE {WHERE}"
            )))
            .bind(since)
            .bind(until)
            .bind(domain.clone())
            .fetch_one(&self.ops)
            .await?;
        let zero: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT query, count(*) AS n FROM search_events WHERE {WHERE} AND results = 0 \
             GROUP BY query ORDER BY n DESC, query LIMIT $4"
        )))
        .bind(since)
        .bind(until)
        .bind(domain.clone())
        .bind(top)
        .fetch_all(&self.ops)
        .await?;
        let (yes, no): (Option<i64>, Option<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT sum(CASE WHEN helpful THEN 1 ELSE 0 END), \
             sum(CASE WHEN helpful THEN 0 ELSE 1 END) FROM page_feedback WHERE {WHERE}"
        )))
        .bind(since)
        .bind(until)
        .bind(domain)
        .fetch_one(&self.ops)
        .await?;
        Ok(InsightsSummary {
            page_views: count(views),
            unique_readers: count(readers),
            top_pages: top_pages
                .into_iter()
                .map(|(p, s, n)| (p, s, count(n)))
                .collect(),
            searches: count(searches),
            zero_result_searches: count(zero_searches.unwrap_or(0)),
            zero_result_queries: zero.into_iter().map(|(q, n)| (q, count(n))).collect(),
            helpful_yes: count(yes.unwrap_or(0)),
            helpful_no: count(no.unwrap_or(0)),
        })
    }

    async fn insights_by_domain(
        &self,
        q: &InsightsQuery,
    ) -> Result<Vec<DomainInsights>, StoreError> {
        // $1 since, $2 until, $3 domain, as in `insights_summary`; one grouped query per
        // table, merged by domain (a domain may have searched without viewing, or voted).
        const WHERE: &str = "($1 IS NULL OR at_ms >= $1) AND ($2 IS NULL OR at_ms < $2) \
             AND ($3 IS NULL OR domain = $3)";
        let since = q.since.map(to_ms);
        let until = q.until.map(to_ms);
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let views: Vec<(String, i64, Option<i64>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT domain, count(*), count(DISTINCT reader) FROM page_views \
                 WHERE {WHERE} GROUP BY domain"
        )))
        .bind(since)
        .bind(until)
        .bind(q.domain.clone())
        .fetch_all(&self.ops)
        .await?;
        let searches: Vec<(String, i64, Option<i64>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT domain, count(*), sum(CASE WHEN results = 0 THEN 1 ELSE 0 END) \
                 FROM search_events WHERE {WHERE} GROUP BY domain"
            )))
            .bind(since)
            .bind(until)
            .bind(q.domain.clone())
            .fetch_all(&self.ops)
            .await?;
        let votes: Vec<(String, Option<i64>, Option<i64>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT domain, sum(CASE WHEN helpful THEN 1 ELSE 0 END), \
                 sum(CASE WHEN helpful THEN 0 ELSE 1 END) FROM page_feedback \
                 WHERE {WHERE} GROUP BY domain"
            )))
            .bind(since)
            .bind(until)
            .bind(q.domain.clone())
            .fetch_all(&self.ops)
            .await?;
        let mut by: BTreeMap<String, DomainInsights> = BTreeMap::new();
        for (d, n, readers) in views {
            let r = row(&mut by, d);
            r.page_views = count(n);
            r.unique_readers = count(readers.unwrap_or(0));
        }
        for (d, n, zero) in searches {
            let r = row(&mut by, d);
            r.searches = count(n);
            r.zero_result_searches = count(zero.unwrap_or(0));
        }
        for (d, yes, no) in votes {
            let r = row(&mut by, d);
            r.helpful_yes = count(yes.unwrap_or(0));
            r.helpful_no = count(no.unwrap_or(0));
        }
        Ok(by.into_values().collect())
    }

    async fn purge_insights(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut n = 0;
        for table in ["page_views", "search_events"] {
            n += sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE at_ms < $1"
            )))
            .bind(to_ms(before))
            .execute(&self.ops)
            .await?
            .rows_affected();
        }
        Ok(n)
    }
}
