//! Confluence REST v2 content endpoints: spaces, pages, attachments, labels, children.
//!
//! Visibility is enforced like Confluence: a caller only sees spaces it may read and pages whose
//! own and ancestors' read restrictions it satisfies; anything else is a 404.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::Sim;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiFamily};
use crate::generator::render_body;
use crate::model::{Attachment, Page, PageStatus, Space, State, Subject, User, UserKind};
use crate::paging::{Params, SortKey, cursor_param, encode_segment, keyset, site_base, v2_list};

const F: ApiFamily = ApiFamily::V2;

/// v2 routes.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/wiki/api/v2/spaces", get(list_spaces))
        .route("/wiki/api/v2/spaces/{id}", get(get_space))
        .route("/wiki/api/v2/spaces/{id}/pages", get(space_pages))
        .route("/wiki/api/v2/pages/{id}", get(get_page))
        .route("/wiki/api/v2/pages/{id}/attachments", get(page_attachments))
        .route("/wiki/api/v2/pages/{id}/labels", get(page_labels))
        .route("/wiki/api/v2/pages/{id}/children", get(page_children))
        .route("/wiki/api/v2/labels/{id}/pages", get(label_pages))
        .route("/wiki/api/v2/folders/{id}", get(get_folder))
        .route(
            "/wiki/api/v2/pages/{id}/direct-children",
            get(page_direct_children),
        )
        .route(
            "/wiki/api/v2/folders/{id}/direct-children",
            get(folder_direct_children),
        )
}

/// The direct children of a page or folder, of every hierarchical type (page, folder,
/// whiteboard, database, embed), current and archived, that the caller may see, in
/// `childPosition` order (v2 spec 2026-04: `ChildrenResponse`, "Hierarchical content type
/// (database/embed/folder/page/whiteboard)"; status `OnlyArchivedAndCurrentContentStatus`).
fn direct_children(
    sim: &Sim,
    auth: &AuthUser,
    headers: &HeaderMap,
    p: &Params,
    parent: u64,
    path: String,
) -> Result<Response, ApiError> {
    let limit = p.limit(25, sim.caps().v2_list, F)?;
    let cursor = cursor_param(p, F)?;
    let live = |st: PageStatus| matches!(st, PageStatus::Current | PageStatus::Archived);
    let (results, next) = sim.read(|s| {
        let items: Vec<_> = s
            .child_ids(parent)
            .into_iter()
            .filter_map(|c| {
                if let Some(pg) = s.pages.get(&c) {
                    (live(pg.status) && page_visible(s, &auth.user, pg))
                        .then(|| {
                            json!({
                                "id": pg.id.to_string(),
                                "status": pg.status.as_str(),
                                "title": pg.title,
                                "type": "page",
                                "spaceId": pg.space_id.to_string(),
                                "childPosition": pg.position,
                            })
                        })
                        .map(|v| (pg.position, pg.id, v))
                } else {
                    let ct = s.contents.get(&c)?;
                    let visible = live(ct.status)
                        && ct.kind != crate::model::ContentKind::Blogpost
                        && s.spaces
                            .get(&ct.space_id)
                            .is_some_and(|sp| can_read_space(s, &auth.user, &sp.key))
                        && s.can_read_page(&auth.user.account_id, ct.id);
                    visible.then(|| {
                        (
                            ct.position,
                            ct.id,
                            json!({
                                "id": ct.id.to_string(),
                                "status": ct.status.as_str(),
                                "title": ct.title,
                                "type": ct.kind.as_str(),
                                "spaceId": ct.space_id.to_string(),
                                "childPosition": ct.position,
                            }),
                        )
                    })
                }
            })
            .map(|(pos, id, v)| (SortKey::Int(pos as i64), id, v))
            .collect();
        let (page, next) = keyset(items, false, cursor.as_ref(), limit);
        (
            page.into_iter().map(|(_, _, v)| v).collect::<Vec<_>>(),
            next,
        )
    });
    let base = site_base(headers, sim);
    Ok(v2_list(&base, &path, p, results, next, limit))
}

async fn page_direct_children(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    sim.read(|s| {
        visible_page(s, &auth, id, &[PageStatus::Current, PageStatus::Archived]).map(|_| ())
    })?;
    let path = format!("/wiki/api/v2/pages/{id}/direct-children");
    direct_children(&sim, &auth, &headers, &p, id, path)
}

async fn folder_direct_children(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let found = sim.read(|s| {
        s.contents.get(&id).is_some_and(|c| {
            c.kind == crate::model::ContentKind::Folder
                && c.status == PageStatus::Current
                && s.spaces
                    .get(&c.space_id)
                    .is_some_and(|sp| can_read_space(s, &auth.user, &sp.key))
                && s.can_read_page(&auth.user.account_id, c.id)
        })
    });
    if !found {
        return Err(ApiError::not_found(F, format!("Folder {id} not found")));
    }
    let path = format!("/wiki/api/v2/folders/{id}/direct-children");
    direct_children(&sim, &auth, &headers, &p, id, path)
}

/// v2 folder JSON (`FolderSingle`).
pub fn folder_json(s: &State, f: &crate::model::Content) -> Value {
    let key = s
        .spaces
        .get(&f.space_id)
        .map(|sp| sp.key.as_str())
        .unwrap_or("");
    let mut v = json!({
        "id": f.id.to_string(),
        "type": "folder",
        "status": f.status.as_str(),
        "title": f.title,
        "position": f.position,
        "authorId": f.author_id,
        "ownerId": f.author_id,
        "createdAt": iso(f.created_at),
        "spaceId": f.space_id.to_string(),
        "version": {
            "createdAt": iso(f.last_modified),
            "message": "",
            "number": f.version,
            "minorEdit": false,
            "authorId": f.author_id,
        },
        "_links": { "webui": format!("/spaces/{key}/folder/{}", f.id) },
    });
    if let Some(parent) = f.parent_id {
        v["parentId"] = json!(parent.to_string());
        v["parentType"] = json!(s.parent_type(parent));
    }
    v
}

/// `GET /wiki/api/v2/folders/{id}`: a folder the caller may see (space readable, its own and
/// its ancestors' read restrictions satisfied), else 404.
async fn get_folder(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let base = site_base(&headers, &sim);
    sim.read(|s| {
        let f = s
            .contents
            .get(&id)
            .filter(|c| c.kind == crate::model::ContentKind::Folder)
            .filter(|c| c.status == PageStatus::Current)
            .filter(|c| {
                s.spaces
                    .get(&c.space_id)
                    .is_some_and(|sp| can_read_space(s, &auth.user, &sp.key))
                    && s.can_read_page(&auth.user.account_id, c.id)
            })
            .ok_or_else(|| ApiError::not_found(F, format!("Folder {id} not found")))?;
        let mut v = folder_json(s, f);
        v["_links"]["base"] = json!(format!("{base}/wiki"));
        Ok(axum::Json(v).into_response())
    })
}

/// ISO-8601 with milliseconds and `Z`, as Confluence prints dates.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Whether `user` may read space `key` (direct or group `read` permission; guests only their
/// assigned space; unlicensed users where unlicensed view is on).
pub fn can_read_space(s: &State, user: &User, key: &str) -> bool {
    let direct = s.space_permissions.values().any(|p| {
        p.space_key == key
            && p.operation.key == "read"
            && match &p.subject {
                Subject::User(u) => *u == user.account_id,
                Subject::Group(g) => s
                    .groups
                    .get(g)
                    .is_some_and(|grp| grp.members.contains(&user.account_id)),
            }
    });
    match user.kind {
        UserKind::Guest => {
            direct
                && s.guest_spaces
                    .get(&user.account_id)
                    .is_some_and(|k| k == key)
        }
        UserKind::Unlicensed => {
            direct || (s.global_unlicensed_access && s.unlicensed_view.contains(key))
        }
        UserKind::Licensed => direct,
    }
}

/// Whether `user` may see page `id` (space readable, restrictions satisfied).
pub fn page_visible(s: &State, user: &User, page: &Page) -> bool {
    let Some(space) = s.spaces.get(&page.space_id) else {
        return false;
    };
    can_read_space(s, user, &space.key) && s.can_read_page(&user.account_id, page.id)
}

fn parse_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>()
        .map_err(|_| ApiError::bad_request(F, format!("Invalid id: {raw}")))
}

/// What a space listing adds to each space: the description in one representation
/// (`description-format`) and the icon (`include-icon`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SpaceDetails {
    /// `plain` or `view`; `None`: no `description` field.
    pub description: Option<DescriptionFormat>,
    /// `include-icon=true`.
    pub icon: bool,
}

/// The representations of `description-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescriptionFormat {
    /// The text.
    Plain,
    /// Rendered HTML.
    View,
}

impl SpaceDetails {
    /// Reads `description-format` (`plain` or `view`, else 400) and `include-icon`, as the
    /// v2 OpenAPI document of `GET /wiki/api/v2/spaces` and `/spaces/{id}` defines them.
    pub fn from_params(p: &Params) -> Result<Self, ApiError> {
        let description = match p.get("description-format") {
            None => None,
            Some("plain") => Some(DescriptionFormat::Plain),
            Some("view") => Some(DescriptionFormat::View),
            Some(other) => {
                return Err(ApiError::bad_request(
                    F,
                    format!("Invalid description-format: {other}"),
                ));
            }
        };
        Ok(SpaceDetails {
            description,
            icon: p.flag("include-icon", false, F)?,
        })
    }
}

/// v2 Space JSON with the description and icon asked for. Shapes are the v2 document's
/// `SpaceDescription` (`{plain|view: {value, representation}}`, the value empty for a space
/// without one) and `SpaceIcon` (`path`; `apiDownloadLink` for an uploaded icon of a
/// `global`/knowledge-base space). An uploaded icon is an attachment of the space's
/// description object: its `path` is the browser servlet `/wiki/download/attachments/…`
/// (401 to API tokens, like any attachment's since CHANGE-2735) with the version in its
/// query; `apiDownloadLink` is the REST download, which redirects to the media host. A space
/// on the default logo answers the stock image path, as Cloud's `default-space-logo.svg`.
pub fn space_json_with(sp: &Space, details: SpaceDetails) -> Value {
    let mut v = space_json(sp);
    if let Some(format) = details.description {
        v["description"] = match format {
            DescriptionFormat::Plain => {
                json!({ "plain": { "value": sp.description, "representation": "plain" } })
            }
            DescriptionFormat::View => {
                let html = if sp.description.is_empty() {
                    String::new()
                } else {
                    format!("<p>{}</p>", html_escape(&sp.description))
                };
                json!({ "view": { "value": html, "representation": "view" } })
            }
        };
    }
    if details.icon {
        v["icon"] = match &sp.icon {
            Some(icon) => {
                let desc = sp.description_id();
                json!({
                    "path": format!(
                        "/wiki/download/attachments/{desc}/{}?version={}&modificationDate={}&cacheVersion=1&api=v2",
                        urlencoding_path(&icon.title),
                        icon.version,
                        icon.modified_at.timestamp_millis()
                    ),
                    "apiDownloadLink": format!(
                        "/wiki/rest/api/content/{desc}/child/attachment/att{}/download",
                        icon.id
                    ),
                })
            }
            None => json!({ "path": "/wiki/images/logo/default-space-logo.svg" }),
        };
    }
    v
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A file name as one path segment.
fn urlencoding_path(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// v2 Space JSON.
pub fn space_json(sp: &Space) -> Value {
    let mut v = json!({
        "id": sp.id.to_string(),
        "key": sp.key,
        "name": sp.name,
        "type": sp.space_type,
        "status": sp.status.as_str(),
        "authorId": sp.author_id,
        "createdAt": iso(sp.created_at),
        "_links": { "webui": format!("/spaces/{}", sp.key) },
    });
    if let Some(h) = sp.homepage_id {
        v["homepageId"] = json!(h.to_string());
    }
    v
}

fn version_json(v: &crate::model::Version) -> Value {
    json!({
        "createdAt": iso(v.created_at),
        "message": v.message,
        "number": v.number,
        "minorEdit": v.minor_edit,
        "authorId": v.author_id,
    })
}

/// Slug for web UI links.
pub fn slug(title: &str) -> String {
    encode_segment(&title.replace(' ', "+")).replace("%2B", "+")
}

/// v2 Page JSON (bulk or single shape). `body` is the storage value when requested.
pub fn page_json(s: &State, p: &Page, body: Option<&str>, with_version: bool) -> Value {
    let key = s
        .spaces
        .get(&p.space_id)
        .map(|sp| sp.key.as_str())
        .unwrap_or("");
    let mut v = json!({
        "id": p.id.to_string(),
        "status": p.status.as_str(),
        "title": p.title,
        "spaceId": p.space_id.to_string(),
        "position": p.position,
        "authorId": p.author_id,
        "ownerId": p.author_id,
        "lastOwnerId": null,
        "createdAt": iso(p.created_at),
        "body": {},
        "_links": {
            "webui": format!("/spaces/{key}/pages/{}/{}", p.id, slug(&p.title)),
            "editui": format!("/pages/resumedraft.action?draftId={}", p.id),
            "tinyui": format!("/x/{}", tiny(p.id)),
        },
    });
    if let Some(parent) = p.parent_id {
        v["parentId"] = json!(parent.to_string());
        // A page's parent may be a folder (or a whiteboard, database, embed) in today's Cloud.
        v["parentType"] = json!(s.parent_type(parent));
    }
    if with_version {
        v["version"] = version_json(p.version());
    }
    if let Some(b) = body {
        v["body"] = json!({ "storage": { "representation": "storage", "value": b } });
    }
    v
}

fn tiny(id: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.to_le_bytes())
}

/// The relative download path of an attachment (under `/wiki`).
pub fn download_path(a: &Attachment) -> String {
    format!(
        "/download/attachments/{}/{}?version={}&modificationDate={}&api=v2",
        a.page_id,
        encode_segment(&a.title),
        a.version,
        a.created_at.timestamp_millis()
    )
}

fn media_description(mt: &str) -> &'static str {
    match mt {
        "image/png" => "PNG Image",
        "application/pdf" => "PDF Document",
        "text/plain" => "Text File",
        _ => "File",
    }
}

/// v2 Attachment JSON.
pub fn attachment_json(a: &Attachment) -> Value {
    let dl = download_path(a);
    json!({
        "id": format!("att{}", a.id),
        "status": a.status.as_str(),
        "title": a.title,
        "createdAt": iso(a.created_at),
        "pageId": a.page_id.to_string(),
        "mediaType": a.media_type,
        "mediaTypeDescription": media_description(&a.media_type),
        "comment": "",
        "fileId": a.file_id,
        "fileSize": a.bytes.len(),
        "webuiLink": format!("/pages/viewpageattachments.action?pageId={}&preview={}", a.page_id, encode_segment(&format!("/{}/att{}/{}", a.page_id, a.id, a.title))),
        "downloadLink": dl,
        "version": {
            "createdAt": iso(a.created_at),
            "message": "",
            "number": a.version,
            "minorEdit": false,
            "authorId": a.author_id,
        },
        "_links": {
            "webui": format!("/pages/viewpageattachments.action?pageId={}", a.page_id),
            "download": download_path(a),
        },
    })
}

fn label_json(l: &crate::model::Label) -> Value {
    json!({ "id": l.id.to_string(), "name": l.name, "prefix": l.prefix })
}

async fn list_spaces(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let limit = p.limit(25, sim.caps().v2_list, F)?;
    let cursor = cursor_param(&p, F)?;
    let keys = p.get_all("keys");
    let ids = p
        .get_all("ids")
        .iter()
        .map(|i| parse_id(i))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.len() > 250 || ids.len() > 250 {
        return Err(ApiError::bad_request(F, "At most 250 keys or ids"));
    }
    let details = SpaceDetails::from_params(&p)?;
    let ty = p.get("type").map(str::to_string);
    let status = p.get("status").map(str::to_string);
    let (sort_field, desc) = match p.get("sort").unwrap_or("id") {
        "id" => ("id", false),
        "-id" => ("id", true),
        "key" => ("key", false),
        "-key" => ("key", true),
        "name" => ("name", false),
        "-name" => ("name", true),
        other => return Err(ApiError::bad_request(F, format!("Invalid sort: {other}"))),
    };
    let (results, next) = sim.read(|s| {
        let items: Vec<_> = s
            .spaces
            .values()
            .filter(|sp| keys.is_empty() || keys.contains(&sp.key))
            .filter(|sp| ids.is_empty() || ids.contains(&sp.id))
            .filter(|sp| ty.as_deref().is_none_or(|t| t == sp.space_type))
            .filter(|sp| status.as_deref().is_none_or(|st| st == sp.status.as_str()))
            .filter(|sp| can_read_space(s, &auth.user, &sp.key))
            .map(|sp| {
                let k = match sort_field {
                    "key" => SortKey::Str(sp.key.clone()),
                    "name" => SortKey::Str(sp.name.clone()),
                    _ => SortKey::Int(sp.id as i64),
                };
                (k, sp.id, sp)
            })
            .collect();
        let (page, next) = keyset(items, desc, cursor.as_ref(), limit);
        (
            page.into_iter()
                .map(|(_, _, sp)| space_json_with(sp, details))
                .collect::<Vec<_>>(),
            next,
        )
    });
    let base = site_base(&headers, &sim);
    Ok(v2_list(
        &base,
        "/wiki/api/v2/spaces",
        &p,
        results,
        next,
        limit,
    ))
}

async fn get_space(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let include_labels = p.flag("include-labels", false, F)?;
    let details = SpaceDetails::from_params(&p)?;
    let base = site_base(&headers, &sim);
    sim.read(|s| {
        let sp = s
            .spaces
            .get(&id)
            .filter(|sp| can_read_space(s, &auth.user, &sp.key))
            .ok_or_else(|| ApiError::not_found(F, format!("Space {id} not found")))?;
        let mut v = space_json_with(sp, details);
        v["_links"]["base"] = json!(format!("{base}/wiki"));
        if include_labels {
            v["labels"] = json!({ "results": [], "meta": { "hasMore": false } , "_links": {} });
        }
        Ok(axum::Json(v).into_response())
    })
}

/// Parses a v2 page `sort` into (field, desc).
fn page_sort(p: &Params) -> Result<(&'static str, bool), ApiError> {
    Ok(match p.get("sort").unwrap_or("id") {
        "id" => ("id", false),
        "-id" => ("id", true),
        "created-date" => ("created", false),
        "-created-date" => ("created", true),
        "modified-date" => ("modified", false),
        "-modified-date" => ("modified", true),
        "title" => ("title", false),
        "-title" => ("title", true),
        other => return Err(ApiError::bad_request(F, format!("Invalid sort: {other}"))),
    })
}

fn page_sort_key(field: &str, pg: &Page) -> SortKey {
    match field {
        "created" => SortKey::Int(pg.created_at.timestamp_millis()),
        "modified" => SortKey::Int(pg.last_modified().timestamp_millis()),
        "title" => SortKey::Str(pg.title.clone()),
        _ => SortKey::Int(pg.id as i64),
    }
}

fn body_format(p: &Params, single: bool) -> Result<bool, ApiError> {
    match p.get("body-format") {
        None => Ok(false),
        Some("storage") => Ok(true),
        Some("atlas_doc_format") => Ok(false),
        Some("view" | "export_view" | "anonymous_export_view" | "styled_view" | "editor")
            if single =>
        {
            Ok(false)
        }
        Some(other) => Err(ApiError::bad_request(
            F,
            format!("Invalid value for body-format: {other}"),
        )),
    }
}

/// The `status` filter of v2 page calls. Default `current` and `archived`: "By default,
/// `current` and `archived` are used" (v2 spec 2026-04, `getPagesInSpace`/`getPages`).
fn status_filter(p: &Params) -> Result<Vec<PageStatus>, ApiError> {
    let raw = p.get_all("status");
    if raw.is_empty() {
        return Ok(vec![PageStatus::Current, PageStatus::Archived]);
    }
    let mut out = Vec::new();
    for r in raw {
        match r.as_str() {
            "current" => out.push(PageStatus::Current),
            "trashed" => out.push(PageStatus::Trashed),
            "archived" => out.push(PageStatus::Archived),
            "deleted" | "historical" | "draft" | "any" => {}
            other => {
                return Err(ApiError::bad_request(F, format!("Invalid status: {other}")));
            }
        }
    }
    Ok(out)
}

/// A v2 page list: the caller's visible pages matching `filter` and the common page-list
/// parameters (`limit`, `cursor`, `body-format`, `sort`, `status`, `title`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn list_pages_where(
    sim: &Sim,
    auth: &AuthUser,
    headers: &HeaderMap,
    p: &Params,
    path: &str,
    filter: impl Fn(&State, &Page) -> bool,
) -> Result<Response, ApiError> {
    let limit = p.limit(25, sim.caps().v2_list, F)?;
    let cursor = cursor_param(p, F)?;
    let with_body = body_format(p, false)?;
    let (field, desc) = page_sort(p)?;
    let statuses = status_filter(p)?;
    let title = p.get("title").map(str::to_string);
    let (results, next) = sim.read(|s| {
        let items: Vec<_> = s
            .pages
            .values()
            .filter(|pg| statuses.contains(&pg.status))
            .filter(|pg| title.as_deref().is_none_or(|t| t == pg.title))
            .filter(|pg| filter(s, pg))
            .filter(|pg| page_visible(s, &auth.user, pg))
            .map(|pg| (page_sort_key(field, pg), pg.id, pg))
            .collect();
        let (page, next) = keyset(items, desc, cursor.as_ref(), limit);
        let results = page
            .into_iter()
            .map(|(_, _, pg)| {
                let body = with_body.then(|| render_body(s, pg));
                page_json(s, pg, body.as_deref(), true)
            })
            .collect::<Vec<_>>();
        (results, next)
    });
    let base = site_base(headers, sim);
    Ok(v2_list(&base, path, p, results, next, limit))
}

async fn space_pages(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let exists = sim.read(|s| {
        s.spaces
            .get(&id)
            .is_some_and(|sp| can_read_space(s, &auth.user, &sp.key))
    });
    if !exists {
        return Err(ApiError::not_found(F, format!("Space {id} not found")));
    }
    let root_only = match p.get("depth") {
        None | Some("all") => false,
        Some("root") => true,
        Some(other) => return Err(ApiError::bad_request(F, format!("Invalid depth: {other}"))),
    };
    let path = format!("/wiki/api/v2/spaces/{id}/pages");
    list_pages_where(&sim, &auth, &headers, &p, &path, |_, pg| {
        pg.space_id == id && (!root_only || pg.parent_id.is_none())
    })
}

async fn label_pages(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    if !sim.read(|s| s.labels.contains_key(&id)) {
        return Err(ApiError::not_found(F, format!("Label {id} not found")));
    }
    let space_ids = p
        .get_all("space-id")
        .iter()
        .map(|i| parse_id(i))
        .collect::<Result<Vec<_>, _>>()?;
    let path = format!("/wiki/api/v2/labels/{id}/pages");
    list_pages_where(&sim, &auth, &headers, &p, &path, |_, pg| {
        pg.labels.contains(&id) && (space_ids.is_empty() || space_ids.contains(&pg.space_id))
    })
}

/// Finds a page the caller may see, honouring the `status` filter, or 404.
fn visible_page<'a>(
    s: &'a State,
    auth: &AuthUser,
    id: u64,
    statuses: &[PageStatus],
) -> Result<&'a Page, ApiError> {
    s.pages
        .get(&id)
        .filter(|pg| statuses.contains(&pg.status))
        .filter(|pg| page_visible(s, &auth.user, pg))
        .ok_or_else(|| ApiError::not_found(F, format!("Page {id} not found")))
}

async fn get_page(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let with_body = body_format(&p, true)?;
    let with_labels = p.flag("include-labels", false, F)?;
    let with_versions = p.flag("include-versions", false, F)?;
    let with_version = p.flag("include-version", true, F)?;
    let statuses = status_filter(&p)?;
    let base = site_base(&headers, &sim);
    sim.read(|s| {
        let pg = visible_page(s, &auth, id, &statuses)?;
        let body = with_body.then(|| render_body(s, pg));
        let mut v = page_json(s, pg, body.as_deref(), with_version);
        v["_links"]["base"] = json!(format!("{base}/wiki"));
        if with_labels {
            let labels: Vec<Value> = pg
                .labels
                .iter()
                .filter_map(|l| s.labels.get(l))
                .map(label_json)
                .collect();
            v["labels"] = json!({
                "results": labels,
                "meta": { "hasMore": false },
                "_links": { "self": format!("/wiki/api/v2/pages/{id}/labels") },
            });
        }
        if with_versions {
            let versions: Vec<Value> = pg.versions.iter().rev().map(version_json).collect();
            v["versions"] = json!({
                "results": versions,
                "meta": { "hasMore": false },
                "_links": { "self": format!("/wiki/api/v2/pages/{id}/versions") },
            });
        }
        Ok(axum::Json(v).into_response())
    })
}

async fn page_attachments(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let limit = p.limit(50, 250, F)?;
    let cursor = cursor_param(&p, F)?;
    let (field, desc) = match p.get("sort").unwrap_or("created-date") {
        "created-date" => ("c", false),
        "-created-date" => ("c", true),
        "modified-date" => ("c", false),
        "-modified-date" => ("c", true),
        other => return Err(ApiError::bad_request(F, format!("Invalid sort: {other}"))),
    };
    let _ = field;
    let media = p.get("mediaType").map(str::to_string);
    let filename = p.get("filename").map(str::to_string);
    let (results, next) = sim.read(|s| {
        visible_page(s, &auth, id, &[PageStatus::Current])?;
        let items: Vec<_> = s
            .page_attachments
            .get(&id)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
            .iter()
            .filter_map(|a| s.attachments.get(a))
            .filter(|a| a.status == PageStatus::Current)
            .filter(|a| media.as_deref().is_none_or(|m| m == a.media_type))
            .filter(|a| filename.as_deref().is_none_or(|f| f == a.title))
            .map(|a| (SortKey::Int(a.created_at.timestamp_millis()), a.id, a))
            .collect();
        let (page, next) = keyset(items, desc, cursor.as_ref(), limit);
        Ok::<_, ApiError>((
            page.into_iter()
                .map(|(_, _, a)| attachment_json(a))
                .collect::<Vec<_>>(),
            next,
        ))
    })?;
    let base = site_base(&headers, &sim);
    Ok(v2_list(
        &base,
        &format!("/wiki/api/v2/pages/{id}/attachments"),
        &p,
        results,
        next,
        limit,
    ))
}

async fn page_labels(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let limit = p.limit(25, sim.caps().v2_list, F)?;
    let cursor = cursor_param(&p, F)?;
    let prefix = p.get("prefix").map(str::to_string);
    let (results, next) = sim.read(|s| {
        let pg = visible_page(s, &auth, id, &[PageStatus::Current])?;
        let items: Vec<_> = pg
            .labels
            .iter()
            .filter_map(|l| s.labels.get(l))
            .filter(|l| prefix.as_deref().is_none_or(|x| x == l.prefix))
            .map(|l| (SortKey::Int(l.id as i64), l.id, l))
            .collect();
        let (page, next) = keyset(items, false, cursor.as_ref(), limit);
        Ok::<_, ApiError>((
            page.into_iter()
                .map(|(_, _, l)| label_json(l))
                .collect::<Vec<_>>(),
            next,
        ))
    })?;
    let base = site_base(&headers, &sim);
    Ok(v2_list(
        &base,
        &format!("/wiki/api/v2/pages/{id}/labels"),
        &p,
        results,
        next,
        limit,
    ))
}

async fn page_children(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let limit = p.limit(25, sim.caps().v2_list, F)?;
    let cursor = cursor_param(&p, F)?;
    let (results, next) = sim.read(|s| {
        visible_page(s, &auth, id, &[PageStatus::Current])?;
        let items: Vec<_> = s
            .child_ids(id)
            .into_iter()
            .filter_map(|c| s.pages.get(&c))
            .filter(|c| c.status == PageStatus::Current)
            .filter(|c| page_visible(s, &auth.user, c))
            .map(|c| (SortKey::Int(c.position as i64), c.id, c))
            .collect();
        let (page, next) = keyset(items, false, cursor.as_ref(), limit);
        Ok::<_, ApiError>((
            page.into_iter()
                .map(|(_, _, c)| {
                    json!({
                        "id": c.id.to_string(),
                        "status": c.status.as_str(),
                        "title": c.title,
                        "spaceId": c.space_id.to_string(),
                        "childPosition": c.position,
                    })
                })
                .collect::<Vec<_>>(),
            next,
        ))
    })?;
    let base = site_base(&headers, &sim);
    Ok(v2_list(
        &base,
        &format!("/wiki/api/v2/pages/{id}/children"),
        &p,
        results,
        next,
        limit,
    ))
}
