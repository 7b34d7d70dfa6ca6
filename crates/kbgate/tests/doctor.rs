//! `kbgate doctor` against the simulator: each way of authenticating works, and each failure
//! an operator can meet is named with what to fix (exit 1), in human and JSON output.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{kbgate, text};
use confluence_client::scopes::PORTAL_SCOPES;
use confluence_sim::{RateLimit, SimConfig, SimHandle, spawn};
use serde_json::Value;

fn policy(spaces: &str) -> String {
    format!("[[audience]]\nname = \"acme\"\ndomains = [\"acme.com\"]\nspaces = [{spaces}]\n")
}

/// `[confluence]` for a classic token on the site, a scoped token or OAuth on the gateway.
fn confluence(sim: &SimHandle, auth: &str, email: &str, secret_file: &str) -> String {
    let site = sim.base_url();
    match auth {
        "api_token" => format!(
            "[confluence]\nbase_url = \"{site}\"\nemail = \"{email}\"\napi_token_file = \"{secret_file}\"\n"
        ),
        "scoped_token" => format!(
            "[confluence]\nbase_url = \"{site}\"\nauth = \"scoped_token\"\ngateway_url = \"{site}\"\nemail = \"{email}\"\napi_token_file = \"{secret_file}\"\n"
        ),
        _ => format!(
            "[confluence]\nbase_url = \"{site}\"\nauth = \"oauth\"\ngateway_url = \"{site}\"\noauth_token_url = \"{site}/oauth/token\"\nclient_id = \"{email}\"\nclient_secret_file = \"{secret_file}\"\n"
        ),
    }
}

async fn doctor(dir: &Path, config: String, secret: &str, json: bool) -> (Option<i32>, String) {
    std::fs::write(dir.join("secret"), secret).expect("secret");
    std::fs::write(dir.join("kbgate.toml"), config).expect("config");
    let path = dir.to_path_buf();
    let o = tokio::task::spawn_blocking(move || {
        if json {
            kbgate(&path, &["doctor", "--output", "json"])
        } else {
            kbgate(&path, &["doctor"])
        }
    })
    .await
    .expect("join");
    (o.status.code(), text(&o))
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_of_authenticating_passes_and_estimates_the_sync() {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let svc = sim.service_account();
    let scoped = sim
        .state()
        .create_scoped_token(&svc.email, PORTAL_SCOPES)
        .expect("scoped");
    let oauth = sim
        .state()
        .create_oauth_client(&svc.email, PORTAL_SCOPES)
        .expect("oauth");
    let spaces = "\"KB\", \"ONBOARD\"";
    for (auth, email, secret) in [
        ("api_token", svc.email.clone(), svc.api_token.clone()),
        ("scoped_token", svc.email.clone(), scoped.api_token.clone()),
        (
            "oauth",
            oauth.client_id.clone(),
            oauth.client_secret.clone(),
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "{}{}",
            confluence(&sim, auth, &email, "secret"),
            policy(spaces)
        );
        let (code, out) = doctor(dir.path(), config, &secret, true).await;
        assert_eq!(code, Some(0), "{auth}: {out}");
        assert!(!out.contains(&secret), "{auth}: secret in the output");
        let r: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(r["ok"], true);
        assert_eq!(r["auth"], auth);
        assert_eq!(r["via_gateway"], auth != "api_token", "{auth}");
        if auth != "api_token" {
            assert_eq!(r["cloud_id"], sim.cloud_id().as_str(), "{auth}");
        }
        assert_eq!(check(&r, "credentials")["status"], "ok", "{auth}");
        for key in ["KB", "ONBOARD"] {
            assert_eq!(check(&r, &format!("space {key}"))["status"], "ok");
            assert_eq!(
                check(&r, &format!("space {key}: restrictions"))["status"],
                "ok"
            );
            assert_eq!(
                check(&r, &format!("space {key}: attachment download"))["status"],
                "ok",
                "{auth}"
            );
        }
        assert!(r["estimate"]["full_sync_calls"].as_u64().unwrap() > 4);
        assert!(
            r["estimate"]["no_change_sync_calls"].as_u64().unwrap()
                < r["estimate"]["full_sync_calls"].as_u64().unwrap()
        );
    }

    // The human report says the same, and the estimate is close to what a sync then costs.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "{}\n[store]\nurl = \"sqlite://kb.db\"\ndata_dir = \"data\"\n{}",
        confluence(&sim, "api_token", &svc.email, "secret"),
        policy(spaces)
    );
    let (code, out) = doctor(dir.path(), config.clone(), &svc.api_token, false).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("All checks passed"), "{out}");
    assert!(
        out.contains("Estimated Confluence calls: full sync"),
        "{out}"
    );
    let (_, json) = doctor(dir.path(), config, &svc.api_token, true).await;
    let r: Value = serde_json::from_str(&json).expect("json");
    let estimate = r["estimate"]["full_sync_calls"].as_u64().unwrap();
    sim.reset_stats();
    let path = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || kbgate(&path, &["sync"]))
        .await
        .expect("join");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let actual = sim.stats().total;
    assert!(
        actual <= estimate && estimate <= actual + actual / 5 + 2,
        "estimate {estimate} vs a real full sync {actual}"
    );
}

/// Runs the doctor expecting exit 1 and the named check failed with a fix containing `fix`.
async fn fails(config: String, secret: &str, name: &str, fix: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out) = doctor(dir.path(), config.clone(), secret, true).await;
    assert_eq!(code, Some(1), "{name}: {out}");
    assert!(!out.contains(secret), "secret in the output");
    assert!(
        !out.contains("/ex/confluence/"),
        "messages name the site's paths, never the gateway: {out}"
    );
    let r: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(r["ok"], false);
    let c = check(&r, name);
    assert_eq!(c["status"], "fail", "{c}");
    let f = c["fix"].as_str().unwrap_or_default();
    assert!(f.contains(fix), "{name}: fix {f:?} should mention {fix:?}");
    // The human form shows the failure and its fix too.
    let (code, human) = doctor(dir.path(), config, secret, false).await;
    assert_eq!(code, Some(1));
    assert!(
        human.contains("[FAIL]") && human.contains("fix:"),
        "{human}"
    );
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn each_failure_says_what_to_fix() {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let svc = sim.service_account();
    let kb = policy("\"KB\"");

    // A wrong token.
    fails(
        format!(
            "{}{kb}",
            confluence(&sim, "api_token", &svc.email, "secret")
        ),
        "not-the-token",
        "credentials",
        "API token",
    )
    .await;

    // A scoped token used as a classic one on the site URL.
    let scoped = sim
        .state()
        .create_scoped_token(&svc.email, PORTAL_SCOPES)
        .expect("scoped");
    fails(
        format!(
            "{}{kb}",
            confluence(&sim, "api_token", &svc.email, "secret")
        ),
        &scoped.api_token,
        "credentials",
        "auth = \"scoped_token\"",
    )
    .await;

    // A scoped token without the attachment scope.
    let no_attachments: Vec<&str> = PORTAL_SCOPES
        .iter()
        .copied()
        .filter(|s| *s != "read:attachment:confluence")
        .collect();
    let t = sim
        .state()
        .create_scoped_token(&svc.email, &no_attachments)
        .expect("scoped");
    fails(
        format!(
            "{}{kb}",
            confluence(&sim, "scoped_token", &svc.email, "secret")
        ),
        &t.api_token,
        "space KB: attachment download",
        "read:attachment:confluence",
    )
    .await;

    // Restrictions not readable: classic scopes that search but may not read restrictions.
    let t = sim
        .state()
        .create_scoped_token(
            &svc.email,
            &[
                "read:space:confluence",
                "read:page:confluence",
                "read:attachment:confluence",
                "search:confluence",
                "read:confluence-user",
            ],
        )
        .expect("scoped");
    fails(
        format!(
            "{}{kb}",
            confluence(&sim, "scoped_token", &svc.email, "secret")
        ),
        &t.api_token,
        "space KB: restrictions",
        "read:content-details:confluence",
    )
    .await;

    // A space the account cannot see.
    fails(
        format!(
            "{}{}",
            confluence(&sim, "api_token", &svc.email, "secret"),
            policy("\"KB\", \"NOPE\"")
        ),
        &svc.api_token,
        "space NOPE",
        "View permission",
    )
    .await;

    // Downloads refused: the media links Confluence hands out are already expired.
    sim.state().set_media_token_ttl(Duration::ZERO);
    fails(
        format!(
            "{}{kb}",
            confluence(&sim, "api_token", &svc.email, "secret")
        ),
        &svc.api_token,
        "space KB: attachment download",
        "download",
    )
    .await;
    sim.state().set_media_token_ttl(Duration::from_secs(60));

    // Legacy download only: the REST download is missing (Data Center, or a blocking proxy).
    let mut knobs = sim.state().knobs();
    knobs.rest_download_missing = true;
    sim.state().set_knobs(knobs.clone());
    fails(
        format!(
            "{}{kb}",
            confluence(&sim, "api_token", &svc.email, "secret")
        ),
        &svc.api_token,
        "space KB: attachment download",
        "legacy",
    )
    .await;
    knobs.rest_download_missing = false;
    sim.state().set_knobs(knobs);

    // Native audiences with an account that is not a Confluence administrator.
    let plain = sim
        .state()
        .read(|s| {
            s.users
                .values()
                .filter(|u| {
                    !u.is_admin
                        && u.status == confluence_sim::model::UserStatus::Active
                        && u.kind == confluence_sim::model::UserKind::Licensed
                })
                .map(|u| u.email.clone())
                .min()
        })
        .expect("a licensed user who is not an admin");
    let t = sim
        .state()
        .create_scoped_token(&plain, PORTAL_SCOPES)
        .expect("scoped");
    fails(
        format!(
            "{}[[audience]]\nname = \"guests\"\ndomains = [\"acme.com\"]\nspaces = [\"KB\"]\ndelivery = \"guest\"\n",
            confluence(&sim, "scoped_token", &plain, "secret")
        ),
        &t.api_token,
        "native mode",
        "administrator",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_site_is_reported_not_waited_for() {
    // After a short burst every call gets 429 with a minute's Retry-After.
    let sim = spawn(SimConfig {
        rate_limit: Some(RateLimit {
            per_second: 0,
            burst: 3,
        }),
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let svc = sim.service_account();
    let r = fails(
        format!(
            "{}{}",
            confluence(&sim, "api_token", &svc.email, "secret"),
            policy("\"KB\"")
        ),
        &svc.api_token,
        "space KB",
        "requests_per_second",
    )
    .await;
    let rl = check(&r, "rate limits");
    assert_eq!(rl["status"], "warn", "{rl}");
    assert!(
        r["rate_limit_headers"].as_object().is_some_and(|h| h
            .keys()
            .any(|k| k.contains("retry-after") || k.contains("ratelimit"))),
        "{r:#}"
    );
}
