//! `kbgate check EMAIL`: the policy's decision for one email, explained.

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;
use kbgate_config::Config;
use kbgate_policy::Email;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The email address to check, e.g. jane@acme.com.
    email: String,
}

pub fn run(config: &Path, args: Args) -> ExitCode {
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let email = match Email::parse(args.email.trim()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("invalid email {:?}: {e}", args.email);
            return ExitCode::from(2);
        }
    };
    let decision = config.policy.decide(&email, Utc::now());
    println!("{decision}");
    if decision.is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
