//! Shared helpers for the render tests: a `PageAccess` double for one viewer.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};

use kbgate_render::{PageAccess, PageTarget, PrepareContext, prepare};

/// A mirror of a few pages plus the set of pages this viewer may read.
#[derive(Default)]
pub struct Mirror {
    /// (space, title) → (id, stored string)
    pub pages: HashMap<(String, String), (String, String)>,
    /// parent id → child (space, title)s
    pub children: HashMap<String, Vec<(String, String)>>,
    /// (space, title) the viewer may read
    pub readable: HashSet<(String, String)>,
    /// The Jira site issue keys link to.
    pub jira: Option<String>,
    /// Whether mentions show names.
    pub show_names: bool,
}

impl Mirror {
    /// Adds a page rendered from `storage`; `readable` says whether this viewer may read it.
    pub fn add(&mut self, space: &str, id: &str, title: &str, storage: &str, readable: bool) {
        let p = prepare(
            storage,
            &PrepareContext {
                space_key: space,
                page_id: id,
                user_names: None,
            },
        );
        let key = (space.to_string(), title.to_string());
        self.pages.insert(key.clone(), (id.to_string(), p.encode()));
        if readable {
            self.readable.insert(key);
        }
    }

    pub fn add_child(&mut self, parent_id: &str, space: &str, title: &str) {
        self.children
            .entry(parent_id.to_string())
            .or_default()
            .push((space.to_string(), title.to_string()));
    }

    fn target(&self, space: &str, title: &str) -> Option<PageTarget> {
        let key = (space.to_string(), title.to_string());
        if !self.readable.contains(&key) {
            return None;
        }
        let (id, _) = self.pages.get(&key)?;
        Some(PageTarget {
            url: format!("/spaces/{space}/pages/{id}"),
            title: title.to_string(),
            id: id.clone(),
        })
    }
}

impl PageAccess for Mirror {
    fn page_link(&self, space_key: &str, title: &str) -> Option<PageTarget> {
        self.target(space_key, title)
    }

    fn page_stored_html(&self, space_key: &str, title: &str) -> Option<String> {
        self.target(space_key, title)?;
        self.pages
            .get(&(space_key.to_string(), title.to_string()))
            .map(|(_, s)| s.clone())
    }

    fn children(&self, page_id: &str) -> Vec<PageTarget> {
        self.children
            .get(page_id)
            .into_iter()
            .flatten()
            .filter_map(|(s, t)| self.target(s, t))
            .collect()
    }

    fn attachment_url(&self, space_key: &str, page_title: &str, file_name: &str) -> Option<String> {
        let t = self.target(space_key, page_title)?;
        Some(format!("/attachments/{}/{file_name}", t.id))
    }

    fn jira_site(&self) -> Option<&str> {
        self.jira.as_deref()
    }

    fn show_staff_names(&self) -> bool {
        self.show_names
    }
}

/// Renders a body as page 100 of space KB and resolves it for `access`.
pub fn render_with(storage: &str, access: &dyn PageAccess) -> String {
    let p = prepare(
        storage,
        &PrepareContext {
            space_key: "KB",
            page_id: "100",
            user_names: None,
        },
    );
    kbgate_render::resolve(&p.encode(), access)
}

/// Renders a body with an empty mirror (nothing else readable).
pub fn render(storage: &str) -> String {
    render_with(storage, &Mirror::default())
}

/// The markup of `html` (tags with their attributes), text left out.
fn tags_only(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    let mut quote: Option<char> = None;
    for c in html.chars() {
        if in_tag {
            out.push(c);
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c == '>' => in_tag = false,
                None => {}
            }
        } else if c == '<' {
            in_tag = true;
            out.push(c);
        }
    }
    out
}

/// Like [`assert_inert`], but `javascript:` / `data:` may appear as visible text (e.g. in a
/// code block); only markup is checked for them.
pub fn assert_inert_markup(html: &str) {
    let tags = tags_only(html).to_ascii_lowercase();
    for bad in ["javascript:", "vbscript:", "data:", "style="] {
        assert!(!tags.contains(bad), "found {bad:?} in markup of {html}");
    }
    check_no_active_elements(html);
}

/// Asserts that rendered HTML carries nothing executable.
pub fn assert_inert(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in ["javascript:", "vbscript:", "data:", "style="] {
        assert!(!lower.contains(bad), "found {bad:?} in {html}");
    }
    check_no_active_elements(html);
}

fn check_no_active_elements(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in [
        "<script", "<iframe", "<object", "<embed", "<style", "<meta", "<svg", "<form", "<base",
        "<link",
    ] {
        assert!(!lower.contains(bad), "found {bad:?} in {html}");
    }
    // No event-handler attributes: an attribute name `on…` inside a tag (quoted values,
    // where `onerror=` is only text, are skipped).
    let mut in_tag = false;
    let mut quote: Option<char> = None;
    let chars: Vec<char> = lower.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            '"' | '\'' if in_tag => quote = Some(c),
            ' ' | '\t' | '\n' | '/' if in_tag => {
                let name: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect();
                let after: String = chars[i + 1 + name.len()..].iter().take(3).collect();
                assert!(
                    !(name.starts_with("on") && after.trim_start().starts_with('=')),
                    "event handler attribute in {html}"
                );
            }
            _ => {}
        }
    }
    assert!(
        !html.chars().any(|c| ('\u{E000}'..='\u{F8FF}').contains(&c)),
        "token char left in {html}"
    );
}
