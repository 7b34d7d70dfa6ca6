//! The help widget in a real browser: headless Chromium (WebDriver) on a host app's page
//! served from **another origin** (`http://127.0.0.1:A`, with a strict CSP) than kbgate
//! (`http://localhost:B`). The host page includes `widget.js`; its backend asks kbgate's
//! `/api/v1/handover` for codes. The test signs in, reads suggestions, searches, opens an
//! article, is refused a restricted one, checks keyboard use and axe-core (0 violations), lets
//! the sign-in end (a new code is fetched), signs out, and has a third origin's frame post a
//! code to the widget, which must ignore it.
//!
//! Needs Debian's `chromium` and `chromium-driver` (without them the test is skipped with a
//! message, except under `CI=true`, where it fails) and npm for the pinned axe-core (installed
//! on first use, like the portal's browser test: `common::browser`).

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use common::browser::{axe_source, start_browser};
use common::*;
use fantoccini::{Client, Locator};
use kbgate_config::{WidgetConfig, WidgetSuggest};
use kbgate_policy::Label;
use serde_json::{Value, json};

/// The person signed in to the host app.
const READER: &str = "partner@partner.com";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A needed file, or `None` (skip) outside CI; under `CI=true` a missing one fails the test.
fn needed(env: &str, default: PathBuf, what: &str) -> Option<PathBuf> {
    let p = std::env::var_os(env).map(PathBuf::from).unwrap_or(default);
    if p.exists() {
        return Some(p);
    }
    assert!(!ci(), "CI=true but {what} is missing at {}", p.display());
    eprintln!(
        "SKIPPED widget browser test: {what} is missing at {}",
        p.display()
    );
    None
}

/// Runs `script` (a function body) until it returns something other than `null`/`false`.
async fn wait_for(c: &Client, script: &str, what: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = c.execute(script, vec![]).await.unwrap();
        if !v.is_null() && v != json!(false) {
            return v;
        }
        if Instant::now() > deadline {
            let text = c
                .execute(
                    "return document.body.innerText + ' | q=' + (document.getElementById('q') || {}).value \
                     + ' | results hidden=' + (document.getElementById('results') || {}).hidden \
                     + ' ' + (document.getElementById('results-list') || {}).innerHTML;",
                    vec![],
                )
                .await;
            panic!("timed out waiting for {what}; the document shows: {text:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Clone)]
struct Host {
    kb_api: String,
    http: reqwest::Client,
    codes: Arc<AtomicUsize>,
}

/// The host app's backend: the signed-in person's hand-over code, fetched from kbgate with
/// the API key (the back channel), passed on as kbgate answered it.
async fn kb_code(State(h): State<Host>) -> impl IntoResponse {
    h.codes.fetch_add(1, Ordering::SeqCst);
    let resp = h
        .http
        .post(format!("{}/api/v1/handover", h.kb_api))
        .bearer_auth(API_KEY)
        .json(&json!({ "email": READER }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    axum::Json(body)
}

/// Serves `router` on a fresh port of 127.0.0.1; returns its origin.
async fn serve_on_loopback(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    origin
}

#[tokio::test]
async fn the_help_widget_works_on_a_host_page_of_another_origin() {
    help_widget_on_another_origin("").await;
}

/// The same with kbgate under a path prefix (`public_url = http://localhost:B/kb`):
/// `widget.js` finds its frame, and the frame its API, next to itself.
#[tokio::test]
async fn the_help_widget_works_under_a_path_prefix() {
    help_widget_on_another_origin("/kb").await;
}

/// The whole walk, with kbgate served under `prefix` (`""`: at the root).
async fn help_widget_on_another_origin(prefix: &str) {
    let Some(chromium) = needed(
        "KBGATE_CHROMIUM",
        "/usr/bin/chromium".into(),
        "chromium (apt-get install chromium)",
    ) else {
        return;
    };
    let Some(driver) = needed(
        "KBGATE_CHROMEDRIVER",
        "/usr/bin/chromedriver".into(),
        "chromedriver (apt-get install chromium-driver)",
    ) else {
        return;
    };
    // The pinned axe-core, installed with npm on first use (as the portal's browser test).
    let axe_source = axe_source();

    // Three origins: the host app (A), a third party framed by it (C), kbgate (B).
    let host_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = format!("http://{}", host_listener.local_addr().unwrap());
    let evil = serve_on_loopback(axum::Router::new().route(
        "/ad",
        get(|| async { Html("<!doctype html><html lang=en><title>ad</title><p>ad</p></html>") }),
    ))
    .await;
    let widget = WidgetConfig {
        allowed_origins: vec![host.clone()],
        suggest: vec![WidgetSuggest {
            path_prefix: "/billing".into(),
            labels: vec![Label::parse("public").unwrap()],
        }],
        ..WidgetConfig::default()
    };
    let test_store = open_store(Backend::Sqlite).await.unwrap();
    write_mirror(&test_store.store).await;
    let app = serve_with_extras(
        test_store,
        policy(),
        |p| {
            p.public_url =
                url::Url::parse(&format!("http://localhost:{}{prefix}", p.listen.port())).unwrap()
        },
        hs256_verifier(),
        |e| e.widget = widget,
    )
    .await;
    let kb_origin = app.base.replace("127.0.0.1", "localhost");
    let kb = format!("{kb_origin}{prefix}");

    let codes = Arc::new(AtomicUsize::new(0));
    let csp = format!(
        "default-src 'none'; script-src 'self' {kb_origin}; frame-src {kb_origin} {evil}; \
         connect-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'"
    );
    let page = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Invoices · Host app</title>
<script src="/host.js"></script>
<script src="{kb}/widget.js" data-kbgate-handover="/kb-code" async></script></head>
<body><main><h1>Invoices</h1><p><button id="host-btn" type="button">Host action</button></p>
<iframe id="ad" title="Advertisement" src="{evil}/ad"></iframe></main></body></html>"#
    );
    let host_app = axum::Router::new()
        .route(
            "/billing/invoices",
            get(move || async move { ([(header::CONTENT_SECURITY_POLICY, csp)], Html(page)) }),
        )
        .route(
            "/host.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript")],
                    "window.__csp = []; document.addEventListener('securitypolicyviolation', \
                     function (e) { window.__csp.push(e.violatedDirective + ' ' + e.blockedURI); });",
                )
            }),
        )
        .route("/kb-code", get(kb_code))
        .with_state(Host {
            kb_api: format!("{}{prefix}", app.base),
            http: reqwest::Client::new(),
            codes: codes.clone(),
        });
    tokio::spawn(async move { axum::serve(host_listener, host_app).await.unwrap() });

    let downloads = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(&chromium, &driver, downloads.path()).await;
    c.goto(&format!("{host}/billing/invoices")).await.unwrap();

    // 1. The button, then the panel; focus moves into the frame.
    let btn = c
        .wait()
        .for_element(Locator::Css("button[data-kbgate=button]"))
        .await
        .expect("widget.js adds its button");
    assert_eq!(btn.text().await.unwrap(), "Help");
    assert_eq!(
        btn.attr("aria-expanded").await.unwrap().as_deref(),
        Some("false")
    );
    btn.click().await.unwrap();
    let active = c
        .execute("return document.activeElement.tagName;", vec![])
        .await
        .unwrap();
    assert_eq!(active, "IFRAME", "focus is in the widget's frame");
    let frame = c
        .find(Locator::Css("[data-kbgate=panel] iframe"))
        .await
        .unwrap();

    // 2. Inside the frame: signed in through the host app's code, suggestions for /billing.
    frame.clone().enter_frame().await.unwrap();
    let who = wait_for(
        &c,
        "const w = document.getElementById('who').textContent; return w || null;",
        "the widget to sign in",
    )
    .await;
    assert_eq!(who, READER);
    assert_eq!(codes.load(Ordering::SeqCst), 1);
    let suggested = wait_for(
        &c,
        "const l = [...document.querySelectorAll('#suggested-list a')].map(a => a.textContent); \
         return l.length ? l : null;",
        "suggestions",
    )
    .await;
    assert_eq!(suggested, json!(["Public FAQ", "Public under internal"]));

    // 3. Search: the partner's pages only; a restricted page does not show.
    let search = |q: &'static str| {
        let c = c.clone();
        async move {
            let input = c.find(Locator::Id("q")).await.unwrap();
            input.clear().await.unwrap();
            input.send_keys(q).await.unwrap();
            c.find(Locator::Css("#search button[type=submit]"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            wait_for(
                &c,
                &format!(
                    "const r = document.getElementById('results'); if (r.hidden) return null; \
                     const l = [...r.querySelectorAll('li')].map(li => li.firstChild.textContent); \
                     return document.getElementById('q').value === {q:?} && l.length ? l : null;"
                ),
                "search results",
            )
            .await
        }
    };
    assert_eq!(search("hiddenword").await, json!(["Nothing found."]));
    assert_eq!(search("secretword").await, json!(["Nothing found."]));
    assert_eq!(search("faqword").await, json!(["Public FAQ"]));

    // 4. Open the article; its portal link opens a new tab on kbgate.
    c.find(Locator::Css("#results-list a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &c,
        "return !document.getElementById('article').hidden && \
         document.getElementById('article-title').textContent === 'Public FAQ';",
        "the article",
    )
    .await;
    let body = c.find(Locator::Id("article-body")).await.unwrap();
    assert!(body.text().await.unwrap().contains("faqword"));
    let open = c.find(Locator::Id("article-open")).await.unwrap();
    assert_eq!(
        open.attr("href").await.unwrap().unwrap(),
        format!("{kb}/pages/{}", ids::PUBLIC_FAQ)
    );
    assert_eq!(
        open.attr("target").await.unwrap().as_deref(),
        Some("_blank")
    );

    // 5. A restricted page by id (a link to it, followed in the frame): refused, not shown.
    c.execute(
        &format!(
            "const a = document.createElement('a'); a.id = 'probe'; a.href = '{prefix}/pages/{}'; \
             a.textContent = 'probe'; document.getElementById('article-body').appendChild(a);",
            ids::RESTRICTED
        ),
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Id("probe"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &c,
        "return document.getElementById('status').textContent.includes('not available');",
        "the refusal",
    )
    .await;
    assert_eq!(
        c.find(Locator::Id("article-title"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Public FAQ"
    );
    let page_text = c
        .execute("return document.body.innerText;", vec![])
        .await
        .unwrap();
    assert!(!page_text.as_str().unwrap().contains("secretword"));

    // 6. axe-core in the frame: no violations.
    let axe_run = format!(
        "{axe_source}\n;const done = arguments[arguments.length - 1]; \
         axe.run(document, {{ iframes: false }}).then(r => done(r.violations.map(v => v.id + ': ' + \
         v.nodes.map(n => n.target.join(' ')).join(', '))), e => done(['axe failed: ' + e]));"
    );
    let v = c.execute_async(&axe_run, vec![]).await.unwrap();
    assert_eq!(v, json!([]), "axe violations in the frame");

    // 7. Escape (inside the frame) closes the panel and gives focus back to the button.
    c.active_element()
        .await
        .unwrap()
        .send_keys("\u{E00C}")
        .await
        .unwrap();
    c.enter_parent_frame().await.unwrap();
    wait_for(
        &c,
        "return document.activeElement.dataset.kbgate === 'button' && \
         document.querySelector('[data-kbgate=panel]').style.display === 'none';",
        "the panel to close",
    )
    .await;
    // Reopened from the keyboard; focus trapped: focusing the host page brings it back.
    c.active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    let trapped = c
        .execute(
            "document.getElementById('host-btn').focus(); \
             return document.activeElement.dataset.kbgate;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(trapped, "close", "focus stays in the open panel");
    let wrapped = c
        .execute(
            "document.querySelectorAll('[data-kbgate=sentinel]')[1].focus(); \
             return document.activeElement.dataset.kbgate;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(wrapped, "close", "Tab past the end wraps to the start");
    // 8. axe-core on the host page with the panel open; no CSP violation from the widget.
    let v = c.execute_async(&axe_run, vec![]).await.unwrap();
    assert_eq!(v, json!([]), "axe violations on the host page");
    let violations = c.execute("return window.__csp;", vec![]).await.unwrap();
    assert_eq!(
        violations,
        json!([]),
        "the host page's strict CSP blocked nothing"
    );

    // 9. The sign-in ends (revoked, as `kbgate sessions revoke` does): the frame asks the host
    //    app for a new code and carries on.
    assert!(app.store.revoke_sessions_by_email(READER).await.unwrap() >= 1);
    frame.clone().enter_frame().await.unwrap();
    assert_eq!(search("echo").await, json!(["Public FAQ"]));
    assert_eq!(
        codes.load(Ordering::SeqCst),
        2,
        "one new code after the expiry"
    );

    // 10. Sign-out: the token is ended in the store and the frame shows it.
    c.find(Locator::Id("signout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &c,
        "return document.getElementById('status').textContent.includes('signed out') && \
         document.getElementById('search').hidden;",
        "the sign-out",
    )
    .await;
    let live = app.store.active_sessions(chrono::Utc::now()).await.unwrap();
    assert!(
        live.iter().all(|s| s.email != READER),
        "no live session left"
    );

    // 11. A code posted by another origin (the host page's third-party frame) is ignored.
    let foreign = {
        let resp = app
            .client
            .post(app.url(&format!("{prefix}/api/v1/handover")))
            .bearer_auth(API_KEY)
            .json(&json!({ "email": "alice@acme.com" }))
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        let url = url::Url::parse(body["url"].as_str().unwrap()).unwrap();
        url.query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned()
    };
    c.enter_parent_frame().await.unwrap();
    c.find(Locator::Id("ad"))
        .await
        .unwrap()
        .enter_frame()
        .await
        .unwrap();
    c.execute(
        "for (let i = 0; i < parent.frames.length; i++) \
           parent.frames[i].postMessage({ type: 'kbgate:code', code: arguments[0], path: '/' }, '*');",
        vec![json!(foreign)],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.enter_parent_frame().await.unwrap();
    frame.enter_frame().await.unwrap();
    let who = c
        .execute("return document.getElementById('who').textContent;", vec![])
        .await
        .unwrap();
    assert_eq!(who, "", "the foreign code signed no one in");
    let unused = app
        .client
        .post(app.url(&format!("{prefix}/widget/session")))
        .header("origin", &kb_origin)
        .json(&json!({ "code": foreign }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unused.status(),
        200,
        "the frame never spent the foreign code"
    );

    c.close().await.unwrap();
}
