//! SQLite backend: the embedded default. WAL, foreign keys, busy timeout; FTS5 search
//! (`search.rs`). The statements it shares with PostgreSQL are in [`crate::sql`].

mod search;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreError;
use crate::blob::LocalBlobs;
use crate::fts::Terms;
use crate::model::{ScopeEntry, SearchResults};
use crate::search::SearchLimits;
use crate::sql::{Db, SqlStore};

/// How long a writer waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite store: the mirror in one database file, operational records (sessions, codes,
/// audit, provisioning) in a second one, so a long sync transaction never blocks sign-ins.
pub type SqliteStore = SqlStore<Sqlite>;

/// Where the two databases of a SQLite URL live.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Memory,
    Files { mirror: PathBuf, ops: PathBuf },
}

/// The two database files of a file-backed SQLite store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteFiles {
    /// The mirror (`kbgate.db`).
    pub mirror: PathBuf,
    /// The operational records (`kbgate.ops.db`).
    pub ops: PathBuf,
}

/// Where the databases of a `sqlite:` URL live (relative paths resolved against `data_dir`),
/// or `None` for `sqlite::memory:`. For tools that work on the files (backups) without
/// opening the store first.
pub fn sqlite_files(url: &str, data_dir: &Path) -> Result<Option<SqliteFiles>, StoreError> {
    Ok(match parse_url(url, data_dir)? {
        Location::Memory => None,
        Location::Files { mirror, ops } => Some(SqliteFiles { mirror, ops }),
    })
}

fn parse_url(url: &str, data_dir: &Path) -> Result<Location, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::BadUrl("expected sqlite:".into()))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path == ":memory:" {
        return Ok(Location::Memory);
    }
    if path.is_empty() {
        return Err(StoreError::BadUrl("sqlite URL without a path".into()));
    }
    let mirror = data_dir.join(path);
    let stem = mirror
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kbgate".into());
    let ops_name = match mirror.extension() {
        Some(ext) => format!("{stem}.ops.{}", ext.to_string_lossy()),
        None => format!("{stem}.ops"),
    };
    let ops = mirror.with_file_name(ops_name);
    Ok(Location::Files { mirror, ops })
}

/// Bytes of each database file SQLite reads through a memory map rather than `pread`.
///
/// A search reads a few hundred index and row pages; each connection's own page cache is
/// 2 MB (SQLite's default), so on a mirror of hundreds of MB most reads were system calls
/// copying pages out of the OS cache. Mapped, the connections of the pool (and of other
/// processes) share the OS cache without copies: in the search bench (100,000 pages) the
/// per-search page total fell from ≈ 1 ms to ≈ 0.3 ms and every step got cheaper
/// (<https://www.sqlite.org/mmap.html>). The map is address space, not memory. Its caveat
/// there, a signal instead of an error when a mapped file shrinks under it, does not arise:
/// kbgate never truncates a live database (no VACUUM or auto-vacuum; backups write a new
/// file with `VACUUM INTO`). Beyond this size the file is read as before.
const MMAP_SIZE: u64 = 1 << 30;

/// Bytes of write-ahead log kept on disk once a checkpoint has emptied it. A sync commits a
/// space in one transaction, and SQLite otherwise keeps the log file at the largest size it
/// ever reached (380 MB left beside the database after a 50,000-page sync in the search
/// bench; <https://www.sqlite.org/pragma.html#pragma_journal_size_limit>).
const WAL_SIZE_LIMIT: u64 = 64 << 20;

async fn pool_for(opts: SqliteConnectOptions, memory: bool) -> Result<SqlitePool, StoreError> {
    let opts = opts
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .synchronous(SqliteSynchronous::Normal)
        .pragma("mmap_size", MMAP_SIZE.to_string())
        .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string());
    let pool_opts = if memory {
        // An in-memory database lives as long as one connection does.
        SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(4)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(8)
    };
    Ok(pool_opts.connect_with(opts).await?)
}

impl SqlStore<Sqlite> {
    /// Opens (creates, migrates) the store named by a `sqlite:` URL; see [`crate::open`].
    pub async fn open(url: &str, data_dir: &Path) -> Result<Self, StoreError> {
        let (mirror, ops) = match parse_url(url, data_dir)? {
            Location::Memory => (
                pool_for(SqliteConnectOptions::from_str("sqlite::memory:")?, true).await?,
                pool_for(SqliteConnectOptions::from_str("sqlite::memory:")?, true).await?,
            ),
            Location::Files { mirror, ops } => {
                if let Some(dir) = mirror.parent() {
                    crate::private_fs::create_dir_all(dir)?;
                }
                // Created here, 0600, before SQLite opens them: SQLite would create them 0644
                // (less the umask), and it gives the -wal and -shm files it creates later the
                // database file's permissions (sqlite3.c, findCreateFileMode and
                // unixOpenSharedMemory), so these modes cover all four files.
                crate::private_fs::create_file_if_missing(&mirror)?;
                crate::private_fs::create_file_if_missing(&ops)?;
                let file = |p: &Path| {
                    SqliteConnectOptions::new()
                        .filename(p)
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                };
                (
                    pool_for(file(&mirror), false).await?,
                    pool_for(file(&ops), false).await?,
                )
            }
        };
        sqlx::migrate!("migrations/sqlite/mirror")
            .run(&mirror)
            .await?;
        sqlx::migrate!("migrations/sqlite/ops").run(&ops).await?;
        Ok(SqlStore {
            mirror,
            ops,
            blobs: std::sync::Arc::new(LocalBlobs::new(data_dir)),
            limits: SearchLimits::default(),
            changes: Default::default(),
            search_stats: Default::default(),
        })
    }
}

impl SqlStore<Sqlite> {
    /// Writes a consistent copy of both databases into `dir` (which must exist), under their
    /// own file names, and returns the paths written (operational database first).
    ///
    /// `VACUUM INTO` reads each database in one read transaction, so the copy is a snapshot
    /// even while `kbgate serve` and syncs write to it; a plain file copy of a WAL database
    /// may miss committed pages still in the `-wal` file or catch a checkpoint half-way
    /// (<https://www.sqlite.org/lang_vacuum.html#vacuuminto>, <https://www.sqlite.org/wal.html>).
    /// The operational database is copied first: whatever it records about syncs (rounds,
    /// leases) then refers to commits the mirror's later snapshot holds.
    ///
    /// Each copy is written to a `.partial` file created 0600 beforehand (VACUUM INTO
    /// accepts an existing empty file and would otherwise create it with the default mode),
    /// flushed to disk (SQLite does not fsync the output of VACUUM INTO, per the page above)
    /// and, once both are complete, renamed into place, so an interrupted backup never leaves
    /// a truncated file (or a mix of two backups) under the real names. Existing files of
    /// those names are replaced.
    pub async fn backup_into(&self, dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let mut copies = Vec::with_capacity(2);
        for pool in [&self.ops, &self.mirror] {
            let source: String =
                sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                    .fetch_one(pool)
                    .await?;
            let name = Path::new(&source)
                .file_name()
                .filter(|_| !source.is_empty())
                .ok_or_else(|| {
                    StoreError::Invalid("an in-memory SQLite store has no files to back up".into())
                })?
                .to_owned();
            let target = dir.join(&name);
            let mut partial_name = name.clone();
            partial_name.push(".partial");
            let partial = dir.join(partial_name);
            match std::fs::remove_file(&partial) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            crate::private_fs::create_file_if_missing(&partial)?;
            let into = partial.to_str().ok_or_else(|| {
                StoreError::Invalid(format!("backup path {} is not UTF-8", partial.display()))
            })?;
            sqlx::query("VACUUM INTO $1")
                .bind(into)
                .execute(pool)
                .await?;
            std::fs::File::open(&partial)?.sync_all()?;
            copies.push((partial, target));
        }
        // Renamed only once both copies exist, so a failure never leaves a new copy of one
        // database next to an older copy of the other under the real names.
        let mut written = Vec::with_capacity(copies.len());
        for (partial, target) in copies {
            std::fs::rename(&partial, &target)?;
            written.push(target);
        }
        // The renames themselves survive a crash only once the directory is synced.
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(written)
    }
}

#[async_trait]
impl Db for Sqlite {
    const BACKEND: &'static str = "sqlite";

    /// Sync transactions take the write lock up front, so they never fail half-way on a
    /// lock upgrade.
    async fn begin_write(
        pool: &SqlitePool,
    ) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Full-text index upkeep at the end of a sync that wrote `writes` index-relevant rows.
    ///
    /// FTS5 adds a segment per flushed batch and merges them only lazily; a freshly synced
    /// 100,000-page mirror has several segments per term, and every term lookup (each search
    /// step, each excerpt) pays for each. An incremental merge of work proportional to what
    /// the sync wrote (4 leaf pages per row written; FTS5 resumes unfinished merges in later
    /// calls) keeps the index close to one segment: a full sync ends optimised (≈ 2 s for
    /// 100,000 pages), a small incremental sync pays a few milliseconds.
    async fn tidy_search_index(
        tx: &mut sqlx::Transaction<'static, Sqlite>,
        writes: u64,
    ) -> Result<(), StoreError> {
        if writes == 0 {
            return Ok(());
        }
        let pages = -(writes.saturating_mul(4).min(1 << 24) as i64);
        for table in ["pages_fts", "pages_title_fts"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table}({table}, rank) VALUES ('merge', $1)"
            )))
            .bind(pages)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn search(
        store: &SqliteStore,
        terms: &Terms,
        scope: &[&ScopeEntry],
        limit: u32,
        offset: u32,
    ) -> Result<SearchResults, StoreError> {
        store.search_impl(terms, scope, limit, offset).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AuditEvent, PersonRecord};
    use crate::store::{Audit, People};

    /// Every connection of a file store maps the file and caps the log left on disk.
    #[tokio::test]
    async fn connections_map_the_file_and_cap_the_log_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open("sqlite://t.db", dir.path())
            .await
            .unwrap();
        let mut conn = store.mirror.acquire().await.unwrap();
        let limit: i64 = sqlx::query_scalar("PRAGMA journal_size_limit")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let mmap: i64 = sqlx::query_scalar("PRAGMA mmap_size")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(limit, WAL_SIZE_LIMIT as i64);
        assert_eq!(mmap, MMAP_SIZE as i64);
    }

    /// The copy opens as a store of its own and holds what was committed before it, in both
    /// databases; the source keeps working.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn backup_into_writes_a_consistent_copy_of_both_databases() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open("sqlite://kb.db", dir.path())
            .await
            .unwrap();
        let person = PersonRecord {
            email: "a@acme.com".into(),
            domain: "acme.com".into(),
            source: "import".into(),
            created_at: chrono::Utc::now(),
        };
        assert!(store.add_person(&person).await.unwrap());
        let event = AuditEvent {
            ts: chrono::Utc::now(),
            actor: "operator".into(),
            action: "test.backup".into(),
            detail: serde_json::json!({}),
        };
        store.append_audit(&event).await.unwrap();

        let out = tempfile::tempdir().unwrap();
        let written = store.backup_into(out.path()).await.unwrap();
        assert_eq!(
            written,
            vec![out.path().join("kb.ops.db"), out.path().join("kb.db")]
        );
        // The same again replaces the files (the CLI asks for --force first).
        store.backup_into(out.path()).await.unwrap();
        let names: Vec<_> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".partial")), "{names:?}");
        #[cfg(unix)]
        for p in &written {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", p.display());
        }

        let copy = SqliteStore::open("sqlite://kb.db", out.path())
            .await
            .unwrap();
        assert_eq!(copy.people().await.unwrap(), vec![person]);
        let audit = copy.recent_audit(10).await.unwrap();
        assert!(audit.iter().any(|e| e.action == "test.backup"), "{audit:?}");
        // The source is untouched and still writable.
        store.append_audit(&event).await.unwrap();

        let memory = SqliteStore::open("sqlite::memory:", dir.path())
            .await
            .unwrap();
        assert!(matches!(
            memory.backup_into(out.path()).await,
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn urls_resolve_against_the_data_dir() {
        let dir = Path::new("/data");
        assert_eq!(parse_url("sqlite::memory:", dir).unwrap(), Location::Memory);
        assert_eq!(
            parse_url("sqlite://kbgate.db", dir).unwrap(),
            Location::Files {
                mirror: "/data/kbgate.db".into(),
                ops: "/data/kbgate.ops.db".into()
            }
        );
        assert_eq!(
            parse_url("sqlite:///abs/x?mode=rwc", dir).unwrap(),
            Location::Files {
                mirror: "/abs/x".into(),
                ops: "/abs/x.ops".into()
            }
        );
        assert!(parse_url("sqlite://", dir).is_err());
        assert!(parse_url("mysql://x", dir).is_err());
    }
}
