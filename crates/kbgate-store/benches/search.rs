//! Search latency on a large mirror (ARCHITECTURE.md, "Performance budget": p99 < 20 ms on 100,000 pages).
//!
//! `cargo bench -p kbgate-store --bench search` (env `KBGATE_BENCH_PAGES`, default 100000;
//! PostgreSQL too when `KBGATE_TEST_POSTGRES_URL` or the default test server is reachable).
//! Prints p50/p99 per query kind; asserts nothing. For investigating plans:
//! `KBGATE_BENCH_BACKENDS=postgres` (or `sqlite`) runs one backend only, and
//! `KBGATE_BENCH_KEEP=1` keeps the PostgreSQL database (its URL is printed) for psql, and
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

async fn measure(t: &dyn Store) {
    let words = vocabulary();
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
    // A viewer who may only see the 200 pinned pages of S1, in the same big site.
    let small = vec![ScopeEntry {
        space_id: "S1".into(),
        labels: Some(vec!["pinned".into()]),
    }];
    let two_words: Vec<String> = words[20..40]
        .iter()
        .map(|w| format!("{w} {}", words[300]))
        .collect();
    let kinds: [(&str, Vec<String>, &[ScopeEntry]); 5] = [
        ("common word", words[..5].to_vec(), &scope),
        ("mid word", words[100..120].to_vec(), &scope),
        ("rare word", words[1500..1700].to_vec(), &scope),
        ("two words", two_words, &scope),
        ("small scope, common", words[..5].to_vec(), &small),
    ];
    for (kind, queries, scope) in kinds {
        let mut times: Vec<Duration> = Vec::new();
        for i in 0..200 {
            let q = &queries[i % queries.len()];
            let start = Instant::now();
            let res = t.search(q, scope, 20, 0).await.unwrap();
            times.push(start.elapsed());
            std::hint::black_box(res);
        }
        times.sort();
        eprintln!(
            "  {:<8} {kind:<20} p50 {:>8.2?}  p99 {:>8.2?}",
            t.backend(),
            times[times.len() / 2],
            times[times.len() * 99 / 100]
        );
    }
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
            measure(&*store).await;
            return;
        }
        let backends = std::env::var("KBGATE_BENCH_BACKENDS").unwrap_or_default();
        let wanted = |b: &str| backends.is_empty() || backends.split(',').any(|x| x == b);
        if wanted("sqlite") {
            let t = testing::sqlite().await;
            seed(&t, pages).await;
            measure(&*t).await;
        }
        if !wanted("postgres") {
            return;
        }
        if let Some(t) = testing::postgres().await {
            seed(&t, pages).await;
            measure(&*t).await;
            if std::env::var_os("KBGATE_BENCH_KEEP").is_some() {
                eprintln!("  kept {}", t.url);
                // Skips the drop that removes the database.
                std::mem::forget(t);
            }
        }
    });
}
