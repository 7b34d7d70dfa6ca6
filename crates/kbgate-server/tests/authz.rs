//! Authorisation matrix: every content route × every kind of viewer, on both store backends.

mod common;

use chrono::Utc;
use common::ids::*;
use common::*;
use kbgate_store::SessionRecord;
use sha2::{Digest, Sha256};

/// Every page of the fixture: (id, title, unique search word).
const PAGES: &[(&str, &str, &str)] = &[
    (WELCOME, "Welcome", "alpha"),
    (CHILD, "Child page", "bravo"),
    (RESTRICTED, "Secret plans", "charlie"),
    (UNDER_RESTRICTED, "Hidden child", "delta"),
    (PUBLIC_FAQ, "Public FAQ", "echo"),
    (INTERNAL, "Internal notes", "foxtrot"),
    (PUBLIC_UNDER_INTERNAL, "Public under internal", "golf"),
    (HR, "Salaries", "hotel"),
    (OLD, "Old stuff", "india"),
];

/// Attachments: (url path, api-by-id path, page id).
const ATTACHMENTS: &[(&str, &str, &str)] = &[
    (
        "/attachments/1001/guide.pdf",
        "/attachments/id/9001",
        WELCOME,
    ),
    (
        "/attachments/1003/secret.txt",
        "/attachments/id/9004",
        RESTRICTED,
    ),
    (
        "/attachments/1006/internal.txt",
        "/attachments/id/9005",
        INTERNAL,
    ),
];

/// Every GET route of the admin console.
const ADMIN_GETS: &[&str] = &[
    "/admin",
    "/admin/explain?email=alice%40acme.com&page=1001",
    "/admin/sessions",
    "/admin/sync",
    "/admin/access-requests",
    "/admin/plan",
    "/admin/audit",
    "/admin/audit.csv",
    "/admin/insights",
    "/admin/insights?days=7&domain=acme.com",
    "/admin/insights.csv",
    "/admin/insights.csv?from=2026-01-01&to=2026-12-31&domain=acme.com",
    "/admin/view-as",
    "/admin/view-as/pages/1001",
    "/admin/nope",
];

/// Every POST route of the admin console.
const ADMIN_POSTS: &[&str] = &[
    "/admin/session",
    "/admin/logout",
    "/admin/sessions/revoke",
    "/admin/sync/now",
    "/admin/view-as",
    "/admin/view-as/end",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Allowed,
    OtherAudience,
    LabelFiltered,
    ExpiredAudience,
    DeniedDomain,
    SignedOut,
}

impl Who {
    fn email(self) -> &'static str {
        match self {
            Who::Allowed => "alice@acme.com",
            Who::OtherAudience => "olga@other.com",
            Who::LabelFiltered => "pat@partner.com",
            Who::ExpiredAudience => "carol@old.com",
            Who::DeniedDomain => "dan@gmail.com",
            Who::SignedOut => "",
        }
    }

    fn readable(self) -> &'static [&'static str] {
        match self {
            Who::Allowed => &[WELCOME, CHILD, PUBLIC_FAQ, INTERNAL, PUBLIC_UNDER_INTERNAL],
            Who::LabelFiltered => &[PUBLIC_FAQ, PUBLIC_UNDER_INTERNAL],
            Who::OtherAudience => &[HR],
            _ => &[],
        }
    }

    fn spaces(self) -> &'static [&'static str] {
        match self {
            Who::Allowed | Who::LabelFiltered => &["KB"],
            Who::OtherAudience => &["HR"],
            _ => &[],
        }
    }

    /// Status for any content route when the viewer can see nothing at all.
    fn blanket(self) -> Option<u16> {
        match self {
            Who::ExpiredAudience | Who::DeniedDomain => Some(403),
            Who::SignedOut => Some(401),
            _ => None,
        }
    }
}

/// A session as it would exist if it had been opened before the policy stopped allowing the
/// email (an expired audience, a newly denied domain): written straight into the store.
async fn planted_session(app: &TestApp, email: &str) -> String {
    let value = "P".repeat(43);
    let value = format!(
        "{}{}",
        &value[..30],
        &uuid::Uuid::new_v4().simple().to_string()[..13]
    );
    let now = Utc::now();
    app.store
        .create_session(&SessionRecord {
            id_hash: hex::encode(Sha256::digest(value.as_bytes())),
            email: email.into(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + chrono::Duration::hours(1),
            revoked: false,
        })
        .await
        .unwrap();
    format!("kbgate_session={value}")
}

async fn cookie_for(app: &TestApp, who: Who) -> Option<String> {
    match who {
        Who::SignedOut => None,
        Who::ExpiredAudience | Who::DeniedDomain => Some(planted_session(app, who.email()).await),
        _ => Some(app.sign_in(who.email()).await),
    }
}

/// The cookie for one request. A refused person's session is ended by the request that
/// refuses it (a removed domain or an expired audience ends sessions, never suspends them), so
/// each of their requests gets a session of its own, never used before.
async fn cookie_once(app: &TestApp, who: Who, cookie: &Option<String>) -> Option<String> {
    match who {
        Who::ExpiredAudience | Who::DeniedDomain => Some(planted_session(app, who.email()).await),
        _ => cookie.clone(),
    }
}

/// Titles of pages (and descriptions of spaces) the viewer may not read must not appear
/// anywhere in a response.
fn assert_no_foreign_titles(who: Who, body: &str, route: &str) {
    for (id, title, _) in PAGES {
        if !who.readable().contains(id) {
            assert!(
                !body.contains(title),
                "{who:?}: {title:?} leaked on {route}"
            );
        }
    }
    // Nor the descriptions of spaces outside the viewer's reach.
    for (key, description) in DESCRIPTIONS {
        if !who.spaces().contains(key) {
            assert!(
                !body.contains(description),
                "{who:?}: {description:?} leaked on {route}"
            );
        }
    }
}

async fn check(app: &TestApp, who: Who, cookie: Option<&str>, path: &str, readable: bool) {
    let resp = app.get(path, cookie).await;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    let want = who.blanket().unwrap_or(if readable { 200 } else { 404 });
    assert_eq!(status, want, "{who:?} GET {path}");
    assert_no_foreign_titles(who, &body, path);
}

/// Space descriptions on the start page: (space key, description). OLD has none.
const DESCRIPTIONS: &[(&str, &str)] = &[
    ("KB", "Product guides kilo-description"),
    ("HR", "Payroll matters hotel-description"),
];

async fn matrix(app: &TestApp) {
    // KB and HR have a description and an icon; OLD neither.
    for (key, description) in DESCRIPTIONS {
        set_space_details(&app.store, key, description, Some(PNG_BYTES)).await;
    }
    for who in [
        Who::Allowed,
        Who::OtherAudience,
        Who::LabelFiltered,
        Who::ExpiredAudience,
        Who::DeniedDomain,
        Who::SignedOut,
    ] {
        let cookie = cookie_for(app, who).await;

        // Home and the spaces API list exactly the granted spaces.
        for path in ["/", "/api/v1/spaces"] {
            let resp = app
                .get(path, cookie_once(app, who, &cookie).await.as_deref())
                .await;
            match who.blanket() {
                Some(s) => assert_eq!(resp.status().as_u16(), s, "{who:?} {path}"),
                None => {
                    assert_eq!(resp.status(), 200, "{who:?} {path}");
                    let body = resp.text().await.unwrap();
                    for (key, name) in [
                        ("KB", "Knowledge Base"),
                        ("HR", "Human Resources"),
                        ("OLD", "Old space"),
                    ] {
                        assert_eq!(
                            body.contains(name),
                            who.spaces().contains(&key),
                            "{who:?} {path} {name}"
                        );
                    }
                    if path == "/" {
                        // A space's description and icon show only with the space.
                        for (key, description) in DESCRIPTIONS {
                            let shown = who.spaces().contains(key);
                            assert_eq!(
                                body.contains(description),
                                shown,
                                "{who:?} {path} {description}"
                            );
                            assert_eq!(
                                body.contains(&format!("/spaces/{key}/icon?v=")),
                                shown,
                                "{who:?} {path} icon of {key}"
                            );
                        }
                    }
                    assert_no_foreign_titles(who, &body, path);
                }
            }
        }

        // Space homes and trees.
        for key in ["KB", "HR", "OLD", "NOPE"] {
            let readable = who.spaces().contains(&key);
            check(
                app,
                who,
                cookie_once(app, who, &cookie).await.as_deref(),
                &format!("/spaces/{key}"),
                readable,
            )
            .await;
            check(
                app,
                who,
                cookie_once(app, who, &cookie).await.as_deref(),
                &format!("/api/v1/spaces/{key}/tree"),
                readable,
            )
            .await;
        }

        // Space icons: only of the spaces the viewer may read (OLD has none: 404 for all).
        for key in ["KB", "HR", "OLD", "NOPE"] {
            let readable = who.spaces().contains(&key) && key != "OLD";
            check(
                app,
                who,
                cookie_once(app, who, &cookie).await.as_deref(),
                &format!("/spaces/{key}/icon"),
                readable,
            )
            .await;
        }

        // Every page, HTML and JSON.
        for (id, title, _) in PAGES {
            let readable = who.readable().contains(id);
            check(
                app,
                who,
                cookie_once(app, who, &cookie).await.as_deref(),
                &format!("/pages/{id}"),
                readable,
            )
            .await;
            check(
                app,
                who,
                cookie_once(app, who, &cookie).await.as_deref(),
                &format!("/api/v1/pages/{id}"),
                readable,
            )
            .await;
            if readable {
                let body = app
                    .get(
                        &format!("/pages/{id}"),
                        cookie_once(app, who, &cookie).await.as_deref(),
                    )
                    .await
                    .text()
                    .await
                    .unwrap();
                assert!(body.contains(title));
            }
        }
        check(
            app,
            who,
            cookie_once(app, who, &cookie).await.as_deref(),
            "/pages/999999",
            false,
        )
        .await;

        // Attachments: by name and by id, only for readable pages.
        for (by_name, by_id, page) in ATTACHMENTS {
            let readable = who.readable().contains(page);
            check(
                app,
                who,
                cookie_once(app, who, &cookie).await.as_deref(),
                by_name,
                readable,
            )
            .await;
            check(
                app,
                who,
                cookie_once(app, who, &cookie).await.as_deref(),
                by_id,
                readable,
            )
            .await;
        }

        // Search: a page's unique word finds it exactly when it is readable.
        for (id, title, word) in PAGES {
            for path in [
                format!("/search?q={word}"),
                format!("/api/v1/search?q={word}"),
            ] {
                let resp = app
                    .get(&path, cookie_once(app, who, &cookie).await.as_deref())
                    .await;
                match who.blanket() {
                    Some(s) => assert_eq!(resp.status().as_u16(), s, "{who:?} {path}"),
                    None => {
                        assert_eq!(resp.status(), 200, "{who:?} {path}");
                        let body = resp.text().await.unwrap();
                        let found = body.contains(&format!("/pages/{id}")) && body.contains(title);
                        assert_eq!(found, who.readable().contains(id), "{who:?} {path}");
                        assert_no_foreign_titles(who, &body, &path);
                    }
                }
            }
        }

        // No reader reaches the admin console: every admin route is a 404, whatever the
        // method, with or without a (forged) admin cookie.
        let forged = cookie_once(app, who, &cookie)
            .await
            .map(|c| format!("{c}; kbgate_admin=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        for path in ADMIN_GETS {
            for c in [cookie_once(app, who, &cookie).await, forged.clone()] {
                let resp = app.get(path, c.as_deref()).await;
                assert_eq!(resp.status(), 404, "{who:?} GET {path}");
                let body = resp.text().await.unwrap();
                assert!(
                    !body.contains("Admin"),
                    "{who:?} GET {path} names the console"
                );
            }
        }
        for path in ADMIN_POSTS {
            let mut rb = app.client.post(app.url(path)).form(&[
                ("csrf", "x"),
                ("domain", "acme.com"),
                ("email", "alice@acme.com"),
            ]);
            if let Some(c) = cookie_once(app, who, &cookie).await {
                rb = rb.header("cookie", c);
            }
            let resp = rb.send().await.unwrap();
            assert_eq!(resp.status(), 404, "{who:?} POST {path}");
        }

        // The refusal ended the planted session; the same cookie is then still told why
        // (403, the refusal page), and reads nothing.
        if matches!(who, Who::ExpiredAudience | Who::DeniedDomain) {
            let c = planted_session(app, who.email()).await;
            assert_eq!(app.get("/", Some(&c)).await.status(), 403, "{who:?}");
            let live = app
                .store
                .active_session(&session_hash(&c), chrono::Utc::now())
                .await
                .unwrap();
            assert!(live.is_none(), "{who:?}: the session ended");
            assert_eq!(app.get("/", Some(&c)).await.status(), 403, "{who:?} ended");
        }
    }
}

#[tokio::test]
async fn authorisation_matrix_sqlite() {
    let app = spawn_app().await;
    matrix(&app).await;
}

#[tokio::test]
async fn authorisation_matrix_postgres() {
    let Some(app) = spawn_app_on(Backend::Postgres).await else {
        return;
    };
    matrix(&app).await;
}

#[tokio::test]
async fn api_key_acts_for_a_named_person_under_the_policy() {
    let app = spawn_app().await;
    let get = |path: &str, key: &str, email: Option<&str>| {
        let mut rb = app
            .client
            .get(app.url(path))
            .header("authorization", format!("Bearer {key}"));
        if let Some(e) = email {
            rb = rb.header("x-kbgate-email", e);
        }
        rb.send()
    };
    let r = get("/api/v1/pages/1001", API_KEY, Some("alice@acme.com"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: serde_json::Value = r.json().await.unwrap();
    assert_eq!(page["title"], "Welcome");
    assert!(page["html"].as_str().unwrap().contains("welcome alpha"));
    // Query-string form.
    let r = app
        .client
        .get(app.url("/api/v1/search?q=echo&email=pat@partner.com"))
        .header("authorization", format!("Bearer {API_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let hits: serde_json::Value = r.json().await.unwrap();
    assert_eq!(hits["hits"][0]["id"], PUBLIC_FAQ);
    // The policy still decides.
    let r = get("/api/v1/pages/1001", API_KEY, Some("pat@partner.com"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = get("/api/v1/spaces", API_KEY, Some("dan@gmail.com"))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Wrong key, missing email.
    let r = get("/api/v1/spaces", "wrong-key", Some("alice@acme.com"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = get("/api/v1/spaces", API_KEY, None).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = get("/api/v1/spaces", API_KEY, Some("not-an-email"))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// The OpenAPI document is public (it describes the API and reveals no content or secret),
/// JSON, OpenAPI 3.1, and names exactly the API routes the portal serves; each of those,
/// asked without credentials, still answers 401 (the document opens nothing).
#[tokio::test]
async fn openapi_document_is_public_and_opens_nothing() {
    let app = spawn_app().await;
    let r = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let text = r.text().await.unwrap();
    assert!(!text.contains(API_KEY), "no key in the document");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/api/v1/access-requests",
            "/api/v1/handover",
            "/api/v1/pages/{id}",
            "/api/v1/search",
            "/api/v1/spaces",
            "/api/v1/spaces/{key}/tree",
        ]
    );
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            assert!(
                op["security"].is_array(),
                "{method} {path} names its security"
            );
            let concrete = path.replace("{id}", WELCOME).replace("{key}", "KB");
            let r = match method.as_str() {
                "get" => app.get(&concrete, None).await,
                _ => app
                    .client
                    .post(app.url(&concrete))
                    .json(&serde_json::json!({ "email": "alice@acme.com" }))
                    .send()
                    .await
                    .unwrap(),
            };
            assert_eq!(r.status(), 401, "{method} {path} without credentials");
        }
    }
}
