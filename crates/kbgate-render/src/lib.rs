//! Confluence storage format → safe HTML, in two steps.
//!
//! * [`prepare`] runs once at sync time: it parses the storage XHTML with quick-xml, emits
//!   HTML from an allow-list of elements and attributes, renders the macros it can render on
//!   its own (code, panels, expand, status, toc, anchors, own attachments, …) and passes the
//!   result through a strict ammonia policy. Everything that depends on *who is looking* —
//!   links to other pages, include, excerpt-include, children, attachments of other pages —
//!   becomes a view-time reference token in the template instead of being rendered.
//! * [`resolve`] runs per page view: a single linear scan over the stored template that
//!   replaces each token through a [`PageAccess`] answering for one viewer. No XML parsing
//!   happens at view time, and a target the viewer may not read contributes nothing but the
//!   link text written on *this* page (never the target's title or content).
//!
//! Tokens are `U+E000 <decimal index> U+E001`. Content can never forge one: every character
//! in U+E000..=U+F8FF is removed from content text and attribute values while parsing.

mod entities;
mod escape;
mod highlight;
mod parse;
mod resolve;
mod sanitize;
mod urls;
mod walk;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use escape::{escape_html, escape_html_into, percent_encode_segment};
pub use resolve::{MAX_INCLUDE_DEPTH, resolve};
pub use urls::PortalUrls;

/// Starts a view-time reference token.
pub(crate) const TOKEN_START: char = '\u{E000}';
/// Ends a view-time reference token.
pub(crate) const TOKEN_END: char = '\u{E001}';
/// Separates the template from its JSON trailer in the stored string.
pub(crate) const TRAILER: char = '\u{E002}';

/// What `prepare` needs to know about the page being rendered.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrepareContext<'a> {
    /// Space of the page; links without `ri:space-key` point into it.
    pub space_key: &'a str,
    /// Id of the page; its own attachments are served where [`PortalUrls::attachment`] says.
    pub page_id: &'a str,
    /// Display names by Atlassian account id, looked up by the sync for the people this page
    /// mentions ([`mentioned_accounts`]). A mention whose account is missing here shows the
    /// neutral phrase; the account id itself is never written.
    pub user_names: Option<&'a HashMap<String, String>>,
}

/// A heading of the page, in document order (for the toc and for navigation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heading {
    /// 1 to 6, as in `<h1>`…`<h6>` (the toc nests by it).
    pub level: u8,
    /// The heading's plain text (the toc and navigation show it).
    pub text: String,
    /// The `id` given to the heading element (unique within the page).
    pub anchor: String,
}

/// A view-time reference: something whose rendering depends on what the viewer may read.
///
/// All strings are plain (unescaped) text taken from *this* page's source; `resolve`
/// escapes them when it inserts them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Ref {
    /// A link to another page. `text` is the link body; empty when the link has none (the
    /// target's title then shows to viewers who may read it, [`NEUTRAL_PAGE`] to others).
    PageLink {
        space_key: String,
        title: String,
        /// Already turned into the anchor id form used by headings.
        anchor: Option<String>,
        text: String,
    },
    /// The `include` macro: the whole body of another page.
    Include { space_key: String, title: String },
    /// The `excerpt-include` macro: the excerpt of another page.
    ExcerptInclude { space_key: String, title: String },
    /// The `children` macro for this page.
    Children { page_id: String },
    /// The `children` macro pointed at another page.
    ChildrenOfPage { space_key: String, title: String },
    /// An attachment (link or image) of another page.
    AttachmentOfPage {
        space_key: String,
        title: String,
        file_name: String,
        image: bool,
        text: String,
    },
    /// A Jira issue key (`PROJ-123`, checked by the renderer): a link to the Jira site the
    /// portal is configured with now, or the plain key.
    Jira { key: String },
    /// A mention of a person: the display name the sync looked up (or the author's link
    /// text), shown or replaced by a neutral phrase per the portal's setting.
    Mention { name: Option<String> },
}

/// The result of rendering a page at sync time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Sanitised HTML with reference tokens (not viewable as is: see [`resolve`]).
    pub html: String,
    /// Plain text of what the page shows by itself, for the search index.
    pub text: String,
    /// The page's headings, for the toc and navigation.
    pub headings: Vec<Heading>,
    /// Template of the first `excerpt` macro body (shares `refs`), for `excerpt-include`.
    pub excerpt: Option<String>,
    /// The references the tokens in `html` and `excerpt` point to.
    pub refs: Vec<Ref>,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    v: u32,
    #[serde(default)]
    refs: Vec<Ref>,
    #[serde(default)]
    excerpt: Option<String>,
}

impl Prepared {
    /// The single string the store keeps as `body_html`: the template, then (only when
    /// there are refs or an excerpt) `U+E002` and a JSON trailer. [`resolve`] and
    /// [`decode`] read it back.
    pub fn encode(&self) -> String {
        if self.refs.is_empty() && self.excerpt.is_none() {
            return self.html.clone();
        }
        let trailer = Trailer {
            v: 1,
            refs: self.refs.clone(),
            excerpt: self.excerpt.clone(),
        };
        // Serialising plain strings, bools and options cannot fail.
        let json = serde_json::to_string(&trailer).unwrap_or_default();
        let mut s = String::with_capacity(self.html.len() + 1 + json.len());
        s.push_str(&self.html);
        s.push(TRAILER);
        s.push_str(&json);
        s
    }
}

/// A stored string split back into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The HTML with reference tokens, as [`Prepared::html`].
    pub template: &'a str,
    /// What the tokens point to, as [`Prepared::refs`].
    pub refs: Vec<Ref>,
    /// The excerpt template, as [`Prepared::excerpt`] (for `excerpt-include` of this page).
    pub excerpt: Option<String>,
}

/// Splits a stored string. Tolerant by design: a string without a trailer (older versions,
/// plain HTML) is a template without refs, and an unreadable trailer is ignored (its tokens
/// then resolve to nothing).
pub fn decode(stored: &str) -> Decoded<'_> {
    match stored.split_once(TRAILER) {
        None => Decoded {
            template: stored,
            refs: Vec::new(),
            excerpt: None,
        },
        Some((template, json)) => match serde_json::from_str::<Trailer>(json) {
            Ok(t) => Decoded {
                template,
                refs: t.refs,
                excerpt: t.excerpt,
            },
            Err(_) => Decoded {
                template,
                refs: Vec::new(),
                excerpt: None,
            },
        },
    }
}

/// Renders a storage-format body for later per-viewer resolution. Never fails: malformed
/// input degrades to its text.
pub fn prepare(storage: &str, ctx: &PrepareContext<'_>) -> Prepared {
    let root = parse::parse(storage);
    let out = walk::render(&root, ctx);
    let html = sanitize::clean(&out.html);
    let excerpt = out.excerpt.as_deref().map(sanitize::clean);
    Prepared {
        html,
        text: out.text,
        headings: out.headings,
        excerpt,
        refs: out.refs,
    }
}

/// A target page the viewer may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageTarget {
    /// Where the portal serves it ([`PortalUrls::page`]; inserted HTML-escaped).
    pub url: String,
    /// The target's title (the `children` macro lists pages by it).
    pub title: String,
    /// The target's page id (`children` of another page are looked up by it).
    pub id: String,
}

/// What one viewer may see of other pages. Every method answers `None`/empty when the viewer
/// may not read the target (other audience, label filter, read restriction, missing page),
/// so `resolve` cannot leak what the viewer may not read.
pub trait PageAccess {
    /// The page with this title in this space, if readable.
    fn page_link(&self, space_key: &str, title: &str) -> Option<PageTarget>;
    /// The stored string (as produced by [`Prepared::encode`]) of a readable page.
    fn page_stored_html(&self, space_key: &str, title: &str) -> Option<String>;
    /// The readable children of a page, in display order.
    fn children(&self, page_id: &str) -> Vec<PageTarget>;
    /// The portal URL of an attachment of a readable page.
    fn attachment_url(&self, space_key: &str, page_title: &str, file_name: &str) -> Option<String>;
    /// The Jira site issue keys link to (`https://acme.atlassian.net`, no trailing slash),
    /// or `None` to show keys as plain text. Default: none.
    fn jira_site(&self) -> Option<&str> {
        None
    }
    /// Whether mentions show the person's name; otherwise [`NEUTRAL_PERSON`]. Default: no
    /// (staff names are personal data a customer portal need not publish).
    fn show_staff_names(&self) -> bool {
        false
    }
    /// The path prefix the portal is served under (`/kb`, no trailing slash; `""` at the
    /// root). Stored content links its own attachments root-relative ([`PortalUrls::ROOT`]);
    /// [`resolve`] puts this in front of them. URLs this trait returns carry it already.
    fn link_prefix(&self) -> &str {
        ""
    }
}

/// What a mention shows when staff names are hidden or the name is unknown.
pub const NEUTRAL_PERSON: &str = "a team member";

/// What an empty-bodied link to a page the viewer may not read shows (never the title:
/// ARCHITECTURE.md, S1).
pub const NEUTRAL_PAGE: &str = "another page";

/// The Atlassian account ids a storage body mentions (`ri:user ri:account-id`), each once,
/// in order: the sync looks up their display names before [`prepare`].
pub fn mentioned_accounts(storage: &str) -> Vec<String> {
    let root = parse::parse(storage);
    let mut out = Vec::new();
    walk::collect_accounts(&root, &mut out);
    out
}

/// Turns heading text or an anchor name into an element id. Links with `ac:anchor` and the
/// headings they point to go through the same function, so they meet.
pub(crate) fn slug(s: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        } else {
            dash = true;
        }
        if out.len() >= 80 {
            break;
        }
    }
    if out.is_empty() {
        out.push_str("section");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_is_stable_and_safe() {
        assert_eq!(slug("Getting Started!"), "getting-started");
        assert_eq!(slug("  a  b  "), "a-b");
        assert_eq!(slug("Über uns"), "über-uns");
        assert_eq!(slug("<script>"), "script");
        assert_eq!(slug("!!!"), "section");
    }

    #[test]
    fn encode_decode_round_trip() {
        let p = Prepared {
            html: "<p>\u{E000}0\u{E001}</p>".into(),
            text: String::new(),
            headings: vec![],
            excerpt: Some("<p>e</p>".into()),
            refs: vec![Ref::Children {
                page_id: "1".into(),
            }],
        };
        let s = p.encode();
        let d = decode(&s);
        assert_eq!(d.template, p.html);
        assert_eq!(d.refs, p.refs);
        assert_eq!(d.excerpt, p.excerpt);
    }

    #[test]
    fn decode_without_trailer_is_plain_template() {
        let d = decode("<p>old</p>");
        assert_eq!(d.template, "<p>old</p>");
        assert!(d.refs.is_empty());
        let d = decode("<p>x</p>\u{E002}not json");
        assert_eq!(d.template, "<p>x</p>");
        assert!(d.refs.is_empty());
    }

    #[test]
    fn encode_without_refs_is_just_html() {
        let p = Prepared {
            html: "<p>x</p>".into(),
            text: "x".into(),
            headings: vec![],
            excerpt: None,
            refs: vec![],
        };
        assert_eq!(p.encode(), "<p>x</p>");
    }
}
