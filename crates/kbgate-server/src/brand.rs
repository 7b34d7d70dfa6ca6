//! The brand in force (`[portal.brand]`): the names, logo, colours, footer and support
//! contact every page's frame shows, and the files kbgate serves for it (stylesheet with the
//! accent colours, logos, favicon, custom CSS).
//!
//! Files are read once, when the brand is installed (start and each config reload), so a
//! request never touches the disk; their URLs carry a content hash, so browsers may cache
//! them for good and still see a new brand at once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use kbgate_config::{BrandConfig, BrandImage};
use sha2::{Digest, Sha256};

use crate::urls::routes;

/// The largest brand file (logo, favicon, custom CSS) read into memory.
pub(crate) const MAX_BRAND_FILE_BYTES: u64 = 1024 * 1024;

/// The portal's own stylesheet, compiled in.
const BASE_CSS: &str = include_str!("../static/style.css");

/// Why a brand could not be installed. Names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum BrandError {
    #[error("[portal.brand] {key}: reading {path}: {source}")]
    Read {
        key: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("[portal.brand] {key}: {path} is larger than {MAX_BRAND_FILE_BYTES} bytes")]
    TooLarge { key: &'static str, path: String },
    #[error(
        "[portal.brand] {key}: {path}: unsupported file type (expected .svg, .png, .ico, .webp, .jpg or .gif)"
    )]
    UnknownType { key: &'static str, path: String },
}

/// A file kbgate serves for the brand.
#[derive(Debug, Clone)]
pub(crate) struct Asset {
    pub(crate) bytes: Bytes,
    pub(crate) content_type: &'static str,
}

/// A footer link, as the template writes it (askama escapes both).
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub(crate) text: String,
    pub(crate) href: String,
}

/// The brand as the templates use it: names and ready-made URLs.
#[derive(Debug)]
pub(crate) struct Brand {
    pub(crate) site_name: String,
    /// In `<title>` and mails.
    pub(crate) title_name: String,
    pub(crate) logo: Option<String>,
    pub(crate) logo_dark: Option<String>,
    pub(crate) favicon: String,
    pub(crate) favicon_type: &'static str,
    pub(crate) stylesheet: String,
    pub(crate) custom_css: Option<String>,
    pub(crate) footer_links: Vec<Link>,
    pub(crate) support_email: Option<String>,
    pub(crate) support_url: Option<String>,
    /// The light theme's accent (`#rrggbb`, validated by kbgate-config), when configured: the
    /// help widget's button and frame take it too.
    pub(crate) accent: Option<String>,
    /// By name (the last path segment of [`routes::BRAND_ASSET`]).
    assets: HashMap<&'static str, Asset>,
}

fn image_type(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        _ => return None,
    })
}

fn read_file(key: &'static str, path: &Path) -> Result<Bytes, BrandError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let read_err = |source| BrandError::Read {
        key,
        path: shown.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_BRAND_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_BRAND_FILE_BYTES {
        return Err(BrandError::TooLarge { key, path: shown });
    }
    Ok(Bytes::from(bytes))
}

/// `/static/brand/NAME?v=HASH`: the hash makes the URL change with the content. A route
/// path (the brand is loaded outside any request): pages put it through `urls::to`.
fn asset_url(name: &str, bytes: &[u8]) -> String {
    let hash = hex::encode(&Sha256::digest(bytes)[..8]);
    format!("{}{name}?v={hash}", routes::BRAND_PREFIX)
}

/// The favicon when none is configured: a plain mark in the accent colour.
fn default_favicon(accent: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
         <rect width=\"32\" height=\"32\" rx=\"7\" fill=\"{accent}\"/>\
         <path d=\"M9 8h5v16H9zM16 8h7v4h-7zM16 14h7v4h-7zM16 20h7v4h-7z\" fill=\"#fff\"/></svg>"
    )
}

/// The light theme's accent when none is configured (the stylesheet's own).
const DEFAULT_ACCENT: &str = "#0b5cad";

impl Brand {
    /// The brand of `cfg`, its files read now.
    pub(crate) fn load(cfg: &BrandConfig) -> Result<Brand, BrandError> {
        let mut assets = HashMap::new();
        let mut image = |key: &'static str,
                         name: &'static str,
                         img: &Option<BrandImage>|
         -> Result<Option<(String, &'static str)>, BrandError> {
            match img {
                None => Ok(None),
                Some(BrandImage::Url(u)) => Ok(Some((u.to_string(), ""))),
                Some(BrandImage::File(path)) => {
                    let content_type = image_type(path).ok_or_else(|| BrandError::UnknownType {
                        key,
                        path: path.display().to_string(),
                    })?;
                    let bytes = read_file(key, path)?;
                    let url = asset_url(name, &bytes);
                    assets.insert(
                        name,
                        Asset {
                            bytes,
                            content_type,
                        },
                    );
                    Ok(Some((url, content_type)))
                }
            }
        };
        let logo = image("logo", "logo", &cfg.logo)?.map(|(u, _)| u);
        let logo_dark = image("logo_dark", "logo-dark", &cfg.logo_dark)?.map(|(u, _)| u);
        let favicon = image("favicon", "favicon", &cfg.favicon)?;

        let accent = cfg.accent.map(|c| c.css());
        let (favicon, favicon_type) = match favicon {
            Some((url, t)) => (url, t),
            None => {
                let svg = default_favicon(accent.as_deref().unwrap_or(DEFAULT_ACCENT));
                let url = asset_url("favicon", svg.as_bytes());
                assets.insert(
                    "favicon",
                    Asset {
                        bytes: Bytes::from(svg),
                        content_type: "image/svg+xml",
                    },
                );
                (url, "image/svg+xml")
            }
        };

        // The accent colours were validated as `#rrggbb` (kbgate-config): nothing else can
        // reach the stylesheet.
        let mut css = String::from(BASE_CSS);
        if let Some(a) = &accent {
            css.push_str(&format!(
                "\n/* [portal.brand] */\n:root {{ --accent: {a}; }}\n"
            ));
        }
        if let Some(d) = cfg.accent_dark {
            css.push_str(&format!(
                "@media (prefers-color-scheme: dark) {{ :root {{ --accent: {}; }} }}\n",
                d.css()
            ));
        }
        let stylesheet = asset_url("style.css", css.as_bytes());
        assets.insert(
            "style.css",
            Asset {
                bytes: Bytes::from(css),
                content_type: "text/css; charset=utf-8",
            },
        );
        let custom_css = match &cfg.custom_css {
            None => None,
            Some(path) => {
                let bytes = read_file("custom_css", path)?;
                let url = asset_url("custom.css", &bytes);
                assets.insert(
                    "custom.css",
                    Asset {
                        bytes,
                        content_type: "text/css; charset=utf-8",
                    },
                );
                Some(url)
            }
        };
        Ok(Brand {
            site_name: cfg.site_name.clone(),
            title_name: cfg.title_name.clone(),
            logo,
            logo_dark,
            favicon,
            favicon_type,
            stylesheet,
            custom_css,
            footer_links: cfg
                .footer_links
                .iter()
                .map(|l| Link {
                    text: l.text.clone(),
                    href: l.url.to_string(),
                })
                .collect(),
            support_email: cfg.support_email.as_ref().map(|e| e.as_str().to_owned()),
            support_url: cfg.support_url.as_ref().map(|u| u.to_string()),
            accent,
            assets,
        })
    }

    /// The unbranded portal (no files to read).
    pub(crate) fn unbranded() -> Brand {
        match Brand::load(&BrandConfig::default()) {
            Ok(b) => b,
            // The default brand names no file; loading it cannot fail.
            Err(e) => unreachable!("the default brand reads no file: {e}"),
        }
    }

    /// A served file by name.
    pub(crate) fn asset(&self, name: &str) -> Option<&Asset> {
        self.assets.get(name)
    }

    /// Whether a support contact is configured (refusal pages say what to do with it).
    pub(crate) fn has_support(&self) -> bool {
        self.support_email.is_some() || self.support_url.is_some()
    }
}

/// The brand in force, replaced on config reload. Cheap to clone; all clones see a
/// replacement.
#[derive(Clone)]
pub(crate) struct BrandHandle(Arc<RwLock<Arc<Brand>>>);

impl BrandHandle {
    pub(crate) fn new(brand: Brand) -> BrandHandle {
        BrandHandle(Arc::new(RwLock::new(Arc::new(brand))))
    }

    pub(crate) fn current(&self) -> Arc<Brand> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn replace(&self, brand: Brand) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(brand);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbgate_config::CssColor;

    #[test]
    fn unbranded_serves_its_stylesheet_and_favicon() {
        let b = Brand::unbranded();
        assert_eq!(b.site_name, "Knowledge base");
        assert!(b.stylesheet.starts_with("/static/brand/style.css?v="));
        assert_eq!(
            b.asset("style.css").unwrap().bytes.as_ref(),
            BASE_CSS.as_bytes()
        );
        assert!(b.favicon.starts_with("/static/brand/favicon?v="));
        assert!(b.asset("favicon").is_some());
        assert!(b.asset("logo").is_none() && b.logo.is_none());
    }

    #[test]
    fn accents_and_files_change_the_urls() {
        let dir = tempfile::tempdir().unwrap();
        let logo = dir.path().join("logo.svg");
        std::fs::write(&logo, "<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap();
        let cfg = BrandConfig {
            accent: Some(CssColor::parse("#b3261e").unwrap()),
            accent_dark: Some(CssColor::parse("#ffb4ab").unwrap()),
            logo: Some(BrandImage::File(logo.clone())),
            ..BrandConfig::default()
        };
        let b = Brand::load(&cfg).unwrap();
        let css = std::str::from_utf8(&b.asset("style.css").unwrap().bytes).unwrap();
        assert!(css.ends_with(
            ":root { --accent: #b3261e; }\n@media (prefers-color-scheme: dark) { :root { --accent: #ffb4ab; } }\n"
        ));
        assert_ne!(b.stylesheet, Brand::unbranded().stylesheet);
        assert_eq!(b.asset("logo").unwrap().content_type, "image/svg+xml");
        assert!(
            b.logo
                .as_deref()
                .unwrap()
                .starts_with("/static/brand/logo?v=")
        );

        let bad = BrandConfig {
            logo: Some(BrandImage::File(dir.path().join("logo.exe"))),
            ..BrandConfig::default()
        };
        assert!(matches!(
            Brand::load(&bad),
            Err(BrandError::UnknownType { .. })
        ));
        let big = dir.path().join("big.png");
        std::fs::write(&big, vec![0u8; MAX_BRAND_FILE_BYTES as usize + 1]).unwrap();
        let big = BrandConfig {
            favicon: Some(BrandImage::File(big)),
            ..BrandConfig::default()
        };
        assert!(matches!(
            Brand::load(&big),
            Err(BrandError::TooLarge { .. })
        ));
        let missing = BrandConfig {
            custom_css: Some(dir.path().join("nope.css")),
            ..BrandConfig::default()
        };
        assert!(matches!(
            Brand::load(&missing),
            Err(BrandError::Read { .. })
        ));
    }
}
