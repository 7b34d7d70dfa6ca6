//! Server-rendered pages (askama): home, space, page, search, sign-in, errors.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use kbgate_store::{FeedbackRecord, MatchCount, PageSummary, SpaceRecord};
use serde::Deserialize;

use std::sync::Arc;

use crate::brand::Brand;
use crate::chrome::{Chrome, User};
use crate::error::Error;
use crate::extractors::CurrentViewer;
use crate::html;
use crate::insights::Event;
use crate::library::{Found, PageView, RecentPage, SearchFilter, SpaceIndex};
use crate::spliced::Spliced;
use crate::state::AppState;
use crate::urls;

fn chrome_for(state: &AppState, cv: &CurrentViewer) -> Chrome {
    Chrome::signed_in(
        state,
        cv.viewer.email().as_str().to_owned(),
        cv.csrf.clone(),
    )
}

/// Renders a template, mapping a (bug-only) render failure to a 500.
pub(crate) fn render<T: Template>(t: &T) -> Result<Html<String>, Error> {
    t.render().map(Html).map_err(Error::internal)
}

struct SpaceCard {
    key: String,
    name: String,
    /// The letter tile shown when the space has no icon kbgate could keep.
    initial: String,
    /// The icon's URL (through the gate, keyed by its content hash), if it has one.
    icon: Option<String>,
    /// The description, plain text shortened for a card (the template escapes it).
    description: String,
}

/// Longest description a card shows, in characters (the space home shows it whole).
const CARD_DESCRIPTION_CHARS: usize = 160;

/// `text` cut to at most `max` characters at a word boundary, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max {
        return text;
    }
    let cut: String = text.chars().take(max).collect();
    let head = match cut.rfind(' ') {
        Some(i) if i > max / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", head.trim_end_matches([',', ';', ':', '.', ' ']))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    spaces: Vec<SpaceCard>,
    recent: Vec<RecentPage>,
}

/// How many recently updated pages the start page lists.
const RECENT_PAGES: usize = 8;

/// `GET /`: search first, the spaces this viewer may read, and the pages updated most
/// recently among those it may read.
pub(crate) async fn home(
    State(state): State<AppState>,
    cv: CurrentViewer,
) -> Result<Html<String>, Error> {
    let lib = state.library();
    let spaces = lib.spaces(&cv.viewer).await?;
    let recent = lib.recent(&cv.viewer, &spaces, RECENT_PAGES).await?;
    render(&HomePage {
        chrome: chrome_for(&state, &cv),
        spaces: spaces
            .into_iter()
            .map(|s| SpaceCard {
                initial: s
                    .name
                    .chars()
                    .find(|c| c.is_alphanumeric())
                    .map(|c| c.to_uppercase().collect())
                    .unwrap_or_default(),
                icon: s
                    .icon
                    .as_ref()
                    .map(|i| urls::space_icon(&s.key, i.blob.sha256())),
                description: shorten(&s.description, CARD_DESCRIPTION_CHARS),
                key: s.key,
                name: s.name,
            })
            .collect(),
        recent,
    })
}

struct IndexCrumb {
    href: String,
    title: String,
}

#[derive(Template)]
#[template(path = "space.html")]
struct SpacePage<'a> {
    chrome: Chrome,
    name: &'a str,
    space_key: &'a str,
    description: String,
    /// The page the index starts under, if not the top.
    under_title: Option<&'a str>,
    under_href: String,
    /// The starting page's readable ancestors, each leading to the index under it.
    crumbs: Vec<IndexCrumb>,
    tree_html: &'a str,
    /// The space's home page, resolved for the viewer (the top of the index only, when the
    /// viewer may read it).
    home_html: Option<&'a str>,
}

fn space_template<'a>(
    chrome: Chrome,
    space: &'a SpaceRecord,
    index: &'a SpaceIndex,
    home: Option<&'a PageView>,
) -> SpacePage<'a> {
    let empty = if index.under.is_some() {
        "<p>No pages below this one are available to you.</p>"
    } else {
        "<p>No pages are available to you in this space.</p>"
    };
    SpacePage {
        chrome,
        name: &space.name,
        space_key: &space.key,
        description: space.description.clone(),
        under_title: index.under.as_ref().map(|u| u.title.as_str()),
        under_href: index
            .under
            .as_ref()
            .map(|u| urls::page(&u.id))
            .unwrap_or_default(),
        crumbs: index
            .under
            .iter()
            .flat_map(|u| &u.ancestors)
            .map(|(id, title)| IndexCrumb {
                href: urls::space_under(&space.key, id),
                title: title.clone(),
            })
            .collect(),
        tree_html: if index.html.is_empty() {
            empty
        } else {
            index.html.as_str()
        },
        home_html: home.map(|h| h.html.as_str()),
    }
}

/// Query of the space index.
#[derive(Deserialize)]
pub(crate) struct SpaceQuery {
    /// Show the levels under this page instead of the top ones.
    pub under: Option<String>,
}

/// `GET /spaces/{key}`: space home with the first levels of the page tree;
/// `?under=ID` the levels under one of its pages.
pub(crate) async fn space(
    State(state): State<AppState>,
    cv: CurrentViewer,
    Path(key): Path<String>,
    Query(q): Query<SpaceQuery>,
) -> Result<Response, Error> {
    let lib = state.library();
    let space = lib.space(&cv.viewer, &key).await?.ok_or(Error::NotFound)?;
    // The top of the index shows the home page's content too, when the viewer may read it.
    // Read before the index: a rendering shared through the view then never pairs it with
    // an index older than the view (a commit in between could have restricted a page).
    let home = match (&q.under, &space.homepage_id) {
        (None, Some(id)) => lib.page(&cv.viewer, id).await?,
        _ => None,
    };
    let index = lib
        .space_index(&cv.viewer, &space, q.under.as_deref())
        .await?
        .ok_or(Error::NotFound)?;
    let cut = || {
        let (email, csrf) = &*MARKS;
        let html = space_template(
            marked_chrome(state.brand()),
            &space,
            &index,
            home.as_deref(),
        )
        .render()
        .ok()?;
        Spliced::cut(&html, email, csrf, 1)
    };
    // Shared by every viewer of the index (its label filter), or with a home page, of the
    // home page's view (its reach, which fixes the filter).
    let shared = match &home {
        Some(h) => h.home_rendered.get_or_init(cut),
        None => index.rendered.get_or_init(cut),
    };
    let html = match shared {
        Some(s) => Html(s.fill(cv.viewer.email().as_str(), &cv.csrf)),
        None => render(&space_template(
            chrome_for(&state, &cv),
            &space,
            &index,
            home.as_deref(),
        ))?,
    };
    Ok(html.into_response())
}

struct TocEntry<'a> {
    level: u8,
    anchor: &'a str,
    text: &'a str,
}

struct AttachmentLink<'a> {
    href: String,
    name: &'a str,
    size: String,
}

/// The page view: everything but the chrome borrows from the cached [`PageView`], so a
/// repeated view costs one template render.
#[derive(Template)]
#[template(path = "page.html")]
struct PagePage<'a> {
    chrome: Chrome,
    page_id: &'a str,
    title: &'a str,
    space_key: &'a str,
    space_name: &'a str,
    crumbs: &'a [PageSummary],
    toc: Vec<TocEntry<'a>>,
    updated_iso: String,
    updated_human: String,
    body_html: &'a str,
    tree_html: &'a str,
    /// The sidebar left entries out: it links to the space's whole tree.
    tree_cut: bool,
    attachments: Vec<AttachmentLink<'a>>,
}

/// The page template over a view, for the given chrome.
fn page_template(chrome: Chrome, view: &PageView) -> PagePage<'_> {
    PagePage {
        chrome,
        page_id: &view.page.id,
        title: &view.page.title,
        space_key: &view.space.key,
        space_name: &view.space.name,
        crumbs: &view.crumbs,
        toc: view
            .headings
            .iter()
            .filter(|h| (2..=4).contains(&h.level) && !h.anchor.is_empty())
            .map(|h| TocEntry {
                level: h.level,
                anchor: &h.anchor,
                text: &h.text,
            })
            .collect(),
        updated_iso: view.page.updated_at.to_rfc3339(),
        updated_human: view.page.updated_at.format("%-d %B %Y").to_string(),
        body_html: &view.html,
        tree_html: &view.sidebar_html,
        tree_cut: view.sidebar_cut,
        attachments: view
            .downloads()
            .map(|a| AttachmentLink {
                href: urls::attachment(&a.page_id, &a.title),
                name: &a.title,
                size: html::file_size(a.file_size),
            })
            .collect(),
    }
}

/// Stand-ins for the header's person fields while a shared page is rendered: random per
/// process, letters and digits only (the template passes them through unescaped, and no
/// content can guess them).
static MARKS: std::sync::LazyLock<(String, String)> = std::sync::LazyLock::new(|| {
    let r: u128 = rand::random();
    (
        format!("kbgateEmail{r:032x}"),
        format!("kbgateCsrf{r:032x}"),
    )
});

/// The chrome with the stand-ins ([`MARKS`]) for the person's fields.
fn marked_chrome(brand: Arc<Brand>) -> Chrome {
    let (email, csrf) = &*MARKS;
    Chrome {
        brand,
        user: Some(User {
            email: email.clone(),
            csrf: csrf.clone(),
        }),
        query: String::new(),
    }
}

/// Renders the page with the stand-ins ([`MARKS`]) for the header's person fields and cuts
/// it there; `None` (render per request instead) unless each stand-in appears exactly once,
/// email first.
fn splice(brand: Arc<Brand>, view: &PageView) -> Option<Spliced> {
    let (email, csrf) = &*MARKS;
    let html = page_template(marked_chrome(brand), view).render().ok()?;
    // The token stands in the sign-out form and in the feedback form.
    Spliced::cut(&html, email, csrf, 2)
}

/// `GET /pages/{id}`: a page, if this viewer may read it; 404 otherwise. A page served is
/// recorded for the admin's insights (off the request path, never waiting; see
/// `insights.rs`); a refused one is not.
pub(crate) async fn page(
    State(state): State<AppState>,
    cv: CurrentViewer,
    Path(id): Path<String>,
) -> Result<Html<String>, Error> {
    let view = state
        .library()
        .page(&cv.viewer, &id)
        .await?
        .ok_or(Error::NotFound)?;
    state
        .insights()
        .page_view(&id, &view.space.key, cv.viewer.email());
    let shared = view.rendered.get_or_init(|| splice(state.brand(), &view));
    match shared {
        Some(s) => Ok(Html(s.fill(cv.viewer.email().as_str(), &cv.csrf))),
        None => render(&page_template(chrome_for(&state, &cv), &view)),
    }
}

struct HitView {
    id: String,
    title: String,
    space_key: String,
    excerpt_html: String,
}

/// A choice of a search filter.
struct FilterOption {
    value: String,
    name: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    hits: Vec<HitView>,
    /// "12 results", "More than 100 results" (empty before a query).
    count_text: String,
    next_href: Option<String>,
    spaces: Vec<FilterOption>,
    labels: Vec<FilterOption>,
    /// A corrected query that finds something, and its link.
    did_you_mean: Option<(String, String)>,
}

/// Query of the search routes.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchQuery {
    /// The search text (at most 200 characters; empty: no hits).
    #[serde(default)]
    #[param(max_length = 200)]
    pub q: String,
    /// Hits to skip (at most 1,000).
    #[serde(default)]
    #[param(maximum = 1000)]
    pub offset: u32,
    /// Hits per answer, 1 to 100 (default 20; larger or smaller values are clamped).
    pub limit: Option<u32>,
    /// Only this space (key); empty means all.
    #[serde(default)]
    pub space: String,
    /// Only pages with this label; empty means any.
    #[serde(default)]
    pub label: String,
}

impl SearchQuery {
    /// The filter it names (empty fields name none).
    pub(crate) fn filter(&self) -> SearchFilter {
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        SearchFilter {
            space: some(&self.space),
            label: some(&self.label),
        }
    }
}

/// Longest search query accepted.
pub(crate) const MAX_QUERY_CHARS: usize = 200;
/// Deepest result offset accepted.
pub(crate) const MAX_OFFSET: u32 = 1000;
const PAGE_SIZE: u32 = 20;
/// Longest space key or label accepted as a filter.
const MAX_FILTER_CHARS: usize = 255;

pub(crate) fn check_query(q: &SearchQuery) -> Result<(), Error> {
    if q.q.chars().count() > MAX_QUERY_CHARS {
        return Err(Error::BadRequest("the search text is too long"));
    }
    if q.offset > MAX_OFFSET {
        return Err(Error::BadRequest("the result offset is too large"));
    }
    if q.space.len() > MAX_FILTER_CHARS || q.label.len() > MAX_FILTER_CHARS {
        return Err(Error::BadRequest("the search filter is too long"));
    }
    Ok(())
}

/// The search page's URL for a query, filter and offset.
fn search_href(q: &str, filter: &SearchFilter, offset: u32) -> String {
    let mut pairs: Vec<(&str, String)> = vec![("q", q.to_owned())];
    if let Some(s) = &filter.space {
        pairs.push(("space", s.clone()));
    }
    if let Some(l) = &filter.label {
        pairs.push(("label", l.clone()));
    }
    if offset > 0 {
        pairs.push(("offset", offset.to_string()));
    }
    format!(
        "{}?{}",
        urls::to(urls::routes::SEARCH),
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    )
}

/// "1 result", "12 results", "More than 100 results" (empty for a count that says nothing).
fn count_text(total: MatchCount) -> String {
    match total {
        MatchCount::Exact(1) => "1 result".to_owned(),
        MatchCount::Exact(n) => format!("{n} results"),
        MatchCount::AtLeast(0) => String::new(),
        MatchCount::AtLeast(n) => format!("More than {} results", n - 1),
    }
}

/// `GET /search?q=&space=&label=`: search over what the viewer may read, with the number of
/// results, filters by space and label (labels when the viewer's audience is limited to
/// labels), and "did you mean" when nothing matched. The first page of each search is
/// recorded for the admin (off the request path; see `insights.rs`).
pub(crate) async fn search(
    State(state): State<AppState>,
    cv: CurrentViewer,
    Query(q): Query<SearchQuery>,
) -> Result<Html<String>, Error> {
    check_query(&q)?;
    let text = q.q.trim().to_owned();
    let filter = q.filter();
    let lib = state.library();
    let found = if text.is_empty() {
        Found::default()
    } else {
        lib.search(&cv.viewer, &text, &filter, PAGE_SIZE, q.offset)
            .await?
    };
    let mut did_you_mean = None;
    if !text.is_empty() && q.offset == 0 {
        let results = match found.total {
            MatchCount::Exact(n) | MatchCount::AtLeast(n) => n,
        };
        state
            .insights()
            .send(Event::Search(state.insights().search_event(
                &cv.viewer,
                &text,
                results,
                chrono::Utc::now(),
            )));
        if found.hits.is_empty() {
            did_you_mean = lib
                .did_you_mean(&cv.viewer, &text, &filter)
                .await?
                .map(|t| {
                    let href = search_href(&t, &filter, 0);
                    (t, href)
                });
        }
    }
    let spaces = lib
        .spaces(&cv.viewer)
        .await?
        .into_iter()
        .map(|s| FilterOption {
            selected: filter.space.as_deref() == Some(s.key.as_str()),
            value: s.key,
            name: s.name,
        })
        .collect();
    let labels = viewer_labels(&cv.viewer)
        .into_iter()
        .map(|l| FilterOption {
            selected: filter.label.as_deref() == Some(l.as_str()),
            name: l.clone(),
            value: l,
        })
        .collect();
    let mut chrome = chrome_for(&state, &cv);
    chrome.query = text.clone();
    render(&SearchPage {
        chrome,
        count_text: if text.is_empty() {
            String::new()
        } else {
            count_text(found.total)
        },
        hits: found
            .hits
            .into_iter()
            .map(|h| HitView {
                id: h.hit.page_id,
                title: h.hit.title,
                space_key: h.space_key,
                excerpt_html: html::excerpt_html(&h.hit.excerpt),
            })
            .collect(),
        next_href: found
            .has_more
            .then(|| search_href(&text, &filter, q.offset + PAGE_SIZE)),
        spaces,
        labels,
        did_you_mean,
    })
}

/// The labels the viewer's audiences limit it to (the union over its grants), sorted: what
/// the label filter offers. Empty when no grant is limited to labels.
fn viewer_labels(viewer: &kbgate_policy::Viewer) -> Vec<String> {
    let mut labels: Vec<String> = viewer
        .grants()
        .iter()
        .filter_map(|g| match &g.labels {
            kbgate_policy::LabelFilter::AnyOf(set) => Some(set),
            kbgate_policy::LabelFilter::All => None,
        })
        .flatten()
        .map(|l| l.as_str().to_owned())
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

/// Query of `/suggest`.
#[derive(Deserialize)]
pub(crate) struct SuggestQuery {
    #[serde(default)]
    q: String,
}

/// Suggestions `/suggest` answers at most.
const SUGGESTIONS: usize = 8;

#[derive(serde::Serialize)]
pub(crate) struct SuggestionJson {
    title: String,
    space_key: String,
    url: String,
}

#[derive(serde::Serialize)]
pub(crate) struct SuggestJson {
    suggestions: Vec<SuggestionJson>,
}

/// `GET /suggest?q=`: titles of pages the viewer may read for what has been typed so far
/// (JSON, for `suggest.js`). Answered from the viewer's cached lexicon, no store read once
/// it is built.
pub(crate) async fn suggest(
    State(state): State<AppState>,
    cv: CurrentViewer,
    Query(q): Query<SuggestQuery>,
) -> Result<Response, Error> {
    if q.q.chars().count() > MAX_QUERY_CHARS {
        return Err(Error::BadRequest("the search text is too long"));
    }
    let found = state
        .library()
        .suggest(&cv.viewer, &q.q, SUGGESTIONS)
        .await?;
    let body = SuggestJson {
        suggestions: found
            .into_iter()
            .map(|t| SuggestionJson {
                url: urls::page(&t.id),
                title: t.title,
                space_key: t.space_key,
            })
            .collect(),
    };
    let mut r = axum::Json(body).into_response();
    // Per person: never kept by a shared cache.
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=60"),
    );
    Ok(r)
}

/// Longest feedback comment kept.
pub(crate) const MAX_COMMENT_CHARS: usize = 2000;

/// The "Was this helpful?" form.
#[derive(Deserialize)]
pub(crate) struct FeedbackForm {
    csrf: Option<String>,
    /// `yes` or `no`.
    helpful: Option<String>,
    #[serde(default)]
    comment: String,
}

#[derive(Template)]
#[template(path = "feedback.html")]
struct FeedbackThanks<'a> {
    chrome: Chrome,
    title: &'a str,
    page_href: String,
}

/// `POST /pages/{id}/feedback` (form `csrf`, `helpful=yes|no`, optional `comment`): records
/// the viewer's vote on a page it may read (a new vote replaces the previous one) and thanks
/// them. Cross-site posts are refused by the session's form token, as sign-out is.
pub(crate) async fn feedback(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    cv: CurrentViewer,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<FeedbackForm>,
) -> Result<Html<String>, Error> {
    if crate::cookies::cross_site(&headers, &state.settings())
        || !crate::secret::ct_eq(f.csrf.as_deref().unwrap_or_default(), &cv.csrf)
    {
        return Err(Error::Forbidden);
    }
    let helpful = match f.helpful.as_deref() {
        Some("yes") => true,
        Some("no") => false,
        _ => return Err(Error::BadRequest("answer yes or no")),
    };
    let comment = f.comment.trim();
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(Error::BadRequest("the comment is too long"));
    }
    // Through the gate: a page the viewer may not read is a 404, as everywhere.
    let view = state
        .library()
        .page(&cv.viewer, &id)
        .await?
        .ok_or(Error::NotFound)?;
    let who = state.insights().who(&cv.viewer);
    state.insights().send(Event::Feedback(FeedbackRecord {
        page_id: view.page.id.clone(),
        voter: who.voter,
        space_key: view.space.key.clone(),
        page_title: view.page.title.clone(),
        domain: who.domain,
        email: who.email,
        helpful,
        comment: Some(comment.to_owned()).filter(|c| !c.is_empty()),
        at: chrono::Utc::now(),
    }));
    render(&FeedbackThanks {
        chrome: chrome_for(&state, &cv),
        title: &view.page.title,
        page_href: urls::page(&view.page.id),
    })
}

/// `GET /assets/suggest.js`: the search boxes' suggestions, compiled into the binary.
pub(crate) async fn suggest_js() -> Response {
    let mut r = include_str!("../static/suggest.js").into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// `GET /static/style.css`: the stylesheet with the brand's colours, under a fixed URL
/// (pages link to the hashed [`brand_asset`] URL instead).
pub(crate) async fn stylesheet(State(state): State<AppState>) -> Response {
    match state.brand().asset("style.css") {
        Some(a) => asset_response(a, "public, max-age=3600"),
        None => Error::NotFound.into_response(),
    }
}

/// `GET /static/brand/{name}?v=HASH`: a file of the brand, from memory. The URL changes with
/// the content, so it may be cached for good. Images get a sandboxing CSP of their own: an
/// SVG logo opened directly runs nothing.
pub(crate) async fn brand_asset(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Response {
    let brand = state.brand();
    let Some(a) = brand.asset(&name) else {
        return Error::NotFound.into_response();
    };
    let mut r = asset_response(a, "public, max-age=31536000, immutable");
    if a.content_type.starts_with("image/") {
        r.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
        );
    }
    r
}

fn asset_response(a: &crate::brand::Asset, cache: &'static str) -> Response {
    let mut r = a.bytes.clone().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_descriptions_are_shortened_at_a_word() {
        assert_eq!(shorten("  short\n text ", 20), "short text");
        assert_eq!(shorten("one two three four", 12), "one two…");
        assert_eq!(shorten("abcdefghijklmnop", 5), "abcde…");
        let long = "é".repeat(300);
        assert_eq!(shorten(&long, 160).chars().count(), 161);
        assert_eq!(shorten("Ends here. And more words", 12), "Ends here…");
    }
    use chrono::{TimeZone, Utc};
    use kbgate_store::{AttachmentRecord, BlobRef, Heading, PageRecord, SpaceRecord};

    fn view(title: &str, body: &str) -> PageView {
        let at = Utc.with_ymd_and_hms(2026, 9, 1, 12, 0, 0).unwrap();
        let summary = |id: &str, title: &str| PageSummary {
            id: id.into(),
            space_id: "100".into(),
            parent_id: None,
            position: 0,
            title: title.into(),
            version: 1,
            updated_at: at,
            labels: vec![],
            effective_restricted: false,
        };
        PageView {
            page: PageRecord {
                id: "7".into(),
                space_id: "100".into(),
                parent_id: Some("1".into()),
                position: 0,
                title: title.into(),
                version: 3,
                created_at: at,
                updated_at: at,
                labels: vec![],
                restricted: false,
                effective_restricted: false,
                body_storage: String::new(),
                body_html: String::new(),
                body_text: String::new(),
                headings: vec![],
            },
            space: SpaceRecord {
                id: "100".into(),
                key: "KB".into(),
                name: "Knowledge <Base>".into(),
                homepage_id: None,
                ..Default::default()
            },
            crumbs: vec![summary("1", "Parent & \"quotes\"")],
            html: body.into(),
            headings: vec![Heading {
                level: 2,
                text: "Setup <b>".into(),
                anchor: "setup".into(),
            }],
            attachments: vec![AttachmentRecord {
                id: "9".into(),
                page_id: "7".into(),
                title: "guide 'v2'.pdf".into(),
                media_type: "application/pdf".into(),
                file_size: 2048,
                version: 1,
                updated_at: at,
                blob: Some(BlobRef::parse(&"ab".repeat(32), 2048).unwrap()),
            }],
            sidebar_html: "<ul><li>tree</li></ul>".into(),
            sidebar_cut: true,
            rendered: Default::default(),
            home_rendered: Default::default(),
        }
    }

    fn direct(v: &PageView, email: &str, csrf: &str) -> String {
        let chrome = Chrome {
            brand: docs_brand(),
            user: Some(User {
                email: email.into(),
                csrf: csrf.into(),
            }),
            query: String::new(),
        };
        page_template(chrome, v).render().unwrap()
    }

    fn docs_brand() -> Arc<Brand> {
        let cfg = kbgate_config::BrandConfig {
            site_name: "Docs & more".into(),
            title_name: "Docs & more".into(),
            ..Default::default()
        };
        Arc::new(Brand::load(&cfg).unwrap())
    }

    #[test]
    fn a_spliced_page_is_byte_for_byte_the_direct_render() {
        let v = view("Title <script>alert(1)</script>", "<p>Body</p>");
        let s = splice(docs_brand(), &v).expect("the stand-ins are found");
        for email in ["ann@acme.com", "o'brien&co<x>@acme.com", "\"q\"@acme.com"] {
            let csrf = "0123456789abcdef0123456789abcdef";
            assert_eq!(s.fill(email, csrf), direct(&v, email, csrf), "{email}");
        }
        let html = s.fill("o'brien&co<x>@acme.com", "c");
        assert!(
            html.contains("o&#39;brien&#38;co&#60;x&#62;@acme.com"),
            "{html}"
        );
        assert!(!html.contains("kbgateEmail") && !html.contains("kbgateCsrf"));
    }

    #[test]
    fn result_counts_read_as_people_expect() {
        assert_eq!(count_text(MatchCount::Exact(0)), "0 results");
        assert_eq!(count_text(MatchCount::Exact(1)), "1 result");
        assert_eq!(count_text(MatchCount::Exact(100)), "100 results");
        assert_eq!(
            count_text(MatchCount::AtLeast(101)),
            "More than 100 results"
        );
        assert_eq!(count_text(MatchCount::AtLeast(0)), "");
    }

    #[test]
    fn content_naming_a_stand_in_falls_back_to_rendering_per_request() {
        let (email, _) = &*MARKS;
        let v = view("Plain", &format!("<p>{email}</p>"));
        assert!(splice(docs_brand(), &v).is_none());
    }
}
