//! The binary as an operator uses it: exit codes and output of `check`, `sync`, `plan`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{kbgate, text};
use confluence_sim::{SimConfig, spawn};

const POLICY: &str = r#"
[[audience]]
name = "acme"
domains = ["acme.com"]
spaces = ["KB", "ONBOARD"]

[[audience]]
name = "old"
domains = ["old.example"]
spaces = ["KB"]
expires = "2020-01-01"

[deny]
domains = ["gmail.com"]
"#;

fn write_config(dir: &Path, extra: &str) {
    std::fs::write(dir.join("kbgate.toml"), format!("{extra}\n{POLICY}")).expect("config");
}

#[test]
fn check_explains_and_exits_by_the_decision() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), "");

    let ok = kbgate(dir.path(), &["check", "Jane@ACME.com"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).contains("acme"), "{}", text(&ok));

    for refused in [
        "a@gmail.com",
        "a@acme.com.evil.net",
        "a@old.example",
        "a@other.org",
    ] {
        let o = kbgate(dir.path(), &["check", refused]);
        assert_eq!(o.status.code(), Some(1), "{refused}: {}", text(&o));
    }

    for invalid in [
        "not-an-email",
        "a@evil.com@acme.com",
        "\"a@acme.com\"@evil.net",
    ] {
        let o = kbgate(dir.path(), &["check", invalid]);
        assert_eq!(o.status.code(), Some(2), "{invalid}: {}", text(&o));
    }
}

#[test]
fn a_bad_config_is_refused_with_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("kbgate.toml"),
        "[[audience]]\nname = \"acme\"\ndomains = [\"acme.com.\"]\nspaces = [\"KB\"]\n",
    )
    .expect("config");
    let o = kbgate(dir.path(), &["check", "a@acme.com"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("kbgate.toml:3"), "names file and line: {t}");
    assert!(t.contains("domains"), "names the key: {t}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_mirrors_the_simulator_then_goes_incremental() {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let creds = sim.service_account();
    std::fs::write(dir.path().join("token"), &creds.api_token).expect("token");
    write_config(
        dir.path(),
        &format!(
            "[confluence]\nbase_url = \"{}\"\nemail = \"{}\"\napi_token_file = \"token\"\n\n[store]\nurl = \"sqlite://kb.db\"\ndata_dir = \"data\"\n",
            sim.base_url(),
            creds.email
        ),
    );
    let path = dir.path().to_path_buf();
    let first = tokio::task::spawn_blocking(move || kbgate(&path, &["sync"]))
        .await
        .expect("join");
    let t = text(&first);
    assert_eq!(first.status.code(), Some(0), "{t}");
    assert!(t.contains("KB") && t.contains("full"), "{t}");
    assert!(t.contains("Confluence calls"), "a summary: {t}");

    let path = dir.path().to_path_buf();
    let second = tokio::task::spawn_blocking(move || kbgate(&path, &["sync"]))
        .await
        .expect("join");
    let t = text(&second);
    assert_eq!(second.status.code(), Some(0), "{t}");
    assert!(t.contains("incremental"), "{t}");

    // The token never reaches the output, even with debug logging.
    let path = dir.path().to_path_buf();
    let debug = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_kbgate"))
            .current_dir(&path)
            .args(["--config", "kbgate.toml", "--log", "debug", "sync"])
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    assert!(
        !text(&debug).contains(&creds.api_token),
        "the API token leaked into the output"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_a_clear_error() {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), "wrong-token-value").expect("token");
    write_config(
        dir.path(),
        &format!(
            "[confluence]\nbase_url = \"{}\"\nemail = \"{}\"\napi_token_file = \"token\"\n\n[store]\nurl = \"sqlite://kb.db\"\ndata_dir = \"data\"\n",
            sim.base_url(),
            sim.service_account().email
        ),
    );
    let path = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || kbgate(&path, &["sync"]))
        .await
        .expect("join");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.to_lowercase().contains("unauthor") || t.contains("401"),
        "{t}"
    );
    assert!(!t.contains("wrong-token-value"), "token echoed: {t}");
}
