//! More v1 reads, found missing by the third-party client checks (`thirdparty/`):
//!
//! * `GET /wiki/rest/api/user/current`: the caller (still in Atlassian's v1 spec; no v2
//!   equivalent).
//! * `GET /wiki/rest/api/content/{id}/restriction/byOperation`: restrictions of every operation
//!   (`read`, `update`), users and groups expanded on `expand=restrictions.user` /
//!   `restrictions.group` like the per-operation endpoint's `restrictions.*` expands.
//! * The v1 content reads Atlassian removed from Cloud because v2 covers them (CHANGE-864 /
//!   CHANGE-2520; public access removed, operations dropped from the v1 spec): get content by
//!   id, list content, children (`child`, `child/{type}`, including `child/attachment`) and
//!   labels (`GET …/label`). Cloud answers these `410 Gone` with a `GoneException`, whether or not
//!   the content exists; so does the simulator (after authentication, like Cloud).
//!
//! Kept out of `v1.rs` so the file can be merged around; the routes are merged in
//! `server::router`.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::Sim;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiFamily};
use crate::model::PageStatus;
use crate::paging::{Params, site_base};
use crate::v1::{Expands, restriction_json, user_json};
use crate::v2::page_visible;

const F: ApiFamily = ApiFamily::V1;

/// The message Confluence Cloud answers on a removed v1 endpoint.
pub const GONE_MESSAGE: &str = "com.atlassian.confluence.api.service.exceptions.GoneException: This deprecated endpoint has been removed.";

/// The removed v1 reads (`GET`), answered `410 Gone`.
pub const REMOVED: &[&str] = &[
    "/wiki/rest/api/content",
    "/wiki/rest/api/content/{id}",
    "/wiki/rest/api/content/{id}/child",
    "/wiki/rest/api/content/{id}/child/{type}",
    "/wiki/rest/api/content/{id}/label",
];

/// The routes of this module.
pub fn routes() -> Router<Sim> {
    let served = Router::new()
        .route("/wiki/rest/api/user/current", get(current_user))
        .route(
            "/wiki/rest/api/content/{id}/restriction/byOperation",
            get(restrictions_by_operation),
        );
    // Registered from the list, not one route call each: these never succeed, so they are
    // not in the conformance test's scan of served routes; tests/thirdparty_fixes.rs checks them.
    REMOVED
        .iter()
        .fold(served, |r, path| Router::route(r, path, get(gone)))
}

/// `410 Gone` in the v1 error shape, for an authenticated caller.
async fn gone(_auth: AuthUser) -> ApiError {
    ApiError::new(F, StatusCode::GONE, GONE_MESSAGE)
}

async fn current_user(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let base = site_base(&headers, &sim);
    Ok(axum::Json(sim.read(|s| user_json(s, &base, auth.account_id()))).into_response())
}

async fn restrictions_by_operation(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let not_found =
        || ApiError::not_found(F, format!("No content found with id: ContentId{{id={id}}}"));
    let pid: u64 = id.parse().map_err(|_| not_found())?;
    let ex = Expands::parse(&p);
    let (users, groups) = (ex.has("restrictions.user"), ex.has("restrictions.group"));
    let base = site_base(&headers, &sim);
    sim.read(|s| {
        let page = s
            .pages
            .get(&pid)
            .filter(|pg| pg.status == PageStatus::Current && page_visible(s, &auth.user, pg))
            .ok_or_else(not_found)?;
        Ok(axum::Json(json!({
            "read": restriction_json(s, &base, page, "read", users, groups, 0, 200),
            "update": restriction_json(s, &base, page, "update", users, groups, 0, 200),
            "_links": {
                "base": format!("{base}/wiki"),
                "context": "/wiki",
                "self": format!("{base}/wiki/rest/api/content/{pid}/restriction/byOperation"),
            },
        }))
        .into_response())
    })
}
