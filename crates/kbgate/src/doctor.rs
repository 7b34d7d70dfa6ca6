//! `kbgate doctor`: a read-only preflight against the configured Confluence site.
//!
//! Answers, before the first sync and any time later: which way kbgate authenticates and
//! whether it works, the cloud id and the account's time zone, for each mirrored space whether
//! it is readable, how big it is, whether page restrictions can be read and whether an
//! attachment downloads through the path kbgate uses; for native audiences whether the account
//! has the admin rights they need; the rate-limit headers Confluence sent; and what a full and
//! a no-change sync of the configured spaces will cost in Confluence calls. Every failure says
//! what to fix. It writes nothing, to Confluence or to the store.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use confluence_client::scopes::PORTAL_SCOPES;
use confluence_client::{Client, Error as ClientError};
use futures::TryStreamExt;
use kbgate_config::{Config, ConfluenceAuth};
use kbgate_policy::Delivery;
use serde::Serialize;

use crate::wiring;

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// One line per check, with what to fix under each failure.
    Human,
    /// One JSON document (for scripts and monitoring).
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Report format.
    #[arg(long, value_enum, default_value_t = Output::Human)]
    output: Output,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

/// What one mirrored space holds, from CQL counts.
#[derive(Debug, Default, Serialize)]
struct SpaceSize {
    key: String,
    pages: u64,
    folders: u64,
    attachments: u64,
}

/// Confluence calls of a sync, from the sizes (README: "Sync and its Confluence calls").
#[derive(Debug, Default, Serialize)]
struct Estimate {
    /// 1 space lookup + per space ⌈pages/250⌉ bodies + ⌈(pages+folders)/200⌉ structure +
    /// ⌈attachments/200⌉ listing + one download per attachment, + one download per uploaded
    /// space icon.
    full_sync_calls: u64,
    /// 1 space lookup + per space 1 change query + ⌈(pages+folders)/200⌉ structure.
    no_change_sync_calls: u64,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    site: String,
    auth: String,
    via_gateway: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_zone: Option<String>,
    checks: Vec<Check>,
    spaces: Vec<SpaceSize>,
    estimate: Estimate,
    rate_limit_headers: BTreeMap<String, String>,
    /// Confluence calls the doctor itself made.
    calls: u64,
    ok: bool,
}

impl Report {
    fn push(&mut self, name: impl Into<String>, status: Status, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            status,
            detail: detail.into(),
            fix: None,
        });
    }

    fn fail(&mut self, name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }
}

pub async fn run(config: &Path, args: Args) -> ExitCode {
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let report = diagnose(&config).await;
    match args.output {
        Output::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot print the report: {e}");
                return ExitCode::from(1);
            }
        },
        Output::Human => print_human(&report),
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn diagnose(config: &Config) -> Report {
    let mut r = Report::default();
    let Some(c) = config.confluence.as_ref() else {
        r.fail(
            "configuration",
            "no [confluence] section",
            format!(
                "add [confluence] with base_url and the service account's credentials to {}",
                config.path.display()
            ),
        );
        return r;
    };
    r.site = c.base_url.to_string();
    r.auth = c.auth.name().to_owned();
    r.via_gateway = c.auth.gateway().is_some();

    if let Some(gw) = c.auth.gateway() {
        match &gw.cloud_id {
            Some(id) => {
                r.cloud_id = Some(id.clone());
                r.push(
                    "cloud id",
                    Status::Ok,
                    format!("{id} (from the configuration)"),
                );
            }
            None => match confluence_client::tenant_info(
                &c.base_url,
                std::time::Duration::from_secs(30),
            )
            .await
            {
                Ok(t) => {
                    r.push(
                        "cloud id",
                        Status::Ok,
                        format!("{} (from {}_edge/tenant_info)", t.cloud_id, c.base_url),
                    );
                    r.cloud_id = Some(t.cloud_id);
                }
                Err(e) => {
                    r.fail(
                        "cloud id",
                        e.to_string(),
                        "check base_url (https://SITE.atlassian.net), or set [confluence] cloud_id",
                    );
                    return finish(r, None);
                }
            },
        }
    }

    // The cloud id found above is handed on, so the site is not asked for it a second time.
    let mut with_id = config.clone();
    if let (Some(id), Some(conf)) = (&r.cloud_id, with_id.confluence.as_mut())
        && let ConfluenceAuth::ScopedToken { gateway, .. } | ConfluenceAuth::OAuth { gateway, .. } =
            &mut conf.auth
    {
        gateway.cloud_id = Some(id.clone());
    }
    // A preflight reports a rate limit rather than waiting it out for minutes.
    let client = match wiring::confluence_client_config(&with_id)
        .await
        .and_then(|mut cfg| {
            cfg.retry.max_retries = 2;
            cfg.retry.max_retry_after = std::time::Duration::from_secs(10);
            Ok(Client::new(cfg)?)
        }) {
        Ok(client) => client,
        Err(e) => {
            r.fail(
                "credentials",
                crate::error_chain(e.as_ref()),
                "set the secret's environment variable or file named in [confluence]",
            );
            return finish(r, None);
        }
    };

    // Who the credentials are: every other check depends on this one.
    match client.current_user().await {
        Ok(me) => {
            let who = me
                .email
                .clone()
                .filter(|e| !e.is_empty())
                .or(me.display_name.clone())
                .unwrap_or_else(|| "(hidden profile)".into());
            let id = me.account_id.clone().unwrap_or_default();
            r.push(
                "credentials",
                Status::Ok,
                format!("{} works: signed in as {who} ({id})", auth_words(&c.auth)),
            );
            r.account = Some(who);
            r.time_zone = me.time_zone.clone();
            r.push(
                "time zone",
                Status::Ok,
                format!(
                    "{} — CQL reads date literals in this zone; kbgate's change queries use \
                     now()-relative CQL, so any zone is safe",
                    me.time_zone.as_deref().unwrap_or("hidden by the profile")
                ),
            );
        }
        Err(e) => {
            let fix = fix_for(&e, &c.auth);
            r.fail("credentials", e.to_string(), fix);
            return finish(r, Some(&client));
        }
    }

    let keys = kbgate_service::mirrored_spaces(config);
    if keys.is_empty() {
        r.checks.push(Check {
            name: "spaces".into(),
            status: Status::Warn,
            detail: "no audience names a space: nothing to mirror".into(),
            fix: Some("add spaces to an [[audience]]".into()),
        });
    }
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let visible = if keys.is_empty() {
        Vec::new()
    } else {
        // With descriptions and icons, as the sync lists them (same calls).
        match client
            .spaces_with_details(&key_refs)
            .try_collect::<Vec<_>>()
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let fix = fix_for(&e, &c.auth);
                r.fail("spaces", e.to_string(), fix);
                return finish(r, Some(&client));
            }
        }
    };
    for key in &keys {
        let name = format!("space {key}");
        if !visible.iter().any(|s| &s.key == key) {
            r.fail(
                name,
                "not visible to the service account",
                format!(
                    "give the service account the View permission on space {key} (Space settings → \
                     Permissions), or correct the key in the [[audience]]"
                ),
            );
            continue;
        }
        check_space(&client, key, &mut r, &c.auth).await;
    }

    let native: Vec<Delivery> = config
        .policy
        .audiences()
        .iter()
        .map(|a| a.delivery)
        .filter(|d| d.is_native())
        .collect();
    if !native.is_empty() {
        match client.current_user_is_admin().await {
            Ok(true) => r.push(
                "native mode",
                Status::Ok,
                "the account has Confluence administrator rights (needed for guest, unlicensed \
                 and group delivery)",
            ),
            Ok(false) => r.fail(
                "native mode",
                "the account is not a Confluence administrator, and the policy has audiences \
                 delivered as guest, unlicensed or group",
                "give the service account Confluence administrator (site admin) rights, or \
                 deliver those audiences through the portal",
            ),
            Err(e) => {
                let fix = fix_for(&e, &c.auth);
                r.fail("native mode", e.to_string(), fix);
            }
        }
    }

    // One download per uploaded space icon (stock logos cost nothing).
    let icons = visible
        .iter()
        .filter(|s| keys.contains(&s.key))
        .filter_map(|s| s.icon.as_ref())
        .filter(|i| {
            let icon = kbgate_mirror::sync::source::SourceIcon {
                path: i.path.clone().unwrap_or_default(),
                download: i.api_download_link.clone(),
            };
            !icon.path.is_empty() && !kbgate_mirror::sync::is_stock(&icon)
        })
        .count() as u64;
    r.estimate.full_sync_calls = 1 + icons;
    r.estimate.no_change_sync_calls = 1;
    for s in &r.spaces {
        let structure = (s.pages + s.folders).div_ceil(200).max(1);
        r.estimate.full_sync_calls += s.pages.div_ceil(250).max(1)
            + structure
            + s.attachments.div_ceil(200).max(1)
            + s.attachments;
        r.estimate.no_change_sync_calls += 1 + structure;
    }
    finish(r, Some(&client))
}

/// Size, restrictions and one download of a visible space.
async fn check_space(client: &Client, key: &str, r: &mut Report, auth: &ConfluenceAuth) {
    let name = format!("space {key}");
    let q = |what: &str| format!("space = \"{key}\" AND type = {what}");
    let counts = async {
        Ok::<_, ClientError>((
            client.count(&q("page")).await?,
            client.count(&q("folder")).await?,
            client.count(&q("attachment")).await?,
        ))
    };
    let (pages, folders, attachments) = match counts.await {
        Ok(c) => c,
        Err(e) => {
            let fix = fix_for(&e, auth);
            r.fail(name, e.to_string(), fix);
            return;
        }
    };
    r.push(
        name.clone(),
        Status::Ok,
        format!("readable: {pages} page(s), {folders} folder(s), {attachments} attachment(s)"),
    );
    r.spaces.push(SpaceSize {
        key: key.to_owned(),
        pages,
        folders,
        attachments,
    });

    // Restrictions: the structure scan's expansion must come back, and the per-page read too.
    let first = client
        .content_search(
            &q("page"),
            &[
                "restrictions.read.restrictions.user",
                "restrictions.read.restrictions.group",
            ],
        )
        .try_next()
        .await;
    let rname = format!("space {key}: restrictions");
    match first {
        Ok(Some(page)) => {
            let expanded = page
                .restrictions
                .as_ref()
                .and_then(|x| x.read.as_ref())
                .and_then(|x| x.restrictions.as_ref())
                .is_some();
            let direct = client.read_restrictions(&page.id).await;
            match (expanded, direct) {
                (true, Ok(_)) => r.push(rname, Status::Ok, "page read restrictions are readable"),
                (false, _) => r.fail(
                    rname,
                    "Confluence answered without the pages' read restrictions",
                    format!(
                        "kbgate would hide every page (it fails closed): give the token the scope {} \
                         (or classic read:confluence-content.all) and the account View on the space",
                        "read:content-details:confluence"
                    ),
                ),
                (true, Err(e)) => {
                    let fix = fix_for(&e, auth);
                    r.fail(rname, e.to_string(), fix);
                }
            }
        }
        Ok(None) => r.push(rname, Status::Ok, "no page to check"),
        Err(e) => {
            let fix = fix_for(&e, auth);
            r.fail(rname, e.to_string(), fix);
        }
    }

    // One attachment through the REST download and its media redirect.
    let dname = format!("space {key}: attachment download");
    let att = client
        .content_search(&q("attachment"), &["container"])
        .try_next()
        .await;
    let att = match att {
        Ok(Some(a)) => a,
        Ok(None) => {
            r.push(dname, Status::Ok, "no attachment to try");
            return;
        }
        Err(e) => {
            let fix = fix_for(&e, auth);
            r.fail(dname, e.to_string(), fix);
            return;
        }
    };
    let Some(page_id) = att
        .container
        .as_ref()
        .and_then(|v| v.get("id"))
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    else {
        r.fail(
            dname,
            "the attachment listing did not name the page",
            "report this: Confluence answered without `container`",
        );
        return;
    };
    let result = async {
        let d = client.download_attachment(&page_id, &att.id).await?;
        let chunks: Vec<bytes::Bytes> = d.bytes.try_collect().await?;
        Ok::<_, ClientError>(chunks.iter().map(|c| c.len() as u64).sum::<u64>())
    }
    .await;
    match result {
        Err(ClientError::NotFound { path, message }) => r.fail(
            dname,
            format!("not found (404) on {path}: {message}"),
            "the REST download is missing: this site serves files only on the legacy \
             /wiki/download/attachments path (Confluence Data Center/Server, or a proxy that \
             blocks /wiki/rest/api/content/{id}/child/attachment/{attId}/download); kbgate \
             needs Confluence Cloud's REST download (the legacy path refuses API tokens on \
             Cloud since CHANGE-2735)",
        ),
        Ok(n) => r.push(
            dname,
            Status::Ok,
            format!(
                "{} ({n} bytes) through /wiki/rest/api/content/{{id}}/child/attachment/{{attId}}/download",
                att.title
            ),
        ),
        Err(e) => {
            let fix = fix_for(&e, auth);
            r.fail(dname, e.to_string(), fix);
        }
    }
}

/// Adds the rate-limit findings and the call count, and sets the verdict.
fn finish(mut r: Report, client: Option<&Client>) -> Report {
    if let Some(client) = client {
        let stats = client.stats();
        r.calls = stats.total;
        r.rate_limit_headers = stats.rate_limit_headers.clone();
        let seen = if r.rate_limit_headers.is_empty() {
            "none".to_owned()
        } else {
            r.rate_limit_headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (status, detail) = if stats.rate_limited > 0 {
            (
                Status::Warn,
                format!(
                    "{} answer(s) were 429 (rate limited); headers seen: {seen}",
                    stats.rate_limited
                ),
            )
        } else if stats.near_limit > 0 {
            (
                Status::Warn,
                format!("Confluence said the limit is near; headers seen: {seen}"),
            )
        } else {
            (Status::Ok, format!("no 429; headers seen: {seen}"))
        };
        r.checks.push(Check {
            name: "rate limits".into(),
            status,
            detail,
            fix: (status == Status::Warn).then(|| {
                "other integrations share this account's budget: lower [confluence] \
                 requests_per_second, or sync less often ([sync] interval)"
                    .to_owned()
            }),
        });
    }
    r.ok = r.checks.iter().all(|c| c.status != Status::Fail);
    r
}

fn auth_words(auth: &ConfluenceAuth) -> &'static str {
    match auth {
        ConfluenceAuth::ApiToken { .. } => "classic API token on the site URL",
        ConfluenceAuth::ScopedToken { .. } => "scoped API token through api.atlassian.com",
        ConfluenceAuth::OAuth { .. } => {
            "service account OAuth 2.0 client credentials through api.atlassian.com"
        }
    }
}

/// What to do about a failed call, from what Confluence said.
fn fix_for(e: &ClientError, auth: &ConfluenceAuth) -> String {
    let portal_scopes = PORTAL_SCOPES.join(", ");
    match (e, auth) {
        (ClientError::MissingScope { scopes, .. }, _) => format!(
            "add the scope(s) {scopes} to the token (kbgate's portal mode needs: {portal_scopes})"
        ),
        (ClientError::Unauthorized { .. }, ConfluenceAuth::ApiToken { .. }) => {
            "check [confluence] email and the API token; a scoped API token (every service \
             account token is one) is refused on the site URL: set auth = \"scoped_token\""
                .into()
        }
        (ClientError::Unauthorized { .. }, ConfluenceAuth::ScopedToken { .. }) => format!(
            "check [confluence] email and the API token; a classic (unscoped) token needs \
             auth = \"api_token\"; a scoped token needs the scopes {portal_scopes}"
        ),
        (ClientError::Unauthorized { .. }, ConfluenceAuth::OAuth { .. }) => format!(
            "the access token was refused: check that the service account has Confluence access \
             on this site and the credential the scopes {portal_scopes}"
        ),
        (ClientError::OAuthToken { .. }, _) => {
            "check client_id and the client secret, and that the OAuth credential is not expired"
                .into()
        }
        (ClientError::Forbidden { hint, .. }, _) => format!("the account needs: {hint}"),
        (ClientError::DownloadRefused { .. }, _) => {
            "the account may view the page but not download this file: check the space's \
             attachment permissions; with a scoped token add read:attachment:confluence"
                .into()
        }
        (ClientError::RateLimited { .. }, _) => {
            "Confluence kept answering 429: another integration may be using this account's \
             budget; wait, then lower [confluence] requests_per_second"
                .into()
        }
        (ClientError::NotFound { .. }, _) => {
            "check base_url (and cloud_id through the gateway); the account must see the content"
                .into()
        }
        (ClientError::Transport { .. }, _) => {
            "check that this machine reaches the site (DNS, proxy, firewall)".into()
        }
        _ => "see the message above".into(),
    }
}

fn print_human(r: &Report) {
    println!(
        "kbgate doctor — {} ({}{})",
        r.site,
        r.auth,
        if r.via_gateway {
            ", through api.atlassian.com"
        } else {
            ""
        }
    );
    for c in &r.checks {
        let mark = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        println!("[{mark}] {}: {}", c.name, c.detail);
        if let Some(fix) = &c.fix {
            println!("       fix: {fix}");
        }
    }
    if !r.spaces.is_empty() {
        println!(
            "Estimated Confluence calls: full sync {}, sync with no change {} ({} space(s))",
            r.estimate.full_sync_calls,
            r.estimate.no_change_sync_calls,
            r.spaces.len()
        );
    }
    println!(
        "{} ({} Confluence call(s) made, nothing written)",
        if r.ok {
            "All checks passed."
        } else {
            "Some checks failed: fix them before the first sync."
        },
        r.calls
    );
}
