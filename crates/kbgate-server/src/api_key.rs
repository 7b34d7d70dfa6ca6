//! The host app's API key, presented as `Authorization: Bearer <key>`.

use axum::http::{HeaderMap, header};

use crate::error::Error;
use crate::secret::ct_eq;
use crate::state::AppState;

/// Checks `Authorization: Bearer <api key>`: `Ok(true)` for the right key, `Ok(false)` when
/// no bearer is presented, `Err(Unauthorized)` for a wrong key or when no key is configured.
pub(crate) fn check_api_key(headers: &HeaderMap, state: &AppState) -> Result<bool, Error> {
    let Some(auth) = headers.get(header::AUTHORIZATION) else {
        return Ok(false);
    };
    let presented = auth
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(Error::Unauthorized)?;
    let live = state.live();
    let expected = live.api_key().ok_or(Error::Unauthorized)?;
    if ct_eq(presented, expected) {
        Ok(true)
    } else {
        Err(Error::Unauthorized)
    }
}
