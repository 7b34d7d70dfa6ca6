//! Client configuration: where to connect, as whom, and how politely.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

/// How failed calls are retried. Production defaults follow Atlassian's guidance (start ~1 s,
/// cap 30 s); tests shrink the delays to milliseconds.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Retries after the first attempt (so at most `max_retries + 1` requests per call).
    pub max_retries: u32,
    /// First backoff delay when the server gives no `Retry-After`.
    pub initial_backoff: Duration,
    /// Upper bound of the exponential backoff.
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for: the call fails with
    /// [`crate::Error::RateLimited`] at once instead of stalling a job for minutes.
    pub max_retry_after: Duration,
    /// How long every call waits after Confluence answered `X-RateLimit-NearLimit: true`
    /// (less than 20% of the account's budget left): kbgate slows down before it is refused.
    pub near_limit_pause: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
            near_limit_pause: Duration::from_secs(1),
        }
    }
}

/// Atlassian's API gateway. Scoped API tokens and service accounts only work there, as
/// `https://api.atlassian.com/ex/confluence/{cloudId}/wiki/...`; on the site URL they get 401.
/// Evidence: support.atlassian.com/confluence/kb/scoped-api-tokens-in-confluence-cloud ("scoped
/// tokens … use the api.atlassian.com domain instead of your site-specific URL") and
/// support.atlassian.com/atlassian-cloud/kb/401-unauthorized-error-when-service-account-accesses-jira-or-confluence-api.
pub const ATLASSIAN_GATEWAY: &str = "https://api.atlassian.com";

/// Where service accounts exchange OAuth 2.0 client credentials for a Bearer access token
/// (valid 60 minutes). Evidence: support.atlassian.com/user-management/docs/create-oauth-2-0-credential-for-service-accounts
/// ("Make a POST request to https://auth.atlassian.com/oauth/token with client_id and
/// client_secret … valid for 60 minutes … include the ACCESS_TOKEN … as a Bearer token",
/// calling `https://api.atlassian.com/ex/...`).
pub const ATLASSIAN_TOKEN_URL: &str = "https://auth.atlassian.com/oauth/token";

/// A service account's OAuth 2.0 client credentials (client credentials grant, RFC 6749 §4.4).
#[derive(Debug, Clone)]
pub struct OAuthClientCredentials {
    /// The credential's client id.
    pub client_id: String,
    /// The credential's client secret.
    pub client_secret: SecretString,
    /// The token endpoint ([`ATLASSIAN_TOKEN_URL`] on Cloud; the simulator's in tests).
    pub token_url: Url,
}

/// The API base of the gateway for one site: `{gateway}/ex/confluence/{cloud_id}`. Paths such as
/// `/wiki/api/v2/...` are appended to it exactly as to a site root.
pub fn gateway_base(gateway: &Url, cloud_id: &str) -> Url {
    let mut url = gateway.clone();
    if let Ok(mut segs) = url.path_segments_mut() {
        segs.pop_if_empty().extend(["ex", "confluence", cloud_id]);
    }
    url
}

/// Everything a [`crate::Client`] needs. `Debug` is safe to log: secrets are redacted.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where API calls go: the site root (`https://example.atlassian.net`, or the simulator's
    /// `http://127.0.0.1:PORT`) for classic API tokens, or the gateway base
    /// ([`gateway_base`]) for scoped tokens and service accounts. Paths such as
    /// `/wiki/api/v2/...` are resolved against it.
    pub base_url: Url,
    /// The site itself when `base_url` is the gateway: absolute links Confluence writes on the
    /// site's origin are followed through the gateway, and links shown to people use it.
    pub site_url: Option<Url>,
    /// Atlassian account email of the service account (Basic auth user).
    pub email: String,
    /// API token of the service account (Basic auth password): classic, or scoped.
    pub api_token: SecretString,
    /// OAuth 2.0 client credentials of a service account: when set, calls carry a Bearer
    /// access token fetched (and renewed before it expires) from the token endpoint instead
    /// of Basic `email:api_token`.
    pub oauth: Option<OAuthClientCredentials>,
    /// Organisation admin API key (Bearer, `api.atlassian.com/admin`); kept for admin calls.
    pub admin_api_key: Option<SecretString>,
    /// Client-side throttle shared by every call of one client; `0` disables it.
    pub requests_per_second: u32,
    /// Retry policy for 429/503/5xx and connection errors.
    pub retry: RetryConfig,
    /// Per-request timeout (connect + full answer headers and body for JSON calls).
    pub timeout: Duration,
    /// `User-Agent` sent with every request.
    pub user_agent: String,
}

impl ClientConfig {
    /// A config with kbgate's defaults: 10 requests/s, 5 retries, 60 s timeout.
    pub fn new(
        base_url: Url,
        email: impl Into<String>,
        api_token: impl Into<SecretString>,
    ) -> Self {
        Self {
            base_url,
            site_url: None,
            email: email.into(),
            api_token: api_token.into(),
            oauth: None,
            admin_api_key: None,
            requests_per_second: 10,
            retry: RetryConfig::default(),
            timeout: Duration::from_secs(60),
            user_agent: concat!("kbgate-confluence-client/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}
