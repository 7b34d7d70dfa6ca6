//! Security headers on every response, and request logging that never records secrets.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::settings::Settings;
use crate::state::AppState;

/// Precomputed header values (built once from the settings).
#[derive(Debug, Clone)]
pub(crate) struct SecurityHeaders {
    csp: HeaderValue,
    frame_options: Option<HeaderValue>,
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    pub(crate) fn new(settings: &Settings) -> SecurityHeaders {
        let ancestors = if settings.frame_ancestors.is_empty() {
            "'none'".to_owned()
        } else {
            settings.frame_ancestors.join(" ")
        };
        let csp = format!(
            "default-src 'self'; img-src 'self' data: https:; style-src 'self'; \
             script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors {ancestors}"
        );
        SecurityHeaders {
            // The sources were validated by kbgate-config's rule (`Settings::from_config`); fall
            // back to the strictest policy should that ever not hold.
            csp: HeaderValue::from_str(&csp).unwrap_or_else(|_| {
                HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'")
            }),
            frame_options: settings
                .frame_ancestors
                .is_empty()
                .then(|| HeaderValue::from_static("DENY")),
            hsts: (settings.public_url.scheme() == "https")
                .then(|| HeaderValue::from_static("max-age=31536000")),
        }
    }

    /// Adds `sources` to the CSP's `form-action` (the OpenID Providers the sign-in form's post
    /// redirects to). Each must be a serialised origin (`https://host[:port]`); anything else
    /// is dropped rather than written into the header.
    pub(crate) fn with_form_action(mut self, sources: &[String]) -> SecurityHeaders {
        let ok: Vec<&str> = sources
            .iter()
            .map(String::as_str)
            .filter(|s| url::Url::parse(s).is_ok_and(|u| u.origin().ascii_serialization() == *s))
            .collect();
        if ok.is_empty() {
            return self;
        }
        let Ok(csp) = self.csp.to_str() else {
            return self;
        };
        let csp = csp.replacen(
            "form-action 'self'",
            &format!("form-action 'self' {}", ok.join(" ")),
            1,
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            self.csp = v;
        }
        self
    }

    /// Adds the security headers unless the handler set a stricter one itself (e.g. the
    /// sandboxing CSP of attachment downloads).
    fn apply(&self, resp: &mut Response) {
        // The widget frame states its own `frame-ancestors`; `X-Frame-Options: DENY` would
        // forbid what that CSP allows.
        let framed = resp
            .extensions()
            .get::<crate::widget::MayBeFramed>()
            .is_some();
        let h = resp.headers_mut();
        // Room for all of them at once rather than growing the map header by header.
        h.reserve(10);
        let mut set = |name: HeaderName, value: HeaderValue| {
            if !h.contains_key(&name) {
                h.insert(name, value);
            }
        };
        set(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        set(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        // Tokens and codes travel in sign-in URLs: never send a URL of ours to another site.
        set(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        set(
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(
                "camera=(), microphone=(), geolocation=(), interest-cohort=()",
            ),
        );
        set(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
        set(
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        );
        // Everything but static assets is per viewer: keep it out of shared caches.
        set(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, private"),
        );
        if let Some(v) = &self.frame_options
            && !framed
        {
            set(header::X_FRAME_OPTIONS, v.clone());
        }
        if let Some(v) = &self.hsts {
            set(header::STRICT_TRANSPORT_SECURITY, v.clone());
        }
    }
}

/// The one middleware every request passes (one layer, not three: each layer costs a boxed
/// service clone and future per request). From the inside out: errors rendered as HTML or
/// JSON by `Accept` ([`crate::error::Negotiation`]), the security headers, and one log line
/// per request with method, path (never the query string: tokens, codes and emails live
/// there), status and duration. Headers are not logged. The direct page-view route
/// (`crate::hot`) passes the same [`Edge`].
pub(crate) async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let edge = Edge::begin(&req);
    edge.finish(next.run(req).await, &state)
}

/// What the edge keeps of a request until its response is ready.
pub(crate) struct Edge {
    method: Method,
    // Cheap to clone; the loggable path is only worked out when the line is written.
    uri: Uri,
    started: Instant,
    negotiation: crate::error::Negotiation,
}

impl Edge {
    pub(crate) fn begin<B>(req: &axum::http::Request<B>) -> Edge {
        Edge {
            method: req.method().clone(),
            uri: req.uri().clone(),
            started: Instant::now(),
            negotiation: crate::error::Negotiation::of(req),
        }
    }

    /// When the request arrived.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// The response as it leaves: errors rendered, security headers added, the line logged.
    pub(crate) fn finish(self, resp: Response, state: &AppState) -> Response {
        let Edge {
            method,
            uri,
            started,
            negotiation,
        } = self;
        let mut resp = negotiation.apply(resp, state);
        // The headers of the settings as they are now (framing origins follow a reload).
        state.live().security.apply(&mut resp);
        let status = resp.status().as_u16();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(%method, path = loggable_path(uri.path()), status, ms, "request");
        } else {
            tracing::info!(%method, path = loggable_path(uri.path()), status, ms, "request");
        }
        resp
    }
}

/// The path as logged: bounded in length, and with control characters replaced so input cannot
/// forge log lines.
fn loggable_path(path: &str) -> String {
    path.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_action_takes_provider_origins_only() {
        let s = crate::settings::tests::at("https://kb.example.com");
        let h = SecurityHeaders::new(&s).with_form_action(&[
            "https://login.microsoftonline.com".to_owned(),
            "http://127.0.0.1:4000".to_owned(),
            "https://x.com; script-src *".to_owned(),
            "https://idp.example.com/path".to_owned(),
            "*".to_owned(),
        ]);
        let csp = h.csp.to_str().unwrap();
        assert!(
            csp.contains(
                "form-action 'self' https://login.microsoftonline.com http://127.0.0.1:4000;"
            ),
            "{csp}"
        );
        assert!(!csp.contains("x.com") && !csp.contains("idp.example.com") && !csp.contains('*'));
        let unchanged = SecurityHeaders::new(&s).with_form_action(&[]);
        assert!(
            unchanged
                .csp
                .to_str()
                .unwrap()
                .contains("form-action 'self';")
        );
    }

    #[test]
    fn csp_has_no_unsafe_inline_and_uses_ancestors() {
        let s = crate::settings::tests::at("https://kb.example.com");
        let h = SecurityHeaders::new(&s);
        let csp = h.csp.to_str().unwrap();
        assert!(!csp.contains("unsafe-inline"));
        assert!(csp.contains("script-src 'self'"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(h.frame_options.is_some());
        let s =
            crate::settings::tests::framed("https://kb.example.com", &["https://app.example.com"]);
        let h = SecurityHeaders::new(&s);
        assert!(
            h.csp
                .to_str()
                .unwrap()
                .ends_with("frame-ancestors https://app.example.com")
        );
        assert!(h.frame_options.is_none());
    }

    #[test]
    fn log_path_is_sanitised() {
        assert_eq!(loggable_path("/a\r\nb"), "/a??b");
        assert_eq!(loggable_path(&"x".repeat(500)).len(), 200);
    }
}
