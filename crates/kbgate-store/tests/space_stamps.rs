//! Per-space content stamps ([`MirrorRead::space_stamps`]): what a portal keys its caches on.
//! A commit that changes nothing readers read leaves the stamp alone; a change moves the stamp
//! of its own space only; a removal moves it too. The shape stamp moves only with what trees
//! and indexes show or who may read what, never with a body edit. On both backends.

use chrono::Utc;
use kbgate_store::testing::TestStore;
use kbgate_store::*;

kbgate_store::store_tests!(
    only_commits_that_change_something_move_their_space_stamp,
    only_changes_of_shape_move_the_shape_stamp,
    removing_a_space_moves_its_stamp,
    a_space_description_or_icon_change_moves_the_shape_stamp,
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

fn page(id: &str, space_id: &str) -> PageRecord {
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
        restricted: false,
        effective_restricted: false,
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

async fn stamps(store: &dyn Store, key: &str) -> (i64, i64) {
    store
        .space_stamps()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.space_key == key)
        .map_or((0, 0), |s| (s.content, s.shape))
}

async fn stamp(store: &dyn Store, key: &str) -> i64 {
    stamps(store, key).await.0
}

async fn shape(store: &dyn Store, key: &str) -> i64 {
    stamps(store, key).await.1
}

/// One incremental sync of `sp` at its current generation, running `f` inside.
async fn sync<F>(store: &dyn Store, sp: &SpaceRecord, f: F)
where
    F: for<'a> FnOnce(
        &'a mut dyn SpaceSync,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>,
{
    let generation = store.sync_generation(&sp.key).await.unwrap();
    let mut tx = store
        .begin_space_sync_at(sp, SyncMode::Incremental, generation)
        .await
        .unwrap();
    f(&mut *tx).await;
    tx.commit(state(sp)).await.unwrap();
}

async fn only_commits_that_change_something_move_their_space_stamp(t: &TestStore) {
    let store = &*t.store;
    let (a, b) = (space("SA", "AAA"), space("SB", "BBB"));
    sync(store, &a, |tx| {
        Box::pin(async move { tx.upsert_page(page("1", "SA")).await.unwrap() })
    })
    .await;
    sync(store, &b, |tx| {
        Box::pin(async move { tx.upsert_page(page("2", "SB")).await.unwrap() })
    })
    .await;
    let (a0, b0) = (stamp(store, "AAA").await, stamp(store, "BBB").await);
    assert!(a0 > 0 && b0 > 0, "first commits change their spaces");

    // Nothing new: the generation moves (compare-and-set), the content stamp does not; nor
    // does re-stating flags a page already has, or marking rows kept.
    let g = store.sync_generation("AAA").await.unwrap();
    sync(store, &a, |tx| {
        Box::pin(async move {
            assert!(tx.set_restrictions("1", false, false).await.unwrap());
            tx.keep_pages(&["1".to_owned()]).await.unwrap();
            assert_eq!(tx.recompute_effective_restricted().await.unwrap(), 0);
        })
    })
    .await;
    assert_eq!(store.sync_generation("AAA").await.unwrap(), g + 1);
    assert_eq!(
        stamp(store, "AAA").await,
        a0,
        "an empty commit moved the stamp"
    );

    // A restriction in A moves A's stamp, never B's.
    sync(store, &a, |tx| {
        Box::pin(async move { assert!(tx.set_restrictions("1", true, true).await.unwrap()) })
    })
    .await;
    let a1 = stamp(store, "AAA").await;
    assert!(a1 > a0, "a restriction must move its space's stamp");
    assert_eq!(stamp(store, "BBB").await, b0, "A's commit moved B's stamp");
    assert!(store.page("1").await.unwrap().unwrap().restricted);

    // A changed space record is a change; the same record is not.
    let renamed = SpaceRecord {
        name: "Renamed".into(),
        ..a.clone()
    };
    sync(store, &renamed, |_| Box::pin(async {})).await;
    let a2 = stamp(store, "AAA").await;
    assert!(a2 > a1, "a renamed space must move its stamp");
    sync(store, &renamed, |_| Box::pin(async {})).await;
    assert_eq!(stamp(store, "AAA").await, a2);

    // Removing a page is a change.
    sync(store, &b, |tx| {
        Box::pin(async move { assert!(tx.delete_page("2").await.unwrap()) })
    })
    .await;
    assert!(stamp(store, "BBB").await > b0);
}

async fn removing_a_space_moves_its_stamp(t: &TestStore) {
    let store = &*t.store;
    let a = space("SA", "AAA");
    sync(store, &a, |tx| {
        Box::pin(async move { tx.upsert_page(page("1", "SA")).await.unwrap() })
    })
    .await;
    let (a0, s0) = stamps(store, "AAA").await;
    assert!(store.delete_space("SA").await.unwrap());
    let (a1, s1) = stamps(store, "AAA").await;
    assert!(a1 > a0 && s1 > s0, "{a0}/{s0} -> {a1}/{s1}");
}

/// Commits `p` (written whole) in `sp`.
async fn write(store: &dyn Store, sp: &SpaceRecord, p: PageRecord) {
    sync(store, sp, |tx| {
        Box::pin(async move { tx.upsert_page(p).await.unwrap() })
    })
    .await;
}

async fn only_changes_of_shape_move_the_shape_stamp(t: &TestStore) {
    let store = &*t.store;
    let a = space("SA", "AAA");
    let base = page("1", "SA");
    sync(store, &a, |tx| {
        let (p1, p2) = (base.clone(), page("2", "SA"));
        Box::pin(async move { tx.upsert_pages(vec![p1, p2]).await.unwrap() })
    })
    .await;
    let (c0, s0) = stamps(store, "AAA").await;
    assert!(
        c0 > 0 && s0 == c0,
        "a first commit is a change of shape: {c0}/{s0}"
    );

    // A body edit (new version, date and body) moves the content stamp only.
    let edited = PageRecord {
        version: 2,
        updated_at: Utc::now(),
        body_storage: "<p>y</p>".into(),
        body_html: "<p>y</p>".into(),
        body_text: "y".into(),
        ..base.clone()
    };
    write(store, &a, edited.clone()).await;
    let (c1, s1) = stamps(store, "AAA").await;
    assert!(c1 > c0, "a body edit must move the content stamp");
    assert_eq!(s1, s0, "a body edit moved the shape stamp");

    // Each of these is a change of shape.
    let changes: Vec<(&str, PageRecord)> = vec![
        (
            "retitle",
            PageRecord {
                title: "New title".into(),
                ..edited.clone()
            },
        ),
        (
            "relabel",
            PageRecord {
                labels: vec!["public".into()],
                ..edited.clone()
            },
        ),
        (
            "restrict",
            PageRecord {
                restricted: true,
                effective_restricted: true,
                ..edited.clone()
            },
        ),
        ("unrestrict", edited.clone()),
        (
            "move",
            PageRecord {
                parent_id: Some("2".into()),
                ..edited.clone()
            },
        ),
        (
            "reorder",
            PageRecord {
                parent_id: Some("2".into()),
                position: 5,
                ..edited.clone()
            },
        ),
        ("new page", page("3", "SA")),
    ];
    let mut last = s1;
    for (what, p) in changes {
        write(store, &a, p).await;
        let s = shape(store, "AAA").await;
        assert!(s > last, "{what} must move the shape stamp");
        last = s;
    }
    sync(store, &a, |tx| {
        Box::pin(async move { assert!(tx.set_restrictions("2", true, true).await.unwrap()) })
    })
    .await;
    assert!(
        shape(store, "AAA").await > last,
        "set_restrictions must move the shape stamp"
    );
    last = shape(store, "AAA").await;
    sync(store, &a, |tx| {
        Box::pin(async move { assert!(tx.delete_page("3").await.unwrap()) })
    })
    .await;
    assert!(
        shape(store, "AAA").await > last,
        "a removal must move the shape stamp"
    );
}

/// The start page shows each space's description and icon: both are kept with the space
/// record (read back as written), and a change of either moves the shape stamp like a
/// rename, so cached start pages and indexes refresh. The bytes' hash counts as referenced.
async fn a_space_description_or_icon_change_moves_the_shape_stamp(t: &TestStore) {
    let store = &*t.store;
    let mut a = space("SA", "AAA");
    let b = space("SB", "BBB");
    for sp in [&a, &b] {
        let id = sp.id.clone();
        sync(store, sp, move |tx| {
            Box::pin(async move { tx.upsert_page(page(&format!("p{id}"), &id)).await.unwrap() })
        })
        .await;
    }
    let read = store.space_by_key("AAA").await.unwrap().unwrap();
    assert_eq!(
        (read.description.as_str(), read.icon_path, read.icon),
        ("", None, None)
    );

    let shape0 = shape(store, "AAA").await;
    let other0 = stamps(store, "BBB").await;
    a.description = "Guides & <answers>".into();
    sync(store, &a, |_| Box::pin(async {})).await;
    let shape1 = shape(store, "AAA").await;
    assert!(shape1 > shape0, "a new description moves the shape");

    let blob = store
        .blobs()
        .write_bytes(b"\x89PNG\r\n\x1a\nicon")
        .await
        .unwrap();
    a.icon_path = Some("/wiki/download/attachments/2/AAA.png?version=1".into());
    a.icon = Some(SpaceIcon {
        media_type: "image/png".into(),
        blob: blob.clone(),
    });
    sync(store, &a, |_| Box::pin(async {})).await;
    let shape2 = shape(store, "AAA").await;
    assert!(shape2 > shape1, "a new icon moves the shape");
    assert_eq!(store.space_by_key("AAA").await.unwrap().unwrap(), a);
    assert_eq!(store.space("SA").await.unwrap().unwrap(), a);
    assert!(store.list_spaces().await.unwrap().contains(&a));
    assert!(
        store
            .blob_hashes()
            .await
            .unwrap()
            .contains(&blob.sha256().to_owned())
    );

    // The same record again: nothing moves.
    sync(store, &a, |_| Box::pin(async {})).await;
    assert_eq!(shape(store, "AAA").await, shape2);
    // A refused icon (path kept, no image) is a change too.
    a.icon = None;
    sync(store, &a, |_| Box::pin(async {})).await;
    assert!(shape(store, "AAA").await > shape2);
    assert!(
        !store
            .blob_hashes()
            .await
            .unwrap()
            .contains(&blob.sha256().to_owned())
    );
    assert_eq!(
        stamps(store, "BBB").await,
        other0,
        "other spaces keep their stamps"
    );
}
