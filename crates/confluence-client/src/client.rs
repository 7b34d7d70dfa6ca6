//! The transport: one reqwest client, one throttle, one retry policy, one set of counters.
//! Every endpoint method goes through [`Client::run`], so rate limiting and retries live in
//! exactly one place.
//!
//! Retry rules (why they are safe):
//! * **Idempotent calls** (every GET, and read-only POSTs: check-access-by-email, users-bulk,
//!   GuestDataQuery) are retried on 429, 503, 500, 502, 504, timeouts and connection
//!   errors/resets.
//! * **Non-idempotent writes** (invite, add/remove permission or group member, create group or
//!   user, knowledge-base switches, the cgraphql mutation) are retried only when the server
//!   certainly did not act: a 429, a 503 carrying `Retry-After` (the rate limiter refused the
//!   request), or a failure to connect at all. A 500/502/504 or a reset mid-request is
//!   surfaced, because the write may have happened; callers reconcile by reading state again.
//! * `Retry-After` (seconds or an HTTP date) is honoured, and also pauses every other call of
//!   the same client until it has passed, so a burst does not keep hammering. Without it the
//!   delay is exponential with jitter between `initial_backoff` and `max_backoff`.
//!
//! Retries are visible at `info`, one line per *wave* (the calls refused at about the same
//! moment, which wait and retry together — see [`Waves`]), so a sync slowed by a 429 storm or
//! a flaky site never looks hung; each call's retry is logged at `debug`.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use base64::Engine;
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;
use url::Url;

use crate::config::{ClientConfig, RetryConfig};
use crate::error::{Error, Redactor, Result, atlassian_message};
use crate::stats::{CallStats, StatsCell};

/// Typed client for one Confluence Cloud site (or the simulator). Cheap to clone: clones share
/// the connection pool, the throttle, the retry pause and the call counters.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    /// API calls: never follows redirects by itself (downloads follow them by hand, see
    /// [`Client::stream_file`](crate::Client)).
    http: reqwest::Client,
    /// Requests to another origin (the media host of a download redirect): never carries
    /// Confluence credentials, follows no redirects.
    pub(crate) plain: reqwest::Client,
    base: Url,
    site: Option<Url>,
    auth: Auth,
    limiter: Option<DefaultDirectRateLimiter>,
    retry: RetryConfig,
    timeout: Duration,
    pub(crate) stats: StatsCell,
    redactor: Redactor,
    /// Set by a `Retry-After`: no request of this client leaves before this instant.
    paused_until: AsyncMutex<Option<Instant>>,
    /// Retries grouped for the `info` log.
    waves: std::sync::Mutex<Waves>,
}

/// How long after a wave's first refused call other refusals still join it (bounded by that
/// call's own wait). Calls sent together (a page of downloads, a burst) are refused within
/// milliseconds of each other; a retry that fails again comes a backoff later, in a new wave.
const WAVE_GATHER: Duration = Duration::from_millis(250);

/// Retries grouped into waves for the `info` log. The first refused call of a wave leads it:
/// it waits [`WAVE_GATHER`] (or its whole wait, if shorter) of its own backoff, then logs one
/// line for every call that joined by then, and sleeps the rest. Per-call detail is at
/// `debug`.
#[derive(Default)]
struct Waves {
    next_id: u64,
    /// The latest wave, and older ones whose line is still to be written (a new wave may
    /// open between an older one's end and its leader's line).
    waves: Vec<Wave>,
}

struct Wave {
    id: u64,
    /// Refusals until then join this wave.
    open_until: Instant,
    calls: u32,
    /// What Confluence answered (`429`, `503`, `timeout or reset`, …), each named once.
    causes: std::collections::BTreeSet<&'static str>,
}

impl Waves {
    /// Counts a refused call that will be retried after `wait`; returns the wave's id when
    /// this call opened a new wave (and so leads it).
    fn join(&mut self, cause: &'static str, wait: Duration) -> Option<u64> {
        let now = Instant::now();
        if let Some(w) = self.waves.last_mut().filter(|w| now < w.open_until) {
            w.calls += 1;
            w.causes.insert(cause);
            return None;
        }
        self.next_id += 1;
        // A leader cancelled in its wait never writes its line: keep a bounded few.
        if self.waves.len() >= 16 {
            self.waves.remove(0);
        }
        self.waves.push(Wave {
            id: self.next_id,
            open_until: now + WAVE_GATHER.min(wait),
            calls: 1,
            causes: [cause].into(),
        });
        Some(self.next_id)
    }

    /// The wave's calls and causes, once, for its leader's line; the wave is done then.
    fn announce(&mut self, id: u64) -> Option<(u32, String)> {
        let at = self.waves.iter().position(|w| w.id == id)?;
        let w = self.waves.remove(at);
        let causes: Vec<&str> = w.causes.iter().copied().collect();
        Some((w.calls, causes.join("/")))
    }
}

impl FailKind {
    /// How an operator reads this failure in the retry line.
    fn cause(self) -> &'static str {
        match self {
            FailKind::Status(429) => "429",
            FailKind::Status(500) => "500",
            FailKind::Status(502) => "502",
            FailKind::Status(503) => "503",
            FailKind::Status(504) => "504",
            FailKind::Status(_) => "an error",
            FailKind::Connect => "no connection",
            FailKind::Transport => "timeout or reset",
        }
    }
}

/// How requests prove who they are.
enum Auth {
    /// Basic `email:api_token` (classic token on the site, or scoped token on the gateway).
    Basic(HeaderValue),
    /// A service account's OAuth 2.0 client credentials: a Bearer token, renewed before expiry.
    OAuth {
        creds: crate::config::OAuthClientCredentials,
        token: AsyncMutex<Option<(HeaderValue, Instant)>>,
    },
}

/// The token endpoint's answer (RFC 6749 §5.1).
#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Rate-limit headers Confluence Cloud sends (kept as seen, for `kbgate doctor`): `Retry-After`,
/// `X-RateLimit-*` (incl. `X-RateLimit-NearLimit`), `RateLimit-Reason` and the IETF draft's
/// `RateLimit`/`RateLimit-Policy` with or without a `Beta-` prefix. Evidence:
/// developer.atlassian.com/cloud/confluence/rate-limiting/ ("Rate limit related headers …
/// Retry-After, X-RateLimit-Reset, X-RateLimit-NearLimit").
pub(crate) fn is_rate_limit_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let n = n.strip_prefix("beta-").unwrap_or(&n);
    n == "retry-after" || n.starts_with("x-ratelimit") || n.starts_with("ratelimit")
}

/// Whether a call may be repeated when the outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Reads (and read-only POSTs): retry every transient failure.
    Idempotent,
    /// Writes: retry only when the server certainly refused before acting.
    Write,
}

/// One logical call (possibly several HTTP requests).
pub(crate) struct Call {
    pub(crate) method: Method,
    /// `METHOD /path/{template}`, the key of [`CallStats::by_endpoint`].
    pub(crate) endpoint: &'static str,
    pub(crate) url: Url,
    pub(crate) body: Option<Bytes>,
    pub(crate) idempotency: Idempotency,
    /// Permission needed, quoted in [`Error::Forbidden`].
    pub(crate) hint: &'static str,
    /// The body is streamed to the caller: no total timeout, only the idle-read one.
    pub(crate) streaming: bool,
}

impl Call {
    pub(crate) fn get(endpoint: &'static str, url: Url, hint: &'static str) -> Self {
        Self {
            method: Method::GET,
            endpoint,
            url,
            body: None,
            idempotency: Idempotency::Idempotent,
            hint,
            streaming: false,
        }
    }

    pub(crate) fn with_json<B: serde::Serialize>(
        method: Method,
        endpoint: &'static str,
        url: Url,
        body: &B,
        idempotency: Idempotency,
        hint: &'static str,
    ) -> Result<Self> {
        let body = serde_json::to_vec(body).map_err(|e| Error::Decode {
            path: url.path().to_owned(),
            source: e,
        })?;
        Ok(Self {
            method,
            endpoint,
            url,
            body: Some(Bytes::from(body)),
            idempotency,
            hint,
            streaming: false,
        })
    }

    pub(crate) fn path(&self) -> String {
        self.url.path().to_owned()
    }
}

/// Outcome of one failed HTTP request.
#[derive(Debug)]
pub(crate) struct Failed {
    kind: FailKind,
    retry_after: Option<Duration>,
    error: Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailKind {
    Status(u16),
    /// Could not connect: the request never reached the server.
    Connect,
    /// Timeout, reset, broken body: the server may have acted.
    Transport,
}

impl Failed {
    pub(crate) fn transport(path: &str, e: reqwest::Error) -> Self {
        let kind = if e.is_connect() {
            FailKind::Connect
        } else {
            FailKind::Transport
        };
        let e = e.without_url();
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            message.push_str(": ");
            message.push_str(&s.to_string());
            src = s.source();
        }
        Self {
            kind,
            retry_after: None,
            error: Error::Transport {
                path: path.to_owned(),
                message,
            },
        }
    }

    fn retryable(&self, idem: Idempotency) -> bool {
        match (self.kind, idem) {
            (FailKind::Status(429), _) | (FailKind::Connect, _) => true,
            (FailKind::Status(503), Idempotency::Write) => self.retry_after.is_some(),
            (FailKind::Status(500 | 502 | 503 | 504), Idempotency::Idempotent) => true,
            (FailKind::Transport, Idempotency::Idempotent) => true,
            _ => false,
        }
    }
}

impl Client {
    /// Builds a client. Fails if the base URL cannot be a site root (not http/https, carries
    /// credentials, or has a query) or if the TLS stack cannot start.
    pub fn new(cfg: ClientConfig) -> Result<Self> {
        let base = cfg.base_url.clone();
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::Config(format!(
                "base_url must be an http(s) site root, got scheme {:?}",
                base.scheme()
            )));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(Error::Config(
                "base_url must not carry credentials; use email and api_token".into(),
            ));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(Error::Config(
                "base_url must not have a query or fragment".into(),
            ));
        }
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            cfg.email,
            cfg.api_token.expose_secret()
        ));
        let mut needles = vec![cfg.api_token.expose_secret().to_owned(), basic.clone()];
        let auth = match &cfg.oauth {
            Some(creds) => {
                needles.push(creds.client_secret.expose_secret().to_owned());
                Auth::OAuth {
                    creds: creds.clone(),
                    token: AsyncMutex::new(None),
                }
            }
            None => {
                let mut auth = HeaderValue::from_str(&format!("Basic {basic}")).map_err(|_| {
                    Error::Config("email or API token contains invalid characters".into())
                })?;
                auth.set_sensitive(true);
                Auth::Basic(auth)
            }
        };
        let builder = || {
            reqwest::Client::builder()
                .user_agent(cfg.user_agent.clone())
                .connect_timeout(cfg.timeout.min(Duration::from_secs(30)))
                // An idle-read bound that also covers long downloads (a total timeout would not).
                .read_timeout(cfg.timeout)
                // Redirects are followed by hand: only a download's redirect is expected, and
                // its target (another origin) must get no credentials.
                .redirect(reqwest::redirect::Policy::none())
        };
        let http = builder()
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {}", e.without_url())))?;
        let plain = builder()
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {}", e.without_url())))?;
        let limiter = NonZeroU32::new(cfg.requests_per_second)
            .map(|rps| RateLimiter::direct(Quota::per_second(rps)));
        if let Some(k) = &cfg.admin_api_key {
            needles.push(k.expose_secret().to_owned());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                plain,
                base,
                site: cfg.site_url.clone(),
                auth,
                limiter,
                retry: cfg.retry.clone(),
                timeout: cfg.timeout,
                stats: StatsCell::default(),
                redactor: Redactor::new(needles),
                paused_until: AsyncMutex::new(None),
                waves: std::sync::Mutex::new(Waves::default()),
            }),
        })
    }

    /// The root API calls go to: the site, or the gateway base for scoped tokens and
    /// service accounts.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The site people know (`https://SITE.atlassian.net`): the site URL when calls go through
    /// the gateway, else the base URL. Links shown or logged use this, never the gateway.
    pub fn site_url(&self) -> &Url {
        self.inner.site.as_ref().unwrap_or(&self.inner.base)
    }

    /// Whether calls go through Atlassian's gateway (scoped token or service account).
    pub fn via_gateway(&self) -> bool {
        self.inner.site.is_some()
    }

    /// Whether calls carry an OAuth 2.0 Bearer token (service account client credentials).
    pub fn uses_oauth(&self) -> bool {
        matches!(self.inner.auth, Auth::OAuth { .. })
    }

    /// The `Authorization` value of the next request; fetches or renews the OAuth access token
    /// when it is missing or about to expire (one fetch for all concurrent callers).
    async fn authorization(&self) -> Result<HeaderValue> {
        match &self.inner.auth {
            Auth::Basic(v) => Ok(v.clone()),
            Auth::OAuth { creds, token } => {
                let mut slot = token.lock().await;
                if let Some((v, until)) = slot.as_ref()
                    && Instant::now() < *until
                {
                    return Ok(v.clone());
                }
                let (v, until) = self.fetch_token(creds).await?;
                *slot = Some((v.clone(), until));
                Ok(v)
            }
        }
    }

    /// Drops a cached OAuth token (after a 401: revoked, or expired early).
    async fn forget_token(&self) {
        if let Auth::OAuth { token, .. } = &self.inner.auth {
            *token.lock().await = None;
        }
    }

    /// Client credentials grant (RFC 6749 §4.4): `grant_type=client_credentials` with the
    /// client id and secret, form-encoded; renewed a minute before `expires_in` runs out.
    async fn fetch_token(
        &self,
        creds: &crate::config::OAuthClientCredentials,
    ) -> Result<(HeaderValue, Instant)> {
        let endpoint = "POST /oauth/token";
        let path = creds.token_url.path().to_owned();
        let failed = |message: String| Error::OAuthToken {
            url: creds.token_url.origin().ascii_serialization() + &path,
            message,
        };
        self.inner.stats.request(endpoint);
        let resp = self
            .inner
            .plain
            .post(creds.token_url.clone())
            .header(header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", creds.client_id.as_str()),
                ("client_secret", creds.client_secret.expose_secret()),
            ])
            .timeout(self.inner.timeout)
            .send()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?;
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            self.inner.stats.failure(endpoint);
            let message = self.inner.redactor.scrub(atlassian_message(&body));
            return Err(failed(format!("{status}: {message}")));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("unreadable token answer: {e}")))?;
        let mut v = HeaderValue::from_str(&format!("Bearer {}", answer.access_token))
            .map_err(|_| failed("the access token has invalid characters".into()))?;
        v.set_sensitive(true);
        let life = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let until = Instant::now() + life.saturating_sub(Duration::from_secs(60));
        Ok((v, until))
    }

    /// A snapshot of the call counters since creation or the last [`Client::reset_stats`].
    pub fn stats(&self) -> CallStats {
        self.inner.stats.snapshot()
    }

    /// Zeroes the call counters (shared by all clones).
    pub fn reset_stats(&self) {
        self.inner.stats.reset();
    }

    /// `base` + path segments (each percent-encoded), e.g. `["wiki","api","v2","pages",id]`.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        // Safe: `new` rejected cannot-be-a-base URLs, the only case where this returns Err.
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().extend(segments);
        }
        url
    }

    /// Resolves a `next` link (absolute, or relative to the site or to its `/wiki` context as
    /// v1 writes them). Refuses links to another origin: credentials must never leave the site.
    pub(crate) fn resolve_next(&self, from: &Url, next: &str) -> Result<Url> {
        let bad = |message: String| Error::InvalidResponse {
            path: from.path().to_owned(),
            message,
        };
        let base = &self.inner.base;
        let on_site = |abs: &Url| {
            self.inner
                .site
                .as_ref()
                .is_some_and(|s| s.origin() == abs.origin())
        };
        let url = if let Ok(abs) = Url::parse(next)
            && on_site(&abs)
        {
            // An absolute link on the site while calls go through the gateway: the same path
            // under the gateway base.
            let prefix = base.path().trim_end_matches('/');
            let rest = &next[abs[..url::Position::BeforePath].len()..];
            base.join(&format!("{prefix}{rest}"))
                .map_err(|e| bad(format!("bad next link: {e}")))?
        } else if let Ok(abs) = Url::parse(next) {
            if abs.origin() != base.origin() {
                return Err(bad(format!(
                    "next link points to another origin ({})",
                    abs.origin().ascii_serialization()
                )));
            }
            abs
        } else if next.starts_with('/') {
            let prefix = base.path().trim_end_matches('/');
            let rel = if next.starts_with("/wiki/") || next == "/wiki" {
                next.to_owned()
            } else {
                format!("/wiki{next}")
            };
            base.join(&format!("{prefix}{rel}"))
                .map_err(|e| bad(format!("bad next link: {e}")))?
        } else {
            from.join(next)
                .map_err(|e| bad(format!("bad next link: {e}")))?
        };
        if &url == from {
            return Err(bad("next link repeats the current page".into()));
        }
        Ok(url)
    }

    /// Sends a call and decodes a JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        Ok(self.json_with_headers(call).await?.1)
    }

    /// Sends a call and returns the answer headers with the decoded JSON body.
    pub(crate) async fn json_with_headers<T: DeserializeOwned>(
        &self,
        call: Call,
    ) -> Result<(HeaderMap, T)> {
        let path = call.path();
        let (headers, body) = self.bytes(call).await?;
        let body = if body.is_empty() {
            Bytes::from_static(b"null")
        } else {
            body
        };
        let value = serde_json::from_slice(&body).map_err(|source| Error::Decode {
            path: path.clone(),
            source,
        })?;
        Ok((headers, value))
    }

    /// Sends a call and reads the whole answer body (retrying body-read failures too).
    pub(crate) async fn bytes(&self, call: Call) -> Result<(HeaderMap, Bytes)> {
        let path = call.path();
        self.run(&call, |resp: Response| {
            let path = path.clone();
            async move {
                let headers = resp.headers().clone();
                let body = resp
                    .bytes()
                    .await
                    .map_err(|e| Failed::transport(&path, e))?;
                Ok((headers, body))
            }
        })
        .await
    }

    /// Sends a call and hands back the live response (for streaming downloads).
    pub(crate) async fn response(&self, call: Call) -> Result<Response> {
        self.run(&call, |resp| async move { Ok(resp) }).await
    }

    /// The single place where requests are throttled, sent, classified and retried.
    async fn run<T, F, Fut>(&self, call: &Call, finish: F) -> Result<T>
    where
        F: Fn(Response) -> Fut,
        Fut: Future<Output = std::result::Result<T, Failed>>,
    {
        let inner = &self.inner;
        let cfg = &inner.retry;
        let attempts = AtomicU32::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(cfg.initial_backoff)
            .with_max_delay(cfg.max_backoff)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(cfg.max_retries as usize)
            .build();
        let exceeded_retry_after = AtomicU32::new(0);
        // The wave this call's next wait leads (0: none), from `notify` to the sleeper.
        let leads = Arc::new(AtomicU64::new(0));
        let result = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            let resp = self.attempt(call).await?;
            finish(resp).await
        })
        .retry(backoff)
        .sleep({
            let inner = Arc::clone(&self.inner);
            let leads = Arc::clone(&leads);
            move |wait: Duration| {
                let inner = Arc::clone(&inner);
                let wave = leads.swap(0, Ordering::Relaxed);
                async move {
                    if wave == 0 {
                        return tokio::time::sleep(wait).await;
                    }
                    // This call opened a wave: let the calls refused with it join, then say
                    // once how many wait and for how long.
                    let gather = WAVE_GATHER.min(wait);
                    tokio::time::sleep(gather).await;
                    let joined = inner
                        .waves
                        .lock()
                        .map(|mut w| w.announce(wave))
                        .unwrap_or(None);
                    if let Some((calls, causes)) = joined {
                        let rest = wait - gather;
                        tracing::info!(
                            calls,
                            wait_ms = wait.as_millis() as u64,
                            "Confluence answered {causes}; retrying {calls} call(s) in {:.1} s",
                            rest.as_secs_f64()
                        );
                    }
                    tokio::time::sleep(wait - gather).await;
                }
            }
        })
        .when(|f: &Failed| f.retryable(call.idempotency))
        .adjust(|f: &Failed, next: Option<Duration>| {
            let next = next?;
            match f.retry_after {
                Some(ra) if ra > cfg.max_retry_after => {
                    exceeded_retry_after.store(1, Ordering::Relaxed);
                    None
                }
                // Honour the server, plus up to 10% so parked callers do not wake in lockstep.
                Some(ra) => Some(ra + ra.mul_f64(rand::random::<f64>() * 0.1)),
                None => Some(next),
            }
        })
        .notify(|f: &Failed, wait: Duration| {
            inner.stats.retry(call.endpoint);
            // A poisoned lock only loses log lines, never a retry.
            if let Ok(mut waves) = inner.waves.lock()
                && let Some(id) = waves.join(f.kind.cause(), wait)
            {
                leads.store(id, Ordering::Relaxed);
            }
            tracing::debug!(
                endpoint = call.endpoint,
                wait_ms = wait.as_millis() as u64,
                error = %f.error,
                "retrying Confluence call"
            );
        })
        .await;
        let prefix = if self.inner.site.is_some() {
            self.inner.base.path().trim_end_matches('/')
        } else {
            ""
        };
        match result {
            Ok(v) => Ok(v),
            Err(f) => {
                let n = attempts.load(Ordering::Relaxed);
                let e = match f.kind {
                    FailKind::Status(429) => Err(Error::RateLimited {
                        path: call.path(),
                        attempts: n,
                    }),
                    FailKind::Status(503)
                        if f.retry_after.is_some()
                            && exceeded_retry_after.load(Ordering::Relaxed) == 1 =>
                    {
                        Err(Error::RateLimited {
                            path: call.path(),
                            attempts: n,
                        })
                    }
                    _ => Err(f.error),
                };
                e.map_err(|e| e.on_site_path(prefix))
            }
        }
    }

    /// One HTTP request: wait for the shared pause and the throttle, send, classify.
    async fn attempt(&self, call: &Call) -> std::result::Result<Response, Failed> {
        let inner = &self.inner;
        let pause = *inner.paused_until.lock().await;
        if let Some(until) = pause {
            tokio::time::sleep_until(until).await;
        }
        if let Some(l) = &inner.limiter {
            l.until_ready().await;
        }
        let path = call.path();
        // A refused token request is final for this call (not retried like a network error).
        let auth = self.authorization().await.map_err(|error| Failed {
            kind: FailKind::Status(401),
            retry_after: None,
            error,
        })?;
        inner.stats.request(call.endpoint);
        let mut rb = inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header(header::AUTHORIZATION, auth)
            .header(header::ACCEPT, "application/json");
        if let Some(body) = &call.body {
            rb = rb
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        if !call.streaming {
            rb = rb.timeout(inner.timeout);
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                inner.stats.failure(call.endpoint);
                return Err(Failed::transport(&path, e));
            }
        };
        let status = resp.status();
        self.note_rate_limit_headers(call.endpoint, resp.headers())
            .await;
        // A download's redirect is handed back: the caller follows it without credentials.
        if status.is_success() || (call.streaming && status.is_redirection()) {
            return Ok(resp);
        }
        if status == StatusCode::UNAUTHORIZED {
            self.forget_token().await;
        }
        let retry_after = parse_retry_after(resp.headers());
        if status == StatusCode::TOO_MANY_REQUESTS {
            inner.stats.rate_limited(call.endpoint);
        } else if status.is_server_error() {
            inner.stats.failure(call.endpoint);
        }
        if let Some(ra) = retry_after
            && ra <= inner.retry.max_retry_after
        {
            let until = Instant::now() + ra;
            let mut p = inner.paused_until.lock().await;
            if p.is_none_or(|cur| cur < until) {
                *p = Some(until);
            }
        }
        // Error bodies are small; a failure to read one just loses the message.
        let body = resp.bytes().await.unwrap_or_default();
        let message = inner.redactor.scrub(atlassian_message(&body));
        Err(Failed {
            kind: FailKind::Status(status.as_u16()),
            retry_after,
            error: classify(status, path, message, call),
        })
    }
}

impl Client {
    /// Remembers the rate-limit headers of an answer and slows down when Confluence says the
    /// account is near its limit: `X-RateLimit-NearLimit: true` pauses every call of this
    /// client for [`RetryConfig::near_limit_pause`]; `X-RateLimit-Remaining: 0` with an
    /// `X-RateLimit-Reset` time pauses until then (bounded by `max_retry_after`).
    async fn note_rate_limit_headers(&self, endpoint: &'static str, headers: &HeaderMap) {
        let seen: Vec<(String, String)> = headers
            .iter()
            .filter(|(n, _)| is_rate_limit_header(n.as_str()))
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        if seen.is_empty() {
            return;
        }
        let get = |name: &str| {
            seen.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        };
        let near = get("x-ratelimit-nearlimit").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let exhausted_until = (get("x-ratelimit-remaining") == Some("0"))
            .then(|| get("x-ratelimit-reset"))
            .flatten()
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
            .map(|t| {
                (t.with_timezone(&chrono::Utc) - chrono::Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            });
        self.inner.stats.rate_limit_headers(endpoint, seen, near);
        let cfg = &self.inner.retry;
        let pause = match (near, exhausted_until) {
            (_, Some(d)) => Some(d.min(cfg.max_retry_after).max(cfg.near_limit_pause)),
            (true, None) => Some(cfg.near_limit_pause),
            (false, None) => None,
        };
        if let Some(d) = pause.filter(|d| !d.is_zero()) {
            tracing::debug!(
                endpoint,
                pause_ms = d.as_millis() as u64,
                "Confluence says the rate limit is near: slowing down"
            );
            let until = Instant::now() + d;
            let mut p = self.inner.paused_until.lock().await;
            if p.is_none_or(|cur| cur < until) {
                *p = Some(until);
            }
        }
    }
}

/// Maps an error status to the typed error.
fn classify(status: StatusCode, path: String, message: String, call: &Call) -> Error {
    let lower = message.to_ascii_lowercase();
    let hint = call.hint;
    match status.as_u16() {
        // Scoped tokens and service accounts: "Unauthorized; scope does not match".
        401 if lower.contains("scope") => Error::MissingScope {
            path,
            message,
            scopes: crate::scopes::scopes_for(call.endpoint)
                .map_or_else(|| "the scope this call needs".to_owned(), |c| c.describe()),
        },
        401 => Error::Unauthorized { path, message },
        // A 403 that names a limit of the site is about room, not permission.
        403 => match crate::error::Limit::from_message(&message) {
            Some(limit) => Error::LimitReached {
                path,
                message,
                limit,
            },
            None => Error::Forbidden {
                path,
                message,
                hint,
            },
        },
        404 => Error::NotFound { path, message },
        409 => Error::AlreadyExists { path, message },
        400 if lower.contains("already exist") => Error::AlreadyExists { path, message },
        503 => Error::ServiceUnavailable { path, message },
        s if status.is_server_error() => Error::Server {
            status: s,
            path,
            message,
        },
        429 => Error::RateLimited { path, attempts: 1 },
        s if status.is_client_error() => Error::BadRequest {
            status: s,
            path,
            message,
        },
        s => Error::InvalidResponse {
            path,
            message: format!("unexpected status {s}: {message}"),
        },
    }
}

/// `Retry-After` as seconds or as an HTTP date (past dates mean "now").
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// The `rel="next"` target of a `Link` header, if any.
pub(crate) fn link_next(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(header::LINK) {
        let Ok(s) = value.to_str() else { continue };
        let mut rest = s;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let close = after.find('>')?;
            let target = &after[..close];
            let params_end = after[close..].find('<').map_or(after.len(), |i| close + i);
            let params = &after[close + 1..params_end];
            let is_next = params.split(';').any(|p| {
                let p = p.trim().trim_end_matches(',').trim();
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            if is_next {
                return Some(target.to_owned());
            }
            rest = &after[params_end..];
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn client(base: &str) -> Client {
        Client::new(ClientConfig::new(
            Url::parse(base).unwrap(),
            "svc@example.com",
            SecretString::from("tok"),
        ))
        .unwrap()
    }

    #[test]
    fn link_header_next() {
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            HeaderValue::from_static(
                "</wiki/api/v2/spaces?keys=A,B&cursor=abc>; rel=\"next\", <https://x.atlassian.net/wiki>; rel=\"base\"",
            ),
        );
        assert_eq!(
            link_next(&h).as_deref(),
            Some("/wiki/api/v2/spaces?keys=A,B&cursor=abc")
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            HeaderValue::from_static("<https://x/wiki>; rel=\"base\""),
        );
        assert_eq!(link_next(&h), None);
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        let future = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        h.insert(header::RETRY_AFTER, HeaderValue::from_str(&future).unwrap());
        let d = parse_retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn next_links_resolve_on_the_site() {
        let c = client("https://x.atlassian.net");
        let from = c.url(&["wiki", "api", "v2", "spaces"]);
        assert_eq!(
            c.resolve_next(&from, "/wiki/api/v2/spaces?cursor=a")
                .unwrap()
                .as_str(),
            "https://x.atlassian.net/wiki/api/v2/spaces?cursor=a"
        );
        // v1 links are relative to the /wiki context.
        assert_eq!(
            c.resolve_next(&from, "/rest/api/search?cursor=b")
                .unwrap()
                .as_str(),
            "https://x.atlassian.net/wiki/rest/api/search?cursor=b"
        );
        assert!(matches!(
            c.resolve_next(&from, "https://evil.example/wiki/x"),
            Err(Error::InvalidResponse { .. })
        ));
        let p = client("http://127.0.0.1:9/proxy/");
        let from = p.url(&["wiki", "a"]);
        assert_eq!(from.as_str(), "http://127.0.0.1:9/proxy/wiki/a");
        assert_eq!(
            p.resolve_next(&from, "/wiki/a?cursor=1").unwrap().as_str(),
            "http://127.0.0.1:9/proxy/wiki/a?cursor=1"
        );
    }

    #[test]
    fn path_segments_are_encoded() {
        let c = client("https://x.atlassian.net/");
        assert_eq!(
            c.url(&["wiki", "rest", "api", "space", "A/B?"]).path(),
            "/wiki/rest/api/space/A%2FB%3F"
        );
    }

    #[test]
    fn bad_base_urls_are_refused() {
        for bad in [
            "mailto:x@y",
            "https://u:p@x.atlassian.net",
            "https://x/?q=1",
        ] {
            let cfg = ClientConfig::new(Url::parse(bad).unwrap(), "e", SecretString::from("t"));
            assert!(matches!(Client::new(cfg), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn refusals_together_make_one_wave_and_its_line_is_written_once() {
        let mut w = Waves::default();
        let lead = w.join("429", Duration::from_secs(1)).expect("opens a wave");
        assert_eq!(w.join("503", Duration::from_secs(1)), None, "joins it");
        assert_eq!(w.join("429", Duration::from_secs(2)), None, "joins it");
        assert_eq!(w.announce(lead), Some((3, "429/503".to_string())));
        assert_eq!(w.announce(lead), None, "once");
        // A wait of zero closes the wave at once: the next refusal opens another, and an older
        // wave's line is still written after a newer one opened.
        let a = w
            .join("timeout or reset", Duration::ZERO)
            .expect("a new wave");
        let b = w.join("500", Duration::ZERO).expect("another");
        assert_ne!(a, b);
        assert_eq!(w.announce(b), Some((1, "500".to_string())));
        assert_eq!(w.announce(a), Some((1, "timeout or reset".to_string())));
    }

    #[test]
    fn write_retry_rules() {
        let f = |kind, ra: Option<u64>| Failed {
            kind,
            retry_after: ra.map(Duration::from_secs),
            error: Error::Config(String::new()),
        };
        use FailKind::*;
        use Idempotency::*;
        assert!(f(Status(429), None).retryable(Write));
        assert!(f(Status(503), Some(1)).retryable(Write));
        assert!(!f(Status(503), None).retryable(Write));
        assert!(!f(Status(500), None).retryable(Write));
        assert!(!f(Transport, None).retryable(Write));
        assert!(f(Connect, None).retryable(Write));
        assert!(f(Status(502), None).retryable(Idempotent));
        assert!(f(Transport, None).retryable(Idempotent));
        assert!(!f(Status(400), None).retryable(Idempotent));
        assert!(!f(Status(404), None).retryable(Idempotent));
    }
}
