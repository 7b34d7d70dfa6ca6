//! The admin console (`/admin`): access explainer, view as, sessions per domain, sync status,
//! access requests, reader insights per domain, native mode's latest plan (read-only) and the
//! audit log.
//!
//! Who: emails the `[admin]` rule admits ([`kbgate_policy::AdminPolicy`]), signed in through
//! any reader sign-in flow (embed hand-over, magic link, or any later one that opens a
//! reader session). Visiting `/admin` with such a reader session asks to confirm (a POST
//! with the reader session's form token, refused cross-site); that opens a separate admin
//! session: its own cookie (`Path=/admin`, `HttpOnly`, `SameSite=Strict`, `Secure` on https),
//! its own short lifetime (`[admin] session_minutes`), stored hashed, and active only while
//! the reader session it came from is (signing out of the portal ends it).
//!
//! Everyone else — anonymous, readers, an admin whose email the current rule no longer
//! lists — gets **404** on every `/admin` route: the console does not reveal it exists.
//! Every admin action is written to the audit log with the admin as the actor.
//!
//! "View as" mints a `Viewer` for the chosen email through the policy (`Policy::viewer`), so
//! the very gate readers go through applies; it never bypasses it.

mod desk;
mod handlers;
mod insights;

pub(crate) use desk::{AdminSessions, Desk};
pub use desk::{NextRun, page_facts};
pub use handlers::page_id_from;
pub(crate) use handlers::*;
pub(crate) use insights::{insights_csv, insights_page};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use chrono::Utc;
use kbgate_policy::Admin;

use crate::cookies::{read_cookie, session_cookie};
use crate::error::Error;
use crate::secret::Opaque;
use crate::settings::{CookiePrefix, Settings};
use crate::state::AppState;

/// Routes of the console (all under [`PREFIX`], the admin cookie's path).
pub(crate) mod routes {
    pub(crate) const PREFIX: &str = "/admin";
    pub(crate) const HOME: &str = "/admin";
    pub(crate) const SESSION: &str = "/admin/session";
    pub(crate) const LOGOUT: &str = "/admin/logout";
    pub(crate) const EXPLAIN: &str = "/admin/explain";
    pub(crate) const SESSIONS: &str = "/admin/sessions";
    pub(crate) const SESSIONS_REVOKE: &str = "/admin/sessions/revoke";
    pub(crate) const SYNC: &str = "/admin/sync";
    pub(crate) const SYNC_NOW: &str = "/admin/sync/now";
    pub(crate) const REQUESTS: &str = "/admin/access-requests";
    pub(crate) const PLAN: &str = "/admin/plan";
    pub(crate) const AUDIT: &str = "/admin/audit";
    pub(crate) const AUDIT_CSV: &str = "/admin/audit.csv";
    pub(crate) const INSIGHTS: &str = "/admin/insights";
    pub(crate) const INSIGHTS_CSV: &str = "/admin/insights.csv";
    pub(crate) const VIEW_AS: &str = "/admin/view-as";
    pub(crate) const VIEW_AS_PAGE: &str = "/admin/view-as/pages/{id}";
    pub(crate) const VIEW_AS_END: &str = "/admin/view-as/end";
}

/// The admin cookie's name. `__Secure-` (not `__Host-`: that needs `Path=/`) when Secure.
pub(crate) fn admin_cookie_name(settings: &Settings) -> &'static str {
    match settings.cookie_prefix() {
        CookiePrefix::Host | CookiePrefix::Secure => "__Secure-kbgate_admin",
        CookiePrefix::None => "kbgate_admin",
    }
}

/// `Set-Cookie` value that installs an admin session id.
pub(crate) fn set_admin_cookie(settings: &Settings, id: &Opaque, max_age_secs: u64) -> String {
    format!(
        "{}={}; Path={}{}; HttpOnly; SameSite=Strict; {}Max-Age={max_age_secs}",
        admin_cookie_name(settings),
        id.expose(),
        settings.path_prefix(),
        routes::PREFIX,
        if settings.cookie_secure {
            "Secure; "
        } else {
            ""
        },
    )
}

/// `Set-Cookie` value that removes the admin cookie.
pub(crate) fn clear_admin_cookie(settings: &Settings) -> String {
    format!(
        "{}=; Path={}{}; HttpOnly; SameSite=Strict; {}Max-Age=0",
        admin_cookie_name(settings),
        settings.path_prefix(),
        routes::PREFIX,
        if settings.cookie_secure {
            "Secure; "
        } else {
            ""
        },
    )
}

/// A reader session whose email the current `[admin]` rule admits; no admin session yet.
/// Anyone else: 404.
pub(crate) struct AdminCandidate {
    pub(crate) admin: Admin,
    pub(crate) reader: Opaque,
    /// The reader session's form token (the confirm form carries it).
    pub(crate) reader_csrf: String,
}

impl FromRequestParts<AppState> for AdminCandidate {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        candidate(&parts.headers, state).await
    }
}

async fn candidate(headers: &HeaderMap, state: &AppState) -> Result<AdminCandidate, Error> {
    let admins = state.admins();
    if admins.is_empty() {
        return Err(Error::NotFound);
    }
    let settings = &state.settings();
    let reader = session_cookie(headers, settings).ok_or(Error::NotFound)?;
    let session = state
        .sessions()
        .resolve(&reader, settings, Utc::now())
        .await?
        .ok_or(Error::NotFound)?;
    let admin = admins.admin(&session.email).ok_or(Error::NotFound)?;
    Ok(AdminCandidate {
        admin,
        reader,
        reader_csrf: session.csrf,
    })
}

/// An open admin session: what every console route but the confirm step takes. Without one,
/// an admin is sent to the confirm step; anyone else gets 404.
pub(crate) struct AdminUser {
    pub(crate) admin: Admin,
    pub(crate) id: Opaque,
    /// The admin forms' token (derived from the admin session id).
    pub(crate) csrf: String,
    /// The email the admin browses as, if any.
    pub(crate) view_as: Option<String>,
}

/// Why a request without an admin session was refused: an admin is sent to confirm.
pub(crate) enum AdminRejection {
    Error(Error),
    Confirm,
}

impl axum::response::IntoResponse for AdminRejection {
    fn into_response(self) -> axum::response::Response {
        match self {
            AdminRejection::Error(e) => e.into_response(),
            AdminRejection::Confirm => {
                let mut resp = axum::http::StatusCode::SEE_OTHER.into_response();
                if let Ok(v) = axum::http::HeaderValue::from_str(&crate::urls::to(routes::HOME)) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                resp
            }
        }
    }
}

impl From<Error> for AdminRejection {
    fn from(e: Error) -> Self {
        AdminRejection::Error(e)
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AdminRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, AdminRejection> {
        let c = candidate(&parts.headers, state).await?;
        admin_session(&parts.headers, state, c)
            .await?
            .ok_or(AdminRejection::Confirm)
    }
}

/// The admin session presented with the candidate's reader session, if active.
async fn admin_session(
    headers: &HeaderMap,
    state: &AppState,
    c: AdminCandidate,
) -> Result<Option<AdminUser>, Error> {
    let Some(id) = read_cookie(headers, admin_cookie_name(&state.settings())) else {
        return Ok(None);
    };
    let Some(rec) = state
        .admin_sessions()
        .active(&id.hash(), &c.reader.hash(), Utc::now())
        .await?
    else {
        return Ok(None);
    };
    // The rule as it is now decides (a removed admin's session is worthless), and the
    // session must be this admin's.
    if !rec.email.eq_ignore_ascii_case(c.admin.email().as_str()) {
        return Ok(None);
    }
    let csrf = id.derive("admin-csrf");
    Ok(Some(AdminUser {
        admin: c.admin,
        id,
        csrf,
        view_as: rec.view_as,
    }))
}
