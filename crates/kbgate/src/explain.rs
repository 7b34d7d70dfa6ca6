//! `kbgate explain EMAIL [PAGE]`: the admin console's access explainer from the command line
//! — why an email may or may not read a page, each step shown, and who can read the page.

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;
use kbgate_config::Config;
use kbgate_policy::Email;

use crate::wiring;

/// How the explanation is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// The steps, then who can read the page.
    Text,
    /// One JSON document: `explanation` and `who_can_read` (null without a page).
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The email address, e.g. alice@acme.com.
    email: String,
    /// A page id, a portal page URL or a Confluence page URL (optional: without it, whether
    /// the email may sign in at all).
    page: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub async fn run(config: &Path, args: Args) -> ExitCode {
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", crate::error_chain(&e));
            return ExitCode::from(2);
        }
    };
    let email = match Email::parse(args.email.trim()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: invalid email {:?}: {e}", args.email);
            return ExitCode::from(2);
        }
    };
    let page = match &args.page {
        None => None,
        Some(raw) => {
            let Some(id) = kbgate_server::page_id_from(raw) else {
                eprintln!("error: {raw:?} is neither a page id nor a page URL");
                return ExitCode::from(2);
            };
            match facts(&config, &id).await {
                Ok(Some(p)) => Some(p),
                Ok(None) => {
                    eprintln!("error: no mirrored page has id {id}");
                    return ExitCode::from(2);
                }
                Err(e) => return crate::fail(&e),
            }
        }
    };
    let now = Utc::now();
    let explanation = config.policy.explain(&email, page.as_ref(), now);
    let readership = page.as_ref().map(|p| config.policy.who_can_read(p, now));
    match args.output {
        Output::Json => {
            let doc = serde_json::json!({
                "explanation": explanation,
                "who_can_read": readership,
            });
            match serde_json::to_string_pretty(&doc) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("error: cannot print the explanation: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        Output::Text => {
            print!("{explanation}");
            if let Some(r) = &readership {
                print!("{r}");
            }
        }
    }
    if explanation.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn facts(config: &Config, id: &str) -> anyhow::Result<Option<kbgate_policy::PageFacts>> {
    crate::status::ensure_store_exists(config)?;
    let store = wiring::open_store(config).await?;
    Ok(kbgate_server::page_facts(&*store, id).await?)
}
