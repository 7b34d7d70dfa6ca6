//! Knowledge-base (JSM) view switches. Undocumented in the published specs; the shapes below
//! are the simulator's best guess, kept stable for kbgate's client:
//!
//! * `POST …/permissions/space/unlicensedview` and `…/space/anonymousview`
//!   `{"spaceKey":"KB","enablePermission":true}` →
//!   `200 {"spaceKey":"KB","permission":"unlicensedview","enabled":true}`;
//! * `POST …/permissions/global/unlicensedaccess` `{"enablePermission":true}` →
//!   `200 {"permission":"unlicensedaccess","enabled":true}`.
//!
//! Site admin only (403, v1 error shape); unknown space → 404; malformed body → 400.
//!
//! The per-space switches read back through the documented v1 space read
//! (`GET /wiki/rest/api/space[/{spaceKey}]?expand=permissions`: a `read space` permission with
//! `unlicensedAccess` or `anonymousAccess` true, see `permissions::space_permissions_v1_json`).
//! The site-wide switch has no documented read, so the simulator serves none.

use axum::Json;
use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::parse_body;
use crate::Sim;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiFamily};

const V1: ApiFamily = ApiFamily::V1;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SwitchIn {
    space_key: Option<String>,
    enable_permission: Option<bool>,
}

#[derive(Clone, Copy)]
enum SpaceSwitch {
    Unlicensed,
    Anonymous,
}

fn space_switch(
    sim: &Sim,
    auth: &AuthUser,
    body: &Bytes,
    which: SpaceSwitch,
) -> Result<Response, ApiError> {
    auth.require_admin()?;
    let req: SwitchIn = parse_body(V1, body)?;
    let (Some(key), Some(enable)) = (req.space_key, req.enable_permission) else {
        return Err(ApiError::bad_request(
            V1,
            "spaceKey and enablePermission are required",
        ));
    };
    sim.write(|s| {
        if s.space_by_key(&key).is_none() {
            return Err(ApiError::not_found(
                V1,
                format!("No space with key : {key}"),
            ));
        }
        let (set, name) = match which {
            SpaceSwitch::Unlicensed => (&mut s.unlicensed_view, "unlicensedview"),
            SpaceSwitch::Anonymous => (&mut s.anonymous_view, "anonymousview"),
        };
        if enable {
            set.insert(key.clone());
        } else {
            set.remove(&key);
        }
        Ok(Json(json!({ "spaceKey": key, "permission": name, "enabled": enable })).into_response())
    })
}

/// `POST /wiki/rest/knowledge-base/1.0/permissions/space/unlicensedview`.
pub(super) async fn unlicensed_view(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    space_switch(&sim, &auth, &body, SpaceSwitch::Unlicensed)
}

/// `POST /wiki/rest/knowledge-base/1.0/permissions/space/anonymousview`.
pub(super) async fn anonymous_view(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    space_switch(&sim, &auth, &body, SpaceSwitch::Anonymous)
}

/// `POST /wiki/rest/knowledge-base/1.0/permissions/global/unlicensedaccess`.
pub(super) async fn global_unlicensed_access(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth.require_admin()?;
    let req: SwitchIn = parse_body(V1, &body)?;
    let enable = req
        .enable_permission
        .ok_or_else(|| ApiError::bad_request(V1, "enablePermission is required"))?;
    sim.write(|s| s.global_unlicensed_access = enable);
    Ok(Json(json!({ "permission": "unlicensedaccess", "enabled": enable })).into_response())
}
