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
use crate::secret::Opaque;
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
        let id = session_cookie(&parts.headers, &state.settings()).ok_or(Error::Unauthorized)?;
        session_viewer(state, id).await
    }
}

/// Header carrying the help widget's sign-in token (see `crate::widget`). Not
/// `Authorization: Bearer`, which names the host app's API key.
pub(crate) const WIDGET_HEADER: &str = "x-kbgate-widget";

/// The widget sign-in token presented in the request: `Ok(None)` when there is none, an error
/// when the header is there but malformed.
pub(crate) fn widget_token(headers: &axum::http::HeaderMap) -> Result<Option<Opaque>, Error> {
    let Some(v) = headers.get(WIDGET_HEADER) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|s| Opaque::parse(s.trim()))
        .map(Some)
        .ok_or(Error::Unauthorized)
}

/// The viewer of session `id` under the current policy (cookie or widget token alike).
async fn session_viewer(state: &AppState, id: Opaque) -> Result<CurrentViewer, Error> {
    let settings = &state.settings();
    let now = Utc::now();
    let Some(session) = state.sessions().resolve(&id, settings, now).await? else {
        // A session that a policy change ended (here or by the sweep) is shown the refusal,
        // not a sign-in prompt that cannot succeed. Only on this failure path: a served page
        // costs nothing more.
        return match state.sessions().ended_email(&id, now).await? {
            Some(email) if state.policy().viewer(&email, now).is_err() => {
                Err(Error::Refused(Box::new(crate::error::Refusal {
                    email: email.as_str().to_owned(),
                    csrf: id.derive("csrf"),
                })))
            }
            _ => Err(Error::Unauthorized),
        };
    };
    let viewer = match state
        .policy()
        .session_viewer(&session.email, session.created_at, now)
    {
        Ok(v) => v,
        // An `[admin]` email's session is kept for the console (it may read nothing).
        Err(e) if state.admins().is_admin(&session.email) => return Err(e),
        Err(_) => {
            // The policy no longer admits this person: the session ends here, so that
            // putting the domain back later does not revive this cookie. They are told so
            // (the refusal page), with a sign-out button that clears the cookie.
            state.sessions().end_refused(&id).await?;
            return Err(Error::Refused(Box::new(crate::error::Refusal {
                email: session.email.as_str().to_owned(),
                csrf: session.csrf,
            })));
        }
    };
    Ok(CurrentViewer {
        viewer,
        csrf: session.csrf,
    })
}

/// The caller of the JSON API: a browser session, the help widget's frame with its sign-in
/// token (`X-Kbgate-Widget`), or the host app with its API key naming the person
/// (`X-Kbgate-Email` header or `?email=`). The policy decides either way.
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
        // A widget token, when presented, is the only credential looked at: a bad or ended
        // one is a 401 even if the request also carries a cookie.
        if let Some(id) = widget_token(&parts.headers)? {
            let cv = session_viewer(state, id).await?;
            return Ok(ApiViewer { viewer: cv.viewer });
        }
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
