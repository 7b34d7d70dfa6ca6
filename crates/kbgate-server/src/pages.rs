//! Server-rendered pages (askama): home, space, page, search, sign-in, errors.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::error::Error;
use crate::gate::CurrentViewer;
use crate::html;
use crate::state::AppState;

/// The signed-in user as the page header shows it.
pub(crate) struct User {
    pub email: String,
    pub csrf: String,
}

/// What every page's frame needs.
pub(crate) struct Chrome {
    pub site_name: String,
    pub user: Option<User>,
    pub query: String,
}

impl Chrome {
    pub(crate) fn anonymous(state: &AppState) -> Chrome {
        Chrome {
            site_name: state.settings().site_name.clone(),
            user: None,
            query: String::new(),
        }
    }

    fn for_viewer(state: &AppState, cv: &CurrentViewer) -> Chrome {
        Chrome {
            site_name: state.settings().site_name.clone(),
            user: Some(User {
                email: cv.viewer.email().as_str().to_owned(),
                csrf: cv.csrf.clone(),
            }),
            query: String::new(),
        }
    }
}

/// Renders a template, mapping a (bug-only) render failure to a 500.
pub(crate) fn render<T: Template>(t: &T) -> Result<Html<String>, Error> {
    t.render().map(Html).map_err(Error::internal)
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    signin_href: String,
    heading: &'a str,
    message: &'a str,
}

/// The HTML body of an error page (no user data in it, so it needs no state).
pub(crate) fn render_error_page(
    status: StatusCode,
    message: &str,
    back: Option<&crate::redirect::LocalPath>,
) -> String {
    let signin_href = match back {
        Some(p) => format!(
            "/auth/email?{}",
            serde_urlencoded::to_string([("return_to", p.as_str())]).unwrap_or_default()
        ),
        None => "/auth/email".to_owned(),
    };
    let heading = match status.as_u16() {
        401 => "Sign in required",
        403 => "No access",
        404 => "Page not found",
        429 => "Slow down",
        s if s >= 500 => "Something went wrong",
        _ => "Request not understood",
    };
    let page = ErrorPage {
        chrome: Chrome {
            site_name: "Knowledge base".to_owned(),
            user: None,
            query: String::new(),
        },
        status: status.as_u16(),
        signin_href,
        heading,
        message,
    };
    page.render()
        .unwrap_or_else(|_| format!("<!doctype html><title>{heading}</title><h1>{heading}</h1>"))
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
        chrome: Chrome::for_viewer(&state, &cv),
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

#[derive(Template)]
#[template(path = "space.html")]
struct SpacePage {
    chrome: Chrome,
    name: String,
    description: String,
    tree_html: String,
}

/// `GET /spaces/{key}`: space home with the page tree.
pub(crate) async fn space(
    State(state): State<AppState>,
    cv: CurrentViewer,
    Path(key): Path<String>,
) -> Result<Response, Error> {
    let lib = state.library();
    let space = lib.space(&cv.viewer, &key).await?.ok_or(Error::NotFound)?;
    let tree = lib.tree(&cv.viewer, &space).await?;
    let tree_html = if tree.is_empty() {
        "<p>No pages are available to you in this space.</p>".to_owned()
    } else {
        html::tree_html(&tree, None)
    };
    Ok(render(&SpacePage {
        chrome: Chrome::for_viewer(&state, &cv),
        name: space.name,
        description: String::new(),
        tree_html,
    })?
    .into_response())
}

struct Crumb {
    id: String,
    title: String,
}

struct TocEntry {
    level: u8,
    anchor: String,
    text: String,
}

struct AttachmentLink {
    href: String,
    name: String,
    size: String,
}

#[derive(Template)]
#[template(path = "page.html")]
struct PagePage {
    chrome: Chrome,
    title: String,
    space_key: String,
    space_name: String,
    crumbs: Vec<Crumb>,
    toc: Vec<TocEntry>,
    updated_iso: String,
    updated_human: String,
    body_html: String,
    tree_html: String,
    /// The sidebar left entries out: it links to the space's whole tree.
    tree_cut: bool,
    attachments: Vec<AttachmentLink>,
}

/// The download URL of an attachment (by page and file name, as storage format names them).
pub(crate) fn attachment_href(page_id: &str, file_name: &str) -> String {
    format!(
        "/attachments/{}/{}",
        percent_encode_segment(page_id),
        percent_encode_segment(file_name)
    )
}

/// Percent-encodes one path segment (everything but unreserved characters).
pub(crate) fn percent_encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET /pages/{id}`: a page, if this viewer may read it; 404 otherwise.
pub(crate) async fn page(
    State(state): State<AppState>,
    cv: CurrentViewer,
    Path(id): Path<String>,
) -> Result<Html<String>, Error> {
    let lib = state.library();
    let view = lib.page(&cv.viewer, &id).await?.ok_or(Error::NotFound)?;
    let tree = lib.tree(&cv.viewer, &view.space).await?;
    let (local, tree_cut) = html::local_tree(&tree, &view.page.id);
    let tree_html = html::tree_html(&local, Some(&view.page.id));
    render(&PagePage {
        chrome: Chrome::for_viewer(&state, &cv),
        title: view.page.title.clone(),
        space_key: view.space.key.clone(),
        space_name: view.space.name.clone(),
        crumbs: view
            .crumbs
            .iter()
            .map(|c| Crumb {
                id: c.id.clone(),
                title: c.title.clone(),
            })
            .collect(),
        toc: view
            .headings
            .iter()
            .filter(|h| (2..=4).contains(&h.level) && !h.anchor.is_empty())
            .map(|h| TocEntry {
                level: h.level,
                anchor: h.anchor.clone(),
                text: h.text.clone(),
            })
            .collect(),
        updated_iso: view.page.updated_at.to_rfc3339(),
        updated_human: view.page.updated_at.format("%-d %B %Y").to_string(),
        body_html: view.html,
        tree_html,
        tree_cut,
        attachments: view
            .attachments
            .iter()
            .filter(|a| a.blob.is_some())
            .map(|a| AttachmentLink {
                href: attachment_href(&a.page_id, &a.title),
                name: a.title.clone(),
                size: html::file_size(a.file_size),
            })
            .collect(),
    })
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
#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub offset: u32,
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
    let mut chrome = Chrome::for_viewer(&state, &cv);
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
