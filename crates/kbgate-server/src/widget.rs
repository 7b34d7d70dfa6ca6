//! The in-app help widget: `widget.js` for the host app's pages, the frame it opens
//! (kbgate's origin), and the frame's sign-in.
//!
//! Why a frame with a token in memory and no cookie: a kbgate cookie inside a frame on the
//! host app's page is a third-party cookie. Safari blocks those outright since 2020 ("full
//! third-party cookie blocking", Intelligent Tracking Prevention; access only through the
//! Storage Access API, which needs a user gesture and prompts), Firefox partitions them (Total
//! Cookie Protection), and Chromium blocks or partitions them by user setting. A
//! `SameSite=None; Secure; Partitioned` cookie would still fail in Safari, so it is not used
//! even as a fallback: the token in memory works the same in every browser. So the frame signs in with the existing hand-over
//! code, which the host page fetches from its own backend and posts to the frame; the frame
//! exchanges it (same-origin POST) for a widget sign-in token — a session of the ordinary
//! kind (store, revocation, idle and absolute expiry, `kbgate sessions revoke`), shorter
//! lived (`[widget] session_lifetime`) — which it keeps in a JavaScript variable and sends as
//! `X-Kbgate-Widget` to the JSON API. The host page never holds that token: it cannot read
//! the frame's memory across origins.

use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::auth::use_code;
use crate::codes::PURPOSE_HANDOVER;
use crate::cookies::cross_site;
use crate::error::Error;
use crate::extractors::{ApiViewer, widget_token};
use crate::pages::render;
use crate::state::AppState;
use crate::urls;

/// Marker extension: this response may be framed by the origins of its own CSP, so the
/// security layer adds no `X-Frame-Options: DENY` (which would override `frame-ancestors` in
/// browsers that still honour it first).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MayBeFramed;

fn asset(
    body: std::borrow::Cow<'static, str>,
    content_type: &'static str,
    cross_origin: bool,
) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    if cross_origin {
        // Loaded by `<script src>` from the host app's origin: a no-cors request, which the
        // portal's default `Cross-Origin-Resource-Policy: same-origin` would block.
        h.insert(
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        );
    }
    r
}

/// `GET /widget.js`: the script host apps include. 404 while the widget is off.
pub(crate) async fn script(State(state): State<AppState>) -> Result<Response, Error> {
    state.widget().ok_or(Error::NotFound)?;
    Ok(asset(
        themed(include_str!("../static/widget/widget.js"), &state.brand()),
        "text/javascript; charset=utf-8",
        true,
    ))
}

/// The neutral accent `widget.js` and `frame.css` are written with.
const NEUTRAL_ACCENT: &str = "#1d4ed8";

/// `text` with the brand's accent in place of the neutral one: the help button and the frame
/// look like the portal. The accent is `#rrggbb` (validated by kbgate-config), so nothing but
/// a colour can reach the script or the stylesheet; on white it meets WCAG AA (4.5:1), and so
/// does white text on it.
fn themed(text: &'static str, brand: &crate::brand::Brand) -> std::borrow::Cow<'static, str> {
    match &brand.accent {
        Some(accent) => text.replace(NEUTRAL_ACCENT, accent).into(),
        None => text.into(),
    }
}

/// `GET /widget/frame.js`: the frame's script (same origin as the frame).
pub(crate) async fn frame_script() -> Response {
    asset(
        include_str!("../static/widget/frame.js").into(),
        "text/javascript; charset=utf-8",
        false,
    )
}

/// `GET /widget/frame.css`: the frame's stylesheet.
pub(crate) async fn frame_style(State(state): State<AppState>) -> Response {
    asset(
        themed(include_str!("../static/widget/frame.css"), &state.brand()),
        "text/css; charset=utf-8",
        false,
    )
}

#[derive(Deserialize)]
pub(crate) struct FrameParams {
    host: Option<String>,
}

#[derive(Template)]
#[template(path = "widget_frame.html")]
struct FramePage {
    site_name: String,
    host: String,
}

/// `GET /widget/frame?host=ORIGIN`: the frame `widget.js` opens. `host` must be one of
/// `[widget] allowed_origins`; the page may then be framed by that origin only, and its script
/// takes sign-in codes from that origin only.
pub(crate) async fn frame(
    State(state): State<AppState>,
    Query(p): Query<FrameParams>,
) -> Result<Response, Error> {
    let widget = state.widget().ok_or(Error::NotFound)?;
    let host = p
        .host
        .filter(|h| widget.allowed_origins.iter().any(|o| o == h))
        .ok_or(Error::Forbidden)?;
    let mut resp = render(&FramePage {
        site_name: state.brand().site_name.clone(),
        host: host.clone(),
    })?
    .into_response();
    // `host` is one of the configured origins, checked by kbgate-config as an exact origin.
    let csp = format!(
        "default-src 'self'; img-src 'self' data: https:; style-src 'self'; \
         script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors {host}"
    );
    let csp = HeaderValue::from_str(&csp).map_err(Error::internal)?;
    resp.headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, csp);
    resp.extensions_mut().insert(MayBeFramed);
    Ok(resp)
}

#[derive(Deserialize)]
pub(crate) struct SessionRequest {
    code: String,
}

#[derive(Serialize)]
pub(crate) struct SessionResponse {
    token: String,
    email: String,
    expires_in: u64,
}

/// `POST /widget/session` (JSON `{"code"}`): exchanges a hand-over code for a widget sign-in
/// token. Only from the frame itself (same origin): another site could only sign a browser in
/// to a token it then cannot read, but there is no reason to let it try.
pub(crate) async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<SessionRequest>,
) -> Result<Json<SessionResponse>, Error> {
    let widget = state.widget().ok_or(Error::NotFound)?;
    if cross_site(&headers, &state.settings()) {
        return Err(Error::Forbidden);
    }
    let (email, _) = use_code(&state, Some(&req.code), PURPOSE_HANDOVER)
        .await?
        .ok_or(Error::Unauthorized)?;
    let now = Utc::now();
    if state.policy().viewer(&email, now).is_err() {
        state
            .audit()
            .record(
                email.as_str(),
                "signin.refused",
                serde_json::json!({ "method": "widget" }),
            )
            .await;
        return Err(Error::Unauthorized);
    }
    let generation = state.policy().generation();
    let lifetime = widget.session_lifetime;
    let token = state.sessions().create_for(&email, lifetime, now).await?;
    // As in `auth::sign_in`: a reload between the check and the insert is checked again.
    if state.policy().generation() != generation
        && state
            .policy()
            .session_viewer(&email, now, Utc::now())
            .is_err()
    {
        state.sessions().revoke(&token).await?;
        return Err(Error::Unauthorized);
    }
    state
        .audit()
        .record(
            email.as_str(),
            "session.create",
            serde_json::json!({ "method": "widget" }),
        )
        .await;
    Ok(Json(SessionResponse {
        token: token.expose().to_owned(),
        email: email.as_str().to_owned(),
        expires_in: lifetime.as_secs(),
    }))
}

/// `POST /widget/signout` with `X-Kbgate-Widget`: ends that widget sign-in.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, Error> {
    let token = widget_token(&headers)?.ok_or(Error::Unauthorized)?;
    if state.sessions().revoke(&token).await? {
        state
            .audit()
            .record(
                "session",
                "session.end",
                serde_json::json!({ "method": "widget" }),
            )
            .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(crate) struct SuggestQuery {
    path: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct SuggestHit {
    id: String,
    title: String,
    space_key: String,
    url: String,
}

#[derive(Serialize)]
pub(crate) struct SuggestJson {
    hits: Vec<SuggestHit>,
}

/// Most suggestions shown.
const MAX_SUGGESTIONS: usize = 8;

/// Whether host path `path` is under `prefix`, by whole segments.
fn under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `GET /api/v1/suggest?path=`: the readable pages suggested for a host app page, by the
/// first `[[widget.suggest]]` whose `path_prefix` the path is under.
pub(crate) async fn suggest(
    State(state): State<AppState>,
    v: ApiViewer,
    Query(q): Query<SuggestQuery>,
) -> Result<Json<SuggestJson>, Error> {
    let path = q.path.unwrap_or_default();
    let Some(rule) = state
        .widget()
        .and_then(|w| w.suggest.iter().find(|s| under(&path, &s.path_prefix)))
    else {
        return Ok(Json(SuggestJson { hits: Vec::new() }));
    };
    let hits = state
        .library()
        .pages_with_labels(&v.viewer, &rule.labels, MAX_SUGGESTIONS)
        .await?;
    let s = &state.settings();
    Ok(Json(SuggestJson {
        hits: hits
            .into_iter()
            .map(|h| SuggestHit {
                url: s.absolute(&urls::page(&h.hit.page_id)),
                id: h.hit.page_id,
                title: h.hit.title,
                space_key: h.space_key,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(under("/billing", "/billing"));
        assert!(under("/billing/invoices", "/billing"));
        assert!(!under("/billingx", "/billing"));
        assert!(!under("/", "/billing"));
        assert!(under("/anything", ""));
    }
}
