//! Helpers shared by the binary's black-box tests: running `kbgate`, a `kbgate serve`
//! child process, and a tiny HTTP/1.1 client (the binary's tests have no HTTP client crate).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `kbgate --config kbgate.toml ARGS` in `dir` and waits for it.
pub fn kbgate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kbgate"))
        .current_dir(dir)
        .args(["--config", "kbgate.toml"])
        .args(args)
        .env_remove("KBGATE_CONFIG")
        .env("KBGATE_LOG", "warn")
        .output()
        .expect("run kbgate")
}

/// Stdout and stderr of a finished run, for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A port that was free a moment ago (`kbgate serve` is given an address, and derives its
/// public URL from it, so port 0 will not do).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `kbgate serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// Starts `kbgate --config kbgate.toml serve ARGS` in `dir` (whose config listens on
    /// `addr`) and waits until `/healthz` answers. Its log goes to `dir/serve.log`.
    pub fn start(dir: &Path, addr: SocketAddr, args: &[&str]) -> Server {
        Server::start_under(dir, addr, args, "")
    }

    /// [`Server::start`] for a config whose `public_url` has the path `prefix` (`/kb`): the
    /// portal, its health checks included, answers only below it.
    pub fn start_under(dir: &Path, addr: SocketAddr, args: &[&str], prefix: &str) -> Server {
        let log = dir.join("serve.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_kbgate"))
            .current_dir(dir)
            .args(["--config", "kbgate.toml", "serve"])
            .args(args)
            .env_remove("KBGATE_CONFIG")
            .env("KBGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("spawn kbgate serve");
        let mut server = Server { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().expect("try_wait") {
                panic!("kbgate serve exited with {status}:\n{}", server.log());
            }
            if server
                .get(&format!("{prefix}/healthz"), None)
                .is_ok_and(|r| r.status == 200)
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "kbgate serve did not come up:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id (to send signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: the process ends at once, without any cleanup of its own.
    pub fn kill_hard(&mut self) {
        // `Child::kill` sends SIGKILL on Unix.
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// `GET path` with an optional `Cookie` header value.
    pub fn get(&self, path: &str, cookie: Option<&str>) -> std::io::Result<Reply> {
        let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
        request(self.addr, "GET", path, &headers, "")
    }

    /// The status of `GET path` with a session cookie.
    pub fn status(&self, path: &str, cookie: &str) -> u16 {
        self.get(path, Some(cookie))
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()))
            .status
    }

    /// Signs `email` in through the back-channel hand-over: the host app's backend asks for
    /// a one-time URL with its API key, the browser opens it. Returns the `Cookie` value.
    pub fn sign_in(&self, api_key: &str, email: &str, return_to: &str) -> String {
        let auth = format!("Bearer {api_key}");
        let body = serde_json::json!({ "email": email, "return_to": return_to }).to_string();
        let r = request(
            self.addr,
            "POST",
            "/api/v1/handover",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            &body,
        )
        .expect("handover");
        assert_eq!(r.status, 200, "handover for {email}: {}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("handover JSON");
        let url = v["url"].as_str().expect("a url");
        let base = format!("http://{}", self.addr);
        let path = url
            .strip_prefix(&base)
            .unwrap_or_else(|| panic!("hand-over URL {url} is not on {base}"));
        assert!(!path.contains(email), "the URL carries no email");
        let r = self.get(path, None).expect("open the hand-over URL");
        assert_eq!(r.status, 303, "opening the hand-over URL of {email}");
        assert_eq!(r.header("location"), Some(return_to));
        r.session_cookie().expect("a session cookie")
    }

    /// Tries the back-channel hand-over for `email`: the hand-over's status when it is
    /// refused (403 for an email the policy refuses), else the status of opening the URL
    /// (303 with a session).
    pub fn sign_in_status(&self, api_key: &str, email: &str, return_to: &str) -> u16 {
        let auth = format!("Bearer {api_key}");
        let body = serde_json::json!({ "email": email, "return_to": return_to }).to_string();
        let r = request(
            self.addr,
            "POST",
            "/api/v1/handover",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            &body,
        )
        .expect("handover");
        if r.status != 200 {
            return r.status;
        }
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("handover JSON");
        let url = v["url"].as_str().expect("a url");
        let base = format!("http://{}", self.addr);
        let path = url.strip_prefix(&base).expect("a local hand-over URL");
        self.get(path, None).expect("open the hand-over URL").status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGHUP to a process we started.
pub fn sighup(pid: u32) {
    let st = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -HUP {pid}");
}

/// Calls `f` every 100 ms until it is true or `timeout` passes; returns whether it became true.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An HTTP response: status, headers (names lower-cased) and body text.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `name=value` of a session cookie this response sets (ignores removals).
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, v)| n == "set-cookie" && !v.contains("Max-Age=0"))
            .find(|(_, v)| v.contains("kbgate_session="))
            .and_then(|(_, v)| v.split(';').next())
            .map(str::to_owned)
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut payload = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        payload = dechunk(&payload).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&payload).into_owned(),
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}
