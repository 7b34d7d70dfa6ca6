//! `/metrics` scraped from the whole service in-process (its own test binary: the `metrics`
//! recorder is process-wide): sync against the simulator under a short 429 storm, API page
//! reads, a hand-over sign-in and refused ones, then the counters each of those must move.

use std::collections::HashMap;
use std::time::Duration;

use confluence_client::{Client, ClientConfig};
use confluence_sim::{Knobs, RateLimit, SimConfig};
use kbgate_config::Config;
use kbgate_mirror::sync::confluence::ConfluenceSource;
use kbgate_service::{CancellationToken, Service};

mod common;

use common::{API_KEY, write_config};

/// One sample of the text format: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// Parses Prometheus' text exposition format (comments skipped; label values without
/// escaped quotes, which ours never have). Panics on a line it cannot read: a malformed
/// exposition fails the test.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("line {l:?}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {l:?}"));
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), HashMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{l:?}"));
                    let labels = body
                        .split("\",")
                        .filter(|kv| !kv.is_empty())
                        .map(|kv| {
                            let (k, v) = kv.split_once("=\"").unwrap_or_else(|| panic!("{l:?}"));
                            (k.to_owned(), v.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
            };
            Sample {
                name,
                labels,
                value,
            }
        })
        .collect()
}

/// The sum of the samples of `name` whose labels include `with`.
fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

async fn scrape(http: &reqwest::Client, at: std::net::SocketAddr) -> (String, Vec<Sample>) {
    let r = http
        .get(format!("http://{at}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), 200);
    let ct = r.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text().await.expect("body");
    let samples = parse(&text);
    (text, samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_caches_sign_ins_sync_and_429s() {
    let sim = confluence_sim::spawn(SimConfig::default())
        .await
        .expect("sim");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_config(dir, &sim, r#""acme.com""#, "");
    let config = Config::load(&dir.join("kbgate.toml")).expect("config");
    assert_eq!(config.metrics.listen, None, "off by default");
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

    // A 429 storm at the start of the first sync: the site admits one call a second.
    sim.set_knobs(Knobs {
        rate_limit: Some(RateLimit {
            per_second: 1,
            burst: 1,
        }),
        ..Knobs::default()
    });
    let portal = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let service = Service::new(config, store.clone(), portal)
        .expect("service")
        .with_sync(source)
        .with_config_poll(Duration::ZERO)
        .with_metrics(metrics_listener)
        .expect("recorder");
    let addr = service.local_addr();
    let metrics_at = service.metrics_addr().expect("metrics address");
    let stop = CancellationToken::new();
    let task = tokio::spawn(service.run(stop.clone()));

    // kbgate's client paces itself by the rate-limit headers, so the test takes the site's one
    // token a second itself until kbgate's client has met a 429 (seen in its own metrics).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http");
    let creds = sim.service_account();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let _ = http
            .get(format!("{}/wiki/api/v2/spaces", sim.base_url()))
            .basic_auth(&creds.email, Some(&creds.api_token))
            .send()
            .await;
        let (_, m) = scrape(&http, metrics_at).await;
        if value(&m, "confluence_client_rate_limited_total", &[]) >= 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "kbgate met no 429: {:?}, service ended: {}",
            sim.stats(),
            task.is_finished()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sim.set_knobs(Knobs::default());
    while !matches!(store.sync_state("KB").await, Ok(Some(s)) if s.last_sync.is_some())
        || !matches!(store.sync_state("API").await, Ok(Some(s)) if s.last_sync.is_some())
    {
        assert!(tokio::time::Instant::now() < deadline, "the first sync");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The portal is not where metrics are.
    let r = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The same page twice through the API: one view built, then served from the cache.
    let page = sim
        .state()
        .read(|s| s.first_open_page("KB"))
        .expect("a page");
    for _ in 0..2 {
        let r = http
            .get(format!("http://{addr}/api/v1/pages/{page}"))
            .bearer_auth(API_KEY)
            .header("X-Kbgate-Email", "jane@acme.com")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // A hand-over, redeemed: one sign-in, one live session.
    let r = http
        .post(format!("http://{addr}/api/v1/handover"))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({ "email": "jane@acme.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = r.json::<serde_json::Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // A used code and a forged one: refused sign-ins.
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let r = http
        .get(format!("http://{addr}/auth/embed?token=not.a.jwt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Made-up paths share one label, whatever they are.
    for p in ["/nope-1", "/nope-2/x"] {
        let r = http.get(format!("http://{addr}{p}")).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }

    let (text, m) = scrape(&http, metrics_at).await;
    let page_route = [
        ("route", "/api/v1/pages/{id}"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(
        value(&m, "kbgate_http_requests_total", &page_route),
        2.0,
        "{text}"
    );
    assert_eq!(
        value(
            &m,
            "kbgate_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        3.0,
        "/metrics on the portal and the two made-up paths: {text}"
    );
    assert!(
        !text.contains("nope") && !text.contains(&format!("/pages/{page}")),
        "raw paths never become labels: {text}"
    );
    assert!(
        !text.contains("jane") && !text.contains("acme.com"),
        "no email in metrics"
    );
    assert_eq!(
        value(
            &m,
            "kbgate_http_request_duration_seconds_count",
            &[("route", "/api/v1/pages/{id}")]
        ),
        2.0,
        "{text}"
    );
    assert!(
        value(
            &m,
            "kbgate_http_request_duration_seconds_bucket",
            &[("route", "/api/v1/pages/{id}"), ("le", "+Inf")]
        ) == 2.0,
        "{text}"
    );
    let view = |outcome| {
        value(
            &m,
            "kbgate_cache_lookups_total",
            &[("cache", "view"), ("outcome", outcome)],
        )
    };
    assert_eq!((view("miss"), view("hit")), (1.0, 1.0), "{text}");
    assert_eq!(value(&m, "kbgate_sessions", &[]), 1.0, "{text}");
    let sign_ins = |method, outcome| {
        value(
            &m,
            "kbgate_sign_ins_total",
            &[("method", method), ("outcome", outcome)],
        )
    };
    assert_eq!(sign_ins("handover", "ok"), 1.0, "{text}");
    assert_eq!(sign_ins("handover", "invalid"), 1.0, "{text}");
    assert_eq!(sign_ins("embed", "invalid"), 1.0, "{text}");
    for space in ["KB", "API"] {
        assert!(
            value(
                &m,
                "kbgate_sync_runs_total",
                &[("space", space), ("outcome", "synced")]
            ) >= 1.0,
            "{text}"
        );
        assert!(
            value(&m, "kbgate_sync_calls_total", &[("space", space)]) >= 1.0,
            "{text}"
        );
    }
    assert_eq!(value(&m, "kbgate_sync_errors_total", &[]), 0.0, "{text}");
    assert!(
        value(&m, "confluence_client_rate_limited_total", &[]) >= 1.0,
        "Confluence 429s: {text}"
    );

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops")
        .expect("no panic")
        .expect("clean stop");
    // The metrics listener stopped with the service.
    assert!(
        http.get(format!("http://{metrics_at}/metrics"))
            .send()
            .await
            .is_err()
    );
}
