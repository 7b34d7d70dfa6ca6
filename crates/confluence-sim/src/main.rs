//! `confluence-sim`: serve a simulated Confluence Cloud site over HTTP.
//!
//! The first line of stdout is `listening on http://HOST:PORT`; the credentials follow.
//! The flags are defined in [`confluence_sim::cli::Args`].

use std::io::Write;

use clap::Parser;
use confluence_sim::cli::Args;

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
    let cfg = args.config()?;
    let handle = confluence_sim::spawn(cfg).await?;
    let sa = handle.service_account();
    let na = handle.non_admin_account();
    let (spaces, pages, users) = handle
        .state()
        .read(|s| (s.spaces.len(), s.pages.len(), s.users.len()));
    {
        // Written and flushed together: whoever started the simulator waits for these lines.
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", handle.addr())?;
        writeln!(out, "service account: {} {}", sa.email, sa.api_token)?;
        writeln!(out, "admin api key: {}", handle.admin_api_key())?;
        writeln!(out, "non-admin account: {} {}", na.email, na.api_token)?;
        writeln!(out, "site: {spaces} spaces, {pages} pages, {users} users")?;
        writeln!(out, "media: {}", handle.media_url())?;
        writeln!(out, "cloud id: {}", handle.cloud_id())?;
        writeln!(out, "gateway: {}", handle.gateway_url())?;
        out.flush()?;
    }
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}
