//! One suite, both backends: every test is an `async fn(&TestStore)` run once on SQLite and
//! once on PostgreSQL (skipped with a visible line when PostgreSQL is unreachable outside CI).

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Duration, TimeZone, Utc};
use kbgate_store::testing::TestStore;
use kbgate_store::*;

kbgate_store::store_tests!(
    migrations_are_idempotent,
    full_sync_replaces_and_sweeps,
    full_sync_keep_marks_without_rewriting,
    incremental_sync_upserts_and_deletes,
    dropped_sync_rolls_back_and_readers_see_old_state,
    tree_reads,
    effective_restrictions_are_recomputed_fail_closed,
    sync_refuses_pages_of_another_space,
    search_respects_scope_labels_and_restrictions,
    search_ranks_title_over_body_and_marks_excerpts,
    search_pages_through_results,
    search_survives_hostile_queries,
    search_scopes_are_exact_for_look_alike_spaces_and_labels,
    search_in_a_big_site_stays_in_scope_and_bounded,
    search_follows_restrictions_labels_and_moves,
    search_of_stop_words_alone_finds_no_unrelated_pages,
    attachments_metadata_names_and_blobs,
    jti_is_single_use_under_concurrency,
    codes_are_single_use_and_expire,
    sessions_expire_and_revoke,
    sessions_revoked_under_a_domain_and_listed,
    audit_people_journal_ownership,
    admin_sessions_end_with_their_reader_session,
    audit_filters,
    the_latest_native_plan_is_kept,
    delete_space_removes_everything,
    change_stamps_move_with_what_portals_cache,
);

fn ts(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 1, 12, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn space(id: &str, key: &str) -> SpaceRecord {
    SpaceRecord {
        id: id.into(),
        key: key.into(),
        name: format!("Space {key}"),
        homepage_id: None,
        ..Default::default()
    }
}

fn page(id: &str, space_id: &str, parent: Option<&str>, position: i64, title: &str) -> PageRecord {
    PageRecord {
        id: id.into(),
        space_id: space_id.into(),
        parent_id: parent.map(Into::into),
        position,
        title: title.into(),
        version: 1,
        created_at: ts(0),
        updated_at: ts(1),
        labels: vec![],
        restricted: false,
        effective_restricted: false,
        body_storage: format!("<p>{title}</p>"),
        body_html: format!("<p>{title}</p>"),
        body_text: format!("Body of {title}."),
        headings: vec![Heading {
            level: 2,
            text: "Intro".into(),
            anchor: "intro".into(),
        }],
    }
}

fn body(mut p: PageRecord, text: &str) -> PageRecord {
    p.body_text = text.into();
    p
}

fn labels(mut p: PageRecord, labels: &[&str]) -> PageRecord {
    p.labels = labels.iter().map(|l| l.to_string()).collect();
    p
}

fn state(s: &SpaceRecord, full: bool, at: i64) -> SyncState {
    SyncState {
        space_key: s.key.clone(),
        space_id: s.id.clone(),
        watermark: Some(ts(at)),
        last_full_sync: full.then(|| ts(at)),
        last_sync: Some(ts(at)),
    }
}

fn attachment(id: &str, page_id: &str, name: &str, blob: Option<BlobRef>) -> AttachmentRecord {
    AttachmentRecord {
        id: id.into(),
        page_id: page_id.into(),
        title: name.into(),
        media_type: "application/pdf".into(),
        file_size: 3,
        version: 1,
        updated_at: ts(2),
        blob,
    }
}

async fn ids(store: &dyn Store, space_id: &str) -> Vec<String> {
    let mut v: Vec<String> = store
        .page_summaries(space_id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    v.sort();
    v
}

/// Writes pages in one full sync of `s`.
async fn full_sync(store: &dyn Store, s: &SpaceRecord, pages: Vec<PageRecord>) {
    let mut sync = store.begin_space_sync(s, SyncMode::Full).await.unwrap();
    sync.upsert_pages(pages).await.unwrap();
    sync.commit(state(s, true, 10)).await.unwrap();
}

fn scope(space_id: &str) -> ScopeEntry {
    ScopeEntry {
        space_id: space_id.into(),
        labels: None,
    }
}

async fn hit_ids(store: &dyn Store, q: &str, scope: &[ScopeEntry]) -> Vec<String> {
    let mut v: Vec<String> = store
        .search(q, scope, 50, 0)
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.page_id)
        .collect();
    v.sort();
    v
}

// ----- tests -----------------------------------------------------------------------------

async fn migrations_are_idempotent(t: &TestStore) {
    let s = space("S1", "KB");
    full_sync(&**t, &s, vec![page("1", "S1", None, 0, "Home")]).await;
    // Opening again runs the migrations again: nothing breaks, nothing is lost.
    let again = t.reopen().await.unwrap();
    let third = t.reopen().await.unwrap();
    assert_eq!(again.list_spaces().await.unwrap(), vec![s.clone()]);
    assert_eq!(third.page("1").await.unwrap().unwrap().title, "Home");
    assert_eq!(again.backend(), t.backend());
}

async fn full_sync_replaces_and_sweeps(t: &TestStore) {
    let s = space("S1", "KB");
    let mut sync = t.begin_space_sync(&s, SyncMode::Full).await.unwrap();
    assert_eq!(sync.mode(), SyncMode::Full);
    sync.upsert_pages(vec![
        page("1", "S1", None, 0, "Home"),
        page("2", "S1", Some("1"), 0, "Two"),
        page("3", "S1", Some("1"), 1, "Three"),
    ])
    .await
    .unwrap();
    sync.upsert_attachment(attachment("a3", "3", "three.pdf", None))
        .await
        .unwrap();
    sync.upsert_attachment(attachment("a1", "1", "one.pdf", None))
        .await
        .unwrap();
    let stats = sync.commit(state(&s, true, 10)).await.unwrap();
    assert_eq!(stats, SyncCommitStats::default());
    assert_eq!(ids(&**t, "S1").await, ["1", "2", "3"]);
    assert_eq!(t.sync_state("KB").await.unwrap(), Some(state(&s, true, 10)));

    // Second full pass: page 3 (and its attachment) vanished upstream, 2 changed.
    let mut sync = t.begin_space_sync(&s, SyncMode::Full).await.unwrap();
    let mut two = page("2", "S1", Some("1"), 0, "Two v2");
    two.version = 2;
    sync.upsert_pages(vec![page("1", "S1", None, 0, "Home"), two])
        .await
        .unwrap();
    sync.upsert_attachment(attachment("a1", "1", "one.pdf", None))
        .await
        .unwrap();
    let stats = sync.commit(state(&s, true, 20)).await.unwrap();
    assert_eq!(
        stats,
        SyncCommitStats {
            swept_pages: 1,
            swept_attachments: 1
        }
    );
    assert_eq!(ids(&**t, "S1").await, ["1", "2"]);
    assert!(t.page("3").await.unwrap().is_none());
    assert!(t.attachment("a3").await.unwrap().is_none());
    assert!(t.attachment("a1").await.unwrap().is_some());
    let two = t.page("2").await.unwrap().unwrap();
    assert_eq!((two.title.as_str(), two.version), ("Two v2", 2));
    assert_eq!(
        t.page_versions("S1").await.unwrap(),
        vec![("1".to_string(), 1), ("2".to_string(), 2)]
    );
    assert_eq!(t.sync_state("KB").await.unwrap(), Some(state(&s, true, 20)));
    let stats = t.mirror_stats().await.unwrap();
    assert_eq!((stats.spaces, stats.pages, stats.attachments), (1, 2, 1));
}

async fn full_sync_keep_marks_without_rewriting(t: &TestStore) {
    let s = space("S1", "KB");
    full_sync(
        &**t,
        &s,
        vec![
            page("1", "S1", None, 0, "Home"),
            page("2", "S1", Some("1"), 0, "Two"),
        ],
    )
    .await;
    let mut sync = t.begin_space_sync(&s, SyncMode::Full).await.unwrap();
    assert_eq!(
        sync.keep_pages(&["1".into(), "nope".into()]).await.unwrap(),
        1
    );
    let stats = sync.commit(state(&s, true, 20)).await.unwrap();
    assert_eq!(stats.swept_pages, 1);
    assert_eq!(ids(&**t, "S1").await, ["1"]);
    // Kept, not rewritten: the body is still there.
    assert_eq!(
        t.page("1").await.unwrap().unwrap().body_text,
        "Body of Home."
    );
}

async fn incremental_sync_upserts_and_deletes(t: &TestStore) {
    let s = space("S1", "KB");
    full_sync(
        &**t,
        &s,
        vec![
            page("1", "S1", None, 0, "Home"),
            page("2", "S1", Some("1"), 0, "Two"),
            page("3", "S1", Some("1"), 1, "Three"),
        ],
    )
    .await;
    let mut sync = t.begin_space_sync(&s, SyncMode::Incremental).await.unwrap();
    assert_eq!(sync.mode(), SyncMode::Incremental);
    sync.upsert_page(page("4", "S1", Some("3"), 0, "Four"))
        .await
        .unwrap();
    assert!(sync.delete_page("2").await.unwrap());
    assert!(!sync.delete_page("missing").await.unwrap());
    let stats = sync.commit(state(&s, false, 30)).await.unwrap();
    assert_eq!(stats, SyncCommitStats::default());
    assert_eq!(ids(&**t, "S1").await, ["1", "3", "4"]);
    let st = t.sync_state("KB").await.unwrap().unwrap();
    assert_eq!((st.watermark, st.last_full_sync), (Some(ts(30)), None));
}

async fn dropped_sync_rolls_back_and_readers_see_old_state(t: &TestStore) {
    let s = space("S1", "KB");
    full_sync(
        &**t,
        &s,
        vec![
            page("1", "S1", None, 0, "Home"),
            page("2", "S1", Some("1"), 0, "Two"),
        ],
    )
    .await;
    {
        let mut sync = t.begin_space_sync(&s, SyncMode::Full).await.unwrap();
        sync.upsert_page(page("1", "S1", None, 0, "Home changed"))
            .await
            .unwrap();
        sync.upsert_page(page("9", "S1", Some("1"), 5, "New"))
            .await
            .unwrap();
        assert!(sync.delete_page("2").await.unwrap());
        // A reader during the sync sees the previous mirror.
        assert_eq!(ids(&**t, "S1").await, ["1", "2"]);
        assert_eq!(t.page("1").await.unwrap().unwrap().title, "Home");
        assert!(
            t.search("New", &[scope("S1")], 10, 0)
                .await
                .unwrap()
                .hits
                .is_empty()
        );
        // Crash: the sync is dropped without commit.
    }
    assert_eq!(ids(&**t, "S1").await, ["1", "2"]);
    assert_eq!(t.page("1").await.unwrap().unwrap().title, "Home");
    assert_eq!(t.sync_state("KB").await.unwrap(), Some(state(&s, true, 10)));

    // Explicit rollback behaves the same.
    let mut sync = t.begin_space_sync(&s, SyncMode::Full).await.unwrap();
    sync.upsert_page(page("9", "S1", None, 0, "Nine"))
        .await
        .unwrap();
    sync.rollback().await.unwrap();
    assert_eq!(ids(&**t, "S1").await, ["1", "2"]);

    // The next sync completes normally.
    full_sync(&**t, &s, vec![page("1", "S1", None, 0, "Home v2")]).await;
    assert_eq!(ids(&**t, "S1").await, ["1"]);
    assert_eq!(hit_ids(&**t, "home", &[scope("S1")]).await, ["1"]);
}

async fn tree_reads(t: &TestStore) {
    let s = space("S1", "KB");
    let s2 = space("S2", "OTHER");
    full_sync(
        &**t,
        &s,
        vec![
            page("root", "S1", None, 0, "Root"),
            page("b", "S1", Some("root"), 2, "Bravo"),
            page("a", "S1", Some("root"), 1, "Alpha"),
            labels(page("c", "S1", Some("root"), 1, "Charlie"), &["faq", "faq"]),
            labels(
                page("a1", "S1", Some("a"), 0, "Alpha One"),
                &["faq", "howto"],
            ),
            page("a1x", "S1", Some("a1"), 0, "Deep"),
        ],
    )
    .await;
    full_sync(
        &**t,
        &s2,
        vec![labels(page("o", "S2", None, 0, "Alpha"), &["faq"])],
    )
    .await;

    let kids: Vec<String> = t
        .children("root")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(kids, ["a", "c", "b"], "by position, then title");
    let anc: Vec<String> = t
        .ancestors("a1x")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(anc, ["root", "a", "a1"], "root first, page excluded");
    assert!(t.ancestors("root").await.unwrap().is_empty());
    assert!(t.ancestors("missing").await.unwrap().is_empty());

    let tree = t.page_summaries("S1").await.unwrap();
    assert_eq!(tree.len(), 6);
    assert_eq!(tree[0].id, "root", "roots first");
    let order: Vec<(Option<String>, String)> = tree
        .iter()
        .map(|p| (p.parent_id.clone(), p.id.clone()))
        .collect();
    let pos = |id: &str| order.iter().position(|(_, i)| i == id).unwrap();
    assert!(
        pos("a") < pos("c") && pos("c") < pos("b"),
        "siblings in position order"
    );

    let by_title = t.page_by_title("KB", "Alpha").await.unwrap().unwrap();
    assert_eq!(by_title.id, "a");
    assert_eq!(
        t.page_by_title("OTHER", "Alpha").await.unwrap().unwrap().id,
        "o"
    );
    assert!(
        t.page_by_title("KB", "alpha").await.unwrap().is_none(),
        "exact title"
    );
    assert!(t.page_by_title("NOPE", "Alpha").await.unwrap().is_none());

    let faq: Vec<String> = t
        .pages_with_label("S1", "faq")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(faq, ["a1", "c"]);
    assert_eq!(t.page("c").await.unwrap().unwrap().labels, ["faq", "faq"]);

    let mut some: Vec<String> = t
        .page_summaries_by_ids(&["a".into(), "o".into(), "zzz".into()])
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    some.sort();
    assert_eq!(some, ["a", "o"]);
    assert!(t.page_summaries_by_ids(&[]).await.unwrap().is_empty());

    let full = t.page("a1").await.unwrap().unwrap();
    assert_eq!(
        full,
        labels(
            page("a1", "S1", Some("a"), 0, "Alpha One"),
            &["faq", "howto"]
        )
    );
    assert_eq!(
        t.page_summary("a1").await.unwrap().unwrap(),
        PageSummary::from(&full)
    );
    assert_eq!(t.space_by_key("OTHER").await.unwrap(), Some(s2.clone()));
    assert_eq!(t.space("S1").await.unwrap(), Some(s.clone()));
    assert_eq!(t.list_spaces().await.unwrap(), vec![s, s2]);
}

async fn effective_restrictions_are_recomputed_fail_closed(t: &TestStore) {
    let s = space("S1", "KB");
    let mut secret = page("sec", "S1", Some("root"), 0, "Secret");
    secret.restricted = true;
    let mut sync = t.begin_space_sync(&s, SyncMode::Full).await.unwrap();
    sync.upsert_pages(vec![
        page("root", "S1", None, 0, "Root"),
        secret,
        page("sec-child", "S1", Some("sec"), 0, "Below secret"),
        page("sec-grandchild", "S1", Some("sec-child"), 0, "Deeper"),
        page("open", "S1", Some("root"), 1, "Open"),
        page("orphan", "S1", Some("not-mirrored"), 0, "Orphan"),
        page("cyc1", "S1", Some("cyc2"), 0, "Cycle one"),
        page("cyc2", "S1", Some("cyc1"), 0, "Cycle two"),
    ])
    .await
    .unwrap();
    assert!(sync.recompute_effective_restricted().await.unwrap() >= 6);
    sync.commit(state(&s, true, 10)).await.unwrap();
    let eff = |id: &'static str| async move {
        t.page_summary(id)
            .await
            .unwrap()
            .unwrap()
            .effective_restricted
    };
    assert!(!eff("root").await);
    assert!(!eff("open").await);
    assert!(eff("sec").await);
    assert!(eff("sec-child").await);
    assert!(eff("sec-grandchild").await);
    assert!(eff("orphan").await, "missing parent fails closed");
    assert!(eff("cyc1").await && eff("cyc2").await, "cycles fail closed");
    assert_eq!(t.mirror_stats().await.unwrap().restricted_pages, 6);

    // Lifting the restriction (incremental, flags only) clears the descendants.
    let mut sync = t.begin_space_sync(&s, SyncMode::Incremental).await.unwrap();
    assert!(sync.set_restrictions("sec", false, false).await.unwrap());
    assert!(
        !sync
            .set_restrictions("missing", false, false)
            .await
            .unwrap()
    );
    assert_eq!(sync.recompute_effective_restricted().await.unwrap(), 2);
    sync.commit(state(&s, false, 20)).await.unwrap();
    assert!(!eff("sec-child").await);
    assert!(!eff("sec-grandchild").await);
    assert!(eff("orphan").await);
}

async fn sync_refuses_pages_of_another_space(t: &TestStore) {
    let s = space("S1", "KB");
    full_sync(
        &**t,
        &space("S2", "OTHER"),
        vec![page("o", "S2", None, 0, "Other")],
    )
    .await;
    let mut sync = t.begin_space_sync(&s, SyncMode::Full).await.unwrap();
    assert!(matches!(
        sync.upsert_page(page("x", "S2", None, 0, "Wrong")).await,
        Err(StoreError::Invalid(_))
    ));
    sync.upsert_page(page("1", "S1", None, 0, "Home"))
        .await
        .unwrap();
    assert!(matches!(
        sync.upsert_attachment(attachment("att", "o", "x.pdf", None))
            .await,
        Err(StoreError::Invalid(_))
    ));
    // Deleting by id only touches this space.
    assert!(!sync.delete_page("o").await.unwrap());
    sync.commit(state(&s, true, 10)).await.unwrap();
    assert!(t.page("o").await.unwrap().is_some());
}

/// Two spaces; labels; restricted pages; every page mentions "kiwi".
async fn seed_search(t: &TestStore) {
    let s1 = space("S1", "KB");
    let s2 = space("S2", "OTHER");
    let mut restricted = body(
        page("r", "S1", Some("1"), 3, "Restricted kiwi"),
        "kiwi secrets",
    );
    restricted.restricted = true;
    restricted.effective_restricted = true;
    full_sync(
        &**t,
        &s1,
        vec![
            body(
                page("1", "S1", None, 0, "Home"),
                "Welcome. We grow kiwi here.",
            ),
            labels(
                body(page("2", "S1", Some("1"), 0, "FAQ"), "kiwi questions"),
                &["faq"],
            ),
            labels(
                body(page("3", "S1", Some("1"), 1, "How to"), "kiwi how-to"),
                &["howto"],
            ),
            restricted,
        ],
    )
    .await;
    full_sync(
        &**t,
        &s2,
        vec![labels(
            body(page("o", "S2", None, 0, "Other"), "kiwi elsewhere"),
            &["faq"],
        )],
    )
    .await;
}

async fn search_respects_scope_labels_and_restrictions(t: &TestStore) {
    seed_search(t).await;
    assert_eq!(hit_ids(&**t, "kiwi", &[scope("S1")]).await, ["1", "2", "3"]);
    assert_eq!(hit_ids(&**t, "kiwi", &[scope("S2")]).await, ["o"]);
    assert_eq!(
        hit_ids(&**t, "kiwi", &[scope("S1"), scope("S2")]).await,
        ["1", "2", "3", "o"]
    );
    let faq_only = ScopeEntry {
        space_id: "S1".into(),
        labels: Some(vec!["faq".into(), "nothing".into()]),
    };
    assert_eq!(
        hit_ids(&**t, "kiwi", std::slice::from_ref(&faq_only)).await,
        ["2"]
    );
    assert_eq!(
        hit_ids(&**t, "kiwi", &[faq_only, scope("S2")]).await,
        ["2", "o"]
    );
    let no_labels = ScopeEntry {
        space_id: "S1".into(),
        labels: Some(vec![]),
    };
    assert!(hit_ids(&**t, "kiwi", &[no_labels]).await.is_empty());
    assert!(
        hit_ids(&**t, "kiwi", &[]).await.is_empty(),
        "empty scope sees nothing"
    );
    assert!(hit_ids(&**t, "kiwi", &[scope("NOPE")]).await.is_empty());
    // The restricted page matches on title and body, yet never appears.
    assert!(hit_ids(&**t, "secrets", &[scope("S1")]).await.is_empty());
    assert!(hit_ids(&**t, "restricted", &[scope("S1")]).await.is_empty());
    // All words must match (stemmed: "question" finds "questions"); no prefix matching.
    assert_eq!(hit_ids(&**t, "kiwi questions", &[scope("S1")]).await, ["2"]);
    assert_eq!(hit_ids(&**t, "kiwi question", &[scope("S1")]).await, ["2"]);
    assert!(hit_ids(&**t, "kiwi quest", &[scope("S1")]).await.is_empty());
    assert_eq!(hit_ids(&**t, "KIWI", &[scope("S2")]).await, ["o"]);
}

async fn search_ranks_title_over_body_and_marks_excerpts(t: &TestStore) {
    let s = space("S1", "KB");
    full_sync(
        &**t,
        &s,
        vec![
            body(
                page("body", "S1", None, 0, "Unrelated heading"),
                "This long page mentions the gateway once among many other words about \
                 configuration, deployment and operations of the system.",
            ),
            body(
                page("title", "S1", None, 1, "Gateway"),
                "Short text about setup.",
            ),
        ],
    )
    .await;
    let res = t.search("gateway", &[scope("S1")], 10, 0).await.unwrap();
    let order: Vec<&str> = res.hits.iter().map(|h| h.page_id.as_str()).collect();
    assert_eq!(order, ["title", "body"], "title match ranks first");
    assert!(res.hits[0].rank > res.hits[1].rank);
    assert!(!res.has_more);
    let body_hit = &res.hits[1];
    assert_eq!(body_hit.title, "Unrelated heading");
    assert_eq!(body_hit.space_id, "S1");
    let marked = format!("{MATCH_START}gateway{MATCH_END}");
    assert!(
        body_hit.excerpt.contains(&marked),
        "excerpt marks the match: {:?}",
        body_hit.excerpt
    );
    assert!(!body_hit.excerpt.contains('<'), "excerpt is plain text");
}

async fn search_pages_through_results(t: &TestStore) {
    let s = space("S1", "KB");
    let pages = (0..25)
        .map(|i| {
            body(
                page(&format!("p{i:02}"), "S1", None, i, &format!("Page {i}")),
                "mango",
            )
        })
        .collect();
    full_sync(&**t, &s, pages).await;
    let mut seen = HashSet::new();
    let mut offset = 0;
    loop {
        let res = t.search("mango", &[scope("S1")], 10, offset).await.unwrap();
        for h in &res.hits {
            assert!(seen.insert(h.page_id.clone()), "no duplicates across pages");
        }
        if !res.has_more {
            assert_eq!(res.hits.len(), 5);
            break;
        }
        assert_eq!(res.hits.len(), 10);
        offset += 10;
    }
    assert_eq!(seen.len(), 25);
    assert!(
        t.search("mango", &[scope("S1")], 0, 0)
            .await
            .unwrap()
            .hits
            .is_empty()
    );
}

async fn search_survives_hostile_queries(t: &TestStore) {
    seed_search(t).await;
    let sc = [scope("S1")];
    for q in [
        "",
        " ",
        "\"",
        "\"\"",
        "*",
        "kiwi*",
        "NEAR(",
        "NEAR(kiwi",
        "kiwi OR",
        "OR",
        "AND NOT",
        "'; drop table pages; --",
        "title:kiwi",
        "-kiwi",
        "^kiwi",
        "kiwi)",
        "((((",
        "'",
        "''",
        "\\",
        "%",
        "_",
        "kiwi & | !",
        "!kiwi",
        "kiwi:*",
        "<->",
        "\u{E000}",
        "\0",
        "ü",
        "🥝",
        &"kiwi ".repeat(200),
        &"x".repeat(10_000),
    ] {
        let res = t.search(q, &sc, 10, 0).await;
        let res = res.unwrap_or_else(|e| panic!("query {q:?} failed: {e}"));
        for h in &res.hits {
            assert!(
                ["1", "2", "3"].contains(&h.page_id.as_str()),
                "{q:?} → {h:?}"
            );
        }
    }
    // Operator-looking words are just words: they still find the pages that have them.
    assert_eq!(hit_ids(&**t, "NEAR(kiwi", &sc).await.len(), 0);
    assert_eq!(hit_ids(&**t, "kiwi*", &sc).await, ["1", "2", "3"]);
    assert_eq!(hit_ids(&**t, "\"kiwi\"", &sc).await, ["1", "2", "3"]);
    // And the tables are still there.
    assert_eq!(ids(&**t, "S1").await, ["1", "2", "3", "r"]);
}

async fn attachments_metadata_names_and_blobs(t: &TestStore) {
    let s = space("S1", "KB");
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..50)
        .map(|i| Ok(Bytes::from(vec![i as u8; 1000])))
        .collect();
    let expected: Vec<u8> = (0..50u8).flat_map(|i| vec![i; 1000]).collect();
    let blob = t
        .blobs()
        .write_stream(futures::stream::iter(chunks))
        .await
        .unwrap();
    assert_eq!(blob.size(), 50_000);
    let again = t.blobs().write_bytes(&expected).await.unwrap();
    assert_eq!(again, blob, "content-addressed");

    let mut sync = t.begin_space_sync(&s, SyncMode::Full).await.unwrap();
    sync.upsert_page(body(page("1", "S1", None, 0, "Home"), "nothing special"))
        .await
        .unwrap();
    sync.upsert_attachment(attachment(
        "a1",
        "1",
        "Quarterly-Report.pdf",
        Some(blob.clone()),
    ))
    .await
    .unwrap();
    sync.upsert_attachment(attachment("a2", "1", "big-video.mp4", None))
        .await
        .unwrap();
    sync.commit(state(&s, true, 10)).await.unwrap();

    let list = t.attachments("1").await.unwrap();
    let names: Vec<&str> = list.iter().map(|a| a.title.as_str()).collect();
    assert_eq!(names, ["Quarterly-Report.pdf", "big-video.mp4"]);
    let a1 = t
        .attachment_by_name("1", "Quarterly-Report.pdf")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        a1,
        attachment("a1", "1", "Quarterly-Report.pdf", Some(blob.clone()))
    );
    assert!(
        t.attachment_by_name("1", "nope.pdf")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(t.attachment("a2").await.unwrap().unwrap().blob, None);
    assert_eq!(
        t.attachment_versions("S1").await.unwrap(),
        vec![("a1".to_string(), 1), ("a2".to_string(), 1)]
    );
    assert_eq!(t.mirror_stats().await.unwrap().stored_blobs, 1);

    // Attachment file names are searchable (and follow renames and deletions).
    assert_eq!(hit_ids(&**t, "quarterly", &[scope("S1")]).await, ["1"]);
    let mut sync = t.begin_space_sync(&s, SyncMode::Incremental).await.unwrap();
    sync.upsert_attachment(attachment("a1", "1", "Annual.pdf", Some(blob.clone())))
        .await
        .unwrap();
    assert!(sync.delete_attachment("a2").await.unwrap());
    sync.commit(state(&s, false, 20)).await.unwrap();
    assert!(hit_ids(&**t, "quarterly", &[scope("S1")]).await.is_empty());
    assert!(hit_ids(&**t, "video", &[scope("S1")]).await.is_empty());
    assert_eq!(hit_ids(&**t, "annual", &[scope("S1")]).await, ["1"]);

    // Bytes round-trip.
    use tokio::io::AsyncReadExt;
    let mut f = t.blobs().open(&blob).await.unwrap();
    let mut read = Vec::new();
    f.read_to_end(&mut read).await.unwrap();
    assert_eq!(read, expected);
    assert!(t.blobs().exists(&blob).await.unwrap());

    // Over the cap: refused, nothing kept.
    let big = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 600]))]);
    let err = t
        .blobs()
        .write_stream_capped(big, Some(500))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BlobTooLarge { cap: 500 }));
    // A failing source: refused, nothing kept.
    let broken = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(std::io::Error::other("connection reset")),
    ]);
    assert!(matches!(
        t.blobs().write_stream(broken).await,
        Err(StoreError::BlobSource(_))
    ));
    // Nothing left of either: a sweep keeping the one referenced blob finds nothing else,
    // not even with no grace (no partial write, no temp file, no stray blob).
    let referenced: HashSet<String> = [blob.sha256().to_owned()].into_iter().collect();
    assert_eq!(
        t.blobs()
            .remove_unreferenced(&referenced, std::time::Duration::ZERO)
            .await
            .unwrap(),
        0,
        "nothing kept of refused writes"
    );
    let stored = t.blobs().write_bytes(b"partial").await.unwrap();
    assert_eq!(stored.size(), 7);
}

async fn jti_is_single_use_under_concurrency(t: &TestStore) {
    let store: Arc<dyn Store> = t.store.clone();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.consume_jti("jti-1", ts(5)).await.unwrap()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert!(!store.consume_jti("jti-1", ts(5)).await.unwrap());
    assert!(store.consume_jti("jti-2", ts(5)).await.unwrap());
}

async fn codes_are_single_use_and_expire(t: &TestStore) {
    let code = |hash: &str| CodeRecord {
        code_hash: hash.into(),
        purpose: "handover".into(),
        email: "ann@acme.com".into(),
        return_to: Some("/spaces/KB".into()),
        created_at: ts(0),
        expires_at: ts(1),
    };
    t.create_code(&code("c1")).await.unwrap();
    t.create_code(&code("c2")).await.unwrap();
    assert!(t.create_code(&code("c1")).await.is_err(), "hash is unique");

    let store: Arc<dyn Store> = t.store.clone();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.consume_code("c1", "handover", ts(0)).await.unwrap()
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.unwrap());
    }
    assert_eq!(winners, vec![code("c1")]);
    assert_eq!(t.consume_code("c1", "handover", ts(0)).await.unwrap(), None);
    // Wrong purpose, expired, unknown: refused (and the wrong-purpose try does not burn it).
    assert_eq!(
        t.consume_code("c2", "magic-link", ts(0)).await.unwrap(),
        None
    );
    assert_eq!(t.consume_code("c2", "handover", ts(1)).await.unwrap(), None);
    assert_eq!(
        t.consume_code("nope", "handover", ts(0)).await.unwrap(),
        None
    );
    assert!(
        t.consume_code("c2", "handover", ts(0))
            .await
            .unwrap()
            .is_some()
    );

    t.consume_jti("old", ts(1)).await.unwrap();
    assert_eq!(t.purge_expired(ts(2)).await.unwrap(), 3);
}

async fn sessions_expire_and_revoke(t: &TestStore) {
    let session = |id: &str, email: &str| SessionRecord {
        id_hash: id.into(),
        email: email.into(),
        created_at: ts(0),
        last_seen_at: ts(0),
        expires_at: ts(60),
        revoked: false,
    };
    for (id, email) in [
        ("s1", "ann@acme.com"),
        ("s2", "bob@acme.com"),
        ("s3", "eve@notacme.com"),
        ("s4", "mal@acme.com.evil.net"),
        ("s5", "sub@sub.acme.com"),
        ("s6", "ann@acme.com"),
    ] {
        t.create_session(&session(id, email)).await.unwrap();
    }
    assert_eq!(
        t.active_session("s1", ts(10)).await.unwrap(),
        Some(session("s1", "ann@acme.com"))
    );
    assert_eq!(
        t.active_session("s1", ts(60)).await.unwrap(),
        None,
        "absolute expiry"
    );
    assert_eq!(t.active_session("zz", ts(10)).await.unwrap(), None);
    t.touch_session("s1", ts(20)).await.unwrap();
    assert_eq!(
        t.active_session("s1", ts(21))
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        ts(20)
    );

    assert_eq!(
        t.ended_session("s6", ts(10)).await.unwrap(),
        None,
        "an active session is not an ended one"
    );
    assert!(t.revoke_session("s6").await.unwrap());
    assert!(!t.revoke_session("s6").await.unwrap());
    assert_eq!(t.active_session("s6", ts(10)).await.unwrap(), None);
    let ended = t.ended_session("s6", ts(10)).await.unwrap().expect("ended");
    assert_eq!(
        (ended.email.as_str(), ended.revoked),
        ("ann@acme.com", true)
    );
    assert_eq!(
        t.ended_session("s6", ts(60)).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(t.ended_session("zz", ts(10)).await.unwrap(), None);

    assert_eq!(
        t.revoke_sessions_by_domain("ACME.com").await.unwrap(),
        2,
        "exact domain only"
    );
    for (id, active) in [
        ("s1", false),
        ("s2", false),
        ("s3", true),
        ("s4", true),
        ("s5", true),
    ] {
        assert_eq!(
            t.active_session(id, ts(10)).await.unwrap().is_some(),
            active,
            "{id}"
        );
    }
    assert_eq!(
        t.revoke_sessions_by_email("eve@notacme.com").await.unwrap(),
        1
    );
    assert!(t.revoke_sessions_by_domain("").await.is_err());
    assert!(t.revoke_sessions_by_domain("a@b.c").await.is_err());
}

async fn sessions_revoked_under_a_domain_and_listed(t: &TestStore) {
    let session = |id: &str, email: &str| SessionRecord {
        id_hash: id.into(),
        email: email.into(),
        created_at: ts(0),
        last_seen_at: ts(0),
        expires_at: ts(60),
        revoked: false,
    };
    for (id, email) in [
        ("u1", "ann@acme.com"),
        ("u2", "erin@eu.acme.com"),
        ("u3", "deep@x.eu.acme.com"),
        ("u4", "eve@evilacme.com"),
        ("u5", "mal@acme.com.evil.net"),
        ("u6", "acme.com@other.org"),
        ("u7", "Ann@acme.com"),
    ] {
        t.create_session(&session(id, email)).await.unwrap();
    }
    let mut emails: Vec<String> = t
        .active_sessions(ts(10))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.email)
        .collect();
    emails.sort();
    assert_eq!(
        emails,
        [
            "Ann@acme.com",
            "acme.com@other.org",
            "ann@acme.com",
            "deep@x.eu.acme.com",
            "erin@eu.acme.com",
            "eve@evilacme.com",
            "mal@acme.com.evil.net"
        ]
    );
    assert!(
        t.active_sessions(ts(61)).await.unwrap().is_empty(),
        "expired"
    );
    // Counted per domain after the last `@`, case-folded, most first.
    t.create_session(&SessionRecord {
        revoked: true,
        ..session("u8", "gone@acme.com")
    })
    .await
    .unwrap();
    assert_eq!(
        t.sessions_per_domain(ts(10)).await.unwrap(),
        [
            ("acme.com".to_string(), 2),
            ("acme.com.evil.net".to_string(), 1),
            ("eu.acme.com".to_string(), 1),
            ("evilacme.com".to_string(), 1),
            ("other.org".to_string(), 1),
            ("x.eu.acme.com".to_string(), 1),
        ],
        "revoked and expired sessions left out"
    );
    assert!(t.sessions_per_domain(ts(61)).await.unwrap().is_empty());
    // Whole records, as stored.
    let first = t.active_sessions(ts(10)).await.unwrap().remove(0);
    assert_eq!(first, session(&first.id_hash, &first.email));

    assert_eq!(
        t.revoke_sessions_under_domain("ACME.com").await.unwrap(),
        4,
        "the domain and its subdomains"
    );
    for (id, active) in [
        ("u1", false),
        ("u2", false),
        ("u3", false),
        ("u4", true),
        ("u5", true),
        ("u6", true),
        ("u7", false),
    ] {
        assert_eq!(
            t.active_session(id, ts(10)).await.unwrap().is_some(),
            active,
            "{id}"
        );
    }
    let mut emails: Vec<String> = t
        .active_sessions(ts(10))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.email)
        .collect();
    emails.sort();
    assert_eq!(
        emails,
        [
            "acme.com@other.org",
            "eve@evilacme.com",
            "mal@acme.com.evil.net"
        ]
    );
    assert!(t.revoke_sessions_under_domain("").await.is_err());
    assert!(t.revoke_sessions_under_domain("a@b.c").await.is_err());
}

async fn audit_people_journal_ownership(t: &TestStore) {
    for i in 0..3 {
        t.append_audit(&AuditEvent {
            ts: ts(i),
            actor: "ann@acme.com".into(),
            action: format!("action.{i}"),
            detail: serde_json::json!({"n": i}),
        })
        .await
        .unwrap();
    }
    let recent = t.recent_audit(2).await.unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].action, "action.2");
    assert_eq!(recent[1].detail, serde_json::json!({"n": 1}));

    let person = |email: &str, source: &str| PersonRecord {
        email: email.into(),
        domain: email.split('@').nth(1).unwrap().into(),
        source: source.into(),
        created_at: ts(0),
    };
    assert!(t.add_person(&person("b@acme.com", "import")).await.unwrap());
    assert!(
        t.add_person(&person("a@acme.com", "access-request"))
            .await
            .unwrap()
    );
    assert!(!t.add_person(&person("a@acme.com", "import")).await.unwrap());
    assert_eq!(
        t.people().await.unwrap(),
        vec![
            person("a@acme.com", "access-request"),
            person("b@acme.com", "import")
        ]
    );
    assert!(t.remove_person("b@acme.com").await.unwrap());
    assert!(!t.remove_person("b@acme.com").await.unwrap());

    let entry = |state: &str, at: i64| JournalEntry {
        action_id: "invite:acme:1".into(),
        kind: "invite".into(),
        target: "a@acme.com".into(),
        state: state.into(),
        detail: serde_json::json!({"batch": 1}),
        created_at: ts(at),
        updated_at: ts(at),
    };
    t.journal_put(&entry("started", 0)).await.unwrap();
    t.journal_put(&entry("done", 5)).await.unwrap();
    let got = t.journal_get("invite:acme:1").await.unwrap().unwrap();
    assert_eq!(
        (got.state.as_str(), got.created_at, got.updated_at),
        ("done", ts(0), ts(5))
    );
    assert_eq!(t.journal_list(Some("done")).await.unwrap().len(), 1);
    assert!(t.journal_list(Some("started")).await.unwrap().is_empty());
    assert_eq!(t.journal_list(None).await.unwrap().len(), 1);
    assert!(t.journal_get("nope").await.unwrap().is_none());

    let owned = OwnedResource {
        kind: "group".into(),
        target: "kbgate-acme".into(),
        detail: serde_json::json!({}),
        created_at: ts(0),
    };
    t.record_owned(&owned).await.unwrap();
    t.record_owned(&owned).await.unwrap();
    assert_eq!(t.owned(Some("group")).await.unwrap(), vec![owned.clone()]);
    assert!(t.owned(Some("space-permission")).await.unwrap().is_empty());
    assert_eq!(t.owned(None).await.unwrap().len(), 1);
    assert!(t.forget_owned("group", "kbgate-acme").await.unwrap());
    assert!(!t.forget_owned("group", "kbgate-acme").await.unwrap());
}

async fn delete_space_removes_everything(t: &TestStore) {
    seed_search(t).await;
    let mut sync = t
        .begin_space_sync(&space("S1", "KB"), SyncMode::Incremental)
        .await
        .unwrap();
    sync.upsert_attachment(attachment("a", "1", "kiwi.pdf", None))
        .await
        .unwrap();
    sync.commit(state(&space("S1", "KB"), false, 20))
        .await
        .unwrap();
    assert!(t.delete_space("S1").await.unwrap());
    assert!(!t.delete_space("S1").await.unwrap());
    assert!(t.page("1").await.unwrap().is_none());
    assert!(t.attachment("a").await.unwrap().is_none());
    assert!(t.sync_state("KB").await.unwrap().is_none());
    assert!(hit_ids(&**t, "kiwi", &[scope("S1")]).await.is_empty());
    assert_eq!(hit_ids(&**t, "kiwi", &[scope("S2")]).await, ["o"]);
    let stats = t.mirror_stats().await.unwrap();
    assert_eq!((stats.spaces, stats.pages, stats.attachments), (1, 1, 0));
    // A space re-created under the same key with a new id replaces the old one.
    full_sync(
        &**t,
        &space("S2b", "OTHER"),
        vec![page("n", "S2b", None, 0, "New")],
    )
    .await;
    assert_eq!(t.space_by_key("OTHER").await.unwrap().unwrap().id, "S2b");
    assert!(t.page("o").await.unwrap().is_none());
}

fn labelled(space: &str, labels: &[&str]) -> ScopeEntry {
    ScopeEntry {
        space_id: space.into(),
        labels: Some(labels.iter().map(|l| l.to_string()).collect()),
    }
}

/// Every hit of a query, page by page (`per` hits a request), in order.
async fn all_hits(store: &dyn Store, q: &str, scope: &[ScopeEntry], per: u32) -> Vec<SearchHit> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let res = store.search(q, scope, per, offset).await.unwrap();
        assert!(res.hits.len() <= per as usize);
        out.extend(res.hits);
        if !res.has_more {
            return out;
        }
        offset += per;
        assert!(offset < 100_000, "paging never ends");
    }
}

/// Scope tokens are derived from space ids and labels: ids and labels that a stemmer would
/// fold together ("running"/"run", "faqs"/"faq", "linked"/"link"), or that look like query
/// syntax, still select exactly their own pages.
async fn search_scopes_are_exact_for_look_alike_spaces_and_labels(t: &TestStore) {
    let labels_of = [
        ("l1", vec!["faq"]),
        ("l2", vec!["faqs"]),
        ("l3", vec!["link"]),
        ("l4", vec!["linked"]),
        ("l5", vec!["happy", "release notes"]),
        ("l6", vec!["happi", "it's \"NEAR(x) OR *"]),
        ("l7", vec!["Zürich", "case"]),
        ("l8", vec!["cas", "FAQ"]),
    ];
    full_sync(
        &**t,
        &space("run", "RUN"),
        labels_of
            .iter()
            .map(|(id, l)| labels(body(page(id, "run", None, 0, "Melon"), "melon"), l))
            .collect(),
    )
    .await;
    full_sync(
        &**t,
        &space("running", "RUNNING"),
        vec![labels(
            body(page("r1", "running", None, 0, "Melon"), "melon"),
            &["faq"],
        )],
    )
    .await;
    let ids = |hits: Vec<SearchHit>| {
        let mut v: Vec<String> = hits.into_iter().map(|h| h.page_id).collect();
        v.sort();
        v
    };
    for (label, expected) in [
        ("faq", vec!["l1"]),
        ("faqs", vec!["l2"]),
        ("link", vec!["l3"]),
        ("linked", vec!["l4"]),
        ("happy", vec!["l5"]),
        ("happi", vec!["l6"]),
        ("release notes", vec!["l5"]),
        ("it's \"NEAR(x) OR *", vec!["l6"]),
        ("Zürich", vec!["l7"]),
        ("zürich", vec![]),
        ("case", vec!["l7"]),
        ("cas", vec!["l8"]),
        ("FAQ", vec!["l8"]),
        ("release", vec![]),
        ("", vec![]),
    ] {
        let got = ids(all_hits(&**t, "melon", &[labelled("run", &[label])], 10).await);
        assert_eq!(got, expected, "label {label:?}");
    }
    assert_eq!(
        ids(all_hits(&**t, "melon", &[labelled("run", &["faq", "linked"])], 10).await),
        ["l1", "l4"]
    );
    assert_eq!(
        ids(all_hits(&**t, "melon", &[scope("running")], 10).await),
        ["r1"]
    );
    assert_eq!(
        ids(all_hits(&**t, "melon", &[scope("run")], 10).await).len(),
        8
    );
    assert_eq!(
        ids(all_hits(&**t, "melon", &[labelled("running", &["faq"])], 10).await),
        ["r1"]
    );
    assert!(all_hits(&**t, "melon", &[scope("ru")], 10).await.is_empty());
    assert!(
        all_hits(&**t, "melon", &[scope("RUN")], 10)
            .await
            .is_empty()
    );
}

/// Many matches: a viewer of a small space still gets exactly its pages; a viewer of the
/// big space gets a bounded list, in scope, without restricted pages or duplicates, with
/// title matches first.
async fn search_in_a_big_site_stays_in_scope_and_bounded(t: &TestStore) {
    let big: Vec<PageRecord> = (0..1200)
        .map(|i| {
            // One old page has the word in its title.
            let title = if i == 1 {
                "Melon".into()
            } else {
                format!("Note {i}")
            };
            let mut p = body(
                page(&format!("b{i:04}"), "BIG", None, i, &title),
                "melon season report",
            );
            if i % 4 == 0 {
                p.labels = vec!["faq".into()];
            }
            if i % 7 == 0 {
                p.restricted = true;
                p.effective_restricted = true;
            }
            p
        })
        .collect();
    full_sync(&**t, &space("BIG", "BIG"), big).await;
    full_sync(
        &**t,
        &space("SMALL", "SMALL"),
        vec![
            body(page("s1", "SMALL", None, 0, "Melon"), "melon"),
            body(page("s2", "SMALL", None, 1, "Other"), "melon season"),
            body(page("s3", "SMALL", None, 2, "Unrelated"), "apples"),
        ],
    )
    .await;
    // Written last, so the newest big-space pages come after the small space's.
    let mut sync = t
        .begin_space_sync(&space("BIG", "BIG"), SyncMode::Incremental)
        .await
        .unwrap();
    sync.upsert_pages(
        (0..50)
            .map(|i| body(page(&format!("n{i:02}"), "BIG", None, i, "Melon"), "melon"))
            .collect(),
    )
    .await
    .unwrap();
    sync.commit(state(&space("BIG", "BIG"), false, 20))
        .await
        .unwrap();

    let small = all_hits(&**t, "melon", &[scope("SMALL")], 10).await;
    let small: Vec<&str> = small.iter().map(|h| h.page_id.as_str()).collect();
    assert_eq!(small, ["s1", "s2"], "title match first");

    let hits = all_hits(&**t, "melon", &[scope("BIG")], 20).await;
    assert!(hits.len() >= 150, "only {} hits", hits.len());
    let mut seen = HashSet::new();
    for h in &hits {
        assert_eq!(h.space_id, "BIG");
        assert!(seen.insert(h.page_id.clone()), "duplicate {}", h.page_id);
        if let Some(n) = h.page_id.strip_prefix('b') {
            assert_ne!(n.parse::<u32>().unwrap() % 7, 0, "restricted {}", h.page_id);
        }
    }
    // Pages with the word in the title come first, newest first, wherever they are in
    // the match set: b0001 is far older than the newest matches.
    let first: Vec<&str> = hits[..51].iter().map(|h| h.page_id.as_str()).collect();
    let mut expected: Vec<String> = (0..50).rev().map(|i| format!("n{i:02}")).collect();
    expected.push("b0001".into());
    assert_eq!(first, expected);

    let faq = all_hits(&**t, "melon season", &[labelled("BIG", &["faq"])], 25).await;
    assert!(!faq.is_empty());
    for h in &faq {
        let n: u32 = h.page_id[1..].parse().unwrap();
        assert!(
            n.is_multiple_of(4) && !n.is_multiple_of(7),
            "{} is not in the label scope",
            h.page_id
        );
    }
    // Both scopes at once: the small space's matches are still there.
    let both = all_hits(&**t, "season", &[scope("BIG"), scope("SMALL")], 50).await;
    assert!(both.iter().any(|h| h.page_id == "s2"));
}

async fn search_follows_restrictions_labels_and_moves(t: &TestStore) {
    let s1 = space("S1", "KB");
    let s2 = space("S2", "OTHER");
    full_sync(
        &**t,
        &s1,
        vec![
            labels(body(page("1", "S1", None, 0, "Root"), "melon"), &["faq"]),
            body(page("2", "S1", Some("1"), 0, "Child"), "melon"),
        ],
    )
    .await;
    full_sync(&**t, &s2, vec![]).await;
    let sorted = |hits: Vec<SearchHit>| {
        let mut v: Vec<String> = hits.into_iter().map(|h| h.page_id).collect();
        v.sort();
        v
    };
    assert_eq!(
        sorted(all_hits(&**t, "melon", &[scope("S1")], 10).await),
        ["1", "2"]
    );

    // Restricting the root restricts the child too (recomputed from the hierarchy).
    let mut sync = t
        .begin_space_sync(&s1, SyncMode::Incremental)
        .await
        .unwrap();
    assert!(sync.set_restrictions("1", true, true).await.unwrap());
    sync.recompute_effective_restricted().await.unwrap();
    sync.commit(state(&s1, false, 20)).await.unwrap();
    assert!(all_hits(&**t, "melon", &[scope("S1")], 10).await.is_empty());
    // Lifted again.
    let mut sync = t
        .begin_space_sync(&s1, SyncMode::Incremental)
        .await
        .unwrap();
    assert!(sync.set_restrictions("1", false, false).await.unwrap());
    sync.recompute_effective_restricted().await.unwrap();
    sync.commit(state(&s1, false, 21)).await.unwrap();
    assert_eq!(
        sorted(all_hits(&**t, "melon", &[scope("S1")], 10).await),
        ["1", "2"]
    );

    // Labels move with the page's upserts.
    assert_eq!(
        sorted(all_hits(&**t, "melon", &[labelled("S1", &["faq"])], 10).await),
        ["1"]
    );
    let mut sync = t
        .begin_space_sync(&s1, SyncMode::Incremental)
        .await
        .unwrap();
    sync.upsert_pages(vec![
        body(page("1", "S1", None, 0, "Root"), "melon"),
        labels(
            body(page("2", "S1", Some("1"), 0, "Child"), "melon"),
            &["faq"],
        ),
    ])
    .await
    .unwrap();
    sync.commit(state(&s1, false, 22)).await.unwrap();
    assert_eq!(
        sorted(all_hits(&**t, "melon", &[labelled("S1", &["faq"])], 10).await),
        ["2"]
    );

    // A page that moves to another space is found there only.
    let mut sync = t
        .begin_space_sync(&s2, SyncMode::Incremental)
        .await
        .unwrap();
    sync.upsert_page(body(page("2", "S2", None, 0, "Child"), "melon"))
        .await
        .unwrap();
    sync.commit(state(&s2, false, 23)).await.unwrap();
    assert_eq!(
        sorted(all_hits(&**t, "melon", &[scope("S1")], 10).await),
        ["1"]
    );
    assert_eq!(
        sorted(all_hits(&**t, "melon", &[scope("S2")], 10).await),
        ["2"]
    );
    assert!(
        all_hits(&**t, "melon", &[labelled("S1", &["faq"])], 10)
            .await
            .is_empty()
    );

    // Deleted: gone.
    let mut sync = t
        .begin_space_sync(&s2, SyncMode::Incremental)
        .await
        .unwrap();
    assert!(sync.delete_page("2").await.unwrap());
    sync.commit(state(&s2, false, 24)).await.unwrap();
    assert!(all_hits(&**t, "melon", &[scope("S2")], 10).await.is_empty());
}

/// PostgreSQL drops English stop words from queries; a query of stop words alone must not
/// turn into "everything in scope".
async fn search_of_stop_words_alone_finds_no_unrelated_pages(t: &TestStore) {
    full_sync(
        &**t,
        &space("S1", "KB"),
        vec![
            body(page("1", "S1", None, 0, "With"), "the melon"),
            body(page("2", "S1", None, 1, "Without"), "melon"),
        ],
    )
    .await;
    for q in ["the", "the a of"] {
        for h in all_hits(&**t, q, &[scope("S1")], 10).await {
            assert_eq!(h.page_id, "1", "{q:?} found {}", h.page_id);
        }
    }
}

/// The portal caches sessions and the mirror between moves of the change stamps: every write
/// that can take something away must move them, whichever process (store handle) commits it,
/// and nothing else may (a sign-in or an activity touch would empty the caches for nothing).
async fn change_stamps_move_with_what_portals_cache(t: &TestStore) {
    let other = t.reopen().await.unwrap(); // another process on the same database
    let s0 = t.change_stamp().await.unwrap();
    assert_eq!(other.change_stamp().await.unwrap(), s0);
    let local0 = t.local_changes();

    // A sync commit, by another process: the mirror stamp moves for everyone, this handle's
    // in-process count does not.
    full_sync(
        &*other,
        &space("S1", "KB"),
        vec![page("1", "S1", None, 0, "One")],
    )
    .await;
    let s1 = t.change_stamp().await.unwrap();
    assert!(s1.mirror > s0.mirror, "{s0:?} -> {s1:?}");
    assert_eq!(s1.sessions, s0.sessions);
    assert_eq!(t.local_changes(), local0);

    // A sync that rolls back moves nothing.
    let mut sync = t
        .begin_space_sync(&space("S1", "KB"), SyncMode::Incremental)
        .await
        .unwrap();
    sync.set_restrictions("1", true, true).await.unwrap();
    sync.rollback().await.unwrap();
    assert_eq!(t.change_stamp().await.unwrap(), s1);

    // A restriction committed by this handle: both the stamp and the local count move.
    let mut sync = t
        .begin_space_sync(&space("S1", "KB"), SyncMode::Incremental)
        .await
        .unwrap();
    sync.set_restrictions("1", true, true).await.unwrap();
    sync.commit(state(&space("S1", "KB"), false, 30))
        .await
        .unwrap();
    let s2 = t.change_stamp().await.unwrap();
    assert!(s2.mirror > s1.mirror);
    assert!(t.local_changes() > local0);

    // Sign-ins and activity leave the session stamp alone; revocations move it.
    let session = SessionRecord {
        id_hash: "h1".into(),
        email: "ann@acme.com".into(),
        created_at: ts(0),
        last_seen_at: ts(0),
        expires_at: ts(600),
        revoked: false,
    };
    t.create_session(&session).await.unwrap();
    t.touch_session("h1", ts(5)).await.unwrap();
    assert_eq!(t.change_stamp().await.unwrap(), s2);
    assert_eq!(
        other.revoke_sessions_by_domain("acme.com").await.unwrap(),
        1
    );
    let s3 = t.change_stamp().await.unwrap();
    assert!(
        s3.sessions > s2.sessions && s3.mirror == s2.mirror,
        "{s2:?} -> {s3:?}"
    );
    for revoke in ["one", "email", "purge"] {
        let before = t.change_stamp().await.unwrap();
        let id = format!("h-{revoke}");
        t.create_session(&SessionRecord {
            id_hash: id.clone(),
            ..session.clone()
        })
        .await
        .unwrap();
        match revoke {
            "one" => assert!(other.revoke_session(&id).await.unwrap()),
            "email" => assert!(
                other
                    .revoke_sessions_by_email("Ann@acme.com")
                    .await
                    .unwrap()
                    >= 1
            ),
            _ => assert!(other.purge_expired(ts(601)).await.unwrap() >= 1),
        }
        assert!(
            t.change_stamp().await.unwrap().sessions > before.sessions,
            "{revoke} moves the session stamp"
        );
    }

    // Removing a space moves the mirror stamp.
    let before = t.change_stamp().await.unwrap();
    assert!(other.delete_space("S1").await.unwrap());
    assert!(t.change_stamp().await.unwrap().mirror > before.mirror);
}

async fn admin_sessions_end_with_their_reader_session(t: &TestStore) {
    let reader = |id: &str| SessionRecord {
        id_hash: id.into(),
        email: "boss@vendor.com".into(),
        created_at: ts(0),
        last_seen_at: ts(0),
        expires_at: ts(600),
        revoked: false,
    };
    t.create_session(&reader("r1")).await.unwrap();
    t.create_session(&reader("r2")).await.unwrap();
    let admin = |id: &str, reader: &str| AdminSessionRecord {
        id_hash: id.into(),
        reader_hash: reader.into(),
        email: "boss@vendor.com".into(),
        created_at: ts(0),
        expires_at: ts(30),
        view_as: None,
    };
    t.create_admin_session(&admin("a1", "r1")).await.unwrap();
    t.create_admin_session(&admin("a2", "r2")).await.unwrap();
    let got = t
        .active_admin_session("a1", "r1", ts(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.email, "boss@vendor.com");
    assert!(got.view_as.is_none());
    // Presented with another reader session: nothing.
    assert!(
        t.active_admin_session("a1", "r2", ts(1))
            .await
            .unwrap()
            .is_none()
    );
    // Expired after its own short lifetime, though the reader session lives on.
    assert!(
        t.active_admin_session("a1", "r1", ts(30))
            .await
            .unwrap()
            .is_none()
    );
    t.set_admin_view_as("a1", Some("ann@acme.com"))
        .await
        .unwrap();
    let got = t
        .active_admin_session("a1", "r1", ts(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.view_as.as_deref(), Some("ann@acme.com"));
    // Signing out of the portal ends the admin session too.
    assert!(t.revoke_session("r1").await.unwrap());
    assert!(
        t.active_admin_session("a1", "r1", ts(2))
            .await
            .unwrap()
            .is_none()
    );
    // Revoked by itself.
    assert!(
        t.active_admin_session("a2", "r2", ts(2))
            .await
            .unwrap()
            .is_some()
    );
    assert!(t.revoke_admin_session("a2").await.unwrap());
    assert!(!t.revoke_admin_session("a2").await.unwrap());
    assert!(
        t.active_admin_session("a2", "r2", ts(2))
            .await
            .unwrap()
            .is_none()
    );
}

async fn audit_filters(t: &TestStore) {
    for (i, (actor, action)) in [
        ("ann@acme.com", "session.create"),
        ("boss@vendor.com", "admin.open"),
        ("Boss@vendor.com", "admin.revoke_domain"),
        ("policy", "session.end"),
        ("boss@vendor.com", "adminx"),
        ("x@y.z", "admin_%"),
    ]
    .into_iter()
    .enumerate()
    {
        t.append_audit(&AuditEvent {
            ts: ts(i as i64 * 10),
            actor: actor.into(),
            action: action.into(),
            detail: serde_json::json!({}),
        })
        .await
        .unwrap();
    }
    let q = |f: AuditFilter| async move {
        t.query_audit(&AuditFilter { limit: 100, ..f })
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect::<Vec<_>>()
    };
    assert_eq!(q(AuditFilter::default()).await.len(), 6);
    assert_eq!(
        q(AuditFilter {
            action: Some("admin.".into()),
            ..Default::default()
        })
        .await,
        ["admin.revoke_domain", "admin.open"]
    );
    assert_eq!(
        q(AuditFilter {
            action: Some("admin_%".into()),
            ..Default::default()
        })
        .await,
        ["admin_%"]
    );
    assert_eq!(
        q(AuditFilter {
            actor: Some("boss@VENDOR.com".into()),
            ..Default::default()
        })
        .await,
        ["adminx", "admin.revoke_domain", "admin.open"]
    );
    assert_eq!(
        q(AuditFilter {
            since: Some(ts(10)),
            until: Some(ts(30)),
            ..Default::default()
        })
        .await,
        ["admin.revoke_domain", "admin.open"]
    );
    let limited = t
        .query_audit(&AuditFilter {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);
}

async fn the_latest_native_plan_is_kept(t: &TestStore) {
    assert_eq!(t.native_plan().await.unwrap(), None);
    let plan = |secs: i64, n: u64| NativePlanRecord {
        computed_at: ts(secs),
        calls: n,
        plan: serde_json::json!({ "actions": [{ "kind": "invite", "n": n }] }),
    };
    t.put_native_plan(&plan(10, 3)).await.unwrap();
    assert_eq!(t.native_plan().await.unwrap(), Some(plan(10, 3)));
    // A newer plan replaces it; an older one written late does not.
    t.put_native_plan(&plan(20, 5)).await.unwrap();
    t.put_native_plan(&plan(15, 7)).await.unwrap();
    assert_eq!(t.native_plan().await.unwrap(), Some(plan(20, 5)));
    // Another handle on the same store (another process) sees it.
    let other = t.reopen().await.unwrap();
    assert_eq!(other.native_plan().await.unwrap(), Some(plan(20, 5)));
}
