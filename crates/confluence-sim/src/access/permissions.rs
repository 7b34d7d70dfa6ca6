//! Space permissions: v1 add/remove, v2 list. Guests are held to one space.

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{is_space_admin, parse_body, settle};
use crate::Sim;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiFamily};
use crate::model::{Operation, SpacePermission, State, Subject, UserKind};
use crate::paging::{Params, SortKey, cursor_param, keyset, site_base, v2_list};

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
