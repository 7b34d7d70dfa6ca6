//! `kbgate.toml`: loading, environment overrides, secrets and validation.
//!
//! - [`Config::load`] reads the file; [`Config::from_str_with_env`] takes the text and an
//!   environment lookup (tests use it instead of mutating the process environment).
//! - **Environment overrides**: every scalar key of `[confluence]`, `[store]`, `[sync]`,
//!   `[portal]`, `[embed]`, `[deny]`, `[admin]`, `[insights]` and `[widget]` (not its `[[widget.suggest]]` entries) can be set with `KBGATE_<SECTION>_<KEY>` in upper case
//!   (`KBGATE_CONFLUENCE_BASE_URL`, `KBGATE_STORE_URL`, `KBGATE_PORTAL_LISTEN`,
//!   `KBGATE_EMBED_SECRET_ENV`, `KBGATE_DENY_DOMAINS`). The variable wins over the file; an empty
//!   variable is ignored. Booleans accept `true/false/1/0/yes/no`; lists are comma-separated.
//!   Setting one key of a mutually exclusive group (`api_token_env`/`api_token_file`,
//!   `secret_env`/`secret_file`/`public_key_file`/`jwks_file`, `api_key_env`/`api_key_file`,
//!   `smtp_url`/`outbox_dir`) from the environment drops the group's other keys from the file.
//!   `[[audience]]` entries are not settable from the environment (they are structured data; keep
//!   them in the file).
//! - **Secrets** are never in the file itself: keys name an environment variable (`…_env`) or a
//!   file (`…_file`), read only when needed by the `resolve_*` methods, which return a
//!   [`SecretString`] (the workspace's one secret type: redacted Debug, no Display). URLs
//!   that may carry passwords ([`SensitiveUrl`]) print with `***`.
//! - **Defaults and limits** are stated once, here (the `DEFAULT_*` / `MIN_*` / `MAX_*`
//!   constants and the builder below), and documented once, in `kbgate.example.toml`. A value
//!   out of range is an error naming the key and the allowed range, never a silent clamp:
//!   whoever uses these types (server, binary) takes the values as they are.
//! - **Durations** are parsed by `humantime`: `30s`, `15m`, `1h30m`, `1h 30m`, `7d`, `500ms`,
//!   `2weeks`; `0` is zero.
//! - **Errors** name the file, line, column and key (or the environment variable), e.g.
//!   `kbgate.toml:14:13: audience[1].domains[0]: invalid domain "acme.com.": …`. Unknown keys
//!   are errors. All semantic problems are reported together.
//! - Relative paths are relative to the working directory (like the SQLite URL).

mod brand;
mod error;
mod raw;
mod secret;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use kbgate_policy::{
    AdminPolicy, Audience, AudienceName, Delivery, Domain, Email, Label, Policy, PolicyError,
    SpaceKey,
};
use url::Url;

pub use brand::{
    AA_CONTRAST, BrandConfig, BrandImage, CssColor, DARK_BACKGROUNDS, DEFAULT_SITE_NAME,
    FooterLink, LIGHT_BACKGROUNDS,
};
pub use error::{ConfigError, Location, Problem};
pub use secrecy::{ExposeSecret, SecretString};
pub use secret::{SecretError, SecretSource, SensitiveUrl};

use error::{Locator, Origin};
use raw::{RawAudience, RawConfig, Val};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file the configuration came from (for messages).
    pub path: PathBuf,
    /// `None` when the file has no `[confluence]` section (e.g. only `kbgate check` is used).
    pub confluence: Option<ConfluenceConfig>,
    pub store: StoreConfig,
    pub sync: SyncConfig,
    pub portal: PortalConfig,
    /// `[metrics]`: the Prometheus endpoint (off unless `listen` is set).
    pub metrics: MetricsConfig,
    /// `None` when embed hand-over is not configured (then it is disabled).
    pub embed: Option<EmbedConfig>,
    /// The domain policy from `[[audience]]` and `[deny]`.
    pub policy: Policy,
    /// `[[oidc]]` providers, in file order; each email domain is bound to at most one.
    pub oidc: Vec<OidcProviderConfig>,
    /// `[admin]`: who may use the admin console (empty: nobody, the console is off).
    pub admin: AdminConfig,
    /// `[widget]`: the in-app help widget (off while `allowed_origins` is empty).
    pub widget: WidgetConfig,
    /// `[insights]`: how long reader events (page views, searches) are kept.
    pub insights: InsightsConfig,
}

/// `[insights]`: the per-domain reader insights of the admin console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsightsConfig {
    /// Page views and search events older than this many days are deleted (while serving,
    /// hourly). "Was this helpful?" votes are kept: readers wrote them for the admin.
    pub retention_days: u64,
}

/// Default of `[insights] retention_days`: 13 months (395 days), enough to compare a month
/// with the same month a year before, and the longest audience-measurement retention the
/// French CNIL accepts without consent (its 2020 guidelines on cookies and trackers), a
/// common yardstick for analytics data in the EU.
pub const DEFAULT_INSIGHTS_RETENTION_DAYS: u64 = 395;
/// Upper limit of `[insights] retention_days` (10 years).
pub const MAX_INSIGHTS_RETENTION_DAYS: u64 = 3650;

impl Default for InsightsConfig {
    fn default() -> InsightsConfig {
        InsightsConfig {
            retention_days: DEFAULT_INSIGHTS_RETENTION_DAYS,
        }
    }
}

impl InsightsConfig {
    /// The retention as a duration.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_days.saturating_mul(24 * 3600))
    }
}

/// `[admin]`: the admin console's people and its session lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Admin emails and exact admin domains.
    pub admins: AdminPolicy,
    /// Lifetime of an admin session (`session_minutes`): short, since it can revoke
    /// sessions and browse as any customer.
    pub session: Duration,
}

/// Default of `[admin] session_minutes`.
pub const DEFAULT_ADMIN_SESSION_MINUTES: u64 = 30;
/// Upper limit of `[admin] session_minutes` (8 hours).
pub const MAX_ADMIN_SESSION_MINUTES: u64 = 8 * 60;

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            admins: AdminPolicy::default(),
            session: Duration::from_secs(DEFAULT_ADMIN_SESSION_MINUTES * 60),
        }
    }
}

/// `[widget]`: the help widget a host app embeds with `<script src=".../widget.js">`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetConfig {
    /// Exact origins (`https://app.example.com`, no path, no wildcard) whose pages may show
    /// the widget: its frame's `frame-ancestors`, and the only senders of sign-in codes the
    /// frame accepts. Empty (the default): the widget is off and its routes answer 404.
    pub allowed_origins: Vec<String>,
    /// Absolute lifetime of a widget sign-in (the token the frame keeps in memory); the
    /// portal's `session_idle` applies too. Default 1 hour, between 1 minute and
    /// `[portal] session_absolute`.
    pub session_lifetime: Duration,
    /// Suggested articles by the host page's path (`[[widget.suggest]]`), first match wins.
    pub suggest: Vec<WidgetSuggest>,
}

/// One `[[widget.suggest]]`: on host pages whose path starts with `path_prefix`, the widget
/// suggests the readable pages having any of `labels`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetSuggest {
    /// A path on the host app, starting with `/`; matched by whole segments (`/billing`
    /// matches `/billing` and `/billing/invoices`, not `/billingx`).
    pub path_prefix: String,
    /// Confluence labels; at least one.
    pub labels: Vec<Label>,
}

/// Default of `[widget] session_lifetime`.
pub const DEFAULT_WIDGET_SESSION_LIFETIME: Duration = Duration::from_secs(3600);

impl Default for WidgetConfig {
    fn default() -> WidgetConfig {
        WidgetConfig {
            allowed_origins: Vec::new(),
            session_lifetime: DEFAULT_WIDGET_SESSION_LIFETIME,
            suggest: Vec::new(),
        }
    }
}

/// Checks a `[widget] allowed_origins` entry: an exact origin as browsers serialise it
/// (`event.origin` is compared to it byte for byte), `https`, or `http` on localhost only.
pub fn check_widget_origin(s: &str) -> Result<String, String> {
    let bad =
        || format!("{s:?} is not an origin; expected https://HOST[:PORT] (no path, no wildcard)");
    if s.contains('*') || s.contains('\'') {
        return Err(bad());
    }
    let url = Url::parse(s).map_err(|_| bad())?;
    let origin = url.origin().ascii_serialization();
    let local = matches!(
        url.host_str(),
        Some("localhost") | Some("127.0.0.1") | Some("[::1]")
    );
    if url.scheme() != "https" && !(url.scheme() == "http" && local) {
        return Err(format!("{s:?}: only https origins (http for localhost)"));
    }
    if origin != s.trim_end_matches('/') || url.path() != "/" || url.query().is_some() {
        return Err(format!("{s:?}: write the origin exactly, as {origin:?}"));
    }
    Ok(origin)
}

/// A `[[widget.suggest]] path_prefix`: starts with `/`, no query or fragment.
fn parse_path_prefix(s: &str) -> Result<String, &'static str> {
    if !s.starts_with('/') || s.contains(['?', '#']) || s.chars().any(char::is_control) {
        return Err("expected a path starting with /, without ? or #");
    }
    Ok(s.trim_end_matches('/').to_owned())
}

/// `[confluence]`: the site and the service account.
#[derive(Debug, Clone)]
pub struct ConfluenceConfig {
    /// `https://SITE.atlassian.net` (plain `http` only for loopback hosts, e.g. the simulator).
    /// Always the site, also when calls go through the gateway: links point here.
    pub base_url: Url,
    /// How kbgate proves who it is (`auth`, with `email` + `api_token_*`, or `client_id` +
    /// `client_secret_*`).
    pub auth: ConfluenceAuth,
    /// Org API key for the admin APIs (native mode), if configured.
    pub admin_api_key: Option<SecretSource>,
    /// Opt-in for the undocumented `cgraphql` guest operations. Default false.
    pub allow_undocumented_apis: bool,
    /// Attachments larger than this are not mirrored. Default 50 MiB.
    pub max_attachment_bytes: u64,
    /// The site's default Confluence product-access group: every licensed user is in it and
    /// invited people land in it (native mode finds their account ids there, and counts
    /// licensed users by it). Default [`DEFAULT_ACCESS_GROUP`].
    pub default_access_group: String,
    /// The number of paid (licensed) users, for the allowance of 5 guests per paid user.
    /// `None`: native mode counts the members of `default_access_group` when it needs to.
    pub licensed_users: Option<u64>,
    /// Client-side throttle: at most this many Confluence calls per second, so a bulk job
    /// never provokes a storm of 429s. Default 10; 0 turns the throttle off (the client still
    /// honours `Retry-After`).
    pub requests_per_second: u32,
    /// Native mode: how long `apply` waits for the invitations it sent to complete before it
    /// adds the invitees to their group in the same run (zero: do not wait). Default
    /// [`DEFAULT_INVITE_WAIT`], at most [`MAX_INVITE_WAIT`].
    pub invite_wait: Duration,
    /// Native mode: an invitation whose outcome is unknown (a run stopped mid-call) is sent
    /// again after this long if the site still shows no access. Default
    /// [`DEFAULT_INVITE_RETRY_AFTER`], between [`MIN_INVITE_RETRY_AFTER`] and 7 days.
    pub invite_retry_after: Duration,
    /// The Jira site that Jira issue macros link to (`{jira_url}/browse/KEY`). Default: the
    /// site itself when `base_url` is `https://X.atlassian.net` (Jira Cloud and Confluence
    /// Cloud share the site's host); otherwise none. `jira_url = ""` turns links off: keys
    /// then show as plain text, never as a dead link.
    pub jira_url: Option<Url>,
}

/// The Jira site of a Confluence site: the same origin for `https://X.atlassian.net`.
pub fn default_jira_url(base_url: &Url) -> Option<Url> {
    let host = base_url.host_str()?;
    (base_url.scheme() == "https" && host.ends_with(".atlassian.net"))
        .then(|| Url::parse(&format!("https://{host}")).ok())
        .flatten()
}

/// Default of `[confluence] invite_wait`.
pub const DEFAULT_INVITE_WAIT: Duration = Duration::from_secs(120);
/// Upper bound of `[confluence] invite_wait` (a run should not hang for hours).
pub const MAX_INVITE_WAIT: Duration = Duration::from_secs(3600);
/// Default of `[confluence] invite_retry_after`.
pub const DEFAULT_INVITE_RETRY_AFTER: Duration = Duration::from_secs(10 * 60);
/// Lower bound of `[confluence] invite_retry_after`: an invitation Confluence did receive
/// needs time to complete before its absence means it was lost.
pub const MIN_INVITE_RETRY_AFTER: Duration = Duration::from_secs(60);

/// `[confluence] auth`: the three ways an integration authenticates to Confluence Cloud today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfluenceAuth {
    /// `auth = "api_token"` (default): a classic API token, Basic `email:token` on the site URL.
    ApiToken { email: Email, token: SecretSource },
    /// `auth = "scoped_token"`: a scoped API token (the only kind a service account has),
    /// Basic `email:token` through the gateway (scoped tokens get 401 on the site URL).
    ScopedToken {
        email: Email,
        token: SecretSource,
        gateway: Gateway,
    },
    /// `auth = "oauth"`: a service account's OAuth 2.0 client credentials, exchanged at
    /// `oauth_token_url` for a Bearer token used through the gateway.
    OAuth {
        client_id: String,
        client_secret: SecretSource,
        token_url: Url,
        gateway: Gateway,
    },
}

/// Atlassian's API gateway for one site: `{url}/ex/confluence/{cloud_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// `gateway_url`, default [`DEFAULT_GATEWAY_URL`] (tests point it at the simulator).
    pub url: Url,
    /// `cloud_id`; `None`: read from `https://SITE/_edge/tenant_info` at start.
    pub cloud_id: Option<String>,
}

/// Default of `[confluence] gateway_url`.
pub const DEFAULT_GATEWAY_URL: &str = "https://api.atlassian.com";
/// Default of `[confluence] oauth_token_url`.
pub const DEFAULT_OAUTH_TOKEN_URL: &str = "https://auth.atlassian.com/oauth/token";

impl ConfluenceAuth {
    /// The `auth` value that selects this method.
    pub fn name(&self) -> &'static str {
        match self {
            ConfluenceAuth::ApiToken { .. } => "api_token",
            ConfluenceAuth::ScopedToken { .. } => "scoped_token",
            ConfluenceAuth::OAuth { .. } => "oauth",
        }
    }

    /// The gateway, for the methods that go through it.
    pub fn gateway(&self) -> Option<&Gateway> {
        match self {
            ConfluenceAuth::ApiToken { .. } => None,
            ConfluenceAuth::ScopedToken { gateway, .. } | ConfluenceAuth::OAuth { gateway, .. } => {
                Some(gateway)
            }
        }
    }
}

/// The default of `[confluence] requests_per_second`.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 10;

impl ConfluenceConfig {
    /// The service account's email (Basic auth user) of the token methods.
    pub fn email(&self) -> Option<&Email> {
        match &self.auth {
            ConfluenceAuth::ApiToken { email, .. } | ConfluenceAuth::ScopedToken { email, .. } => {
                Some(email)
            }
            ConfluenceAuth::OAuth { .. } => None,
        }
    }

    /// Where the API token comes from, for the token methods.
    pub fn api_token(&self) -> Option<&SecretSource> {
        match &self.auth {
            ConfluenceAuth::ApiToken { token, .. } | ConfluenceAuth::ScopedToken { token, .. } => {
                Some(token)
            }
            ConfluenceAuth::OAuth { .. } => None,
        }
    }

    /// Reads the API token (from its env var or file); for `auth = "oauth"`, the client secret.
    pub fn resolve_api_token(&self) -> Result<SecretString, SecretError> {
        match &self.auth {
            ConfluenceAuth::ApiToken { token, .. } | ConfluenceAuth::ScopedToken { token, .. } => {
                token.resolve("confluence API token")
            }
            ConfluenceAuth::OAuth { client_secret, .. } => {
                client_secret.resolve("confluence OAuth client secret")
            }
        }
    }

    /// Reads the admin API key, or `None` when none is configured.
    pub fn resolve_admin_api_key(&self) -> Result<Option<SecretString>, SecretError> {
        self.admin_api_key
            .as_ref()
            .map(|s| s.resolve("confluence admin API key"))
            .transpose()
    }
}

/// Which database a store URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreBackend {
    Sqlite,
    Postgres,
}

/// `[store]`.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://kbgate.db` (default) or `postgres://user@host/db`.
    pub url: SensitiveUrl,
    pub backend: StoreBackend,
    /// Local files: attachment files with SQLite (PostgreSQL keeps them in the database, so
    /// every instance reads them), the default mail outbox. Default `./kbgate-data`.
    pub data_dir: PathBuf,
}

/// `[sync]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// Background sync interval while serving; zero disables it. Default 15 minutes.
    pub interval: Duration,
    /// How far before the last watermark an incremental sync looks again (clock skew). Default
    /// 5 minutes, at most 24 hours.
    pub overlap: Duration,
    /// While serving, a background round is a full pass when a space's last full sync is older
    /// than this: deletions that leave no trace in CQL (an attachment removed from a page) are
    /// swept. Zero: never (only `kbgate sync --full`). Default 24 hours.
    pub full_every: Duration,
    /// How long a space's sync lease lasts without renewal: after a holder crashed (kill -9,
    /// a lost machine), another process syncs the space after at most this long. A sync
    /// renews it every third of it at its natural steps. Default 5 minutes, between 5 seconds
    /// and 1 hour.
    pub lease_ttl: Duration,
}

/// `[metrics]`. `/metrics` is served on its own listener, never on the portal's, so that a
/// scrape endpoint is not exposed to customers by the reverse proxy in front of the portal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where `/metrics` (Prometheus text format) is served; `None` (the default): not at all.
    pub listen: Option<SocketAddr>,
}

/// How magic-link mails are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MagicLinkDelivery {
    /// `smtp://`, `smtps://` (lettre transport URL, may carry credentials).
    Smtp(SensitiveUrl),
    /// Written as files to a directory (dev and demo). Default `<data_dir>/outbox`.
    Outbox(PathBuf),
}

/// `[portal]`. The server takes it as it is (values already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalConfig {
    /// Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The URL customers use. Default `http://<listen>` (with `0.0.0.0` shown as `127.0.0.1`).
    /// May carry a path prefix (`https://app.example.com/kb`, stored without a trailing
    /// slash): the portal is then served under it ([`PortalConfig::path_prefix`]).
    pub public_url: Url,
    /// CSP `frame-ancestors` sources (`'self'` or `https://host[:port]`, host may start with `*.`).
    /// Non-empty switches the session cookie to `SameSite=None; Secure`.
    pub frame_ancestors: Vec<String>,
    /// Idle session expiry. Default 2 hours, at least 1 minute, at most `session_absolute`.
    pub session_idle: Duration,
    /// Absolute session expiry. Default 12 hours, at least 1 minute.
    pub session_absolute: Duration,
    pub magic_link: MagicLinkDelivery,
    /// Sender of magic-link mails (`kb@example.com` or `Name <kb@example.com>`). Required with SMTP.
    pub from: Option<String>,
    /// Validity of a magic link (and of an access request's confirmation link). Default 15
    /// minutes, between 1 and 15 minutes.
    pub magic_link_ttl: Duration,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client,
    /// for the per-client rate limits of sign-in and access requests. Default: none (the
    /// peer address is the client).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Memory for resolved page views kept between sync commits, in MiB. Default 32; 0 turns
    /// the cache off; at most 4096.
    pub view_cache_mb: u64,
    /// How long a client has to send a request's complete header, counted from the
    /// connection's first byte (or from the accept, for a new connection): a client that
    /// trickles a header, or connects and says nothing, is disconnected after it.
    /// Default 10 s, between 1 s and 5 min.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may sit idle (no request, nothing being sent) before
    /// it is closed. Default 60 s, between 1 s and 1 h.
    pub idle_timeout: Duration,
    /// Open connections the portal holds at most; further ones are refused at once (503) so
    /// the process never runs out of file descriptors. Default 512, between 1 and 1,000,000.
    pub max_connections: u64,
    /// Open connections one client holds at most (keyed like the per-client rate limits: the
    /// IPv4 address or the IPv6 /64); further ones are refused at once (429). Connections
    /// from a trusted proxy only count against `max_connections`: per-client limits belong
    /// to the proxy there. Default 64, between 1 and `max_connections`.
    pub max_connections_per_client: u64,
    /// Whether mentions of people (`@name`) show the person's display name. Default false:
    /// mentions show "a team member", as staff names are personal data a customer portal
    /// need not publish.
    pub show_staff_names: bool,
    /// Keep the reader's email with "Was this helpful?" votes and search events. Default
    /// `false`: only the email's domain is kept (one vote per person still holds: votes
    /// are keyed by a hash of the email).
    pub record_emails: bool,
    /// `magic_link`: whether people may ask for a sign-in link by mail. Default `true`; off,
    /// sign-in is by hand-over from the host app only (`[embed] login_url` leads there).
    pub magic_links: bool,
    /// `[portal.brand]`: reloaded with the rest of the file.
    pub brand: BrandConfig,
}

/// Default of `[portal] header_read_timeout`.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `[portal] idle_timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The shortest `[portal] header_read_timeout` and `idle_timeout`.
pub const MIN_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest `[portal] header_read_timeout`: a header that takes longer is an attack.
pub const MAX_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The longest `[portal] idle_timeout`.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default of `[portal] max_connections`: well below the common default limit of 1024 open
/// files per process, leaving room for the store, attachments and mail.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 512;
/// The largest `[portal] max_connections`.
pub const MAX_MAX_CONNECTIONS: u64 = 1_000_000;
/// Default of `[portal] max_connections_per_client`: a browser opens about 6 connections per
/// site, so this leaves room for a handful of people behind one NAT address.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: u64 = 64;

/// The default of `[portal] view_cache_mb`.
pub const DEFAULT_VIEW_CACHE_MB: u64 = 32;
/// The largest `[portal] view_cache_mb`.
pub const MAX_VIEW_CACHE_MB: u64 = 4096;

/// Default of `[portal] listen`.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// Default of `[sync] interval`.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Default of `[sync] overlap`.
pub const DEFAULT_SYNC_OVERLAP: Duration = Duration::from_secs(5 * 60);
/// The largest `[sync] overlap`.
pub const MAX_SYNC_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// Default of `[sync] lease_ttl`.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5 * 60);
/// The shortest `[sync] lease_ttl`: shorter, a sync step could outlast the lease.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(5);
/// The longest `[sync] lease_ttl`.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(3600);
/// Default of `[sync] full_every`.
pub const DEFAULT_FULL_EVERY: Duration = Duration::from_secs(24 * 3600);
/// Default of `[portal] session_idle`.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(2 * 3600);
/// Default of `[portal] session_absolute`.
pub const DEFAULT_SESSION_ABSOLUTE: Duration = Duration::from_secs(12 * 3600);
/// The shortest session lifetime (idle or absolute): anything shorter signs people out
/// between two clicks.
pub const MIN_SESSION: Duration = Duration::from_secs(60);
/// Default of `[portal] magic_link_ttl`.
pub const DEFAULT_MAGIC_LINK_TTL: Duration = Duration::from_secs(15 * 60);
/// The shortest `[portal] magic_link_ttl` (a mail takes a while to arrive).
pub const MIN_MAGIC_LINK_TTL: Duration = Duration::from_secs(60);
/// The longest `[portal] magic_link_ttl`: a link in a mailbox is a credential.
pub const MAX_MAGIC_LINK_TTL: Duration = Duration::from_secs(15 * 60);
/// Default of `[embed] max_token_lifetime`.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// The largest `[embed] max_token_lifetime`: hand-over tokens are meant to be used at once.
pub const MAX_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Default of `[embed] leeway`.
pub const DEFAULT_EMBED_LEEWAY: Duration = Duration::from_secs(30);
/// The largest `[embed] leeway`.
pub const MAX_EMBED_LEEWAY: Duration = Duration::from_secs(5 * 60);

impl PortalConfig {
    /// The path prefix the portal is served under: `""` at the root of its origin, else
    /// `/kb` (no trailing slash, whichever way `public_url` was written).
    pub fn path_prefix(&self) -> &str {
        self.public_url.path().trim_end_matches('/')
    }

    /// The portal with every key at its default (as if the file left them all out), serving
    /// at `public_url`: for programs and tests that build a portal without a file. Adjust
    /// the public fields afterwards; the loader's limits are not checked again.
    pub fn new(public_url: Url) -> PortalConfig {
        PortalConfig {
            listen: DEFAULT_LISTEN,
            public_url,
            frame_ancestors: Vec::new(),
            session_idle: DEFAULT_SESSION_IDLE,
            session_absolute: DEFAULT_SESSION_ABSOLUTE,
            magic_link: MagicLinkDelivery::Outbox(default_outbox_dir(None)),
            from: None,
            magic_link_ttl: DEFAULT_MAGIC_LINK_TTL,
            trusted_proxies: Vec::new(),
            view_cache_mb: DEFAULT_VIEW_CACHE_MB,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            show_staff_names: false,
            record_emails: false,
            magic_links: true,
            brand: BrandConfig::default(),
        }
    }
}

/// `<data_dir>/outbox`, with the default data directory when there is no `[store]`.
fn default_outbox_dir(store: Option<&StoreConfig>) -> PathBuf {
    store
        .map(|s| s.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
        .join("outbox")
}

/// Signing algorithm accepted for embed tokens. Exactly one; the key type follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedAlgorithm {
    HS256,
    EdDSA,
    ES256,
    RS256,
}

impl EmbedAlgorithm {
    /// The JOSE name (`HS256`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EmbedAlgorithm::HS256 => "HS256",
            EmbedAlgorithm::EdDSA => "EdDSA",
            EmbedAlgorithm::ES256 => "ES256",
            EmbedAlgorithm::RS256 => "RS256",
        }
    }
}

/// The verification key for embed tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedKey {
    /// HS256 shared secret (`secret_env` / `secret_file`).
    Secret(SecretSource),
    /// A PEM public key file (EdDSA, ES256, RS256).
    PublicKeyFile(PathBuf),
    /// A JWKS file (EdDSA, ES256, RS256).
    JwksFile(PathBuf),
    /// The host app's JWKS URL (EdDSA, ES256, RS256), fetched and cached by its
    /// `Cache-Control`, fetched again on an unknown `kid`: the host app rotates keys without
    /// touching kbgate. `https` (plain `http` only for loopback hosts).
    JwksUrl(Url),
}

/// `[embed]`: hand-over from the host application.
#[derive(Debug, Clone)]
pub struct EmbedConfig {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    pub algorithm: EmbedAlgorithm,
    /// Matches the algorithm: a secret for HS256, a public key or JWKS otherwise.
    pub key: EmbedKey,
    /// The host app's API key for `/api/v1/handover` and the JSON API; `None` disables both.
    pub api_key: Option<SecretSource>,
    /// Largest accepted `exp - iat`. Default 5 minutes, between 1 second and 5 minutes.
    pub max_token_lifetime: Duration,
    /// Clock-skew leeway for `iat`/`nbf`/`exp`. Default 30 seconds, at most 5 minutes.
    pub leeway: Duration,
    /// The host app's sign-in page: a person without a session is sent there (with
    /// `return_to`, the portal path to come back to) to be handed over again, instead of the
    /// magic-link form. `http(s)://`.
    pub login_url: Option<Url>,
}

impl EmbedConfig {
    /// Reads the HS256 shared secret; an error if the algorithm uses a public key instead.
    pub fn resolve_secret(&self) -> Result<SecretString, SecretError> {
        match &self.key {
            EmbedKey::Secret(s) => s.resolve("embed secret"),
            _ => Err(SecretError::NotConfigured {
                what: "embed secret",
                hint: "the embed algorithm uses a public key, not a shared secret",
            }),
        }
    }

    /// Reads the host app's API key, or `None` when none is configured.
    pub fn resolve_api_key(&self) -> Result<Option<SecretString>, SecretError> {
        self.api_key
            .as_ref()
            .map(|s| s.resolve("embed API key"))
            .transpose()
    }
}

/// `[[oidc]]`: an OpenID Provider that people of some email domains sign in with (home-realm
/// discovery: the sign-in page sends an address of a bound domain there instead of mailing a
/// magic link). Bound domains matter beyond routing: only an email of one of them is
/// accepted from this provider's ID tokens, so a tenant cannot vouch for a domain it does not
/// own (the nOAuth class of account takeover).
#[derive(Debug, Clone)]
pub struct OidcProviderConfig {
    /// Short identifier (`[a-z0-9-]`, 1–40 characters), named in logs and the audit log.
    pub name: String,
    /// What the sign-in page calls it ("Acme SSO"); default the name.
    pub display_name: Option<String>,
    /// Exact `iss` of its ID tokens; the discovery document is read from
    /// `{issuer}/.well-known/openid-configuration`. https (plain http only for loopback hosts).
    /// Kept as written (`https://accounts.google.com`, no `/` added): `iss` must equal it.
    pub issuer: String,
    pub client_id: String,
    /// `client_secret_env` / `client_secret_file`.
    pub client_secret: SecretSource,
    /// Requested scopes; default `openid email profile`; always includes `openid`.
    pub scopes: Vec<String>,
    /// Email domains routed to it, matched exactly (subdomains need their own entry).
    pub domains: Vec<Domain>,
}

impl OidcProviderConfig {
    /// Reads the client secret.
    pub fn resolve_client_secret(&self) -> Result<SecretString, SecretError> {
        self.client_secret.resolve("oidc client secret")
    }
}

/// Default of `[[oidc]] scopes`.
pub const DEFAULT_OIDC_SCOPES: [&str; 3] = ["openid", "email", "profile"];

const DEFAULT_STORE_URL: &str = "sqlite://kbgate.db";
const DEFAULT_DATA_DIR: &str = "./kbgate-data";
/// Default of `[confluence] max_attachment_bytes`.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 50 * 1024 * 1024;
/// Default of `[confluence] default_access_group`: Confluence Cloud's default product-access
/// group.
pub const DEFAULT_ACCESS_GROUP: &str = "confluence-users";
/// Longest group name Confluence accepts.
const MAX_GROUP_NAME_CHARS: usize = 255;

impl Config {
    /// Loads and validates a config file, with overrides from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_str_with_env(&text, path, &|k| std::env::var(k).ok())
    }

    /// Parses and validates config text; `path` is only used in messages; `env` looks up
    /// environment variables.
    pub fn from_str_with_env(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let loc = Locator {
            text,
            path: path.to_owned(),
        };
        let mut raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            problems: vec![syntax_problem(&loc, &e)],
        })?;
        let mut problems = Vec::new();
        raw::apply_env(&mut raw, env, &mut problems);
        let mut b = Builder {
            loc: &loc,
            problems,
        };
        let confluence = raw.confluence.and_then(|c| b.confluence(c));
        let store = b.store(raw.store.unwrap_or_default());
        let sync = b.sync(raw.sync.unwrap_or_default());
        let portal = b.portal(raw.portal.unwrap_or_default(), &store);
        let embed = raw.embed.and_then(|e| b.embed(e));
        let policy = b.policy(raw.audience, raw.deny.unwrap_or_default());
        let metrics = b.metrics(raw.metrics.unwrap_or_default());
        let oidc = b.oidc_providers(raw.oidc);
        let admin = b.admin(raw.admin.unwrap_or_default());
        let widget = b.widget(raw.widget.unwrap_or_default(), portal.as_ref());
        let insights = b.insights(raw.insights.unwrap_or_default());
        match (
            store, sync, portal, policy, metrics, admin, widget, insights,
        ) {
            (
                Some(store),
                Some(sync),
                Some(portal),
                Some(policy),
                Some(metrics),
                Some(admin),
                Some(widget),
                Some(insights),
            ) if b.problems.is_empty() => Ok(Config {
                path: path.to_owned(),
                confluence,
                store,
                sync,
                portal,
                metrics,
                embed,
                policy,
                oidc,
                admin,
                widget,
                insights,
            }),
            _ => Err(ConfigError::Invalid {
                problems: b.problems,
            }),
        }
    }
}

/// A Confluence group name: trimmed, non-empty, at most 255 characters, no control characters.
fn parse_group_name(s: &str) -> Result<String, String> {
    let name = s.trim();
    if name.is_empty() {
        return Err("must not be empty (the default is \"confluence-users\")".into());
    }
    if name.chars().count() > MAX_GROUP_NAME_CHARS {
        return Err(format!(
            "is longer than {MAX_GROUP_NAME_CHARS} characters, the longest group name Confluence accepts"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_owned())
}

fn syntax_problem(loc: &Locator<'_>, e: &toml::de::Error) -> Problem {
    let message = e.message().trim().to_owned();
    let offset = e.span().map_or(0, |s| s.start);
    // serde names the offending key in backticks: "unknown field `x`, expected …".
    let named = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))
        .and_then(|rest| rest.split('`').next());
    let key = named
        .map(str::to_owned)
        .or_else(|| key_on_line(loc.text, offset))
        .unwrap_or_default();
    let key = match section_at(loc.text, offset) {
        Some(section) if !key.is_empty() => format!("{section}.{key}"),
        Some(section) => section,
        None => key,
    };
    Problem {
        location: loc.at(offset),
        key,
        message,
    }
}

/// The key assigned on the line containing `offset` (`listen = 5` → `listen`).
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(text, offset);
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?.trim();
    if line.starts_with('[') {
        return None;
    }
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty()).then(|| k.to_owned())
}

/// The table in effect at `offset`: the last `[header]` before it (`[[audience]]` headers are
/// numbered from 0: `audience[2]`). Heuristic, for messages only.
fn section_at(text: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(text, offset);
    // The line holding `offset` counts too (a missing-field error points at the header).
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let mut current: Option<String> = None;
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for line in text[..end].lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
            let name = name.trim().to_owned();
            let n = counts.entry(name.clone()).or_insert(0);
            current = Some(format!("{name}[{n}]"));
            *n += 1;
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            current = Some(name.trim().to_owned());
        }
    }
    current
}

fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut o = offset.min(text.len());
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// Collects problems while turning raw values into typed ones.
struct Builder<'a> {
    loc: &'a Locator<'a>,
    problems: Vec<Problem>,
}

impl Builder<'_> {
    fn err(&mut self, origin: &Origin, key: &str, msg: impl Into<String>) {
        let p = self.loc.problem(origin, key, msg);
        self.problems.push(p);
    }

    /// Converts an optional value, recording a problem on failure.
    fn conv<T, U, E: std::fmt::Display>(
        &mut self,
        v: &Option<Val<T>>,
        key: &str,
        f: impl FnOnce(&T) -> Result<U, E>,
    ) -> Option<Option<U>> {
        match v {
            None => Some(None),
            Some(val) => match f(&val.value) {
                Ok(u) => Some(Some(u)),
                Err(e) => {
                    self.err(&val.origin, key, e.to_string());
                    None
                }
            },
        }
    }

    fn required<T>(&mut self, section: &Origin, v: Option<Option<T>>, key: &str) -> Option<T> {
        match v {
            Some(Some(t)) => Some(t),
            Some(None) => {
                self.err(section, key, "required key is missing");
                None
            }
            None => None,
        }
    }

    /// A duration key: its default when absent; an error naming the allowed range when the
    /// value is outside `min..=max` (`max` `None`: no upper bound).
    fn duration(
        &mut self,
        v: &Option<Val<String>>,
        key: &str,
        default: Duration,
        min: Duration,
        max: Option<Duration>,
    ) -> Option<Duration> {
        let d = self.conv(v, key, |s| parse_duration(s))?.unwrap_or(default);
        let Some(val) = v else {
            return Some(d);
        };
        if d < min || max.is_some_and(|max| d > max) {
            let range = match max {
                Some(max) if min.is_zero() => format!("at most {}", format_duration(max)),
                Some(max) => format!(
                    "between {} and {}",
                    format_duration(min),
                    format_duration(max)
                ),
                None => format!("at least {}", format_duration(min)),
            };
            self.err(
                &val.origin,
                key,
                format!("{:?} is out of range: must be {range}", val.value.trim()),
            );
            return None;
        }
        Some(d)
    }

    /// A count key: its default when absent; an error naming the allowed range when the value
    /// is outside `1..=max`.
    fn count(&mut self, v: &Option<Val<u64>>, key: &str, default: u64, max: u64) -> Option<u64> {
        match v {
            None => Some(default),
            Some(val) if (1..=max).contains(&val.value) => Some(val.value),
            Some(val) => {
                self.err(
                    &val.origin,
                    key,
                    format!("{} is out of range: must be between 1 and {max}", val.value),
                );
                None
            }
        }
    }

    /// Exactly one (or, if `optional`, at most one) of the keys may be set.
    fn one_of<'v>(
        &mut self,
        section: &Origin,
        keys: &[(&str, &'v Option<Val<String>>)],
        optional: bool,
    ) -> Option<Option<(usize, &'v Val<String>)>> {
        let set: Vec<(usize, &Val<String>)> = keys
            .iter()
            .enumerate()
            .filter_map(|(i, (_, v))| v.as_ref().map(|v| (i, v)))
            .collect();
        let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
        match set.as_slice() {
            [] if optional => Some(None),
            [] => {
                let key = names.join(" / ");
                self.err(
                    section,
                    &key,
                    format!("one of {} is required", names.join(", ")),
                );
                None
            }
            [one] => Some(Some(*one)),
            [_, second, ..] => {
                let (i, v) = *second;
                self.err(
                    &v.origin,
                    keys[i].0,
                    format!("only one of {} may be set", names.join(", ")),
                );
                None
            }
        }
    }

    fn secret_source(&mut self, key: &str, v: &Val<String>, is_env: bool) -> Option<SecretSource> {
        let s = v.value.trim();
        if is_env {
            let ok = !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                self.err(
                    &v.origin,
                    key,
                    "expected the NAME of an environment variable ([A-Za-z_][A-Za-z0-9_]*), not a secret value",
                );
                return None;
            }
            Some(SecretSource::Env(s.to_owned()))
        } else if s.is_empty() {
            self.err(&v.origin, key, "the file path is empty");
            None
        } else {
            Some(SecretSource::File(PathBuf::from(s)))
        }
    }

    fn confluence(&mut self, c: Val<raw::RawConfluence>) -> Option<ConfluenceConfig> {
        let sec = c.origin.clone();
        let r = c.value;
        let base_url = self.conv(&r.base_url, "confluence.base_url", |s| parse_base_url(s));
        let base_url = self.required(&sec, base_url, "confluence.base_url");
        let auth = self.confluence_auth(&sec, &r);
        let admin = self.one_of(
            &sec,
            &[
                ("confluence.admin_api_key_env", &r.admin_api_key_env),
                ("confluence.admin_api_key_file", &r.admin_api_key_file),
            ],
            true,
        );
        let admin_api_key = match admin {
            Some(None) => Some(None),
            Some(Some((i, v))) => self
                .secret_source(
                    [
                        "confluence.admin_api_key_env",
                        "confluence.admin_api_key_file",
                    ][i],
                    v,
                    i == 0,
                )
                .map(Some),
            None => None,
        };
        let max_attachment_bytes = match &r.max_attachment_bytes {
            Some(v) if v.value == 0 => {
                self.err(
                    &v.origin,
                    "confluence.max_attachment_bytes",
                    "must be greater than 0",
                );
                None
            }
            Some(v) => Some(v.value),
            None => Some(DEFAULT_MAX_ATTACHMENT_BYTES),
        };
        let default_access_group = self
            .conv(
                &r.default_access_group,
                "confluence.default_access_group",
                |s| parse_group_name(s),
            )
            .map(|g| g.unwrap_or_else(|| DEFAULT_ACCESS_GROUP.to_owned()));
        let licensed_users = match &r.licensed_users {
            Some(v) if v.value == 0 => {
                self.err(
                    &v.origin,
                    "confluence.licensed_users",
                    "must be at least 1 (kbgate's own service account is a licensed user); \
                     leave it out to let kbgate count the members of default_access_group",
                );
                None
            }
            Some(v) => Some(Some(v.value)),
            None => Some(None),
        };
        let requests_per_second = match &r.requests_per_second {
            Some(v) => match u32::try_from(v.value) {
                Ok(n) if n <= 1000 => Some(n),
                _ => {
                    self.err(
                        &v.origin,
                        "confluence.requests_per_second",
                        "must be between 0 (no throttle) and 1000",
                    );
                    None
                }
            },
            None => Some(DEFAULT_REQUESTS_PER_SECOND),
        };
        let invite_wait = self.duration(
            &r.invite_wait,
            "confluence.invite_wait",
            DEFAULT_INVITE_WAIT,
            Duration::ZERO,
            Some(MAX_INVITE_WAIT),
        );
        let invite_retry_after = self.duration(
            &r.invite_retry_after,
            "confluence.invite_retry_after",
            DEFAULT_INVITE_RETRY_AFTER,
            MIN_INVITE_RETRY_AFTER,
            Some(Duration::from_secs(7 * 24 * 3600)),
        );
        let jira_url = match self.conv(&r.jira_url, "confluence.jira_url", |s| {
            if s.trim().is_empty() {
                Ok(None)
            } else {
                parse_jira_url(s).map(Some)
            }
        }) {
            Some(Some(explicit)) => Some(explicit),
            Some(None) => Some(base_url.as_ref().and_then(default_jira_url)),
            None => None,
        };
        Some(ConfluenceConfig {
            jira_url: jira_url?,
            invite_wait: invite_wait?,
            invite_retry_after: invite_retry_after?,
            base_url: base_url?,
            auth: auth?,
            admin_api_key: admin_api_key?,
            allow_undocumented_apis: r.allow_undocumented_apis.is_some_and(|v| v.value),
            max_attachment_bytes: max_attachment_bytes?,
            default_access_group: default_access_group?,
            licensed_users: licensed_users?,
            requests_per_second: requests_per_second?,
        })
    }

    /// `auth` and the keys of the chosen method; keys of another method are errors (a
    /// `client_id` next to `auth = "api_token"` is a mistake worth saying).
    fn confluence_auth(&mut self, sec: &Origin, r: &raw::RawConfluence) -> Option<ConfluenceAuth> {
        let method = self.conv(&r.auth, "confluence.auth", |s| match s.trim() {
            "api_token" => Ok("api_token"),
            "scoped_token" => Ok("scoped_token"),
            "oauth" => Ok("oauth"),
            other => Err(format!(
                "unknown method {other:?}; expected \"api_token\" (classic API token on the site), \"scoped_token\" (scoped API token through api.atlassian.com) or \"oauth\" (service account OAuth 2.0 client credentials)"
            )),
        })?;
        let method = method.unwrap_or("api_token");
        let unexpected = |me: &mut Self, keys: &[(&str, &Option<Val<String>>)]| {
            for (key, v) in keys {
                if let Some(v) = v {
                    me.err(
                        &v.origin,
                        key,
                        format!("does not apply to auth = \"{method}\""),
                    );
                }
            }
        };
        let gateway = |me: &mut Self| -> Option<Gateway> {
            let url = me.conv(&r.gateway_url, "confluence.gateway_url", |s| {
                parse_base_url(s)
            });
            let cloud_id = me.conv(&r.cloud_id, "confluence.cloud_id", |s| {
                let s = s.trim();
                if !s.is_empty()
                    && s.len() <= 64
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    Ok(s.to_owned())
                } else {
                    Err("expected the site's cloud id (a UUID, from https://SITE.atlassian.net/_edge/tenant_info)".to_owned())
                }
            });
            Some(Gateway {
                url: match url? {
                    Some(u) => u,
                    None => Url::parse(DEFAULT_GATEWAY_URL).ok()?,
                },
                cloud_id: cloud_id?,
            })
        };
        let token = |me: &mut Self| -> Option<(Email, SecretSource)> {
            let email = me.conv(&r.email, "confluence.email", |s| Email::parse(s.trim()));
            let email = me.required(sec, email, "confluence.email");
            let token = me.one_of(
                sec,
                &[
                    ("confluence.api_token_env", &r.api_token_env),
                    ("confluence.api_token_file", &r.api_token_file),
                ],
                false,
            );
            let token = match token {
                Some(Some((i, v))) => me.secret_source(
                    ["confluence.api_token_env", "confluence.api_token_file"][i],
                    v,
                    i == 0,
                ),
                _ => None,
            };
            Some((email?, token?))
        };
        let oauth_keys = [
            ("confluence.client_id", &r.client_id),
            ("confluence.client_secret_env", &r.client_secret_env),
            ("confluence.client_secret_file", &r.client_secret_file),
            ("confluence.oauth_token_url", &r.oauth_token_url),
        ];
        match method {
            "api_token" => {
                unexpected(self, &oauth_keys);
                unexpected(
                    self,
                    &[
                        ("confluence.cloud_id", &r.cloud_id),
                        ("confluence.gateway_url", &r.gateway_url),
                    ],
                );
                let (email, token) = token(self)?;
                Some(ConfluenceAuth::ApiToken { email, token })
            }
            "scoped_token" => {
                unexpected(self, &oauth_keys);
                let gateway = gateway(self);
                let (email, token) = token(self)?;
                Some(ConfluenceAuth::ScopedToken {
                    email,
                    token,
                    gateway: gateway?,
                })
            }
            _ => {
                unexpected(
                    self,
                    &[
                        ("confluence.email", &r.email),
                        ("confluence.api_token_env", &r.api_token_env),
                        ("confluence.api_token_file", &r.api_token_file),
                    ],
                );
                let gateway = gateway(self);
                let client_id = self.conv(&r.client_id, "confluence.client_id", |s| {
                    let s = s.trim();
                    if s.is_empty() {
                        Err("must not be empty".to_owned())
                    } else {
                        Ok(s.to_owned())
                    }
                });
                let client_id = self.required(sec, client_id, "confluence.client_id");
                let secret = self.one_of(
                    sec,
                    &[
                        ("confluence.client_secret_env", &r.client_secret_env),
                        ("confluence.client_secret_file", &r.client_secret_file),
                    ],
                    false,
                );
                let client_secret = match secret {
                    Some(Some((i, v))) => self.secret_source(
                        [
                            "confluence.client_secret_env",
                            "confluence.client_secret_file",
                        ][i],
                        v,
                        i == 0,
                    ),
                    _ => None,
                };
                let token_url = self.conv(&r.oauth_token_url, "confluence.oauth_token_url", |s| {
                    parse_base_url(s)
                });
                let token_url = match token_url? {
                    Some(u) => u,
                    None => Url::parse(DEFAULT_OAUTH_TOKEN_URL).ok()?,
                };
                Some(ConfluenceAuth::OAuth {
                    client_id: client_id?,
                    client_secret: client_secret?,
                    token_url,
                    gateway: gateway?,
                })
            }
        }
    }

    fn store(&mut self, r: raw::RawStore) -> Option<StoreConfig> {
        let parsed = self.conv(&r.url, "store.url", |s| {
            let url = SensitiveUrl::parse(s.trim())
                .map_err(|e| format!("not a URL ({e}); expected sqlite://FILE or postgres://…"))?;
            let backend = match url.scheme() {
                "sqlite" => StoreBackend::Sqlite,
                "postgres" | "postgresql" => StoreBackend::Postgres,
                other => {
                    return Err(format!(
                        "unsupported scheme {other:?}; expected sqlite:// or postgres://"
                    ));
                }
            };
            Ok((url, backend))
        })?;
        let (url, backend) = match parsed {
            Some(p) => p,
            None => (
                // The default is a valid URL literal.
                SensitiveUrl::parse(DEFAULT_STORE_URL).ok()?,
                StoreBackend::Sqlite,
            ),
        };
        let data_dir = self
            .conv(&r.data_dir, "store.data_dir", |s| non_empty_path(s))?
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        Some(StoreConfig {
            url,
            backend,
            data_dir,
        })
    }

    fn metrics(&mut self, r: raw::RawMetrics) -> Option<MetricsConfig> {
        let listen = self.conv(&r.listen, "metrics.listen", |s| {
            s.trim()
                .parse::<SocketAddr>()
                .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:9464")
        })?;
        Some(MetricsConfig { listen })
    }

    fn sync(&mut self, r: raw::RawSync) -> Option<SyncConfig> {
        let interval = self.duration(
            &r.interval,
            "sync.interval",
            DEFAULT_SYNC_INTERVAL,
            Duration::ZERO,
            None,
        );
        let overlap = self.duration(
            &r.overlap,
            "sync.overlap",
            DEFAULT_SYNC_OVERLAP,
            Duration::ZERO,
            Some(MAX_SYNC_OVERLAP),
        );
        let full_every = self.duration(
            &r.full_every,
            "sync.full_every",
            DEFAULT_FULL_EVERY,
            Duration::ZERO,
            None,
        );
        let lease_ttl = self.duration(
            &r.lease_ttl,
            "sync.lease_ttl",
            DEFAULT_LEASE_TTL,
            MIN_LEASE_TTL,
            Some(MAX_LEASE_TTL),
        );
        Some(SyncConfig {
            interval: interval?,
            overlap: overlap?,
            full_every: full_every?,
            lease_ttl: lease_ttl?,
        })
    }

    fn portal(&mut self, r: raw::RawPortal, store: &Option<StoreConfig>) -> Option<PortalConfig> {
        let listen = self
            .conv(&r.listen, "portal.listen", |s| {
                s.trim()
                    .parse::<SocketAddr>()
                    .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
            })?
            .unwrap_or(DEFAULT_LISTEN);
        let public_url = self
            .conv(&r.public_url, "portal.public_url", |s| parse_public_url(s))?
            .unwrap_or_else(|| default_public_url(listen));
        let frame_ancestors = self.list(
            list_items(&r.frame_ancestors),
            "portal.frame_ancestors",
            check_frame_ancestor,
        );
        let trusted_proxies = self.list(
            list_items(&r.trusted_proxies),
            "portal.trusted_proxies",
            parse_proxy,
        );
        let mut ok = frame_ancestors.is_some() && trusted_proxies.is_some();
        let session_idle = self.duration(
            &r.session_idle,
            "portal.session_idle",
            DEFAULT_SESSION_IDLE,
            MIN_SESSION,
            None,
        );
        let session_absolute = self.duration(
            &r.session_absolute,
            "portal.session_absolute",
            DEFAULT_SESSION_ABSOLUTE,
            MIN_SESSION,
            None,
        );
        if let (Some(idle), Some(abs)) = (session_idle, session_absolute)
            && idle > abs
        {
            let origin = r
                .session_idle
                .as_ref()
                .or(r.session_absolute.as_ref())
                .map(|v| v.origin.clone())
                .unwrap_or(Origin::Span(0..0));
            self.err(
                &origin,
                "portal.session_idle",
                "the idle expiry must not exceed portal.session_absolute",
            );
            ok = false;
        }
        let delivery = self.one_of(
            &Origin::Span(0..0),
            &[
                ("portal.smtp_url", &r.smtp_url),
                ("portal.outbox_dir", &r.outbox_dir),
            ],
            true,
        )?;
        let magic_link = match delivery {
            Some((0, v)) => {
                let url = SensitiveUrl::parse(v.value.trim())
                    .ok()
                    .filter(|u| matches!(u.scheme(), "smtp" | "smtps"));
                match url {
                    Some(u) => MagicLinkDelivery::Smtp(u),
                    None => {
                        // The message must not echo the URL: it may hold a password.
                        self.err(
                            &v.origin,
                            "portal.smtp_url",
                            "expected smtp://HOST[:PORT] or smtps://USER:PASSWORD@HOST[:PORT]",
                        );
                        return None;
                    }
                }
            }
            Some((_, v)) => MagicLinkDelivery::Outbox(self.conv(
                &Some(v.clone()),
                "portal.outbox_dir",
                |s| non_empty_path(s),
            )??),
            None => MagicLinkDelivery::Outbox(default_outbox_dir(store.as_ref())),
        };
        let from = self.conv(&r.from, "portal.from", |s| check_from(s))?;
        if from.is_none() && matches!(magic_link, MagicLinkDelivery::Smtp(_)) {
            let origin = r
                .smtp_url
                .as_ref()
                .map(|v| v.origin.clone())
                .unwrap_or(Origin::Span(0..0));
            self.err(
                &origin,
                "portal.from",
                "required when portal.smtp_url is set",
            );
            ok = false;
        }
        let magic_link_ttl = self.duration(
            &r.magic_link_ttl,
            "portal.magic_link_ttl",
            DEFAULT_MAGIC_LINK_TTL,
            MIN_MAGIC_LINK_TTL,
            Some(MAX_MAGIC_LINK_TTL),
        );
        let view_cache_mb = match &r.view_cache_mb {
            Some(v) if v.value > MAX_VIEW_CACHE_MB => {
                self.err(
                    &v.origin,
                    "portal.view_cache_mb",
                    format!("must be between 0 (no cache) and {MAX_VIEW_CACHE_MB}"),
                );
                None
            }
            Some(v) => Some(v.value),
            None => Some(DEFAULT_VIEW_CACHE_MB),
        };
        let header_read_timeout = self.duration(
            &r.header_read_timeout,
            "portal.header_read_timeout",
            DEFAULT_HEADER_READ_TIMEOUT,
            MIN_CONNECTION_TIMEOUT,
            Some(MAX_HEADER_READ_TIMEOUT),
        );
        let idle_timeout = self.duration(
            &r.idle_timeout,
            "portal.idle_timeout",
            DEFAULT_IDLE_TIMEOUT,
            MIN_CONNECTION_TIMEOUT,
            Some(MAX_IDLE_TIMEOUT),
        );
        let max_connections = self.count(
            &r.max_connections,
            "portal.max_connections",
            DEFAULT_MAX_CONNECTIONS,
            MAX_MAX_CONNECTIONS,
        );
        let max_connections_per_client = self.count(
            &r.max_connections_per_client,
            "portal.max_connections_per_client",
            DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            MAX_MAX_CONNECTIONS,
        );
        if let (Some(all), Some(per_client)) = (max_connections, max_connections_per_client)
            && per_client > all
        {
            let origin = r
                .max_connections_per_client
                .as_ref()
                .or(r.max_connections.as_ref())
                .map(|v| v.origin.clone())
                .unwrap_or(Origin::Span(0..0));
            self.err(
                &origin,
                "portal.max_connections_per_client",
                format!("must not exceed portal.max_connections ({all})"),
            );
            ok = false;
        }
        let brand = match r.brand {
            Some(b) => self.brand(b),
            None => Some(BrandConfig::default()),
        };
        if !ok {
            return None;
        }
        Some(PortalConfig {
            magic_links: r.magic_link.as_ref().is_none_or(|v| v.value),
            brand: brand?,
            listen,
            public_url,
            frame_ancestors: frame_ancestors?,
            session_idle: session_idle?,
            session_absolute: session_absolute?,
            magic_link,
            from,
            magic_link_ttl: magic_link_ttl?,
            view_cache_mb: view_cache_mb?,
            trusted_proxies: trusted_proxies?,
            header_read_timeout: header_read_timeout?,
            idle_timeout: idle_timeout?,
            max_connections: max_connections?,
            max_connections_per_client: max_connections_per_client?,
            show_staff_names: r.show_staff_names.as_ref().is_some_and(|v| v.value),
            record_emails: r.record_emails.as_ref().is_some_and(|v| v.value),
        })
    }

    fn widget(&mut self, r: raw::RawWidget, portal: Option<&PortalConfig>) -> Option<WidgetConfig> {
        let allowed_origins = self.list(
            list_items(&r.allowed_origins),
            "widget.allowed_origins",
            check_widget_origin,
        );
        let max = portal.map(|p| p.session_absolute);
        let session_lifetime = self.duration(
            &r.session_lifetime,
            "widget.session_lifetime",
            DEFAULT_WIDGET_SESSION_LIFETIME.min(max.unwrap_or(Duration::MAX)),
            MIN_SESSION,
            max,
        );
        let mut suggest = Vec::with_capacity(r.suggest.len());
        let mut ok = true;
        for (i, v) in r.suggest.iter().enumerate() {
            let p = format!("widget.suggest[{i}]");
            let prefix = self.conv(
                &Some(v.value.path_prefix.clone()),
                &format!("{p}.path_prefix"),
                |s| parse_path_prefix(s),
            );
            let labels = self.list(&v.value.labels.value, &format!("{p}.labels"), Label::parse);
            if labels.as_ref().is_some_and(Vec::is_empty) {
                self.err(
                    &v.value.labels.origin,
                    &format!("{p}.labels"),
                    "name at least one label",
                );
                ok = false;
            }
            match (prefix, labels) {
                (Some(Some(path_prefix)), Some(labels)) => suggest.push(WidgetSuggest {
                    path_prefix,
                    labels,
                }),
                _ => ok = false,
            }
        }
        Some(WidgetConfig {
            allowed_origins: allowed_origins?,
            session_lifetime: session_lifetime?,
            suggest: ok.then_some(suggest)?,
        })
    }

    fn embed(&mut self, e: Val<raw::RawEmbed>) -> Option<EmbedConfig> {
        let sec = e.origin.clone();
        let r = e.value;
        let issuer = self.conv(&r.issuer, "embed.issuer", |s| non_empty(s));
        let issuer = self.required(&sec, issuer, "embed.issuer");
        let audience = self.conv(&r.audience, "embed.audience", |s| non_empty(s));
        let audience = self.required(&sec, audience, "embed.audience");
        let algorithm = self.conv(&r.algorithm, "embed.algorithm", |s| {
            Ok::<_, String>(match s.trim() {
                "HS256" => EmbedAlgorithm::HS256,
                "EdDSA" => EmbedAlgorithm::EdDSA,
                "ES256" => EmbedAlgorithm::ES256,
                "RS256" => EmbedAlgorithm::RS256,
                other => {
                    return Err(format!(
                        "unsupported algorithm {other:?}; expected HS256, EdDSA, ES256 or RS256"
                    ));
                }
            })
        });
        let algorithm = self.required(&sec, algorithm, "embed.algorithm");
        const KEYS: [&str; 5] = [
            "embed.secret_env",
            "embed.secret_file",
            "embed.public_key_file",
            "embed.jwks_file",
            "embed.jwks_url",
        ];
        let key_choice = self.one_of(
            &sec,
            &[
                (KEYS[0], &r.secret_env),
                (KEYS[1], &r.secret_file),
                (KEYS[2], &r.public_key_file),
                (KEYS[3], &r.jwks_file),
                (KEYS[4], &r.jwks_url),
            ],
            false,
        );
        let key = match (algorithm, key_choice) {
            (Some(alg), Some(Some((i, v)))) => {
                let hmac = alg == EmbedAlgorithm::HS256;
                if hmac != (i < 2) {
                    let msg = if hmac {
                        "HS256 needs a shared secret: set embed.secret_env or embed.secret_file"
                    } else {
                        "this algorithm needs a public key: set embed.public_key_file, embed.jwks_file or embed.jwks_url (a shared secret would allow algorithm confusion)"
                    };
                    self.err(&v.origin, KEYS[i], msg);
                    None
                } else {
                    match i {
                        0 | 1 => self.secret_source(KEYS[i], v, i == 0).map(EmbedKey::Secret),
                        2 => non_empty_path(&v.value)
                            .map_err(|m| self.err(&v.origin, KEYS[i], m))
                            .ok()
                            .map(EmbedKey::PublicKeyFile),
                        3 => non_empty_path(&v.value)
                            .map_err(|m| self.err(&v.origin, KEYS[i], m))
                            .ok()
                            .map(EmbedKey::JwksFile),
                        _ => parse_jwks_url(&v.value)
                            .map_err(|m| self.err(&v.origin, KEYS[i], m))
                            .ok()
                            .map(EmbedKey::JwksUrl),
                    }
                }
            }
            _ => None,
        };
        let api = self.one_of(
            &sec,
            &[
                ("embed.api_key_env", &r.api_key_env),
                ("embed.api_key_file", &r.api_key_file),
            ],
            true,
        );
        let api_key = match api {
            Some(None) => Some(None),
            Some(Some((i, v))) => self
                .secret_source(["embed.api_key_env", "embed.api_key_file"][i], v, i == 0)
                .map(Some),
            None => None,
        };
        let max_token_lifetime = self.duration(
            &r.max_token_lifetime,
            "embed.max_token_lifetime",
            DEFAULT_MAX_TOKEN_LIFETIME,
            Duration::from_secs(1),
            Some(MAX_MAX_TOKEN_LIFETIME),
        );
        let leeway = self.duration(
            &r.leeway,
            "embed.leeway",
            DEFAULT_EMBED_LEEWAY,
            Duration::ZERO,
            Some(MAX_EMBED_LEEWAY),
        );
        let login_url = self.conv(&r.login_url, "embed.login_url", |s| parse_login_url(s));
        Some(EmbedConfig {
            login_url: login_url?,
            issuer: issuer?,
            audience: audience?,
            algorithm: algorithm?,
            key: key?,
            api_key: api_key?,
            max_token_lifetime: max_token_lifetime?,
            leeway: leeway?,
        })
    }

    fn policy(&mut self, raws: Vec<Val<RawAudience>>, deny: raw::RawDeny) -> Option<Policy> {
        let before = self.problems.len();
        let mut audiences = Vec::with_capacity(raws.len());
        let mut spans = Vec::with_capacity(raws.len());
        for (i, a) in raws.into_iter().enumerate() {
            let r = a.value;
            let p = format!("audience[{i}]");
            let name = self.conv(&Some(r.name.clone()), &format!("{p}.name"), |s| {
                AudienceName::parse(s)
            });
            let domains = self.list(&r.domains.value, &format!("{p}.domains"), |s| {
                Domain::parse(s)
            });
            let spaces = self.list(&r.spaces.value, &format!("{p}.spaces"), |s| {
                SpaceKey::parse(s)
            });
            let labels = self.list(&r.labels, &format!("{p}.labels"), Label::parse);
            let expires = self.conv(&r.expires, &format!("{p}.expires"), parse_date);
            let delivery = self.conv(&r.delivery, &format!("{p}.delivery"), |s| {
                s.trim().parse::<Delivery>()
            });
            if let (
                Some(Some(name)),
                Some(domains),
                Some(spaces),
                Some(labels),
                Some(expires),
                Some(delivery),
            ) = (name, domains, spaces, labels, expires, delivery)
            {
                audiences.push(Audience {
                    name,
                    domains,
                    include_subdomains: r.include_subdomains,
                    spaces,
                    labels,
                    expires,
                    delivery: delivery.unwrap_or(Delivery::Portal),
                });
                spans.push((r.name.origin, r.domains.origin, r.spaces.origin));
            }
        }
        let deny = match &deny.domains {
            Some(list) => self.list(&list.value, "deny.domains", Domain::parse),
            None => Some(Vec::new()),
        };
        if self.problems.len() > before {
            return None;
        }
        match Policy::new(audiences, deny?) {
            Ok(p) => Some(p),
            Err(e) => {
                let i = e.audience_index();
                let (name, domains, spaces) = &spans[i];
                let (origin, key) = match e {
                    PolicyError::NoDomains { .. } => (domains, format!("audience[{i}].domains")),
                    PolicyError::NoSpaces { .. } => (spaces, format!("audience[{i}].spaces")),
                    _ => (name, format!("audience[{i}].name")),
                };
                self.err(origin, &key, e.to_string());
                None
            }
        }
    }

    /// `[[oidc]]` entries: each valid one, with problems recorded for the others (names unique,
    /// each domain bound at most once).
    fn oidc_providers(&mut self, raws: Vec<Val<raw::RawOidc>>) -> Vec<OidcProviderConfig> {
        let mut out: Vec<OidcProviderConfig> = Vec::with_capacity(raws.len());
        for (i, e) in raws.into_iter().enumerate() {
            let sec = e.origin;
            let r = e.value;
            let p = format!("oidc[{i}]");
            let name = self.conv(&Some(r.name.clone()), &format!("{p}.name"), |s| {
                parse_oidc_name(s)
            });
            if let Some(Some(n)) = &name
                && out.iter().any(|o| &o.name == n)
            {
                self.err(
                    &r.name.origin,
                    &format!("{p}.name"),
                    format!("{n:?} is used by another [[oidc]] entry"),
                );
            }
            let display_name = self.conv(&r.display_name, &format!("{p}.display_name"), |s| {
                non_empty(s)
            });
            let issuer = self.conv(&Some(r.issuer.clone()), &format!("{p}.issuer"), |s| {
                parse_issuer(s)
            });
            let client_id = self.conv(&Some(r.client_id.clone()), &format!("{p}.client_id"), |s| {
                non_empty(s)
            });
            let keys = [
                format!("{p}.client_secret_env"),
                format!("{p}.client_secret_file"),
            ];
            let secret = match self.one_of(
                &sec,
                &[
                    (&keys[0], &r.client_secret_env),
                    (&keys[1], &r.client_secret_file),
                ],
                false,
            ) {
                Some(Some((j, v))) => self.secret_source(&keys[j], v, j == 0),
                _ => None,
            };
            let scopes = match &r.scopes {
                None => Some(DEFAULT_OIDC_SCOPES.map(str::to_owned).to_vec()),
                Some(list) => self
                    .list(&list.value, &format!("{p}.scopes"), parse_scope)
                    .map(|scopes| {
                        // `openid` first and always; each scope once.
                        let mut out = vec!["openid".to_owned()];
                        for s in scopes {
                            if !out.contains(&s) {
                                out.push(s);
                            }
                        }
                        out
                    }),
            };
            let domains = self.list(&r.domains.value, &format!("{p}.domains"), Domain::parse);
            if let Some(domains) = &domains {
                if domains.is_empty() {
                    self.err(
                        &r.domains.origin,
                        &format!("{p}.domains"),
                        "bind at least one email domain",
                    );
                }
                for (j, d) in domains.iter().enumerate() {
                    let taken = out
                        .iter()
                        .find(|o| o.domains.contains(d))
                        .map(|o| o.name.clone());
                    let twice = domains[..j].contains(d);
                    if let Some(other) = taken {
                        self.err(&r.domains.value[j].origin, &format!("{p}.domains[{j}]"), format!("{d} is already bound to [[oidc]] {other:?}; a domain signs in with one provider"));
                    } else if twice {
                        self.err(
                            &r.domains.value[j].origin,
                            &format!("{p}.domains[{j}]"),
                            format!("{d} is listed twice"),
                        );
                    }
                }
            }
            if let (
                Some(Some(name)),
                Some(display_name),
                Some(Some(issuer)),
                Some(Some(client_id)),
                Some(client_secret),
                Some(scopes),
                Some(domains),
            ) = (
                name,
                display_name,
                issuer,
                client_id,
                secret,
                scopes,
                domains,
            ) {
                out.push(OidcProviderConfig {
                    name,
                    display_name,
                    issuer,
                    client_id,
                    client_secret,
                    scopes,
                    domains,
                });
            }
        }
        out
    }

    /// Parses each element, reporting each failure at the element's own line.
    fn admin(&mut self, r: raw::RawAdmin) -> Option<AdminConfig> {
        let emails = self.list(list_items(&r.emails), "admin.emails", Email::parse);
        let domains = self.list(list_items(&r.domains), "admin.domains", Domain::parse);
        let minutes = self.count(
            &r.session_minutes,
            "admin.session_minutes",
            DEFAULT_ADMIN_SESSION_MINUTES,
            MAX_ADMIN_SESSION_MINUTES,
        );
        Some(AdminConfig {
            admins: AdminPolicy::new(emails?, domains?),
            session: Duration::from_secs(minutes? * 60),
        })
    }

    fn insights(&mut self, r: raw::RawInsights) -> Option<InsightsConfig> {
        let retention_days = self.count(
            &r.retention_days,
            "insights.retention_days",
            DEFAULT_INSIGHTS_RETENTION_DAYS,
            MAX_INSIGHTS_RETENTION_DAYS,
        )?;
        Some(InsightsConfig { retention_days })
    }

    fn list<T, E: std::fmt::Display>(
        &mut self,
        items: &[Val<String>],
        key: &str,
        f: impl Fn(&str) -> Result<T, E>,
    ) -> Option<Vec<T>> {
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (j, v) in items.iter().enumerate() {
            match f(v.value.trim()) {
                Ok(t) => out.push(t),
                Err(e) => {
                    self.err(
                        &v.origin,
                        &format!("{key}[{j}]"),
                        format!("{:?}: {e}", v.value),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

fn non_empty(s: &str) -> Result<String, &'static str> {
    let t = s.trim();
    if t.is_empty() {
        Err("must not be empty")
    } else {
        Ok(t.to_owned())
    }
}

fn non_empty_path(s: &str) -> Result<PathBuf, &'static str> {
    non_empty(s)
        .map(PathBuf::from)
        .map_err(|_| "the path is empty")
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A JWKS URL: `https` (plain `http` only for loopback hosts), no credentials, no fragment.
fn parse_jwks_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => {
            return Err(
                "must be https: keys fetched over plain http could be replaced on the way".into(),
            );
        }
        other => return Err(format!("unsupported scheme {other:?}; expected https")),
    }
    if url.host().is_none() || url.fragment().is_some() {
        return Err("expected https://HOST/PATH with no fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    Ok(url)
}

fn parse_base_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => {
            return Err(
                "plain http would send the API token in clear; use https (http is allowed only for localhost)"
                    .into(),
            );
        }
        other => return Err(format!("unsupported scheme {other:?}; expected https")),
    }
    if url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err("expected https://SITE.atlassian.net with no query or fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "credentials do not belong in the URL; use api_token_env or api_token_file".into(),
        );
    }
    Ok(url)
}

/// `[confluence] jira_url`: an https origin (a path is kept, for Jira behind a prefix).
fn parse_jira_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback_host(&url)) {
        return Err("expected https://SITE.atlassian.net (or \"\" for no Jira links)".into());
    }
    if url.host().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(
            "expected https://SITE.atlassian.net with no query, fragment or credentials".into(),
        );
    }
    Ok(url)
}

/// An `[[oidc]]` name: lower-case letters, digits and `-`, 1–40 characters.
fn parse_oidc_name(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    let ok = (1..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err("expected 1 to 40 lower-case letters, digits or '-' (e.g. \"acme-entra\")")
    }
}

/// An OAuth scope token (RFC 6749 §3.3: printable ASCII without space, `"` or `\\`).
fn parse_scope(s: &str) -> Result<String, &'static str> {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    {
        Ok(s.to_owned())
    } else {
        Err("not a scope token (printable ASCII, no spaces or quotes)")
    }
}

/// An OpenID Provider's issuer: https (plain http only for loopback hosts, i.e. tests), no
/// query, fragment or credentials (OpenID Connect Discovery 1.0 §2). Returned as written
/// (trimmed), since `iss` is compared exactly and `Url` would add a `/` to a bare host.
fn parse_issuer(s: &str) -> Result<String, String> {
    let text = s.trim();
    let url = Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => {
            return Err(
                "plain http would let anyone on the way forge sign-ins; use https (http is allowed only for localhost)"
                    .into(),
            );
        }
        other => return Err(format!("unsupported scheme {other:?}; expected https")),
    }
    if url.host().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err("expected https://HOST[/PATH] with no query, fragment or credentials".into());
    }
    Ok(text.to_owned())
}

/// `[embed] login_url`: an absolute http(s) URL; a query is kept (`return_to` is added to it).
fn parse_login_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("expected http(s)://HOST/PATH of the host app's sign-in page".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the login URL must not carry credentials".into());
    }
    Ok(url)
}

fn parse_public_url(s: &str) -> Result<Url, String> {
    let mut url = Url::parse(s.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("expected http(s)://HOST[:PORT][/PREFIX]".into());
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("the public URL must not carry a query, fragment or credentials".into());
    }
    // A path prefix (`/kb`) mounts the portal under it: the reverse proxy forwards `/kb/...`
    // unchanged and every link, redirect and cookie path carries it. Plain segments only, so
    // that the prefix can go into links, `Set-Cookie` and `return_to` checks as it is.
    let prefix = url.path().trim_end_matches('/').to_owned();
    for seg in prefix.split('/').skip(1) {
        let plain = !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
        if !plain {
            return Err(format!(
                "the path prefix {:?} must be plain segments (letters, digits, - _ . ~), \
                 e.g. https://app.example.com/kb",
                url.path()
            ));
        }
    }
    // One spelling: `/kb/` and `/kb` are the same prefix (stored without the slash).
    url.set_path(if prefix.is_empty() { "/" } else { &prefix });
    Ok(url)
}

/// The public URL used when `[portal] public_url` is not set: `http://<listen>`, with an
/// unspecified address shown as `127.0.0.1`. Public so that a server bound to port 0 can
/// derive it again from the port it really got.
pub fn default_public_url(listen: SocketAddr) -> Url {
    let ip = if listen.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        listen.ip()
    };
    let text = format!("http://{}", SocketAddr::new(ip, listen.port()));
    // A socket address always forms a valid http URL; fall back to a literal just in case.
    Url::parse(&text)
        .unwrap_or_else(|_| Url::parse("http://127.0.0.1:8080").expect("valid literal"))
}

/// The entries of an optional list (none when it is absent).
fn list_items(list: &raw::List) -> &[Val<String>] {
    list.as_ref().map_or(&[], |l| &l.value)
}

/// A trusted proxy: an IP address (`10.0.0.7`, `::1`) or a CIDR range (`10.0.0.0/8`).
fn parse_proxy(s: &str) -> Result<ipnet::IpNet, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(ipnet::IpNet::from(ip));
    }
    s.parse::<ipnet::IpNet>().map(|n| n.trunc()).map_err(|_| {
        "expected an IP address or a CIDR range, e.g. 10.0.0.7 or 10.0.0.0/8".to_owned()
    })
}

/// A CSP source for `frame-ancestors`: `'self'` or `scheme://host[:port]`, nothing that could
/// inject another directive. Public so that the server can refuse a source that did not come
/// through the loader (a programmatic [`PortalConfig`]) by the same rule.
pub fn check_frame_ancestor(s: &str) -> Result<String, String> {
    if s == "'self'" {
        return Ok(s.to_owned());
    }
    let bad = || {
        format!(
            "{s:?} is not an origin; expected 'self' or https://HOST[:PORT] (HOST may start with *.)"
        )
    };
    let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "https" | "http") {
        return Err(bad());
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    if let Some(p) = port
        && (p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let bare = host.strip_prefix("*.").unwrap_or(host);
    if bare.is_empty()
        || !bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(bad());
    }
    if scheme == "http" && !matches!(bare, "localhost" | "127.0.0.1") {
        return Err(format!(
            "{s:?}: framing origins must use https (http only for localhost)"
        ));
    }
    Ok(s.to_owned())
}

/// `kb@example.com` or `Display Name <kb@example.com>`; no line breaks (header injection).
fn check_from(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.contains(['\r', '\n']) {
        return Err("must be a single line".into());
    }
    let addr = match (s.rfind('<'), s.ends_with('>')) {
        (Some(i), true) => &s[i + 1..s.len() - 1],
        _ => s,
    };
    Email::parse(addr).map_err(|e| format!("invalid sender address: {e}"))?;
    Ok(s.to_owned())
}

fn parse_date(v: &toml::Value) -> Result<NaiveDate, String> {
    let text = match v {
        toml::Value::String(s) => s.trim().to_owned(),
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt.to_string(),
        _ => return Err("expected a date such as \"2027-06-30\"".into()),
    };
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a date YYYY-MM-DD"))
}

/// Parses a duration the way `kbgate.toml` and the command line write them, with
/// `humantime`: `90s`, `15m`, `1h30m`, `1h 30m`, `2d`, `500ms`, `2weeks`; `0` is zero. The
/// message names the value and the accepted forms (the caller adds the key and location).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    humantime::parse_duration(t)
        .map_err(|e| format!("{t:?} is not a duration ({e}); expected e.g. 30s, 15m, 1h30m, 2d"))
}

/// A whole-second duration as the config file writes it (`15m`, `2h`, `90s`), for messages.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("m").is_err());
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("15 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn frame_ancestors() {
        assert!(check_frame_ancestor("https://app.example.com").is_ok());
        assert!(check_frame_ancestor("https://*.example.com:8443").is_ok());
        assert!(check_frame_ancestor("'self'").is_ok());
        assert!(check_frame_ancestor("http://localhost:3000").is_ok());
        assert!(check_frame_ancestor("http://app.example.com").is_err());
        assert!(check_frame_ancestor("https://a.com; script-src *").is_err());
        assert!(check_frame_ancestor("*").is_err());
        assert!(check_frame_ancestor("https://a.com/path").is_err());
    }

    #[test]
    fn from_addresses() {
        assert!(check_from("kb@example.com").is_ok());
        assert!(check_from("Example KB <kb@example.com>").is_ok());
        assert!(check_from("kb@example.com\r\nBcc: x@y.com").is_err());
        assert!(check_from("not an address").is_err());
    }

    #[test]
    fn locator_lines_and_columns() {
        let loc = Locator {
            text: "a = 1\nbé = \"x\"\n",
            path: PathBuf::from("k.toml"),
        };
        assert_eq!(
            loc.at(11),
            Location::File {
                path: PathBuf::from("k.toml"),
                line: 2,
                column: 5
            }
        );
    }
}
