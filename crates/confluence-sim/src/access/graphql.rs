//! `/cgraphql`: the two undocumented Confluence GraphQL operations kbgate may use when the
//! operator opts in. The operation is chosen by `?q=` (as Confluence's web app sends it) or by
//! the body's `operationName`; the `query` text is not parsed. Shapes are guesses modelled on
//! what the Confluence web app exchanges:
//!
//! * `GuestDataQuery`, variables `{first?: int (default 50, max 100), after?: cursor,
//!   spaceAssignmentType?: "ALL"|"ASSIGNED"|"UNASSIGNED"}` (also accepted nested under
//!   `criteria`) → `{"data":{"externalCollaboratorsByCriteria":{"nodes":[{"accountId","email",
//!   "name","spaces":[{"id","key","name"}]}],"pageInfo":{"hasNextPage","endCursor"}}}}`; only
//!   active guests, ordered by account id.
//! * `ResetExCoSpacePermissionsMutation`, variables `{accountId, spaceId | spaceKey}` → the
//!   guest's space becomes that one (their user permissions elsewhere are removed, `read` on
//!   the new space granted) → `{"data":{"resetExCoSpacePermissions":{"success":true,
//!   "errors":[]}}}`; a business failure answers 200 with `success:false` and
//!   `errors:[{"message"}]`. Site admin only.
//!
//! Protocol errors (unknown operation, bad JSON) answer 400 `{"errors":[{"message"}]}`; a
//! non-admin caller gets 403 with the same shape.

use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::settle;
use crate::Sim;
use crate::auth::AuthUser;
use crate::model::{Operation, SpacePermission, State, Subject, UserKind, UserStatus};
use crate::paging::{Params, SortKey, keyset, parse_cursor};

fn gql_error(status: StatusCode, message: impl Into<String>) -> Response {
    let code = match status.as_u16() {
        403 => "FORBIDDEN",
        _ => "BAD_REQUEST",
    };
    (
        status,
        Json(json!({ "errors": [{ "message": message.into(), "extensions": { "statusCode": status.as_u16(), "errorType": code } }] })),
    )
        .into_response()
}

/// `POST /cgraphql?q=…`.
pub(super) async fn cgraphql(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    p: Params,
    body: Bytes,
) -> Response {
    settle(&sim);
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return gql_error(StatusCode::BAD_REQUEST, "Request body is not valid JSON");
    };
    let op = p
        .get("q")
        .map(str::to_string)
        .or_else(|| req["operationName"].as_str().map(str::to_string))
        .unwrap_or_default();
    let vars = &req["variables"];
    match op.as_str() {
        "GuestDataQuery" => {
            if !auth.user.is_admin {
                return gql_error(StatusCode::FORBIDDEN, "Only site admins can list guests");
            }
            guest_data(&sim, vars)
        }
        "ResetExCoSpacePermissionsMutation" => {
            if !auth.user.is_admin {
                return gql_error(
                    StatusCode::FORBIDDEN,
                    "Only site admins can change guest spaces",
                );
            }
            reset_space(&sim, vars)
        }
        "" => gql_error(
            StatusCode::BAD_REQUEST,
            "No operation given (?q= or operationName)",
        ),
        other => gql_error(
            StatusCode::BAD_REQUEST,
            format!("Unknown operation {other}"),
        ),
    }
}

fn guest_data(sim: &Sim, vars: &Value) -> Response {
    let filter = vars["spaceAssignmentType"]
        .as_str()
        .or_else(|| vars["criteria"]["spaceAssignmentType"].as_str())
        .unwrap_or("ALL")
        .to_ascii_uppercase();
    if !matches!(filter.as_str(), "ALL" | "ASSIGNED" | "UNASSIGNED") {
        return gql_error(
            StatusCode::BAD_REQUEST,
            format!("Invalid spaceAssignmentType {filter}"),
        );
    }
    let first = vars["first"].as_u64().unwrap_or(50).clamp(1, 100) as usize;
    let cursor = match vars["after"].as_str() {
        None | Some("") => None,
        Some(c) => match parse_cursor(c) {
            Some(c) => Some(c),
            None => return gql_error(StatusCode::BAD_REQUEST, "Invalid cursor"),
        },
    };
    let (page, next) = sim.read(|s| {
        let items: Vec<(SortKey, u64, Value)> = s
            .users
            .values()
            .filter(|u| u.kind == UserKind::Guest && u.status == UserStatus::Active)
            .filter(|u| {
                let assigned = s.guest_spaces.contains_key(&u.account_id);
                match filter.as_str() {
                    "ASSIGNED" => assigned,
                    "UNASSIGNED" => !assigned,
                    _ => true,
                }
            })
            .map(|u| {
                let spaces: Vec<Value> = s
                    .guest_spaces
                    .get(&u.account_id)
                    .and_then(|k| s.space_by_key(k))
                    .map(|sp| json!({ "id": sp.id.to_string(), "key": sp.key, "name": sp.name }))
                    .into_iter()
                    .collect();
                let node = json!({ "accountId": u.account_id, "email": u.email, "name": u.display_name, "spaces": spaces });
                (SortKey::Str(u.account_id.clone()), 0, node)
            })
            .collect();
        keyset(items, false, cursor.as_ref(), first)
    });
    let nodes: Vec<Value> = page.into_iter().map(|(_, _, v)| v).collect();
    Json(json!({
        "data": { "externalCollaboratorsByCriteria": {
            "nodes": nodes,
            "pageInfo": { "hasNextPage": next.is_some(), "endCursor": next },
        } }
    }))
    .into_response()
}

fn reset_result(errors: Vec<String>) -> Response {
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|m| json!({ "message": m }))
        .collect();
    Json(json!({ "data": { "resetExCoSpacePermissions": { "success": errors.is_empty(), "errors": errors } } }))
        .into_response()
}

fn assign_guest(s: &mut State, account_id: &str, key: &str) {
    s.space_permissions
        .retain(|_, p| !(p.space_key != key && p.subject == Subject::User(account_id.to_string())));
    s.guest_spaces
        .insert(account_id.to_string(), key.to_string());
    let read = Operation {
        key: "read".into(),
        target: "space".into(),
    };
    let subject = Subject::User(account_id.to_string());
    let has_read = s
        .space_permissions
        .values()
        .any(|p| p.space_key == key && p.subject == subject && p.operation == read);
    if !has_read {
        let id = s.next_permission_id;
        s.next_permission_id += 1;
        s.space_permissions.insert(
            id,
            SpacePermission {
                id,
                space_key: key.to_string(),
                subject,
                operation: read,
            },
        );
    }
}

fn reset_space(sim: &Sim, vars: &Value) -> Response {
    let Some(account_id) = vars["accountId"].as_str().map(str::to_string) else {
        return gql_error(StatusCode::BAD_REQUEST, "Variable accountId is required");
    };
    let space_id = vars["spaceId"]
        .as_str()
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| vars["spaceId"].as_u64());
    let space_key = vars["spaceKey"].as_str().map(str::to_string);
    if space_id.is_none() && space_key.is_none() {
        return gql_error(
            StatusCode::BAD_REQUEST,
            "Variable spaceId or spaceKey is required",
        );
    }
    let errors = sim.write(|s| {
        let key = match (space_id, &space_key) {
            (Some(id), _) => s.spaces.get(&id).map(|sp| sp.key.clone()),
            (None, Some(k)) => s.space_by_key(k).map(|sp| sp.key.clone()),
            (None, None) => None,
        };
        let Some(key) = key else {
            return vec!["Space not found".to_string()];
        };
        match s.users.get(&account_id) {
            None => return vec![format!("User {account_id} not found")],
            Some(u) if u.kind != UserKind::Guest => {
                return vec![format!("User {account_id} is not a guest")];
            }
            Some(_) => {}
        }
        assign_guest(s, &account_id, &key);
        Vec::new()
    });
    reset_result(errors)
}
