//! A config reload applies the portal's live settings to the running service: the host
//! app's API key and the embed signing secret (their files are read again), the session
//! lifetime of new sign-ins and the framing origins (CSP); a bad secret keeps the running
//! settings.

use std::time::Duration;

use confluence_sim::SimConfig;
use kbgate_config::Config;
use kbgate_service::{CancellationToken, Service};

mod common;

use common::{API_KEY, write_config_with};

const NEW_KEY: &str = "service-test-new-api-key-0123456789abcdefgh";
/// The embed secret the test config writes, and the one the host app rotates to.
const OLD_SECRET: &str = "service-test-embed-secret-0123456789abcdef";
const NEW_SECRET: &str = "service-test-rotated-embed-secret-0123456789";

/// `GET /api/v1/spaces` for jane@acme.com with `key`.
async fn spaces_status(http: &reqwest::Client, addr: std::net::SocketAddr, key: &str) -> u16 {
    http.get(format!("http://{addr}/api/v1/spaces"))
        .bearer_auth(key)
        .header("X-Kbgate-Email", "jane@acme.com")
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// The status of an embed hand-over of jane with a token signed by `secret` (HS256, the
/// service test config's issuer and audience).
async fn embed_status(http: &reqwest::Client, addr: std::net::SocketAddr, secret: &str) -> u16 {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "email": "jane@acme.com",
        "iss": "https://app.example.com",
        "aud": "kbgate",
        "iat": now,
        "exp": now + 60,
        // Unique per call, so a refusal is never the replay check's.
        "jti": format!(
            "reload-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos()
        ),
    });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token");
    http.get(format!("http://{addr}/auth/embed?token={token}"))
        .send()
        .await
        .expect("embed")
        .status()
        .as_u16()
}

/// Hands jane over with `key` and returns the `Set-Cookie` of the redeemed URL.
async fn sign_in_cookie(http: &reqwest::Client, addr: std::net::SocketAddr, key: &str) -> String {
    let r = http
        .post(format!("http://{addr}/api/v1/handover"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "email": "jane@acme.com" }))
        .send()
        .await
        .expect("handover");
    assert_eq!(r.status(), 200);
    let url = r.json::<serde_json::Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http.get(url).send().await.expect("redeem");
    assert_eq!(r.status(), 303);
    r.headers()["set-cookie"].to_str().unwrap().to_owned()
}

async fn csp(http: &reqwest::Client, addr: std::net::SocketAddr) -> String {
    let r = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_keys_session_lifetime_and_framing() {
    // The service's log lines show in a failure's output.
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let sim = confluence_sim::spawn(SimConfig::default())
        .await
        .expect("sim");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_config_with(dir, &sim, r#""acme.com""#, "interval = \"0\"", "");
    let config = Config::load(&dir.join("kbgate.toml")).expect("config");
    let store = kbgate_store::open(config.store.url.expose(), &config.store.data_dir)
        .await
        .expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let service = Service::new(config, store, listener)
        .expect("service")
        .with_config_poll(Duration::ZERO);
    let addr = service.local_addr();
    let reload = service.reload_trigger();
    let stop = CancellationToken::new();
    let task = tokio::spawn(service.run(stop.clone()));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http");

    assert_eq!(spaces_status(&http, addr, API_KEY).await, 200);
    let cookie = sign_in_cookie(&http, addr, API_KEY).await;
    assert!(
        cookie.contains("Max-Age=43200"),
        "the default 12h: {cookie}"
    );
    assert!(csp(&http, addr).await.contains("frame-ancestors 'none'"));

    // New API key (same file), shorter sessions, a framing origin; the listen address changes
    // too, which only a restart can apply.
    write_config_with(
        dir,
        &sim,
        r#""acme.com""#,
        "interval = \"0\"",
        "session_idle = \"30m\"\nsession_absolute = \"1h\"\nframe_ancestors = [\"https://app.example.com\"]\n",
    );
    // (after the config: writing it puts the test's usual key back)
    std::fs::write(dir.join("api-key"), NEW_KEY).expect("new key");
    assert_eq!(
        embed_status(&http, addr, OLD_SECRET).await,
        303,
        "embed before"
    );
    std::fs::write(dir.join("embed-secret"), NEW_SECRET).expect("new secret");
    reload.reload();
    eventually("the new API key", || {
        let http = http.clone();
        async move { spaces_status(&http, addr, NEW_KEY).await == 200 }
    })
    .await;
    assert_eq!(spaces_status(&http, addr, API_KEY).await, 401, "old key");
    // The host app rotated its embed secret: tokens signed with the new one open sessions,
    // with the old one no longer (no restart).
    assert_eq!(
        embed_status(&http, addr, NEW_SECRET).await,
        303,
        "new secret"
    );
    assert_eq!(
        embed_status(&http, addr, OLD_SECRET).await,
        401,
        "old secret"
    );
    let cookie = sign_in_cookie(&http, addr, NEW_KEY).await;
    assert!(cookie.contains("Max-Age=3600"), "1h: {cookie}");
    assert!(cookie.contains("SameSite=None; Secure"), "framed: {cookie}");
    assert!(
        csp(&http, addr)
            .await
            .contains("frame-ancestors https://app.example.com"),
        "{}",
        csp(&http, addr).await
    );

    // A secret that cannot be read: the policy may change, the portal's settings stay.
    write_config_with(dir, &sim, r#""acme.com""#, "interval = \"0\"", "");
    std::fs::remove_file(dir.join("api-key")).expect("remove key");
    reload.reload();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(spaces_status(&http, addr, NEW_KEY).await, 200, "kept");
    assert!(csp(&http, addr).await.contains("https://app.example.com"));

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops")
        .expect("no panic")
        .expect("clean stop");
}
