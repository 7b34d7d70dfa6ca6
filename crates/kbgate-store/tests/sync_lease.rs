//! Several instances on one store (ARCHITECTURE.md, "Several instances"): the per-space sync generation
//! (compare-and-set at commit) and the per-space sync lease, on both backends.

use std::time::Duration;

use chrono::Utc;
use kbgate_store::testing::TestStore;
use kbgate_store::*;

kbgate_store::store_tests!(
    a_commit_over_a_newer_generation_is_refused_and_writes_nothing,
    unconditional_syncs_and_space_removal_move_the_generation,
    one_lease_holder_per_space_until_release_or_expiry,
    of_concurrent_commits_from_one_generation_exactly_one_lands,
    the_last_sync_of_a_space_is_shared_and_never_goes_back,
    the_lease_holder_is_visible_until_release_or_expiry,
);

fn space(id: &str, key: &str) -> SpaceRecord {
    SpaceRecord {
        id: id.into(),
        key: key.into(),
        name: format!("Space {key}"),
        homepage_id: None,
        ..Default::default()
    }
}

fn page(id: &str, space_id: &str, restricted: bool) -> PageRecord {
    PageRecord {
        id: id.into(),
        space_id: space_id.into(),
        parent_id: None,
        position: 0,
        title: format!("Page {id}"),
        version: 1,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        labels: Vec::new(),
        restricted,
        effective_restricted: restricted,
        body_storage: "<p>x</p>".into(),
        body_html: "<p>x</p>".into(),
        body_text: "x".into(),
        headings: Vec::new(),
    }
}

fn state(s: &SpaceRecord) -> SyncState {
    SyncState {
        space_key: s.key.clone(),
        space_id: s.id.clone(),
        watermark: Some(Utc::now()),
        last_full_sync: None,
        last_sync: Some(Utc::now()),
    }
}

async fn a_commit_over_a_newer_generation_is_refused_and_writes_nothing(t: &TestStore) {
    let store = &t.store;
    let sp = space("S1", "ONE");
    assert_eq!(store.sync_generation("ONE").await.unwrap(), 0);

    // Both syncs read generation 0; the slow one is still working when the fast one
    // commits a restriction.
    let slow_read = store.sync_generation("ONE").await.unwrap();
    let fast_read = store.sync_generation("ONE").await.unwrap();
    let mut fast = store
        .begin_space_sync_at(&sp, SyncMode::Incremental, fast_read)
        .await
        .unwrap();
    fast.upsert_page(page("p1", "S1", true)).await.unwrap();
    fast.commit(state(&sp)).await.unwrap();
    assert_eq!(store.sync_generation("ONE").await.unwrap(), 1);

    let mut slow = store
        .begin_space_sync_at(&sp, SyncMode::Incremental, slow_read)
        .await
        .unwrap();
    slow.upsert_page(page("p1", "S1", false)).await.unwrap();
    slow.upsert_page(page("p2", "S1", false)).await.unwrap();
    match slow.commit(state(&sp)).await {
        Err(StoreError::Stale {
            space_key,
            expected,
            found,
        }) => {
            assert_eq!((space_key.as_str(), expected, found), ("ONE", 0, 1));
        }
        other => panic!("a stale commit must be refused, got {other:?}"),
    }
    let p1 = store.page_summary("p1").await.unwrap().expect("p1");
    assert!(p1.effective_restricted, "restriction kept");
    assert!(store.page("p2").await.unwrap().is_none(), "nothing written");
    assert_eq!(store.sync_generation("ONE").await.unwrap(), 1);

    // Reading again gives a commit that goes through.
    let g = store.sync_generation("ONE").await.unwrap();
    let mut again = store
        .begin_space_sync_at(&sp, SyncMode::Incremental, g)
        .await
        .unwrap();
    again.upsert_page(page("p2", "S1", false)).await.unwrap();
    again.commit(state(&sp)).await.unwrap();
    assert_eq!(store.sync_generation("ONE").await.unwrap(), 2);
    assert!(store.page("p2").await.unwrap().is_some());
}

async fn unconditional_syncs_and_space_removal_move_the_generation(t: &TestStore) {
    let store = &t.store;
    let sp = space("S2", "TWO");
    let read = store.sync_generation("TWO").await.unwrap();
    let tx = store
        .begin_space_sync(&sp, SyncMode::Incremental)
        .await
        .unwrap();
    tx.commit(state(&sp)).await.unwrap();
    assert_eq!(store.sync_generation("TWO").await.unwrap(), read + 1);
    // A sync that read before a removal does not bring the space back.
    let before_removal = store.sync_generation("TWO").await.unwrap();
    assert!(store.delete_space("S2").await.unwrap());
    let tx = store
        .begin_space_sync_at(&sp, SyncMode::Full, before_removal)
        .await
        .unwrap();
    assert!(matches!(
        tx.commit(state(&sp)).await,
        Err(StoreError::Stale { .. })
    ));
    assert!(store.space("S2").await.unwrap().is_none());
    // A dropped sync moves nothing.
    let g = store.sync_generation("TWO").await.unwrap();
    drop(
        store
            .begin_space_sync_at(&sp, SyncMode::Full, g)
            .await
            .unwrap(),
    );
    assert_eq!(store.sync_generation("TWO").await.unwrap(), g);
}

async fn one_lease_holder_per_space_until_release_or_expiry(t: &TestStore) {
    let store = &t.store;
    let long = Duration::from_secs(600);
    assert_eq!(
        store.acquire_sync_lease("ONE", "a", long).await.unwrap(),
        SyncLease::Acquired
    );
    // Renewal by the holder; refusal for anyone else, naming the holder.
    assert_eq!(
        store.acquire_sync_lease("ONE", "a", long).await.unwrap(),
        SyncLease::Acquired
    );
    match store.acquire_sync_lease("ONE", "b", long).await.unwrap() {
        SyncLease::HeldBy { holder, expires_at } => {
            assert_eq!(holder, "a");
            assert!(expires_at > Utc::now());
        }
        other => panic!("{other:?}"),
    }
    // Other spaces are independent.
    assert_eq!(
        store.acquire_sync_lease("TWO", "b", long).await.unwrap(),
        SyncLease::Acquired
    );
    // Only the holder releases.
    assert!(!store.release_sync_lease("ONE", "b").await.unwrap());
    assert!(store.release_sync_lease("ONE", "a").await.unwrap());
    assert_eq!(
        store.acquire_sync_lease("ONE", "b", long).await.unwrap(),
        SyncLease::Acquired
    );
    // An expired lease (a crashed holder) is taken over.
    assert_eq!(
        store
            .acquire_sync_lease("THREE", "c", Duration::from_millis(50))
            .await
            .unwrap(),
        SyncLease::Acquired
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        store.acquire_sync_lease("THREE", "d", long).await.unwrap(),
        SyncLease::Acquired
    );
    assert!(!store.release_sync_lease("THREE", "c").await.unwrap());
    // Many contenders at once: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .acquire_sync_lease("FOUR", &format!("h{i}"), Duration::from_secs(600))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap() == SyncLease::Acquired {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

async fn of_concurrent_commits_from_one_generation_exactly_one_lands(t: &TestStore) {
    let sp = space("S5", "FIVE");
    let read = t.store.sync_generation("FIVE").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let store = t.reopen().await.expect("another handle");
        let sp = sp.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = store
                .begin_space_sync_at(&sp, SyncMode::Incremental, read)
                .await?;
            tx.upsert_page(page(&format!("w{i}"), "S5", false)).await?;
            tx.commit(state(&sp)).await
        }));
    }
    let (mut landed, mut stale) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => landed += 1,
            Err(StoreError::Stale { .. }) => stale += 1,
            Err(e) => panic!("only a stale refusal is expected: {e}"),
        }
    }
    assert_eq!((landed, stale), (1, 3));
    assert_eq!(t.store.sync_generation("FIVE").await.unwrap(), read + 1);
    let written = t.store.page_versions("S5").await.unwrap();
    assert_eq!(written.len(), 1, "only the winner's page: {written:?}");
}

/// What every process reads to skip a space synced within its interval.
async fn the_last_sync_of_a_space_is_shared_and_never_goes_back(t: &TestStore) {
    let store = &t.store;
    assert_eq!(store.last_synced("ONE").await.unwrap(), None);
    let at = |ms: i64| chrono::DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
    store
        .record_synced("ONE", "a", at(1_000_000))
        .await
        .unwrap();
    let other = t.reopen().await.unwrap();
    assert_eq!(
        other.last_synced("ONE").await.unwrap(),
        Some(LastSync {
            holder: "a".into(),
            synced_at: at(1_000_000)
        }),
        "another handle (another process) sees it"
    );
    // A newer round replaces it; an older one (a slow sync that started earlier) does not.
    other
        .record_synced("ONE", "b", at(1_005_000))
        .await
        .unwrap();
    store
        .record_synced("ONE", "a", at(1_002_000))
        .await
        .unwrap();
    let last = store.last_synced("ONE").await.unwrap().unwrap();
    assert_eq!((last.holder.as_str(), last.synced_at), ("b", at(1_005_000)));
    // Per space.
    assert_eq!(store.last_synced("TWO").await.unwrap(), None);
}

async fn the_lease_holder_is_visible_until_release_or_expiry(t: &TestStore) {
    let store = &t.store;
    assert_eq!(store.sync_lease_holder("ONE").await.unwrap(), None);
    store
        .acquire_sync_lease("ONE", "a", Duration::from_secs(600))
        .await
        .unwrap();
    let held = store.sync_lease_holder("ONE").await.unwrap().unwrap();
    assert_eq!(held.holder, "a");
    assert!(held.expires_at > Utc::now());
    assert_eq!(store.sync_lease_holder("TWO").await.unwrap(), None);
    assert!(store.release_sync_lease("ONE", "a").await.unwrap());
    assert_eq!(store.sync_lease_holder("ONE").await.unwrap(), None);
    // An expired lease has no holder, although its row stays until someone takes it.
    store
        .acquire_sync_lease("ONE", "c", Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(store.sync_lease_holder("ONE").await.unwrap(), None);
}
