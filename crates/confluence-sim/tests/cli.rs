//! The `confluence-sim` binary: the lines it prints on start, the credentials working against
//! the port it names, and `--help` documenting every flag of the clap definition.

use std::process::Stdio;
use std::time::Duration;

use clap::CommandFactory;
use confluence_sim::cli::Args;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::timeout;

const BIN: &str = env!("CARGO_BIN_EXE_confluence-sim");
/// Generous: the test binary may share two cores with other builds.
const START: Duration = Duration::from_secs(60);

/// Kills the simulator when the test ends, also on a panic.
struct Running {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("confluence-sim starts");
        let stdout = child.stdout.take().expect("piped stdout");
        Running {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    async fn line(&mut self) -> String {
        timeout(START, self.lines.next_line())
            .await
            .expect("a stdout line in time")
            .expect("stdout readable")
            .expect("stdout not closed")
    }

    async fn stop(mut self) {
        self.child.start_kill().expect("kill sent");
        let status = timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the simulator exits within 10 s of being killed")
            .expect("wait");
        assert!(!status.success(), "killed, not exited: {status:?}");
    }
}

fn credentials(line: &str, prefix: &str) -> (String, String) {
    let rest = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected {prefix:?}…, got {line:?}"));
    let mut it = rest.split_whitespace();
    let email = it.next().expect("email").to_string();
    let token = it.next().expect("token").to_string();
    assert!(it.next().is_none(), "{line:?}");
    assert!(email.contains('@'), "{line:?}");
    (email, token)
}

#[tokio::test]
async fn prints_its_address_and_credentials_that_work() {
    let mut sim = Running::start(&[
        "--port",
        "0",
        "--seed",
        "demo",
        "--spaces",
        "2",
        "--pages",
        "30",
        "--users",
        "20",
        "--domains",
        "3",
    ]);
    let first = sim.line().await;
    let base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_string();
    let port: u16 = base
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .parse()
        .expect("a port number");
    assert_ne!(port, 0, "--port 0 must print the port actually bound");

    let (email, token) = credentials(&sim.line().await, "service account: ");
    let admin_key_line = sim.line().await;
    let admin_key = admin_key_line
        .strip_prefix("admin api key: ")
        .unwrap_or_else(|| panic!("{admin_key_line:?}"));
    assert!(!admin_key.is_empty());
    let (na_email, na_token) = credentials(&sim.line().await, "non-admin account: ");
    assert_ne!(email, na_email);
    let site = sim.line().await;
    assert!(site.starts_with("site: 2 spaces, "), "{site:?}");

    let http = reqwest::Client::new();
    let r = http
        .get(format!("{base}/wiki/api/v2/spaces"))
        .basic_auth(&email, Some(&token))
        .send()
        .await
        .expect("the printed port answers");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"].as_array().map(Vec::len), Some(2), "{v}");

    // The service account is a site admin, the other account is not.
    let create = |e: &str, t: &str| {
        http.post(format!("{base}/wiki/rest/api/group"))
            .basic_auth(e, Some(t))
            .json(&serde_json::json!({ "name": format!("cli-test-{}", e.len()) }))
            .send()
    };
    assert_eq!(create(&email, &token).await.unwrap().status(), 201);
    assert_eq!(create(&na_email, &na_token).await.unwrap().status(), 403);
    // A wrong token is refused.
    let r = http
        .get(format!("{base}/wiki/api/v2/spaces"))
        .basic_auth(&email, Some("not-the-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    sim.stop().await;
}

#[tokio::test]
async fn help_documents_every_flag() {
    let out = timeout(
        START,
        Command::new(BIN)
            .arg("--help")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("--help answers in time")
    .expect("--help runs");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf-8");
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cmd = Args::command();
    cmd.build();
    let mut flags = 0;
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        flags += 1;
        assert!(
            help.contains(&format!("--{long}")),
            "--{long} missing from --help:\n{help}"
        );
        let doc = arg
            .get_help()
            .map(|h| h.to_string())
            .unwrap_or_else(|| panic!("--{long} has no help text"));
        let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(&doc),
            "the help of --{long} ({doc:?}) is not in --help:\n{help}"
        );
        for default in arg.get_default_values() {
            let d = default.to_string_lossy();
            assert!(
                flat.contains(&format!("[default: {d}]")),
                "--{long}: default {d} not shown:\n{help}"
            );
        }
    }
    // port host seed spaces pages users domains latency-ms rate-limit error-rate reset-rate
    // time-zone endpoint-rate-limit media-token-ttl-secs help version
    assert_eq!(flags, 16, "{help}");
    for flag in [
        "--port",
        "--seed",
        "--rate-limit",
        "--latency-ms",
        "--reset-rate",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
}
