//! The insights store (feedback votes, search events), both backends: every test runs once
//! on SQLite and once on PostgreSQL (skipped with a visible line when PostgreSQL is
//! unreachable outside CI).

use chrono::{DateTime, Duration, TimeZone, Utc};
use kbgate_store::testing::TestStore;
use kbgate_store::*;

kbgate_store::store_tests!(
    a_revote_replaces_the_previous_vote,
    feedback_is_filtered_by_time_and_domain,
    feedback_survives_hostile_text_and_reopen,
    search_events_are_appended_and_listed_newest_first,
    search_counts_only_matches_in_scope,
    search_counts_of_a_big_match_set_are_lower_bounds,
    search_counts_exactly_up_to_a_hundred,
    insights_sum_up_a_period_per_domain_and_purge,
);

fn ts(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 1, 12, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn vote(page: &str, voter: &str, domain: &str, helpful: bool, at: i64) -> FeedbackRecord {
    FeedbackRecord {
        page_id: page.into(),
        voter: voter.into(),
        space_key: "KB".into(),
        page_title: format!("Page {page}"),
        domain: domain.into(),
        email: None,
        helpful,
        comment: None,
        at: ts(at),
    }
}

async fn a_revote_replaces_the_previous_vote(t: &TestStore) {
    let s = &t.store;
    assert!(
        !s.put_feedback(&vote("1", "ann", "acme.com", true, 0))
            .await
            .unwrap()
    );
    assert!(
        !s.put_feedback(&vote("1", "bob", "acme.com", false, 1))
            .await
            .unwrap()
    );
    assert!(
        !s.put_feedback(&vote("2", "ann", "acme.com", true, 2))
            .await
            .unwrap()
    );
    // Ann changes her mind on page 1, with a comment and her email this time.
    let mut again = vote("1", "ann", "acme.com", false, 3);
    again.comment = Some("Step 3 is wrong".into());
    again.email = Some("ann@acme.com".into());
    assert!(s.put_feedback(&again).await.unwrap(), "replaced");
    let all = s.feedback(&FeedbackFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3, "one vote per person and page: {all:?}");
    let ann1: Vec<_> = all
        .iter()
        .filter(|v| v.page_id == "1" && v.voter == "ann")
        .collect();
    assert_eq!(ann1, [&again]);
    // Oldest first.
    let order: Vec<(&str, &str)> = all
        .iter()
        .map(|v| (v.page_id.as_str(), v.voter.as_str()))
        .collect();
    assert_eq!(order, [("1", "bob"), ("2", "ann"), ("1", "ann")]);
}

async fn feedback_is_filtered_by_time_and_domain(t: &TestStore) {
    let s = &t.store;
    s.put_feedback(&vote("1", "a", "acme.com", true, 0))
        .await
        .unwrap();
    s.put_feedback(&vote("1", "b", "globex.com", true, 10))
        .await
        .unwrap();
    s.put_feedback(&vote("2", "c", "acme.com", false, 20))
        .await
        .unwrap();
    let pick = |since: Option<i64>, domain: Option<&str>| FeedbackFilter {
        since: since.map(ts),
        domain: domain.map(str::to_owned),
        until: None,
    };
    let voters = |v: Vec<FeedbackRecord>| v.into_iter().map(|v| v.voter).collect::<Vec<_>>();
    assert_eq!(
        voters(s.feedback(&pick(None, None)).await.unwrap()),
        ["a", "b", "c"]
    );
    assert_eq!(
        voters(s.feedback(&pick(Some(10), None)).await.unwrap()),
        ["b", "c"]
    );
    assert_eq!(
        voters(s.feedback(&pick(None, Some("acme.com"))).await.unwrap()),
        ["a", "c"]
    );
    assert_eq!(
        voters(s.feedback(&pick(Some(1), Some("acme.com"))).await.unwrap()),
        ["c"]
    );
    // `until` is exclusive: a vote at the cut belongs to the next period.
    let until = |until: i64| FeedbackFilter {
        until: Some(ts(until)),
        ..FeedbackFilter::default()
    };
    assert_eq!(voters(s.feedback(&until(10)).await.unwrap()), ["a"]);
    assert_eq!(voters(s.feedback(&until(11)).await.unwrap()), ["a", "b"]);
    // A domain is matched exactly: no suffix or pattern matching.
    assert!(
        s.feedback(&pick(None, Some("me.com")))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.feedback(&pick(None, Some("%"))).await.unwrap().is_empty());
    // Milliseconds count: a vote 1 ms before `since` is out.
    let mut v = vote("3", "d", "acme.com", true, 30);
    v.at -= Duration::milliseconds(1);
    s.put_feedback(&v).await.unwrap();
    assert_eq!(
        voters(s.feedback(&pick(Some(30), None)).await.unwrap()),
        Vec::<String>::new()
    );
}

async fn feedback_survives_hostile_text_and_reopen(t: &TestStore) {
    let mut v = vote("1", "x", "acme.com", false, 0);
    v.comment = Some("'; DROP TABLE page_feedback; -- \"quoted\", <b>, ünïcode\nline 2".into());
    v.page_title = "Title, with \"commas\"".into();
    t.store.put_feedback(&v).await.unwrap();
    let again = t.reopen().await.unwrap();
    assert_eq!(
        again.feedback(&FeedbackFilter::default()).await.unwrap(),
        [v]
    );
}

async fn search_events_are_appended_and_listed_newest_first(t: &TestStore) {
    let s = &t.store;
    let ev = |q: &str, results: u64, at: i64, email: Option<&str>| SearchEvent {
        at: ts(at),
        domain: "acme.com".into(),
        email: email.map(str::to_owned),
        query: q.into(),
        results,
    };
    s.record_searches(&[]).await.unwrap();
    // More than one statement's worth of rows.
    let many: Vec<SearchEvent> = (0..250)
        .map(|i| ev(&format!("q{i}"), i, i as i64, None))
        .collect();
    s.record_searches(&many).await.unwrap();
    s.record_searches(&[ev("instalation", 0, 300, Some("ann@acme.com"))])
        .await
        .unwrap();
    let latest = s.search_events(None, 3).await.unwrap();
    assert_eq!(latest[0], ev("instalation", 0, 300, Some("ann@acme.com")));
    assert_eq!(latest[1].query, "q249");
    assert_eq!(latest[2].query, "q248");
    let since = s.search_events(Some(ts(245)), 1000).await.unwrap();
    assert_eq!(since.len(), 6, "245..=249 and the last one");
}

fn page(id: &str, space_id: &str, title: &str, text: &str, labels: &[&str]) -> PageRecord {
    PageRecord {
        id: id.into(),
        space_id: space_id.into(),
        parent_id: None,
        position: 0,
        title: title.into(),
        version: 1,
        created_at: ts(0),
        updated_at: ts(1),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        restricted: false,
        effective_restricted: false,
        body_storage: String::new(),
        body_html: String::new(),
        body_text: text.into(),
        headings: vec![],
    }
}

async fn sync(store: &dyn Store, id: &str, key: &str, pages: Vec<PageRecord>) {
    let s = SpaceRecord {
        id: id.into(),
        key: key.into(),
        name: key.into(),
        homepage_id: None,
        ..Default::default()
    };
    let mut tx = store.begin_space_sync(&s, SyncMode::Full).await.unwrap();
    tx.upsert_pages(pages).await.unwrap();
    tx.commit(SyncState {
        space_key: key.into(),
        space_id: id.into(),
        watermark: None,
        last_full_sync: Some(ts(0)),
        last_sync: Some(ts(0)),
    })
    .await
    .unwrap();
}

fn scope(space_id: &str, labels: Option<&[&str]>) -> ScopeEntry {
    ScopeEntry {
        space_id: space_id.into(),
        labels: labels.map(|l| l.iter().map(|x| x.to_string()).collect()),
    }
}

async fn search_counts_only_matches_in_scope(t: &TestStore) {
    let s = &*t.store;
    let mut secret = page("4", "S1", "Kiwi secrets", "kiwi", &["faq"]);
    secret.restricted = true;
    secret.effective_restricted = true;
    sync(
        s,
        "S1",
        "KB",
        vec![
            page("1", "S1", "Home", "kiwi farm", &[]),
            page("2", "S1", "FAQ", "kiwi questions", &["faq"]),
            page("3", "S1", "How", "kiwi how-to", &["howto"]),
            secret,
        ],
    )
    .await;
    sync(
        s,
        "S2",
        "OTHER",
        vec![page("o", "S2", "Other", "kiwi", &["faq"])],
    )
    .await;
    let count = async |sc: &[ScopeEntry], limit: u32| s.search("kiwi", sc, limit, 0).await.unwrap();
    let r = count(&[scope("S1", None)], 20).await;
    assert_eq!(
        r.total,
        MatchCount::Exact(3),
        "the restricted page is not counted"
    );
    // The count is of all matches, not of the page of hits.
    let r = count(&[scope("S1", None)], 1).await;
    assert_eq!((r.hits.len(), r.total), (1, MatchCount::Exact(3)));
    assert_eq!(
        count(&[scope("S1", Some(&["faq"]))], 20).await.total,
        MatchCount::Exact(1)
    );
    assert_eq!(
        count(&[scope("S1", Some(&[]))], 20).await.total,
        MatchCount::Exact(0)
    );
    assert_eq!(
        count(&[scope("S1", Some(&["faq"])), scope("S2", None)], 20)
            .await
            .total,
        MatchCount::Exact(2)
    );
    assert_eq!(
        s.search("nothing", &[scope("S1", None)], 20, 0)
            .await
            .unwrap()
            .total,
        MatchCount::Exact(0)
    );
}

async fn search_counts_of_a_big_match_set_are_lower_bounds(t: &TestStore) {
    let s = &*t.store;
    // 1,300 matches, every 7th restricted: more than are counted exactly, and more than
    // either backend's candidate bound.
    let pages: Vec<PageRecord> = (0..1300)
        .map(|i| {
            let mut p = page(
                &format!("b{i:04}"),
                "BIG",
                &format!("Note {i}"),
                "melon",
                &[],
            );
            p.position = i;
            if i % 7 == 0 {
                p.restricted = true;
                p.effective_restricted = true;
            }
            p
        })
        .collect();
    sync(s, "BIG", "BIG", pages).await;
    let r = s
        .search("melon", &[scope("BIG", None)], 20, 0)
        .await
        .unwrap();
    match r.total {
        MatchCount::AtLeast(n) => {
            // The first 101 newest candidates, each checked: never the restricted ones.
            assert!(n <= 101, "{n}");
            assert!(n >= 80, "{n}");
        }
        other => panic!("a bounded search gives a lower bound, not {other:?}"),
    }
}

async fn search_counts_exactly_up_to_a_hundred(t: &TestStore) {
    let s = &*t.store;
    let pages = |n: usize| -> Vec<PageRecord> {
        (0..n)
            .map(|i| page(&format!("p{i:03}"), "C", &format!("Page {i}"), "plum", &[]))
            .collect()
    };
    sync(s, "C", "C", pages(100)).await;
    let r = s.search("plum", &[scope("C", None)], 20, 0).await.unwrap();
    assert_eq!(r.total, MatchCount::Exact(100));
    sync(s, "C", "C", pages(101)).await;
    let r = s.search("plum", &[scope("C", None)], 20, 0).await.unwrap();
    assert_eq!(r.total, MatchCount::AtLeast(101));
}

async fn insights_sum_up_a_period_per_domain_and_purge(t: &TestStore) {
    let s = &*t.store;
    let view = |page: &str, domain: &str, reader: &str, at: i64| PageViewEvent {
        at: ts(at),
        page_id: page.into(),
        space_key: "KB".into(),
        domain: domain.into(),
        reader: reader.into(),
    };
    s.record_page_views(&[
        view("1", "acme.com", "ann", 0),
        view("1", "acme.com", "ann", 1),
        view("1", "acme.com", "bob", 2),
        view("2", "acme.com", "bob", 3),
        view("2", "globex.com", "gil", 4),
        view("3", "acme.com", "ann", 100),
    ])
    .await
    .unwrap();
    let search = |q: &str, domain: &str, results: u64, at: i64| SearchEvent {
        at: ts(at),
        domain: domain.into(),
        email: None,
        query: q.into(),
        results,
    };
    s.record_searches(&[
        search("instal", "acme.com", 0, 0),
        search("instal", "acme.com", 0, 1),
        search("proxy", "acme.com", 0, 2),
        search("install", "acme.com", 4, 3),
        search("instal", "globex.com", 0, 4),
    ])
    .await
    .unwrap();
    s.put_feedback(&vote("1", "ann", "acme.com", true, 5))
        .await
        .unwrap();
    s.put_feedback(&vote("1", "bob", "acme.com", false, 6))
        .await
        .unwrap();
    s.put_feedback(&vote("2", "gil", "globex.com", true, 7))
        .await
        .unwrap();

    let acme = s
        .insights_summary(&InsightsQuery {
            since: Some(ts(0)),
            until: Some(ts(100)),
            domain: Some("acme.com".into()),
            top: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        acme,
        InsightsSummary {
            page_views: 4,
            unique_readers: 2,
            top_pages: vec![("1".into(), "KB".into(), 3), ("2".into(), "KB".into(), 1)],
            searches: 4,
            zero_result_searches: 3,
            zero_result_queries: vec![("instal".into(), 2), ("proxy".into(), 1)],
            helpful_yes: 1,
            helpful_no: 1,
        }
    );
    let all = s
        .insights_summary(&InsightsQuery {
            top: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (all.page_views, all.unique_readers, all.searches),
        (6, 3, 5)
    );
    assert_eq!(all.top_pages, [("1".to_owned(), "KB".to_owned(), 3)]);
    assert_eq!(all.zero_result_queries, [("instal".to_owned(), 3)]);
    assert_eq!((all.helpful_yes, all.helpful_no), (2, 1));
    // Nothing in an empty period.
    let none = s
        .insights_summary(&InsightsQuery {
            since: Some(ts(1000)),
            top: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(none, InsightsSummary::default());
    // Per domain: the same numbers, one row per domain with any event, by name.
    let row = |domain: &str, v: u64, r: u64, s: u64, z: u64, y: u64, n: u64| DomainInsights {
        domain: domain.into(),
        page_views: v,
        unique_readers: r,
        searches: s,
        zero_result_searches: z,
        helpful_yes: y,
        helpful_no: n,
    };
    let per = s
        .insights_by_domain(&InsightsQuery {
            until: Some(ts(100)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        per,
        [
            row("acme.com", 4, 2, 4, 3, 1, 1),
            row("globex.com", 1, 1, 1, 1, 1, 0)
        ]
    );
    // A period with only a vote of one domain, and the domain filter.
    s.put_feedback(&vote("9", "zed", "initech.com", false, 200))
        .await
        .unwrap();
    let per = s
        .insights_by_domain(&InsightsQuery {
            since: Some(ts(150)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(per, [row("initech.com", 0, 0, 0, 0, 0, 1)]);
    let per = s
        .insights_by_domain(&InsightsQuery {
            domain: Some("globex.com".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(per, [row("globex.com", 1, 1, 1, 1, 1, 0)]);
    // Retention: events before the cut go, votes stay.
    assert_eq!(s.purge_insights(ts(3)).await.unwrap(), 3 + 3);
    let left = s
        .insights_summary(&InsightsQuery {
            top: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((left.page_views, left.searches), (3, 2));
    assert_eq!((left.helpful_yes, left.helpful_no), (2, 2));
}
