//! The help widget over HTTP: its assets and frame headers, the code-for-token exchange, the
//! JSON API with the widget token (the same `Viewer` gate), sign-out, and the attacks: a frame
//! for an origin not allowed, a replayed or foreign code, a forged or ended token, a
//! cross-site exchange, a restricted page by id. The browser side is `widget_browser.rs`.

mod common;

use common::*;
use kbgate_config::{WidgetConfig, WidgetSuggest};
use kbgate_policy::Label;
use serde_json::{Value, json};

const HOST: &str = "https://app.example.com";

fn widget() -> WidgetConfig {
    WidgetConfig {
        allowed_origins: vec![HOST.into()],
        suggest: vec![WidgetSuggest {
            path_prefix: "/billing".into(),
            labels: vec![Label::parse("public").unwrap()],
        }],
        ..WidgetConfig::default()
    }
}

async fn app_with(w: WidgetConfig) -> TestApp {
    let test_store = open_store(Backend::Sqlite).await.unwrap();
    write_mirror(&test_store.store).await;
    serve_with_extras(
        test_store,
        policy(),
        |_| {},
        hs256_verifier(),
        |e| e.widget = w,
    )
    .await
}

/// The help button and the frame take the brand's accent; without one, the neutral theme.
#[tokio::test]
async fn the_widget_is_themed_by_the_brand() {
    let neutral = app_with(widget()).await;
    let js = neutral.get("/widget.js", None).await.text().await.unwrap();
    assert!(js.contains("#1d4ed8"), "the neutral accent");

    let test_store = open_store(Backend::Sqlite).await.unwrap();
    write_mirror(&test_store.store).await;
    let branded = serve_with_extras(
        test_store,
        policy(),
        |p| p.brand.accent = Some(kbgate_config::CssColor::parse("#b3261e").unwrap()),
        hs256_verifier(),
        |e| e.widget = widget(),
    )
    .await;
    let js = branded.get("/widget.js", None).await.text().await.unwrap();
    assert!(
        js.contains("\"#b3261e\""),
        "the button takes the brand's accent"
    );
    assert!(!js.contains("#1d4ed8"), "the neutral accent is left");
    let css = branded
        .get("/widget/frame.css", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(css.contains("--kb-accent: #b3261e;"), "{css}");
    assert!(!css.contains("#1d4ed8"));
}

/// A hand-over code for `email`, as the host app's backend gets it.
async fn code(app: &TestApp, email: &str) -> String {
    let resp = app
        .client
        .post(app.url("/api/v1/handover"))
        .bearer_auth(API_KEY)
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let url = url::Url::parse(body["url"].as_str().unwrap()).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

async fn exchange(app: &TestApp, code: &str) -> reqwest::Response {
    app.client
        .post(app.url("/widget/session"))
        .header("origin", &app.base)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap()
}

async fn token(app: &TestApp, email: &str) -> String {
    let c = code(app, email).await;
    let resp = exchange(app, &c).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["email"], email);
    assert_eq!(body["expires_in"], 3600);
    body["token"].as_str().unwrap().to_owned()
}

async fn with_token(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let resp = app
        .client
        .get(app.url(path))
        .header("x-kbgate-widget", token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn ids(v: &Value) -> Vec<String> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_widget_is_off_without_allowed_origins() {
    let app = app_with(WidgetConfig::default()).await;
    for path in [
        "/widget.js",
        "/widget/frame?host=https%3A%2F%2Fapp.example.com",
    ] {
        assert_eq!(app.get(path, None).await.status(), 404, "{path}");
    }
    let c = code(&app, "alice@acme.com").await;
    assert_eq!(exchange(&app, &c).await.status(), 404);
}

#[tokio::test]
async fn assets_and_frame_headers() {
    let app = app_with(widget()).await;
    let js = app.get("/widget.js", None).await;
    assert_eq!(js.status(), 200);
    let h = js.headers();
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(h["cross-origin-resource-policy"], "cross-origin");
    assert!(h["cache-control"].to_str().unwrap().contains("public"));

    let frame = app
        .get("/widget/frame?host=https%3A%2F%2Fapp.example.com", None)
        .await;
    assert_eq!(frame.status(), 200);
    let csp = frame.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.ends_with("frame-ancestors https://app.example.com"),
        "{csp}"
    );
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(frame.headers().get("x-frame-options").is_none());
    let html = frame.text().await.unwrap();
    assert!(html.contains(r#"data-host-origin="https://app.example.com""#));
    // One script, kbgate's own file; no inline script or style attribute.
    let tags = start_tags(&html);
    let scripts: Vec<&Tag> = tags.iter().filter(|(name, _)| name == "script").collect();
    assert_eq!(scripts.len(), 1);
    assert!(
        scripts[0]
            .1
            .iter()
            .any(|(k, v)| k == "src" && v == "/widget/frame.js")
    );
    assert!(
        tags.iter()
            .flat_map(|(_, attrs)| attrs)
            .all(|(k, _)| k != "style" && !k.starts_with("on"))
    );

    // Any other origin: refused, and framed by no one.
    for host in [
        "https%3A%2F%2Fevil.example.net",
        "*",
        "",
        "https%3A%2F%2Fapp.example.com.evil.net",
    ] {
        let r = app.get(&format!("/widget/frame?host={host}"), None).await;
        assert_eq!(r.status(), 403, "{host}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.ends_with("frame-ancestors 'none'"), "{csp}");
    }
    // The rest of the portal keeps refusing frames.
    let home = app.get("/", None).await;
    assert_eq!(home.headers()["x-frame-options"], "DENY");
}

#[tokio::test]
async fn a_widget_token_reads_through_the_same_gate() {
    let app = app_with(widget()).await;
    let t = token(&app, "partner@partner.com").await;
    // Search: only what the partner audience reads (KB pages labelled public, unrestricted).
    let (s, body) = with_token(&app, "/api/v1/search?q=faqword", &t).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&body), [ids::PUBLIC_FAQ]);
    let (_, body) = with_token(&app, "/api/v1/search?q=hiddenword", &t).await;
    assert_eq!(
        ids(&body),
        Vec::<String>::new(),
        "restricted ancestor hides it"
    );
    let (_, body) = with_token(&app, "/api/v1/search?q=welcome", &t).await;
    assert_eq!(
        ids(&body),
        Vec::<String>::new(),
        "unlabelled page is not the partner's"
    );
    // Articles: readable one yes; restricted, unlabelled and another space's, no.
    let (s, body) = with_token(&app, &format!("/api/v1/pages/{}", ids::PUBLIC_FAQ), &t).await;
    assert_eq!(s, 200);
    assert!(body["html"].as_str().unwrap().contains("faqword"));
    for id in [
        ids::RESTRICTED,
        ids::UNDER_RESTRICTED,
        ids::WELCOME,
        ids::HR,
    ] {
        let (s, _) = with_token(&app, &format!("/api/v1/pages/{id}"), &t).await;
        assert_eq!(s, 404, "page {id}");
    }
    // Suggestions for a host path under /billing: readable `public` pages only.
    let (s, body) = with_token(&app, "/api/v1/suggest?path=/billing/invoices", &t).await;
    assert_eq!(s, 200);
    let mut got = ids(&body);
    got.sort();
    assert_eq!(got, [ids::PUBLIC_FAQ, ids::PUBLIC_UNDER_INTERNAL]);
    let (_, body) = with_token(&app, "/api/v1/suggest?path=/billingx", &t).await;
    assert_eq!(ids(&body), Vec::<String>::new());
    // Another audience gets its own view of the same rule: HR readers see no KB page.
    let t2 = token(&app, "hr@other.com").await;
    let (_, body) = with_token(&app, "/api/v1/suggest?path=/billing", &t2).await;
    assert_eq!(ids(&body), Vec::<String>::new());
}

#[tokio::test]
async fn codes_and_tokens_are_checked() {
    let app = app_with(widget()).await;
    // A code works once.
    let c = code(&app, "alice@acme.com").await;
    assert_eq!(exchange(&app, &c).await.status(), 200);
    assert_eq!(exchange(&app, &c).await.status(), 401, "replayed code");
    assert_eq!(exchange(&app, "not-a-code").await.status(), 401);
    assert_eq!(exchange(&app, &"A".repeat(43)).await.status(), 401);
    // The exchange is for the frame itself: another site's POST is refused, the code kept.
    let c = code(&app, "alice@acme.com").await;
    let cross = app
        .client
        .post(app.url("/widget/session"))
        .header("origin", HOST)
        .json(&json!({ "code": c }))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert_eq!(
        exchange(&app, &c).await.status(),
        200,
        "the refused POST did not burn it"
    );

    // Forged and malformed tokens: 401, even with a valid cookie alongside.
    let cookie = app.sign_in("alice@acme.com").await;
    for bad in ["A".repeat(43), "short".into(), "x y".into()] {
        let r = app
            .client
            .get(app.url("/api/v1/spaces"))
            .header("x-kbgate-widget", &bad)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{bad}");
    }
    // Sign-out ends the token at once.
    let t = token(&app, "alice@acme.com").await;
    assert_eq!(with_token(&app, "/api/v1/spaces", &t).await.0, 200);
    let out = app
        .client
        .post(app.url("/widget/signout"))
        .header("x-kbgate-widget", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(with_token(&app, "/api/v1/spaces", &t).await.0, 401);
    // A policy change applies to live widget tokens on their next request.
    let t = token(&app, "alice@acme.com").await;
    app.policy.replace(policy_without_acme());
    assert_eq!(with_token(&app, "/api/v1/spaces", &t).await.0, 403);
    // ... and the refusal ended it: putting the domain back does not revive it.
    app.policy.replace(policy());
    assert_eq!(with_token(&app, "/api/v1/spaces", &t).await.0, 401);
}
