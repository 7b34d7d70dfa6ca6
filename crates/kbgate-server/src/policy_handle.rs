//! The policy in force, replaceable at run time, and the queue of replaced policies whose
//! sessions are still to be swept.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use kbgate_policy::{Email, Policy, Viewer};

use crate::error::Error;

/// The policy in force, replaceable at run time (SIGHUP, file change). Cheap to clone; all
/// clones see a replacement.
///
/// Removing a domain *ends* its sessions; putting it back does not revive them. A session the
/// policy refuses is ended by the request that finds it refused; sessions nobody uses are
/// ended by a sweep: [`PolicyHandle::replace`] queues the outgoing policy and the new one
/// (the outgoing one as of now: it also ends the sessions of audiences that expired while it
/// was in force), and the portal's sweeper ([`crate::serve`]) ends, in the store, every session
/// a queued policy refuses. Until a queued policy is swept, every request is checked against
/// it as well as the current one, so a quick remove-and-restore cannot slip an old cookie
/// through before the sweep. Putting a domain back always takes a replacement, whose sweep
/// of the outgoing policy ends what that policy refused.
#[derive(Clone)]
pub struct PolicyHandle(Arc<PolicyShared>);

struct PolicyShared {
    current: RwLock<Arc<Policy>>,
    /// Installed policies whose sweep has not finished, oldest first.
    /// Each with the time it was queued: it speaks only for sessions opened before then.
    unswept: std::sync::Mutex<Vec<Queued>>,
    /// `unswept.len()`, read without the lock on every request.
    unswept_len: std::sync::atomic::AtomicUsize,
    installed: tokio::sync::Notify,
    /// Bumped by every replacement.
    generation: std::sync::atomic::AtomicU64,
}

/// A policy waiting for its sweep.
#[derive(Clone)]
pub(crate) struct Queued {
    pub(crate) policy: Arc<Policy>,
    /// Sessions opened before this time are the ones it decides about.
    pub(crate) at: DateTime<Utc>,
}

impl PolicyHandle {
    /// Starts with `policy`.
    pub fn new(policy: Policy) -> PolicyHandle {
        PolicyHandle(Arc::new(PolicyShared {
            current: RwLock::new(Arc::new(policy)),
            unswept: std::sync::Mutex::new(Vec::new()),
            unswept_len: std::sync::atomic::AtomicUsize::new(0),
            installed: tokio::sync::Notify::new(),
            generation: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Replaces the policy; the next request is decided by the new one, and sessions it
    /// refuses are ended (see the type's docs).
    pub fn replace(&self, policy: Policy) {
        let policy = Arc::new(policy);
        {
            // Queued before the swap, under one lock with it: a request never sees the new
            // policy without the queue that holds the outgoing one.
            let mut unswept = self.lock_unswept();
            // A poisoned lock only means a writer panicked; the stored Arc is still whole.
            let mut guard = self.0.current.write().unwrap_or_else(|p| p.into_inner());
            let outgoing = std::mem::replace(&mut *guard, policy.clone());
            let at = Utc::now();
            unswept.push(Queued {
                policy: outgoing,
                at,
            });
            unswept.push(Queued { policy, at });
            self.0
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0
                .unswept_len
                .store(unswept.len(), std::sync::atomic::Ordering::SeqCst);
        }
        self.0.installed.notify_one();
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        self.0
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes with every replacement.
    pub(crate) fn generation(&self) -> u64 {
        self.0.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn lock_unswept(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        self.0.unswept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Issues a viewer for `email` under the current policy.
    pub(crate) fn viewer(&self, email: &Email, now: DateTime<Utc>) -> Result<Viewer, Error> {
        self.current()
            .viewer(email, now)
            .map_err(|_| Error::Forbidden)
    }

    /// Whether a *session* of `email`, opened at `opened`, may go on: the current policy
    /// admits it, and so does every queued policy not yet swept that was replaced after the
    /// session was opened (such a policy that refuses the email has ended, or is about to
    /// end, the session).
    pub(crate) fn session_viewer(
        &self,
        email: &Email,
        opened: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Viewer, Error> {
        if self.0.unswept_len.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            let unswept = self.lock_unswept().clone();
            if unswept
                .iter()
                .any(|q| opened < q.at && q.policy.viewer(email, now).is_err())
            {
                return Err(Error::Forbidden);
            }
        }
        self.viewer(email, now)
    }

    /// Queued policies not yet swept, oldest first.
    pub(crate) fn unswept(&self) -> Vec<Queued> {
        self.lock_unswept().clone()
    }

    /// Marks the first `n` queued policies as swept.
    pub(crate) fn mark_swept(&self, n: usize) {
        let mut unswept = self.lock_unswept();
        let n = n.min(unswept.len());
        unswept.drain(..n);
        self.0
            .unswept_len
            .store(unswept.len(), std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits until a policy is installed (returns at once if one was since the last wait).
    pub(crate) async fn installed(&self) {
        self.0.installed.notified().await;
    }
}

impl std::fmt::Debug for PolicyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyHandle")
    }
}
