//! Space icons: downloaded in the space refresh only when the icon changed, checked to be a
//! raster image, stored as a content-addressed blob like an attachment's bytes.
//!
//! Why raster only: the portal serves an icon from its own origin. An SVG is a document that
//! may carry script and links; served inline from our origin it would run with the portal's
//! cookies if opened directly. Sanitising SVG well is a project of its own, so SVG (and any
//! other type) is refused and the start page shows the neutral letter tile instead. The
//! type comes from the bytes, not from what the server or the file name claims.

use futures::TryStreamExt;
use kbgate_store::{SpaceIcon, SpaceRecord, Store, StoreError};

use super::progress::Progress;
use super::source::{Source, SourceIcon};

/// The largest icon kept (Confluence shows icons at 48 px or so; anything bigger is not an
/// icon a start page needs).
pub const MAX_ICON_BYTES: usize = 512 * 1024;

/// Whether a path names one of Confluence's stock images rather than an uploaded icon: the
/// default space logo (`/wiki/images/logo/default-space-logo…`) or a person's avatar
/// (`/wiki/aa-avatar/…`, personal spaces). Nothing to download: the letter tile stands in.
pub fn is_stock(icon: &SourceIcon) -> bool {
    let path = icon.path.strip_prefix("/wiki").unwrap_or(&icon.path);
    icon.download.is_none() || path.starts_with("/images/") || path.starts_with("/aa-avatar/")
}

/// The image type of `bytes` by their signature: PNG, JPEG, GIF or WebP; `None` for anything
/// else (SVG included).
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// `space` (from the listing: name, description) with its icon fields settled against what
/// the mirror has: kept when the icon's path is the one already mirrored (and its bytes are
/// still in the blob store), downloaded when it changed, cleared for a stock image. A failed
/// download keeps the previous icon and path, so the next sync tries again; a refused one
/// (not a raster image, too large) records the path without an image, so it is not fetched
/// again until it changes. Never fails the space's sync over an icon, except when the
/// store itself fails. Also says whether it asked Confluence for the icon.
pub(super) async fn settle_icon(
    source: &dyn Source,
    store: &dyn Store,
    mut space: SpaceRecord,
    icon: Option<&SourceIcon>,
    progress: &Progress,
) -> Result<(SpaceRecord, bool), StoreError> {
    let Some(icon) = icon.filter(|i| !is_stock(i)) else {
        space.icon_path = icon.map(|i| i.path.clone());
        space.icon = None;
        return Ok((space, false));
    };
    let existing = store.space(&space.id).await?;
    if let Some(old) = existing.as_ref()
        && old.icon_path.as_deref() == Some(icon.path.as_str())
    {
        let present = match &old.icon {
            Some(i) => store.blobs().exists(&i.blob).await?,
            None => true,
        };
        if present {
            space.icon_path = old.icon_path.clone();
            space.icon = old.icon.clone();
            return Ok((space, false));
        }
    }
    let link = icon.download.as_deref().unwrap_or_default();
    match fetch(source, link).await {
        Ok(Fetched::Image(media_type, bytes)) => {
            let blob = store.blobs().write_bytes(&bytes).await?;
            space.icon_path = Some(icon.path.clone());
            space.icon = Some(SpaceIcon {
                media_type: media_type.to_owned(),
                blob,
            });
        }
        Ok(Fetched::Refused(why)) => {
            progress.warn(&format!(
                "space {}: icon not used ({why}); the start page shows a letter tile",
                space.key
            ));
            space.icon_path = Some(icon.path.clone());
            space.icon = None;
        }
        Err(message) => {
            progress.warn(&format!(
                "space {}: icon not downloaded, tried again next sync: {message}",
                space.key
            ));
            space.icon_path = existing.as_ref().and_then(|o| o.icon_path.clone());
            space.icon = existing.and_then(|o| o.icon);
        }
    }
    Ok((space, true))
}

enum Fetched {
    Image(&'static str, Vec<u8>),
    Refused(String),
}

async fn fetch(source: &dyn Source, link: &str) -> Result<Fetched, String> {
    let mut stream = source.download_icon(link).await.map_err(|e| e.message)?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.try_next().await.map_err(|e| e.message)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_ICON_BYTES {
            return Ok(Fetched::Refused(format!(
                "larger than {} KiB",
                MAX_ICON_BYTES / 1024
            )));
        }
    }
    Ok(match sniff_image(&bytes) {
        Some(t) => Fetched::Image(t, bytes),
        None => Fetched::Refused("not a PNG, JPEG, GIF or WebP image".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raster_images_pass_the_sniff() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_image(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(
            sniff_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            None
        );
        assert_eq!(sniff_image(b"<?xml version='1.0'?><svg/>"), None);
        assert_eq!(sniff_image(b"<html>"), None);
        assert_eq!(sniff_image(b""), None);
    }

    #[test]
    fn stock_images_are_not_downloaded() {
        let icon = |path: &str, download: Option<&str>| SourceIcon {
            path: path.into(),
            download: download.map(Into::into),
        };
        assert!(is_stock(&icon(
            "/wiki/images/logo/default-space-logo.svg",
            None
        )));
        assert!(is_stock(&icon(
            "/wiki/images/logo/default-space-logo.svg",
            Some("/wiki/rest/api/x")
        )));
        assert!(is_stock(&icon("/wiki/aa-avatar/123", Some("/wiki/x"))));
        assert!(is_stock(&icon("/wiki/download/attachments/1/KB.png", None)));
        assert!(!is_stock(&icon(
            "/wiki/download/attachments/1/KB.png?version=2",
            Some("/wiki/rest/api/content/1/child/attachment/att2/download")
        )));
    }
}
