//! Reader insights per domain, black-box: page views, searches and votes made over HTTP by
//! readers of two domains are recorded off the request path and shown to the admin at
//! `/admin/insights` per domain and period (unique readers, top pages, searches with no
//! result, feedback), and exported as CSV (escaped, formulas defused, audited). Both backends.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::ids::*;
use common::*;
use kbgate_store::{InsightsQuery, PageViewEvent, SearchEvent};

/// Waits (up to 10 s) for the background writer to have stored what `probe` looks for.
async fn eventually<T>(mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not written within 10 s");
}

/// The form token in a page (`name="csrf" value="…"`).
fn csrf_in(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    body[at..].split('"').next().unwrap().to_owned()
}

/// Signs `email` in as a reader and opens the admin console; the cookie header of both.
async fn admin_cookies(app: &TestApp, email: &str) -> String {
    let reader = app.sign_in(email).await;
    let body = app.get("/admin", Some(&reader)).await.text().await.unwrap();
    let token = csrf_in(&body);
    let resp = app
        .client
        .post(app.url("/admin/session"))
        .header("cookie", &reader)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let admin = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("kbgate_admin="))
        .and_then(|v| v.split(';').next())
        .expect("an admin cookie")
        .to_owned();
    format!("{reader}; {admin}")
}

/// The numbers of a domain's row in the per-domain table.
fn domain_row(html: &str, domain: &str) -> Option<Vec<u64>> {
    let row = html.split(&format!("\">{domain}</a></th>")).nth(1)?;
    let row = row.split("</tr>").next()?;
    Some(
        row.split("<td>")
            .skip(1)
            .map(|c| c.split("</td>").next().unwrap().parse().unwrap())
            .collect(),
    )
}

/// The part of the page under a heading, up to the next one.
fn section<'a>(html: &'a str, heading: &str) -> &'a str {
    let after = html
        .split(&format!("<h2>{heading}</h2>"))
        .nth(1)
        .unwrap_or_else(|| panic!("no section {heading}: {html}"));
    after.split("<h2>").next().unwrap()
}

async fn views_recorded(app: &TestApp, n: u64) {
    eventually(async || {
        let s = app
            .store
            .insights_summary(&InsightsQuery::default())
            .await
            .unwrap();
        (s.page_views >= n).then_some(())
    })
    .await;
}

/// Two domains read, search and vote; the admin sees each domain's numbers, filters by
/// domain and period, and exports.
async fn insights_per_domain(app: TestApp) {
    let ann = app.sign_in("ann@acme.com").await;
    let bob = app.sign_in("bob@acme.com").await;
    let cat = app.sign_in("cat@acme.com").await;
    let pat = app.sign_in("pat@partner.com").await;
    // acme: ann views Welcome twice (the reload within 30 s counts once) and the FAQ once,
    // bob and cat Welcome once; a refused page (404) is no view. partner: pat views the FAQ
    // once.
    for (cookie, page, status) in [
        (&ann, WELCOME, 200),
        (&ann, WELCOME, 200),
        (&ann, PUBLIC_FAQ, 200),
        (&bob, WELCOME, 200),
        (&cat, WELCOME, 200),
        (&ann, RESTRICTED, 404),
        (&pat, PUBLIC_FAQ, 200),
    ] {
        let resp = app.get(&format!("/pages/{page}"), Some(cookie)).await;
        assert_eq!(resp.status(), status, "{page}");
    }
    // Searches: one of acme finds nothing; partner one hit and one miss, the miss a formula.
    for (cookie, q) in [
        (&ann, "zzznothing"),
        (&pat, "faqword"),
        (&pat, "=cmd|' /C calc'!A0"),
    ] {
        let resp = app
            .client
            .get(app.url("/search"))
            .query(&[("q", q)])
            .header("cookie", cookie.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    // partner votes "no" with a comment that has quotes and a comma.
    let (_, html) = app.get_text(&format!("/pages/{PUBLIC_FAQ}"), &pat).await;
    let resp = app
        .client
        .post(app.url(&format!("/pages/{PUBLIC_FAQ}/feedback")))
        .header("cookie", &pat)
        .form(&[
            ("helpful", "no"),
            ("comment", "Says \"soon\", never came"),
            ("csrf", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // 5 counted views above (ann's reload is not; nor is pat's second view of the FAQ, which
    // fetched the form token).
    views_recorded(&app, 5).await;
    eventually(async || {
        let s = app
            .store
            .insights_summary(&InsightsQuery::default())
            .await
            .unwrap();
        (s.searches == 3 && s.helpful_no == 1).then_some(())
    })
    .await;
    // An older acme view, outside the last 7 days but inside 30 (written as the writer
    // would have, 20 days ago).
    app.store
        .record_page_views(&[PageViewEvent {
            at: Utc::now() - chrono::Duration::days(20),
            page_id: CHILD.into(),
            space_key: "KB".into(),
            domain: "acme.com".into(),
            reader: "an-old-reader".into(),
        }])
        .await
        .unwrap();
    // Nor are the emails of readers kept with their views (only a hash).
    let admin = admin_cookies(&app, ADMIN).await;

    let (s, html) = app.get_text("/admin/insights?days=7", &admin).await;
    assert_eq!(s, 200);
    // Columns: views, unique readers, searches, no result, helpful, not helpful.
    assert_eq!(domain_row(&html, "acme.com"), Some(vec![4, 3, 1, 1, 0, 0]));
    assert_eq!(
        domain_row(&html, "partner.com"),
        Some(vec![1, 1, 2, 1, 0, 1])
    );
    let top = section(&html, "Top pages");
    let welcome = top.find("Welcome").expect("Welcome in the top pages");
    let faq = top.find("Public FAQ").expect("the FAQ in the top pages");
    assert!(welcome < faq, "most viewed first: {top}");
    assert!(!top.contains("Child page"), "the old view is out of 7 days");
    let misses = section(&html, "Searches with no result");
    assert!(misses.contains("zzznothing") && misses.contains("=cmd|"));
    assert!(!misses.contains("faqword"));
    let comments = section(&html, "Feedback comments");
    assert!(
        comments.contains("Says &#34;soon&#34;, never came"),
        "{comments}"
    );
    assert!(comments.contains("partner.com") && comments.contains("Public FAQ"));
    // No page title outside the views shows (the restricted page was refused, not viewed).
    assert!(!html.contains("Secret plans"));

    // 30 days: the old view and its reader count.
    let (_, html) = app.get_text("/admin/insights?days=30", &admin).await;
    assert_eq!(domain_row(&html, "acme.com"), Some(vec![5, 4, 1, 1, 0, 0]));
    assert!(section(&html, "Top pages").contains("Child page"));
    // A custom period of that one day only.
    let day = (Utc::now() - chrono::Duration::days(20)).date_naive();
    let (_, html) = app
        .get_text(&format!("/admin/insights?from={day}&to={day}"), &admin)
        .await;
    assert_eq!(domain_row(&html, "acme.com"), Some(vec![1, 1, 0, 0, 0, 0]));
    assert_eq!(domain_row(&html, "partner.com"), None);

    // The domain filter: partner's pages and searches only.
    let (_, html) = app
        .get_text("/admin/insights?days=7&domain=Partner.com", &admin)
        .await;
    assert!(html.contains("Insights for partner.com"));
    assert_eq!(domain_row(&html, "acme.com"), None);
    let top = section(&html, "Top pages");
    assert!(
        top.contains("Public FAQ") && !top.contains("Welcome"),
        "{top}"
    );
    assert!(!section(&html, "Searches with no result").contains("zzznothing"));

    // Bad input: a clear 400.
    for bad in [
        "/admin/insights?days=14",
        "/admin/insights?from=yesterday",
        "/admin/insights?from=2026-02-01&to=2026-01-01",
        "/admin/insights?domain=not%20a%20domain",
        "/admin/insights.csv?days=0",
    ] {
        let (s, _) = app.get_text(bad, &admin).await;
        assert_eq!(s, 400, "{bad}");
    }

    // CSV: per domain, its numbers, top pages, zero-result queries; then every vote.
    let resp = app.get("/admin/insights.csv?days=7", Some(&admin)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let csv = resp.text().await.unwrap();
    let today = Utc::now().date_naive();
    let from = today - chrono::Duration::days(6);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines[0], "from,to,domain,kind,key,title,value,at,comment");
    let line = |rest: &str| format!("\"{from}\",\"{today}\",{rest}");
    for expected in [
        line("\"acme.com\",\"page_views\",\"\",\"\",\"4\",\"\",\"\""),
        line("\"acme.com\",\"unique_readers\",\"\",\"\",\"3\",\"\",\"\""),
        line("\"partner.com\",\"zero_result_searches\",\"\",\"\",\"1\",\"\",\"\""),
        line(&format!(
            "\"acme.com\",\"top_page\",\"{WELCOME}\",\"Welcome\",\"3\",\"\",\"\""
        )),
        // Formula defused, quotes doubled.
        line("\"partner.com\",\"zero_result_query\",\"'=cmd|' /C calc'!A0\",\"\",\"1\",\"\",\"\""),
    ] {
        assert!(lines.contains(&expected.as_str()), "{expected} in\n{csv}");
    }
    let vote = lines
        .iter()
        .find(|l| l.contains("\"feedback\""))
        .expect("the vote");
    assert!(
        vote.contains(&format!(
            "\"partner.com\",\"feedback\",\"{PUBLIC_FAQ}\",\"Public FAQ\",\"no\""
        )),
        "{vote}"
    );
    assert!(
        vote.ends_with("\"Says \"\"soon\"\", never came\""),
        "{vote}"
    );
    assert!(
        !csv.contains("ann@") && !csv.contains("pat@"),
        "no reader emails"
    );
    // A chosen domain with nothing: its zero numbers, nothing of other domains.
    let (_, csv) = app
        .get_text("/admin/insights.csv?days=7&domain=globex.com", &admin)
        .await;
    assert!(
        csv.contains("\"globex.com\",\"page_views\",\"\",\"\",\"0\""),
        "{csv}"
    );
    assert!(
        !csv.contains("acme.com") && !csv.contains("partner.com"),
        "{csv}"
    );
    // Each export is in the audit log, with its choice.
    let audit = app.store.recent_audit(10).await.unwrap();
    let exports: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "admin.insights.export")
        .collect();
    assert_eq!(exports.len(), 2);
    assert_eq!(exports[0].actor, ADMIN);
    assert_eq!(exports[0].detail["domain"], "globex.com");
    assert_eq!(exports[1].detail["domain"], serde_json::Value::Null);
    assert_eq!(exports[1].detail["from"], from.to_string());
}

#[tokio::test]
async fn insights_per_domain_on_sqlite() {
    insights_per_domain(spawn_app_on(Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test]
async fn insights_per_domain_on_postgres() {
    let Some(app) = spawn_app_on(Backend::Postgres).await else {
        return;
    };
    insights_per_domain(app).await;
}

/// Retention as the console sees it: once events before the cut are purged (what the
/// service's hourly step does with `[insights] retention_days`), they are gone from the
/// numbers, and later ones stay.
#[tokio::test]
async fn pruned_events_leave_the_insights() {
    let app = spawn_app().await;
    let now = Utc::now();
    let view = |days: i64| PageViewEvent {
        at: now - chrono::Duration::days(days),
        page_id: WELCOME.into(),
        space_key: "KB".into(),
        domain: "acme.com".into(),
        reader: format!("r{days}"),
    };
    app.store
        .record_page_views(&[view(60), view(40), view(2)])
        .await
        .unwrap();
    app.store
        .record_searches(&[SearchEvent {
            at: now - chrono::Duration::days(50),
            domain: "acme.com".into(),
            email: None,
            query: "old miss".into(),
            results: 0,
        }])
        .await
        .unwrap();
    let admin = admin_cookies(&app, ADMIN).await;
    let (_, html) = app.get_text("/admin/insights?days=90", &admin).await;
    assert_eq!(domain_row(&html, "acme.com"), Some(vec![3, 3, 1, 1, 0, 0]));
    let removed = app
        .store
        .purge_insights(now - chrono::Duration::days(30))
        .await
        .unwrap();
    assert_eq!(removed, 3);
    let (_, html) = app.get_text("/admin/insights?days=90", &admin).await;
    assert_eq!(domain_row(&html, "acme.com"), Some(vec![1, 1, 0, 0, 0, 0]));
    assert!(!html.contains("old miss"));
}

/// A reader's page view is recorded without the reader waiting for it, and a reader of one
/// domain never reaches the console (the matrix in `authz.rs` covers every route).
#[tokio::test]
async fn readers_get_404_at_the_insights() {
    let app = spawn_app().await;
    let ann = app.sign_in("ann@acme.com").await;
    for path in ["/admin/insights", "/admin/insights.csv?days=7"] {
        let (s, body) = app.get_text(path, &ann).await;
        assert_eq!(s, 404, "{path}");
        assert!(!body.contains("Insights"), "{path}");
    }
    let (s, _) = app.get_text(&format!("/pages/{WELCOME}"), &ann).await;
    assert_eq!(s, 200);
    views_recorded(&app, 1).await;
}
