//! `kbgate sessions revoke`: end portal sessions at once.

use std::path::Path;
use std::process::ExitCode;

use kbgate_config::Config;
use kbgate_policy::{Domain, Email};

use crate::wiring;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// End every session of a domain or of one person, effective on their next request.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct RevokeArgs {
    /// Every session of people at this domain (e.g. acme.com).
    #[arg(long)]
    domain: Option<String>,
    /// Every session of this person.
    #[arg(long)]
    email: Option<String>,
}

pub async fn run(config: &Path, cmd: Command) -> ExitCode {
    let Command::Revoke(args) = cmd;
    match revoke(config, args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(&e),
    }
}

async fn revoke(config: &Path, args: RevokeArgs) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    let store = wiring::open_store(&config).await?;
    let n = match (args.domain, args.email) {
        (Some(d), _) => {
            let d = Domain::parse(d.trim())?;
            store.revoke_sessions_by_domain(d.as_str()).await?
        }
        (None, Some(e)) => {
            let e = Email::parse(e.trim())?;
            store.revoke_sessions_by_email(e.as_str()).await?
        }
        (None, None) => anyhow::bail!("give --domain or --email"),
    };
    println!("{n} session(s) revoked");
    Ok(())
}
