//! `kbgate healthcheck`: asks a running `kbgate serve` on this machine whether it is up
//! (`GET /healthz`, or `/readyz` with `--ready`; under the path prefix of `public_url` when
//! it has one), for container and service-manager health checks that have no curl or wget
//! in the image.
//!
//! Plain HTTP/1.1 over a TCP stream: the portal listens without TLS (a reverse proxy
//! terminates it), and the binary needs no HTTP client for one request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The portal's address (IP:PORT); default `[portal] listen` of the configuration, with
    /// 0.0.0.0 / [::] asked on the loopback address.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Ask `/readyz` (the store answers) instead of `/healthz` (the process is up).
    #[arg(long)]
    ready: bool,
    /// Give up after this long.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = kbgate_config::parse_duration)]
    timeout: Duration,
}

/// Exit 0 when the portal answers 200, 1 otherwise (with the reason on stderr).
pub async fn run(config: &Path, args: Args) -> ExitCode {
    // Under a path prefix (`[portal] public_url = "https://app.example.com/kb"`) the
    // portal answers only there, health checks included.
    let loaded = kbgate_config::Config::load(config);
    let prefix = loaded
        .as_ref()
        .map(|c| c.portal.path_prefix().to_owned())
        .unwrap_or_default();
    let path = format!(
        "{prefix}{}",
        if args.ready { "/readyz" } else { "/healthz" }
    );
    let path = path.as_str();
    let addr = match args.addr {
        Some(a) => a,
        None => match loaded {
            Ok(c) => loopback(c.portal.listen),
            Err(e) => {
                eprintln!("{e}\n(or give the portal's address with --addr)");
                return ExitCode::from(1);
            }
        },
    };
    match tokio::time::timeout(args.timeout, get_status(addr, path)).await {
        Ok(Ok(200)) => ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("unhealthy: GET http://{addr}{path} answered {status}");
            ExitCode::from(1)
        }
        Ok(Err(e)) => {
            eprintln!("unhealthy: GET http://{addr}{path}: {e:#}");
            ExitCode::from(1)
        }
        Err(_) => {
            eprintln!("unhealthy: GET http://{addr}{path}: no answer within the timeout");
            ExitCode::from(1)
        }
    }
}

/// A wildcard listen address is reached on the loopback address of its family.
fn loopback(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The status code of `GET path` on `addr`.
async fn get_status(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .context("cannot connect")?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kbgate-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    // The status line is all that is needed; the body is small anyway.
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status(&head).context("not an HTTP answer")
}

/// `HTTP/1.1 200 OK\r\n…` → 200.
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\nx: y\r\n"), Some(200));
        assert_eq!(
            parse_status(b"HTTP/1.1 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }

    #[test]
    fn wildcard_listen_is_asked_on_loopback() {
        assert_eq!(
            loopback("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            loopback("[::]:8080".parse().unwrap()),
            "[::1]:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            loopback("10.0.0.5:80".parse().unwrap()),
            "10.0.0.5:80".parse::<SocketAddr>().unwrap()
        );
    }
}
