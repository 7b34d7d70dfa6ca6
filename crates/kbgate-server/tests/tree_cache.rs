//! The page tree is built from per-space summaries, and page views are kept resolved, between
//! sync commits: a commit that restricts, relabels or removes a page must show on the very next
//! request when this process made it (in the space tree, every page's sidebar and the page
//! itself), and within `CHANGE_POLL` when another process did. A cached view is only ever
//! shown to viewers who may read exactly the same things.

mod common;

use chrono::Utc;
use common::*;
use kbgate_store::{SyncMode, SyncState};

async fn restrict(app: &TestApp, page_id: &str) {
    restrict_in(&app.store, page_id).await
}

async fn restrict_in(store: &std::sync::Arc<dyn kbgate_store::Store>, page_id: &str) {
    let page = store.page(page_id).await.unwrap().unwrap();
    let space = store.space(&page.space_id).await.unwrap().unwrap();
    let mut tx = store
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

#[tokio::test]
async fn a_cached_page_view_is_shown_only_to_viewers_of_the_same_reach() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@acme.com").await;
    let bob = app.sign_in("bob@acme.com").await;
    let partner = app.sign_in("pat@partner.com").await;
    let faq = format!("/pages/{}", ids::PUBLIC_FAQ);
    // alice (all of KB) warms the view: its sidebar names pages partner may not read.
    let (status, html) = app.get_text(&faq, &alice).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Public FAQ") && html.contains("Welcome"),
        "{html}"
    );
    assert!(html.contains("alice@acme.com"));
    for _ in 0..2 {
        // partner reads only `public` pages of KB: same page, its own view.
        let (status, html) = app.get_text(&faq, &partner).await;
        assert_eq!(status, 200);
        assert!(html.contains("Public FAQ"));
        for hidden in ["Welcome", "Child page", "alice@acme.com"] {
            assert!(!html.contains(hidden), "partner's view shows {hidden:?}");
        }
        // bob has alice's reach: he may get her resolved view, never her header.
        let (status, html) = app.get_text(&faq, &bob).await;
        assert_eq!(status, 200);
        assert!(html.contains("Welcome") && html.contains("bob@acme.com"));
        assert!(
            !html.contains("alice@acme.com"),
            "alice's header in bob's view"
        );
    }
}

#[tokio::test]
async fn a_cached_page_view_leaves_at_once_when_this_process_restricts_it() {
    let app = spawn_app().await;
    let cookie = app.sign_in("alice@acme.com").await;
    let child = format!("/pages/{}", ids::CHILD);
    for _ in 0..2 {
        assert_eq!(app.get(&child, Some(&cookie)).await.status(), 200);
    }
    restrict(&app, ids::CHILD).await;
    assert_eq!(app.get(&child, Some(&cookie)).await.status(), 404);
    let (status, json) = app
        .api_get(&format!("/api/v1{child}"), "alice@acme.com")
        .await;
    assert_eq!(status, 404, "{json}");
}

#[tokio::test]
async fn a_restriction_committed_by_another_process_shows_within_the_poll_window() {
    let app = spawn_app().await;
    let cookie = app.sign_in("alice@acme.com").await;
    let child = format!("/pages/{}", ids::CHILD);
    let welcome = format!("/pages/{}", ids::WELCOME);
    for path in [&child, &welcome, &"/spaces/KB".to_owned()] {
        let (status, html) = app.get_text(path, &cookie).await;
        assert_eq!(status, 200, "{path}");
        assert!(html.contains("Child page"), "{path}");
    }
    // `kbgate sync` from cron: another process commits to the same database.
    let other = app.other_process_store().await;
    restrict_in(&other, ids::CHILD).await;
    tokio::time::sleep(kbgate_store::CHANGE_POLL + std::time::Duration::from_millis(20)).await;
    assert_eq!(app.get(&child, Some(&cookie)).await.status(), 404);
    for path in [&welcome, &"/spaces/KB".to_owned()] {
        let (status, html) = app.get_text(path, &cookie).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            !html.contains("Child page"),
            "{path} still lists the restricted page"
        );
    }
}

#[tokio::test]
async fn a_session_revoked_by_another_process_ends_within_the_poll_window() {
    let app = spawn_app().await;
    let cookie = app.sign_in("alice@acme.com").await;
    let welcome = format!("/pages/{}", ids::WELCOME);
    for _ in 0..2 {
        assert_eq!(app.get(&welcome, Some(&cookie)).await.status(), 200);
    }
    let other = app.other_process_store().await;
    assert_eq!(
        other
            .revoke_sessions_by_email("alice@acme.com")
            .await
            .unwrap(),
        1
    );
    tokio::time::sleep(kbgate_store::CHANGE_POLL + std::time::Duration::from_millis(20)).await;
    for path in [welcome.as_str(), "/", "/spaces/KB", "/api/v1/spaces"] {
        assert_eq!(app.get(path, Some(&cookie)).await.status(), 401, "{path}");
    }
}

/// One commit of KB (from `store`) adding a page under `parent`.
async fn add_page_in(
    store: &std::sync::Arc<dyn kbgate_store::Store>,
    id: &str,
    parent: &str,
    title: &str,
) {
    let mut page = store.page(parent).await.unwrap().unwrap();
    let space = store.space(&page.space_id).await.unwrap().unwrap();
    page.id = id.into();
    page.parent_id = Some(parent.into());
    page.title = title.into();
    page.restricted = false;
    page.effective_restricted = false;
    let mut tx = store
        .begin_space_sync(&space, SyncMode::Incremental)
        .await
        .unwrap();
    tx.upsert_page(page).await.unwrap();
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
async fn a_commit_to_one_space_restricts_at_once_and_leaves_the_others_served() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@acme.com").await;
    let bob = app.sign_in("bob@other.com").await;
    let child = format!("/pages/{}", ids::CHILD);
    let hr = format!("/pages/{}", ids::HR);
    for _ in 0..2 {
        assert_eq!(app.get(&child, Some(&alice)).await.status(), 200);
        assert_eq!(app.get(&hr, Some(&bob)).await.status(), 200);
        assert_eq!(app.get("/spaces/HR", Some(&bob)).await.status(), 200);
    }
    // From this process, then (for another page) from another one, as cron's sync would.
    restrict(&app, ids::CHILD).await;
    assert_eq!(app.get(&child, Some(&alice)).await.status(), 404);
    let (status, html) = app.get_text(&hr, &bob).await;
    assert_eq!(status, 200);
    assert!(html.contains("Salaries"));
    let other = app.other_process_store().await;
    restrict_in(&other, ids::PUBLIC_FAQ).await;
    tokio::time::sleep(kbgate_store::CHANGE_POLL + std::time::Duration::from_millis(20)).await;
    let faq = format!("/pages/{}", ids::PUBLIC_FAQ);
    assert_eq!(app.get(&faq, Some(&alice)).await.status(), 404);
    let (_, html) = app.get_text("/spaces/KB", &alice).await;
    assert!(
        !html.contains("Public FAQ") && !html.contains("Child page"),
        "{html}"
    );
    assert_eq!(app.get(&hr, Some(&bob)).await.status(), 200);
}

#[tokio::test]
async fn the_space_index_shows_the_first_levels_and_links_to_the_deeper_ones() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@acme.com").await;
    let partner = app.sign_in("pat@partner.com").await;
    add_page_in(&app.store, "1010", ids::CHILD, "Grandchild page").await;
    add_page_in(&app.store, "1011", "1010", "Great-grandchild page").await;

    let (status, html) = app.get_text("/spaces/KB", &alice).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Welcome") && html.contains("Child page"),
        "{html}"
    );
    assert!(
        !html.contains("Grandchild page"),
        "the third level is sent with the index: {html}"
    );
    let below = format!("/spaces/KB?under={}", ids::CHILD);
    assert!(html.contains(&format!("href=\"{below}\"")), "{html}");
    assert!(html.contains("2 pages below"), "{html}");

    // The levels under a node, with the way back up; served from the cache the second time.
    for _ in 0..2 {
        let (status, html) = app.get_text(&below, &alice).await;
        assert_eq!(status, 200);
        assert!(
            html.contains("Grandchild page") && html.contains("Great-grandchild page"),
            "{html}"
        );
        assert!(
            html.contains(&format!("href=\"/spaces/KB?under={}\"", ids::WELCOME)),
            "{html}"
        );
        assert!(!html.contains("Public FAQ"), "{html}");
    }

    // Only readable nodes of the viewer's own tree: restricted, other spaces', unlabelled
    // for a label-filtered viewer, unknown — all 404, as a missing page.
    for under in [
        ids::RESTRICTED,
        ids::UNDER_RESTRICTED,
        ids::HR,
        "9999",
        "x'y",
    ] {
        let path = format!("/spaces/KB?under={under}");
        assert_eq!(app.get(&path, Some(&alice)).await.status(), 404, "{path}");
    }
    assert_eq!(app.get(&below, Some(&partner)).await.status(), 404);
    let (status, html) = app.get_text("/spaces/KB", &partner).await;
    assert_eq!(status, 200);
    assert!(!html.contains("Child page") && !html.contains("Grandchild"));

    // A restriction committed now shows in the cached index at once.
    restrict(&app, ids::CHILD).await;
    assert_eq!(app.get(&below, Some(&alice)).await.status(), 404);
    let (_, html) = app.get_text("/spaces/KB", &alice).await;
    assert!(
        !html.contains("Child page") && !html.contains(&below),
        "{html}"
    );
}
