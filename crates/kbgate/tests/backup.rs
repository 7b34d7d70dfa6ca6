//! Issue #12, "backups … restore tested": `kbgate backup` of a SQLite store while `kbgate
//! serve` runs on it, restored into a fresh data_dir; and `pg_dump`/`pg_restore` of a
//! PostgreSQL store into a fresh database. Each restored store is served by a `kbgate serve`
//! without `[confluence]` (no sync), so everything it serves comes from the backup: the same
//! pages, the same attachment bytes, and the operational records (a session opened before
//! the backup, people, audit).
//!
//! The PostgreSQL test runs (never skips) under `CI=true`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::*;
use confluence_sim::{SimConfig, SimHandle};
use kbgate_store::{AuditEvent, PersonRecord, Store};

const API_KEY: &str = "backup-test-api-key-0123456789abcdefghij";
const EMBED_SECRET: &str = "backup-test-embed-secret-0123456789abcdef";
const PERSON: &str = "restored.person@hooli.com";
const AUDIT_ACTION: &str = "backup-test.marker";

/// A config on `store_url` (data_dir `data`), listening on `addr`; with `[confluence]` (so
/// `serve` syncs in the background) when `sim` is given, without (nothing syncs) otherwise.
fn config(sim: Option<&SimHandle>, store_url: &str, addr: SocketAddr) -> String {
    let confluence = sim
        .map(|sim| {
            format!(
                "[confluence]\nbase_url = \"{}\"\nemail = \"{}\"\napi_token_file = \"token\"\n\
                 requests_per_second = 0\n",
                sim.base_url(),
                sim.service_account().email
            )
        })
        .unwrap_or_default();
    format!(
        r#"
{confluence}
[store]
url = "{store_url}"
data_dir = "data"

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
"#
    )
}

/// A working directory with the secrets and a config; returns it and the portal address.
fn workdir(
    sim: &SimHandle,
    with_confluence: bool,
    store_url: &str,
) -> (tempfile::TempDir, SocketAddr) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), sim.service_account().api_token).expect("token");
    std::fs::write(dir.path().join("embed-secret"), EMBED_SECRET).expect("secret");
    std::fs::write(dir.path().join("api-key"), API_KEY).expect("api key");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let sim = with_confluence.then_some(sim);
    std::fs::write(dir.path().join("kbgate.toml"), config(sim, store_url, addr)).expect("config");
    (dir, addr)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// KB's pages that no read restriction covers, and their current attachments (id, bytes).
fn kb_content(sim: &SimHandle) -> (Vec<u64>, Vec<(u64, bytes::Bytes)>) {
    sim.state().read(|s| {
        let space = s.spaces.values().find(|sp| sp.key == "KB").expect("KB").id;
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
            .filter(|a| pages.contains(&a.page_id) && a.status.as_str() == "current")
            .map(|a| (a.id, a.bytes.clone()))
            .collect();
        (pages, attachments)
    })
}

/// The JSON of every page as `server` serves it to `cookie`, after checking every attachment
/// is served with the simulator's bytes.
fn served(
    server: &Server,
    cookie: &str,
    pages: &[u64],
    attachments: &[(u64, bytes::Bytes)],
) -> Vec<String> {
    for (id, bytes) in attachments {
        let r = server
            .get(&format!("/attachments/id/att{id}"), Some(cookie))
            .expect("attachment");
        assert_eq!(r.status, 200, "att{id}\n{}", server.log());
        assert_eq!(r.body, String::from_utf8_lossy(bytes), "att{id}");
    }
    pages
        .iter()
        .map(|id| {
            let r = server
                .get(&format!("/api/v1/pages/{id}"), Some(cookie))
                .expect("page");
            assert_eq!(r.status, 200, "page {id}\n{}", server.log());
            // Links are absolute on the instance's own address; the rest must be equal.
            r.body.replace(&format!("http://{}", server.addr), "PORTAL")
        })
        .collect()
}

/// Operational records written straight through the store (as `kbgate people` and the
/// portal do), while the portal runs on it.
async fn write_ops_state(store: &Arc<dyn Store>) {
    let person = PersonRecord {
        email: PERSON.into(),
        domain: "hooli.com".into(),
        source: "import".into(),
        created_at: Utc::now(),
    };
    assert!(store.add_person(&person).await.expect("add person"));
    store
        .append_audit(&AuditEvent {
            ts: Utc::now(),
            actor: "operator".into(),
            action: AUDIT_ACTION.into(),
            detail: serde_json::json!({ "why": "written before the backup" }),
        })
        .await
        .expect("audit");
}

/// The records of [`write_ops_state`] are in `store`.
async fn assert_ops_state(store: &Arc<dyn Store>) {
    let people = store.people().await.expect("people");
    assert!(people.iter().any(|p| p.email == PERSON), "{people:?}");
    let audit = store.recent_audit(1000).await.expect("audit");
    assert!(audit.iter().any(|e| e.action == AUDIT_ACTION), "{audit:?}");
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn sqlite_backup_while_serving_restores_pages_attachments_and_sessions() {
    let rt = runtime();
    let sim = rt
        .block_on(confluence_sim::spawn(SimConfig::default()))
        .expect("sim");
    let (pages, attachments) = kb_content(&sim);
    assert!(
        !pages.is_empty() && !attachments.is_empty(),
        "the default site has both"
    );

    // The live instance: serves and syncs in the background.
    let (live, live_addr) = workdir(&sim, true, "sqlite://kb.db");
    let mut server = Server::start(live.path(), live_addr, &[]);
    let cookie = server.sign_in(API_KEY, "alice@hooli.com", "/");
    assert!(
        eventually(Duration::from_secs(120), || server
            .status("/spaces/KB", &cookie)
            == 200),
        "the background sync did not finish:\n{}",
        server.log()
    );
    let before = served(&server, &cookie, &pages, &attachments);
    let store = rt
        .block_on(kbgate_store::open(
            "sqlite://kb.db",
            &live.path().join("data"),
        ))
        .expect("open the live store");
    rt.block_on(write_ops_state(&store));
    drop(store);

    // The backup, while the portal runs on the same data_dir.
    let backups = tempfile::tempdir().expect("tempdir");
    let bk = backups.path().join("kbgate-backup");
    let bk_arg = bk.to_str().expect("utf-8 path");
    let out = kbgate(live.path(), &["backup", bk_arg]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    for expected in ["kb.db", "kb.ops.db", "attachment file(s)", "To restore"] {
        assert!(said.contains(expected), "{expected}: {said}");
    }
    let written = files_under(&bk);
    assert!(
        bk.join("kb.db").is_file() && bk.join("kb.ops.db").is_file(),
        "{written:?}"
    );
    let blob_files = written
        .iter()
        .filter(|p| p.starts_with(bk.join("blobs")))
        .count();
    assert!(blob_files >= 1, "{written:?}");
    assert!(
        written
            .iter()
            .all(|p| !p.to_string_lossy().ends_with(".partial")),
        "{written:?}"
    );
    #[cfg(unix)]
    for p in &written {
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }
    assert!(
        server.alive(),
        "the backup disturbed the server:\n{}",
        server.log()
    );
    assert_eq!(server.status("/spaces/KB", &cookie), 200);

    // An existing backup is not overwritten by mistake; --force replaces it.
    let again = kbgate(live.path(), &["backup", bk_arg]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("--force"), "{}", text(&again));
    let forced = kbgate(live.path(), &["backup", "--force", bk_arg]);
    assert!(forced.status.success(), "{}", text(&forced));
    drop(server);

    // Restore as the README says: the backup's files into an empty data_dir.
    let (restored, restored_addr) = workdir(&sim, false, "sqlite://kb.db");
    let data = restored.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", bk.display()))
        .arg(&data)
        .status()
        .expect("cp");
    assert!(cp.success());
    // Nothing syncs here (no [confluence]): what it serves comes from the backup.
    let server = Server::start(restored.path(), restored_addr, &[]);
    assert_eq!(
        server.status("/spaces/KB", &cookie),
        200,
        "the session opened before the backup works:\n{}",
        server.log()
    );
    let after = served(&server, &cookie, &pages, &attachments);
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "the restored instance serves the same page");
    }
    let store = rt
        .block_on(kbgate_store::open("sqlite://kb.db", &data))
        .expect("open the restored store");
    rt.block_on(assert_ops_state(&store));
}

/// Runs a PostgreSQL client tool (`pg_dump`, `pg_restore`, `psql`) and asserts it worked.
fn pg_tool(tool: &str, args: &[&str]) {
    let out = Command::new(format!("/usr/bin/{tool}"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A database created by the test, dropped (even on failure) when this is dropped.
struct FreshDb {
    admin_url: String,
    name: String,
    url: String,
}

impl FreshDb {
    fn create() -> FreshDb {
        let admin_url = kbgate_store::testing::postgres_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("kbgate_restore_{}_{nanos}", std::process::id());
        pg_tool(
            "psql",
            &[
                &admin_url,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            ],
        );
        pg_tool(
            "psql",
            &[
                &admin_url,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &format!("CREATE DATABASE \"{name}\""),
            ],
        );
        let mut url = url::Url::parse(&admin_url).expect("URL");
        url.set_path(&name);
        FreshDb {
            admin_url,
            url: url.to_string(),
            name,
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let _ = Command::new("/usr/bin/psql")
            .args([
                &self.admin_url,
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            ])
            .output();
    }
}

#[test]
fn postgresql_dump_restores_pages_attachments_and_operational_state() {
    let rt = runtime();
    let sim = rt
        .block_on(confluence_sim::spawn(SimConfig::default()))
        .expect("sim");
    let Some(db) = rt.block_on(kbgate_store::testing::postgres()) else {
        return; // skipped outside CI (said on stderr)
    };
    let (pages, attachments) = kb_content(&sim);

    // The original: a sync, a session, operational records.
    let (live, live_addr) = workdir(&sim, true, &db.url);
    let sync = kbgate(live.path(), &["sync"]);
    assert!(sync.status.success(), "{}", text(&sync));
    let server = Server::start(live.path(), live_addr, &[]);
    let cookie = server.sign_in(API_KEY, "alice@hooli.com", "/");
    let before = served(&server, &cookie, &pages, &attachments);
    rt.block_on(write_ops_state(&db.store));

    // Dump (while it serves), restore into a fresh database.
    let dumps = tempfile::tempdir().expect("tempdir");
    let dump = dumps.path().join("kbgate.dump");
    let dump_arg = dump.to_str().expect("utf-8 path");
    pg_tool("pg_dump", &["--format=custom", "--file", dump_arg, &db.url]);
    drop(server);
    // The backup command itself points to pg_dump.
    let refused = kbgate(live.path(), &["backup", "unused"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("pg_dump"), "{}", text(&refused));
    let restored_db = FreshDb::create();
    pg_tool(
        "pg_restore",
        &[
            "--no-owner",
            "--exit-on-error",
            "--dbname",
            &restored_db.url,
            dump_arg,
        ],
    );

    // Served from the restored database alone (no sync, an empty data_dir).
    let (restored, restored_addr) = workdir(&sim, false, &restored_db.url);
    let server = Server::start(restored.path(), restored_addr, &[]);
    assert_eq!(
        server.status("/spaces/KB", &cookie),
        200,
        "the session opened before the dump works:\n{}",
        server.log()
    );
    let after = served(&server, &cookie, &pages, &attachments);
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "the restored database serves the same page");
    }
    let store = rt
        .block_on(kbgate_store::open(
            &restored_db.url,
            &restored.path().join("data"),
        ))
        .expect("open the restored store");
    rt.block_on(assert_ops_state(&store));
    drop(store);
    drop(server);
}
