//! Typed errors. Every variant names the request path and, where the server gave one,
//! Atlassian's own message. Credentials never appear: the client only ever puts them in the
//! `Authorization` header, errors are built from paths and response bodies, and
//! [`Redactor`] scrubs any echo of the token out of server messages as a last line of defence.

use serde_json::Value;

/// Errors of the Confluence client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 401: the email/API token pair was refused.
    #[error(
        "unauthorized (401) on {path}: {message} (check the service account email and API token)"
    )]
    Unauthorized {
        /// Request path.
        path: String,
        /// Atlassian's message.
        message: String,
    },
    /// 401 whose message says the token's scopes do not cover the call (scoped API tokens and
    /// service accounts): the credentials are right, the token needs another scope.
    #[error("missing scope (401) on {path}: {message} (give the token the scope(s): {scopes})")]
    MissingScope {
        /// Request path.
        path: String,
        /// Atlassian's message.
        message: String,
        /// Scopes that let this call through (granular, with the classic alternative).
        scopes: String,
    },
    /// A file download was refused (401/403) — on Cloud this is about the download path or
    /// an expired signed link, not the credentials when other calls succeed with them.
    #[error(
        "download refused ({status}) on {path}: {message} (if other calls succeed, the email and token are right: Confluence Cloud refuses API tokens on the legacy /wiki/download path since CHANGE-2735, and the media link it redirects to is signed and short-lived)"
    )]
    DownloadRefused {
        /// HTTP status (401 or 403).
        status: u16,
        /// Request path.
        path: String,
        /// The server's message.
        message: String,
    },
    /// The OAuth 2.0 token endpoint refused the service account's client credentials.
    #[error(
        "could not get an OAuth access token from {url}: {message} (check the service account's OAuth client id and secret, and that the credential is not expired or revoked)"
    )]
    OAuthToken {
        /// The token endpoint (no query).
        url: String,
        /// What went wrong.
        message: String,
    },
    /// 403: authenticated, but the account lacks a permission.
    #[error("forbidden (403) on {path}: {message} (the service account needs: {hint})")]
    Forbidden {
        /// Request path.
        path: String,
        /// Atlassian's message.
        message: String,
        /// The permission this call needs.
        hint: &'static str,
    },
    /// 403 whose message names one of the site's limits (the guest allowance, the plan's user
    /// limit): the account has the permission, the site has no room. Only more room (more paid
    /// users, a bigger plan) or fewer users fixes it; admin rights do not. See [`Limit`].
    #[error("{limit} reached (403) on {path}: {message} ({})", limit.advice())]
    LimitReached {
        /// Request path.
        path: String,
        /// Atlassian's message.
        message: String,
        /// Which limit.
        limit: Limit,
    },
    /// 404: the object does not exist or the account may not see it.
    #[error("not found (404) on {path}: {message}")]
    NotFound {
        /// Request path.
        path: String,
        /// Atlassian's message.
        message: String,
    },
    /// The object to create exists already (409, or a 400 saying so, as the v1 space
    /// permission endpoint answers).
    #[error("already exists on {path}: {message}")]
    AlreadyExists {
        /// Request path.
        path: String,
        /// Atlassian's message.
        message: String,
    },
    /// 400 (or another 4xx not listed above): the request was refused as invalid.
    #[error("bad request ({status}) on {path}: {message}")]
    BadRequest {
        /// HTTP status (400 mostly).
        status: u16,
        /// Request path.
        path: String,
        /// Atlassian's message (for CQL, the parse error).
        message: String,
    },
    /// Still 429 after every retry, or a `Retry-After` longer than the configured maximum.
    #[error("rate limited on {path}: gave up after {attempts} attempt(s)")]
    RateLimited {
        /// Request path.
        path: String,
        /// Requests made for this call.
        attempts: u32,
    },
    /// 503 after retries (for check-access/invite this also means "API disabled on the site").
    #[error("service unavailable (503) on {path}: {message}")]
    ServiceUnavailable {
        /// Request path.
        path: String,
        /// Atlassian's message.
        message: String,
    },
    /// Another 5xx after retries.
    #[error("server error ({status}) on {path}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Request path.
        path: String,
        /// Atlassian's message.
        message: String,
    },
    /// The answer was not the JSON we expected.
    #[error("could not decode the answer of {path}: {source}")]
    Decode {
        /// Request path.
        path: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The connection failed, timed out or was reset (after retries where allowed).
    #[error("transport error on {path}: {message}")]
    Transport {
        /// Request path.
        path: String,
        /// What went wrong (no URL, no headers).
        message: String,
    },
    /// The server answered something structurally unusable (e.g. a `next` link to another host).
    #[error("invalid answer from {path}: {message}")]
    InvalidResponse {
        /// Request path.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The client configuration cannot work.
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl Error {
    /// HTTP status this error came from, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unauthorized { .. } | Error::MissingScope { .. } => Some(401),
            Error::DownloadRefused { status, .. } => Some(*status),
            Error::Forbidden { .. } | Error::LimitReached { .. } => Some(403),
            Error::NotFound { .. } => Some(404),
            Error::BadRequest { status, .. } | Error::Server { status, .. } => Some(*status),
            Error::RateLimited { .. } => Some(429),
            Error::ServiceUnavailable { .. } => Some(503),
            _ => None,
        }
    }

    /// The request path as people know it: through the gateway a path starts with
    /// `/ex/confluence/{cloudId}`, which is dropped so messages name the site's own path
    /// (`/wiki/…`), never the gateway.
    pub(crate) fn on_site_path(mut self, gateway_prefix: &str) -> Self {
        if gateway_prefix.is_empty() {
            return self;
        }
        match &mut self {
            Error::Unauthorized { path, .. }
            | Error::MissingScope { path, .. }
            | Error::DownloadRefused { path, .. }
            | Error::Forbidden { path, .. }
            | Error::LimitReached { path, .. }
            | Error::NotFound { path, .. }
            | Error::AlreadyExists { path, .. }
            | Error::BadRequest { path, .. }
            | Error::RateLimited { path, .. }
            | Error::ServiceUnavailable { path, .. }
            | Error::Server { path, .. }
            | Error::Decode { path, .. }
            | Error::Transport { path, .. }
            | Error::InvalidResponse { path, .. } => {
                if let Some(rest) = path.strip_prefix(gateway_prefix) {
                    *path = rest.to_owned();
                }
            }
            Error::OAuthToken { .. } | Error::Config(_) => {}
        }
        self
    }

    /// True for [`Error::NotFound`]; handy for "delete if present" logic.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// The site limit this error reports, if it is one ([`Error::LimitReached`]).
    pub fn limit(&self) -> Option<Limit> {
        match self {
            Error::LimitReached { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    /// True for [`Error::AlreadyExists`].
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::AlreadyExists { .. })
    }
}

/// A limit of the site that Confluence Cloud answers with a 403 naming it (rather than a
/// permission). Recognised from Atlassian's own message ([`Limit::from_message`]).
///
/// Evidence for each (how Confluence reports it):
/// * [`Limit::Guests`]: "Guests are free of charge (up to 5 guests per paid user)"
///   (support.atlassian.com/confluence-cloud/docs/invite-guests-for-external-collaboration/);
///   beyond it Confluence refuses the guest with "You've reached your guest limit: your site
///   can have up to N guests (5 per paid user)" (message as observed by kbgate's operators,
///   issue 16; Atlassian publishes no body for it). Paid users count for billing as soon as
///   they are added, "even if they don't accept your invite or log in" (Atlassian billing
///   docs, "Manage users"), and so do guests.
/// * [`Limit::Users`]: "Total number of users (paid + guests) can't exceed the current
///   Confluence site user limit" (same page); at the limit admin answers "You've reached the
///   maximum number of users for your plan. To add this user, upgrade your plan."
///   (support.atlassian.com/atlassian-cloud/kb/what-happens-when-you-exceed-your-user-license-limit-in-confluence-cloud/).
/// * Rate limits are not a 403: Confluence answers 429 with `Retry-After` (and some 503 with
///   `Retry-After` when "a resource limit has been reached"), see
///   developer.atlassian.com/cloud/confluence/rate-limiting/ — [`Error::RateLimited`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    /// The guest allowance: 5 guests per paid user.
    Guests,
    /// The site's user limit (the plan's user tier: paid users plus guests).
    Users,
}

impl Limit {
    /// Recognises a limit from Atlassian's message of a 403, if it names one.
    pub fn from_message(message: &str) -> Option<Limit> {
        let m = message.to_ascii_lowercase();
        if m.contains("guest limit")
            || (m.contains("guests") && m.contains("per paid user") && m.contains("reached"))
        {
            return Some(Limit::Guests);
        }
        if m.contains("maximum number of users") || m.contains("user limit") {
            return Some(Limit::Users);
        }
        None
    }

    /// The way out, for humans.
    pub fn advice(self) -> &'static str {
        match self {
            Limit::Guests => {
                "a site may have 5 guests per paid user; add paid users, remove guests, or deliver \
                 the audience through kbgate's portal (no guests, no seats); admin rights do not \
                 help"
            }
            Limit::Users => {
                "the plan's user tier is full; upgrade the plan or remove users' product access; \
                 admin rights do not help"
            }
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::Guests => "guest limit",
            Limit::Users => "user limit",
        })
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest server message kept in an error.
const MAX_MESSAGE: usize = 500;

/// Extracts Atlassian's human message from an error body. Understands the v2 shape
/// `{errors:[{status,code,title,detail}]}`, the v1 shape `{statusCode,message,data}`, Jira's
/// `{errorMessages:[...], errors:{field:msg}}` and GraphQL `{errors:[{message}]}`; otherwise
/// the (truncated) text.
pub(crate) fn atlassian_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let msg = match serde_json::from_slice::<Value>(body) {
        Ok(v) => message_from_json(&v).unwrap_or_else(|| text.trim().to_owned()),
        Err(_) => text.trim().to_owned(),
    };
    let msg = if msg.is_empty() {
        "(no message)".to_owned()
    } else {
        msg
    };
    truncate(msg)
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn message_from_json(v: &Value) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    // v2 and GraphQL: errors is an array.
    if let Some(errors) = v.get("errors").and_then(Value::as_array) {
        for e in errors {
            let title = e.get("title").and_then(Value::as_str);
            let detail = e.get("detail").and_then(Value::as_str);
            let code = e.get("code").and_then(Value::as_str);
            let message = e.get("message").and_then(Value::as_str);
            let piece = match (title, detail, message, code) {
                (Some(t), Some(d), _, _) if !d.is_empty() => format!("{t}: {d}"),
                (Some(t), _, _, _) => t.to_owned(),
                (None, Some(d), _, _) => d.to_owned(),
                (None, None, Some(m), _) => m.to_owned(),
                (None, None, None, Some(c)) => c.to_owned(),
                _ => continue,
            };
            parts.push(piece);
        }
    }
    // Jira: errorMessages + errors object.
    if let Some(msgs) = v.get("errorMessages").and_then(Value::as_array) {
        parts.extend(msgs.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    if let Some(obj) = v.get("errors").and_then(Value::as_object) {
        parts.extend(
            obj.iter()
                .filter_map(|(k, m)| m.as_str().map(|m| format!("{k}: {m}"))),
        );
    }
    // v1: message (+ data.errors[].message.translation).
    if let Some(m) = v.get("message").and_then(Value::as_str) {
        parts.push(m.to_owned());
    }
    if let Some(errs) = v
        .get("data")
        .and_then(|d| d.get("errors"))
        .and_then(Value::as_array)
    {
        for e in errs {
            let m = e.get("message");
            let t = m
                .and_then(|m| m.get("translation"))
                .and_then(Value::as_str)
                .or_else(|| m.and_then(|m| m.get("key")).and_then(Value::as_str))
                .or_else(|| m.and_then(Value::as_str));
            if let Some(t) = t {
                parts.push(t.to_owned());
            }
        }
    }
    if parts.is_empty() {
        None
    } else {
        parts.dedup();
        Some(parts.join("; "))
    }
}

/// Removes every trace of the credentials from text that came from a server (a proxy might
/// echo request headers into an error page).
#[derive(Clone)]
pub(crate) struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    pub(crate) fn new(needles: Vec<String>) -> Self {
        // Ignore very short needles: redacting "a" would mangle every message.
        Self {
            needles: needles.into_iter().filter(|n| n.len() >= 4).collect(),
        }
    }

    pub(crate) fn scrub(&self, s: String) -> String {
        let mut s = s;
        for n in &self.needles {
            if s.contains(n.as_str()) {
                s = s.replace(n.as_str(), "[REDACTED]");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_error_shape() {
        let body = br#"{"errors":[{"status":401,"code":"UNAUTHORIZED","title":"Unauthorized","detail":"Authentication failed"}]}"#;
        assert_eq!(
            atlassian_message(body),
            "Unauthorized: Authentication failed"
        );
    }

    #[test]
    fn v1_error_shape() {
        let body = br#"{"statusCode":400,"message":"Permission already exists","data":{"authorized":true,"valid":false,"errors":[{"message":{"key":"k","translation":"already there"}}],"successful":false}}"#;
        assert_eq!(
            atlassian_message(body),
            "Permission already exists; already there"
        );
    }

    #[test]
    fn jira_error_shape() {
        let body = br#"{"errorMessages":["Nope"],"errors":{"emailAddress":"bad"}}"#;
        assert_eq!(atlassian_message(body), "Nope; emailAddress: bad");
    }

    #[test]
    fn plain_text_is_truncated() {
        let body = "x".repeat(2000);
        let m = atlassian_message(body.as_bytes());
        assert!(m.len() < 600, "{}", m.len());
        assert_eq!(atlassian_message(b""), "(no message)");
    }

    #[test]
    fn limits_are_recognised_from_the_message() {
        assert_eq!(
            Limit::from_message(
                "You've reached your guest limit: your site can have up to 225 guests (5 per paid user)."
            ),
            Some(Limit::Guests)
        );
        assert_eq!(
            Limit::from_message(
                "You've reached the maximum number of users for your plan. To add this user, upgrade your plan."
            ),
            Some(Limit::Users)
        );
        assert_eq!(
            Limit::from_message("User is not authorized to manage permissions of space KB"),
            None
        );
        assert_eq!(
            Limit::from_message("You do not have permission to create users."),
            None
        );
    }

    #[test]
    fn redactor_scrubs() {
        let r = Redactor::new(vec!["s3cret-token".into(), "ab".into()]);
        assert_eq!(r.scrub("echo s3cret-token ab".into()), "echo [REDACTED] ab");
    }
}
