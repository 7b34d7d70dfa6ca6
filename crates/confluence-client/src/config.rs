//! Client configuration: where to connect, as whom, and how politely.

use std::fmt;
use std::time::Duration;

use url::Url;

/// A secret string (API token, admin API key). Its `Debug` and `Display` never show the value,
/// so a config or client can be logged without leaking credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value; call only where the secret is put on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

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
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// Everything a [`crate::Client`] needs. `Debug` is safe to log: secrets are redacted.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Site root, e.g. `https://example.atlassian.net` or the simulator's `http://127.0.0.1:PORT`.
    /// Paths such as `/wiki/api/v2/...` are resolved against it.
    pub base_url: Url,
    /// Atlassian account email of the service account (Basic auth user).
    pub email: String,
    /// API token of the service account (Basic auth password).
    pub api_token: Secret,
    /// Organisation admin API key (Bearer, `api.atlassian.com/admin`); kept for admin calls.
    pub admin_api_key: Option<Secret>,
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
    pub fn new(base_url: Url, email: impl Into<String>, api_token: impl Into<Secret>) -> Self {
        Self {
            base_url,
            email: email.into(),
            api_token: api_token.into(),
            admin_api_key: None,
            requests_per_second: 10,
            retry: RetryConfig::default(),
            timeout: Duration::from_secs(60),
            user_agent: concat!("kbgate-confluence-client/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}
