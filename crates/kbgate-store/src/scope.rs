//! Scope tokens: the viewer's scope, expressed as full-text terms.
//!
//! Every page that is not `effective_restricted` carries in the full-text index (SQLite: the
//! `scope` column of `pages_fts` and `pages_title_fts`; PostgreSQL: extra lexemes in
//! `search_vec` and `title_vec`) one token for its space and one per label:
//!
//! - space: `U+E000 's' HEX(space_id) '0'`
//! - label: `U+E000 'l' HEX(space_id) 'x' HEX(label) '0'`
//!
//! with `HEX` the upper-case hex of the UTF-8 bytes. A search then matches
//! `words AND scope:(token OR token …)`, so the scope is applied while the index's doclists
//! are walked (a viewer of one small space in a big site only ever touches that space's
//! entries), and restricted pages, having no scope token, are never candidates at all.
//!
//! Why this shape:
//! - `U+E000` (a private-use character, a token character for FTS5's `unicode61`) can never
//!   be produced from user text: query words are split on it ([`crate::fts::Terms`]) and
//!   stored titles and bodies have it stripped. SQLite matches scope tokens only inside the
//!   scope column, so an attachment file name cannot forge one; PostgreSQL builds the
//!   lexemes verbatim (`array_to_tsvector`, `::tsquery`) while indexed text has every
//!   non-alphanumeric character replaced by a space first.
//! - The final `'0'`: FTS5's porter stemmer only strips letter suffixes (`s`, `ed`, `e`, …),
//!   so a token ending in a digit passes through unchanged; without it, `…E` or `…ED`
//!   endings of the hex could be stemmed away and two different labels could share a token.
//! - `x` is not a hex digit, so `(space, label)` decodes unambiguously.
//!
//! The tokens are a pre-filter only: both backends still check space, labels (via
//! `page_labels`) and `effective_restricted` in SQL for every hit they return.

use std::fmt::Write;

use crate::model::ScopeEntry;

/// First character of every scope token: the excerpt start marker, which query words and
/// stored text can never contain.
pub(crate) const SCOPE_MARK: char = crate::fts::MATCH_START;

fn push_hex(out: &mut String, s: &str) {
    for b in s.as_bytes() {
        let _ = write!(out, "{b:02X}");
    }
}

/// The token of a whole space.
pub(crate) fn space_token(space_id: &str) -> String {
    let mut t = String::with_capacity(3 + 2 * space_id.len());
    t.push(SCOPE_MARK);
    t.push('s');
    push_hex(&mut t, space_id);
    t.push('0');
    t
}

/// The token of one label of a space.
pub(crate) fn label_token(space_id: &str, label: &str) -> String {
    let mut t = String::with_capacity(5 + 2 * (space_id.len() + label.len()));
    t.push(SCOPE_MARK);
    t.push('l');
    push_hex(&mut t, space_id);
    t.push('x');
    push_hex(&mut t, label);
    t.push('0');
    t
}

/// What a page stores in `pages.scope_tokens`: its space token, then one token per distinct
/// label in byte order (the migrations compute the same string for existing rows). Whether
/// the page is restricted is not part of it: the index leaves the tokens out for restricted
/// pages (SQLite: the `pages_search` view; PostgreSQL: the search-vector trigger).
pub(crate) fn page_scope_tokens(space_id: &str, labels: &[String]) -> String {
    let mut labels: Vec<&String> = labels.iter().collect();
    labels.sort();
    labels.dedup();
    let mut out = space_token(space_id);
    for label in labels {
        out.push(' ');
        out.push_str(&label_token(space_id, label));
    }
    out
}

/// The tokens a viewer's scope admits: a space's token, or the tokens of the listed labels
/// of a space (entries with an empty label list admit nothing and are left out by the
/// caller).
pub(crate) fn viewer_tokens(scope: &[&ScopeEntry]) -> Vec<String> {
    let mut out = Vec::new();
    for entry in scope {
        match &entry.labels {
            None => out.push(space_token(&entry.space_id)),
            Some(labels) => {
                out.extend(labels.iter().map(|l| label_token(&entry.space_id, l)));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hex_with_a_marker_and_a_digit_at_the_end() {
        assert_eq!(space_token("S1"), "\u{E000}s53310");
        assert_eq!(label_token("S1", "faq"), "\u{E000}l5331x6661710");
        assert_eq!(space_token(""), "\u{E000}s0");
        assert_eq!(
            page_scope_tokens("S1", &["faq".into(), "a b".into(), "faq".into()]),
            "\u{E000}s53310 \u{E000}l5331x6120620 \u{E000}l5331x6661710"
        );
        // Only hex digits, the kind letter and `x` follow the marker: no quote, space or
        // operator can reach the full-text query.
        let t = label_token("ü\"'()*: ", "NEAR(\"x\" OR y)");
        assert!(
            t.chars()
                .skip(1)
                .all(|c| c.is_ascii_hexdigit() || c == 'l' || c == 'x')
        );
    }

    #[test]
    fn viewer_tokens_cover_spaces_and_labels() {
        let a = ScopeEntry {
            space_id: "S1".into(),
            labels: None,
        };
        let b = ScopeEntry {
            space_id: "S2".into(),
            labels: Some(vec!["faq".into(), "howto".into()]),
        };
        let t = viewer_tokens(&[&a, &b, &a]);
        assert_eq!(
            t,
            vec![
                label_token("S2", "faq"),
                label_token("S2", "howto"),
                space_token("S1"),
            ]
        );
    }
}
