//! The mirror forgets: what no audience names any more, and bytes nothing refers to.
//!
//! A space dropped from every audience is removed from the store (pages, attachments, search
//! entries, sync state), and blob files that no attachment of the mirror refers to — bytes of
//! deleted or replaced attachments and of removed spaces — are deleted from disk.

use std::collections::HashSet;
use std::time::Duration;

use kbgate_store::{Store, StoreError};

/// How long an unreferenced blob file is kept: a sync in progress (here or in another process)
/// writes the bytes of new attachments before it commits the rows that refer to them.
pub const BLOB_GRACE: Duration = Duration::from_secs(3600);

/// What [`forget`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ForgetReport {
    /// Keys of the spaces removed from the store.
    pub spaces_removed: Vec<String>,
    /// Blob files deleted from disk.
    pub blobs_removed: u64,
}

impl ForgetReport {
    /// Whether anything was removed.
    pub fn is_empty(&self) -> bool {
        self.spaces_removed.is_empty() && self.blobs_removed == 0
    }
}

impl std::fmt::Display for ForgetReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.spaces_removed.is_empty() {
            write!(f, "no space removed")?;
        } else {
            write!(
                f,
                "removed space(s) no audience names: {}",
                self.spaces_removed.join(", ")
            )?;
        }
        write!(f, "; {} unreferenced file(s) deleted", self.blobs_removed)
    }
}

/// Removes every mirrored space whose key is not in `keep` (the spaces the policy names), then
/// the blob files no attachment refers to that are older than `blob_grace`.
pub async fn forget(
    store: &dyn Store,
    keep: &[String],
    blob_grace: Duration,
) -> Result<ForgetReport, StoreError> {
    let keep: HashSet<&str> = keep.iter().map(String::as_str).collect();
    let mut report = ForgetReport::default();
    for space in store.list_spaces().await? {
        if !keep.contains(space.key.as_str()) && store.delete_space(&space.id).await? {
            tracing::info!(space = %space.key, "removed a space no audience names any more");
            report.spaces_removed.push(space.key);
        }
    }
    let referenced: HashSet<String> = store.blob_hashes().await?.into_iter().collect();
    report.blobs_removed = store
        .blobs()
        .remove_unreferenced(&referenced, blob_grace)
        .await?;
    Ok(report)
}
