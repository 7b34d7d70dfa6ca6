//! The one gate: the extractors that turn a request into a [`Viewer`] — the only value
//! [`crate::library::Library`] accepts.
//!
//! A handler that reads content takes [`CurrentViewer`] (browser session) or [`ApiViewer`]
//! (session, or the host app's API key naming an email). Both re-evaluate the policy *as it is
//! now* on every request, so a reload, a removed domain or an expired audience applies to the
//! next request of an existing session. [`HostApp`] proves the host app's backend without
//! naming a person.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::Utc;
use kbgate_policy::{Email, Viewer};

use crate::api_key::check_api_key;
use crate::cookies::session_cookie;
use crate::error::Error;
use crate::state::AppState;

/// A signed-in browser: the viewer under the current policy, and the session it came from.
pub(crate) struct CurrentViewer {
    pub viewer: Viewer,
    /// Token for the sign-out form (derived from the session id).
    pub(crate) csrf: String,
}

impl FromRequestParts<AppState> for CurrentViewer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let settings = &state.settings();
        let id = session_cookie(&parts.headers, settings).ok_or(Error::Unauthorized)?;
        let now = Utc::now();
        let session = state
            .sessions()
            .resolve(&id, settings, now)
            .await?
            .ok_or(Error::Unauthorized)?;
        let viewer = match state
            .policy()
            .session_viewer(&session.email, session.created_at, now)
        {
            Ok(v) => v,
            Err(e) => {
                // The policy no longer admits this person: the session ends here, so that
                // putting the domain back later does not revive this cookie.
                state.sessions().end_refused(&id).await?;
                return Err(e);
            }
        };
        Ok(CurrentViewer {
            viewer,
            csrf: session.csrf,
        })
    }
}

/// The caller of the JSON API: a browser session, or the host app with its API key naming
/// the person (`X-Kbgate-Email` header or `?email=`). The policy decides either way.
pub(crate) struct ApiViewer {
    pub viewer: Viewer,
}

/// Header the host app uses to name the person it acts for.
pub(crate) const EMAIL_HEADER: &str = "x-kbgate-email";

#[derive(serde::Deserialize)]
struct EmailQuery {
    email: Option<String>,
}

/// The host app's backend, proven by its API key. Taking it as an extractor checks the key
/// before the body is read, so a caller without the key learns nothing, not even whether its
/// JSON would have been accepted.
pub(crate) struct HostApp;

impl FromRequestParts<AppState> for HostApp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        if check_api_key(&parts.headers, state)? {
            Ok(HostApp)
        } else {
            Err(Error::Unauthorized)
        }
    }
}

impl FromRequestParts<AppState> for ApiViewer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        if check_api_key(&parts.headers, state)? {
            let from_header = parts
                .headers
                .get(EMAIL_HEADER)
                .map(|v| v.to_str().map(str::to_owned))
                .transpose()
                .map_err(|_| Error::BadRequest("the email header is not valid text"))?;
            let from_query = Query::<EmailQuery>::try_from_uri(&parts.uri)
                .map_err(|_| Error::BadRequest("the query string is malformed"))?
                .0
                .email;
            let raw = from_header.or(from_query).ok_or(Error::BadRequest(
                "name the person with X-Kbgate-Email or ?email=",
            ))?;
            let email = Email::parse(raw.trim())
                .map_err(|_| Error::BadRequest("the email address is invalid"))?;
            let viewer = state.policy().viewer(&email, Utc::now())?;
            return Ok(ApiViewer { viewer });
        }
        let cv = CurrentViewer::from_request_parts(parts, state).await?;
        Ok(ApiViewer { viewer: cv.viewer })
    }
}
