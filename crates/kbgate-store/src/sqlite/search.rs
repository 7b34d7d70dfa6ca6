//! SQLite search: FTS5 candidates, bm25 over the words it can afford, excerpts cut in Rust
//! (see [`crate::search`] for the plan and the crate docs for the trade-offs).

use std::collections::HashMap;

use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};

use crate::StoreError;
use crate::excerpt::{self, Marker};
use crate::fts::{Terms, fts5_words};
use crate::model::{ScopeEntry, SearchHit, SearchResults};
use crate::scope::viewer_tokens;
use crate::search::{self, TitleHit};
use crate::sql::{SqlStore, push_exact_scope};

impl SqlStore<Sqlite> {
    /// Search (see [`crate::search`] for the plan and the crate docs for the trade-offs).
    /// All steps read one snapshot (a read transaction).
    pub(super) async fn search_impl(
        &self,
        terms: &Terms,
        scope: &[&ScopeEntry],
        limit: u32,
        offset: u32,
    ) -> Result<SearchResults, StoreError> {
        let tokens = viewer_tokens(scope);
        if tokens.is_empty() {
            return Ok(SearchResults::default());
        }
        let lim = self.limits;
        let words = terms.distinct();
        let scope_match = format!(
            "{{scope}} : ({})",
            tokens
                .iter()
                .map(|t| format!("\"{t}\""))
                .collect::<Vec<_>>()
                .join(" OR ")
        );
        let mut tx = self.mirror.begin().await?;

        // 1. The newest matches in scope, one more than the bound (to know if it is hit),
        // as one JSON array (newest first), and how many of them the count checks pass;
        // with them the snapshot's change stamp and rowid range (for step 2).
        // One statement returning one row: every statement and every row is a round trip
        // to the connection's thread (≈ 20–100 µs each on a busy machine).
        let mut qb = QueryBuilder::<Sqlite>::new(
            "WITH c AS MATERIALIZED (SELECT rowid AS rid FROM pages_fts WHERE pages_fts MATCH ",
        );
        qb.push_bind(format!("({}) AND {scope_match}", terms.fts5()));
        qb.push(" ORDER BY rowid DESC LIMIT ");
        qb.push_bind(lim.candidates as i64 + 1);
        qb.push(") SELECT (SELECT json_group_array(rid ORDER BY rid DESC) FROM c), (");
        push_count_in_scope(&mut qb, lim.candidates.min(search::COUNT_LIMIT + 1), scope);
        qb.push(
            "), (SELECT n FROM mirror_changes WHERE id = 1), (SELECT min(pk) FROM pages), \
             (SELECT max(pk) FROM pages)",
        );
        let (cands, counted, stamp, lo, hi): (String, i64, Option<i64>, Option<i64>, Option<i64>) =
            qb.build_query_as().fetch_one(&mut *tx).await?;
        let mut cands: Vec<i64> = serde_json::from_str(&cands)?;
        if cands.is_empty() {
            return Ok(SearchResults::default());
        }
        let complete = cands.len() <= lim.candidates;
        cands.truncate(lim.candidates);
        let total = search::match_count(counted, complete && cands.len() <= search::COUNT_LIMIT);

        // 2. The words bm25 can afford to score.
        let scored = match (lo, hi) {
            (Some(lo), Some(hi)) => self.scored_words(&mut tx, &words, stamp, lo, hi).await?,
            _ => words.clone(),
        };

        // 3. The requested window of the order: `(rowid, rank)`.
        let (page, has_more): (Vec<(i64, f64)>, bool) = if complete && scored.len() == words.len() {
            // Exact: bm25 over every match.
            let rows = bm25_window(&mut tx, &scored, &cands, limit, offset).await?;
            let page = rows.into_iter().map(|(k, s)| (k, -s)).collect();
            (page, cands.len() > offset as usize + limit as usize)
        } else {
            // Bounded: pages with every word in the title, then the other candidates.
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT json_group_array(json_array(rid, title_len)) FROM (\
                 SELECT pages_title_fts.rowid AS rid, length(p.title) AS title_len \
                 FROM pages_title_fts CROSS JOIN pages p ON p.pk = pages_title_fts.rowid \
                 WHERE pages_title_fts MATCH ",
            );
            qb.push_bind(format!(
                "{{title}} : ({}) AND {scope_match}",
                fts5_words(words.iter().copied())
            ));
            push_exact_scope(&mut qb, scope);
            qb.push(" ORDER BY pages_title_fts.rowid DESC LIMIT ");
            qb.push_bind(lim.title_candidates as i64);
            qb.push(")");
            let title: String = qb.build_query_scalar().fetch_one(&mut *tx).await?;
            let title: Vec<(i64, i64)> = serde_json::from_str(&title)?;
            let title = title
                .into_iter()
                .map(|(key, title_len)| TitleHit {
                    key,
                    recency: key,
                    title_len,
                })
                .collect();
            let (tier1, tier2) = search::tiers(title, &cands);
            let split = search::split(tier1.len(), tier2.len(), limit, offset);
            let mut keys: Vec<i64> = tier1[split.tier1.clone()].to_vec();
            if split.tier2_limit > 0 {
                if scored.is_empty() {
                    keys.extend(&tier2[split.tier2_offset..][..split.tier2_limit]);
                } else {
                    let rows = bm25_window(
                        &mut tx,
                        &scored,
                        &tier2,
                        split.tier2_limit as u32,
                        split.tier2_offset as u32,
                    )
                    .await?;
                    keys.extend(rows.into_iter().map(|(k, _)| k));
                }
            }
            (search::ranked_by_position(keys, &split), split.has_more)
        };

        // 4. The hits, with excerpts (and the scope checked once more, on the page rows).
        let hits = self.hits(&mut tx, terms, scope, &page).await?;
        tx.commit().await?;
        Ok(SearchResults {
            hits,
            has_more,
            total,
        })
    }

    /// Titles and excerpts of `page` (`(rowid, rank)`, in order). A row that fails the
    /// exact scope check is left out.
    async fn hits(
        &self,
        tx: &mut SqliteConnection,
        terms: &Terms,
        scope: &[&ScopeEntry],
        page: &[(i64, f64)],
    ) -> Result<Vec<SearchHit>, StoreError> {
        if page.is_empty() {
            return Ok(Vec::new());
        }
        let words = terms.distinct();
        // The excerpt window starts `WINDOW_LEAD` characters before the first occurrence of
        // the first query word found in the text, in lower case, else capitalised (at the
        // start of the body when none is found), and the excerpt is cut in Rust
        // (crate::excerpt): FTS5's `snippet()`, with the full-text cursor it needs on every
        // hit, cost 60–90 µs a hit. `coalesce` stops at the first form found; SQLite's
        // `instr` compares at every byte, and the earliest of all forms (as on PostgreSQL)
        // scanned every body once per form: 1.2 ms for three words on 20 hits, 0.3 ms so.
        // A form missing from the text (a title-only match, another inflection) is still
        // scanned through the whole body: bounding the scan by a prefix (a materialised
        // `substr`, then `instr`) measured 0.6–0.9 ms slower on the bench's three-word
        // searches (2 KB bodies), so long pages pay it instead (a known cost).
        let mut forms: Vec<String> = Vec::with_capacity(words.len() * 2);
        for form in words
            .iter()
            .map(|w| (*w).to_owned())
            .chain(words.iter().map(|w| capitalised(w)))
        {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
        let keys: Vec<i64> = page.iter().map(|p| p.0).collect();
        // One row (see step 1).
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT json_group_array(json_array(rid, id, space_id, title, start, \
             substr(body, start, ",
        );
        qb.push_bind(excerpt::WINDOW as i64 + 1);
        qb.push(
            "))) FROM (SELECT p.pk AS rid, p.id AS id, p.space_id AS space_id, \
             p.title AS title, p.body_text AS body, max(1, coalesce(",
        );
        for form in forms {
            qb.push("nullif(instr(p.body_text, ");
            qb.push_bind(form);
            qb.push("), 0), ");
        }
        qb.push("1) - ");
        qb.push_bind(excerpt::WINDOW_LEAD as i64);
        qb.push(") AS start FROM json_each(");
        qb.push_bind(serde_json::to_string(&keys)?);
        qb.push(") w CROSS JOIN pages p ON p.pk = w.value WHERE true");
        push_exact_scope(&mut qb, scope);
        qb.push(")");
        let rows: String = qb.build_query_scalar().fetch_one(&mut *tx).await?;
        let rows: Vec<(i64, String, String, String, i64, String)> = serde_json::from_str(&rows)?;
        let marker = Marker::new(&words, stems(&words));
        let by_key: HashMap<i64, SearchHit> = rows
            .into_iter()
            .map(|(rid, page_id, space_id, title, start, win)| {
                let hit = SearchHit {
                    page_id,
                    space_id,
                    title,
                    excerpt: excerpt::from_window(win, start, &marker),
                    rank: 0.0,
                };
                (rid, hit)
            })
            .collect();
        Ok(crate::search::in_rank_order(page, by_key))
    }

    /// The words to score with bm25 (see [`crate::search`]): all of them on a mirror of at
    /// most `score_budget` pages; otherwise by document frequency estimated from a few
    /// windows of the rowid range `lo..=hi` (remembered for the change `stamp` they were
    /// sampled at, [`search::SearchStats`]).
    async fn scored_words<'w>(
        &self,
        tx: &mut SqliteConnection,
        words: &[&'w str],
        stamp: Option<i64>,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<&'w str>, StoreError> {
        let budget = self.limits.score_budget;
        // No more pages than keys: a small mirror scores every word without counting.
        if u64::try_from(hi - lo + 1).is_ok_and(|range| range <= budget) {
            return Ok(words.to_vec());
        }
        let total = match stamp.and_then(|s| self.search_stats.total(s)) {
            Some(total) => total,
            None => {
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pages")
                    .fetch_one(&mut *tx)
                    .await?;
                let n = u64::try_from(n).unwrap_or(0);
                if let Some(s) = stamp {
                    self.search_stats.set_total(s, n);
                }
                n
            }
        };
        if total <= budget {
            return Ok(words.to_vec());
        }
        let known: Vec<Option<u64>> = words
            .iter()
            .map(|w| stamp.and_then(|s| self.search_stats.df(s, w)))
            .collect();
        let unknown: Vec<&str> = words
            .iter()
            .zip(&known)
            .filter(|(_, k)| k.is_none())
            .map(|(w, _)| *w)
            .collect();
        let sampled = self.sample_df(tx, &unknown, total, lo, hi).await?;
        if let Some(s) = stamp {
            self.search_stats
                .set_df(s, unknown.iter().copied().zip(sampled.iter().copied()));
        }
        let mut sampled = sampled.into_iter();
        let df: Vec<u64> = known
            .into_iter()
            .map(|k| k.or_else(|| sampled.next()).unwrap_or(total))
            .collect();
        Ok(search::scored_words(words, &df, budget))
    }

    /// Document frequencies of `words` estimated from a few windows of the rowid range
    /// `lo..=hi` of a mirror of `total` pages (same order as `words`).
    async fn sample_df(
        &self,
        tx: &mut SqliteConnection,
        words: &[&str],
        total: u64,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<u64>, StoreError> {
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let windows = search::sample_windows(lo, hi, SAMPLE_WINDOWS, SAMPLE_SPAN);
        // One statement, one row (see step 1): `[k, n]` pairs, k = 0 counting the sampled
        // pages, k = i + 1 the sampled pages of word i.
        let mut qb =
            QueryBuilder::<Sqlite>::new("SELECT json_group_array(json_array(k, n)) FROM (");
        for (i, word) in std::iter::once(None)
            .chain(words.iter().map(Some))
            .enumerate()
        {
            for (j, (a, b)) in windows.iter().enumerate() {
                if i > 0 || j > 0 {
                    qb.push(" UNION ALL ");
                }
                qb.push("SELECT ");
                qb.push_bind(i as i64);
                match word {
                    None => {
                        qb.push(
                            " AS k, count(*) AS n FROM pages INDEXED BY pages_search_filter \
                             WHERE pk BETWEEN ",
                        );
                    }
                    Some(w) => {
                        qb.push(", count(*) FROM pages_fts WHERE pages_fts MATCH ");
                        qb.push_bind(fts5_words([*w]));
                        qb.push(" AND rowid BETWEEN ");
                    }
                }
                qb.push_bind(*a);
                qb.push(" AND ");
                qb.push_bind(*b);
            }
        }
        qb.push(")");
        let rows: String = qb.build_query_scalar().fetch_one(&mut *tx).await?;
        let rows: Vec<(i64, i64)> = serde_json::from_str(&rows)?;
        let mut counts = vec![0u64; words.len() + 1];
        for (k, n) in rows {
            if let Some(c) = usize::try_from(k).ok().and_then(|k| counts.get_mut(k)) {
                *c += u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(counts[1..]
            .iter()
            .map(|&hits| search::estimate_df(hits, counts[0], total))
            .collect())
    }
}

/// `word` with its first letter in upper case (the form at the start of a sentence).
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// The stems of `words`, for marking their inflected forms in excerpts. FTS5's `porter`
/// tokenizer matches by Porter stems; the Snowball English stemmer (Porter's revision)
/// gives the same stem for the common inflections, and marking is only presentation.
fn stems(words: &[&str]) -> Vec<String> {
    let stemmer = rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English);
    words.iter().map(|w| stemmer.stem(w).into_owned()).collect()
}

/// Sampling for document frequencies: this many windows of this many rowids.
const SAMPLE_WINDOWS: i64 = 4;
const SAMPLE_SPAN: i64 = 250;

/// The window `offset .. offset + limit` of `keys` ordered by bm25 over `scored` (title 10,
/// body 1, attachment names 3, scope 0; lower is better), ties newest first: `(rowid,
/// score)`. One pass over the words' doclists between the smallest and the largest key.
async fn bm25_window(
    tx: &mut SqliteConnection,
    scored: &[&str],
    keys: &[i64],
    limit: u32,
    offset: u32,
) -> Result<Vec<(i64, f64)>, StoreError> {
    let (Some(&lo), Some(&hi)) = (keys.iter().min(), keys.iter().max()) else {
        return Ok(Vec::new());
    };
    // One row (see step 1): `[rowid, score]` pairs in order, the score as text with 17
    // significant digits (SQLite writes JSON reals with 15, which would merge near ties).
    let rows: String = sqlx::query_scalar(
        "SELECT json_group_array(json_array(rid, printf('%.17g', score)) \
         ORDER BY score, rid DESC) FROM (\
         SELECT rowid AS rid, bm25(pages_fts, 10.0, 1.0, 3.0, 0.0) AS score FROM pages_fts \
         WHERE pages_fts MATCH $1 AND rowid BETWEEN $2 AND $3 \
         AND +rowid IN (SELECT value FROM json_each($4)) \
         ORDER BY score, rowid DESC LIMIT $5 OFFSET $6)",
    )
    .bind(fts5_words(scored.iter().copied()))
    .bind(lo)
    .bind(hi)
    .bind(serde_json::to_string(keys)?)
    .bind(i64::from(limit))
    .bind(i64::from(offset))
    .fetch_one(&mut *tx)
    .await?;
    let rows: Vec<(i64, String)> = serde_json::from_str(&rows)?;
    rows.into_iter()
        .map(|(rid, score)| {
            let score = score
                .parse::<f64>()
                .map_err(|e| StoreError::Invalid(format!("bm25 score {score:?}: {e}")))?;
            Ok((rid, score))
        })
        .collect()
}

/// A scalar subquery counting, for the search page, how many of the newest `checked`
/// candidates of the CTE `c` pass the exact scope check: the count is exact when there are
/// at most [`search::COUNT_LIMIT`] matches, otherwise "more than" that (ARCHITECTURE.md,
/// S1: a count only counts what the viewer may read; the scope tokens that found them only
/// select). Checking every one of 1,000 candidates (when that was the bound) cost 2–4 ms a
/// query; the first `COUNT_LIMIT + 1` cost a tenth of that.
fn push_count_in_scope(qb: &mut QueryBuilder<Sqlite>, checked: usize, scope: &[&ScopeEntry]) {
    qb.push("SELECT count(*) FROM (SELECT rid FROM c ORDER BY rid DESC LIMIT ");
    qb.push_bind(checked as i64);
    // Through the covering index `pages_search_filter` (pk, space_id, effective_restricted,
    // id): the page rows, bodies and all, are never read; a row lookup per candidate cost
    // about 4 ms per 1,000 candidates.
    qb.push(") j CROSS JOIN pages p INDEXED BY pages_search_filter ON p.pk = j.rid WHERE true");
    push_exact_scope(qb, scope);
}

#[cfg(test)]
mod tests {
    use crate::model::*;
    use crate::search::SearchLimits;
    use crate::sqlite::SqliteStore;
    use crate::store::{MirrorRead, MirrorWrite};

    fn page(id: &str, space: &str, title: &str, body: &str) -> PageRecord {
        PageRecord {
            id: id.into(),
            space_id: space.into(),
            parent_id: None,
            position: 0,
            title: title.into(),
            version: 1,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            labels: vec![],
            restricted: false,
            effective_restricted: false,
            body_storage: String::new(),
            body_html: String::new(),
            body_text: body.into(),
            headings: vec![],
        }
    }

    fn space(id: &str) -> SpaceRecord {
        SpaceRecord {
            id: id.into(),
            key: format!("K{id}"),
            name: id.into(),
            homepage_id: None,
            ..Default::default()
        }
    }

    fn state(id: &str) -> SyncState {
        SyncState {
            space_key: format!("K{id}"),
            space_id: id.into(),
            watermark: None,
            last_full_sync: None,
            last_sync: None,
        }
    }

    async fn store(limits: SearchLimits) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open("sqlite://t.db", dir.path())
            .await
            .unwrap();
        store.limits = limits;
        (dir, store)
    }

    async fn sync(store: &SqliteStore, id: &str, pages: Vec<PageRecord>) {
        let mut sync = store
            .begin_space_sync(&space(id), SyncMode::Incremental)
            .await
            .unwrap();
        sync.upsert_pages(pages).await.unwrap();
        sync.commit(state(id)).await.unwrap();
    }

    /// Every hit of `q` for `scope`, page by page.
    async fn all_hits(store: &SqliteStore, q: &str, scope: &[ScopeEntry], per: u32) -> Vec<String> {
        let mut out = Vec::new();
        for offset in (0..).step_by(per as usize) {
            let res = store.search(q, scope, per, offset).await.unwrap();
            out.extend(res.hits.into_iter().map(|h| h.page_id));
            if !res.has_more {
                break;
            }
        }
        out
    }

    /// FTS5's own consistency check of both indexes against the `pages_search` view.
    async fn assert_index_consistent(store: &SqliteStore) {
        for t in ["pages_fts", "pages_title_fts"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {t}({t}, rank) VALUES ('integrity-check', 1)"
            )))
            .execute(&store.mirror)
            .await
            .unwrap_or_else(|e| panic!("{t}: {e}"));
        }
    }

    fn whole(space: &str) -> ScopeEntry {
        ScopeEntry {
            space_id: space.into(),
            labels: None,
        }
    }

    #[tokio::test]
    async fn excerpts_mark_inflected_forms_from_a_window_around_the_first_match() {
        let (_dir, store) = store(SearchLimits::default()).await;
        let lead = "filler ".repeat(100);
        let body = format!("{lead}We Configured the proxy. Later configurations differ.");
        sync(&store, "S1", vec![page("1", "S1", "Proxy", &body)]).await;
        let res = store
            .search("configure", &[whole("S1")], 10, 0)
            .await
            .unwrap();
        let excerpt = &res.hits[0].excerpt;
        let mark = |w: &str| format!("\u{E000}{w}\u{E001}");
        assert!(excerpt.contains(&mark("Configured")), "{excerpt:?}");
        assert!(excerpt.contains(&mark("configurations")), "{excerpt:?}");
        // The window starts shortly before the match, not at the top of the page.
        assert!(excerpt.len() < body.len() / 2, "{excerpt:?}");
        assert_eq!(
            super::stems(&["running", "configured"]),
            ["run", "configur"]
        );
        assert_eq!(super::capitalised("émigré"), "Émigré");
    }

    proptest::proptest! {
        /// Whatever a reader types, the stems and capitalised forms of its words are made
        /// without a panic (rust-stemmers runs on user text in every search).
        #[test]
        fn stems_of_any_query_words(q in "\\PC{0,80}") {
            if let Some(terms) = crate::fts::Terms::parse(&q) {
                let words = terms.distinct();
                proptest::prop_assert_eq!(super::stems(&words).len(), words.len());
                for w in &words {
                    let _ = super::capitalised(w);
                }
            }
        }
    }

    #[tokio::test]
    async fn bounded_search_ranks_title_matches_then_the_newest_candidates() {
        let (_dir, store) = store(SearchLimits {
            candidates: 5,
            title_candidates: 2,
            score_budget: u64::MAX,
        })
        .await;
        // p00 … p19, oldest first; every page mentions kiwi, p01 and p03 in the title.
        let pages = (0..20)
            .map(|i| {
                let title = match i {
                    1 => "Kiwi".to_string(),
                    3 => "Kiwi farming guide".to_string(),
                    _ => format!("Page {i}"),
                };
                let body = if i == 17 {
                    "kiwi kiwi kiwi"
                } else {
                    "about kiwi and more"
                };
                page(&format!("p{i:02}"), "S", &title, body)
            })
            .collect();
        sync(&store, "S", pages).await;
        let hits = all_hits(&store, "kiwi", &[whole("S")], 3).await;
        // Title tier (shortest title first), then the 5 newest by bm25 (p17 says it thrice).
        assert_eq!(hits, ["p01", "p03", "p17", "p19", "p18", "p16", "p15"]);
        let res = store.search("kiwi", &[whole("S")], 10, 0).await.unwrap();
        assert!(res.hits.windows(2).all(|w| w[0].rank > w[1].rank));
        assert!(!res.has_more);
        // Past the end: nothing.
        let res = store.search("kiwi", &[whole("S")], 10, 7).await.unwrap();
        assert!(res.hits.is_empty() && !res.has_more);

        // Unscored (no budget): the other candidates newest first.
        let mut store = store;
        store.limits.score_budget = 0;
        let hits = all_hits(&store, "kiwi", &[whole("S")], 4).await;
        assert_eq!(hits, ["p01", "p03", "p19", "p18", "p17", "p16", "p15"]);
        // A small match set with an unscorable word: still every match, title tier first.
        let hits = all_hits(&store, "kiwi farming", &[whole("S")], 4).await;
        assert_eq!(hits, ["p03"]);
    }

    #[tokio::test]
    async fn bounded_search_stays_inside_the_scope() {
        let (_dir, store) = store(SearchLimits {
            candidates: 4,
            title_candidates: 2,
            score_budget: u64::MAX,
        })
        .await;
        let mut big = Vec::new();
        for i in 0..30 {
            let mut p = page(&format!("b{i:02}"), "BIG", "Kiwi notes", "kiwi");
            p.labels = if i % 3 == 0 {
                vec!["faq".into()]
            } else {
                vec![]
            };
            p.restricted = i % 5 == 0;
            p.effective_restricted = i % 5 == 0;
            big.push(p);
        }
        sync(&store, "BIG", big).await;
        sync(
            &store,
            "SMALL",
            vec![
                page("s1", "SMALL", "Other", "kiwi"),
                page("s2", "SMALL", "Kiwi", "x"),
            ],
        )
        .await;
        // Newer big-space pages would fill any window taken before the scope check.
        sync(&store, "BIG", vec![page("b99", "BIG", "Kiwi", "kiwi")]).await;
        let hits = all_hits(&store, "kiwi", &[whole("SMALL")], 1).await;
        assert_eq!(hits, ["s2", "s1"]);
        let faq = ScopeEntry {
            space_id: "BIG".into(),
            labels: Some(vec!["faq".into()]),
        };
        let hits = all_hits(&store, "kiwi", std::slice::from_ref(&faq), 2).await;
        // Labelled and unrestricted: b03, b06, b09, b12, b18, b21, b24, b27 (b00, b15 are
        // restricted). The four newest are the candidates, the two newest of them (all
        // titled "Kiwi notes") also the title tier.
        assert_eq!(hits, ["b27", "b24", "b21", "b18"]);
        for h in all_hits(&store, "kiwi", &[whole("BIG")], 3).await {
            let n: u32 = h[1..].parse().unwrap();
            assert!(
                n == 99 || !n.is_multiple_of(5),
                "restricted page {h} returned"
            );
        }
    }

    /// A page whose index entry carries a scope token its rows do not back (a stale or
    /// forged token) is a candidate, but neither a hit nor counted: the exact check of the
    /// count (in the candidates' statement) and of the hits runs on the page rows.
    #[tokio::test]
    async fn a_stale_scope_token_neither_shows_nor_counts_a_page() {
        // Complete (both candidates checked), and bounded (the newest one, "other", is the
        // one checked: a lower bound of 0).
        for (candidates, total) in [(1000, MatchCount::Exact(1)), (1, MatchCount::AtLeast(0))] {
            let (_dir, store) = store(SearchLimits {
                candidates,
                title_candidates: 10,
                score_budget: u64::MAX,
            })
            .await;
            let mut faq = page("faq", "S", "Kiwi", "kiwi");
            faq.labels = vec!["faq".into()];
            sync(
                &store,
                "S",
                vec![faq, page("other", "S", "Kiwi too", "kiwi")],
            )
            .await;
            // "other" gets the faq token in the index, without the label (page_labels).
            let forged = crate::scope::page_scope_tokens("S", &["faq".to_string()]);
            sqlx::query("UPDATE pages SET scope_tokens = $1 WHERE id = 'other'")
                .bind(forged)
                .execute(&store.mirror)
                .await
                .unwrap();
            let scope = [ScopeEntry {
                space_id: "S".into(),
                labels: Some(vec!["faq".into()]),
            }];
            let res = store.search("kiwi", &scope, 10, 0).await.unwrap();
            let ids: Vec<&str> = res.hits.iter().map(|h| h.page_id.as_str()).collect();
            assert_eq!(ids, ["faq"], "candidates {candidates}");
            assert_eq!(res.total, total, "candidates {candidates}");
        }
    }

    /// The page total is counted once per mirror change and counted again after one.
    #[tokio::test]
    async fn the_page_total_and_word_frequencies_follow_the_mirror() {
        let (_dir, store) = store(SearchLimits {
            candidates: 100,
            title_candidates: 10,
            score_budget: 30,
        })
        .await;
        let pages = |from: usize, to: usize| -> Vec<PageRecord> {
            (from..to)
                .map(|i| page(&format!("p{i:02}"), "S", "Untitled", "common"))
                .collect()
        };
        sync(&store, "S", pages(0, 40)).await;
        let stamp = || async {
            sqlx::query_scalar::<_, i64>("SELECT n FROM mirror_changes")
                .fetch_one(&store.mirror)
                .await
                .unwrap()
        };
        let cold = store.search("common", &[whole("S")], 5, 0).await.unwrap();
        let first = stamp().await;
        assert_eq!(store.search_stats.total(first), Some(40));
        // The word's sampled frequency is remembered for the stamp, and a search that uses
        // it answers as the one that sampled it.
        assert_eq!(store.search_stats.df(first, "common"), Some(40));
        let warm = store.search("common", &[whole("S")], 5, 0).await.unwrap();
        assert_eq!(cold, warm);
        sync(&store, "S", pages(40, 45)).await;
        let second = stamp().await;
        assert_ne!(first, second);
        assert_eq!(store.search_stats.total(second), None);
        assert_eq!(store.search_stats.df(second, "common"), None);
        store.search("common", &[whole("S")], 5, 0).await.unwrap();
        assert_eq!(store.search_stats.total(second), Some(45));
        assert_eq!(store.search_stats.df(second, "common"), Some(45));
    }

    #[tokio::test]
    async fn words_are_scored_from_the_rarest_within_the_budget() {
        // 40 pages > budget 30: document frequencies are estimated by sampling.
        let (_dir, store) = store(SearchLimits {
            candidates: 100,
            title_candidates: 10,
            score_budget: 30,
        })
        .await;
        let pages = (0..40)
            .map(|i| {
                let body = match i {
                    7 => "common rare rare rare",
                    30 => "common rare",
                    _ => "common filler",
                };
                page(&format!("p{i:02}"), "S", "Untitled", body)
            })
            .collect();
        sync(&store, "S", pages).await;
        let words = ["common", "rare"];
        let mut tx = store.mirror.begin().await.unwrap();
        let (lo, hi): (i64, i64) = sqlx::query_as("SELECT min(pk), max(pk) FROM pages")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let scored = store
            .scored_words(&mut tx, &words, None, lo, hi)
            .await
            .unwrap();
        drop(tx);
        assert_eq!(scored, ["rare"]);
        // "common" alone cannot be scored: newest first.
        let hits = all_hits(&store, "common", &[whole("S")], 50).await;
        assert_eq!(hits.len(), 40);
        assert_eq!(hits[0], "p39");
        // Both: scored by "rare" (p07 has it three times).
        assert_eq!(
            all_hits(&store, "common rare", &[whole("S")], 50).await,
            ["p07", "p30"]
        );
    }

    #[tokio::test]
    async fn the_index_follows_every_kind_of_write() {
        let (_dir, store) = store(SearchLimits::default()).await;
        let mut a = page("a", "S1", "Alpha kiwi", "kiwi body");
        a.labels = vec!["faq".into(), "faqs".into()];
        sync(
            &store,
            "S1",
            vec![a.clone(), page("b", "S1", "Beta", "kiwi")],
        )
        .await;
        let faq = |space: &str| ScopeEntry {
            space_id: space.into(),
            labels: Some(vec!["faq".into()]),
        };
        assert_eq!(all_hits(&store, "kiwi", &[faq("S1")], 10).await, ["a"]);
        assert_index_consistent(&store).await;

        // Relabel: the label scope follows.
        a.labels = vec!["faqs".into()];
        sync(&store, "S1", vec![a.clone()]).await;
        assert!(all_hits(&store, "kiwi", &[faq("S1")], 10).await.is_empty());
        assert_index_consistent(&store).await;

        // Restrict, then recompute from the hierarchy, then lift.
        let mut sync1 = store
            .begin_space_sync(&space("S1"), SyncMode::Incremental)
            .await
            .unwrap();
        assert!(sync1.set_restrictions("b", true, true).await.unwrap());
        sync1.commit(state("S1")).await.unwrap();
        assert_eq!(all_hits(&store, "kiwi", &[whole("S1")], 10).await, ["a"]);
        let mut sync1 = store
            .begin_space_sync(&space("S1"), SyncMode::Incremental)
            .await
            .unwrap();
        assert!(sync1.set_restrictions("b", false, true).await.unwrap());
        assert_eq!(sync1.recompute_effective_restricted().await.unwrap(), 1);
        sync1.commit(state("S1")).await.unwrap();
        let mut hits = all_hits(&store, "kiwi", &[whole("S1")], 10).await;
        hits.sort();
        assert_eq!(hits, ["a", "b"]);
        assert_index_consistent(&store).await;

        // Attachment names: indexed, renamed, removed.
        let mut sync1 = store
            .begin_space_sync(&space("S1"), SyncMode::Incremental)
            .await
            .unwrap();
        sync1
            .upsert_attachment(AttachmentRecord {
                id: "att".into(),
                page_id: "b".into(),
                title: "quarterly.pdf".into(),
                media_type: "application/pdf".into(),
                file_size: 1,
                version: 1,
                updated_at: chrono::Utc::now(),
                blob: None,
            })
            .await
            .unwrap();
        sync1.commit(state("S1")).await.unwrap();
        assert_eq!(
            all_hits(&store, "quarterly", &[whole("S1")], 10).await,
            ["b"]
        );
        assert_index_consistent(&store).await;

        // The page moves to another space: scope tokens follow.
        let mut moved = a.clone();
        moved.space_id = "S2".into();
        sync(&store, "S2", vec![moved]).await;
        assert_eq!(all_hits(&store, "alpha", &[whole("S2")], 10).await, ["a"]);
        assert!(
            all_hits(&store, "alpha", &[whole("S1")], 10)
                .await
                .is_empty()
        );
        assert_index_consistent(&store).await;

        // Deletions and a full sync's sweep.
        let mut sync1 = store
            .begin_space_sync(&space("S1"), SyncMode::Full)
            .await
            .unwrap();
        sync1
            .upsert_pages(vec![page("c", "S1", "Gamma", "kiwi")])
            .await
            .unwrap();
        sync1.commit(state("S1")).await.unwrap();
        // "a" has the word in its title.
        assert_eq!(
            all_hits(&store, "kiwi", &[whole("S1"), whole("S2")], 10).await,
            ["a", "c"]
        );
        assert!(store.delete_space("S2").await.unwrap());
        assert_eq!(
            all_hits(&store, "kiwi", &[whole("S1"), whole("S2")], 10).await,
            ["c"]
        );
        assert_index_consistent(&store).await;
    }

    #[tokio::test]
    async fn scope_tokens_reach_the_index_unstemmed() {
        let (_dir, store) = store(SearchLimits::default()).await;
        // Labels whose hex, or whose text, ends like an English suffix the porter stemmer
        // strips ("…E" is a hex digit; "\u{e}" is `0E`), and space ids likewise.
        let labels: Vec<String> = [
            "e", "ed", "s", "ies", "ing", "ational", "ll", "y", "\u{e}", "\u{ee}d",
        ]
        .iter()
        .map(|l| l.to_string())
        .collect();
        let mut pages = Vec::new();
        for (i, space) in ["SE", "running", "ED"].into_iter().enumerate() {
            let mut p = page(&format!("p{i}"), space, "Title", "body");
            p.labels = labels.clone();
            sync(&store, space, vec![p.clone()]).await;
            pages.push(p);
        }
        let mut expected: Vec<String> = pages
            .iter()
            .flat_map(|p| {
                crate::scope::page_scope_tokens(&p.space_id, &p.labels)
                    .split(' ')
                    .map(str::to_lowercase)
                    .collect::<Vec<_>>()
            })
            .collect();
        expected.sort();
        expected.dedup();
        let mut conn = store.mirror.acquire().await.unwrap();
        for t in ["pages_fts", "pages_title_fts"] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS temp.v; \
                 CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, {t}, 'row')"
            )))
            .execute(&mut *conn)
            .await
            .unwrap();
            let mut got: Vec<String> = sqlx::query_scalar(
                "SELECT term FROM temp.v WHERE substr(term, 1, 1) = char(57344) ORDER BY term",
            )
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            got.sort();
            assert_eq!(got, expected, "{t}");
        }
        sqlx::raw_sql("DROP TABLE temp.v")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}
