//! Running kbgate as a service (issue #13): `--log-format`, the startup summary, private
//! files whatever the umask, and `kbgate config check`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use confluence_sim::SimConfig;

const SMTP_PASSWORD: &str = "hunter2-smtp-password";

/// A config without `[confluence]` (nothing to sync): a portal with one audience, mail by
/// SMTP with a password in the URL.
fn portal_config(addr: SocketAddr) -> String {
    format!(
        r#"
[store]
url = "sqlite://kb.db"
data_dir = "data"

[portal]
listen = "{addr}"
smtp_url = "smtps://kb%40example.com:{SMTP_PASSWORD}@smtp.example.com:465"
from = "kb@example.com"

[[audience]]
name = "acme"
domains = ["acme.com"]
spaces = ["KB"]
"#
    )
}

/// `kbgate ARGS` in `dir` (no --config added).
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kbgate"))
        .current_dir(dir)
        .args(args)
        .env_remove("KBGATE_CONFIG")
        .env_remove("KBGATE_LOG_FORMAT")
        .env("KBGATE_LOG", "info")
        .output()
        .expect("run kbgate")
}

#[test]
fn json_logs_carry_a_startup_summary_without_secrets_or_colour() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(dir.path().join("kbgate.toml"), portal_config(addr)).unwrap();
    let server = Server::start(dir.path(), addr, &["--log-format", "json"]);
    let log = server.log();
    drop(server);
    assert!(!log.contains('\u{1b}'), "no ANSI escapes in a file:\n{log}");
    assert!(!log.contains(SMTP_PASSWORD), "{log}");
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let summary = events
        .iter()
        .find(|e| e["message"] == "kbgate starting")
        .unwrap_or_else(|| panic!("no startup summary:\n{log}"));
    assert_eq!(summary["level"], "INFO");
    assert_eq!(summary["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(summary["listen"], addr.to_string());
    assert_eq!(summary["public_url"], format!("http://{addr}/"));
    assert_eq!(summary["audiences"], "1 (acme)");
    assert_eq!(summary["sync"], "off");
    let store = summary["store"].as_str().unwrap();
    assert!(store.starts_with("sqlite:"), "{store}");
    let mail = summary["mail"].as_str().unwrap();
    assert!(
        mail.starts_with("smtps://") && mail.contains("***"),
        "{mail}"
    );
    assert!(summary["timestamp"].is_string());
}

#[test]
fn text_logs_to_a_file_have_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(dir.path().join("kbgate.toml"), portal_config(addr)).unwrap();
    let server = Server::start(dir.path(), addr, &["--log-format", "text"]);
    let log = server.log();
    drop(server);
    assert!(log.contains("kbgate starting"), "{log}");
    assert!(!log.contains('\u{1b}'), "no ANSI escapes in a file:\n{log}");
    assert!(!log.contains(SMTP_PASSWORD), "{log}");
    let bad = run(dir.path(), &["--log-format", "xml", "config", "check"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        text(&bad).contains("json"),
        "names the choices: {}",
        text(&bad)
    );
}

/// Everything a sync creates is 0600/0700 even under `umask 000`.
#[cfg(unix)]
#[test]
fn files_kbgate_creates_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt
        .block_on(confluence_sim::spawn(SimConfig::default()))
        .unwrap();
    let creds = sim.service_account();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &creds.api_token).unwrap();
    std::fs::write(
        dir.path().join("kbgate.toml"),
        format!(
            r#"
[confluence]
base_url = "{}"
email = "{}"
api_token_file = "token"

[store]
url = "sqlite://db/kb.db"
data_dir = "data"

[[audience]]
name = "all"
domains = ["acme.com"]
spaces = ["KB", "ONBOARD", "API"]
"#,
            sim.base_url(),
            creds.email
        ),
    )
    .unwrap();
    let out = Command::new("sh")
        .current_dir(dir.path())
        .args(["-c", "umask 000 && exec \"$0\" --config kbgate.toml sync"])
        .arg(env!("CARGO_BIN_EXE_kbgate"))
        .env_remove("KBGATE_CONFIG")
        .env("KBGATE_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data = dir.path().join("data");
    assert_eq!(mode(&data), 0o700, "data_dir");
    let db_dir = data.join("db");
    assert_eq!(mode(&db_dir), 0o700, "the database's directory");
    let mut db_files = 0;
    for entry in std::fs::read_dir(&db_dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        db_files += 1;
    }
    assert!(db_files >= 2, "kb.db and kb.ops.db");
    // Every blob directory and file (attachments of the simulated site).
    let mut blob_files = 0;
    let mut stack = vec![data.join("blobs")];
    while let Some(d) = stack.pop() {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                blob_files += 1;
            }
        }
    }
    assert!(blob_files > 0, "the site has attachments");
    drop(sim);
}

#[test]
fn config_check_validates_without_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = "127.0.0.1:18080".parse().unwrap();
    std::fs::write(dir.path().join("kbgate.toml"), portal_config(addr)).unwrap();

    // Valid, through --config or as the argument.
    let ok = run(dir.path(), &["config", "check", "kbgate.toml"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(out.starts_with("kbgate.toml: ok (1 audience"), "{out}");
    assert!(!out.contains(SMTP_PASSWORD));
    let ok = run(dir.path(), &["--config", "kbgate.toml", "config", "check"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        !dir.path().join("data").exists() && !dir.path().join("kb.db").exists(),
        "nothing created"
    );

    // Invalid: every problem with its line and column, exit 2.
    let bad = portal_config(addr).replace(
        "from = \"kb@example.com\"",
        "from = \"kb@example.com\"\nmax_connections = 0\nidle_timeout = \"forever\"",
    );
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let out = run(dir.path(), &["config", "check", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:10:") && err.contains("portal.max_connections"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:11:") && err.contains("portal.idle_timeout"),
        "{err}"
    );

    // A missing file: exit 2.
    let out = run(dir.path(), &["config", "check", "nope.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nope.toml"));

    // Valid, but a secret it names cannot be read: exit 1, naming it (not its value).
    let with_secret = format!(
        "{}\n[confluence]\nbase_url = \"https://example.atlassian.net\"\nemail = \"svc@example.com\"\napi_token_env = \"KBGATE_TEST_UNSET_TOKEN\"\n",
        portal_config(addr)
    );
    std::fs::write(dir.path().join("secret.toml"), with_secret).unwrap();
    let out = run(dir.path(), &["config", "check", "secret.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("KBGATE_TEST_UNSET_TOKEN"),
        "{}",
        text(&out)
    );

    // The same for an OpenID Provider's client secret.
    let with_oidc = format!(
        "{}\n[[oidc]]\nname = \"acme\"\nissuer = \"https://login.example.com/t\"\nclient_id = \"kbgate\"\nclient_secret_env = \"KBGATE_TEST_UNSET_OIDC\"\ndomains = [\"acme.com\"]\n",
        portal_config(addr)
    );
    std::fs::write(dir.path().join("oidc.toml"), with_oidc).unwrap();
    let out = run(dir.path(), &["config", "check", "oidc.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("oidc client secret") && text(&out).contains("KBGATE_TEST_UNSET_OIDC"),
        "{}",
        text(&out)
    );
}

/// `kbgate status` (issue #13): refuses a store that does not exist (and creates none); after
/// a sync from the simulator and a session, text and JSON show the synced space with its
/// last sync (time, process) and next round, the space never synced as such, and the
/// session's domain.
#[test]
fn status_shows_spaces_last_sync_and_sessions_per_domain() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt
        .block_on(confluence_sim::spawn(SimConfig::default()))
        .unwrap();
    let creds = sim.service_account();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &creds.api_token).unwrap();
    std::fs::write(
        dir.path().join("kbgate.toml"),
        format!(
            r#"
[confluence]
base_url = "{}"
email = "{}"
api_token_file = "token"
requests_per_second = 0

[store]
url = "sqlite://kb.db"
data_dir = "data"

[sync]
interval = "10m"

[[audience]]
name = "acme"
domains = ["acme.com"]
spaces = ["KB", "ONBOARD"]
"#,
            sim.base_url(),
            creds.email
        ),
    )
    .unwrap();

    // No store yet: a clear error, and none created.
    let out = run(dir.path(), &["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no store at"), "{}", text(&out));
    assert!(!dir.path().join("data/kb.db").exists(), "no empty store");

    let out = run(dir.path(), &["sync", "--space", "KB"]);
    assert!(out.status.success(), "{}", text(&out));
    let store = rt
        .block_on(kbgate_store::open(
            "sqlite://kb.db",
            &dir.path().join("data"),
        ))
        .unwrap();
    let now = chrono::Utc::now();
    rt.block_on(store.create_session(&kbgate_store::SessionRecord {
        id_hash: "status-test-session".into(),
        email: "Alice@ACME.com".into(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + chrono::Duration::hours(1),
        revoked: false,
    }))
    .unwrap();
    drop(store);

    let out = run(dir.path(), &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    for expected in [
        "KB ",
        "last sync: 20",
        "by kbgate pid",
        "next sync: 20",
        "ONBOARD (not mirrored): 0 page(s)",
        "last sync: never synced",
        "Sessions: 1 live",
        "acme.com: 1",
    ] {
        assert!(said.contains(expected), "{expected:?} in:\n{said}");
    }

    let out = run(dir.path(), &["status", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let spaces = json["spaces"].as_array().unwrap();
    let kb = spaces.iter().find(|s| s["key"] == "KB").unwrap();
    assert!(kb["pages"].as_u64().unwrap() > 0, "{kb}");
    assert!(kb["name"].is_string(), "{kb}");
    assert!(
        kb["last_sync"]["by"]
            .as_str()
            .unwrap()
            .contains("kbgate pid"),
        "{kb}"
    );
    let at: chrono::DateTime<chrono::Utc> =
        kb["last_sync"]["at"].as_str().unwrap().parse().unwrap();
    assert!(
        at <= chrono::Utc::now() && at > now - chrono::Duration::minutes(10),
        "{kb}"
    );
    let due: chrono::DateTime<chrono::Utc> = kb["next_sync_due"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        due - at,
        chrono::Duration::minutes(10),
        "last + [sync] interval"
    );
    assert!(kb["syncing"].is_null(), "the sync released its lease: {kb}");
    assert_eq!(kb["next_sync"]["state"], "scheduled", "{kb}");
    let next: chrono::DateTime<chrono::Utc> =
        kb["next_sync"]["at"].as_str().unwrap().parse().unwrap();
    assert_eq!(next, due, "{kb}");
    let onboard = spaces.iter().find(|s| s["key"] == "ONBOARD").unwrap();
    assert!(onboard["last_sync"].is_null(), "{onboard}");
    assert_eq!(onboard["pages"], 0);
    assert_eq!(
        onboard["next_sync"],
        serde_json::json!({ "state": "due" }),
        "never synced: at the next round"
    );
    assert!(said.contains("next sync: due now"), "{said}");
    assert_eq!(json["sync_interval_secs"], 600);
    assert_eq!(
        json["sessions"],
        serde_json::json!([{ "domain": "acme.com", "sessions": 1 }])
    );
    assert_eq!(json["sessions_total"], 1);

    // While a sync (another process) holds KB's lease, its next run is "running".
    let store = rt
        .block_on(kbgate_store::open(
            "sqlite://kb.db",
            &dir.path().join("data"),
        ))
        .unwrap();
    let lease = rt
        .block_on(store.acquire_sync_lease("KB", "other-host", std::time::Duration::from_secs(300)))
        .unwrap();
    assert_eq!(lease, kbgate_store::SyncLease::Acquired);
    drop(store);
    let out = run(dir.path(), &["status", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kb = json["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "KB")
        .unwrap();
    assert_eq!(
        kb["next_sync"],
        serde_json::json!({ "state": "running" }),
        "{kb}"
    );
    let out = run(dir.path(), &["status"]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("next sync: running now"), "{said}");

    let out = run(dir.path(), &["status", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        help.contains("--output") && help.contains("never synced"),
        "{help}"
    );
    drop(sim);
}

/// `kbgate explain EMAIL [PAGE]` (issue #13): the admin console's explainer from the CLI,
/// against a mirror synced from the simulator; its verdict is the gate's (a restricted page
/// is refused naming the restriction, a readable one allowed), in text and JSON.
#[test]
fn explain_shows_each_step_and_who_can_read() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt
        .block_on(confluence_sim::spawn(SimConfig::default()))
        .unwrap();
    let creds = sim.service_account();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &creds.api_token).unwrap();
    std::fs::write(
        dir.path().join("kbgate.toml"),
        format!(
            r#"
[confluence]
base_url = "{}"
email = "{}"
api_token_file = "token"
requests_per_second = 0

[store]
url = "sqlite://kb.db"
data_dir = "data"

[[audience]]
name = "acme"
domains = ["acme.com"]
include_subdomains = true
spaces = ["KB"]

[deny]
domains = ["gmail.com"]
"#,
            sim.base_url(),
            creds.email
        ),
    )
    .unwrap();
    let out = run(dir.path(), &["sync", "--space", "KB"]);
    assert!(out.status.success(), "{}", text(&out));
    let store = rt
        .block_on(kbgate_store::open(
            "sqlite://kb.db",
            &dir.path().join("data"),
        ))
        .unwrap();
    let space = rt.block_on(store.space_by_key("KB")).unwrap().unwrap();
    let pages = rt.block_on(store.page_summaries(&space.id)).unwrap();
    let open = pages.iter().find(|p| !p.effective_restricted).unwrap();
    let closed = pages.iter().find(|p| p.effective_restricted).unwrap();

    let out = run(dir.path(), &["explain", "alice@eu.acme.com", &open.id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("ALLOWED") && shown.contains("subdomain of acme.com"),
        "{shown}"
    );
    assert!(
        shown.contains("who can read page") && shown.contains("[reads] audience acme"),
        "{shown}"
    );

    let url = format!("https://kb.example.com/pages/{}", closed.id);
    let out = run(
        dir.path(),
        &["explain", "alice@acme.com", &url, "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["explanation"]["allowed"], false);
    let restriction = doc["explanation"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "restrictions")
        .unwrap();
    assert_eq!(restriction["outcome"], "fail", "{doc}");
    assert_eq!(doc["who_can_read"]["restricted"], true);

    let out = run(dir.path(), &["explain", "bob@gmail.com"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("deny list"), "{}", text(&out));
    let out = run(dir.path(), &["explain", "alice@acme.com", "999999999"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
