//! Server-rendered pages (askama): home, space, page, search, sign-in, errors.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use kbgate_store::{PageSummary, SpaceRecord};
use serde::Deserialize;

use crate::chrome::{Chrome, User};
use crate::error::Error;
use crate::extractors::CurrentViewer;
use crate::html;
use crate::library::{PageView, SpaceIndex};
use crate::spliced::Spliced;
use crate::state::AppState;
use crate::urls;

fn chrome_for(state: &AppState, cv: &CurrentViewer) -> Chrome {
    Chrome::signed_in(
        &state.settings(),
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
    description: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    spaces: Vec<SpaceCard>,
}

/// `GET /`: the spaces this viewer may read.
pub(crate) async fn home(
    State(state): State<AppState>,
    cv: CurrentViewer,
) -> Result<Html<String>, Error> {
    let spaces = state.library().spaces(&cv.viewer).await?;
    render(&HomePage {
        chrome: chrome_for(&state, &cv),
        spaces: spaces
            .into_iter()
            .map(|s| SpaceCard {
                key: s.key,
                name: s.name,
                description: String::new(),
            })
            .collect(),
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
}

fn space_template<'a>(
    chrome: Chrome,
    space: &'a SpaceRecord,
    index: &'a SpaceIndex,
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
        description: String::new(),
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
    let index = lib
        .space_index(&cv.viewer, &space, q.under.as_deref())
        .await?
        .ok_or(Error::NotFound)?;
    let shared = index.rendered.get_or_init(|| {
        let (email, csrf) = &*MARKS;
        let html = space_template(marked_chrome(&state.settings().site_name), &space, &index)
            .render()
            .ok()?;
        Spliced::cut(&html, email, csrf)
    });
    let html = match shared {
        Some(s) => Html(s.fill(cv.viewer.email().as_str(), &cv.csrf)),
        None => render(&space_template(chrome_for(&state, &cv), &space, &index))?,
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
fn marked_chrome(site_name: &str) -> Chrome {
    let (email, csrf) = &*MARKS;
    Chrome {
        site_name: site_name.to_owned(),
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
fn splice(site_name: &str, view: &PageView) -> Option<Spliced> {
    let (email, csrf) = &*MARKS;
    let html = page_template(marked_chrome(site_name), view)
        .render()
        .ok()?;
    Spliced::cut(&html, email, csrf)
}

/// `GET /pages/{id}`: a page, if this viewer may read it; 404 otherwise.
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
    let shared = view
        .rendered
        .get_or_init(|| splice(&state.settings().site_name, &view));
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

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    hits: Vec<HitView>,
    next_offset: Option<u32>,
    query_enc: String,
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
}

/// Longest search query accepted.
pub(crate) const MAX_QUERY_CHARS: usize = 200;
/// Deepest result offset accepted.
pub(crate) const MAX_OFFSET: u32 = 1000;
const PAGE_SIZE: u32 = 20;

pub(crate) fn check_query(q: &SearchQuery) -> Result<(), Error> {
    if q.q.chars().count() > MAX_QUERY_CHARS {
        return Err(Error::BadRequest("the search text is too long"));
    }
    if q.offset > MAX_OFFSET {
        return Err(Error::BadRequest("the result offset is too large"));
    }
    Ok(())
}

/// `GET /search?q=`: search over what the viewer may read.
pub(crate) async fn search(
    State(state): State<AppState>,
    cv: CurrentViewer,
    Query(q): Query<SearchQuery>,
) -> Result<Html<String>, Error> {
    check_query(&q)?;
    let text = q.q.trim().to_owned();
    let (hits, has_more) = if text.is_empty() {
        (Vec::new(), false)
    } else {
        state
            .library()
            .search(&cv.viewer, &text, PAGE_SIZE, q.offset)
            .await?
    };
    let mut chrome = chrome_for(&state, &cv);
    chrome.query = text.clone();
    render(&SearchPage {
        chrome,
        hits: hits
            .into_iter()
            .map(|h| HitView {
                id: h.hit.page_id,
                title: h.hit.title,
                space_key: h.space_key,
                excerpt_html: html::excerpt_html(&h.hit.excerpt),
            })
            .collect(),
        next_offset: has_more.then_some(q.offset + PAGE_SIZE),
        query_enc: serde_urlencoded::to_string([("", text.as_str())])
            .map(|s| s.trim_start_matches('=').to_owned())
            .unwrap_or_default(),
    })
}

/// `GET /static/style.css`: the one stylesheet, compiled into the binary.
pub(crate) async fn stylesheet() -> Response {
    let mut r = include_str!("../static/style.css").into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
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
        }
    }

    fn direct(v: &PageView, email: &str, csrf: &str) -> String {
        let chrome = Chrome {
            site_name: "Docs & more".into(),
            user: Some(User {
                email: email.into(),
                csrf: csrf.into(),
            }),
            query: String::new(),
        };
        page_template(chrome, v).render().unwrap()
    }

    #[test]
    fn a_spliced_page_is_byte_for_byte_the_direct_render() {
        let v = view("Title <script>alert(1)</script>", "<p>Body</p>");
        let s = splice("Docs & more", &v).expect("the stand-ins are found");
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
    fn content_naming_a_stand_in_falls_back_to_rendering_per_request() {
        let (email, _) = &*MARKS;
        let v = view("Plain", &format!("<p>{email}</p>"));
        assert!(splice("KB", &v).is_none());
    }
}
