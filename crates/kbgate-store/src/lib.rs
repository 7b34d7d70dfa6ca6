//! Persistence behind small role traits — [`MirrorRead`], [`MirrorWrite`], [`Sessions`],
//! [`People`], [`Audit`], [`Insights`] and [`Backend`], together [`Store`] — with two backends: SQLite
//! (embedded default) and PostgreSQL, sharing their SQL in one generic implementation. Holds the mirror of the allowed Confluence spaces (pages, hierarchy,
//! labels, restrictions, attachments, full-text index), the sync state, and the operational
//! records of the portal and of native-mode provisioning (sessions, used token ids,
//! one-time codes, audit log, people, provisioning journal and ownership).
//!
//! Open a store with [`open`]. Mirror writes go through a per-space transaction
//! ([`MirrorWrite::begin_space_sync`] → [`SpaceSync`]) so readers see either the previous or the
//! new state of a space, never a half-written one. Attachment bytes live in a
//! content-addressed [`BlobStore`]: [`LocalBlobs`] (the directory `data_dir/blobs`) for
//! SQLite, [`PgBlobs`] (tables in the database) for PostgreSQL, so every process sharing a
//! PostgreSQL store reads the same bytes.
//!
//! # Several processes
//!
//! Several processes may share one store (ARCHITECTURE.md, "Several instances"), and the mirror stays right whatever
//! they do at once:
//!
//! - **Writes never go back in time.** Every space has a generation (`space_generations`),
//!   moved by each sync commit and space removal. A sync reads it ([`MirrorWrite::sync_generation`])
//!   before it reads the mirror or Confluence and opens its transaction with
//!   [`MirrorWrite::begin_space_sync_at`]; the commit compares and sets it first thing, under
//!   SQLite's write lock or PostgreSQL's row lock, and if another commit landed meanwhile it
//!   fails with [`StoreError::Stale`] and writes nothing. A slow sync can therefore never
//!   put back what a newer one changed (such as a restriction).
//! - **One sync per space at a time.** [`MirrorWrite::acquire_sync_lease`] takes or renews a
//!   per-space lease row (`sync_leases`; SQLite keeps it in the operational database, so it
//!   never waits on the mirror's write lock). It expires after its duration unless renewed,
//!   so a crashed holder is replaced; times are milliseconds on the holders' clocks (keep
//!   them within a fraction of the lease duration). The lease saves duplicated work; the
//!   generation alone keeps the data right, also when a lease expired under a paused holder.
//! - **One sync per interval.** A sync that committed records its round's start and holder
//!   ([`MirrorWrite::record_synced`], in `sync_rounds` next to the leases); a background round
//!   of any process skips a space synced within its interval ([`MirrorWrite::last_synced`]), so
//!   N instances spend one instance's Confluence calls and serve the syncing one's commits.
//! - **Shared attachment bytes.** A PostgreSQL store keeps blobs in the database
//!   ([`PgBlobs`]), so a file one process mirrored is served by every other; a SQLite store
//!   keeps them in `data_dir/blobs` ([`LocalBlobs`]), beside its database files. Either way a
//!   sync asks [`BlobStore::missing`] for the blobs of a space's unchanged attachments and
//!   downloads again those that are gone.
//! - **Short write transactions.** A sync gathers everything first (attachment bytes go to
//!   the blob store, which is content-addressed and written outside any transaction) and
//!   opens its transaction only to write, so SQLite's single write lock is held for the
//!   writes alone and other spaces' syncs and removals are not kept waiting.
//!
//! The store does no authorisation: callers (the portal's `Viewer` gate) decide which
//! spaces and labels to pass as a search scope and which pages to show. It does guarantee
//! that [`MirrorRead::search`] never returns a page with `effective_restricted` or outside the
//! given scope.
//!
//! # Search
//!
//! [`MirrorRead::search`] has to stay fast on big mirrors (ARCHITECTURE.md, "Performance
//! budget": p99 under 10 ms on 100,000 pages on SQLite) without ever widening a scope:
//!
//! - **The scope is part of the full-text match.** Every page carries scope tokens, one for
//!   its space and one per label, in its full-text index entries (SQLite: a `scope` column
//!   of `pages_fts` and `pages_title_fts`; PostgreSQL: lexemes in `search_vec` and
//!   `title_vec`), and none when it is `effective_restricted`. A search matches *words AND
//!   any of the viewer's tokens*, so the scope is applied while the index is read: a viewer
//!   of one small space in a big site only touches that space's entries, and restricted
//!   pages are never candidates. The tokens are hex-encoded behind a private-use
//!   character, so no query word, stemmer or stored text can produce or fold them (details
//!   in `src/scope.rs`). They only select: space, labels (`page_labels`) and
//!   `effective_restricted` are checked again in SQL on every hit returned, so a stale or
//!   forged token could hide a page but never show one. The store writes a page's tokens
//!   with every upsert (labels, space); the index drops and restores them when a
//!   restriction changes (SQLite: the `pages_search` view and triggers; PostgreSQL: the
//!   search-vector trigger).
//! - **Exact ranking for small match sets.** When at most 500 pages (PostgreSQL: 200) in
//!   the viewer's scope match, and (SQLite) the words' summed document frequency is at
//!   most 40,000, all matches are ranked: bm25 with weights title 10, attachment names 3,
//!   body 1 (PostgreSQL: `ts_rank`, title A, attachment names B, body D), ties newest
//!   first.
//! - **Bounded, deterministic ranking for large ones.** Otherwise only a bounded candidate
//!   set is ranked, in two tiers. First up to 100 pages with every word in their title —
//!   the newest such pages wherever they are in the match set (found through a title-only
//!   index), shortest title first. Then the 500 (PostgreSQL: 200) newest matches: by
//!   `ts_rank` on PostgreSQL; on SQLite by bm25 over the words it can afford to score, the
//!   rarest first up to 40,000 summed document frequency. The words left out are those in
//!   a large share of the mirror, whose IDF is near zero (bm25 floors it above half the
//!   pages), so their weight in the order was close to noise anyway; when no word is left
//!   the candidates are listed newest first. Matches beyond the bound are not returned
//!   (`has_more` ends with it), and ranks of a bounded list are positions (still higher
//!   first). Why: FTS5's bm25 costs ≈ 2 µs per ranked page plus, per word and query, a
//!   pass over every page holding the word (≈ 9 ms for a word in all of 100,000 pages),
//!   and a PostgreSQL match test or `ts_rank` reads a vector of a few KB (≈ 1.5–3 µs a
//!   page, kept in the heap row since migration 0004; 5–10 µs when it was TOASTed):
//!   ranking every one of 65,000 matches took 300–700 ms.
//! - **Excerpts** are cut in Rust from 1,000 characters of the body around an occurrence
//!   of a query word, lower case or capitalised (PostgreSQL: the earliest of any word;
//!   SQLite: the first of the first word found, since its `instr` is a byte-by-byte
//!   scan), marking the query words and their stems (PostgreSQL's lexemes; on SQLite the
//!   Snowball English stems, as FTS5's `porter` tokenizer matches by stem)
//!   (`src/excerpt.rs`): `ts_headline` parsed the whole window of every hit (≈ 5 ms a page
//!   of results), and FTS5's `snippet` with the full-text cursor it needs cost 60–90 µs a
//!   hit.
//! - **Row layout** (PostgreSQL): `search_vec`, `title_vec`, `id`, `space_id` and `title`
//!   are stored `MAIN` (in the heap row), so testing or ranking a page reads no TOAST
//!   chunks; the bodies still go to TOAST first.
//! - **"Newest"** is the order pages were added to the mirror (SQLite rowid, PostgreSQL
//!   `seq`), not Confluence's modification date.
//! - **Index upkeep.** A SQLite sync ends with an incremental FTS5 merge proportional to
//!   what it wrote (a freshly bulk-loaded index has several segments per term and every
//!   lookup pays for each). A PostgreSQL sync merges the GIN indexes' pending lists (which
//!   every search would otherwise read in full) and, when it wrote 1,000 rows or more,
//!   runs `ANALYZE` of `pages` and `page_labels`, so plans see the new word frequencies at
//!   once.

mod blob;
mod changes;
mod error;
mod excerpt;
mod fts;
mod model;
mod postgres;
pub mod private_fs;
mod scope;
mod search;
mod sql;
mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::Path;
use std::sync::Arc;

pub use blob::{BlobReader, BlobRef, BlobSource, BlobStore, LocalBlobs};
pub use changes::CHANGE_POLL;
pub use error::StoreError;
pub use fts::{MATCH_END, MATCH_START};
pub use model::*;
pub use postgres::{PgBlobs, PostgresStore};
pub use sql::SqlStore;
pub use sqlite::{SqliteFiles, SqliteStore, sqlite_files};
pub use store::{
    Audit, Backend, Insights, MirrorRead, MirrorWrite, People, Sessions, SpaceSync, Store,
};

/// The store's traits, for `use kbgate_store::prelude::*;`: calling a method of a role on
/// an `Arc<dyn Store>` needs that role's trait in scope.
pub mod prelude {
    pub use crate::store::{
        Audit, Backend, Insights, MirrorRead, MirrorWrite, People, Sessions, SpaceSync, Store,
    };
}

/// Opens (creating and migrating as needed) the store named by `url`:
///
/// - `sqlite://PATH` or `sqlite:PATH` — a file; a relative `PATH` is resolved against
///   `data_dir`. Operational records (sessions, codes, …) go to a second file beside it,
///   `STEM.ops.EXT` (e.g. `kbgate.db` → `kbgate.ops.db`), so a long sync transaction on the
///   mirror never blocks sign-ins. WAL mode, foreign keys on, 5 s busy timeout.
/// - `sqlite::memory:` — in memory (tests, demo).
/// - `postgres://…` or `postgresql://…` — one database holds everything.
///
/// Attachment bytes go to `data_dir/blobs` with SQLite and into the database itself with
/// PostgreSQL ([`PgBlobs`]: several instances share one database, and a file one of them
/// mirrored must be servable by all). Migrations run on every open and are idempotent.
pub async fn open(url: &str, data_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url, data_dir).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url, data_dir).await?))
    } else {
        // Only the scheme is shown: the rest of a URL may hold a password.
        let scheme = url.split(':').next().unwrap_or("");
        Err(StoreError::BadUrl(format!(
            "scheme {scheme:?} (expected sqlite: or postgres:)"
        )))
    }
}
