//! Native reconcile of N people (default 10,000; `KBGATE_BENCH_PEOPLE`) in 25 domains against
//! the simulator with 50 ms latency and a rate limit: calls and wall time of kbgate's first
//! apply and of a no-op plan, and of a naive one-call-per-person loop doing the same, for the
//! ratio. Run: `cargo bench -p kbgate-provision --bench reconcile`.

use std::time::{Duration, Instant};

use confluence_client::{Client, ClientConfig, RetryConfig};
use confluence_sim::generator::customer_domain;
use confluence_sim::{Knobs, RateLimit, SimConfig, SimHandle};
use futures::StreamExt;
use kbgate_policy::{Audience, AudienceName, Delivery, Domain, Policy, SpaceKey};
use kbgate_provision::{NoProgress, ReconcileOptions, Reconciler};
use kbgate_store::PersonRecord;

const DOMAINS: usize = 25;
const LATENCY_MS: u64 = 50;
const RATE: u32 = 200;
const CONCURRENCY: usize = 16;

fn client(h: &SimHandle) -> Client {
    let a = h.service_account();
    let mut cfg = ClientConfig::new(h.base_url().parse().expect("url"), a.email, a.api_token);
    cfg.requests_per_second = RATE;
    cfg.retry = RetryConfig {
        initial_backoff: Duration::from_millis(50),
        ..RetryConfig::default()
    };
    Client::new(cfg).expect("client")
}

async fn site() -> SimHandle {
    let h = confluence_sim::spawn(SimConfig {
        users: 400,
        domains: DOMAINS,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    h.set_knobs(Knobs {
        latency_ms: LATENCY_MS,
        rate_limit: Some(RateLimit {
            per_second: RATE,
            burst: RATE / 4,
        }),
        ..Knobs::default()
    });
    h
}

fn people(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("person{i}@{}", customer_domain(i % DOMAINS)))
        .collect()
}

fn report(what: &str, calls: u64, t: Duration, n: usize) {
    println!(
        "{what:<34} {calls:>7} calls {:>9.1} s  ({:.3} calls/person)",
        t.as_secs_f64(),
        calls as f64 / n as f64
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("KBGATE_BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    println!(
        "native reconcile, {n} people in {DOMAINS} domains, unlicensed delivery; simulator latency {LATENCY_MS} ms, rate limit {RATE}/s; concurrency {CONCURRENCY}"
    );

    // ---- kbgate ----
    let h = site().await;
    let dir = std::env::temp_dir().join(format!("kbgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let store = kbgate_store::open("sqlite://bench.db", &dir)
        .await
        .expect("store");
    let emails = people(n);
    for e in &emails {
        let domain = e.rsplit('@').next().unwrap_or("").to_owned();
        store
            .add_person(&PersonRecord {
                email: e.clone(),
                domain,
                source: "bench".into(),
                created_at: chrono::Utc::now(),
            })
            .await
            .expect("person");
    }
    let domains: Vec<Domain> = (0..DOMAINS)
        .map(|i| Domain::parse(&customer_domain(i)).expect("domain"))
        .collect();
    let policy = Policy::new(
        vec![Audience {
            name: AudienceName::parse("customers").expect("name"),
            domains,
            include_subdomains: false,
            spaces: vec![SpaceKey::parse("KB").expect("key")],
            labels: vec![],
            expires: None,
            delivery: Delivery::Unlicensed,
        }],
        vec![],
    )
    .expect("policy");
    let opts = ReconcileOptions {
        concurrency: CONCURRENCY,
        ..ReconcileOptions::default()
    };
    let r = Reconciler::new(client(&h), store.clone(), policy, opts);
    h.reset_stats();
    let t = Instant::now();
    let plan = r.plan().await.expect("plan");
    let s = r.apply(&plan, &NoProgress).await.expect("apply");
    let first = (h.stats(), t.elapsed());
    h.reset_stats();
    let t = Instant::now();
    let noop = r.plan().await.expect("plan");
    let second = (h.stats(), t.elapsed());
    assert!(noop.is_empty(), "no-op plan not empty: {noop}");
    println!(
        "kbgate: {} actions, {} failed, {} rate-limited answers",
        plan.actions.len(),
        s.failed,
        first.0.rate_limited
    );
    report("kbgate first apply (plan+apply)", first.0.total, first.1, n);
    report("kbgate no-op plan", second.0.total, second.1, n);
    let _ = std::fs::remove_dir_all(&dir);
    drop(h);

    // ---- naive: one access check and one creation per person ----
    let h = site().await;
    let c = client(&h);
    h.reset_stats();
    let t = Instant::now();
    futures::stream::iter(emails.iter())
        .for_each_concurrent(CONCURRENCY, |e| {
            let c = c.clone();
            async move {
                if let Ok(a) = c.check_access_by_email(&[e.as_str()]).await
                    && !a.emails_without_access.is_empty()
                {
                    let _ = c.create_site_user(e).await;
                }
            }
        })
        .await;
    let nfirst = (h.stats(), t.elapsed());
    h.reset_stats();
    let t = Instant::now();
    futures::stream::iter(emails.iter())
        .for_each_concurrent(CONCURRENCY, |e| {
            let c = c.clone();
            async move {
                let _ = c.check_access_by_email(&[e.as_str()]).await;
            }
        })
        .await;
    let nsecond = (h.stats(), t.elapsed());
    report("naive first apply", nfirst.0.total, nfirst.1, n);
    report("naive no-op check", nsecond.0.total, nsecond.1, n);
    println!(
        "ratio naive/kbgate: first apply {:.2}× calls, {:.2}× time; no-op {:.1}× calls, {:.1}× time",
        nfirst.0.total as f64 / first.0.total as f64,
        nfirst.1.as_secs_f64() / first.1.as_secs_f64(),
        nsecond.0.total as f64 / second.0.total.max(1) as f64,
        nsecond.1.as_secs_f64() / second.1.as_secs_f64(),
    );
}
