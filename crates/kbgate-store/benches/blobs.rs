//! Attachment bytes in and out: `PgBlobs` (PostgreSQL stores) against `LocalBlobs` (a
//! directory, SQLite stores), for one file of `KBGATE_BENCH_BLOB_MB` MB (default 20).
//!
//! `cargo bench -p kbgate-store --bench blobs` (PostgreSQL too when `KBGATE_TEST_POSTGRES_URL`
//! or the default test server is reachable). Writes arrive in 64 KiB pieces, as a download
//! does; "write again" is the same bytes a second time (hashed and dropped, the stored blob
//! renewed). Prints the median and best of `KBGATE_BENCH_RUNS` runs (default 5); asserts
//! nothing.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use kbgate_store::testing::{self, TestStore};
use kbgate_store::*;
use tokio::io::AsyncReadExt;

const PIECE: usize = 64 * 1024;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Incompressible bytes, different per `seed` (so each run writes a new blob).
fn bytes(len: usize, seed: u64) -> Bytes {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed.wrapping_mul(0xff51_afd7_ed55_8ccd);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

async fn write(blobs: &dyn BlobStore, data: &Bytes) -> (BlobRef, Duration) {
    let pieces: Vec<Result<Bytes, std::io::Error>> = (0..data.len())
        .step_by(PIECE)
        .map(|i| Ok(data.slice(i..(i + PIECE).min(data.len()))))
        .collect();
    let t = Instant::now();
    let blob = blobs
        .write_stream(futures::stream::iter(pieces).boxed())
        .await
        .expect("write");
    (blob, t.elapsed())
}

async fn read(blobs: &dyn BlobStore, blob: &BlobRef) -> Duration {
    let t = Instant::now();
    let mut reader = blobs.open(blob).await.expect("open");
    let mut buf = vec![0u8; PIECE];
    let mut total = 0usize;
    loop {
        let n = reader.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        total += n;
    }
    let elapsed = t.elapsed();
    assert_eq!(total as i64, blob.size());
    elapsed
}

fn line(what: &str, mb: f64, mut times: Vec<Duration>) {
    times.sort();
    let median = times[times.len() / 2].as_secs_f64();
    let best = times[0].as_secs_f64();
    println!(
        "  {what:<12} median {:>7.1} ms  {:>7.1} MB/s   best {:>7.1} ms  {:>7.1} MB/s",
        median * 1e3,
        mb / median,
        best * 1e3,
        mb / best
    );
}

async fn measure(name: &str, t: &TestStore, size: usize, runs: usize) {
    let mb = size as f64 / 1e6;
    println!("{name}: {runs} runs of {mb:.0} MB");
    let (mut writes, mut again, mut reads) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let data = bytes(size, run as u64);
        let (blob, w) = write(t.blobs(), &data).await;
        writes.push(w);
        again.push(write(t.blobs(), &data).await.1);
        reads.push(read(t.blobs(), &blob).await);
    }
    line("write", mb, writes);
    line("write again", mb, again);
    line("read", mb, reads);
}

#[tokio::main]
async fn main() {
    let size = env_usize("KBGATE_BENCH_BLOB_MB", 20) * 1_000_000;
    let runs = env_usize("KBGATE_BENCH_RUNS", 5).max(1);
    let local = testing::sqlite().await;
    measure(
        "LocalBlobs (SQLite store, data_dir/blobs)",
        &local,
        size,
        runs,
    )
    .await;
    if let Some(pg) = testing::postgres().await {
        measure("PgBlobs (PostgreSQL store)", &pg, size, runs).await;
    }
}
