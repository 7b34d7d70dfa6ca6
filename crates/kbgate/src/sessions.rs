//! `kbgate sessions revoke`: end portal sessions at once.

use std::path::Path;
use std::process::ExitCode;

use kbgate_config::Config;
use kbgate_policy::{Domain, Email};

use crate::wiring;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// End every session of a domain or of one person. A running `kbgate serve` refuses
    /// their next request: the command returns only once that holds.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct RevokeArgs {
    /// Every session of people at this domain (e.g. acme.com) and at any of its subdomains
    /// (eu.acme.com): an audience with `include_subdomains` admits them through this domain.
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
            // Subdomains too: whether an audience admits eu.acme.com through acme.com depends
            // on the policy of the moment the session was opened, which may differ from the
            // file now. Ending too many costs a sign-in; ending too few leaves access behind.
            store.revoke_sessions_under_domain(d.as_str()).await?
        }
        (None, Some(e)) => {
            let e = Email::parse(e.trim())?;
            store.revoke_sessions_by_email(e.as_str()).await?
        }
        (None, None) => anyhow::bail!("give --domain or --email"),
    };
    // A running portal caches sessions and re-reads the store's change stamp at least every
    // CHANGE_POLL; past that, every request it starts sees the revocation. Report only then,
    // so "revoked" means no request begun afterwards is served.
    tokio::time::sleep(kbgate_store::CHANGE_POLL + std::time::Duration::from_millis(20)).await;
    println!("{n} session(s) revoked");
    Ok(())
}
