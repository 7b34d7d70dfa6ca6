//! The [`BlobStore`] contract, run against both implementations: [`LocalBlobs`] (what a
//! SQLite store uses) and `PgBlobs` (what a PostgreSQL store uses; really run when `CI=true`).
//! Each test takes a store and speaks only through `t.blobs()`, so a new implementation
//! (object storage) is tested by adding it here.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kbgate_store::testing::TestStore;
use kbgate_store::*;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

kbgate_store::store_tests!(
    bytes_round_trip_across_chunk_boundaries,
    same_bytes_are_stored_once,
    empty_blob_round_trips,
    over_the_cap_nothing_is_kept,
    failing_source_keeps_nothing,
    a_blob_being_written_is_invisible_until_complete,
    missing_blobs_are_reported_in_one_call,
    unreferenced_blobs_go_after_the_grace_and_rewrites_renew_it,
    concurrent_writes_of_the_same_bytes_agree,
);

/// Deterministic, non-repeating bytes (so a misplaced chunk changes the hash).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `bytes` as a source of uneven pieces (not aligned with any store's chunking).
fn pieces(bytes: &[u8], piece: usize) -> Vec<Result<Bytes, std::io::Error>> {
    bytes
        .chunks(piece)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect()
}

async fn read_all(blobs: &dyn BlobStore, blob: &BlobRef) -> Vec<u8> {
    let mut reader = blobs.open(blob).await.expect("open");
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.expect("read");
    out
}

/// How many things a sweep with no grace, keeping `keep`, would remove (and removes).
async fn leftovers(blobs: &dyn BlobStore, keep: &[&BlobRef]) -> u64 {
    let referenced: HashSet<String> = keep.iter().map(|b| b.sha256().to_owned()).collect();
    blobs
        .remove_unreferenced(&referenced, Duration::ZERO)
        .await
        .expect("sweep")
}

async fn bytes_round_trip_across_chunk_boundaries(t: &TestStore) {
    let blobs = t.blobs();
    // 2.5 MiB plus a byte, in 300,007-byte pieces: crosses every 1 MiB chunk boundary
    // mid-piece and ends in a short chunk.
    let bytes = pattern(5 * 512 * 1024 + 1, 1);
    let blob = blobs
        .write_stream(futures::stream::iter(pieces(&bytes, 300_007)))
        .await
        .unwrap();
    assert_eq!(blob.size(), bytes.len() as i64);
    assert_eq!(blob.sha256(), sha_hex(&bytes));
    assert!(blobs.exists(&blob).await.unwrap());
    assert_eq!(read_all(blobs, &blob).await, bytes);
    // Exactly one chunk's worth too.
    let exact = pattern(1024 * 1024, 2);
    let b2 = blobs.write_bytes(&exact).await.unwrap();
    assert_eq!(read_all(blobs, &b2).await, exact);
}

async fn same_bytes_are_stored_once(t: &TestStore) {
    let blobs = t.blobs();
    let bytes = pattern(1_500_000, 3);
    let a = blobs
        .write_stream(futures::stream::iter(pieces(&bytes, 4096)))
        .await
        .unwrap();
    let b = blobs.write_bytes(&bytes).await.unwrap();
    assert_eq!(a, b, "content-addressed");
    assert_eq!(read_all(blobs, &a).await, bytes);
    // One copy: with nothing referenced and no grace, exactly one blob goes.
    assert_eq!(leftovers(blobs, &[]).await, 1);
    assert!(!blobs.exists(&a).await.unwrap());
}

async fn empty_blob_round_trips(t: &TestStore) {
    let blobs = t.blobs();
    let blob = blobs.write_bytes(b"").await.unwrap();
    assert_eq!(blob.size(), 0);
    assert_eq!(blob.sha256(), sha_hex(b""));
    assert!(blobs.exists(&blob).await.unwrap());
    assert!(read_all(blobs, &blob).await.is_empty());
}

async fn over_the_cap_nothing_is_kept(t: &TestStore) {
    let blobs = t.blobs();
    // More than a chunk arrives before the cap is passed: what was written goes too.
    let bytes = pattern(3 * 1024 * 1024, 4);
    let err = blobs
        .write_stream_capped(
            futures::stream::iter(pieces(&bytes, 256 * 1024)),
            Some(2 * 1024 * 1024 + 5),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::BlobTooLarge { cap } if cap == 2 * 1024 * 1024 + 5),
        "{err}"
    );
    let whole = BlobRef::parse(&sha_hex(&bytes), bytes.len() as i64).unwrap();
    assert!(!blobs.exists(&whole).await.unwrap());
    assert_eq!(leftovers(blobs, &[]).await, 0, "nothing kept");
    // At the cap exactly: stored.
    let fits = blobs
        .write_stream_capped(
            futures::stream::iter(pieces(&bytes[..1000], 300)),
            Some(1000),
        )
        .await
        .unwrap();
    assert_eq!(fits.size(), 1000);
}

async fn failing_source_keeps_nothing(t: &TestStore) {
    let blobs = t.blobs();
    let mut source = pieces(&pattern(2 * 1024 * 1024 + 10, 5), 500_000);
    source.push(Err(std::io::Error::other("connection reset")));
    let err = blobs
        .write_stream(futures::stream::iter(source))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::BlobSource(m) if m.contains("connection reset")),
        "{err}"
    );
    assert_eq!(leftovers(blobs, &[]).await, 0, "nothing kept");
    // Opening bytes that are not there is the typed "missing", not an I/O error.
    let absent = BlobRef::parse(&sha_hex(b"never written"), 13).unwrap();
    assert!(matches!(
        blobs.open(&absent).await.err(),
        Some(StoreError::BlobMissing(h)) if h == absent.sha256()
    ));
}

async fn a_blob_being_written_is_invisible_until_complete(t: &TestStore) {
    let store = t.store.clone();
    let bytes = pattern(2 * 1024 * 1024 + 77, 6);
    let blob = BlobRef::parse(&sha_hex(&bytes), bytes.len() as i64).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let writer = tokio::spawn(async move {
        let source = tokio_stream_from(rx);
        store.blobs().write_stream(source).await
    });
    // Two chunks' worth in, the rest held back.
    let (first, rest) = bytes.split_at(2 * 1024 * 1024);
    tx.send(Ok(Bytes::copy_from_slice(first))).await.unwrap();
    // The writer has taken the first piece once the channel has room again.
    tx.reserve().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!t.blobs().exists(&blob).await.unwrap());
    assert!(matches!(
        t.blobs().open(&blob).await.err(),
        Some(StoreError::BlobMissing(_))
    ));
    assert!(
        t.blobs()
            .missing(std::slice::from_ref(&blob))
            .await
            .unwrap()
            .contains(blob.sha256())
    );
    // A sweep with a grace keeps the write in progress.
    assert_eq!(
        t.blobs()
            .remove_unreferenced(&HashSet::new(), Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tx.send(Ok(Bytes::copy_from_slice(rest))).await.unwrap();
    drop(tx);
    let written = writer.await.unwrap().unwrap();
    assert_eq!(written, blob);
    assert_eq!(read_all(t.blobs(), &blob).await, bytes);
}

/// A stream over a channel's receiver.
fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> futures::stream::BoxStream<'static, T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) }).boxed()
}

async fn missing_blobs_are_reported_in_one_call(t: &TestStore) {
    let blobs = t.blobs();
    let a = blobs.write_bytes(b"alpha").await.unwrap();
    let b = blobs.write_bytes(b"bravo").await.unwrap();
    let c = BlobRef::parse(&sha_hex(b"charlie"), 7).unwrap();
    let missing = blobs
        .missing(&[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    assert_eq!(missing, [c.sha256().to_owned()].into_iter().collect());
    assert!(blobs.missing(&[]).await.unwrap().is_empty());
    // Someone deletes one (a sweep that does not know it): now it is reported.
    assert_eq!(leftovers(blobs, &[&a]).await, 1);
    let missing = blobs.missing(&[a.clone(), b.clone()]).await.unwrap();
    assert_eq!(missing, [b.sha256().to_owned()].into_iter().collect());
}

async fn unreferenced_blobs_go_after_the_grace_and_rewrites_renew_it(t: &TestStore) {
    let blobs = t.blobs();
    let kept = blobs.write_bytes(b"kept").await.unwrap();
    let gone = blobs.write_bytes(b"gone").await.unwrap();
    let renewed = blobs.write_bytes(b"renewed").await.unwrap();
    let referenced: HashSet<String> = [kept.sha256().to_owned()].into_iter().collect();
    // Within the grace nothing goes (a sync may not have committed it yet).
    assert_eq!(
        blobs
            .remove_unreferenced(&referenced, Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    // Age the three past a short grace, then write one of them again: that renews it.
    let grace = Duration::from_millis(1500);
    tokio::time::sleep(grace + Duration::from_millis(300)).await;
    assert_eq!(blobs.write_bytes(b"renewed").await.unwrap(), renewed);
    assert_eq!(
        blobs.remove_unreferenced(&referenced, grace).await.unwrap(),
        1,
        "only the old unreferenced blob goes"
    );
    assert!(blobs.exists(&kept).await.unwrap());
    assert!(!blobs.exists(&gone).await.unwrap());
    assert!(blobs.exists(&renewed).await.unwrap());
    assert_eq!(read_all(blobs, &renewed).await, b"renewed");
    assert_eq!(
        blobs
            .remove_unreferenced(&referenced, Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    assert!(!blobs.exists(&renewed).await.unwrap());
    assert!(blobs.exists(&kept).await.unwrap());
}

async fn concurrent_writes_of_the_same_bytes_agree(t: &TestStore) {
    let bytes = pattern(1_300_000, 7);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = t.store.clone();
        let bytes = bytes.clone();
        tasks.push(tokio::spawn(async move {
            let source = futures::stream::iter(pieces(&bytes, 100_000 + i * 7919));
            store.blobs().write_stream(source).await
        }));
    }
    let mut refs = HashSet::new();
    for task in tasks {
        refs.insert(task.await.unwrap().unwrap());
    }
    assert_eq!(refs.len(), 1);
    let blob = refs.into_iter().next().unwrap();
    assert_eq!(read_all(t.blobs(), &blob).await, bytes);
    assert_eq!(
        leftovers(t.blobs(), &[&blob]).await,
        0,
        "one copy, no stray writes"
    );
}
