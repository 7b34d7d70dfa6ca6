//! What search can offer a viewer beyond hits: title suggestions while typing and "did you
//! mean …" for a query that found nothing — both from the viewer's *readable* vocabulary
//! only (ARCHITECTURE.md, S1).
//!
//! A [`Lexicon`] is built from the viewer's trees (`Library::lexicon`): the titles of the
//! pages the viewer's page trees show, which are exactly the titles the viewer may see, and
//! the words of those titles with how many titles hold each. It is the same for every viewer
//! of one reach and is cached per reach and the content stamps of its spaces, so a sync
//! that changes a space (a new title, a restriction) makes the next request build it again.
//! Page bodies are not read: a title-only vocabulary costs no body read per build, and the
//! words people search for are mostly those of titles.

use std::collections::HashMap;

/// A readable page title, as a suggestion names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct TitleEntry {
    pub id: String,
    pub title: String,
    pub space_key: String,
    /// `title` in lower case, for matching.
    #[serde(skip)]
    lower: String,
}

/// The readable titles and title words of one reach.
#[derive(Debug, Default)]
pub(crate) struct Lexicon {
    titles: Vec<TitleEntry>,
    /// Word → how many titles hold it.
    words: HashMap<String, u32>,
}

/// Words shorter than this are never corrected (too many near neighbours).
const MIN_CORRECTED: usize = 4;

/// The words of a text: runs of letters and digits, lower case.
pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

impl Lexicon {
    /// A lexicon over `(id, title, space key)` of readable pages.
    pub(crate) fn build(pages: impl IntoIterator<Item = (String, String, String)>) -> Lexicon {
        let mut lex = Lexicon::default();
        for (id, title, space_key) in pages {
            let mut seen: Vec<String> = words(&title).collect();
            seen.sort();
            seen.dedup();
            for w in seen {
                *lex.words.entry(w).or_default() += 1;
            }
            lex.titles.push(TitleEntry {
                lower: title.to_lowercase(),
                id,
                title,
                space_key,
            });
        }
        lex
    }

    /// Roughly the heap bytes held (the cache's weight).
    pub(crate) fn approx_bytes(&self) -> usize {
        256 + self
            .titles
            .iter()
            .map(|t| 96 + t.id.len() + 2 * t.title.len() + t.space_key.len())
            .sum::<usize>()
            + self.words.keys().map(|w| 48 + w.len()).sum::<usize>()
    }

    /// Up to `limit` titles for what has been typed so far: titles starting with it first,
    /// then titles with a word starting with it, then titles containing it; shorter titles
    /// first within each. Nothing for less than two characters.
    pub(crate) fn suggest(&self, typed: &str, limit: usize) -> Vec<&TitleEntry> {
        let q = typed.trim().to_lowercase();
        if q.chars().count() < 2 || limit == 0 {
            return Vec::new();
        }
        let mut found: Vec<(u8, usize, &TitleEntry)> = self
            .titles
            .iter()
            .filter_map(|t| {
                let pos = t.lower.find(&q)?;
                let tier = if pos == 0 {
                    0
                } else if t.lower[..pos].ends_with(|c: char| !c.is_alphanumeric()) {
                    1
                } else {
                    2
                };
                Some((tier, t.title.len(), t))
            })
            .collect();
        found.sort_by(|a, b| (a.0, a.1, &a.2.title, &a.2.id).cmp(&(b.0, b.1, &b.2.title, &b.2.id)));
        found.into_iter().take(limit).map(|(_, _, t)| t).collect()
    }

    /// The query with each unknown word replaced by the nearest readable word (edit
    /// distance 1 for words up to 5 letters, 2 above; the more frequent on a tie), or `None`
    /// when no word changes. Words of fewer than four letters and words the lexicon knows
    /// are kept as typed.
    pub(crate) fn correct(&self, query: &str) -> Option<String> {
        let mut changed = false;
        let out: Vec<String> = words(query)
            .map(|w| {
                if w.chars().count() < MIN_CORRECTED || self.words.contains_key(&w) {
                    return w;
                }
                match self.nearest(&w) {
                    Some(n) => {
                        changed = true;
                        n.to_owned()
                    }
                    None => w,
                }
            })
            .collect();
        changed.then(|| out.join(" "))
    }

    fn nearest(&self, word: &str) -> Option<&str> {
        let len = word.chars().count();
        let max = if len <= 5 { 1 } else { 2 };
        let mut best: Option<(usize, std::cmp::Reverse<u32>, &str)> = None;
        for (w, &n) in &self.words {
            let wl = w.chars().count();
            if wl.abs_diff(len) > max || wl < MIN_CORRECTED - 1 {
                continue;
            }
            let d = strsim::damerau_levenshtein(word, w);
            if d == 0 || d > max {
                continue;
            }
            let cand = (d, std::cmp::Reverse(n), w.as_str());
            if best.is_none_or(|b| cand < b) {
                best = Some(cand);
            }
        }
        best.map(|(_, _, w)| w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(titles: &[&str]) -> Lexicon {
        Lexicon::build(
            titles
                .iter()
                .enumerate()
                .map(|(i, t)| (i.to_string(), (*t).to_owned(), "KB".to_owned())),
        )
    }

    #[test]
    fn suggestions_prefer_prefixes_then_word_starts_then_substrings() {
        let l = lex(&[
            "Reinstall the agent",
            "Install guide",
            "Installation on Linux",
            "How to install",
            "Uninstalling",
        ]);
        let titles: Vec<&str> = l
            .suggest("inSTall", 10)
            .iter()
            .map(|t| t.title.as_str())
            .collect();
        assert_eq!(
            titles,
            [
                "Install guide",
                "Installation on Linux",
                "How to install",
                "Uninstalling",
                "Reinstall the agent"
            ]
        );
        assert_eq!(l.suggest("install", 2).len(), 2);
        assert!(l.suggest("i", 10).is_empty(), "one letter is too little");
        assert!(l.suggest("zzz", 10).is_empty());
    }

    #[test]
    fn corrections_come_from_the_lexicon_only() {
        let l = lex(&["Installation guide", "Configure the proxy", "Proxy limits"]);
        assert_eq!(l.correct("instalation").as_deref(), Some("installation"));
        assert_eq!(
            l.correct("configre proxxy").as_deref(),
            Some("configure proxy")
        );
        // Transposed letters count as one edit.
        assert_eq!(l.correct("gudie").as_deref(), Some("guide"));
        // Known words, short words and far-off words are kept: nothing to offer.
        assert_eq!(l.correct("proxy guide"), None);
        assert_eq!(l.correct("prx"), None);
        assert_eq!(l.correct("kubernetes"), None);
        // Only changed words move; the others stay as typed (lower case).
        assert_eq!(l.correct("Proxy limts").as_deref(), Some("proxy limits"));
    }

    #[test]
    fn a_word_outside_the_lexicon_is_never_offered() {
        // The lexicon is built from readable titles only; a secret word elsewhere cannot be
        // the correction, however close.
        let l = lex(&["Public roadmap"]);
        assert_eq!(l.correct("acquisitoin"), None);
        assert_eq!(l.correct("roadmpa").as_deref(), Some("roadmap"));
    }
}
