//! Code highlighting at sync time.
//!
//! syntect parses the code with Sublime Text grammars (its bundled set, with the pure-Rust
//! `fancy-regex` engine, so no C build). syntect's own HTML writer names every scope atom as a
//! class (`source rust meta function …`): an open-ended set the sanitiser could not
//! allow-list. Instead each token gets one class from the small, fixed set [`CLASSES`], chosen
//! from its scope stack (innermost scope first). The portal's stylesheet colours those
//! classes for light and dark themes; no inline style is written, so the CSP holds.
//!
//! Highlighting runs once per page version (at sync), never per view. Code past
//! [`MAX_BYTES`] or a grammar that fails (fancy-regex gives up on runaway backtracking) falls
//! back to plain, escaped text.

use std::sync::LazyLock;

use syntect::easy::ScopeRangeIterator;
use syntect::parsing::{ParseState, Scope, ScopeStack, SyntaxSet};
use syntect::util::LinesWithEndings;

use crate::escape_html_into;

/// Largest code block that is highlighted (bytes); larger ones stay plain text.
pub(crate) const MAX_BYTES: usize = 64 * 1024;

/// Every class a highlighted token may carry (the sanitiser allows exactly these on `span`).
pub(crate) const CLASSES: &[&str] = &[
    "hl-comment",
    "hl-string",
    "hl-escape",
    "hl-number",
    "hl-constant",
    "hl-keyword",
    "hl-operator",
    "hl-function",
    "hl-type",
    "hl-tag",
    "hl-attr",
    "hl-variable",
    "hl-inserted",
    "hl-deleted",
    "hl-heading",
];

static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);

/// Scope prefix → class, most specific first (the first prefix matching a scope wins).
static RULES: LazyLock<Vec<(Scope, &'static str)>> = LazyLock::new(|| {
    [
        ("comment", "hl-comment"),
        ("constant.character.escape", "hl-escape"),
        ("string", "hl-string"),
        ("constant.numeric", "hl-number"),
        ("constant", "hl-constant"),
        ("variable.language", "hl-constant"),
        ("keyword.operator", "hl-operator"),
        ("keyword", "hl-keyword"),
        ("storage", "hl-keyword"),
        ("entity.name.function", "hl-function"),
        ("support.function", "hl-function"),
        ("variable.function", "hl-function"),
        ("entity.name.tag", "hl-tag"),
        ("entity.other.attribute-name", "hl-attr"),
        ("entity.name", "hl-type"),
        ("entity.other.inherited-class", "hl-type"),
        ("support.type", "hl-type"),
        ("support.class", "hl-type"),
        ("support.constant", "hl-constant"),
        ("variable.parameter", "hl-variable"),
        ("markup.inserted", "hl-inserted"),
        ("markup.deleted", "hl-deleted"),
        ("markup.heading", "hl-heading"),
    ]
    .into_iter()
    .filter_map(|(s, c)| Scope::new(s).ok().map(|s| (s, c)))
    .collect()
});

/// The grammar name syntect knows a normalised language (see `walk::normalise_language`)
/// by, when it differs from the name itself. TypeScript uses the JavaScript grammar (the
/// bundled set has none for it; types then show as plain identifiers).
fn syntax_token(lang: &str) -> &str {
    match lang {
        "bash" | "shell" => "sh",
        "csharp" => "cs",
        "javascript" | "typescript" => "js",
        "objectivec" => "m",
        "ocaml" => "ml",
        "perl" => "pl",
        "python" => "py",
        "ruby" => "rb",
        "rust" => "rs",
        "haskell" => "hs",
        "clojure" => "clj",
        "erlang" => "erl",
        "markdown" => "md",
        "actionscript" => "as",
        other => other,
    }
}

fn class_of(stack: &ScopeStack) -> Option<&'static str> {
    stack.as_slice().iter().rev().find_map(|scope| {
        RULES
            .iter()
            .find(|(prefix, _)| prefix.is_prefix_of(*scope))
            .map(|(_, class)| *class)
    })
}

/// Writes `code` as escaped HTML with `<span class="hl-…">` tokens. Returns `false` (and
/// writes nothing) when the language has no grammar, the code is too large or the grammar
/// fails; the caller then writes plain text.
pub(crate) fn highlight_into(out: &mut String, code: &str, lang: &str) -> bool {
    if code.len() > MAX_BYTES {
        return false;
    }
    let Some(syntax) = SYNTAXES.find_syntax_by_token(syntax_token(lang)) else {
        return false;
    };
    let mut state = ParseState::new(syntax);
    let mut stack = ScopeStack::new();
    let mut html = String::with_capacity(code.len() * 2);
    // Adjacent tokens with the same class share one span.
    let mut open: Option<&'static str> = None;
    for line in LinesWithEndings::from(code) {
        let Ok(ops) = state.parse_line(line, &SYNTAXES) else {
            return false;
        };
        for (range, op) in ScopeRangeIterator::new(&ops, line) {
            if stack.apply(op).is_err() {
                return false;
            }
            let Some(text) = line.get(range) else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            let class = if text.trim().is_empty() {
                open // whitespace never starts or ends a span
            } else {
                class_of(&stack)
            };
            if class != open {
                if open.is_some() {
                    html.push_str("</span>");
                }
                if let Some(c) = class {
                    html.push_str("<span class=\"");
                    html.push_str(c);
                    html.push_str("\">");
                }
                open = class;
            }
            escape_html_into(&mut html, text);
        }
    }
    if open.is_some() {
        html.push_str("</span>");
    }
    out.push_str(&html);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hl(code: &str, lang: &str) -> String {
        let mut out = String::new();
        assert!(
            highlight_into(&mut out, code, lang),
            "{lang} not highlighted"
        );
        out
    }

    #[test]
    fn rust_keywords_strings_and_comments_get_classes() {
        let out = hl("fn main() { let s = \"<hi>\"; } // done\n", "rust");
        assert!(
            out.contains("<span class=\"hl-keyword\">let</span>"),
            "{out}"
        );
        assert!(out.contains("hl-string"), "{out}");
        assert!(out.contains("&lt;hi&gt;"), "{out}");
        assert!(out.contains("<span class=\"hl-comment\">// done"), "{out}");
    }

    #[test]
    fn only_fixed_classes_are_written() {
        let code = "def f(x):\n    return x + 1  # add\n<div a=\"b\">c</div>\n";
        for lang in [
            "python",
            "html",
            "javascript",
            "sql",
            "bash",
            "yaml",
            "json",
            "java",
        ] {
            let out = hl(code, lang);
            for (i, _) in out.match_indices("class=\"") {
                let rest = &out[i + 7..];
                let end = rest.find('"').unwrap();
                assert!(CLASSES.contains(&&rest[..end]), "{lang}: {}", &rest[..end]);
            }
        }
    }

    #[test]
    fn text_is_kept_exactly() {
        let code = "SELECT a, 'x&y' FROM t WHERE b < 3;\n\n  -- tail";
        let out = hl(code, "sql");
        let mut text = String::new();
        let mut in_tag = false;
        for c in out.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        let text = text
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&");
        assert_eq!(text, code);
    }

    #[test]
    fn unknown_language_and_huge_code_fall_back() {
        let mut out = String::new();
        assert!(!highlight_into(&mut out, "x", "no-such-language"));
        assert!(!highlight_into(
            &mut out,
            &"a".repeat(MAX_BYTES + 1),
            "rust"
        ));
        assert!(out.is_empty());
    }
}
