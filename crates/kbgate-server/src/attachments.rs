//! Attachment downloads: only for readable pages, never rendered as active content.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kbgate_render::percent_encode_segment;
use tokio_util::io::ReaderStream;

use crate::error::Error;
use crate::extractors::CurrentViewer;
use crate::library::Download;
use crate::state::AppState;

/// Types shown inline in the browser; everything else (HTML, SVG, XML, scripts, unknown) is
/// sent as `application/octet-stream` with `attachment` disposition.
const INLINE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "application/pdf",
    "text/plain",
];

/// The content type to send and whether the file may be shown inline.
pub(crate) fn safe_type(media_type: &str) -> (&'static str, bool) {
    let base = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match INLINE_TYPES.iter().find(|t| **t == base) {
        Some(&"text/plain") => ("text/plain; charset=utf-8", true),
        Some(t) => (t, true),
        None => ("application/octet-stream", false),
    }
}

/// `Content-Disposition` with an ASCII fallback name and the exact UTF-8 name (RFC 6266/8187).
pub(crate) fn disposition(file_name: &str, inline: bool) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let fallback = if fallback.trim().is_empty() {
        "download".to_owned()
    } else {
        fallback
    };
    format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        fallback,
        percent_encode_segment(file_name)
    )
}

fn respond(d: Download) -> Response {
    let (ctype, inline) = safe_type(&d.attachment.media_type);
    let size = d.attachment.blob.as_ref().map(|b| b.size());
    let mut resp = inert_file(d.file, ctype, size);
    if let Ok(v) = HeaderValue::from_str(&disposition(&d.attachment.title, inline)) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// A mirrored file streamed as `ctype`, which the browser may not sniff into something else
/// and which, even if a browser did render it, may run and load nothing.
fn inert_file<R>(file: R, ctype: &'static str, size: Option<i64>) -> Response
where
    R: tokio::io::AsyncRead + Send + 'static,
{
    let mut resp = Body::from_stream(ReaderStream::new(file)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Some(size) = size
        && let Ok(v) = HeaderValue::from_str(&size.to_string())
    {
        h.insert(header::CONTENT_LENGTH, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    resp
}

/// `GET /attachments/{page_id}/{file_name}`.
pub(crate) async fn by_name(
    State(state): State<AppState>,
    cv: CurrentViewer,
    Path((page_id, file_name)): Path<(String, String)>,
) -> Result<Response, Error> {
    let d = state
        .library()
        .attachment_by_name(&cv.viewer, &page_id, &file_name)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(respond(d))
}

/// `GET /attachments/id/{attachment_id}`.
pub(crate) async fn by_id(
    State(state): State<AppState>,
    cv: CurrentViewer,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let d = state
        .library()
        .attachment_by_id(&cv.viewer, &id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(respond(d))
}

/// `GET /spaces/{key}/icon?v=…`: the space's icon, for viewers who may read the space.
/// Only raster types are ever stored (the sync refuses SVG), and the type sent is the one
/// sniffed from the bytes at sync time. With the current `v` (the content hash) it is
/// immutable for the browser; `private`, since it sits behind the gate.
pub(crate) async fn space_icon(
    State(state): State<AppState>,
    cv: CurrentViewer,
    Path(key): Path<String>,
    Query(q): Query<IconQuery>,
) -> Result<Response, Error> {
    let (icon, file) = state
        .library()
        .space_icon(&cv.viewer, &key)
        .await?
        .ok_or(Error::NotFound)?;
    let (ctype, inline) = safe_type(&icon.media_type);
    if !inline || !ctype.starts_with("image/") {
        return Err(Error::NotFound);
    }
    let mut resp = inert_file(file, ctype, Some(icon.blob.size()));
    let current = q.v.as_deref() == Some(crate::urls::icon_version(icon.blob.sha256()));
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if current {
            "private, max-age=31536000, immutable"
        } else {
            "private, no-cache"
        }),
    );
    Ok(resp)
}

/// Query of [`space_icon`].
#[derive(serde::Deserialize)]
pub(crate) struct IconQuery {
    /// The content hash prefix the start page linked.
    v: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_types_are_downloaded() {
        assert_eq!(safe_type("text/html"), ("application/octet-stream", false));
        assert_eq!(
            safe_type("image/svg+xml"),
            ("application/octet-stream", false)
        );
        assert_eq!(safe_type("IMAGE/PNG"), ("image/png", true));
        assert_eq!(
            safe_type("text/plain; charset=latin1"),
            ("text/plain; charset=utf-8", true)
        );
        assert_eq!(safe_type(""), ("application/octet-stream", false));
    }

    #[test]
    fn disposition_is_safe() {
        let d = disposition("ré\"port\r\n.pdf", false);
        assert!(d.starts_with("attachment; filename=\"r__port__.pdf\""));
        assert!(d.contains("filename*=UTF-8''r%C3%A9%22port%0D%0A.pdf"));
        assert!(HeaderValue::from_str(&d).is_ok());
    }
}
