//! The sync engine: one transaction per space, full or incremental.
//!
//! Call plan for a space of N pages and A attachments (see [`Source`] for each cost):
//!
//! - full: ⌈N/250⌉ (bodies, v2 listing) + ⌈N/200⌉ (structure scan: versions, parents,
//!   labels, read restrictions in bulk) + ⌈A/200⌉ (attachment listing) + one download per
//!   new or changed attachment, or per unchanged one whose bytes are gone from the blob store.
//! - incremental: 1 (CQL `lastmodified` since the watermark minus an overlap) + ⌈N/200⌉
//!   (structure scan: the only way Confluence reveals deletions, moves and restriction
//!   changes, none of which touch `lastmodified`) + 1 per changed page + the attachment
//!   listing only when an attachment changed or a mirrored one's bytes are gone from the
//!   blob store (checked in the store, no call), plus its downloads. A space of up to 200
//!   pages with no changes costs 2 calls.
//!
//! Several processes may sync one store (ARCHITECTURE.md, "Several instances"). Each space is synced under its
//! lease in the store (a second sync of a space that is being synced is skipped, with a
//! message naming the holder), reads the space's generation before anything else and
//! commits only if it has not moved (compare-and-set: a slow sync never writes its stale
//! view over a newer commit, e.g. undoing a restriction; such a round writes nothing and
//! the next one starts from the newer commit). Everything, attachment downloads included,
//! is read before the write transaction opens, so a write lock lasts only as long as the
//! writes themselves. A round takes every space's lease before it asks Confluence anything,
//! and a background round ([`SyncOptions::skip_synced_within`]) gives back the lease of a
//! space some process synced within its interval: of N instances, one syncs each space per
//! interval and the others spend no call.
//!
//! Restrictions are never fetched page by page: the structure scan reads them in bulk, and
//! the store derives inherited restrictions from the hierarchy (failing closed).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use kbgate_store::{
    AttachmentRecord, PageRecord, SpaceRecord, SpaceSync, Store, StoreError, SyncLease, SyncMode,
    SyncState,
};

use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use super::source::{
    AttachmentMeta, ChangeKind, PageBody, PageMeta, ScanItem, Source, SourceError, SourceIcon,
};

/// How to sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Force a full pass even when a watermark exists.
    pub full: bool,
    /// Attachments larger than this are listed but their bytes are not mirrored.
    pub max_attachment_bytes: u64,
    /// How far before the watermark the change query starts (clock skew, time zones and
    /// CQL's minute precision). Results in the overlap are compared by version, so a
    /// generous margin costs little.
    pub overlap: Duration,
    /// How long a space's sync lease lasts without renewal (a sync renews it as it goes; a
    /// crashed holder's lease lets another process sync the space after this long).
    pub lease_ttl: Duration,
    /// How long to wait for a space's lease while another sync holds it before skipping
    /// the space (zero: skip at once; the holder's commit is what readers get).
    pub lease_wait: Duration,
    /// Skips a space that some process (this one included) synced to the end less than this
    /// long ago ([`kbgate_store::MirrorWrite::last_synced`]); zero: never skip. Background
    /// rounds pass about their interval, so N instances sharing a store spend one instance's
    /// Confluence calls; an explicit `kbgate sync` passes zero.
    pub skip_synced_within: Duration,
    /// Looks up the display names of people that pages mention (one `users-bulk` call per
    /// page naming people not yet looked up in this space's sync), so the portal can show
    /// them (`[portal] show_staff_names`). Off by default: no calls, and mentions show
    /// neutrally. Pages rendered while it was off get names when they next change or at the
    /// next full pass.
    pub mention_names: bool,
    /// Stops the sync when cancelled (a service shutting down): a space being synced is
    /// dropped before its commit (its transaction rolls back, the previous mirror stays) and
    /// its lease is released, so the next process can sync it at once. Never cancelled by
    /// default.
    pub cancel: CancellationToken,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            full: false,
            max_attachment_bytes: 50 * 1024 * 1024,
            overlap: Duration::from_secs(2 * 3600),
            lease_ttl: Duration::from_secs(5 * 60),
            lease_wait: Duration::ZERO,
            skip_synced_within: Duration::ZERO,
            mention_names: false,
            cancel: CancellationToken::new(),
        }
    }
}

/// Why a sync failed. The previous mirror of the failing space is kept.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("Confluence: {0}")]
    Source(#[from] SourceError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("sync cancelled: nothing of the unfinished space was written")]
    Cancelled,
    #[error(
        "space {0} is not visible to the service account (check the key and that the account can view the space)"
    )]
    SpaceNotFound(String),
}

/// What happened to one space.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SpaceReport {
    pub key: String,
    pub full: bool,
    pub pages_added: u64,
    pub pages_changed: u64,
    pub pages_removed: u64,
    pub attachments_added: u64,
    pub attachments_changed: u64,
    pub attachments_removed: u64,
    /// Attachments listed but not downloaded because of the size cap.
    pub attachments_skipped: u64,
    /// Unchanged attachments downloaded again because their bytes were gone from the blob
    /// store (deleted, or a new blob store).
    pub attachments_repaired: u64,
    /// The space's icon was asked of Confluence (new or changed, or its bytes were gone):
    /// 1 or 0.
    pub icons_downloaded: u64,
    pub calls: u64,
    /// Why nothing of this space was written this round (another sync holds its lease, or
    /// committed while this one ran); the space is tried again next round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Skipped because some process synced the space within
    /// [`SyncOptions::skip_synced_within`] (the usual case for all but one of several
    /// instances).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub synced_elsewhere: bool,
}

impl SpaceReport {
    /// Whether this round wrote nothing for the space (see [`SpaceReport::skipped`]).
    pub fn is_skipped(&self) -> bool {
        self.skipped.is_some()
    }
}

/// What a sync run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SyncReport {
    pub spaces: Vec<SpaceReport>,
    pub calls: u64,
    pub elapsed_ms: u128,
}

impl std::fmt::Display for SyncReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.spaces {
            if let Some(why) = &s.skipped {
                writeln!(f, "{:<12} skipped: {why}", s.key)?;
                continue;
            }
            writeln!(
                f,
                "{:<12} {}  pages +{} ~{} -{}  attachments +{} ~{} -{}{}{}  ({} calls)",
                s.key,
                if s.full { "full       " } else { "incremental" },
                s.pages_added,
                s.pages_changed,
                s.pages_removed,
                s.attachments_added,
                s.attachments_changed,
                s.attachments_removed,
                if s.attachments_skipped > 0 {
                    format!(" ({} over the size cap)", s.attachments_skipped)
                } else {
                    String::new()
                },
                if s.attachments_repaired > 0 {
                    format!(
                        " ({} missing file(s) downloaded again)",
                        s.attachments_repaired
                    )
                } else {
                    String::new()
                },
                s.calls
            )?;
        }
        write!(
            f,
            "{} space(s), {} Confluence calls, {:.1} s",
            self.spaces.len(),
            self.calls,
            self.elapsed_ms as f64 / 1000.0
        )
    }
}

/// Syncs the named spaces, each in its own transaction.
///
/// A space that fails is rolled back and reported as an error after the others were
/// tried, so one bad space does not starve the rest. A space that another sync holds the
/// lease of, that another sync committed while this one ran, or (background rounds, see
/// [`SyncOptions::skip_synced_within`]) that some process synced within the interval is not an
/// error: it is reported as skipped ([`SpaceReport::skipped`], with the reason) and nothing of
/// it is written this round.
///
/// Every space's lease is tried first, and Confluence is asked about the spaces only when
/// at least one is to be synced: a round that another process has covered costs no call.
pub async fn sync_spaces(
    source: &dyn Source,
    store: &dyn Store,
    keys: &[String],
    opts: &SyncOptions,
    progress: &Progress,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let round_start = Utc::now();
    let calls_before = source.calls();
    let holder = lease_holder();
    let mut claims = Claims {
        store,
        holder: &holder,
        held: Vec::new(),
    };
    let result = sync_claimed(
        source,
        &mut claims,
        keys,
        opts,
        progress,
        round_start,
        calls_before,
    )
    .await;
    // Whatever ended the round (cancellation, an error), no lease stays held.
    claims.release_all(progress).await;
    let mut report = result?;
    report.calls = source.calls() - calls_before;
    report.elapsed_ms = started.elapsed().as_millis();
    Ok(report)
}

/// What the first pass of a round decided about one space.
enum Plan {
    /// Its lease is held by this round and nobody synced it lately: sync it.
    Sync,
    /// Another process holds its lease and this round may wait for it.
    Wait,
    /// Nothing to do this round (the report says why).
    Skip(SpaceReport),
    /// The store failed while claiming it.
    Failed(SyncError),
}

/// The leases a round holds, released at its end whatever happens.
struct Claims<'a> {
    store: &'a dyn Store,
    holder: &'a str,
    held: Vec<String>,
}

impl Claims<'_> {
    async fn release(&mut self, key: &str, progress: &Progress) {
        self.held.retain(|k| k != key);
        if let Err(e) = self.store.release_sync_lease(key, self.holder).await {
            progress.warn(&format!(
                "space {key}: could not release the sync lease (it expires by itself): {e}"
            ));
        }
    }

    async fn release_all(&mut self, progress: &Progress) {
        for key in std::mem::take(&mut self.held) {
            self.release(&key, progress).await;
        }
    }
}

/// Why a space need not be synced now: some process synced it to the end less than
/// [`SyncOptions::skip_synced_within`] ago (never, when that is zero).
async fn synced_recently(
    store: &dyn Store,
    key: &str,
    opts: &SyncOptions,
) -> Result<Option<String>, StoreError> {
    if opts.skip_synced_within.is_zero() {
        return Ok(None);
    }
    let Some(last) = store.last_synced(key).await? else {
        return Ok(None);
    };
    let within =
        chrono::Duration::from_std(opts.skip_synced_within).unwrap_or(chrono::Duration::MAX);
    let age = Utc::now() - last.synced_at;
    // A negative age (the other holder's clock is ahead) counts as recent: it synced.
    if age >= within {
        return Ok(None);
    }
    Ok(Some(format!(
        "synced by {} {:.1} s ago, within this round's interval; its commit is served",
        last.holder,
        age.num_milliseconds().max(0) as f64 / 1000.0
    )))
}

fn skip(key: &str, why: String, recent: bool) -> SpaceReport {
    SpaceReport {
        key: key.to_string(),
        skipped: Some(why),
        synced_elsewhere: recent,
        ..SpaceReport::default()
    }
}

fn held_message(other: &str, expires_at: DateTime<Utc>) -> String {
    format!(
        "another sync of this space is running ({other}; its lease runs until {}); \
         skipped, that sync's commit will be served",
        expires_at.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// The first pass: takes the lease of every space it can at once (and gives it back when
/// some process synced the space lately), so the spaces listing below is only asked for
/// when something is to be synced.
async fn claim(
    claims: &mut Claims<'_>,
    key: &str,
    opts: &SyncOptions,
    progress: &Progress,
) -> Plan {
    let store = claims.store;
    match store
        .acquire_sync_lease(key, claims.holder, opts.lease_ttl)
        .await
    {
        Err(e) => Plan::Failed(e.into()),
        Ok(SyncLease::HeldBy { holder, expires_at }) => {
            if opts.lease_wait.is_zero() {
                Plan::Skip(skip(key, held_message(&holder, expires_at), false))
            } else {
                Plan::Wait
            }
        }
        Ok(SyncLease::Acquired) => {
            claims.held.push(key.to_string());
            match synced_recently(store, key, opts).await {
                Ok(None) => Plan::Sync,
                Ok(Some(why)) => {
                    claims.release(key, progress).await;
                    Plan::Skip(skip(key, why, true))
                }
                Err(e) => {
                    claims.release(key, progress).await;
                    Plan::Failed(e.into())
                }
            }
        }
    }
}

async fn sync_claimed(
    source: &dyn Source,
    claims: &mut Claims<'_>,
    keys: &[String],
    opts: &SyncOptions,
    progress: &Progress,
    round_start: DateTime<Utc>,
    calls_before: u64,
) -> Result<SyncReport, SyncError> {
    let mut plans = Vec::with_capacity(keys.len());
    for key in keys {
        if opts.cancel.is_cancelled() {
            return Err(SyncError::Cancelled);
        }
        plans.push(claim(claims, key, opts, progress).await);
    }
    let wanted: Vec<String> = keys
        .iter()
        .zip(&plans)
        .filter(|(_, p)| matches!(p, Plan::Sync | Plan::Wait))
        .map(|(k, _)| k.clone())
        .collect();
    let spaces = if wanted.is_empty() {
        Vec::new()
    } else {
        tokio::select! {
            spaces = source.spaces(&wanted) => spaces?,
            () = opts.cancel.cancelled() => return Err(SyncError::Cancelled),
        }
    };
    let mut report = SyncReport::default();
    let mut first_error = None;
    for (key, plan) in keys.iter().zip(plans) {
        if opts.cancel.is_cancelled() {
            return Err(SyncError::Cancelled);
        }
        let before = source.calls();
        let outcome = match plan {
            Plan::Skip(r) => Ok(r),
            Plan::Failed(e) => Err(e),
            Plan::Sync | Plan::Wait => match spaces.iter().find(|s| &s.key == key) {
                None => {
                    claims.release(key, progress).await;
                    progress.warn(&format!("space {key}: not visible to the service account"));
                    first_error.get_or_insert(SyncError::SpaceNotFound(key.clone()));
                    continue;
                }
                Some(space) => {
                    let record = SpaceRecord {
                        id: space.id.clone(),
                        key: space.key.clone(),
                        name: space.name.clone(),
                        homepage_id: space.homepage_id.clone(),
                        description: space.description.clone(),
                        ..Default::default()
                    };
                    let icon = space.icon.as_ref();
                    sync_space(source, claims, &record, icon, opts, progress, round_start).await
                }
            },
        };
        match outcome {
            Ok(mut space_report) => {
                space_report.calls = source.calls() - before;
                match &space_report.skipped {
                    // Expected with several instances: not a warning.
                    Some(why) => progress.info(&format!("space {key}: skipped: {why}")),
                    None => progress.info(&format!("space {key}: done")),
                }
                report.spaces.push(space_report);
            }
            Err(SyncError::Cancelled) => {
                progress.info(&format!(
                    "space {key}: sync cancelled, previous mirror kept"
                ));
                return Err(SyncError::Cancelled);
            }
            Err(e) => {
                progress.warn(&format!(
                    "space {key}: sync failed, previous mirror kept: {e}"
                ));
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if report.spaces.is_empty() => Err(e),
        Some(e) => {
            report.calls = source.calls() - calls_before;
            progress.warn(&format!("{report}"));
            Err(e)
        }
        None => Ok(report),
    }
}

/// Who this process is, in sync leases (other processes see it in their "skipped" message).
fn lease_holder() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".into());
    format!(
        "kbgate pid {} on {host} (sync {}, started {})",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// The sync lease of one space, held while its sync runs and renewed along the way (a
/// third of its duration after the last renewal, at the sync's natural steps).
struct Lease<'a> {
    store: &'a dyn Store,
    key: String,
    holder: String,
    ttl: Duration,
    renewed: Instant,
}

impl Lease<'_> {
    /// Renews the lease if a third of it has passed. Losing it (another process took it
    /// over after it expired) is not an error: the commit's compare-and-set keeps that
    /// process's newer writes, so at worst this round is wasted.
    async fn keep(&mut self, progress: &Progress) {
        if self.renewed.elapsed() < self.ttl / 3 {
            return;
        }
        self.renewed = Instant::now();
        match self
            .store
            .acquire_sync_lease(&self.key, &self.holder, self.ttl)
            .await
        {
            Ok(SyncLease::Acquired) => {}
            Ok(SyncLease::HeldBy { holder, .. }) => progress.warn(&format!(
                "space {}: the sync lease expired and {holder} took it over; this sync's \
                 commit will only go through if that one commits nothing",
                self.key
            )),
            Err(e) => progress.warn(&format!(
                "space {}: could not renew the sync lease: {e}",
                self.key
            )),
        }
    }
}

/// Syncs one space under its lease, in its turn: renews the lease the first pass took (or
/// waits for it up to [`SyncOptions::lease_wait`]), looks again whether some process synced
/// the space meanwhile, syncs, and records the sync for the other processes' rounds. Skipped,
/// with a message naming the holder, while another process (or task) syncs it.
async fn sync_space(
    source: &dyn Source,
    claims: &mut Claims<'_>,
    space: &SpaceRecord,
    icon: Option<&SourceIcon>,
    opts: &SyncOptions,
    progress: &Progress,
    round_start: DateTime<Utc>,
) -> Result<SpaceReport, SyncError> {
    let store = claims.store;
    let holder = claims.holder.to_string();
    let wait_until = Instant::now() + opts.lease_wait;
    let mut told = false;
    loop {
        // Taken (or renewed: the first pass may have taken it a while ago).
        let (other, expires_at) = match store
            .acquire_sync_lease(&space.key, &holder, opts.lease_ttl)
            .await?
        {
            SyncLease::Acquired => break,
            SyncLease::HeldBy { holder, expires_at } => (holder, expires_at),
        };
        // Lost after it expired, or never held.
        claims.held.retain(|k| k != &space.key);
        let now = Instant::now();
        if now < wait_until {
            if !told {
                progress.info(&format!(
                    "space {}: another sync of this space is running ({other}); waiting up \
                     to {} s for it",
                    space.key,
                    opts.lease_wait.as_secs()
                ));
                told = true;
            }
            tokio::select! {
                () = tokio::time::sleep((wait_until - now).min(Duration::from_millis(250))) => {}
                () = opts.cancel.cancelled() => return Err(SyncError::Cancelled),
            }
            continue;
        }
        return Ok(skip(&space.key, held_message(&other, expires_at), false));
    }
    if !claims.held.contains(&space.key) {
        claims.held.push(space.key.clone());
    }
    // Some process may have synced it since the first pass (or while this one waited).
    if let Some(why) = synced_recently(store, &space.key, opts).await? {
        claims.release(&space.key, progress).await;
        return Ok(skip(&space.key, why, true));
    }
    let mut lease = Lease {
        store,
        key: space.key.clone(),
        holder,
        ttl: opts.lease_ttl,
        renewed: Instant::now(),
    };
    // Cancellation drops the unfinished sync at its current await: its transaction (if open)
    // rolls back on drop, and the lease is released below like after any other end.
    let result = tokio::select! {
        r = sync_space_leased(source, store, space, icon, opts, progress, &mut lease) => r,
        () = opts.cancel.cancelled() => Err(SyncError::Cancelled),
    };
    if result.is_ok() {
        // Before the lease goes: a round that takes it next sees this sync.
        if let Err(e) = store
            .record_synced(&space.key, &lease.holder, round_start)
            .await
        {
            progress.warn(&format!(
                "space {}: synced, but could not record it for other processes (they may \
                 sync it again): {e}",
                space.key
            ));
        }
    }
    claims.release(&space.key, progress).await;
    match result {
        Err(SyncError::Store(StoreError::Stale {
            expected, found, ..
        })) => Ok(skip(
            &space.key,
            format!(
                "another sync committed this space while this one ran (generation {found}, \
                 this one read {expected}); nothing of this round written, the newer commit \
                 stands and the next round starts from it"
            ),
            false,
        )),
        other => other,
    }
}

/// Everything a space sync writes, gathered before its write transaction opens (so the
/// write lock lasts only as long as the commit). Full-mode page bodies are spooled to an
/// anonymous temporary file rather than held in memory.
#[derive(Default)]
struct Writes {
    /// Incremental: deletions, restriction changes and upserts of pages, in order.
    page_ops: Vec<PageOp>,
    /// Full: every page, rendered, in a temporary file (one JSON record per line).
    spool: Option<Spool>,
    attachments: Vec<AttachmentRecord>,
    /// Full: attachments still present, unchanged.
    keep_attachments: Option<Vec<String>>,
    /// Incremental: attachments gone from a complete listing.
    delete_attachments: Vec<String>,
}

enum PageOp {
    Delete(String),
    Restrict(String, bool, bool),
    Upsert(Box<PageRecord>),
}

/// Rendered page records waiting for the write transaction.
struct Spool {
    file: tokio::io::BufWriter<tokio::fs::File>,
    count: u64,
}

impl Spool {
    fn new() -> Result<Spool, SyncError> {
        let file = tempfile::tempfile().map_err(StoreError::Io)?;
        Ok(Spool {
            file: tokio::io::BufWriter::new(tokio::fs::File::from_std(file)),
            count: 0,
        })
    }

    async fn push(&mut self, page: &PageRecord) -> Result<(), SyncError> {
        use tokio::io::AsyncWriteExt;
        let mut line = serde_json::to_vec(page).map_err(StoreError::Json)?;
        line.push(b'\n');
        self.file.write_all(&line).await.map_err(StoreError::Io)?;
        self.count += 1;
        Ok(())
    }

    /// Writes the spooled pages into the transaction, in batches.
    async fn drain(self, tx: &mut dyn SpaceSync) -> Result<(), SyncError> {
        use tokio::io::{AsyncBufReadExt, AsyncSeekExt, AsyncWriteExt};
        let mut file = self.file;
        file.flush().await.map_err(StoreError::Io)?;
        let mut file = file.into_inner();
        file.seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(StoreError::Io)?;
        let mut lines = tokio::io::BufReader::new(file).lines();
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(line) = lines.next_line().await.map_err(StoreError::Io)? {
            batch.push(serde_json::from_str::<PageRecord>(&line).map_err(StoreError::Json)?);
            if batch.len() >= BATCH {
                tx.upsert_pages(std::mem::take(&mut batch)).await?;
            }
        }
        if !batch.is_empty() {
            tx.upsert_pages(batch).await?;
        }
        Ok(())
    }
}

async fn sync_space_leased(
    source: &dyn Source,
    store: &dyn Store,
    space: &SpaceRecord,
    icon: Option<&SourceIcon>,
    opts: &SyncOptions,
    progress: &Progress,
    lease: &mut Lease<'_>,
) -> Result<SpaceReport, SyncError> {
    let now = Utc::now();
    // The generation first: whatever this sync reads below (the mirror, Confluence) is at
    // least as new as it, and its commit goes through only if nothing committed since.
    let generation = store.sync_generation(&space.key).await?;
    // The icon, under the lease (one download across instances) and before any write
    // transaction: downloaded only when its path changed (or its bytes are gone).
    let (space, icon_fetched) =
        super::icon::settle_icon(source, store, space.clone(), icon, progress).await?;
    let space = &space;
    let state = store.sync_state(&space.key).await?;
    let watermark = state
        .as_ref()
        .filter(|s| s.space_id == space.id)
        .and_then(|s| s.watermark);
    let full = opts.full || watermark.is_none();
    let mut report = SpaceReport {
        key: space.key.clone(),
        full,
        icons_downloaded: u64::from(icon_fetched),
        ..SpaceReport::default()
    };

    // What the mirror has now.
    let existing_pages: HashMap<String, i64> =
        store.page_versions(&space.id).await?.into_iter().collect();
    let existing_atts: HashMap<String, i64> = store
        .attachment_versions(&space.id)
        .await?
        .into_iter()
        .collect();
    // Attachments whose bytes are gone from the blob store (someone deleted them, or the
    // store's blobs moved): downloaded again below even though unchanged in Confluence, so
    // the portal never keeps answering "unavailable" for them. One blob-store query per
    // space (PostgreSQL) or a stat per file (a local directory); no Confluence call.
    let missing_atts = missing_attachments(store, &space.id).await?;

    // The structure scan: small records, held in memory (a few hundred bytes a page).
    progress.stage(&format!("{}: reading structure", space.key));
    let mut metas: HashMap<String, PageMeta> = HashMap::new();
    let mut containers: HashMap<String, bool> = HashMap::new();
    let mut scan = source.page_metas(&space.key);
    while let Some(item) = scan.try_next().await? {
        match item {
            ScanItem::Page(m) => {
                metas.insert(m.id.clone(), m);
            }
            ScanItem::Container { id, restricted } => {
                containers.insert(id, restricted);
            }
        }
    }
    drop(scan);
    lease.keep(progress).await;

    let effective = effective_restrictions(&metas, &containers);

    let mode = if full {
        SyncMode::Full
    } else {
        SyncMode::Incremental
    };
    let mut writes = Writes::default();
    let mut names = MentionNames::new(opts.mention_names);

    if full {
        full_pages(
            source,
            &mut names,
            &mut writes,
            space,
            &metas,
            &effective,
            &existing_pages,
            &mut report,
            progress,
            lease,
        )
        .await?;
        let atts: Vec<AttachmentMeta> = source.attachment_metas(&space.key).try_collect().await?;
        sync_attachments(
            source,
            store,
            &mut writes,
            mode,
            atts,
            &metas,
            &existing_atts,
            &missing_atts,
            true,
            opts,
            &mut report,
            progress,
            lease,
        )
        .await?;
    } else {
        let since = watermark.unwrap_or(now) - overlap(opts);
        let changes: Vec<_> = source
            .changed_since(&space.key, since)
            .try_collect()
            .await?;
        // Pages: the structure scan's versions say which changed. Attachments: this query
        // says whether any did (their listing is only read then).
        let any_attachment_change = changes.iter().any(|c| c.kind == ChangeKind::Attachment);
        incremental_pages(
            source,
            &mut names,
            store,
            &mut writes,
            space,
            &metas,
            &effective,
            &existing_pages,
            &mut report,
            progress,
            lease,
        )
        .await?;
        if any_attachment_change || report.pages_removed > 0 || !missing_atts.is_empty() {
            let atts: Vec<AttachmentMeta> =
                source.attachment_metas(&space.key).try_collect().await?;
            sync_attachments(
                source,
                store,
                &mut writes,
                mode,
                atts,
                &metas,
                &existing_atts,
                &missing_atts,
                true,
                opts,
                &mut report,
                progress,
                lease,
            )
            .await?;
        }
    }
    lease.keep(progress).await;

    // Everything is read and downloaded: the write transaction lasts as long as the writes.
    let t = Instant::now();
    let mut tx = store.begin_space_sync_at(space, mode, generation).await?;
    if let Some(spool) = writes.spool.take() {
        spool.drain(&mut *tx).await?;
    }
    for op in std::mem::take(&mut writes.page_ops) {
        match op {
            PageOp::Delete(id) => {
                tx.delete_page(&id).await?;
            }
            PageOp::Restrict(id, restricted, effective) => {
                tx.set_restrictions(&id, restricted, effective).await?;
            }
            PageOp::Upsert(page) => tx.upsert_page(*page).await?,
        }
    }
    for att in std::mem::take(&mut writes.attachments) {
        tx.upsert_attachment(att).await?;
    }
    if let Some(keep) = &writes.keep_attachments {
        tx.keep_attachments(keep).await?;
    }
    for id in &writes.delete_attachments {
        // Not counted when a page removal above took the attachment with it.
        if tx.delete_attachment(id).await? {
            report.attachments_removed += 1;
        }
    }
    let stats = tx
        .commit(SyncState {
            space_key: space.key.clone(),
            space_id: space.id.clone(),
            // The start of this run: anything modified after it is caught next time.
            watermark: Some(now),
            last_full_sync: if full {
                Some(now)
            } else {
                state.as_ref().and_then(|s| s.last_full_sync)
            },
            last_sync: Some(now),
        })
        .await?;
    progress.info(&format!(
        "{}: written and committed in {:.1} s",
        space.key,
        t.elapsed().as_secs_f64()
    ));
    if full {
        report.pages_removed = stats.swept_pages;
        report.attachments_removed = stats.swept_attachments;
    }
    Ok(report)
}

/// Whether each page is read-restricted on itself or any ancestor, from the structure scan.
/// Fails closed: a page whose parent chain leaves the scan (a parent the service account
/// cannot see) or loops counts as restricted, and so does a page below a container (folder,
/// whiteboard…) the scan did not list or that is restricted. Linear in the number of pages
/// (memoised).
fn effective_restrictions(
    metas: &HashMap<String, PageMeta>,
    containers: &HashMap<String, bool>,
) -> HashMap<String, bool> {
    let mut out: HashMap<String, bool> = HashMap::with_capacity(metas.len());
    for start in metas.keys() {
        if out.contains_key(start) {
            continue;
        }
        // Walk up until a known answer, a restriction, the root, or trouble.
        let mut chain: Vec<&str> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut cur = start.as_str();
        let verdict = loop {
            if let Some(v) = out.get(cur) {
                break *v;
            }
            let Some(meta) = metas.get(cur) else {
                break true; // parent outside the scan
            };
            if !seen.insert(cur) {
                break true; // cycle
            }
            chain.push(cur);
            if meta.restricted
                || meta
                    .containers
                    .iter()
                    .any(|c| containers.get(c).copied().unwrap_or(true))
            {
                break true;
            }
            match meta.parent_id.as_deref() {
                None => break false,
                Some(parent) => cur = parent,
            }
        };
        // Every page on the chain below a restricted page is restricted; below an
        // unrestricted root, unrestricted. (A restricted page in the chain stopped the walk.)
        for id in chain {
            out.insert(id.to_string(), verdict);
        }
    }
    out
}

fn overlap(opts: &SyncOptions) -> chrono::Duration {
    chrono::Duration::from_std(opts.overlap).unwrap_or(chrono::Duration::hours(2))
}

/// Display names of the people pages mention, looked up as pages name them and kept for
/// the rest of one space's sync (see [`SyncOptions::mention_names`]).
struct MentionNames {
    enabled: bool,
    /// Account id → display name.
    known: HashMap<String, String>,
    /// Ids already asked for (found or not).
    asked: HashSet<String>,
}

impl MentionNames {
    fn new(enabled: bool) -> MentionNames {
        MentionNames {
            enabled,
            known: HashMap::new(),
            asked: HashSet::new(),
        }
    }

    /// Looks up the people these bodies mention that this sync has not asked about yet:
    /// ⌈new people/250⌉ calls, none when there are none. A failed lookup (e.g. a token
    /// without `read:user:confluence`) is logged and leaves those mentions neutral; the sync
    /// goes on.
    async fn learn(&mut self, source: &dyn Source, bodies: &[PageBody]) {
        if !self.enabled {
            return;
        }
        let mut ids: Vec<String> = Vec::new();
        for b in bodies {
            if !b.body_storage.contains("ri:account-id") {
                continue;
            }
            for id in kbgate_render::mentioned_accounts(&b.body_storage) {
                if !self.asked.contains(&id) && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        if ids.is_empty() {
            return;
        }
        match source.user_names(&ids).await {
            Ok(found) => self.known.extend(found),
            Err(e) => tracing::warn!(
                error = %e,
                "looking up mentioned people failed; their mentions show as \"a team member\""
            ),
        }
        self.asked.extend(ids);
    }

    fn names(&self) -> Option<&HashMap<String, String>> {
        self.enabled.then_some(&self.known)
    }
}

/// Builds the stored record of a page: body from the listing, structure from the scan,
/// HTML prepared by the renderer.
fn page_record(
    space: &SpaceRecord,
    body: PageBody,
    meta: Option<&PageMeta>,
    effective: &HashMap<String, bool>,
    names: &MentionNames,
) -> PageRecord {
    // A page the structure scan did not see (created between the two listings) is
    // treated as restricted until the next sync sees it: fail closed.
    let effective_restricted = effective.get(&body.id).copied().unwrap_or(true);
    let prepared = kbgate_render::prepare(
        &body.body_storage,
        &kbgate_render::PrepareContext {
            space_key: &space.key,
            page_id: &body.id,
            user_names: names.names(),
        },
    );
    let body_html = prepared.encode();
    PageRecord {
        id: body.id,
        space_id: space.id.clone(),
        parent_id: meta.map(|m| m.parent_id.clone()).unwrap_or(body.parent_id),
        position: body.position,
        title: body.title,
        version: body.version,
        created_at: body.created_at,
        updated_at: body.updated_at,
        labels: meta.map(|m| m.labels.clone()).unwrap_or_default(),
        restricted: meta.is_none_or(|m| m.restricted),
        effective_restricted,
        body_storage: body.body_storage,
        body_html,
        body_text: prepared.text,
        headings: prepared
            .headings
            .into_iter()
            .map(|h| kbgate_store::Heading {
                level: h.level,
                text: h.text,
                anchor: h.anchor,
            })
            .collect(),
    }
}

const BATCH: usize = 100;

#[allow(clippy::too_many_arguments)]
async fn full_pages(
    source: &dyn Source,
    names: &mut MentionNames,
    writes: &mut Writes,
    space: &SpaceRecord,
    metas: &HashMap<String, PageMeta>,
    effective: &HashMap<String, bool>,
    existing: &HashMap<String, i64>,
    report: &mut SpaceReport,
    progress: &Progress,
    lease: &mut Lease<'_>,
) -> Result<(), SyncError> {
    let bar = progress.bar(&format!("{}: pages", space.key), metas.len() as u64);
    let mut spool = Spool::new()?;
    let mut stream = source.page_bodies(&space.id);
    // Bodies wait in batches so that the people they mention are looked up together.
    let mut batch: Vec<PageBody> = Vec::with_capacity(BATCH);
    loop {
        let next = stream.try_next().await?;
        let done = next.is_none();
        if let Some(body) = next {
            match existing.get(&body.id) {
                None => report.pages_added += 1,
                Some(v) if *v != body.version => report.pages_changed += 1,
                Some(_) => {}
            }
            batch.push(body);
        }
        if batch.len() >= BATCH || (done && !batch.is_empty()) {
            names.learn(source, &batch).await;
            for body in batch.drain(..) {
                let meta = metas.get(&body.id);
                spool
                    .push(&page_record(space, body, meta, effective, names))
                    .await?;
                bar.inc(1);
            }
            lease.keep(progress).await;
        }
        if done {
            break;
        }
    }
    writes.spool = Some(spool);
    bar.finish();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn incremental_pages(
    source: &dyn Source,
    names: &mut MentionNames,
    store: &dyn Store,
    writes: &mut Writes,
    space: &SpaceRecord,
    metas: &HashMap<String, PageMeta>,
    effective: &HashMap<String, bool>,
    existing: &HashMap<String, i64>,
    report: &mut SpaceReport,
    progress: &Progress,
    lease: &mut Lease<'_>,
) -> Result<(), SyncError> {
    // Deletions: in the mirror, gone from the structure scan.
    for id in existing.keys() {
        if !metas.contains_key(id) {
            writes.page_ops.push(PageOp::Delete(id.clone()));
            report.pages_removed += 1;
        }
    }
    // What the mirror knows of each page's structure, to see moves, label changes and
    // restriction changes (none of which Confluence reports through `lastmodified`).
    let summaries: HashMap<String, (Option<String>, Vec<String>, bool)> = store
        .page_summaries(&space.id)
        .await?
        .into_iter()
        .map(|s| {
            let mut labels = s.labels;
            labels.sort();
            (s.id, (s.parent_id, labels, s.effective_restricted))
        })
        .collect();
    let mut refetch = Vec::new();
    for (id, meta) in metas {
        let eff = effective.get(id).copied().unwrap_or(true);
        let Some((parent, labels, stored_eff)) = summaries.get(id) else {
            refetch.push(id.clone()); // new page
            continue;
        };
        let mut new_labels = meta.labels.clone();
        new_labels.sort();
        if existing.get(id) != Some(&meta.version)
            || *parent != meta.parent_id
            || *labels != new_labels
        {
            refetch.push(id.clone());
        } else if *stored_eff != eff {
            writes
                .page_ops
                .push(PageOp::Restrict(id.clone(), meta.restricted, eff));
        }
    }
    let bar = progress.bar(
        &format!("{}: changed pages", space.key),
        refetch.len() as u64,
    );
    // Bodies are rendered after the loop, so the people they mention are looked up together.
    let mut bodies: Vec<PageBody> = Vec::new();
    for id in refetch {
        let body = match source.page(&id).await {
            Ok(body) => body,
            Err(e) if e.not_found => None,
            Err(e) => return Err(e.into()),
        };
        match body {
            Some(body) => {
                if existing.contains_key(&id) {
                    report.pages_changed += 1;
                } else {
                    report.pages_added += 1;
                }
                bodies.push(body);
            }
            None => {
                // Gone between the scan and now.
                if existing.contains_key(&id) {
                    report.pages_removed += 1;
                }
                writes.page_ops.push(PageOp::Delete(id));
            }
        }
        bar.inc(1);
        lease.keep(progress).await;
    }
    names.learn(source, &bodies).await;
    for body in bodies {
        let meta = metas.get(&body.id);
        writes.page_ops.push(PageOp::Upsert(Box::new(page_record(
            space, body, meta, effective, names,
        ))));
    }
    bar.finish();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn sync_attachments(
    source: &dyn Source,
    store: &dyn Store,
    writes: &mut Writes,
    mode: SyncMode,
    atts: Vec<AttachmentMeta>,
    metas: &HashMap<String, PageMeta>,
    existing: &HashMap<String, i64>,
    missing: &HashSet<String>,
    complete_listing: bool,
    opts: &SyncOptions,
    report: &mut SpaceReport,
    progress: &Progress,
    lease: &mut Lease<'_>,
) -> Result<(), SyncError> {
    let bar = progress.bar("attachments", atts.len() as u64);
    let mut seen = HashSet::new();
    let mut keep = Vec::new();
    for att in atts {
        bar.inc(1);
        // Attachments of pages outside the mirror (not visible, or deleted) are skipped.
        if !metas.contains_key(&att.page_id) {
            continue;
        }
        seen.insert(att.id.clone());
        let unchanged = existing.get(&att.id) == Some(&att.version);
        if unchanged && !missing.contains(&att.id) {
            keep.push(att.id.clone());
            continue;
        }
        if unchanged {
            report.attachments_repaired += 1;
        } else if existing.contains_key(&att.id) {
            report.attachments_changed += 1;
        } else {
            report.attachments_added += 1;
        }
        // Downloaded now, outside any write transaction (blobs are content-addressed: one
        // written here and never committed is swept as garbage later).
        let blob = if att.file_size >= 0 && (att.file_size as u64) <= opts.max_attachment_bytes {
            let stream = source.download(&att).await?;
            match store
                .blobs()
                .write_stream_capped(stream, Some(opts.max_attachment_bytes))
                .await
            {
                Ok(blob) => Some(blob),
                Err(StoreError::BlobTooLarge { .. }) => {
                    report.attachments_skipped += 1;
                    None
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            report.attachments_skipped += 1;
            None
        };
        lease.keep(progress).await;
        writes.attachments.push(AttachmentRecord {
            id: att.id,
            page_id: att.page_id,
            title: att.title,
            media_type: att.media_type,
            file_size: att.file_size,
            version: att.version,
            updated_at: att.updated_at,
            blob,
        });
    }
    if mode == SyncMode::Full {
        writes.keep_attachments = Some(keep);
    } else if complete_listing {
        for id in existing.keys() {
            if !seen.contains(id) {
                writes.delete_attachments.push(id.clone());
            }
        }
    }
    bar.finish();
    Ok(())
}

/// The ids of the attachments of a space whose mirrored bytes are not in the blob store.
async fn missing_attachments(
    store: &dyn Store,
    space_id: &str,
) -> Result<HashSet<String>, SyncError> {
    let with_bytes = store.attachment_blobs(space_id).await?;
    if with_bytes.is_empty() {
        return Ok(HashSet::new());
    }
    let blobs: Vec<_> = with_bytes.iter().map(|(_, b)| b.clone()).collect();
    let gone = store.blobs().missing(&blobs).await?;
    Ok(with_bytes
        .into_iter()
        .filter(|(_, b)| gone.contains(b.sha256()))
        .map(|(id, _)| id)
        .collect())
}

/// The time of the last change query's lower bound, for tests.
pub fn change_query_start(watermark: DateTime<Utc>, opts: &SyncOptions) -> DateTime<Utc> {
    watermark - overlap(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, parent: Option<&str>, restricted: bool) -> (String, PageMeta) {
        (
            id.to_string(),
            PageMeta {
                id: id.to_string(),
                title: id.to_string(),
                version: 1,
                parent_id: parent.map(str::to_string),
                containers: Vec::new(),
                labels: Vec::new(),
                restricted,
            },
        )
    }

    #[test]
    fn folder_restrictions_inherit_and_unknown_containers_fail_closed() {
        let under = |id: &str, parent: Option<&str>, containers: &[&str]| {
            let (k, mut m) = meta(id, parent, false);
            m.containers = containers.iter().map(|c| c.to_string()).collect();
            (k, m)
        };
        let metas: HashMap<_, _> = [
            meta("root", None, false),
            under("in-open", Some("root"), &["f-open"]),
            under("in-closed", Some("root"), &["f-open", "f-closed"]),
            under("below-closed", Some("in-closed"), &[]),
            under("top-folder", None, &["f-open"]),
            under("in-whiteboard", Some("root"), &["whiteboard-not-scanned"]),
        ]
        .into_iter()
        .collect();
        let containers: HashMap<String, bool> = [
            ("f-open".to_string(), false),
            ("f-closed".to_string(), true),
        ]
        .into_iter()
        .collect();
        let eff = effective_restrictions(&metas, &containers);
        for (id, want) in [
            ("root", false),
            ("in-open", false),
            ("in-closed", true),
            ("below-closed", true),
            ("top-folder", false),
            ("in-whiteboard", true),
        ] {
            assert_eq!(eff.get(id), Some(&want), "{id}");
        }
    }

    #[test]
    fn restrictions_inherit_down_and_fail_closed() {
        let metas: HashMap<_, _> = [
            meta("root", None, false),
            meta("a", Some("root"), true),
            meta("a1", Some("a"), false),
            meta("a11", Some("a1"), false),
            meta("b", Some("root"), false),
            meta("b1", Some("b"), false),
            meta("orphan", Some("invisible"), false),
            meta("loop1", Some("loop2"), false),
            meta("loop2", Some("loop1"), false),
        ]
        .into_iter()
        .collect();
        let eff = effective_restrictions(&metas, &HashMap::new());
        let expect = [
            ("root", false),
            ("a", true),
            ("a1", true),
            ("a11", true),
            ("b", false),
            ("b1", false),
            ("orphan", true),
            ("loop1", true),
            ("loop2", true),
        ];
        for (id, want) in expect {
            assert_eq!(eff.get(id), Some(&want), "{id}");
        }
    }
}
