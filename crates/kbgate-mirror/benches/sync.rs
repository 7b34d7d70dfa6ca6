//! Sync benchmark (not a test): a full sync of one 10,000-page space against the simulator,
//! then incremental syncs with 0 and with 10 changed pages. Prints Confluence calls (the
//! scarce resource, counted by the simulator) and wall time.
//!
//! `cargo bench -p kbgate-mirror --bench sync` (env `SYNC_BENCH_PAGES` to change the size,
//! `SYNC_BENCH_LATENCY_MS` to add simulated latency per call).

use std::time::Instant;

use confluence_client::{Client, ClientConfig};
use confluence_sim::{SimConfig, spawn};
use kbgate_mirror::sync::{Progress, SyncOptions, confluence::ConfluenceSource, sync_spaces};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    // Phase timings of the engine go to the log (RUST_LOG=info to see them).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let pages = env_usize("SYNC_BENCH_PAGES", 10_000);
    let latency = env_usize("SYNC_BENCH_LATENCY_MS", 0) as u64;
    let sim = spawn(SimConfig {
        seed: "sync-bench".into(),
        spaces: 1,
        pages,
        users: 200,
        domains: 5,
        latency: std::time::Duration::from_millis(latency),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let key: String = sim
        .state()
        .read(|s| s.spaces.values().next().map(|sp| sp.key.clone()))
        .expect("a space");
    let creds = sim.service_account();
    let mut cfg = ClientConfig::new(
        sim.base_url().parse().expect("url"),
        creds.email,
        creds.api_token,
    );
    cfg.requests_per_second = 0;
    let source = ConfluenceSource::new(Client::new(cfg).expect("client"));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = kbgate_store::open(
        &format!("sqlite://{}", dir.path().join("bench.db").display()),
        dir.path(),
    )
    .await
    .expect("store");
    let keys = vec![key.clone()];
    let (visible, attachments) = sim.state().read(|s| (s.pages.len(), s.attachments.len()));
    println!(
        "site: 1 space ({key}), {visible} pages, {attachments} attachments, latency {latency} ms/call"
    );

    let run = async |label: &str, full: bool| {
        sim.reset_stats();
        let t = Instant::now();
        let report = sync_spaces(
            &source,
            &*store,
            &keys,
            &SyncOptions {
                full,
                ..SyncOptions::default()
            },
            &Progress::quiet(),
        )
        .await
        .expect("sync");
        let elapsed = t.elapsed();
        let stats = sim.stats();
        let s = &report.spaces[0];
        println!(
            "{label:<28} {:>6} calls {:>8.2} s   pages +{} ~{} -{}  attachments +{} ~{}",
            stats.total,
            elapsed.as_secs_f64(),
            s.pages_added,
            s.pages_changed,
            s.pages_removed,
            s.attachments_added,
            s.attachments_changed
        );
        for (endpoint, n) in &stats.by_endpoint {
            println!("    {n:>6}  {endpoint}");
        }
    };

    run("full sync", true).await;
    let mirrored = store.mirror_stats().await.expect("stats");
    let lower = mirrored.pages.div_ceil(250)
        + mirrored.pages.div_ceil(200)
        + mirrored.attachments.div_ceil(200)
        + mirrored.stored_blobs;
    println!(
        "    mirror: {} pages ({} restricted), {} attachments; lower bound ≈ {lower} calls (+1 spaces listing)",
        mirrored.pages, mirrored.restricted_pages, mirrored.attachments
    );
    run("incremental, 0 changes", false).await;
    let ids = sim.state().page_ids_in_space(&key);
    for id in ids.iter().take(10) {
        sim.state()
            .edit_page(*id, None, Some(format!("<p>changed {id}</p>")))
            .expect("edit");
    }
    run("incremental, 10 changed", false).await;
}
