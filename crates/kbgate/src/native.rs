//! Native mode commands: `plan`, `apply`, `people import|list`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use kbgate_config::Config;
use kbgate_provision::{
    Action, ApplyProgress, ApplySummary, Outcome, Plan, Reconciler, import_people_csv, list_people,
};

use crate::wiring;

/// Exit status of `apply` (and of `plan --detailed-exitcode`) when what could be done is done
/// but people wait on a site limit: distinct from 1 (an error or a failed action).
pub const LIMITS_REACHED: u8 = 3;

/// Exit status of `apply` (and of `plan --detailed-exitcode`) when nothing failed and nothing
/// is left to apply now, but people wait on an invitation (not converged yet).
pub const AWAITING_INVITATIONS: u8 = 4;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
    /// Exit 0 when converged, 2 when there are changes, 3 when nothing that fits is left but
    /// people wait on a site limit, 4 when nothing is to be applied now but people wait on an
    /// invitation, 1 on error (terraform's convention, plus 3 and 4).
    #[arg(long)]
    detailed_exitcode: bool,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Only show the plan (same as `kbgate plan`).
    #[arg(long)]
    dry_run: bool,
    /// Output format of the plan and the summary.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
    /// How long to wait for the invitations this run sends to complete before adding the
    /// invitees to their group (e.g. 90s, 5m; 0 = do not wait). Default: `[confluence]
    /// invite_wait` (2m).
    #[arg(long, value_name = "DURATION", value_parser = kbgate_config::parse_duration)]
    wait: Option<std::time::Duration>,
}

#[derive(Debug, clap::Subcommand)]
pub enum PeopleCommand {
    /// Import people from a CSV file with a header row naming an `email` column. Bad rows
    /// are reported with their line numbers; good rows are kept.
    ///
    /// Exit status: 0 when every row was imported (or already known), 1 when any row was
    /// rejected (the good rows are imported all the same) or the file cannot be used.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// List the people kbgate knows (imported, or who asked for access).
    List,
}

async fn reconciler(config: &Config) -> anyhow::Result<Reconciler> {
    let c = config.confluence.as_ref().with_context(|| {
        format!(
            "{}: native mode needs a [confluence] section",
            config.path.display()
        )
    })?;
    let client = wiring::confluence_client(config).await?;
    let store = wiring::open_store(config).await?;
    Ok(Reconciler::new(
        client,
        store,
        config.policy.clone(),
        wiring::reconcile_options(c),
    ))
}

fn print_plan(plan: &Plan, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Text => println!("{plan}"),
        Output::Json => println!("{}", serde_json::to_string_pretty(&plan.to_json())?),
    }
    Ok(())
}

pub async fn plan(config: &Path, args: PlanArgs) -> ExitCode {
    let result = async {
        let config = Config::load(config)?;
        let r = reconciler(&config).await?;
        let plan = r.plan().await?;
        print_plan(&plan, args.output)?;
        anyhow::Ok(plan)
    }
    .await;
    match result {
        Ok(_) if !args.detailed_exitcode => ExitCode::SUCCESS,
        Ok(plan) if !plan.is_empty() => ExitCode::from(2),
        Ok(plan) if plan.waiting_on_limits() > 0 => ExitCode::from(LIMITS_REACHED),
        Ok(plan) if !plan.converged() => ExitCode::from(AWAITING_INVITATIONS),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => crate::fail(&e),
    }
}

pub async fn apply(config: &Path, args: ApplyArgs) -> ExitCode {
    if args.dry_run {
        return plan(
            config,
            PlanArgs {
                output: args.output,
                detailed_exitcode: false,
            },
        )
        .await;
    }
    let result = async {
        let config = Config::load(config)?;
        let mut r = reconciler(&config).await?;
        if let Some(wait) = args.wait {
            r.options_mut().invite_wait = wait;
        }
        let plan = r.plan().await?;
        if plan.is_empty() && !plan.awaiting.is_empty() {
            eprintln!("Nothing to do now, but not converged:");
            eprint!("{plan}");
            return anyhow::Ok(ApplySummary {
                held: plan.waiting_on_limits(),
                awaiting: plan
                    .awaiting
                    .iter()
                    .map(|w| {
                        let why = match w.retry_at {
                            Some(t) => format!(
                                "invitation of unknown outcome, no site access yet; sent again \
                                 from {} if still without access",
                                t.format("%Y-%m-%d %H:%M UTC")
                            ),
                            None => "invited; the invitation has not completed yet".to_owned(),
                        };
                        (w.email.clone(), why)
                    })
                    .collect(),
                ..ApplySummary::default()
            });
        }
        if plan.is_empty() {
            if plan.waiting_on_limits() > 0 {
                eprintln!("Nothing to do that fits the site's limits:");
                for l in &plan.limits {
                    eprintln!("  {l}");
                }
                return anyhow::Ok(ApplySummary {
                    held: plan.waiting_on_limits(),
                    ..ApplySummary::default()
                });
            }
            eprintln!("Nothing to do: Confluence already matches the policy.");
            return anyhow::Ok(ApplySummary::default());
        }
        if matches!(args.output, Output::Text) {
            print_plan(&plan, args.output)?;
        }
        let progress = BarProgress::new();
        let summary = r.apply(&plan, &progress).await?;
        progress.finish();
        Ok(summary)
    }
    .await;
    match result {
        Ok(summary) => {
            match args.output {
                Output::Text => {
                    println!(
                        "apply: {} done, {} skipped, {} failed, {} waiting on a site limit, {} \
                         Confluence calls",
                        summary.done,
                        summary.skipped,
                        summary.failed,
                        summary.held + summary.waiting,
                        summary.calls
                    );
                    for (id, msg) in &summary.failures {
                        println!("  failed {id}: {msg}");
                    }
                    for (id, msg) in &summary.waiting_on {
                        println!("  waiting {id}: {msg}");
                    }
                    if summary.held > 0 {
                        println!(
                            "  {} person(s) left out by the plan: they wait on a site limit \
                             (see the plan's LIMIT lines for who and what to do)",
                            summary.held
                        );
                    }
                    for email in &summary.unverified {
                        println!("  not yet visible to check-access-by-email: {email}");
                    }
                    if summary.invitations_completed > 0 {
                        println!(
                            "  {} invitation(s) completed during the run; their people were \
                             added to their groups",
                            summary.invitations_completed
                        );
                    }
                    for (email, why) in &summary.awaiting {
                        println!("  waiting {email}: {why}");
                    }
                }
                Output::Json => match serde_json::to_string_pretty(&summary) {
                    Ok(s) => println!("{s}"),
                    Err(e) => return crate::fail(&e.into()),
                },
            }
            if summary.failed > 0 {
                ExitCode::from(1)
            } else if summary.limits_reached() {
                ExitCode::from(LIMITS_REACHED)
            } else if !summary.awaiting.is_empty() {
                ExitCode::from(AWAITING_INVITATIONS)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => crate::fail(&e),
    }
}

pub async fn people(config: &Path, cmd: PeopleCommand) -> ExitCode {
    let result = async {
        let config = Config::load(config)?;
        let store = wiring::open_store(&config).await?;
        match cmd {
            PeopleCommand::Import { file } => {
                let f = std::fs::File::open(&file)
                    .with_context(|| format!("cannot open {}", file.display()))?;
                let report = import_people_csv(
                    &*store,
                    &config.policy,
                    std::io::BufReader::new(f),
                    Utc::now(),
                )
                .await?;
                println!(
                    "{} added, {} already known, {} outside every native audience today, {} bad row(s)",
                    report.added,
                    report.duplicates,
                    report.outside_policy,
                    report.bad_rows.len()
                );
                for bad in &report.bad_rows {
                    println!("  line {}: {}", bad.line, bad.reason);
                }
                if !report.bad_rows.is_empty() {
                    let lines: Vec<String> =
                        report.bad_rows.iter().map(|b| b.line.to_string()).collect();
                    eprintln!(
                        "error: {} row(s) of {} were not imported (lines: {}); fix them and import \
                         the file again (the rows already imported are kept)",
                        lines.len(),
                        file.display(),
                        lines.join(", ")
                    );
                    return Ok(ExitCode::from(1));
                }
            }
            PeopleCommand::List => {
                for p in list_people(&*store).await? {
                    println!("{}\t{}\t{}", p.email, p.source, p.created_at.to_rfc3339());
                }
            }
        }
        anyhow::Ok(ExitCode::SUCCESS)
    }
    .await;
    match result {
        Ok(code) => code,
        Err(e) => crate::fail(&e),
    }
}

/// A bar on a terminal, log lines otherwise.
struct BarProgress {
    bar: Option<ProgressBar>,
}

impl BarProgress {
    fn new() -> Self {
        BarProgress {
            bar: std::io::stderr().is_terminal().then(ProgressBar::no_length),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl ApplyProgress for BarProgress {
    fn started(&self, total: usize) {
        match &self.bar {
            Some(b) => {
                b.set_length(total as u64);
                if let Ok(style) =
                    ProgressStyle::with_template("apply [{bar:30}] {pos}/{len} {msg}")
                {
                    b.set_style(style.progress_chars("=> "));
                }
            }
            None => tracing::info!("applying {total} action(s)"),
        }
    }

    fn finished(&self, action: &Action, outcome: &Outcome) {
        match &self.bar {
            Some(b) => b.inc(1),
            None => tracing::info!("{} {}: {:?}", action.op.kind(), action.op.target(), outcome),
        }
    }

    fn note(&self, message: &str) {
        match &self.bar {
            Some(b) => b.set_message(message.to_string()),
            None => tracing::info!("{message}"),
        }
    }
}
