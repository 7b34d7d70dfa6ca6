//! v2 `users-bulk`, `check-access-by-email`, `invite-by-email` and Jira `POST /rest/api/3/user`.

use axum::Json;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{MAX_BULK_ACCOUNT_IDS, MAX_EMAILS, create_user, parse_body, parse_email, settle};
use crate::Sim;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiFamily};
use crate::model::{AccountType, PendingInvite, State, User, UserKind, UserStatus};
use crate::paging::site_base;

const V2: ApiFamily = ApiFamily::V2;
const JIRA: ApiFamily = ApiFamily::Jira;

/// v2 `User` JSON (as `users-bulk` answers it).
pub fn user_v2_json(u: &User) -> Value {
    json!({
        "accountId": u.account_id,
        "accountType": u.account_type.as_str(),
        "accountStatus": u.status.as_str(),
        "displayName": u.display_name,
        "publicName": u.display_name,
        "email": u.email,
        "isExternalCollaborator": u.is_external_collaborator(),
        "profilePicture": {
            "path": format!("/wiki/aa-avatar/{}", u.account_id),
            "isDefault": true,
        },
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkUsers {
    account_ids: Option<Vec<String>>,
}

/// `POST /wiki/api/v2/users-bulk` `{accountIds:[1..=250]}` → `{results:[User], _links:{base}}`.
/// Unknown ids are left out of `results`, as Confluence does.
pub(super) async fn users_bulk(
    AxState(sim): AxState<Sim>,
    _auth: AuthUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    settle(&sim);
    let req: BulkUsers = parse_body(V2, &body)?;
    let ids = req
        .account_ids
        .ok_or_else(|| ApiError::bad_request(V2, "accountIds must not be null"))?;
    if ids.is_empty() || ids.len() > MAX_BULK_ACCOUNT_IDS {
        return Err(ApiError::bad_request(
            V2,
            format!("accountIds size must be between 1 and {MAX_BULK_ACCOUNT_IDS}"),
        ));
    }
    let results: Vec<Value> = sim.read(|s| {
        let mut seen = std::collections::BTreeSet::new();
        ids.iter()
            .filter(|id| seen.insert(id.as_str()))
            .filter_map(|id| s.users.get(id))
            .map(user_v2_json)
            .collect()
    });
    let base = site_base(&headers, &sim);
    Ok(
        Json(json!({ "results": results, "_links": { "base": format!("{base}/wiki") } }))
            .into_response(),
    )
}

#[derive(Deserialize)]
struct Emails {
    emails: Option<Vec<String>>,
}

fn emails_of(body: &Bytes) -> Result<Vec<String>, ApiError> {
    let req: Emails = parse_body(V2, body)?;
    let emails = req
        .emails
        .ok_or_else(|| ApiError::bad_request(V2, "emails must not be null"))?;
    if emails.is_empty() || emails.len() > MAX_EMAILS {
        return Err(ApiError::bad_request(
            V2,
            format!("emails size must be between 1 and {MAX_EMAILS}"),
        ));
    }
    Ok(emails)
}

fn disabled() -> ApiError {
    ApiError::new(
        V2,
        StatusCode::SERVICE_UNAVAILABLE,
        "This API is disabled on this site.",
    )
}

/// Whether an email belongs to an active account on the site (any product access or none;
/// JSM portal-only customers are not site accounts).
pub fn has_site_access(s: &State, email: &str) -> bool {
    s.user_by_email(email)
        .is_some_and(|u| u.status == UserStatus::Active && u.account_type != AccountType::Customer)
}

/// `POST /wiki/api/v2/user/access/check-access-by-email` `{emails:[1..=100]}` →
/// `{emailsWithoutAccess, invalidEmails}` (inputs echoed as given); 503 when disabled.
pub(super) async fn check_access(
    AxState(sim): AxState<Sim>,
    _auth: AuthUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    settle(&sim);
    if !sim.read(|s| s.check_access_enabled) {
        return Err(disabled());
    }
    let emails = emails_of(&body)?;
    let (without, invalid) = sim.read(|s| {
        let mut without = Vec::new();
        let mut invalid = Vec::new();
        for raw in &emails {
            match parse_email(raw) {
                None => invalid.push(raw.clone()),
                Some(e) if !has_site_access(s, &e) => without.push(raw.clone()),
                Some(_) => {}
            }
        }
        (without, invalid)
    });
    Ok(Json(json!({ "emailsWithoutAccess": without, "invalidEmails": invalid })).into_response())
}

/// `POST /wiki/api/v2/user/access/invite-by-email` `{emails:[1..=100]}` → 200 with no body.
/// Invalid emails and those with access are ignored; an email already invited is not invited
/// twice. Each invitation becomes a licensed user `INVITE_DELAY_MS` later (simulator clock).
pub(super) async fn invite(
    AxState(sim): AxState<Sim>,
    _auth: AuthUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    settle(&sim);
    if !sim.read(|s| s.check_access_enabled) {
        return Err(disabled());
    }
    let emails = emails_of(&body)?;
    let delay = sim
        .read(|s| s.invite_delay)
        .unwrap_or_else(|| chrono::Duration::milliseconds(super::INVITE_DELAY_MS));
    let due_at = sim.now() + delay;
    // One write lock for the check and the change: the user limit holds at any request rate.
    // At the plan's user limit the whole batch is refused (403, Atlassian's message for that
    // limit); which of a batch Confluence would keep is not documented, so none is.
    sim.write(|s| {
        let mut new: Vec<String> = Vec::new();
        for e in emails.iter().filter_map(|e| parse_email(e)) {
            let pending = s.pending_invites.iter().any(|i| i.email == e);
            if pending || s.user_by_email(&e).is_some() || new.contains(&e) {
                continue;
            }
            new.push(e);
        }
        if let Some(limit) = s.user_limit
            && !new.is_empty()
            && s.paid_count() + s.guest_count() + new.len() > limit
        {
            return Err(ApiError::forbidden(V2, super::USER_LIMIT_MESSAGE));
        }
        for e in new {
            s.pending_invites.push(PendingInvite { email: e, due_at });
        }
        Ok(())
    })?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewJiraUser {
    email_address: Option<String>,
    products: Option<Vec<String>>,
}

fn jira_error(status: StatusCode, field: Option<&str>, message: &str) -> Response {
    let body = match field {
        Some(f) => json!({ "errorMessages": [], "errors": { f: message } }),
        None => json!({ "errorMessages": [message], "errors": {} }),
    };
    (status, Json(body)).into_response()
}

/// Jira `User` JSON (`POST /rest/api/3/user` answer).
pub fn user_jira_json(base: &str, u: &User, products: &[String]) -> Value {
    let avatar = |size: u32| {
        format!(
            "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/initials/{}-{size}.png",
            u.display_name
                .chars()
                .next()
                .unwrap_or('U')
                .to_ascii_uppercase()
        )
    };
    json!({
        "self": format!("{base}/rest/api/3/user?accountId={}", u.account_id),
        "key": "",
        "accountId": u.account_id,
        "accountType": u.account_type.as_str(),
        "name": "",
        "emailAddress": u.email,
        "avatarUrls": {
            "48x48": avatar(48), "24x24": avatar(24), "16x16": avatar(16), "32x32": avatar(32),
        },
        "displayName": u.display_name,
        "active": u.status == UserStatus::Active,
        "timeZone": "Etc/UTC",
        "locale": "en_US",
        "groups": { "size": 0, "items": [] },
        "applicationRoles": { "size": products.len(), "items": [] },
        "expand": "groups,applicationRoles",
    })
}

/// Jira `POST /rest/api/3/user` `{emailAddress, products?}` → 201 Jira `User`.
///
/// `products: []` puts the person on the site with no product access: in the model an
/// unlicensed user (no Confluence seat) — the documented workaround for AX-274. Without
/// `products` the user gets the site's default product access (a Confluence licence). Jira
/// products in the list give no Confluence licence either. An email already on the site → 400.
pub(super) async fn jira_create_user(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    settle(&sim);
    if !auth.user.is_admin {
        return Ok(jira_error(
            StatusCode::FORBIDDEN,
            None,
            "You do not have permission to create users. You need the Site administration permission.",
        ));
    }
    let req: NewJiraUser = parse_body(JIRA, &body)?;
    let Some(raw) = req.email_address else {
        return Ok(jira_error(
            StatusCode::BAD_REQUEST,
            Some("emailAddress"),
            "You must specify an email address.",
        ));
    };
    let Some(email) = parse_email(&raw) else {
        return Ok(jira_error(
            StatusCode::BAD_REQUEST,
            Some("emailAddress"),
            "You must specify a valid email address.",
        ));
    };
    let products = req.products;
    let kind = match &products {
        None => UserKind::Licensed,
        Some(_) => UserKind::Unlicensed,
    };
    let created = sim.write(|s| {
        if s.user_by_email(&email).is_some() {
            return None;
        }
        let id = create_user(s, &email, kind);
        s.users.get(&id).cloned()
    });
    let Some(user) = created else {
        return Ok(jira_error(
            StatusCode::BAD_REQUEST,
            Some("email"),
            "A user with that email address already exists.",
        ));
    };
    let base = site_base(&headers, &sim);
    let products = products.unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(user_jira_json(&base, &user, &products)),
    )
        .into_response())
}
