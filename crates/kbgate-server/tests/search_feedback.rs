//! Search people expect (result count, filters, the query kept, suggestions, "did you mean",
//! recorded searches) and "Was this helpful?" feedback — each through the `Viewer` gate:
//! counts, suggestions and corrections only ever come from what the viewer may read
//! (ARCHITECTURE.md, S1).

mod common;

use std::time::Duration;

use common::*;
use kbgate_store::{FeedbackFilter, FeedbackRecord, SearchEvent, Store};

/// The value of the first `name="csrf"` field of a page.
fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a form token")
        .to_owned()
}

/// The text of the result count.
fn count_of(html: &str) -> String {
    html.split("<p class=\"count\" role=\"status\">")
        .nth(1)
        .and_then(|s| s.split("</p>").next())
        .expect("a result count")
        .to_owned()
}

/// Waits (up to 5 s) for the background writer to have stored what `ready` looks for.
async fn eventually<T>(mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..100 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not written within 5 s");
}

async fn searches(store: &dyn Store) -> Vec<SearchEvent> {
    store.search_events(None, 100).await.unwrap()
}

async fn votes(store: &dyn Store) -> Vec<FeedbackRecord> {
    store.feedback(&FeedbackFilter::default()).await.unwrap()
}

#[tokio::test]
async fn search_counts_only_readable_pages_and_keeps_the_query() {
    let app = spawn_app().await;
    let acme = app.sign_in("ann@acme.com").await;
    let partner = app.sign_in("pat@partner.com").await;
    // Every fixture body starts with "Intro": acme reads 5 KB pages (not the restricted
    // one nor the one under it), partner the 2 public ones outside the restriction.
    let (s, html) = app.get_text("/search?q=intro", &acme).await;
    assert_eq!(s, 200);
    assert_eq!(count_of(&html), "5 results");
    assert!(
        html.contains("id=\"q2\" name=\"q\" type=\"search\" value=\"intro\""),
        "{html}"
    );
    let (_, html) = app.get_text("/search?q=intro", &partner).await;
    assert_eq!(count_of(&html), "2 results");
    assert!(!html.contains("Secret plans") && !html.contains("Hidden child"));
    let (_, html) = app.get_text("/search?q=welcome", &acme).await;
    assert_eq!(count_of(&html), "1 result");
    // The query is kept escaped.
    let (_, html) = app.get_text("/search?q=%22%3E%3Cscript%3Ex", &acme).await;
    assert!(
        html.contains("value=\"&#34;&#62;&#60;script&#62;x\""),
        "{html}"
    );
    assert!(!html.contains("\"><script>x"));
}

#[tokio::test]
async fn filters_narrow_and_never_widen() {
    let app = spawn_app().await;
    let acme = app.sign_in("ann@acme.com").await;
    let partner = app.sign_in("pat@partner.com").await;
    // A space the viewer may not read gives nothing, not HR's page.
    let (s, html) = app.get_text("/search?q=intro&space=HR", &acme).await;
    assert_eq!(s, 200);
    assert_eq!(count_of(&html), "0 results");
    let (_, html) = app.get_text("/search?q=hotel&space=HR", &acme).await;
    assert!(!html.contains("Salaries"));
    let (_, html) = app.get_text("/search?q=intro&space=KB", &acme).await;
    assert_eq!(count_of(&html), "5 results");
    // Label filter within a whole-space grant: only pages with the label.
    let (_, html) = app.get_text("/search?q=intro&label=public", &acme).await;
    assert_eq!(count_of(&html), "2 results");
    assert!(html.contains("Public FAQ") && html.contains("Public under internal"));
    // A partner (labels `public` only) asking for another label gets nothing, not more.
    let (_, html) = app
        .get_text("/search?q=intro&label=internal", &partner)
        .await;
    assert_eq!(count_of(&html), "0 results");
    assert!(!html.contains("Internal notes"));
    // The partner's audience uses labels: the label filter is offered, with its labels only.
    let (_, html) = app.get_text("/search?q=intro", &partner).await;
    assert!(
        html.contains("<select id=\"label\" name=\"label\">"),
        "{html}"
    );
    assert!(html.contains("<option value=\"public\">public</option>"));
    assert!(!html.contains("value=\"internal\""));
    // acme's audience does not: no label filter.
    let (_, html) = app.get_text("/search?q=intro", &acme).await;
    assert!(!html.contains("name=\"label\""));
    // Paging keeps the filter.
    let (_, html) = app
        .get_text("/search?q=intro&label=public&offset=0", &acme)
        .await;
    assert!(!html.contains("More results"));
}

#[tokio::test]
async fn did_you_mean_comes_from_readable_titles_only() {
    let app = spawn_app().await;
    let acme = app.sign_in("ann@acme.com").await;
    let partner = app.sign_in("pat@partner.com").await;
    let (_, html) = app.get_text("/search?q=welcme", &acme).await;
    assert_eq!(count_of(&html), "0 results");
    assert!(
        html.contains("Did you mean <a href=\"/search?q=welcome\">welcome</a>?"),
        "{html}"
    );
    // "Secret plans" is restricted, "Salaries" in a space acme may not read: no correction
    // names them.
    for q in ["secrte", "salries"] {
        let (_, html) = app.get_text(&format!("/search?q={q}"), &acme).await;
        assert!(!html.contains("Did you mean"), "{q}: {html}");
    }
    // The partner may not read "Welcome": nothing to offer.
    let (_, html) = app.get_text("/search?q=welcme", &partner).await;
    assert!(!html.contains("Did you mean"), "{html}");
    let (_, html) = app.get_text("/search?q=pubic", &partner).await;
    assert!(
        html.contains("Did you mean <a href=\"/search?q=public\">public</a>?"),
        "{html}"
    );
}

#[tokio::test]
async fn searches_are_recorded_with_the_domain_and_no_email_by_default() {
    let app = spawn_app().await;
    let acme = app.sign_in("ann@acme.com").await;
    app.get_text("/search?q=welcme", &acme).await;
    app.get_text("/search?q=welcome", &acme).await;
    // Later pages of one search are not new searches.
    app.get_text("/search?q=intro&offset=20", &acme).await;
    let events = eventually(async || {
        let e = searches(&*app.store).await;
        (e.len() >= 2).then_some(e)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = {
        let again = searches(&*app.store).await;
        assert_eq!(again.len(), events.len(), "{again:?}");
        again
    };
    let got: Vec<(&str, u64, &str, Option<&str>)> = events
        .iter()
        .map(|e| {
            (
                e.query.as_str(),
                e.results,
                e.domain.as_str(),
                e.email.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("welcome", 1, "acme.com", None),
            ("welcme", 0, "acme.com", None)
        ]
    );
}

#[tokio::test]
async fn suggestions_name_readable_titles_only() {
    let app = spawn_app().await;
    let acme = app.sign_in("ann@acme.com").await;
    let partner = app.sign_in("pat@partner.com").await;
    let suggest = async |q: &str, cookie: &str| -> Vec<String> {
        let r = app
            .client
            .get(app.url("/suggest"))
            .query(&[("q", q)])
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        body["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert!(s["url"].as_str().unwrap().starts_with("/pages/"));
                s["title"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    assert_eq!(
        suggest("pub", &acme).await,
        ["Public FAQ", "Public under internal"]
    );
    assert_eq!(suggest("WEL", &acme).await, ["Welcome"]);
    assert!(suggest("secret", &acme).await.is_empty(), "restricted");
    assert!(
        suggest("hidden", &acme).await.is_empty(),
        "under a restricted page"
    );
    assert!(
        suggest("salar", &acme).await.is_empty(),
        "another audience's space"
    );
    assert!(
        suggest("wel", &partner).await.is_empty(),
        "not labelled public"
    );
    assert_eq!(
        suggest("pub", &partner).await,
        ["Public FAQ", "Public under internal"]
    );
    assert!(suggest("p", &acme).await.is_empty(), "one letter");
    // No session: refused.
    let r = app
        .client
        .get(app.url("/suggest?q=pub"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_suggest_script_is_first_party_and_the_pages_stay_script_free_inline() {
    let app = spawn_app().await;
    let acme = app.sign_in("ann@acme.com").await;
    let r = app.get("/assets/suggest.js", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/javascript; charset=utf-8"
    );
    let js = r.text().await.unwrap();
    assert!(js.contains("role") && js.contains("combobox") && js.contains("/suggest?q="));
    assert!(!js.contains("innerHTML"), "suggestions are written as text");
    for path in ["/", "/search?q=intro", &format!("/pages/{}", ids::WELCOME)] {
        let r = app.get(path, Some(&acme)).await;
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let html = r.text().await.unwrap();
        let scripts: Vec<Tag> = start_tags(&html)
            .into_iter()
            .filter(|(name, _)| name == "script")
            .collect();
        assert_eq!(scripts.len(), 1, "{path}");
        assert!(
            scripts[0]
                .1
                .iter()
                .any(|(k, v)| k == "src" && v == "/assets/suggest.js"),
            "{path}: {scripts:?}"
        );
    }
}

#[tokio::test]
async fn feedback_is_one_vote_per_person_and_needs_the_form_token() {
    let app = spawn_app().await;
    let ann = app.sign_in("ann@acme.com").await;
    let path = format!("/pages/{}", ids::WELCOME);
    let (s, html) = app.get_text(&path, &ann).await;
    assert_eq!(s, 200);
    assert!(html.contains("Was this helpful?"));
    assert!(html.contains(&format!("action=\"/pages/{}/feedback\"", ids::WELCOME)));
    let csrf = csrf_of(&html);
    // Both forms carry the person's own token (the shared page is filled per person).
    assert_eq!(html.matches(&format!("value=\"{csrf}\"")).count(), 2);
    let post = async |cookie: &str, page: &str, form: &[(&str, &str)]| {
        app.client
            .post(app.url(&format!("/pages/{page}/feedback")))
            .header("cookie", cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    };
    // No token, a wrong token, another site: refused.
    assert_eq!(
        post(&ann, ids::WELCOME, &[("helpful", "yes")])
            .await
            .status(),
        403
    );
    assert_eq!(
        post(&ann, ids::WELCOME, &[("helpful", "yes"), ("csrf", "x")])
            .await
            .status(),
        403
    );
    let r = app
        .client
        .post(app.url(&format!("/pages/{}/feedback", ids::WELCOME)))
        .header("cookie", &ann)
        .header("origin", "https://evil.com")
        .form(&[("helpful", "yes"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Neither yes nor no.
    assert_eq!(
        post(&ann, ids::WELCOME, &[("helpful", "maybe"), ("csrf", &csrf)])
            .await
            .status(),
        400
    );
    // A vote, then a changed mind with a comment: one row, the last answer.
    let r = post(&ann, ids::WELCOME, &[("helpful", "yes"), ("csrf", &csrf)]).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Thank you"));
    eventually(async || (votes(&*app.store).await.len() == 1).then_some(())).await;
    let r = post(
        &ann,
        ids::WELCOME,
        &[
            ("helpful", "no"),
            ("comment", "  Step 2 fails  "),
            ("csrf", &csrf),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let v = eventually(async || {
        let v = votes(&*app.store).await;
        (v.len() == 1 && !v[0].helpful).then_some(v)
    })
    .await;
    assert_eq!(v[0].page_id, ids::WELCOME);
    assert_eq!(v[0].space_key, "KB");
    assert_eq!(v[0].page_title, "Welcome");
    assert_eq!(v[0].domain, "acme.com");
    assert_eq!(v[0].email, None, "emails are kept only when configured");
    assert_eq!(v[0].comment.as_deref(), Some("Step 2 fails"));
    // Another person of the same domain has a vote of their own.
    let bob = app.sign_in("bob@acme.com").await;
    let bob_csrf = csrf_of(&app.get_text(&path, &bob).await.1);
    post(
        &bob,
        ids::WELCOME,
        &[("helpful", "yes"), ("csrf", &bob_csrf)],
    )
    .await;
    eventually(async || (votes(&*app.store).await.len() == 2).then_some(())).await;
}

#[tokio::test]
async fn feedback_on_a_page_the_viewer_may_not_read_is_a_404_and_stores_nothing() {
    let app = spawn_app().await;
    let ann = app.sign_in("ann@acme.com").await;
    let pat = app.sign_in("pat@partner.com").await;
    let ann_csrf = csrf_of(&app.get_text("/", &ann).await.1);
    let pat_csrf = csrf_of(&app.get_text("/", &pat).await.1);
    for (cookie, csrf, page) in [
        (&ann, &ann_csrf, ids::RESTRICTED),
        (&ann, &ann_csrf, ids::UNDER_RESTRICTED),
        (&ann, &ann_csrf, ids::HR),
        (&ann, &ann_csrf, "999999"),
        (&pat, &pat_csrf, ids::WELCOME),
    ] {
        let r = app
            .client
            .post(app.url(&format!("/pages/{page}/feedback")))
            .header("cookie", cookie.as_str())
            .form(&[("helpful", "no"), ("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{page}");
    }
    // A readable page afterwards proves the writer runs; nothing else was stored.
    post_ok(&app, &pat, &pat_csrf, ids::PUBLIC_FAQ).await;
    let v = eventually(async || {
        let v = votes(&*app.store).await;
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].page_id, ids::PUBLIC_FAQ);
}

async fn post_ok(app: &TestApp, cookie: &str, csrf: &str, page: &str) {
    let r = app
        .client
        .post(app.url(&format!("/pages/{page}/feedback")))
        .header("cookie", cookie)
        .form(&[("helpful", "yes"), ("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn emails_are_kept_when_configured() {
    let test_store = open_store(Backend::Sqlite).await.unwrap();
    write_mirror(&test_store.store).await;
    let app = serve_with(
        test_store,
        policy(),
        |p| p.record_emails = true,
        hs256_verifier(),
    )
    .await;
    let ann = app.sign_in("ann@acme.com").await;
    let csrf = csrf_of(&app.get_text("/", &ann).await.1);
    post_ok(&app, &ann, &csrf, ids::WELCOME).await;
    app.get_text("/search?q=nothingmatches", &ann).await;
    let v = eventually(async || {
        let v = votes(&*app.store).await;
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(v[0].email.as_deref(), Some("ann@acme.com"));
    let e = eventually(async || {
        let e = searches(&*app.store).await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(e[0].email.as_deref(), Some("ann@acme.com"));
    assert_eq!(e[0].results, 0);
}

#[tokio::test]
async fn the_json_api_counts_and_filters_like_the_page() {
    let app = spawn_app().await;
    let (s, body) = app.api_get("/api/v1/search?q=intro", "ann@acme.com").await;
    assert_eq!(s, 200);
    assert_eq!(
        (body["total"].as_u64(), body["total_exact"].as_bool()),
        (Some(5), Some(true))
    );
    let (_, body) = app
        .api_get("/api/v1/search?q=intro&label=public", "ann@acme.com")
        .await;
    assert_eq!(body["total"].as_u64(), Some(2));
    assert_eq!(body["hits"].as_array().unwrap().len(), 2);
    let (_, body) = app
        .api_get("/api/v1/search?q=intro&label=internal", "pat@partner.com")
        .await;
    assert_eq!(body["total"].as_u64(), Some(0));
    let (_, body) = app
        .api_get("/api/v1/search?q=hotel&space=HR", "ann@acme.com")
        .await;
    assert_eq!(body["total"].as_u64(), Some(0));
    assert!(body["hits"].as_array().unwrap().is_empty());
}
