//! View-time resolution of reference tokens for one viewer.

use std::fmt::Write as _;

use crate::parse::is_private_use;
use crate::{PageAccess, Ref, TOKEN_END, TOKEN_START, decode, escape_html_into};

/// How many levels of `include`/`excerpt-include` are followed.
pub const MAX_INCLUDE_DEPTH: usize = 3;

/// Renders a stored page (see [`crate::Prepared::encode`]) for the viewer `access` answers
/// for. A single linear scan: tokens are replaced, any other private-use character dropped.
/// Targets the viewer may not read contribute only this page's own link text (links,
/// attachments of other pages) or nothing (include, excerpt-include, children).
pub fn resolve(stored: &str, access: &dyn PageAccess) -> String {
    let d = decode(stored);
    let mut out = String::with_capacity(d.template.len() + d.refs.len() * 64);
    let mut visited = Vec::new();
    resolve_into(d.template, &d.refs, access, 0, &mut visited, &mut out);
    out
}

/// Lead bytes of UTF-8 encodings of U+E000..=U+F8FF.
fn maybe_private_use(b: u8) -> bool {
    b == 0xEE || b == 0xEF
}

fn resolve_into(
    template: &str,
    refs: &[Ref],
    access: &dyn PageAccess,
    depth: usize,
    visited: &mut Vec<(String, String)>,
    out: &mut String,
) {
    let bytes = template.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !maybe_private_use(bytes[i]) {
            i += 1;
            continue;
        }
        // `i` is a char boundary: lead bytes never occur inside a UTF-8 sequence.
        let Some(c) = template[i..].chars().next() else {
            break;
        };
        if !is_private_use(c) {
            i += c.len_utf8();
            continue;
        }
        out.push_str(&template[copied..i]);
        let mut next = i + c.len_utf8();
        if c == TOKEN_START {
            let rest = &template[next..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && digits <= 9 && rest[digits..].starts_with(TOKEN_END) {
                if let Some(r) = rest[..digits]
                    .parse::<usize>()
                    .ok()
                    .and_then(|k| refs.get(k))
                {
                    render_ref(r, access, depth, visited, out);
                }
                next += digits + TOKEN_END.len_utf8();
            }
        }
        i = next;
        copied = next;
    }
    out.push_str(&template[copied..]);
}

fn link(out: &mut String, href: &str, text: &str) {
    out.push_str("<a href=\"");
    escape_html_into(out, href);
    out.push_str("\">");
    escape_html_into(out, text);
    out.push_str("</a>");
}

fn render_ref(
    r: &Ref,
    access: &dyn PageAccess,
    depth: usize,
    visited: &mut Vec<(String, String)>,
    out: &mut String,
) {
    match r {
        Ref::PageLink {
            space_key,
            title,
            anchor,
            text,
        } => match access.page_link(space_key, title) {
            Some(t) => {
                let href = match anchor {
                    Some(a) => format!("{}#{a}", t.url),
                    None => t.url,
                };
                link(out, &href, text);
            }
            None => escape_html_into(out, text),
        },
        Ref::Include { space_key, title } | Ref::ExcerptInclude { space_key, title } => {
            let key = (space_key.clone(), title.clone());
            if depth >= MAX_INCLUDE_DEPTH || visited.contains(&key) {
                return;
            }
            let Some(stored) = access.page_stored_html(space_key, title) else {
                return;
            };
            let d = decode(&stored);
            let (class, template) = match r {
                Ref::Include { .. } => ("include", d.template),
                _ => match d.excerpt.as_deref() {
                    Some(e) => ("excerpt-include", e),
                    None => return,
                },
            };
            visited.push(key);
            let _ = write!(out, "<div class=\"{class}\">");
            resolve_into(template, &d.refs, access, depth + 1, visited, out);
            out.push_str("</div>");
            visited.pop();
        }
        Ref::Children { page_id } => children(&access.children(page_id), out),
        Ref::ChildrenOfPage { space_key, title } => {
            if let Some(t) = access.page_link(space_key, title) {
                children(&access.children(&t.id), out);
            }
        }
        Ref::AttachmentOfPage {
            space_key,
            title,
            file_name,
            image,
            text,
        } => match access.attachment_url(space_key, title, file_name) {
            Some(url) if *image => {
                out.push_str("<img src=\"");
                escape_html_into(out, &url);
                out.push_str("\" alt=\"");
                escape_html_into(out, text);
                out.push_str("\">");
            }
            Some(url) => link(out, &url, text),
            None => escape_html_into(out, file_name),
        },
    }
}

fn children(list: &[crate::PageTarget], out: &mut String) {
    if list.is_empty() {
        return;
    }
    out.push_str("<ul class=\"children\">");
    for c in list {
        out.push_str("<li>");
        link(out, &c.url, &c.title);
        out.push_str("</li>");
    }
    out.push_str("</ul>");
}
