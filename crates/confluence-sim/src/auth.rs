//! Authentication extractors.
//!
//! * [`AuthUser`]: Basic `email:api_token` on site calls (`/wiki/…`, `/rest/api/3/…`,
//!   `/cgraphql`). Missing or wrong credentials → 401 in the family's error shape with a
//!   `WWW-Authenticate` header. Call [`AuthUser::require_admin`] in admin-only handlers (403).
//! * [`AdminKey`]: `Authorization: Bearer <org API key>` for admin.atlassian.com-style calls.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use base64::Engine;

use crate::Sim;
use crate::error::{ApiError, ApiFamily};
use crate::model::{User, UserStatus};

/// The authenticated caller of a site API.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The caller (a copy taken at request time).
    pub user: User,
    /// The API family of the request, for error bodies.
    pub family: ApiFamily,
}

impl AuthUser {
    /// The caller's account id.
    pub fn account_id(&self) -> &str {
        &self.user.account_id
    }

    /// Fails with 403 (family shape) unless the caller is a site admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.user.is_admin {
            Ok(())
        } else {
            Err(ApiError::new(
                self.family,
                StatusCode::FORBIDDEN,
                "User is not authorized to perform this operation: site administrator permission required",
            ))
        }
    }
}

/// Parses `Authorization: Basic …` into (email, token).
fn basic_credentials(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (email, token) = text.split_once(':')?;
    Some((email.to_string(), token.to_string()))
}

impl FromRequestParts<Sim> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, sim: &Sim) -> Result<Self, Self::Rejection> {
        let family = ApiFamily::of_path(parts.uri.path());
        let Some((email, token)) = basic_credentials(parts) else {
            return Err(ApiError::unauthorized(family));
        };
        let user = sim.read(|s| {
            let account = s.api_tokens.get(&token)?;
            let user = s.users.get(account)?;
            (user.email.eq_ignore_ascii_case(&email) && user.status == UserStatus::Active)
                .then(|| user.clone())
        });
        match user {
            Some(user) => Ok(AuthUser { user, family }),
            None => Err(ApiError::unauthorized(family)),
        }
    }
}

/// Proof that the request carried the org admin API key as a Bearer token.
#[derive(Debug, Clone, Copy)]
pub struct AdminKey;

impl FromRequestParts<Sim> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, sim: &Sim) -> Result<Self, Self::Rejection> {
        let family = ApiFamily::Admin;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string());
        let ok = token
            .is_some_and(|t| sim.read(|s| !s.admin_api_key.is_empty() && s.admin_api_key == t));
        if ok {
            Ok(AdminKey)
        } else {
            Err(ApiError::unauthorized(family))
        }
    }
}
