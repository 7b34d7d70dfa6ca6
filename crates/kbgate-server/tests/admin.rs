//! The admin console, black-box: opening an admin session from a reader session, its cookie,
//! the explainer, view as (through the gate), revoke by domain, the audit log and its CSV,
//! and the admin session ending with the reader session.

mod common;

use common::ids::*;
use common::*;

/// The form token in a page (`name="csrf" value="…"`).
fn csrf_in(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    body[at..].split('"').next().unwrap().to_owned()
}

/// The `name=value` of the `Set-Cookie` named `name`, and the whole header.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap().to_owned(), v.to_owned()))
}

async fn post(app: &TestApp, path: &str, cookie: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Signs the admin in as a reader, confirms at /admin; returns the cookie header with both
/// cookies, the reader cookie alone and the admin form token.
async fn open_console(app: &TestApp) -> (String, String, String) {
    open_console_as(app, ADMIN).await
}

async fn open_console_as(app: &TestApp, email: &str) -> (String, String, String) {
    let reader = app.sign_in(email).await;
    let resp = app.get("/admin", Some(&reader)).await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert!(body.contains("Open the admin console"), "{body}");
    let token = csrf_in(&body);
    // A wrong token, or a cross-site post, opens nothing.
    let resp = post(app, "/admin/session", &reader, &[("csrf", "nope")]).await;
    assert_eq!(resp.status(), 403);
    let resp = app
        .client
        .post(app.url("/admin/session"))
        .header("cookie", &reader)
        .header("origin", "https://evil.example")
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = post(app, "/admin/session", &reader, &[("csrf", token.as_str())]).await;
    assert_eq!(resp.status(), 303);
    let (pair, header) = set_cookie(&resp, "kbgate_admin").expect("an admin cookie");
    assert!(header.contains("Path=/admin"), "{header}");
    assert!(header.contains("HttpOnly"), "{header}");
    assert!(header.contains("SameSite=Strict"), "{header}");
    assert!(header.contains("Max-Age=1800"), "{header}");
    let both = format!("{reader}; {pair}");
    let body = app.get("/admin", Some(&both)).await.text().await.unwrap();
    assert!(body.contains("Explain access"), "{body}");
    (both, reader, csrf_in(&body))
}

#[tokio::test]
async fn console_flow() {
    let app = spawn_app().await;
    let (both, reader, csrf) = open_console(&app).await;

    // Without the admin session, an admin is sent to the confirm step.
    let resp = app.get("/admin/sessions", Some(&reader)).await;
    assert_eq!(resp.status(), 303);

    // The explainer names the inherited restriction, and who can read.
    let body = app
        .get(
            &format!("/admin/explain?email=alice%40acme.com&page={UNDER_RESTRICTED}"),
            Some(&both),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("Refused"), "{body}");
    assert!(
        body.contains(&format!(
            "inherits a read restriction from ancestor {RESTRICTED}"
        )),
        "{body}"
    );
    let (_, json) = {
        let resp = app
            .get(
                &format!(
                    "/admin/explain?email=pat%40partner.com&page=http://x/pages/{PUBLIC_FAQ}&format=json"
                ),
                Some(&both),
            )
            .await;
        (
            resp.status(),
            resp.json::<serde_json::Value>().await.unwrap(),
        )
    };
    assert_eq!(json["explanation"]["allowed"], true, "{json}");
    let readers: Vec<&str> = json["who_can_read"]["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["reads"] == true)
        .map(|a| a["audience"].as_str().unwrap())
        .collect();
    assert_eq!(readers, ["acme", "partner"]);

    // View as: the chosen person's gate applies.
    let resp = post(
        &app,
        "/admin/view-as",
        &both,
        &[("csrf", &csrf), ("email", "pat@partner.com")],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let body = app
        .get("/admin/view-as", Some(&both))
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("Viewing as pat@partner.com"), "{body}");
    assert!(
        body.contains("Public FAQ") && !body.contains("Welcome"),
        "{body}"
    );
    let resp = app
        .get(&format!("/admin/view-as/pages/{PUBLIC_FAQ}"), Some(&both))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Viewing as pat@partner.com")
    );
    for id in [WELCOME, RESTRICTED, HR] {
        let resp = app
            .get(&format!("/admin/view-as/pages/{id}"), Some(&both))
            .await;
        assert_eq!(resp.status(), 404, "{id} as pat");
    }
    // A denied domain: the portal's refusal, nothing listed.
    post(
        &app,
        "/admin/view-as",
        &both,
        &[("csrf", &csrf), ("email", "@gmail.com")],
    )
    .await;
    let body = app
        .get("/admin/view-as", Some(&both))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("refuses") && !body.contains("/admin/view-as/pages/"),
        "{body}"
    );
    post(&app, "/admin/view-as/end", &both, &[("csrf", &csrf)]).await;
    let body = app
        .get("/admin/view-as", Some(&both))
        .await
        .text()
        .await
        .unwrap();
    assert!(!body.contains("Viewing as"), "{body}");

    // Sessions per domain, and revoke by domain (subdomains too).
    let partner = app.sign_in("pat@partner.com").await;
    let body = app
        .get("/admin/sessions", Some(&both))
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("partner.com"), "{body}");
    let resp = post(
        &app,
        "/admin/sessions/revoke",
        &both,
        &[("csrf", "bad"), ("domain", "partner.com")],
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(app.get("/", Some(&partner)).await.status(), 200);
    let resp = post(
        &app,
        "/admin/sessions/revoke",
        &both,
        &[("csrf", &csrf), ("domain", "partner.com")],
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(app.get("/", Some(&partner)).await.status(), 401);

    // Sync status lists the mirrored spaces; this app runs no sync loop.
    let body = app
        .get("/admin/sync", Some(&both))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("KB") && body.contains("runs no background sync"),
        "{body}"
    );
    assert_eq!(
        post(&app, "/admin/sync/now", &both, &[("csrf", &csrf)])
            .await
            .status(),
        404
    );

    // Every admin action is in the audit log; filters and CSV.
    let body = app
        .get(
            "/admin/audit?action=admin.&actor=boss%40acme.com",
            Some(&both),
        )
        .await
        .text()
        .await
        .unwrap();
    for action in [
        "admin.session.open",
        "admin.explain",
        "admin.view_as.start",
        "admin.view_as.page",
        "admin.view_as.end",
        "admin.sessions.revoke",
    ] {
        assert!(body.contains(action), "{action} missing: {body}");
    }
    assert!(!body.contains("session.create<"), "filter ignored: {body}");
    let resp = app
        .get("/admin/audit.csv?action=admin.sessions", Some(&both))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "ts,actor,action,detail");
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].contains("\"admin.sessions.revoke\"") && lines[1].contains("partner.com"));

    // Signing out of the portal ends the admin session too.
    let token = reader_csrf(&app, &reader).await;
    let resp = post(&app, "/auth/logout", &reader, &[("csrf", &token)]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(app.get("/admin/sessions", Some(&both)).await.status(), 404);
}

/// The reader session's sign-out token, from the portal's header.
async fn reader_csrf(app: &TestApp, reader: &str) -> String {
    let body = app.get("/", Some(reader)).await.text().await.unwrap();
    csrf_in(&body)
}

#[tokio::test]
async fn an_admin_cookie_is_bound_to_its_reader_session() {
    let app = spawn_app().await;
    let (both, _reader, _) = open_console(&app).await;
    let admin_pair = both.split("; ").last().unwrap().to_owned();
    // Another reader session of the same admin does not carry the first one's admin session.
    let other = app.sign_in(ADMIN).await;
    let resp = app
        .get("/admin/sessions", Some(&format!("{other}; {admin_pair}")))
        .await;
    assert_eq!(resp.status(), 303, "sent to confirm, not let in");
    // A reader who steals the admin cookie gets 404.
    let alice = app.sign_in("alice@acme.com").await;
    let resp = app
        .get("/admin/sessions", Some(&format!("{alice}; {admin_pair}")))
        .await;
    assert_eq!(resp.status(), 404);
}

/// Staff whose domain no audience names sign in through the readers' flows all the same:
/// the console opens, the portal's pages answer 403 without ending the session, and a
/// policy sweep keeps it.
#[tokio::test]
async fn an_admin_who_reads_nothing_still_reaches_the_console() {
    let app = spawn_app().await;
    let (both, reader, _) = open_console_as(&app, STAFF_ADMIN).await;
    assert_eq!(app.get("/", Some(&reader)).await.status(), 403);
    assert_eq!(
        app.get(&format!("/pages/{WELCOME}"), Some(&reader))
            .await
            .status(),
        403
    );
    assert_eq!(app.get("/admin/sessions", Some(&both)).await.status(), 200);
    // A reload sweeps the sessions the policy refuses: not the admin's.
    app.policy.replace(policy_without_acme());
    let sessions = app.get("/admin/sessions", Some(&both)).await;
    assert_eq!(sessions.status(), 200);
    // Any other refused email still gets no session (the refusal page, no cookie).
    let token = mint_hs256(&claims("x@vendor.example"));
    let resp = app.get(&format!("/auth/embed?token={token}"), None).await;
    assert_eq!(resp.status(), 403);
    assert!(
        resp.headers().get("set-cookie").is_none(),
        "a refused email got a cookie"
    );
}
