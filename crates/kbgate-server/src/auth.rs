//! Sign-in and sign-out: embed hand-over (JWT), back-channel code, magic link, logout.
//!
//! Every path that opens a session ends in [`sign_in`]: the email must get a `Viewer` from the
//! current policy (a denied or unknown domain opens nothing), any session already presented
//! is ended (rotation), and a fresh id is set in the cookie.

use askama::Template;
use axum::Json;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use kbgate_policy::Email;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::gate::{
    ClientAddr, PURPOSE_HANDOVER, PURPOSE_MAGIC, check_api_key, clear_cookie, session_cookie,
    set_cookie,
};
use crate::pages::{Chrome, render};
use crate::redirect::LocalPath;
use crate::secret::{Opaque, ct_eq};
use crate::state::AppState;
use crate::token::MAX_TOKEN_BYTES;

/// Opens a session for `email` and redirects to `return_to`.
async fn sign_in(
    state: &AppState,
    headers: &HeaderMap,
    email: &Email,
    return_to: &LocalPath,
    method: &str,
) -> Result<Response, Error> {
    let now = Utc::now();
    // Refused emails get the same answer as bad tokens: no session, 401.
    if state.policy().viewer(email, now).is_err() {
        state
            .sessions()
            .audit(
                email.as_str(),
                "signin.refused",
                serde_json::json!({ "method": method }),
            )
            .await;
        return Err(Error::Unauthorized);
    }
    let settings = state.settings();
    if let Some(old) = session_cookie(headers, settings) {
        state.sessions().revoke(&old).await?;
    }
    let id = state.sessions().create(email, settings, now).await?;
    state
        .sessions()
        .audit(
            email.as_str(),
            "session.create",
            serde_json::json!({ "method": method }),
        )
        .await;
    let mut resp = redirect(return_to.as_str());
    if let Ok(v) = HeaderValue::from_str(&set_cookie(settings, &id)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `303 See Other` to a local path.
fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let v = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/"));
    resp.headers_mut().insert(header::LOCATION, v);
    resp
}

/// Query or form of the embed hand-over.
#[derive(Deserialize)]
pub(crate) struct EmbedParams {
    token: Option<String>,
    return_to: Option<String>,
}

async fn embed(state: &AppState, headers: &HeaderMap, p: EmbedParams) -> Result<Response, Error> {
    let verifier = state.embed().ok_or(Error::NotFound)?;
    let token = p.token.ok_or(Error::Unauthorized)?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Error::Unauthorized);
    }
    let now = Utc::now();
    let claims = match verifier.verify(&token, now.timestamp()) {
        Ok(c) => c,
        Err(e) => {
            // The reason, never the token.
            tracing::info!(reason = %e, "embed token refused");
            return Err(Error::Unauthorized);
        }
    };
    if !state
        .sessions()
        .consume_jti(&claims.jti, claims.exp)
        .await?
    {
        tracing::info!("embed token replayed");
        return Err(Error::Unauthorized);
    }
    let return_to = LocalPath::parse_or_root(p.return_to.as_deref());
    sign_in(state, headers, &claims.email, &return_to, "embed").await
}

/// `GET /auth/embed?token=&return_to=`.
pub(crate) async fn embed_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<EmbedParams>,
) -> Result<Response, Error> {
    embed(&state, &headers, p).await
}

/// `POST /auth/embed` (form `token`, `return_to`).
pub(crate) async fn embed_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(p): Form<EmbedParams>,
) -> Result<Response, Error> {
    embed(&state, &headers, p).await
}

/// Body of `POST /api/v1/handover`.
#[derive(Deserialize)]
pub(crate) struct HandoverRequest {
    email: String,
    return_to: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct HandoverResponse {
    url: String,
    expires_in: u64,
}

/// `POST /api/v1/handover`: the host app's backend exchanges an email for a one-time URL.
pub(crate) async fn handover(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<HandoverRequest>,
) -> Result<Json<HandoverResponse>, Error> {
    if !check_api_key(&headers, &state)? {
        return Err(Error::Unauthorized);
    }
    if !state.limit_handover().check("handover") {
        return Err(Error::TooManyRequests);
    }
    let email = Email::parse(req.email.trim())
        .map_err(|_| Error::BadRequest("the email address is invalid"))?;
    let now = Utc::now();
    // The host app is trusted to know: a refused email gets no code.
    state.policy().viewer(&email, now)?;
    let return_to = LocalPath::parse_or_root(req.return_to.as_deref());
    let ttl = state.settings().handover_code_ttl;
    let code = state
        .sessions()
        .create_code(PURPOSE_HANDOVER, &email, return_to.as_str(), ttl, now)
        .await?;
    let url = state
        .settings()
        .absolute(&format!("/auth/code?code={}", code.expose()));
    Ok(Json(HandoverResponse {
        url,
        expires_in: ttl.as_secs(),
    }))
}

#[derive(Deserialize)]
pub(crate) struct CodeParams {
    code: Option<String>,
    return_to: Option<String>,
}

async fn redeem(
    state: &AppState,
    headers: &HeaderMap,
    code: Option<&str>,
    purpose: &str,
) -> Result<Response, Error> {
    let code = code.and_then(Opaque::parse).ok_or(Error::Unauthorized)?;
    let now = Utc::now();
    let rec = state
        .sessions()
        .consume_code(&code, purpose, now)
        .await?
        .ok_or(Error::Unauthorized)?;
    let email = Email::parse(&rec.email).map_err(|_| Error::Unauthorized)?;
    let return_to = LocalPath::parse_or_root(rec.return_to.as_deref());
    sign_in(state, headers, &email, &return_to, purpose).await
}

/// `GET /auth/code?code=`: redeems a back-channel hand-over code.
pub(crate) async fn code(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<CodeParams>,
) -> Result<Response, Error> {
    redeem(&state, &headers, p.code.as_deref(), PURPOSE_HANDOVER).await
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    chrome: Chrome,
    sent: bool,
    minutes: u64,
    return_to: String,
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    action: &'static str,
    field: &'static str,
    value: String,
    return_to: String,
}

/// `GET /auth/email`: the magic-link form.
pub(crate) async fn email_form(
    State(state): State<AppState>,
    Query(p): Query<CodeParams>,
) -> Result<Html<String>, Error> {
    render(&SignInPage {
        chrome: Chrome::anonymous(&state),
        sent: false,
        minutes: state.settings().magic_link_ttl.as_secs() / 60,
        return_to: LocalPath::parse_or_root(p.return_to.as_deref()).to_string(),
    })
}

#[derive(Deserialize)]
pub(crate) struct EmailForm {
    email: String,
    return_to: Option<String>,
}

/// `POST /auth/email`: sends a magic link if the domain is allowed. The answer is the same
/// either way, and mail goes out in the background so timing does not tell either.
pub(crate) async fn email_submit(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<EmailForm>,
) -> Result<Response, Error> {
    let raw = f.email.trim();
    if raw.is_empty() || raw.len() > 254 {
        return Err(Error::BadRequest("please enter a valid email address"));
    }
    let email =
        Email::parse(raw).map_err(|_| Error::BadRequest("please enter a valid email address"))?;
    let client_key = addr.map(|a| a.ip().to_string()).unwrap_or_default();
    if !state.limit_client().check(&client_key) || !state.limit_email().check(email.as_str()) {
        return Err(Error::TooManyRequests);
    }
    let return_to = LocalPath::parse_or_root(f.return_to.as_deref());
    let now = Utc::now();
    if state.policy().viewer(&email, now).is_ok()
        && let Some(mailer) = state.mailer().cloned()
    {
        // Creating the code and sending happen after the answer, so neither the answer nor
        // its timing tells whether the address is allowed.
        let state = state.clone();
        let return_to = return_to.clone();
        tokio::spawn(async move {
            let ttl = state.settings().magic_link_ttl;
            let code = match state
                .sessions()
                .create_code(PURPOSE_MAGIC, &email, return_to.as_str(), ttl, now)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "magic-link code not stored");
                    return;
                }
            };
            let link = state
                .settings()
                .absolute(&format!("/auth/email/confirm?code={}", code.expose()));
            let site = state.settings().site_name.clone();
            if let Err(e) = mailer
                .send_magic_link(&email, &link, &site, ttl.as_secs() / 60)
                .await
            {
                tracing::warn!(error = %e, "magic-link mail not sent");
            }
        });
    }
    Ok(render(&SignInPage {
        chrome: Chrome::anonymous(&state),
        sent: true,
        minutes: state.settings().magic_link_ttl.as_secs() / 60,
        return_to: return_to.to_string(),
    })?
    .into_response())
}

/// `GET /auth/email/confirm?code=`: asks for a click before using the link, so mail scanners
/// that prefetch links do not burn it.
pub(crate) async fn email_confirm_form(
    State(state): State<AppState>,
    Query(p): Query<CodeParams>,
) -> Result<Html<String>, Error> {
    let code = p
        .code
        .as_deref()
        .and_then(Opaque::parse)
        .ok_or(Error::Unauthorized)?;
    render(&ConfirmPage {
        chrome: Chrome::anonymous(&state),
        action: "/auth/email/confirm",
        field: "code",
        value: code.expose().to_owned(),
        return_to: String::new(),
    })
}

/// `POST /auth/email/confirm` (form `code`): uses the magic link.
pub(crate) async fn email_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(p): Form<CodeParams>,
) -> Result<Response, Error> {
    redeem(&state, &headers, p.code.as_deref(), PURPOSE_MAGIC).await
}

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    csrf: Option<String>,
}

/// `POST /auth/logout`: ends the session. Cross-site requests are refused by an `Origin`
/// check and by the form token derived from the session id.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Result<Response, Error> {
    let settings = state.settings();
    if let Some(origin) = headers.get(header::ORIGIN)
        && origin.as_bytes() != settings.origin().as_bytes()
    {
        return Err(Error::Forbidden);
    }
    let mut resp = redirect("/auth/email");
    if let Some(id) = session_cookie(&headers, settings) {
        let token = f.csrf.unwrap_or_default();
        if !ct_eq(&token, &id.derive("csrf")) {
            return Err(Error::Forbidden);
        }
        state.sessions().revoke(&id).await?;
        state
            .sessions()
            .audit("session", "session.end", serde_json::json!({}))
            .await;
    }
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(settings)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}
