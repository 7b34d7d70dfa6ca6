//! Running kbgate as a service: the portal plus its background loops (sync on
//! `[sync] interval`, policy reload, native reconcile, insights retention), stopped gracefully by a
//! [`CancellationToken`].
//!
//! A library, not code in `main`, so tests start the whole service in-process and stop it
//! the way an operator does. `kbgate serve` and `kbgate demo` build the parts (config,
//! store, Confluence source, listener) and hand them to [`Service`]; the binary maps
//! SIGINT/SIGTERM to the token and SIGHUP to a [`ReloadTrigger`].
//!
//! On cancellation: the portal stops accepting connections and finishes the requests in
//! flight (axum's graceful shutdown); a sync in progress is dropped before its commit (one
//! transaction per space: the previous mirror stays) and releases its lease; the other
//! loops end at their next await. [`Service::run`] returns once all of that has happened,
//! with every handle on the store dropped.

mod loops;
pub mod telemetry;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kbgate_config::Config;
use kbgate_mirror::sync::{SyncOptions, confluence::ConfluenceSource};
use kbgate_provision::Reconciler;
use kbgate_server::{AppState, PolicyHandle};
use kbgate_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;

pub use tokio_util::sync::CancellationToken;

/// How often the config file is looked at for changes unless told otherwise.
pub const DEFAULT_CONFIG_POLL: Duration = Duration::from_secs(2);

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The portal could not be built from the configuration (keys, mailer).
    #[error("cannot set up the portal: {0}")]
    Setup(#[from] kbgate_server::SetupError),
    /// The listener (its address, or serving on it) failed.
    #[error("portal listener: {0}")]
    Listener(#[from] std::io::Error),
    /// `[metrics] listen` is set but the recorder cannot be installed.
    #[error(transparent)]
    Metrics(#[from] telemetry::RecorderError),
    /// A background loop panicked; the service was stopped.
    #[error("a background loop panicked")]
    Panicked,
}

/// Asks a running service to re-read its configuration file now, whether or not it changed
/// (what SIGHUP does for `kbgate serve`). Cheap to clone; a request made while a reload is
/// running is kept for the next one.
#[derive(Debug, Clone, Default)]
pub struct ReloadTrigger(Arc<Notify>);

impl ReloadTrigger {
    /// Requests a reload.
    pub fn reload(&self) {
        self.0.notify_one();
    }

    async fn requested(&self) {
        self.0.notified().await;
    }
}

/// The service, built from its parts; [`Service::run`] runs it until cancelled.
pub struct Service {
    config: Config,
    store: Arc<dyn Store>,
    listener: TcpListener,
    addr: SocketAddr,
    source: Option<ConfluenceSource>,
    reconcile: Option<(Reconciler, Duration)>,
    config_poll: Duration,
    reload: ReloadTrigger,
    policy: PolicyHandle,
    metrics: Option<(TcpListener, metrics_exporter_prometheus::PrometheusHandle)>,
    /// The configuration as the file said at start (before the listen address and default
    /// public URL were adjusted): what a reload compares against for restart-only keys.
    as_loaded: Config,
}

impl Service {
    /// The portal of `config` over `store`, on `listener` (already bound, so the caller picks
    /// the address and sees bind errors first). With port 0, or a listen address other than
    /// `[portal] listen`, the default public URL follows the address really bound, so the links
    /// the portal hands out (sign-in codes, magic links) point at it.
    pub fn new(
        mut config: Config,
        store: Arc<dyn Store>,
        listener: TcpListener,
    ) -> Result<Service, ServiceError> {
        let addr = listener.local_addr()?;
        let as_loaded = config.clone();
        if config.portal.public_url == kbgate_config::default_public_url(config.portal.listen) {
            config.portal.public_url = kbgate_config::default_public_url(addr);
        }
        config.portal.listen = addr;
        let policy = PolicyHandle::new(config.policy.clone());
        Ok(Service {
            config,
            store,
            listener,
            addr,
            source: None,
            reconcile: None,
            config_poll: DEFAULT_CONFIG_POLL,
            reload: ReloadTrigger::default(),
            policy,
            metrics: None,
            as_loaded,
        })
    }

    /// Syncs from `source` in the background on `[sync] interval` (the first round at once).
    pub fn with_sync(mut self, source: ConfluenceSource) -> Service {
        self.source = Some(source);
        self
    }

    /// Native mode in the background: plan and apply every `every`, with the policy re-read
    /// from the config file each round. A zero period turns it off.
    pub fn with_reconcile(mut self, reconciler: Reconciler, every: Duration) -> Service {
        self.reconcile = (!every.is_zero()).then_some((reconciler, every));
        self
    }

    /// Serves `/metrics` (Prometheus text) on `listener` (`[metrics] listen`, bound by the
    /// caller), installing the process's recorder now so that everything from here on is
    /// counted. Fails when another `metrics` recorder is installed already.
    pub fn with_metrics(mut self, listener: TcpListener) -> Result<Service, ServiceError> {
        let handle = telemetry::recorder()?;
        self.metrics = Some((listener, handle));
        Ok(self)
    }

    /// The address `/metrics` is served on, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// How often to look for a changed config file (by content, not time); zero turns the
    /// watch off, leaving [`ReloadTrigger`] as the only way to reload.
    pub fn with_config_poll(mut self, poll: Duration) -> Service {
        self.config_poll = poll;
        self
    }

    /// The address the portal listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration as served (listen address and default public URL as bound).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Requests reloads of the configuration file while the service runs.
    pub fn reload_trigger(&self) -> ReloadTrigger {
        self.reload.clone()
    }

    /// The policy the portal serves, replaced on each reload (for observers such as tests).
    pub fn policy(&self) -> PolicyHandle {
        self.policy.clone()
    }

    /// Serves until `shutdown` is cancelled, then stops gracefully (see the crate docs) and
    /// returns. A background loop that panics, or a failing listener, stops the service with
    /// an error.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServiceError> {
        let Service {
            config,
            store,
            listener,
            addr,
            source,
            reconcile,
            config_poll,
            reload,
            policy,
            metrics,
            as_loaded,
        } = self;
        // The admin console's "sync now" wakes the sync loop (only when there is one).
        let sync_now = (source.is_some() && !config.sync.interval.is_zero())
            .then(|| Arc::new(tokio::sync::Notify::new()));
        let state = AppState::from_config_with_sync(
            &config,
            store.clone(),
            policy.clone(),
            sync_now.clone(),
        )?;
        // Everything stops with the service, and also when the portal fails or a loop panics
        // (a child token: the caller's token is left alone).
        let stop = shutdown.child_token();
        let mut tasks = JoinSet::new();
        {
            let (policy, state, stop) = (policy.clone(), state.clone(), stop.clone());
            tasks.spawn(loops::reload(
                as_loaded,
                policy,
                state,
                config_poll,
                reload,
                stop,
            ));
        }
        if let Some(source) = source {
            let (store, config, stop) = (store.clone(), config.clone(), stop.clone());
            let now = sync_now.unwrap_or_default();
            tasks.spawn(loops::sync(source, store, config, policy, now, stop));
        }
        {
            let (store, stop) = (store.clone(), stop.clone());
            let retention = config.insights.retention();
            tasks.spawn(loops::prune_insights(
                store,
                retention,
                loops::PRUNE_EVERY,
                stop,
            ));
        }
        if let Some((reconciler, every)) = reconcile {
            let (path, stop) = (config.path.clone(), stop.clone());
            tasks.spawn(loops::reconcile(reconciler, every, path, stop));
        }
        if let Some((listener, handle)) = metrics {
            let (store, stop) = (store.clone(), stop.clone());
            if let Ok(at) = listener.local_addr() {
                tracing::info!("metrics at http://{at}/metrics");
            }
            tasks.spawn(async move {
                if let Err(e) = telemetry::serve(listener, handle, store, stop).await {
                    tracing::error!("the metrics listener failed: {e}");
                }
            });
        }
        drop(store);
        tracing::info!("portal listening on http://{addr}");

        let served = async {
            let portal_stop = stop.clone();
            let served = kbgate_server::serve(listener, state, async move {
                portal_stop.cancelled().await;
                tracing::info!("shutting down");
            })
            .await;
            stop.cancel();
            served
        };
        let loops_done = async {
            let mut panicked = false;
            while let Some(ended) = tasks.join_next().await {
                // Before shutdown only a panic ends a loop: stop the rest with it.
                stop.cancel();
                if let Err(e) = ended {
                    tracing::error!("a background loop failed: {e}");
                    panicked |= e.is_panic();
                }
            }
            panicked
        };
        let (served, panicked) = tokio::join!(served, loops_done);
        tracing::info!("stopped");
        served?;
        if panicked {
            return Err(ServiceError::Panicked);
        }
        Ok(())
    }
}

/// The keys whose change between `running` and `reloaded` takes effect only after a restart
/// (a reload applies the policy, session and magic-link lifetimes, mail delivery, framing
/// origins, embed keys and the API key at once). Secret *values* behind files or variables
/// of `[confluence]` and the store URL's password are read at start only; they are not
/// compared here.
pub fn restart_needed(running: &Config, reloaded: &Config) -> Vec<&'static str> {
    let (a, b) = (&running.portal, &reloaded.portal);
    let checks: [(&'static str, bool); 18] = [
        ("portal.listen", a.listen != b.listen),
        ("portal.public_url", a.public_url != b.public_url),
        (
            "portal.trusted_proxies",
            a.trusted_proxies != b.trusted_proxies,
        ),
        ("portal.view_cache_mb", a.view_cache_mb != b.view_cache_mb),
        (
            "portal.header_read_timeout",
            a.header_read_timeout != b.header_read_timeout,
        ),
        ("portal.idle_timeout", a.idle_timeout != b.idle_timeout),
        (
            "portal.max_connections",
            a.max_connections != b.max_connections,
        ),
        (
            "portal.max_connections_per_client",
            a.max_connections_per_client != b.max_connections_per_client,
        ),
        (
            "store.url",
            running.store.url.expose() != reloaded.store.url.expose(),
        ),
        (
            "store.data_dir",
            running.store.data_dir != reloaded.store.data_dir,
        ),
        (
            "sync.interval",
            running.sync.interval != reloaded.sync.interval,
        ),
        (
            "sync.overlap",
            running.sync.overlap != reloaded.sync.overlap,
        ),
        (
            "sync.full_every",
            running.sync.full_every != reloaded.sync.full_every,
        ),
        (
            "sync.lease_ttl",
            running.sync.lease_ttl != reloaded.sync.lease_ttl,
        ),
        (
            "metrics.listen",
            running.metrics.listen != reloaded.metrics.listen,
        ),
        (
            "insights.retention_days",
            running.insights != reloaded.insights,
        ),
        (
            "confluence",
            format!("{:?}", running.confluence) != format!("{:?}", reloaded.confluence),
        ),
        (
            "confluence.max_attachment_bytes",
            running.confluence.as_ref().map(|c| c.max_attachment_bytes)
                != reloaded.confluence.as_ref().map(|c| c.max_attachment_bytes),
        ),
    ];
    let mut keys: Vec<&'static str> = checks
        .into_iter()
        .filter_map(|(k, changed)| changed.then_some(k))
        .collect();
    // The section names itself once; a key of it is not listed twice.
    if keys.contains(&"confluence") {
        keys.retain(|k| !k.starts_with("confluence."));
    }
    keys
}

/// Every space named by an audience, once, in a stable order.
pub fn mirrored_spaces(config: &Config) -> Vec<String> {
    spaces_of(&config.policy)
}

/// Every space named by an audience of `policy`, once, in a stable order.
fn spaces_of(policy: &kbgate_policy::Policy) -> Vec<String> {
    policy
        .audiences()
        .iter()
        .flat_map(|a| a.spaces.iter().map(|s| s.as_str().to_string()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The mirror's options from `[confluence]` and `[sync]` (a full pass or not).
pub fn sync_options(config: &Config, full: bool) -> SyncOptions {
    SyncOptions {
        full,
        max_attachment_bytes: config
            .confluence
            .as_ref()
            .map_or(kbgate_config::DEFAULT_MAX_ATTACHMENT_BYTES, |c| {
                c.max_attachment_bytes
            }),
        overlap: config.sync.overlap,
        lease_ttl: config.sync.lease_ttl,
        // Names are looked up only when the portal shows them (no calls, no personal data
        // in the mirror otherwise).
        mention_names: config.portal.show_staff_names,
        ..SyncOptions::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &str) -> Config {
        let text = format!(
            "[confluence]\nbase_url = \"https://example.atlassian.net\"\nemail = \"svc@example.com\"\n\
             api_token_env = \"T\"\n{extra}"
        );
        Config::from_str_with_env(&text, std::path::Path::new("kbgate.toml"), &|_| None).unwrap()
    }

    /// Moved here from the binary's wiring with the sync loop, its main user.
    #[test]
    fn sync_options_come_from_the_config() {
        let c = load("max_attachment_bytes = 1024\n\n[sync]\noverlap = \"10m\"\n");
        let o = sync_options(&c, true);
        assert!(o.full);
        assert_eq!(o.max_attachment_bytes, 1024);
        assert_eq!(o.overlap, std::time::Duration::from_secs(600));
        let o = sync_options(&load("[sync]\nlease_ttl = \"20s\"\n"), false);
        assert_eq!(o.lease_ttl, std::time::Duration::from_secs(20));
        let o = sync_options(&load(""), false);
        assert!(!o.full);
        assert_eq!(
            o.max_attachment_bytes,
            kbgate_config::DEFAULT_MAX_ATTACHMENT_BYTES
        );
        assert_eq!(o.overlap, kbgate_config::DEFAULT_SYNC_OVERLAP);
    }

    #[test]
    fn restart_only_changes_are_named_and_live_ones_are_not() {
        let base = load("[portal]\nlisten = \"127.0.0.1:8080\"\n");
        assert!(restart_needed(&base, &base).is_empty());
        let live = load(
            "[portal]\nlisten = \"127.0.0.1:8080\"\nsession_idle = \"10m\"\n\
             session_absolute = \"1h\"\nmagic_link_ttl = \"5m\"\n\
             frame_ancestors = [\"https://app.example.com\"]\n",
        );
        assert!(restart_needed(&base, &live).is_empty());
        let moved = load(
            "[portal]\nlisten = \"127.0.0.1:9090\"\nmax_connections = 100\n\n\
             [store]\nurl = \"sqlite://other.db\"\n\n[sync]\ninterval = \"1m\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:9464\"\n",
        );
        assert_eq!(
            restart_needed(&base, &moved),
            [
                "portal.listen",
                // its default follows the listen address
                "portal.public_url",
                "portal.max_connections",
                "store.url",
                "sync.interval",
                "metrics.listen"
            ]
        );
        let site = load("").confluence.map(|mut c| {
            c.base_url = "https://other.atlassian.net".parse().unwrap();
            c
        });
        let other_site = Config {
            confluence: site,
            ..load("")
        };
        assert_eq!(restart_needed(&load(""), &other_site), ["confluence"]);
    }

    #[test]
    fn mirrored_spaces_are_each_named_once_in_order() {
        let c = load(
            "[[audience]]\nname = \"a\"\ndomains = [\"a.com\"]\nspaces = [\"KB\", \"API\"]\n\n\
             [[audience]]\nname = \"b\"\ndomains = [\"b.com\"]\nspaces = [\"KB\"]\n",
        );
        assert_eq!(mirrored_spaces(&c), ["API", "KB"]);
    }
}
