//! Retries are visible at `info`, one line per wave of refused calls (not one per call), so
//! a sync slowed by a 429 storm never looks hung; each call's retry stays at `debug`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confluence_client::*;
use confluence_sim::{Knobs, RateLimit, SimConfig, SimHandle};
use futures::{StreamExt, TryStreamExt};
use tracing_subscriber::fmt::MakeWriter;

/// Captured log output.
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
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn client(h: &SimHandle) -> Client {
    let acc = h.service_account();
    let mut cfg = ClientConfig::new(h.base_url().parse().unwrap(), acc.email, acc.api_token);
    cfg.requests_per_second = 0;
    cfg.retry = RetryConfig {
        max_retries: 8,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
        ..RetryConfig::default()
    };
    Client::new(cfg).unwrap()
}

/// One storm: `n` page reads at once while the site admits one call (then refuses the rest
/// with `Retry-After: 1`); the storm ends once every other call was refused, before the
/// retries are due, so they succeed.
async fn storm(h: &SimHandle, c: &Client, ids: &[String]) {
    h.reset_stats();
    h.set_knobs(Knobs {
        rate_limit: Some(RateLimit {
            per_second: 1,
            burst: 1,
        }),
        ..Knobs::default()
    });
    let refused = ids.len() as u64 - 1;
    let calls = futures::stream::iter(ids.iter())
        .map(|id| c.page(id, false))
        .buffer_unordered(ids.len())
        .try_collect::<Vec<_>>();
    let calm = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while h.stats().rate_limited < refused {
            assert!(Instant::now() < deadline, "the storm did not happen");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        h.set_knobs(Knobs::default());
    };
    let (pages, ()) = tokio::join!(calls, calm);
    assert_eq!(pages.unwrap().len(), ids.len());
}

#[tokio::test]
async fn one_info_line_per_wave_of_retries() {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .with_env_filter("confluence_client=debug")
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = confluence_sim::spawn(SimConfig::default()).await.unwrap();
    let c = client(&h);
    let space: Space = c.spaces(&[]).try_next().await.unwrap().unwrap();
    let ids: Vec<String> = h
        .state()
        .page_ids_in_space(&space.key)
        .into_iter()
        .take(10)
        .map(|id| id.to_string())
        .collect();
    assert_eq!(ids.len(), 10);
    h.state().record_arrivals(true);

    storm(&h, &c, &ids).await;
    storm(&h, &c, &ids).await;

    // The waves as the site saw them: refusals less than half a second after a wave's first
    // belong to it (its calls were sent together; their retries come a second later).
    let mut waves: Vec<(Instant, u64)> = Vec::new();
    for a in h
        .state()
        .arrivals()
        .iter()
        .filter(|a| a.status == Some(429))
    {
        match waves.last_mut() {
            Some((first, n)) if a.at.duration_since(*first) < Duration::from_millis(500) => *n += 1,
            _ => waves.push((a.at, 1)),
        }
    }
    assert!(waves.len() >= 2, "two storms: {waves:?}");
    let refused: u64 = waves.iter().map(|(_, n)| n).sum();

    let lines = log.lines();
    let info: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(" INFO ") && l.contains("retrying"))
        .collect();
    assert_eq!(
        info.len(),
        waves.len(),
        "one info line per wave: {info:#?}\nwaves {waves:?}"
    );
    for (line, (_, n)) in info.iter().zip(&waves) {
        assert!(line.contains("Confluence answered 429"), "{line}");
        assert!(
            line.contains(&format!("retrying {n} call(s) in")),
            "{line}\n{waves:?}"
        );
    }
    // Each call's retry at debug, with its endpoint.
    let debug = lines
        .iter()
        .filter(|l| l.contains("DEBUG") && l.contains("retrying Confluence call"))
        .count() as u64;
    assert_eq!(debug, refused, "{lines:#?}");
}
