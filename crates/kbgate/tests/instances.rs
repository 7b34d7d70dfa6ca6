//! Issue #12, "Done when": three `kbgate serve` processes on one PostgreSQL (a fresh database,
//! each process its own data_dir, as on three machines), with background sync every few
//! seconds, driven through the simulator's `/_sim` control surface:
//!
//! - one instance syncs at a time (the sync rounds the processes log never overlap), and a
//!   round costs what one instance's round costs (the simulator counts the calls);
//! - every instance serves every page and every attachment (the bytes in PostgreSQL);
//! - a content change and a read restriction committed by whichever instance synced are
//!   served, respectively enforced, by every instance within the change-poll window;
//! - after `kill -9` of the instance holding the sync lease, another takes the lease once it
//!   expires and syncs.
//!
//! Runs (never skips) under `CI=true`; every wait is a poll with a deadline.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use confluence_sim::{SimConfig, SimHandle};
use kbgate_store::Store;
use kbgate_store::testing::TestStore;

const API_KEY: &str = "instances-test-api-key-0123456789abcdefghij";
const INTERVAL: Duration = Duration::from_secs(3);
const LEASE_TTL: Duration = Duration::from_secs(5);
const DONE: &str = "background sync done";
/// Generous bound for anything that takes a sync round or two (a loaded 2-core machine).
const ROUNDS: Duration = Duration::from_secs(60);

struct Instance {
    server: Server,
    /// Its own directory (config, data_dir), removed with it.
    _dir: tempfile::TempDir,
}

struct Cluster {
    sim: SimHandle,
    db: TestStore,
    instances: Vec<Option<Instance>>,
    rt: tokio::runtime::Runtime,
}

fn config(sim: &SimHandle, db_url: &str, addr: SocketAddr) -> String {
    format!(
        r#"
[confluence]
base_url = "{base}"
email = "{email}"
api_token_file = "token"
requests_per_second = 0

[store]
url = "{db_url}"
data_dir = "data"

[sync]
interval = "{interval}s"
lease_ttl = "{ttl}s"

[portal]
listen = "{addr}"

[embed]
issuer = "https://app.example.com"
audience = "kbgate"
algorithm = "HS256"
secret_file = "embed-secret"
api_key_file = "api-key"

[[audience]]
name = "hooli"
domains = ["hooli.com"]
spaces = ["KB"]

[[audience]]
name = "initech"
domains = ["initech.io"]
spaces = ["API"]
"#,
        base = sim.base_url(),
        email = sim.service_account().email,
        interval = INTERVAL.as_secs(),
        ttl = LEASE_TTL.as_secs(),
    )
}

impl Cluster {
    fn new() -> Cluster {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = rt
            .block_on(confluence_sim::spawn(SimConfig::default()))
            .expect("sim");
        let db = rt
            .block_on(kbgate_store::testing::postgres())
            .expect("PostgreSQL (this test needs it; it fails under CI=true when unreachable)");
        Cluster {
            sim,
            db,
            instances: Vec::new(),
            rt,
        }
    }

    /// Starts one more `kbgate serve` in a directory of its own (its own data_dir).
    fn start(&mut self) -> usize {
        let dir = tempfile::tempdir().expect("tempdir");
        let creds = self.sim.service_account();
        std::fs::write(dir.path().join("token"), &creds.api_token).expect("token");
        std::fs::write(dir.path().join("api-key"), API_KEY).expect("api key");
        std::fs::write(
            dir.path().join("embed-secret"),
            "instances-test-embed-secret-0123456789abcdef",
        )
        .expect("secret");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        std::fs::write(
            dir.path().join("kbgate.toml"),
            config(&self.sim, &self.db.url, addr),
        )
        .expect("config");
        let server = Server::start(dir.path(), addr, &[]);
        self.instances.push(Some(Instance { server, _dir: dir }));
        self.instances.len() - 1
    }

    fn running(&self) -> impl Iterator<Item = (usize, &Instance)> {
        self.instances
            .iter()
            .enumerate()
            .filter_map(|(i, x)| x.as_ref().map(|x| (i, x)))
    }

    fn store(&self) -> Arc<dyn Store> {
        let dir = tempfile::tempdir().expect("tempdir");
        self.rt
            .block_on(kbgate_store::open(&self.db.url, dir.path()))
            .expect("open the shared store")
    }

    /// `POST`/`PUT`/`DELETE` on the simulator's control surface.
    fn control(&self, method: &str, path: &str, body: serde_json::Value) -> u16 {
        let url: url::Url = self.sim.base_url().parse().expect("sim url");
        let addr: SocketAddr = format!(
            "{}:{}",
            url.host_str().expect("host"),
            url.port_or_known_default().expect("port")
        )
        .parse()
        .expect("sim address");
        let body = body.to_string();
        request(
            addr,
            method,
            &format!("/_sim{path}"),
            &[("content-type", "application/json")],
            &body,
        )
        .unwrap_or_else(|e| panic!("{method} /_sim{path}: {e}"))
        .status
    }

    /// Every instance's log, for failure messages.
    fn logs(&self) -> String {
        self.running()
            .map(|(i, x)| format!("--- instance {i}:\n{}", x.server.log()))
            .collect()
    }
}

/// The `(end, elapsed, calls)` of every sync round an instance's log reports as done.
fn rounds(log: &str) -> Vec<(DateTime<Utc>, Duration, u64)> {
    log.lines()
        .filter(|l| l.contains(DONE))
        .map(|l| {
            let at = l.split_whitespace().next().unwrap_or_default();
            let at = DateTime::parse_from_rfc3339(at)
                .unwrap_or_else(|e| panic!("no timestamp in {l:?}: {e}"))
                .with_timezone(&Utc);
            (
                at,
                Duration::from_millis(field(l, "elapsed_ms")),
                field(l, "calls"),
            )
        })
        .collect()
}

/// A numeric `name=N` field of a log line.
fn field(line: &str, name: &str) -> u64 {
    let key = format!("{name}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&key))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
}

/// Current pages of `key` that no read restriction covers, and their attachments' ids and
/// bytes: what every instance must serve.
fn open_content(sim: &SimHandle, key: &str) -> (Vec<u64>, Vec<(u64, bytes::Bytes)>) {
    sim.state().read(|s| {
        let space = s
            .spaces
            .values()
            .find(|sp| sp.key == key)
            .expect("space")
            .id;
        let pages: Vec<u64> = s
            .pages
            .values()
            .filter(|p| p.space_id == space && p.status.as_str() == "current")
            .filter(|p| !s.is_effectively_restricted(p.id))
            .map(|p| p.id)
            .collect();
        let attachments = s
            .attachments
            .values()
            .filter(|a| pages.contains(&a.page_id))
            .filter(|a| a.status.as_str() == "current")
            .map(|a| (a.id, a.bytes.clone()))
            .collect();
        (pages, attachments)
    })
}

fn service_account_id(sim: &SimHandle) -> String {
    let email = sim.service_account().email;
    sim.state().read(|s| {
        s.users
            .values()
            .find(|u| u.email == email)
            .map(|u| u.account_id.clone())
            .expect("service account")
    })
}

/// The pid in a lease holder's name (`kbgate pid N on HOST (…)`).
fn holder_pid(holder: &str) -> u32 {
    holder
        .strip_prefix("kbgate pid ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in lease holder {holder:?}"))
}

fn wait_until(what: &str, cluster: &Cluster, timeout: Duration, mut f: impl FnMut() -> bool) {
    assert!(
        eventually(timeout, &mut f),
        "never: {what}\n{}",
        cluster.logs()
    );
}

#[test]
fn three_instances_on_one_postgresql() {
    let mut c = Cluster::new();
    let (kb_pages, kb_files) = open_content(&c.sim, "KB");
    let (api_pages, api_files) = open_content(&c.sim, "API");
    assert!(kb_pages.len() > 3 && !api_pages.is_empty());

    // --- One instance first: its rounds are the yardstick. Its first round is a full sync,
    // the next ones find nothing new.
    let first = c.start();
    wait_until("two rounds of the first instance", &c, ROUNDS, || {
        rounds(&c.instances[first].as_ref().unwrap().server.log()).len() >= 2
    });
    let one_round = rounds(&c.instances[first].as_ref().unwrap().server.log())[1].2;
    assert!(one_round > 0);

    // --- Two more, each with its own data_dir.
    c.start();
    c.start();
    let cookies: Vec<(String, String)> = c
        .running()
        .map(|(_, x)| {
            (
                x.server.sign_in(API_KEY, "probe@hooli.com", "/"),
                x.server.sign_in(API_KEY, "probe@initech.io", "/"),
            )
        })
        .collect();

    // Every instance serves every page of both spaces (the ones the first instance synced).
    for ((i, x), (kb, api)) in c.running().zip(&cookies) {
        for (pages, cookie) in [(&kb_pages, kb), (&api_pages, api)] {
            for id in pages {
                assert_eq!(
                    x.server.status(&format!("/pages/{id}"), cookie),
                    200,
                    "instance {i}, page {id}\n{}",
                    c.logs()
                );
            }
        }
    }

    // --- Calls per round. Between two quiet moments (just after a round was logged; the next
    // comes an interval later), three rounds by whichever instances: the simulator counted
    // exactly three single-instance rounds, each logged by one instance, none overlapping.
    let all_rounds = |c: &Cluster| -> Vec<(usize, DateTime<Utc>, Duration, u64)> {
        let mut v: Vec<_> = c
            .running()
            .flat_map(|(i, x)| {
                rounds(&x.server.log())
                    .into_iter()
                    .map(move |(at, took, calls)| (i, at, took, calls))
            })
            .collect();
        v.sort_by_key(|r| r.1);
        v
    };
    let seen = all_rounds(&c).len();
    wait_until("a round after the start", &c, ROUNDS, || {
        all_rounds(&c).len() > seen
    });
    c.sim.reset_stats();
    let from = all_rounds(&c).len();
    wait_until("three more rounds", &c, ROUNDS, || {
        all_rounds(&c).len() >= from + 3
    });
    let stats = c.sim.stats();
    let window: Vec<_> = all_rounds(&c)[from..from + 3].to_vec();
    assert_eq!(
        stats.total,
        3 * one_round,
        "three rounds of {one_round} calls; rounds {window:?}; {stats:?}\n{}",
        c.logs()
    );
    for r in &window {
        assert_eq!(r.3, one_round, "a round's calls: {window:?}");
    }
    // One instance syncs at a time: no two logged rounds overlap, over the whole test so far.
    let every = all_rounds(&c);
    for pair in every.windows(2) {
        let (_, end_a, _, _) = pair[0];
        let (j, end_b, took_b, _) = pair[1];
        let start_b = end_b - chrono::Duration::from_std(took_b).unwrap();
        assert!(
            start_b >= end_a,
            "instance {j}'s round started before the previous one ended: {pair:?}"
        );
    }
    // The instances that did not sync said once why.
    let idle = c
        .running()
        .filter(|(_, x)| {
            x.server
                .log()
                .contains("another process synced every space")
        })
        .count();
    assert!(idle >= 1, "{}", c.logs());

    // --- A content change, then a restriction, through /_sim: served, then enforced, by
    // every instance within the change-poll window of the first one that shows it.
    let edited = kb_pages[1];
    let marker = "rounds-marker-7c1f";
    assert_eq!(
        c.control(
            "PUT",
            &format!("/pages/{edited}"),
            serde_json::json!({ "body": format!("<p>{marker}</p>") })
        ),
        200
    );
    let shows = |c: &Cluster, i: usize| {
        let x = c.instances[i].as_ref().unwrap();
        x.server
            .get(&format!("/pages/{edited}"), Some(&cookies[i].0))
            .is_ok_and(|r| r.status == 200 && r.body.contains(marker))
    };
    wait_until("the edit served somewhere", &c, ROUNDS, || {
        (0..3).any(|i| shows(&c, i))
    });
    std::thread::sleep(kbgate_store::CHANGE_POLL + Duration::from_millis(100));
    for i in 0..3 {
        assert!(
            shows(&c, i),
            "instance {i} does not serve the edit\n{}",
            c.logs()
        );
    }

    let restricted = kb_pages[2];
    assert_eq!(
        c.control(
            "POST",
            &format!("/pages/{restricted}/restrictions"),
            serde_json::json!({ "user": service_account_id(&c.sim) })
        ),
        204
    );
    let refuses = |c: &Cluster, i: usize| {
        let x = c.instances[i].as_ref().unwrap();
        x.server
            .status(&format!("/pages/{restricted}"), &cookies[i].0)
            != 200
    };
    wait_until("the restriction enforced somewhere", &c, ROUNDS, || {
        (0..3).any(|i| refuses(&c, i))
    });
    std::thread::sleep(kbgate_store::CHANGE_POLL + Duration::from_millis(100));
    for (i, (kb, _)) in cookies.iter().enumerate() {
        assert!(
            refuses(&c, i),
            "instance {i} serves the restricted page\n{}",
            c.logs()
        );
        let status = c.instances[i]
            .as_ref()
            .unwrap()
            .server
            .status(&format!("/pages/{restricted}"), kb);
        assert!(matches!(status, 403 | 404), "instance {i}: {status}");
    }

    // --- kill -9 of the instance holding the lease, mid-sync (each call slowed down so a
    // round lasts long enough to be caught). Its lease outlives it; once that expires,
    // another instance takes it and syncs.
    assert_eq!(
        c.control("POST", "/knobs", serde_json::json!({ "latency_ms": 150 })),
        200
    );
    let store = c.store();
    let deadline = Instant::now() + ROUNDS;
    let holder = loop {
        if let Some(h) = c.rt.block_on(store.sync_lease_holder("KB")).expect("lease") {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "never caught a sync\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let pid = holder_pid(&holder.holder);
    let victim = c
        .running()
        .find(|(_, x)| x.server.pid() == pid)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("the holder {holder:?} is none of ours"));
    let killed_at = Utc::now();
    let mut gone = c.instances[victim].take().unwrap();
    gone.server.kill_hard();
    // The dead holder's lease is still there until it expires.
    if let Some(h) = c.rt.block_on(store.sync_lease_holder("KB")).expect("lease") {
        assert_eq!(holder_pid(&h.holder), pid);
    }
    wait_until(
        "another instance syncs KB after the kill",
        &c,
        LEASE_TTL + ROUNDS,
        || {
            c.rt.block_on(store.last_synced("KB"))
                .expect("last sync")
                .is_some_and(|l| holder_pid(&l.holder) != pid && l.synced_at > killed_at)
        },
    );
    let last = c.rt.block_on(store.last_synced("KB")).unwrap().unwrap();
    let taker = holder_pid(&last.holder);
    assert!(
        c.running().any(|(_, x)| x.server.pid() == taker),
        "{last:?}"
    );
    // The survivors still serve.
    for (i, x) in c.running() {
        assert_eq!(
            x.server
                .status(&format!("/pages/{}", kb_pages[0]), &cookies[i].0),
            200
        );
    }
    drop(gone);
    assert_eq!(
        c.control("POST", "/knobs", serde_json::json!({ "latency_ms": 0 })),
        200
    );

    // --- Every attachment from every instance, each with its own data_dir: the bytes live in
    // PostgreSQL (`PgBlobs`, issue #12 item 2, branch `pgblobs`, merged here). Without it, the
    // instances that did not download a file answer 500 for it (seen before the merge).
    for (i, x) in c.running() {
        for (files, cookie) in [(&kb_files, &cookies[i].0), (&api_files, &cookies[i].1)] {
            for (id, bytes) in files.iter() {
                let r = x
                    .server
                    .get(&format!("/attachments/id/att{id}"), Some(cookie))
                    .expect("attachment");
                assert_eq!(
                    r.status,
                    200,
                    "instance {i}, attachment att{id}\n{}",
                    c.logs()
                );
                assert_eq!(
                    r.body,
                    String::from_utf8_lossy(bytes),
                    "instance {i}, att{id}"
                );
            }
        }
    }
}
