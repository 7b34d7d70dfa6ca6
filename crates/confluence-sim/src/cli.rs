//! The `confluence-sim` command line (also used by its tests to check `--help`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::{RateLimit, SimConfig};

/// A stateful simulator of the Confluence Cloud (v1/v2), Jira user and admin endpoints kbgate
/// uses, with a seeded, realistic site and fault knobs.
#[derive(Debug, Parser)]
#[command(name = "confluence-sim", version)]
pub struct Args {
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Seed string: the same seed and sizes give the same site. `demo` selects the demo sizes
    /// (4 spaces, 400 pages, 300 users, 25 domains) unless sizes are given.
    #[arg(long, default_value = "demo")]
    pub seed: String,
    /// Number of spaces.
    #[arg(long)]
    pub spaces: Option<usize>,
    /// Number of pages across all spaces.
    #[arg(long)]
    pub pages: Option<usize>,
    /// Number of users (staff and customers).
    #[arg(long)]
    pub users: Option<usize>,
    /// Number of customer email domains.
    #[arg(long)]
    pub domains: Option<usize>,
    /// Latency added to every Confluence call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Rate limit as `PER_SECOND` or `PER_SECOND/BURST` (token bucket); 429 with Retry-After.
    #[arg(long)]
    pub rate_limit: Option<String>,
    /// Probability (0..1) of an injected 500/502/503 per call.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Probability (0..1) that a call's connection is dropped without a response.
    #[arg(long, default_value_t = 0.0)]
    pub reset_rate: f64,
    /// Site time zone as a fixed UTC offset (`UTC`, `-08:00`, `+13:00`): CQL date literals
    /// and `startOfDay()`-style functions are read in it.
    #[arg(long, default_value = "UTC")]
    pub time_zone: String,
    /// Burst bucket per endpoint, `PER_SECOND` or `PER_SECOND/BURST` (429 with
    /// `RateLimit-Reason: confluence-burst-based`).
    #[arg(long)]
    pub endpoint_rate_limit: Option<String>,
    /// Validity of signed media download URLs, in seconds.
    #[arg(long, default_value_t = 60)]
    pub media_token_ttl_secs: u64,
}

/// Parses `--rate-limit`: `PER_SECOND` (burst = rate) or `PER_SECOND/BURST`.
pub fn parse_rate(s: &str) -> anyhow::Result<RateLimit> {
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

impl Args {
    /// The site and knobs these flags describe.
    pub fn config(&self) -> anyhow::Result<SimConfig> {
        let base = if self.seed == "demo" {
            SimConfig::demo()
        } else {
            SimConfig::default()
        };
        if !(0.0..=1.0).contains(&self.error_rate) || !(0.0..=1.0).contains(&self.reset_rate) {
            anyhow::bail!("--error-rate and --reset-rate must be between 0 and 1");
        }
        Ok(SimConfig {
            seed: self.seed.clone(),
            spaces: self.spaces.unwrap_or(base.spaces),
            pages: self.pages.unwrap_or(base.pages),
            users: self.users.unwrap_or(base.users),
            domains: self.domains.unwrap_or(base.domains),
            latency: Duration::from_millis(self.latency_ms),
            rate_limit: self
                .rate_limit
                .as_deref()
                .map(parse_rate)
                .transpose()
                .context("--rate-limit must be N or N/BURST")?,
            error_rate: self.error_rate,
            reset_rate: self.reset_rate,
            bind: SocketAddr::new(self.host, self.port),
            media_token_ttl: Duration::from_secs(self.media_token_ttl_secs),
            time_zone: self
                .time_zone
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--time-zone: {e}"))?,
            caps: base.caps,
            endpoint_rate_limit: self
                .endpoint_rate_limit
                .as_deref()
                .map(parse_rate)
                .transpose()
                .context("--endpoint-rate-limit must be N or N/BURST")?,
        })
    }
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

    #[test]
    fn flags_make_the_config() {
        let a = Args::parse_from([
            "confluence-sim",
            "--port",
            "0",
            "--seed",
            "demo",
            "--pages",
            "9",
            "--rate-limit",
            "3/7",
        ]);
        let c = a.config().unwrap();
        assert_eq!((c.spaces, c.pages, c.users), (4, 9, 300));
        assert_eq!(c.bind.port(), 0);
        assert_eq!(c.rate_limit.map(|r| (r.per_second, r.burst)), Some((3, 7)));
        let tz = Args::parse_from(["confluence-sim", "--time-zone", "+13:00"]);
        assert_eq!(
            tz.config().unwrap().time_zone.0.local_minus_utc(),
            13 * 3600
        );
        let tz = Args::parse_from(["confluence-sim", "--time-zone", "America/Los_Angeles"]);
        assert!(tz.config().is_err());
        let bad = Args::parse_from(["confluence-sim", "--error-rate", "2"]);
        assert!(bad.config().is_err());
    }
}
