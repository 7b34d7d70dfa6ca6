//! View-time resolution of reference tokens for one viewer.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::parse::is_private_use;
use crate::{
    NEUTRAL_PAGE, NEUTRAL_PERSON, PageAccess, Ref, TOKEN_END, TOKEN_START, decode, escape_html_into,
};

/// Per-view state of one resolution.
struct View<'a> {
    access: &'a dyn PageAccess,
    /// `(space, title)` of the includes being expanded (cycle guard).
    visited: Vec<(String, String)>,
    /// Element ids already on the page; `None` until the first include needs them.
    ids: Option<HashSet<String>>,
}

/// How many levels of `include`/`excerpt-include` are followed.
pub const MAX_INCLUDE_DEPTH: usize = 3;

/// Renders a stored page (see [`crate::Prepared::encode`]) for the viewer `access` answers
/// for. A single linear scan: tokens are replaced, any other private-use character dropped.
/// Targets the viewer may not read contribute only this page's own link text (links,
/// attachments of other pages) or nothing (include, excerpt-include, children).
///
/// Element ids stay unique on the page: ids of included content that clash with the
/// page's own (or an earlier include's) get a suffix, and the included content's own
/// `#anchor` links follow the rename. Pages without includes skip this.
pub fn resolve(stored: &str, access: &dyn PageAccess) -> String {
    let d = decode(stored);
    let mut out = String::with_capacity(d.template.len() + d.refs.len() * 64);
    let mut view = View {
        access,
        visited: Vec::new(),
        ids: None,
    };
    if d.refs
        .iter()
        .any(|r| matches!(r, Ref::Include { .. } | Ref::ExcerptInclude { .. }))
    {
        let mut ids = HashSet::new();
        visit_attrs(d.template, |name, start, end| {
            if name == "id" {
                ids.insert(d.template[start..end].to_string());
            }
        });
        view.ids = Some(ids);
    }
    resolve_into(d.template, &d.refs, &mut view, 0, &mut out);
    out
}

/// Calls `f(name, start, end)` for each attribute value of `html` (sanitiser output: every
/// attribute value double-quoted, `<` in text escaped), with the value's byte range.
fn visit_attrs<'a>(html: &'a str, mut f: impl FnMut(&'a str, usize, usize)) {
    let bytes = html.as_bytes();
    let mut i = 0;
    let mut in_tag = false;
    let mut name_start = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' if !in_tag => in_tag = true,
            b'>' if in_tag => in_tag = false,
            b if in_tag && b.is_ascii_whitespace() => name_start = i + 1,
            b'=' if in_tag && bytes.get(i + 1) == Some(&b'"') => {
                let vstart = i + 2;
                let vend = html[vstart..].find('"').map_or(html.len(), |p| vstart + p);
                f(&html[name_start.min(i)..i], vstart, vend);
                i = vend + 1;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

/// Copies `html` and replaces the value of each attribute for which `f(name, value)`
/// answers. Values are passed and returned in their escaped form.
fn map_attrs(html: &str, mut f: impl FnMut(&str, &str) -> Option<String>) -> String {
    let mut out = String::with_capacity(html.len());
    let mut copied = 0;
    visit_attrs(html, |name, start, end| {
        if let Some(new) = f(name, &html[start..end]) {
            out.push_str(&html[copied..start]);
            out.push_str(&new);
            copied = end;
        }
    });
    out.push_str(&html[copied..]);
    out
}

/// `template` with `prefix` in front of its root-relative `href`/`src` values: the links
/// the renderer wrote at sync time (a page's own attachments, [`crate::PortalUrls::ROOT`]).
/// Content itself can only link `http(s)`, `mailto` and `#anchor` (see the walker's
/// `safe_href`/`safe_img_src`), so a value starting with `/` is always one of those.
fn with_link_prefix(template: &str, prefix: &str) -> String {
    map_attrs(template, |name, value| {
        (matches!(name, "href" | "src") && value.starts_with('/') && !value.starts_with("//"))
            .then(|| format!("{prefix}{value}"))
    })
}

/// `template` with ids already in `used` renamed (`id-2`, …) and its `#id` links
/// following; registers every id it leaves in `used`.
fn unique_ids(template: &str, used: &mut HashSet<String>) -> String {
    let mut renamed: HashMap<String, String> = HashMap::new();
    let mut ids: Vec<&str> = Vec::new();
    visit_attrs(template, |name, start, end| {
        if name == "id" {
            ids.push(&template[start..end]);
        }
    });
    for value in &ids {
        if used.contains(*value) && !renamed.contains_key(*value) {
            let mut n = 2;
            let mut new = format!("{value}-{n}");
            while used.contains(&new) {
                n += 1;
                new = format!("{value}-{n}");
            }
            renamed.insert((*value).to_string(), new);
        }
    }
    for v in renamed.values() {
        used.insert(v.clone());
    }
    if renamed.is_empty() {
        // Nothing clashes: the template as is, its ids now taken.
        used.extend(ids.iter().map(|v| (*v).to_string()));
        return template.to_string();
    }
    map_attrs(template, |name, value| match name {
        "id" => match renamed.get(value) {
            Some(new) => Some(new.clone()),
            None => {
                used.insert(value.to_string());
                None
            }
        },
        "href" => value
            .strip_prefix('#')
            .and_then(|a| renamed.get(a))
            .map(|new| format!("#{new}")),
        _ => None,
    })
}

/// Lead bytes of UTF-8 encodings of U+E000..=U+F8FF.
fn maybe_private_use(b: u8) -> bool {
    b == 0xEE || b == 0xEF
}

fn resolve_into(template: &str, refs: &[Ref], view: &mut View<'_>, depth: usize, out: &mut String) {
    let prefixed;
    let template = match view.access.link_prefix() {
        "" => template,
        prefix => {
            prefixed = with_link_prefix(template, prefix);
            prefixed.as_str()
        }
    };
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
                    render_ref(r, view, depth, out);
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

fn render_ref(r: &Ref, view: &mut View<'_>, depth: usize, out: &mut String) {
    let access = view.access;
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
                // An empty body shows the target's (current) title.
                let shown = if text.trim().is_empty() {
                    &t.title
                } else {
                    text
                };
                link(out, &href, shown);
            }
            // Unreadable: the link text this page wrote, or a neutral placeholder when the
            // body was empty (older stored pages carry the target's title as the text: it
            // counts as empty).
            None if text.trim().is_empty() || text == title => {
                out.push_str("<span class=\"link-unavailable\">");
                out.push_str(NEUTRAL_PAGE);
                out.push_str("</span>");
            }
            None => escape_html_into(out, text),
        },
        Ref::Jira { key } => match access.jira_site() {
            Some(site) => {
                out.push_str("<a class=\"jira-key\" href=\"");
                escape_html_into(out, site.trim_end_matches('/'));
                out.push_str("/browse/");
                escape_html_into(out, key);
                out.push_str("\" rel=\"noopener noreferrer nofollow\">");
                escape_html_into(out, key);
                out.push_str("</a>");
            }
            None => {
                out.push_str("<span class=\"jira-key\">");
                escape_html_into(out, key);
                out.push_str("</span>");
            }
        },
        Ref::Mention { name } => {
            out.push_str("<span class=\"user-mention\">");
            match name {
                Some(n) if access.show_staff_names() => {
                    out.push('@');
                    escape_html_into(out, n);
                }
                _ => out.push_str(NEUTRAL_PERSON),
            }
            out.push_str("</span>");
        }
        Ref::Include { space_key, title } | Ref::ExcerptInclude { space_key, title } => {
            let key = (space_key.clone(), title.clone());
            if depth >= MAX_INCLUDE_DEPTH || view.visited.contains(&key) {
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
            view.visited.push(key);
            let _ = write!(out, "<div class=\"{class}\">");
            match view.ids.as_mut() {
                Some(used) => {
                    let renamed = unique_ids(template, used);
                    resolve_into(&renamed, &d.refs, view, depth + 1, out);
                }
                None => resolve_into(template, &d.refs, view, depth + 1, out),
            }
            out.push_str("</div>");
            view.visited.pop();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Page 1 (readable, includable) under the prefix `/kb`.
    struct UnderKb;

    impl PageAccess for UnderKb {
        fn page_link(&self, _: &str, title: &str) -> Option<crate::PageTarget> {
            (title == "Other").then(|| crate::PageTarget {
                url: "/kb/pages/1".into(),
                title: title.into(),
                id: "1".into(),
            })
        }
        fn page_stored_html(&self, _: &str, title: &str) -> Option<String> {
            let ctx = crate::PrepareContext {
                space_key: "KB",
                page_id: "1",
                user_names: None,
            };
            (title == "Other").then(|| {
                crate::prepare(
                    "<p><ac:image><ri:attachment ri:filename=\"o.png\"/></ac:image></p>",
                    &ctx,
                )
                .encode()
            })
        }
        fn children(&self, _: &str) -> Vec<crate::PageTarget> {
            Vec::new()
        }
        fn attachment_url(&self, _: &str, _: &str, _: &str) -> Option<String> {
            None
        }
        fn link_prefix(&self) -> &str {
            "/kb"
        }
    }

    #[test]
    fn stored_root_links_get_the_prefix_at_view_time() {
        let ctx = crate::PrepareContext {
            space_key: "KB",
            page_id: "2",
            user_names: None,
        };
        let storage = "<p><ac:image><ri:attachment ri:filename=\"a b.png\"/></ac:image>\
            <ac:link><ri:attachment ri:filename=\"doc.pdf\"/></ac:link>\
            <a href=\"https://example.com/x\">ext</a> <a href=\"#top\">up</a>\
            <ac:link><ri:page ri:content-title=\"Other\"/></ac:link> href=\"/text\"</p>\
            <ac:structured-macro ac:name=\"include\"><ac:parameter ac:name=\"\">\
            <ac:link><ri:page ri:content-title=\"Other\"/></ac:link></ac:parameter>\
            </ac:structured-macro>";
        let stored = crate::prepare(storage, &ctx).encode();
        assert!(
            stored.contains("src=\"/attachments/2/a%20b.png\""),
            "{stored}"
        );
        let html = resolve(&stored, &UnderKb);
        assert!(
            html.contains("src=\"/kb/attachments/2/a%20b.png\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/kb/attachments/2/doc.pdf\""),
            "{html}"
        );
        assert!(html.contains("href=\"/kb/pages/1\""), "{html}");
        assert!(html.contains("src=\"/kb/attachments/1/o.png\""), "{html}");
        assert!(html.contains("href=\"https://example.com/x\""), "{html}");
        assert!(html.contains("href=\"#top\""), "{html}");
        assert!(
            !html.contains("/kb/kb/") && !html.contains("\"/attachments/"),
            "{html}"
        );
    }

    #[test]
    fn only_attributes_inside_tags_are_renamed() {
        let mut used: HashSet<String> = ["a".to_string()].into();
        // Text that looks like an attribute, a `>` inside a quoted value, an unrelated href.
        let html = "<h2 id=\"a\" title=\"x > y\">id=\"a\" and href=\"#a\"</h2><a href=\"#a\">up</a><a href=\"#b\">b</a>";
        let out = unique_ids(html, &mut used);
        assert_eq!(
            out,
            "<h2 id=\"a-2\" title=\"x > y\">id=\"a\" and href=\"#a\"</h2><a href=\"#a-2\">up</a><a href=\"#b\">b</a>"
        );
        assert!(used.contains("a-2"));
        // A template without clashes comes back unchanged, its ids now taken.
        let again = unique_ids("<p id=\"c\">c</p>", &mut used);
        assert_eq!(again, "<p id=\"c\">c</p>");
        assert!(used.contains("c"));
    }

    #[test]
    fn map_attrs_survives_truncated_markup() {
        for html in ["<a href=\"", "<a href", "<", "text only", "<p id=\"x\">"] {
            let out = map_attrs(html, |_, _| None);
            assert_eq!(out, html);
        }
    }
}
