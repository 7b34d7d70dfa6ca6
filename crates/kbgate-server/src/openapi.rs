//! The OpenAPI 3.1 document of `/api/v1/*`, generated from the handlers' own types and
//! `#[utoipa::path]` attributes (so it cannot drift from what they take and return), served
//! at `/api/v1/openapi.json`. CI checks the running service against it with schemathesis
//! (`crates/kbgate/tests/schemathesis/run.sh`).

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};

use crate::access_requests::{Accepted, ApiRequest};
use crate::api::{
    AttachmentJson, HeadingJson, HitJson, PageJson, Ref, SearchJson, SpaceJson, SpacesJson,
    TreeJson,
};
use crate::auth::{HandoverRequest, HandoverResponse};
use crate::html::TreeNode;

/// Every error answer of the API: a status and a fixed public message (never echoed input).
#[derive(ToSchema)]
#[allow(dead_code)] // only its schema is used; errors are written by `crate::error`
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// See [`ErrorBody`].
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorDetail {
    /// The HTTP status again.
    status: u16,
    message: String,
}

/// Who the host app reads for, with its API key (a browser session needs neither): the
/// `X-Kbgate-Email` header or the `email` query parameter.
pub(crate) struct AsPerson;

impl IntoParams for AsPerson {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let param = |name: &str, at: ParameterIn, description: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(at)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(Object::with_type(Type::String)))
                .build()
        };
        vec![
            param(
                "X-Kbgate-Email",
                ParameterIn::Header,
                "The person's email (with the API key); or `?email=`.",
            ),
            param(
                "email",
                ParameterIn::Query,
                "The person's email (with the API key), when the header is not used.",
            ),
        ]
    }
}

/// Errors of the content routes (`ApiViewer`).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum ViewerErrors {
    /// Malformed input: no email named, an invalid email, a bad query.
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// No API key or session, or a wrong API key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The policy grants this person nothing.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Unknown, or not readable by this person (the two are not told apart).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The store cannot be read right now (or an attachment's bytes are missing).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Errors of the host app's POST routes (`HostApp`, JSON bodies).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum HostAppErrors {
    /// An invalid email or a malformed JSON body.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No API key, or a wrong one.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// A body over 16 KiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Not `Content-Type: application/json`.
    #[response(status = 415)]
    UnsupportedType(ErrorBody),
    /// JSON of the wrong shape (a missing or mistyped field).
    #[response(status = 422)]
    Unprocessable(ErrorBody),
    /// The host app's budget of these calls is spent for now.
    #[response(status = 429)]
    TooMany(ErrorBody),
}

/// The API's two ways in: the host app's key (`Authorization: Bearer`), or a portal session
/// cookie (a browser calling the API of the portal it is signed in to).
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The host app's API key ([embed] api_key_env/api_key_file)",
                    ))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-kbgate_session",
                "The portal's session cookie (`kbgate_session` on http://localhost, \
                 `__Secure-kbgate_session` under a path prefix)",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kbgate API",
        description = "Read the knowledge base on behalf of a person (the policy decides what \
                       they may read), and sign people in from the host app.",
    ),
    paths(
        crate::api::spaces,
        crate::api::tree,
        crate::api::page,
        crate::api::search,
        crate::auth::handover,
        crate::access_requests::api,
    ),
    components(schemas(
        SpacesJson, SpaceJson, TreeJson, TreeNode, PageJson, Ref, HeadingJson, AttachmentJson,
        SearchJson, HitJson, HandoverRequest, HandoverResponse, ApiRequest, Accepted, ErrorBody,
        ErrorDetail,
    )),
    modifiers(&Security),
)]
struct ApiDoc;

/// The document, with its version from the crate; under a path prefix (`/kb`), a `servers`
/// entry says so (a relative server URL is resolved against the document's own URL,
/// OpenAPI 3.1 §4.8.5), so that the paths stay `/api/v1/...` as routed.
pub(crate) fn document(prefix: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    env!("CARGO_PKG_VERSION").clone_into(&mut doc.info.version);
    if !prefix.is_empty() {
        doc.servers = Some(vec![utoipa::openapi::Server::new(prefix)]);
    }
    doc
}

/// `GET /api/v1/openapi.json`: public (it describes the API, it reveals no content), built
/// once per process (for the prefix it is served under).
pub(crate) async fn json() -> impl IntoResponse {
    static DOC: OnceLock<(String, String)> = OnceLock::new();
    let prefix = crate::urls::prefix();
    let build = || document(&prefix).to_pretty_json().unwrap_or_default();
    let (built_for, body) = DOC.get_or_init(|| (prefix.clone(), build()));
    // One process serves one prefix; tests may run several portals in one process.
    let body = if *built_for == prefix {
        body.clone()
    } else {
        build()
    };
    ([(header::CONTENT_TYPE, "application/json")], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_names_every_api_route() {
        let doc: serde_json::Value =
            serde_json::from_str(&document("").to_pretty_json().unwrap()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for p in [
            "/api/v1/spaces",
            "/api/v1/spaces/{key}/tree",
            "/api/v1/pages/{id}",
            "/api/v1/search",
            "/api/v1/handover",
            "/api/v1/access-requests",
        ] {
            assert!(doc["paths"][p].is_object(), "{p} missing");
        }
        assert_eq!(
            doc["components"]["schemas"]["TreeNode"]["properties"]["children"]["items"]["$ref"],
            "#/components/schemas/TreeNode"
        );
        assert!(doc.get("servers").is_none());
        let under: serde_json::Value =
            serde_json::from_str(&document("/kb").to_pretty_json().unwrap()).unwrap();
        assert_eq!(under["servers"][0]["url"], "/kb");
    }
}
