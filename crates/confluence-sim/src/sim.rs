//! [`Sim`]: the shared handle on the simulator's state, knobs, statistics and clock, with the
//! editing methods tests and the `/_sim/` control surface use.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::model::{
    AccessToken, Attachment, Body, Credentials, OAuthClient, Page, PageStatus, Restrictions,
    ScopedToken, State, Subject, User, Version,
};

/// Default validity of a media download token. Cloud's figure is not documented; the signed
/// URL is meant to be followed at once, so a short life is the strict choice.
pub const DEFAULT_MEDIA_TOKEN_TTL: Duration = Duration::from_secs(60);

/// Validity of a service account's OAuth 2.0 access token: "valid for 60 minutes"
/// (<https://support.atlassian.com/user-management/docs/create-oauth-2-0-credential-for-service-accounts>).
pub const ACCESS_TOKEN_TTL_SECS: i64 = 3600;

/// A token bucket rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: u32,
    /// Bucket size.
    pub burst: u32,
}

/// Fault and speed knobs, changeable at run time (`POST /_sim/knobs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Knobs {
    /// Added latency per request, in milliseconds.
    pub latency_ms: u64,
    /// Token-bucket rate limit; `None` = unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Probability (0..1) that a request gets an injected 500/502/503.
    pub error_rate: f64,
    /// Probability (0..1) that the connection is dropped without a response.
    pub reset_rate: f64,
    /// A burst bucket per endpoint (`METHOD /template`, the stats key), on top of
    /// `rate_limit`: Cloud's API-token traffic is "governed by existing burst rate limits"
    /// (<https://developer.atlassian.com/cloud/confluence/rate-limiting/>), per endpoint
    /// (`RateLimit-Reason: confluence-burst-based`). `None` = none.
    pub endpoint_rate_limit: Option<RateLimit>,
    /// Per-endpoint overrides of `endpoint_rate_limit`, keyed by stats key.
    pub endpoint_rate_limits: BTreeMap<String, RateLimit>,
    /// The REST download (`…/child/attachment/{id}/download`) answers 404, as on a site where
    /// only the legacy servlet path serves files — Confluence Data Center/Server ("the REST
    /// `/download` endpoint is Cloud-only", <https://github.com/pchuri/confluence-cli/pull/199>)
    /// or a proxy that blocks it. For `kbgate doctor`'s "legacy download only" check.
    pub rest_download_missing: bool,
}

/// Call counters (`GET /_sim/stats`). `/_sim/*` calls are never counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Stats {
    /// All counted calls (including 429s and injected errors).
    pub total: u64,
    /// Calls answered 429.
    pub rate_limited: u64,
    /// Calls answered with an injected 5xx or reset.
    pub errors_injected: u64,
    /// Calls per `METHOD /path/{template}`, with the OpenAPI documents' parameter names
    /// (`GET /wiki/rest/api/content/{id}/restriction/byOperation/{operationKey}`); `/cgraphql`
    /// per operation (`POST /cgraphql?q=GuestDataQuery`). The client's `CallStats` uses the
    /// same keys.
    pub by_endpoint: BTreeMap<String, u64>,
    /// Requests to the media listener (`GET /file/{fileId}/binary` on the media origin),
    /// refused ones included. Not part of `total`: the media host is another service.
    #[serde(default)]
    pub media_requests: u64,
}

/// One counted request as the simulator received it (see [`Sim::record_arrivals`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// When the request reached the simulator (before any injected latency).
    pub at: Instant,
    /// HTTP method.
    pub method: String,
    /// Path and query string as sent.
    pub path: String,
    /// The stats key it was counted under (`METHOD /template`).
    pub endpoint: String,
    /// Status answered; `None` for an injected connection reset.
    pub status: Option<u16>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// `RateLimit-Reason` of the global bucket (the knob that predates per-endpoint buckets).
pub(crate) const GLOBAL_REASON: &str = "confluence-quota-global-based";
/// `RateLimit-Reason` of a per-endpoint burst bucket.
pub(crate) const BURST_REASON: &str = "confluence-burst-based";

/// A bucket's state after a call, for the rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    /// Bucket size.
    pub limit: u32,
    /// Whole tokens left.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds the bucket takes to fill from empty (the policy's window).
    pub window_secs: u64,
    /// Which bucket.
    pub reason: &'static str,
}

/// Takes one token from a bucket refilled at `rl.per_second`, or says how long to wait.
fn take(b: &mut Bucket, rl: RateLimit, now: Instant, reason: &'static str) -> Result<Quota, Fault> {
    let elapsed = now.duration_since(b.last).as_secs_f64();
    b.last = now;
    b.tokens = (b.tokens + elapsed * rl.per_second as f64).min(rl.burst as f64);
    let secs_for = |missing: f64| -> u64 {
        if rl.per_second == 0 {
            60
        } else {
            (missing / rl.per_second as f64).ceil().max(0.0) as u64
        }
    };
    let window_secs = secs_for(rl.burst as f64).max(1);
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        Ok(Quota {
            limit: rl.burst,
            remaining: b.tokens.floor() as u32,
            reset_secs: secs_for(rl.burst as f64 - b.tokens),
            window_secs,
            reason,
        })
    } else {
        Err(Fault::RateLimited {
            retry_after: secs_for(1.0 - b.tokens).max(1),
            limit: rl.burst,
            window_secs,
            reason,
        })
    }
}

/// What the fault injector decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Serve normally.
    None,
    /// Answer 429; retry after this many seconds; remaining = 0.
    RateLimited {
        retry_after: u64,
        limit: u32,
        window_secs: u64,
        reason: &'static str,
    },
    /// Answer this 5xx.
    Error(u16),
    /// Drop the connection.
    Reset,
}

pub(crate) struct Inner {
    pub(crate) state: RwLock<State>,
    knobs: Mutex<Knobs>,
    stats: Mutex<Stats>,
    bucket: Mutex<Bucket>,
    fault_rng: Mutex<ChaCha8Rng>,
    clock_offset: Mutex<chrono::Duration>,
    arrivals: Mutex<Option<Vec<Arrival>>>,
    hold: Mutex<Option<Hold>>,
    /// (generation, drop): the generation is bumped by [`Sim::release`] and
    /// [`Sim::drop_held`]; held requests wait for it to change, then go on or are dropped.
    release: tokio::sync::watch::Sender<(u64, bool)>,
    held: AtomicU64,
    in_flight: AtomicU64,
    pub(crate) base_url: Mutex<String>,
    pub(crate) media_url: Mutex<String>,
    time_zone: Mutex<crate::cql::SiteTimeZone>,
    caps: Mutex<crate::paging::PageCaps>,
    endpoint_buckets: Mutex<std::collections::HashMap<String, Bucket>>,
    /// Key of the media tokens' HMAC (random per simulator).
    media_secret: [u8; 32],
    media_ttl: Mutex<Duration>,
}

/// What [`Sim::hold_after`] set: calls to `endpoint` beyond `pass` more are held.
struct Hold {
    endpoint: String,
    pass: u64,
}

/// Counts a call in flight (or held) until dropped: answered, or dropped by its connection.
pub(crate) struct Gauge {
    sim: Sim,
    held: bool,
}

impl Drop for Gauge {
    fn drop(&mut self) {
        let c = if self.held {
            &self.sim.0.held
        } else {
            &self.sim.0.in_flight
        };
        c.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A held call's wait (see [`Sim::hold_ticket`]).
pub(crate) struct HoldTicket {
    rx: tokio::sync::watch::Receiver<(u64, bool)>,
    generation: u64,
    _held: Gauge,
}

impl HoldTicket {
    /// Waits for the end of the hold: `true` when the call is to be dropped unanswered and
    /// unserved ([`Sim::drop_held`]), `false` when it is to be served ([`Sim::release`]).
    pub(crate) async fn wait(mut self) -> bool {
        loop {
            // Fails only when the sender is gone, i.e. the simulator is dropped.
            if self.rx.changed().await.is_err() {
                return true;
            }
            let (g, drop) = *self.rx.borrow();
            if g != self.generation {
                return drop;
            }
        }
    }
}

/// Shared handle on a running (or not yet served) simulated site. Cheap to clone.
#[derive(Clone)]
pub struct Sim(pub(crate) Arc<Inner>);

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").finish_non_exhaustive()
    }
}

/// Fields of a new page (`Sim::create_page`, `POST /_sim/pages`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewPage {
    /// Space key.
    pub space_key: String,
    /// Parent page id; `None` puts it under the space home page.
    pub parent_id: Option<u64>,
    /// Title (must be unique within the space among current pages).
    pub title: String,
    /// Storage-format body.
    #[serde(default)]
    pub body: String,
    /// Label names.
    #[serde(default)]
    pub labels: Vec<String>,
}

impl Sim {
    /// Wraps a generated state.
    pub fn new(state: State, knobs: Knobs, seed: u64) -> Self {
        let burst = knobs.rate_limit.map(|r| r.burst).unwrap_or(0) as f64;
        Sim(Arc::new(Inner {
            state: RwLock::new(state),
            knobs: Mutex::new(knobs),
            stats: Mutex::new(Stats::default()),
            bucket: Mutex::new(Bucket {
                tokens: burst,
                last: Instant::now(),
            }),
            fault_rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0xfa17)),
            clock_offset: Mutex::new(chrono::Duration::zero()),
            arrivals: Mutex::new(None),
            hold: Mutex::new(None),
            release: tokio::sync::watch::Sender::new((0, false)),
            held: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            base_url: Mutex::new("http://127.0.0.1".into()),
            media_url: Mutex::new("http://localhost".into()),
            time_zone: Mutex::new(crate::cql::SiteTimeZone::default()),
            caps: Mutex::new(crate::paging::PageCaps::default()),
            endpoint_buckets: Mutex::new(std::collections::HashMap::new()),
            media_secret: rand::random(),
            media_ttl: Mutex::new(DEFAULT_MEDIA_TOKEN_TTL),
        }))
    }

    /// Reads the state under a shared lock.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.0.state.read())
    }

    /// Edits the state under the exclusive lock.
    pub fn write<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.0.state.write())
    }

    /// The simulator clock: real UTC now plus an adjustable offset (see [`Sim::advance_clock`]).
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.0.clock_offset.lock()
    }

    /// Moves the simulator clock forward, e.g. one minute to get past CQL's minute precision.
    pub fn advance_clock(&self, by: chrono::Duration) {
        *self.0.clock_offset.lock() += by;
    }

    /// The base URL clients use (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> String {
        self.0.base_url.lock().clone()
    }

    /// The media origin (`http://localhost:M`) that attachment downloads redirect to.
    pub fn media_url(&self) -> String {
        self.0.media_url.lock().clone()
    }

    /// How long a media download token stays valid (simulator clock).
    pub fn media_token_ttl(&self) -> Duration {
        *self.0.media_ttl.lock()
    }

    /// Sets the media token validity (e.g. 1 s, then [`Sim::advance_clock`], to test expiry).
    pub fn set_media_token_ttl(&self, ttl: Duration) {
        *self.0.media_ttl.lock() = ttl;
    }

    pub(crate) fn media_secret(&self) -> [u8; 32] {
        self.0.media_secret
    }

    pub(crate) fn count_media(&self) {
        self.0.stats.lock().media_requests += 1;
    }

    /// The site's time zone (CQL date literals and day/week/month functions).
    pub fn time_zone(&self) -> crate::cql::SiteTimeZone {
        *self.0.time_zone.lock()
    }

    /// Sets the site's time zone.
    pub fn set_time_zone(&self, tz: crate::cql::SiteTimeZone) {
        *self.0.time_zone.lock() = tz;
    }

    /// The page-size caps.
    pub fn caps(&self) -> crate::paging::PageCaps {
        *self.0.caps.lock()
    }

    /// Sets the page-size caps.
    pub fn set_caps(&self, caps: crate::paging::PageCaps) {
        *self.0.caps.lock() = caps;
    }

    /// The site's cloud id (`GET /_edge/tenant_info`).
    pub fn cloud_id(&self) -> String {
        self.read(|s| s.cloud_id.clone())
    }

    /// Current knobs.
    pub fn knobs(&self) -> Knobs {
        self.0.knobs.lock().clone()
    }

    /// Replaces the knobs (refills the rate-limit buckets).
    pub fn set_knobs(&self, knobs: Knobs) {
        let burst = knobs.rate_limit.map(|r| r.burst).unwrap_or(0) as f64;
        *self.0.bucket.lock() = Bucket {
            tokens: burst,
            last: Instant::now(),
        };
        self.0.endpoint_buckets.lock().clear();
        *self.0.knobs.lock() = knobs;
    }

    /// A snapshot of the call counters.
    pub fn stats(&self) -> Stats {
        self.0.stats.lock().clone()
    }

    /// Zeroes the call counters.
    pub fn reset_stats(&self) {
        *self.0.stats.lock() = Stats::default();
    }

    /// Starts (`true`, with an empty log) or stops (`false`, dropping the log) recording every
    /// counted request's arrival, e.g. to check that a client waited out a `Retry-After`.
    /// Off by default, so long runs hold no log.
    pub fn record_arrivals(&self, on: bool) {
        *self.0.arrivals.lock() = on.then(Vec::new);
    }

    /// The arrivals recorded since [`Sim::record_arrivals`]`(true)`, in the order answered.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.0.arrivals.lock().clone().unwrap_or_default()
    }

    pub(crate) fn record_arrival(&self, a: Arrival) {
        if let Some(log) = self.0.arrivals.lock().as_mut() {
            log.push(a);
        }
    }

    /// Holds calls to `endpoint` (a stats key, e.g. `POST /rest/api/3/user`) after the next
    /// `n` of them: each further one is counted, then waits, unanswered and not yet served,
    /// until [`Sim::release`] or [`Sim::drop_held`]. For tests that must stop a client while
    /// calls are certainly in flight (a held call has been sent, so the client cannot have seen
    /// its answer). Replaces an earlier hold; calls already held stay held. A server that
    /// stops drops its held calls.
    pub fn hold_after(&self, endpoint: &str, n: u64) {
        *self.0.hold.lock() = Some(Hold {
            endpoint: endpoint.to_owned(),
            pass: n,
        });
    }

    /// Ends the hold: held calls are served, to the end even if their client went away
    /// meanwhile (so a test knows the site did what they asked); later ones are not held.
    pub fn release(&self) {
        self.end_hold(false);
    }

    /// Ends the hold by dropping the held calls: each connection is closed without an answer
    /// and nothing is served, as when a request is lost on its way. Later calls are not held.
    pub fn drop_held(&self) {
        self.end_hold(true);
    }

    fn end_hold(&self, drop: bool) {
        *self.0.hold.lock() = None;
        self.0.release.send_modify(|(generation, d)| {
            *generation += 1;
            *d = drop;
        });
    }

    /// Calls waiting on a hold now.
    pub fn held(&self) -> u64 {
        self.0.held.load(Ordering::SeqCst)
    }

    /// Counted calls not yet answered (held, sleeping out the latency knob, or being served).
    /// A call whose connection is closed stops counting when the server drops it.
    pub fn in_flight(&self) -> u64 {
        self.0.in_flight.load(Ordering::SeqCst)
    }

    /// Marks a counted call as in flight until the guard is dropped.
    pub(crate) fn flight(&self) -> Gauge {
        self.0.in_flight.fetch_add(1, Ordering::SeqCst);
        Gauge {
            sim: self.clone(),
            held: false,
        }
    }

    /// Whether a hold applies to this call (see [`Sim::hold_after`]): `Some` ticket to wait
    /// on when it does (the call counts as held from now until the ticket is done).
    pub(crate) fn hold_ticket(&self, endpoint: &str) -> Option<HoldTicket> {
        let mut hold = self.0.hold.lock();
        let h = hold.as_mut().filter(|h| h.endpoint == endpoint)?;
        if h.pass > 0 {
            h.pass -= 1;
            return None;
        }
        // Subscribed under the hold lock, which ending a hold takes first: an end after this
        // point bumps the generation seen here.
        let rx = self.0.release.subscribe();
        let generation = rx.borrow().0;
        self.0.held.fetch_add(1, Ordering::SeqCst);
        Some(HoldTicket {
            rx,
            generation,
            _held: Gauge {
                sim: self.clone(),
                held: true,
            },
        })
    }

    pub(crate) fn count(&self, endpoint: String) {
        let mut s = self.0.stats.lock();
        s.total += 1;
        *s.by_endpoint.entry(endpoint).or_default() += 1;
    }

    pub(crate) fn count_fault(&self, fault: Fault) {
        let mut s = self.0.stats.lock();
        match fault {
            Fault::RateLimited { .. } => s.rate_limited += 1,
            Fault::Error(_) | Fault::Reset => s.errors_injected += 1,
            Fault::None => {}
        }
    }

    /// Decides whether this request is rate limited / failed / reset. Takes a token from the
    /// global bucket (`rate_limit`) and from the endpoint's burst bucket, if configured; the
    /// quota reported is the bucket closer to empty.
    pub(crate) fn decide_fault(&self, endpoint: &str) -> (Fault, Option<Quota>) {
        let knobs = self.knobs();
        let now = Instant::now();
        let mut quota: Option<Quota> = None;
        let mut consider = |q: Quota| {
            let tighter = quota.is_none_or(|cur| {
                (q.remaining as u64) * (cur.limit.max(1) as u64)
                    < (cur.remaining as u64) * (q.limit.max(1) as u64)
            });
            if tighter {
                quota = Some(q);
            }
        };
        if let Some(rl) = knobs.rate_limit {
            let mut b = self.0.bucket.lock();
            match take(&mut b, rl, now, GLOBAL_REASON) {
                Ok(q) => consider(q),
                Err(f) => return (f, None),
            }
        }
        let per_endpoint = knobs
            .endpoint_rate_limits
            .get(endpoint)
            .copied()
            .or(knobs.endpoint_rate_limit);
        if let Some(rl) = per_endpoint {
            let mut buckets = self.0.endpoint_buckets.lock();
            let b = buckets.entry(endpoint.to_string()).or_insert(Bucket {
                tokens: rl.burst as f64,
                last: now,
            });
            match take(b, rl, now, BURST_REASON) {
                Ok(q) => consider(q),
                Err(f) => return (f, None),
            }
        }
        if knobs.error_rate > 0.0 || knobs.reset_rate > 0.0 {
            let mut rng = self.0.fault_rng.lock();
            if knobs.reset_rate > 0.0 && rng.random_bool(knobs.reset_rate.clamp(0.0, 1.0)) {
                return (Fault::Reset, quota);
            }
            if knobs.error_rate > 0.0 && rng.random_bool(knobs.error_rate.clamp(0.0, 1.0)) {
                let code = [500u16, 502, 503][rng.random_range(0..3)];
                return (Fault::Error(code), quota);
            }
        }
        (Fault::None, quota)
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.0.knobs.lock().latency_ms)
    }

    // ----- inspection -----

    /// A copy of one page.
    pub fn page(&self, id: u64) -> Option<Page> {
        self.read(|s| s.pages.get(&id).cloned())
    }

    /// A page's current storage body (rendered if generated).
    pub fn page_body(&self, id: u64) -> Option<String> {
        self.read(|s| {
            s.pages
                .get(&id)
                .map(|p| crate::generator::render_body(s, p))
        })
    }

    /// Ids of all current pages of a space (by key), ascending.
    pub fn page_ids_in_space(&self, key: &str) -> Vec<u64> {
        self.read(|s| {
            let Some(space) = s.space_by_key(key) else {
                return Vec::new();
            };
            s.pages
                .values()
                .filter(|p| p.space_id == space.id && p.status == PageStatus::Current)
                .map(|p| p.id)
                .collect()
        })
    }

    /// A copy of one user, by account id.
    pub fn user(&self, account_id: &str) -> Option<User> {
        self.read(|s| s.users.get(account_id).cloned())
    }

    // ----- edits -----

    /// Creates a page (version 1, created now by the service account).
    pub fn create_page(&self, new: NewPage) -> Result<u64, SimError> {
        let now = self.now();
        self.write(|s| {
            let space = s
                .space_by_key(&new.space_key)
                .ok_or_else(|| SimError::NotFound(format!("space {}", new.space_key)))?
                .clone();
            let parent_id = match new.parent_id {
                Some(p) => {
                    let parent = s
                        .pages
                        .get(&p)
                        .ok_or_else(|| SimError::NotFound(format!("page {p}")))?;
                    if parent.space_id != space.id {
                        return Err(SimError::BadRequest(
                            "parent is in another space".to_string(),
                        ));
                    }
                    Some(p)
                }
                None => space.homepage_id,
            };
            if new.title.trim().is_empty() {
                return Err(SimError::BadRequest("title must not be empty".into()));
            }
            if title_taken(s, space.id, &new.title, None) {
                return Err(SimError::Conflict(format!(
                    "A page with this title already exists: A page already exists with the same TITLE in this space ({})",
                    new.title
                )));
            }
            let author = service_account_id(s);
            let id = s.alloc_content_id();
            let position = parent_id
                .and_then(|p| s.children.get(&p))
                .map(|c| c.len() as i32)
                .unwrap_or(0);
            let labels = new.labels.iter().map(|l| s.label_id(l)).collect();
            s.pages.insert(
                id,
                Page {
                    id,
                    space_id: space.id,
                    parent_id,
                    position,
                    title: new.title.clone(),
                    status: PageStatus::Current,
                    versions: vec![Version {
                        number: 1,
                        created_at: now,
                        author_id: author.clone(),
                        message: String::new(),
                        minor_edit: false,
                    }],
                    created_at: now,
                    author_id: author,
                    body: Body::Stored(Arc::from(new.body.as_str())),
                    labels,
                    read_restrictions: Restrictions::default(),
                },
            );
            if let Some(p) = parent_id {
                s.children.entry(p).or_default().push(id);
            }
            Ok(id)
        })
    }

    /// Edits a page's title and/or body: a new version, `lastmodified` = now.
    pub fn edit_page(
        &self,
        id: u64,
        title: Option<String>,
        body: Option<String>,
    ) -> Result<u32, SimError> {
        let now = self.now();
        self.write(|s| {
            let page = s
                .pages
                .get(&id)
                .ok_or_else(|| SimError::NotFound(format!("page {id}")))?;
            if let Some(t) = &title
                && title_taken(s, page.space_id, t, Some(id))
            {
                return Err(SimError::Conflict(format!("title already used: {t}")));
            }
            let author = service_account_id(s);
            let page = s
                .pages
                .get_mut(&id)
                .ok_or_else(|| SimError::NotFound(format!("page {id}")))?;
            if let Some(t) = title {
                page.title = t;
            }
            if let Some(b) = body {
                page.body = Body::Stored(Arc::from(b.as_str()));
            }
            let number = page.version().number + 1;
            page.versions.push(Version {
                number,
                created_at: now,
                author_id: author,
                message: String::new(),
                minor_edit: false,
            });
            Ok(number)
        })
    }

    /// Moves a page under a new parent (same space). Bumps the version like Confluence does.
    pub fn move_page(&self, id: u64, new_parent: u64) -> Result<(), SimError> {
        let now = self.now();
        self.write(|s| {
            let page = s
                .pages
                .get(&id)
                .ok_or_else(|| SimError::NotFound(format!("page {id}")))?;
            let parent = s
                .pages
                .get(&new_parent)
                .ok_or_else(|| SimError::NotFound(format!("page {new_parent}")))?;
            if parent.space_id != page.space_id {
                return Err(SimError::BadRequest("cannot move across spaces".into()));
            }
            if new_parent == id || s.ancestors(new_parent).contains(&id) {
                return Err(SimError::BadRequest(
                    "cannot move a page under itself".into(),
                ));
            }
            let old_parent = page.parent_id;
            if let Some(op) = old_parent
                && let Some(c) = s.children.get_mut(&op)
            {
                c.retain(|x| *x != id);
            }
            let position = s.children.get(&new_parent).map(|c| c.len()).unwrap_or(0) as i32;
            s.children.entry(new_parent).or_default().push(id);
            let author = service_account_id(s);
            if let Some(page) = s.pages.get_mut(&id) {
                page.parent_id = Some(new_parent);
                page.position = position;
                let number = page.version().number + 1;
                page.versions.push(Version {
                    number,
                    created_at: now,
                    author_id: author,
                    message: "moved".into(),
                    minor_edit: true,
                });
            }
            Ok(())
        })
    }

    /// Moves a page to the trash. Its children move up to its parent (Confluence keeps
    /// descendants when a single page is deleted). Trashed pages vanish from search and lists.
    pub fn delete_page(&self, id: u64) -> Result<(), SimError> {
        self.write(|s| {
            let page = s
                .pages
                .get(&id)
                .ok_or_else(|| SimError::NotFound(format!("page {id}")))?;
            if page.status == PageStatus::Trashed {
                return Err(SimError::NotFound(format!("page {id} is already trashed")));
            }
            let parent = page.parent_id;
            let kids = s.children.remove(&id).unwrap_or_default();
            for k in &kids {
                if let Some(kp) = s.pages.get_mut(k) {
                    kp.parent_id = parent;
                }
            }
            if let Some(p) = parent {
                s.children.entry(p).or_default().extend(kids);
            }
            if let Some(page) = s.pages.get_mut(&id) {
                page.status = PageStatus::Trashed;
            }
            for att in s.page_attachments.get(&id).cloned().unwrap_or_default() {
                if let Some(a) = s.attachments.get_mut(&att) {
                    a.status = PageStatus::Trashed;
                }
            }
            Ok(())
        })
    }

    /// Adds a read restriction for a user or group on a page.
    pub fn add_read_restriction(&self, page_id: u64, subject: Subject) -> Result<(), SimError> {
        self.write(|s| {
            match &subject {
                Subject::User(u) if !s.users.contains_key(u) => {
                    return Err(SimError::NotFound(format!("user {u}")));
                }
                Subject::Group(g) if !s.groups.contains_key(g) => {
                    return Err(SimError::NotFound(format!("group {g}")));
                }
                _ => {}
            }
            let page = s
                .pages
                .get_mut(&page_id)
                .ok_or_else(|| SimError::NotFound(format!("page {page_id}")))?;
            match subject {
                Subject::User(u) => page.read_restrictions.users.insert(u),
                Subject::Group(g) => page.read_restrictions.groups.insert(g),
            };
            Ok(())
        })
    }

    /// Removes a read restriction from a page.
    pub fn remove_read_restriction(&self, page_id: u64, subject: &Subject) -> Result<(), SimError> {
        self.write(|s| {
            let page = s
                .pages
                .get_mut(&page_id)
                .ok_or_else(|| SimError::NotFound(format!("page {page_id}")))?;
            let removed = match subject {
                Subject::User(u) => page.read_restrictions.users.remove(u),
                Subject::Group(g) => page.read_restrictions.groups.remove(g),
            };
            if removed {
                Ok(())
            } else {
                Err(SimError::NotFound("no such restriction".into()))
            }
        })
    }

    /// Adds a label (prefix `global`) to a page; returns the label id.
    pub fn add_label(&self, page_id: u64, name: &str) -> Result<u64, SimError> {
        let name = name.trim().to_lowercase();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(SimError::BadRequest(format!("invalid label {name:?}")));
        }
        self.write(|s| {
            if !s.pages.contains_key(&page_id) {
                return Err(SimError::NotFound(format!("page {page_id}")));
            }
            let id = s.label_id(&name);
            if let Some(p) = s.pages.get_mut(&page_id) {
                p.labels.insert(id);
            }
            Ok(id)
        })
    }

    /// Removes a label from a page.
    pub fn remove_label(&self, page_id: u64, name: &str) -> Result<(), SimError> {
        let name = name.trim().to_lowercase();
        self.write(|s| {
            let id = *s
                .label_ids_by_name
                .get(&name)
                .ok_or_else(|| SimError::NotFound(format!("label {name}")))?;
            let page = s
                .pages
                .get_mut(&page_id)
                .ok_or_else(|| SimError::NotFound(format!("page {page_id}")))?;
            if page.labels.remove(&id) {
                Ok(())
            } else {
                Err(SimError::NotFound(format!(
                    "label {name} on page {page_id}"
                )))
            }
        })
    }

    /// Attaches a file to a page; returns the attachment's numeric id (JSON id is `att{id}`).
    pub fn add_attachment(
        &self,
        page_id: u64,
        title: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<u64, SimError> {
        let now = self.now();
        self.write(|s| {
            if !s.pages.contains_key(&page_id) {
                return Err(SimError::NotFound(format!("page {page_id}")));
            }
            let author = service_account_id(s);
            let id = s.alloc_content_id();
            s.attachments.insert(
                id,
                Attachment {
                    id,
                    page_id,
                    title: title.to_string(),
                    media_type: media_type.to_string(),
                    bytes,
                    version: 1,
                    created_at: now,
                    author_id: author,
                    status: PageStatus::Current,
                    file_id: crate::model::uuid_like(id, page_id),
                },
            );
            s.page_attachments.entry(page_id).or_default().push(id);
            Ok(id)
        })
    }

    /// Uploads new bytes for an attachment: a new version with a new media file id, and its
    /// `lastmodified` moves to now (the old file id stops resolving on the media host).
    /// Returns the new version number.
    pub fn replace_attachment(
        &self,
        id: u64,
        media_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<u32, SimError> {
        let now = self.now();
        self.write(|s| {
            let author = service_account_id(s);
            let a = s
                .attachments
                .get_mut(&id)
                .filter(|a| a.status == PageStatus::Current)
                .ok_or_else(|| SimError::NotFound(format!("attachment att{id}")))?;
            a.version += 1;
            a.bytes = bytes;
            if let Some(mt) = media_type {
                a.media_type = mt.to_string();
            }
            a.created_at = now;
            a.author_id = author;
            a.file_id = crate::model::uuid_like(id ^ ((a.version as u64) << 40), a.page_id);
            Ok(a.version)
        })
    }

    /// Uploads a space icon (a new version with a new media file id when the space had one):
    /// its `path` and `apiDownloadLink` change as in Cloud. Returns the icon's version.
    pub fn set_space_icon(
        &self,
        key: &str,
        title: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<u32, SimError> {
        let now = self.now();
        self.write(|s| {
            let sid = *s
                .space_ids_by_key
                .get(key)
                .ok_or_else(|| SimError::NotFound(format!("space {key}")))?;
            let fresh = s.alloc_content_id();
            let sp = s
                .spaces
                .get_mut(&sid)
                .ok_or_else(|| SimError::NotFound(format!("space {key}")))?;
            let (id, version) = match &sp.icon {
                Some(old) => (old.id, old.version + 1),
                None => (fresh, 1),
            };
            sp.icon = Some(crate::model::SpaceIconFile {
                id,
                title: title.to_string(),
                media_type: media_type.to_string(),
                bytes,
                version,
                modified_at: now,
                file_id: crate::model::uuid_like(id ^ ((version as u64) << 40), sid),
            });
            Ok(version)
        })
    }

    /// Puts a space back on the default logo.
    pub fn clear_space_icon(&self, key: &str) -> Result<(), SimError> {
        self.edit_space(key, |sp| sp.icon = None)
    }

    /// Sets a space's description (plain text; empty: none).
    pub fn set_space_description(&self, key: &str, text: &str) -> Result<(), SimError> {
        self.edit_space(key, |sp| sp.description = text.to_string())
    }

    fn edit_space(
        &self,
        key: &str,
        f: impl FnOnce(&mut crate::model::Space),
    ) -> Result<(), SimError> {
        self.write(|s| {
            let sid = s.space_ids_by_key.get(key).copied();
            let sp = sid
                .and_then(|id| s.spaces.get_mut(&id))
                .ok_or_else(|| SimError::NotFound(format!("space {key}")))?;
            f(sp);
            Ok(())
        })
    }

    /// Deletes (trashes) an attachment: it leaves listings, search and the media host.
    pub fn delete_attachment(&self, id: u64) -> Result<(), SimError> {
        self.write(|s| {
            let a = s
                .attachments
                .get_mut(&id)
                .filter(|a| a.status == PageStatus::Current)
                .ok_or_else(|| SimError::NotFound(format!("attachment att{id}")))?;
            a.status = PageStatus::Trashed;
            Ok(())
        })
    }

    /// Mints a scoped API token for the account with this email. Scoped tokens are accepted
    /// only through the gateway (`/ex/confluence/{cloudId}/…`), for calls their scopes cover.
    pub fn create_scoped_token(
        &self,
        email: &str,
        scopes: &[&str],
    ) -> Result<Credentials, SimError> {
        self.write(|s| {
            let user = s
                .user_by_email(email)
                .ok_or_else(|| SimError::NotFound(format!("user {email}")))?
                .clone();
            let seq = s.next_credential_seq;
            s.next_credential_seq += 1;
            let token = format!("ATATT3xScoped{}", mint(&s.cloud_id, "scoped", seq));
            s.scoped_tokens.insert(
                token.clone(),
                ScopedToken {
                    account_id: user.account_id.clone(),
                    scopes: scopes.iter().map(|x| x.to_string()).collect(),
                },
            );
            Ok(Credentials {
                email: user.email,
                api_token: token,
            })
        })
    }

    /// Creates an OAuth 2.0 client-credentials credential acting as the account with this
    /// email (as an org admin does for a service account). Exchange it at `POST /oauth/token`.
    pub fn create_oauth_client(
        &self,
        email: &str,
        scopes: &[&str],
    ) -> Result<OAuthClient, SimError> {
        self.write(|s| {
            let account_id = s
                .user_by_email(email)
                .ok_or_else(|| SimError::NotFound(format!("user {email}")))?
                .account_id
                .clone();
            let seq = s.next_credential_seq;
            s.next_credential_seq += 1;
            let client = OAuthClient {
                client_id: mint(&s.cloud_id, "client", seq)[..32].to_string(),
                client_secret: format!("ATOA{}", mint(&s.cloud_id, "secret", seq)),
                account_id,
                scopes: scopes.iter().map(|x| x.to_string()).collect(),
            };
            s.oauth_clients
                .insert(client.client_id.clone(), client.clone());
            Ok(client)
        })
    }

    /// The client-credentials grant: a Bearer access token for a known client id and secret,
    /// with the client's scopes (narrowed to `scope` when given), valid for an hour.
    pub fn issue_access_token(
        &self,
        client_id: &str,
        client_secret: &str,
        scope: Option<&str>,
    ) -> Option<(String, AccessToken)> {
        let now = self.now();
        self.write(|s| {
            let client = s
                .oauth_clients
                .get(client_id)
                .filter(|c| c.client_secret == client_secret)?
                .clone();
            let scopes = match scope {
                Some(want) => want
                    .split_whitespace()
                    .filter(|w| client.scopes.contains(*w))
                    .map(str::to_string)
                    .collect(),
                None => client.scopes.clone(),
            };
            let seq = s.next_credential_seq;
            s.next_credential_seq += 1;
            let token = format!("eyJsim.{}", mint(&s.cloud_id, "access", seq));
            let at = AccessToken {
                account_id: client.account_id,
                scopes,
                expires_at: now + chrono::Duration::seconds(ACCESS_TOKEN_TTL_SECS),
            };
            s.access_tokens.insert(token.clone(), at.clone());
            Some((token, at))
        })
    }
}

/// A deterministic, unguessable-looking credential string.
fn mint(cloud_id: &str, what: &str, seq: u64) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{cloud_id}:{what}:{seq}").as_bytes());
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn title_taken(s: &State, space_id: u64, title: &str, except: Option<u64>) -> bool {
    s.pages.values().any(|p| {
        p.space_id == space_id
            && p.status == PageStatus::Current
            && Some(p.id) != except
            && p.title == title
    })
}

fn service_account_id(s: &State) -> String {
    s.service_account
        .as_ref()
        .and_then(|c| s.users_by_email.get(&c.email.to_ascii_lowercase()))
        .cloned()
        .unwrap_or_default()
}
