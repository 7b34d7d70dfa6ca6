//! Serde models of the answers kbgate reads. Only the fields kbgate uses are modelled; unknown
//! fields are ignored so Atlassian can add fields without breaking us. Fields the OpenAPI
//! documents mark optional are `Option`, except identifiers (an entity without an id is useless,
//! so its absence is a decode error).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Accepts an identifier given as a JSON string or number (v1 space permission ids and v1 space
/// ids are int64, v2 ids are strings).
fn de_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        I(i64),
        U(u64),
    }
    Ok(match Id::deserialize(d)? {
        Id::S(s) => s,
        Id::I(i) => i.to_string(),
        Id::U(u) => u.to_string(),
    })
}

fn de_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "de_id")] String);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

// ---------------------------------------------------------------- v2

/// A space (`GET /wiki/api/v2/spaces`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Space {
    /// Numeric id as a string; what v2 paths take.
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// Space key (`KB`); what v1 paths and CQL take.
    pub key: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Id of the space's home page.
    #[serde(default, deserialize_with = "de_opt_id")]
    pub homepage_id: Option<String>,
    /// `global`, `personal`, `knowledge_base`, ...
    #[serde(rename = "type", default)]
    pub space_type: Option<String>,
    /// `current` or `archived`.
    #[serde(default)]
    pub status: Option<String>,
    /// The description, in the representations asked with `description-format` (absent
    /// otherwise).
    #[serde(default)]
    pub description: Option<SpaceDescription>,
    /// The icon, when asked with `include-icon=true`.
    #[serde(default)]
    pub icon: Option<SpaceIcon>,
}

/// A space's description (v2 `SpaceDescription`): one field per representation asked.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct SpaceDescription {
    /// `description-format=plain`: the text without markup.
    #[serde(default)]
    pub plain: Option<BodyValue>,
    /// `description-format=view`: rendered HTML (kbgate never shows it as markup).
    #[serde(default)]
    pub view: Option<BodyValue>,
}

/// A space's icon (v2 `SpaceIcon`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpaceIcon {
    /// Where a browser loads it: `/wiki/download/attachments/…?version=…` for an uploaded
    /// icon (its query names the version), `/wiki/images/logo/default-space-logo…` or
    /// `/wiki/aa-avatar/…` otherwise. Never fetched with an API token (CHANGE-2735 answers
    /// 401 on `/wiki/download/`); compared to know whether the icon changed.
    #[serde(default)]
    pub path: Option<String>,
    /// The API path that leads to the icon's bytes (answers a redirect to the media host,
    /// like an attachment's REST download). Only for `global` spaces.
    #[serde(default)]
    pub api_download_link: Option<String>,
}

/// A content version (v2).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    /// Version number, 1-based.
    #[serde(default)]
    pub number: Option<u32>,
    /// When this version was made.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

/// A body in one representation.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct BodyValue {
    /// The markup (storage format XHTML for `storage`).
    #[serde(default)]
    pub value: String,
    /// `storage`, `atlas_doc_format`, ...
    #[serde(default)]
    pub representation: Option<String>,
}

/// The bodies a v2 page came with (only those requested by `body-format`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct PageBody {
    /// Storage format.
    #[serde(default)]
    pub storage: Option<BodyValue>,
}

/// A label.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Label {
    /// Label id.
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// Label name (lower case in Confluence).
    pub name: String,
    /// `global`, `my`, `team`, `system`.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// Labels inlined in a single-page answer (`include-labels=true`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct InlineLabels {
    /// The first labels (Confluence inlines at most a page of them).
    #[serde(default)]
    pub results: Vec<Label>,
    /// Whether more exist (then use [`crate::Client::page_labels`]).
    #[serde(default)]
    pub meta: Option<InlineMeta>,
}

/// Paging meta of an inlined list.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineMeta {
    /// More results exist.
    #[serde(default)]
    pub has_more: bool,
    /// Cursor for the dedicated endpoint.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A page (v2 `PageBulk` / `PageSingle`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// Page id.
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// `current`, `archived`, `draft`, `trashed`, ...
    #[serde(default)]
    pub status: Option<String>,
    /// Title (empty if the server omitted it).
    #[serde(default)]
    pub title: String,
    /// Space id.
    #[serde(default, deserialize_with = "de_opt_id")]
    pub space_id: Option<String>,
    /// Parent content id (`None` for top-level pages).
    #[serde(default, deserialize_with = "de_opt_id")]
    pub parent_id: Option<String>,
    /// Parent type (`page`, `folder`, ...).
    #[serde(default)]
    pub parent_type: Option<String>,
    /// Sort position among siblings.
    #[serde(default)]
    pub position: Option<i64>,
    /// Creation time of the page.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Current version.
    #[serde(default)]
    pub version: Option<Version>,
    /// Bodies, if `body-format` was given.
    #[serde(default)]
    pub body: Option<PageBody>,
    /// Labels, if `include-labels=true` was given (single-page call only).
    #[serde(default)]
    pub labels: Option<InlineLabels>,
}

impl Page {
    /// The storage-format body, if it was requested and returned.
    pub fn storage(&self) -> Option<&str> {
        self.body
            .as_ref()
            .and_then(|b| b.storage.as_ref())
            .map(|s| s.value.as_str())
    }

    /// The version number, if present.
    pub fn version_number(&self) -> Option<u32> {
        self.version.as_ref().and_then(|v| v.number)
    }
}

/// An attachment (v2 `AttachmentBulk`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// Attachment id (`att123`).
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// File name.
    #[serde(default)]
    pub title: String,
    /// `current`, `archived`, `trashed`.
    #[serde(default)]
    pub status: Option<String>,
    /// MIME type.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Size in bytes.
    #[serde(default)]
    pub file_size: Option<u64>,
    /// Current version.
    #[serde(default)]
    pub version: Option<Version>,
    /// Container page id.
    #[serde(default, deserialize_with = "de_opt_id")]
    pub page_id: Option<String>,
    /// Relative legacy download link: Cloud answers 401 there to API tokens (CHANGE-2735);
    /// use [`crate::Client::download_attachment`].
    #[serde(default)]
    pub download_link: Option<String>,
    /// Media-services file id.
    #[serde(default)]
    pub file_id: Option<String>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

/// A user as `POST /wiki/api/v2/users-bulk` returns it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Atlassian account id.
    pub account_id: String,
    /// Email; may be empty or absent depending on the user's privacy settings.
    #[serde(default)]
    pub email: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `active`, `inactive`, `closed`, `unknown`.
    #[serde(default)]
    pub account_status: Option<String>,
    /// True for guests (external collaborators).
    #[serde(default)]
    pub is_external_collaborator: Option<bool>,
    /// `atlassian`, `app`, `customer`, `unknown`.
    #[serde(default)]
    pub account_type: Option<String>,
}

impl User {
    /// True when the account status is `active`.
    pub fn is_active(&self) -> bool {
        self.account_status.as_deref() == Some("active")
    }
}

/// Answer of check-access-by-email, merged over all chunks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessCheck {
    /// Valid emails with no account on the site.
    #[serde(default)]
    pub emails_without_access: Vec<String>,
    /// Emails Confluence considers invalid.
    #[serde(default)]
    pub invalid_emails: Vec<String>,
}

/// A v2 space permission assignment (`GET /wiki/api/v2/spaces/{id}/permissions`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SpacePermissionAssignment {
    /// Permission id (what `DELETE /wiki/rest/api/space/{key}/permission/{id}` takes).
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// Who holds it.
    pub principal: Principal,
    /// What it allows.
    pub operation: PermissionOperationV2,
}

/// Holder of a v2 space permission.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Principal {
    /// `user`, `group` or `role`.
    #[serde(rename = "type")]
    pub principal_type: String,
    /// Account id or group id.
    #[serde(default, deserialize_with = "de_opt_id")]
    pub id: Option<String>,
}

/// Operation of a v2 space permission.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionOperationV2 {
    /// `read`, `create`, `administer`, ...
    pub key: String,
    /// `space`, `page`, ...
    #[serde(default)]
    pub target_type: Option<String>,
}

// ---------------------------------------------------------------- v1

/// A v1 user (restrictions, group members).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserV1 {
    /// Account id (absent only for anonymous/system entries).
    #[serde(default)]
    pub account_id: Option<String>,
    /// Email; may be empty or absent.
    #[serde(default)]
    pub email: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `atlassian`, `app` or empty.
    #[serde(default)]
    pub account_type: Option<String>,
    /// Present with `expand=isExternalCollaborator`.
    #[serde(default)]
    pub is_external_collaborator: Option<bool>,
    /// Older spelling of the same flag.
    #[serde(default)]
    pub external_collaborator: Option<bool>,
    /// The account's time zone (IANA name), as `GET /wiki/rest/api/user/current` reports it;
    /// null when the profile hides it. CQL date literals are read in this zone.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// `GET https://SITE/_edge/tenant_info`: the site's cloud id, needed for gateway URLs.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TenantInfo {
    /// The site's cloud id (a UUID).
    pub cloud_id: String,
}

impl UserV1 {
    /// Guest flag from either spelling.
    pub fn is_guest(&self) -> Option<bool> {
        self.is_external_collaborator.or(self.external_collaborator)
    }
}

/// A v1 group.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Group {
    /// Group id (what membership and permission calls take).
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// Group name.
    pub name: String,
}

/// A v1 list of users inside a restriction.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct UserList {
    /// Users.
    #[serde(default)]
    pub results: Vec<UserV1>,
    /// Number returned.
    #[serde(default)]
    pub size: Option<u32>,
}

/// A v1 list of groups inside a restriction.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct GroupList {
    /// Groups.
    #[serde(default)]
    pub results: Vec<Group>,
    /// Number returned.
    #[serde(default)]
    pub size: Option<u32>,
}

/// Subjects of a restriction.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct RestrictionSubjects {
    /// Restricted-to users (if expanded).
    #[serde(default)]
    pub user: Option<UserList>,
    /// Restricted-to groups (if expanded).
    #[serde(default)]
    pub group: Option<GroupList>,
}

/// A v1 content restriction for one operation.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ContentRestriction {
    /// `read` or `update`.
    #[serde(default)]
    pub operation: Option<String>,
    /// Who the content is restricted to.
    #[serde(default)]
    pub restrictions: Option<RestrictionSubjects>,
}

impl ContentRestriction {
    /// True when at least one user or group is named, i.e. the content is restricted.
    pub fn is_restricted(&self) -> bool {
        self.restrictions.as_ref().is_some_and(|r| {
            r.user.as_ref().is_some_and(|u| !u.results.is_empty())
                || r.group.as_ref().is_some_and(|g| !g.results.is_empty())
        })
    }
}

/// v1 version.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ContentVersion {
    /// Version number.
    #[serde(default)]
    pub number: Option<u32>,
    /// When it was made.
    #[serde(default)]
    pub when: Option<DateTime<Utc>>,
}

/// v1 labels: either a paged array object or a bare array (the spec allows both).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum LabelsV1 {
    /// `{results:[...], size}`.
    Paged {
        /// Labels.
        results: Vec<LabelV1>,
    },
    /// `[...]`.
    Bare(Vec<LabelV1>),
}

impl LabelsV1 {
    /// The labels whichever the shape.
    pub fn labels(&self) -> &[LabelV1] {
        match self {
            LabelsV1::Paged { results } | LabelsV1::Bare(results) => results,
        }
    }
}

/// A v1 label.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct LabelV1 {
    /// Label id.
    #[serde(default, deserialize_with = "de_opt_id")]
    pub id: Option<String>,
    /// Name.
    pub name: String,
    /// Prefix (`global`, ...).
    #[serde(default)]
    pub prefix: Option<String>,
}

/// v1 content metadata.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct ContentMetadata {
    /// With `expand=metadata.labels`.
    #[serde(default)]
    pub labels: Option<LabelsV1>,
}

/// v1 restrictions per operation.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct ContentRestrictions {
    /// Read restriction (with `expand=restrictions.read.restrictions.user,...group`).
    #[serde(default)]
    pub read: Option<ContentRestriction>,
}

/// v1 bodies.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct ContentBodies {
    /// Storage format (with `expand=body.storage`).
    #[serde(default)]
    pub storage: Option<BodyValue>,
}

/// The space of v1 content.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ContentSpace {
    /// Space id (int64 in v1; kept as a string).
    #[serde(default, deserialize_with = "de_opt_id")]
    pub id: Option<String>,
    /// Space key.
    #[serde(default)]
    pub key: Option<String>,
}

/// An entry of v1 `ancestors`. Cloud sends each ancestor as a whole content object (links,
/// expandables, extensions); a structure scan of a space repeats the same ancestors on every
/// page, so only what places content in the tree is kept and the rest is skipped unparsed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ContentAncestor {
    /// Content id.
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// `page`, `folder`, `whiteboard`, ...
    #[serde(rename = "type")]
    pub content_type: String,
    /// `current`, ...
    #[serde(default)]
    pub status: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: String,
}

/// v1 content (`/wiki/rest/api/content/search` results), with optional expansions.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Content {
    /// Content id.
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// `page`, `blogpost`, `attachment`, ...
    #[serde(rename = "type")]
    pub content_type: String,
    /// `current`, ...
    #[serde(default)]
    pub status: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// With `expand=version`.
    #[serde(default)]
    pub version: Option<ContentVersion>,
    /// With `expand=ancestors`: root first, direct parent last.
    #[serde(default)]
    pub ancestors: Option<Vec<ContentAncestor>>,
    /// With `expand=metadata.labels`.
    #[serde(default)]
    pub metadata: Option<ContentMetadata>,
    /// With `expand=restrictions.read.restrictions.user,restrictions.read.restrictions.group`.
    #[serde(default)]
    pub restrictions: Option<ContentRestrictions>,
    /// With `expand=body.storage`.
    #[serde(default)]
    pub body: Option<ContentBodies>,
    /// With `expand=container`: the space (for pages) or page (for attachments); loose.
    #[serde(default)]
    pub container: Option<Value>,
    /// With `expand=space`.
    #[serde(default)]
    pub space: Option<ContentSpace>,
    /// Attachment extras (`mediaType`, `fileSize`, ...); loose.
    #[serde(default)]
    pub extensions: Option<Value>,
    /// `_links` (`download` for attachments, relative to the site's `/wiki`); loose.
    #[serde(default, rename = "_links")]
    pub links: Option<Value>,
}

impl Content {
    /// An attachment's `_links.download` (`/wiki/download/attachments/…`). Informational only:
    /// Cloud answers 401 there to API tokens (CHANGE-2735); download through
    /// [`crate::Client::download_attachment`].
    pub fn download_link(&self) -> Option<&str> {
        self.links.as_ref()?.get("download")?.as_str()
    }

    /// Label names, if labels were expanded.
    pub fn label_names(&self) -> Option<Vec<&str>> {
        let labels = self.metadata.as_ref()?.labels.as_ref()?;
        Some(labels.labels().iter().map(|l| l.name.as_str()).collect())
    }

    /// True when read restrictions were expanded and name someone.
    pub fn is_read_restricted(&self) -> bool {
        self.restrictions
            .as_ref()
            .and_then(|r| r.read.as_ref())
            .is_some_and(ContentRestriction::is_restricted)
    }

    /// Storage body, if expanded.
    pub fn storage(&self) -> Option<&str> {
        self.body
            .as_ref()
            .and_then(|b| b.storage.as_ref())
            .map(|s| s.value.as_str())
    }

    /// The container's id (page id of an attachment), if expanded.
    pub fn container_id(&self) -> Option<String> {
        match self.container.as_ref()?.get("id")? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// A `/wiki/rest/api/search` hit.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    /// The content, for content hits.
    #[serde(default)]
    pub content: Option<Content>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// `content`, `space`, `user`.
    #[serde(default)]
    pub entity_type: Option<String>,
    /// Last modification time as Confluence prints it.
    #[serde(default)]
    pub last_modified: Option<String>,
    /// Relative UI URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// Who a space permission is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectType {
    /// `identifier` is an account id (or `anonymous`).
    User,
    /// `identifier` is a group id.
    Group,
}

/// Subject of a v1 space permission.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PermissionSubject {
    /// User or group.
    #[serde(rename = "type")]
    pub subject_type: SubjectType,
    /// Account id or group id.
    pub identifier: String,
}

impl PermissionSubject {
    /// A user subject.
    pub fn user(account_id: impl Into<String>) -> Self {
        Self {
            subject_type: SubjectType::User,
            identifier: account_id.into(),
        }
    }

    /// A group subject (by group id).
    pub fn group(group_id: impl Into<String>) -> Self {
        Self {
            subject_type: SubjectType::Group,
            identifier: group_id.into(),
        }
    }
}

/// Operation of a v1 space permission (`{key, target}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SpaceOperation {
    /// `read`, `create`, `administer`, ...
    pub key: String,
    /// `space`, `page`, ...
    pub target: String,
}

impl SpaceOperation {
    /// "View space": `read` on `space`, the one kbgate grants.
    pub fn read_space() -> Self {
        Self {
            key: "read".into(),
            target: "space".into(),
        }
    }
}

/// A v1 space permission as `POST /wiki/rest/api/space/{key}/permission` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SpacePermission {
    /// Permission id (int64 in the spec; kept as a string).
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// Holder.
    pub subject: PermissionSubject,
    /// Operation.
    pub operation: SpaceOperation,
}

/// A v1 space as `GET /wiki/rest/api/space` answers it; `permissions` only with
/// `expand=permissions` (see [`crate::Client::spaces_with_permissions`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpaceV1 {
    /// Numeric id (int64 in the spec; optional there), as a string.
    #[serde(default, deserialize_with = "de_opt_id")]
    pub id: Option<String>,
    /// Space key.
    pub key: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// `current` or `archived`.
    #[serde(default)]
    pub status: Option<String>,
    /// The space's permissions; `None` when not expanded.
    #[serde(default)]
    pub permissions: Option<Vec<SpacePermissionV1>>,
}

impl SpaceV1 {
    /// Whether unlicensed users (JSM knowledge base) may view the space: a `read space`
    /// permission with `unlicensedAccess`. `None` when permissions were not expanded.
    pub fn unlicensed_view(&self) -> Option<bool> {
        self.permissions
            .as_ref()
            .map(|ps| ps.iter().any(|p| p.is_read_space() && p.unlicensed_access))
    }

    /// Whether anonymous users may view the space: a `read space` permission with
    /// `anonymousAccess`. `None` when permissions were not expanded.
    pub fn anonymous_view(&self) -> Option<bool> {
        self.permissions
            .as_ref()
            .map(|ps| ps.iter().any(|p| p.is_read_space() && p.anonymous_access))
    }
}

/// A v1 `SpacePermission` (inside a space read with `expand=permissions`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpacePermissionV1 {
    /// Permission id, when given.
    #[serde(default, deserialize_with = "de_opt_id")]
    pub id: Option<String>,
    /// The users and groups it applies to (absent for anonymous/unlicensed entries).
    #[serde(default)]
    pub subjects: Option<PermissionSubjectsV1>,
    /// The operation.
    pub operation: OperationCheck,
    /// Granted to anonymous users.
    #[serde(default)]
    pub anonymous_access: bool,
    /// Granted to unlicensed users from Jira Service Management (with `read space`).
    #[serde(default)]
    pub unlicensed_access: bool,
}

impl SpacePermissionV1 {
    /// Whether this is "view space" (`read` on `space`).
    pub fn is_read_space(&self) -> bool {
        self.operation.operation == "read" && self.operation.target_type == "space"
    }
}

/// `subjects` of a v1 `SpacePermission`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct PermissionSubjectsV1 {
    /// Users, if any.
    #[serde(default)]
    pub user: Option<UserIds>,
    /// Groups, if any.
    #[serde(default)]
    pub group: Option<GroupList>,
}

/// Account ids of a v1 user list (only what kbgate needs of each user).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct UserIds {
    /// The users.
    #[serde(default)]
    pub results: Vec<UserRef>,
}

/// A user named by account id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRef {
    /// Account id (absent for anonymous/system entries).
    #[serde(default)]
    pub account_id: Option<String>,
}

/// A v1 `OperationCheckResult`: `{operation, targetType}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationCheck {
    /// `read`, `administer`, ...
    pub operation: String,
    /// `space`, `page`, ...
    pub target_type: String,
}

// ---------------------------------------------------------------- other APIs

/// Answer of the knowledge-base permission switches (undocumented in the OpenAPI documents, so
/// loose): the fields we know, plus everything else in `extra`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KbPermissionState {
    /// Space concerned (space switches).
    #[serde(default)]
    pub space_key: Option<String>,
    /// The state after the call, when echoed as `enablePermission`.
    #[serde(default)]
    pub enable_permission: Option<bool>,
    /// The state after the call, when given as `enabled`/`permitted`.
    #[serde(default, alias = "permitted")]
    pub enabled: Option<bool>,
    /// Everything else the server said.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl KbPermissionState {
    /// The switch's state after the call, if the server told.
    pub fn state(&self) -> Option<bool> {
        self.enable_permission.or(self.enabled)
    }
}

/// A guest as GuestDataQuery lists it (undocumented; loose).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Guest {
    /// Account id.
    pub account_id: String,
    /// Email, if visible.
    #[serde(default)]
    pub email: Option<String>,
    /// Spaces assigned (a guest has at most one); loose objects.
    #[serde(default)]
    pub spaces: Vec<Value>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// Result of the ResetExCoSpacePermissions mutation.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct MutationOutcome {
    /// Whether Confluence applied the change.
    #[serde(default)]
    pub success: bool,
    /// Errors reported by the mutation (loose).
    #[serde(default)]
    pub errors: Vec<Value>,
}

/// A Jira user (`POST /rest/api/3/user` answer).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JiraUser {
    /// Account id of the (new or existing) Atlassian account.
    pub account_id: String,
    /// Email, if visible.
    #[serde(default)]
    pub email_address: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Whether the account is active.
    #[serde(default)]
    pub active: Option<bool>,
    /// `atlassian`, `app`, `customer`.
    #[serde(default)]
    pub account_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tolerates_nulls_and_unknown_fields() {
        let p: Page = serde_json::from_str(
            r#"{"id":"12","status":"current","title":"T","spaceId":"3","parentId":null,
                "parentType":null,"position":null,"authorId":"x","createdAt":"2026-01-02T03:04:05.000Z",
                "version":{"number":4,"createdAt":"2026-01-02T03:04:05.000Z","minorEdit":false},
                "body":{"storage":{"representation":"storage","value":"<p>x</p>"}},"newField":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(p.storage(), Some("<p>x</p>"));
        assert_eq!(p.version_number(), Some(4));
        assert_eq!(p.parent_id, None);
    }

    #[test]
    fn numeric_ids_are_accepted() {
        let p: SpacePermission = serde_json::from_str(
            r#"{"id":123,"subject":{"type":"group","identifier":"g1"},"operation":{"key":"read","target":"space"}}"#,
        )
        .unwrap();
        assert_eq!(p.id, "123");
        assert_eq!(p.subject, PermissionSubject::group("g1"));
    }

    #[test]
    fn v1_space_permissions_show_the_unlicensed_switch() {
        let s: SpaceV1 = serde_json::from_str(
            r#"{"id":98306,"key":"KB","name":"KB","type":"global","status":"current",
                "permissions":[
                  {"id":1,"subjects":{"group":{"results":[{"type":"group","name":"confluence-users","id":"g1"}],"size":1}},
                   "operation":{"operation":"read","targetType":"space"},"anonymousAccess":false,"unlicensedAccess":false},
                  {"operation":{"operation":"read","targetType":"space"},"anonymousAccess":false,"unlicensedAccess":true},
                  {"operation":{"operation":"create","targetType":"page"},"anonymousAccess":true,"unlicensedAccess":false}],
                "_expandable":{},"_links":{}}"#,
        )
        .unwrap();
        assert_eq!(s.id.as_deref(), Some("98306"));
        assert_eq!(s.unlicensed_view(), Some(true));
        assert_eq!(s.anonymous_view(), Some(false), "only read space counts");
        let perms = s.permissions.as_ref().unwrap();
        assert_eq!(
            perms[0]
                .subjects
                .as_ref()
                .unwrap()
                .group
                .as_ref()
                .unwrap()
                .results[0]
                .id,
            "g1"
        );
        assert_eq!(perms[1].id, None);
        let bare: SpaceV1 = serde_json::from_str(r#"{"key":"KB","name":"KB"}"#).unwrap();
        assert_eq!(bare.unlicensed_view(), None, "not expanded: unknown");
    }

    #[test]
    fn v1_labels_both_shapes() {
        let a: ContentMetadata =
            serde_json::from_str(r#"{"labels":{"results":[{"name":"faq","prefix":"global","id":"1","label":"faq"}],"size":1}}"#)
                .unwrap();
        let b: ContentMetadata = serde_json::from_str(
            r#"{"labels":[{"name":"faq","prefix":"global","id":"1","label":"faq"}]}"#,
        )
        .unwrap();
        assert_eq!(a.labels.unwrap().labels()[0].name, "faq");
        assert_eq!(b.labels.unwrap().labels()[0].name, "faq");
    }

    #[test]
    fn restriction_detection() {
        let r: ContentRestriction = serde_json::from_str(
            r#"{"operation":"read","restrictions":{"user":{"results":[],"size":0},"group":{"results":[{"type":"group","name":"staff","id":"g"}],"size":1}},"_expandable":{},"_links":{}}"#,
        )
        .unwrap();
        assert!(r.is_restricted());
        let r: ContentRestriction = serde_json::from_str(
            r#"{"operation":"read","restrictions":{"user":{"results":[]},"group":{"results":[]}}}"#,
        )
        .unwrap();
        assert!(!r.is_restricted());
    }
}
