//! `confluence-sim`: serve a simulated Confluence Cloud site over HTTP.
//!
//! The first line of stdout is `listening on http://HOST:PORT`; the credentials follow.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use confluence_sim::{RateLimit, SimConfig};

/// A stateful simulator of the Confluence Cloud (v1/v2), Jira user and admin endpoints kbgate
/// uses, with a seeded, realistic site and fault knobs.
#[derive(Debug, Parser)]
#[command(name = "confluence-sim", version)]
struct Args {
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Seed string: the same seed and sizes give the same site. `demo` selects the demo sizes
    /// (4 spaces, 400 pages, 300 users, 25 domains) unless sizes are given.
    #[arg(long, default_value = "demo")]
    seed: String,
    /// Number of spaces.
    #[arg(long)]
    spaces: Option<usize>,
    /// Number of pages across all spaces.
    #[arg(long)]
    pages: Option<usize>,
    /// Number of users (staff and customers).
    #[arg(long)]
    users: Option<usize>,
    /// Number of customer email domains.
    #[arg(long)]
    domains: Option<usize>,
    /// Latency added to every Confluence call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Rate limit as `PER_SECOND` or `PER_SECOND/BURST` (token bucket); 429 with Retry-After.
    #[arg(long)]
    rate_limit: Option<String>,
    /// Probability (0..1) of an injected 500/502/503 per call.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Probability (0..1) that a call's connection is dropped without a response.
    #[arg(long, default_value_t = 0.0)]
    reset_rate: f64,
}

fn parse_rate(s: &str) -> anyhow::Result<RateLimit> {
    let (rate, burst) = match s.split_once('/') {
        Some((r, b)) => (r.trim().parse()?, b.trim().parse()?),
        None => {
            let r: u32 = s.trim().parse()?;
            (r, r.max(1))
        }
    };
    Ok(RateLimit {
        per_second: rate,
        burst,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let base = if args.seed == "demo" {
        SimConfig::demo()
    } else {
        SimConfig::default()
    };
    if !(0.0..=1.0).contains(&args.error_rate) || !(0.0..=1.0).contains(&args.reset_rate) {
        anyhow::bail!("--error-rate and --reset-rate must be between 0 and 1");
    }
    let cfg = SimConfig {
        seed: args.seed.clone(),
        spaces: args.spaces.unwrap_or(base.spaces),
        pages: args.pages.unwrap_or(base.pages),
        users: args.users.unwrap_or(base.users),
        domains: args.domains.unwrap_or(base.domains),
        latency: Duration::from_millis(args.latency_ms),
        rate_limit: args
            .rate_limit
            .as_deref()
            .map(parse_rate)
            .transpose()
            .context("--rate-limit must be N or N/BURST")?,
        error_rate: args.error_rate,
        reset_rate: args.reset_rate,
        bind: SocketAddr::new(args.host, args.port),
    };
    let handle = confluence_sim::spawn(cfg).await?;
    let sa = handle.service_account();
    let na = handle.non_admin_account();
    println!("listening on http://{}", handle.addr());
    println!("service account: {} {}", sa.email, sa.api_token);
    println!("admin api key: {}", handle.admin_api_key());
    println!("non-admin account: {} {}", na.email, na.api_token);
    let (spaces, pages, users) = handle
        .state()
        .read(|s| (s.spaces.len(), s.pages.len(), s.users.len()));
    println!("site: {spaces} spaces, {pages} pages, {users} users");
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_parses() {
        assert_eq!(
            parse_rate("10/20").ok(),
            Some(RateLimit {
                per_second: 10,
                burst: 20
            })
        );
        assert_eq!(parse_rate("5").ok().map(|r| r.burst), Some(5));
        assert!(parse_rate("x").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
