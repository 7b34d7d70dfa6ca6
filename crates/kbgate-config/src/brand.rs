//! `[portal.brand]`: how the portal presents itself (name, logo, colours, footer, support
//! contact, custom stylesheet). Validated here so the server only ever writes values that
//! cannot break out of their HTML attribute or CSS declaration, and accent colours that meet
//! WCAG AA contrast on the portal's own backgrounds (light and dark).

use std::path::PathBuf;

use kbgate_policy::Email;
use serde::Deserialize;
use url::Url;

use crate::Builder;
use crate::raw::Val;

type Str = Option<Val<String>>;

/// The name shown when `[portal.brand] site_name` is not set.
pub const DEFAULT_SITE_NAME: &str = "Knowledge base";
/// Longest `site_name` / `title_name`: it has to fit a phone's header.
pub const MAX_SITE_NAME_CHARS: usize = 80;
/// Most `footer_links`.
pub const MAX_FOOTER_LINKS: usize = 12;

/// The light theme's page and header backgrounds (the portal's stylesheet): an accent must be
/// readable as link text on both, and white text on the accent (buttons) is the same ratio.
pub const LIGHT_BACKGROUNDS: [CssColor; 2] =
    [CssColor([0xff, 0xff, 0xff]), CssColor([0xf6, 0xf8, 0xfa])];
/// The dark theme's page and header backgrounds.
pub const DARK_BACKGROUNDS: [CssColor; 2] =
    [CssColor([0x0d, 0x11, 0x17]), CssColor([0x16, 0x1b, 0x22])];
/// WCAG 2.x AA contrast for normal text (success criterion 1.4.3).
pub const AA_CONTRAST: f64 = 4.5;

/// An sRGB colour written `#rgb` or `#rrggbb`: the only forms accepted, so a value can go into
/// a stylesheet as it is (no `;`, `}` or `url(` can ride along).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CssColor(pub [u8; 3]);

impl CssColor {
    /// Parses `#rgb` or `#rrggbb` (either case).
    pub fn parse(s: &str) -> Result<CssColor, String> {
        let hex = s
            .trim()
            .strip_prefix('#')
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| format!("{s:?} is not a colour: expected #rgb or #rrggbb"))?;
        let digit = |i: usize| u8::from_str_radix(&hex[i..=i], 16).unwrap_or(0);
        match hex.len() {
            3 => Ok(CssColor([digit(0) * 17, digit(1) * 17, digit(2) * 17])),
            6 => {
                let byte = |i: usize| digit(i) * 16 + digit(i + 1);
                Ok(CssColor([byte(0), byte(2), byte(4)]))
            }
            _ => Err(format!("{s:?} is not a colour: expected #rgb or #rrggbb")),
        }
    }

    /// `#rrggbb`.
    pub fn css(self) -> String {
        let [r, g, b] = self.0;
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    /// Relative luminance (WCAG 2.x definition).
    pub fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    }

    /// Contrast ratio with `other`, 1 to 21 (WCAG 2.x definition).
    pub fn contrast(self, other: CssColor) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (hi, lo) = if a > b { (a, b) } else { (b, a) };
        (hi + 0.05) / (lo + 0.05)
    }

    /// The lowest contrast against `backgrounds` and the background it is reached on.
    fn worst(self, backgrounds: &[CssColor]) -> (f64, CssColor) {
        backgrounds
            .iter()
            .map(|b| (self.contrast(*b), *b))
            .fold((f64::INFINITY, self), |w, c| if c.0 < w.0 { c } else { w })
    }
}

/// An image the portal shows: a file it serves itself, or an `https://` URL (the CSP allows
/// `https:` images).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrandImage {
    File(PathBuf),
    Url(Url),
}

/// A link in the footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FooterLink {
    pub text: String,
    /// `http(s)://` or `mailto:`.
    pub url: Url,
}

/// `[portal.brand]`. Every key is optional; [`BrandConfig::default`] is the unbranded portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandConfig {
    /// Shown in the header. Default "Knowledge base".
    pub site_name: String,
    /// In page titles (`Page · NAME`) and mails. Default `site_name`.
    pub title_name: String,
    /// Logo in the header (light theme); the site name stays as its text alternative.
    pub logo: Option<BrandImage>,
    /// Logo for the dark theme. Default `logo`.
    pub logo_dark: Option<BrandImage>,
    /// The favicon (`.ico`, `.png` or `.svg`). Default: a plain mark in the accent colour.
    pub favicon: Option<BrandImage>,
    /// Links and buttons, light theme. Must reach 4.5:1 on the light backgrounds.
    pub accent: Option<CssColor>,
    /// Links and buttons, dark theme. Must reach 4.5:1 on the dark backgrounds.
    pub accent_dark: Option<CssColor>,
    pub footer_links: Vec<FooterLink>,
    /// Where people without access are sent (refusal pages).
    pub support_email: Option<Email>,
    pub support_url: Option<Url>,
    /// A stylesheet served after the portal's own (`style-src 'self'` keeps it CSP-safe).
    pub custom_css: Option<PathBuf>,
}

impl Default for BrandConfig {
    fn default() -> Self {
        BrandConfig {
            site_name: DEFAULT_SITE_NAME.to_owned(),
            title_name: DEFAULT_SITE_NAME.to_owned(),
            logo: None,
            logo_dark: None,
            favicon: None,
            accent: None,
            accent_dark: None,
            footer_links: Vec::new(),
            support_email: None,
            support_url: None,
            custom_css: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBrand {
    pub site_name: Str,
    pub title_name: Str,
    pub logo: Str,
    pub logo_dark: Str,
    pub favicon: Str,
    pub accent: Str,
    pub accent_dark: Str,
    pub support_email: Str,
    pub support_url: Str,
    pub custom_css: Str,
    #[serde(default)]
    pub footer_links: Vec<Val<RawFooterLink>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFooterLink {
    pub text: String,
    pub url: String,
}

fn name(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("must not be empty".into());
    }
    if t.chars().any(char::is_control) {
        return Err("must be a single line of text".into());
    }
    if t.chars().count() > MAX_SITE_NAME_CHARS {
        return Err(format!("at most {MAX_SITE_NAME_CHARS} characters"));
    }
    Ok(t.to_owned())
}

fn image(s: &str) -> Result<BrandImage, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("must not be empty".into());
    }
    if t.contains("://") {
        let url = Url::parse(t).map_err(|e| format!("not a URL: {e}"))?;
        if url.scheme() != "https" {
            return Err("an image URL must be https:// (or give a file path)".into());
        }
        return Ok(BrandImage::Url(url));
    }
    Ok(BrandImage::File(PathBuf::from(t)))
}

fn link_url(s: &str, mailto: bool) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        "mailto" if mailto => Ok(url),
        _ if mailto => Err("expected an http(s):// or mailto: URL".into()),
        _ => Err("expected an http(s):// URL".into()),
    }
}

fn accent(s: &str, backgrounds: &[CssColor], theme: &str) -> Result<CssColor, String> {
    let c = CssColor::parse(s)?;
    let (ratio, on) = c.worst(backgrounds);
    if ratio < AA_CONTRAST {
        return Err(format!(
            "{} has a contrast of {ratio:.2}:1 on the {theme} background {}; WCAG AA needs \
             {AA_CONTRAST}:1 for link and button text",
            c.css(),
            on.css()
        ));
    }
    Ok(c)
}

impl Builder<'_> {
    /// `[portal.brand]`; `None` (with problems recorded) when a value is invalid.
    pub(crate) fn brand(&mut self, r: RawBrand) -> Option<BrandConfig> {
        let before = self.problems.len();
        let site_name = self.conv(&r.site_name, "portal.brand.site_name", |s| name(s));
        let title_name = self.conv(&r.title_name, "portal.brand.title_name", |s| name(s));
        let logo = self.conv(&r.logo, "portal.brand.logo", |s| image(s));
        let logo_dark = self.conv(&r.logo_dark, "portal.brand.logo_dark", |s| image(s));
        let favicon = self.conv(&r.favicon, "portal.brand.favicon", |s| image(s));
        let accent_light = self.conv(&r.accent, "portal.brand.accent", |s| {
            accent(s, &LIGHT_BACKGROUNDS, "light")
        });
        let accent_dark = self.conv(&r.accent_dark, "portal.brand.accent_dark", |s| {
            accent(s, &DARK_BACKGROUNDS, "dark")
        });
        let support_email = self.conv(&r.support_email, "portal.brand.support_email", |s| {
            Email::parse(s.trim()).map_err(|e| e.to_string())
        });
        let support_url = self.conv(&r.support_url, "portal.brand.support_url", |s| {
            link_url(s, false)
        });
        let custom_css = self.conv(&r.custom_css, "portal.brand.custom_css", |s| {
            crate::non_empty_path(s)
        });
        if r.footer_links.len() > MAX_FOOTER_LINKS {
            self.err(
                &r.footer_links[MAX_FOOTER_LINKS].origin,
                "portal.brand.footer_links",
                format!("at most {MAX_FOOTER_LINKS} links"),
            );
        }
        let mut footer_links = Vec::with_capacity(r.footer_links.len());
        for (i, l) in r.footer_links.iter().enumerate() {
            let key = format!("portal.brand.footer_links[{i}]");
            match (name(&l.value.text), link_url(&l.value.url, true)) {
                (Ok(text), Ok(url)) => footer_links.push(FooterLink { text, url }),
                (Err(e), _) => self.err(&l.origin, &format!("{key}.text"), e),
                (_, Err(e)) => self.err(&l.origin, &format!("{key}.url"), e),
            }
        }
        if self.problems.len() != before {
            return None;
        }
        let logo = logo?;
        let site_name = site_name?.unwrap_or_else(|| DEFAULT_SITE_NAME.to_owned());
        Some(BrandConfig {
            title_name: title_name?.unwrap_or_else(|| site_name.clone()),
            site_name,
            logo_dark: logo_dark?.or_else(|| logo.clone()),
            logo,
            favicon: favicon?,
            accent: accent_light?,
            accent_dark: accent_dark?,
            footer_links,
            support_email: support_email?,
            support_url: support_url?,
            custom_css: custom_css?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_strictly() {
        assert_eq!(CssColor::parse("#0b5cad").unwrap().css(), "#0b5cad");
        assert_eq!(CssColor::parse(" #FFF ").unwrap().css(), "#ffffff");
        for bad in ["red", "#12345", "#ggg", "#fff;}body{x:y", "url(x)", "", "#"] {
            assert!(CssColor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contrast_follows_wcag() {
        let black = CssColor([0, 0, 0]);
        let white = CssColor([255, 255, 255]);
        assert!((black.contrast(white) - 21.0).abs() < 1e-9);
        assert!((white.contrast(white) - 1.0).abs() < 1e-9);
        // #767676 on white is the well-known lightest grey that passes AA (4.54:1).
        let grey = CssColor::parse("#767676").unwrap();
        assert!((grey.contrast(white) - 4.54).abs() < 0.01);
    }

    #[test]
    fn accents_must_be_readable() {
        assert!(accent("#0b5cad", &LIGHT_BACKGROUNDS, "light").is_ok());
        let e = accent("#7fb2ff", &LIGHT_BACKGROUNDS, "light").unwrap_err();
        assert!(e.contains("4.5:1") && e.contains("#7fb2ff"), "{e}");
        assert!(accent("#4493f8", &DARK_BACKGROUNDS, "dark").is_ok());
        assert!(accent("#0b5cad", &DARK_BACKGROUNDS, "dark").is_err());
    }

    #[test]
    fn images_are_https_urls_or_files() {
        assert_eq!(
            image("brand/logo.svg").unwrap(),
            BrandImage::File(PathBuf::from("brand/logo.svg"))
        );
        assert!(matches!(
            image("https://cdn.example.com/l.png"),
            Ok(BrandImage::Url(_))
        ));
        assert!(image("http://cdn.example.com/l.png").is_err());
        assert!(image("javascript://x").is_err());
        assert!(link_url("javascript:alert(1)", true).is_err());
        assert!(link_url("mailto:help@example.com", true).is_ok());
        assert!(link_url("mailto:help@example.com", false).is_err());
    }
}
