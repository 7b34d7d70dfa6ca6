//! `/admin/insights`: what readers did, per email domain, over a period — page views, unique
//! readers, top pages, searches, zero-result searches, "Was this helpful?" votes and their
//! comments — and the same as CSV (`/admin/insights.csv`, audited like the audit log's
//! export).
//!
//! Periods are whole days in UTC: a preset (the last 7, 30 or 90 days, today included) or a
//! `from`/`to` pair (both inclusive). Titles are the pages' current titles in the mirror, as
//! everywhere in the console; a page no longer mirrored is named by its id only.

use std::collections::HashMap;
use std::fmt::Write as _;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Days, NaiveDate, Utc};
use kbgate_policy::Domain;
use kbgate_store::{DomainInsights, FeedbackFilter, FeedbackRecord, InsightsQuery};
use serde::Deserialize;

use super::handlers::{AdminChrome, chrome, csv_field};
use super::{AdminUser, routes};
use crate::error::Error;
use crate::pages::render;
use crate::state::AppState;

/// The preset periods, in days ending today.
const PRESETS: [u64; 3] = [7, 30, 90];
/// The period without any choice.
const DEFAULT_DAYS: u64 = 30;
/// The longest period, in days: the longest retention (`[insights] retention_days`), plus
/// leap days.
const MAX_DAYS: u64 = 3653;
/// Top pages and zero-result queries the page lists.
const TOP: u32 = 20;
/// … and the CSV, per domain.
const CSV_TOP: u32 = 100;
/// Feedback comments the page shows, newest first (the CSV has every vote).
const COMMENTS: usize = 100;

/// The query of both routes, as typed.
#[derive(Deserialize, Default)]
pub(crate) struct InsightsParams {
    days: Option<String>,
    from: Option<String>,
    to: Option<String>,
    domain: Option<String>,
}

/// A validated choice: whole days (UTC, both inclusive) and an optional domain.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Period {
    from: NaiveDate,
    to: NaiveDate,
    /// The preset it is, if chosen as one.
    preset: Option<u64>,
    domain: Option<Domain>,
}

fn bad(m: &'static str) -> Error {
    Error::BadRequest(m)
}

impl Period {
    /// Dates win over a preset; neither: the last [`DEFAULT_DAYS`] days. A missing `from`
    /// is 30 days before `to`; a missing `to` is today.
    fn parse(p: &InsightsParams, today: NaiveDate) -> Result<Period, Error> {
        let text = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let day = |s: Option<String>| -> Result<Option<NaiveDate>, Error> {
            s.map(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d"))
                .transpose()
                .map_err(|_| bad("dates are YYYY-MM-DD"))
        };
        let domain = text(&p.domain)
            .map(|d| Domain::parse(&d).map_err(|_| bad("that is not a valid domain")))
            .transpose()?;
        let (from, to) = (day(text(&p.from))?, day(text(&p.to))?);
        if from.is_some() || to.is_some() {
            let to = to.unwrap_or(today);
            let from = match from {
                Some(f) => f,
                None => to
                    .checked_sub_days(Days::new(DEFAULT_DAYS - 1))
                    .ok_or(bad("that date is out of range"))?,
            };
            if from > to {
                return Err(bad("the period starts after it ends"));
            }
            if (to - from).num_days() >= MAX_DAYS as i64 {
                return Err(bad("the period is longer than ten years"));
            }
            return Ok(Period {
                from,
                to,
                preset: None,
                domain,
            });
        }
        let days = match text(&p.days) {
            None => DEFAULT_DAYS,
            Some(d) => d
                .parse::<u64>()
                .ok()
                .filter(|d| PRESETS.contains(d))
                .ok_or(bad("the period is 7, 30 or 90 days, or from and to dates"))?,
        };
        Ok(Period {
            from: today
                .checked_sub_days(Days::new(days - 1))
                .ok_or(bad("that date is out of range"))?,
            to: today,
            preset: Some(days),
            domain,
        })
    }

    /// The first instant of the period and the first one after it.
    fn bounds(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let start = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        (start(self.from), self.to.succ_opt().and_then(start))
    }

    fn domain(&self) -> Option<String> {
        self.domain.as_ref().map(|d| d.as_str().to_owned())
    }

    fn query(&self, top: u32) -> InsightsQuery {
        let (since, until) = self.bounds();
        InsightsQuery {
            since,
            until,
            domain: self.domain(),
            top,
        }
    }

    fn feedback(&self) -> FeedbackFilter {
        let (since, until) = self.bounds();
        FeedbackFilter {
            since,
            until,
            domain: self.domain(),
        }
    }

    /// This choice as a query string (`?days=30&domain=…`), with `domain` replaced when
    /// given (`Some("")`: none).
    fn href(&self, base: &str, preset: Option<u64>, domain: Option<&str>) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        match preset.or(self.preset) {
            Some(d) => pairs.push(("days", d.to_string())),
            None => {
                pairs.push(("from", self.from.to_string()));
                pairs.push(("to", self.to.to_string()));
            }
        }
        let domain = domain.or(self.domain.as_ref().map(Domain::as_str));
        if let Some(d) = domain.filter(|d| !d.is_empty()) {
            pairs.push(("domain", d.to_owned()));
        }
        // `base` is a route: the path prefix goes on here.
        format!(
            "{}?{}",
            crate::urls::to(base),
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

/// A page as the insights show it: its current title, or its id when no longer mirrored.
fn title_of(titles: &HashMap<String, String>, id: &str) -> String {
    titles
        .get(id)
        .cloned()
        .unwrap_or_else(|| format!("Page {id} (no longer mirrored)"))
}

struct PresetLink {
    days: u64,
    href: String,
    current: bool,
}

struct DomainRow {
    row: DomainInsights,
    href: String,
}

struct TopPage {
    id: String,
    title: String,
    space: String,
    views: u64,
    explain: String,
}

struct Comment {
    day: String,
    domain: String,
    title: String,
    helpful: bool,
    comment: String,
}

#[derive(Template)]
#[template(path = "admin/insights.html")]
struct InsightsPage {
    chrome: AdminChrome,
    from: String,
    to: String,
    domain: String,
    presets: Vec<PresetLink>,
    all_domains: Option<String>,
    csv: String,
    total: kbgate_store::InsightsSummary,
    domains: Vec<DomainRow>,
    top_pages: Vec<TopPage>,
    comments: Vec<Comment>,
}

/// `GET /admin/insights?days=|from=&to=&domain=`: the numbers per domain and the details.
pub(crate) async fn insights_page(
    State(state): State<AppState>,
    u: AdminUser,
    Query(q): Query<InsightsParams>,
) -> Result<Response, Error> {
    let period = Period::parse(&q, Utc::now().date_naive())?;
    let desk = state.desk();
    let (total, per_domain) = desk.insights(&u.admin, &period.query(TOP)).await?;
    let mut votes = desk.feedback(&u.admin, &period.feedback()).await?;
    votes.retain(|v| v.comment.as_deref().is_some_and(|c| !c.trim().is_empty()));
    votes.reverse();
    votes.truncate(COMMENTS);
    let mut ids: Vec<String> = total.top_pages.iter().map(|p| p.0.clone()).collect();
    ids.extend(votes.iter().map(|v| v.page_id.clone()));
    ids.sort();
    ids.dedup();
    let titles = desk.titles(&u.admin, &ids).await?;
    let page = InsightsPage {
        chrome: chrome(&state, &u),
        from: period.from.to_string(),
        to: period.to.to_string(),
        domain: period.domain().unwrap_or_default(),
        presets: PRESETS
            .iter()
            .map(|&days| PresetLink {
                days,
                href: period.href(routes::INSIGHTS, Some(days), None),
                current: period.preset == Some(days),
            })
            .collect(),
        all_domains: period
            .domain
            .is_some()
            .then(|| period.href(routes::INSIGHTS, None, Some(""))),
        csv: period.href(routes::INSIGHTS_CSV, None, None),
        domains: per_domain
            .into_iter()
            .map(|row| DomainRow {
                href: period.href(routes::INSIGHTS, None, Some(&row.domain)),
                row,
            })
            .collect(),
        top_pages: total
            .top_pages
            .iter()
            .map(|(id, space, views)| TopPage {
                title: title_of(&titles, id),
                explain: format!(
                    "{}?{}",
                    crate::urls::to(routes::EXPLAIN),
                    serde_urlencoded::to_string([("page", id)]).unwrap_or_default()
                ),
                id: id.clone(),
                space: space.clone(),
                views: *views,
            })
            .collect(),
        comments: votes
            .into_iter()
            .map(|v| Comment {
                day: v.at.format("%Y-%m-%d").to_string(),
                title: title_of(&titles, &v.page_id),
                domain: v.domain,
                helpful: v.helpful,
                comment: v.comment.unwrap_or_default(),
            })
            .collect(),
        total,
    };
    Ok(render(&page)?.into_response())
}

/// One CSV line of the export (fields quoted and defused by [`csv_field`]).
#[allow(clippy::too_many_arguments)]
fn csv_line(
    out: &mut String,
    period: &Period,
    domain: &str,
    kind: &str,
    key: &str,
    title: &str,
    value: &str,
    at: &str,
    comment: &str,
) {
    let fields = [
        period.from.to_string(),
        period.to.to_string(),
        domain.to_owned(),
        kind.to_owned(),
        key.to_owned(),
        title.to_owned(),
        value.to_owned(),
        at.to_owned(),
        comment.to_owned(),
    ];
    let line: Vec<String> = fields.iter().map(String::as_str).map(csv_field).collect();
    let _ = write!(out, "{}\r\n", line.join(","));
}

/// The export's header line: one row per number, top page, zero-result query and vote.
const CSV_HEADER: &str = "from,to,domain,kind,key,title,value,at,comment\r\n";

/// `GET /admin/insights.csv`: the same choice as CSV, per domain: its numbers, top pages and
/// zero-result queries (up to 100 each), then every vote of the period. Audited.
pub(crate) async fn insights_csv(
    State(state): State<AppState>,
    u: AdminUser,
    Query(q): Query<InsightsParams>,
) -> Result<Response, Error> {
    let period = Period::parse(&q, Utc::now().date_naive())?;
    let desk = state.desk();
    let (_, mut per_domain) = desk.insights(&u.admin, &period.query(0)).await?;
    if per_domain.is_empty()
        && let Some(d) = period.domain()
    {
        // A chosen domain with nothing in the period still gets its (zero) numbers.
        per_domain.push(DomainInsights {
            domain: d,
            ..DomainInsights::default()
        });
    }
    let mut details = Vec::with_capacity(per_domain.len());
    for row in &per_domain {
        let mut q = period.query(CSV_TOP);
        q.domain = Some(row.domain.clone());
        let (summary, _) = desk.insights(&u.admin, &q).await?;
        details.push(summary);
    }
    let votes: Vec<FeedbackRecord> = desk.feedback(&u.admin, &period.feedback()).await?;
    let mut ids: Vec<String> = details
        .iter()
        .flat_map(|s| s.top_pages.iter().map(|p| p.0.clone()))
        .chain(votes.iter().map(|v| v.page_id.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    let titles = desk.titles(&u.admin, &ids).await?;

    let mut out = String::from(CSV_HEADER);
    let mut rows = 0usize;
    for (row, summary) in per_domain.iter().zip(&details) {
        let d = row.domain.as_str();
        for (kind, n) in [
            ("page_views", row.page_views),
            ("unique_readers", row.unique_readers),
            ("searches", row.searches),
            ("zero_result_searches", row.zero_result_searches),
            ("helpful_yes", row.helpful_yes),
            ("helpful_no", row.helpful_no),
        ] {
            csv_line(&mut out, &period, d, kind, "", "", &n.to_string(), "", "");
            rows += 1;
        }
        for (id, _, views) in &summary.top_pages {
            let title = title_of(&titles, id);
            csv_line(
                &mut out,
                &period,
                d,
                "top_page",
                id,
                &title,
                &views.to_string(),
                "",
                "",
            );
            rows += 1;
        }
        for (query, n) in &summary.zero_result_queries {
            csv_line(
                &mut out,
                &period,
                d,
                "zero_result_query",
                query,
                "",
                &n.to_string(),
                "",
                "",
            );
            rows += 1;
        }
    }
    for v in &votes {
        let title = title_of(&titles, &v.page_id);
        csv_line(
            &mut out,
            &period,
            &v.domain,
            "feedback",
            &v.page_id,
            &title,
            if v.helpful { "yes" } else { "no" },
            &v.at.to_rfc3339(),
            v.comment.as_deref().unwrap_or_default(),
        );
        rows += 1;
    }
    desk.record(
        &u.admin,
        "admin.insights.export",
        serde_json::json!({
            "from": period.from.to_string(),
            "to": period.to.to_string(),
            "domain": period.domain(),
            "rows": rows,
        }),
    )
    .await;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"kbgate-insights.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(days: &str, from: &str, to: &str, domain: &str) -> InsightsParams {
        let some = |s: &str| Some(s.to_owned());
        InsightsParams {
            days: some(days),
            from: some(from),
            to: some(to),
            domain: some(domain),
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn periods_parse_presets_dates_and_domains() {
        let today = day("2026-12-07");
        let p = Period::parse(&InsightsParams::default(), today).unwrap();
        assert_eq!(
            (p.from, p.to, p.preset),
            (day("2026-11-08"), today, Some(30))
        );
        let p = Period::parse(&params("7", "", "", " ACME.com "), today).unwrap();
        assert_eq!((p.from, p.preset), (day("2026-12-01"), Some(7)));
        assert_eq!(p.domain().as_deref(), Some("acme.com"));
        // Dates win over a preset; both are inclusive days in UTC.
        let p = Period::parse(&params("7", "2026-01-01", "2026-01-31", ""), today).unwrap();
        assert_eq!(
            (p.from, p.to, p.preset),
            (day("2026-01-01"), day("2026-01-31"), None)
        );
        let (since, until) = p.bounds();
        assert_eq!(since.unwrap().to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(until.unwrap().to_rfc3339(), "2026-02-01T00:00:00+00:00");
        let p = Period::parse(&params("", "", "2026-01-31", ""), today).unwrap();
        assert_eq!(p.from, day("2026-01-02"));
        let p = Period::parse(&params("", "2026-12-01", "", ""), today).unwrap();
        assert_eq!(p.to, today);
        // Refused: other presets, bad dates, reversed or huge periods, bad domains.
        for bad in [
            params("14", "", "", ""),
            params("x", "", "", ""),
            params("", "2026-13-01", "", ""),
            params("", "01/02/2026", "", ""),
            params("", "2026-02-01", "2026-01-01", ""),
            params("", "1990-01-01", "2026-01-01", ""),
            params("", "", "", "not a domain"),
            params("", "", "", "acme.com/x"),
        ] {
            assert!(matches!(
                Period::parse(&bad, today),
                Err(Error::BadRequest(_))
            ));
        }
    }

    #[test]
    fn hrefs_keep_the_choice() {
        let today = day("2026-12-07");
        let p = Period::parse(&params("", "2026-01-01", "2026-01-31", "acme.com"), today).unwrap();
        assert_eq!(
            p.href("/x", None, None),
            "/x?from=2026-01-01&to=2026-01-31&domain=acme.com"
        );
        assert_eq!(p.href("/x", Some(7), Some("")), "/x?days=7");
        assert_eq!(
            p.href("/x", None, Some("b&c.com")),
            "/x?from=2026-01-01&to=2026-01-31&domain=b%26c.com"
        );
    }
}
