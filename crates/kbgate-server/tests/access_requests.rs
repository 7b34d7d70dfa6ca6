//! Access requests: the `/request-access` form with its verification link, and the host
//! app's `POST /api/v1/access-requests`. Same no-enumeration and rate-limit rules as sign-in;
//! people are recorded only for active native audiences, and only once verified.

mod common;

use std::collections::BTreeMap;

use common::*;
use kbgate_store::PersonRecord;

/// Addresses whose domain an active native audience grants (guest, unlicensed, group).
const NATIVE: &[&str] = &["gus@guest.com", "una@unlicensed.com", "gro@group.com"];
/// Addresses that must get no mail and no record: portal-only, unknown, denied (even though
/// a native audience lists it), expired native audience, and a portal label audience.
const REFUSED: &[&str] = &[
    "alice@acme.com",
    "bob@nobody.org",
    "dan@gmail.com",
    "gil@gone.com",
    "pat@partner.com",
];

/// The verification links in the outbox, by recipient.
fn outbox(app: &TestApp) -> BTreeMap<String, Vec<String>> {
    let mut by_to: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(app.outbox.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let to = text
            .lines()
            .find_map(|l| l.strip_prefix("To: "))
            .unwrap_or_default()
            .to_owned();
        for line in text.lines() {
            if line.contains("/request-access/confirm?code=") {
                by_to
                    .entry(to.clone())
                    .or_default()
                    .push(line.trim().into());
            }
        }
    }
    by_to
}

/// Polls the outbox until `count` links are there (mail goes out in the background; this is
/// a wait, not a timing assertion).
async fn wait_for_links(app: &TestApp, count: usize) -> BTreeMap<String, Vec<String>> {
    for _ in 0..250 {
        let m = outbox(app);
        if m.values().map(Vec::len).sum::<usize>() >= count {
            return m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    outbox(app)
}

/// Audit events of access-request recordings (one per recording attempt, whatever the
/// outcome).
async fn recordings(app: &TestApp) -> Vec<serde_json::Value> {
    app.store
        .recent_audit(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "provision.access-request")
        .map(|e| e.detail)
        .collect()
}

/// Polls the audit log until `count` recordings happened (the API records in the background).
async fn wait_for_recordings(app: &TestApp, count: usize) -> Vec<serde_json::Value> {
    for _ in 0..250 {
        let r = recordings(app).await;
        if r.len() >= count {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    recordings(app).await
}

async fn people(app: &TestApp) -> Vec<PersonRecord> {
    app.store.people().await.unwrap()
}

fn emails(people: &[PersonRecord]) -> Vec<&str> {
    people.iter().map(|p| p.email.as_str()).collect()
}

async fn ask(app: &TestApp, email: &str) -> reqwest::Response {
    app.client
        .post(app.url("/request-access"))
        .form(&[("email", email)])
        .send()
        .await
        .unwrap()
}

async fn confirm(app: &TestApp, code: &str) -> reqwest::Response {
    app.client
        .post(app.url("/request-access/confirm"))
        .form(&[("code", code)])
        .send()
        .await
        .unwrap()
}

fn code_of(link: &str) -> &str {
    link.split("code=").nth(1).unwrap()
}

/// Stores a code directly, as the store would hold it (to test purpose and expiry).
async fn plant_code(app: &TestApp, code: &str, purpose: &str, expired: bool) {
    let now = chrono::Utc::now();
    let (created_at, expires_at) = if expired {
        (
            now - chrono::Duration::minutes(16),
            now - chrono::Duration::minutes(1),
        )
    } else {
        (now, now + chrono::Duration::minutes(15))
    };
    app.store
        .create_code(&kbgate_store::CodeRecord {
            code_hash: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(code.as_bytes())),
            purpose: purpose.into(),
            email: "gus@guest.com".into(),
            return_to: Some("/".into()),
            created_at,
            expires_at,
        })
        .await
        .unwrap();
}

async fn form_flow(app: &TestApp) {
    // The form: labelled field, posts to itself.
    let r = app.get("/request-access", None).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"action="/request-access""#), "{html}");
    assert!(html.contains(r#"<label for="email">"#));
    assert!(html.contains(r#"autocomplete="email""#));
    assert_inert(&html, "request-access form");

    // Same answer for every address.
    let first = ask(app, NATIVE[0]).await;
    let (status, body) = (first.status(), first.text().await.unwrap());
    assert_eq!(status, 200);
    assert!(body.contains(r#"role="status""#));
    for email in NATIVE[1..].iter().chain(REFUSED) {
        let r = ask(app, email).await;
        assert_eq!(r.status(), status, "status differs for {email}");
        assert_eq!(r.text().await.unwrap(), body, "answer differs for {email}");
    }

    // Mail only for the native domains, one each.
    let mail = wait_for_links(app, NATIVE.len()).await;
    let to: Vec<&str> = mail.keys().map(String::as_str).collect();
    let mut want = NATIVE.to_vec();
    want.sort();
    assert_eq!(to, want, "mail only for native-audience addresses");
    assert!(mail.values().all(|l| l.len() == 1));
    // Nobody is recorded before the address is verified.
    assert!(people(app).await.is_empty());

    let link = &mail["gus@guest.com"][0];
    assert!(link.starts_with(&app.base), "{link}");
    let code = code_of(link);

    // Opening the link only shows a button (scanners must not burn it).
    let r = app.client.get(link).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"action="/request-access/confirm""#));
    assert!(html.contains(code));
    assert_inert(&html, "confirm page");
    assert!(people(app).await.is_empty());

    // Using it records the person.
    let r = confirm(app, code).await;
    assert_eq!(r.status(), 200);
    let done = r.text().await.unwrap();
    assert!(done.contains(r#"role="status""#));
    let p = people(app).await;
    assert_eq!(emails(&p), ["gus@guest.com"]);
    assert_eq!(p[0].domain, "guest.com");
    assert_eq!(p[0].source, "access-request");

    // Single use.
    let r = confirm(app, code).await;
    assert_eq!(r.status(), 400, "a verification link works once");
    assert_eq!(people(app).await.len(), 1);

    // The other two.
    for email in &NATIVE[1..] {
        let r = confirm(app, code_of(&mail[*email][0])).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), done, "same page for {email}");
    }
    let mut want = NATIVE.to_vec();
    want.sort();
    assert_eq!(emails(&people(app).await), want);

    // Made-up, expired and other-purpose codes are all refused alike.
    let expired = "E".repeat(43);
    plant_code(app, &expired, "access-request", true).await;
    let magic = "M".repeat(43);
    plant_code(app, &magic, "magic-link", false).await;
    for bad in ["", "x", &"A".repeat(43), &expired, &magic] {
        let r = confirm(app, bad).await;
        assert_eq!(r.status(), 400, "code {bad:?}");
        let r = app
            .get(&format!("/request-access/confirm?code={bad}"), None)
            .await;
        if bad.len() != 43 {
            assert_eq!(r.status(), 400, "malformed code {bad:?} shows no button");
        }
    }
    // None of them recorded anyone: a sign-in code does not confirm an access request.
    assert_eq!(people(app).await.len(), NATIVE.len());

    // The audit log names domains, never addresses.
    for detail in recordings(app).await {
        let d = detail.to_string();
        assert!(!d.contains('@'), "an address in the audit log: {d}");
    }
}

#[tokio::test]
async fn form_verifies_then_records_sqlite() {
    let app = spawn_native_app_on(Backend::Sqlite).await.unwrap();
    form_flow(&app).await;
}

#[tokio::test]
async fn form_verifies_then_records_postgres() {
    let Some(app) = spawn_native_app_on(Backend::Postgres).await else {
        return;
    };
    form_flow(&app).await;
}

#[tokio::test]
async fn domain_dropped_after_the_mail_records_nobody() {
    let app = spawn_native_app_on(Backend::Sqlite).await.unwrap();
    ask(&app, "gus@guest.com").await;
    let mail = wait_for_links(&app, 1).await;
    // The guest audience goes away before the link is used: the policy in force decides.
    app.policy.replace(policy());
    let r = confirm(&app, code_of(&mail["gus@guest.com"][0])).await;
    assert_eq!(r.status(), 200, "the same page: nothing is revealed");
    assert!(people(&app).await.is_empty());
    let rec = recordings(&app).await;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0]["outcome"], "domain-not-granted");
}

#[tokio::test]
async fn sign_in_page_links_to_request_access_when_native_audiences_exist() {
    let app = spawn_native_app_on(Backend::Sqlite).await.unwrap();
    let html = app.get("/auth/email", None).await.text().await.unwrap();
    assert!(html.contains(r#"href="/request-access""#), "{html}");
    // The page after sending too.
    let r = app
        .post_form("/auth/email", &[("email", "alice@acme.com")])
        .await;
    assert!(
        r.text()
            .await
            .unwrap()
            .contains(r#"href="/request-access""#)
    );
    // A portal-only site does not lead people to a form that can never send anything.
    let portal = spawn_app().await;
    let html = portal.get("/auth/email", None).await.text().await.unwrap();
    assert!(!html.contains("/request-access"));
}

async fn post_api(app: &TestApp, key: Option<&str>, body: serde_json::Value) -> reqwest::Response {
    let mut rb = app
        .client
        .post(app.url("/api/v1/access-requests"))
        .json(&body);
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    rb.send().await.unwrap()
}

#[tokio::test]
async fn api_needs_the_host_app_key() {
    let app = spawn_native_app_on(Backend::Sqlite).await.unwrap();
    let body = serde_json::json!({ "email": "gus@guest.com" });
    let r = post_api(&app, None, body.clone()).await;
    assert_eq!(r.status(), 401);
    let r = post_api(&app, Some("wrong-key"), body.clone()).await;
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .post(app.url("/api/v1/access-requests"))
        .header("authorization", format!("Basic {API_KEY}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The key is checked before the body is read.
    let r = app
        .client
        .post(app.url("/api/v1/access-requests"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["status"], 401);
    // Nothing was recorded, nothing was attempted.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(people(&app).await.is_empty());
    assert!(recordings(&app).await.is_empty());
}

async fn api_flow(app: &TestApp) {
    let mut answers = Vec::new();
    let asked: Vec<&str> = NATIVE
        .iter()
        .chain(REFUSED)
        .copied()
        .chain(["gus@Guest.COM"])
        .collect();
    for email in &asked {
        let r = post_api(app, Some(API_KEY), serde_json::json!({ "email": email })).await;
        answers.push((r.status().as_u16(), r.text().await.unwrap()));
    }
    assert_eq!(answers[0].0, 202);
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "the same answer whatever the domain: {answers:?}"
    );
    let body: serde_json::Value = serde_json::from_str(&answers[0].1).unwrap();
    assert_eq!(body, serde_json::json!({ "status": "accepted" }));

    // Every request is handled (one audit event each); only native domains are recorded,
    // once each (the domain is compared lower-cased, as the policy does).
    let rec = wait_for_recordings(app, asked.len()).await;
    assert_eq!(rec.len(), asked.len());
    let mut want = NATIVE.to_vec();
    want.sort();
    let p = people(app).await;
    assert_eq!(emails(&p), want);
    assert!(p.iter().all(|p| p.source == "access-request"));
    assert!(rec.iter().all(|d| d["source"] == "api"));
    // The audit log names the domain and the outcome, never the address (moved here from
    // kbgate-provision with the recording).
    for d in &rec {
        assert!(
            !d.to_string().contains('@'),
            "no addresses in the audit log: {d}"
        );
        assert!(d["domain"].is_string(), "{d}");
    }
    let outcomes: BTreeMap<String, usize> = rec.iter().fold(BTreeMap::new(), |mut m, d| {
        *m.entry(d["outcome"].as_str().unwrap().to_owned())
            .or_default() += 1;
        m
    });
    assert_eq!(outcomes["recorded"], NATIVE.len(), "{outcomes:?}");
    assert_eq!(outcomes["already-known"], 1, "{outcomes:?}");
    assert_eq!(
        outcomes["domain-not-granted"],
        REFUSED.len(),
        "{outcomes:?}"
    );
    // No mail: the host app verified the address already.
    assert!(outbox(app).is_empty());

    // A malformed address is the caller's bug.
    for bad in ["", "not an email", "a@b@acme.com"] {
        let r = post_api(app, Some(API_KEY), serde_json::json!({ "email": bad })).await;
        assert_eq!(r.status(), 400, "{bad:?}");
    }
    let r = post_api(
        app,
        Some(API_KEY),
        serde_json::json!({ "mail": "x@guest.com" }),
    )
    .await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn api_records_people_sqlite() {
    let app = spawn_native_app_on(Backend::Sqlite).await.unwrap();
    api_flow(&app).await;
}

#[tokio::test]
async fn api_records_people_postgres() {
    let Some(app) = spawn_native_app_on(Backend::Postgres).await else {
        return;
    };
    api_flow(&app).await;
}

#[tokio::test]
async fn form_is_rate_limited_per_email_together_with_sign_in() {
    let app = spawn_native_app_on(Backend::Sqlite).await.unwrap();
    let sign_in = app
        .post_form("/auth/email", &[("email", "gus@guest.com")])
        .await;
    assert_eq!(sign_in.status(), 200);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(ask(&app, "gus@guest.com").await.status().as_u16());
    }
    // One mailbox gets at most three links per window, whichever form asks.
    assert_eq!(statuses, [200, 200, 429]);
    // Another address from the same client is still served.
    assert_eq!(ask(&app, "una@unlicensed.com").await.status(), 200);
    // Malformed input: clean 400, no echo.
    let r = ask(&app, "<script>@x").await;
    assert_eq!(r.status(), 400);
    assert!(!r.text().await.unwrap().contains("<script>@x"));
}

#[tokio::test]
async fn form_is_rate_limited_per_client() {
    let app = spawn_native_app_on(Backend::Sqlite).await.unwrap();
    let mut limited_at = None;
    for i in 0..25 {
        if ask(&app, &format!("user{i}@guest.com")).await.status() == 429 {
            limited_at = Some(i);
            break;
        }
    }
    assert_eq!(limited_at, Some(20), "20 requests per client and window");
}

#[tokio::test]
async fn api_is_rate_limited() {
    let app = spawn_native_app_on(Backend::Sqlite).await.unwrap();
    // Malformed bodies count too (they are refused after the limiter), and record nothing.
    let mut limited_at = None;
    let started = std::time::Instant::now();
    for i in 0..700 {
        let r = post_api(&app, Some(API_KEY), serde_json::json!({ "email": "" })).await;
        match r.status().as_u16() {
            400 => {}
            429 => {
                limited_at = Some(i);
                break;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    // 600 a minute: all 600 at once, then one more every 100 ms (governor's GCRA), so the
    // requests this loop took long enough to earn back are allowed too, and no more.
    let earned = usize::try_from(started.elapsed().as_millis() / 100).unwrap();
    let limited_at = limited_at.expect("the host app is limited");
    assert!(
        (600..=600 + earned).contains(&limited_at),
        "600 requests per minute for the host app: limited at {limited_at}, {earned} earned back"
    );
    // Hand-overs keep their own budget.
    let r = app
        .client
        .post(app.url("/api/v1/handover"))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({ "email": "alice@acme.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
