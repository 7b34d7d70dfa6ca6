//! Rows as both backends return them, and their records. Records without encoded columns
//! derive `sqlx::FromRow` themselves (`SpaceRecord`, `SessionRecord`, …); these rows hold
//! the JSON text and the blob columns that become typed fields.

use crate::StoreError;
use crate::blob::BlobRef;
use crate::model::{
    AttachmentRecord, AuditEvent, Heading, JournalEntry, OwnedResource, PageRecord, PageSummary,
    SpaceIcon, SpaceRecord,
};

/// The columns of a page summary, prefixed `p.`.
pub(crate) const SUMMARY_COLS: &str = "p.id, p.space_id, p.parent_id, p.position, p.title, \
     p.version, p.updated_at, p.labels, p.effective_restricted";

/// The columns of a whole page (a summary, then the rest), prefixed `p.`.
pub(crate) const PAGE_COLS: &str = "p.id, p.space_id, p.parent_id, p.position, p.title, \
     p.version, p.updated_at, p.labels, p.effective_restricted, p.created_at, p.restricted, \
     p.body_storage, p.body_html, p.body_text, p.headings";

/// The columns of a space.
pub(crate) const SPACE_COLS: &str = "id, key, name, homepage_id, description, icon_path, \
     icon_type, icon_sha256, icon_size";

/// The columns of an attachment, prefixed `a.`.
pub(crate) const ATTACHMENT_COLS: &str = "a.id, a.page_id, a.title, a.media_type, a.file_size, \
     a.version, a.updated_at, a.blob_sha256, a.blob_size";

fn json_list<T: serde::de::DeserializeOwned>(s: &str, col: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

/// [`SUMMARY_COLS`].
#[derive(sqlx::FromRow)]
pub(crate) struct SummaryRow {
    id: String,
    space_id: String,
    parent_id: Option<String>,
    position: i64,
    title: String,
    version: i64,
    updated_at: chrono::DateTime<chrono::Utc>,
    labels: String,
    effective_restricted: bool,
}

impl TryFrom<SummaryRow> for PageSummary {
    type Error = StoreError;
    fn try_from(r: SummaryRow) -> Result<Self, StoreError> {
        Ok(PageSummary {
            labels: json_list(&r.labels, "labels")?,
            id: r.id,
            space_id: r.space_id,
            parent_id: r.parent_id,
            position: r.position,
            title: r.title,
            version: r.version,
            updated_at: r.updated_at,
            effective_restricted: r.effective_restricted,
        })
    }
}

/// [`PAGE_COLS`].
#[derive(sqlx::FromRow)]
pub(crate) struct PageRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    created_at: chrono::DateTime<chrono::Utc>,
    restricted: bool,
    body_storage: String,
    body_html: String,
    body_text: String,
    headings: String,
}

impl TryFrom<PageRow> for PageRecord {
    type Error = StoreError;
    fn try_from(r: PageRow) -> Result<Self, StoreError> {
        let headings: Vec<Heading> = json_list(&r.headings, "headings")?;
        let s = PageSummary::try_from(r.summary)?;
        Ok(PageRecord {
            id: s.id,
            space_id: s.space_id,
            parent_id: s.parent_id,
            position: s.position,
            title: s.title,
            version: s.version,
            created_at: r.created_at,
            updated_at: s.updated_at,
            labels: s.labels,
            restricted: r.restricted,
            effective_restricted: s.effective_restricted,
            body_storage: r.body_storage,
            body_html: r.body_html,
            body_text: r.body_text,
            headings,
        })
    }
}

/// [`ATTACHMENT_COLS`].
#[derive(sqlx::FromRow)]
pub(crate) struct AttachmentRow {
    id: String,
    page_id: String,
    title: String,
    media_type: String,
    file_size: i64,
    version: i64,
    updated_at: chrono::DateTime<chrono::Utc>,
    blob_sha256: Option<String>,
    blob_size: Option<i64>,
}

impl TryFrom<AttachmentRow> for AttachmentRecord {
    type Error = StoreError;
    fn try_from(r: AttachmentRow) -> Result<Self, StoreError> {
        let blob = match (r.blob_sha256, r.blob_size) {
            (Some(sha), Some(size)) => Some(BlobRef::parse(&sha, size)?),
            _ => None,
        };
        Ok(AttachmentRecord {
            id: r.id,
            page_id: r.page_id,
            title: r.title,
            media_type: r.media_type,
            file_size: r.file_size,
            version: r.version,
            updated_at: r.updated_at,
            blob,
        })
    }
}

/// `ts, actor, action, detail` of `audit_log`.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    ts: chrono::DateTime<chrono::Utc>,
    actor: String,
    action: String,
    detail: String,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        Ok(AuditEvent {
            ts: r.ts,
            actor: r.actor,
            action: r.action,
            detail: serde_json::from_str(&r.detail)?,
        })
    }
}

/// A row of `provision_journal`.
#[derive(sqlx::FromRow)]
pub(crate) struct JournalRow {
    action_id: String,
    kind: String,
    target: String,
    state: String,
    detail: String,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<JournalRow> for JournalEntry {
    type Error = StoreError;
    fn try_from(r: JournalRow) -> Result<Self, StoreError> {
        Ok(JournalEntry {
            action_id: r.action_id,
            kind: r.kind,
            target: r.target,
            state: r.state,
            detail: serde_json::from_str(&r.detail)?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A row of `provision_owned`.
#[derive(sqlx::FromRow)]
pub(crate) struct OwnedRow {
    kind: String,
    target: String,
    detail: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<OwnedRow> for OwnedResource {
    type Error = StoreError;
    fn try_from(r: OwnedRow) -> Result<Self, StoreError> {
        Ok(OwnedResource {
            kind: r.kind,
            target: r.target,
            detail: serde_json::from_str(&r.detail)?,
            created_at: r.created_at,
        })
    }
}

/// Converts every row into its record.
pub(crate) fn records<R, T>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// Converts a row, if any, into its record.
pub(crate) fn record<R, T>(row: Option<R>) -> Result<Option<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    row.map(T::try_from).transpose()
}

/// [`SPACE_COLS`].
#[derive(sqlx::FromRow)]
pub(crate) struct SpaceRow {
    id: String,
    key: String,
    name: String,
    homepage_id: Option<String>,
    description: String,
    icon_path: Option<String>,
    icon_type: Option<String>,
    icon_sha256: Option<String>,
    icon_size: Option<i64>,
}

impl TryFrom<SpaceRow> for SpaceRecord {
    type Error = StoreError;
    fn try_from(r: SpaceRow) -> Result<Self, StoreError> {
        let icon = match (r.icon_type, r.icon_sha256, r.icon_size) {
            (Some(media_type), Some(sha), Some(size)) => Some(SpaceIcon {
                media_type,
                blob: BlobRef::parse(&sha, size)?,
            }),
            _ => None,
        };
        Ok(SpaceRecord {
            id: r.id,
            key: r.key,
            name: r.name,
            homepage_id: r.homepage_id,
            description: r.description,
            icon_path: r.icon_path,
            icon,
        })
    }
}
