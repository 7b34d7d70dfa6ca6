//! Black-box tests of config loading: good, bad (with lines), env overrides, secrets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use kbgate_config::{
    Config, ConfigError, ConfluenceAuth, EmbedAlgorithm, EmbedKey, ExposeSecret, Location,
    MagicLinkDelivery, PortalConfig, Problem, SecretSource, SecretString, StoreBackend,
};
use kbgate_policy::{Delivery, Email};

const GOOD: &str = r#"
[confluence]
base_url = "https://example.atlassian.net"
email = "svc@example.com"
api_token_env = "KBGATE_CONFLUENCE_TOKEN"

[store]
url = "postgres://kb:pa55word@db.local/kb"

[portal]
listen = "0.0.0.0:9000"

[embed]
issuer = "https://app.example.com"
audience = "kbgate"
algorithm = "HS256"
secret_env = "KBGATE_EMBED_SECRET"
api_key_file = "/run/secrets/api"

[[audience]]
name = "acme"
domains = ["acme.com", "ACME.co.uk"]
spaces = ["KB", "ONBOARD"]
expires = 2027-06-30

[[audience]]
name = "guests"
domains = ["bücher.de"]
spaces = ["KB"]
labels = ["Public"]
delivery = "guest"

[deny]
domains = ["gmail.com"]
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_str_with_env(text, Path::new("kbgate.toml"), &no_env)
}

fn load_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_str_with_env(text, Path::new("kbgate.toml"), &move |k| {
        map.get(k).cloned()
    })
}

/// The single problem of a refused config.
fn problem(text: &str) -> Problem {
    let err = load(text).unwrap_err();
    let problems = err.problems();
    assert_eq!(problems.len(), 1, "{err}");
    problems[0].clone()
}

/// The line (from 1) where `needle` (possibly spanning lines) first starts.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in text"));
    text[..at].matches('\n').count() + 1
}

#[test]
fn good_config() {
    let c = load(GOOD).unwrap();
    let conf = c.confluence.as_ref().unwrap();
    assert_eq!(conf.base_url.as_str(), "https://example.atlassian.net/");
    assert_eq!(conf.email().unwrap().as_str(), "svc@example.com");
    assert_eq!(
        conf.api_token(),
        Some(&SecretSource::Env("KBGATE_CONFLUENCE_TOKEN".into()))
    );
    assert!(!conf.allow_undocumented_apis);
    assert_eq!(conf.max_attachment_bytes, 50 * 1024 * 1024);
    assert_eq!(conf.default_access_group, "confluence-users");
    assert_eq!(conf.licensed_users, None);
    assert_eq!(conf.requests_per_second, 10, "throttled by default");
    assert_eq!(c.store.backend, StoreBackend::Postgres);
    assert_eq!(c.store.data_dir, PathBuf::from("./kbgate-data"));
    assert_eq!(c.sync.interval, Duration::from_secs(900));
    assert_eq!(
        c.sync.full_every,
        Duration::from_secs(24 * 3600),
        "a daily full pass by default"
    );
    assert_eq!(c.portal.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(c.portal.public_url.as_str(), "http://127.0.0.1:9000/");
    assert_eq!(
        c.portal.magic_link,
        MagicLinkDelivery::Outbox(PathBuf::from("./kbgate-data/outbox"))
    );
    let embed = c.embed.as_ref().unwrap();
    assert_eq!(embed.algorithm, EmbedAlgorithm::HS256);
    assert_eq!(
        embed.key,
        EmbedKey::Secret(SecretSource::Env("KBGATE_EMBED_SECRET".into()))
    );
    assert_eq!(
        embed.api_key,
        Some(SecretSource::File("/run/secrets/api".into()))
    );
    assert_eq!(embed.max_token_lifetime, Duration::from_secs(300));

    let p = &c.policy;
    assert_eq!(p.audiences().len(), 2);
    assert_eq!(p.audiences()[0].domains[1].as_str(), "acme.co.uk");
    assert_eq!(p.audiences()[1].domains[0].as_str(), "xn--bcher-kva.de");
    assert_eq!(p.audiences()[1].delivery, Delivery::Guest);
    assert_eq!(p.audiences()[1].labels[0].as_str(), "public");
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    assert!(p.viewer(&Email::parse("a@acme.com").unwrap(), now).is_ok());
    assert!(
        p.viewer(&Email::parse("a@gmail.com").unwrap(), now)
            .is_err()
    );
    let later = Utc.with_ymd_and_hms(2027, 7, 1, 0, 0, 0).unwrap();
    assert!(
        p.viewer(&Email::parse("a@acme.com").unwrap(), later)
            .is_err()
    );
}

#[test]
fn minimal_config_uses_defaults() {
    let c = load("").unwrap();
    assert!(c.confluence.is_none());
    assert!(c.embed.is_none());
    assert_eq!(c.store.url.expose(), "sqlite://kbgate.db");
    assert_eq!(c.store.backend, StoreBackend::Sqlite);
    assert_eq!(c.portal.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.portal.session_idle, Duration::from_secs(7200));
    assert_eq!(c.portal.magic_link_ttl, Duration::from_secs(900));
    assert_eq!(c.portal.view_cache_mb, 32);
    assert!(c.portal.trusted_proxies.is_empty());
    let c =
        load("[portal]\ntrusted_proxies = [\"10.1.2.3/8\", \"::1\", \" 192.0.2.7 \"]\n").unwrap();
    let shown: Vec<String> = c
        .portal
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(shown, ["10.0.0.0/8", "::1/128", "192.0.2.7/32"]);
    assert!(c.policy.audiences().is_empty());
}

#[test]
fn debug_output_has_no_secrets() {
    let c = load(GOOD).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("pa55word"), "{dbg}");
    assert!(dbg.contains("***"));
    // The one secret type: Debug is redacted, and there is no Display to print it by mistake.
    let s = SecretString::from("top-secret-token");
    assert!(!format!("{s:?}").contains("top-secret-token"), "{s:?}");
    assert!(format!("{s:?}").contains("REDACTED"), "{s:?}");
}

#[test]
fn smtp_url_password_is_redacted() {
    let text = "[portal]\nsmtp_url = \"smtps://u:hunter22@mail.example.com:465\"\nfrom = \"kb@example.com\"\n";
    let c = load(text).unwrap();
    assert!(!format!("{:?}", c.portal).contains("hunter22"));
    let bad =
        "[portal]\nsmtp_url = \"ftp://u:hunter22@mail.example.com\"\nfrom = \"kb@example.com\"\n";
    let err = load(bad).unwrap_err();
    assert!(!err.to_string().contains("hunter22"), "{err}");
    assert_eq!(err.problems()[0].line(), Some(2));
}

#[test]
fn secrets_resolve_from_env_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "file-token\n").unwrap();
    let text = format!(
        "[confluence]\nbase_url = \"https://x.atlassian.net\"\nemail = \"svc@x.com\"\napi_token_file = {:?}\n",
        file.display().to_string()
    );
    let c = load(&text).unwrap();
    let conf = c.confluence.unwrap();
    assert_eq!(
        conf.resolve_api_token().unwrap().expose_secret(),
        "file-token"
    );
    assert!(conf.resolve_admin_api_key().unwrap().is_none());

    // A missing env var is an error only when resolved, and names the variable.
    let c = load(GOOD).unwrap();
    let src = c.confluence.as_ref().unwrap().api_token().unwrap();
    let err = src
        .resolve_with("confluence API token", &|_| None)
        .unwrap_err();
    assert!(err.to_string().contains("KBGATE_CONFLUENCE_TOKEN"));
    let ok = src
        .resolve_with("confluence API token", &|k| {
            (k == "KBGATE_CONFLUENCE_TOKEN").then(|| "tok-value".to_string())
        })
        .unwrap();
    assert_eq!(ok.expose_secret(), "tok-value");
    assert!(!format!("{ok:?}").contains("tok-value"));
}

#[test]
fn env_overrides_file() {
    let c = load_env(
        GOOD,
        &[
            ("KBGATE_STORE_URL", "sqlite://other.db"),
            ("KBGATE_PORTAL_LISTEN", "127.0.0.1:7000"),
            ("KBGATE_CONFLUENCE_BASE_URL", "https://other.atlassian.net"),
            ("KBGATE_CONFLUENCE_ALLOW_UNDOCUMENTED_APIS", "yes"),
            ("KBGATE_CONFLUENCE_API_TOKEN_FILE", "/run/secrets/tok"),
            ("KBGATE_DENY_DOMAINS", "gmail.com, yahoo.com"),
            ("KBGATE_SYNC_INTERVAL", "1h"),
            ("KBGATE_PORTAL_PUBLIC_URL", ""),
        ],
    )
    .unwrap();
    assert_eq!(c.store.url.expose(), "sqlite://other.db");
    assert_eq!(c.store.backend, StoreBackend::Sqlite);
    assert_eq!(c.portal.listen.to_string(), "127.0.0.1:7000");
    let conf = c.confluence.unwrap();
    assert_eq!(conf.base_url.host_str(), Some("other.atlassian.net"));
    assert!(conf.allow_undocumented_apis);
    // The env override of one member of the pair replaces the file's api_token_env.
    assert_eq!(
        conf.api_token(),
        Some(&SecretSource::File("/run/secrets/tok".into()))
    );
    assert_eq!(c.policy.deny().len(), 2);
    assert_eq!(c.sync.interval, Duration::from_secs(3600));
}

#[test]
fn env_can_create_sections() {
    let c = load_env(
        "",
        &[
            ("KBGATE_CONFLUENCE_BASE_URL", "http://127.0.0.1:9999"),
            ("KBGATE_CONFLUENCE_EMAIL", "svc@example.com"),
            ("KBGATE_CONFLUENCE_API_TOKEN_ENV", "TOK"),
            ("KBGATE_EMBED_ISSUER", "app"),
            ("KBGATE_EMBED_AUDIENCE", "kbgate"),
            ("KBGATE_EMBED_ALGORITHM", "EdDSA"),
            ("KBGATE_EMBED_PUBLIC_KEY_FILE", "embed.pub.pem"),
        ],
    )
    .unwrap();
    assert!(c.confluence.is_some());
    let embed = c.embed.unwrap();
    assert_eq!(embed.algorithm, EmbedAlgorithm::EdDSA);
    assert_eq!(embed.key, EmbedKey::PublicKeyFile("embed.pub.pem".into()));
}

#[test]
fn bad_env_value_names_the_variable() {
    let err = load_env(GOOD, &[("KBGATE_PORTAL_LISTEN", "not-an-address")]).unwrap_err();
    let p = &err.problems()[0];
    assert_eq!(
        p.location,
        Location::Env {
            var: "KBGATE_PORTAL_LISTEN".into()
        }
    );
    assert_eq!(p.key, "portal.listen");
    assert!(err.to_string().contains("KBGATE_PORTAL_LISTEN"));
    let err = load_env(
        GOOD,
        &[("KBGATE_CONFLUENCE_ALLOW_UNDOCUMENTED_APIS", "maybe")],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("KBGATE_CONFLUENCE_ALLOW_UNDOCUMENTED_APIS")
    );
}

#[test]
fn invalid_domain_reports_its_line_and_key() {
    let text = GOOD.replace("\"ACME.co.uk\"", "\n  \"acme.com.\"");
    let p = problem(&text);
    assert_eq!(p.key, "audience[0].domains[1]");
    assert_eq!(p.line(), Some(line_of(&text, "\"acme.com.\"")));
    assert_eq!(p.column(), Some(3));
    assert!(p.message.contains("trailing dot"), "{p}");
    let shown = p.to_string();
    assert!(
        shown.starts_with(&format!(
            "kbgate.toml:{}:3: audience[0].domains[1]:",
            p.line().unwrap()
        )),
        "{shown}"
    );
}

#[test]
fn invalid_domain_in_second_audience() {
    let text = GOOD.replace("\"bücher.de\"", "\"a@b.com\"");
    let p = problem(&text);
    assert_eq!(p.key, "audience[1].domains[0]");
    assert_eq!(p.line(), Some(line_of(&text, "a@b.com")));
}

#[test]
fn unknown_key_is_named_with_line() {
    let text = GOOD.replace("[store]\n", "[store]\npasword = \"x\"\n");
    let p = problem(&text);
    assert_eq!(p.key, "store.pasword");
    assert_eq!(p.line(), Some(line_of(&text, "pasword")));
    assert!(p.message.contains("unknown field"), "{p}");
}

#[test]
fn unknown_key_in_audience() {
    let text = GOOD.replace("delivery = \"guest\"", "delivery = \"guest\"\nlables = []");
    let p = problem(&text);
    assert_eq!(p.key, "audience[1].lables");
    assert_eq!(p.line(), Some(line_of(&text, "lables")));
}

#[test]
fn syntax_error_has_line() {
    let text = "[portal]\nlisten = \"127.0.0.1:8080\n";
    let p = problem(text);
    assert_eq!(p.line(), Some(2));
}

#[test]
fn wrong_type_has_line() {
    let text = GOOD.replace(
        "name = \"guests\"",
        "name = \"guests\"\ninclude_subdomains = \"yes\"",
    );
    let p = problem(&text);
    assert_eq!(
        p.line(),
        Some(line_of(&text, "include_subdomains = \"yes\""))
    );
    assert_eq!(p.key, "audience[1].include_subdomains");
}

#[test]
fn semantic_errors_each_have_their_line() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (replace, with, needle for the line, key)
        (
            "spaces = [\"KB\"]\nlabels",
            "spaces = [\"K B\"]\nlabels",
            "\"K B\"",
            "audience[1].spaces[0]",
        ),
        (
            "labels = [\"Public\"]",
            "labels = [\"a:b\"]",
            "a:b",
            "audience[1].labels[0]",
        ),
        (
            "expires = 2027-06-30",
            "expires = \"2027-13-01\"",
            "2027-13-01",
            "audience[0].expires",
        ),
        (
            "delivery = \"guest\"",
            "delivery = \"email\"",
            "\"email\"",
            "audience[1].delivery",
        ),
        (
            "name = \"guests\"",
            "name = \"acme\"",
            "name = \"acme\"\ndomains = [\"bü",
            "audience[1].name",
        ),
        (
            "name = \"guests\"",
            "name = \"bad name\"",
            "bad name",
            "audience[1].name",
        ),
        (
            "spaces = [\"KB\"]\nlabels",
            "spaces = []\nlabels",
            "spaces = []",
            "audience[1].spaces",
        ),
        (
            "[\"gmail.com\"]",
            "[\"*.gmail.com\"]",
            "*.gmail.com",
            "deny.domains[0]",
        ),
        (
            "listen = \"0.0.0.0:9000\"",
            "listen = \"localhost\"",
            "listen = ",
            "portal.listen",
        ),
        (
            "https://example.atlassian.net",
            "http://example.atlassian.net",
            "base_url",
            "confluence.base_url",
        ),
        (
            "email = \"svc@example.com\"",
            "email = \"svc\"",
            "email = \"svc\"",
            "confluence.email",
        ),
        (
            "postgres://kb:pa55word@db.local/kb",
            "mysql://db/kb",
            "mysql",
            "store.url",
        ),
        (
            "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"",
            "api_token_env = \"ATATT3x-secret!\"",
            "ATATT3x",
            "confluence.api_token_env",
        ),
        (
            "algorithm = \"HS256\"",
            "algorithm = \"none\"",
            "\"none\"",
            "embed.algorithm",
        ),
        (
            "algorithm = \"HS256\"",
            "algorithm = \"RS256\"",
            "secret_env",
            "embed.secret_env",
        ),
        (
            "[portal]\n",
            "[portal]\nframe_ancestors = [\"https://a.com; script-src *\"]\n",
            "frame_ancestors",
            "portal.frame_ancestors[0]",
        ),
        (
            "[portal]\n",
            "[portal]\nsession_idle = \"2d\"\n",
            "session_idle",
            "portal.session_idle",
        ),
        (
            "[portal]\n",
            "[portal]\nmagic_link_ttl = \"fifteen minutes\"\n",
            "magic_link_ttl",
            "portal.magic_link_ttl",
        ),
        (
            "[portal]\n",
            "[portal]\nview_cache_mb = 5000\n",
            "view_cache_mb",
            "portal.view_cache_mb",
        ),
        (
            "[portal]\n",
            "[portal]\ntrusted_proxies = [\"10.0.0.1\", \"proxy.internal\"]\n",
            "trusted_proxies",
            "portal.trusted_proxies[1]",
        ),
    ];
    for (from, to, needle, key) in cases {
        assert!(GOOD.contains(from), "test setup: {from:?} not in GOOD");
        let text = GOOD.replacen(from, to, 1);
        let err = load(&text).unwrap_err();
        let p = err
            .problems()
            .iter()
            .find(|p| p.key == *key)
            .unwrap_or_else(|| panic!("no problem for {key}: {err}"));
        assert_eq!(p.line(), Some(line_of(&text, needle)), "{key}: {p}");
    }
}

#[test]
fn out_of_range_values_are_errors_naming_the_key_and_range() {
    for (key, value, range) in [
        // Before: validated, then silently cut to 15 minutes by the server.
        ("magic_link_ttl", "\"30m\"", "between 1m and 15m"),
        ("magic_link_ttl", "\"0\"", "between 1m and 15m"),
        // Before: validated, then silently raised to a minute by the server.
        ("session_idle", "\"30s\"", "at least 1m"),
        ("session_absolute", "\"0\"", "at least 1m"),
        ("view_cache_mb", "5000", "between 0 (no cache) and 4096"),
    ] {
        let text = format!("[portal]\n{key} = {value}\n");
        let p = problem(&text);
        assert_eq!(p.key, format!("portal.{key}"), "{p}");
        assert_eq!(p.line(), Some(2), "{p}");
        assert!(p.message.contains(range), "{key}: {p}");
    }
    for (key, value, range) in [
        // Before: validated up to 15m, then silently cut to 5 minutes by the verifier.
        ("max_token_lifetime", "\"10m\"", "between 1s and 5m"),
        ("leeway", "\"6m\"", "at most 5m"),
    ] {
        let text = GOOD.replace(
            "api_key_file = \"/run/secrets/api\"\n",
            &format!("api_key_file = \"/run/secrets/api\"\n{key} = {value}\n"),
        );
        let p = problem(&text);
        assert_eq!(p.key, format!("embed.{key}"), "{p}");
        assert_eq!(p.line(), Some(line_of(&text, &format!("{key} ="))), "{p}");
        assert!(p.message.contains(range), "{key}: {p}");
    }
    let p = problem("[sync]\noverlap = \"2d\"\n");
    assert_eq!(p.key, "sync.overlap");
    assert!(p.message.contains("at most 24h"), "{p}");
    // The limits themselves are accepted.
    let c = load(
        "[portal]\nmagic_link_ttl = \"15m\"\nsession_idle = \"1m\"\nsession_absolute = \"1m\"\n",
    )
    .unwrap();
    assert_eq!(c.portal.magic_link_ttl, Duration::from_secs(900));
    assert_eq!(c.portal.session_idle, Duration::from_secs(60));
}

#[test]
fn durations_take_humantime_forms() {
    let c = load("[portal]\nsession_idle = \"1h 30m\"\nsession_absolute = \"7d\"\n").unwrap();
    assert_eq!(c.portal.session_idle, Duration::from_secs(5400));
    assert_eq!(c.portal.session_absolute, Duration::from_secs(7 * 86_400));
    let p = problem("[sync]\ninterval = \"15\"\n");
    assert_eq!(p.key, "sync.interval");
    assert_eq!(p.line(), Some(2));
    assert!(p.message.contains("\"15\" is not a duration"), "{p}");
}

#[test]
fn a_programmatic_portal_has_the_file_defaults() {
    let url = url::Url::parse("http://127.0.0.1:8080").unwrap();
    let from_file = load("").unwrap().portal;
    assert_eq!(PortalConfig::new(url), from_file);
    assert_eq!(from_file.session_idle, Duration::from_secs(2 * 3600));
    assert_eq!(from_file.session_absolute, Duration::from_secs(12 * 3600));
}

/// Every value the example file writes out is the code's default, so the file documents the
/// defaults and copying it changes nothing it does not say.
#[test]
fn example_file_states_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kbgate.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let ex = Config::from_str_with_env(&text, &path, &no_env).unwrap();
    let minimal = "[confluence]\nbase_url = \"https://example.atlassian.net\"\nemail = \"svc-kbgate@example.com\"\napi_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\n\n[embed]\nissuer = \"https://app.example.com\"\naudience = \"kbgate\"\nalgorithm = \"HS256\"\nsecret_env = \"KBGATE_EMBED_SECRET\"\n";
    let def = load(minimal).unwrap();
    let (e, d) = (ex.confluence.unwrap(), def.confluence.unwrap());
    assert_eq!(e.auth, d.auth);
    assert_eq!(e.allow_undocumented_apis, d.allow_undocumented_apis);
    assert_eq!(e.max_attachment_bytes, d.max_attachment_bytes);
    assert_eq!(e.default_access_group, d.default_access_group);
    assert_eq!(e.licensed_users, d.licensed_users);
    assert_eq!(e.requests_per_second, d.requests_per_second);
    assert_eq!(ex.store.url, def.store.url);
    assert_eq!(ex.store.data_dir, def.store.data_dir);
    assert_eq!(ex.sync, def.sync);
    assert_eq!(ex.metrics, def.metrics);
    let (e, d) = (&ex.portal, &def.portal);
    assert_eq!(e.listen, d.listen);
    assert_eq!(e.session_idle, d.session_idle);
    assert_eq!(e.session_absolute, d.session_absolute);
    assert_eq!(e.magic_link, d.magic_link);
    assert_eq!(e.magic_link_ttl, d.magic_link_ttl);
    assert_eq!(e.view_cache_mb, d.view_cache_mb);
    assert_eq!(e.trusted_proxies, d.trusted_proxies);
    assert_eq!(e.header_read_timeout, d.header_read_timeout);
    assert_eq!(e.idle_timeout, d.idle_timeout);
    assert_eq!(e.max_connections, d.max_connections);
    assert_eq!(e.max_connections_per_client, d.max_connections_per_client);
    let (e, d) = (ex.embed.unwrap(), def.embed.unwrap());
    assert_eq!(e.max_token_lifetime, d.max_token_lifetime);
    assert_eq!(e.leeway, d.leeway);
}

#[test]
fn the_full_pass_interval_is_configurable() {
    let with = |v: &str| format!("{GOOD}\n[sync]\nfull_every = {v}\n");
    let c = load(&with("\"0\"")).unwrap();
    assert_eq!(c.sync.full_every, Duration::ZERO, "0 = never");
    let c = load(&with("\"6h\"")).unwrap();
    assert_eq!(c.sync.full_every, Duration::from_secs(6 * 3600));
    let e = load(&with("\"soon\"")).unwrap_err().to_string();
    assert!(e.contains("sync.full_every"), "{e}");
}

#[test]
fn the_client_throttle_is_configurable() {
    let text = GOOD.replace(
        "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\n",
        "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\nrequests_per_second = 0\n",
    );
    let c = load(&text).unwrap();
    assert_eq!(c.confluence.as_ref().unwrap().requests_per_second, 0);
    let c = load_env(&text, &[("KBGATE_CONFLUENCE_REQUESTS_PER_SECOND", "25")]).unwrap();
    assert_eq!(c.confluence.as_ref().unwrap().requests_per_second, 25);
    let bad = GOOD.replace(
        "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\n",
        "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\nrequests_per_second = -1\n",
    );
    let e = load(&bad).unwrap_err().to_string();
    assert!(e.contains("requests_per_second"), "{e}");
}

#[test]
fn native_mode_group_and_paid_users() {
    let text = GOOD.replace(
        "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\n",
        "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\ndefault_access_group = \" confluence-users-acme \"\nlicensed_users = 120\n",
    );
    let c = load(&text).unwrap();
    let conf = c.confluence.as_ref().unwrap();
    assert_eq!(
        conf.default_access_group, "confluence-users-acme",
        "trimmed"
    );
    assert_eq!(conf.licensed_users, Some(120));
    // From the environment too; the variable wins.
    let c = load_env(
        &text,
        &[
            ("KBGATE_CONFLUENCE_DEFAULT_ACCESS_GROUP", "staff"),
            ("KBGATE_CONFLUENCE_LICENSED_USERS", "7"),
        ],
    )
    .unwrap();
    let conf = c.confluence.as_ref().unwrap();
    assert_eq!(
        (conf.default_access_group.as_str(), conf.licensed_users),
        ("staff", Some(7))
    );
    let err = load_env(&text, &[("KBGATE_CONFLUENCE_LICENSED_USERS", "many")]).unwrap_err();
    let p = &err.problems()[0];
    assert_eq!(
        p.location,
        Location::Env {
            var: "KBGATE_CONFLUENCE_LICENSED_USERS".into()
        }
    );
    assert_eq!(p.key, "confluence.licensed_users");
}

#[test]
fn invalid_group_or_paid_users_name_file_line_and_key() {
    let base = "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\n";
    let cases: &[(&str, &str, &str, &str)] = &[
        // (inserted line, needle for the line, key, message part)
        (
            "default_access_group = \"  \"",
            "default_access_group",
            "confluence.default_access_group",
            "must not be empty",
        ),
        (
            "default_access_group = \"users\\u0007\"",
            "default_access_group",
            "confluence.default_access_group",
            "control characters",
        ),
        (
            "licensed_users = 0",
            "licensed_users",
            "confluence.licensed_users",
            "at least 1",
        ),
        (
            "licensed_users = -5",
            "licensed_users",
            "confluence.licensed_users",
            "",
        ),
        (
            "licensed_users = \"120\"",
            "licensed_users",
            "confluence.licensed_users",
            "",
        ),
        (
            "default_access_group = 5",
            "default_access_group",
            "confluence.default_access_group",
            "",
        ),
    ];
    for (line, needle, key, message) in cases {
        let text = GOOD.replacen(base, &format!("{base}{line}\n"), 1);
        let p = problem(&text);
        assert_eq!(p.key, *key, "{line}: {p}");
        assert_eq!(p.line(), Some(line_of(&text, needle)), "{line}: {p}");
        assert!(p.message.contains(message), "{line}: {p}");
        assert!(
            p.to_string()
                .starts_with(&format!("kbgate.toml:{}:", line_of(&text, needle))),
            "{line}: {p}"
        );
    }
    let long = format!("default_access_group = \"{}\"", "g".repeat(256));
    let p = problem(&GOOD.replacen(base, &format!("{base}{long}\n"), 1));
    assert_eq!(p.key, "confluence.default_access_group");
    assert!(p.message.contains("255"), "{p}");
}

#[test]
fn secret_value_in_env_key_is_not_echoed() {
    let text = GOOD.replace(
        "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"",
        "api_token_env = \"ATATT3xFfGF0-secret\"",
    );
    let err = load(&text).unwrap_err();
    assert!(!err.to_string().contains("ATATT3xFfGF0-secret"), "{err}");
}

#[test]
fn exclusive_keys() {
    let text = GOOD.replace(
        "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"",
        "api_token_env = \"A\"\napi_token_file = \"/x\"",
    );
    let p = problem(&text);
    assert_eq!(p.key, "confluence.api_token_file");
    assert_eq!(p.line(), Some(line_of(&text, "api_token_file")));

    let text = GOOD.replace("api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\n", "");
    let p = problem(&text);
    assert!(p.message.contains("api_token_env"), "{p}");
}

#[test]
fn several_problems_reported_together() {
    let text = GOOD
        .replace("\"ACME.co.uk\"", "\"acme..co.uk\"")
        .replace("[\"gmail.com\"]", "[\"[1.2.3.4]\"]");
    let err = load(&text).unwrap_err();
    assert_eq!(err.problems().len(), 2, "{err}");
}

#[test]
fn example_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kbgate.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let c = Config::from_str_with_env(&text, &path, &no_env).unwrap();
    let conf = c.confluence.as_ref().unwrap();
    assert_eq!(conf.default_access_group, "confluence-users");
    assert_eq!(conf.licensed_users, None, "commented out in the example");
    assert!(c.embed.is_some());
    assert_eq!(c.policy.audiences().len(), 2);
    assert_eq!(c.policy.deny().len(), 3);
    // Through the real loader too (no KBGATE_* variables are set in tests).
    assert!(Config::load(&path).is_ok());
}

#[test]
fn missing_file_is_a_read_error() {
    let err = Config::load(Path::new("/nonexistent/kbgate.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/kbgate.toml"));
}

#[test]
fn confluence_auth_methods_parse_with_their_own_keys() {
    // Default: a classic token on the site.
    let c = load(GOOD).unwrap();
    let conf = c.confluence.unwrap();
    assert_eq!(conf.auth.name(), "api_token");
    assert!(conf.auth.gateway().is_none());

    // A scoped token through the gateway: cloud id discovered unless given.
    let scoped = "[confluence]\nbase_url = \"https://x.atlassian.net\"\nauth = \"scoped_token\"\nemail = \"svc@x.com\"\napi_token_env = \"TOK\"\n";
    let conf = load(scoped).unwrap().confluence.unwrap();
    match &conf.auth {
        ConfluenceAuth::ScopedToken { email, gateway, .. } => {
            assert_eq!(email.as_str(), "svc@x.com");
            assert_eq!(gateway.url.as_str(), "https://api.atlassian.com/");
            assert_eq!(gateway.cloud_id, None);
        }
        other => panic!("{other:?}"),
    }
    let with_id = format!("{scoped}cloud_id = \"a436116f-02ce-4520-8fbb-7301462a1674\"\n");
    let conf = load(&with_id).unwrap().confluence.unwrap();
    assert_eq!(
        conf.auth.gateway().unwrap().cloud_id.as_deref(),
        Some("a436116f-02ce-4520-8fbb-7301462a1674")
    );

    // OAuth client credentials: no email, a client id and secret, the default token URL.
    let oauth = "[confluence]\nbase_url = \"https://x.atlassian.net\"\nauth = \"oauth\"\nclient_id = \"abc\"\nclient_secret_file = \"/run/secrets/s\"\n";
    let conf = load(oauth).unwrap().confluence.unwrap();
    match &conf.auth {
        ConfluenceAuth::OAuth {
            client_id,
            client_secret,
            token_url,
            ..
        } => {
            assert_eq!(client_id, "abc");
            assert_eq!(client_secret, &SecretSource::File("/run/secrets/s".into()));
            assert_eq!(token_url.as_str(), "https://auth.atlassian.com/oauth/token");
        }
        other => panic!("{other:?}"),
    }
    assert!(conf.email().is_none());

    // Mistakes are located and explained.
    for (text, key, words) in [
        (
            "[confluence]\nbase_url = \"https://x.atlassian.net\"\nauth = \"basic\"\nemail = \"svc@x.com\"\napi_token_env = \"TOK\"\n",
            "confluence.auth",
            "scoped_token",
        ),
        (
            "[confluence]\nbase_url = \"https://x.atlassian.net\"\nemail = \"svc@x.com\"\napi_token_env = \"TOK\"\nclient_id = \"abc\"\n",
            "confluence.client_id",
            "does not apply",
        ),
        (
            "[confluence]\nbase_url = \"https://x.atlassian.net\"\nauth = \"oauth\"\nclient_id = \"abc\"\n",
            "confluence.client_secret",
            "required",
        ),
        (
            "[confluence]\nbase_url = \"https://x.atlassian.net\"\nauth = \"scoped_token\"\nemail = \"svc@x.com\"\napi_token_env = \"TOK\"\ncloud_id = \"not a uuid!\"\n",
            "confluence.cloud_id",
            "cloud id",
        ),
    ] {
        let err = load(text).unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
        assert!(err.contains(words), "{words}: {err}");
    }
}

#[test]
fn native_mode_invitation_wait_and_retry() {
    // Defaults: apply waits 2 minutes for its invitations; an invitation of unknown outcome
    // is sent again after 10 minutes.
    let c = load(GOOD).unwrap();
    let conf = c.confluence.as_ref().unwrap();
    assert_eq!(conf.invite_wait, Duration::from_secs(120));
    assert_eq!(conf.invite_retry_after, Duration::from_secs(600));
    let text = GOOD.replace(
        "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\n",
        "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\ninvite_wait = \"0\"\ninvite_retry_after = \"1h\"\n",
    );
    let c = load(&text).unwrap();
    let conf = c.confluence.as_ref().unwrap();
    assert_eq!(conf.invite_wait, Duration::ZERO, "0 = do not wait");
    assert_eq!(conf.invite_retry_after, Duration::from_secs(3600));
    // Out of range: a wait of hours, or a retry sooner than an invitation can complete.
    for (line, key) in [
        ("invite_wait = \"2h\"", "confluence.invite_wait"),
        (
            "invite_retry_after = \"5s\"",
            "confluence.invite_retry_after",
        ),
        (
            "invite_retry_after = \"soon\"",
            "confluence.invite_retry_after",
        ),
    ] {
        let bad = GOOD.replace(
            "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\n",
            &format!("api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\n{line}\n"),
        );
        let e = load(&bad).unwrap_err();
        assert_eq!(e.problems()[0].key, key, "{e}");
    }
}

#[test]
fn connection_limits_and_timeouts_are_configurable_and_range_checked() {
    let c = load(GOOD).unwrap();
    assert_eq!(
        c.portal.header_read_timeout,
        kbgate_config::DEFAULT_HEADER_READ_TIMEOUT
    );
    assert_eq!(c.portal.idle_timeout, kbgate_config::DEFAULT_IDLE_TIMEOUT);
    assert_eq!(
        c.portal.max_connections,
        kbgate_config::DEFAULT_MAX_CONNECTIONS
    );
    assert_eq!(
        c.portal.max_connections_per_client,
        kbgate_config::DEFAULT_MAX_CONNECTIONS_PER_CLIENT
    );
    let with = |keys: &str| {
        GOOD.replace(
            "listen = \"0.0.0.0:9000\"\n",
            &format!("listen = \"0.0.0.0:9000\"\n{keys}\n"),
        )
    };
    let c = load(&with(
        "header_read_timeout = \"5s\"\nidle_timeout = \"2m\"\nmax_connections = 2000\nmax_connections_per_client = 100",
    ))
    .unwrap();
    assert_eq!(c.portal.header_read_timeout, Duration::from_secs(5));
    assert_eq!(c.portal.idle_timeout, Duration::from_secs(120));
    assert_eq!(c.portal.max_connections, 2000);
    assert_eq!(c.portal.max_connections_per_client, 100);
    // From the environment too.
    let c = load_env(
        &with(""),
        &[
            ("KBGATE_PORTAL_MAX_CONNECTIONS", "300"),
            ("KBGATE_PORTAL_IDLE_TIMEOUT", "30s"),
        ],
    )
    .unwrap();
    assert_eq!(c.portal.max_connections, 300);
    assert_eq!(c.portal.idle_timeout, Duration::from_secs(30));
    // Out of range: an error naming the key and the range, never a clamp.
    for (keys, key, range) in [
        (
            "header_read_timeout = \"0\"",
            "portal.header_read_timeout",
            "between 1s and 5m",
        ),
        (
            "header_read_timeout = \"1h\"",
            "portal.header_read_timeout",
            "between 1s and 5m",
        ),
        (
            "idle_timeout = \"2h\"",
            "portal.idle_timeout",
            "between 1s and 1h",
        ),
        (
            "max_connections = 0",
            "portal.max_connections",
            "between 1 and 1000000",
        ),
        (
            "max_connections_per_client = 0",
            "portal.max_connections_per_client",
            "between 1 and",
        ),
        (
            "max_connections = 10\nmax_connections_per_client = 11",
            "portal.max_connections_per_client",
            "must not exceed portal.max_connections (10)",
        ),
    ] {
        let e = load(&with(keys)).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains(range), "{keys}: {e}");
    }
}

#[test]
fn a_jwks_url_must_be_https_without_credentials() {
    let with = |url: &str| {
        load_env(
            "",
            &[
                ("KBGATE_EMBED_ISSUER", "app"),
                ("KBGATE_EMBED_AUDIENCE", "kbgate"),
                ("KBGATE_EMBED_ALGORITHM", "ES256"),
                ("KBGATE_EMBED_JWKS_URL", url),
            ],
        )
    };
    let c = with("https://app.example.com/.well-known/jwks.json").unwrap();
    assert_eq!(
        c.embed.unwrap().key,
        EmbedKey::JwksUrl(
            "https://app.example.com/.well-known/jwks.json"
                .parse()
                .unwrap()
        )
    );
    // Plain http only for loopback (tests, a sidecar).
    assert!(with("http://127.0.0.1:8080/jwks").is_ok());
    for (bad, why) in [
        ("http://app.example.com/jwks", "must be https"),
        ("https://user:pw@app.example.com/jwks", "credentials"),
        ("ftp://app.example.com/jwks", "scheme"),
        ("not a url", "not a URL"),
    ] {
        let err = with(bad).unwrap_err();
        let p = &err.problems()[0];
        assert_eq!(p.key, "embed.jwks_url", "{bad}: {p}");
        assert!(p.message.contains(why), "{bad}: {p}");
    }
    // A shared-secret algorithm cannot take keys from a URL (algorithm confusion).
    let err = load_env(
        "",
        &[
            ("KBGATE_EMBED_ISSUER", "app"),
            ("KBGATE_EMBED_AUDIENCE", "kbgate"),
            ("KBGATE_EMBED_ALGORITHM", "HS256"),
            ("KBGATE_EMBED_JWKS_URL", "https://app.example.com/jwks"),
        ],
    )
    .unwrap_err();
    assert!(err.to_string().contains("shared secret"), "{err}");
}

#[test]
fn jira_links_default_to_the_atlassian_site_and_can_be_set_or_turned_off() {
    let jira = |c: &Config| {
        c.confluence
            .as_ref()
            .unwrap()
            .jira_url
            .as_ref()
            .map(|u| u.as_str().to_owned())
    };
    // https://X.atlassian.net: Jira lives on the same site.
    let c = load(GOOD).unwrap();
    assert_eq!(jira(&c).as_deref(), Some("https://example.atlassian.net/"));
    let with = |v: &str| {
        GOOD.replace(
            "api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\n",
            &format!("api_token_env = \"KBGATE_CONFLUENCE_TOKEN\"\njira_url = {v}\n"),
        )
    };
    let c = load(&with("\"https://jira.example.com/jira\"")).unwrap();
    assert_eq!(jira(&c).as_deref(), Some("https://jira.example.com/jira"));
    let c = load(&with("\"\"")).unwrap();
    assert_eq!(jira(&c), None, "empty turns Jira links off");
    for bad in [
        "\"javascript:alert(1)\"",
        "\"http://jira.example.com\"",
        "\"https://x/?a=b\"",
    ] {
        let e = load(&with(bad)).unwrap_err().to_string();
        assert!(e.contains("confluence.jira_url"), "{bad}: {e}");
    }
    // A site that is not on atlassian.net (the simulator on localhost): no default.
    let local = GOOD.replace("https://example.atlassian.net", "http://127.0.0.1:8089");
    assert_eq!(jira(&load(&local).unwrap()), None);
    let c = load_env(
        GOOD,
        &[("KBGATE_CONFLUENCE_JIRA_URL", "https://other.atlassian.net")],
    )
    .unwrap();
    assert_eq!(jira(&c).as_deref(), Some("https://other.atlassian.net/"));
}

#[test]
fn staff_names_are_hidden_unless_turned_on() {
    let c = load(GOOD).unwrap();
    assert!(!c.portal.show_staff_names);
    assert!(!PortalConfig::new("https://kb.example.com".parse().unwrap()).show_staff_names);
    let text = GOOD.replace(
        "listen = \"0.0.0.0:9000\"\n",
        "listen = \"0.0.0.0:9000\"\nshow_staff_names = true\n",
    );
    assert!(load(&text).unwrap().portal.show_staff_names);
    let c = load_env(GOOD, &[("KBGATE_PORTAL_SHOW_STAFF_NAMES", "true")]).unwrap();
    assert!(c.portal.show_staff_names);
}

#[test]
fn brand_loads_with_defaults_and_validated_values() {
    let plain = load(GOOD).unwrap();
    assert_eq!(plain.portal.brand, kbgate_config::BrandConfig::default());
    assert_eq!(plain.portal.brand.site_name, "Knowledge base");
    assert!(plain.portal.magic_links);
    assert_eq!(plain.embed.as_ref().unwrap().login_url, None);

    let text = GOOD
        .replace(
            "[embed]\n",
            r##"[portal.brand]
site_name = "Acme Help"
title_name = "Acme"
logo = "brand/logo.svg"
favicon = "https://cdn.acme.com/favicon.png"
accent = "#b3261e"
accent_dark = "#ffb4ab"
support_email = "help@acme.com"
support_url = "https://acme.com/support"
custom_css = "brand/extra.css"
footer_links = [{ text = "Privacy", url = "https://acme.com/privacy" },
                { text = "Mail us", url = "mailto:help@acme.com" }]

[embed]
login_url = "https://app.acme.com/login?from=kb"
"##,
        )
        .replace("[portal]\n", "[portal]\nmagic_link = false\n");
    let c = load(&text).unwrap();
    let b = &c.portal.brand;
    assert!(!c.portal.magic_links);
    assert_eq!(b.site_name, "Acme Help");
    assert_eq!(b.title_name, "Acme");
    assert_eq!(
        b.logo,
        Some(kbgate_config::BrandImage::File(PathBuf::from(
            "brand/logo.svg"
        )))
    );
    assert_eq!(
        b.logo_dark, b.logo,
        "the dark logo defaults to the light one"
    );
    assert_eq!(b.accent.unwrap().css(), "#b3261e");
    assert_eq!(b.support_email.as_ref().unwrap().as_str(), "help@acme.com");
    assert_eq!(b.footer_links.len(), 2);
    assert_eq!(
        c.embed.unwrap().login_url.unwrap().as_str(),
        "https://app.acme.com/login?from=kb"
    );
}

#[test]
fn brand_refuses_unreadable_or_unsafe_values() {
    for (line, key) in [
        ("accent = \"#7fb2ff\"", "portal.brand.accent"),
        ("accent_dark = \"#0b5cad\"", "portal.brand.accent_dark"),
        ("accent = \"red;}body{display:none\"", "portal.brand.accent"),
        ("logo = \"http://cdn.acme.com/l.png\"", "portal.brand.logo"),
        ("site_name = \"\"", "portal.brand.site_name"),
        (
            "support_url = \"javascript:alert(1)\"",
            "portal.brand.support_url",
        ),
        (
            "footer_links = [{ text = \"x\", url = \"javascript:alert(1)\" }]",
            "portal.brand.footer_links[0].url",
        ),
    ] {
        let text = GOOD.replace("[embed]\n", &format!("[portal.brand]\n{line}\n\n[embed]\n"));
        let p = problem(&text);
        assert_eq!(p.key, key, "{line}: {p:?}");
        assert_eq!(p.line(), Some(line_of(&text, line)), "{line}");
    }
    let e = problem(&GOOD.replace("[embed]\n", "[embed]\nlogin_url = \"ftp://x\"\n"));
    assert_eq!(e.key, "embed.login_url");
}

#[test]
fn metrics_listener_is_off_by_default_and_parsed_when_set() {
    let minimal = "[store]\nurl = \"sqlite://x.db\"\n";
    assert_eq!(load(minimal).unwrap().metrics.listen, None);
    let c = load("[metrics]\nlisten = \"127.0.0.1:9464\"\n").unwrap();
    assert_eq!(c.metrics.listen, Some("127.0.0.1:9464".parse().unwrap()));
    let c = load_env("", &[("KBGATE_METRICS_LISTEN", "[::1]:9100")]).unwrap();
    assert_eq!(c.metrics.listen, Some("[::1]:9100".parse().unwrap()));
    let p = problem("[metrics]\nlisten = \"localhost\"\n");
    assert_eq!(p.key, "metrics.listen");
}

const OIDC: &str = r#"
[[oidc]]
name = "acme-entra"
issuer = "https://login.microsoftonline.com/tid/v2.0"
client_id = "kbgate-client"
client_secret_env = "KBGATE_OIDC_ACME"
domains = ["acme.com", "ACME.co.uk"]

[[oidc]]
name = "google"
display_name = "Globex Google"
issuer = "https://accounts.google.com"
client_id = "123.apps.googleusercontent.com"
client_secret_file = "/run/secrets/google"
scopes = ["email"]
domains = ["globex.example"]
"#;

#[test]
fn oidc_providers_load_with_defaults() {
    let c = load(OIDC).unwrap();
    assert_eq!(c.oidc.len(), 2);
    let (a, g) = (&c.oidc[0], &c.oidc[1]);
    assert_eq!(a.name, "acme-entra");
    assert_eq!(a.display_name, None);
    assert_eq!(a.scopes, ["openid", "email", "profile"]);
    assert_eq!(
        a.domains.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
        ["acme.com", "acme.co.uk"]
    );
    assert_eq!(
        a.client_secret,
        SecretSource::Env("KBGATE_OIDC_ACME".into())
    );
    // Kept as written: Google's `iss` has no trailing slash.
    assert_eq!(g.issuer, "https://accounts.google.com");
    assert_eq!(g.display_name.as_deref(), Some("Globex Google"));
    // `openid` is always requested.
    assert_eq!(g.scopes, ["openid", "email"]);
    assert_eq!(
        g.client_secret,
        SecretSource::File(PathBuf::from("/run/secrets/google"))
    );
    // Read only when needed, from the variable it names.
    let env = |k: &str| (k == "KBGATE_OIDC_ACME").then(|| "s3cret".to_owned());
    let secret = a
        .client_secret
        .resolve_with("oidc client secret", &env)
        .unwrap();
    assert_eq!(secret.expose_secret(), "s3cret");
    assert!(!format!("{secret:?}").contains("s3cret"));
    assert!(load(GOOD).unwrap().oidc.is_empty());
}

#[test]
fn oidc_domain_bound_twice_is_refused_at_its_line() {
    let text = format!(
        "{OIDC}\n[[oidc]]\nname = \"okta\"\nissuer = \"https://acme.okta.com\"\nclient_id = \"x\"\nclient_secret_env = \"S\"\ndomains = [\"other.com\", \"Acme.com\"]\n"
    );
    let p = problem(&text);
    assert_eq!(p.key, "oidc[2].domains[1]");
    assert!(p.message.contains("acme-entra"), "{}", p.message);
    assert_eq!(p.line(), Some(line_of(&text, "domains = [\"other.com\"")));
}

#[test]
fn oidc_issuer_must_be_https_except_loopback() {
    let entry = |issuer: &str| {
        format!(
            "[[oidc]]\nname = \"x\"\nissuer = \"{issuer}\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\ndomains = [\"acme.com\"]\n"
        )
    };
    let p = problem(&entry("http://idp.example.com"));
    assert_eq!(p.key, "oidc[0].issuer");
    assert!(p.message.contains("https"), "{}", p.message);
    for bad in [
        "https://idp.example.com/?tenant=1",
        "https://u:p@idp.example.com",
        "ftp://idp.example.com",
        "idp.example.com",
    ] {
        assert_eq!(problem(&entry(bad)).key, "oidc[0].issuer", "{bad}");
    }
    for good in [
        "http://127.0.0.1:4000",
        "http://localhost:4000/op",
        "https://idp.example.com/t/1",
    ] {
        assert_eq!(load(&entry(good)).unwrap().oidc[0].issuer, good);
    }
}

#[test]
fn oidc_entries_are_checked_key_by_key() {
    let base = "[[oidc]]\nname = \"x\"\nissuer = \"https://idp.example.com\"\nclient_id = \"c\"\n";
    // No secret, or both.
    let p = problem(&format!("{base}domains = [\"acme.com\"]\n"));
    assert!(p.key.contains("client_secret_env"), "{}", p.key);
    let p = problem(&format!(
        "{base}client_secret_env = \"S\"\nclient_secret_file = \"f\"\ndomains = [\"acme.com\"]\n"
    ));
    assert_eq!(p.key, "oidc[0].client_secret_file");
    // A secret value where the variable's name belongs is refused without echoing it.
    let p = problem(&format!(
        "{base}client_secret_env = \"hunter2-value!\"\ndomains = [\"acme.com\"]\n"
    ));
    assert!(!p.message.contains("hunter2"));
    // No domain, a bad domain, a bad scope, a bad name, a duplicate name.
    let p = problem(&format!("{base}client_secret_env = \"S\"\ndomains = []\n"));
    assert_eq!(p.key, "oidc[0].domains");
    let p = problem(&format!(
        "{base}client_secret_env = \"S\"\ndomains = [\"acme.com.\"]\n"
    ));
    assert_eq!(p.key, "oidc[0].domains[0]");
    let p = problem(&format!(
        "{base}client_secret_env = \"S\"\nscopes = [\"open id\"]\ndomains = [\"acme.com\"]\n"
    ));
    assert_eq!(p.key, "oidc[0].scopes[0]");
    let p = problem(&format!(
        "{}client_secret_env = \"S\"\ndomains = [\"acme.com\"]\n",
        base.replace("name = \"x\"", "name = \"Acme SSO\"")
    ));
    assert_eq!(p.key, "oidc[0].name");
    let p = problem(&format!(
        "{base}client_secret_env = \"S\"\ndomains = [\"acme.com\"]\n{base}client_secret_env = \"S\"\ndomains = [\"b.com\"]\n"
    ));
    assert_eq!(p.key, "oidc[1].name");
    // Unknown keys are named.
    let p = problem(&format!(
        "{base}client_secret_env = \"S\"\ndomains = [\"acme.com\"]\nclient_secret = \"x\"\n"
    ));
    assert!(p.key.contains("client_secret"), "{}", p.key);
}

/// The commented `[[oidc]]` block of the example file is valid as written.
#[test]
fn example_oidc_block_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kbgate.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("# [[oidc]]").expect("an [[oidc]] example");
    let block: String = text[start..]
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| {
            format!(
                "{}\n",
                l.trim_start_matches('#').strip_prefix(' ').unwrap_or("")
            )
        })
        .collect();
    let c = load(&block).unwrap();
    assert_eq!(c.oidc.len(), 1);
    assert_eq!(c.oidc[0].name, "acme-entra");
    assert_eq!(c.oidc[0].domains.len(), 2);
}

#[test]
fn admin_section() {
    let c = load("").unwrap();
    assert!(c.admin.admins.is_empty());
    assert_eq!(c.admin.session, Duration::from_secs(30 * 60));
    let c = load(
        "[admin]\nemails = [\"Boss@Vendor.com\"]\ndomains = [\"ops.vendor.com\"]\nsession_minutes = 15\n",
    )
    .unwrap();
    assert!(
        c.admin
            .admins
            .is_admin(&Email::parse("boss@vendor.com").unwrap())
    );
    assert!(
        c.admin
            .admins
            .is_admin(&Email::parse("x@ops.vendor.com").unwrap())
    );
    assert!(
        !c.admin
            .admins
            .is_admin(&Email::parse("x@vendor.com").unwrap())
    );
    assert_eq!(c.admin.session, Duration::from_secs(15 * 60));
    let c = load_env("", &[("KBGATE_ADMIN_EMAILS", "a@vendor.com, b@vendor.com")]).unwrap();
    assert!(
        c.admin
            .admins
            .is_admin(&Email::parse("b@vendor.com").unwrap())
    );

    let text = "[admin]\nemails = [\"not an email\"]\n";
    let p = problem(text);
    assert_eq!(p.key, "admin.emails[0]");
    let p = problem("[admin]\nsession_minutes = 0\n");
    assert_eq!(p.key, "admin.session_minutes");
    assert!(p.message.contains("between 1 and 480"), "{}", p.message);
    let p = problem("[admin]\nemail = [\"a@b.com\"]\n");
    assert!(p.message.contains("unknown field"), "{}", p.message);
}

#[test]
fn insights_retention() {
    let c = load("").unwrap();
    assert_eq!(c.insights.retention_days, 395);
    assert_eq!(c.insights.retention(), Duration::from_secs(395 * 24 * 3600));
    let c = load("[insights]\nretention_days = 30\n").unwrap();
    assert_eq!(c.insights.retention_days, 30);
    let c = load_env("", &[("KBGATE_INSIGHTS_RETENTION_DAYS", "90")]).unwrap();
    assert_eq!(c.insights.retention_days, 90);
    for bad in ["0", "3651"] {
        let p = problem(&format!("[insights]\nretention_days = {bad}\n"));
        assert_eq!(p.key, "insights.retention_days");
        assert!(p.message.contains("between 1 and 3650"), "{}", p.message);
    }
    let p = problem("[insights]\nretention = 3\n");
    assert!(p.message.contains("unknown field"), "{}", p.message);
}

const AUDIENCE: &str = r#"
[[audience]]
name = "acme"
domains = ["acme.com"]
spaces = ["KB"]
"#;

#[test]
fn widget_is_off_by_default_and_parses_its_section() {
    let c = load(AUDIENCE).unwrap();
    assert!(c.widget.allowed_origins.is_empty());
    assert_eq!(c.widget.session_lifetime, Duration::from_secs(3600));
    let text = format!(
        r#"{AUDIENCE}
[widget]
allowed_origins = ["https://app.example.com", "http://localhost:3000"]
session_lifetime = "20m"

[[widget.suggest]]
path_prefix = "/billing/"
labels = ["billing", "invoices"]
"#
    );
    let c = load(&text).unwrap();
    assert_eq!(
        c.widget.allowed_origins,
        ["https://app.example.com", "http://localhost:3000"]
    );
    assert_eq!(c.widget.session_lifetime, Duration::from_secs(20 * 60));
    assert_eq!(c.widget.suggest.len(), 1);
    assert_eq!(c.widget.suggest[0].path_prefix, "/billing");
    assert_eq!(c.widget.suggest[0].labels.len(), 2);
}

#[test]
fn widget_origins_must_be_exact() {
    for bad in [
        "*",
        "https://*.example.com",
        "https://app.example.com/help",
        "http://app.example.com",
        "https://APP.example.com",
        "https://app.example.com:443",
        "'self'",
    ] {
        let text = format!("{AUDIENCE}\n[widget]\nallowed_origins = [{bad:?}]\n");
        let p = problem(&text);
        assert_eq!(p.key, "widget.allowed_origins[0]", "{bad}: {p:?}");
    }
    let text = format!(
        "{AUDIENCE}\n[widget]\nallowed_origins = [\"https://a.example.com\"]\n\
         [[widget.suggest]]\npath_prefix = \"billing\"\nlabels = [\"x\"]\n"
    );
    assert_eq!(problem(&text).key, "widget.suggest[0].path_prefix");
    let text = format!("{AUDIENCE}\n[widget]\nsession_lifetime = \"13h\"\n");
    assert_eq!(problem(&text).key, "widget.session_lifetime");
}

#[test]
fn widget_origins_from_the_environment() {
    let c = load_env(
        AUDIENCE,
        &[(
            "KBGATE_WIDGET_ALLOWED_ORIGINS",
            "https://app.example.com,https://admin.example.com",
        )],
    )
    .unwrap();
    assert_eq!(
        c.widget.allowed_origins,
        ["https://app.example.com", "https://admin.example.com"]
    );
}

#[test]
fn a_public_url_with_a_path_prefix_is_served_under_it() {
    for (written, url, prefix) in [
        (
            "https://app.example.com/kb",
            "https://app.example.com/kb",
            "/kb",
        ),
        (
            "https://app.example.com/kb/",
            "https://app.example.com/kb",
            "/kb",
        ),
        (
            "https://app.example.com/a/b",
            "https://app.example.com/a/b",
            "/a/b",
        ),
        (
            "https://app.example.com/a/b/",
            "https://app.example.com/a/b",
            "/a/b",
        ),
        ("https://kb.example.com/", "https://kb.example.com/", ""),
        ("https://kb.example.com", "https://kb.example.com/", ""),
    ] {
        let c = load(&format!("[portal]\npublic_url = \"{written}\"\n")).unwrap();
        assert_eq!(c.portal.public_url.as_str(), url, "{written}");
        assert_eq!(c.portal.path_prefix(), prefix, "{written}");
    }
}

#[test]
fn a_public_url_with_a_query_fragment_or_odd_prefix_is_refused_with_the_reason() {
    for bad in [
        "https://app.example.com/kb?x=1",
        "https://app.example.com/kb#top",
        "https://app.example.com/?x=1",
    ] {
        let p = problem(&format!("[portal]\npublic_url = \"{bad}\"\n"));
        assert_eq!(p.key, "portal.public_url");
        assert!(
            p.message.contains("query, fragment"),
            "{bad}: {}",
            p.message
        );
    }
    for bad in [
        "https://app.example.com/k%20b",
        "https://app.example.com/a//b",
        "https://app.example.com/k;b",
    ] {
        let p = problem(&format!("[portal]\npublic_url = \"{bad}\"\n"));
        assert_eq!(p.key, "portal.public_url");
        assert!(p.message.contains("plain segments"), "{bad}: {}", p.message);
    }
}
