//! Small HTML helpers: escaping, search excerpts, and the page tree (built in Rust because
//! askama templates cannot recurse).

use std::fmt::Write;

use kbgate_render::escape_html;
use kbgate_store::{MATCH_END, MATCH_START};

use crate::urls;

/// Turns a store excerpt (plain text with match markers) into safe HTML: escape everything
/// first, then replace the markers (which escaping leaves untouched) by `<mark>` elements.
/// Unbalanced markers are closed or dropped so the output is always well formed.
pub(crate) fn excerpt_html(excerpt: &str) -> String {
    let escaped = escape_html(excerpt);
    let mut out = String::with_capacity(escaped.len() + 16);
    let mut open = false;
    for c in escaped.chars() {
        if c == MATCH_START {
            if !open {
                out.push_str("<mark>");
                open = true;
            }
        } else if c == MATCH_END {
            if open {
                out.push_str("</mark>");
                open = false;
            }
        } else {
            out.push(c);
        }
    }
    if open {
        out.push_str("</mark>");
    }
    out
}

/// Removes the match markers (plain-text excerpt for JSON clients that do not want HTML).
pub(crate) fn excerpt_plain(excerpt: &str) -> String {
    excerpt
        .chars()
        .filter(|&c| c != MATCH_START && c != MATCH_END)
        .collect()
}

/// One node of a viewer's page tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct TreeNode {
    pub id: String,
    pub title: String,
    #[schema(no_recursion)]
    pub children: Vec<TreeNode>,
}

/// Renders a tree as nested lists; branches are collapsible `<details>`, open along the path
/// to `current` (and all open when `current` is `None` and the tree is small).
pub(crate) fn tree_html(nodes: &[TreeNode], current: Option<&str>) -> String {
    let mut out = String::new();
    let open_all = current.is_none() && count(nodes) <= 30;
    write_list(&mut out, nodes, current, open_all);
    out
}

/// Most entries a sidebar shows at one level; a window around the path is kept.
pub(crate) const SIDEBAR_LEVEL_MAX: usize = 30;

/// The part of a space's tree a page's sidebar shows: every level on the path from the top
/// to `current` with its siblings, and `current`'s own children — not the whole space; at
/// most [`SIDEBAR_LEVEL_MAX`] entries a level, in a window around the path. A 10,000-page
/// space would otherwise send its every title with every page view (hundreds of kilobytes,
/// and the time to write them); the space home still shows the whole tree. The flag says
/// whether anything was left out (the page then links to the whole tree).
pub(crate) fn local_tree(nodes: &[TreeNode], current: &str) -> (Vec<TreeNode>, bool) {
    let mut cut = false;
    let tree = local_level(nodes, current, &mut cut);
    (tree, cut)
}

fn window(nodes: &[TreeNode], keep: Option<usize>, cut: &mut bool) -> std::ops::Range<usize> {
    if nodes.len() <= SIDEBAR_LEVEL_MAX {
        return 0..nodes.len();
    }
    *cut = true;
    let start = keep
        .map(|i| i.saturating_sub(SIDEBAR_LEVEL_MAX / 2))
        .unwrap_or(0)
        .min(nodes.len() - SIDEBAR_LEVEL_MAX);
    start..start + SIDEBAR_LEVEL_MAX
}

fn local_level(nodes: &[TreeNode], current: &str, cut: &mut bool) -> Vec<TreeNode> {
    let on_path = nodes.iter().position(|n| contains(n, current));
    let range = window(nodes, on_path, cut);
    nodes[range]
        .iter()
        .map(|n| TreeNode {
            id: n.id.clone(),
            title: n.title.clone(),
            children: if n.id == current {
                let range = window(&n.children, None, cut);
                n.children[range]
                    .iter()
                    .map(|c| TreeNode {
                        id: c.id.clone(),
                        title: c.title.clone(),
                        children: Vec::new(),
                    })
                    .collect()
            } else if contains(n, current) {
                local_level(&n.children, current, cut)
            } else {
                Vec::new()
            },
        })
        .collect()
}

fn count(nodes: &[TreeNode]) -> usize {
    nodes.iter().map(|n| 1 + count(&n.children)).sum()
}

fn contains(node: &TreeNode, id: &str) -> bool {
    node.id == id || node.children.iter().any(|c| contains(c, id))
}

fn write_list(out: &mut String, nodes: &[TreeNode], current: Option<&str>, open_all: bool) {
    if nodes.is_empty() {
        return;
    }
    out.push_str("<ul>");
    for n in nodes {
        let is_current = current == Some(n.id.as_str());
        let aria = if is_current {
            " aria-current=\"page\""
        } else {
            ""
        };
        // `write!` to a String cannot fail.
        let link = format!(
            "<a href=\"{}\"{aria}>{}</a>",
            escape_html(&urls::page(&n.id)),
            escape_html(&n.title)
        );
        if n.children.is_empty() {
            let _ = write!(out, "<li>{link}</li>");
        } else {
            let open = open_all || current.is_some_and(|c| contains(n, c));
            // The link stands before the disclosure, not inside its `<summary>`: a link
            // inside a summary is a control nested in a control (axe-core's `nested-interactive`
            // rule: its matches include `summary`, check `no-focusable-content`; WCAG 4.1.2).
            // The summary is named for the pages it shows.
            let _ = write!(
                out,
                "<li class=\"branch\">{link}<details{}><summary><span class=\"visually-hidden\">\
                 Pages under {}</span></summary>",
                if open { " open" } else { "" },
                escape_html(&n.title)
            );
            write_list(out, &n.children, current, open_all);
            out.push_str("</details></li>");
        }
    }
    out.push_str("</ul>");
}

/// Levels of a space's tree the space index shows at once. A 10,000-page space sent whole
/// was 871 KB of titles per request; deeper levels are plain links to the index under their
/// node (no script needed), each a small page of its own.
pub(crate) const INDEX_LEVELS: usize = 2;

/// The space index: the first [`INDEX_LEVELS`] levels of `nodes` as nested lists, shown
/// open; a node whose children are beyond them links to the index under it, with how many
/// pages it holds.
pub(crate) fn index_html(nodes: &[TreeNode], space_key: &str) -> String {
    let mut out = String::new();
    write_index(&mut out, nodes, space_key, INDEX_LEVELS);
    out
}

fn write_index(out: &mut String, nodes: &[TreeNode], space_key: &str, levels: usize) {
    if nodes.is_empty() {
        return;
    }
    out.push_str("<ul>");
    for n in nodes {
        let link = format!(
            "<a href=\"{}\">{}</a>",
            escape_html(&urls::page(&n.id)),
            escape_html(&n.title)
        );
        if n.children.is_empty() {
            let _ = write!(out, "<li>{link}</li>");
        } else if levels > 1 {
            let _ = write!(
                out,
                "<li class=\"branch\">{link}<details open><summary><span class=\"visually-hidden\">\
                 Pages under {}</span></summary>",
                escape_html(&n.title)
            );
            write_index(out, &n.children, space_key, levels - 1);
            out.push_str("</details></li>");
        } else {
            let below = count(&n.children);
            let _ = write!(
                out,
                "<li>{link} <a class=\"below\" href=\"{}\" aria-label=\"{below} {} below {}\">\
                 {below} {} below</a></li>",
                escape_html(&urls::space_under(space_key, &n.id)),
                if below == 1 { "page" } else { "pages" },
                escape_html(&n.title),
                if below == 1 { "page" } else { "pages" }
            );
        }
    }
    out.push_str("</ul>");
}

/// The node `id` of a tree, with its ancestors (root first) pushed onto `path`.
pub(crate) fn find_path<'a>(
    nodes: &'a [TreeNode],
    id: &str,
    path: &mut Vec<&'a TreeNode>,
) -> Option<&'a TreeNode> {
    for n in nodes {
        if n.id == id {
            return Some(n);
        }
        path.push(n);
        if let Some(found) = find_path(&n.children, id, path) {
            return Some(found);
        }
        path.pop();
    }
    None
}

/// Human file size.
pub(crate) fn file_size(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    if b < 1024.0 {
        format!("{} B", bytes.max(0))
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KB", b / 1024.0)
    } else {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sidebar_shows_the_path_its_siblings_and_the_children() {
        let leaf = |id: &str| TreeNode {
            id: id.into(),
            title: format!("t{id}"),
            children: vec![],
        };
        let node = |id: &str, children: Vec<TreeNode>| TreeNode {
            id: id.into(),
            title: format!("t{id}"),
            children,
        };
        let tree = vec![
            node(
                "1",
                vec![
                    node("2", vec![node("3", vec![leaf("4")]), leaf("5")]),
                    node("6", vec![leaf("7")]),
                ],
            ),
            node("8", vec![leaf("9")]),
        ];
        let ids = |nodes: &[TreeNode]| -> Vec<String> {
            fn walk(n: &[TreeNode], out: &mut Vec<String>) {
                for x in n {
                    out.push(x.id.clone());
                    walk(&x.children, out);
                }
            }
            let mut out = Vec::new();
            walk(nodes, &mut out);
            out
        };
        // On 2: the path 1 › 2, siblings at each level (8; 6), and 2's children (3, 5) —
        // not 3's child 4, 6's child 7 or 8's child 9.
        assert_eq!(
            ids(&local_tree(&tree, "2").0),
            ["1", "2", "3", "5", "6", "8"]
        );
        // On a leaf: its path and siblings only.
        assert_eq!(
            ids(&local_tree(&tree, "4").0),
            ["1", "2", "3", "4", "5", "6", "8"]
        );
        // An id not in the tree: the top level only.
        assert_eq!(ids(&local_tree(&tree, "x").0), ["1", "8"]);
        assert!(!local_tree(&tree, "2").1, "nothing left out");
        // A level of 100 siblings: a window of SIDEBAR_LEVEL_MAX around the current page.
        let wide: Vec<TreeNode> = (0..100).map(|i| leaf(&i.to_string())).collect();
        let (t, cut) = local_tree(&wide, "70");
        assert!(cut);
        assert_eq!(t.len(), SIDEBAR_LEVEL_MAX);
        assert!(
            t.iter().any(|n| n.id == "70"),
            "the current page stays in view"
        );
        let (t, _) = local_tree(&wide, "99");
        assert_eq!(t.last().map(|n| n.id.as_str()), Some("99"));
    }

    #[test]
    fn excerpts_escape_then_mark() {
        let e = format!("a <script>{MATCH_START}x&y{MATCH_END} \"q\"");
        assert_eq!(
            excerpt_html(&e),
            "a &lt;script&gt;<mark>x&amp;y</mark> &quot;q&quot;"
        );
        // Unbalanced markers never produce broken markup.
        assert_eq!(excerpt_html(&format!("{MATCH_START}a")), "<mark>a</mark>");
        assert_eq!(excerpt_html(&format!("a{MATCH_END}")), "a");
        assert_eq!(excerpt_plain(&e), "a <script>x&y \"q\"");
    }

    #[test]
    fn tree_escapes_and_opens_path() {
        let t = vec![TreeNode {
            id: "1".into(),
            title: "<b>Root</b>".into(),
            children: vec![TreeNode {
                id: "2".into(),
                title: "Child".into(),
                children: vec![],
            }],
        }];
        let h = tree_html(&t, Some("2"));
        assert!(h.contains("&lt;b&gt;Root&lt;/b&gt;"));
        assert!(h.contains("<details open>"));
        assert!(h.contains("href=\"/pages/2\" aria-current=\"page\""));
        assert_eq!(file_size(2048), "2.0 KB");
    }
}
