//! Change stamps: how a long-running reader (the portal) learns cheaply that the mirror or the
//! sessions changed, so it can cache between changes instead of reading the store per request.
//!
//! Two counters live in the database and are bumped by triggers in the writing transaction
//! (`mirror_changes` on every space sync commit or space removal; `session_changes` on every
//! revocation or removal of a session), so writers in *any* process move them, atomically with
//! what they wrote. Reading them is [`crate::Backend::change_stamp`]. A process additionally
//! counts its own writes in memory ([`crate::Backend::local_changes`]): a reader in the same
//! process can notice those without any database read.
//!
//! The mirror counter moves with every commit, also one that found nothing new; what moved
//! is told per space by [`crate::MirrorRead::space_stamps`] (the generation of the space's
//! last commit that changed something), which a reader re-reads when the counter moved.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How stale a portal's view of the change counters may be at most: a reader re-reads
/// [`crate::Backend::change_stamp`] before answering once its last read started longer ago than
/// this. A writer in another process that must be able to say "done" (`kbgate sessions
/// revoke`) waits this long after its commit.
pub const CHANGE_POLL: Duration = Duration::from_millis(100);

/// In-process write counter shared by a store and its sync transactions.
#[derive(Debug, Clone, Default)]
pub(crate) struct LocalChanges(Arc<AtomicU64>);

impl LocalChanges {
    /// Counts one committed write (call after the commit, never before).
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}
