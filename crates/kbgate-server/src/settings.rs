//! The portal's runtime settings, resolved once from the configuration.

use std::time::Duration;

use url::Url;

/// Settings the HTTP layer needs, resolved from `[portal]` (cookie flags decided, lifetimes
/// bounded). Built by [`Settings::new`] and adjusted with the `with_*` methods, or from the
/// loaded configuration by [`crate::AppState::from_config`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub(crate) public_url: Url,
    pub(crate) frame_ancestors: Vec<String>,
    pub(crate) cookie_secure: bool,
    pub(crate) session_idle: Duration,
    pub(crate) session_absolute: Duration,
    pub(crate) handover_code_ttl: Duration,
    pub(crate) magic_link_ttl: Duration,
    pub(crate) site_name: String,
    pub(crate) view_cache_bytes: u64,
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
}

/// Default memory for cached page views: a few thousand typical pages.
pub const DEFAULT_VIEW_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Whether a public URL is a local development address, where cookies may go without `Secure`.
fn is_local_http(url: &Url) -> bool {
    url.scheme() == "http"
        && matches!(
            url.host_str(),
            Some("localhost") | Some("127.0.0.1") | Some("[::1]")
        )
}

impl Settings {
    /// Defaults: idle expiry 8 h, absolute 7 days, hand-over codes 60 s, magic links 15 min.
    /// Cookies are `Secure` unless `public_url` is `http://localhost` or `http://127.0.0.1`.
    pub fn new(public_url: Url) -> Settings {
        let cookie_secure = !is_local_http(&public_url);
        Settings {
            public_url,
            frame_ancestors: Vec::new(),
            cookie_secure,
            session_idle: Duration::from_secs(8 * 3600),
            session_absolute: Duration::from_secs(7 * 24 * 3600),
            handover_code_ttl: Duration::from_secs(60),
            magic_link_ttl: Duration::from_secs(15 * 60),
            site_name: "Knowledge base".to_owned(),
            view_cache_bytes: DEFAULT_VIEW_CACHE_BYTES,
            trusted_proxies: Vec::new(),
        }
    }

    /// Reverse proxies whose `X-Forwarded-For` names the client (for per-client rate limits).
    /// Without them every request's client is its peer address, and the header is ignored.
    pub fn with_trusted_proxies(mut self, proxies: Vec<ipnet::IpNet>) -> Settings {
        self.trusted_proxies = proxies;
        self
    }

    /// Memory for rendered page views kept between sync commits (0 turns the cache off).
    pub fn with_view_cache_bytes(mut self, bytes: u64) -> Settings {
        self.view_cache_bytes = bytes;
        self
    }

    /// Origins allowed to frame the portal. Non-empty switches the session cookie to
    /// `SameSite=None; Secure` (a framed site is a third party to the browser).
    pub fn with_frame_ancestors(mut self, origins: Vec<String>) -> Settings {
        self.frame_ancestors = origins.into_iter().filter(|o| is_valid_source(o)).collect();
        if !self.frame_ancestors.is_empty() {
            self.cookie_secure = true;
        }
        self
    }

    /// Session lifetimes: idle (since the last request) and absolute (since sign-in).
    pub fn with_session_expiry(mut self, idle: Duration, absolute: Duration) -> Settings {
        self.session_absolute = absolute.max(Duration::from_secs(60));
        self.session_idle = idle.max(Duration::from_secs(60)).min(self.session_absolute);
        self
    }

    /// Lifetime of back-channel hand-over codes; capped at 60 s.
    pub fn with_handover_code_ttl(mut self, ttl: Duration) -> Settings {
        self.handover_code_ttl = ttl.min(Duration::from_secs(60));
        self
    }

    /// Lifetime of magic links; capped at 15 minutes.
    pub fn with_magic_link_ttl(mut self, ttl: Duration) -> Settings {
        self.magic_link_ttl = ttl.min(Duration::from_secs(15 * 60));
        self
    }

    /// The name shown in page titles and the header.
    pub fn with_site_name(mut self, name: impl Into<String>) -> Settings {
        self.site_name = name.into();
        self
    }

    /// The public base URL (links in mails and hand-over answers).
    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    /// An absolute URL for a local path.
    pub(crate) fn absolute(&self, path_and_query: &str) -> String {
        let base = self.public_url.as_str().trim_end_matches('/');
        format!("{base}{path_and_query}")
    }

    /// The `Origin` value browsers send for this site.
    pub(crate) fn origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// Whether the session cookie uses `SameSite=None` (framed portal).
    pub(crate) fn same_site_none(&self) -> bool {
        !self.frame_ancestors.is_empty()
    }
}

/// A CSP source expression we accept for `frame-ancestors`: an `http(s)://host[:port]` origin,
/// optionally with a leading `*.` host wildcard. Anything else (quotes, semicolons, spaces) could
/// inject directives, so it is dropped.
fn is_valid_source(s: &str) -> bool {
    if s == "'self'" {
        return true;
    }
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let rest = rest.strip_prefix("*.").unwrap_or(rest);
    !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn secure_cookie_unless_local() {
        assert!(!Settings::new(url("http://localhost:8080")).cookie_secure);
        assert!(!Settings::new(url("http://127.0.0.1:8080")).cookie_secure);
        assert!(Settings::new(url("https://kb.example.com")).cookie_secure);
        assert!(Settings::new(url("http://kb.example.com")).cookie_secure);
        let framed = Settings::new(url("http://localhost:8080"))
            .with_frame_ancestors(vec!["https://app.example.com".into()]);
        assert!(framed.cookie_secure);
        assert!(framed.same_site_none());
    }

    #[test]
    fn frame_ancestors_cannot_inject() {
        let s = Settings::new(url("https://kb.example.com")).with_frame_ancestors(vec![
            "https://app.example.com".into(),
            "https://*.example.org:8443".into(),
            "https://x.com; script-src *".into(),
            "'unsafe-inline'".into(),
            "*".into(),
        ]);
        assert_eq!(
            s.frame_ancestors,
            vec!["https://app.example.com", "https://*.example.org:8443"]
        );
    }

    #[test]
    fn ttl_caps() {
        let s = Settings::new(url("https://kb.example.com"))
            .with_handover_code_ttl(Duration::from_secs(600))
            .with_magic_link_ttl(Duration::from_secs(86400));
        assert_eq!(s.handover_code_ttl, Duration::from_secs(60));
        assert_eq!(s.magic_link_ttl, Duration::from_secs(900));
        assert_eq!(
            s.absolute("/auth/code?code=x"),
            "https://kb.example.com/auth/code?code=x"
        );
    }
}
