//! JSON API for the host app (or the browser session): spaces, pages, search.

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Error;
use crate::extractors::ApiViewer;
use crate::html::{self, TreeNode};
use crate::library::Found;
use crate::pages::{SearchQuery, check_query};
use crate::state::AppState;
use crate::urls;
use kbgate_store::MatchCount;

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SpaceJson {
    key: String,
    name: String,
    homepage_id: Option<String>,
    url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SpacesJson {
    email: String,
    spaces: Vec<SpaceJson>,
}

/// `GET /api/v1/spaces`.
#[utoipa::path(
    get, path = "/api/v1/spaces", tag = "content",
    summary = "The spaces the person may read",
    params(crate::openapi::AsPerson),
    responses(
        (status = 200, description = "The person's spaces", body = SpacesJson),
        crate::openapi::ViewerErrors,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub(crate) async fn spaces(
    State(state): State<AppState>,
    v: ApiViewer,
) -> Result<Json<SpacesJson>, Error> {
    let spaces = state.library().spaces(&v.viewer).await?;
    Ok(Json(SpacesJson {
        email: v.viewer.email().as_str().to_owned(),
        spaces: spaces
            .into_iter()
            .map(|s| SpaceJson {
                url: state.settings().absolute(&urls::space(&s.key)),
                key: s.key,
                name: s.name,
                homepage_id: s.homepage_id,
            })
            .collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TreeJson {
    key: String,
    name: String,
    /// The cached tree itself, serialised in place (a 25,000-page tree is megabytes).
    #[schema(value_type = Vec<TreeNode>)]
    pages: std::sync::Arc<Vec<TreeNode>>,
}

/// `GET /api/v1/spaces/{key}/tree`: the viewer's page tree of a space.
#[utoipa::path(
    get, path = "/api/v1/spaces/{key}/tree", tag = "content",
    summary = "The page tree of a space, as the person may read it",
    params(("key" = String, Path, description = "Space key"), crate::openapi::AsPerson),
    responses(
        (status = 200, description = "The tree", body = TreeJson),
        crate::openapi::ViewerErrors,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub(crate) async fn tree(
    State(state): State<AppState>,
    v: ApiViewer,
    Path(key): Path<String>,
) -> Result<Json<TreeJson>, Error> {
    let lib = state.library();
    let space = lib.space(&v.viewer, &key).await?.ok_or(Error::NotFound)?;
    let pages = lib.tree(&v.viewer, &space).await?;
    Ok(Json(TreeJson {
        key: space.key,
        name: space.name,
        pages,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Ref {
    id: String,
    title: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct HeadingJson {
    level: u8,
    text: String,
    anchor: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AttachmentJson {
    id: String,
    file_name: String,
    media_type: String,
    size: i64,
    url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct PageJson {
    id: String,
    title: String,
    space_key: String,
    space_name: String,
    version: i64,
    updated_at: DateTime<Utc>,
    labels: Vec<String>,
    breadcrumbs: Vec<Ref>,
    headings: Vec<HeadingJson>,
    attachments: Vec<AttachmentJson>,
    url: String,
    /// Sanitised HTML, resolved for this viewer.
    html: String,
}

/// `GET /api/v1/pages/{id}`.
#[utoipa::path(
    get, path = "/api/v1/pages/{id}", tag = "content",
    summary = "A page, rendered for the person",
    params(("id" = String, Path, description = "Confluence page id"), crate::openapi::AsPerson),
    responses(
        (status = 200, description = "The page", body = PageJson),
        crate::openapi::ViewerErrors,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub(crate) async fn page(
    State(state): State<AppState>,
    v: ApiViewer,
    Path(id): Path<String>,
) -> Result<Json<PageJson>, Error> {
    let view = state
        .library()
        .page(&v.viewer, &id)
        .await?
        .ok_or(Error::NotFound)?;
    let s = &state.settings();
    Ok(Json(PageJson {
        url: s.absolute(&urls::page(&view.page.id)),
        id: view.page.id.clone(),
        title: view.page.title.clone(),
        space_key: view.space.key.clone(),
        space_name: view.space.name.clone(),
        version: view.page.version,
        updated_at: view.page.updated_at,
        labels: view.page.labels.clone(),
        breadcrumbs: view
            .crumbs
            .iter()
            .map(|c| Ref {
                id: c.id.clone(),
                title: c.title.clone(),
            })
            .collect(),
        headings: view
            .headings
            .iter()
            .map(|h| HeadingJson {
                level: h.level,
                text: h.text.clone(),
                anchor: h.anchor.clone(),
            })
            .collect(),
        attachments: view
            .downloads()
            .map(|a| AttachmentJson {
                url: s.absolute(&urls::attachment(&a.page_id, &a.title)),
                id: a.id.clone(),
                file_name: a.title.clone(),
                media_type: a.media_type.clone(),
                size: a.file_size,
            })
            .collect(),
        html: view.html.clone(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct HitJson {
    id: String,
    title: String,
    space_key: String,
    /// Plain-text excerpt.
    excerpt: String,
    /// The excerpt as safe HTML with `<mark>` around matches.
    excerpt_html: String,
    url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SearchJson {
    query: String,
    offset: u32,
    has_more: bool,
    /// How many readable pages match: exactly, or at least (`total_exact` false) when the
    /// match set is larger than the search's candidate bound.
    total: u64,
    total_exact: bool,
    hits: Vec<HitJson>,
}

/// `GET /api/v1/search?q=&limit=&offset=&space=&label=`.
#[utoipa::path(
    get, path = "/api/v1/search", tag = "content",
    summary = "Full-text search over what the person may read",
    params(SearchQuery, crate::openapi::AsPerson),
    responses(
        (status = 200, description = "One page of hits", body = SearchJson),
        crate::openapi::ViewerErrors,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub(crate) async fn search(
    State(state): State<AppState>,
    v: ApiViewer,
    Query(q): Query<SearchQuery>,
) -> Result<Json<SearchJson>, Error> {
    check_query(&q)?;
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let text = q.q.trim().to_owned();
    let found = if text.is_empty() {
        Found::default()
    } else {
        state
            .library()
            .search(&v.viewer, &text, &q.filter(), limit, q.offset)
            .await?
    };
    let (total, total_exact) = match found.total {
        MatchCount::Exact(n) => (n, true),
        MatchCount::AtLeast(n) => (n, false),
    };
    let (hits, has_more) = (found.hits, found.has_more);
    let s = &state.settings();
    Ok(Json(SearchJson {
        query: text,
        offset: q.offset,
        has_more,
        total,
        total_exact,
        hits: hits
            .into_iter()
            .map(|h| HitJson {
                url: s.absolute(&urls::page(&h.hit.page_id)),
                excerpt: html::excerpt_plain(&h.hit.excerpt),
                excerpt_html: html::excerpt_html(&h.hit.excerpt),
                id: h.hit.page_id,
                title: h.hit.title,
                space_key: h.space_key,
            })
            .collect(),
    }))
}
