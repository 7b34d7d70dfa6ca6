//! `kbgate serve`: the portal, a background sync, and live policy reloads.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kbgate_config::Config;
use kbgate_mirror::sync::{
    BLOB_GRACE, Progress, confluence::ConfluenceSource, forget, sync_spaces,
};
use kbgate_server::{AppState, PolicyHandle};
use kbgate_store::Store;

use crate::wiring;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Listen here instead of `[portal] listen`.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Do not run the background sync (e.g. when `kbgate sync` runs from cron).
    #[arg(long)]
    no_sync: bool,
    /// Native mode: plan and apply on this interval (e.g. "15m"), so access requests are
    /// served without an operator. Off by default.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    reconcile_every: Option<Duration>,
    /// How often to look for a changed config file (its content, not just its time);
    /// "0s" turns the watch off, leaving SIGHUP as the only way to reload.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    config_poll: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    kbgate_config::parse_duration(s)
}

pub async fn run(config_path: &Path, args: Args) -> ExitCode {
    match serve(config_path, args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(&e),
    }
}

async fn serve(config_path: &Path, args: Args) -> anyhow::Result<()> {
    let mut config = Config::load(config_path)?;
    let store = wiring::open_store(&config).await?;
    let source = if args.no_sync || config.confluence.is_none() {
        None
    } else {
        Some(ConfluenceSource::new(
            wiring::confluence_client(&config).await?,
        ))
    };
    let listen = args.listen.unwrap_or(config.portal.listen);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {listen}"))?;
    // With port 0 (or --listen) the default public URL follows the port really bound, so the
    // links the portal hands out (sign-in codes, magic links) point at it.
    if config.portal.public_url == kbgate_config::default_public_url(config.portal.listen) {
        config.portal.public_url = kbgate_config::default_public_url(bound);
    }
    config.portal.listen = bound;
    tracing::info!("portal listening on http://{bound}");
    let reconcile = match args.reconcile_every {
        Some(every) if !every.is_zero() => {
            let c = config
                .confluence
                .as_ref()
                .context("--reconcile-every needs a [confluence] section")?;
            let r = kbgate_provision::Reconciler::new(
                wiring::confluence_client(&config).await?,
                store.clone(),
                config.policy.clone(),
                wiring::reconcile_options(c),
            );
            Some(tokio::spawn(reconcile_loop(r, every, config.path.clone())))
        }
        _ => None,
    };
    let result = serve_with(config, store, source, listener, args.config_poll).await;
    if let Some(r) = reconcile {
        r.abort();
    }
    result
}

/// Native mode in the background: plan and apply on an interval, with the policy re-read
/// from the file each round.
async fn reconcile_loop(mut r: kbgate_provision::Reconciler, every: Duration, path: PathBuf) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match Config::load(&path) {
            Ok(c) => r.set_policy(c.policy),
            Err(e) => tracing::warn!("reconcile: config refused, keeping the last policy: {e}"),
        }
        match r.converge(&kbgate_provision::NoProgress, 3).await {
            Ok((left, summary)) => tracing::info!(
                done = summary.done,
                failed = summary.failed,
                calls = summary.calls,
                left = left.actions.len(),
                "native reconcile round finished"
            ),
            Err(e) => tracing::warn!("native reconcile failed (will retry): {e}"),
        }
    }
}

/// Serves until Ctrl-C or SIGTERM; syncs on `[sync] interval` when a source is given;
/// reloads the policy on SIGHUP or when the config file changes.
pub async fn serve_with(
    config: Config,
    store: Arc<dyn Store>,
    source: Option<ConfluenceSource>,
    listener: tokio::net::TcpListener,
    config_poll: Duration,
) -> anyhow::Result<()> {
    let policy = PolicyHandle::new(config.policy.clone());
    let state = AppState::from_config(&config, store.clone(), policy.clone())
        .context("cannot set up the portal")?;

    let reload = tokio::spawn(reload_loop(
        config.path.clone(),
        policy.clone(),
        config_poll,
    ));
    let sync = source.map(|source| {
        tokio::spawn(sync_loop(
            source,
            store.clone(),
            config.clone(),
            policy.clone(),
        ))
    });

    kbgate_server::serve(listener, state, shutdown_signal()).await?;
    reload.abort();
    if let Some(s) = sync {
        s.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// A fingerprint of the config file's bytes: a change of content is seen even when the
/// modification time is not (`cp -p`, two writes in one timestamp tick), and a file caught
/// half-written is re-read once the writer finishes, because its content changes again.
fn fingerprint(path: &Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

/// Re-reads the policy on SIGHUP or when the file's content changes (polled every 2 s). A
/// bad file is refused with its errors logged once, and the running policy stays.
async fn reload_loop(path: PathBuf, policy: PolicyHandle, poll: Duration) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut seen = fingerprint(&path);
    // A zero period means no polling: the tick never fires.
    let mut tick = tokio::time::interval(if poll.is_zero() {
        Duration::from_secs(u64::from(u32::MAX))
    } else {
        poll
    });
    tick.tick().await; // the first tick is immediate
    loop {
        #[cfg(unix)]
        let hup_fired = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup_fired = std::future::pending::<()>();
        let forced = tokio::select! {
            () = hup_fired => true,
            _ = tick.tick() => false,
        };
        let now = fingerprint(&path);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        match Config::load(&path) {
            Ok(c) => {
                policy.replace(c.policy);
                tracing::info!("policy reloaded from {}", path.display());
            }
            Err(e) => tracing::error!("config reload refused, keeping the running policy: {e}"),
        }
    }
}

/// Whether this background round should be a full pass: some space was never fully synced,
/// or its last full sync is older than `every` (zero: never).
async fn full_due(store: &dyn Store, keys: &[String], every: Duration) -> bool {
    if every.is_zero() {
        return false;
    }
    let Ok(every) = chrono::Duration::from_std(every) else {
        return false;
    };
    let now = chrono::Utc::now();
    for key in keys {
        match store.sync_state(key).await {
            Ok(Some(s)) if s.last_full_sync.is_some_and(|t| now - t < every) => {}
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!("cannot read the sync state of {key}: {e}");
                return false;
            }
        }
    }
    false
}

async fn sync_loop(
    source: ConfluenceSource,
    store: Arc<dyn Store>,
    config: Config,
    policy: PolicyHandle,
) {
    let interval = config.sync.interval;
    if interval.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Spaces of the current policy (it may have been reloaded).
        let keys: Vec<String> = {
            let p = policy.current();
            let mut keys: Vec<String> = p
                .audiences()
                .iter()
                .flat_map(|a| a.spaces.iter().map(|s| s.as_str().to_string()))
                .collect();
            keys.sort();
            keys.dedup();
            keys
        };
        let full = full_due(&*store, &keys, config.sync.full_every).await;
        let opts = wiring::sync_options(&config, full);
        match sync_spaces(&source, &*store, &keys, &opts, &Progress::quiet()).await {
            Ok(report) => tracing::info!(
                calls = report.calls,
                full,
                "background sync done: {}",
                report.to_string().replace('\n', "; ")
            ),
            Err(e) => tracing::warn!("background sync failed (will retry): {e}"),
        }
        match forget(&*store, &keys, BLOB_GRACE).await {
            Ok(r) if !r.is_empty() => tracing::info!("mirror cleaned up: {r}"),
            Ok(_) => {}
            Err(e) => tracing::warn!("could not clean up the mirror (will retry): {e}"),
        }
    }
}
