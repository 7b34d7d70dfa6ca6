//! The Atlassian API gateway (`https://api.atlassian.com/ex/confluence/{cloudId}/…`), the
//! tenant-info edge route and the OAuth 2.0 token endpoint, all served on the simulator's
//! own listener.
//!
//! * Scoped API tokens and service accounts must call
//!   `https://api.atlassian.com/ex/confluence/{cloudId}/{api}`, the cloud id coming from
//!   `https://SITE/_edge/tenant_info` → `{"cloudId":"…"}`
//!   (<https://support.atlassian.com/atlassian-cloud/kb/401-unauthorized-error-when-service-account-accesses-jira-or-confluence-api>:
//!   "Confluence scoped token API: `https://api.atlassian.com/ex/confluence/<cloudid>/{api}`";
//!   <https://github.com/pchuri/confluence-cli/issues/57>: "Cloud ID can be retrieved from
//!   `https://<site>.atlassian.net/_edge/tenant_info`").
//! * `{api}` is the site path (`/wiki/api/v2/…`, `/wiki/rest/api/…`); the gateway also routes
//!   v1 paths without `/wiki` (`/ex/confluence/{cloudId}/rest/api/content/…`: a trace in
//!   <https://github.com/kovetskiy/mark/issues/917> shows such a call reaching the scope
//!   check). Anything else under the prefix, and any other cloud id, is 404.
//! * `_links` in answers to gateway calls keep the **site**: `_links.base` is the tenant's
//!   `…/wiki` and `_links.next` the same relative path as on the site, without the gateway
//!   prefix (<https://github.com/kovetskiy/mark/issues/1019> / PR #1021: behind the gateway the
//!   response's `_links.base` is `https://<tenant>.atlassian.net/wiki`;
//!   <https://github.com/atlassian-api/atlassian-python-api/issues/1655>: appending the
//!   relative `next` to `_links.base` "leaves the gateway host and the
//!   `/ex/confluence/{cloud_id}` prefix is lost"). A gateway client appends `next` to its
//!   gateway base (`…/ex/confluence/{cloudId}` + `/wiki/api/v2/…`). In the simulator the
//!   site and the gateway share one origin, so `_links.base` is `http://HOST/wiki`.
//! * `POST /oauth/token` is Atlassian's token endpoint (`https://auth.atlassian.com/oauth/token`):
//!   "Make a POST request to https://auth.atlassian.com/oauth/token with client_id and
//!   client_secret to get the OAuth 2.0 access token valid for 60 minutes"
//!   (<https://support.atlassian.com/user-management/docs/create-oauth-2-0-credential-for-service-accounts>).
//!   The simulator takes `grant_type=client_credentials`, `client_id`, `client_secret` and an
//!   optional space-separated `scope`, as JSON or form, and answers
//!   `{access_token, token_type:"Bearer", expires_in:3600, scope}`.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::Sim;
use crate::error::{ApiError, ApiFamily};

/// How a request reached the site: directly, or through the gateway. Set on every request
/// before routing; the auth extractor reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `http://SITE/wiki/…` (classic API tokens).
    Site,
    /// `http://SITE/ex/confluence/{cloudId}/…` (scoped tokens, OAuth Bearer).
    Gateway,
}

const PREFIX: &str = "/ex/confluence/";

/// The gateway routes nothing for this request: wrong cloud id, or no API path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoRoute;

/// Rewrites a gateway path to the site path it stands for and marks the request; [`NoRoute`]
/// (answered 404) for a wrong cloud id or an unrouted path under the prefix.
pub(crate) fn rewrite(sim: &Sim, mut req: Request) -> Result<Request, NoRoute> {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        req.extensions_mut().insert(Via::Site);
        return Ok(req);
    };
    let (cloud_id, api) = rest.split_once('/').unwrap_or((rest, ""));
    let api = format!("/{api}");
    if cloud_id != sim.cloud_id() {
        return Err(NoRoute);
    }
    let site_path = if api.starts_with("/wiki/") {
        api
    } else if api.starts_with("/rest/") {
        format!("/wiki{api}")
    } else {
        return Err(NoRoute);
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{site_path}?{q}"),
        None => site_path,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = pq.parse().ok();
    match http::Uri::from_parts(parts) {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return Err(NoRoute),
    }
    req.extensions_mut().insert(Via::Gateway);
    Ok(req)
}

/// The gateway's own 404 (no cloud id or route): body in the gateway's `{code, message}`
/// shape. Cloud's exact body here is undocumented.
fn gateway_not_found() -> Response {
    ApiError::new(ApiFamily::Admin, StatusCode::NOT_FOUND, "Not Found").into_response()
}

/// Routes outside the counted, faulted API: tenant info and the token endpoint.
pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/_edge/tenant_info", get(tenant_info))
        .route("/oauth/token", post(token))
}

async fn tenant_info(State(sim): State<Sim>) -> Response {
    axum::Json(json!({ "cloudId": sim.cloud_id() })).into_response()
}

#[derive(Debug, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

async fn token(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let parsed: Option<TokenRequest> = if is_json {
        serde_json::from_slice(&body).ok()
    } else {
        serde_urlencoded::from_bytes(&body).ok()
    };
    let Some(req) = parsed else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Malformed body");
    };
    if req.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only client_credentials is supported here",
        );
    }
    let (Some(id), Some(secret)) = (req.client_id, req.client_secret) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
    };
    match sim.issue_access_token(&id, &secret, req.scope.as_deref()) {
        Some((token, at)) => {
            let scope = at.scopes.iter().cloned().collect::<Vec<_>>().join(" ");
            let mut resp = axum::Json(json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": crate::sim::ACCESS_TOKEN_TTL_SECS,
                "scope": scope,
            }))
            .into_response();
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
            resp
        }
        None => oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized"),
    }
}

/// Wraps the routed application: the gateway rewrite runs before routing, so stats keys and
/// handlers see site paths.
pub(crate) fn wrap(sim: Sim, inner: Router) -> Router {
    let svc = tower::service_fn(move |req: Request<Body>| {
        let inner = inner.clone();
        let sim = sim.clone();
        async move {
            use tower::ServiceExt;
            match rewrite(&sim, req) {
                Ok(req) => inner.oneshot(req).await,
                Err(NoRoute) => Ok(gateway_not_found()),
            }
        }
    });
    Router::new().fallback_service(svc)
}
