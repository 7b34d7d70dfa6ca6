//! Content-addressed storage of attachment bytes: the [`BlobStore`] trait (the seam where
//! object storage would go), [`LocalBlobs`], the directory `data_dir/blobs/` (SQLite stores),
//! and `PgBlobs` in `crate::postgres` (PostgreSQL stores: every instance reads the same bytes).
//!
//! A blob is named by the lowercase hex SHA-256 of its bytes ([`BlobRef`]). Blobs are
//! immutable and written outside any mirror (sync) transaction; the ones no attachment refers to
//! any more are removed by [`BlobStore::remove_unreferenced`] once older than a grace period,
//! so nothing stays orphaned and nothing a running sync wrote is lost.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt};

use crate::StoreError;

/// The bytes given to [`BlobStore::put`]; an `Err` item (the source's message) aborts the
/// write with [`StoreError::BlobSource`].
pub type BlobSource<'a> = BoxStream<'a, Result<Bytes, String>>;

/// The bytes of a stored blob, for reading.
pub type BlobReader = Box<dyn AsyncRead + Send + Unpin>;

/// Where attachment bytes live. Content-addressed and immutable: writing the same bytes
/// twice gives the same [`BlobRef`]. Object-safe; a store hands it out as `&dyn BlobStore`
/// ([`crate::MirrorRead::blobs`]). The generic helpers (`write_stream`, `write_bytes`, …)
/// are on `dyn BlobStore`.
#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores the bytes of `source` and returns their reference. Fails with
    /// [`StoreError::BlobTooLarge`] as soon as more than `cap` bytes arrive, and with
    /// [`StoreError::BlobSource`] when the source fails; either way nothing is kept. A reader
    /// never sees a partial blob. Writing bytes that are already stored renews their age,
    /// so a sweep running before the write is committed keeps them.
    async fn put(&self, source: BlobSource<'_>, cap: Option<u64>) -> Result<BlobRef, StoreError>;

    /// Opens the bytes of `blob` for reading; [`StoreError::BlobMissing`] when they are not
    /// stored.
    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, StoreError>;

    /// Whether the bytes of `blob` are present.
    async fn exists(&self, blob: &BlobRef) -> Result<bool, StoreError>;

    /// The hashes among `blobs` whose bytes are not present. The sync asks this once per
    /// space for every attachment it would otherwise skip as unchanged, so a deleted blob is
    /// downloaded again; a store that can answer in one query should (the default asks
    /// [`BlobStore::exists`] per blob).
    async fn missing(&self, blobs: &[BlobRef]) -> Result<HashSet<String>, StoreError> {
        let mut out = HashSet::new();
        for blob in blobs {
            if !self.exists(blob).await? {
                out.insert(blob.sha256().to_owned());
            }
        }
        Ok(out)
    }

    /// Deletes every stored blob whose hash is not in `referenced` (the attachments of the
    /// mirror), and abandoned partial writes, when older than `grace`: the bytes of a deleted
    /// or replaced attachment, or of a forgotten space, do not stay. The grace keeps what a
    /// sync still in progress has written but not yet committed. Returns how many were
    /// removed.
    async fn remove_unreferenced(
        &self,
        referenced: &HashSet<String>,
        grace: Duration,
    ) -> Result<u64, StoreError>;

    /// The directory the blobs are files in, if they are local files (tests, diagnostics).
    fn local_dir(&self) -> Option<&Path> {
        None
    }

    /// The file holding the bytes of `blob` (present or not), if blobs are local files.
    fn local_path(&self, _blob: &BlobRef) -> Option<PathBuf> {
        None
    }
}

impl dyn BlobStore + '_ {
    /// Streams bytes into the store and returns their reference.
    pub async fn write_stream<S, E>(&self, stream: S) -> Result<BlobRef, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        self.write_stream_capped(stream, None).await
    }

    /// Like [`write_stream`](#method.write_stream), but fails with
    /// [`StoreError::BlobTooLarge`] (keeping nothing) as soon as more than `cap` bytes arrive.
    pub async fn write_stream_capped<S, E>(
        &self,
        stream: S,
        cap: Option<u64>,
    ) -> Result<BlobRef, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let source = stream.map(|chunk| chunk.map_err(|e| e.to_string())).boxed();
        self.put(source, cap).await
    }

    /// Stores a byte slice (small blobs, tests).
    pub async fn write_bytes(&self, bytes: &[u8]) -> Result<BlobRef, StoreError> {
        let chunk = Bytes::copy_from_slice(bytes);
        self.put(futures::stream::iter([Ok(chunk)]).boxed(), None)
            .await
    }
}

/// A reference to stored bytes: their SHA-256 and size. Parsed, so a `BlobRef` can always be
/// turned into a path inside the blob directory (no traversal from stored values).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawBlobRef", into = "RawBlobRef")]
pub struct BlobRef {
    sha256: String,
    size: i64,
}

#[derive(Serialize, Deserialize)]
struct RawBlobRef {
    sha256: String,
    size: i64,
}

impl TryFrom<RawBlobRef> for BlobRef {
    type Error = StoreError;
    fn try_from(raw: RawBlobRef) -> Result<Self, Self::Error> {
        BlobRef::parse(&raw.sha256, raw.size)
    }
}

impl From<BlobRef> for RawBlobRef {
    fn from(b: BlobRef) -> Self {
        RawBlobRef {
            sha256: b.sha256,
            size: b.size,
        }
    }
}

impl BlobRef {
    /// Accepts 64 hex digits (either case; stored lowercase) and a non-negative size.
    pub fn parse(sha256: &str, size: i64) -> Result<Self, StoreError> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Corrupt(format!(
                "blob hash is not 64 hex digits: {sha256:?}"
            )));
        }
        if size < 0 {
            return Err(StoreError::Corrupt(format!("negative blob size {size}")));
        }
        Ok(BlobRef {
            sha256: sha256.to_ascii_lowercase(),
            size,
        })
    }

    /// Lowercase hex SHA-256 of the bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Size in bytes.
    pub fn size(&self) -> i64 {
        self.size
    }
}

/// Blobs as files in a local directory: a blob lives at `blobs/ab/cdef…` where `abcdef…` is
/// its hash. Writes stream into a temporary file in `blobs/tmp/` and are renamed into place.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// Uses (and creates on first write) `data_dir/blobs`.
    pub fn new(data_dir: &Path) -> Self {
        LocalBlobs {
            root: data_dir.join("blobs"),
        }
    }

    /// The blob directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the bytes of `blob` live (whether or not they are present).
    pub fn path(&self, blob: &BlobRef) -> PathBuf {
        // `BlobRef` guarantees 64 ASCII hex digits, so slicing at 2 is on a char boundary.
        let (dir, file) = blob.sha256.split_at(2);
        self.root.join(dir).join(file)
    }

    /// Copies every blob into `data_dir/blobs` of another directory (a backup, or a new
    /// data directory), directories 0700 and files 0600; returns how many files and bytes
    /// were copied. Skips `tmp/` (partial writes) and blobs already there with the same size.
    ///
    /// A plain copy is safe here, unlike for the databases: a blob file is only ever created
    /// whole (written under `tmp/`, then renamed into place) and never changed afterwards,
    /// its name being the hash of its bytes. One removed by
    /// [`BlobStore::remove_unreferenced`] while the copy runs is left out; the next sync of a
    /// restored store downloads any blob it finds missing. Blocking: run it off the async
    /// runtime's workers.
    pub fn copy_into(&self, dest_data_dir: &Path) -> std::io::Result<(u64, u64)> {
        let dest_root = dest_data_dir.join("blobs");
        let (mut files, mut bytes) = (0u64, 0u64);
        let prefixes = match std::fs::read_dir(&self.root) {
            Ok(d) => d,
            // Nothing mirrored with attachments yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(e),
        };
        for prefix in prefixes {
            let prefix = prefix?;
            let name = prefix.file_name();
            // Blob directories are two hex digits; `tmp` holds partial writes.
            let is_prefix = name.len() == 2
                && name
                    .to_str()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_hexdigit()));
            if !is_prefix || !prefix.file_type()?.is_dir() {
                continue;
            }
            let dest_dir = dest_root.join(&name);
            crate::private_fs::create_dir_all(&dest_dir)?;
            for entry in std::fs::read_dir(prefix.path())? {
                let entry = entry?;
                if !entry.file_type()?.is_file() {
                    continue;
                }
                let len = entry.metadata()?.len();
                let dest = dest_dir.join(entry.file_name());
                if std::fs::metadata(&dest).is_ok_and(|m| m.len() == len) {
                    continue;
                }
                let mut src = match std::fs::File::open(entry.path()) {
                    Ok(f) => f,
                    // Removed as unreferenced since the listing.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                let partial =
                    dest_dir.join(format!("{}.partial", entry.file_name().to_string_lossy()));
                let _ = std::fs::remove_file(&partial);
                crate::private_fs::create_file_if_missing(&partial)?;
                let mut out = std::fs::OpenOptions::new().write(true).open(&partial)?;
                bytes += std::io::copy(&mut src, &mut out)?;
                out.sync_all()?;
                std::fs::rename(&partial, &dest)?;
                files += 1;
            }
        }
        Ok((files, bytes))
    }

    async fn write_to_tmp(
        &self,
        mut stream: BlobSource<'_>,
        cap: Option<u64>,
        tmp_path: &Path,
    ) -> Result<BlobRef, StoreError> {
        // 0600: attachments are customer content; the rename below keeps the mode.
        let mut file = crate::private_fs::create_file(tmp_path).await?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(StoreError::BlobSource)?;
            size += chunk.len() as u64;
            if let Some(cap) = cap
                && size > cap
            {
                return Err(StoreError::BlobTooLarge { cap });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let size = i64::try_from(size)
            .map_err(|_| StoreError::Invalid("blob larger than i64::MAX bytes".into()))?;
        BlobRef::parse(&hex::encode(hasher.finalize()), size)
    }
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn put(&self, source: BlobSource<'_>, cap: Option<u64>) -> Result<BlobRef, StoreError> {
        let tmp_dir = self.root.join("tmp");
        crate::private_fs::create_dir_all(&tmp_dir)?;
        let tmp_path = tmp_dir.join(format!("{}.part", uuid::Uuid::new_v4()));
        let result = self.write_to_tmp(source, cap, &tmp_path).await;
        match result {
            Ok(blob) => {
                let dest = self.path(&blob);
                if let Some(parent) = dest.parent() {
                    crate::private_fs::create_dir_all(parent)?;
                }
                if tokio::fs::try_exists(&dest).await? {
                    // Same content already stored (blobs are immutable). Its time is renewed
                    // so that a sweep running before this write is committed keeps it.
                    tokio::fs::remove_file(&tmp_path).await?;
                    let f = std::fs::File::options().append(true).open(&dest)?;
                    f.set_modified(std::time::SystemTime::now())?;
                } else {
                    tokio::fs::rename(&tmp_path, &dest).await?;
                }
                Ok(blob)
            }
            Err(e) => {
                // Best effort: the temporary file is garbage either way.
                let _ = tokio::fs::remove_file(&tmp_path).await;
                Err(e)
            }
        }
    }

    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, StoreError> {
        match tokio::fs::File::open(self.path(blob)).await {
            Ok(file) => Ok(Box::new(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::BlobMissing(blob.sha256().to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn exists(&self, blob: &BlobRef) -> Result<bool, StoreError> {
        Ok(tokio::fs::try_exists(self.path(blob)).await?)
    }

    async fn remove_unreferenced(
        &self,
        referenced: &HashSet<String>,
        grace: Duration,
    ) -> Result<u64, StoreError> {
        let root = self.root.clone();
        let referenced = referenced.clone();
        tokio::task::spawn_blocking(move || sweep(&root, &referenced, grace))
            .await
            .map_err(|e| StoreError::Invalid(format!("blob sweep stopped: {e}")))?
    }

    fn local_dir(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn local_path(&self, blob: &BlobRef) -> Option<PathBuf> {
        Some(self.path(blob))
    }
}

/// The blocking walk of [`LocalBlobs`]' [`BlobStore::remove_unreferenced`].
fn sweep(root: &Path, referenced: &HashSet<String>, grace: Duration) -> Result<u64, StoreError> {
    let cutoff = std::time::SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(std::time::UNIX_EPOCH);
    let old = |path: &Path| -> bool {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t <= cutoff)
    };
    let mut removed = 0;
    let dirs = match std::fs::read_dir(root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    for dir in dirs {
        let dir = dir?;
        let name = dir.file_name().to_string_lossy().into_owned();
        let is_tmp = name == "tmp";
        let is_prefix = name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if !(is_tmp || is_prefix) || !dir.file_type()?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(dir.path())? {
            let file = file?;
            let path = file.path();
            let keep = if is_tmp {
                !old(&path)
            } else {
                let hash = format!("{name}{}", file.file_name().to_string_lossy());
                referenced.contains(&hash.to_ascii_lowercase()) || !old(&path)
            };
            if !keep && file.file_type()?.is_file() {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn copy_into_copies_whole_blobs_and_skips_partial_writes() {
        let src = tempfile::tempdir().unwrap();
        let local = LocalBlobs::new(src.path());
        let blobs: &dyn BlobStore = &local;
        let a = blobs.write_bytes(b"first file").await.unwrap();
        let b = blobs.write_bytes(b"second").await.unwrap();
        // A write in progress is not a blob.
        std::fs::write(local.root().join("tmp").join("x.part"), b"half").unwrap();

        let dest = tempfile::tempdir().unwrap();
        assert_eq!(local.copy_into(dest.path()).unwrap(), (2, 16));
        let copy = LocalBlobs::new(dest.path());
        assert_eq!(std::fs::read(copy.path(&a)).unwrap(), b"first file");
        assert_eq!(std::fs::read(copy.path(&b)).unwrap(), b"second");
        assert!(!dest.path().join("blobs/tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(copy.path(&a))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Again: what is there already is not copied twice.
        assert_eq!(local.copy_into(dest.path()).unwrap(), (0, 0));
        // Nothing to copy is not an error.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            LocalBlobs::new(empty.path())
                .copy_into(dest.path())
                .unwrap(),
            (0, 0)
        );
    }

    #[tokio::test]
    async fn unreferenced_blobs_are_removed_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalBlobs::new(dir.path());
        let blobs: &dyn BlobStore = &local;
        let kept = blobs.write_bytes(b"kept").await.unwrap();
        let gone = blobs.write_bytes(b"gone").await.unwrap();
        let referenced: HashSet<String> = [kept.sha256().to_owned()].into_iter().collect();
        // Within the grace nothing goes (a sync may not have committed it yet).
        assert_eq!(
            blobs
                .remove_unreferenced(&referenced, Duration::from_secs(3600))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            blobs
                .remove_unreferenced(&referenced, Duration::ZERO)
                .await
                .unwrap(),
            1
        );
        assert!(blobs.exists(&kept).await.unwrap());
        assert!(!blobs.exists(&gone).await.unwrap());
    }

    #[test]
    fn blob_ref_rejects_non_hex_and_traversal() {
        assert!(BlobRef::parse("../../etc/passwd", 1).is_err());
        assert!(BlobRef::parse(&"g".repeat(64), 1).is_err());
        assert!(BlobRef::parse(&"a".repeat(63), 1).is_err());
        assert!(BlobRef::parse(&"a".repeat(64), -1).is_err());
        let b = BlobRef::parse(&"AB".repeat(32), 3).unwrap();
        assert_eq!(b.sha256(), "ab".repeat(32));
    }

    #[test]
    fn blob_ref_serde_validates() {
        let bad = serde_json::json!({"sha256": "../x", "size": 1});
        assert!(serde_json::from_value::<BlobRef>(bad).is_err());
        let good = BlobRef::parse(&"0f".repeat(32), 9).unwrap();
        let json = serde_json::to_value(&good).unwrap();
        assert_eq!(serde_json::from_value::<BlobRef>(json).unwrap(), good);
    }
}
