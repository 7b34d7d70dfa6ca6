//! v1 groups: list, create, look up, delete, members by group id, membership by group id.
//!
//! Adding someone without a Confluence licence to a guest group (see
//! [`super::is_guest_group`]) makes them a guest; that is refused beyond the guest allowance.

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    MAX_GROUP_MEMBERS_LIMIT, USER_LIMIT_MESSAGE, guest_allowance_left, guest_limit_message,
    is_guest_group, mint_group_id, parse_body, settle, user_limit_left,
};
use crate::Sim;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiFamily};
use crate::model::{Group, State, UserKind};
use crate::paging::{Params, encode_query, encode_segment, site_base};
use crate::v1::{group_json, user_json};

const V1: ApiFamily = ApiFamily::V1;

/// v1 `start`/`limit`: `limit` absent → `default`; above `max` → clamped when `strict` is false,
/// 400 when true (membersByGroupId documents "400 if given limit is greater than 200").
pub(super) fn start_limit(
    p: &Params,
    default: usize,
    max: usize,
    strict: bool,
) -> Result<(usize, usize), ApiError> {
    let start = p.start(V1)?;
    let limit = match p.get("limit") {
        None => default,
        Some(v) => match v.parse::<i64>() {
            Ok(0) => default,
            Ok(n) if n > 0 && (n as usize) <= max => n as usize,
            Ok(n) if n > 0 && !strict => max,
            Ok(n) if n > 0 => {
                return Err(ApiError::bad_request(
                    V1,
                    format!("Limit {n} is greater than the maximum allowed limit of {max}"),
                ));
            }
            _ => {
                return Err(ApiError::bad_request(
                    V1,
                    format!("Invalid value for parameter limit: {v}"),
                ));
            }
        },
    };
    Ok((start, limit))
}

/// A v1 paged array `{results,start,limit,size,_links:{base,context,self,next?}}`. `path` is
/// relative to `/wiki` (e.g. `/rest/api/group`), as v1 `next` links are.
pub(super) fn v1_page(
    base: &str,
    path: &str,
    p: &Params,
    all: Vec<Value>,
    start: usize,
    limit: usize,
) -> Value {
    let total = all.len();
    let results: Vec<Value> = all.into_iter().skip(start).take(limit).collect();
    let size = results.len();
    let mut links = json!({
        "base": format!("{base}/wiki"),
        "context": "/wiki",
        "self": format!("{base}/wiki{path}"),
    });
    if start + size < total {
        let mut pairs = p.without(&["start", "limit"]);
        pairs.push(("limit".into(), limit.to_string()));
        pairs.push(("start".into(), (start + size).to_string()));
        links["next"] = json!(format!("{path}?{}", encode_query(&pairs)));
    }
    let mut body = json!({ "results": results, "start": start, "limit": limit, "size": size, "_links": links });
    if p.get("shouldReturnTotalSize") == Some("true") {
        body["totalSize"] = json!(total);
    }
    body
}

fn sorted_groups(s: &State) -> Vec<&Group> {
    let mut gs: Vec<&Group> = s.groups.values().collect();
    gs.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    gs
}

fn group_not_found(what: &str) -> ApiError {
    ApiError::not_found(V1, format!("Group not found: {what}"))
}

/// `GET /wiki/rest/api/group?start&limit` → `GroupArrayWithLinks` (by name).
pub(super) async fn list(
    AxState(sim): AxState<Sim>,
    _auth: AuthUser,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let (start, limit) = start_limit(&p, 200, 200, false)?;
    let base = site_base(&headers, &sim);
    let all = sim.read(|s| {
        sorted_groups(s)
            .iter()
            .map(|g| group_json(s, &base, &g.id))
            .collect()
    });
    Ok(Json(v1_page(&base, "/rest/api/group", &p, all, start, limit)).into_response())
}

/// `GET /wiki/rest/api/group/picker?query=` → groups whose name contains `query`
/// (case-insensitive), `GroupArrayWithLinks`.
pub(super) async fn picker(
    AxState(sim): AxState<Sim>,
    _auth: AuthUser,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let query = p
        .get("query")
        .ok_or_else(|| ApiError::bad_request(V1, "query parameter is required"))?
        .to_lowercase();
    let (start, limit) = start_limit(&p, 200, 200, false)?;
    let base = site_base(&headers, &sim);
    let all = sim.read(|s| {
        sorted_groups(s)
            .iter()
            .filter(|g| g.name.to_lowercase().contains(&query))
            .map(|g| group_json(s, &base, &g.id))
            .collect()
    });
    Ok(Json(v1_page(
        &base,
        "/rest/api/group/picker",
        &p,
        all,
        start,
        limit,
    ))
    .into_response())
}

/// `GET /wiki/rest/api/group/by-name?name=` → `Group` or 404.
pub(super) async fn by_name(
    AxState(sim): AxState<Sim>,
    _auth: AuthUser,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let name = p
        .get("name")
        .ok_or_else(|| ApiError::bad_request(V1, "name parameter is required"))?;
    let base = site_base(&headers, &sim);
    sim.read(|s| {
        s.groups
            .values()
            .find(|g| g.name.eq_ignore_ascii_case(name))
            .map(|g| Json(group_json(s, &base, &g.id)).into_response())
            .ok_or_else(|| group_not_found(name))
    })
}

/// `GET /wiki/rest/api/group/by-id?id=` → `Group` or 404.
pub(super) async fn by_id(
    AxState(sim): AxState<Sim>,
    _auth: AuthUser,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let id = p
        .get("id")
        .ok_or_else(|| ApiError::bad_request(V1, "id parameter is required"))?;
    let base = site_base(&headers, &sim);
    sim.read(|s| {
        if s.groups.contains_key(id) {
            Ok(Json(group_json(s, &base, id)).into_response())
        } else {
            Err(group_not_found(id))
        }
    })
}

#[derive(Deserialize)]
struct GroupName {
    name: Option<String>,
}

/// `POST /wiki/rest/api/group` `{name}` → 201 `Group`; admin only; a taken name → 400.
pub(super) async fn create(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth.require_admin()?;
    let req: GroupName = parse_body(V1, &body)?;
    let name = req.name.map(|n| n.trim().to_string()).unwrap_or_default();
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::bad_request(
            V1,
            "Group name must be between 1 and 255 characters",
        ));
    }
    let base = site_base(&headers, &sim);
    sim.write(|s| {
        if s.groups
            .values()
            .any(|g| g.name.eq_ignore_ascii_case(&name))
        {
            return Err(ApiError::bad_request(
                V1,
                format!("A group with name '{name}' already exists."),
            ));
        }
        let id = mint_group_id(s);
        s.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                name: name.to_lowercase(),
                members: Default::default(),
            },
        );
        Ok((StatusCode::CREATED, Json(group_json(s, &base, &id))).into_response())
    })
}

/// `DELETE /wiki/rest/api/group/by-id?id=` → 204; admin only. Space permissions granted to the
/// group go with it.
pub(super) async fn delete_by_id(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    p: Params,
) -> Result<Response, ApiError> {
    auth.require_admin()?;
    let id = p
        .get("id")
        .ok_or_else(|| ApiError::bad_request(V1, "id parameter is required"))?
        .to_string();
    sim.write(|s| {
        if s.groups.remove(&id).is_none() {
            return Err(group_not_found(&id));
        }
        s.space_permissions
            .retain(|_, perm| perm.subject != crate::model::Subject::Group(id.clone()));
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

/// `GET /wiki/rest/api/group/{groupId}/membersByGroupId?start&limit&expand` → `UserArray`
/// ordered by account id; `limit` > 200 → 400; unknown group → 404. `isExternalCollaborator`
/// appears only with `expand=isExternalCollaborator` (the deprecated `externalCollaborator`
/// always).
pub(super) async fn members(
    AxState(sim): AxState<Sim>,
    _auth: AuthUser,
    headers: HeaderMap,
    Path(group_id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    settle(&sim);
    let (start, limit) = start_limit(&p, MAX_GROUP_MEMBERS_LIMIT, MAX_GROUP_MEMBERS_LIMIT, true)?;
    let expand_exco = p
        .get_all("expand")
        .iter()
        .any(|e| e == "isExternalCollaborator");
    let base = site_base(&headers, &sim);
    let all = sim.read(|s| {
        let g = s
            .groups
            .get(&group_id)
            .ok_or_else(|| group_not_found(&group_id))?;
        Ok::<_, ApiError>(
            g.members
                .iter()
                .map(|id| {
                    let mut u = user_json(s, &base, id);
                    if !expand_exco && let Some(o) = u.as_object_mut() {
                        o.remove("isExternalCollaborator");
                        if let Some(Value::Object(e)) = o.get_mut("_expandable") {
                            e.insert("isExternalCollaborator".into(), json!(""));
                        }
                    }
                    u
                })
                .collect::<Vec<_>>(),
        )
    })?;
    let path = format!(
        "/rest/api/group/{}/membersByGroupId",
        encode_segment(&group_id)
    );
    Ok(Json(v1_page(&base, &path, &p, all, start, limit)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountIdBody {
    account_id: Option<String>,
}

/// `POST /wiki/rest/api/group/userByGroupId?groupId=` `{accountId}` → 201 (no body); admin
/// only. Unknown group or user → 404. Adding an unlicensed user to a guest group makes them a
/// guest, refused with 403 beyond the allowance.
pub(super) async fn add_member(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    settle(&sim);
    auth.require_admin()?;
    let group_id = p
        .get("groupId")
        .ok_or_else(|| ApiError::bad_request(V1, "groupId parameter is required"))?
        .to_string();
    let req: AccountIdBody = parse_body(V1, &body)?;
    let account_id = req
        .account_id
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::bad_request(V1, "accountId is required"))?;
    sim.write(|s| {
        let g = s
            .groups
            .get(&group_id)
            .ok_or_else(|| group_not_found(&group_id))?;
        let guest_group = is_guest_group(&g.name);
        let user = s
            .users
            .get(&account_id)
            .ok_or_else(|| ApiError::not_found(V1, format!("User not found: {account_id}")))?;
        let becomes_guest =
            guest_group && user.kind == UserKind::Unlicensed && !g.members.contains(&account_id);
        // Check and change under the same write lock: atomic at any request rate.
        if becomes_guest && !guest_allowance_left(s) {
            return Err(ApiError::forbidden(V1, guest_limit_message(s)));
        }
        if becomes_guest && !user_limit_left(s) {
            return Err(ApiError::forbidden(V1, USER_LIMIT_MESSAGE));
        }
        if becomes_guest && let Some(u) = s.users.get_mut(&account_id) {
            u.kind = UserKind::Guest;
        }
        if let Some(g) = s.groups.get_mut(&group_id) {
            g.members.insert(account_id.clone());
        }
        Ok(StatusCode::CREATED.into_response())
    })
}

/// `DELETE /wiki/rest/api/group/userByGroupId?groupId=&accountId=` → 204 (also when the user
/// was not a member); admin only; unknown group or user → 404.
pub(super) async fn remove_member(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    p: Params,
) -> Result<Response, ApiError> {
    auth.require_admin()?;
    let group_id = p
        .get("groupId")
        .ok_or_else(|| ApiError::bad_request(V1, "groupId parameter is required"))?
        .to_string();
    let account_id = p
        .get("accountId")
        .ok_or_else(|| ApiError::bad_request(V1, "accountId parameter is required"))?
        .to_string();
    sim.write(|s| {
        if !s.users.contains_key(&account_id) {
            return Err(ApiError::not_found(
                V1,
                format!("User not found: {account_id}"),
            ));
        }
        let g = s
            .groups
            .get_mut(&group_id)
            .ok_or_else(|| group_not_found(&group_id))?;
        g.members.remove(&account_id);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}
