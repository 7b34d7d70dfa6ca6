//! Connection hygiene on loopback (issue #12, item 8): one client holding hundreds of idle
//! and half-sent connections does not lock others out; slow connections are closed after the
//! header timeout; connections over the per-client and the global limit are refused at once.
//!
//! Clients are told apart by their loopback source address (127.0.0.2, .3, .4: Linux routes
//! all of 127.0.0.0/8 to lo). Timeouts are small in the test config; the only waits are
//! bounds against hanging (`BOUND`), never assertions about speed.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{hs256_verifier, spawn_app_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

/// How long any one wait may take before the test fails instead of hanging.
const BOUND: Duration = Duration::from_secs(60);

/// A connection to `server` from the loopback address `from`.
async fn connect_from(from: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// How a connection the client left alone ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The server answered with this status and closed it.
    Refused(u16),
    /// The server closed it without a word.
    Closed,
}

/// Reads until the server closes the connection (at most [`BOUND`]).
async fn outcome(mut stream: TcpStream) -> Outcome {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let read = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("the server never closed the connection");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    if got.is_empty() {
        return Outcome::Closed;
    }
    let text = String::from_utf8_lossy(&got);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    Outcome::Refused(status)
}

/// Sends `GET path` on a kept-alive connection and reads one response: (status, body).
async fn get(stream: &mut TcpStream, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: kb.test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let (head_len, body_len) = loop {
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("no response")
            .unwrap();
        assert!(n > 0, "closed before the response: {got:?}");
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse::<usize>().unwrap())
                .expect("content-length");
            break (end + 4, len);
        }
    };
    while got.len() < head_len + body_len {
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("truncated body")
            .unwrap();
        assert!(n > 0, "closed inside the body");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let status = text[9..12].parse().unwrap();
    (status, text[head_len..].to_string())
}

/// A fresh connection from `from` asks for `/healthz`: its status (a refusal shows as its
/// status too).
async fn fresh_get(from: &str, server: SocketAddr) -> u16 {
    let mut stream = connect_from(from, server).await;
    let request = "GET /healthz HTTP/1.1\r\nHost: kb.test\r\nConnection: close\r\n\r\n";
    // A refused connection may already be closed when the request goes out.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(BOUND, stream.read_to_end(&mut got))
        .await
        .expect("no answer");
    let text = String::from_utf8_lossy(&got);
    text.get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {text:?}"))
}

/// Opens `n` connections from `from`; every other one sends half a request header (no blank
/// line), the rest send nothing. Each is then left alone and watched until the server ends it.
async fn hold(from: &str, server: SocketAddr, n: usize) -> JoinSet<Outcome> {
    let mut watched = JoinSet::new();
    for i in 0..n {
        let mut stream = connect_from(from, server).await;
        if i % 2 == 1 {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: kb.test\r\n")
                .await
                .unwrap();
        }
        watched.spawn(outcome(stream));
    }
    watched
}

/// Waits for `k` of the watched connections to end; their outcomes.
async fn first(watched: &mut JoinSet<Outcome>, k: usize) -> Vec<Outcome> {
    let mut ended = Vec::new();
    while ended.len() < k {
        let next = tokio::time::timeout(BOUND, watched.join_next())
            .await
            .expect("connections still open")
            .expect("fewer connections than expected")
            .unwrap();
        ended.push(next);
    }
    ended
}

fn count(outcomes: &[Outcome], which: &Outcome) -> usize {
    outcomes.iter().filter(|o| *o == which).count()
}

#[tokio::test]
async fn one_client_holding_hundreds_of_connections_locks_no_one_else_out() {
    let app = spawn_app_with(
        |p| {
            p.max_connections = 100;
            p.max_connections_per_client = 60;
            p.header_read_timeout = Duration::from_secs(3);
            p.idle_timeout = Duration::from_secs(120);
        },
        hs256_verifier(),
    )
    .await;
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();

    // A holds 100 connections, idle or half-sent: 60 are admitted, the other 40 are refused
    // at once (429, this client holds too many).
    let mut a = hold("127.0.0.2", server, 100).await;
    let refused = first(&mut a, 40).await;
    assert_eq!(
        count(&refused, &Outcome::Refused(429)),
        40,
        "the first connections to end are the refused ones: {refused:?}"
    );

    // C is served meanwhile, on a connection it keeps open.
    let mut c = connect_from("127.0.0.3", server).await;
    let (status, body) = get(&mut c, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ok"), "{body}");

    // B fills the server: 100 - 60 (A) - 1 (C) = 39 admitted, the rest refused with 503.
    let mut b = hold("127.0.0.4", server, 60).await;
    let refused = first(&mut b, 21).await;
    assert_eq!(count(&refused, &Outcome::Refused(503)), 21, "{refused:?}");

    // Full: a new connection is refused at once, but C's open connection is still served.
    assert_eq!(fresh_get("127.0.0.3", server).await, 503);
    let (status, _) = get(&mut c, "/healthz").await;
    assert_eq!(status, 200);

    // The slow connections are closed by the header timeout, without an answer.
    let a_rest = first(&mut a, 60).await;
    assert_eq!(count(&a_rest, &Outcome::Closed), 60, "{a_rest:?}");
    let b_rest = first(&mut b, 39).await;
    assert_eq!(count(&b_rest, &Outcome::Closed), 39, "{b_rest:?}");
    assert!(a.is_empty() && b.is_empty());

    // Their slots come back: A and C connect again (a closed connection's slot is freed just
    // after its socket closes, so allow a few tries).
    for from in ["127.0.0.2", "127.0.0.3"] {
        let mut served = false;
        for _ in 0..100 {
            if fresh_get(from, server).await == 200 {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            served,
            "{from} is not served after the slow connections closed"
        );
    }
    // C's kept-alive connection outlived them all (its idle timeout is long).
    let (status, _) = get(&mut c, "/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn trickled_headers_and_idle_connections_are_closed() {
    let app = spawn_app_with(
        |p| {
            p.header_read_timeout = Duration::from_secs(1);
            p.idle_timeout = Duration::from_secs(1);
        },
        hs256_verifier(),
    )
    .await;
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();

    // Slowloris: one header byte every 200 ms would take 10 s for this request; the server
    // hangs up long before, without answering.
    let request = b"GET /healthz HTTP/1.1\r\nHost: kb.test\r\nX-Padding: aaaaaaaa\r\n\r\n";
    let stream = connect_from("127.0.0.2", server).await;
    let (mut reader, mut writer) = stream.into_split();
    let trickle = async {
        for byte in request {
            if writer.write_all(&[*byte]).await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        true
    };
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(BOUND, reader.read_to_end(&mut answer));
    tokio::pin!(trickle, closed);
    let ended = tokio::select! {
        sent_all = &mut trickle => !sent_all,
        read = &mut closed => { read.expect("never closed").ok(); true }
    };
    assert!(ended, "the whole header was sent before the server hung up");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));

    // A kept-alive connection is served, then closed once idle.
    let mut idle = connect_from("127.0.0.3", server).await;
    let (status, _) = get(&mut idle, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(outcome(idle).await, Outcome::Closed);
}
