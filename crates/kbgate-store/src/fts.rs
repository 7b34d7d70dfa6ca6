//! Turning user search text into safe full-text queries.
//!
//! User text is never passed to FTS5 or `to_tsquery` as syntax: it is split into words
//! (runs of Unicode letters and digits), each word is quoted, and all words must match (AND).
//! No prefix matching: a short prefix expands to hundreds of index terms and blew the search
//! latency budget in the benchmark (2 s on 20,000 pages for `"word" "ka"*`). Everything else (quotes, `*`, `NEAR(`, `:`, `&`,
//! `|`, `!`, parentheses, SQL) is a separator. No words → no query → empty results.

/// Start of a match in [`crate::SearchHit::excerpt`] (a private-use character).
pub const MATCH_START: char = '\u{E000}';
/// End of a match in [`crate::SearchHit::excerpt`] (a private-use character).
pub const MATCH_END: char = '\u{E001}';

/// At most this many words of a query are used.
const MAX_TERMS: usize = 12;
/// Words longer than this (in characters) are cut.
const MAX_TERM_CHARS: usize = 64;

/// The words of a user query, safe to embed in a full-text query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Terms(Vec<String>);

impl Terms {
    /// `None` when the text has no searchable word.
    pub(crate) fn parse(query: &str) -> Option<Terms> {
        let terms: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric() || c == MATCH_START || c == MATCH_END)
            .filter(|w| !w.is_empty())
            .take(MAX_TERMS)
            .map(|w| {
                w.chars()
                    .take(MAX_TERM_CHARS)
                    .collect::<String>()
                    .to_lowercase()
            })
            .collect();
        if terms.is_empty() {
            None
        } else {
            Some(Terms(terms))
        }
    }

    /// FTS5 query: `"a" "b" "c"` (implicit AND).
    pub(crate) fn fts5(&self) -> String {
        fts5_words(self.0.iter().map(String::as_str))
    }

    /// The distinct words, in query order.
    pub(crate) fn distinct(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::with_capacity(self.0.len());
        for w in &self.0 {
            if !out.contains(&w.as_str()) {
                out.push(w);
            }
        }
        out
    }

    /// `to_tsquery` text: `'a' & 'b' & 'c'`.
    pub(crate) fn tsquery(&self) -> String {
        self.0
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(" & ")
    }
}

/// FTS5 query of words that came out of [`Terms::parse`]: `"a" "b"` (implicit AND).
pub(crate) fn fts5_words<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words
        .into_iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Removes the match markers from text before it is stored, so that excerpts can only
/// contain the store's own markers.
pub(crate) fn strip_markers(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([MATCH_START, MATCH_END]) {
        text.replace([MATCH_START, MATCH_END], "").into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_queries_become_quoted_words_or_nothing() {
        for q in ["", "   ", "\"", "*", "'", "()", "&|!:", "\u{E000}"] {
            assert_eq!(Terms::parse(q), None, "{q:?}");
        }
        let t = Terms::parse("NEAR(a b").unwrap();
        assert_eq!(t.fts5(), "\"near\" \"a\" \"b\"");
        let t = Terms::parse("'; drop table pages; --").unwrap();
        assert_eq!(t.fts5(), "\"drop\" \"table\" \"pages\"");
        assert_eq!(t.tsquery(), "'drop' & 'table' & 'pages'");
        let t = Terms::parse("Crème \"brûlée\"*").unwrap();
        assert_eq!(t.fts5(), "\"crème\" \"brûlée\"");
    }

    #[test]
    fn terms_are_capped() {
        let long = "x".repeat(500);
        let q = format!("{long} {}", "w ".repeat(100));
        let t = Terms::parse(&q).unwrap();
        assert_eq!(t.0.len(), MAX_TERMS);
        assert_eq!(t.0[0].chars().count(), MAX_TERM_CHARS);
    }

    #[test]
    fn distinct_words_keep_their_order() {
        let t = Terms::parse("Kiwi melon kiwi KIWI apple melon").unwrap();
        assert_eq!(t.distinct(), ["kiwi", "melon", "apple"]);
        assert_eq!(fts5_words(t.distinct()), "\"kiwi\" \"melon\" \"apple\"");
    }

    #[test]
    fn markers_are_stripped() {
        assert_eq!(strip_markers("a\u{E000}b\u{E001}c"), "abc");
        assert_eq!(strip_markers("plain"), "plain");
    }
}
