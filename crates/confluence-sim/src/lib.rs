//! A stateful simulator of the Confluence Cloud endpoints kbgate uses.
//!
//! Start one in-process with [`spawn`] (binds `127.0.0.1:0`), or run the `confluence-sim`
//! binary. The site is generated deterministically from [`SimConfig`]; tests inspect and edit it
//! through [`SimHandle::state`] (a [`Sim`]) or over HTTP under `/_sim/`.
//!
//! Paging conventions, as in Confluence Cloud:
//! * v2 (`/wiki/api/v2/…`): `_links.next` is a path starting with `/wiki/api/v2/…` (append it to
//!   the site root, NOT to `_links.base`, which ends in `/wiki`); the same link is in the `Link`
//!   header with `rel="next"`.
//! * v1 (`/wiki/rest/api/…`): `_links.next` starts with `/rest/api/…` and is relative to
//!   `_links.base` (`http://host/wiki`).
//! * Through the gateway (`/ex/confluence/{cloudId}/…`, see [`gateway`]) the links are the
//!   same: `_links.base` names the site; append `next` to the gateway base instead.
//!
//! What today's (2026) Cloud does and the simulator models — media-origin attachment
//! downloads, the gateway with scoped tokens and OAuth service accounts, the site time zone
//! in CQL, caps, burst limits, folders and archived pages — is listed with its evidence in the
//! crate's README ("Today's Cloud, as modelled").

pub mod access;
pub mod auth;
pub mod cli;
pub mod control;
pub mod cql;
pub mod error;
pub mod gateway;
pub mod generator;
pub mod media;
pub mod model;
pub mod paging;
pub mod scopes;
pub(crate) mod server;
pub mod sim;
pub mod v1;
pub mod v1_extra;
pub(crate) mod v1_typed;
pub mod v2;
pub mod v2_extra;

use std::net::SocketAddr;
use std::time::Duration;

pub use cql::SiteTimeZone;
pub use error::{ApiError, ApiFamily, SimError};
pub use model::Credentials;
pub use paging::PageCaps;
pub use sim::{Arrival, Knobs, NewPage, RateLimit, Sim, Stats};

/// How to build and run a simulated site.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seed string; the same seed and sizes always give the same site.
    pub seed: String,
    /// Number of spaces.
    pub spaces: usize,
    /// Number of pages (across all spaces).
    pub pages: usize,
    /// Number of users (staff + customers).
    pub users: usize,
    /// Number of customer email domains.
    pub domains: usize,
    /// Added latency per request.
    pub latency: Duration,
    /// Rate limit; `None` = unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Probability of an injected 5xx per request.
    pub error_rate: f64,
    /// Probability of a dropped connection per request.
    pub reset_rate: f64,
    /// Address to bind (`127.0.0.1:0` = any free port). The media listener binds the same IP
    /// on a free port of its own.
    pub bind: SocketAddr,
    /// How long a signed media download URL stays valid (simulator clock).
    pub media_token_ttl: Duration,
    /// The site's time zone: CQL date literals and `startOfDay()`-style functions are read in
    /// it (see [`cql`]).
    pub time_zone: SiteTimeZone,
    /// Page-size caps (`limit` above a cap is clamped silently).
    pub caps: PageCaps,
    /// Burst bucket applied per endpoint (`METHOD /template`), on top of `rate_limit`;
    /// `None` = none.
    pub endpoint_rate_limit: Option<RateLimit>,
}

impl Default for SimConfig {
    /// A small site, quick to generate: good for unit and integration tests.
    fn default() -> Self {
        Self {
            seed: "kbgate".into(),
            spaces: 3,
            pages: 60,
            users: 40,
            domains: 5,
            latency: Duration::ZERO,
            rate_limit: None,
            error_rate: 0.0,
            reset_rate: 0.0,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            media_token_ttl: sim::DEFAULT_MEDIA_TOKEN_TTL,
            time_zone: SiteTimeZone::default(),
            caps: PageCaps::default(),
            endpoint_rate_limit: None,
        }
    }
}

impl SimConfig {
    /// The demo site: several spaces, a few hundred pages with every content kind, restricted
    /// pages and attachments.
    pub fn demo() -> Self {
        Self {
            seed: "demo".into(),
            spaces: 4,
            pages: 400,
            users: 300,
            domains: 25,
            ..Self::default()
        }
    }

    fn knobs(&self) -> Knobs {
        Knobs {
            latency_ms: self.latency.as_millis() as u64,
            rate_limit: self.rate_limit,
            error_rate: self.error_rate,
            reset_rate: self.reset_rate,
            endpoint_rate_limit: self.endpoint_rate_limit,
            ..Knobs::default()
        }
    }

    /// Generates the site and wraps it in a [`Sim`] (not yet served).
    pub fn build(&self) -> Sim {
        let state = generator::generate(self);
        let seed = u64::from_le_bytes(
            generator::seed_bytes(&self.seed)[..8]
                .try_into()
                .unwrap_or([0; 8]),
        );
        let sim = Sim::new(state, self.knobs(), seed);
        sim.set_media_token_ttl(self.media_token_ttl);
        sim.set_time_zone(self.time_zone);
        sim.set_caps(self.caps);
        sim
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    sim: Sim,
    addr: SocketAddr,
    media_addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    media_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    media_task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .field("media_addr", &self.media_addr)
            .finish()
    }
}

/// Generates the site of `cfg`, binds `cfg.bind` and serves it on the current tokio runtime.
pub async fn spawn(cfg: SimConfig) -> Result<SimHandle, SimError> {
    let bind = cfg.bind;
    let sim = tokio::task::spawn_blocking(move || cfg.build())
        .await
        .map_err(|e| SimError::Io(std::io::Error::other(e)))?;
    serve_sim(sim, bind).await
}

/// Serves an already built [`Sim`] on `bind`, and its media service on the same IP and a free
/// port, addressed as `localhost` (another origin than the API's `127.0.0.1`, as
/// `api.media.atlassian.com` is for `SITE.atlassian.net`).
pub async fn serve_sim(sim: Sim, bind: SocketAddr) -> Result<SimHandle, SimError> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let media_listener = tokio::net::TcpListener::bind(SocketAddr::new(bind.ip(), 0)).await?;
    let media_addr = media_listener.local_addr()?;
    *sim.0.base_url.lock() = format!("http://{addr}");
    let media_host = if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        // No second name for a non-loopback address: the port still makes another origin.
        addr.ip().to_string()
    };
    *sim.0.media_url.lock() = format!("http://{media_host}:{}", media_addr.port());
    let app = server::router(sim.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(server::serve(listener, app, rx));
    let media_app = media::routes().with_state(sim.clone());
    let (media_tx, media_rx) = tokio::sync::oneshot::channel();
    let media_task = tokio::spawn(server::serve(media_listener, media_app, media_rx));
    Ok(SimHandle {
        sim,
        addr,
        media_addr,
        shutdown: Some(tx),
        task: Some(task),
        media_shutdown: Some(media_tx),
        media_task: Some(media_task),
    })
}

impl SimHandle {
    /// `http://127.0.0.1:PORT` (the site root; Confluence paths start with `/wiki`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The media origin attachment downloads redirect to (`http://localhost:M`).
    pub fn media_url(&self) -> String {
        self.sim.media_url()
    }
    /// The media listener's bound address.
    pub fn media_addr(&self) -> SocketAddr {
        self.media_addr
    }
    /// The site's cloud id (as `GET /_edge/tenant_info` answers).
    pub fn cloud_id(&self) -> String {
        self.sim.cloud_id()
    }
    /// The gateway base for scoped tokens and service accounts:
    /// `http://127.0.0.1:PORT/ex/confluence/{cloudId}` (append `/wiki/…` paths to it).
    pub fn gateway_url(&self) -> String {
        format!("{}/ex/confluence/{}", self.base_url(), self.cloud_id())
    }
    /// The service account (site admin, licensed) kbgate uses.
    pub fn service_account(&self) -> Credentials {
        self.sim
            .read(|s| s.service_account.clone())
            .unwrap_or_else(|| Credentials {
                email: String::new(),
                api_token: String::new(),
            })
    }
    /// A licensed account that is not an admin (403 on admin-only calls).
    pub fn non_admin_account(&self) -> Credentials {
        self.sim
            .read(|s| s.non_admin_account.clone())
            .unwrap_or_else(|| Credentials {
                email: String::new(),
                api_token: String::new(),
            })
    }
    /// The org admin API key (Bearer) for admin.atlassian.com-style calls.
    pub fn admin_api_key(&self) -> String {
        self.sim.read(|s| s.admin_api_key.clone())
    }
    /// The shared state handle.
    pub fn state(&self) -> Sim {
        self.sim.clone()
    }
    /// Call counters.
    pub fn stats(&self) -> Stats {
        self.sim.stats()
    }
    /// Zeroes the call counters.
    pub fn reset_stats(&self) {
        self.sim.reset_stats()
    }
    /// Changes latency / rate limit / fault knobs.
    pub fn set_knobs(&self, knobs: Knobs) {
        self.sim.set_knobs(knobs)
    }
    /// Stops the server and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        // Held calls wait in tasks of their own: end them with the server.
        self.sim.drop_held();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(tx) = self.media_shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(task) = self.media_task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.sim.drop_held();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(tx) = self.media_shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.media_task.take() {
            task.abort();
        }
    }
}
