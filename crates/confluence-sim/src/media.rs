//! The media service: where attachment downloads end up, on an origin of its own.
//!
//! Today's Cloud answers `GET /wiki/rest/api/content/{pageId}/child/attachment/{attId}/download`
//! with a 302 to `https://api.media.atlassian.com/file/<FILE_ID>/binary?token=<JWT>&client=…&name=…`
//! and the media host authenticates by the JWT in the query, not by Basic
//! (evidence: <https://github.com/pchuri/confluence-cli/pull/199> "The REST endpoint
//! 302-redirects to a JWT-signed media URL (`api.media.atlassian.com`), so it works without
//! re-sending Confluence credentials across the redirect").
//!
//! The simulator serves this on a second listener, addressed by another host name than the API
//! (`http://localhost:M` while the API is `http://127.0.0.1:P`), so a client that forwards its
//! credentials across origins is caught: the media listener refuses any request carrying an
//! `Authorization` header (400). Tokens are HS256 JWTs signed with a per-simulator secret,
//! bound to one file id and expiring after [`Sim::media_token_ttl`] (simulator clock).
//!
//! Refusals: no `Authorization` header allowed (400, checked first); no token (401); a token
//! that is malformed or not signed by this simulator (401); an expired token, or one for
//! another file (403); a file id no current attachment has — e.g. the file of a replaced or
//! deleted attachment — (404).

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Sim;
use crate::model::PageStatus;
use crate::paging::{Params, encode_segment};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The `client` query parameter of media URLs (Cloud puts a client id there; opaque).
pub const MEDIA_CLIENT_ID: &str = "5d3a7c5e-sim0-4c0a-9e1d-confluence01";

/// Routes of the media listener.
pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/file/{fileId}/binary", get(binary))
        .fallback(|| async { refuse(StatusCode::NOT_FOUND, "Not Found") })
}

/// HMAC-SHA256 (RFC 2104), so the crate needs no extra dependency for one signature.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// Mints the signed token for one file, valid until now + TTL (simulator clock).
pub(crate) fn sign(sim: &Sim, file_id: &str) -> String {
    let now = sim.now().timestamp();
    let exp = now + sim.media_token_ttl().as_secs() as i64;
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = B64.encode(
        json!({
            "iss": MEDIA_CLIENT_ID,
            "access": { format!("urn:filestore:file:{file_id}"): ["read"] },
            "nbf": now,
            "exp": exp,
        })
        .to_string(),
    );
    let signing_input = format!("{header}.{payload}");
    let sig = hmac_sha256(&sim.media_secret(), signing_input.as_bytes());
    format!("{signing_input}.{}", B64.encode(sig))
}

/// The full media URL the REST download redirects to.
pub(crate) fn download_url(sim: &Sim, file_id: &str, name: &str) -> String {
    format!(
        "{}/file/{}/binary?token={}&client={}&name={}&dl=true",
        sim.media_url(),
        encode_segment(file_id),
        sign(sim, file_id),
        MEDIA_CLIENT_ID,
        encode_segment(name)
    )
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
enum TokenError {
    /// Malformed or not signed by this simulator (401).
    Invalid,
    /// Past its `exp` (403).
    Expired,
    /// Signed for another file (403).
    OtherFile,
}

fn verify(sim: &Sim, token: &str, file_id: &str) -> Result<(), TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Invalid);
    };
    let expected = hmac_sha256(&sim.media_secret(), format!("{h}.{p}").as_bytes());
    let given = B64.decode(s).map_err(|_| TokenError::Invalid)?;
    // Compare without an early exit (the usual care with MACs, cheap here).
    if given.len() != expected.len()
        || given
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
    {
        return Err(TokenError::Invalid);
    }
    let payload: serde_json::Value = B64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Invalid)?;
    let exp = payload["exp"].as_i64().ok_or(TokenError::Invalid)?;
    if sim.now().timestamp() >= exp {
        return Err(TokenError::Expired);
    }
    if payload["access"]
        .get(format!("urn:filestore:file:{file_id}"))
        .is_none()
    {
        return Err(TokenError::OtherFile);
    }
    Ok(())
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "code": status.canonical_reason().unwrap_or("Error"), "title": message } })),
    )
        .into_response()
}

async fn binary(
    State(sim): State<Sim>,
    Path(file_id): Path<String>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    sim.count_media();
    if headers.contains_key(header::AUTHORIZATION) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Authorization header refused: media URLs carry their own token; Confluence \
             credentials must not be forwarded to the media host",
        );
    }
    let Some(token) = p.get("token").filter(|t| !t.is_empty()) else {
        return refuse(StatusCode::UNAUTHORIZED, "Missing token");
    };
    match verify(&sim, token, &file_id) {
        Ok(()) => {}
        Err(TokenError::Invalid) => return refuse(StatusCode::UNAUTHORIZED, "Invalid token"),
        Err(TokenError::Expired) => return refuse(StatusCode::FORBIDDEN, "Token expired"),
        Err(TokenError::OtherFile) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "Token does not grant access to this file",
            );
        }
    }
    let found = sim.read(|s| {
        s.attachments
            .values()
            .find(|a| a.file_id == file_id && a.status == PageStatus::Current)
            .map(|a| (a.bytes.clone(), a.media_type.clone(), a.title.clone()))
            .or_else(|| {
                s.spaces
                    .values()
                    .filter_map(|sp| sp.icon.as_ref())
                    .find(|i| i.file_id == file_id)
                    .map(|i| (i.bytes.clone(), i.media_type.clone(), i.title.clone()))
            })
    });
    let Some((bytes, media_type, title)) = found else {
        return refuse(StatusCode::NOT_FOUND, "File not found");
    };
    let len = bytes.len();
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&media_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let ascii: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        encode_segment(&title)
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
