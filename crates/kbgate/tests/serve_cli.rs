//! `kbgate serve` as an operator runs it: a live policy reload (SIGHUP, or the file changing)
//! and `kbgate sessions revoke` act on sessions that are already open.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;
use confluence_sim::{SimConfig, SimHandle};

const API_KEY: &str = "serve-cli-api-key-0123456789abcdefghij";
const EMBED_SECRET: &str = "serve-cli-embed-secret-0123456789abcdef";

/// Policy over the simulator's default site: `acme.com` and `hooli.com` read KB,
/// `initech.io` reads API. `acme_domains` is what the acme audience lists.
fn policy(acme_domains: &str) -> String {
    format!(
        r#"
[[audience]]
name = "acme"
domains = [{acme_domains}]
spaces = ["KB"]

[[audience]]
name = "initech"
domains = ["initech.io"]
spaces = ["API"]

[deny]
domains = ["gmail.com"]
"#
    )
}

struct Setup {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    head: String,
    // Keeps the simulator's runtime (and so the simulator) alive for the test.
    _sim: SimHandle,
    _rt: tokio::runtime::Runtime,
}

impl Setup {
    /// A simulator, a working directory with secrets and a `kbgate.toml` listening on a free
    /// port, with the acme audience listing `acme.com` and `hooli.com`.
    fn new() -> Setup {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = rt
            .block_on(confluence_sim::spawn(SimConfig::default()))
            .expect("sim");
        let dir = tempfile::tempdir().expect("tempdir");
        let creds = sim.service_account();
        std::fs::write(dir.path().join("token"), &creds.api_token).expect("token");
        std::fs::write(dir.path().join("embed-secret"), EMBED_SECRET).expect("secret");
        std::fs::write(dir.path().join("api-key"), API_KEY).expect("api key");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let head = format!(
            r#"
[confluence]
base_url = "{}"
email = "{}"
api_token_file = "token"

[store]
url = "sqlite://kb.db"
data_dir = "data"

[portal]
listen = "{addr}"

[embed]
issuer = "https://app.example.com"
audience = "kbgate"
algorithm = "HS256"
secret_file = "embed-secret"
api_key_file = "api-key"
"#,
            sim.base_url(),
            creds.email
        );
        let setup = Setup {
            dir,
            addr,
            head,
            _sim: sim,
            _rt: rt,
        };
        setup.write_policy(r#""acme.com", "hooli.com""#);
        setup
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self, acme_domains: &str) -> String {
        format!("{}{}", self.head, policy(acme_domains))
    }

    fn write_policy(&self, acme_domains: &str) {
        std::fs::write(self.path().join("kbgate.toml"), self.config(acme_domains)).expect("config");
    }

    /// Replaces the config file atomically (rename) with one whose modification time is the
    /// old file's: only a SIGHUP can make the server notice.
    fn replace_policy_keeping_mtime(&self, acme_domains: &str) {
        let path = self.path().join("kbgate.toml");
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        let tmp = self.path().join("kbgate.toml.new");
        std::fs::write(&tmp, self.config(acme_domains)).expect("config");
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.set_modified(mtime))
            .expect("set mtime");
        std::fs::rename(&tmp, &path).expect("rename");
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    }

    /// Replaces the config file atomically, with a fresh modification time.
    fn replace_policy(&self, acme_domains: &str) {
        let path = self.path().join("kbgate.toml");
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        let tmp = self.path().join("kbgate.toml.new");
        std::fs::write(&tmp, self.config(acme_domains)).expect("config");
        // Make sure the time differs even on a coarse clock.
        let later = before.max(SystemTime::now()) + Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.set_modified(later))
            .expect("set mtime");
        std::fs::rename(&tmp, &path).expect("rename");
    }

    /// Starts `kbgate serve` (with its background sync) and waits until the first sync has
    /// mirrored KB and API.
    fn serve(&self) -> Server {
        self.serve_with(&[])
    }

    fn serve_with(&self, args: &[&str]) -> Server {
        let server = Server::start(self.path(), self.addr, args);
        let kb = server.sign_in(API_KEY, "probe@hooli.com", "/");
        let api = server.sign_in(API_KEY, "probe@initech.io", "/");
        let synced = eventually(Duration::from_secs(120), || {
            server.status("/spaces/KB", &kb) == 200 && server.status("/spaces/API", &api) == 200
        });
        assert!(
            synced,
            "the background sync did not finish:\n{}",
            server.log()
        );
        server
    }
}

#[test]
fn sighup_reload_applies_to_open_sessions() {
    let setup = Setup::new();
    // No file watch: only a SIGHUP can make the server re-read its config.
    let mut server = setup.serve_with(&["--config-poll", "0s"]);
    let alice = server.sign_in(API_KEY, "alice@acme.com", "/spaces/KB");
    let hank = server.sign_in(API_KEY, "hank@hooli.com", "/spaces/KB");
    for cookie in [&alice, &hank] {
        assert_eq!(server.status("/spaces/KB", cookie), 200);
    }

    // The file changes, but with the watch off nothing re-reads it ...
    setup.replace_policy(r#""hooli.com""#);
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(
        server.status("/spaces/KB", &alice),
        200,
        "reloaded without SIGHUP (the test cannot tell SIGHUP apart):\n{}",
        server.log()
    );
    // ... SIGHUP makes the server re-read it, and alice's open session is refused (403), or
    // already ended by the reload's sweep (401) ...
    sighup(server.pid());
    assert!(
        eventually(Duration::from_secs(10), || matches!(
            server.status("/", &alice),
            401 | 403
        )),
        "SIGHUP did not reload the policy:\n{}",
        server.log()
    );
    // ... and from then on it is over: the removal ended it (the cookie is told why, 403,
    // and reads nothing; that putting the domain back does not revive it is shown in
    // kbgate-server's sessions tests).
    for path in ["/", "/spaces/KB", "/api/v1/spaces", "/search?q=a"] {
        assert_eq!(server.status(path, &alice), 403, "{path}");
    }
    // hooli.com is still in the audience; the server is still up.
    assert_eq!(server.status("/spaces/KB", &hank), 200);
    assert!(server.alive(), "SIGHUP must not stop the server");
    assert!(server.log().contains("policy reloaded"), "{}", server.log());

    // A broken file on SIGHUP is refused and the running policy stays.
    std::fs::write(setup.path().join("kbgate.toml"), "[[audience]]\nname = 5\n").unwrap();
    sighup(server.pid());
    assert!(
        eventually(Duration::from_secs(10), || server
            .log()
            .contains("reload refused")),
        "{}",
        server.log()
    );
    assert_eq!(server.status("/spaces/KB", &hank), 200);
    assert_eq!(server.status("/spaces/KB", &alice), 403);
    assert!(server.alive());
}

#[test]
fn a_changed_file_is_picked_up_without_a_signal() {
    let setup = Setup::new();
    let server = setup.serve();
    let alice = server.sign_in(API_KEY, "alice@acme.com", "/spaces/KB");
    let hank = server.sign_in(API_KEY, "hank@hooli.com", "/");
    assert_eq!(server.status("/spaces/KB", &alice), 200);

    // bob made no request while acme.com was out: his session ends all the same.
    let bob = server.sign_in(API_KEY, "bob@acme.com", "/spaces/KB");
    assert_eq!(server.status("/spaces/KB", &bob), 200);

    setup.replace_policy(r#""hooli.com""#);
    assert!(
        eventually(Duration::from_secs(15), || matches!(
            server.status("/spaces/KB", &alice),
            401 | 403
        )),
        "the changed file was not picked up:\n{}",
        server.log()
    );
    // Removing the domain ended the session (told why: 403, the refusal page).
    assert_eq!(server.status("/", &alice), 403);
    assert_eq!(server.status("/spaces/KB", &hank), 200);
    // A new sign-in from the removed domain is refused.
    assert_eq!(
        server.sign_in_status(API_KEY, "alice@acme.com", "/spaces/KB"),
        403
    );

    // Putting the domain back is picked up even when the new file keeps the old modification
    // time (`cp -p`, `rsync -t`): the watch compares content. It does not revive the ended
    // sessions — alice's, nor bob's that saw no request in between; signing in again works.
    setup.replace_policy_keeping_mtime(r#""acme.com", "hooli.com""#);
    assert!(
        eventually(Duration::from_secs(15), || server.sign_in_status(
            API_KEY,
            "probe2@acme.com",
            "/"
        ) == 303),
        "{}",
        server.log()
    );
    assert_eq!(server.status("/spaces/KB", &alice), 401);
    assert_eq!(server.status("/spaces/KB", &bob), 401);
    let alice_again = server.sign_in(API_KEY, "alice@acme.com", "/spaces/KB");
    assert_eq!(server.status("/spaces/KB", &alice_again), 200);
}

#[test]
fn sessions_revoke_by_domain_ends_the_subdomains_an_audience_admits() {
    let setup = Setup::new();
    // The acme audience admits subdomains of its domains.
    let config = setup.config(r#""acme.com", "hooli.com""#).replacen(
        "spaces = [\"KB\"]",
        "include_subdomains = true\nspaces = [\"KB\"]",
        1,
    );
    assert!(config.contains("include_subdomains = true"));
    std::fs::write(setup.path().join("kbgate.toml"), config).expect("config");
    let server = setup.serve();
    let erin = server.sign_in(API_KEY, "erin@eu.acme.com", "/spaces/KB");
    let alice = server.sign_in(API_KEY, "alice@acme.com", "/spaces/KB");
    let hank = server.sign_in(API_KEY, "hank@hooli.com", "/spaces/KB");
    let ian = server.sign_in(API_KEY, "ian@initech.io", "/spaces/API");
    for c in [&erin, &alice, &hank] {
        assert_eq!(server.status("/spaces/KB", c), 200);
    }

    let o = kbgate(
        setup.path(),
        &["sessions", "revoke", "--domain", "acme.com"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("2 session(s) revoked"), "{}", text(&o));
    assert_eq!(
        server.status("/spaces/KB", &erin),
        401,
        "the subdomain's session"
    );
    assert_eq!(server.status("/spaces/KB", &alice), 401);
    // Other domains, including ones that merely end in the same letters, keep theirs.
    assert_eq!(server.status("/spaces/KB", &hank), 200);
    assert_eq!(server.status("/spaces/API", &ian), 200);
}

#[test]
fn sessions_revoke_ends_live_sessions_by_email_and_domain() {
    let setup = Setup::new();
    let server = setup.serve();
    let alice = server.sign_in(API_KEY, "alice@acme.com", "/spaces/KB");
    let alice_too = server.sign_in(API_KEY, "alice@acme.com", "/");
    let bob = server.sign_in(API_KEY, "bob@acme.com", "/spaces/KB");
    let hank = server.sign_in(API_KEY, "hank@hooli.com", "/spaces/KB");
    let ian = server.sign_in(API_KEY, "ian@initech.io", "/spaces/API");
    for c in [&alice, &alice_too, &bob, &hank] {
        assert_eq!(server.status("/spaces/KB", c), 200);
    }
    assert_eq!(server.status("/spaces/API", &ian), 200);

    // One person, every session of theirs; the domain is normalised.
    let o = kbgate(
        setup.path(),
        &["sessions", "revoke", "--email", "alice@ACME.COM"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("2 session(s) revoked"), "{}", text(&o));
    assert_eq!(server.status("/spaces/KB", &alice), 401);
    assert_eq!(server.status("/", &alice_too), 401);
    assert_eq!(server.status("/spaces/KB", &bob), 200);

    // A whole domain; other domains keep their sessions.
    let o = kbgate(
        setup.path(),
        &["sessions", "revoke", "--domain", "Acme.com"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("1 session(s) revoked"), "{}", text(&o));
    for path in ["/", "/spaces/KB", "/api/v1/spaces"] {
        assert_eq!(server.status(path, &bob), 401, "{path}");
    }
    assert_eq!(server.status("/spaces/KB", &hank), 200);
    assert_eq!(server.status("/spaces/API", &ian), 200);

    // Revoked means revoked: signing in again opens a new session, the old cookie stays dead.
    let bob_again = server.sign_in(API_KEY, "bob@acme.com", "/spaces/KB");
    assert_eq!(server.status("/spaces/KB", &bob_again), 200);
    assert_eq!(server.status("/spaces/KB", &bob), 401);

    // A look-alike domain ends nothing; bad input is an error, not a silent no-op.
    let o = kbgate(
        setup.path(),
        &["sessions", "revoke", "--domain", "acme.com.evil.net"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("0 session(s) revoked"), "{}", text(&o));
    assert_eq!(server.status("/spaces/KB", &bob_again), 200);
    let o = kbgate(
        setup.path(),
        &["sessions", "revoke", "--email", "not-an-email"],
    );
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let o = kbgate(setup.path(), &["sessions", "revoke"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));

    // Nothing secret reached the server's log.
    let log = server.log();
    for secret in [API_KEY, EMBED_SECRET] {
        assert!(!log.contains(secret), "a secret in the log:\n{log}");
    }
    for cookie in [&alice, &bob, &bob_again, &hank, &ian] {
        let value = cookie.split_once('=').unwrap().1;
        assert!(!log.contains(value), "a session id in the log:\n{log}");
    }
}

/// Under a path prefix the portal answers only below it (`/kb/healthz`, and 404 at
/// `/healthz`): the health check that the container and the systemd unit run reads the prefix
/// from the same config and asks there.
#[test]
fn healthcheck_asks_under_the_path_prefix() {
    let setup = Setup::new();
    let listen = format!("listen = \"{}\"", setup.addr);
    let config = setup.config(r#""acme.com", "hooli.com""#).replace(
        &listen,
        &format!("{listen}\npublic_url = \"http://{}/kb\"", setup.addr),
    );
    assert!(config.contains("/kb\""), "{config}");
    std::fs::write(setup.path().join("kbgate.toml"), config).expect("config");
    let server = Server::start_under(setup.path(), setup.addr, &["--no-sync"], "/kb");
    let root = server.get("/healthz", None).expect("portal");
    assert_eq!(root.status, 404, "outside the prefix");
    for args in [&["healthcheck"][..], &["healthcheck", "--ready"][..]] {
        let up = kbgate(setup.path(), args);
        assert_eq!(up.status.code(), Some(0), "{args:?}: {}", text(&up));
    }
}

/// What a container's or service manager's health check runs: `kbgate healthcheck` fails while
/// nothing listens and passes once `kbgate serve` answers; with `[metrics] listen` set, the
/// binary serves `/metrics` there (and not on the portal).
#[test]
fn healthcheck_and_metrics_listener_of_a_running_serve() {
    let setup = Setup::new();
    let metrics_at: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(
        setup.path().join("kbgate.toml"),
        format!(
            "{}\n[metrics]\nlisten = \"{metrics_at}\"\n{}",
            setup.head,
            policy(r#""acme.com", "hooli.com""#)
        ),
    )
    .expect("config");
    let down = kbgate(setup.path(), &["healthcheck", "--timeout", "2s"]);
    assert_eq!(down.status.code(), Some(1), "{}", text(&down));
    assert!(text(&down).contains("unhealthy"), "{}", text(&down));

    let server = setup.serve();
    for args in [&["healthcheck"][..], &["healthcheck", "--ready"][..]] {
        let up = kbgate(setup.path(), args);
        assert_eq!(up.status.code(), Some(0), "{args:?}: {}", text(&up));
    }
    let elsewhere = format!("127.0.0.1:{}", free_port());
    let other = kbgate(setup.path(), &["healthcheck", "--addr", &elsewhere]);
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));

    let scrape = request(metrics_at, "GET", "/metrics", &[], "").expect("scrape");
    assert_eq!(scrape.status, 200, "{}", server.log());
    assert!(
        scrape
            .body
            .contains("kbgate_http_requests_total{route=\"/healthz\""),
        "{}",
        scrape.body
    );
    assert_eq!(server.get("/metrics", None).expect("portal").status, 404);

    // A reload that moves the metrics listener: applied only by a restart, and said so.
    let moved: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(
        setup.path().join("kbgate.toml"),
        format!(
            "{}\n[metrics]\nlisten = \"{moved}\"\n{}",
            setup.head,
            policy(r#""acme.com", "hooli.com""#)
        ),
    )
    .expect("config");
    sighup(server.pid());
    assert!(
        eventually(Duration::from_secs(20), || server
            .log()
            .contains("take effect only after a restart: metrics.listen")),
        "{}",
        server.log()
    );
    let still = request(metrics_at, "GET", "/metrics", &[], "").expect("scrape");
    assert_eq!(still.status, 200, "the running listener stays");
}
