#![warn(unreachable_pub)]
//! HTTP portal: pages, sign-in flows and JSON API.
//!
//! - [`router`] builds the axum router over an [`AppState`]; [`serve`] runs it until a
//!   shutdown signal.
//! - The one gate: content handlers take [`CurrentViewer`] / [`ApiViewer`], which
//!   re-evaluate the current policy ([`PolicyHandle`]) on every request and yield a
//!   `kbgate_policy::Viewer`; mirror data is only reachable through [`Library`], whose every
//!   read method takes `&Viewer`.
//! - One error type, [`Error`], mapped to status codes and rendered as HTML or JSON by
//!   `Accept`; internals never reach the client.

mod access;
mod access_requests;
mod admin;
mod api;
mod api_key;
mod attachments;
mod audit;
mod auth;
mod brand;
mod changes;
mod chrome;
mod client_addr;
mod codes;
mod conns;
mod cookies;
mod error;
mod extractors;
mod hot;
mod html;
mod insights;
mod jwks;
mod lexicon;
mod library;
mod mail;
mod oidc;
mod openapi;
mod pages;
mod people;
mod policy_handle;
mod ratelimit;
mod redirect;
mod secret;
mod security;
mod sessions;
mod settings;
mod setup;
mod spliced;
mod state;
mod telemetry;
mod token;
mod urls;
mod widget;

use std::future::Future;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router, middleware};

use crate::error::Error;
use crate::urls::routes;

pub use admin::{NextRun, page_facts, page_id_from};
pub use brand::BrandError;
pub use mail::{MailError, Mailer};
pub use oidc::{OidcProvider, OidcSetupError};
pub use policy_handle::PolicyHandle;
pub use setup::SetupError;
pub use state::{AppState, Extras};
pub use telemetry::enable as enable_metrics;
pub use token::{EmbedAlgorithm, EmbedClaims, EmbedKeyError, EmbedVerifier, TokenError};

/// Largest request body accepted (forms, JSON). Tokens are far smaller.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;

/// The portal's routes, with security headers, error rendering and request logging; under
/// the path prefix of `public_url` when it has one (see [`under_prefix`]).
pub(crate) fn router(state: AppState) -> Router {
    let urls = kbgate_render::PortalUrls::under(state.settings().path_prefix());
    let routes = portal_routes(state);
    if urls.prefix().is_empty() {
        return routes;
    }
    // The outer router has no routes of its own: its layer sees every request before the
    // inner one routes it.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(
            move |req: axum::extract::Request, next: middleware::Next| {
                under_prefix(urls.clone(), req, next)
            },
        ))
}

/// Serves a request under the path prefix: the reverse proxy forwards `/kb/...` unchanged
/// (like Grafana's `serve_from_sub_path` or GitLab's relative URL root); the prefix is
/// stripped before routing and every link built while handling it carries it again
/// (`crate::urls::scoped`). Anything outside the prefix is 404, with a hint for an operator
/// whose proxy strips it.
async fn under_prefix(
    urls: kbgate_render::PortalUrls,
    mut req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let Some(rewritten) = inside_prefix(urls.prefix(), req.uri()) else {
        return (
            StatusCode::NOT_FOUND,
            [(axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")],
            format!(
                "Not found. This portal is served under {}/ (a reverse proxy must forward \
                 that path unchanged).\n",
                urls.prefix()
            ),
        )
            .into_response();
    };
    *req.uri_mut() = rewritten;
    urls::scoped(urls, next.run(req)).await
}

/// `uri` without the path prefix, if it is under it (`/kb` and `/kb/...`; not `/kbx`).
pub(crate) fn inside_prefix(prefix: &str, uri: &axum::http::Uri) -> Option<axum::http::Uri> {
    let inner = match uri.path().strip_prefix(prefix) {
        Some("") => Some("/"),
        Some(rest) if rest.starts_with('/') => Some(rest),
        _ => None,
    };
    inner.and_then(|path| {
        let pq = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = pq.parse().ok();
        axum::http::Uri::from_parts(parts).ok()
    })
}

/// The routes at the root, with their layers and state.
fn portal_routes(state: AppState) -> Router {
    Router::new()
        .route(routes::HOME, get(pages::home))
        .route(routes::SPACE, get(pages::space))
        .route(routes::SPACE_ICON, get(attachments::space_icon))
        .route(routes::PAGE, get(pages::page))
        .route(routes::SEARCH, get(pages::search))
        .route(routes::ATTACHMENT_BY_ID, get(attachments::by_id))
        .route(routes::ATTACHMENT, get(attachments::by_name))
        .route(routes::FEEDBACK, post(pages::feedback))
        .route(routes::SUGGEST, get(pages::suggest))
        .route(routes::STYLESHEET, get(pages::stylesheet))
        .route(routes::SUGGEST_JS, get(pages::suggest_js))
        .route(routes::BRAND_ASSET, get(pages::brand_asset))
        .route(
            routes::AUTH_EMBED,
            get(auth::embed_get).post(auth::embed_post),
        )
        .route(routes::AUTH_CODE, get(auth::code))
        .route(
            routes::AUTH_EMAIL,
            get(auth::email_form).post(auth::email_submit),
        )
        .route(
            routes::AUTH_EMAIL_CONFIRM,
            get(auth::email_confirm_form).post(auth::email_confirm),
        )
        .route(routes::AUTH_LOGOUT, post(auth::logout))
        .route(routes::AUTH_OIDC_CALLBACK, get(oidc::callback))
        .route(
            routes::REQUEST_ACCESS,
            get(access_requests::form).post(access_requests::submit),
        )
        .route(
            routes::REQUEST_ACCESS_CONFIRM,
            get(access_requests::confirm_form).post(access_requests::confirm),
        )
        .route(routes::API_HANDOVER, post(auth::handover))
        .route(routes::API_ACCESS_REQUESTS, post(access_requests::api))
        .route(routes::API_SPACES, get(api::spaces))
        .route(routes::API_TREE, get(api::tree))
        .route(routes::API_PAGE, get(api::page))
        .route(routes::API_SEARCH, get(api::search))
        .route(routes::API_OPENAPI, get(openapi::json))
        .route(admin::routes::HOME, get(admin::home))
        .route(admin::routes::SESSION, post(admin::open))
        .route(admin::routes::LOGOUT, post(admin::logout))
        .route(admin::routes::EXPLAIN, get(admin::explain))
        .route(admin::routes::SESSIONS, get(admin::sessions))
        .route(admin::routes::SESSIONS_REVOKE, post(admin::revoke_domain))
        .route(admin::routes::SYNC, get(admin::sync))
        .route(admin::routes::SYNC_NOW, post(admin::sync_now))
        .route(admin::routes::REQUESTS, get(admin::requests))
        .route(admin::routes::PLAN, get(admin::plan))
        .route(admin::routes::AUDIT, get(admin::audit))
        .route(admin::routes::AUDIT_CSV, get(admin::audit_csv))
        .route(admin::routes::INSIGHTS, get(admin::insights_page))
        .route(admin::routes::INSIGHTS_CSV, get(admin::insights_csv))
        .route(
            admin::routes::VIEW_AS,
            get(admin::view_as).post(admin::view_as_start),
        )
        .route(admin::routes::VIEW_AS_PAGE, get(admin::view_as_page))
        .route(admin::routes::VIEW_AS_END, post(admin::view_as_end))
        .route(routes::API_SUGGEST, get(widget::suggest))
        .route(routes::WIDGET_JS, get(widget::script))
        .route(routes::WIDGET_FRAME, get(widget::frame))
        .route(routes::WIDGET_FRAME_JS, get(widget::frame_script))
        .route(routes::WIDGET_FRAME_CSS, get(widget::frame_style))
        .route(routes::WIDGET_SESSION, post(widget::session))
        .route(routes::WIDGET_SIGNOUT, post(widget::sign_out))
        .route(routes::HEALTHZ, get(healthz))
        .route(routes::READYZ, get(readyz))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::edge,
        ))
        // Outermost, so refusals at the edge are counted too; `MatchedPath` is set by then
        // (axum matches the route before running `Router::layer` middleware).
        .layer(middleware::from_fn(telemetry::http))
        .with_state(state)
}

async fn fallback() -> Error {
    Error::NotFound
}

/// `GET /healthz`: the process is up.
async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: the store answers.
async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, Error> {
    if state.library().ready().await {
        Ok((
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ))
    } else {
        Err(Error::Unavailable)
    }
}

/// Ends the sessions of people a replaced policy refuses: each policy queued by
/// [`PolicyHandle::replace`] (the outgoing and the incoming one), in order, so that a domain
/// removed and put back ends its sessions even if no request came in between. A policy stays
/// queued, and is checked on every request, until its sweep has succeeded.
async fn sweep_refused_sessions(state: AppState) {
    let policy = state.policy().clone();
    loop {
        let queued = policy.unswept();
        let mut swept = 0;
        for q in &queued {
            match state
                .sessions()
                .end_sessions_refused_by(&q.policy, state.admins(), q.at, chrono::Utc::now())
                .await
            {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(sessions = n, "ended sessions the policy refuses");
                    }
                    swept += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ending sessions the policy refuses failed; retrying");
                    break;
                }
            }
        }
        policy.mark_swept(swept);
        if swept < queued.len() {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        if policy.unswept().is_empty() {
            policy.installed().await;
        }
    }
}

/// Serves the portal on `listener` until `shutdown` completes, then drains open requests.
/// Connections are limited in number (in total and per client) and closed when a header
/// takes too long or when idle (`[portal]` connection settings; see `conns.rs`), so that one
/// client holding hundreds of connections cannot lock others out. Client addresses are
/// recorded (for per-client rate limits). Expired sessions, codes and
/// used token ids are purged every 10 minutes while serving. When it returns, its background
/// chores have ended too (stopped at their next await, never left running on the state).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let chores = tokio_util::sync::CancellationToken::new();
    let purger = {
        let state = state.clone();
        tokio::spawn(chores.clone().run_until_cancelled_owned(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                tick.tick().await;
                match state.sessions().purge_expired().await {
                    Ok(n) if n > 0 => {
                        tracing::debug!(removed = n, "purged expired sign-in records")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging expired sign-in records failed"),
                }
            }
        }))
    };
    let sweeper = tokio::spawn(
        chores
            .clone()
            .run_until_cancelled_owned(sweep_refused_sessions(state.clone())),
    );
    // Not cut short by the cancel: it writes what is queued, then ends.
    let writer = tokio::spawn(state.insights().clone().run_writer(chores.clone()));
    let limits = state.settings().connections.clone();
    conns::run(listener, hot::Portal::new(state), limits, shutdown).await;
    chores.cancel();
    // Both end at their next await; a purge or sweep cut short is redone by the next start.
    let _ = tokio::join!(purger, sweeper, writer);
    Ok(())
}
