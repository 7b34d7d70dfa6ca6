//! Errors: the library's [`SimError`] and the HTTP-facing [`ApiError`], which renders the
//! body shape of the API family the request belongs to.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Errors of the simulator library (state edits, start-up).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The referenced object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request conflicts with the state (duplicate title, guest rule, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The input was malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Binding or serving failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Which Atlassian API a path belongs to; error bodies differ per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFamily {
    /// `/wiki/api/v2/…`: `{"errors":[{status,code,title,detail}]}`.
    V2,
    /// `/wiki/rest/…` and `/cgraphql`: `{"statusCode":N,"message":…,"data":{…}}`.
    V1,
    /// `/rest/api/3/…` (Jira): `{"errorMessages":[…],"errors":{}}`.
    Jira,
    /// `api.atlassian.com/admin/…`: `{"code":N,"message":…}`.
    Admin,
    /// `/_sim/…`: `{"error":…}`.
    Sim,
}

impl ApiFamily {
    /// Classifies a request path.
    pub fn of_path(path: &str) -> Self {
        if path.starts_with("/wiki/api/v2") {
            ApiFamily::V2
        } else if path.starts_with("/rest/api/3") || path.starts_with("/rest/api/2") {
            ApiFamily::Jira
        } else if path.starts_with("/admin") {
            ApiFamily::Admin
        } else if path.starts_with("/_sim") {
            ApiFamily::Sim
        } else {
            ApiFamily::V1
        }
    }
}

/// An HTTP error answered the way Confluence answers it.
///
/// Handlers return `Result<_, ApiError>`; build one with [`ApiError::new`] (or the shortcuts)
/// and the family of the route.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Body family.
    pub family: ApiFamily,
    /// Human message (`detail` in v2, `message` in v1).
    pub message: String,
    /// Extra headers (e.g. `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// A new error.
    pub fn new(family: ApiFamily, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            family,
            message: message.into(),
            headers: Vec::new(),
        }
    }
    /// 400.
    pub fn bad_request(family: ApiFamily, message: impl Into<String>) -> Self {
        Self::new(family, StatusCode::BAD_REQUEST, message)
    }
    /// 404.
    pub fn not_found(family: ApiFamily, message: impl Into<String>) -> Self {
        Self::new(family, StatusCode::NOT_FOUND, message)
    }
    /// 403.
    pub fn forbidden(family: ApiFamily, message: impl Into<String>) -> Self {
        Self::new(family, StatusCode::FORBIDDEN, message)
    }
    /// 401 with `WWW-Authenticate`.
    pub fn unauthorized(family: ApiFamily) -> Self {
        let mut e = Self::new(
            family,
            StatusCode::UNAUTHORIZED,
            "Client must be authenticated to access this resource.",
        );
        e.headers.push((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Atlassian Confluence\""),
        ));
        e
    }
    /// Adds a header.
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    fn code(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "INVALID_REQUEST_PARAMETER",
            401 => "UNAUTHORIZED",
            403 => "FORBIDDEN",
            404 => "NOT_FOUND",
            409 => "CONFLICT",
            429 => "TOO_MANY_REQUESTS",
            500 => "INTERNAL_SERVER_ERROR",
            502 => "BAD_GATEWAY",
            503 => "SERVICE_UNAVAILABLE",
            _ => "ERROR",
        }
    }

    /// The JSON body for this error.
    pub fn body(&self) -> serde_json::Value {
        let status = self.status.as_u16();
        let title = self.status.canonical_reason().unwrap_or("Error");
        match self.family {
            ApiFamily::V2 => json!({
                "errors": [{
                    "status": status,
                    "code": self.code(),
                    "title": title,
                    "detail": if status == 401 { serde_json::Value::Null } else { json!(self.message) },
                }]
            }),
            ApiFamily::V1 => json!({
                "statusCode": status,
                "data": {
                    "authorized": status != 401 && status != 403,
                    "valid": status != 400,
                    "errors": [],
                    "successful": false,
                },
                "message": self.message,
            }),
            ApiFamily::Jira => json!({
                "errorMessages": [self.message],
                "errors": {},
            }),
            ApiFamily::Admin => json!({
                "code": status,
                "message": self.message,
            }),
            ApiFamily::Sim => json!({ "error": self.message }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(self.body());
        let mut resp = (self.status, body).into_response();
        for (k, v) in self.headers {
            resp.headers_mut().append(k, v);
        }
        resp
    }
}

impl From<(ApiFamily, SimError)> for ApiError {
    fn from((family, e): (ApiFamily, SimError)) -> Self {
        match e {
            SimError::NotFound(m) => ApiError::not_found(family, m),
            SimError::Conflict(m) => ApiError::new(family, StatusCode::CONFLICT, m),
            SimError::BadRequest(m) => ApiError::bad_request(family, m),
            SimError::Io(e) => {
                ApiError::new(family, StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}
