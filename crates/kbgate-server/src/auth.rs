//! Sign-in and sign-out: embed hand-over (JWT), back-channel code, magic link, logout.
//!
//! Every path that opens a session ends in [`sign_in`]: the email must get a `Viewer` from the
//! current policy (a denied or unknown domain opens nothing), any session already presented
//! is ended (rotation), and a fresh id is set in the cookie.
//!
//! The mailed-link machinery ([`mail_link`], [`use_code`]) is shared with access requests
//! (`crate::access_requests`): both answer the same for every address, mail in the
//! background, share the per-email and per-client limits, and use single-use codes.

use std::net::IpAddr;

use askama::Template;
use axum::Json;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use kbgate_policy::Email;
use serde::{Deserialize, Serialize};

use crate::api_key::check_api_key;
use crate::chrome::Chrome;
use crate::client_addr::ClientAddr;
use crate::codes::{PURPOSE_HANDOVER, PURPOSE_MAGIC};
use crate::cookies::{
    clear_cookie, cookie_flags, cross_site, read_cookie, session_cookie, set_cookie,
};
use crate::error::Error;
use crate::mail::LinkMail;
use crate::pages::render;
use crate::ratelimit::{client_key, mailbox_key};
use crate::redirect::LocalPath;
use crate::secret::{Opaque, ct_eq};
use crate::state::AppState;
use crate::token::MAX_TOKEN_BYTES;
use crate::urls::{self, routes};

/// Opens a session for `email` and redirects to `return_to`.
pub(crate) async fn sign_in(
    state: &AppState,
    headers: &HeaderMap,
    email: &Email,
    return_to: &LocalPath,
    method: &str,
) -> Result<Response, Error> {
    let now = Utc::now();
    let generation = state.policy().generation();
    let settings = &state.settings();
    // The email is proven (a verified token or a used single-use code) but the policy
    // refuses it: no session, and an honest answer — no access, whom to ask — rather than a
    // sign-in prompt that could never succeed.
    // An `[admin]` email opens a session even when no audience grants it anything: staff
    // sign in to the console through the readers' flows (its portal pages then answer 403).
    let admin = state.admins().is_admin(email);
    if !admin && state.policy().viewer(email, now).is_err() {
        state
            .audit()
            .record(
                email.as_str(),
                "signin.refused",
                serde_json::json!({ "method": method }),
            )
            .await;
        crate::telemetry::sign_in(method, "refused");
        return Err(Error::Refused(Box::new(crate::error::Refusal {
            email: email.as_str().to_owned(),
            csrf: session_cookie(headers, settings)
                .map(|id| id.derive("csrf"))
                .unwrap_or_default(),
        })));
    }
    if let Some(old) = session_cookie(headers, settings) {
        state.sessions().revoke(&old).await?;
    }
    let id = state.sessions().create(email, settings, now).await?;
    // A reload between the check above and the insert: its sweep may have listed sessions
    // before this one existed. Checking again after the insert closes that gap (the reload's
    // sweep either sees this session or this check sees its policies).
    if !admin
        && state.policy().generation() != generation
        && state
            .policy()
            .session_viewer(email, now, Utc::now())
            .is_err()
    {
        state.sessions().revoke(&id).await?;
        crate::telemetry::sign_in(method, "refused");
        return Err(Error::Unauthorized);
    }
    crate::telemetry::sign_in(method, "ok");
    state
        .audit()
        .record(
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
    let live = state.live();
    let verifier = live.embed.as_ref().ok_or(Error::NotFound)?;
    let token = p.token.ok_or(Error::Unauthorized)?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Error::Unauthorized);
    }
    let now = Utc::now();
    let claims = match verifier.verify(&token, now.timestamp()).await {
        Ok(c) => c,
        Err(e) => {
            // The reason, never the token.
            tracing::info!(reason = %e, "embed token refused");
            crate::telemetry::sign_in("embed", "invalid");
            return Err(Error::Unauthorized);
        }
    };
    if !state.codes().consume_jti(&claims.jti, claims.exp).await? {
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
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct HandoverRequest {
    email: String,
    return_to: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct HandoverResponse {
    url: String,
    expires_in: u64,
}

/// `POST /api/v1/handover`: the host app's backend exchanges an email for a one-time URL.
#[utoipa::path(
    post, path = "/api/v1/handover", tag = "sign-in",
    summary = "Exchange a verified email for a one-time sign-in URL (valid 60 s)",
    request_body = HandoverRequest,
    responses(
        (status = 200, description = "The one-time URL to send the person's browser to", body = HandoverResponse),
        crate::openapi::HostAppErrors,
        (status = 403, description = "The policy grants this email nothing", body = crate::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
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
        .codes()
        .create_code(PURPOSE_HANDOVER, &email, return_to.as_str(), ttl, now)
        .await?;
    let url = state
        .settings()
        .absolute(&urls::with_code(routes::AUTH_CODE, &code));
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

/// Uses a single-use code of `purpose`: the email it was issued for and where it leads back
/// to, or `None` when the code is malformed, unknown, expired, already used or of another
/// purpose (the caller cannot tell which, and neither can the client).
pub(crate) async fn use_code(
    state: &AppState,
    code: Option<&str>,
    purpose: &str,
) -> Result<Option<(Email, LocalPath)>, Error> {
    let Some(code) = code.and_then(Opaque::parse) else {
        return Ok(None);
    };
    let Some(rec) = state
        .codes()
        .consume_code(&code, purpose, Utc::now())
        .await?
    else {
        return Ok(None);
    };
    // Stored emails were parsed when the code was made; one that no longer parses (rules
    // tightened) makes the code worthless.
    let Ok(email) = Email::parse(&rec.email) else {
        return Ok(None);
    };
    Ok(Some((
        email,
        LocalPath::parse_or_root(rec.return_to.as_deref()),
    )))
}

async fn redeem(
    state: &AppState,
    headers: &HeaderMap,
    code: Option<&str>,
    purpose: &str,
) -> Result<Response, Error> {
    let Some((email, return_to)) = use_code(state, code, purpose).await? else {
        crate::telemetry::sign_in(purpose, "invalid");
        return Err(Error::Unauthorized);
    };
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
    /// Whether to link to `/request-access` (only when some audience is delivered natively;
    /// a portal-only site would lead people to a form that can never send anything).
    request_access: bool,
    /// `[portal] magic_link`: off, the page says where to sign in instead of showing a form.
    magic_links: bool,
    /// The host app's sign-in (`[embed] login_url`), leading back to `return_to`.
    login_href: Option<String>,
    /// Whether some domains sign in with their own OpenID Provider (the form then says so).
    sso: bool,
}

impl SignInPage {
    fn new(state: &AppState, sent: bool, return_to: &LocalPath) -> SignInPage {
        SignInPage {
            chrome: Chrome::anonymous(state),
            sent,
            minutes: state.settings().magic_link_ttl.as_secs() / 60,
            return_to: return_to.to_string(),
            request_access: offers_access_requests(state),
            magic_links: state.settings().magic_links,
            login_href: state
                .login_url()
                .map(|l| urls::host_login(l, return_to.as_str())),
            sso: state.oidc().has_providers(),
        }
    }
}

/// Whether the current policy has an audience that access requests can lead to.
fn offers_access_requests(state: &AppState) -> bool {
    state
        .policy()
        .current()
        .audiences()
        .iter()
        .any(|a| a.delivery.is_native())
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    action: &'static str,
    field: &'static str,
    value: String,
    return_to: String,
    /// Form token tying the post to the browser that opened the link (empty: none).
    csrf: String,
}

/// `GET /auth/email`: the magic-link form.
pub(crate) async fn email_form(
    State(state): State<AppState>,
    Query(p): Query<CodeParams>,
) -> Result<Html<String>, Error> {
    let return_to = LocalPath::parse_or_root(p.return_to.as_deref());
    render(&SignInPage::new(&state, false, &return_to))
}

#[derive(Deserialize)]
pub(crate) struct EmailForm {
    email: String,
    return_to: Option<String>,
}

/// A single-use link that a form sends by mail. Sign-in and access requests differ only in
/// these three things; everything else about mailing a link is [`mail_link`].
pub(crate) struct MailedLink {
    /// Purpose of the code behind the link (a code of one purpose is useless for another).
    pub(crate) purpose: &'static str,
    /// The page the link opens, with `?code=` appended.
    pub(crate) path: &'static str,
    /// How the mail reads.
    pub(crate) mail: LinkMail,
}

const MAGIC_LINK: MailedLink = MailedLink {
    purpose: PURPOSE_MAGIC,
    path: routes::AUTH_EMAIL_CONFIRM,
    mail: LinkMail::SignIn,
};

/// Parses the address typed into a form. Bad input gets one fixed explanation, never an echo.
pub(crate) fn form_email(raw: &str) -> Result<Email, Error> {
    const INVALID: Error = Error::BadRequest("please enter a valid email address");
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 254 {
        return Err(INVALID);
    }
    Email::parse(raw).map_err(|_| INVALID)
}

/// The common part of every form that mails a link: parses the address, applies the
/// per-client and per-email limits (one pair for all such forms, so a mailbox cannot be
/// flooded by alternating between them), and, when `eligible` accepts the address and mail
/// is configured, creates the code and sends the link.
///
/// Only malformed input and rate limits make a difference to the caller; whether the
/// address was eligible does not. Creating the code and sending happen after the answer, so
/// neither the answer nor its timing tells whether the address is allowed.
pub(crate) fn mail_link(
    state: &AppState,
    addr: Option<IpAddr>,
    raw_email: &str,
    link: &'static MailedLink,
    return_to: &LocalPath,
    eligible: impl FnOnce(&Email, DateTime<Utc>) -> bool,
) -> Result<(), Error> {
    let email = form_email(raw_email)?;
    if !state.limit_client().check(&client_key(addr))
        || !state.limit_email().check(&mailbox_key(&email))
    {
        return Err(Error::TooManyRequests);
    }
    let now = Utc::now();
    if !eligible(&email, now) {
        return Ok(());
    }
    let Some(mailer) = state.live().mailer.clone() else {
        return Ok(());
    };
    let state = state.clone();
    let return_to = return_to.clone();
    // The link is built in the task: it keeps the request's path prefix.
    let portal = urls::current();
    tokio::spawn(urls::scoped(portal, async move {
        let ttl = state.settings().magic_link_ttl;
        let code = match state
            .codes()
            .create_code(link.purpose, &email, return_to.as_str(), ttl, now)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, kind = link.mail.as_str(), "mailed-link code not stored");
                return;
            }
        };
        // The page to go to travels in the link too (it is no secret): a link used or
        // expired still takes someone already signed in there (see `email_confirm`).
        let url = state.settings().absolute(&urls::with_return_to(
            &urls::with_code(link.path, &code),
            &return_to,
        ));
        let site = state.brand().title_name.clone();
        if let Err(e) = mailer
            .send_link(link.mail, &email, &url, &site, ttl.as_secs() / 60)
            .await
        {
            tracing::warn!(error = %e, kind = link.mail.as_str(), "mailed-link mail not sent");
        }
    }));
    Ok(())
}

/// `POST /auth/email`: an address of a domain bound to an OpenID Provider is sent there
/// (home-realm discovery, `crate::oidc`); otherwise a magic link is sent if the domain is
/// allowed. The magic-link answer is the same either way (see [`mail_link`]).
pub(crate) async fn email_submit(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<EmailForm>,
) -> Result<Response, Error> {
    if !state.settings().magic_links {
        return Err(Error::NotFound);
    }
    let return_to = LocalPath::parse_or_root(f.return_to.as_deref());
    if let Ok(email) = form_email(&f.email)
        && let Some(provider) = state.oidc().provider_for(&email).cloned()
    {
        return crate::oidc::start(&state, &headers, addr, &provider, &email, &return_to).await;
    }
    mail_link(
        &state,
        addr,
        &f.email,
        &MAGIC_LINK,
        &return_to,
        |email, now| state.policy().viewer(email, now).is_ok() || state.admins().is_admin(email),
    )?;
    Ok(render(&SignInPage::new(&state, true, &return_to))?.into_response())
}

/// Name of the cookie that ties the magic-link confirmation form to the browser it was
/// shown in (`__Host-` when it can be Secure, like the session cookie).
fn confirm_cookie_name(settings: &crate::settings::Settings) -> &'static str {
    match settings.cookie_prefix() {
        crate::settings::CookiePrefix::Host => "__Host-kbgate_confirm",
        crate::settings::CookiePrefix::Secure => "__Secure-kbgate_confirm",
        crate::settings::CookiePrefix::None => "kbgate_confirm",
    }
}

/// Purpose of the confirmation form's token, derived from the confirmation cookie.
const CONFIRM_TOKEN: &str = "magic-link-confirm";

/// `GET /auth/email/confirm?code=`: asks for a click before using the link, so mail scanners
/// that prefetch links do not burn it. The form carries a token derived from a cookie set
/// here, so only this browser can post it (see [`email_confirm`]).
pub(crate) async fn email_confirm_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<CodeParams>,
) -> Result<Response, Error> {
    let return_to = LocalPath::parse_or_root(p.return_to.as_deref());
    let Some(code) = p.code.as_deref().and_then(Opaque::parse) else {
        if signed_in(&state, &headers).await? {
            return Ok(redirect(return_to.as_str()));
        }
        return Err(Error::Unauthorized);
    };
    let settings = &state.settings();
    let name = confirm_cookie_name(settings);
    // Reuse the browser's cookie: two links open in two tabs both stay usable.
    let (binding, fresh) = match read_cookie(&headers, name) {
        Some(b) => (b, false),
        None => (Opaque::generate(), true),
    };
    let mut resp = render(&ConfirmPage {
        chrome: Chrome::anonymous(&state),
        action: routes::AUTH_EMAIL_CONFIRM,
        field: "code",
        value: code.expose().to_owned(),
        return_to: return_to.to_string(),
        csrf: binding.derive(CONFIRM_TOKEN),
    })?
    .into_response();
    if fresh {
        let cookie = format!(
            "{name}={}; Path={}; HttpOnly; {}Max-Age={}",
            binding.expose(),
            settings.cookie_path(),
            cookie_flags(settings),
            settings.magic_link_ttl.as_secs().max(60)
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    code: Option<String>,
    csrf: Option<String>,
    return_to: Option<String>,
}

/// Whether the request comes with a session the current policy admits.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<bool, Error> {
    let settings = &state.settings();
    let Some(id) = session_cookie(headers, settings) else {
        return Ok(false);
    };
    let now = Utc::now();
    Ok(match state.sessions().resolve(&id, settings, now).await? {
        Some(s) => state
            .policy()
            .session_viewer(&s.email, s.created_at, now)
            .is_ok(),
        None => false,
    })
}

/// `POST /auth/email/confirm` (form `code`, `csrf`): uses the magic link. Refused (403, the
/// code left unused) when the post comes from another site — login CSRF: another site must
/// not sign a visitor in to an account of its choosing (the attacker's own link). The
/// browser's `Origin` / `Sec-Fetch-Site` refuse it early; the form token, derived from a
/// cookie that only the confirmation page of this site sets, refuses it where those headers
/// say nothing (`Origin: null`, older browsers).
pub(crate) async fn email_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(p): Form<ConfirmForm>,
) -> Result<Response, Error> {
    let settings = &state.settings();
    if cross_site(&headers, settings) {
        return Err(Error::Forbidden);
    }
    let bound = read_cookie(&headers, confirm_cookie_name(settings)).is_some_and(|b| {
        ct_eq(
            p.csrf.as_deref().unwrap_or_default(),
            &b.derive(CONFIRM_TOKEN),
        )
    });
    if !bound {
        return Err(Error::Forbidden);
    }
    match use_code(&state, p.code.as_deref(), PURPOSE_MAGIC).await? {
        Some((email, return_to)) => {
            sign_in(&state, &headers, &email, &return_to, PURPOSE_MAGIC).await
        }
        // A link used before (or expired), opened by someone who is signed in: take them to
        // the page rather than ask them to sign in again.
        None if signed_in(&state, &headers).await? => Ok(redirect(
            LocalPath::parse_or_root(p.return_to.as_deref()).as_str(),
        )),
        None => Err(Error::Unauthorized),
    }
}

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    csrf: Option<String>,
}

/// `POST /auth/logout`: ends the session. Cross-site requests are refused by the form token
/// derived from the session id, and early by the `Origin` / `Sec-Fetch-Site` headers when the
/// browser names another site. `Origin: null` is not refused: browsers send it for a
/// same-origin form post under the portal's own `Referrer-Policy: no-referrer`.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Result<Response, Error> {
    let settings = &state.settings();
    if cross_site(&headers, settings) {
        return Err(Error::Forbidden);
    }
    let mut resp = redirect(&urls::to(routes::AUTH_EMAIL));
    if let Some(id) = session_cookie(&headers, settings) {
        let token = f.csrf.unwrap_or_default();
        if !ct_eq(&token, &id.derive("csrf")) {
            return Err(Error::Forbidden);
        }
        state.sessions().revoke(&id).await?;
        state
            .audit()
            .record("session", "session.end", serde_json::json!({}))
            .await;
    }
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(settings)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}
