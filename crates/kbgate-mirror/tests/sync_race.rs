//! Several syncs of one store at once (issue 12, items 1 and 5): the
//! simulator holds one sync mid-way, deterministically, while another runs. Both backends.

use std::sync::Arc;
use std::time::Duration;

use confluence_client::{Client, ClientConfig};
use confluence_sim::model::Subject;
use confluence_sim::{SimConfig, SimHandle, spawn};
use kbgate_mirror::sync::{
    Progress, SyncError, SyncOptions, SyncReport, confluence::ConfluenceSource, sync_spaces,
};
use kbgate_store::Store;
use kbgate_store::testing::{TestStore, postgres, sqlite};

/// The CQL search behind the incremental change query (after the structure scan).
const CHANGE_QUERY: &str = "GET /wiki/rest/api/search";
/// Attachment downloads.
const DOWNLOAD: &str = "GET /wiki/rest/api/content/{id}/child/attachment/{attachmentId}/download";

fn source_for(sim: &SimHandle) -> ConfluenceSource {
    let creds = sim.service_account();
    let mut cfg = ClientConfig::new(
        sim.base_url().parse().expect("sim url"),
        creds.email,
        creds.api_token,
    );
    cfg.requests_per_second = 0;
    ConfluenceSource::new(Client::new(cfg).expect("client"))
}

fn space_keys(sim: &SimHandle) -> Vec<String> {
    let mut keys: Vec<String> = sim
        .state()
        .read(|s| s.spaces.values().map(|sp| sp.key.clone()).collect());
    keys.sort();
    keys
}

fn service_account_id(sim: &SimHandle) -> String {
    sim.state().read(|s| {
        s.users
            .values()
            .find(|u| u.email == sim.service_account().email)
            .map(|u| u.account_id.clone())
            .expect("service account")
    })
}

/// An unrestricted current page of `key` (the smallest id).
fn open_page(sim: &SimHandle, key: &str) -> u64 {
    sim.state()
        .read(|s| s.first_open_page(key))
        .expect("an unrestricted page")
}

/// Starts a sync in a task (its own client), for the test to hold and release.
fn start_sync(
    sim: &SimHandle,
    store: &Arc<dyn Store>,
    keys: &[String],
    opts: SyncOptions,
) -> tokio::task::JoinHandle<Result<SyncReport, SyncError>> {
    let source = source_for(sim);
    let store = store.clone();
    let keys = keys.to_vec();
    tokio::spawn(
        async move { sync_spaces(&source, &*store, &keys, &opts, &Progress::quiet()).await },
    )
}

async fn sync_now(
    sim: &SimHandle,
    store: &dyn Store,
    keys: &[String],
    opts: &SyncOptions,
) -> SyncReport {
    sync_spaces(&source_for(sim), store, keys, opts, &Progress::quiet())
        .await
        .expect("sync")
}

/// Waits until `n` calls are held by the simulator, then lets every later call through
/// (the held ones stay held until `release`).
async fn wait_held(sim: &SimHandle, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sim.state().held() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sync never reached the hold"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sim.state().hold_after("GET /nothing/else", u64::MAX);
}

async fn effective_restricted(store: &dyn Store, id: u64) -> bool {
    store
        .page_summary(&id.to_string())
        .await
        .unwrap()
        .expect("page mirrored")
        .effective_restricted
}

macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let t = super::sqlite().await;
                super::$name(t).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(t) = super::postgres().await else {
                    return;
                };
                super::$name(t).await;
            }
        }
    };
}

// Issue 12, item 1: a slow sync read the page as open before a fast one committed its new
// restriction; the slow one must not write its stale view back. Its lease expired while it
// was stuck (a paused process), so the fast one is not kept out by the lease: only the
// compare-and-set on the space's generation stands between the stale write and the store.
both_backends!(a_slow_sync_never_undoes_a_restriction_a_newer_sync_committed);
async fn a_slow_sync_never_undoes_a_restriction_a_newer_sync_committed(t: TestStore) {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let keys = space_keys(&sim);
    let key = vec![keys[0].clone()];
    sync_now(&sim, &*t.store, &keys, &SyncOptions::default()).await;
    let page = open_page(&sim, &key[0]);
    assert!(!effective_restricted(&*t.store, page).await);

    // The slow sync: structure scan done (the page is open), held at the change query.
    sim.state().hold_after(CHANGE_QUERY, 0);
    let slow = start_sync(
        &sim,
        &t.store,
        &key,
        SyncOptions {
            lease_ttl: Duration::from_millis(300),
            ..SyncOptions::default()
        },
    );
    wait_held(&sim, 1).await;

    // Meanwhile the page is restricted in Confluence and a fast sync commits that.
    sim.state()
        .add_read_restriction(page, Subject::User(service_account_id(&sim)))
        .expect("restrict");
    tokio::time::sleep(Duration::from_millis(400)).await; // the slow one's lease expires
    let other_process = t.reopen().await.expect("second handle");
    let fast = sync_now(&sim, &*other_process, &key, &SyncOptions::default()).await;
    assert!(fast.spaces[0].skipped.is_none(), "{fast}");
    assert!(effective_restricted(&*t.store, page).await, "fast sync");

    // The slow one goes on with its stale view and tries to commit it.
    sim.state().release();
    let slow = slow.await.unwrap().expect("a stale round is not an error");
    assert!(
        effective_restricted(&*t.store, page).await,
        "the restriction must never be lost"
    );
    let why = slow.spaces[0]
        .skipped
        .as_deref()
        .expect("stale round dropped");
    assert!(why.contains("another sync committed"), "{why}");

    // The next round sees the restriction too.
    sync_now(&sim, &*t.store, &key, &SyncOptions::default()).await;
    assert!(effective_restricted(&*t.store, page).await);
}

// Issue 12, item 5 and "one sync at a time": while a full sync of a space is stuck in its
// attachment downloads, a second sync of the same space is skipped with a message naming
// the holder (never `database is locked`), and a sync of another space commits (the stuck
// sync holds no write lock while it downloads); a sync allowed to wait for the lease
// waits, then syncs.
both_backends!(a_second_sync_of_a_space_is_skipped_and_other_spaces_commit_meanwhile);
async fn a_second_sync_of_a_space_is_skipped_and_other_spaces_commit_meanwhile(t: TestStore) {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let keys = space_keys(&sim);
    let full = SyncOptions {
        full: true,
        ..SyncOptions::default()
    };
    let with_attachments = keys
        .iter()
        .find(|k| {
            sim.state().read(|s| {
                let space_id = s.spaces.values().find(|sp| &sp.key == *k).unwrap().id;
                s.attachments.values().any(|a| {
                    s.pages
                        .get(&a.page_id)
                        .is_some_and(|p| p.space_id == space_id)
                })
            })
        })
        .expect("a space with attachments")
        .clone();
    let others: Vec<String> = keys
        .iter()
        .filter(|k| **k != with_attachments)
        .cloned()
        .collect();
    let first = vec![with_attachments.clone()];

    // The first sync of the space (every attachment is downloaded), held at its first
    // download.
    sim.state().hold_after(DOWNLOAD, 0);
    let running = start_sync(&sim, &t.store, &first, full.clone());
    wait_held(&sim, 1).await;

    // The same space again, from "another process" (its own store handle and client).
    let other_process = t.reopen().await.expect("second handle");
    let second = sync_now(&sim, &*other_process, &first, &SyncOptions::default()).await;
    let why = second.spaces[0]
        .skipped
        .as_deref()
        .expect("the second sync must be skipped");
    assert!(
        why.contains("another sync of this space is running"),
        "{why}"
    );
    assert!(why.contains("kbgate pid"), "names the holder: {why}");
    assert!(second.to_string().contains("skipped"), "{second}");

    // Other spaces sync and commit, with a full pass (every page written) even.
    let other = tokio::time::timeout(
        Duration::from_secs(60),
        sync_now(&sim, &*other_process, &others, &full),
    )
    .await
    .expect("another space's sync must not wait for the stuck one");
    assert!(other.spaces.iter().all(|s| s.skipped.is_none()), "{other}");

    // A sync that may wait for the lease waits for the held one to finish, then syncs.
    let waiting = start_sync(
        &sim,
        &other_process,
        &first,
        SyncOptions {
            lease_wait: Duration::from_secs(60),
            ..SyncOptions::default()
        },
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "it waits while the lease is held");

    // The held sync then finishes normally and the waiting one goes next.
    sim.state().release();
    let done = running.await.unwrap().expect("held sync");
    assert!(done.spaces[0].skipped.is_none(), "{done}");
    let waited = waiting.await.unwrap().expect("waiting sync");
    assert!(waited.spaces[0].skipped.is_none(), "{waited}");
    let again = sync_now(&sim, &*t.store, &first, &SyncOptions::default()).await;
    assert!(again.spaces[0].skipped.is_none(), "{again}");
}
