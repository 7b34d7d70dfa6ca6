//! What the sync needs from Confluence, as a narrow trait.
//!
//! The engine is written against [`Source`] rather than the HTTP client directly so that
//! the call plan (which listing gives what, and how many calls it costs) is visible in one
//! place; [`super::confluence`] implements it over `confluence_client::Client`.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

/// A space as listed by Confluence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpace {
    pub id: String,
    pub key: String,
    pub name: String,
    pub homepage_id: Option<String>,
    /// The description as plain text (empty: none).
    pub description: String,
    /// The icon as listed; `None` when the listing named none.
    pub icon: Option<SourceIcon>,
}

/// A space's icon as the listing names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIcon {
    /// Where a browser loads it; its query names the icon's version, so a changed path is a
    /// changed icon.
    pub path: String,
    /// The API path that leads to its bytes; `None` for Confluence's stock images.
    pub download: Option<String>,
}

/// A page with its storage-format body (from the v2 listing, 250 per call).
#[derive(Debug, Clone)]
pub struct PageBody {
    pub id: String,
    pub title: String,
    pub parent_id: Option<String>,
    pub position: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub body_storage: String,
}

/// What the structure scan tells about a page without its body: enough to detect
/// deletions, moves, label and restriction changes, and new versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMeta {
    pub id: String,
    pub title: String,
    pub version: i64,
    /// The nearest ancestor that is a page (folders and other containers in between are
    /// not pages of the mirror), from the `ancestors` expansion.
    pub parent_id: Option<String>,
    /// Containers between the page and `parent_id` (folders, whiteboards, databases…), nearest
    /// first: a read restriction on any of them hides the page (they inherit like pages).
    pub containers: Vec<String>,
    pub labels: Vec<String>,
    /// A read restriction on the page itself (users or groups). Inherited restrictions
    /// are derived from the hierarchy by the store.
    pub restricted: bool,
}

/// One item of the structure scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanItem {
    /// A current page.
    Page(PageMeta),
    /// A container that is not a page (a folder): whether it has a read restriction of its
    /// own. (What is above it is in each page's `containers` and `parent_id`.)
    Container { id: String, restricted: bool },
}

/// An attachment's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentMeta {
    pub id: String,
    pub page_id: String,
    pub title: String,
    pub media_type: String,
    pub file_size: i64,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// One hit of a `lastmodified` change query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Page,
    Attachment,
    Other,
}

/// A content item modified since the watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: String,
    pub kind: ChangeKind,
}

/// Errors of a source, with a message fit for an operator (never a secret).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
    /// Whether the failure is about this item only (e.g. a page deleted between two calls).
    pub not_found: bool,
}

impl SourceError {
    /// An error about one missing item.
    pub fn not_found(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
            not_found: true,
        }
    }

    /// Any other error.
    pub fn other(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
            not_found: false,
        }
    }
}

/// A stream of results from a source.
pub type SourceStream<'a, T> = BoxStream<'a, Result<T, SourceError>>;

/// The reads the sync makes. Each method documents the calls it costs.
#[async_trait]
pub trait Source: Send + Sync {
    /// Spaces by key, with their descriptions and icons: ⌈keys/250⌉ calls.
    async fn spaces(&self, keys: &[String]) -> Result<Vec<SourceSpace>, SourceError>;
    /// Every current page of a space with its body: ⌈pages/250⌉ calls.
    fn page_bodies<'a>(&'a self, space_id: &'a str) -> SourceStream<'a, PageBody>;
    /// One page with its body: 1 call. `Ok(None)` when it no longer exists.
    async fn page(&self, id: &str) -> Result<Option<PageBody>, SourceError>;
    /// The structure scan: every page's version, parent, labels and own read restriction,
    /// without bodies, and every folder's read restriction: ⌈(pages + folders)/200⌉ calls.
    fn page_metas<'a>(&'a self, space_key: &'a str) -> SourceStream<'a, ScanItem>;
    /// Every attachment of a space: ⌈attachments/200⌉ calls.
    fn attachment_metas<'a>(&'a self, space_key: &'a str) -> SourceStream<'a, AttachmentMeta>;
    /// Content modified at or after `since` (minute precision): ⌈changes/limit⌉ calls,
    /// one when nothing changed.
    fn changed_since<'a>(
        &'a self,
        space_key: &'a str,
        since: DateTime<Utc>,
    ) -> SourceStream<'a, Change>;
    /// An attachment's bytes, streamed: 1 call to Confluence (the REST download) plus the
    /// request to the media host it redirects to (no Confluence credentials there).
    async fn download(
        &self,
        attachment: &AttachmentMeta,
    ) -> Result<SourceStream<'static, Bytes>, SourceError>;
    /// A space icon's bytes from its [`SourceIcon::download`] link, streamed: 1 call to
    /// Confluence plus the request to the media host it redirects to.
    async fn download_icon(&self, link: &str) -> Result<SourceStream<'static, Bytes>, SourceError>;
    /// Calls made so far through this source (for the summary and the call budget).
    fn calls(&self) -> u64;
    /// Display names of these Atlassian accounts, by account id (accounts Confluence does
    /// not know are absent): ⌈ids/250⌉ calls. A source without people answers none.
    async fn user_names(
        &self,
        account_ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>, SourceError> {
        let _ = account_ids;
        Ok(std::collections::HashMap::new())
    }
}
