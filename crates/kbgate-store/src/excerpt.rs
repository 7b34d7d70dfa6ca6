//! Search excerpts built in Rust from a bounded window of a page's text (both backends).
//!
//! `ts_headline` parses all the text it is given (≈ 1 µs a word, ≈ 5 ms for a page of 20
//! hits), and FTS5's `snippet()` with the full-text cursor it needs cost 1.2–1.9 ms for 20
//! hits on a 100,000-page mirror (60–90 µs a hit); cutting a window and marking words here
//! costs microseconds. A word is marked when its lower-case form is a query word or one of
//! the query's stems (the lexemes PostgreSQL computed for the query; on SQLite the Snowball
//! English stems of the query words), or such a stem followed by a common English inflection
//! (`questions` for the lexeme `question`, `configured` for `configur`). Marking is only
//! presentation: which pages match is decided by the full-text index.

use crate::fts::{MATCH_END, MATCH_START};

/// Characters of a page's text an excerpt is cut from: the window starts
/// [`WINDOW_LEAD`] characters before a query word (PostgreSQL: the earliest occurrence of
/// any; SQLite: the first occurrence of the first word found, see its search module).
pub(crate) const WINDOW: usize = 1000;
/// Characters of the window before the first occurrence of a query word.
pub(crate) const WINDOW_LEAD: usize = 200;

/// Words in one fragment.
const FRAGMENT_WORDS: usize = 30;
/// Words shown before a fragment's first match.
const LEAD_WORDS: usize = 5;
/// Fragments in an excerpt.
const MAX_FRAGMENTS: usize = 2;
/// Between fragments.
const DELIMITER: &str = " … ";
/// Endings a stem may carry in the text and still be marked (English inflections).
const SUFFIXES: &[&str] = &[
    "s", "es", "ed", "d", "ing", "e", "er", "ers", "ly", "y", "ies", "ied", "ion", "ions", "ation",
    "ations", "al", "ment", "ments", "ness",
];

/// What marks a word as a match.
#[derive(Debug, Default)]
pub(crate) struct Marker {
    words: Vec<String>,
    stems: Vec<String>,
}

impl Marker {
    /// `words`: the query words (lower case); `stems`: their lexemes.
    pub(crate) fn new(words: &[&str], stems: Vec<String>) -> Marker {
        Marker {
            words: words.iter().map(|w| (*w).to_owned()).collect(),
            stems,
        }
    }

    fn matches(&self, word: &str) -> bool {
        let lower = word.to_lowercase();
        if self.words.contains(&lower) {
            return true;
        }
        self.stems.iter().any(|s| {
            lower.strip_prefix(s.as_str()).is_some_and(|rest| {
                rest.is_empty() || (s.chars().count() >= 3 && SUFFIXES.contains(&rest))
            })
        })
    }
}

/// The excerpt of `win`, read as `substr(text, start, WINDOW + 1)` (1-based `start`, in
/// characters): one character more than [`WINDOW`] tells whether the text goes on.
pub(crate) fn from_window(mut win: String, start: i64, marker: &Marker) -> String {
    let cut_end = match win.char_indices().nth(WINDOW) {
        Some((at, _)) => {
            win.truncate(at);
            true
        }
        None => false,
    };
    excerpt(&win, start > 1, cut_end, marker)
}

/// The excerpt of `window`, a piece of a page's text: up to two fragments of about
/// `FRAGMENT_WORDS` words around marked words (the start of the window when nothing is
/// marked), matches between [`MATCH_START`] and [`MATCH_END`], whitespace collapsed.
/// `cut_start` / `cut_end`: the window was cut there from a longer text, so the word at
/// that edge may be partial and is left out.
fn excerpt(window: &str, cut_start: bool, cut_end: bool, marker: &Marker) -> String {
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, c) in window.char_indices() {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            words.push((s, i));
        }
    }
    if let Some(s) = start {
        words.push((s, window.len()));
    }
    if cut_start && words.first().is_some_and(|w| w.0 == 0) {
        words.remove(0);
    }
    if cut_end && words.last().is_some_and(|w| w.1 == window.len()) {
        words.pop();
    }
    let marked: Vec<bool> = words
        .iter()
        .map(|&(s, e)| marker.matches(&window[s..e]))
        .collect();

    // Fragments: word ranges around the first marked words, not overlapping.
    let mut fragments: Vec<(usize, usize)> = Vec::new();
    let mut next = 0;
    while fragments.len() < MAX_FRAGMENTS {
        let Some(m) = (next..words.len()).find(|&i| marked[i]) else {
            break;
        };
        let first = m.saturating_sub(LEAD_WORDS).max(next);
        let end = (first + FRAGMENT_WORDS).min(words.len());
        fragments.push((first, end));
        next = end;
    }
    if fragments.is_empty() && !words.is_empty() {
        fragments.push((0, FRAGMENT_WORDS.min(words.len())));
    }

    let mut out = String::new();
    for (n, &(first, end)) in fragments.iter().enumerate() {
        if n > 0 {
            out.push_str(DELIMITER);
        }
        for i in first..end {
            let (s, e) = words[i];
            if i > first {
                push_between(&mut out, &window[words[i - 1].1..s]);
            }
            if marked[i] {
                out.push(MATCH_START);
                out.push_str(&window[s..e]);
                out.push(MATCH_END);
            } else {
                out.push_str(&window[s..e]);
            }
        }
        // Punctuation right after the last word (a full stop) belongs to the fragment.
        if let Some(&(_, e)) = words.get(end.wrapping_sub(1)) {
            let tail_end = words.get(end).map_or(window.len(), |w| w.0);
            let tail = window[e..tail_end]
                .split(char::is_whitespace)
                .next()
                .unwrap_or("");
            if !(cut_end && end == words.len() && tail_end == window.len()) {
                push_between(&mut out, tail);
            }
        }
    }
    out
}

/// Text between two words, whitespace runs collapsed to one space.
fn push_between(out: &mut String, between: &str) {
    let mut space = false;
    for c in between.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    if space {
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(s: &str) -> String {
        s.replace(MATCH_START, "[").replace(MATCH_END, "]")
    }

    #[test]
    fn marks_words_and_stemmed_forms() {
        let m = Marker::new(
            &["question", "gateway"],
            vec!["question".into(), "gateway".into()],
        );
        let e = excerpt(
            "Some Questions about the  gateway.\nAnd questionnaires.",
            false,
            false,
            &m,
        );
        assert_eq!(
            mark(&e),
            "Some [Questions] about the [gateway]. And questionnaires."
        );
        let m = Marker::new(&["configuration"], vec!["configur".into()]);
        assert_eq!(
            mark(&excerpt("it was configured", false, false, &m)),
            "it was [configured]"
        );
    }

    #[test]
    fn fragments_around_matches_and_cut_edges() {
        let m = Marker::new(&["kiwi"], vec!["kiwi".into()]);
        let text: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let mut text = text.join(" ");
        text.replace_range(
            text.find("w50 ").unwrap()..text.find("w51").unwrap(),
            "kiwi ",
        );
        text.replace_range(
            text.find("w150 ").unwrap()..text.find("w151").unwrap(),
            "kiwi ",
        );
        let e = mark(&excerpt(&text, true, true, &m));
        assert!(e.starts_with("w45 w46 w47 w48 w49 [kiwi] w51"), "{e}");
        assert!(e.contains("w74 … w145"), "{e}");
        assert!(e.contains("[kiwi] w151"), "{e}");
        // No match: the start of the window; a cut first word is dropped.
        let e = excerpt("rtial word and more.", true, false, &m);
        assert_eq!(e, "word and more.");
        let e = excerpt("abc de", false, true, &m);
        assert_eq!(e, "abc");
        assert_eq!(excerpt("", false, false, &m), "");
    }
}
