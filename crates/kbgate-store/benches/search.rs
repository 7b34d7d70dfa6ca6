//! Search latency on a large mirror (ARCHITECTURE.md, "Performance budget": p99 < 10 ms on
//! 100,000 pages on SQLite, for every query kind below).
//!
//! `cargo bench -p kbgate-store --bench search` (env `KBGATE_BENCH_PAGES`, default 100000;
//! `KBGATE_BENCH_QUERIES`, queries per kind, default 1000, at least 100: the p99 of 200 was
//! the second slowest query, one scheduling hiccup of a shared machine away from doubling;
//! PostgreSQL too when `KBGATE_TEST_POSTGRES_URL` or the default test server is reachable).
//! Prints p50/p99 latency and the mean CPU time per query kind (load-independent: compare
//! runs on a busy machine by it); asserts nothing. For investigating plans:
//! `KBGATE_BENCH_BACKENDS=postgres` (or `sqlite`) runs one backend only, and
//! `KBGATE_BENCH_KEEP=1` keeps the databases (their URLs are printed) for psql or sqlite3, and
//! `KBGATE_BENCH_REUSE=URL` measures such a kept database again without seeding.

use std::time::{Duration, Instant};

use chrono::Utc;
use kbgate_store::testing::{self, TestStore};
use kbgate_store::*;

/// Deterministic xorshift, so every run indexes the same corpus.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Roughly Zipf-distributed index in 0..n (word frequencies of real text).
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
    }
}

fn vocabulary() -> Vec<String> {
    let syll = [
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "de",
    ];
    let mut words = Vec::new();
    for a in syll {
        for b in syll {
            for c in syll {
                words.push(format!("{a}{b}{c}"));
            }
        }
    }
    words
}

async fn seed(t: &TestStore, pages: usize) {
    let words = vocabulary();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let started = Instant::now();
    for (s, key) in [("S1", "KB"), ("S2", "OTHER")] {
        let space = SpaceRecord {
            id: s.into(),
            key: key.into(),
            name: key.into(),
            homepage_id: None,
            ..Default::default()
        };
        let mut sync = t.begin_space_sync(&space, SyncMode::Full).await.unwrap();
        let mut batch = Vec::new();
        for i in 0..pages / 2 {
            let text: Vec<&str> = (0..300)
                .map(|_| words[rng.zipf(words.len())].as_str())
                .collect();
            let title: Vec<&str> = (0..4)
                .map(|_| words[rng.zipf(words.len())].as_str())
                .collect();
            batch.push(PageRecord {
                id: format!("{s}-{i}"),
                space_id: s.into(),
                parent_id: (i > 0).then(|| format!("{s}-{}", i / 10)),
                position: i as i64,
                title: title.join(" "),
                version: 1,
                created_at: Utc::now(),
                updated_at: Utc::now(),
                labels: match (i % 3 == 0, i % 250 == 0) {
                    (true, true) => vec!["faq".into(), "pinned".into()],
                    (true, false) => vec!["faq".into()],
                    (false, true) => vec!["pinned".into()],
                    (false, false) => vec![],
                },
                restricted: i % 50 == 7,
                effective_restricted: i % 50 == 7,
                body_storage: String::new(),
                body_html: String::new(),
                body_text: text.join(" "),
                headings: vec![],
            });
            if batch.len() == 500 {
                sync.upsert_pages(std::mem::take(&mut batch)).await.unwrap();
            }
        }
        sync.upsert_pages(batch).await.unwrap();
        sync.commit(SyncState {
            space_key: key.into(),
            space_id: s.into(),
            watermark: None,
            last_full_sync: None,
            last_sync: None,
        })
        .await
        .unwrap();
    }
    eprintln!("  seeded {pages} pages in {:.1?}", started.elapsed());
}

/// One query shape of the mix: what a portal user types, in whose scope, which page.
struct Kind<'a> {
    name: &'static str,
    queries: Vec<String>,
    scope: &'a [ScopeEntry],
    offset: u32,
}

async fn measure(t: &dyn Store, pages: usize) {
    let runs: usize = std::env::var("KBGATE_BENCH_QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 100)
        .unwrap_or(1000);
    let words = vocabulary();
    // A viewer of all of S1 and the FAQ of S2 (a grant with labels).
    let scope = vec![
        ScopeEntry {
            space_id: "S1".into(),
            labels: None,
        },
        ScopeEntry {
            space_id: "S2".into(),
            labels: Some(vec!["faq".into()]),
        },
    ];
    // The same viewer with the search page's space filter (S1), and with its label filter
    // ("faq", in both spaces).
    let space_filter = vec![scope[0].clone()];
    let label_filter = vec![
        ScopeEntry {
            space_id: "S1".into(),
            labels: Some(vec!["faq".into()]),
        },
        scope[1].clone(),
    ];
    // A viewer who may only see the 200 pinned pages of S1, in the same big site.
    let small = vec![ScopeEntry {
        space_id: "S1".into(),
        labels: Some(vec!["pinned".into()]),
    }];
    let pairs = |a: std::ops::Range<usize>, b: usize| -> Vec<String> {
        words[a]
            .iter()
            .map(|w| format!("{w} {}", words[b]))
            .collect()
    };
    let kinds = [
        Kind {
            name: "common word",
            queries: words[..5].to_vec(),
            scope: &scope,
            offset: 0,
        },
        Kind {
            name: "mid word",
            queries: words[100..120].to_vec(),
            scope: &scope,
            offset: 0,
        },
        Kind {
            name: "rare word",
            queries: words[1500..1700].to_vec(),
            scope: &scope,
            offset: 0,
        },
        Kind {
            name: "two words",
            queries: pairs(20..40, 300),
            scope: &scope,
            offset: 0,
        },
        Kind {
            name: "two common words",
            queries: pairs(0..10, 12),
            scope: &scope,
            offset: 0,
        },
        Kind {
            name: "two rare words",
            queries: pairs(1500..1520, 900),
            scope: &scope,
            offset: 0,
        },
        Kind {
            name: "three words",
            queries: words[30..50]
                .iter()
                .map(|w| format!("{w} {} {}", words[200], words[5]))
                .collect(),
            scope: &scope,
            offset: 0,
        },
        // Quotes, as users paste them: no phrase syntax, the same words must all match.
        Kind {
            name: "quoted phrase",
            queries: words[50..70]
                .iter()
                .map(|w| format!("\"{w} {}\"", words[3]))
                .collect(),
            scope: &scope,
            offset: 0,
        },
        Kind {
            name: "no match",
            queries: (0..20).map(|i| format!("zz{i}qx")).collect(),
            scope: &scope,
            offset: 0,
        },
        Kind {
            name: "space filter, mid",
            queries: words[100..120].to_vec(),
            scope: &space_filter,
            offset: 0,
        },
        Kind {
            name: "label filter, mid",
            queries: words[100..120].to_vec(),
            scope: &label_filter,
            offset: 0,
        },
        Kind {
            name: "small scope, common",
            queries: words[..5].to_vec(),
            scope: &small,
            offset: 0,
        },
        Kind {
            name: "page 3, common",
            queries: words[..5].to_vec(),
            scope: &scope,
            offset: 40,
        },
    ];
    for kind in kinds {
        let cpu_before = cpu_time();
        let mut times: Vec<Duration> = Vec::new();
        for i in 0..runs {
            let q = &kind.queries[i % kind.queries.len()];
            let start = Instant::now();
            let res = t.search(q, kind.scope, 20, kind.offset).await.unwrap();
            times.push(start.elapsed());
            std::hint::black_box(res);
        }
        let cpu = cpu_before
            .zip(cpu_time())
            .map(|(a, b)| format!("{:>8.2?}", b.saturating_sub(a) / times.len() as u32))
            .unwrap_or_else(|| "     n/a".into());
        times.sort();
        let p99 = times[times.len() * 99 / 100];
        // The budget (ARCHITECTURE.md, "Performance budget"): p99 under 10 ms on 100,000
        // pages on SQLite; other sizes print no verdict.
        let verdict = if t.backend() == "sqlite" && pages == 100_000 {
            if p99 < Duration::from_millis(10) {
                "  p99 < 10 ms PASS"
            } else {
                "  p99 < 10 ms FAIL"
            }
        } else {
            ""
        };
        eprintln!(
            "  {:<8} {:<20} p50 {:>8.2?}  p99 {:>8.2?}  cpu/query {cpu}{verdict}",
            t.backend(),
            kind.name,
            times[times.len() / 2],
            p99
        );
    }
}

/// CPU time of this process's threads so far (Linux: `/proc/self/task/*/schedstat`, ns on
/// a CPU), or `None` elsewhere. Unlike the latencies it hardly moves with the machine's
/// load, so runs on a busy machine stay comparable. The database server's CPU
/// (PostgreSQL) is not in it.
fn cpu_time() -> Option<Duration> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(ns))
}

fn main() {
    let pages: usize = std::env::var("KBGATE_BENCH_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        eprintln!("search benchmark, {pages} pages");
        if let Ok(url) = std::env::var("KBGATE_BENCH_REUSE") {
            let dir = tempfile::tempdir().unwrap();
            let store = kbgate_store::open(&url, dir.path()).await.unwrap();
            measure(&*store, pages).await;
            return;
        }
        let backends = std::env::var("KBGATE_BENCH_BACKENDS").unwrap_or_default();
        let wanted = |b: &str| backends.is_empty() || backends.split(',').any(|x| x == b);
        if wanted("sqlite") {
            let t = testing::sqlite().await;
            seed(&t, pages).await;
            measure(&*t, pages).await;
            if std::env::var_os("KBGATE_BENCH_KEEP").is_some() {
                // An absolute path: `KBGATE_BENCH_REUSE` opens it as it is.
                eprintln!("  kept sqlite://{}/kbgate.db", t.data_dir().display());
                // Skips the drop that removes the directory.
                std::mem::forget(t);
            }
        }
        if !wanted("postgres") {
            return;
        }
        if let Some(t) = testing::postgres().await {
            seed(&t, pages).await;
            measure(&*t, pages).await;
            if std::env::var_os("KBGATE_BENCH_KEEP").is_some() {
                eprintln!("  kept {}", t.url);
                // Skips the drop that removes the database.
                std::mem::forget(t);
            }
        }
    });
}
