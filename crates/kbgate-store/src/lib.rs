//! Persistence behind one trait, [`Store`], with two backends: SQLite (embedded default)
//! and PostgreSQL. Holds the mirror of the allowed Confluence spaces (pages, hierarchy,
//! labels, restrictions, attachments, full-text index), the sync state, and the operational
//! records of the portal and of native-mode provisioning (sessions, used token ids,
//! one-time codes, audit log, people, provisioning journal and ownership).
//!
//! Open a store with [`open`]. Mirror writes go through a per-space transaction
//! ([`Store::begin_space_sync`] → [`SpaceSync`]) so readers see either the previous or the
//! new state of a space, never a half-written one. Attachment bytes live in a
//! content-addressed [`BlobStore`].
//!
//! The store does no authorisation: callers (the portal's `Viewer` gate) decide which
//! spaces and labels to pass as a search scope and which pages to show. It does guarantee
//! that [`Store::search`] never returns a page with `effective_restricted` or outside the
//! given scope.

mod blob;
#[macro_use]
mod common;
mod error;
mod fts;
mod model;
mod postgres;
mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::Path;
use std::sync::Arc;

pub use blob::{BlobRef, BlobStore};
pub use error::StoreError;
pub use fts::{MATCH_END, MATCH_START};
pub use model::*;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use store::{SpaceSync, Store};

/// Opens (creating and migrating as needed) the store named by `url`:
///
/// - `sqlite://PATH` or `sqlite:PATH` — a file; a relative `PATH` is resolved against
///   `data_dir`. Operational records (sessions, codes, …) go to a second file beside it,
///   `STEM.ops.EXT` (e.g. `kbgate.db` → `kbgate.ops.db`), so a long sync transaction on the
///   mirror never blocks sign-ins. WAL mode, foreign keys on, 5 s busy timeout.
/// - `sqlite::memory:` — in memory (tests, demo).
/// - `postgres://…` or `postgresql://…` — one database holds everything.
///
/// Attachment bytes go to `data_dir/blobs` for every backend. Migrations run on every open
/// and are idempotent.
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
