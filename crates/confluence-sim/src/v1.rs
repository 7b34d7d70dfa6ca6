//! Confluence REST v1 endpoints: read restrictions, CQL search, content search with expands,
//! attachment downloads.
//!
//! Restrictions: `GET …/content/{id}/restriction/byOperation/read` lists only the restrictions
//! set on that page, exactly like Confluence; restrictions inherited from ancestors do not show
//! up there. Clients find inherited ones through `expand=ancestors` plus the ancestors' own
//! restrictions (e.g. one `content/search` with `restrictions.read.restrictions.*` expands).
//! The simulator still enforces inheritance: a caller who does not satisfy an ancestor's
//! restriction cannot see the descendants.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::Sim;
use crate::auth::AuthUser;
use crate::cql::{self, Clause, ContentType, OrderField};
use crate::error::{ApiError, ApiFamily};
use crate::generator::render_body;
use crate::model::{AccountType, Attachment, Content, Page, PageStatus, State};
use crate::paging::{Params, SortKey, cursor_param, encode_query, keyset, site_base};
use crate::v2::{download_path, iso, page_visible, slug};

const F: ApiFamily = ApiFamily::V1;

/// Limit caps of the v1 search endpoints (Confluence's "fixed system limits", per
/// Atlassian's KB article "Searching for content with the REST API and CQL always limits
/// results to 50"): 1000 without expansions, 200 with expansions other than a body, 50
/// when a body is expanded.
pub const SEARCH_MAX_LIMIT: usize = 1000;
/// Cap when any expansion other than `body.*` is asked for.
pub const SEARCH_EXPAND_MAX_LIMIT: usize = 200;
/// Cap when `body.*` is expanded on content search.
pub const SEARCH_BODY_MAX_LIMIT: usize = 50;
/// Cap of the restriction endpoint.
pub const RESTRICTION_MAX_LIMIT: usize = 100;

/// v1 routes. Path parameters carry the spec's names (`{operationKey}`, `{attachmentId}`,
/// `{pageId}`): `/_sim/stats` reports these templates, the same keys the client counts under.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route(
            "/wiki/rest/api/content/{id}/restriction/byOperation/{operationKey}",
            get(restriction_by_operation),
        )
        .route("/wiki/rest/api/search", get(search))
        .route("/wiki/rest/api/content/search", get(content_search))
        .route(
            "/wiki/rest/api/content/{id}/child/attachment/{attachmentId}/download",
            get(download_redirect),
        )
        .route(
            "/wiki/download/attachments/{pageId}/{filename}",
            get(download_file),
        )
}

/// An expand list: `a.b.c` also implies `a` and `a.b`. Values the simulator does not know
/// are ignored (the answer comes without them, no error), the lenient behaviour clients see
/// from Cloud; no Atlassian document states it, so tests only check that nothing fails.
#[derive(Debug, Clone, Default)]
pub struct Expands(BTreeSet<String>);

impl Expands {
    /// From `expand` params (comma lists allowed).
    pub fn parse(p: &Params) -> Self {
        Expands(p.get_all("expand").into_iter().collect())
    }
    /// Whether `path` (or something below it) was asked for.
    pub fn has(&self, path: &str) -> bool {
        self.0
            .iter()
            .any(|e| e == path || (e.starts_with(path) && e[path.len()..].starts_with('.')))
    }
    /// Whether nothing was asked for.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The expands below a prefix (`content.version` → `version`).
    pub fn under(&self, prefix: &str) -> Expands {
        let pre = format!("{prefix}.");
        Expands(
            self.0
                .iter()
                .filter_map(|e| e.strip_prefix(&pre).map(str::to_string))
                .collect(),
        )
    }
}

/// v1 User JSON.
pub fn user_json(s: &State, base: &str, account_id: &str) -> Value {
    let Some(u) = s.users.get(account_id) else {
        return json!({
            "type": "unknown",
            "accountId": account_id,
            "accountType": "",
            "publicName": "Unknown user",
            "displayName": "Unknown user",
            "isExternalCollaborator": false,
            "_expandable": {},
            "_links": {},
        });
    };
    json!({
        "type": "known",
        "accountId": u.account_id,
        "accountType": match u.account_type {
            AccountType::Atlassian => "atlassian",
            AccountType::App => "app",
            AccountType::Customer => "",
        },
        "email": u.email,
        "publicName": u.display_name,
        "profilePicture": {
            "path": format!("/wiki/aa-avatar/{}", u.account_id),
            "width": 48, "height": 48, "isDefault": true,
        },
        "displayName": u.display_name,
        "isExternalCollaborator": u.is_external_collaborator(),
        "externalCollaborator": u.is_external_collaborator(),
        "_expandable": { "operations": "", "personalSpace": "" },
        "_links": { "self": format!("{base}/wiki/rest/api/user?accountId={}", u.account_id) },
    })
}

/// v1 Group JSON.
pub fn group_json(s: &State, base: &str, group_id: &str) -> Value {
    let name = s
        .groups
        .get(group_id)
        .map(|g| g.name.clone())
        .unwrap_or_default();
    json!({
        "type": "group",
        "name": name,
        "id": group_id,
        "_links": { "self": format!("{base}/wiki/rest/api/group/by-id?id={group_id}") },
    })
}

/// v1 `Space` JSON (no expansions); `null` for an unknown id.
pub(crate) fn space_v1(s: &State, base: &str, space_id: u64) -> Value {
    let Some(sp) = s.spaces.get(&space_id) else {
        return Value::Null;
    };
    json!({
        "id": sp.id,
        "key": sp.key,
        "name": sp.name,
        "type": if sp.space_type == "personal" { "personal" } else { "global" },
        "status": sp.status.as_str(),
        "_expandable": {
            "settings": format!("/rest/api/space/{}/settings", sp.key),
            "metadata": "", "operations": "", "lookAndFeel": format!("/rest/api/settings/lookandfeel?spaceKey={}", sp.key),
            "identifiers": "", "permissions": "", "icon": "", "description": "", "theme": format!("/rest/api/space/{}/theme", sp.key),
            "history": "", "homepage": sp.homepage_id.map(|h| format!("/rest/api/content/{h}")).unwrap_or_default(),
        },
        "_links": {
            "webui": format!("/spaces/{}", sp.key),
            "self": format!("{base}/wiki/rest/api/space/{}", sp.key),
        },
    })
}

fn array_json(results: Vec<Value>, limit: usize) -> Value {
    let size = results.len();
    json!({ "results": results, "start": 0, "limit": limit, "size": size, "_links": {} })
}

/// v1 ContentRestriction for one operation of a page (own restrictions only).
#[allow(clippy::too_many_arguments)]
pub fn restriction_json(
    s: &State,
    base: &str,
    page: &Page,
    operation: &str,
    expand_user: bool,
    expand_group: bool,
    start: usize,
    limit: usize,
) -> Value {
    restriction_json_for(
        s,
        base,
        page.id,
        &page.read_restrictions,
        operation,
        expand_user,
        expand_group,
        start,
        limit,
    )
}

/// v1 ContentRestriction for one operation of any content (a page, a folder…), from the read
/// restrictions set directly on it.
#[allow(clippy::too_many_arguments)]
pub fn restriction_json_for(
    s: &State,
    base: &str,
    id: u64,
    read: &crate::model::Restrictions,
    operation: &str,
    expand_user: bool,
    expand_group: bool,
    start: usize,
    limit: usize,
) -> Value {
    let (users, groups): (Vec<&String>, Vec<&String>) = if operation == "read" {
        (read.users.iter().collect(), read.groups.iter().collect())
    } else {
        (Vec::new(), Vec::new())
    };
    let mut restrictions = Map::new();
    let mut exp = Map::new();
    let user_total = users.len();
    let group_total = groups.len();
    if expand_user {
        let results: Vec<Value> = users
            .into_iter()
            .skip(start)
            .take(limit)
            .map(|u| user_json(s, base, u))
            .collect();
        let size = results.len();
        restrictions.insert(
            "user".into(),
            json!({ "results": results, "start": start, "limit": limit, "size": size, "totalSize": user_total, "_links": {} }),
        );
    } else {
        exp.insert(
            "user".into(),
            json!(format!(
                "/rest/api/content/{}/restriction/byOperation/{operation}/user",
                id
            )),
        );
    }
    if expand_group {
        let results: Vec<Value> = groups
            .into_iter()
            .skip(start)
            .take(limit)
            .map(|g| group_json(s, base, g))
            .collect();
        let size = results.len();
        let _ = group_total;
        restrictions.insert(
            "group".into(),
            json!({ "results": results, "start": start, "limit": limit, "size": size }),
        );
    } else {
        exp.insert(
            "group".into(),
            json!(format!(
                "/rest/api/content/{}/restriction/byOperation/{operation}/group",
                id
            )),
        );
    }
    if !exp.is_empty() {
        restrictions.insert("_expandable".into(), Value::Object(exp));
    }
    json!({
        "operation": operation,
        "restrictions": restrictions,
        "_expandable": { "content": format!("/rest/api/content/{}", id) },
        "_links": {
            "self": format!("{base}/wiki/rest/api/content/{}/restriction/byOperation/{operation}", id),
        },
    })
}

pub(crate) fn labels_json(s: &State, page: &Page) -> Value {
    let results: Vec<Value> = page
        .labels
        .iter()
        .filter_map(|l| s.labels.get(l))
        .map(|l| json!({ "prefix": l.prefix, "name": l.name, "id": l.id.to_string(), "label": l.name }))
        .collect();
    array_json(results, 200)
}

/// A searchable item.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// A page.
    Page(&'a Page),
    /// An attachment (of a visible, current page).
    Attachment(&'a Attachment),
    /// A folder, whiteboard, database, embed or blog post.
    Content(&'a Content),
}

impl Item<'_> {
    fn id(&self) -> u64 {
        match self {
            Item::Page(p) => p.id,
            Item::Attachment(a) => a.id,
            Item::Content(c) => c.id,
        }
    }
    fn last_modified(&self) -> chrono::DateTime<chrono::Utc> {
        match self {
            Item::Page(p) => p.last_modified(),
            Item::Attachment(a) => a.created_at,
            Item::Content(c) => c.last_modified,
        }
    }
    fn created(&self) -> chrono::DateTime<chrono::Utc> {
        match self {
            Item::Page(p) => p.created_at,
            Item::Attachment(a) => a.created_at,
            Item::Content(c) => c.created_at,
        }
    }
    fn title(&self) -> &str {
        match self {
            Item::Page(p) => &p.title,
            Item::Attachment(a) => &a.title,
            Item::Content(c) => &c.title,
        }
    }
}

/// Parts of one answer that repeat from item to item, rendered once per answer: the items of a
/// search page share most of their ancestors (siblings, one subtree) and their authors, and
/// rendering each again per item made a space's structure scan cost the simulator far more
/// than the bytes it sends. The JSON is the same; only its construction is shared. Never kept
/// beyond one answer (content may change between answers).
#[derive(Default)]
pub(crate) struct Memo {
    ancestors: RefCell<HashMap<u64, Option<Value>>>,
    users: RefCell<HashMap<String, Value>>,
}

impl Memo {
    /// [`ancestor_json`], once per id per answer.
    fn ancestor(&self, s: &State, base: &str, id: u64) -> Option<Value> {
        if let Some(v) = self.ancestors.borrow().get(&id) {
            return v.clone();
        }
        let v = ancestor_json(s, base, id);
        self.ancestors.borrow_mut().insert(id, v.clone());
        v
    }

    /// [`user_json`], once per account per answer.
    fn user(&self, s: &State, base: &str, account_id: &str) -> Value {
        if let Some(v) = self.users.borrow().get(account_id) {
            return v.clone();
        }
        let v = user_json(s, base, account_id);
        self.users
            .borrow_mut()
            .insert(account_id.to_string(), v.clone());
        v
    }
}

pub(crate) fn page_content_json(s: &State, base: &str, p: &Page, ex: &Expands) -> Value {
    page_content_json_with(s, base, p, ex, &Memo::default())
}

/// [`page_content_json`] sharing the repeated parts of one answer ([`Memo`]).
pub(crate) fn page_content_json_with(
    s: &State,
    base: &str,
    p: &Page,
    ex: &Expands,
    memo: &Memo,
) -> Value {
    let key = s
        .spaces
        .get(&p.space_id)
        .map(|sp| sp.key.clone())
        .unwrap_or_default();
    let id = p.id;
    let mut v = Map::new();
    let mut expandable = Map::new();
    v.insert("id".into(), json!(id.to_string()));
    v.insert("type".into(), json!("page"));
    v.insert("status".into(), json!(p.status.as_str()));
    v.insert("title".into(), json!(p.title));
    let mut exp =
        |k: &str, val: String, v: &mut Map<String, Value>, cond: bool, f: &dyn Fn() -> Value| {
            if cond {
                v.insert(k.to_string(), f());
            } else {
                expandable.insert(k.to_string(), json!(val));
            }
        };
    exp(
        "space",
        format!("/rest/api/space/{key}"),
        &mut v,
        ex.has("space"),
        &|| space_v1(s, base, p.space_id),
    );
    exp(
        "container",
        format!("/rest/api/space/{key}"),
        &mut v,
        ex.has("container"),
        &|| space_v1(s, base, p.space_id),
    );
    exp(
        "history",
        format!("/rest/api/content/{id}/history"),
        &mut v,
        false,
        &|| Value::Null,
    );
    exp("version", String::new(), &mut v, ex.has("version"), &|| {
        let ver = p.version();
        json!({
            "by": memo.user(s, base, &ver.author_id),
            "when": iso(ver.created_at),
            "friendlyWhen": ver.created_at.format("%b %d, %Y").to_string(),
            "message": ver.message,
            "number": ver.number,
            "minorEdit": ver.minor_edit,
            "contentTypeModified": false,
            "_expandable": { "collaborators": "", "content": format!("/rest/api/content/{id}") },
            "_links": { "self": format!("{base}/wiki/rest/api/content/{id}/version/{}", ver.number) },
        })
    });
    exp(
        "ancestors",
        String::new(),
        &mut v,
        ex.has("ancestors"),
        &|| {
            Value::Array(
                s.ancestors(id)
                    .into_iter()
                    .filter_map(|a| memo.ancestor(s, base, a))
                    .collect(),
            )
        },
    );
    exp(
        "metadata",
        String::new(),
        &mut v,
        ex.has("metadata"),
        &|| {
            let mut m = Map::new();
            let mut mexp = Map::new();
            if ex.has("metadata.labels") {
                m.insert("labels".into(), labels_json(s, p));
            } else {
                mexp.insert(
                    "labels".into(),
                    json!(format!("/rest/api/content/{id}/label")),
                );
            }
            for k in [
                "currentuser",
                "comments",
                "sourceTemplateEntityId",
                "simple",
                "properties",
                "frontend",
                "likes",
            ] {
                mexp.insert(k.into(), json!(""));
            }
            m.insert("_expandable".into(), Value::Object(mexp));
            Value::Object(m)
        },
    );
    exp(
        "restrictions",
        format!("/rest/api/content/{id}/restriction/byOperation"),
        &mut v,
        ex.has("restrictions"),
        &|| {
            let mut r = Map::new();
            let mut rexp = Map::new();
            if ex.has("restrictions.read") {
                r.insert(
                    "read".into(),
                    restriction_json(
                        s,
                        base,
                        p,
                        "read",
                        ex.has("restrictions.read.restrictions.user"),
                        ex.has("restrictions.read.restrictions.group"),
                        0,
                        200,
                    ),
                );
            } else {
                rexp.insert(
                    "read".into(),
                    json!(format!(
                        "/rest/api/content/{id}/restriction/byOperation/read"
                    )),
                );
            }
            if ex.has("restrictions.update") {
                r.insert(
                    "update".into(),
                    restriction_json(
                        s,
                        base,
                        p,
                        "update",
                        ex.has("restrictions.update.restrictions.user"),
                        ex.has("restrictions.update.restrictions.group"),
                        0,
                        200,
                    ),
                );
            } else {
                rexp.insert(
                    "update".into(),
                    json!(format!(
                        "/rest/api/content/{id}/restriction/byOperation/update"
                    )),
                );
            }
            r.insert("_expandable".into(), Value::Object(rexp));
            r.insert("_links".into(), json!({ "self": format!("{base}/wiki/rest/api/content/{id}/restriction/byOperation") }));
            Value::Object(r)
        },
    );
    exp("body", String::new(), &mut v, ex.has("body"), &|| {
        let mut b = Map::new();
        let mut bexp = Map::new();
        for k in [
            "editor",
            "atlas_doc_format",
            "view",
            "export_view",
            "styled_view",
            "dynamic",
            "storage",
            "editor2",
            "anonymous_export_view",
            "wiki",
            "raw",
        ] {
            if k == "storage" && ex.has("body.storage") {
                b.insert(
                    "storage".into(),
                    json!({
                        "value": render_body(s, p),
                        "representation": "storage",
                        "embeddedContent": [],
                        "_expandable": { "content": format!("/rest/api/content/{id}") },
                    }),
                );
            } else {
                bexp.insert(k.into(), json!(""));
            }
        }
        b.insert("_expandable".into(), Value::Object(bexp));
        Value::Object(b)
    });
    for (k, val) in [
        ("childTypes", String::new()),
        ("operations", String::new()),
        ("schedulePublishDate", String::new()),
        ("children", format!("/rest/api/content/{id}/child")),
        ("descendants", format!("/rest/api/content/{id}/descendant")),
    ] {
        expandable.insert(k.into(), json!(val));
    }
    v.insert("extensions".into(), json!({ "position": p.position }));
    v.insert("_expandable".into(), Value::Object(expandable));
    v.insert(
        "_links".into(),
        json!({
            "webui": format!("/spaces/{key}/pages/{id}/{}", slug(&p.title)),
            "editui": format!("/pages/resumedraft.action?draftId={id}"),
            "tinyui": format!("/x/{id}"),
            "self": format!("{base}/wiki/rest/api/content/{id}"),
        }),
    );
    Value::Object(v)
}

pub(crate) fn attachment_content_json(
    s: &State,
    base: &str,
    a: &Attachment,
    ex: &Expands,
) -> Value {
    let id = a.id;
    let page = s.pages.get(&a.page_id);
    let key = page
        .and_then(|p| s.spaces.get(&p.space_id))
        .map(|sp| sp.key.clone())
        .unwrap_or_default();
    let mut v = Map::new();
    let mut expandable = Map::new();
    v.insert("id".into(), json!(format!("att{id}")));
    v.insert("type".into(), json!("attachment"));
    v.insert("status".into(), json!(a.status.as_str()));
    v.insert("title".into(), json!(a.title));
    if ex.has("container") {
        if let Some(p) = page {
            v.insert(
                "container".into(),
                page_content_json(s, base, p, &ex.under("container")),
            );
        }
    } else {
        expandable.insert(
            "container".into(),
            json!(format!("/rest/api/content/{}", a.page_id)),
        );
    }
    if ex.has("version") {
        v.insert(
            "version".into(),
            json!({
                "by": user_json(s, base, &a.author_id),
                "when": iso(a.created_at),
                "friendlyWhen": a.created_at.format("%b %d, %Y").to_string(),
                "message": "",
                "number": a.version,
                "minorEdit": false,
                "contentTypeModified": false,
                "_expandable": { "collaborators": "", "content": format!("/rest/api/content/att{id}") },
                "_links": { "self": format!("{base}/wiki/rest/api/content/att{id}/version/{}", a.version) },
            }),
        );
    } else {
        expandable.insert("version".into(), json!(""));
    }
    if ex.has("space") {
        if let Some(p) = page {
            v.insert("space".into(), space_v1(s, base, p.space_id));
        }
    } else {
        expandable.insert("space".into(), json!(format!("/rest/api/space/{key}")));
    }
    if ex.has("ancestors") {
        let mut anc: Vec<Value> = page
            .map(|p| {
                s.ancestors(p.id)
                    .into_iter()
                    .filter_map(|x| ancestor_json(s, base, x))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(p) = page {
            anc.push(page_content_json(s, base, p, &Expands::default()));
        }
        v.insert("ancestors".into(), Value::Array(anc));
    } else {
        expandable.insert("ancestors".into(), json!(""));
    }
    let mut meta = json!({ "mediaType": a.media_type, "comment": "" });
    if ex.has("metadata.labels") {
        meta["labels"] = array_json(Vec::new(), 200);
    }
    v.insert("metadata".into(), meta);
    for k in [
        "childTypes",
        "operations",
        "schedulePublishDate",
        "history",
        "restrictions",
        "body",
        "children",
        "descendants",
    ] {
        expandable.insert(k.into(), json!(""));
    }
    v.insert(
        "extensions".into(),
        json!({ "mediaType": a.media_type, "fileSize": a.bytes.len(), "comment": "", "mediaTypeDescription": "", "fileId": a.file_id }),
    );
    v.insert("_expandable".into(), Value::Object(expandable));
    v.insert(
        "_links".into(),
        json!({
            "webui": format!("/pages/viewpageattachments.action?pageId={}&preview=%2F{}%2Fatt{id}%2F{}", a.page_id, a.page_id, crate::paging::encode_segment(&a.title)),
            "download": download_path(a),
            "thumbnail": download_path(a),
            "self": format!("{base}/wiki/rest/api/content/att{id}"),
        }),
    );
    Value::Object(v)
}

pub(crate) fn item_json(s: &State, base: &str, item: Item<'_>, ex: &Expands, memo: &Memo) -> Value {
    match item {
        Item::Page(p) => page_content_json_with(s, base, p, ex, memo),
        Item::Attachment(a) => attachment_content_json(s, base, a, ex),
        Item::Content(c) => content_json(s, base, c, ex, memo),
    }
}

/// An entry of v1 `ancestors`: a page, or a folder (whiteboard, …) with its own `type` —
/// Cloud puts folders in `ancestors` as `type: "folder"`
/// (<https://github.com/datahub-project/datahub/pull/18046>: "Folders already appear in each
/// page's `ancestors` array (`type == "folder"`)").
fn ancestor_json(s: &State, base: &str, id: u64) -> Option<Value> {
    if let Some(p) = s.pages.get(&id) {
        return Some(page_content_json(s, base, p, &Expands::default()));
    }
    s.contents
        .get(&id)
        .map(|c| content_json(s, base, c, &Expands::default(), &Memo::default()))
}

/// v1 Content JSON of a folder, whiteboard, database, embed or blog post: the page shape
/// without a body, `type` its kind. The v1 API returns folders like pages
/// (<https://github.com/omar16100/atlassian-cli/issues/49>: "The legacy
/// `/wiki/rest/api/content/{id}` endpoint returns both pages and folders uniformly").
fn content_json(s: &State, base: &str, c: &Content, ex: &Expands, memo: &Memo) -> Value {
    let key = s
        .spaces
        .get(&c.space_id)
        .map(|sp| sp.key.clone())
        .unwrap_or_default();
    let id = c.id;
    let kind = c.kind.as_str();
    let mut v = Map::new();
    let mut expandable = Map::new();
    v.insert("id".into(), json!(id.to_string()));
    v.insert("type".into(), json!(kind));
    v.insert("status".into(), json!(c.status.as_str()));
    v.insert("title".into(), json!(c.title));
    for (k, on, val) in [
        ("space", ex.has("space"), format!("/rest/api/space/{key}")),
        (
            "container",
            ex.has("container"),
            format!("/rest/api/space/{key}"),
        ),
    ] {
        if on {
            v.insert(k.into(), space_v1(s, base, c.space_id));
        } else {
            expandable.insert(k.into(), json!(val));
        }
    }
    if ex.has("version") {
        v.insert(
            "version".into(),
            json!({
                "by": memo.user(s, base, &c.author_id),
                "when": iso(c.last_modified),
                "friendlyWhen": c.last_modified.format("%b %d, %Y").to_string(),
                "message": "",
                "number": c.version,
                "minorEdit": false,
                "contentTypeModified": false,
                "_expandable": { "collaborators": "", "content": format!("/rest/api/content/{id}") },
                "_links": { "self": format!("{base}/wiki/rest/api/content/{id}/version/{}", c.version) },
            }),
        );
    } else {
        expandable.insert("version".into(), json!(""));
    }
    if ex.has("ancestors") {
        v.insert(
            "ancestors".into(),
            Value::Array(
                s.ancestors(id)
                    .into_iter()
                    .filter_map(|a| memo.ancestor(s, base, a))
                    .collect(),
            ),
        );
    } else {
        expandable.insert("ancestors".into(), json!(""));
    }
    if ex.has("metadata") {
        let mut m = Map::new();
        if ex.has("metadata.labels") {
            m.insert("labels".into(), array_json(Vec::new(), 200));
        }
        m.insert(
            "_expandable".into(),
            json!({ "currentuser": "", "properties": "", "frontend": "" }),
        );
        v.insert("metadata".into(), Value::Object(m));
    } else {
        expandable.insert("metadata".into(), json!(""));
    }
    if ex.has("restrictions") {
        let mut r = Map::new();
        let mut rexp = Map::new();
        for op in ["read", "update"] {
            if ex.has(&format!("restrictions.{op}")) {
                r.insert(
                    op.into(),
                    restriction_json_for(
                        s,
                        base,
                        id,
                        &c.read_restrictions,
                        op,
                        ex.has(&format!("restrictions.{op}.restrictions.user")),
                        ex.has(&format!("restrictions.{op}.restrictions.group")),
                        0,
                        200,
                    ),
                );
            } else {
                rexp.insert(
                    op.into(),
                    json!(format!(
                        "/rest/api/content/{id}/restriction/byOperation/{op}"
                    )),
                );
            }
        }
        r.insert("_expandable".into(), Value::Object(rexp));
        r.insert(
            "_links".into(),
            json!({ "self": format!("{base}/wiki/rest/api/content/{id}/restriction/byOperation") }),
        );
        v.insert("restrictions".into(), Value::Object(r));
    } else {
        expandable.insert(
            "restrictions".into(),
            json!(format!("/rest/api/content/{id}/restriction/byOperation")),
        );
    }
    for k in [
        "childTypes",
        "operations",
        "history",
        "body",
        "children",
        "descendants",
    ] {
        expandable.insert(k.into(), json!(""));
    }
    v.insert("extensions".into(), json!({ "position": c.position }));
    v.insert("_expandable".into(), Value::Object(expandable));
    v.insert(
        "_links".into(),
        json!({
            "webui": format!("/spaces/{key}/{kind}/{id}"),
            "tinyui": format!("/x/{id}"),
            "self": format!("{base}/wiki/rest/api/content/{id}"),
        }),
    );
    Value::Object(v)
}

fn matches(s: &State, q: &cql::Query, item: Item<'_>) -> bool {
    // (space, type, the page whose labels count, the id whose ancestors count)
    let (space_id, ty, labelled, tree_id) = match item {
        Item::Page(p) => (p.space_id, ContentType::Page, Some(p), Some(p.id)),
        Item::Attachment(a) => match s.pages.get(&a.page_id) {
            Some(p) => (p.space_id, ContentType::Attachment, None, None),
            None => return false,
        },
        Item::Content(c) => (c.space_id, ContentType::Other(c.kind), None, Some(c.id)),
    };
    q.clauses.iter().all(|c| match c {
        Clause::Space(keys, neg) => {
            let key = s
                .spaces
                .get(&space_id)
                .map(|sp| sp.key.as_str())
                .unwrap_or("");
            keys.iter().any(|k| k.eq_ignore_ascii_case(key)) != *neg
        }
        Clause::Type(ts) => ts.contains(&ty),
        Clause::LastModified(cmp, t) => cmp.holds(item.last_modified(), *t),
        Clause::Created(cmp, t) => cmp.holds(item.created(), *t),
        Clause::Label(ls) => labelled.is_some_and(|page| {
            page.labels
                .iter()
                .filter_map(|l| s.labels.get(l))
                .any(|l| ls.contains(&l.name))
        }),
        Clause::Ancestor(a) => tree_id.is_some_and(|id| s.ancestors(id).contains(a)),
        Clause::Parent(ids) => {
            tree_id.is_some_and(|id| s.parent_of(id).is_some_and(|p| ids.contains(&p)))
        }
        Clause::Title(words) => contains_words(item.title(), words),
        Clause::Text(words) => {
            contains_words(item.title(), words)
                || labelled.is_some_and(|page| contains_words(&render_body(s, page), words))
        }
        Clause::Id(ids) => ids.contains(&item.id()),
    })
}

/// Whether every (lowercased) word occurs in `text`, ignoring case.
fn contains_words(text: &str, words: &[String]) -> bool {
    let text = text.to_lowercase();
    words.iter().all(|w| text.contains(w.as_str()))
}

/// Runs a query for a caller: matching current, visible items in query order.
fn run_query<'a>(s: &'a State, auth: &AuthUser, q: &cql::Query) -> Vec<(SortKey, u64, Item<'a>)> {
    let types: Option<&Vec<ContentType>> = q.clauses.iter().find_map(|c| match c {
        Clause::Type(t) => Some(t),
        _ => None,
    });
    let want_pages = types.is_none_or(|t| t.contains(&ContentType::Page));
    let want_atts = types.is_none_or(|t| t.contains(&ContentType::Attachment));
    let want_other =
        |k: crate::model::ContentKind| types.is_none_or(|t| t.contains(&ContentType::Other(k)));
    let mut items: Vec<Item<'a>> = Vec::new();
    items.extend(
        s.contents
            .values()
            .filter(|c| c.status == PageStatus::Current && want_other(c.kind))
            .map(Item::Content),
    );
    if want_pages {
        items.extend(
            s.pages
                .values()
                .filter(|p| p.status == PageStatus::Current)
                .map(Item::Page),
        );
    }
    if want_atts {
        items.extend(
            s.attachments
                .values()
                .filter(|a| a.status == PageStatus::Current)
                .map(Item::Attachment),
        );
    }
    let field = q.order.map(|o| o.0).unwrap_or(OrderField::Id);
    let mut visible = Visibility::new(s, &auth.user);
    items
        .into_iter()
        .filter(|i| matches(s, q, *i))
        .filter(|i| {
            let page = match i {
                Item::Page(p) => Some(*p),
                Item::Attachment(a) => s.pages.get(&a.page_id),
                Item::Content(c) => return visible.content(c),
            };
            page.is_some_and(|p| p.status == PageStatus::Current && visible.page(p))
        })
        .map(|i| {
            let key = match field {
                OrderField::LastModified => SortKey::Int(i.last_modified().timestamp_millis()),
                OrderField::Created => SortKey::Int(i.created().timestamp_millis()),
                OrderField::Title => SortKey::Str(i.title().to_string()),
                OrderField::Id => SortKey::Int(i.id() as i64),
            };
            (key, i.id(), i)
        })
        .collect()
}

/// Visibility of items to one caller during one query, memoised: a paged scan of a
/// 10,000-page space filters every page of the space on every call, and each page's space
/// permission and ancestor chain are shared with its siblings. Answers exactly as
/// [`page_visible`] and [`content_visible`] do.
struct Visibility<'a> {
    s: &'a State,
    user: &'a crate::model::User,
    /// Space id → readable by the caller.
    spaces: HashMap<u64, bool>,
    /// Content id → the caller satisfies its read restriction and every ancestor's
    /// ([`State::can_read_page`]).
    chains: HashMap<u64, bool>,
}

impl<'a> Visibility<'a> {
    fn new(s: &'a State, user: &'a crate::model::User) -> Self {
        Visibility {
            s,
            user,
            spaces: HashMap::new(),
            chains: HashMap::new(),
        }
    }

    fn space(&mut self, space_id: u64) -> bool {
        let (s, user) = (self.s, self.user);
        *self.spaces.entry(space_id).or_insert_with(|| {
            s.spaces
                .get(&space_id)
                .is_some_and(|sp| crate::v2::can_read_space(s, user, &sp.key))
        })
    }

    /// [`page_visible`].
    fn page(&mut self, p: &Page) -> bool {
        self.space(p.space_id) && self.chain(p.id)
    }

    /// [`content_visible`].
    fn content(&mut self, c: &Content) -> bool {
        self.space(c.space_id) && self.chain(c.id)
    }

    /// [`State::can_read_page`]: the caller satisfies the own read restriction of `id` and of
    /// every ancestor. Walks up to the first id already known; a chain that loops (never in a
    /// sound tree) is answered by `can_read_page` itself, unmemoised.
    fn chain(&mut self, id: u64) -> bool {
        if let Some(v) = self.chains.get(&id) {
            return *v;
        }
        let s = self.s;
        let account = self.user.account_id.as_str();
        let mut walk: Vec<u64> = Vec::new();
        let mut above = true;
        let mut cur = Some(id);
        while let Some(x) = cur {
            if let Some(v) = self.chains.get(&x) {
                above = *v;
                break;
            }
            if walk.contains(&x) {
                return s.can_read_page(account, id);
            }
            walk.push(x);
            cur = s.parent_of(x);
        }
        let mut verdict = above;
        for x in walk.into_iter().rev() {
            verdict = verdict
                && s.own_restrictions(x)
                    .is_some_and(|r| s.satisfies(r, account));
            self.chains.insert(x, verdict);
        }
        verdict
    }
}

/// Whether `user` may see a folder (whiteboard, …): its space readable, its own and its
/// ancestors' read restrictions satisfied.
fn content_visible(s: &State, user: &crate::model::User, c: &Content) -> bool {
    s.spaces
        .get(&c.space_id)
        .is_some_and(|sp| crate::v2::can_read_space(s, user, &sp.key))
        && s.can_read_page(&user.account_id, c.id)
}

/// The search cap for these expansions ([`crate::paging::PageCaps`]).
fn search_cap(sim: &Sim, ex: &Expands) -> usize {
    let caps = sim.caps();
    if ex.has("body") {
        caps.search_body
    } else if ex.is_empty() {
        caps.search
    } else {
        caps.search_expand
    }
}

fn cql_error(cql: &str) -> ApiError {
    ApiError::bad_request(
        F,
        format!(
            "com.atlassian.confluence.api.service.exceptions.BadRequestException: Could not parse cql : {cql}"
        ),
    )
}

/// One page of a search, before rendering.
struct SearchPage<'a> {
    items: Vec<Item<'a>>,
    next: Option<String>,
    total: usize,
    start: usize,
}

/// Runs the `cql` of `p` and hands one page of it to `render`, under the state's read lock.
fn do_search<R>(
    sim: &Sim,
    auth: &AuthUser,
    p: &Params,
    limit: usize,
    offset: usize,
    render: impl for<'a> FnOnce(&'a State, SearchPage<'a>, &str) -> R,
) -> Result<R, ApiError> {
    let cql_text = p
        .get("cql")
        .ok_or_else(|| ApiError::bad_request(F, "cql parameter is required"))?
        .to_string();
    let ctx = cql::CqlContext {
        now: sim.now(),
        tz: sim.time_zone(),
    };
    let q = cql::parse_with(&cql_text, &ctx).map_err(|_| cql_error(&cql_text))?;
    let cursor = cursor_param(p, F)?;
    let desc = q.order.is_some_and(|o| o.1);
    Ok(sim.read(|s| {
        let all = run_query(s, auth, &q);
        let total = all.len();
        // `start` without a cursor: the page begins after the first `offset` results.
        let cursor = match cursor {
            None if offset > 0 && total > 0 => {
                let mut keys: Vec<(SortKey, u64)> =
                    all.iter().map(|(k, id, _)| (k.clone(), *id)).collect();
                keys.sort_by(|a, b| {
                    let o = a.0.cmp(&b.0).then(a.1.cmp(&b.1));
                    if desc { o.reverse() } else { o }
                });
                keys.get(offset.min(total) - 1).cloned()
            }
            c => c,
        };
        let start = match &cursor {
            None => 0,
            Some(c) => all
                .iter()
                .filter(|(k, id, _)| {
                    let o = k.cmp(&c.0).then(id.cmp(&c.1));
                    if desc { o.is_ge() } else { o.is_le() }
                })
                .count(),
        };
        let (page, next) = keyset(all, desc, cursor.as_ref(), limit);
        let page = SearchPage {
            items: page.into_iter().map(|(_, _, i)| i).collect(),
            next,
            total,
            start,
        };
        render(s, page, &cql_text)
    }))
}

fn next_link(path: &str, p: &Params, cursor: &str, limit: usize, start: usize) -> String {
    let mut pairs = p.without(&["cursor", "limit", "start", "next"]);
    pairs.insert(0, ("next".into(), "true".into()));
    pairs.push(("cursor".into(), cursor.to_string()));
    pairs.push(("limit".into(), limit.to_string()));
    pairs.push(("start".into(), start.to_string()));
    format!("{path}?{}", encode_query(&pairs))
}

async fn search(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let ex = Expands::parse(&p).under("content");
    let cap = search_cap(&sim, &ex);
    let limit = p.limit(25, cap, F)?;
    let base = site_base(&headers, &sim);
    let offset = p.start(F)?;
    let memo = Memo::default();
    let body = do_search(&sim, &auth, &p, limit, offset, |s, page, cql_text| {
        let render = |item: Item<'_>| {
            let content = item_json(s, &base, item, &ex, &memo);
            let (space_id, url, icon) = match item {
                Item::Page(pg) => (
                    pg.space_id,
                    format!(
                        "/spaces/{}/pages/{}/{}",
                        crate::v1_typed::space_key(s, pg.space_id),
                        pg.id,
                        slug(&pg.title)
                    ),
                    "aui-icon content-type-page",
                ),
                Item::Attachment(a) => (
                    s.pages.get(&a.page_id).map(|p| p.space_id).unwrap_or(0),
                    download_path(a),
                    "aui-icon content-type-attachment",
                ),
                Item::Content(c) => (
                    c.space_id,
                    format!(
                        "/spaces/{}/{}/{}",
                        crate::v1_typed::space_key(s, c.space_id),
                        c.kind.as_str(),
                        c.id
                    ),
                    match c.kind {
                        crate::model::ContentKind::Folder => "aui-icon content-type-folder",
                        crate::model::ContentKind::Whiteboard => "aui-icon content-type-whiteboard",
                        crate::model::ContentKind::Database => "aui-icon content-type-database",
                        crate::model::ContentKind::Embed => "aui-icon content-type-embed",
                        crate::model::ContentKind::Blogpost => "aui-icon content-type-blogpost",
                    },
                ),
            };
            let sp = s.spaces.get(&space_id);
            json!({
                "content": content,
                "title": item.title(),
                "excerpt": "",
                "url": url,
                "resultGlobalContainer": {
                    "title": sp.map(|x| x.name.as_str()).unwrap_or(""),
                    "displayUrl": format!("/spaces/{}", sp.map(|x| x.key.as_str()).unwrap_or("")),
                },
                "breadcrumbs": [],
                "entityType": "content",
                "iconCssClass": icon,
                "lastModified": iso(item.last_modified()),
                "friendlyLastModified": item.last_modified().format("%b %d, %Y").to_string(),
                "score": 0.0,
            })
        };
        let results: Vec<Value> = page.items.iter().map(|&i| render(i)).collect();
        let size = results.len();
        let mut links = json!({
            "base": format!("{base}/wiki"),
            "context": "/wiki",
            "self": format!("{base}/wiki/rest/api/search?{}", encode_query(&p.0)),
        });
        if let Some(c) = &page.next {
            links["next"] = json!(next_link(
                "/rest/api/search",
                &p,
                c,
                limit,
                page.start + size
            ));
        }
        json!({
            "results": results,
            "start": page.start,
            "limit": limit,
            "size": size,
            "totalSize": page.total,
            "cqlQuery": cql_text,
            "searchDuration": started.elapsed().as_millis() as u64,
            "_links": links,
        })
    })?;
    Ok(axum::Json(body).into_response())
}

/// `GET /wiki/rest/api/content/search`: the answer is serialised from the model under the read
/// lock ([`crate::v1_typed`]), never built as a `Value` tree.
async fn content_search(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let ex = Expands::parse(&p);
    let wants = crate::v1_typed::Wants::of(&ex);
    let cap = search_cap(&sim, &ex);
    let limit = p.limit(25, cap, F)?;
    let base = site_base(&headers, &sim);
    let body = do_search(&sim, &auth, &p, limit, 0, |s, page, _| {
        let size = page.items.len();
        let next = page
            .next
            .as_ref()
            .map(|c| next_link("/rest/api/content/search", &p, c, limit, page.start + size));
        let answer = crate::v1_typed::SearchAnswer {
            s,
            base: &base,
            ex: &ex,
            wants,
            items: &page.items,
            next: next.as_deref(),
            self_query: &encode_query(&p.0),
            limit,
            start: page.start,
        };
        serde_json::to_vec(&answer)
    })?
    .map_err(|e| {
        ApiError::new(
            F,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not serialise the answer: {e}"),
        )
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

async fn restriction_by_operation(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    Path((id, op)): Path<(String, String)>,
    p: Params,
) -> Result<Response, ApiError> {
    if op != "read" && op != "update" {
        return Err(ApiError::bad_request(
            F,
            format!("Invalid operation key: {op}"),
        ));
    }
    let not_found =
        || ApiError::not_found(F, format!("No content found with id: ContentId{{id={id}}}"));
    let pid: u64 = id.parse().map_err(|_| not_found())?;
    let start = p.start(F)?;
    let limit = p.limit(100, sim.caps().restriction, F)?;
    let ex = Expands::parse(&p);
    let base = site_base(&headers, &sim);
    sim.read(|s| {
        if let Some(c) = s
            .contents
            .get(&pid)
            .filter(|c| c.status == PageStatus::Current && content_visible(s, &auth.user, c))
        {
            let mut v = restriction_json_for(
                s,
                &base,
                c.id,
                &c.read_restrictions,
                &op,
                true,
                true,
                start,
                limit,
            );
            if ex.has("content") {
                v["content"] = content_json(s, &base, c, &Expands::default(), &Memo::default());
            }
            return Ok(axum::Json(v).into_response());
        }
        let page = s
            .pages
            .get(&pid)
            .filter(|pg| pg.status == PageStatus::Current && page_visible(s, &auth.user, pg))
            .ok_or_else(not_found)?;
        // Confluence expands users and groups on this endpoint by default.
        let mut v = restriction_json(s, &base, page, &op, true, true, start, limit);
        if ex.has("content") {
            v["content"] = page_content_json(s, &base, page, &Expands::default());
        }
        Ok(axum::Json(v).into_response())
    })
}

/// `GET …/content/{id}/child/attachment/{attachmentId}/download`: 302 to the media origin
/// with a signed, expiring URL bound to the file (see [`crate::media`]).
/// Evidence: <https://github.com/pchuri/confluence-cli/pull/199> ("`/wiki/rest/api/content/<id>/child/attachment/<id>/download` (REST) → 302 → 200").
async fn download_redirect(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    Path((id, att)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(F, format!("No attachment found with id: {att}"));
    if sim.knobs().rest_download_missing {
        return Err(ApiError::not_found(
            F,
            format!("No route for GET /wiki/rest/api/content/{id}/child/attachment/{att}/download"),
        ));
    }
    let pid: u64 = id.parse().map_err(|_| not_found())?;
    let aid: u64 = att
        .trim_start_matches("att")
        .parse()
        .map_err(|_| not_found())?;
    let (file_id, title) = sim.read(|s| {
        // A space icon: an attachment of the space's description object (the space's
        // `icon.apiDownloadLink` names this path), readable by whoever may read the space.
        if let Some(sp) = s.spaces.values().find(|sp| sp.description_id() == pid) {
            return sp
                .icon
                .as_ref()
                .filter(|i| i.id == aid && crate::v2::can_read_space(s, &auth.user, &sp.key))
                .map(|i| (i.file_id.clone(), i.title.clone()))
                .ok_or_else(not_found);
        }
        let a = s
            .attachments
            .get(&aid)
            .filter(|a| a.page_id == pid && a.status == PageStatus::Current)
            .ok_or_else(not_found)?;
        let page = s.pages.get(&pid).ok_or_else(not_found)?;
        if page.status != PageStatus::Current || !page_visible(s, &auth.user, page) {
            return Err(not_found());
        }
        Ok((a.file_id.clone(), a.title.clone()))
    })?;
    let location = crate::media::download_url(&sim, &file_id, &title);
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// The legacy servlet `GET /wiki/download/attachments/{pageId}/{filename}` (what `_links.download`
/// and v2 `downloadLink` name): since Atlassian CHANGE-2735 it answers 401 with
/// `WWW-Authenticate: OAuth realm="https://SITE.atlassian.net/wiki"` to API-token Basic auth
/// (and the simulator answers the same to any credentials: it has no browser sessions).
/// Evidence: <https://github.com/epam/dm.ai/pull/252> ("returns **401** when called with API
/// token Basic auth on Confluence Cloud: `www-authenticate: OAuth realm=…/wiki`"),
/// <https://github.com/pchuri/confluence-cli/issues/198>.
async fn download_file(AxState(sim): AxState<Sim>, headers: HeaderMap) -> ApiError {
    let base = site_base(&headers, &sim);
    let mut e = ApiError::new(
        F,
        StatusCode::UNAUTHORIZED,
        "Client must be authenticated to access this resource.",
    );
    if let Ok(v) = HeaderValue::from_str(&format!("OAuth realm=\"{base}/wiki\"")) {
        e = e.with_header(header::WWW_AUTHENTICATE, v);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memoised visibility of a query answers exactly as the per-item checks, for every
    /// kind of user of the demo site (restricted pages, folders, guests), also after a
    /// restriction is put on a page with descendants.
    #[test]
    fn memoised_visibility_matches_the_per_item_checks() {
        let sim = crate::SimConfig::demo().build();
        let check = |s: &State| {
            let mut checked = 0;
            for user in s.users.values() {
                let mut vis = Visibility::new(s, user);
                for p in s.pages.values() {
                    assert_eq!(vis.page(p), page_visible(s, user, p), "page {}", p.id);
                }
                for c in s.contents.values() {
                    assert_eq!(
                        vis.content(c),
                        content_visible(s, user, c),
                        "content {}",
                        c.id
                    );
                }
                checked += 1;
            }
            checked
        };
        assert!(sim.read(check) > 10);
        // A restriction high in a tree changes what the descendants answer.
        let parent = sim.read(|s| {
            s.pages
                .values()
                .find(|p| s.children.get(&p.id).is_some_and(|c| !c.is_empty()))
                .map(|p| p.id)
        });
        let parent = parent.expect("a page with children");
        sim.write(|s| {
            let group = s.groups.keys().next().cloned().expect("a group");
            if let Some(p) = s.pages.get_mut(&parent) {
                p.read_restrictions.groups.insert(group);
            }
        });
        assert!(sim.read(check) > 10);
    }
}
