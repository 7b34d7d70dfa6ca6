//! What the portal knows of the store's change counters, read at most every
//! [`kbgate_store::CHANGE_POLL`], so the caches of sessions, trees and page views can be
//! checked on every request without a database read per request.
//!
//! The rule each request relies on: the stamp it gets was read by a store read that *started*
//! less than `CHANGE_POLL` before the request, or later; and a write committed through this
//! process's store handle forces a fresh read at once. So a sync commit or a revocation made
//! by this process shows on the very next request, and one made by any other process (cron's
//! `kbgate sync`, `kbgate sessions revoke`) on every request that starts `CHANGE_POLL` after
//! the commit — the CLI waits that long before it reports success.
//!
//! The mirror counter moves with every sync commit, also one that found nothing new. Caches
//! are keyed by the per-space stamps instead ([`ChangeWatch::spaces`]), read again only when
//! the mirror counter moved: a commit that changed nothing invalidates nothing, one that
//! changed space A leaves B's caches alone, and one that only edited bodies keeps A's trees
//! (they follow the shape stamp).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kbgate_store::{ChangeStamp, Store};

use crate::error::Error;

/// A cached [`ChangeStamp`] with when (and under which local write count) it was read.
pub(crate) struct ChangeWatch {
    store: Arc<dyn Store>,
    window: Duration,
    seen: Mutex<Option<Seen>>,
    /// One refresh at a time; the others wait for it and use its result.
    refresh: tokio::sync::Mutex<()>,
    /// The per-space stamps, read after the mirror counter they are filed under.
    spaces: Mutex<Option<Arc<SpaceStamps>>>,
    /// One read of the per-space stamps at a time.
    spaces_refresh: tokio::sync::Mutex<()>,
}

/// Per space key, the content and shape stamps of the last commits that changed the space
/// (see [`kbgate_store::SpaceStamp`]), as read after the mirror counter `mirror`: at least as
/// new as it.
#[derive(Debug)]
pub(crate) struct SpaceStamps {
    mirror: i64,
    /// `(content, shape)` by space key.
    by_key: HashMap<String, (i64, i64)>,
}

impl SpaceStamps {
    /// The content stamp of a space (moved by any change readers read); 0 for a space never
    /// committed.
    pub(crate) fn of(&self, space_key: &str) -> i64 {
        self.by_key.get(space_key).map_or(0, |s| s.0)
    }

    /// The shape stamp of a space (moved only by changes that trees show or that change who
    /// may read what); 0 for a space never committed.
    pub(crate) fn shape_of(&self, space_key: &str) -> i64 {
        self.by_key.get(space_key).map_or(0, |s| s.1)
    }
}

#[derive(Clone, Copy)]
struct Seen {
    stamp: ChangeStamp,
    /// `store.local_changes()` as read just before the stamp's store read began.
    local: u64,
    /// When that store read began.
    read_started: Instant,
}

impl ChangeWatch {
    pub(crate) fn new(store: Arc<dyn Store>) -> ChangeWatch {
        ChangeWatch::with_window(store, kbgate_store::CHANGE_POLL)
    }

    pub(crate) fn with_window(store: Arc<dyn Store>, window: Duration) -> ChangeWatch {
        ChangeWatch {
            store,
            window,
            seen: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            spaces: Mutex::new(None),
            spaces_refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn usable(&self, not_before: Instant) -> Option<ChangeStamp> {
        let seen = (*self.seen.lock().unwrap_or_else(|e| e.into_inner()))?;
        (seen.read_started >= not_before && seen.local == self.store.local_changes())
            .then_some(seen.stamp)
    }

    /// The change stamp as of this request (see the module docs for the guarantee).
    pub(crate) async fn current(&self) -> Result<ChangeStamp, Error> {
        let now = Instant::now();
        let not_before = now.checked_sub(self.window).unwrap_or(now);
        if let Some(stamp) = self.usable(not_before) {
            return Ok(stamp);
        }
        let _one = self.refresh.lock().await;
        // A refresh that began after this request arrived is as good as our own.
        if let Some(stamp) = self.usable(now) {
            return Ok(stamp);
        }
        let local = self.store.local_changes();
        let read_started = Instant::now();
        let stamp = self.store.change_stamp().await.map_err(Error::internal)?;
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Seen {
            stamp,
            local,
            read_started,
        });
        Ok(stamp)
    }

    fn spaces_at(&self, mirror: i64) -> Option<Arc<SpaceStamps>> {
        self.spaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|s| s.mirror == mirror)
    }

    /// The per-space content stamps as of this request (the same guarantee as
    /// [`ChangeWatch::current`]): one small read when the mirror counter moved, none
    /// otherwise.
    pub(crate) async fn spaces(&self) -> Result<Arc<SpaceStamps>, Error> {
        let mirror = self.current().await?.mirror;
        if let Some(s) = self.spaces_at(mirror) {
            return Ok(s);
        }
        let _one = self.spaces_refresh.lock().await;
        if let Some(s) = self.spaces_at(mirror) {
            return Ok(s);
        }
        // Read after the counter: what it returns is at least as new as `mirror` (a commit in
        // between is filed under the older counter, and the next counter read re-reads).
        let by_key = self
            .store
            .space_stamps()
            .await
            .map_err(Error::internal)?
            .into_iter()
            .map(|s| (s.space_key, (s.content, s.shape)))
            .collect();
        let fresh = Arc::new(SpaceStamps { mirror, by_key });
        let mut slot = self.spaces.lock().unwrap_or_else(|e| e.into_inner());
        // Never replace a snapshot of a newer counter by an older one.
        if slot.as_ref().is_none_or(|s| s.mirror <= mirror) {
            *slot = Some(fresh.clone());
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbgate_store::SessionRecord;

    async fn revoke_one(store: &dyn Store, id: &str) {
        let now = chrono::Utc::now();
        store
            .create_session(&SessionRecord {
                id_hash: id.into(),
                email: "ann@acme.com".into(),
                created_at: now,
                last_seen_at: now,
                expires_at: now + chrono::Duration::hours(1),
                revoked: false,
            })
            .await
            .unwrap();
        assert!(store.revoke_session(id).await.unwrap());
    }

    #[tokio::test]
    async fn other_processes_are_seen_after_the_window_own_writes_at_once() {
        let t = kbgate_store::testing::sqlite().await;
        let other = t.reopen().await.unwrap();

        // A window far longer than the test: the stamp is not re-read for other processes...
        let watch = ChangeWatch::with_window(t.store.clone(), Duration::from_secs(3600));
        let s0 = watch.current().await.unwrap();
        revoke_one(&*other, "a").await;
        assert_eq!(
            watch.current().await.unwrap(),
            s0,
            "cached within the window"
        );
        // ...but a write through this process's own handle forces a re-read at once, which
        // also picks up everything committed before it.
        revoke_one(&*t.store, "b").await;
        let s1 = watch.current().await.unwrap();
        assert!(s1.sessions >= s0.sessions + 2, "{s0:?} -> {s1:?}");

        // With the window passed, another process's write is seen.
        let watch = ChangeWatch::with_window(t.store.clone(), Duration::ZERO);
        let s1 = watch.current().await.unwrap();
        revoke_one(&*other, "c").await;
        assert!(watch.current().await.unwrap().sessions > s1.sessions);
    }
}
