//! The one web error type.
//!
//! Handlers return [`Error`]; it maps to a status code and a fixed, public message. Nothing from
//! the inside (store errors, token details, secrets) reaches the client: internal causes are
//! logged server-side and the client sees a generic text. The body is JSON by default; the
//! edge middleware's [`Negotiation`] re-renders it as an HTML page when the client asks for
//! HTML, and also replaces axum's own plain-text rejections (bad query strings, bodies too
//! large, unknown routes…) with the same clean format.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::chrome::Chrome;
use crate::urls;

/// What went wrong, as far as the client may know.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Unknown route or id, and also anything the viewer may not read (existence is not revealed).
    #[error("not found")]
    NotFound,
    /// No valid session or credential.
    #[error("sign-in required")]
    Unauthorized,
    /// Signed in, but the policy grants nothing (e.g. the domain was removed or denied).
    #[error("forbidden")]
    Forbidden,
    /// A person whose email is proven (a session, or a host app's hand-over) but whom the
    /// policy refuses: denied, unknown or expired domain. Rendered as an honest refusal page
    /// (no access, what to do, sign out), never as a sign-in prompt.
    #[error("forbidden")]
    Refused(Box<Refusal>),
    /// Malformed input. The text is a fixed public explanation, never echoed input.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// A rate limit was hit.
    #[error("too many requests")]
    TooManyRequests,
    /// The service is not ready (e.g. the store is unreachable).
    #[error("service unavailable")]
    Unavailable,
    /// A bug or an infrastructure failure; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Wraps an internal failure; the cause will be logged but not shown.
    pub(crate) fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Internal(Box::new(e))
    }

    /// The HTTP status for this error.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Forbidden | Error::Refused(_) => StatusCode::FORBIDDEN,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn public_message(&self) -> &'static str {
        match self {
            Error::BadRequest(m) => m,
            _ => default_message(self.status()),
        }
    }
}

/// The fixed public text for a status code.
fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request was not understood.",
        401 => "Please sign in to continue.",
        403 => "Your account does not give access to this knowledge base.",
        404 => "There is nothing here, or you do not have access to it.",
        405 => "This method is not allowed here.",
        408 => "The request took too long.",
        413 => "The request is too large.",
        415 => "This content type is not supported.",
        422 => "The request was not understood.",
        429 => "Too many requests. Please wait a moment and try again.",
        503 => "The service is not ready. Please try again shortly.",
        s if s >= 500 => "Something went wrong on our side.",
        _ => "The request could not be completed.",
    }
}

/// Who was refused, for the refusal page: their own address and the sign-out form's token.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) email: String,
    /// Token of the sign-out form (derived from the session cookie; empty without one).
    pub(crate) csrf: String,
}

/// Marker extension: this response is an error of ours and may be re-rendered as HTML.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorMark {
    pub status: StatusCode,
    pub message: &'static str,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Internal(cause) = &self {
            tracing::error!(error = %cause, "internal error");
        }
        let mark = ErrorMark {
            status: self.status(),
            message: self.public_message(),
        };
        let mut resp = json_error(mark);
        if let Error::Refused(r) = self {
            resp.extensions_mut().insert(*r);
        }
        resp
    }
}

fn json_error(mark: ErrorMark) -> Response {
    let body = serde_json::json!({
        "error": {
            "status": mark.status.as_u16(),
            "message": mark.message,
        }
    });
    let mut resp = (mark.status, axum::Json(body)).into_response();
    resp.extensions_mut().insert(mark);
    resp
}

/// Whether the client prefers an HTML page over JSON.
///
/// API paths always get JSON. Elsewhere, an `Accept` naming `text/html` gets HTML; one naming
/// only `application/json` gets JSON; no `Accept` gets HTML (a browser-ish default for the
/// portal's pages).
pub(crate) fn wants_html(path: &str, headers: &HeaderMap) -> bool {
    if path.starts_with(urls::routes::API_PREFIX) {
        return false;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.is_empty() {
        return true;
    }
    if accept.contains("text/html") {
        return true;
    }
    !accept.contains("application/json")
}

/// How an error answer to a request is to be rendered: worked out from the request before it
/// is handled, applied to the response after (see [`crate::security::edge`]).
pub(crate) struct Negotiation {
    html: bool,
    /// Where a sign-in should lead back to (only GETs of local pages make sense); parsed only
    /// when the answer is an error.
    back_uri: Option<axum::http::Uri>,
}

impl Negotiation {
    pub(crate) fn of<B>(req: &axum::http::Request<B>) -> Negotiation {
        Negotiation {
            html: wants_html(req.uri().path(), req.headers()),
            back_uri: (req.method() == axum::http::Method::GET
                && !req.uri().path().starts_with(urls::routes::AUTH_PREFIX))
            .then(|| req.uri().clone()),
        }
    }

    /// Renders our errors (and axum's rejections) as HTML or JSON by `Accept`; other
    /// responses pass unchanged. A page that needs a session, asked for by a browser
    /// (a GET), goes to the host app's sign-in (`[embed] login_url`) when there is one.
    pub(crate) fn apply(self, resp: Response, state: &crate::state::AppState) -> Response {
        let status = resp.status();
        if !(status.is_client_error() || status.is_server_error()) {
            return resp;
        }
        let back = self
            .back_uri
            .as_ref()
            .and_then(|u| u.path_and_query())
            // The router strips the path prefix: the way back is the public path.
            .and_then(|p| crate::redirect::LocalPath::parse(&urls::to(p.as_str())));
        let mark = match resp.extensions().get::<ErrorMark>() {
            Some(m) => *m,
            // A rejection from axum or tower-http (plain text that may echo input): replace it.
            None => ErrorMark {
                status,
                message: default_message(status),
            },
        };
        let keep_headers = [header::WWW_AUTHENTICATE, header::RETRY_AFTER, header::ALLOW];
        let mut kept: Vec<(header::HeaderName, HeaderValue)> = Vec::new();
        for name in keep_headers {
            if let Some(v) = resp.headers().get(&name) {
                kept.push((name, v.clone()));
            }
        }
        if self.html
            && mark.status == StatusCode::UNAUTHORIZED
            && let (Some(login), Some(back)) = (state.login_url(), back.as_ref())
        {
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&urls::host_login(login, back.as_str())) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        let refusal = resp.extensions().get::<Refusal>().cloned();
        let mut out = if self.html {
            let page = render_error_page(
                state,
                mark.status,
                mark.message,
                back.as_ref(),
                refusal.as_ref(),
            );
            let mut r = (mark.status, Html(page)).into_response();
            r.extensions_mut().insert(mark);
            r
        } else {
            json_error(mark)
        };
        for (name, v) in kept {
            out.headers_mut().insert(name, v);
        }
        out
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    /// Where to sign in: the magic-link form, or the host app; `None` when neither exists.
    signin_href: Option<String>,
    heading: &'a str,
    message: &'a str,
    refusal: Option<&'a Refusal>,
}

/// The HTML body of an error page, in the brand's frame. Names nobody but a refused person
/// themselves (their own address, on their refusal page).
pub(crate) fn render_error_page(
    state: &crate::state::AppState,
    status: StatusCode,
    message: &str,
    back: Option<&crate::redirect::LocalPath>,
    refusal: Option<&Refusal>,
) -> String {
    let back = back.map(crate::redirect::LocalPath::as_str);
    let signin_href = if state.settings().magic_links {
        Some(urls::sign_in(back))
    } else {
        let home = crate::redirect::LocalPath::root();
        state
            .login_url()
            .map(|l| urls::host_login(l, back.unwrap_or(home.as_str())))
    };
    let heading = match status.as_u16() {
        401 => "Sign in required",
        403 => "No access",
        404 => "Page not found",
        429 => "Slow down",
        s if s >= 500 => "Something went wrong",
        _ => "Request not understood",
    };
    let page = ErrorPage {
        chrome: Chrome::anonymous(state),
        status: status.as_u16(),
        signin_href,
        heading,
        message,
        refusal: refusal.filter(|_| status == StatusCode::FORBIDDEN),
    };
    page.render()
        .unwrap_or_else(|_| format!("<!doctype html><title>{heading}</title><h1>{heading}</h1>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak() {
        let e = Error::internal(std::io::Error::other("db password=hunter2"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.public_message().contains("hunter2"));
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn accept_negotiation() {
        let mut h = HeaderMap::new();
        assert!(wants_html("/spaces", &h));
        assert!(!wants_html("/api/v1/spaces", &h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_html("/spaces", &h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(wants_html("/spaces", &h));
        assert!(!wants_html("/api/v1/search", &h));
    }
}
