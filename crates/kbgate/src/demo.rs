//! `kbgate demo`: the whole main job on one machine, with nothing to configure.
//!
//! Starts the Confluence simulator in-process with a seeded site, writes a throw-away
//! configuration (SQLite store, HS256 embed secret, magic links to an outbox directory)
//! into a temporary directory, syncs, and serves the portal. A tiny stand-in for the
//! company's web app runs beside it: its `/login-as/EMAIL` links mint a fresh embed token
//! and redirect to the portal, exactly as a real host app would, so the printed links keep
//! working however long the demo runs (embed tokens themselves live at most 5 minutes).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use confluence_sim::SimConfig;
use kbgate_config::Config;
use kbgate_mirror::sync::{Progress, confluence::ConfluenceSource, sync_spaces};
use rand::RngCore;

use crate::{serve, wiring};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the portal listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the stand-in host app (the sign-in links) listens; default: the portal's port + 1.
    #[arg(long)]
    host_app_listen: Option<SocketAddr>,
    /// Pages in the simulated site (spread over 4 spaces).
    #[arg(long, default_value_t = 400)]
    pages: usize,
    /// Keep the demo's files (store, outbox, config) in this directory instead of a
    /// temporary one that is removed on exit.
    #[arg(long, value_name = "DIR")]
    keep_in: Option<std::path::PathBuf>,
}

/// One demo audience: (name, domain, spaces, labels, expires).
type DemoAudience = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    Option<&'static str>,
);

/// The demo's audiences; the domains are the simulator's generated customer domains.
const AUDIENCES: &[DemoAudience] = &[
    ("acme", "acme.com", &["KB", "ONBOARD"], &[], None),
    ("globex", "globex.co.uk", &["KB", "API"], &[], None),
    ("initech-public", "initech.io", &["API"], &["public"], None),
    ("buecher", "xn--bcher-kva.de", &["KB"], &[], None),
    (
        "umbrella-expired",
        "umbrella-corp.com",
        &["KB"],
        &[],
        Some("2024-01-31"),
    ),
];
const DENIED: &str = "hooli.com";

pub async fn run(args: Args) -> ExitCode {
    match demo(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(&e),
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_secret(dir: &Path, name: &str, value: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, value).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

async fn demo(args: Args) -> anyhow::Result<()> {
    let tmp;
    let dir: std::path::PathBuf = match &args.keep_in {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new().prefix("kbgate-demo-").tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let host_app_addr = args
        .host_app_listen
        .unwrap_or_else(|| SocketAddr::new(args.listen.ip(), args.listen.port().wrapping_add(1)));

    eprintln!(
        "Starting the simulated Confluence site ({} pages)…",
        args.pages
    );
    let sim = confluence_sim::spawn(SimConfig {
        pages: args.pages,
        ..SimConfig::demo()
    })
    .await
    .context("cannot start the simulator")?;
    let creds = sim.service_account();

    let token_file = write_secret(&dir, "confluence.token", &creds.api_token)?;
    let embed_secret = random_hex(32);
    let secret_file = write_secret(&dir, "embed.secret", &embed_secret)?;
    let api_key = random_hex(24);
    let api_key_file = write_secret(&dir, "host-app.key", &api_key)?;
    let outbox = dir.join("outbox");
    let host_app_url = format!("http://{host_app_addr}");

    let mut toml = format!(
        r#"# Written by `kbgate demo`.
[confluence]
base_url = {base}
email = {email}
api_token_file = {token}
# the simulator is local: no client-side throttle
requests_per_second = 0

[store]
url = {store}
data_dir = {data}

[sync]
interval = "1m"

[portal]
listen = {listen}
public_url = {public}
outbox_dir = {outbox}
from = "Demo Knowledge Base <kb@example.com>"
# the demo shows who pages mention (the default shows "a team member")
show_staff_names = true

# How the portal presents itself (every key optional).
[portal.brand]
site_name = "Initech Help Center"
title_name = "Initech Help"
accent = '#8a2be2'
accent_dark = '#c9a7ff'
support_email = "support@example.com"
footer_links = [{{ text = "Privacy", url = "https://example.com/privacy" }},
                {{ text = "Status", url = "https://status.example.com/" }}]

[embed]
issuer = {issuer}
audience = "kbgate"
algorithm = "HS256"
secret_file = {secret}
api_key_file = {api_key}

[deny]
domains = [{denied}]
"#,
        base = toml_str(&sim.base_url()),
        email = toml_str(&creds.email),
        token = toml_str(&token_file.display().to_string()),
        store = toml_str(&format!("sqlite://{}", dir.join("kbgate.db").display())),
        data = toml_str(&dir.display().to_string()),
        listen = toml_str(&args.listen.to_string()),
        public = toml_str(&format!("http://{}", args.listen)),
        outbox = toml_str(&outbox.display().to_string()),
        issuer = toml_str(&host_app_url),
        secret = toml_str(&secret_file.display().to_string()),
        api_key = toml_str(&api_key_file.display().to_string()),
        denied = toml_str(DENIED),
    );
    for (name, domain, spaces, labels, expires) in AUDIENCES {
        let list = |xs: &[&str]| {
            xs.iter()
                .map(|x| toml_str(x))
                .collect::<Vec<_>>()
                .join(", ")
        };
        toml.push_str(&format!(
            "\n[[audience]]\nname = {}\ndomains = [{}]\nspaces = [{}]\nlabels = [{}]\n{}",
            toml_str(name),
            toml_str(domain),
            list(spaces),
            list(labels),
            expires.map_or(String::new(), |e| format!("expires = {}\n", toml_str(e))),
        ));
    }
    let config_path = dir.join("kbgate.toml");
    std::fs::write(&config_path, &toml)?;
    let config = Config::load(&config_path)?;

    eprintln!("Mirroring the demo spaces…");
    let store = wiring::open_store(&config).await?;
    let client = wiring::confluence_client(&config).await?;
    let source = ConfluenceSource::new(client);
    let report = sync_spaces(
        &source,
        &*store,
        &kbgate_service::mirrored_spaces(&config),
        &kbgate_service::sync_options(&config, true),
        &Progress::auto(),
    )
    .await
    .context("the demo sync failed")?;
    eprintln!("{report}");

    // The stand-in host app.
    let host = Arc::new(HostApp {
        secret: embed_secret,
        issuer: host_app_url.clone(),
        portal: format!("http://{}", args.listen),
    });
    let host_listener = tokio::net::TcpListener::bind(host_app_addr)
        .await
        .with_context(|| format!("cannot listen on {host_app_addr} (use --host-app-listen)"))?;
    let host_router = axum::Router::new()
        .route("/login-as/{email}", axum::routing::get(login_as))
        .with_state(host);
    let host_stop = kbgate_service::CancellationToken::new();
    let host_task = tokio::spawn(
        axum::serve(host_listener, host_router)
            .with_graceful_shutdown(host_stop.clone().cancelled_owned())
            .into_future(),
    );

    let portal_listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (use --listen)", args.listen))?;

    println!();
    println!("kbgate demo is running: http://{}", args.listen);
    println!();
    println!("Sign in as a customer (each link is the company's app handing the person over):");
    for (name, domain, spaces, labels, expires) in AUDIENCES {
        let note = match (labels.is_empty(), expires) {
            (_, Some(e)) => format!("audience expired on {e}: refused"),
            (true, None) => format!("reads {}", spaces.join(", ")),
            (false, None) => format!(
                "reads {} pages labelled {}",
                spaces.join(", "),
                labels.join("/")
            ),
        };
        let email = format!("demo.user@{domain}");
        println!("  {name:<17} {host_app_url}/login-as/{email}   ({note})");
    }
    println!(
        "  {:<17} {host_app_url}/login-as/demo.user@{DENIED}   (denied domain: refused)",
        "denied"
    );
    println!();
    println!(
        "Magic links (http://{}/auth/email) are written to {}",
        args.listen,
        outbox.display()
    );
    println!(
        "Simulated Confluence: {} (service account {})",
        sim.base_url(),
        creds.email
    );
    println!("Files of this run: {}", dir.display());
    println!("Stop with Ctrl-C.");

    let service = kbgate_service::Service::new(config, store, portal_listener)?.with_sync(source);
    let served = serve::run_until_signal(service).await;
    host_stop.cancel();
    let _ = host_task.await;
    sim.shutdown().await;
    served
}

struct HostApp {
    secret: String,
    issuer: String,
    portal: String,
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    email: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

/// What the company's web app does after its own sign-in: mint a short-lived token
/// naming the user's email and send the browser to kbgate.
async fn login_as(State(host): State<Arc<HostApp>>, UrlPath(email): UrlPath<String>) -> Response {
    let now = Utc::now().timestamp();
    let claims = Claims {
        email: &email,
        iss: &host.issuer,
        aud: "kbgate",
        iat: now,
        exp: now + 120,
        jti: random_hex(16),
    };
    let token = match jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(host.secret.as_bytes()),
    ) {
        Ok(t) => t,
        Err(_) => {
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "cannot sign").into_response();
        }
    };
    Redirect::to(&format!(
        "{}/auth/embed?token={token}&return_to=/",
        host.portal
    ))
    .into_response()
}
