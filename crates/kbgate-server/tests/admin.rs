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

/// The simulator's service account as native mode's client (no client-side rate limit).
fn sim_client(sim: &confluence_sim::SimHandle) -> confluence_client::Client {
    let a = sim.service_account();
    let mut cfg =
        confluence_client::ClientConfig::new(sim.base_url().parse().unwrap(), a.email, a.api_token);
    cfg.requests_per_second = 0;
    confluence_client::Client::new(cfg).unwrap()
}

/// The native plan page (issue #13): a clear empty state without native mode, and with it
/// configured on a simulated site, the latest plan (kept in the store by the reconciler, as
/// `kbgate plan`, `apply` and the reconcile loop keep it) shown read-only: grants,
/// revocations, invitations waiting (sent, or of unknown outcome with the time they are sent
/// again) and what follows them. Loading the page costs no Confluence call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_plan_is_shown_read_only() {
    use kbgate_provision::{NoProgress, ReconcileOptions, Reconciler};

    let app = spawn_app().await;
    let (both, _, _) = open_console(&app).await;
    let page = |app: &TestApp| {
        let both = both.clone();
        let url = app.url("/admin/plan");
        let client = app.client.clone();
        async move {
            let resp = client.get(url).header("cookie", both).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.text().await.unwrap()
        }
    };
    // Portal only: nothing to plan, and the page says so.
    let body = page(&app).await;
    assert!(body.contains("Native mode is not configured"), "{body}");
    assert!(!body.contains("No plan has been computed"), "{body}");

    // Native audiences, no plan yet.
    app.policy.replace(native_policy());
    let body = page(&app).await;
    assert!(body.contains("grouped (group)"), "{body}");
    assert!(body.contains("No plan has been computed yet"), "{body}");

    // A simulated site where invitations take an hour; people in each native audience, and
    // an invitation whose outcome is unknown (a run killed mid-call), journaled just now.
    let sim = confluence_sim::spawn(confluence_sim::SimConfig::default())
        .await
        .unwrap();
    sim.state()
        .write(|s| s.invite_delay = Some(chrono::Duration::hours(1)));
    for email in ["ann@group.com", "late@group.com", "una@unlicensed.com"] {
        app.store
            .add_person(&kbgate_store::PersonRecord {
                email: email.into(),
                domain: email.rsplit('@').next().unwrap().into(),
                source: "test".into(),
                created_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
    }
    let journaled = chrono::Utc::now();
    app.store
        .journal_put(&kbgate_store::JournalEntry {
            action_id: "invite:grouped:late@group.com".into(),
            kind: "invite".into(),
            target: "late@group.com".into(),
            state: kbgate_provision::journal_state::UNKNOWN.into(),
            detail: serde_json::json!({}),
            created_at: journaled,
            updated_at: journaled,
        })
        .await
        .unwrap();
    let opts = ReconcileOptions {
        invite_wait: std::time::Duration::ZERO,
        ..ReconcileOptions::default()
    };
    // `kbgate apply` under the native policy, then `kbgate plan` once the unlicensed
    // audience is gone from the policy.
    let r = Reconciler::new(
        sim_client(&sim),
        app.store.clone(),
        native_policy(),
        opts.clone(),
    );
    let plan = r.plan().await.unwrap();
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?}");
    let mut auds = native_policy().audiences().to_vec();
    auds.retain(|a| a.name.as_str() != "unlicensed");
    let without_unlicensed =
        kbgate_policy::Policy::new(auds, native_policy().deny().to_vec()).unwrap();
    app.policy.replace(without_unlicensed.clone());
    let r = Reconciler::new(
        sim_client(&sim),
        app.store.clone(),
        without_unlicensed,
        opts,
    );
    app.store
        .add_person(&kbgate_store::PersonRecord {
            email: "newbie@group.com".into(),
            domain: "group.com".into(),
            source: "test".into(),
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let calls = r.client().stats().total;
    let plan = r.plan().await.unwrap();
    let plan_calls = r.client().stats().total - calls;
    assert!(!plan.converged(), "{plan}");

    sim.reset_stats();
    let body = page(&app).await;
    assert_eq!(
        sim.stats().total,
        0,
        "the page calls no Confluence endpoint"
    );
    assert!(
        body.contains(&format!("with {plan_calls} Confluence call(s)")),
        "{body}"
    );
    // The grant: an invitation for the new person.
    let grants = body.split("id=\"plan-grants\"").nth(1).unwrap();
    let grants = grants.split("id=\"plan-revocations\"").next().unwrap();
    assert!(
        grants.contains("invite") && grants.contains("newbie@group.com"),
        "{grants}"
    );
    // The revocation: the unlicensed view kbgate switched on.
    let revocations = body.split("id=\"plan-revocations\"").nth(1).unwrap();
    let revocations = revocations.split("id=\"plan-awaiting\"").next().unwrap();
    assert!(
        revocations.contains("set-unlicensed-view") && revocations.contains("KB off"),
        "{revocations}"
    );
    // Waiting: ann's invitation was sent (not sent again), late's outcome is unknown (sent
    // again once the retry time has passed); both join the group after.
    let awaiting = body.split("id=\"plan-awaiting\"").nth(1).unwrap();
    let row = |email: &str| {
        awaiting
            .split("<tr>")
            .find(|r| r.contains(email))
            .unwrap_or_else(|| panic!("{email} not waiting: {awaiting}"))
            .to_owned()
    };
    let ann = row("ann@group.com");
    assert!(
        ann.contains("invited, not complete yet")
            && ann.contains("Not invited again")
            && ann.contains("added to group kbgate-grouped"),
        "{ann}"
    );
    let late = row("late@group.com");
    let retry = (journaled + kbgate_provision::DEFAULT_INVITE_RETRY_AFTER)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    assert!(
        late.contains("outcome unknown") && late.contains(&format!("Invited again from {retry}")),
        "{late}"
    );
    assert!(
        body.contains(&format!("Next invitation retry: {retry}")),
        "{body}"
    );
    // Content is escaped like every page: nothing raw from the plan's reasons.
    assert!(!body.contains("<script"), "{body}");
}

/// The sync page's "Next run" per space (issue #13): last sync plus the background interval,
/// "due now" when never synced or overdue, "running now" while a sync holds the lease; and
/// "no background sync" where this process runs none (see `console_flow`).
#[tokio::test]
async fn the_sync_page_shows_the_next_run_of_each_space() {
    let test_store = open_store(Backend::Sqlite).await.unwrap();
    write_mirror(&test_store.store).await;
    let app = serve_with_extras(
        test_store,
        policy(),
        |_| {},
        hs256_verifier(),
        |e| {
            e.sync_interval = Some(std::time::Duration::from_secs(600));
            e.sync_now = Some(std::sync::Arc::new(tokio::sync::Notify::new()));
        },
    )
    .await;
    let (both, _, _) = open_console(&app).await;
    let now = chrono::Utc::now();
    // KB synced 2 minutes ago: next at +10 min; HR 15 minutes ago: overdue; OLD never
    // recorded but syncing now (another process holds its lease).
    app.store
        .record_synced("KB", "host-a", now - chrono::Duration::minutes(2))
        .await
        .unwrap();
    app.store
        .record_synced("HR", "host-a", now - chrono::Duration::minutes(15))
        .await
        .unwrap();
    app.store
        .acquire_sync_lease("OLD", "host-b", std::time::Duration::from_secs(300))
        .await
        .unwrap();
    let body = app
        .get("/admin/sync", Some(&both))
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("<th scope=\"col\">Next run</th>"), "{body}");
    let row = |key: &str| {
        body.split("<tr>")
            .find(|r| r.contains(&format!("<td>{key} (")))
            .unwrap_or_else(|| panic!("no row for {key}: {body}"))
            .to_owned()
    };
    let next = (now + chrono::Duration::minutes(8))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let kb = row("KB");
    assert!(kb.contains(&next) && kb.contains("(in 8 min)"), "{kb}");
    assert!(row("HR").contains("<td>due now</td>"), "{}", row("HR"));
    assert!(
        row("OLD").contains("<td>running now</td>"),
        "{}",
        row("OLD")
    );
}
