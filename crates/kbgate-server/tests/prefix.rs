//! The portal under a path prefix, end to end: `[portal] public_url =
//! "http://127.0.0.1:PORT/kb"`, the reverse proxy forwarding `/kb/...` unchanged. Content is
//! mirrored by the real sync engine and renderer *before* the portal knows any prefix (stored
//! bodies link their own attachments at the root), and every page type is walked: sign-in
//! (embed hand-over, back-channel hand-over, magic link through the outbox), home, space,
//! page, attachment, search, suggest, feedback, the OpenAPI document, the widget, the admin
//! console, sign-out. Every `href`/`src`/`action`, `Location`, cookie `Path` and absolute URL
//! in the answers must lie under `/kb/`; anything asked outside the prefix is 404.

mod common;

use common::*;
use confluence_sim::SimConfig;
use kbgate_config::WidgetConfig;
use kbgate_mirror::sync::{Progress, SyncOptions, sync_spaces};
use serde_json::{Value, json};

const PREFIX: &str = "/kb";
const HOST: &str = "https://app.example.com";
const READER: &str = "alice@acme.com";

/// The portal under `/kb` over the simulator's default site, synced first.
async fn app_under_prefix() -> TestApp {
    let test_store = open_store(Backend::Sqlite).await.unwrap();
    let sim = confluence_sim::spawn(SimConfig::default())
        .await
        .expect("simulator");
    let mut keys: Vec<String> = sim
        .state()
        .read(|s| s.spaces.values().map(|sp| sp.key.clone()).collect());
    keys.sort();
    sync_spaces(
        &sim_source(&sim),
        &*test_store.store,
        &keys,
        &SyncOptions::default(),
        &Progress::quiet(),
    )
    .await
    .expect("sync");
    serve_with_extras(
        test_store,
        synced_policy(),
        |p| p.public_url = p.public_url.join("kb/").unwrap(),
        hs256_verifier(),
        |e| {
            e.widget = WidgetConfig {
                allowed_origins: vec![HOST.into()],
                ..WidgetConfig::default()
            }
        },
    )
    .await
}

/// Whether a URL found in an answer stays inside the portal: a path under the prefix, an
/// absolute URL of the portal's origin under it, or something that is no portal URL at all
/// (a fragment, `mailto:`, another site, a query on the same page).
fn inside(app: &TestApp, url: &str) -> bool {
    let under = |path: &str| path == PREFIX || path.starts_with(&format!("{PREFIX}/"));
    if let Some(rest) = url.strip_prefix(&app.base) {
        return under(rest.split(['?', '#']).next().unwrap_or(""));
    }
    if url.starts_with("//") {
        return false;
    }
    if url.starts_with('/') {
        return under(url.split(['?', '#']).next().unwrap_or(""));
    }
    true
}

/// Checks one answer's `Location` and `Set-Cookie` paths; returns its body.
async fn checked(app: &TestApp, resp: reqwest::Response, what: &str) -> (u16, String) {
    let status = resp.status().as_u16();
    if let Some(loc) = resp.headers().get("location") {
        let loc = loc.to_str().unwrap();
        assert!(inside(app, loc), "{what}: Location {loc}");
    }
    for c in resp.headers().get_all("set-cookie") {
        let c = c.to_str().unwrap();
        let path = c
            .split(';')
            .map(str::trim)
            .find_map(|kv| kv.strip_prefix("Path="))
            .unwrap_or_else(|| panic!("{what}: a cookie without Path: {c}"));
        assert!(
            path == PREFIX || path.starts_with(&format!("{PREFIX}/")),
            "{what}: cookie {c}"
        );
        assert!(
            !c.starts_with("__Host-"),
            "{what}: __Host- needs Path=/: {c}"
        );
    }
    let body = resp.text().await.unwrap();
    if body.trim_start().starts_with('<') {
        check_html(app, &body, what);
    } else if let Ok(v) = serde_json::from_str::<Value>(&body) {
        check_json(app, &v, what);
    }
    (status, body)
}

/// Every link-bearing attribute of an HTML page lies inside the portal; returns how many.
fn check_html(app: &TestApp, html: &str, what: &str) -> usize {
    let mut n = 0;
    for (tag, attrs) in start_tags(html) {
        for (k, v) in attrs {
            if matches!(
                k.as_str(),
                "href" | "src" | "action" | "srcset" | "formaction"
            ) {
                let v = v.replace("&amp;", "&");
                assert!(inside(app, &v), "{what}: <{tag} {k}=\"{v}\">");
                n += 1;
            }
        }
    }
    n
}

/// Every string of a JSON answer that names a portal URL (absolute, or a path in a `url`
/// field) lies inside the portal; HTML in it is checked as HTML.
fn check_json(app: &TestApp, v: &Value, what: &str) {
    match v {
        Value::String(s) if s.starts_with(&app.base) => {
            assert!(inside(app, s), "{what}: {s}")
        }
        Value::String(s) if s.contains('<') => {
            check_html(app, s, what);
        }
        Value::Array(a) => a.iter().for_each(|x| check_json(app, x, what)),
        Value::Object(o) => {
            for (k, x) in o {
                if let (true, Some(s)) = (k == "url" || k == "href", x.as_str()) {
                    assert!(inside(app, s), "{what}: {k} {s}");
                }
                check_json(app, x, what);
            }
        }
        _ => {}
    }
}

async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> (u16, String) {
    let resp = app.get(path, cookie).await;
    checked(app, resp, path).await
}

async fn post(app: &TestApp, path: &str, cookie: &str, form: &[(&str, &str)]) -> (u16, String) {
    let resp = app
        .client
        .post(app.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    checked(app, resp, path).await
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a form token")
        .to_owned()
}

/// The values of attribute `attr` on tags `tag`.
fn attr_values(html: &str, tag: &str, attr: &str) -> Vec<String> {
    start_tags(html)
        .into_iter()
        .filter(|(t, _)| t == tag)
        .flat_map(|(_, a)| a.into_iter().filter(|(k, _)| k == attr).map(|(_, v)| v))
        .map(|v| v.replace("&amp;", "&"))
        .collect()
}

/// The confirmation links mailed so far (the outbox holds one file per mail).
fn mailed_links(app: &TestApp) -> Vec<String> {
    let mut links = Vec::new();
    for entry in std::fs::read_dir(app.outbox.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        links.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| l.contains("/auth/email/confirm?code="))
                .map(str::to_owned),
        );
    }
    links
}

#[tokio::test]
async fn the_portal_works_under_a_path_prefix() {
    let app = app_under_prefix().await;

    // ----- outside the prefix: nothing (not even the health checks) -----
    for path in [
        "/",
        "/healthz",
        "/readyz",
        "/pages/1",
        "/static/style.css",
        "/auth/email",
        "/admin",
        "/widget.js",
        "/api/v1/openapi.json",
        "/kbx",
        "/kbx/healthz",
        "/KB/",
    ] {
        assert_eq!(app.get(path, None).await.status(), 404, "{path}");
    }
    for path in ["/kb/healthz", "/kb/readyz"] {
        assert_eq!(app.get(path, None).await.status(), 200, "{path}");
    }

    // ----- anonymous: the start page asks to sign in, leading back under the prefix -----
    for path in ["/kb", "/kb/"] {
        let (status, html) = get(&app, path, None).await;
        assert_eq!(status, 401, "{path}");
        assert!(
            attr_values(&html, "a", "href")
                .iter()
                .any(|h| h == "/kb/auth/email?return_to=%2Fkb%2F"),
            "{html}"
        );
    }
    let (status, html) = get(&app, "/kb/auth/email", None).await;
    assert_eq!(status, 200);
    assert!(attr_values(&html, "form", "action").contains(&"/kb/auth/email".to_owned()));
    assert!(
        attr_values(&html, "link", "href")
            .iter()
            .any(|h| h.starts_with("/kb/static/brand/style.css?v=")),
        "{html}"
    );

    // ----- embed hand-over: the cookie is the prefix's, return_to stays inside it -----
    let token = mint_hs256(&claims(READER));
    let resp = app
        .client
        .get(app.url("/kb/auth/embed"))
        .query(&[("token", token.as_str()), ("return_to", "/kb/spaces/KB")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/kb/spaces/KB");
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("kbgate_session=") && set.contains("; Path=/kb;"),
        "{set}"
    );
    let reader = session_cookie(&resp).unwrap();
    checked(&app, resp, "embed").await;
    // Outside the prefix, another origin, or out of it by dot segments: the start page.
    for bad in [
        "/spaces/KB",
        "//evil.example/kb/",
        "https://evil.example/kb/",
        "/kb/../other-app",
        "/kb/%2e%2e/other-app",
        "/kbx",
    ] {
        let token = mint_hs256(&claims(READER));
        let resp = app
            .client
            .get(app.url("/kb/auth/embed"))
            .query(&[("token", token.as_str()), ("return_to", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{bad}");
        assert_eq!(location(&resp), "/kb/", "{bad}");
    }

    // ----- back-channel hand-over: the URL is under the prefix -----
    let resp = app
        .client
        .post(app.url("/kb/api/v1/handover"))
        .bearer_auth(API_KEY)
        .json(&json!({ "email": READER, "return_to": "/kb/spaces/KB" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let handed = body["url"].as_str().unwrap().to_owned();
    assert!(
        handed.starts_with(&format!("{}/kb/auth/code?code=", app.base)),
        "{handed}"
    );
    let resp = app.client.get(&handed).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/kb/spaces/KB");
    assert!(session_cookie(&resp).is_some());
    checked(&app, resp, "hand-over code").await;

    // ----- magic link through the outbox -----
    let resp = app
        .client
        .post(app.url("/kb/auth/email"))
        .form(&[("email", "bob@acme.com"), ("return_to", "/kb/spaces/KB")])
        .send()
        .await
        .unwrap();
    checked(&app, resp, "magic link ask").await;
    let mut links = Vec::new();
    // The mail is written by a background task; poll for it (not a timing assertion).
    for _ in 0..200 {
        links = mailed_links(&app);
        if !links.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(links.len(), 1, "one mail");
    let link = url::Url::parse(&links[0]).unwrap();
    assert!(
        links[0].starts_with(&format!("{}/kb/auth/email/confirm?code=", app.base)),
        "{}",
        links[0]
    );
    let param = |name: &str| {
        link.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("return_to").as_deref(), Some("/kb/spaces/KB"));
    let code = param("code").unwrap();
    let resp = app.client.get(link.as_str()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let confirm_cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("kbgate_confirm="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .expect("a confirmation cookie");
    let (_, html) = checked(&app, resp, "magic link page").await;
    assert!(attr_values(&html, "form", "action").contains(&"/kb/auth/email/confirm".to_owned()));
    let csrf = csrf_of(&html);
    let resp = app
        .client
        .post(app.url("/kb/auth/email/confirm"))
        .header("cookie", &confirm_cookie)
        .form(&[("code", code.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/kb/spaces/KB");
    let bob = session_cookie(&resp).expect("a session");
    checked(&app, resp, "magic link confirm").await;
    assert_eq!(get(&app, "/kb/", Some(&bob)).await.0, 200);

    // ----- home, its assets -----
    let (status, home) = get(&app, "/kb/", Some(&reader)).await;
    assert_eq!(status, 200);
    assert!(check_html(&app, &home, "home") > 5);
    let assets: Vec<String> = attr_values(&home, "link", "href")
        .into_iter()
        .chain(attr_values(&home, "script", "src"))
        .collect();
    assert!(
        assets.iter().any(|a| a == "/kb/assets/suggest.js"),
        "{assets:?}"
    );
    for a in &assets {
        assert_eq!(app.get(a, None).await.status(), 200, "{a}");
    }
    assert!(attr_values(&home, "a", "href").contains(&"/kb/spaces/KB".to_owned()));

    // ----- space, pages, attachments (stored content, rendered before any prefix) -----
    let (status, space) = get(&app, "/kb/spaces/KB", Some(&reader)).await;
    assert_eq!(status, 200);
    assert!(
        attr_values(&space, "a", "href")
            .iter()
            .any(|h| h.starts_with("/kb/pages/")),
        "{space}"
    );
    // Every page of the space (from the API's tree), until one shows an attached image.
    let (status, tree) = app.api_get("/kb/api/v1/spaces/KB/tree", READER).await;
    assert_eq!(status, 200);
    let mut ids = Vec::new();
    collect_ids(&tree["pages"], &mut ids);
    assert!(!ids.is_empty(), "{tree}");
    let mut with_image = None;
    for id in &ids {
        let p = format!("/kb/pages/{id}");
        let (status, html) = get(&app, &p, Some(&reader)).await;
        assert_eq!(status, 200, "{p}");
        let images: Vec<String> = attr_values(&html, "img", "src")
            .into_iter()
            .filter(|s| s.starts_with("/kb/attachments/"))
            .collect();
        if let Some(img) = images.first() {
            with_image = Some((p.clone(), img.clone(), html));
            break;
        }
    }
    let (page, image, page_html) = with_image.expect("a synced page with an attached image");
    let resp = app.get(&image, Some(&reader)).await;
    assert_eq!(resp.status(), 200, "{image}");
    // The same attachment outside the prefix: not served.
    let outside = image.strip_prefix(PREFIX).unwrap();
    assert_eq!(app.get(outside, Some(&reader)).await.status(), 404);
    let page_id = page.strip_prefix("/kb/pages/").unwrap().to_owned();
    assert!(
        attr_values(&page_html, "form", "action")
            .contains(&format!("/kb/pages/{page_id}/feedback"))
    );
    // The page route is answered without the router (hot.rs); with its id's last character
    // percent-escaped it goes through the router instead: the same answer under the prefix.
    let (head, last) = page_id.split_at(page_id.len() - 1);
    let routed = format!("/kb/pages/{head}%{:02X}", last.as_bytes()[0]);
    for cookie in [Some(reader.as_str())] {
        let (a, b) = (app.get(&page, cookie).await, app.get(&routed, cookie).await);
        assert_eq!(a.status(), b.status(), "{page} vs {routed}");
        let headers = |r: &reqwest::Response| {
            let mut h: Vec<String> = r
                .headers()
                .iter()
                .filter(|(k, _)| k.as_str() != "date")
                .map(|(k, v)| format!("{k}: {v:?}"))
                .collect();
            h.sort();
            h
        };
        assert_eq!(headers(&a), headers(&b), "{page} vs {routed}");
        assert_eq!(a.text().await.unwrap(), b.text().await.unwrap());
    }

    // ----- the API (stored content through it too) and its document -----
    let (status, doc) = get(&app, "/kb/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["servers"][0]["url"], "/kb");
    let resp = app
        .client
        .get(app.url(&format!("/kb/api/v1/pages/{page_id}")))
        .bearer_auth(API_KEY)
        .header("x-kbgate-email", READER)
        .send()
        .await
        .unwrap();
    let (status, body) = checked(&app, resp, "api page").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["url"], format!("{}/kb/pages/{page_id}", app.base));
    assert!(
        v["html"]
            .as_str()
            .unwrap()
            .contains("src=\"/kb/attachments/")
    );
    let title = v["title"].as_str().unwrap().to_owned();

    // ----- search and suggest -----
    let word = title
        .split_whitespace()
        .find(|w| w.len() >= 4 && w.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| panic!("a plain word in {title:?}"))
        .to_owned();
    let (status, results) = get(
        &app,
        &format!("/kb/search?q={}", urlencode(&word)),
        Some(&reader),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        attr_values(&results, "a", "href")
            .iter()
            .any(|h| h.starts_with("/kb/pages/")),
        "{word}: {results}"
    );
    let resp = app
        .client
        .get(app.url(&format!("/kb/suggest?q={}", urlencode(&word[..3]))))
        .header("cookie", &reader)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let (status, body) = checked(&app, resp, "suggest").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let urls: Vec<&str> = v["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap())
        .collect();
    assert!(
        !urls.is_empty() && urls.iter().all(|u| u.starts_with("/kb/pages/")),
        "{v}"
    );

    // ----- feedback -----
    let csrf = csrf_of(&page_html);
    let (status, _) = post(
        &app,
        &format!("/kb/pages/{page_id}/feedback"),
        &reader,
        &[("helpful", "yes"), ("csrf", csrf.as_str())],
    )
    .await;
    assert!(status == 200 || status == 303, "{status}");

    // ----- the widget -----
    let (status, js) = get(&app, "/kb/widget.js", None).await;
    assert_eq!(status, 200);
    assert!(js.contains("/widget/frame"));
    let (status, frame) = get(
        &app,
        "/kb/widget/frame?host=https%3A%2F%2Fapp.example.com",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(frame.contains("data-base=\"/kb\""), "{frame}");
    assert!(attr_values(&frame, "script", "src").contains(&"/kb/widget/frame.js".to_owned()));
    for asset in ["/kb/widget/frame.js", "/kb/widget/frame.css"] {
        assert_eq!(app.get(asset, None).await.status(), 200, "{asset}");
    }
    let code = url::Url::parse(&{
        let r = app
            .client
            .post(app.url("/kb/api/v1/handover"))
            .bearer_auth(API_KEY)
            .json(&json!({ "email": READER }))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["url"]
            .as_str()
            .unwrap()
            .to_owned()
    })
    .unwrap()
    .query_pairs()
    .find(|(k, _)| k == "code")
    .unwrap()
    .1
    .into_owned();
    let resp = app
        .client
        .post(app.url("/kb/widget/session"))
        .header("origin", &app.base)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    let (status, body) = checked(&app, resp, "widget session").await;
    assert_eq!(status, 200, "{body}");
    let widget_token = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app
        .client
        .get(app.url(&format!("/kb/api/v1/search?q={}", urlencode(&word))))
        .header("x-kbgate-widget", &widget_token)
        .send()
        .await
        .unwrap();
    let (status, body) = checked(&app, resp, "widget search").await;
    assert_eq!(status, 200);
    assert!(body.contains(&format!("{}/kb/pages/", app.base)), "{body}");

    // ----- the admin console -----
    let admin_reader = sign_in_at(&app, ADMIN).await;
    let (status, confirm) = get(&app, "/kb/admin", Some(&admin_reader)).await;
    assert_eq!(status, 200);
    assert!(attr_values(&confirm, "form", "action").contains(&"/kb/admin/session".to_owned()));
    let token = csrf_of(&confirm);
    let resp = app
        .client
        .post(app.url("/kb/admin/session"))
        .header("cookie", &admin_reader)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/kb/admin");
    let admin_cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("kbgate_admin="))
        .expect("an admin cookie")
        .to_owned();
    assert!(admin_cookie.contains("; Path=/kb/admin;"), "{admin_cookie}");
    checked(&app, resp, "admin session").await;
    let both = format!(
        "{admin_reader}; {}",
        admin_cookie.split(';').next().unwrap()
    );
    let (status, console) = get(&app, "/kb/admin", Some(&both)).await;
    assert_eq!(status, 200);
    assert!(attr_values(&console, "a", "href").contains(&"/kb/admin/sync".to_owned()));
    for p in [
        "/kb/admin/sync",
        "/kb/admin/sessions",
        "/kb/admin/audit",
        "/kb/admin/insights",
        "/kb/admin/insights?days=7&domain=acme.com",
    ] {
        let (status, _) = get(&app, p, Some(&both)).await;
        assert_eq!(status, 200, "{p}");
    }
    // View as: a post answered by a redirect, a list of page links, one page.
    let admin_csrf = csrf_of(&console);
    let (status, _) = post(
        &app,
        "/kb/admin/view-as",
        &both,
        &[("csrf", admin_csrf.as_str()), ("email", READER)],
    )
    .await;
    assert_eq!(status, 303);
    let (status, listed) = get(&app, "/kb/admin/view-as", Some(&both)).await;
    assert_eq!(status, 200);
    let viewed: Vec<String> = attr_values(&listed, "a", "href")
        .into_iter()
        .filter(|h| h.starts_with("/kb/admin/view-as/pages/"))
        .collect();
    assert!(!viewed.is_empty(), "{listed}");
    assert_eq!(get(&app, &viewed[0], Some(&both)).await.0, 200);

    // ----- sign-out -----
    let resp = app
        .client
        .post(app.url("/kb/auth/logout"))
        .header("cookie", &reader)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/kb/auth/email");
    let cleared = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("kbgate_session="))
        .expect("the session cookie cleared")
        .to_owned();
    assert!(
        cleared.contains("Path=/kb;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    checked(&app, resp, "sign-out").await;
    assert_eq!(app.get("/kb/", Some(&reader)).await.status(), 401);
}

/// The ids of a JSON page tree, depth first.
fn collect_ids(nodes: &Value, out: &mut Vec<String>) {
    for n in nodes.as_array().into_iter().flatten() {
        out.push(n["id"].as_str().unwrap().to_owned());
        collect_ids(&n["children"], out);
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Signs in through the embed hand-over under the prefix; returns the `Cookie` header value.
async fn sign_in_at(app: &TestApp, email: &str) -> String {
    let token = mint_hs256(&claims(email));
    let resp = app
        .client
        .get(app.url("/kb/auth/embed"))
        .query(&[("token", token.as_str()), ("return_to", "/kb/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "sign-in of {email} failed");
    session_cookie(&resp).expect("a session cookie")
}
