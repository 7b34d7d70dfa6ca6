//! Several instances on one store spend one instance's Confluence calls (issue #12, item 3):
//! two services' background sync loops on one store, on both backends. The second instance's
//! round skips what the first synced within the interval, and while the first is syncing
//! (its leases held) the second's round makes no call at all — not even the spaces listing.
//! Deterministic: the simulator holds the first instance's sync where the test wants it, and
//! the test waits for the loops' log lines, never for time.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confluence_client::{Client, ClientConfig};
use confluence_sim::{SimConfig, SimHandle};
use kbgate_config::Config;
use kbgate_mirror::sync::confluence::ConfluenceSource;
use kbgate_service::{CancellationToken, Service, ServiceError};
use kbgate_store::Store;
use kbgate_store::testing::TestStore;
use tracing_subscriber::fmt::MakeWriter;

mod common;

use common::write_config;

/// The spaces listing, a round's first Confluence call.
const SPACES: &str = "GET /wiki/api/v2/spaces";

/// Captured log output of this test's thread (the runtime is single-threaded, so every task
/// of both services logs here).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn count(&self, needle: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits (bounded) until `needle` has been logged `n` times.
    async fn wait_for(&self, needle: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.count(needle) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never logged {n}× {needle:?}:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One instance: a service with its own store handle (as another process would open it).
struct Instance {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl Instance {
    async fn start(config: &Config, store: Arc<dyn Store>, sim: &SimHandle) -> Instance {
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
        let service = Service::new(config.clone(), store, listener)
            .expect("service")
            .with_sync(source)
            .with_config_poll(Duration::ZERO);
        let stop = CancellationToken::new();
        let task = tokio::spawn(service.run(stop.clone()));
        Instance { stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("stops promptly")
            .expect("no panic")
            .expect("clean stop");
    }
}

const DONE: &str = "background sync done";
const ELSEWHERE: &str = "another process synced every space within the interval";
const SKIPPED: &str = "background sync skipped";

async fn two_instances_spend_one_instances_calls(fresh: impl AsyncFn() -> TestStore) {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .with_env_filter("kbgate_service=debug")
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let sim = confluence_sim::spawn(SimConfig::default())
        .await
        .expect("sim");
    let tmp = tempfile::tempdir().expect("tempdir");
    write_config(tmp.path(), &sim, r#""acme.com""#, r#"interval = "1h""#);
    let config = Config::load(&tmp.path().join("kbgate.toml")).expect("config");

    // One instance: its first round is what one instance spends.
    let t = fresh().await;
    sim.reset_stats();
    let a = Instance::start(&config, t.reopen().await.expect("store"), &sim).await;
    log.wait_for(DONE, 1).await;
    let one = sim.stats();
    assert!(one.total > 0);
    assert_eq!(one.by_endpoint.get(SPACES), Some(&1), "{one:?}");

    // A second instance on the same store, started after that round: its first round finds
    // every space synced within the interval and makes no call. It says so once, at info.
    let b = Instance::start(&config, t.reopen().await.expect("store"), &sim).await;
    log.wait_for(ELSEWHERE, 1).await;
    assert_eq!(sim.stats(), one, "the second instance made calls");
    assert_eq!(log.count(DONE), 1, "{}", log.text());
    b.stop().await;
    a.stop().await;

    // Started together on a fresh store: the first holds both spaces' leases while the
    // simulator holds its spaces listing; the second's round, meanwhile, makes no call.
    let t = fresh().await;
    sim.reset_stats();
    sim.state().hold_after(SPACES, 0);
    let a = Instance::start(&config, t.reopen().await.expect("store"), &sim).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sim.state().held() < 1 {
        assert!(tokio::time::Instant::now() < deadline, "never held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b = Instance::start(&config, t.reopen().await.expect("store"), &sim).await;
    log.wait_for(SKIPPED, 1).await;
    assert!(
        log.text().contains("another sync of this space is running"),
        "{}",
        log.text()
    );
    sim.state().release();
    log.wait_for(DONE, 2).await;
    assert_eq!(
        sim.stats(),
        one,
        "two instances started together spent more than one instance"
    );
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn sqlite_two_instances_spend_one_instances_calls() {
    two_instances_spend_one_instances_calls(kbgate_store::testing::sqlite).await;
}

#[tokio::test]
async fn postgres_two_instances_spend_one_instances_calls() {
    if kbgate_store::testing::postgres().await.is_none() {
        return; // skipped (never under CI=true: it fails there)
    }
    two_instances_spend_one_instances_calls(async || {
        kbgate_store::testing::postgres()
            .await
            .expect("PostgreSQL was reachable a moment ago")
    })
    .await;
}
