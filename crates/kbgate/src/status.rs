//! `kbgate status`: what the store records about syncs and sessions, for an operator or a
//! monitoring script (the summary the admin console will show).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use kbgate_config::{Config, StoreBackend};
use kbgate_server::NextRun;
use kbgate_store::Store;
use serde::Serialize;

use crate::wiring;

/// How the summary is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// One block per space, then the sessions per domain.
    Text,
    /// One JSON document (for scripts and monitoring); times in RFC 3339 UTC.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Summary format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// The whole summary.
#[derive(Debug, Serialize)]
struct Status {
    /// When the summary was taken.
    now: DateTime<Utc>,
    /// `[sync] interval` in seconds while `kbgate serve` syncs in the background; `None` when
    /// it does not (no `[confluence]`, or interval 0).
    sync_interval_secs: Option<u64>,
    spaces: Vec<SpaceStatus>,
    /// Live sessions per email domain, most first.
    sessions: Vec<DomainSessions>,
    /// Sum of `sessions`.
    sessions_total: u64,
}

#[derive(Debug, Serialize)]
struct SpaceStatus {
    key: String,
    /// `None` until the space was mirrored.
    name: Option<String>,
    /// Named by an audience of the policy (false: still mirrored, removed by the next full
    /// `kbgate sync`).
    in_policy: bool,
    /// Pages in the mirror (restricted ones included: they are mirrored, not served).
    pages: u64,
    /// The last committed sync round; `None`: never synced.
    last_sync: Option<LastSync>,
    /// A sync holding the space's lease now.
    syncing: Option<Lease>,
    /// When the next background round will sync the space (a past time: at the next round).
    next_sync_due: Option<DateTime<Utc>>,
    /// The next run as the admin console shows it: `{"state": "running"}` while a sync holds
    /// the lease, `"due"` when never synced or overdue, `"scheduled"` with `"at"`, or `"off"`
    /// without a background sync.
    next_sync: NextRun,
}

#[derive(Debug, Serialize)]
struct LastSync {
    at: DateTime<Utc>,
    /// The process that recorded it (the lease holder's name: process id and host).
    by: String,
}

#[derive(Debug, Serialize)]
struct Lease {
    holder: String,
    until: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct DomainSessions {
    domain: String,
    sessions: u64,
}

pub async fn run(config: &Path, args: Args) -> ExitCode {
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", crate::error_chain(&e));
            return ExitCode::from(2);
        }
    };
    let status = match gather(&config).await {
        Ok(s) => s,
        Err(e) => return crate::fail(&e),
    };
    match args.output {
        Output::Json => match serde_json::to_string_pretty(&status) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot print the summary: {e}");
                return ExitCode::from(1);
            }
        },
        Output::Text => print_text(&status),
    }
    ExitCode::SUCCESS
}

/// Refuses a SQLite store that does not exist: opening it would create an empty one, and a
/// status of nothing hides a wrong `--config` or `data_dir`.
pub(crate) fn ensure_store_exists(config: &Config) -> anyhow::Result<()> {
    if config.store.backend == StoreBackend::Postgres {
        return Ok(());
    }
    let files = kbgate_store::sqlite_files(config.store.url.expose(), &config.store.data_dir)?
        .context("the store is in memory (sqlite::memory:): a separate process cannot see it")?;
    anyhow::ensure!(
        files.mirror.is_file(),
        "no store at {} (wrong --config or data_dir, or nothing synced or served yet)",
        files.mirror.display()
    );
    Ok(())
}

async fn gather(config: &Config) -> anyhow::Result<Status> {
    ensure_store_exists(config)?;
    let store = wiring::open_store(config).await?;
    let now = Utc::now();
    let interval = (config.confluence.is_some() && !config.sync.interval.is_zero())
        .then_some(config.sync.interval);
    let mut keys: Vec<(String, bool)> = kbgate_service::mirrored_spaces(config)
        .into_iter()
        .map(|k| (k, true))
        .collect();
    for space in store.list_spaces().await? {
        if !keys.iter().any(|(k, _)| *k == space.key) {
            keys.push((space.key, false));
        }
    }
    let mut spaces = Vec::with_capacity(keys.len());
    for (key, in_policy) in keys {
        spaces.push(space_status(&*store, key, in_policy, interval, now).await?);
    }
    let sessions: Vec<DomainSessions> = store
        .sessions_per_domain(now)
        .await?
        .into_iter()
        .map(|(domain, sessions)| DomainSessions { domain, sessions })
        .collect();
    Ok(Status {
        now,
        sync_interval_secs: interval.map(|i| i.as_secs()),
        sessions_total: sessions.iter().map(|d| d.sessions).sum(),
        spaces,
        sessions,
    })
}

async fn space_status(
    store: &dyn Store,
    key: String,
    in_policy: bool,
    interval: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> anyhow::Result<SpaceStatus> {
    let space = store.space_by_key(&key).await?;
    let pages = match &space {
        Some(s) => store.page_summaries(&s.id).await?.len() as u64,
        None => 0,
    };
    let last = store.last_synced(&key).await?;
    let syncing = store.sync_lease_holder(&key).await?.map(|l| Lease {
        holder: l.holder,
        until: l.expires_at,
    });
    // A background round skips a space synced within its interval (kbgate-store docs, "One
    // sync per interval"), so the next one that syncs it is due at last + interval.
    let next_sync_due = match (&last, interval) {
        (Some(l), Some(i)) => chrono::Duration::from_std(i)
            .ok()
            .and_then(|i| l.synced_at.checked_add_signed(i)),
        _ => None,
    };
    let next_sync = NextRun::of(
        last.as_ref().map(|l| l.synced_at),
        interval,
        syncing.is_some(),
        now,
    );
    Ok(SpaceStatus {
        key,
        name: space.map(|s| s.name),
        in_policy,
        pages,
        last_sync: last.map(|l| LastSync {
            at: l.synced_at,
            by: l.holder,
        }),
        syncing,
        next_sync_due,
        next_sync,
    })
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn print_text(s: &Status) {
    println!("Spaces ({}):", s.spaces.len());
    for sp in &s.spaces {
        let name = sp.name.as_deref().unwrap_or("(not mirrored)");
        let note = if sp.in_policy {
            ""
        } else {
            " [no audience names it]"
        };
        println!("  {} {name}{note}: {} page(s)", sp.key, sp.pages);
        match &sp.last_sync {
            Some(l) => println!("    last sync: {} by {}", time(l.at), l.by),
            None => println!("    last sync: never synced"),
        }
        if let Some(l) = &sp.syncing {
            println!(
                "    syncing now: {} (lease until {})",
                l.holder,
                time(l.until)
            );
        }
        println!("    next sync: {}", sp.next_sync.describe(s.now));
    }
    println!("Sessions: {} live", s.sessions_total);
    for d in &s.sessions {
        println!("  {}: {}", d.domain, d.sessions);
    }
}
