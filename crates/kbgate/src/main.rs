//! kbgate: serve a Confluence knowledge base to customers, granted by email domain.
//!
//! This binary only parses the command line, loads the configuration and wires the
//! crates together; the work is done in the library crates.

mod backup;
mod check;
mod config_cmd;
#[cfg(feature = "demo")]
mod demo;
mod doctor;
mod explain;
mod feedback;
mod healthcheck;
mod native;
mod serve;
mod sessions;
mod status;
mod sync;
mod wiring;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: a page view allocates and frees a response-sized buffer,
/// and glibc's consolidation of such chunks took about a sixth of the portal's CPU under load
/// (measured with the portal bench and perf).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serve a Confluence Cloud knowledge base read-only to customers, granted by email domain.
///
/// kbgate mirrors the spaces named by the audiences of its policy (kbgate.toml) and serves
/// them to verified customers: handed over from your web app (signed JWT or back-channel
/// code) or signed in by email magic link. Every request is authorised by the domain policy
/// and Confluence's own page restrictions.
#[derive(Debug, Parser)]
#[command(name = "kbgate", version, about, long_about)]
struct Cli {
    /// The configuration file (see kbgate.example.toml). Every key can also be set from the
    /// environment as KBGATE_<SECTION>_<KEY>.
    #[arg(
        long,
        short,
        global = true,
        env = "KBGATE_CONFIG",
        default_value = "kbgate.toml"
    )]
    config: PathBuf,

    /// Log filter (tracing syntax), e.g. "info" or "kbgate_mirror=debug".
    #[arg(long, global = true, env = "KBGATE_LOG", default_value = "info")]
    log: String,

    /// Log format: "text" for people, "json" (one object per line) for files and log
    /// shippers. Logs go to stderr, coloured only when stderr is a terminal and NO_COLOR is
    /// unset.
    #[arg(
        long,
        global = true,
        env = "KBGATE_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event (timestamp, level, fields, message).
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explain what an email may read under the policy.
    ///
    /// Exit status: 0 when the email may read something, 1 when it may not, 2 when the
    /// email or the configuration is invalid.
    Check(check::Args),
    /// Explain why an email may or may not read a page, step by step (policy, audiences,
    /// spaces, labels, restrictions), and who can read the page: the admin console's
    /// explainer, from the mirror in the store.
    ///
    /// PAGE is a page id or a portal or Confluence page URL. Exit status: 0 allowed, 1
    /// refused (or the store cannot be read), 2 an invalid email, page or configuration.
    Explain(explain::Args),
    /// Mirror the spaces named by the audiences from Confluence into the store.
    ///
    /// Incremental after the first run (changes since the last watermark, plus a structure
    /// scan that catches deletions, moves and restriction changes); --full forces a full
    /// pass. Each space is written in one transaction: an interrupted sync leaves the
    /// previous mirror in place.
    Sync(sync::Args),
    /// Check the Confluence site before the first sync (read-only).
    ///
    /// Which way kbgate authenticates and whether it works, the cloud id and time zone, for
    /// each mirrored space: readable, size, page restrictions readable, one attachment
    /// downloaded through the path kbgate uses; admin rights for native audiences; the
    /// rate-limit headers seen; the Confluence calls of a full and a no-change sync. Exit
    /// status: 0 when every check passed, 1 when one failed (each failure says what to fix),
    /// 2 for an invalid configuration.
    Doctor(doctor::Args),
    /// Serve the portal (and sync in the background on `[sync] interval`).
    ///
    /// The configuration is re-read on SIGHUP or when the file changes: the policy (existing
    /// sessions are judged by it on their next request), session and magic-link lifetimes,
    /// mail delivery, framing origins and the embed keys apply at once; changed keys that
    /// need a restart (listen address, public URL, store, sync, metrics, Confluence) are
    /// named in a warning.
    Serve(serve::Args),
    /// Run everything on this machine with a simulated Confluence site: no configuration.
    ///
    /// Starts the simulator with seeded demo content, mirrors it into a throw-away SQLite
    /// store, serves the portal and prints ready-to-click sign-in links.
    #[cfg(feature = "demo")]
    Demo(demo::Args),
    /// Not in this build (built without the `demo` cargo feature); says so.
    #[cfg(not(feature = "demo"))]
    #[command(hide = true, disable_help_flag = true)]
    Demo {
        /// Whatever was given; ignored.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Native mode: show what would change in Confluence's own permissions (no writes to it).
    ///
    /// For audiences delivered as guest, unlicensed or group: who should have what, compared
    /// with what Confluence has, grouped by audience and action, each with its reason. Site
    /// limits are checked here, before anything is applied: when a guest audience would go
    /// beyond the allowance of 5 guests per paid user, the plan keeps only the people who fit
    /// and lists (LIMIT …) how many fit, who waits, and what to do.
    ///
    /// People whose invitation has not arrived are listed as WAITING: invited and not complete
    /// yet, or of unknown outcome (an apply stopped before Confluence answered). The latter are
    /// re-checked against the site by every plan and re-sent by apply, at the time the plan
    /// names, if they still have no access.
    ///
    /// The plan is kept in the store as the latest (the admin console shows it at
    /// /admin/plan); nothing is written to Confluence.
    ///
    /// Exit status with --detailed-exitcode: 0 converged (nothing to do, nobody waiting), 2
    /// changes to apply, 3 nothing that fits to apply but people wait on a site limit, 4
    /// nothing to apply now but people wait on an invitation, 1 error. Without it: 0, or 1 on
    /// error.
    Plan(native::PlanArgs),
    /// Native mode: apply the plan with a journal (idempotent and resumable).
    ///
    /// Applies only what fits the site's limits; people beyond a limit (the plan's LIMIT
    /// lines, or refused by Confluence with a 403 naming the limit) are reported as waiting on
    /// it, not as failures, and are provisioned by a later apply once there is room.
    ///
    /// Group delivery: apply waits (--wait, `[confluence] invite_wait`, default 2m) for the
    /// invitations it sent to complete, then adds the invitees to the group in the same run;
    /// whoever is not there in time is listed as waiting (not granted), and the next apply
    /// adds them.
    ///
    /// Exit status: 0 everything applied; 3 partly applied: the rest waits on a site limit
    /// (the guest allowance, the plan's user limit) and nothing failed; 4 applied, but people
    /// wait on an invitation and nothing failed; 1 an error, or an action failed.
    Apply(native::ApplyArgs),
    /// Native mode: the people kbgate knows.
    #[command(subcommand)]
    People(native::PeopleCommand),
    /// Manage portal sessions.
    #[command(subcommand)]
    Sessions(sessions::Command),
    /// Readers' "Was this helpful?" votes (`feedback export --format csv`).
    #[command(subcommand)]
    Feedback(feedback::Command),
    /// Summarise what the store records: per space its pages, last sync, running sync and
    /// next background round; live sessions per email domain.
    ///
    /// Read-only, and safe while `kbgate serve` or a sync runs: the same store any instance
    /// writes to. Each space named by an audience is listed ("never synced" until its first
    /// sync), plus mirrored spaces no audience names any more. The last sync is the last
    /// committed round, with the process that ran it (pid and host); the next run is that time
    /// plus `[sync] interval` ("due now" when never synced or overdue, "running now" while a sync
    /// holds the space's lease, as the admin console's sync page shows it). A missing SQLite store is an error (nothing is
    /// created). Exit status: 0 printed, 1 the store cannot be read, 2 an invalid
    /// configuration.
    Status(status::Args),
    /// Copy a SQLite store (both databases and the attachment files) into DIR, safely while
    /// `kbgate serve` or a sync runs.
    ///
    /// The databases are copied with SQLite's `VACUUM INTO`, a consistent snapshot of each
    /// (never copy the files of a live WAL database by hand: the copy can miss committed
    /// data or be corrupt). DIR gets the layout of a data_dir: `kbgate.db`, `kbgate.ops.db`
    /// (or the names the store URL gives) and `blobs/`, every file 0600.
    ///
    /// Restore: stop kbgate, put those files into an empty data_dir (the command prints
    /// where each goes) and start kbgate; sessions, audit log, people and the mirror are as
    /// they were at the backup, and the next sync catches up with Confluence.
    ///
    /// A PostgreSQL store is not copied: back it up with `pg_dump` (the command says how).
    /// Exit status: 0 written, 1 failed (nothing under the final names is half-written), 2
    /// a PostgreSQL store or an invalid configuration.
    Backup(backup::Args),
    /// Ask a running `kbgate serve` on this machine whether it is up (for container and
    /// service-manager health checks; no curl needed).
    ///
    /// `GET /healthz` (or `/readyz` with --ready) on `[portal] listen` (or --addr). Exit
    /// status: 0 it answered 200, 1 otherwise.
    Healthcheck(healthcheck::Args),
    /// Work with configuration files (`config check [FILE]`).
    #[command(subcommand)]
    Config(config_cmd::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Check(args) => check::run(&cli.config, args),
            Command::Explain(args) => explain::run(&cli.config, args).await,
            Command::Config(cmd) => config_cmd::run(&cli.config, cmd),
            Command::Sync(args) => sync::run(&cli.config, args).await,
            Command::Doctor(args) => doctor::run(&cli.config, args).await,
            Command::Serve(args) => serve::run(&cli.config, args).await,
            #[cfg(feature = "demo")]
            Command::Demo(args) => demo::run(args).await,
            #[cfg(not(feature = "demo"))]
            Command::Demo { .. } => {
                eprintln!(
                    "error: this kbgate was built without the demo (cargo feature `demo`); \
                     build with default features to run `kbgate demo`"
                );
                ExitCode::from(2)
            }
            Command::Backup(args) => backup::run(&cli.config, args).await,
            Command::Healthcheck(args) => healthcheck::run(&cli.config, args).await,
            Command::Status(args) => status::run(&cli.config, args).await,
            Command::Sessions(cmd) => sessions::run(&cli.config, cmd).await,
            Command::Feedback(cmd) => feedback::run(&cli.config, cmd).await,
            Command::Plan(args) => native::plan(&cli.config, args).await,
            Command::Apply(args) => native::apply(&cli.config, args).await,
            Command::People(cmd) => native::people(&cli.config, cmd).await,
        }
    })
}

fn init_tracing(filter: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => {
            // Colour codes only for a person at a terminal: in files and pipes they are noise.
            let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(ansi).try_init()
        }
    };
}

/// Prints an error chain for an operator and returns the failure exit code.
fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {}", error_chain(err.as_ref()));
    ExitCode::from(1)
}

/// An error and its causes on one line, each said once. Many errors already put their cause
/// in their own message (`store: {0}`, sqlx's "error returned from database: {0}") *and*
/// report it as their `source()`; printing the chain with `{:#}` then repeats it at every
/// level ("database error: error returned from database: (code: 5) …" four times, issue 16).
/// A cause whose text the line already ends with is left out; one that adds something is
/// appended after ": ".
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod error_chain_tests {
    use super::error_chain;

    /// One level of an error chain: its message and its source.
    #[derive(Debug)]
    struct Level(String, Option<Box<Level>>);

    impl std::fmt::Display for Level {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Level {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    /// What StoreError::Database(sqlx::Error::Database(..)) inside ProvisionError::Store
    /// looks like: every level repeats its source in its message and reports it as source.
    fn store_error() -> Level {
        let db = Level("(code: 5) database is locked".into(), None);
        let sqlx = Level(
            format!("error returned from database: {db}"),
            Some(Box::new(db)),
        );
        let store = Level(format!("database error: {sqlx}"), Some(Box::new(sqlx)));
        Level(format!("store: {store}"), Some(Box::new(store)))
    }

    #[test]
    fn each_cause_is_printed_once() {
        let e = anyhow::Error::from(store_error());
        assert_eq!(
            format!("{e:#}").matches("(code: 5)").count(),
            4,
            "the old output"
        );
        let line = error_chain(e.as_ref());
        assert_eq!(
            line,
            "store: database error: error returned from database: (code: 5) database is locked"
        );
        assert_eq!(line.matches("(code: 5)").count(), 1, "{line}");
        // A cause that is not in the message is kept.
        let e = anyhow::Error::from(Level(
            "could not open the store".into(),
            Some(Box::new(Level("(code: 5) database is locked".into(), None))),
        ));
        assert_eq!(
            error_chain(e.as_ref()),
            "could not open the store: (code: 5) database is locked"
        );
        // anyhow's context is a level of its own.
        let e = anyhow::Error::from(store_error()).context("kbgate apply");
        assert_eq!(
            error_chain(e.as_ref()),
            "kbgate apply: store: database error: error returned from database: (code: 5) database is locked"
        );
    }
}
