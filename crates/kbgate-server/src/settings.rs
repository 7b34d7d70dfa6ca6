//! The portal's view of `[portal]`: what the HTTP layer derives from
//! [`kbgate_config::PortalConfig`], computed in one place ([`Settings::from_config`]).
//!
//! No defaults or limits are stated here: they are `kbgate-config`'s, validated when the file
//! is loaded. This only adds what follows from the values (cookie flags, byte counts) and the
//! two fixed values no configuration sets.

use std::time::Duration;

use kbgate_config::PortalConfig;
use url::Url;

/// Lifetime of back-channel hand-over codes: the host app redeems them at once.
pub(crate) const HANDOVER_CODE_TTL: Duration = Duration::from_secs(60);

/// Settings the HTTP layer needs, derived from [`PortalConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) public_url: Url,
    pub(crate) frame_ancestors: Vec<String>,
    pub(crate) cookie_secure: bool,
    pub(crate) session_idle: Duration,
    pub(crate) session_absolute: Duration,
    pub(crate) handover_code_ttl: Duration,
    pub(crate) magic_link_ttl: Duration,
    /// `[portal] magic_link`: whether the magic-link form is offered.
    pub(crate) magic_links: bool,
    pub(crate) view_cache_bytes: u64,
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    pub(crate) connections: crate::conns::ConnLimits,
    /// Keep readers' emails with feedback and search events (`[portal] record_emails`).
    pub(crate) record_emails: bool,
}

/// The name prefix of a cookie (RFC 6265bis §4.1.3): what the browser checks before storing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CookiePrefix {
    /// `__Host-`: Secure, `Path=/`, no `Domain`.
    Host,
    /// `__Secure-`: Secure.
    Secure,
    /// None (plain http on a local address).
    None,
}

/// Whether a public URL is a local development address, where cookies may go without `Secure`.
fn is_local_http(url: &Url) -> bool {
    url.scheme() == "http"
        && matches!(
            url.host_str(),
            Some("localhost") | Some("127.0.0.1") | Some("[::1]")
        )
}

impl Settings {
    /// Cookies are `Secure` unless `public_url` is `http://localhost` or `http://127.0.0.1`, or
    /// always when the portal may be framed (`SameSite=None` needs `Secure`).
    ///
    /// The loader refuses a `frame_ancestors` entry that is not a source expression; one that
    /// reached a programmatic config anyway is dropped by the same rule
    /// ([`kbgate_config::check_frame_ancestor`]) rather than written into the CSP header.
    pub(crate) fn from_config(p: &PortalConfig) -> Settings {
        let frame_ancestors: Vec<String> = p
            .frame_ancestors
            .iter()
            .filter(|o| {
                let ok = kbgate_config::check_frame_ancestor(o).is_ok();
                if !ok {
                    tracing::warn!(source = %o, "frame_ancestors: not a source expression, dropped");
                }
                ok
            })
            .cloned()
            .collect();
        let cookie_secure = !frame_ancestors.is_empty() || !is_local_http(&p.public_url);
        Settings {
            public_url: p.public_url.clone(),
            frame_ancestors,
            cookie_secure,
            session_idle: p.session_idle,
            session_absolute: p.session_absolute,
            handover_code_ttl: HANDOVER_CODE_TTL,
            magic_link_ttl: p.magic_link_ttl,
            magic_links: p.magic_links,
            view_cache_bytes: p.view_cache_mb.saturating_mul(1024 * 1024),
            trusted_proxies: p.trusted_proxies.clone(),
            connections: crate::conns::ConnLimits {
                header_read_timeout: p.header_read_timeout,
                idle_timeout: p.idle_timeout,
                max_connections: usize::try_from(p.max_connections).unwrap_or(usize::MAX),
                max_per_client: usize::try_from(p.max_connections_per_client).unwrap_or(usize::MAX),
                trusted_proxies: p.trusted_proxies.clone(),
            },
            record_emails: p.record_emails,
        }
    }

    /// Takes from `running` what only applies at start: the listener's connection limits and
    /// timeouts and trusted proxies (the accept loop has its copy), the view cache size (the
    /// cache is built once), and the public URL (cookie names and links of open sessions).
    pub(crate) fn keep_restart_only(&mut self, running: &Settings) {
        self.public_url = running.public_url.clone();
        self.cookie_secure = !self.frame_ancestors.is_empty() || !is_local_http(&self.public_url);
        self.view_cache_bytes = running.view_cache_bytes;
        self.trusted_proxies = running.trusted_proxies.clone();
        self.connections = running.connections.clone();
    }

    /// An absolute URL for a public path (one built by `crate::urls`, which carries the
    /// path prefix already).
    pub(crate) fn absolute(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.origin())
    }

    /// The path prefix of `public_url` (`/kb`, or `""` at the root of the origin).
    pub(crate) fn path_prefix(&self) -> &str {
        self.public_url.path().trim_end_matches('/')
    }

    /// `Path=` of the portal's cookies: the prefix, so that they go only to the portal.
    pub(crate) fn cookie_path(&self) -> &str {
        match self.path_prefix() {
            "" => "/",
            p => p,
        }
    }

    /// Which name prefix the portal's cookies take: `__Host-` binds one to this exact
    /// origin but requires `Path=/`, so under a path prefix `__Secure-` is the strongest.
    pub(crate) fn cookie_prefix(&self) -> CookiePrefix {
        match (self.cookie_secure, self.path_prefix().is_empty()) {
            (false, _) => CookiePrefix::None,
            (true, true) => CookiePrefix::Host,
            (true, false) => CookiePrefix::Secure,
        }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The settings of a portal at `url` with every key at its default.
    pub(crate) fn at(url: &str) -> Settings {
        Settings::from_config(&PortalConfig::new(Url::parse(url).unwrap()))
    }

    /// [`at`], framed by `origins`.
    pub(crate) fn framed(url: &str, origins: &[&str]) -> Settings {
        let mut p = PortalConfig::new(Url::parse(url).unwrap());
        p.frame_ancestors = origins.iter().map(|o| o.to_string()).collect();
        Settings::from_config(&p)
    }

    #[test]
    fn secure_cookie_unless_local() {
        assert!(!at("http://localhost:8080").cookie_secure);
        assert!(!at("http://127.0.0.1:8080").cookie_secure);
        assert!(at("https://kb.example.com").cookie_secure);
        assert!(at("http://kb.example.com").cookie_secure);
        let framed = framed("http://localhost:8080", &["https://app.example.com"]);
        assert!(framed.cookie_secure);
        assert!(framed.same_site_none());
    }

    #[test]
    fn frame_ancestors_cannot_inject() {
        let s = framed(
            "https://kb.example.com",
            &[
                "https://app.example.com",
                "https://*.example.org:8443",
                "https://x.com; script-src *",
                "'unsafe-inline'",
                "*",
            ],
        );
        assert_eq!(
            s.frame_ancestors,
            vec!["https://app.example.com", "https://*.example.org:8443"]
        );
    }

    #[test]
    fn values_are_taken_as_configured() {
        let mut p = PortalConfig::new(Url::parse("https://kb.example.com").unwrap());
        p.magic_link_ttl = Duration::from_secs(600);
        p.session_idle = Duration::from_secs(120);
        p.view_cache_mb = 2;
        let s = Settings::from_config(&p);
        assert_eq!(s.magic_link_ttl, Duration::from_secs(600));
        assert_eq!(s.session_idle, Duration::from_secs(120));
        assert_eq!(s.view_cache_bytes, 2 * 1024 * 1024);
        assert_eq!(s.handover_code_ttl, Duration::from_secs(60));
        assert_eq!(
            s.absolute("/auth/code?code=x"),
            "https://kb.example.com/auth/code?code=x"
        );
    }

    #[test]
    fn under_a_prefix_cookies_take_its_path_and_the_secure_name() {
        let s = at("https://app.example.com/kb/");
        assert_eq!(s.path_prefix(), "/kb");
        assert_eq!(s.cookie_path(), "/kb");
        assert_eq!(s.cookie_prefix(), CookiePrefix::Secure);
        assert_eq!(
            s.absolute("/kb/pages/1"),
            "https://app.example.com/kb/pages/1"
        );
        let root = at("https://kb.example.com");
        assert_eq!((root.path_prefix(), root.cookie_path()), ("", "/"));
        assert_eq!(root.cookie_prefix(), CookiePrefix::Host);
        assert_eq!(
            at("http://127.0.0.1:1/kb").cookie_prefix(),
            CookiePrefix::None
        );
    }
}
