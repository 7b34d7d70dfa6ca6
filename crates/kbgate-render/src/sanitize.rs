//! The final ammonia pass. The walker already emits only allow-listed markup; this is the
//! second, independent line of defence (ARCHITECTURE.md, S4), so it is deliberately strict: fixed
//! tags, fixed attributes per tag, fixed class names, http/https/mailto URLs only (plus
//! relative ones, which the walker restricts to `#anchor` and `/attachments/…`), no `style`,
//! no `data:` anywhere, `rel="noopener noreferrer nofollow"` on every link.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ammonia::Builder;

/// Code-macro languages that may appear as `language-…` classes (normalised names).
pub(crate) const LANGUAGES: &[&str] = &[
    "actionscript",
    "applescript",
    "bash",
    "c",
    "clojure",
    "coffeescript",
    "cpp",
    "csharp",
    "css",
    "dart",
    "diff",
    "dockerfile",
    "elixir",
    "erlang",
    "go",
    "graphql",
    "groovy",
    "haskell",
    "html",
    "ini",
    "java",
    "javascript",
    "json",
    "julia",
    "kotlin",
    "less",
    "lua",
    "makefile",
    "markdown",
    "matlab",
    "nginx",
    "objectivec",
    "ocaml",
    "perl",
    "php",
    "plaintext",
    "powershell",
    "protobuf",
    "python",
    "r",
    "ruby",
    "rust",
    "sass",
    "scala",
    "scss",
    "shell",
    "sql",
    "swift",
    "text",
    "toml",
    "typescript",
    "vb",
    "xml",
    "yaml",
];

pub(crate) const PANEL_KINDS: &[&str] = &["info", "note", "warning", "success", "error", "custom"];
pub(crate) const STATUS_COLOURS: &[&str] = &["grey", "red", "yellow", "green", "blue", "purple"];

static LANGUAGE_CLASSES: LazyLock<Vec<String>> =
    LazyLock::new(|| LANGUAGES.iter().map(|l| format!("language-{l}")).collect());
static PANEL_CLASSES: LazyLock<Vec<String>> =
    LazyLock::new(|| PANEL_KINDS.iter().map(|k| format!("panel-{k}")).collect());
static PANEL_BG_CLASSES: LazyLock<Vec<String>> = LazyLock::new(|| {
    crate::walk::PANEL_COLOURS
        .iter()
        .map(|(k, _)| format!("panel-bg-{k}"))
        .collect()
});
static LAYOUT_CLASSES: LazyLock<Vec<String>> = LazyLock::new(|| {
    crate::walk::LAYOUT_TYPES
        .iter()
        .map(|k| format!("layout-{k}"))
        .collect()
});
static STATUS_CLASSES: LazyLock<Vec<String>> = LazyLock::new(|| {
    STATUS_COLOURS
        .iter()
        .map(|k| format!("status-{k}"))
        .collect()
});

static BUILDER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&'static str> = [
        "a",
        "abbr",
        "aside",
        "b",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "details",
        "div",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "mark",
        "nav",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
        "var",
    ]
    .into_iter()
    .collect();

    let mut attrs: HashMap<&'static str, HashSet<&'static str>> = HashMap::new();
    let mut allow = |tag: &'static str, list: &[&'static str]| {
        attrs.entry(tag).or_default().extend(list.iter().copied());
    };
    allow("a", &["href", "title"]);
    allow("img", &["src", "alt", "title", "width", "height"]);
    allow("td", &["colspan", "rowspan"]);
    allow("th", &["colspan", "rowspan"]);
    allow("col", &["span"]);
    allow("colgroup", &["span"]);
    allow("ol", &["start"]);
    allow("aside", &["role"]);
    // Long code blocks scroll: focusable so keyboard users can scroll them (always "0").
    allow("pre", &["tabindex"]);
    for h in ["h1", "h2", "h3", "h4", "h5", "h6", "span"] {
        allow(h, &["id"]);
    }

    let mut classes: HashMap<&'static str, HashSet<&'static str>> = HashMap::new();
    let mut class = |tag: &'static str, list: &[&'static str]| {
        classes.entry(tag).or_default().extend(list.iter().copied());
    };
    class(
        "code",
        &LANGUAGE_CLASSES
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    class("aside", &["panel"]);
    class(
        "aside",
        &PANEL_CLASSES.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    class(
        "aside",
        &PANEL_BG_CLASSES
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    class(
        "span",
        &[
            "status",
            "status-subtle",
            "jira-key",
            "user-mention",
            "anchor",
            "emoticon",
            "panel-icon",
        ],
    );
    class("span", crate::highlight::CLASSES);
    class(
        "div",
        &LAYOUT_CLASSES
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    class("a", &["jira-key"]);
    class(
        "span",
        &STATUS_CLASSES
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    class(
        "div",
        &[
            "macro-unsupported",
            "layout",
            "layout-section",
            "layout-cell",
            "section",
            "column",
            "page-properties",
            "excerpt",
            "expand-body",
            "quote",
            "tab-group",
            "tab",
            "macro-body",
        ],
    );
    class("p", &["panel-title", "code-title", "tab-title"]);
    class("details", &["expand"]);
    class("nav", &["toc"]);
    class("ul", &["task-list"]);
    class("li", &["task", "task-done"]);
    class("pre", &["code-block", "code-wrap"]);

    let mut b = Builder::empty();
    b.tags(tags)
        .tag_attributes(attrs)
        .allowed_classes(classes)
        .generic_attributes(HashSet::new())
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .strip_comments(true)
        // Code blocks and wide tables scroll sideways inside their own box on small screens;
        // a keyboard must be able to reach (and scroll) them: WCAG 2.1.1, axe-core's
        // `scrollable-region-focusable`. Set here, never taken from content.
        .set_tag_attribute_value("pre", "tabindex", "0")
        .set_tag_attribute_value("table", "tabindex", "0");
    b
});

/// Sanitises walker output. Reference tokens are text and pass through unchanged.
pub(crate) fn clean(html: &str) -> String {
    BUILDER.clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn strips_script_and_handlers() {
        let out =
            clean(r#"<p onclick="x">a<script>alert(1)</script><img src="x" onerror="y"></p>"#);
        assert!(!out.contains("script"), "{out}");
        assert!(!out.contains("onclick"), "{out}");
        assert!(!out.contains("onerror"), "{out}");
    }

    #[test]
    fn drops_unsafe_urls_and_styles() {
        let out = clean(
            r#"<a href="javascript:alert(1)" style="color:red">x</a><img src="data:text/html,1">"#,
        );
        assert!(!out.contains("javascript"), "{out}");
        assert!(!out.contains("style"), "{out}");
        assert!(!out.contains("data:"), "{out}");
    }

    #[test]
    fn keeps_allowed_classes_and_tokens() {
        let out =
            clean("<aside class=\"panel panel-info evil\" role=\"note\">\u{E000}0\u{E001}</aside>");
        assert!(out.contains("panel panel-info"), "{out}");
        assert!(!out.contains("evil"), "{out}");
        assert!(out.contains("\u{E000}0\u{E001}"), "{out}");
    }

    #[test]
    fn scrollable_blocks_are_keyboard_reachable_whatever_the_content_says() {
        let out = clean(
            r#"<pre tabindex="-1" class="code-block">x</pre><table tabindex="7"><tr><td>1</td></tr></table>"#,
        );
        assert!(
            out.contains(r#"<pre class="code-block" tabindex="0">"#)
                || out.contains(r#"<pre tabindex="0" class="code-block">"#),
            "{out}"
        );
        assert!(out.contains(r#"<table tabindex="0">"#), "{out}");
        assert!(!out.contains("-1") && !out.contains("\"7\""), "{out}");
    }

    #[test]
    fn links_get_rel() {
        let out = clean(r#"<a href="https://example.com/">x</a>"#);
        assert!(
            out.contains(r#"rel="noopener noreferrer nofollow""#),
            "{out}"
        );
    }
}
