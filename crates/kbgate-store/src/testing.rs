//! Fresh stores for tests (feature `testing`), reusable by other crates' tests:
//!
//! ```ignore
//! let t = kbgate_store::testing::sqlite().await;          // a temp-file SQLite store
//! let Some(t) = kbgate_store::testing::postgres().await else { return }; // or skipped
//! t.store.list_spaces().await?;
//! ```
//!
//! PostgreSQL tests use `postgres://postgres@127.0.0.1:5432/test` unless
//! `KBGATE_TEST_POSTGRES_URL` says otherwise, and get a fresh database each, dropped when
//! the [`TestStore`] is dropped. If PostgreSQL is unreachable, [`postgres`] fails the test
//! when `CI=true`, and otherwise prints `SKIPPED: PostgreSQL unreachable at …` to stderr and
//! returns `None`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::{Store, StoreError};

/// Default PostgreSQL server for tests.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A store that exists for one test: its data directory (and PostgreSQL database) is
/// removed on drop.
pub struct TestStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The URL it was opened with (to open it a second time).
    pub url: String,
    // Field order matters: the store (and its pool) goes first, then the database, then
    // the directory.
    _drop_db: DropDb,
    data_dir: tempfile::TempDir,
}

/// Drops a test database (admin URL, database name) when dropped.
struct DropDb(Option<(String, String)>);

impl std::fmt::Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore")
            .field("backend", &self.store.backend())
            .field("data_dir", &self.data_dir.path())
            .finish_non_exhaustive()
    }
}

impl TestStore {
    /// The data directory (blobs, SQLite files).
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Opens the same store again (a second process, a restart).
    pub async fn reopen(&self) -> Result<Arc<dyn Store>, StoreError> {
        crate::open(&self.url, self.data_dir.path()).await
    }
}

impl std::ops::Deref for TestStore {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl Drop for DropDb {
    fn drop(&mut self) {
        let Some((admin_url, db)) = self.0.take() else {
            return;
        };
        // Drop runs inside the test's runtime; use a thread with its own runtime.
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&mut conn)
                            .await;
                        let _ = conn.close().await;
                    }
                });
            }
        });
        let _ = handle.join();
    }
}

/// A fresh SQLite store in a temporary directory (files, WAL — as in production).
pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = "sqlite://kbgate.db".to_string();
    let store = crate::open(&url, dir.path())
        .await
        .expect("open SQLite store");
    TestStore {
        store,
        url,
        _drop_db: DropDb(None),
        data_dir: dir,
    }
}

/// The PostgreSQL server tests use.
pub fn postgres_url() -> String {
    std::env::var("KBGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".into(),
    }
}

/// A fresh PostgreSQL store in a new database, or `None` (test skipped) when PostgreSQL is
/// unreachable outside CI. Panics when unreachable and `CI=true`.
pub async fn postgres() -> Option<TestStore> {
    let admin_url = postgres_url();
    let connect = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url));
    let mut admin = match connect.await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return unreachable(&admin_url, &e.to_string()),
        Err(_) => return unreachable(&admin_url, "timed out"),
    };
    let db = format!("kbgate_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE for the test");
    let _ = admin.close().await;
    let mut url = url::Url::parse(&admin_url).expect("KBGATE_TEST_POSTGRES_URL is a URL");
    url.set_path(&db);
    let url = url.to_string();
    // Created before opening, so the database is dropped even if opening panics.
    let drop_db = DropDb(Some((admin_url, db)));
    let dir = tempfile::tempdir().expect("temp dir");
    let store = crate::open(&url, dir.path())
        .await
        .expect("open PostgreSQL store");
    Some(TestStore {
        store,
        url,
        _drop_db: drop_db,
        data_dir: dir,
    })
}

fn unreachable(url: &str, why: &str) -> Option<TestStore> {
    let url = redacted(url);
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL unreachable at {url} ({why}) and CI=true");
    }
    eprintln!("SKIPPED: PostgreSQL unreachable at {url} ({why})");
    None
}

/// Runs an async test body against both backends (PostgreSQL possibly skipped).
/// Generates `mod sqlite { #[tokio::test] fn NAME }` and `mod postgres { … }` for each
/// `async fn NAME(t: &TestStore)` named.
#[macro_export]
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = $crate::testing::sqlite().await;
                    super::$name(&t).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(t) = $crate::testing::postgres().await else { return };
                    super::$name(&t).await;
                }
            )*
        }
    };
}
