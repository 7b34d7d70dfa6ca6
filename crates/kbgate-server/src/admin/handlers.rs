//! Thin handlers of the console: parse, call the policy / [`super::Desk`] / `Library`,
//! render. Each takes [`AdminUser`] (or [`AdminCandidate`] for the confirm step).

use std::fmt::Write as _;

use askama::Template;
use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use kbgate_policy::{Email, Explanation, Readership};
use kbgate_store::{AuditEvent, AuditFilter, PersonRecord};
use serde::Deserialize;

use super::desk::{KeptPlan, NextRun, SpaceSync};
use super::{AdminCandidate, AdminUser, clear_admin_cookie, routes, set_admin_cookie};
use crate::cookies::cross_site;
use crate::error::Error;
use crate::html::TreeNode;
use crate::pages::render;
use crate::secret::{Opaque, ct_eq};
use crate::state::AppState;

/// Most audit events one page (or one CSV export) shows.
const AUDIT_LIMIT: u32 = 5_000;

/// A redirect to `route` (a route path with any query; the path prefix is added here).
fn see_other(route: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&crate::urls::to(route)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// A form token check, refusing cross-site posts first (as the portal's forms do).
fn check_form(
    state: &AppState,
    headers: &HeaderMap,
    given: Option<&str>,
    expected: &str,
) -> Result<(), Error> {
    if cross_site(headers, &state.settings()) || !ct_eq(given.unwrap_or_default(), expected) {
        return Err(Error::Forbidden);
    }
    Ok(())
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

/// The frame every console page shares.
pub(crate) struct AdminChrome {
    pub site_name: String,
    pub email: String,
    pub csrf: String,
    pub view_as: Option<String>,
}

pub(super) fn chrome(state: &AppState, u: &AdminUser) -> AdminChrome {
    AdminChrome {
        site_name: state.brand().site_name.clone(),
        email: u.admin.email().as_str().to_owned(),
        csrf: u.csrf.clone(),
        view_as: u.view_as.clone(),
    }
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage {
    site_name: String,
    email: String,
    csrf: String,
    minutes: u64,
}

#[derive(Template)]
#[template(path = "admin/home.html")]
struct HomePage {
    chrome: AdminChrome,
}

/// `GET /admin`: the console's start, or the confirm step without an admin session.
pub(crate) async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    c: AdminCandidate,
) -> Result<Response, Error> {
    let site_name = state.brand().site_name.clone();
    let email = c.admin.email().as_str().to_owned();
    let reader_csrf = c.reader_csrf.clone();
    match super::admin_session(&headers, &state, c).await? {
        Some(u) => Ok(render(&HomePage {
            chrome: chrome(&state, &u),
        })?
        .into_response()),
        None => Ok(render(&ConfirmPage {
            site_name,
            email,
            csrf: reader_csrf,
            minutes: state.admin_session_lifetime().as_secs() / 60,
        })?
        .into_response()),
    }
}

/// `POST /admin/session`: opens the admin session (form token of the reader session).
pub(crate) async fn open(
    State(state): State<AppState>,
    headers: HeaderMap,
    c: AdminCandidate,
    Form(f): Form<CsrfForm>,
) -> Result<Response, Error> {
    check_form(&state, &headers, f.csrf.as_deref(), &c.reader_csrf)?;
    let id = Opaque::generate();
    let lifetime = state.admin_session_lifetime();
    state
        .admin_sessions()
        .create(&c.admin, id.hash(), c.reader.hash(), Utc::now(), lifetime)
        .await?;
    state
        .desk()
        .record(&c.admin, "admin.session.open", serde_json::json!({}))
        .await;
    let mut resp = see_other(routes::HOME);
    if let Ok(v) = HeaderValue::from_str(&set_admin_cookie(
        &state.settings(),
        &id,
        lifetime.as_secs(),
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `POST /admin/logout`: ends the admin session (the reader session stays).
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    u: AdminUser,
    Form(f): Form<CsrfForm>,
) -> Result<Response, Error> {
    check_form(&state, &headers, f.csrf.as_deref(), &u.csrf)?;
    state.admin_sessions().revoke(&u.id.hash()).await?;
    state
        .desk()
        .record(&u.admin, "admin.session.end", serde_json::json!({}))
        .await;
    let mut resp = see_other(crate::urls::routes::HOME);
    if let Ok(v) = HeaderValue::from_str(&clear_admin_cookie(&state.settings())) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub(crate) struct ExplainQuery {
    email: Option<String>,
    page: Option<String>,
    format: Option<String>,
}

/// A page id from an id or a portal URL (`…/pages/123…`) or a Confluence URL
/// (`…/pages/123/Title`, `?pageId=123`).
pub fn page_id_from(input: &str) -> Option<String> {
    let s = input.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Some(s.to_owned());
    }
    let after = s
        .split_once("pageId=")
        .map(|(_, r)| r)
        .or_else(|| s.split_once("/pages/").map(|(_, r)| r))?;
    let id: String = after.chars().take_while(char::is_ascii_digit).collect();
    (!id.is_empty()).then_some(id)
}

#[derive(Template)]
#[template(path = "admin/explain.html")]
struct ExplainPage {
    chrome: AdminChrome,
    email: String,
    page: String,
    problem: Option<&'static str>,
    explanation: Option<Explanation>,
    readership: Option<Readership>,
}

/// `GET /admin/explain?email=&page=`: why an email may (not) read a page, and who may.
pub(crate) async fn explain(
    State(state): State<AppState>,
    u: AdminUser,
    Query(q): Query<ExplainQuery>,
) -> Result<Response, Error> {
    let raw_email = q.email.unwrap_or_default();
    let raw_page = q.page.unwrap_or_default();
    let mut problem = None;
    let email = if raw_email.trim().is_empty() {
        None
    } else {
        match Email::parse(raw_email.trim()) {
            Ok(e) => Some(e),
            Err(_) => {
                problem = Some("That is not a valid email address.");
                None
            }
        }
    };
    let page = if raw_page.trim().is_empty() {
        None
    } else {
        let facts = match page_id_from(&raw_page) {
            Some(id) => state.desk().page_facts(&u.admin, &id).await?,
            None => None,
        };
        if facts.is_none() {
            problem = Some("No mirrored page has that id or URL.");
        }
        facts
    };
    let policy = state.policy().current();
    let now = Utc::now();
    let explanation = email
        .as_ref()
        .filter(|_| problem.is_none())
        .map(|e| policy.explain(e, page.as_ref(), now));
    let readership = page
        .as_ref()
        .filter(|_| problem.is_none())
        .map(|p| policy.who_can_read(p, now));
    if explanation.is_some() || readership.is_some() {
        state
            .desk()
            .record(
                &u.admin,
                "admin.explain",
                serde_json::json!({
                    "email": email.as_ref().map(Email::as_str),
                    "page": page.as_ref().map(|p| p.id.as_str()),
                    "allowed": explanation.as_ref().map(|e| e.allowed),
                }),
            )
            .await;
    }
    if q.format.as_deref() == Some("json") {
        if let Some(p) = problem {
            return Err(Error::BadRequest(p));
        }
        return Ok(Json(serde_json::json!({
            "explanation": explanation,
            "who_can_read": readership,
        }))
        .into_response());
    }
    Ok(render(&ExplainPage {
        chrome: chrome(&state, &u),
        email: raw_email,
        page: raw_page,
        problem,
        explanation,
        readership,
    })?
    .into_response())
}

#[derive(Template)]
#[template(path = "admin/sessions.html")]
struct SessionsPage {
    chrome: AdminChrome,
    domains: Vec<(String, u64)>,
    ended: Option<(String, u64)>,
}

#[derive(Deserialize)]
pub(crate) struct EndedQuery {
    domain: Option<String>,
    ended: Option<u64>,
}

/// `GET /admin/sessions`: live sessions per email domain, each with a revoke button.
pub(crate) async fn sessions(
    State(state): State<AppState>,
    u: AdminUser,
    Query(q): Query<EndedQuery>,
) -> Result<Response, Error> {
    let domains = state.desk().sessions_per_domain(&u.admin).await?;
    let ended = q.domain.zip(q.ended);
    Ok(render(&SessionsPage {
        chrome: chrome(&state, &u),
        domains,
        ended,
    })?
    .into_response())
}

#[derive(Deserialize)]
pub(crate) struct RevokeForm {
    csrf: Option<String>,
    domain: Option<String>,
}

/// `POST /admin/sessions/revoke`: ends every session at a domain and its subdomains.
pub(crate) async fn revoke_domain(
    State(state): State<AppState>,
    headers: HeaderMap,
    u: AdminUser,
    Form(f): Form<RevokeForm>,
) -> Result<Response, Error> {
    check_form(&state, &headers, f.csrf.as_deref(), &u.csrf)?;
    let domain = kbgate_policy::Domain::parse(f.domain.as_deref().unwrap_or_default().trim())
        .map_err(|_| Error::BadRequest("that is not a valid domain"))?;
    let n = state
        .desk()
        .revoke_domain(&u.admin, domain.as_str())
        .await?;
    state
        .desk()
        .record(
            &u.admin,
            "admin.sessions.revoke",
            serde_json::json!({ "domain": domain.as_str(), "sessions": n }),
        )
        .await;
    let query = serde_urlencoded::to_string([
        ("ended", n.to_string()),
        ("domain", domain.as_str().to_owned()),
    ])
    .unwrap_or_default();
    Ok(see_other(&format!("{}?{query}", routes::SESSIONS)))
}

#[derive(Template)]
#[template(path = "admin/sync.html")]
struct SyncPage {
    chrome: AdminChrome,
    spaces: Vec<SyncRow>,
    interval: Option<String>,
    can_sync_now: bool,
    requested: bool,
}

/// One space's sync status, as shown.
struct SyncRow {
    space: String,
    last: String,
    by: String,
    last_full: String,
    running: String,
    next: String,
}

impl SyncRow {
    /// `interval`: the background sync's, `None` when this process runs none.
    fn new(s: SpaceSync, interval: Option<std::time::Duration>, now: DateTime<Utc>) -> Self {
        let next = NextRun::of(
            s.last.as_ref().map(|l| l.synced_at),
            interval,
            s.running.is_some(),
            now,
        );
        SyncRow {
            space: format!("{} ({})", s.key, s.name),
            last: when(s.last.as_ref().map(|l| l.synced_at)),
            by: s.last.map(|l| l.holder).unwrap_or_default(),
            last_full: when(s.state.and_then(|st| st.last_full_sync)),
            running: s.running.map_or_else(|| "no".to_owned(), |r| r.holder),
            next: next.describe(now),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct SyncQuery {
    requested: Option<u8>,
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "never".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `GET /admin/sync`: per space, the last sync, who ran it, one in progress, the next round.
pub(crate) async fn sync(
    State(state): State<AppState>,
    u: AdminUser,
    Query(q): Query<SyncQuery>,
) -> Result<Response, Error> {
    let spaces = state.desk().sync_status(&u.admin).await?;
    let now = Utc::now();
    Ok(render(&SyncPage {
        chrome: chrome(&state, &u),
        spaces: spaces
            .into_iter()
            .map(|s| SyncRow::new(s, state.sync_interval(), now))
            .collect(),
        interval: state.sync_interval().map(kbgate_config::format_duration),
        can_sync_now: state.sync_now().is_some(),
        requested: q.requested.is_some(),
    })?
    .into_response())
}

/// `POST /admin/sync/now`: wakes the service's sync loop for a round now.
pub(crate) async fn sync_now(
    State(state): State<AppState>,
    headers: HeaderMap,
    u: AdminUser,
    Form(f): Form<CsrfForm>,
) -> Result<Response, Error> {
    check_form(&state, &headers, f.csrf.as_deref(), &u.csrf)?;
    let trigger = state.sync_now().ok_or(Error::NotFound)?;
    trigger.notify_one();
    state
        .desk()
        .record(&u.admin, "admin.sync.now", serde_json::json!({}))
        .await;
    Ok(see_other(&format!("{}?requested=1", routes::SYNC)))
}

#[derive(Template)]
#[template(path = "admin/requests.html")]
struct RequestsPage {
    chrome: AdminChrome,
    people: Vec<PersonRecord>,
}

/// `GET /admin/access-requests`: people who asked to be let into Confluence.
pub(crate) async fn requests(
    State(state): State<AppState>,
    u: AdminUser,
) -> Result<Response, Error> {
    let people = state.desk().access_requests(&u.admin).await?;
    Ok(render(&RequestsPage {
        chrome: chrome(&state, &u),
        people,
    })?
    .into_response())
}

/// Rows one table of the plan page shows; the rest are counted (`kbgate plan --output json`
/// lists every one).
const PLAN_ROWS: usize = 200;

/// One planned change, as shown.
struct PlanActionRow {
    audience: String,
    kind: &'static str,
    target: String,
    reason: String,
}

impl From<&kbgate_provision::Action> for PlanActionRow {
    fn from(a: &kbgate_provision::Action) -> Self {
        PlanActionRow {
            audience: a.audience.clone(),
            kind: a.op.kind(),
            target: a.op.target(),
            reason: a.reason.clone(),
        }
    }
}

/// One person waiting on an invitation, as shown.
struct PlanAwaitRow {
    audience: String,
    email: String,
    state: &'static str,
    since: String,
    then: String,
}

/// The latest plan, as shown.
struct PlanView {
    computed_at: String,
    age: String,
    calls: u64,
    converged: bool,
    changes: usize,
    grants: Vec<PlanActionRow>,
    grants_total: usize,
    revocations: Vec<PlanActionRow>,
    revocations_total: usize,
    /// (audience, kind, count), grants and revocations alike.
    by_kind: Vec<(String, &'static str, usize)>,
    awaiting: Vec<PlanAwaitRow>,
    awaiting_total: usize,
    next_retry: Option<String>,
    limits: Vec<String>,
    waiting_on_limits: usize,
    refusals: Vec<String>,
    warnings: Vec<String>,
}

fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    match secs {
        ..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h {} min ago", secs / 3600, (secs % 3600) / 60),
        _ => format!("{} days ago", secs / 86400),
    }
}

impl PlanView {
    fn new(
        latest: &kbgate_provision::LatestPlan,
        policy: &kbgate_policy::Policy,
        now: DateTime<Utc>,
    ) -> PlanView {
        use kbgate_provision::AwaitState;
        let plan = &latest.plan;
        let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        let (revs, grants): (Vec<_>, Vec<_>) =
            plan.actions.iter().partition(|a| a.op.is_revocation());
        let delivery = |audience: &str| {
            policy
                .audiences()
                .iter()
                .find(|a| a.name.as_str() == audience)
                .map(|a| a.delivery)
        };
        let awaiting = plan
            .awaiting
            .iter()
            .take(PLAN_ROWS)
            .map(|w| {
                let after = if delivery(&w.audience) == Some(kbgate_policy::Delivery::Group) {
                    format!(
                        "added to group {} by the first apply after it completes",
                        kbgate_provision::group_name(&w.audience)
                    )
                } else {
                    "given access by the first apply after it completes".to_owned()
                };
                let then = match (w.state, w.retry_at) {
                    (AwaitState::Sent, _) | (AwaitState::Unknown, None) => {
                        format!("Not invited again; {after}.")
                    }
                    (AwaitState::Unknown, Some(t)) if t <= plan.generated_at => format!(
                        "Invited again by the next apply if still without site access; {after}."
                    ),
                    (AwaitState::Unknown, Some(t)) => format!(
                        "Invited again from {} if still without site access; {after}.",
                        stamp(t)
                    ),
                };
                PlanAwaitRow {
                    audience: w.audience.clone(),
                    email: w.email.clone(),
                    state: match w.state {
                        AwaitState::Sent => "invited, not complete yet",
                        AwaitState::Unknown => "outcome unknown (no answer from Confluence)",
                    },
                    since: stamp(w.since),
                    then,
                }
            })
            .collect();
        PlanView {
            computed_at: latest
                .computed_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
            age: ago(latest.computed_at, now),
            calls: latest.calls,
            converged: plan.converged(),
            changes: plan.actions.len(),
            grants_total: grants.len(),
            revocations_total: revs.len(),
            grants: grants
                .into_iter()
                .take(PLAN_ROWS)
                .map(PlanActionRow::from)
                .collect(),
            revocations: revs
                .into_iter()
                .take(PLAN_ROWS)
                .map(PlanActionRow::from)
                .collect(),
            by_kind: plan
                .counts_by_kind()
                .into_iter()
                .map(|((aud, kind), n)| (aud, kind, n))
                .collect(),
            awaiting,
            awaiting_total: plan.awaiting.len(),
            next_retry: plan.next_retry().map(stamp),
            limits: plan.limits.iter().map(ToString::to_string).collect(),
            waiting_on_limits: plan.waiting_on_limits(),
            refusals: plan.refusals.iter().map(ToString::to_string).collect(),
            warnings: plan.warnings.iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/plan.html")]
struct PlanPage {
    chrome: AdminChrome,
    /// (audience, delivery) of the policy's native audiences.
    native: Vec<(String, &'static str)>,
    plan: Option<PlanView>,
    unreadable: Option<String>,
}

/// `GET /admin/plan`: native mode's latest plan, read-only, as the last `kbgate plan`,
/// `kbgate apply` or reconcile round kept it in the store: no Confluence call per page load.
pub(crate) async fn plan(State(state): State<AppState>, u: AdminUser) -> Result<Response, Error> {
    let policy = state.policy().current();
    let native = policy
        .audiences()
        .iter()
        .filter(|a| a.delivery != kbgate_policy::Delivery::Portal)
        .map(|a| (a.name.as_str().to_owned(), a.delivery.as_str()))
        .collect();
    let (plan, unreadable) = match state.desk().native_plan(&u.admin).await? {
        KeptPlan::None => (None, None),
        KeptPlan::Plan(p) => (Some(PlanView::new(&p, &policy, Utc::now())), None),
        KeptPlan::Unreadable(why) => (None, Some(why)),
    };
    Ok(render(&PlanPage {
        chrome: chrome(&state, &u),
        native,
        plan,
        unreadable,
    })?
    .into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct AuditQuery {
    since: Option<String>,
    until: Option<String>,
    actor: Option<String>,
    action: Option<String>,
}

impl AuditQuery {
    /// The store filter: dates are days (UTC), `until` inclusive.
    fn filter(&self) -> Result<AuditFilter, Error> {
        let day = |s: &Option<String>| -> Result<Option<NaiveDate>, Error> {
            match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| Error::BadRequest("dates are YYYY-MM-DD")),
            }
        };
        let text = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Ok(AuditFilter {
            since: day(&self.since)?
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc()),
            until: day(&self.until)?
                .and_then(|d| d.succ_opt())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc()),
            actor: text(&self.actor),
            action: text(&self.action),
            limit: AUDIT_LIMIT,
        })
    }

    fn query_string(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("since", &self.since),
            ("until", &self.until),
            ("actor", &self.actor),
            ("action", &self.action),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect();
        if pairs.is_empty() {
            return String::new();
        }
        format!(
            "?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

struct AuditRowView {
    ts: String,
    actor: String,
    action: String,
    detail: String,
}

impl From<AuditEvent> for AuditRowView {
    fn from(e: AuditEvent) -> Self {
        AuditRowView {
            ts: e.ts.format("%Y-%m-%d %H:%M:%S").to_string(),
            actor: e.actor,
            action: e.action,
            detail: e.detail.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: AdminChrome,
    since: String,
    until: String,
    actor: String,
    action: String,
    csv: String,
    events: Vec<AuditRowView>,
}

/// `GET /admin/audit`: the audit log, filtered by day range, actor and action prefix.
pub(crate) async fn audit(
    State(state): State<AppState>,
    u: AdminUser,
    Query(q): Query<AuditQuery>,
) -> Result<Response, Error> {
    let events = state.desk().audit(&u.admin, &q.filter()?).await?;
    Ok(render(&AuditPage {
        chrome: chrome(&state, &u),
        csv: crate::urls::to(&format!("{}{}", routes::AUDIT_CSV, q.query_string())),
        since: q.since.unwrap_or_default(),
        until: q.until.unwrap_or_default(),
        actor: q.actor.unwrap_or_default(),
        action: q.action.unwrap_or_default(),
        events: events.into_iter().map(AuditRowView::from).collect(),
    })?
    .into_response())
}

/// One CSV field (RFC 4180), with a leading `'` before `=`, `+`, `-`, `@` so a spreadsheet
/// does not run it as a formula (OWASP "CSV injection").
pub(super) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `GET /admin/audit.csv`: the same filters, as CSV.
pub(crate) async fn audit_csv(
    State(state): State<AppState>,
    u: AdminUser,
    Query(q): Query<AuditQuery>,
) -> Result<Response, Error> {
    let filter = q.filter()?;
    let events = state.desk().audit(&u.admin, &filter).await?;
    state
        .desk()
        .record(
            &u.admin,
            "admin.audit.export",
            serde_json::json!({ "rows": events.len() }),
        )
        .await;
    let mut out = String::from("ts,actor,action,detail\r\n");
    for e in events {
        let _ = write!(
            out,
            "{},{},{},{}\r\n",
            csv_field(&e.ts.to_rfc3339()),
            csv_field(&e.actor),
            csv_field(&e.action),
            csv_field(&e.detail.to_string())
        );
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"kbgate-audit.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

struct ViewSpace {
    key: String,
    name: String,
    /// Flattened tree: (depth, id, title).
    pages: Vec<(usize, String, String)>,
}

fn flatten(nodes: &[TreeNode], depth: usize, out: &mut Vec<(usize, String, String)>) {
    for n in nodes {
        out.push((depth, n.id.clone(), n.title.clone()));
        flatten(&n.children, depth + 1, out);
    }
}

#[derive(Template)]
#[template(path = "admin/view_as.html")]
struct ViewAsPage {
    chrome: AdminChrome,
    refusal: Option<String>,
    spaces: Vec<ViewSpace>,
}

/// `GET /admin/view-as`: what the chosen email sees: its spaces and page trees, through the
/// same gate (a `Viewer` minted by the policy; a refusal is shown as such).
pub(crate) async fn view_as(
    State(state): State<AppState>,
    u: AdminUser,
) -> Result<Response, Error> {
    let mut refusal = None;
    let mut spaces = Vec::new();
    if let Some(email) = u.view_as.as_deref() {
        let email = Email::parse(email).map_err(|_| Error::BadRequest("bad view-as email"))?;
        match state.policy().current().viewer(&email, Utc::now()) {
            Err(r) => refusal = Some(r.to_string()),
            Ok(viewer) => {
                for s in state.library().spaces(&viewer).await? {
                    let tree = state.library().tree(&viewer, &s).await?;
                    let mut pages = Vec::new();
                    flatten(&tree, 0, &mut pages);
                    spaces.push(ViewSpace {
                        key: s.key,
                        name: s.name,
                        pages,
                    });
                }
            }
        }
    }
    Ok(render(&ViewAsPage {
        chrome: chrome(&state, &u),
        refusal,
        spaces,
    })?
    .into_response())
}

#[derive(Deserialize)]
pub(crate) struct ViewAsForm {
    csrf: Option<String>,
    email: Option<String>,
}

/// `POST /admin/view-as`: starts browsing as an email (or anyone at a domain: `@acme.com`
/// stands for a made-up person there).
pub(crate) async fn view_as_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    u: AdminUser,
    Form(f): Form<ViewAsForm>,
) -> Result<Response, Error> {
    check_form(&state, &headers, f.csrf.as_deref(), &u.csrf)?;
    let raw = f.email.unwrap_or_default();
    let raw = raw.trim();
    let email = if let Some(domain) = raw.strip_prefix('@') {
        Email::parse(&format!("someone@{domain}"))
    } else if !raw.contains('@') {
        Email::parse(&format!("someone@{raw}"))
    } else {
        Email::parse(raw)
    }
    .map_err(|_| Error::BadRequest("enter an email address or a domain"))?;
    state
        .admin_sessions()
        .set_view_as(&u.id.hash(), Some(email.as_str()))
        .await?;
    state
        .desk()
        .record(
            &u.admin,
            "admin.view_as.start",
            serde_json::json!({ "as": email.as_str() }),
        )
        .await;
    Ok(see_other(routes::VIEW_AS))
}

/// `POST /admin/view-as/end`.
pub(crate) async fn view_as_end(
    State(state): State<AppState>,
    headers: HeaderMap,
    u: AdminUser,
    Form(f): Form<CsrfForm>,
) -> Result<Response, Error> {
    check_form(&state, &headers, f.csrf.as_deref(), &u.csrf)?;
    state
        .admin_sessions()
        .set_view_as(&u.id.hash(), None)
        .await?;
    state
        .desk()
        .record(&u.admin, "admin.view_as.end", serde_json::json!({}))
        .await;
    Ok(see_other(routes::VIEW_AS))
}

#[derive(Template)]
#[template(path = "admin/view_as_page.html")]
struct ViewAsPageView {
    chrome: AdminChrome,
    title: String,
    space: String,
    body: String,
}

/// `GET /admin/view-as/pages/{id}`: a page as the chosen email sees it; 404 exactly when the
/// gate refuses that email the page.
pub(crate) async fn view_as_page(
    State(state): State<AppState>,
    u: AdminUser,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let email = u.view_as.as_deref().ok_or(Error::NotFound)?;
    let email = Email::parse(email).map_err(|_| Error::NotFound)?;
    let viewer = state
        .policy()
        .current()
        .viewer(&email, Utc::now())
        .map_err(|_| Error::NotFound)?;
    let view = state
        .library()
        .page(&viewer, &id)
        .await?
        .ok_or(Error::NotFound)?;
    state
        .desk()
        .record(
            &u.admin,
            "admin.view_as.page",
            serde_json::json!({ "as": email.as_str(), "page": id }),
        )
        .await;
    Ok(render(&ViewAsPageView {
        chrome: chrome(&state, &u),
        title: view.page.title.clone(),
        space: view.space.name.clone(),
        body: view.html.clone(),
    })?
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ids_from_ids_and_urls() {
        assert_eq!(page_id_from(" 1234 ").as_deref(), Some("1234"));
        assert_eq!(
            page_id_from("https://kb.example.com/pages/55?x=1").as_deref(),
            Some("55")
        );
        assert_eq!(
            page_id_from("https://acme.atlassian.net/wiki/spaces/KB/pages/77/Title").as_deref(),
            Some("77")
        );
        assert_eq!(
            page_id_from("https://acme.atlassian.net/wiki/pages/viewpage.action?pageId=88")
                .as_deref(),
            Some("88")
        );
        assert_eq!(page_id_from("nothing"), None);
        assert_eq!(page_id_from("/pages/x"), None);
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
        assert_eq!(csv_field("ann@acme.com"), "\"ann@acme.com\"");
    }
}
