//! The page tree is built from per-space summaries cached between sync commits: a commit that
//! restricts, relabels or removes a page must show on the very next request, in the space
//! tree and in every page's sidebar.

mod common;

use chrono::Utc;
use common::*;
use kbgate_store::{SyncMode, SyncState};

async fn restrict(app: &TestApp, page_id: &str) {
    let page = app.store.page(page_id).await.unwrap().unwrap();
    let space = app.store.space(&page.space_id).await.unwrap().unwrap();
    let mut tx = app
        .store
        .begin_space_sync(&space, SyncMode::Incremental)
        .await
        .unwrap();
    assert!(tx.set_restrictions(page_id, true, true).await.unwrap());
    tx.commit(SyncState {
        space_key: space.key.clone(),
        space_id: space.id.clone(),
        watermark: None,
        last_full_sync: None,
        last_sync: Some(Utc::now()),
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_page_restricted_by_a_sync_leaves_the_cached_tree_at_once() {
    let app = spawn_app().await;
    let cookie = app.sign_in("alice@acme.com").await;
    // Warm the cache: the tree and a sidebar both list the child page.
    for path in ["/spaces/KB", &format!("/pages/{}", ids::WELCOME)] {
        let (status, html) = app.get_text(path, &cookie).await;
        assert_eq!(status, 200, "{path}");
        assert!(html.contains("Child page"), "{path} lists the child first");
    }
    restrict(&app, ids::CHILD).await;
    for path in ["/spaces/KB", &format!("/pages/{}", ids::WELCOME)] {
        let (status, html) = app.get_text(path, &cookie).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            !html.contains("Child page"),
            "{path} still lists a page restricted by the last sync"
        );
    }
    let (status, json) = app
        .api_get("/api/v1/spaces/KB/tree", "alice@acme.com")
        .await;
    assert_eq!(status, 200);
    assert!(!json.to_string().contains("Child page"), "{json}");
    assert_eq!(
        app.get(&format!("/pages/{}", ids::CHILD), Some(&cookie))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn viewers_with_other_label_filters_never_share_a_cached_tree() {
    let app = spawn_app().await;
    let acme = app.sign_in("alice@acme.com").await;
    let partner = app.sign_in("pat@partner.com").await;
    // acme (all of KB) warms the cache first; partner reads only pages labelled `public`.
    for _ in 0..2 {
        let (_, html) = app.get_text("/spaces/KB", &acme).await;
        assert!(html.contains("Child page") && html.contains("Public FAQ"));
        let (status, html) = app.get_text("/spaces/KB", &partner).await;
        assert_eq!(status, 200);
        assert!(
            html.contains("Public FAQ"),
            "partner sees its labelled page"
        );
        assert!(
            !html.contains("Child page") && !html.contains("Welcome"),
            "partner's tree holds only labelled pages"
        );
    }
}
