//! Attachment bytes on a store shared by several instances (issue 12): an instance serves
//! every file the mirror lists, whoever synced it, and a file whose bytes were deleted
//! answers 503 (never 500) until the next sync downloads it again.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use confluence_sim::SimConfig;
use kbgate_mirror::sync::{Progress, SyncOptions, sync_spaces};
use kbgate_store::Store;

/// Reads every space of the simulated site.
const VIEWER: &str = "hank@hooli.com";

/// `(attachment id, bytes in the simulator)` of every mirrored attachment with bytes on a
/// page the viewer may read.
async fn readable_files(s: &SyncedApp, store: &dyn Store) -> Vec<(String, Vec<u8>)> {
    let site: Vec<(String, Vec<u8>)> = s.sim.state().read(|st| {
        st.attachments
            .values()
            .map(|a| (format!("att{}", a.id), a.bytes.to_vec()))
            .collect()
    });
    let mut out = Vec::new();
    for (id, bytes) in site {
        let Some(rec) = store.attachment(&id).await.unwrap() else {
            continue;
        };
        let page = store.page_summary(&rec.page_id).await.unwrap().unwrap();
        if rec.blob.is_some() && !page.effective_restricted {
            out.push((id, bytes));
        }
    }
    assert!(!out.is_empty(), "the site has readable attachments");
    out
}

async fn download(s: &SyncedApp, cookie: &str, id: &str) -> (u16, Vec<u8>) {
    let resp = s
        .app
        .get(&format!("/attachments/id/{id}"), Some(cookie))
        .await;
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

async fn sync(s: &SyncedApp, store: &dyn Store, full: bool) {
    let opts = SyncOptions {
        full,
        ..SyncOptions::default()
    };
    sync_spaces(
        &sim_source(&s.sim),
        store,
        &s.space_keys,
        &opts,
        &Progress::quiet(),
    )
    .await
    .expect("sync");
}

/// Deletes every blob, as someone clearing the blob store would.
async fn delete_all_blobs(store: &dyn Store) {
    store
        .blobs()
        .remove_unreferenced(&HashSet::new(), Duration::ZERO)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_instance_serves_the_files_another_instance_mirrored() {
    let Some((s, other, other_dir)) =
        spawn_synced_by_another_instance(Backend::Postgres, SimConfig::default()).await
    else {
        return;
    };
    let cookie = s.app.sign_in(VIEWER).await;
    let files = readable_files(&s, &*s.app.store).await;
    for (id, bytes) in &files {
        let (status, body) = download(&s, &cookie, id).await;
        assert_eq!(status, 200, "{id}");
        assert_eq!(&body, bytes, "{id}");
    }
    // Nothing went to the syncing instance's data directory: there is nothing to copy.
    assert!(
        !other_dir.path().join("blobs").exists(),
        "attachment bytes are in the shared database"
    );
    drop(other);
}

macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await;
            }
        }
    };
}

both_backends!(a_deleted_file_answers_503_until_the_next_sync_downloads_it_again);
async fn a_deleted_file_answers_503_until_the_next_sync_downloads_it_again(backend: Backend) {
    let Some(s) = spawn_synced_on(backend, SimConfig::default()).await else {
        return;
    };
    let cookie = s.app.sign_in(VIEWER).await;
    let files = readable_files(&s, &*s.app.store).await;
    let id = &files[0].0;
    assert_eq!(download(&s, &cookie, id).await.0, 200);

    for full in [false, true] {
        delete_all_blobs(&*s.app.store).await;
        let (status, body) = download(&s, &cookie, id).await;
        assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
        // Someone who may not read the page still learns nothing (the gate comes first).
        let stranger = s.app.sign_in("ian@initech.io").await;
        let page_space = {
            let rec = s.app.store.attachment(id).await.unwrap().unwrap();
            let page = s
                .app
                .store
                .page_summary(&rec.page_id)
                .await
                .unwrap()
                .unwrap();
            s.app
                .store
                .space(&page.space_id)
                .await
                .unwrap()
                .unwrap()
                .key
        };
        if page_space != "API" {
            assert_eq!(download(&s, &stranger, id).await.0, 404);
        }
        // The next sync (incremental, then full) downloads the bytes again.
        sync(&s, &*s.app.store, full).await;
        for (id, bytes) in &files {
            let (status, body) = download(&s, &cookie, id).await;
            assert_eq!(status, 200, "{id} after a sync (full: {full})");
            assert_eq!(&body, bytes, "{id}");
        }
    }
}
