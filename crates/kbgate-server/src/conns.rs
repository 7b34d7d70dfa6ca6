//! Connection hygiene: the accept loop under the portal.
//!
//! - Every connection is served by hyper's HTTP/1 connection builder under a watchdog that
//!   closes it when a request header takes longer than `header_read_timeout` (counted from
//!   the accept, or from the first byte after an idle spell: slow-header clients) or when it
//!   makes no progress for `idle_timeout` (idle keep-alive, stalled readers and writers).
//! - Open connections are counted in total and per client; a connection over either limit is
//!   answered at once with a fixed 503 (full) or 429 (this client holds too many) and closed,
//!   without reading a request, so a refusal costs the server nothing but the accept.
//! - Accept errors (`EMFILE`, `ENFILE`, `ENOBUFS`, …) neither end nor spin the loop: it backs
//!   off (10 ms doubling to 1 s) and logs once per run of failures.
//! - On shutdown it stops accepting, asks every connection to finish (idle ones close at
//!   once, requests in flight complete) and returns when all have ended.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::ratelimit::client_key;

/// The connection settings of `[portal]` (validated by `kbgate-config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnLimits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_per_client: usize,
    /// Peers whose connections count only against the global limit: behind a load balancer
    /// every connection comes from the proxy, and which client it carries is known only per
    /// request (`X-Forwarded-For`), so per-client connection limits belong to the proxy.
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
}

/// Where connections come from: a `TcpListener`, or a fake one in tests.
pub(crate) trait Accept: Send {
    fn accept_one(&mut self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send;
}

impl Accept for TcpListener {
    fn accept_one(&mut self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        self.accept()
    }
}

/// What answers the requests of a connection: the router, or the portal with its direct
/// page-view route in front of the router (`crate::hot`).
pub(crate) trait Handle: Clone + Send + Sync + 'static {
    fn handle(
        self,
        req: hyper::Request<Incoming>,
    ) -> impl Future<Output = axum::response::Response> + Send;
}

impl Handle for Router {
    async fn handle(self, req: hyper::Request<Incoming>) -> axum::response::Response {
        match self.oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        }
    }
}

/// Accepts and serves connections with `router` until `shutdown` completes, then drains them.
pub(crate) async fn run(
    mut listener: impl Accept,
    router: impl Handle,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let limiter = Arc::new(Limiter::new(&limits));
    let limits = Arc::new(limits);
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut backoff = AcceptBackoff::default();
    let mut refusals = RefusalLog::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept_one() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff.succeeded();
                accepted
            }
            Err(e) => {
                if let Some(delay) = backoff.failed(&e) {
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                continue;
            }
        };
        match limiter.admit(peer.ip()) {
            Ok(permit) => {
                let (router, limits, stop) = (router.clone(), limits.clone(), stop.clone());
                tracker.spawn(serve_connection(stream, peer, router, limits, permit, stop));
            }
            Err(refusal) => {
                refusals.note(refusal, peer);
                refuse(stream, refusal);
            }
        }
    }
    // Stop accepting (the OS refuses new connections from here on), then let the open ones
    // finish: idle ones close at once, requests in flight complete, stalled ones meet the
    // watchdog's deadlines.
    drop(listener);
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

/// Serves one connection until it ends, its watchdog expires or, after shutdown began, its
/// last request is answered.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: impl Handle,
    limits: Arc<ConnLimits>,
    permit: Permit,
    stop: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let busy = Busy::begin(activity.clone());
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let response = router.handle(req).await;
                drop(busy);
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watchdog below times headers. hyper's own header timer starts again whenever a
    // connection goes idle, so it would also close kept-alive connections after the header
    // timeout; and without a timer set it only logs a warning per connection.
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let next = match activity.verdict(Instant::now(), &limits) {
            Verdict::CheckAt(at) => at,
            Verdict::Expired(why) => {
                tracing::debug!(%peer, reason = why, "closing connection");
                break;
            }
        };
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            () = tokio::time::sleep_until(next) => {}
            () = stop.cancelled(), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
    drop(permit);
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_connections` are open.
    Full,
    /// This client holds `max_connections_per_client`.
    ClientFull,
}

/// Answers a refused connection without reading a request: a fixed response written once,
/// without waiting (a fresh socket's send buffer takes it whole), then the socket is closed.
/// What the client already sent is drained first (without waiting), so closing does not
/// reset the connection before the client reads the answer.
fn refuse(stream: TcpStream, why: Refusal) {
    let (status, body) = match why {
        Refusal::Full => (
            "503 Service Unavailable",
            "The server is busy. Please try again in a moment.\n",
        ),
        Refusal::ClientFull => (
            "429 Too Many Requests",
            "Too many open connections from your address. Please close some and try again.\n",
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut sink = [0u8; 4096];
    for _ in 0..4 {
        match stream.try_read(&mut sink) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
    let _ = stream.try_write(response.as_bytes());
}

/// Logs refusals at most once per [`RefusalLog::EVERY`], with how many there were: a client
/// hammering the limit must not flood the log.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    full: u64,
    client_full: u64,
}

impl RefusalLog {
    const EVERY: Duration = Duration::from_secs(10);

    fn note(&mut self, why: Refusal, peer: SocketAddr) {
        match why {
            Refusal::Full => self.full += 1,
            Refusal::ClientFull => self.client_full += 1,
        }
        let now = Instant::now();
        if self.last.is_some_and(|last| now - last < Self::EVERY) {
            return;
        }
        self.last = Some(now);
        tracing::warn!(
            full = self.full,
            client_full = self.client_full,
            last_peer = %peer,
            "refused connections over the limits (portal.max_connections, portal.max_connections_per_client)"
        );
        self.full = 0;
        self.client_full = 0;
    }
}

/// Counts open connections, in total and per client.
struct Limiter {
    max: usize,
    max_per_client: usize,
    trusted: Vec<ipnet::IpNet>,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_client: HashMap<String, usize>,
}

impl Limiter {
    fn new(limits: &ConnLimits) -> Limiter {
        Limiter {
            max: limits.max_connections,
            max_per_client: limits.max_per_client,
            trusted: limits.trusted_proxies.clone(),
            open: Mutex::new(Open::default()),
        }
    }

    /// A permit for one more connection from `peer`, held while the connection is open.
    /// Clients are keyed like the per-client rate limits (IPv4 address, IPv6 /64); a trusted
    /// proxy counts only against the global limit.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Permit, Refusal> {
        let key = (!self.trusted.iter().any(|n| n.contains(&peer))).then(|| client_key(Some(peer)));
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = &key
            && open.per_client.get(key).copied().unwrap_or(0) >= self.max_per_client
        {
            return Err(Refusal::ClientFull);
        }
        if open.total >= self.max {
            return Err(Refusal::Full);
        }
        open.total += 1;
        if let Some(key) = &key {
            *open.per_client.entry(key.clone()).or_insert(0) += 1;
        }
        Ok(Permit {
            limiter: self.clone(),
            key,
        })
    }

    #[cfg(test)]
    fn open(&self) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        (open.total, open.per_client.len())
    }
}

/// One admitted connection; dropping it frees the slot.
struct Permit {
    limiter: Arc<Limiter>,
    key: Option<String>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self
            .limiter
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(key) = &self.key
            && let Some(n) = open.per_client.get_mut(key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_client.remove(key);
            }
        }
    }
}

/// Backs off after accept errors that are not about one connection (`EMFILE` and the like:
/// the pending connection stays queued, so retrying at once would spin).
#[derive(Debug)]
struct AcceptBackoff {
    delay: Duration,
    failures: u64,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);
}

impl Default for AcceptBackoff {
    fn default() -> AcceptBackoff {
        AcceptBackoff {
            delay: Self::FIRST,
            failures: 0,
        }
    }
}

impl AcceptBackoff {
    /// How long to wait before the next accept, `None` for an error of one connection only.
    fn failed(&mut self, e: &io::Error) -> Option<Duration> {
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionRefused
        ) {
            return None;
        }
        self.failures += 1;
        if self.failures == 1 {
            tracing::error!(
                error = %e,
                "accepting connections failed; retrying with backoff (out of file descriptors? \
                 lower portal.max_connections or raise the open-file limit)"
            );
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(Self::MAX);
        Some(delay)
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::warn!(
                failures = self.failures,
                "accepting connections again after errors"
            );
        }
        *self = AcceptBackoff::default();
    }
}

/// What a connection is doing, for the watchdog. Times are milliseconds since the accept.
struct Activity {
    start: Instant,
    /// Requests handed to the router and not yet answered.
    in_flight: AtomicUsize,
    /// When the header being read began ([`NONE`]: no header is being read). A new
    /// connection starts reading one at the accept.
    head_since: AtomicU64,
    /// When the last request was answered.
    idle_since: AtomicU64,
    /// The last byte read or written.
    last_io: AtomicU64,
}

/// No time.
const NONE: u64 = u64::MAX;

/// The watchdog's decision.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Look again at this time (or when the connection does something).
    CheckAt(Instant),
    /// Close the connection: which deadline passed.
    Expired(&'static str),
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            head_since: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            last_io: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    fn read(&self) {
        let now = self.now_ms();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0 {
            // The first byte of the next request: its header deadline starts.
            let _ =
                self.head_since
                    .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now_ms(), Ordering::Relaxed);
    }

    fn verdict(&self, now: Instant, limits: &ConnLimits) -> Verdict {
        let last_io = self.last_io.load(Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // A request in progress may wait on the store; it must not stall on the client
            // (a trickled body) for longer than the idle timeout.
            let deadline = self.at(last_io) + limits.idle_timeout;
            return deadline_verdict(now, deadline, "request stalled");
        }
        let head = self.head_since.load(Ordering::Acquire);
        if head != NONE {
            return deadline_verdict(
                now,
                self.at(head) + limits.header_read_timeout,
                "header read timeout",
            );
        }
        let idle = self.idle_since.load(Ordering::Relaxed).max(last_io);
        deadline_verdict(now, self.at(idle) + limits.idle_timeout, "idle timeout")
    }
}

fn deadline_verdict(now: Instant, deadline: Instant, why: &'static str) -> Verdict {
    if now >= deadline {
        Verdict::Expired(why)
    } else {
        Verdict::CheckAt(deadline)
    }
}

/// A request in the router: while one is, the connection is busy, not idle.
struct Busy(Arc<Activity>);

impl Busy {
    fn begin(activity: Arc<Activity>) -> Busy {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_since.store(NONE, Ordering::Release);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        let now = a.now_ms();
        a.idle_since.store(now, Ordering::Relaxed);
        a.last_io.store(now, Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The socket, recording reads and writes for the watchdog.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_client: usize, trusted: &[&str]) -> ConnLimits {
        ConnLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: max,
            max_per_client: per_client,
            trusted_proxies: trusted.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_over_its_limit_is_refused_while_others_are_admitted() {
        let limiter = Arc::new(Limiter::new(&limits(5, 2, &[])));
        let a1 = limiter.admit(ip("203.0.113.1")).unwrap();
        let _a2 = limiter.admit(ip("203.0.113.1")).unwrap();
        assert_eq!(
            limiter.admit(ip("203.0.113.1")).err(),
            Some(Refusal::ClientFull)
        );
        let _b = limiter.admit(ip("203.0.113.2")).unwrap();
        drop(a1);
        let _a3 = limiter.admit(ip("203.0.113.1")).unwrap();
        assert_eq!(limiter.open(), (3, 2));
    }

    #[test]
    fn the_global_limit_holds_and_slots_come_back() {
        let limiter = Arc::new(Limiter::new(&limits(3, 3, &[])));
        let held: Vec<Permit> = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
            .iter()
            .map(|a| limiter.admit(ip(a)).unwrap())
            .collect();
        assert_eq!(limiter.admit(ip("198.51.100.4")).err(), Some(Refusal::Full));
        drop(held);
        assert_eq!(limiter.open(), (0, 0), "nothing left counted");
        assert!(limiter.admit(ip("198.51.100.4")).is_ok());
    }

    #[test]
    fn ipv6_clients_are_keyed_per_64_and_trusted_proxies_only_count_globally() {
        let limiter = Arc::new(Limiter::new(&limits(10, 1, &["10.0.0.0/8"])));
        let _v6 = limiter.admit(ip("2001:db8:1:2::1")).unwrap();
        // Another address in the same /64 is the same client.
        assert_eq!(
            limiter.admit(ip("2001:db8:1:2::ffff")).err(),
            Some(Refusal::ClientFull)
        );
        let proxied: Vec<Permit> = (0..5)
            .map(|_| limiter.admit(ip("10.0.0.7")).unwrap())
            .collect();
        assert_eq!(limiter.open(), (6, 1));
        drop(proxied);
    }

    #[test]
    fn accept_errors_back_off_except_per_connection_ones() {
        let mut b = AcceptBackoff::default();
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(b.failed(&reset), None);
        let emfile = io::Error::from_raw_os_error(24);
        let delays: Vec<Duration> = (0..10).map(|_| b.failed(&emfile).unwrap()).collect();
        assert_eq!(delays[0], AcceptBackoff::FIRST);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*delays.last().unwrap(), AcceptBackoff::MAX);
        b.succeeded();
        assert_eq!(b.failed(&emfile), Some(AcceptBackoff::FIRST));
    }

    /// Fails every accept with `EMFILE` (and counts the attempts); after `then_serve` failures
    /// hands over `stream` once, then waits forever.
    struct Emfile {
        attempts: Arc<AtomicUsize>,
        then_serve: usize,
        stream: Option<(TcpStream, SocketAddr)>,
    }

    impl Accept for Emfile {
        async fn accept_one(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
            let n = self.attempts.fetch_add(1, Ordering::SeqCst);
            if n >= self.then_serve
                && let Some(s) = self.stream.take()
            {
                return Ok(s);
            }
            if n >= self.then_serve {
                std::future::pending::<()>().await;
            }
            Err(io::Error::from_raw_os_error(24))
        }
    }

    fn ping_router() -> Router {
        Router::new().route("/ping", axum::routing::get(|| async { "pong" }))
    }

    #[tokio::test(start_paused = true)]
    async fn emfile_neither_spins_nor_ends_the_accept_loop() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let fake = Emfile {
            attempts: attempts.clone(),
            then_serve: usize::MAX,
            stream: None,
        };
        let stop = CancellationToken::new();
        let looped = tokio::spawn(run(
            fake,
            ping_router(),
            limits(10, 10, &[]),
            stop.clone().cancelled_owned(),
        ));
        // Ten (virtual) seconds of EMFILE: a spinning loop would try millions of times; this
        // one waits 10 ms, 20 ms, … up to 1 s between tries.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let tried = attempts.load(Ordering::SeqCst);
        assert!((8..=20).contains(&tried), "{tried} accept attempts in 10 s");
        assert!(!looped.is_finished(), "the loop is still running");
        stop.cancel();
        looped.await.unwrap();
    }

    #[tokio::test]
    async fn after_emfile_the_next_connection_is_served() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let accepted = listener.accept().await.unwrap();
        let attempts = Arc::new(AtomicUsize::new(0));
        let fake = Emfile {
            attempts: attempts.clone(),
            then_serve: 3,
            stream: Some(accepted),
        };
        let stop = CancellationToken::new();
        let looped = tokio::spawn(run(
            fake,
            ping_router(),
            limits(10, 10, &[]),
            stop.clone().cancelled_owned(),
        ));
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        client
            .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("pong"), "{answer}");
        assert!(attempts.load(Ordering::SeqCst) >= 4);
        stop.cancel();
        looped.await.unwrap();
    }
}
