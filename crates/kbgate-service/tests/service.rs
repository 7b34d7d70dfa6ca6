//! The whole service in-process, against the simulator and SQLite in a temporary directory:
//! first sync, a page read over HTTP, a config change picked up, then a graceful stop; and a
//! stop in the middle of a sync, after which the next start takes the sync lease at once.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use confluence_client::{Client, ClientConfig};
use confluence_sim::{SimConfig, SimHandle};
use kbgate_config::Config;
use kbgate_mirror::sync::confluence::ConfluenceSource;
use kbgate_service::{CancellationToken, Service, ServiceError};
use kbgate_store::{Store, SyncLease};

mod common;

use common::{API_KEY, write_config, write_config_branded};

/// The CQL search behind the incremental change query (after the structure scan, under the
/// space's lease).
const CHANGE_QUERY: &str = "GET /wiki/rest/api/search";
/// How long a stop may take: in-flight requests drain, loops end at their next await.
const PROMPTLY: Duration = Duration::from_secs(10);

/// A running service and what the test observes it by.
struct Running {
    addr: std::net::SocketAddr,
    store: Weak<dyn Store>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl Running {
    /// The store while the service holds it.
    fn store(&self) -> Arc<dyn Store> {
        self.store.upgrade().expect("the service holds the store")
    }

    /// Cancels and asserts the service completes promptly and cleanly, every handle on
    /// the store dropped (the pool closed).
    async fn stop(self) {
        self.stop.cancel();
        let ended = tokio::time::timeout(PROMPTLY, self.task)
            .await
            .expect("the service stops promptly");
        ended.expect("no panic").expect("a clean stop");
        assert!(
            self.store.upgrade().is_none(),
            "the service left a handle on the store"
        );
    }
}

async fn start(dir: &Path, sim: &SimHandle, config_poll: Duration) -> Running {
    let config = Config::load(&dir.join("kbgate.toml")).expect("config");
    let store = kbgate_store::open(config.store.url.expose(), &config.store.data_dir)
        .await
        .expect("store");
    let creds = sim.service_account();
    let mut cc = ClientConfig::new(
        sim.base_url().parse().expect("sim url"),
        creds.email,
        creds.api_token,
    );
    cc.requests_per_second = 0;
    let source = ConfluenceSource::new(Client::new(cc).expect("client"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let weak = Arc::downgrade(&store);
    let service = Service::new(config, store, listener)
        .expect("service")
        .with_sync(source)
        .with_config_poll(config_poll);
    let addr = service.local_addr();
    assert_eq!(
        service.config().portal.public_url.as_str(),
        format!("http://{addr}/"),
        "the default public URL follows the port bound"
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(service.run(stop.clone()));
    Running {
        addr,
        store: weak,
        stop,
        task,
    }
}

/// An unrestricted current page of `key` (the smallest id).
fn open_page(sim: &SimHandle, key: &str) -> u64 {
    sim.state()
        .read(|s| s.first_open_page(key))
        .expect("an unrestricted page")
}

/// `GET /api/v1/pages/{id}` on behalf of `email` (the host app's API key).
async fn read_page(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    id: u64,
    email: &str,
) -> (u16, serde_json::Value) {
    let r = http
        .get(format!("http://{addr}/api/v1/pages/{id}"))
        .bearer_auth(API_KEY)
        .header("X-Kbgate-Email", email)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn synced(store: &dyn Store, key: &str) -> bool {
    matches!(store.sync_state(key).await, Ok(Some(s)) if s.last_sync.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_syncs_serves_reloads_and_stops_cleanly() {
    let sim = confluence_sim::spawn(SimConfig::default())
        .await
        .expect("sim");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_config(dir, &sim, r#""acme.com""#, "");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");

    // First start: the first sync runs at once.
    let service = start(dir, &sim, Duration::from_millis(100)).await;
    eventually("the first sync", || {
        let store = service.store();
        async move { synced(&*store, "KB").await && synced(&*store, "API").await }
    })
    .await;

    // A page, read through the portal over HTTP.
    let page = open_page(&sim, "KB");
    let (status, body) = read_page(&http, service.addr, page, "jane@acme.com").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], page.to_string());
    assert_eq!(body["space_key"], "KB");
    assert!(body["html"].as_str().is_some_and(|h| !h.is_empty()));

    let signin = |http: reqwest::Client| async move {
        http.get(format!("http://{}/auth/email", service.addr))
            .send()
            .await
            .expect("sign-in page")
            .text()
            .await
            .expect("body")
    };
    assert!(signin(http.clone()).await.contains("Knowledge base"));

    // The config changes: acme's domain goes, the portal gets a name; the running service
    // picks both up.
    write_config_branded(
        dir,
        &sim,
        r#""acme.example""#,
        "",
        r#"site_name = "Acme Help""#,
    );
    eventually("the reload refusing acme.com", || {
        let http = http.clone();
        async move {
            read_page(&http, service.addr, page, "jane@acme.com")
                .await
                .0
                != 200
        }
    })
    .await;
    let (status, _) = read_page(&http, service.addr, page, "jane@acme.example").await;
    assert_eq!(status, 200, "the new domain reads KB");
    let page_html = signin(http.clone()).await;
    assert!(
        page_html.contains("Acme Help"),
        "the brand reloaded: {page_html}"
    );

    service.stop().await;

    // Second start on the same store: stopped while its sync is in flight (held by the
    // simulator under the lease of API, the first space), nothing of that round is
    // committed and the lease is free at once.
    let before = {
        let store = kbgate_store::open(
            &format!("sqlite://{}/kb.db", dir.display()),
            &dir.join("data"),
        )
        .await
        .expect("store");
        store
            .sync_state("API")
            .await
            .expect("state")
            .expect("synced")
    };
    sim.state().hold_after(CHANGE_QUERY, 0);
    // A round skips spaces synced within its interval (by any process, this one's previous
    // life too): a short interval makes the held round come within a second either way.
    write_config(dir, &sim, r#""acme.example""#, r#"interval = "1s""#);
    let service = start(dir, &sim, Duration::ZERO).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sim.state().held() < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sync never reached the hold"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held = service
        .store()
        .acquire_sync_lease("API", "the test", Duration::from_secs(60))
        .await
        .expect("lease");
    assert!(
        matches!(held, SyncLease::HeldBy { .. }),
        "the running sync holds API's lease: {held:?}"
    );
    // Requests still answer while a sync is stuck.
    let (status, _) = read_page(&http, service.addr, page, "jane@acme.example").await;
    assert_eq!(status, 200);
    service.stop().await;
    sim.state().release();

    let store = kbgate_store::open(
        &format!("sqlite://{}/kb.db", dir.display()),
        &dir.join("data"),
    )
    .await
    .expect("store");
    let lease = store
        .acquire_sync_lease("API", "the next start", Duration::from_secs(60))
        .await
        .expect("lease");
    assert!(
        matches!(lease, SyncLease::Acquired),
        "the stopped sync released its lease: {lease:?}"
    );
    let after = store
        .sync_state("API")
        .await
        .expect("state")
        .expect("synced");
    assert_eq!(
        after.last_sync, before.last_sync,
        "the cancelled round committed nothing"
    );
}

/// The `Cookie` pair a response sets under `name`.
fn cookie_pair(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

/// The form token in a page.
fn form_token(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    body[at..].split('"').next().unwrap_or_default().to_owned()
}

/// The admin console's "sync now" wakes the background sync loop: with a long interval, a
/// second round runs at once (and syncs spaces it synced moments ago).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_now_from_the_admin_console_starts_a_round() {
    let sim = confluence_sim::spawn(SimConfig::default())
        .await
        .expect("sim");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_config(dir, &sim, r#""acme.com""#, r#"interval = "1h""#);
    let path = dir.join("kbgate.toml");
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str("\n[admin]\nemails = [\"boss@acme.com\"]\n");
    std::fs::write(&path, text).expect("config");
    let service = start(dir, &sim, Duration::ZERO).await;
    eventually("the first sync", || {
        let store = service.store();
        async move { synced(&*store, "KB").await }
    })
    .await;
    let first = service
        .store()
        .last_synced("KB")
        .await
        .expect("read")
        .expect("synced")
        .synced_at;

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let base = format!("http://{}", service.addr);
    // Sign in as a reader through the back-channel hand-over, then open the console.
    let handover: serde_json::Value = http
        .post(format!("{base}/api/v1/handover"))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({ "email": "boss@acme.com" }))
        .send()
        .await
        .expect("handover")
        .json()
        .await
        .expect("json");
    let resp = http
        .get(handover["url"].as_str().expect("url"))
        .send()
        .await
        .expect("code");
    let reader = cookie_pair(&resp, "kbgate_session");
    let body = http
        .get(format!("{base}/admin"))
        .header("cookie", &reader)
        .send()
        .await
        .expect("admin")
        .text()
        .await
        .expect("body");
    let resp = http
        .post(format!("{base}/admin/session"))
        .header("cookie", &reader)
        .form(&[("csrf", form_token(&body))])
        .send()
        .await
        .expect("open");
    let both = format!("{reader}; {}", cookie_pair(&resp, "kbgate_admin"));
    let body = http
        .get(format!("{base}/admin/sync"))
        .header("cookie", &both)
        .send()
        .await
        .expect("sync page")
        .text()
        .await
        .expect("body");
    assert!(
        body.contains("Sync now") && body.contains("every 1h"),
        "{body}"
    );
    let resp = http
        .post(format!("{base}/admin/sync/now"))
        .header("cookie", &both)
        .form(&[("csrf", form_token(&body))])
        .send()
        .await
        .expect("sync now");
    assert_eq!(resp.status(), 303);
    eventually("a second round", || {
        let store = service.store();
        async move { matches!(store.last_synced("KB").await, Ok(Some(l)) if l.synced_at > first) }
    })
    .await;
    service.stop().await;
}

/// `[sync] interval = "0"` turns the background sync off (cron `kbgate sync` does it): the
/// service keeps serving — it used to stop at once, its sync loop having ended — syncs
/// nothing by itself, and still stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_sync_interval_serves_without_syncing() {
    let sim = confluence_sim::spawn(SimConfig::default())
        .await
        .expect("sim");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_config(dir, &sim, r#""acme.com""#, r#"interval = "0""#);
    let service = start(dir, &sim, Duration::ZERO).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!service.task.is_finished(), "the service stopped by itself");
    let health = reqwest::get(format!("http://{}/healthz", service.addr))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    assert!(
        !synced(&*service.store(), "KB").await,
        "a zero interval synced in the background"
    );
    service.stop().await;
}

/// `[insights] retention_days` while serving: page views and searches older than it are
/// deleted when the service starts (then hourly); newer ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_insights_are_pruned_while_serving() {
    let sim = confluence_sim::spawn(SimConfig::default())
        .await
        .expect("sim");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_config(dir, &sim, r#""acme.com""#, r#"interval = "1h""#);
    let path = dir.join("kbgate.toml");
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str("\n[insights]\nretention_days = 30\n");
    std::fs::write(&path, text).expect("config");
    let config = Config::load(&path).expect("config");
    assert_eq!(config.insights.retention_days, 30);
    {
        let store = kbgate_store::open(config.store.url.expose(), &config.store.data_dir)
            .await
            .expect("store");
        let now = chrono::Utc::now();
        let view = |days: i64| kbgate_store::PageViewEvent {
            at: now - chrono::Duration::days(days),
            page_id: format!("{days}"),
            space_key: "KB".into(),
            domain: "acme.com".into(),
            reader: "r".into(),
        };
        store
            .record_page_views(&[view(31), view(29), view(0)])
            .await
            .expect("views");
    }
    let service = start(dir, &sim, Duration::ZERO).await;
    let left = || {
        let store = service.store();
        async move {
            store
                .insights_summary(&kbgate_store::InsightsQuery {
                    top: 10,
                    ..Default::default()
                })
                .await
                .expect("summary")
        }
    };
    eventually("the old view pruned", || {
        let summary = left();
        async move { summary.await.page_views == 2 }
    })
    .await;
    let mut pages: Vec<String> = left().await.top_pages.into_iter().map(|p| p.0).collect();
    pages.sort();
    assert_eq!(pages, ["0", "29"]);
    service.stop().await;
}
