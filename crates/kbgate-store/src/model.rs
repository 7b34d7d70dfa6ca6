//! Owned, serde-friendly records stored by the mirror and read by the portal.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::blob::BlobRef;

/// A mirrored Confluence space.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceRecord {
    /// Confluence space id.
    pub id: String,
    /// Space key (e.g. `KB`); unique.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Id of the space's home page, when known.
    pub homepage_id: Option<String>,
    /// The space's description as plain text (empty when it has none). Plain text only: the
    /// start page shows it escaped, never as markup.
    pub description: String,
    /// The icon's path as Confluence last reported it (its query names the icon's version):
    /// what a sync compares to download the icon again only when it changed. Set also when
    /// the icon could not be used (a default image, SVG, too large), so it is not fetched again.
    pub icon_path: Option<String>,
    /// The stored icon image, when the space has a custom one kbgate can serve.
    pub icon: Option<SpaceIcon>,
}

/// A space's icon as stored: a raster image (PNG, JPEG, GIF or WebP; never SVG, which could
/// carry script if opened from the portal's origin) in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceIcon {
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`, from the bytes themselves.
    pub media_type: String,
    /// The bytes.
    pub blob: BlobRef,
}

/// One heading of a page, for the table of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heading {
    /// 1 for `h1` … 6 for `h6`.
    pub level: u8,
    /// Plain heading text.
    pub text: String,
    /// The anchor id the rendered HTML gives the heading.
    pub anchor: String,
}

/// A mirrored page with its bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRecord {
    /// Confluence page id.
    pub id: String,
    /// Id of the space the page is in.
    pub space_id: String,
    /// Parent page id; `None` for the top of the tree.
    pub parent_id: Option<String>,
    /// Order among siblings (ascending).
    pub position: i64,
    /// Page title.
    pub title: String,
    /// Confluence version number.
    pub version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last modification time.
    pub updated_at: DateTime<Utc>,
    /// Labels (drive audiences with label filters).
    pub labels: Vec<String>,
    /// A read restriction sits on the page itself.
    pub restricted: bool,
    /// A read restriction sits on the page or any ancestor: never served, never searched.
    pub effective_restricted: bool,
    /// Confluence storage format (XHTML) as fetched.
    pub body_storage: String,
    /// Prepared HTML from the renderer.
    pub body_html: String,
    /// Plain text for full-text search.
    pub body_text: String,
    /// Headings, for the table of contents.
    pub headings: Vec<Heading>,
}

/// A page without its bodies: enough for trees, breadcrumbs, links and listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageSummary {
    /// Confluence page id.
    pub id: String,
    /// Id of the space the page is in.
    pub space_id: String,
    /// Parent page id; `None` for the top of the tree.
    pub parent_id: Option<String>,
    /// Order among siblings (ascending).
    pub position: i64,
    /// Page title.
    pub title: String,
    /// Confluence version number.
    pub version: i64,
    /// Last modification time.
    pub updated_at: DateTime<Utc>,
    /// Labels.
    pub labels: Vec<String>,
    /// A read restriction sits on the page or any ancestor.
    pub effective_restricted: bool,
}

impl From<&PageRecord> for PageSummary {
    fn from(p: &PageRecord) -> Self {
        PageSummary {
            id: p.id.clone(),
            space_id: p.space_id.clone(),
            parent_id: p.parent_id.clone(),
            position: p.position,
            title: p.title.clone(),
            version: p.version,
            updated_at: p.updated_at,
            labels: p.labels.clone(),
            effective_restricted: p.effective_restricted,
        }
    }
}

/// Metadata of an attachment, and where its bytes are when they were downloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRecord {
    /// Confluence attachment id.
    pub id: String,
    /// The page the attachment belongs to (must already be in the mirror).
    pub page_id: String,
    /// File name.
    pub title: String,
    /// MIME type as Confluence reports it.
    pub media_type: String,
    /// Size in bytes as Confluence reports it.
    pub file_size: i64,
    /// Confluence version number.
    pub version: i64,
    /// Last modification time.
    pub updated_at: DateTime<Utc>,
    /// The stored bytes; `None` when over the size cap or not downloaded.
    pub blob: Option<BlobRef>,
}

/// The database's change counters ([`crate::Backend::change_stamp`]). Each only grows; equal
/// stamps mean nothing a portal caches has changed in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChangeStamp {
    /// Bumped by every space sync commit and space removal.
    pub mirror: i64,
    /// Bumped by every session revocation or removal.
    pub sessions: i64,
}

/// Where the sync of one space stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SyncState {
    /// Space key.
    pub space_key: String,
    /// Space id.
    pub space_id: String,
    /// Latest modification time seen; the next incremental sync starts from here.
    pub watermark: Option<DateTime<Utc>>,
    /// End of the last completed full sync.
    pub last_full_sync: Option<DateTime<Utc>>,
    /// End of the last completed sync of any kind.
    pub last_sync: Option<DateTime<Utc>>,
}

/// The outcome of [`crate::MirrorWrite::acquire_sync_lease`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncLease {
    /// The caller holds the lease (taken, or renewed) until the time asked.
    Acquired,
    /// Another holder's lease has not expired.
    HeldBy {
        /// Who holds it (as they named themselves).
        holder: String,
        /// When it expires unless renewed.
        expires_at: DateTime<Utc>,
    },
}

/// The last sync of a space that went to the end (committed, whether or not it changed
/// anything), as [`crate::MirrorWrite::record_synced`] keeps it: several instances skip a space
/// one of them synced within their interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSync {
    /// Who synced it (the lease holder's name).
    pub holder: String,
    /// When that sync's round started (on the holder's clock).
    pub synced_at: DateTime<Utc>,
}

/// Who holds a space's sync lease now ([`crate::MirrorWrite::sync_lease_holder`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// The holder, as it named itself.
    pub holder: String,
    /// When the lease expires unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// How a space sync treats what it does not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMode {
    /// Every page and attachment still present must be written (or kept) in the
    /// transaction; the rest of the space is removed at commit.
    Full,
    /// Only the writes and deletions made are applied.
    Incremental,
}

/// What a commit removed (full sync sweep) and kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCommitStats {
    /// Pages removed by the full-sync sweep.
    pub swept_pages: u64,
    /// Attachments removed by the full-sync sweep.
    pub swept_attachments: u64,
}

/// What a reader keys its caches of one space on ([`crate::MirrorRead::space_stamps`]).
///
/// `content` moves with every commit that changed anything readers read of the space;
/// `shape` only with those that changed what a tree or index shows or who may read what:
/// a page added, removed, moved, reordered, retitled, relabelled, restricted or
/// unrestricted, or the space record. So between two commits with the same `shape`, only
/// bodies, versions, dates and attachments differ: a page's previous view names no page,
/// title or label the new one would hide (ARCHITECTURE.md, S1 and S2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceStamp {
    /// The space's key.
    pub space_key: String,
    /// Generation of the last commit that changed anything readers read.
    pub content: i64,
    /// Generation of the last commit that changed the space's shape (`shape <= content`).
    pub shape: i64,
}

/// Counts over the whole mirror, for status output and health checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorStats {
    /// Mirrored spaces.
    pub spaces: u64,
    /// Mirrored pages (including restricted ones).
    pub pages: u64,
    /// Pages with `effective_restricted`.
    pub restricted_pages: u64,
    /// Attachment records.
    pub attachments: u64,
    /// Attachments whose bytes are stored.
    pub stored_blobs: u64,
}

/// One entry of a search scope: a space, optionally narrowed to labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeEntry {
    /// Space id.
    pub space_id: String,
    /// `None`: the whole space; `Some(labels)`: only pages with any of these labels
    /// (`Some(vec![])` therefore matches nothing).
    pub labels: Option<Vec<String>>,
}

/// One search result.
///
/// `excerpt` is plain text (not HTML) in which each match is wrapped in
/// [`crate::MATCH_START`] … [`crate::MATCH_END`] (`\u{E000}` … `\u{E001}`). To display it,
/// HTML-escape the excerpt, then replace the markers by `<mark>` and `</mark>`. The store
/// strips these private-use characters from stored titles and body text, so only the
/// store's own markers can appear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// Page id.
    pub page_id: String,
    /// Space id.
    pub space_id: String,
    /// Page title (no markers).
    pub title: String,
    /// Excerpt with match markers.
    pub excerpt: String,
    /// Relevance; higher is better. Only comparable within one result list.
    pub rank: f64,
}

/// A page of search results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Hits, best first.
    pub hits: Vec<SearchHit>,
    /// More hits exist after this page (`offset + limit`).
    pub has_more: bool,
    /// How many pages in the scope match, checked against the scope like the hits are.
    pub total: MatchCount,
}

/// How many pages a search matched (what "N results" says): exact up to 100 matches, a lower
/// bound beyond. Counted over the newest matches the search plan reads anyway (the crate
/// docs, "Search"), at most 101 of them, each checked against the scope like a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchCount {
    /// Exactly this many.
    Exact(u64),
    /// At least this many (more matches than are counted exactly).
    AtLeast(u64),
}

impl Default for MatchCount {
    fn default() -> Self {
        MatchCount::Exact(0)
    }
}

/// A signed-in session. `id_hash` is a hash of the cookie value, never the value itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SessionRecord {
    /// Hash of the session id (the id itself is never stored).
    pub id_hash: String,
    /// The verified email the session belongs to.
    pub email: String,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last request time (idle expiry).
    pub last_seen_at: DateTime<Utc>,
    /// Absolute expiry.
    pub expires_at: DateTime<Utc>,
    /// Ended by sign-out or an operator.
    pub revoked: bool,
}

/// A single-use code (back-channel hand-over, magic link, access-request verification).
/// `code_hash` is a hash of the code, never the code itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct CodeRecord {
    /// Hash of the code.
    pub code_hash: String,
    /// What the code is for (e.g. `handover`, `magic-link`); `consume_code` checks it.
    pub purpose: String,
    /// The email the code signs in or verifies.
    pub email: String,
    /// Local path to go to after use.
    pub return_to: Option<String>,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// An admin console session. Opened from a reader session (`reader_hash`) and active only
/// while that session is: signing out of the portal ends it. Ids are stored hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AdminSessionRecord {
    /// Hash of the admin cookie's value.
    pub id_hash: String,
    /// Hash of the reader session it was opened from.
    pub reader_hash: String,
    /// The admin's email (normalised).
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// "View as": the email the admin browses the portal as, if any.
    pub view_as: Option<String>,
}

/// Which audit events to read: all bounds optional, newest first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Exactly this actor (case-insensitive).
    pub actor: Option<String>,
    /// Actions starting with this prefix (`admin.` for every admin action).
    pub action: Option<String>,
    pub limit: u32,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When it happened.
    pub ts: DateTime<Utc>,
    /// Who did it (email, `system`, `operator`).
    pub actor: String,
    /// What was done (e.g. `session.create`).
    pub action: String,
    /// Structured detail (never secrets).
    pub detail: serde_json::Value,
}

/// A known person (for native-mode provisioning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct PersonRecord {
    /// Normalised email (primary key).
    pub email: String,
    /// Normalised domain of the email.
    pub domain: String,
    /// Where kbgate learnt of the person (`import`, `access-request`, `discovery`).
    pub source: String,
    /// First seen.
    pub created_at: DateTime<Utc>,
}

/// One action of a provisioning run, recorded before and after it is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Stable id of the action (idempotency key).
    pub action_id: String,
    /// Kind of action (e.g. `invite`, `grant-space-read`).
    pub kind: String,
    /// What it acts on (email, account id, space key …).
    pub target: String,
    /// `planned`, `started`, `done`, `failed` … (owned by the provisioning crate).
    pub state: String,
    /// Structured detail.
    pub detail: serde_json::Value,
    /// First recorded.
    pub created_at: DateTime<Utc>,
    /// Last state change.
    pub updated_at: DateTime<Utc>,
}

/// Something in Confluence kbgate created and therefore may remove (group, permission, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnedResource {
    /// Kind of resource (e.g. `group`, `space-permission`).
    pub kind: String,
    /// Its identifier in Confluence.
    pub target: String,
    /// Structured detail.
    pub detail: serde_json::Value,
    /// When kbgate created it.
    pub created_at: DateTime<Utc>,
}

/// The latest native-mode plan, kept by whoever computed it (`kbgate plan`, `kbgate apply`, the
/// service's reconcile loop) so that the admin console shows it without calling Confluence.
/// The plan itself is the provisioning crate's JSON; the store does not read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativePlanRecord {
    /// When it was computed (on the computing process's clock).
    pub computed_at: DateTime<Utc>,
    /// Confluence requests computing it took (reads only).
    pub calls: u64,
    /// The plan, as `kbgate plan --output json` prints it.
    pub plan: serde_json::Value,
}

/// A reader's answer to "Was this helpful?" on a page. One per person and page: a new vote
/// by the same `voter` replaces the old one ([`crate::Insights::put_feedback`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    /// The page voted on.
    pub page_id: String,
    /// Who voted, as a stable key that is not the email (the portal hashes the normalised
    /// email), so one vote per person holds also when emails are not kept.
    pub voter: String,
    /// The page's space key at vote time (for the export).
    pub space_key: String,
    /// The page's title at vote time (for the export).
    pub page_title: String,
    /// The voter's email domain (lower case).
    pub domain: String,
    /// The voter's email, only when the operator chose to keep emails.
    pub email: Option<String>,
    /// Yes (`true`) or no.
    pub helpful: bool,
    /// The optional comment.
    pub comment: Option<String>,
    /// When the vote was cast.
    pub at: DateTime<Utc>,
}

/// Which feedback to list ([`crate::Insights::feedback`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedbackFilter {
    /// Only votes cast at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only votes cast before this time (exclusive), so periods chain without overlap.
    pub until: Option<DateTime<Utc>>,
    /// Only votes of this email domain (exact, lower case).
    pub domain: Option<String>,
}

/// A search a reader ran, for the admin's insights (e.g. queries that found nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchEvent {
    /// When it ran.
    pub at: DateTime<Utc>,
    /// The reader's email domain (lower case).
    pub domain: String,
    /// The reader's email, only when the operator chose to keep emails.
    pub email: Option<String>,
    /// The query as typed (trimmed).
    pub query: String,
    /// How many results the reader was shown a count of.
    pub results: u64,
}

/// A page view, for per-domain insights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageViewEvent {
    /// When the page was served.
    pub at: DateTime<Utc>,
    /// The page.
    pub page_id: String,
    /// Its space.
    pub space_key: String,
    /// The reader's email domain (lower case).
    pub domain: String,
    /// A stable key for the reader that is not the email (as [`FeedbackRecord::voter`]).
    pub reader: String,
}

/// Which period and domain an insights summary covers ([`crate::Insights::insights_summary`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsightsQuery {
    /// From this time on (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub until: Option<DateTime<Utc>>,
    /// Only this email domain (exact, lower case).
    pub domain: Option<String>,
    /// How many top pages and zero-result queries to list.
    pub top: u32,
}

/// What readers did over a period: the numbers of an insights page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsightsSummary {
    /// Page views.
    pub page_views: u64,
    /// Distinct readers who viewed a page.
    pub unique_readers: u64,
    /// `(page id, space key, views)`, most viewed first.
    pub top_pages: Vec<(String, String, u64)>,
    /// Searches run.
    pub searches: u64,
    /// Searches that found nothing.
    pub zero_result_searches: u64,
    /// `(query, times)` of searches that found nothing, most frequent first.
    pub zero_result_queries: Vec<(String, u64)>,
    /// "Was this helpful?" votes cast in the period: yes.
    pub helpful_yes: u64,
    /// … and no.
    pub helpful_no: u64,
}

/// One email domain's numbers over a period: a row of the insights page's per-domain
/// table ([`crate::Insights::insights_by_domain`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainInsights {
    /// The email domain (lower case).
    pub domain: String,
    /// Page views.
    pub page_views: u64,
    /// Distinct readers who viewed a page.
    pub unique_readers: u64,
    /// Searches run.
    pub searches: u64,
    /// Searches that found nothing.
    pub zero_result_searches: u64,
    /// "Was this helpful?" votes: yes.
    pub helpful_yes: u64,
    /// … and no.
    pub helpful_no: u64,
}
