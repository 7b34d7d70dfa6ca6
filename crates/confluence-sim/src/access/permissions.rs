//! Space permissions: v1 add/remove, v2 list, and the v1 space reads whose
//! `expand=permissions` shows them with the knowledge-base view switches. Guests are held to
//! one space.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::groups::{start_limit, v1_page};
use super::{is_space_admin, parse_body, settle};
use crate::Sim;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiFamily};
use crate::model::{Operation, SpacePermission, State, Subject, UserKind};
use crate::paging::{Params, SortKey, cursor_param, keyset, site_base, v2_list};
use crate::v1::{Expands, group_json, space_v1, user_json};

const V1: ApiFamily = ApiFamily::V1;
const V2: ApiFamily = ApiFamily::V2;

/// The (key, target) pairs Confluence accepts, from the v1 spec's `SpacePermissionV2` notes.
const VALID_OPERATIONS: &[(&str, &str)] = &[
    ("create", "page"),
    ("create", "blogpost"),
    ("create", "comment"),
    ("create", "attachment"),
    ("read", "space"),
    ("delete", "page"),
    ("delete", "blogpost"),
    ("delete", "comment"),
    ("delete", "attachment"),
    ("delete", "space"),
    ("export", "space"),
    ("administer", "space"),
    ("archive", "page"),
    ("restrict_content", "space"),
];

/// v1 `SpacePermissionV2` JSON.
pub fn permission_v1_json(base: &str, p: &SpacePermission) -> Value {
    let (ty, identifier) = match &p.subject {
        Subject::User(u) => ("user", u),
        Subject::Group(g) => ("group", g),
    };
    json!({
        "id": p.id,
        "subject": { "type": ty, "identifier": identifier },
        "operation": { "key": p.operation.key, "target": p.operation.target },
        "_links": { "self": format!("{base}/wiki/rest/api/space/{}/permission/{}", p.space_key, p.id) },
    })
}

/// v2 `SpacePermissionAssignment` JSON.
pub fn permission_v2_json(p: &SpacePermission) -> Value {
    let (ty, id) = match &p.subject {
        Subject::User(u) => ("user", u),
        Subject::Group(g) => ("group", g),
    };
    json!({
        "id": p.id.to_string(),
        "principal": { "type": ty, "id": id },
        "operation": { "key": p.operation.key, "targetType": p.operation.target },
    })
}

#[derive(Deserialize)]
struct SubjectIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    identifier: Option<String>,
}

#[derive(Deserialize)]
struct OperationIn {
    key: Option<String>,
    target: Option<String>,
}

#[derive(Deserialize)]
struct PermissionIn {
    subject: Option<SubjectIn>,
    operation: Option<OperationIn>,
}

fn may_manage(s: &State, auth: &AuthUser, key: &str) -> bool {
    auth.user.is_admin || is_space_admin(s, auth.account_id(), key)
}

fn holds(s: &State, key: &str, subject: &Subject, op: &Operation) -> bool {
    s.space_permissions
        .values()
        .any(|p| p.space_key == key && &p.subject == subject && &p.operation == op)
}

/// `POST /wiki/rest/api/space/{spaceKey}/permission`
/// `{subject:{type,identifier}, operation:{key,target}}` → 200 `SpacePermissionV2`.
///
/// 404 unknown space; 403 unless site or space admin; 400 for a malformed body, an unknown
/// user or group, an invalid operation, an existing permission, a missing `read space` for any
/// other operation, and a guest that already has another space.
pub(super) async fn add(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    settle(&sim);
    let req: PermissionIn = parse_body(V1, &body)?;
    let (Some(subject), Some(operation)) = (req.subject, req.operation) else {
        return Err(ApiError::bad_request(
            V1,
            "subject and operation are required",
        ));
    };
    let (Some(ty), Some(identifier)) = (subject.ty, subject.identifier) else {
        return Err(ApiError::bad_request(
            V1,
            "subject.type and subject.identifier are required",
        ));
    };
    let (Some(op_key), Some(target)) = (operation.key, operation.target) else {
        return Err(ApiError::bad_request(
            V1,
            "operation.key and operation.target are required",
        ));
    };
    if !VALID_OPERATIONS.contains(&(op_key.as_str(), target.as_str())) {
        return Err(ApiError::bad_request(
            V1,
            format!("Operation '{op_key}' is not valid for target '{target}'"),
        ));
    }
    let op = Operation {
        key: op_key,
        target,
    };
    let base = site_base(&headers, &sim);
    sim.write(|s| {
        if s.space_by_key(&key).is_none() {
            return Err(ApiError::not_found(V1, format!("No space with key : {key}")));
        }
        if !may_manage(s, &auth, &key) {
            return Err(ApiError::forbidden(
                V1,
                format!("User is not authorized to manage permissions of space {key}"),
            ));
        }
        let subject = match ty.as_str() {
            "user" => {
                if !s.users.contains_key(&identifier) {
                    return Err(ApiError::bad_request(V1, format!("No user found with accountId: {identifier}")));
                }
                Subject::User(identifier)
            }
            "group" => {
                // The group id, or (deprecated) its name.
                let id = if s.groups.contains_key(&identifier) {
                    Some(identifier.clone())
                } else {
                    s.groups.values().find(|g| g.name == identifier).map(|g| g.id.clone())
                };
                Subject::Group(id.ok_or_else(|| {
                    ApiError::bad_request(V1, format!("No group found with groupName or groupId: {identifier}"))
                })?)
            }
            other => {
                return Err(ApiError::bad_request(V1, format!("Invalid subject type: {other}")));
            }
        };
        if holds(s, &key, &subject, &op) {
            return Err(ApiError::bad_request(
                V1,
                "Permission already exists for the given user or group.",
            ));
        }
        let read = Operation { key: "read".into(), target: "space".into() };
        if op != read && !holds(s, &key, &subject, &read) {
            return Err(ApiError::bad_request(
                V1,
                "'read space' permission doesn't exist for the given user or group.",
            ));
        }
        if let Subject::User(u) = &subject
            && s.users.get(u).is_some_and(|u| u.kind == UserKind::Guest)
        {
            match s.guest_spaces.get(u) {
                Some(assigned) if *assigned != key => {
                    return Err(ApiError::bad_request(
                        V1,
                        format!(
                            "Guests can only be given access to one space. This guest already has access to space '{assigned}'."
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    s.guest_spaces.insert(u.clone(), key.clone());
                }
            }
        }
        let id = s.next_permission_id;
        s.next_permission_id += 1;
        let perm = SpacePermission { id, space_key: key.clone(), subject, operation: op };
        let out = permission_v1_json(&base, &perm);
        s.space_permissions.insert(id, perm);
        Ok(Json(out).into_response())
    })
}

/// `DELETE /wiki/rest/api/space/{spaceKey}/permission/{id}` → 204. 404 unknown space or
/// permission (or one of another space); 403 unless site or space admin; 400 when it is the
/// space's last `administer`. Removing a guest's last `read` unassigns the guest's space.
pub(super) async fn remove(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    Path((key, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    settle(&sim);
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(V1, format!("Invalid permission id: {id}")))?;
    sim.write(|s| {
        if s.space_by_key(&key).is_none() {
            return Err(ApiError::not_found(
                V1,
                format!("No space with key : {key}"),
            ));
        }
        if !may_manage(s, &auth, &key) {
            return Err(ApiError::forbidden(
                V1,
                format!("User is not authorized to manage permissions of space {key}"),
            ));
        }
        let perm = s
            .space_permissions
            .get(&id)
            .filter(|p| p.space_key == key)
            .cloned()
            .ok_or_else(|| {
                ApiError::not_found(V1, format!("No permission with id {id} in space {key}"))
            })?;
        if perm.operation.key == "administer" {
            let admins = s
                .space_permissions
                .values()
                .filter(|p| p.space_key == key && p.operation.key == "administer")
                .count();
            if admins <= 1 {
                return Err(ApiError::bad_request(
                    V1,
                    "All of the admin permissions cannot be removed from a space.",
                ));
            }
        }
        s.space_permissions.remove(&id);
        if let Subject::User(u) = &perm.subject
            && perm.operation.key == "read"
            && s.guest_spaces.get(u) == Some(&key)
        {
            s.guest_spaces.remove(u);
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

/// `GET /wiki/api/v2/spaces/{id}/permissions?cursor&limit` → `{results:[SpacePermissionAssignment],
/// _links}`, cursor paged by permission id (limit default 25, max 250). 404 when the space does
/// not exist or the caller can neither read nor administer it.
pub(super) async fn list_v2(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    settle(&sim);
    let space_id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(V2, format!("Invalid id: {id}")))?;
    let limit = p.limit(25, 250, V2)?;
    let cursor = cursor_param(&p, V2)?;
    let (page, next) = sim.read(|s| {
        let space = s
            .spaces
            .get(&space_id)
            .filter(|sp| auth.user.is_admin || crate::v2::can_read_space(s, &auth.user, &sp.key))
            .ok_or_else(|| ApiError::not_found(V2, "Space not found"))?;
        let items: Vec<(SortKey, u64, Value)> = s
            .space_permissions
            .values()
            .filter(|perm| perm.space_key == space.key)
            .map(|perm| {
                (
                    SortKey::Int(perm.id as i64),
                    perm.id,
                    permission_v2_json(perm),
                )
            })
            .collect();
        Ok::<_, ApiError>(keyset(items, false, cursor.as_ref(), limit))
    })?;
    let base = site_base(&headers, &sim);
    let results = page.into_iter().map(|(_, _, v)| v).collect();
    Ok(v2_list(
        &base,
        &format!("/wiki/api/v2/spaces/{space_id}/permissions"),
        &p,
        results,
        next,
        limit,
    ))
}

/// Default `limit` of v1 `GET /wiki/rest/api/space` (the spec's default).
pub const SPACE_LIST_DEFAULT_LIMIT: usize = 25;
/// Largest `limit` of v1 `GET /wiki/rest/api/space`; above it `limit` is clamped (the spec only
/// says "may be restricted by fixed system limits"; this is the simulator's choice).
pub const SPACE_LIST_MAX_LIMIT: usize = 250;

/// The v1 `SpacePermission` entries of a space, as `expand=permissions` lists them (v1 spec,
/// `SpacePermission`): one per granted permission, its user or group under `subjects`, with
/// `anonymousAccess` and `unlicensedAccess` false; and for the knowledge-base view switches a
/// `read space` entry without subjects, with `unlicensedAccess: true` ("grants access to
/// unlicensed users from JIRA Service Desk when used with the 'read space' operation") while
/// unlicensed view is on, and one with `anonymousAccess: true` while anonymous view is on. The
/// switch entries carry no `id` (optional in the spec; they are not rows of the simulator's
/// permission table, so it does not invent one).
pub fn space_permissions_v1_json(s: &State, base: &str, key: &str) -> Vec<Value> {
    let mut out: Vec<Value> = s
        .space_permissions
        .values()
        .filter(|p| p.space_key == key)
        .map(|p| {
            let subjects = match &p.subject {
                Subject::User(u) => {
                    json!({ "user": { "results": [user_json(s, base, u)], "size": 1 } })
                }
                Subject::Group(g) => {
                    json!({ "group": { "results": [group_json(s, base, g)], "size": 1 } })
                }
            };
            json!({
                "id": p.id,
                "subjects": subjects,
                "operation": { "operation": p.operation.key, "targetType": p.operation.target },
                "anonymousAccess": false,
                "unlicensedAccess": false,
            })
        })
        .collect();
    let switch = |anonymous: bool, unlicensed: bool| {
        json!({
            "operation": { "operation": "read", "targetType": "space" },
            "anonymousAccess": anonymous,
            "unlicensedAccess": unlicensed,
        })
    };
    if s.unlicensed_view.contains(key) {
        out.push(switch(false, true));
    }
    if s.anonymous_view.contains(key) {
        out.push(switch(true, false));
    }
    out
}

/// v1 `Space` JSON, with `permissions` when asked for.
fn space_v1_json(s: &State, base: &str, space_id: u64, key: &str, ex: &Expands) -> Value {
    let mut v = space_v1(s, base, space_id);
    if ex.has("permissions") {
        if let Some(e) = v.get_mut("_expandable").and_then(Value::as_object_mut) {
            e.remove("permissions");
        }
        v["permissions"] = Value::Array(space_permissions_v1_json(s, base, key));
    }
    v
}

fn visible(s: &State, auth: &AuthUser, key: &str) -> bool {
    auth.user.is_admin || crate::v2::can_read_space(s, &auth.user, key)
}

/// `GET /wiki/rest/api/space?spaceKey=…&spaceKey=…&spaceId=…&type&status&expand&start&limit`
/// → `SpaceArray`, by key ascending, only the spaces the caller may view; unknown keys are
/// simply absent. `expand=permissions` adds each space's permissions with the knowledge-base
/// switches (see [`space_permissions_v1_json`]); other expansions are left in `_expandable`.
/// start/limit paging (default 25, clamped to [`SPACE_LIST_MAX_LIMIT`]), `_links.next` while
/// more remain. 400 for an invalid `status`, `type`, `spaceId`, `start` or `limit`, and for the
/// filters the simulator does not model (`label`, `favourite`, `favouriteUserKey`).
pub(super) async fn list_spaces_v1(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    for name in ["label", "favourite", "favouriteUserKey"] {
        if p.get(name).is_some() {
            return Err(ApiError::bad_request(
                V1,
                format!("The simulator does not support the {name} filter"),
            ));
        }
    }
    let status = match p.get("status") {
        None => None,
        Some(v @ ("current" | "archived")) => Some(v.to_owned()),
        Some(v) => {
            return Err(ApiError::bad_request(V1, format!("Invalid status: {v}")));
        }
    };
    let ty = match p.get("type") {
        None => None,
        Some(v @ ("global" | "personal")) => Some(v.to_owned()),
        Some(v) => {
            return Err(ApiError::bad_request(
                V1,
                format!("Invalid space type: {v}"),
            ));
        }
    };
    let keys: BTreeSet<String> = p.get_all("spaceKey").into_iter().collect();
    let ids = p
        .get_all("spaceId")
        .into_iter()
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(V1, format!("Invalid spaceId: {v}")))
        })
        .collect::<Result<BTreeSet<u64>, _>>()?;
    let (start, limit) = start_limit(&p, SPACE_LIST_DEFAULT_LIMIT, SPACE_LIST_MAX_LIMIT, false)?;
    let ex = Expands::parse(&p);
    let base = site_base(&headers, &sim);
    let all = sim.read(|s| {
        let mut spaces: Vec<_> = s
            .spaces
            .values()
            .filter(|sp| keys.is_empty() || keys.contains(&sp.key))
            .filter(|sp| ids.is_empty() || ids.contains(&sp.id))
            .filter(|sp| status.as_deref().is_none_or(|st| sp.status.as_str() == st))
            .filter(|sp| {
                let t = if sp.space_type == "personal" {
                    "personal"
                } else {
                    "global"
                };
                ty.as_deref().is_none_or(|want| want == t)
            })
            .filter(|sp| visible(s, &auth, &sp.key))
            .collect();
        spaces.sort_by(|a, b| a.key.cmp(&b.key));
        spaces
            .into_iter()
            .map(|sp| space_v1_json(s, &base, sp.id, &sp.key, &ex))
            .collect::<Vec<_>>()
    });
    Ok(Json(v1_page(&base, "/rest/api/space", &p, all, start, limit)).into_response())
}

/// `GET /wiki/rest/api/space/{spaceKey}?expand=…` → `Space` (with `permissions` as in
/// [`list_spaces_v1`]). 404 when there is no such space or the caller may not view it.
pub(super) async fn get_space_v1(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(key): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let ex = Expands::parse(&p);
    let base = site_base(&headers, &sim);
    sim.read(|s| {
        let sp = s
            .space_by_key(&key)
            .filter(|sp| visible(s, &auth, &sp.key))
            .ok_or_else(|| ApiError::not_found(V1, format!("No space with key : {key}")))?;
        Ok(Json(space_v1_json(s, &base, sp.id, &sp.key, &ex)).into_response())
    })
}
