//! [`MirrorRead`] for both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

use super::rows::{
    ATTACHMENT_COLS, AttachmentRow, PAGE_COLS, PageRow, SPACE_COLS, SUMMARY_COLS, SpaceRow,
    SummaryRow, record, records,
};
use super::{BATCH_ROWS, Db, Scalar, SqlStore};
use crate::StoreError;
use crate::blob::BlobStore;
use crate::fts::Terms;
use crate::model::*;
use crate::store::MirrorRead;

#[async_trait]
impl<DB> MirrorRead for SqlStore<DB>
where
    DB: Db,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> &'r str: ColumnIndex<DB::Row> + Encode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    String: Scalar<DB>,
    i64: Scalar<DB>,
    bool: Scalar<DB>,
    DateTime<Utc>: Scalar<DB>,
{
    fn blobs(&self) -> &dyn BlobStore {
        &*self.blobs
    }

    async fn list_spaces(&self) -> Result<Vec<SpaceRecord>, StoreError> {
        let sql = format!("SELECT {SPACE_COLS} FROM spaces ORDER BY key");
        let rows: Vec<SpaceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.mirror)
            .await?;
        records(rows)
    }

    async fn space_stamps(&self) -> Result<Vec<SpaceStamp>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT space_key, content_generation, shape_generation FROM space_generations",
        )
        .fetch_all(&self.mirror)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(space_key, content, shape)| SpaceStamp {
                space_key,
                content,
                shape,
            })
            .collect())
    }

    async fn space_by_key(&self, key: &str) -> Result<Option<SpaceRecord>, StoreError> {
        let sql = format!("SELECT {SPACE_COLS} FROM spaces WHERE key = $1");
        let row: Option<SpaceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .fetch_optional(&self.mirror)
            .await?;
        record(row)
    }

    async fn space(&self, id: &str) -> Result<Option<SpaceRecord>, StoreError> {
        let sql = format!("SELECT {SPACE_COLS} FROM spaces WHERE id = $1");
        let row: Option<SpaceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.mirror)
            .await?;
        record(row)
    }

    async fn page(&self, id: &str) -> Result<Option<PageRecord>, StoreError> {
        let sql = format!("SELECT {PAGE_COLS} FROM pages p WHERE p.id = $1");
        let row: Option<PageRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.mirror)
            .await?;
        record(row)
    }

    async fn page_summary(&self, id: &str) -> Result<Option<PageSummary>, StoreError> {
        let sql = format!("SELECT {SUMMARY_COLS} FROM pages p WHERE p.id = $1");
        let row: Option<SummaryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.mirror)
            .await?;
        record(row)
    }

    async fn page_summaries(&self, space_id: &str) -> Result<Vec<PageSummary>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLS} FROM pages p WHERE p.space_id = $1 \
             ORDER BY p.parent_id NULLS FIRST, p.position, p.title, p.id"
        );
        // Streamed, row by row: a 40,000-page space held as raw rows and as summaries at
        // once doubled the portal's memory peak for nothing.
        let mut rows = sqlx::query_as::<DB, SummaryRow>(sqlx::AssertSqlSafe(sql))
            .bind(space_id)
            .fetch(&self.mirror);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await? {
            out.push(PageSummary::try_from(row)?);
        }
        out.shrink_to_fit();
        Ok(out)
    }

    async fn page_summaries_by_ids(&self, ids: &[String]) -> Result<Vec<PageSummary>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_ROWS * 5) {
            let mut qb = QueryBuilder::<DB>::new(format!(
                "SELECT {SUMMARY_COLS} FROM pages p WHERE p.id IN ("
            ));
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.clone());
            }
            qb.push(")");
            let rows: Vec<SummaryRow> = qb.build_query_as().fetch_all(&self.mirror).await?;
            out.extend(records::<_, PageSummary>(rows)?);
        }
        Ok(out)
    }

    async fn page_by_title(
        &self,
        space_key: &str,
        title: &str,
    ) -> Result<Option<PageSummary>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLS} FROM pages p JOIN spaces s ON s.id = p.space_id \
             WHERE s.key = $1 AND p.title = $2 ORDER BY p.id LIMIT 1"
        );
        let row: Option<SummaryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(space_key)
            .bind(title)
            .fetch_optional(&self.mirror)
            .await?;
        record(row)
    }

    async fn children(&self, page_id: &str) -> Result<Vec<PageSummary>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLS} FROM pages p WHERE p.parent_id = $1 \
             ORDER BY p.position, p.title, p.id"
        );
        let rows: Vec<SummaryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(page_id)
            .fetch_all(&self.mirror)
            .await?;
        records(rows)
    }

    async fn ancestors(&self, page_id: &str) -> Result<Vec<PageSummary>, StoreError> {
        let sql = format!(
            "WITH RECURSIVE anc(id, depth) AS ( \
               SELECT parent_id, 1 FROM pages WHERE id = $1 AND parent_id IS NOT NULL \
               UNION ALL \
               SELECT q.parent_id, anc.depth + 1 FROM pages q JOIN anc ON q.id = anc.id \
               WHERE q.parent_id IS NOT NULL AND anc.depth < 1000) \
             SELECT {SUMMARY_COLS} FROM anc JOIN pages p ON p.id = anc.id \
             ORDER BY anc.depth DESC"
        );
        let rows: Vec<SummaryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(page_id)
            .fetch_all(&self.mirror)
            .await?;
        // A parent cycle would repeat pages; keep the first (closest to the root).
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<PageSummary> = records(rows)?;
        out.retain(|p| p.id != page_id && seen.insert(p.id.clone()));
        Ok(out)
    }

    async fn pages_with_label(
        &self,
        space_id: &str,
        label: &str,
    ) -> Result<Vec<PageSummary>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLS} FROM page_labels l JOIN pages p ON p.id = l.page_id \
             WHERE l.label = $1 AND p.space_id = $2 ORDER BY p.title, p.id"
        );
        let rows: Vec<SummaryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(label)
            .bind(space_id)
            .fetch_all(&self.mirror)
            .await?;
        records(rows)
    }

    async fn attachments(&self, page_id: &str) -> Result<Vec<AttachmentRecord>, StoreError> {
        let sql = format!(
            "SELECT {ATTACHMENT_COLS} FROM attachments a WHERE a.page_id = $1 \
             ORDER BY a.title, a.id"
        );
        let rows: Vec<AttachmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(page_id)
            .fetch_all(&self.mirror)
            .await?;
        records(rows)
    }

    async fn attachment(&self, id: &str) -> Result<Option<AttachmentRecord>, StoreError> {
        let sql = format!("SELECT {ATTACHMENT_COLS} FROM attachments a WHERE a.id = $1");
        let row: Option<AttachmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.mirror)
            .await?;
        record(row)
    }

    async fn attachment_by_name(
        &self,
        page_id: &str,
        file_name: &str,
    ) -> Result<Option<AttachmentRecord>, StoreError> {
        let sql = format!(
            "SELECT {ATTACHMENT_COLS} FROM attachments a WHERE a.page_id = $1 AND a.title = $2 \
             ORDER BY a.version DESC, a.id LIMIT 1"
        );
        let row: Option<AttachmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(page_id)
            .bind(file_name)
            .fetch_optional(&self.mirror)
            .await?;
        record(row)
    }

    async fn mirror_stats(&self) -> Result<MirrorStats, StoreError> {
        let (spaces, pages, restricted, attachments, blobs): (i64, i64, i64, i64, i64) =
            sqlx::query_as(
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
        DB::search(self, &terms, &scope, limit, offset).await
    }
}
