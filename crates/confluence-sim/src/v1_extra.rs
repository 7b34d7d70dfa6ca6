//! More v1 reads, found missing by the third-party client checks (`thirdparty/`):
//!
//! * `GET /wiki/rest/api/user/current`: the caller (still in Atlassian's v1 spec; no v2
//!   equivalent).
//! * `GET /wiki/rest/api/content/{id}/restriction/byOperation`: restrictions of every operation
//!   (`read`, `update`), users and groups expanded on `expand=restrictions.user` /
//!   `restrictions.group` like the per-operation endpoint's `restrictions.*` expands.
//! * `GET /wiki/rest/api/content/{id}/child/{type}` (`page`, `attachment`, `comment`) and
//!   `GET /wiki/rest/api/content/{id}/label`: deprecated (CHANGE-864 / CHANGE-2520) but still
//!   answered on Cloud in 2026 (atlassian-python-api #1640 and its Aug 2026 fix list attachments
//!   through `child/attachment`; mcp-atlassian #1368: "metadata endpoints keep returning 200").
//!   `start`/`limit` paging, `_links.next` relative to `_links.base`.
//! * Get content by id and list content (`GET /wiki/rest/api/content[/{id}]`): removed from
//!   Cloud (CHANGE-864, in effect since 30 April 2026; veryfront-code #1787, mcp-atlassian #576,
//!   atlassian-python-api #1560). Cloud answers `410 Gone` with a `GoneException`, whether or not
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
use crate::paging::{Params, encode_query, site_base};
use crate::v1::{
    Expands, attachment_content_json, labels_json, page_content_json, restriction_json, user_json,
};
use crate::v2::page_visible;

const F: ApiFamily = ApiFamily::V1;

/// The message Confluence Cloud answers on a removed v1 endpoint.
pub const GONE_MESSAGE: &str = "com.atlassian.confluence.api.service.exceptions.GoneException: This deprecated endpoint has been removed.";

/// The removed v1 reads (`GET`), answered `410 Gone`.
pub const REMOVED: &[&str] = &["/wiki/rest/api/content", "/wiki/rest/api/content/{id}"];

/// The routes of this module.
pub fn routes() -> Router<Sim> {
    let served = Router::new()
        .route("/wiki/rest/api/user/current", get(current_user))
        .route(
            "/wiki/rest/api/content/{id}/restriction/byOperation",
            get(restrictions_by_operation),
        )
        .route("/wiki/rest/api/content/{id}/child/{type}", get(children))
        .route("/wiki/rest/api/content/{id}/label", get(labels));
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

/// `GET /wiki/rest/api/user/current[?expand=operations]`: the caller, with `timeZone` (the
/// site's, as an IANA name: `Etc/GMT+8` is UTC-8 — the v1 document's `User.timeZone`) and,
/// expanded, the global operations it holds (`User.operations`: `{operation, targetType}`;
/// Confluence administrators hold `administer` on `application`).
async fn current_user(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let base = site_base(&headers, &sim);
    let mut v = sim.read(|s| user_json(s, &base, auth.account_id()));
    v["timeZone"] = json!(iana_name(sim.time_zone()));
    if Expands::parse(&p).has("operations") {
        let mut ops = vec![json!({"operation": "use", "targetType": "application"})];
        if auth.user.is_admin {
            ops.push(json!({"operation": "administer", "targetType": "application"}));
        }
        v["operations"] = json!(ops);
    }
    Ok(axum::Json(v).into_response())
}

/// A fixed offset as an IANA zone name: whole hours as `Etc/GMT∓N` (POSIX sign: `Etc/GMT+8`
/// is eight hours behind UTC), `UTC` for zero, else `+HH:MM`.
fn iana_name(tz: crate::cql::SiteTimeZone) -> String {
    let secs = tz.0.local_minus_utc();
    match (secs, secs % 3600) {
        (0, _) => "UTC".into(),
        (s, 0) if s < 0 => format!("Etc/GMT+{}", -s / 3600),
        (s, 0) => format!("Etc/GMT-{}", s / 3600),
        _ => tz.0.to_string(),
    }
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

fn content_not_found(id: &str) -> ApiError {
    ApiError::not_found(F, format!("No content found with id: ContentId{{id={id}}}"))
}

/// `GET /wiki/rest/api/content/{id}/child/{type}`: a page's child pages (in position order),
/// attachments (in creation order) or comments (none in the simulator), `start`/`limit` paged.
async fn children(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path((id, ty)): Path<(String, String)>,
    p: Params,
) -> Result<Response, ApiError> {
    let (default_limit, max_limit) = match ty.as_str() {
        "page" | "comment" => (25, 200),
        "attachment" => (50, 200),
        other => {
            return Err(ApiError::bad_request(
                F,
                format!("Unsupported content type: {other}"),
            ));
        }
    };
    let pid: u64 = id.parse().map_err(|_| content_not_found(&id))?;
    let start = p.start(F)?;
    let limit = p.limit(default_limit, max_limit, F)?;
    let ex = Expands::parse(&p);
    let base = site_base(&headers, &sim);
    sim.read(|s| {
        let page = s
            .pages
            .get(&pid)
            .filter(|pg| pg.status == PageStatus::Current && page_visible(s, &auth.user, pg))
            .ok_or_else(|| content_not_found(&id))?;
        let all: Vec<serde_json::Value> = match ty.as_str() {
            "page" => s
                .child_ids(pid)
                .into_iter()
                .filter_map(|c| s.pages.get(&c))
                .filter(|c| c.status == PageStatus::Current && page_visible(s, &auth.user, c))
                .skip(start)
                .take(limit + 1)
                .map(|c| page_content_json(s, &base, c, &ex))
                .collect(),
            "attachment" => {
                let mut atts: Vec<_> = s
                    .page_attachments
                    .get(&page.id)
                    .into_iter()
                    .flatten()
                    .filter_map(|a| s.attachments.get(a))
                    .filter(|a| a.status == PageStatus::Current)
                    .filter(|a| p.get("filename").is_none_or(|f| f == a.title))
                    .filter(|a| p.get("mediaType").is_none_or(|m| m == a.media_type))
                    .collect();
                atts.sort_by_key(|a| (a.created_at, a.id));
                atts.into_iter()
                    .skip(start)
                    .take(limit + 1)
                    .map(|a| attachment_content_json(s, &base, a, &ex))
                    .collect()
            }
            _ => Vec::new(),
        };
        let more = all.len() > limit;
        let results: Vec<_> = all.into_iter().take(limit).collect();
        let size = results.len();
        let path = format!("/rest/api/content/{pid}/child/{ty}");
        let mut pairs = p.without(&["start", "limit"]);
        pairs.push(("limit".into(), limit.to_string()));
        let mut links = json!({
            "base": format!("{base}/wiki"),
            "context": "/wiki",
            "self": format!("{base}/wiki{path}"),
        });
        if more {
            pairs.push(("start".into(), (start + size).to_string()));
            links["next"] = json!(format!("{path}?{}", encode_query(&pairs)));
        }
        Ok(axum::Json(json!({
            "results": results,
            "start": start,
            "limit": limit,
            "size": size,
            "_links": links,
        }))
        .into_response())
    })
}

/// `GET /wiki/rest/api/content/{id}/label`: the page's labels (`prefix` filter).
async fn labels(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let pid: u64 = id.parse().map_err(|_| content_not_found(&id))?;
    let base = site_base(&headers, &sim);
    let prefix = p.get("prefix").map(str::to_string);
    sim.read(|s| {
        let page = s
            .pages
            .get(&pid)
            .filter(|pg| pg.status == PageStatus::Current && page_visible(s, &auth.user, pg))
            .ok_or_else(|| content_not_found(&id))?;
        let mut v = labels_json(s, page);
        if let (Some(prefix), Some(results)) = (&prefix, v["results"].as_array_mut()) {
            results.retain(|l| l["prefix"].as_str() == Some(prefix));
            v["size"] = json!(results.len());
        }
        v["_links"] = json!({
            "base": format!("{base}/wiki"),
            "context": "/wiki",
            "self": format!("{base}/wiki/rest/api/content/{pid}/label"),
        });
        Ok(axum::Json(v).into_response())
    })
}
