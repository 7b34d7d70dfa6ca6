//! The `/_sim/` control surface: stats, knobs, clock, inspection and content edits.
//!
//! Besides the inspection routes: `POST /_sim/pages/{id}/attachments`
//! `{title, media_type?, text|base64}` uploads a file (201, the attachment's state);
//! `PUT /_sim/attachments/{id}` `{media_type?, text|base64}` replaces its bytes (new version,
//! new file id, `lastmodified` now); `DELETE /_sim/attachments/{id}` deletes it (204);
//! `GET /_sim/endpoints` gives the site, media, gateway and token-endpoint URLs and the cloud
//! id; `POST /_sim/media-token-ttl` `{seconds}`; `GET|POST /_sim/time-zone` `{time_zone:
//! "+13:00"}`; `GET|POST /_sim/caps` ([`crate::PageCaps`]); `POST /_sim/scoped-tokens`
//! `{email, scopes}` → `{email, api_token, scopes}`; `POST /_sim/oauth-clients`
//! `{email, scopes}` → `{client_id, client_secret, account_id, scopes}`.
//! Never rate limited, faulted or counted; no authentication (it is a test backdoor).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Sim;
use crate::error::{ApiError, ApiFamily};
use crate::model::{ContentKind, PageStatus, Subject, UserKind};
use crate::sim::{Knobs, NewPage, Stats};

const F: ApiFamily = ApiFamily::Sim;

/// Routes nested under `/_sim`.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset_stats))
        .route("/knobs", get(get_knobs).post(set_knobs))
        .route("/clock", get(get_clock))
        .route("/clock/advance", post(advance_clock))
        .route("/credentials", get(credentials))
        .route("/users", get(users))
        .route("/groups", get(groups))
        .route("/groups/{id}/members", get(group_members))
        .route("/spaces", get(spaces))
        .route("/spaces/{key}/permissions", get(space_permissions))
        .route("/spaces/{key}/pages", get(space_pages))
        .route(
            "/spaces/{key}/icon",
            axum::routing::put(set_space_icon).delete(clear_space_icon),
        )
        .route(
            "/spaces/{key}/description",
            axum::routing::put(set_space_description),
        )
        .route("/guests", get(guests))
        .route("/switches", get(switches))
        .route("/invites", get(invites))
        .route("/pages", post(create_page))
        .route(
            "/pages/{id}",
            get(get_page).put(edit_page).delete(delete_page),
        )
        .route("/pages/{id}/move", post(move_page))
        .route(
            "/pages/{id}/restrictions",
            post(add_restriction).delete(remove_restriction),
        )
        .route("/pages/{id}/labels", post(add_label).delete(remove_label))
        .route("/pages/{id}/attachments", post(upload_attachment))
        .route(
            "/attachments/{id}",
            axum::routing::put(replace_attachment).delete(delete_attachment),
        )
        .route("/endpoints", get(endpoints))
        .route("/media-token-ttl", post(set_media_ttl))
        .route("/time-zone", get(get_time_zone).post(set_time_zone))
        .route("/caps", get(get_caps).post(set_caps))
        .route("/scoped-tokens", post(create_scoped_token))
        .route("/oauth-clients", post(create_oauth_client))
}

/// File contents in a control body: `text` (UTF-8) or `base64`.
#[derive(Deserialize)]
struct FileBody {
    title: Option<String>,
    media_type: Option<String>,
    text: Option<String>,
    base64: Option<String>,
}

impl FileBody {
    fn bytes(&self) -> Result<bytes::Bytes, ApiError> {
        use base64::Engine;
        match (&self.text, &self.base64) {
            (Some(t), None) => Ok(bytes::Bytes::from(t.clone().into_bytes())),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map(bytes::Bytes::from)
                .map_err(|e| ApiError::bad_request(F, format!("bad base64: {e}"))),
            _ => Err(ApiError::bad_request(
                F,
                "give exactly one of text or base64",
            )),
        }
    }
}

fn attachment_state(sim: &Sim, id: u64) -> Value {
    sim.read(|s| {
        s.attachments
            .get(&id)
            .map(|a| {
                json!({
                    "id": format!("att{}", a.id),
                    "page_id": a.page_id.to_string(),
                    "title": a.title,
                    "media_type": a.media_type,
                    "version": a.version,
                    "file_id": a.file_id,
                    "status": a.status.as_str(),
                    "size": a.bytes.len(),
                })
            })
            .unwrap_or(Value::Null)
    })
}

fn attachment_id(raw: &str) -> Result<u64, ApiError> {
    raw.trim_start_matches("att")
        .parse()
        .map_err(|_| ApiError::bad_request(F, format!("bad attachment id {raw}")))
}

async fn upload_attachment(
    State(sim): State<Sim>,
    Path(id): Path<u64>,
    Json(b): Json<FileBody>,
) -> Result<Response, ApiError> {
    let bytes = b.bytes()?;
    let title = b
        .title
        .clone()
        .ok_or_else(|| ApiError::bad_request(F, "title is required"))?;
    let media_type = b
        .media_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let aid = sim
        .add_attachment(id, &title, &media_type, bytes)
        .map_err(err)?;
    Ok((StatusCode::CREATED, Json(attachment_state(&sim, aid))).into_response())
}

/// `PUT /_sim/spaces/{key}/icon` `{title?, media_type?, text|base64}`: uploads the space's
/// icon (a new version when it had one). Answers `{version}`.
async fn set_space_icon(
    State(sim): State<Sim>,
    Path(key): Path<String>,
    Json(b): Json<FileBody>,
) -> Result<Json<Value>, ApiError> {
    let bytes = b.bytes()?;
    let title = b.title.clone().unwrap_or_else(|| format!("{key}.png"));
    let media_type = b.media_type.clone().unwrap_or_else(|| "image/png".into());
    let version = sim
        .set_space_icon(&key, &title, &media_type, bytes)
        .map_err(err)?;
    Ok(Json(json!({ "version": version })))
}

/// `DELETE /_sim/spaces/{key}/icon`: back to the default logo (204).
async fn clear_space_icon(
    State(sim): State<Sim>,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    sim.clear_space_icon(&key).map_err(err)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct DescriptionBody {
    text: String,
}

/// `PUT /_sim/spaces/{key}/description` `{text}` (204).
async fn set_space_description(
    State(sim): State<Sim>,
    Path(key): Path<String>,
    Json(b): Json<DescriptionBody>,
) -> Result<StatusCode, ApiError> {
    sim.set_space_description(&key, &b.text).map_err(err)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn replace_attachment(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    Json(b): Json<FileBody>,
) -> Result<Json<Value>, ApiError> {
    let aid = attachment_id(&id)?;
    sim.replace_attachment(aid, b.media_type.as_deref(), b.bytes()?)
        .map_err(err)?;
    Ok(Json(attachment_state(&sim, aid)))
}

async fn delete_attachment(
    State(sim): State<Sim>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    sim.delete_attachment(attachment_id(&id)?).map_err(err)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn endpoints(State(sim): State<Sim>) -> Json<Value> {
    let base = sim.base_url();
    let cloud = sim.cloud_id();
    Json(json!({
        "site": base,
        "media": sim.media_url(),
        "cloud_id": cloud,
        "gateway": format!("{base}/ex/confluence/{cloud}"),
        "token_endpoint": format!("{base}/oauth/token"),
    }))
}

#[derive(Deserialize)]
struct Ttl {
    seconds: u64,
}

async fn set_media_ttl(State(sim): State<Sim>, Json(t): Json<Ttl>) -> Json<Value> {
    sim.set_media_token_ttl(std::time::Duration::from_secs(t.seconds));
    Json(json!({ "seconds": sim.media_token_ttl().as_secs() }))
}

async fn get_time_zone(State(sim): State<Sim>) -> Json<Value> {
    Json(json!({ "time_zone": sim.time_zone() }))
}

#[derive(Deserialize)]
struct Tz {
    time_zone: crate::SiteTimeZone,
}

async fn set_time_zone(State(sim): State<Sim>, Json(t): Json<Tz>) -> Json<Value> {
    sim.set_time_zone(t.time_zone);
    Json(json!({ "time_zone": sim.time_zone() }))
}

async fn get_caps(State(sim): State<Sim>) -> Json<crate::PageCaps> {
    Json(sim.caps())
}

async fn set_caps(State(sim): State<Sim>, Json(c): Json<crate::PageCaps>) -> Json<crate::PageCaps> {
    sim.set_caps(c);
    Json(sim.caps())
}

/// `{"email": …, "scopes": [...]}`.
#[derive(Deserialize)]
struct CredentialRequest {
    email: String,
    #[serde(default)]
    scopes: Vec<String>,
}

async fn create_scoped_token(
    State(sim): State<Sim>,
    Json(r): Json<CredentialRequest>,
) -> Result<Response, ApiError> {
    let scopes: Vec<&str> = r.scopes.iter().map(String::as_str).collect();
    let c = sim.create_scoped_token(&r.email, &scopes).map_err(err)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "email": c.email, "api_token": c.api_token, "scopes": r.scopes })),
    )
        .into_response())
}

async fn create_oauth_client(
    State(sim): State<Sim>,
    Json(r): Json<CredentialRequest>,
) -> Result<Response, ApiError> {
    let scopes: Vec<&str> = r.scopes.iter().map(String::as_str).collect();
    let c = sim.create_oauth_client(&r.email, &scopes).map_err(err)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "client_id": c.client_id,
            "client_secret": c.client_secret,
            "account_id": c.account_id,
            "scopes": c.scopes,
        })),
    )
        .into_response())
}

fn err(e: crate::SimError) -> ApiError {
    ApiError::from((F, e))
}

async fn stats(State(sim): State<Sim>) -> Json<Stats> {
    Json(sim.stats())
}

async fn reset_stats(State(sim): State<Sim>) -> Json<Stats> {
    sim.reset_stats();
    Json(sim.stats())
}

async fn get_knobs(State(sim): State<Sim>) -> Json<Knobs> {
    Json(sim.knobs())
}

async fn set_knobs(State(sim): State<Sim>, Json(k): Json<Knobs>) -> Json<Knobs> {
    sim.set_knobs(k);
    Json(sim.knobs())
}

async fn get_clock(State(sim): State<Sim>) -> Json<Value> {
    Json(json!({ "now": crate::v2::iso(sim.now()) }))
}

#[derive(Deserialize)]
struct Advance {
    #[serde(default)]
    seconds: i64,
    #[serde(default)]
    minutes: i64,
}

async fn advance_clock(State(sim): State<Sim>, Json(a): Json<Advance>) -> Json<Value> {
    sim.advance_clock(chrono::Duration::seconds(a.seconds + a.minutes * 60));
    Json(json!({ "now": crate::v2::iso(sim.now()) }))
}

async fn credentials(State(sim): State<Sim>) -> Json<Value> {
    sim.read(|s| {
        let c = |c: &Option<crate::Credentials>| {
            c.as_ref()
                .map(|c| json!({ "email": c.email, "api_token": c.api_token }))
        };
        Json(json!({
            "service_account": c(&s.service_account),
            "non_admin_account": c(&s.non_admin_account),
            "admin_api_key": s.admin_api_key,
        }))
    })
}

fn kind_str(k: UserKind) -> &'static str {
    match k {
        UserKind::Licensed => "licensed",
        UserKind::Guest => "guest",
        UserKind::Unlicensed => "unlicensed",
    }
}

async fn users(State(sim): State<Sim>) -> Json<Value> {
    sim.read(|s| {
        Json(Value::Array(
            s.users
                .values()
                .map(|u| {
                    json!({
                        "account_id": u.account_id,
                        "email": u.email,
                        "display_name": u.display_name,
                        "account_type": u.account_type.as_str(),
                        "status": u.status.as_str(),
                        "kind": kind_str(u.kind),
                        "is_admin": u.is_admin,
                        "guest_space": s.guest_spaces.get(&u.account_id),
                    })
                })
                .collect(),
        ))
    })
}

async fn groups(State(sim): State<Sim>) -> Json<Value> {
    sim.read(|s| {
        Json(Value::Array(
            s.groups
                .values()
                .map(|g| json!({ "id": g.id, "name": g.name, "member_count": g.members.len() }))
                .collect(),
        ))
    })
}

async fn group_members(
    State(sim): State<Sim>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    sim.read(|s| {
        let g = s
            .groups
            .get(&id)
            .or_else(|| s.groups.values().find(|g| g.name == id))
            .ok_or_else(|| ApiError::not_found(F, format!("group {id}")))?;
        Ok(Json(
            json!({ "id": g.id, "name": g.name, "members": g.members }),
        ))
    })
}

async fn spaces(State(sim): State<Sim>) -> Json<Value> {
    sim.read(|s| {
        Json(Value::Array(
            s.spaces
                .values()
                .map(|sp| json!({ "id": sp.id, "key": sp.key, "name": sp.name, "homepage_id": sp.homepage_id }))
                .collect(),
        ))
    })
}

#[derive(Deserialize)]
struct SpacePagesQuery {
    /// Only the pages this account may read (space permission and restrictions).
    visible_to: Option<String>,
    /// Comma-separated statuses (`current`, `archived`, `trashed`); default `current`.
    status: Option<String>,
    /// Comma-separated content types (`page`, `folder`, `whiteboard`, `database`, `embed`,
    /// `blogpost`) or `all`; default `page`.
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The statuses a `status=` list names (default `current`).
fn statuses_param(raw: Option<&str>) -> Result<Vec<PageStatus>, ApiError> {
    let Some(raw) = raw else {
        return Ok(vec![PageStatus::Current]);
    };
    raw.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| match x {
            "current" => Ok(PageStatus::Current),
            "archived" => Ok(PageStatus::Archived),
            "trashed" => Ok(PageStatus::Trashed),
            other => Err(ApiError::bad_request(F, format!("bad status {other}"))),
        })
        .collect()
}

/// The content types a `type=` list names: `None` for pages, `Some(kind)` for other content
/// (default: pages only; `all`: every type).
fn types_param(raw: Option<&str>) -> Result<Vec<Option<ContentKind>>, ApiError> {
    const ALL: [Option<ContentKind>; 6] = [
        None,
        Some(ContentKind::Folder),
        Some(ContentKind::Whiteboard),
        Some(ContentKind::Database),
        Some(ContentKind::Embed),
        Some(ContentKind::Blogpost),
    ];
    let Some(raw) = raw else {
        return Ok(vec![None]);
    };
    let mut out = Vec::new();
    for x in raw.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        if x == "all" {
            return Ok(ALL.to_vec());
        }
        let t = ALL
            .iter()
            .find(|k| k.map_or("page", ContentKind::as_str) == x)
            .ok_or_else(|| ApiError::bad_request(F, format!("bad type {x}")))?;
        out.push(*t);
    }
    Ok(out)
}

/// `GET /_sim/spaces/{key}/pages[?visible_to=accountId][&status=…][&type=…]`: the space's
/// content of those statuses (`status=current,archived`; default `current`) and types
/// (`type=page,blogpost`, `type=all`; default `page`),
/// ascending by id, as parallel arrays: `ids`, each one's `parents` (a page, folder, … id or
/// `null`), `statuses` and `types` (`{"count", "ids", "parents", "statuses", "types"}`), to
/// compare with what a client pages through. `visible_to`: only what that account may read
/// (space permission and restrictions, folders' included).
async fn space_pages(
    State(sim): State<Sim>,
    Path(key): Path<String>,
    axum::extract::Query(q): axum::extract::Query<SpacePagesQuery>,
) -> Result<Json<Value>, ApiError> {
    let statuses = statuses_param(q.status.as_deref())?;
    let types = types_param(q.kind.as_deref())?;
    sim.read(|s| {
        let sp = s
            .space_by_key(&key)
            .ok_or_else(|| ApiError::not_found(F, format!("space {key}")))?;
        let viewer = match &q.visible_to {
            None => None,
            Some(a) => Some(
                s.users
                    .get(a)
                    .ok_or_else(|| ApiError::not_found(F, format!("user {a}")))?,
            ),
        };
        // Visible as the real API decides it: the space readable and the item's and its
        // ancestors' read restrictions satisfied.
        let visible = |id: u64| {
            viewer.is_none_or(|u| {
                crate::v2::can_read_space(s, u, &sp.key) && s.can_read_page(&u.account_id, id)
            })
        };
        let mut items: Vec<(u64, Option<u64>, PageStatus, &'static str)> = Vec::new();
        if types.contains(&None) {
            items.extend(
                s.pages
                    .values()
                    .filter(|p| p.space_id == sp.id && statuses.contains(&p.status))
                    .filter(|p| viewer.is_none_or(|u| crate::v2::page_visible(s, u, p)))
                    .map(|p| (p.id, p.parent_id, p.status, "page")),
            );
        }
        items.extend(
            s.contents
                .values()
                .filter(|c| c.space_id == sp.id && statuses.contains(&c.status))
                .filter(|c| types.contains(&Some(c.kind)))
                .filter(|c| visible(c.id))
                .map(|c| (c.id, c.parent_id, c.status, c.kind.as_str())),
        );
        items.sort_unstable_by_key(|i| i.0);
        Ok(Json(json!({
            "count": items.len(),
            "ids": items.iter().map(|i| i.0.to_string()).collect::<Vec<_>>(),
            "parents": items.iter().map(|i| i.1.map(|x| x.to_string())).collect::<Vec<_>>(),
            "statuses": items.iter().map(|i| i.2.as_str()).collect::<Vec<_>>(),
            "types": items.iter().map(|i| i.3).collect::<Vec<_>>(),
        })))
    })
}

async fn space_permissions(
    State(sim): State<Sim>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    sim.read(|s| {
        if s.space_by_key(&key).is_none() {
            return Err(ApiError::not_found(F, format!("space {key}")));
        }
        Ok(Json(Value::Array(
            s.space_permissions
                .values()
                .filter(|p| p.space_key == key)
                .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
                .collect(),
        )))
    })
}

async fn guests(State(sim): State<Sim>) -> Json<Value> {
    sim.read(|s| {
        let guests: Vec<Value> = s
            .users
            .values()
            .filter(|u| u.kind == UserKind::Guest)
            .map(|u| json!({ "account_id": u.account_id, "email": u.email, "status": u.status.as_str(), "space_key": s.guest_spaces.get(&u.account_id) }))
            .collect();
        Json(json!({
            "guests": guests,
            "licensed": s.licensed_count(),
            "active_guests": s.guest_count(),
            "paid": s.paid_count(),
            "guest_allowance": crate::access::guest_allowance(s),
            "user_limit": s.user_limit,
        }))
    })
}

async fn switches(State(sim): State<Sim>) -> Json<Value> {
    sim.read(|s| {
        Json(json!({
            "unlicensed_view": s.unlicensed_view,
            "anonymous_view": s.anonymous_view,
            "global_unlicensed_access": s.global_unlicensed_access,
            "check_access_enabled": s.check_access_enabled,
        }))
    })
}

async fn invites(State(sim): State<Sim>) -> Json<Value> {
    let now = sim.now();
    sim.write(|s| {
        s.complete_due_invites(now);
        Json(serde_json::to_value(&s.pending_invites).unwrap_or(Value::Null))
    })
}

async fn create_page(
    State(sim): State<Sim>,
    Json(new): Json<NewPage>,
) -> Result<Response, ApiError> {
    let id = sim.create_page(new).map_err(err)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id.to_string() }))).into_response())
}

async fn get_page(State(sim): State<Sim>, Path(id): Path<u64>) -> Result<Json<Value>, ApiError> {
    sim.read(|s| {
        let p = s
            .pages
            .get(&id)
            .ok_or_else(|| ApiError::not_found(F, format!("page {id}")))?;
        Ok(Json(json!({
            "id": p.id.to_string(),
            "space_id": p.space_id.to_string(),
            "parent_id": p.parent_id.map(|x| x.to_string()),
            "title": p.title,
            "status": p.status.as_str(),
            "version": p.version().number,
            "last_modified": crate::v2::iso(p.last_modified()),
            "labels": p.labels.iter().filter_map(|l| s.labels.get(l)).map(|l| l.name.clone()).collect::<Vec<_>>(),
            "read_restrictions": p.read_restrictions,
            "effectively_restricted": s.is_effectively_restricted(p.id),
            "ancestors": s.ancestors(p.id).iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "body": crate::generator::render_body(s, p),
        })))
    })
}

#[derive(Deserialize)]
struct Edit {
    title: Option<String>,
    body: Option<String>,
}

async fn edit_page(
    State(sim): State<Sim>,
    Path(id): Path<u64>,
    Json(e): Json<Edit>,
) -> Result<Json<Value>, ApiError> {
    let v = sim.edit_page(id, e.title, e.body).map_err(err)?;
    Ok(Json(json!({ "id": id.to_string(), "version": v })))
}

#[derive(Deserialize)]
struct Move {
    parent_id: StrOrNum,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrNum {
    S(String),
    N(u64),
}

impl StrOrNum {
    fn get(&self) -> Result<u64, ApiError> {
        match self {
            StrOrNum::N(n) => Ok(*n),
            StrOrNum::S(s) => s
                .parse()
                .map_err(|_| ApiError::bad_request(F, format!("bad id {s}"))),
        }
    }
}

async fn move_page(
    State(sim): State<Sim>,
    Path(id): Path<u64>,
    Json(m): Json<Move>,
) -> Result<Json<Value>, ApiError> {
    sim.move_page(id, m.parent_id.get()?).map_err(err)?;
    Ok(Json(json!({ "id": id.to_string() })))
}

async fn delete_page(State(sim): State<Sim>, Path(id): Path<u64>) -> Result<StatusCode, ApiError> {
    sim.delete_page(id).map_err(err)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"user": accountId}` or `{"group": groupId}`.
#[derive(Deserialize)]
struct RestrictionBody {
    user: Option<String>,
    group: Option<String>,
}

impl RestrictionBody {
    fn subject(self) -> Result<Subject, ApiError> {
        match (self.user, self.group) {
            (Some(u), None) => Ok(Subject::User(u)),
            (None, Some(g)) => Ok(Subject::Group(g)),
            _ => Err(ApiError::bad_request(
                F,
                "give exactly one of user or group",
            )),
        }
    }
}

async fn add_restriction(
    State(sim): State<Sim>,
    Path(id): Path<u64>,
    Json(b): Json<RestrictionBody>,
) -> Result<StatusCode, ApiError> {
    sim.add_read_restriction(id, b.subject()?).map_err(err)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_restriction(
    State(sim): State<Sim>,
    Path(id): Path<u64>,
    Json(b): Json<RestrictionBody>,
) -> Result<StatusCode, ApiError> {
    sim.remove_read_restriction(id, &b.subject()?)
        .map_err(err)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct LabelBody {
    name: String,
}

async fn add_label(
    State(sim): State<Sim>,
    Path(id): Path<u64>,
    Json(b): Json<LabelBody>,
) -> Result<Json<Value>, ApiError> {
    let lid = sim.add_label(id, &b.name).map_err(err)?;
    Ok(Json(
        json!({ "id": lid.to_string(), "name": b.name.to_lowercase() }),
    ))
}

async fn remove_label(
    State(sim): State<Sim>,
    Path(id): Path<u64>,
    Json(b): Json<LabelBody>,
) -> Result<StatusCode, ApiError> {
    sim.remove_label(id, &b.name).map_err(err)?;
    Ok(StatusCode::NO_CONTENT)
}
