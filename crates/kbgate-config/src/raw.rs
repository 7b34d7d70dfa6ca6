//! The file as written (every value with its origin), and the environment overrides.

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::error::{Origin, Problem};

/// A value with where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Val<T> {
    pub value: T,
    pub origin: Origin,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Val<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<T>::deserialize(d)?;
        let span = s.span();
        Ok(Val {
            value: s.into_inner(),
            origin: Origin::Span(span),
        })
    }
}

type Str = Option<Val<String>>;
pub(crate) type List = Option<Val<Vec<Val<String>>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub confluence: Option<Val<RawConfluence>>,
    pub store: Option<RawStore>,
    pub sync: Option<RawSync>,
    pub portal: Option<RawPortal>,
    pub embed: Option<Val<RawEmbed>>,
    #[serde(default)]
    pub audience: Vec<Val<RawAudience>>,
    pub deny: Option<RawDeny>,
    pub metrics: Option<RawMetrics>,
    #[serde(default)]
    pub oidc: Vec<Val<RawOidc>>,
    pub admin: Option<RawAdmin>,
    pub widget: Option<RawWidget>,
    pub insights: Option<RawInsights>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInsights {
    pub retention_days: Option<Val<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    pub listen: Str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfluence {
    pub base_url: Str,
    pub auth: Str,
    pub email: Str,
    pub api_token_env: Str,
    pub api_token_file: Str,
    pub client_id: Str,
    pub client_secret_env: Str,
    pub client_secret_file: Str,
    pub cloud_id: Str,
    pub gateway_url: Str,
    pub oauth_token_url: Str,
    pub admin_api_key_env: Str,
    pub admin_api_key_file: Str,
    pub allow_undocumented_apis: Option<Val<bool>>,
    pub max_attachment_bytes: Option<Val<u64>>,
    pub default_access_group: Str,
    pub licensed_users: Option<Val<u64>>,
    pub requests_per_second: Option<Val<u64>>,
    pub invite_wait: Str,
    pub invite_retry_after: Str,
    pub jira_url: Str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    pub url: Str,
    pub data_dir: Str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSync {
    pub interval: Str,
    pub overlap: Str,
    pub full_every: Str,
    pub lease_ttl: Str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPortal {
    pub listen: Str,
    pub public_url: Str,
    pub frame_ancestors: List,
    pub session_idle: Str,
    pub session_absolute: Str,
    pub smtp_url: Str,
    pub outbox_dir: Str,
    pub from: Str,
    pub magic_link_ttl: Str,
    pub view_cache_mb: Option<Val<u64>>,
    pub trusted_proxies: List,
    pub header_read_timeout: Str,
    pub idle_timeout: Str,
    pub max_connections: Option<Val<u64>>,
    pub max_connections_per_client: Option<Val<u64>>,
    pub show_staff_names: Option<Val<bool>>,
    pub record_emails: Option<Val<bool>>,
    /// `false` switches the magic-link form off.
    pub magic_link: Option<Val<bool>>,
    /// `[portal.brand]`.
    pub brand: Option<crate::brand::RawBrand>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEmbed {
    pub issuer: Str,
    pub audience: Str,
    pub algorithm: Str,
    pub secret_env: Str,
    pub secret_file: Str,
    pub public_key_file: Str,
    pub jwks_file: Str,
    pub jwks_url: Str,
    pub api_key_env: Str,
    pub api_key_file: Str,
    pub max_token_lifetime: Str,
    pub leeway: Str,
    pub login_url: Str,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudience {
    pub name: Val<String>,
    pub domains: Val<Vec<Val<String>>>,
    #[serde(default)]
    pub include_subdomains: bool,
    pub spaces: Val<Vec<Val<String>>>,
    #[serde(default)]
    pub labels: Vec<Val<String>>,
    /// `"2027-06-30"` or a bare TOML date `2027-06-30`.
    pub expires: Option<Val<toml::Value>>,
    pub delivery: Str,
}

/// One `[[oidc]]` provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOidc {
    pub name: Val<String>,
    pub display_name: Str,
    pub issuer: Val<String>,
    pub client_id: Val<String>,
    pub client_secret_env: Str,
    pub client_secret_file: Str,
    pub scopes: List,
    pub domains: Val<Vec<Val<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub emails: List,
    pub domains: List,
    pub session_minutes: Option<Val<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDeny {
    pub domains: List,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWidget {
    pub allowed_origins: List,
    pub session_lifetime: Str,
    #[serde(default)]
    pub suggest: Vec<Val<RawSuggest>>,
}

/// One `[[widget.suggest]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSuggest {
    pub path_prefix: Val<String>,
    pub labels: Val<Vec<Val<String>>>,
}

/// Conversion of an environment variable's text into a raw value.
trait FromEnv: Sized {
    fn from_env(text: &str, var: &str) -> Result<Self, String>;
}

impl FromEnv for String {
    fn from_env(text: &str, _: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
}

impl FromEnv for bool {
    fn from_env(text: &str, _: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err("expected true or false".to_owned()),
        }
    }
}

impl FromEnv for u64 {
    fn from_env(text: &str, _: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| "expected a non-negative integer".to_owned())
    }
}

/// Lists are comma-separated: `KBGATE_DENY_DOMAINS=gmail.com,yahoo.com`.
impl FromEnv for Vec<Val<String>> {
    fn from_env(text: &str, var: &str) -> Result<Self, String> {
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Val {
                value: s.to_owned(),
                origin: Origin::Env(var.to_owned()),
            })
            .collect())
    }
}

/// Applies `KBGATE_<SECTION>_<KEY>` overrides. Empty variables are ignored. Within a group of
/// mutually exclusive keys (e.g. `api_token_env` / `api_token_file`), an override of one
/// member removes the others that came from the file.
pub(crate) fn apply_env(
    raw: &mut RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    let mut o = Overrider { env, problems };
    macro_rules! section {
        ($field:expr, $name:literal, [$($key:ident),* $(,)?]) => {{
            let mut present = $field.is_some();
            let mut sec = $field.take().unwrap_or_default();
            $( present |= o.set(&mut sec.$key, $name, stringify!($key)); )*
            if present { $field = Some(sec); }
        }};
    }
    {
        // Sections wrapped in `Val` keep their span; one created from the environment has none.
        let mut present = raw.confluence.is_some();
        let (mut sec, origin) = match raw.confluence.take() {
            Some(v) => (v.value, v.origin),
            None => (
                RawConfluence::default(),
                Origin::Env("KBGATE_CONFLUENCE_*".into()),
            ),
        };
        for (field, key) in [
            (&mut sec.base_url, "base_url"),
            (&mut sec.auth, "auth"),
            (&mut sec.email, "email"),
            (&mut sec.api_token_env, "api_token_env"),
            (&mut sec.api_token_file, "api_token_file"),
            (&mut sec.client_id, "client_id"),
            (&mut sec.client_secret_env, "client_secret_env"),
            (&mut sec.client_secret_file, "client_secret_file"),
            (&mut sec.cloud_id, "cloud_id"),
            (&mut sec.gateway_url, "gateway_url"),
            (&mut sec.oauth_token_url, "oauth_token_url"),
            (&mut sec.admin_api_key_env, "admin_api_key_env"),
            (&mut sec.admin_api_key_file, "admin_api_key_file"),
            (&mut sec.default_access_group, "default_access_group"),
            (&mut sec.invite_wait, "invite_wait"),
            (&mut sec.invite_retry_after, "invite_retry_after"),
            (&mut sec.jira_url, "jira_url"),
        ] {
            present |= o.set(field, "confluence", key);
        }
        present |= o.set(
            &mut sec.allow_undocumented_apis,
            "confluence",
            "allow_undocumented_apis",
        );
        present |= o.set(
            &mut sec.max_attachment_bytes,
            "confluence",
            "max_attachment_bytes",
        );
        present |= o.set(&mut sec.licensed_users, "confluence", "licensed_users");
        present |= o.set(
            &mut sec.requests_per_second,
            "confluence",
            "requests_per_second",
        );
        exclusive(&mut [&mut sec.api_token_env, &mut sec.api_token_file]);
        exclusive(&mut [&mut sec.client_secret_env, &mut sec.client_secret_file]);
        exclusive(&mut [&mut sec.admin_api_key_env, &mut sec.admin_api_key_file]);
        if present {
            raw.confluence = Some(Val { value: sec, origin });
        }
    }
    section!(raw.store, "store", [url, data_dir]);
    section!(raw.sync, "sync", [interval, overlap, full_every, lease_ttl]);
    section!(raw.metrics, "metrics", [listen]);
    section!(
        raw.portal,
        "portal",
        [
            listen,
            public_url,
            frame_ancestors,
            session_idle,
            session_absolute,
            smtp_url,
            outbox_dir,
            from,
            magic_link_ttl,
            view_cache_mb,
            trusted_proxies,
            header_read_timeout,
            idle_timeout,
            max_connections,
            max_connections_per_client,
            show_staff_names,
            record_emails,
            magic_link
        ]
    );
    section!(raw.widget, "widget", [allowed_origins, session_lifetime]);
    if let Some(p) = raw.portal.as_mut() {
        exclusive(&mut [&mut p.smtp_url, &mut p.outbox_dir]);
    }
    {
        let mut present = raw.embed.is_some();
        let (mut sec, origin) = match raw.embed.take() {
            Some(v) => (v.value, v.origin),
            None => (RawEmbed::default(), Origin::Env("KBGATE_EMBED_*".into())),
        };
        for (field, key) in [
            (&mut sec.issuer, "issuer"),
            (&mut sec.audience, "audience"),
            (&mut sec.algorithm, "algorithm"),
            (&mut sec.secret_env, "secret_env"),
            (&mut sec.secret_file, "secret_file"),
            (&mut sec.public_key_file, "public_key_file"),
            (&mut sec.jwks_file, "jwks_file"),
            (&mut sec.jwks_url, "jwks_url"),
            (&mut sec.api_key_env, "api_key_env"),
            (&mut sec.api_key_file, "api_key_file"),
            (&mut sec.max_token_lifetime, "max_token_lifetime"),
            (&mut sec.leeway, "leeway"),
            (&mut sec.login_url, "login_url"),
        ] {
            present |= o.set(field, "embed", key);
        }
        exclusive(&mut [
            &mut sec.secret_env,
            &mut sec.secret_file,
            &mut sec.public_key_file,
            &mut sec.jwks_file,
            &mut sec.jwks_url,
        ]);
        exclusive(&mut [&mut sec.api_key_env, &mut sec.api_key_file]);
        if present {
            raw.embed = Some(Val { value: sec, origin });
        }
    }
    section!(raw.deny, "deny", [domains]);
    section!(raw.admin, "admin", [emails, domains, session_minutes]);
    section!(raw.insights, "insights", [retention_days]);
}

/// The environment variable for a key: `KBGATE_` + section + `_` + key, upper-cased.
pub(crate) fn env_var_name(section: &str, key: &str) -> String {
    format!("KBGATE_{section}_{key}").to_ascii_uppercase()
}

struct Overrider<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    problems: &'a mut Vec<Problem>,
}

impl Overrider<'_> {
    /// Sets `field` from the environment if its variable is set and non-empty; returns whether
    /// the field now has a value.
    fn set<T: FromEnv>(&mut self, field: &mut Option<Val<T>>, section: &str, key: &str) -> bool {
        let var = env_var_name(section, key);
        match (self.env)(&var) {
            Some(text) if !text.trim().is_empty() => match T::from_env(&text, &var) {
                Ok(value) => {
                    *field = Some(Val {
                        value,
                        origin: Origin::Env(var),
                    });
                }
                Err(message) => self.problems.push(Problem {
                    location: crate::error::Location::Env { var },
                    key: format!("{section}.{key}"),
                    message,
                }),
            },
            _ => {}
        }
        field.is_some()
    }
}

/// If any member of the group came from the environment, drop the members from the file.
fn exclusive(group: &mut [&mut Option<Val<String>>]) {
    let from_env = |f: &Option<Val<String>>| {
        matches!(
            f,
            Some(Val {
                origin: Origin::Env(_),
                ..
            })
        )
    };
    if group.iter().any(|f| from_env(f)) {
        for f in group.iter_mut() {
            if !from_env(f) {
                **f = None;
            }
        }
    }
}
