//! The store's role traits, and [`Store`], the sum of them.
//!
//! Each caller names the role it uses (the portal reads the mirror and keeps sessions; the
//! sync engine writes the mirror; provisioning keeps people and its journal), so a trait
//! stays small enough to read and a new backend can be written role by role. `Store` is
//! every role at once, implemented for anything that has them all: `Arc<dyn Store>` is what
//! is passed around. Bring the roles into scope with `use kbgate_store::prelude::*`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StoreError;
use crate::blob::{BlobRef, BlobStore};
use crate::model::*;

/// Everything kbgate persists: every role at once. Object-safe; use it as
/// `Arc<dyn Store>`. Implemented for every type that has all the roles.
pub trait Store: Backend + MirrorRead + MirrorWrite + Sessions + People + Audit + Insights {}

impl<T> Store for T where
    T: Backend + MirrorRead + MirrorWrite + Sessions + People + Audit + Insights
{
}

/// The store as a whole: which backend it is, and the change counters a long-running
/// reader polls to know when its caches are stale.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Which backend this is (`"sqlite"` or `"postgres"`), for logs and status.
    fn backend(&self) -> &'static str;

    /// How many change-stamp writes (sync commits, space removals, session revocations and
    /// purges) this handle has committed: a free, in-process hint that
    /// [`Backend::change_stamp`] moved. Writes of other processes do not show here.
    fn local_changes(&self) -> u64;

    /// The change counters as committed by any process (one small read per database). See
    /// [`crate::CHANGE_POLL`] for how the portal uses it.
    async fn change_stamp(&self) -> Result<ChangeStamp, StoreError>;
}

/// Reading the mirror, as the portal does: spaces, pages, the tree, attachments (and their
/// bytes), search, counts.
#[async_trait]
pub trait MirrorRead: Send + Sync {
    /// Where attachment bytes live (the blobs an [`AttachmentRecord`] refers to).
    fn blobs(&self) -> &dyn BlobStore;

    /// All mirrored spaces, by key.
    async fn list_spaces(&self) -> Result<Vec<SpaceRecord>, StoreError>;
    /// A space by its key.
    async fn space_by_key(&self, key: &str) -> Result<Option<SpaceRecord>, StoreError>;
    /// A space by its id.
    async fn space(&self, id: &str) -> Result<Option<SpaceRecord>, StoreError>;
    /// A page with its bodies.
    async fn page(&self, id: &str) -> Result<Option<PageRecord>, StoreError>;
    /// A page without bodies.
    async fn page_summary(&self, id: &str) -> Result<Option<PageSummary>, StoreError>;
    /// Every page of a space without bodies, ordered by `parent_id` (roots first), then
    /// `position`, `title`, `id` — group by parent to build the tree.
    async fn page_summaries(&self, space_id: &str) -> Result<Vec<PageSummary>, StoreError>;
    /// The pages among `ids` that exist (any order; unknown ids are skipped).
    async fn page_summaries_by_ids(&self, ids: &[String]) -> Result<Vec<PageSummary>, StoreError>;
    /// The page of space `space_key` titled exactly `title` (how Confluence links name
    /// pages).
    async fn page_by_title(
        &self,
        space_key: &str,
        title: &str,
    ) -> Result<Option<PageSummary>, StoreError>;
    /// Direct children, by `position`, `title`, `id`.
    async fn children(&self, page_id: &str) -> Result<Vec<PageSummary>, StoreError>;
    /// Ancestors, root first, the page itself excluded. Stops at a missing parent.
    async fn ancestors(&self, page_id: &str) -> Result<Vec<PageSummary>, StoreError>;
    /// Pages of a space having `label`, by title.
    async fn pages_with_label(
        &self,
        space_id: &str,
        label: &str,
    ) -> Result<Vec<PageSummary>, StoreError>;
    /// Attachments of a page, by file name.
    async fn attachments(&self, page_id: &str) -> Result<Vec<AttachmentRecord>, StoreError>;
    /// An attachment by id.
    async fn attachment(&self, id: &str) -> Result<Option<AttachmentRecord>, StoreError>;
    /// An attachment of a page by file name (how storage format references attachments).
    async fn attachment_by_name(
        &self,
        page_id: &str,
        file_name: &str,
    ) -> Result<Option<AttachmentRecord>, StoreError>;
    /// Counts over the mirror.
    async fn mirror_stats(&self) -> Result<MirrorStats, StoreError>;

    /// Per space key, the generation of the last commit or removal that changed what readers
    /// read of the space (pages, their restrictions and labels, attachments, the space
    /// record). A sync that found nothing new commits without moving it, so a reader that
    /// caches per space by this stamp keeps its caches across such commits, and a commit to
    /// one space leaves the others' alone. Spaces never committed are absent (read as 0).
    /// Each also carries the space's *shape* stamp, moved only by changes that trees and
    /// indexes show (see [`SpaceStamp`]).
    async fn space_stamps(&self) -> Result<Vec<SpaceStamp>, StoreError>;

    /// Full-text search over titles (weighted most), attachment file names and body text,
    /// restricted to `scope` and never returning `effective_restricted` pages. The query
    /// text is split into words that must all match (stemmed, no prefixes); query
    /// syntax is never interpreted. An empty scope, or a query without words, gives no
    /// results. Excerpts carry [`crate::MATCH_START`]/[`crate::MATCH_END`] markers.
    ///
    /// Hits come best first. Small match sets are ranked exactly; a query matching many
    /// pages in the scope ranks a bounded, deterministic candidate set (title matches and
    /// the newest matches) and its list ends with that set — see the crate docs, "Search".
    async fn search(
        &self,
        query: &str,
        scope: &[ScopeEntry],
        limit: u32,
        offset: u32,
    ) -> Result<SearchResults, StoreError>;
}

/// Writing the mirror, as the sync engine does: per-space sync transactions under a lease
/// and a generation, space removal, and what a sync reads to decide what to write.
#[async_trait]
pub trait MirrorWrite: Send + Sync {
    /// Starts the atomic sync of one space: upserts `space` and opens a transaction.
    /// Nothing is visible to readers until [`SpaceSync::commit`]; dropping the returned
    /// value rolls everything back. The commit is unconditional (it moves the space's
    /// generation whatever it was); a sync that read the mirror or Confluence first uses
    /// [`MirrorWrite::begin_space_sync_at`] instead, under the space's sync lease
    /// ([`MirrorWrite::acquire_sync_lease`]). Open the transaction only once everything to write
    /// is at hand: on SQLite it holds the one write lock of the mirror until it ends.
    async fn begin_space_sync(
        &self,
        space: &SpaceRecord,
        mode: SyncMode,
    ) -> Result<Box<dyn SpaceSync>, StoreError>;

    /// Like [`MirrorWrite::begin_space_sync`], but the commit succeeds only if the space's
    /// committed generation ([`MirrorWrite::sync_generation`]) is still `expected`: a sync reads
    /// the generation before it reads Confluence and the mirror, and a newer commit by any
    /// process since then makes its commit fail with [`StoreError::Stale`] (rolled back,
    /// nothing written). Writes can never go back in time.
    async fn begin_space_sync_at(
        &self,
        space: &SpaceRecord,
        mode: SyncMode,
        expected_generation: i64,
    ) -> Result<Box<dyn SpaceSync>, StoreError>;

    /// The committed sync generation of a space, by key: 0 before its first commit, then one
    /// more with every sync commit or removal of the space.
    async fn sync_generation(&self, space_key: &str) -> Result<i64, StoreError>;

    /// Takes or renews the sync lease of a space for `holder` until `ttl` from now, unless
    /// another holder's lease is still valid. One sync per space at a time across every
    /// process sharing the store; a crashed holder's lease expires. Never waits on the
    /// mirror's write lock (SQLite keeps leases in the operational database).
    async fn acquire_sync_lease(
        &self,
        space_key: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<SyncLease, StoreError>;

    /// Gives the lease up if `holder` holds it. Returns whether it did.
    async fn release_sync_lease(&self, space_key: &str, holder: &str) -> Result<bool, StoreError>;

    /// The unexpired holder of a space's sync lease, if any (what `kbgate doctor` and
    /// tests watch; taking a lease is [`MirrorWrite::acquire_sync_lease`]).
    async fn sync_lease_holder(&self, space_key: &str) -> Result<Option<LeaseHolder>, StoreError>;

    /// Records that `holder` synced the space to the end in a round that started at
    /// `synced_at` (its commit went through, changed or not). A record never goes back in
    /// time: an older `synced_at` than the one kept is ignored. Other processes' background
    /// rounds read it ([`MirrorWrite::last_synced`]) to skip a space synced within their
    /// interval, so N instances cost one instance's Confluence calls.
    async fn record_synced(
        &self,
        space_key: &str,
        holder: &str,
        synced_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The last sync of a space that went to the end, by any process ([`MirrorWrite::record_synced`]).
    async fn last_synced(&self, space_key: &str) -> Result<Option<LastSync>, StoreError>;

    /// Removes a space and everything mirrored from it (e.g. no audience names it any more).
    /// Returns whether it existed.
    async fn delete_space(&self, space_id: &str) -> Result<bool, StoreError>;

    /// `(page id, version)` of every page of a space: the cheap listing incremental sync
    /// compares against.
    async fn page_versions(&self, space_id: &str) -> Result<Vec<(String, i64)>, StoreError>;
    /// `(attachment id, version)` of every attachment of a space.
    async fn attachment_versions(&self, space_id: &str) -> Result<Vec<(String, i64)>, StoreError>;
    /// `(attachment id, blob)` of every attachment of a space whose bytes were mirrored: what
    /// a sync checks against the blob store ([`crate::BlobStore::missing`]) so that bytes
    /// gone from it are downloaded again.
    async fn attachment_blobs(&self, space_id: &str) -> Result<Vec<(String, BlobRef)>, StoreError>;
    /// Sync state of a space by key.
    async fn sync_state(&self, space_key: &str) -> Result<Option<SyncState>, StoreError>;
    /// The hash of every blob an attachment or a space icon of the mirror refers to (what a
    /// blob sweep keeps).
    async fn blob_hashes(&self) -> Result<Vec<String>, StoreError>;
}

/// Portal sessions, single-use token ids and one-time codes.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Stores a new session.
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// A session by id hash if it exists, is not revoked and `now < expires_at`. Idle
    /// expiry is the caller's rule (compare `last_seen_at`).
    async fn active_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// A session by id hash that was ended (revoked) before its expiry, while `now <
    /// expires_at`: whose it was, so that a person whose session a policy change ended is
    /// told why rather than asked to sign in again.
    async fn ended_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Records activity on a session.
    async fn touch_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Ends one session (sign-out). Returns whether an active one was ended.
    async fn revoke_session(&self, id_hash: &str) -> Result<bool, StoreError>;
    /// Ends every session of an email (exact, normalised). Returns how many.
    async fn revoke_sessions_by_email(&self, email: &str) -> Result<u64, StoreError>;
    /// Ends every session whose email is `@domain` exactly (normalised). Returns how many.
    async fn revoke_sessions_by_domain(&self, domain: &str) -> Result<u64, StoreError>;
    /// Ends every session whose email is at `domain` or at any subdomain of it (`@acme.com`,
    /// `@eu.acme.com`; never `@evilacme.com`). Returns how many.
    async fn revoke_sessions_under_domain(&self, domain: &str) -> Result<u64, StoreError>;
    /// Every session that is not revoked and not expired at `now` (to end those a changed
    /// policy refuses).
    async fn active_sessions(&self, now: DateTime<Utc>) -> Result<Vec<SessionRecord>, StoreError>;
    /// Live sessions (not revoked, not expired at `now`) counted per email domain (the part
    /// after the last `@`, lower-cased), most first then by domain: the per-customer summary
    /// of `kbgate status` without loading every session.
    async fn sessions_per_domain(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, u64)>, StoreError>;

    /// Stores a new admin session.
    async fn create_admin_session(&self, session: &AdminSessionRecord) -> Result<(), StoreError>;
    /// An admin session by id hash, if it is not revoked, `now < expires_at`, it was opened
    /// from the reader session `reader_hash`, and that reader session is still active.
    async fn active_admin_session(
        &self,
        id_hash: &str,
        reader_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AdminSessionRecord>, StoreError>;
    /// Ends an admin session. Returns whether an active one was ended.
    async fn revoke_admin_session(&self, id_hash: &str) -> Result<bool, StoreError>;
    /// Sets (or clears) the email an admin session browses the portal as.
    async fn set_admin_view_as(
        &self,
        id_hash: &str,
        view_as: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Records a token id as used. `true` only the first time for a given `jti` (atomic, also
    /// across processes sharing the database). Keep `expires_at` ≥ the token's expiry.
    async fn consume_jti(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Stores a one-time code (by hash).
    async fn create_code(&self, code: &CodeRecord) -> Result<(), StoreError>;
    /// Uses a code: returns it only if it exists with this `purpose`, is unused and
    /// `now < expires_at`, and marks it used in the same statement (one winner under races).
    async fn consume_code(
        &self,
        code_hash: &str,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<CodeRecord>, StoreError>;
    /// Deletes expired sessions, used token ids and codes. Returns rows removed.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// People known to native-mode provisioning, its journal, and the resources it owns.
#[async_trait]
pub trait People: Send + Sync {
    /// Adds a person; `false` if the email was already known (the record is kept as is).
    async fn add_person(&self, person: &PersonRecord) -> Result<bool, StoreError>;
    /// Removes a person. Returns whether they were known.
    async fn remove_person(&self, email: &str) -> Result<bool, StoreError>;
    /// All known people, by email.
    async fn people(&self) -> Result<Vec<PersonRecord>, StoreError>;
    /// Inserts or updates a journal entry (keyed by `action_id`; `created_at` is kept from
    /// the first write).
    async fn journal_put(&self, entry: &JournalEntry) -> Result<(), StoreError>;
    /// A journal entry.
    async fn journal_get(&self, action_id: &str) -> Result<Option<JournalEntry>, StoreError>;
    /// Journal entries, optionally only in `state`, oldest first.
    async fn journal_list(&self, state: Option<&str>) -> Result<Vec<JournalEntry>, StoreError>;
    /// Records that kbgate created a resource (idempotent).
    async fn record_owned(&self, resource: &OwnedResource) -> Result<(), StoreError>;
    /// Resources kbgate owns, optionally of one kind.
    async fn owned(&self, kind: Option<&str>) -> Result<Vec<OwnedResource>, StoreError>;
    /// Forgets an owned resource (after removing it). Returns whether it was recorded.
    async fn forget_owned(&self, kind: &str, target: &str) -> Result<bool, StoreError>;
    /// Keeps `plan` as the latest native-mode plan, unless the one kept was computed later
    /// (two processes planning at once: the newer plan stays).
    async fn put_native_plan(&self, plan: &NativePlanRecord) -> Result<(), StoreError>;
    /// The latest native-mode plan, if any was computed.
    async fn native_plan(&self) -> Result<Option<NativePlanRecord>, StoreError>;
}

/// The audit log.
#[async_trait]
pub trait Audit: Send + Sync {
    /// Appends to the audit log.
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// The latest `limit` audit events, newest first.
    async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError>;
    /// Audit events matching `filter`, newest first (the admin console's log and export).
    async fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError>;
}

/// What readers tell the admin: "Was this helpful?" votes and the searches they ran. Kept
/// in the operational records (SQLite: the ops database), written off the request path by
/// the portal's event writer.
#[async_trait]
pub trait Insights: Send + Sync {
    /// Stores a vote; a vote of the same `voter` on the same page replaces the previous one
    /// (answer, comment, time, email). Returns whether it replaced one.
    async fn put_feedback(&self, vote: &FeedbackRecord) -> Result<bool, StoreError>;
    /// Votes matching `filter`, oldest first (then by page and voter).
    async fn feedback(&self, filter: &FeedbackFilter) -> Result<Vec<FeedbackRecord>, StoreError>;
    /// Appends searches (one statement per batch).
    async fn record_searches(&self, events: &[SearchEvent]) -> Result<(), StoreError>;
    /// The latest `limit` searches at or after `since`, newest first.
    async fn search_events(
        &self,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<SearchEvent>, StoreError>;
    /// Appends page views (one statement per batch).
    async fn record_page_views(&self, views: &[PageViewEvent]) -> Result<(), StoreError>;
    /// Page views, unique readers, top pages, searches, zero-result queries and votes over
    /// a period, for one domain or all.
    async fn insights_summary(&self, q: &InsightsQuery) -> Result<InsightsSummary, StoreError>;
    /// The same numbers (but the top lists) per email domain over the period of `q` (and
    /// only its domain, when it names one), by domain name; a domain with no event in the
    /// period is absent. `q.top` is ignored.
    async fn insights_by_domain(
        &self,
        q: &InsightsQuery,
    ) -> Result<Vec<DomainInsights>, StoreError>;
    /// Retention: deletes page views and search events older than `before` (votes are kept:
    /// readers wrote them for the admin). Returns rows removed.
    async fn purge_insights(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The open transaction of one space's sync. Dropping it without [`SpaceSync::commit`]
/// rolls back. Pages must be written before their attachments (foreign key).
#[async_trait]
pub trait SpaceSync: Send {
    /// The mode given to `begin_space_sync`.
    fn mode(&self) -> SyncMode;

    /// Inserts or replaces a page (all fields, labels included). The page must belong to
    /// this sync's space.
    async fn upsert_page(&mut self, page: PageRecord) -> Result<(), StoreError>;
    /// Batched [`SpaceSync::upsert_page`] (multi-row statements; much faster).
    async fn upsert_pages(&mut self, pages: Vec<PageRecord>) -> Result<(), StoreError>;
    /// Full mode: marks pages as still present without rewriting them (unchanged versions).
    /// Returns how many of them exist in this space.
    async fn keep_pages(&mut self, ids: &[String]) -> Result<u64, StoreError>;
    /// Removes a page (its labels and attachments too). Returns whether it existed.
    async fn delete_page(&mut self, id: &str) -> Result<bool, StoreError>;
    /// Sets the read-restriction flags of a page without rewriting it.
    async fn set_restrictions(
        &mut self,
        page_id: &str,
        restricted: bool,
        effective_restricted: bool,
    ) -> Result<bool, StoreError>;
    /// Recomputes `effective_restricted` for the whole space from `restricted` and the
    /// hierarchy as written so far: a page is effectively restricted if it or any ancestor
    /// is restricted. Fails closed: a page whose parent is not in the mirror, or that sits
    /// in a parent cycle, counts as restricted. Returns how many pages changed.
    async fn recompute_effective_restricted(&mut self) -> Result<u64, StoreError>;
    /// Inserts or replaces an attachment of a page of this space.
    async fn upsert_attachment(&mut self, attachment: AttachmentRecord) -> Result<(), StoreError>;
    /// Full mode: marks attachments as still present without rewriting them.
    async fn keep_attachments(&mut self, ids: &[String]) -> Result<u64, StoreError>;
    /// Removes an attachment record (its blob stays until garbage collection).
    async fn delete_attachment(&mut self, id: &str) -> Result<bool, StoreError>;
    /// Full mode: removes what was neither written nor kept; then stores `state` and
    /// commits. Readers see the new state from here on.
    async fn commit(self: Box<Self>, state: SyncState) -> Result<SyncCommitStats, StoreError>;
    /// Rolls back explicitly (same as dropping, but reports errors).
    async fn rollback(self: Box<Self>) -> Result<(), StoreError>;
}
