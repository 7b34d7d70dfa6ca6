//! The bounded search plan, and the helpers both backends share (the crate docs, "Search",
//! describe the behaviour for users of the crate).
//!
//! SQLite ([`crate::SqliteStore`]):
//!
//! 1. **Candidates.** The newest `candidates + 1` pages (by rowid) matching every word *and*
//!    the viewer's scope tokens ([`crate::scope`]), straight from the FTS5 doclists. At most
//!    `candidates` of them: the match set is complete.
//! 2. **Scored words.** bm25 counts, once per query and word, every page holding the word
//!    (≈ 90 ns a page — 9 ms for a word in all of 100,000 pages), whatever the scope or the
//!    rowid range. Words are scored from the rarest up while their summed document
//!    frequency (estimated from four windows of the rowid range, and remembered with the
//!    page total per mirror change stamp: [`SearchStats`]) stays within
//!    `score_budget`; on a mirror of at most `score_budget` pages every word is. The others
//!    still have to match; they are words in a large part of the mirror, whose IDF is small
//!    (bm25 floors it at 10⁻⁶ above half the pages).
//! 3. **Order.** Complete match set and every word scored: bm25 over all matches, exactly as
//!    FTS5 computes it. Otherwise two tiers: first up to `title_candidates` pages with every
//!    word in the title (newest first from `pages_title_fts`, wherever they are in the match
//!    set), shortest title first; then the candidates, by bm25 over the scored words or,
//!    when none could be scored, newest first. The list ends there: a query matching more
//!    than `candidates` pages in scope returns at most `candidates + title_candidates`.
//! 4. **Hits.** Titles and excerpts for the requested window only, re-checking space, labels
//!    and `effective_restricted` in SQL on the page rows.
//!
//! PostgreSQL ([`crate::PostgresStore`]) follows the same plan with its own parts: the
//! newest matches by `seq`, found range by range; the title tier from `title_vec`; and
//! `ts_rank`, which has no per-query fixed cost, so every word is always scored (only the
//! bound on candidates applies).
//!
//! Every step is a deterministic function of the data, so pages of one result list are
//! consistent while the mirror does not change.

use std::collections::HashSet;
use std::hash::Hash;

/// Matches counted exactly at most; a larger match set is "more than" this many (see
/// [`crate::MatchCount`]).
pub(crate) const COUNT_LIMIT: usize = 100;

/// The count of `n` verified candidates; `exact` when they were every match.
pub(crate) fn match_count(n: i64, exact: bool) -> crate::MatchCount {
    let n = u64::try_from(n).unwrap_or(0);
    if exact {
        crate::MatchCount::Exact(n)
    } else {
        crate::MatchCount::AtLeast(n)
    }
}

/// Bounds of the search plan. Fixed in production; tests shrink them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SearchLimits {
    /// Newest in-scope matches that are ranked when there are more.
    pub candidates: usize,
    /// Newest in-scope pages with every word in the title that rank first in a bounded
    /// search (SQLite).
    pub title_candidates: usize,
    /// Summed document frequency of the words bm25 scores (SQLite).
    pub score_budget: u64,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            // 500, not 1,000: finding the newest candidates and scoring them are most of a
            // bounded search; in the search bench (100,000 pages, on a machine where the
            // three-word query kind took 6.8-7.8 ms of CPU with 1,000) it took 4.9-5.4 ms,
            // and the whole mix 15% less. PostgreSQL ranks 200.
            candidates: 500,
            title_candidates: 100,
            score_budget: 40_000,
        }
    }
}

impl SearchLimits {
    /// PostgreSQL: `ts_rank` has no per-query fixed cost but reads each candidate's
    /// vector (a few KB), and finding the newest candidates tests vectors row by row.
    pub(crate) fn postgres() -> Self {
        SearchLimits {
            candidates: 200,
            ..Self::default()
        }
    }
}

/// What a SQLite search learned about the mirror as of a change stamp (`mirror_changes`,
/// see [`crate::changes`]): its page count and the sampled document frequencies of words.
/// The stamp moves with every commit that can add or remove a page, in any process, so what
/// was taken at the stamp a search reads in its own snapshot is that snapshot's. Counting
/// 100,000 pages (`count(*)`, a walk of a whole index) cost 1–2.5 ms of every search on a
/// large mirror, and sampling a statement (0.2–0.4 ms); a portal's searches repeat their
/// words. At most [`SearchStats::MAX_WORDS`] words are held; everything is dropped when the
/// stamp moves on.
#[derive(Debug, Default)]
pub(crate) struct SearchStats(std::sync::Mutex<Option<Stamped>>);

#[derive(Debug)]
struct Stamped {
    stamp: i64,
    total: Option<u64>,
    df: std::collections::HashMap<String, u64>,
}

impl SearchStats {
    /// Words remembered at once (words are at most 64 characters: about 1 MB at most).
    pub(crate) const MAX_WORDS: usize = 4096;

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Stamped>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What is held for `stamp`, if it is the one held.
    fn read<T>(&self, stamp: i64, f: impl FnOnce(&Stamped) -> Option<T>) -> Option<T> {
        self.held()
            .as_ref()
            .filter(|h| h.stamp == stamp)
            .and_then(f)
    }

    /// Updates what is held for `stamp`, starting afresh when an older stamp is held.
    /// Stamps only grow: a slow search of an older snapshot leaves a newer stamp's entries.
    fn write(&self, stamp: i64, f: impl FnOnce(&mut Stamped)) {
        let mut held = self.held();
        match &mut *held {
            Some(h) if h.stamp == stamp => f(h),
            Some(h) if h.stamp > stamp => {}
            other => f(other.insert(Stamped {
                stamp,
                total: None,
                df: Default::default(),
            })),
        }
    }

    /// The page count taken at `stamp`, if remembered.
    pub(crate) fn total(&self, stamp: i64) -> Option<u64> {
        self.read(stamp, |h| h.total)
    }

    /// Remembers the page count taken at `stamp`.
    pub(crate) fn set_total(&self, stamp: i64, total: u64) {
        self.write(stamp, |h| h.total = Some(total));
    }

    /// The estimate of `word` sampled at `stamp`, if remembered.
    pub(crate) fn df(&self, stamp: i64, word: &str) -> Option<u64> {
        self.read(stamp, |h| h.df.get(word).copied())
    }

    /// Remembers estimates sampled at `stamp`.
    pub(crate) fn set_df<'a>(
        &self,
        stamp: i64,
        estimates: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        self.write(stamp, |h| {
            for (word, df) in estimates {
                if h.df.len() >= Self::MAX_WORDS {
                    h.df.clear();
                }
                h.df.insert(word.to_owned(), df);
            }
        });
    }
}

/// Picks the words to score: rarest first while the summed document frequency stays within
/// `budget`. `df` holds an estimate per word (same order as `words`).
pub(crate) fn scored_words<'a>(words: &[&'a str], df: &[u64], budget: u64) -> Vec<&'a str> {
    let mut by_df: Vec<(usize, u64)> = df.iter().copied().enumerate().collect();
    by_df.sort_by_key(|&(i, d)| (d, i));
    let mut sum = 0u64;
    let mut keep = Vec::new();
    for (i, d) in by_df {
        if sum.saturating_add(d) > budget {
            break;
        }
        sum += d;
        keep.push(i);
    }
    keep.sort_unstable();
    keep.into_iter().map(|i| words[i]).collect()
}

/// A page with every word in its title: its key (SQLite rowid, PostgreSQL page id), its
/// recency (rowid, `seq`; higher is newer) and its title length (characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TitleHit<K> {
    pub key: K,
    pub recency: i64,
    pub title_len: i64,
}

/// The two tiers of a bounded search: title hits (shortest title, then newest, first) and
/// the other candidates (as given: newest first).
pub(crate) fn tiers<K: Clone + Eq + Hash + Ord>(
    mut title: Vec<TitleHit<K>>,
    cands: &[K],
) -> (Vec<K>, Vec<K>) {
    title.sort_by(|a, b| {
        (a.title_len.cmp(&b.title_len))
            .then(b.recency.cmp(&a.recency))
            .then(a.key.cmp(&b.key))
    });
    let tier1: Vec<K> = title.into_iter().map(|t| t.key).collect();
    let in_title: HashSet<&K> = tier1.iter().collect();
    let tier2 = cands
        .iter()
        .filter(|k| !in_title.contains(k))
        .cloned()
        .collect();
    (tier1, tier2)
}

/// How the window `offset .. offset + limit` of `tier1 ++ tier2` falls on the tiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    /// The part of tier 1 in the window.
    pub tier1: std::ops::Range<usize>,
    /// Offset into tier 2 of its part of the window.
    pub tier2_offset: usize,
    /// Length of tier 2's part of the window.
    pub tier2_limit: usize,
    /// Position of the window's first hit in the whole list.
    pub first: usize,
    /// Length of the whole list.
    pub total: usize,
    /// Hits follow the window.
    pub has_more: bool,
}

pub(crate) fn split(tier1: usize, tier2: usize, limit: u32, offset: u32) -> Split {
    let total = tier1 + tier2;
    let first = (offset as usize).min(total);
    let end = first.saturating_add(limit as usize).min(total);
    let tier2_offset = first.saturating_sub(tier1);
    let tier2_end = end.saturating_sub(tier1);
    Split {
        tier1: first.min(tier1)..end.min(tier1),
        tier2_offset,
        tier2_limit: tier2_end - tier2_offset,
        first,
        total,
        has_more: total > end,
    }
}

/// The hits of a results window in the order of `window` (key, rank), each given its rank.
/// Keys the hit query did not return (a page whose re-check failed) are dropped: the window
/// never shows what the exact scope check refused.
pub(crate) fn in_rank_order<K: Eq + Hash>(
    window: &[(K, f64)],
    mut hits: std::collections::HashMap<K, crate::SearchHit>,
) -> Vec<crate::SearchHit> {
    window
        .iter()
        .filter_map(|(key, rank)| {
            hits.remove(key).map(|mut h| {
                h.rank = *rank;
                h
            })
        })
        .collect()
}

/// The rank of position `pos` of a bounded list of `total` hits: positional, the first
/// highest.
pub(crate) fn positional_rank(total: usize, pos: usize) -> f64 {
    total.saturating_sub(pos) as f64
}

/// `keys`, the window `split` asks for of a bounded list, with their positional ranks.
pub(crate) fn ranked_by_position<K>(keys: Vec<K>, split: &Split) -> Vec<(K, f64)> {
    keys.into_iter()
        .enumerate()
        .map(|(i, k)| (k, positional_rank(split.total, split.first + i)))
        .collect()
}

/// Estimated document frequency of a word from sampled windows of the key range:
/// `hits` of the word among `sampled` pages, of `total` pages. Nothing sampled counts as
/// "in every page" (never scored: the cheap, safe side).
pub(crate) fn estimate_df(hits: u64, sampled: u64, total: u64) -> u64 {
    if sampled == 0 {
        return total;
    }
    ((hits as u128 * total as u128).div_ceil(sampled as u128)) as u64
}

/// Sample windows `[start, end]` over keys `lo..=hi`: `windows` evenly spread windows of
/// `span` keys (one window over everything when that is smaller).
pub(crate) fn sample_windows(lo: i64, hi: i64, windows: i64, span: i64) -> Vec<(i64, i64)> {
    if hi < lo {
        return vec![];
    }
    let width = hi - lo + 1;
    if width <= windows * span || windows < 2 {
        return vec![(lo, hi)];
    }
    (0..windows)
        .map(|j| {
            let start = lo + (width - span) * j / (windows - 1);
            (start, start + span - 1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rarest_words_are_scored_within_the_budget() {
        let words = ["a", "b", "c"];
        assert_eq!(scored_words(&words, &[10, 5, 100], 20), ["a", "b"]);
        assert_eq!(scored_words(&words, &[10, 5, 100], 200), ["a", "b", "c"]);
        assert!(scored_words(&words, &[50, 50, 50], 20).is_empty());
        assert_eq!(scored_words(&words, &[0, 0, 0], 0), ["a", "b", "c"]);
    }

    #[test]
    fn title_hits_come_first_shortest_then_newest() {
        let t = |key: i64, title_len| TitleHit {
            key,
            recency: key,
            title_len,
        };
        let (t1, t2) = tiers(vec![t(1, 30), t(9, 5), t(5, 5)], &[9, 8, 7]);
        assert_eq!(t1, [9, 5, 1]);
        assert_eq!(t2, [8, 7]);
    }

    #[test]
    fn windows_split_over_the_tiers() {
        let parts = |s: &Split| (s.tier1.clone(), s.tier2_offset, s.tier2_limit);
        // Tier 1: 3 hits, tier 2: 5 hits.
        let s = split(3, 5, 2, 0);
        assert_eq!(parts(&s), (0..2, 0, 0));
        assert!(s.has_more);
        let s = split(3, 5, 4, 2);
        assert_eq!(parts(&s), (2..3, 0, 3));
        assert_eq!((s.first, s.total), (2, 8));
        let s = split(3, 5, 4, 5);
        assert_eq!(parts(&s), (3..3, 2, 3));
        assert!(!s.has_more);
        let s = split(3, 5, 4, 50);
        assert_eq!(parts(&s), (3..3, 5, 0));
        assert!(!s.has_more);
        let s = split(0, 5, 10, 0);
        assert_eq!(parts(&s), (0..0, 0, 5));
        assert_eq!(positional_rank(8, 0), 8.0);
    }

    #[test]
    fn a_page_total_holds_for_its_stamp_only() {
        let t = SearchStats::default();
        assert_eq!(t.total(0), None);
        t.set_total(3, 100_000);
        assert_eq!(t.total(3), Some(100_000));
        assert_eq!(t.total(4), None);
        t.set_total(4, 99_999);
        assert_eq!((t.total(3), t.total(4)), (None, Some(99_999)));
        t.set_total(3, 100_000);
        assert_eq!((t.total(3), t.total(4)), (None, Some(99_999)));
    }

    #[test]
    fn word_estimates_hold_for_their_stamp_only_and_stay_bounded() {
        let d = SearchStats::default();
        assert_eq!(d.df(0, "kiwi"), None);
        d.set_df(3, [("kiwi", 10), ("melon", 20)]);
        assert_eq!((d.df(3, "kiwi"), d.df(3, "melon")), (Some(10), Some(20)));
        assert_eq!((d.df(4, "kiwi"), d.df(3, "apple")), (None, None));
        d.set_df(3, [("apple", 5)]);
        assert_eq!((d.df(3, "kiwi"), d.df(3, "apple")), (Some(10), Some(5)));
        d.set_df(4, [("kiwi", 11)]);
        d.set_df(3, [("apple", 5)]);
        assert_eq!(
            d.df(3, "apple"),
            None,
            "an older stamp does not replace a newer one"
        );
        assert_eq!(
            (d.df(3, "apple"), d.df(4, "kiwi"), d.df(4, "apple")),
            (None, Some(11), None)
        );
        let many: Vec<String> = (0..SearchStats::MAX_WORDS + 10)
            .map(|i| format!("w{i}"))
            .collect();
        d.set_df(4, many.iter().map(|w| (w.as_str(), 1)));
        let held = d.0.lock().unwrap().as_ref().map(|h| h.df.len()).unwrap();
        assert!(held <= SearchStats::MAX_WORDS, "{held}");
    }

    #[test]
    fn estimates_and_windows() {
        assert_eq!(estimate_df(10, 1000, 100_000), 1000);
        assert_eq!(estimate_df(0, 1000, 100_000), 0);
        assert_eq!(estimate_df(1, 3, 10), 4);
        assert_eq!(estimate_df(5, 0, 77), 77);
        assert_eq!(sample_windows(1, 100, 4, 50), vec![(1, 100)]);
        assert_eq!(
            sample_windows(1, 1000, 4, 100),
            vec![(1, 100), (301, 400), (601, 700), (901, 1000)]
        );
        assert!(sample_windows(5, 4, 4, 100).is_empty());
    }
}
