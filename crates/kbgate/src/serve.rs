//! `kbgate serve`: builds the parts from the configuration and runs them as a
//! [`kbgate_service::Service`] until SIGINT/SIGTERM; SIGHUP reloads the policy.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use kbgate_config::Config;
use kbgate_mirror::sync::confluence::ConfluenceSource;
use kbgate_service::{CancellationToken, Service};

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
    let config = Config::load(config_path)?;
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
    let metrics = match config.metrics.listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} ([metrics] listen)"))?,
        ),
        None => None,
    };
    log_startup(&config, listen, source.is_some());
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
            Some((r, every))
        }
        _ => None,
    };
    let mut service = Service::new(config, store, listener)?.with_config_poll(args.config_poll);
    if let Some(source) = source {
        service = service.with_sync(source);
    }
    if let Some((r, every)) = reconcile {
        service = service.with_reconcile(r, every);
    }
    if let Some(listener) = metrics {
        service = service.with_metrics(listener)?;
    }
    run_until_signal(service).await
}

/// One line at start with what an operator checks first (never a secret: the store and SMTP
/// URLs print with their passwords as `***`).
fn log_startup(config: &Config, listen: std::net::SocketAddr, syncing: bool) {
    let mail = match &config.portal.magic_link {
        kbgate_config::MagicLinkDelivery::Smtp(url) => url.redacted().to_owned(),
        kbgate_config::MagicLinkDelivery::Outbox(dir) => format!("outbox {}", dir.display()),
    };
    let names: Vec<&str> = config
        .policy
        .audiences()
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    let audiences = format!("{} ({})", names.len(), names.join(", "));
    let sync = if !syncing || config.sync.interval.is_zero() {
        "off".to_owned()
    } else {
        format!(
            "every {}",
            kbgate_config::format_duration(config.sync.interval)
        )
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        store = %config.store.url,
        listen = %listen,
        public_url = %config.portal.public_url,
        mail = %mail,
        audiences = %audiences,
        sync = %sync,
        "kbgate starting"
    );
}

/// Runs the service until SIGINT (Ctrl-C) or SIGTERM, then lets it stop gracefully; SIGHUP
/// re-reads the configuration. The signals are mapped here, not in the library, so tests
/// run the service in-process without touching the process's signal handlers.
pub async fn run_until_signal(service: Service) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    // Installed before serving, so a SIGHUP never meets the default action (exit).
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install the SIGHUP handler")?;
    let reload = service.reload_trigger();
    let running = async {
        let result = service.run(shutdown.clone()).await;
        // Ended on its own (an error): stop listening for signals too.
        shutdown.cancel();
        result
    };
    let signals = async {
        loop {
            #[cfg(unix)]
            let hup_fired = hup.recv();
            #[cfg(not(unix))]
            let hup_fired = std::future::pending::<Option<()>>();
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = stop_signal() => {
                    shutdown.cancel();
                    return;
                }
                Some(()) = hup_fired => reload.reload(),
            }
        }
    };
    let (result, ()) = tokio::join!(running, signals);
    Ok(result?)
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
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
}
