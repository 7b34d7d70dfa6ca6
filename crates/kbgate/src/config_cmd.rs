//! `kbgate config check [FILE]`: validates a configuration file without starting anything.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kbgate_config::{Config, EmbedKey, SecretError};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validate a configuration file: its syntax, every key and range, the policy, and that
    /// each secret it names (environment variable or file) and each embed key file can be
    /// read. Nothing is started, no network call is made, no file is written.
    ///
    /// Exit status: 0 valid; 1 valid, but a secret or key file it names cannot be read;
    /// 2 invalid or unreadable file (each problem with its line, column and key).
    Check {
        /// The file to check. Default: the global --config file.
        file: Option<PathBuf>,
    },
}

pub fn run(global_config: &Path, cmd: Command) -> ExitCode {
    match cmd {
        Command::Check { file } => check(file.as_deref().unwrap_or(global_config)),
    }
}

fn check(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let unreadable = unreadable_secrets(&config);
    for problem in &unreadable {
        eprintln!("{}: {problem}", path.display());
    }
    if !unreadable.is_empty() {
        return ExitCode::from(1);
    }
    let audiences = config.policy.audiences().len();
    println!(
        "{}: ok ({audiences} audience{}, store {}, listen {}, public URL {})",
        path.display(),
        if audiences == 1 { "" } else { "s" },
        config.store.url,
        config.portal.listen,
        config.portal.public_url,
    );
    ExitCode::SUCCESS
}

/// Each secret the file names that cannot be read now, said without its value.
fn unreadable_secrets(config: &Config) -> Vec<String> {
    let mut results: Vec<Result<(), SecretError>> = Vec::new();
    let mut problems = Vec::new();
    if let Some(c) = &config.confluence {
        results.push(c.resolve_api_token().map(drop));
        results.push(c.resolve_admin_api_key().map(drop));
    }
    if let Some(e) = &config.embed {
        match &e.key {
            EmbedKey::Secret(_) => results.push(e.resolve_secret().map(drop)),
            EmbedKey::PublicKeyFile(p) | EmbedKey::JwksFile(p) => {
                if let Err(err) = std::fs::metadata(p) {
                    problems.push(format!(
                        "embed key file: cannot read {}: {err}",
                        p.display()
                    ));
                }
            }
            // Fetched when the portal starts and as its Cache-Control says: nothing to read
            // here (a check must not depend on the host app being up).
            EmbedKey::JwksUrl(_) => {}
        }
        results.push(e.resolve_api_key().map(drop));
    }
    for p in &config.oidc {
        results.push(p.resolve_client_secret().map(drop));
    }
    problems.extend(
        results
            .into_iter()
            .filter_map(|r| r.err().map(|e| e.to_string())),
    );
    problems
}
