//! Access requests: people asking to be let into Confluence itself (native mode).
//!
//! Two ways in, one rule. A person fills in `/request-access` and proves the address by a
//! mailed single-use link; the host app's backend, which already knows its users, posts
//! `POST /api/v1/access-requests` with its API key. Either way the person is recorded only
//! when the policy's access-request rule ([`kbgate_policy::Policy::may_request_access`]: an
//! active native audience — guest, unlicensed, group — grants the domain) says so, and either
//! way the answer is the same for every address, so neither route tells which domains or
//! people kbgate knows.
//!
//! The form reuses the magic-link machinery of [`crate::auth`]: the same per-email and
//! per-client limits, the same background mailing, the same single-use codes and lifetime.

use askama::Template;
use axum::Json;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::auth::{MailedLink, form_email, mail_link, use_code};
use crate::chrome::Chrome;
use crate::client_addr::ClientAddr;
use crate::codes::PURPOSE_ACCESS_REQUEST;
use crate::error::Error;
use crate::extractors::HostApp;
use crate::mail::LinkMail;
use crate::pages::render;
use crate::redirect::LocalPath;
use crate::secret::Opaque;
use crate::state::AppState;
use crate::urls::routes;

/// Where the verification link of an access request leads.
const VERIFY_LINK: MailedLink = MailedLink {
    purpose: PURPOSE_ACCESS_REQUEST,
    path: routes::REQUEST_ACCESS_CONFIRM,
    mail: LinkMail::AccessRequest,
};

/// Audit source of requests confirmed through the portal's form.
const SOURCE_PORTAL: &str = "portal";
/// Audit source of requests posted by the host app.
const SOURCE_API: &str = "api";

/// The steps of the form, one template.
enum Stage {
    /// Asks for the address.
    Form,
    /// Said the same thing whatever the address.
    Sent,
    /// The link was opened: a button to confirm (carrying the code).
    Confirm(String),
    /// The link was used.
    Recorded,
}

#[derive(Template)]
#[template(path = "request_access.html")]
struct RequestAccessPage {
    chrome: Chrome,
    stage: Stage,
    minutes: u64,
}

fn page(state: &AppState, stage: Stage) -> Result<Html<String>, Error> {
    render(&RequestAccessPage {
        chrome: Chrome::anonymous(&state.settings()),
        stage,
        minutes: state.settings().magic_link_ttl.as_secs() / 60,
    })
}

/// `GET /request-access`: the form.
pub(crate) async fn form(State(state): State<AppState>) -> Result<Html<String>, Error> {
    page(&state, Stage::Form)
}

#[derive(Deserialize)]
pub(crate) struct RequestForm {
    email: String,
}

/// `POST /request-access`: mails a verification link when the domain may ask. The answer
/// is the same either way; only malformed input (400) and rate limits (429) differ, exactly
/// as for sign-in.
pub(crate) async fn submit(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<RequestForm>,
) -> Result<Html<String>, Error> {
    mail_link(
        &state,
        addr,
        &f.email,
        &VERIFY_LINK,
        &LocalPath::root(),
        // Checked before mailing (so no link goes to an address that could never be
        // provisioned); the recording checks again under the policy in force when the link
        // is used.
        |email, now| state.policy().current().may_request_access(email, now),
    )?;
    page(&state, Stage::Sent)
}

#[derive(Deserialize)]
pub(crate) struct CodeParams {
    code: Option<String>,
}

/// Public text for a link that cannot be used. One text for malformed, unknown, expired and
/// used links, so a guessed code learns nothing.
const LINK_UNUSABLE: Error =
    Error::BadRequest("this link has expired or was already used; please request access again");

/// `GET /request-access/confirm?code=`: shows a button and uses nothing, so mail scanners
/// that prefetch links do not burn the link.
pub(crate) async fn confirm_form(
    State(state): State<AppState>,
    Query(p): Query<CodeParams>,
) -> Result<Html<String>, Error> {
    let code = p
        .code
        .as_deref()
        .and_then(Opaque::parse)
        .ok_or(LINK_UNUSABLE)?;
    page(&state, Stage::Confirm(code.expose().to_owned()))
}

/// `POST /request-access/confirm` (form `code`): uses the link and records the request
/// under the policy in force now. The page is the same whether a person was recorded, was
/// already known, or their domain stopped qualifying since the link was sent.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Form(p): Form<CodeParams>,
) -> Result<Html<String>, Error> {
    let (email, _) = use_code(&state, p.code.as_deref(), PURPOSE_ACCESS_REQUEST)
        .await?
        .ok_or(LINK_UNUSABLE)?;
    state
        .people()
        .record_access_request(&state.policy().current(), &email, SOURCE_PORTAL, Utc::now())
        .await?;
    page(&state, Stage::Recorded)
}

/// Body of `POST /api/v1/access-requests`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct ApiRequest {
    email: String,
}

/// Answer of `POST /api/v1/access-requests`: always the same.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted {
    /// Always `accepted`.
    #[schema(value_type = String, example = "accepted")]
    status: &'static str,
}

/// Key of the host app's access-request budget in the server-to-server limiter (kept apart
/// from hand-overs, which count under their own key).
const API_LIMIT_KEY: &str = "access-requests";

/// `POST /api/v1/access-requests`: the host app asks for a person it has verified. `202`
/// with the same body whatever the domain; the recording runs after the answer, so its
/// timing does not tell either. A malformed address is the caller's bug and gets `400`.
#[utoipa::path(
    post, path = "/api/v1/access-requests", tag = "access",
    summary = "Ask access for a person the host app has verified",
    request_body = ApiRequest,
    responses(
        (status = 202, description = "Recorded if the domain may ask (the same answer either way)", body = Accepted),
        crate::openapi::HostAppErrors,
    ),
    security(("api_key" = [])),
)]
pub(crate) async fn api(
    _: HostApp,
    State(state): State<AppState>,
    Json(req): Json<ApiRequest>,
) -> Result<(StatusCode, Json<Accepted>), Error> {
    if !state.limit_handover().check(API_LIMIT_KEY) {
        return Err(Error::TooManyRequests);
    }
    let email = form_email(&req.email)?;
    let now = Utc::now();
    tokio::spawn(async move {
        let policy = state.policy().current();
        if let Err(e) = state
            .people()
            .record_access_request(&policy, &email, SOURCE_API, now)
            .await
        {
            // Debug shows the internal cause (a store error), never the address.
            tracing::warn!(error = ?e, "access request not recorded");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(Accepted { status: "accepted" })))
}
