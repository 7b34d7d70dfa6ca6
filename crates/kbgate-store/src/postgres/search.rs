//! PostgreSQL search: the newest matches by `seq`, range by range; `ts_rank`; excerpts cut
//! in Rust (see [`crate::search`] for the plan and the crate docs for the trade-offs).

use std::collections::HashMap;

use sqlx::{Postgres, QueryBuilder, Row};

use crate::StoreError;
use crate::excerpt::{self, Marker};
use crate::fts::Terms;
use crate::model::{MatchCount, ScopeEntry, SearchHit, SearchResults};
use crate::scope::viewer_tokens;
use crate::search::{self, TitleHit};
use crate::sql::{SqlStore, push_exact_scope};

impl SqlStore<Postgres> {
    /// Search (see [`crate::search`] for the plan and the crate docs for the trade-offs):
    /// the newest `candidates + 1` matches in scope (see [`newest_matches`]); all of them
    /// ranked by `ts_rank` when there are at most `candidates`, else the title tier and the
    /// candidates. All steps read one snapshot.
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
        // Scope tokens are hex, `x`, a kind letter and U+E000: safe inside quotes.
        let scope_query = tokens
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(" | ");
        let tsquery = terms.tsquery();
        let words = terms.distinct();
        let lim = self.limits;
        let mut tx = self.mirror.begin().await?;
        // One round trip: whether the query has a word that is not a stop word (`&&` with
        // an empty query would match the whole scope), the query's lexemes (to mark
        // excerpts), and the `seq` bounds every candidate search starts from.
        let (nodes, stems, lowest, highest): (i32, Vec<String>, Option<i64>, Option<i64>) =
            sqlx::query_as(
                "SELECT numnode(to_tsquery('english'::regconfig, $1))::int4, \
                 array(SELECT lexeme FROM unnest(to_tsvector('english'::regconfig, $2))), \
                 (SELECT min(seq) FROM pages), (SELECT max(seq) FROM pages)",
            )
            .bind(&tsquery)
            .bind(words.join(" "))
            .fetch_one(&mut *tx)
            .await?;
        let (Some(lowest), Some(highest)) = (lowest, highest) else {
            return Ok(SearchResults::default());
        };
        if nodes == 0 {
            return Ok(SearchResults::default());
        }
        let bounds = SeqBounds {
            lowest,
            floor: (highest - PROBE_SPAN + 1).max(lowest),
        };
        let mut cands = newest_matches(
            &mut tx,
            CONTENT,
            &tsquery,
            &scope_query,
            bounds,
            lim.candidates + 1,
        )
        .await?;
        if cands.is_empty() {
            return Ok(SearchResults::default());
        }
        let complete = cands.len() <= lim.candidates;
        cands.truncate(lim.candidates);
        let ids: Vec<String> = cands.into_iter().map(|m| m.id).collect();
        let total = count_in_scope(&mut tx, &ids, scope, complete).await?;

        let (page, has_more): (Vec<(String, f64)>, bool) = if complete {
            // Exact: ts_rank over every match.
            let page = rank_window(&mut tx, &tsquery, &ids, limit, offset).await?;
            (page, ids.len() > offset as usize + limit as usize)
        } else {
            // Bounded: pages with every word in the title, then the candidates.
            let title = newest_matches(
                &mut tx,
                TITLE,
                &tsquery,
                &scope_query,
                bounds,
                lim.title_candidates,
            )
            .await?
            .into_iter()
            .map(|m| TitleHit {
                key: m.id,
                recency: m.seq,
                title_len: m.title_len,
            })
            .collect();
            let (tier1, tier2) = search::tiers(title, &ids);
            let split = search::split(tier1.len(), tier2.len(), limit, offset);
            let mut keys: Vec<String> = tier1[split.tier1.clone()].to_vec();
            if split.tier2_limit > 0 {
                let rows = rank_window(
                    &mut tx,
                    &tsquery,
                    &tier2,
                    split.tier2_limit as u32,
                    split.tier2_offset as u32,
                )
                .await?;
                keys.extend(rows.into_iter().map(|(k, _)| k));
            }
            (search::ranked_by_position(keys, &split), split.has_more)
        };

        let marker = Marker::new(&words, stems);
        let hits = hits(&mut tx, &words, &marker, scope, &page).await?;
        tx.commit().await?;
        Ok(SearchResults {
            hits,
            has_more,
            total,
        })
    }
}

/// The window `offset .. offset + limit` of the pages `ids` by `ts_rank` (higher first),
/// ties newest first: `(id, rank)`. Page by page through the primary key: with
/// `p.id = ANY(…)` the planner preferred a plan 2–3 times slower.
async fn rank_window(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    tsquery: &str,
    ids: &[String],
    limit: u32,
    offset: u32,
) -> Result<Vec<(String, f64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT p.id, ts_rank(p.search_vec, to_tsquery('english'::regconfig, $1))::float8 \
         AS rank FROM unnest($2::text[]) AS w(id) JOIN pages p ON p.id = w.id \
         ORDER BY rank DESC, p.seq DESC, p.id LIMIT $3 OFFSET $4",
    )
    .bind(tsquery)
    .bind(ids)
    .bind(i64::from(limit))
    .bind(i64::from(offset))
    .fetch_all(&mut **tx)
    .await?)
}

/// Titles and excerpts of `page` (`(id, rank)`, in order). A row that fails the exact
/// scope check is left out.
async fn hits(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    words: &[&str],
    marker: &Marker,
    scope: &[&ScopeEntry],
    page: &[(String, f64)],
) -> Result<Vec<SearchHit>, StoreError> {
    if page.is_empty() {
        return Ok(Vec::new());
    }
    // The excerpt window starts `WINDOW_LEAD` characters before the first occurrence of a
    // query word, in lower case or capitalised (at the start of the body when only another
    // form occurs; `lower()` of every body cost ≈ 50 µs a page); one character more than
    // the window tells whether the text goes on.
    let mut qb = QueryBuilder::<Postgres>::new(
        "SELECT p.id, p.space_id, p.title, s.start, substr(b.body, s.start::int4, ",
    );
    qb.push_bind(excerpt::WINDOW as i32 + 1);
    qb.push(") AS win FROM unnest(");
    // Page by page through the primary key (with `p.id = ANY(…)` the planner may prefer
    // to intersect bitmaps of whole spaces).
    qb.push_bind(page.iter().map(|p| p.0.clone()).collect::<Vec<String>>());
    qb.push(
        "::text[]) AS w(id) JOIN pages p ON p.id = w.id \
         CROSS JOIN LATERAL (SELECT p.body_text || '' AS body OFFSET 0) b \
         CROSS JOIN LATERAL (SELECT greatest(1, coalesce((SELECT \
         min(least(nullif(strpos(b.body, x), 0), nullif(strpos(b.body, initcap(x)), 0))) \
         FROM unnest(",
    );
    qb.push_bind(
        words
            .iter()
            .map(|w| (*w).to_owned())
            .collect::<Vec<String>>(),
    );
    // OFFSET 0: the body is read from TOAST once per page (`b`, not once per use), and
    // `start` computed once.
    qb.push("::text[]) x), 1) - ");
    qb.push_bind(excerpt::WINDOW_LEAD as i32);
    qb.push(")::int8 AS start OFFSET 0) s WHERE true");
    push_exact_scope(&mut qb, scope);
    let rows = qb.build().persistent(false).fetch_all(&mut **tx).await?;
    let mut by_id: HashMap<String, SearchHit> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let id: String = r.try_get("id")?;
        let start: i64 = r.try_get("start")?;
        by_id.insert(
            id.clone(),
            SearchHit {
                page_id: id,
                space_id: r.try_get("space_id")?,
                title: r.try_get("title")?,
                excerpt: excerpt::from_window(r.try_get("win")?, start, marker),
                rank: 0.0,
            },
        );
    }
    Ok(crate::search::in_rank_order(page, by_id))
}

/// A match found by [`newest_matches`].
struct Match {
    id: String,
    seq: i64,
    title_len: i64,
}

/// The `seq` range candidate searches walk: the lowest `seq`, and where the probe of the
/// newest `PROBE_SPAN` values of `seq` stops.
#[derive(Clone, Copy)]
struct SeqBounds {
    lowest: i64,
    floor: i64,
}

/// Values of `seq` (pages, less those deleted since) probed first, to estimate how dense
/// the matches are. A span of `seq` rather than a count of pages: its lower end comes
/// from `max(seq)` (an index endpoint), where finding the 400th newest page read 400
/// index entries and their rows.
const PROBE_SPAN: i64 = 400;
/// Where to look for matches: the column, and from which share of matching pages on
/// walking `seq` downwards and testing each page beats the GIN index (which reads the
/// words' and the scope lexemes' whole posting lists, ≈ 5–20 ms on 100,000 pages).
#[derive(Clone, Copy)]
struct Target {
    column: &'static str,
    dense: f64,
}

/// The full vector: a few KB, kept in the heap row (migration 0004); testing a page
/// costs ≈ 1.5–3 µs (≈ 5 µs when it was TOASTed).
const CONTENT: Target = Target {
    column: "search_vec",
    dense: 0.08,
};
/// The title vector: small and stored inline (≈ 1.5 µs a page).
const TITLE: Target = Target {
    column: "title_vec",
    dense: 0.02,
};

/// The newest `want` pages (by `seq`) whose vector (`target`) matches `tsquery` (text for
/// `to_tsquery`) and the scope lexemes, newest first.
///
/// A probe tests the `PROBE_SPAN` newest pages one by one. Below them, range by range:
/// where matches are dense, a backward walk of the `seq` index testing each page; where
/// they are sparse, a bitmap of the GIN index and the `seq` range, sized from the density
/// seen so far to hold what is missing (and grown fourfold while short). The planner is
/// steered with `enable_bitmapscan` / `enable_indexscan` for the transaction, since its
/// cost model does not know what testing a (multi-KB) vector costs.
async fn newest_matches(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    target: Target,
    tsquery: &str,
    scope_query: &str,
    bounds: SeqBounds,
    want: usize,
) -> Result<Vec<Match>, StoreError> {
    let m = format!(
        "p.{} @@ (to_tsquery('english'::regconfig, $1) && $2::tsquery)",
        target.column
    );
    let cols = "p.id, p.seq, length(p.title)::int8";
    let SeqBounds { lowest, floor } = bounds;
    let probe: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {cols} FROM pages p WHERE p.seq >= $3 AND {m} ORDER BY p.seq DESC, p.id LIMIT $4"
    )))
    .bind(tsquery)
    .bind(scope_query)
    .bind(floor)
    .bind(want as i64)
    .persistent(false)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = probe;
    // Matches per seq value so far, and the range still to search: seq < upper.
    let mut density = out.len() as f64 / PROBE_SPAN as f64;
    let mut upper = floor;
    let mut span_factor = 2.0;
    while out.len() < want && upper > lowest {
        let need = want - out.len();
        let dense = density >= target.dense;
        let span = (span_factor * need as f64 / density.max(0.5 / PROBE_SPAN as f64)).ceil();
        let lower = upper
            .saturating_sub(span.min(i64::MAX as f64) as i64)
            .max(lowest);
        sqlx::query("SELECT set_config('enable_bitmapscan', $1, true), set_config('enable_indexscan', $2, true)")
            .bind(if dense { "off" } else { "on" })
            .bind(if dense { "on" } else { "off" })
            .execute(&mut **tx)
            .await?;
        let got: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {cols} FROM pages p WHERE p.seq < $3 AND p.seq >= $4 AND {m} \
             ORDER BY p.seq DESC, p.id LIMIT $5"
        )))
        .bind(tsquery)
        .bind(scope_query)
        .bind(upper)
        .bind(lower)
        .bind(need as i64)
        .persistent(false)
        .fetch_all(&mut **tx)
        .await?;
        density = got.len().max(1) as f64 / (upper - lower).max(1) as f64;
        out.extend(got);
        upper = lower;
        span_factor = 4.0;
    }
    sqlx::query("SELECT set_config('enable_bitmapscan', 'on', true), set_config('enable_indexscan', 'on', true)")
        .execute(&mut **tx)
        .await?;
    Ok(out
        .into_iter()
        .map(|(id, seq, title_len)| Match { id, seq, title_len })
        .collect())
}

/// How many matches there are, as the search page says it: exactly up to
/// [`search::COUNT_LIMIT`], otherwise "more than" that; each counted candidate passes the
/// exact scope check (ARCHITECTURE.md, S1: the scope lexemes that found them only select).
/// `complete`: `ids` are every match.
async fn count_in_scope(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    ids: &[String],
    scope: &[&ScopeEntry],
    complete: bool,
) -> Result<MatchCount, StoreError> {
    let checked = &ids[..ids.len().min(search::COUNT_LIMIT + 1)];
    // Through unnest, as the rank window does (an `id = ANY` plan was 2-3x slower there).
    let mut qb = QueryBuilder::<Postgres>::new("SELECT count(*) FROM unnest(");
    qb.push_bind(checked.to_vec());
    qb.push("::text[]) AS c(id) JOIN pages p ON p.id = c.id WHERE true");
    push_exact_scope(&mut qb, scope);
    let n: i64 = qb.build_query_scalar().fetch_one(&mut **tx).await?;
    Ok(search::match_count(
        n,
        complete && ids.len() <= search::COUNT_LIMIT,
    ))
}
