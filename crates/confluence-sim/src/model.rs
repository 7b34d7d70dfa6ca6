//! The simulator's in-memory model of a Confluence Cloud site.
//!
//! Everything the simulated endpoints answer is derived from [`State`]. Numeric ids are kept as
//! `u64` internally and rendered as strings in JSON, as Confluence does. Ids are allocated from
//! monotonic counters so that a seed always yields the same site.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An Atlassian account id (`712020:xxxxxxxx-…` or a 24-hex legacy id).
pub type AccountId = String;

/// What kind of Atlassian account a user has (v1 `accountType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountType {
    /// A normal Atlassian account.
    Atlassian,
    /// A bot / app account.
    App,
    /// A JSM portal-only customer account.
    Customer,
}

impl AccountType {
    /// The string Confluence uses.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Atlassian => "atlassian",
            AccountType::App => "app",
            AccountType::Customer => "customer",
        }
    }
}

/// Account status as reported by `users-bulk` (`accountStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// Can sign in.
    Active,
    /// Deactivated by an admin.
    Inactive,
    /// Account closed (deleted).
    Closed,
}

impl UserStatus {
    /// The string Confluence uses.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Inactive => "inactive",
            UserStatus::Closed => "closed",
        }
    }
}

/// How a user relates to the Confluence product on the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserKind {
    /// Holds a Confluence licence (a paid seat).
    Licensed,
    /// A free guest ("external collaborator"), limited to one space.
    Guest,
    /// On the site (e.g. via Jira/JSM) but without a Confluence licence.
    Unlicensed,
}

/// A person (or app) on the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Atlassian account id.
    pub account_id: AccountId,
    /// Email address (lower-case domain).
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Account type.
    pub account_type: AccountType,
    /// Account status.
    pub status: UserStatus,
    /// Product relationship.
    pub kind: UserKind,
    /// Site/org admin: may call admin-only endpoints.
    pub is_admin: bool,
}

impl User {
    /// Guests are Confluence's "external collaborators".
    pub fn is_external_collaborator(&self) -> bool {
        self.kind == UserKind::Guest
    }
}

/// A group of users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Group id (uuid).
    pub id: String,
    /// Group name.
    pub name: String,
    /// Account ids of the members.
    pub members: BTreeSet<AccountId>,
}

/// Space status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpaceStatus {
    /// Live.
    Current,
    /// Archived.
    Archived,
}

impl SpaceStatus {
    /// The string Confluence uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SpaceStatus::Current => "current",
            SpaceStatus::Archived => "archived",
        }
    }
}

/// A space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Space {
    /// Numeric id.
    pub id: u64,
    /// Space key, e.g. `KB`.
    pub key: String,
    /// Name.
    pub name: String,
    /// Id of the home page.
    pub homepage_id: Option<u64>,
    /// Status.
    pub status: SpaceStatus,
    /// v2 space type (`global`, `knowledge_base`, …).
    pub space_type: String,
    /// Creator.
    pub author_id: AccountId,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// The description, plain text (empty: none, as a new space has).
    #[serde(default)]
    pub description: String,
    /// An uploaded icon; `None`: Confluence's default space logo.
    #[serde(default)]
    pub icon: Option<SpaceIconFile>,
}

impl Space {
    /// Id of the space's description content object: what an uploaded icon is attached to
    /// (its `/wiki/download/attachments/{id}/…` path and REST download name it). Space ids
    /// step by 3, so `id + 1` is never another space's.
    pub fn description_id(&self) -> u64 {
        self.id + 1
    }
}

/// An uploaded space icon: an attachment of the space's description object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceIconFile {
    /// Numeric attachment id (`att{id}` in paths).
    pub id: u64,
    /// File name.
    pub title: String,
    /// MIME type as uploaded.
    pub media_type: String,
    /// Contents.
    #[serde(skip)]
    pub bytes: Bytes,
    /// Version number: a new upload moves it (and the `path`'s query).
    pub version: u32,
    /// Upload time (the `modificationDate` of the path).
    pub modified_at: DateTime<Utc>,
    /// Media-platform file id of this version.
    pub file_id: String,
}

/// Page status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageStatus {
    /// Live.
    Current,
    /// In the space trash.
    Trashed,
    /// Archived: v2 page lists return it by default, CQL search does not (see `v2.rs`,
    /// `v1.rs`).
    Archived,
}

impl PageStatus {
    /// The string Confluence uses.
    pub fn as_str(self) -> &'static str {
        match self {
            PageStatus::Current => "current",
            PageStatus::Trashed => "trashed",
            PageStatus::Archived => "archived",
        }
    }
}

/// One version of a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// 1-based version number.
    pub number: u32,
    /// When this version was saved (the page's `lastmodified`).
    pub created_at: DateTime<Utc>,
    /// Who saved it.
    pub author_id: AccountId,
    /// Version comment.
    pub message: String,
    /// Minor edit flag.
    pub minor_edit: bool,
}

/// A storage-format body: either rendered lazily from the generator (keeps a 100k-page site
/// small in memory) or stored verbatim after an edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Rendered on demand by [`crate::generator::render_body`] from this seed.
    Generated {
        /// Per-page body seed.
        seed: u64,
        /// Feature flags chosen at generation time (see `generator::feat`).
        features: u32,
    },
    /// A literal storage-format body.
    Stored(Arc<str>),
}

/// Read restrictions placed directly on a page (not inherited ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restrictions {
    /// Account ids allowed to read.
    pub users: BTreeSet<AccountId>,
    /// Group ids allowed to read.
    pub groups: BTreeSet<String>,
}

impl Restrictions {
    /// No restriction at all.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }
}

/// Who a restriction or permission names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "identifier", rename_all = "lowercase")]
pub enum Subject {
    /// An account id.
    User(AccountId),
    /// A group id.
    Group(String),
}

/// A page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Numeric id.
    pub id: u64,
    /// Owning space.
    pub space_id: u64,
    /// Parent page, `None` for top-level pages (the home page and its siblings).
    pub parent_id: Option<u64>,
    /// Position among siblings.
    pub position: i32,
    /// Title (unique within a space).
    pub title: String,
    /// Status.
    pub status: PageStatus,
    /// All versions, oldest first; never empty.
    pub versions: Vec<Version>,
    /// Creation time (= first version).
    pub created_at: DateTime<Utc>,
    /// Creator.
    pub author_id: AccountId,
    /// Current storage body.
    pub body: Body,
    /// Label ids.
    pub labels: BTreeSet<u64>,
    /// Read restrictions set directly on this page.
    pub read_restrictions: Restrictions,
}

impl Page {
    /// The current version (the last one).
    pub fn version(&self) -> &Version {
        // `versions` is never empty: every constructor pushes version 1.
        &self.versions[self.versions.len() - 1]
    }
    /// `lastmodified` as CQL sees it.
    pub fn last_modified(&self) -> DateTime<Utc> {
        self.version().created_at
    }
}

/// Kinds of content other than pages and attachments that a Cloud space holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    /// A folder in the page tree (v2 `/folders/{id}`, content type `folder`).
    Folder,
    /// A whiteboard.
    Whiteboard,
    /// A database.
    Database,
    /// A smart link / embed in the page tree.
    Embed,
    /// A blog post (space level, outside the page tree).
    Blogpost,
}

impl ContentKind {
    /// The content type string Confluence uses (v1 `type`, CQL `type =`, v2 `parentType`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Folder => "folder",
            ContentKind::Whiteboard => "whiteboard",
            ContentKind::Database => "database",
            ContentKind::Embed => "embed",
            ContentKind::Blogpost => "blogpost",
        }
    }
}

/// Content that is not a page: folders, whiteboards, databases, embeds and blog posts. It
/// shares the content id sequence with pages; a page's `parent_id` may name a folder (or a
/// whiteboard, database or embed), and read restrictions on it inherit to what is below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    /// Numeric id.
    pub id: u64,
    /// Kind.
    pub kind: ContentKind,
    /// Owning space.
    pub space_id: u64,
    /// Parent in the page tree (a page or a folder); `None` at the space root.
    pub parent_id: Option<u64>,
    /// Position among siblings.
    pub position: i32,
    /// Title.
    pub title: String,
    /// Status.
    pub status: PageStatus,
    /// Version number.
    pub version: u32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last modification (CQL `lastmodified`).
    pub last_modified: DateTime<Utc>,
    /// Creator.
    pub author_id: AccountId,
    /// Read restrictions set directly on it.
    pub read_restrictions: Restrictions,
}

/// An attachment (a file on a page) with real bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Numeric part of the id; JSON shows `att{id}`.
    pub id: u64,
    /// Page it is attached to.
    pub page_id: u64,
    /// File name.
    pub title: String,
    /// MIME type.
    pub media_type: String,
    /// Contents.
    #[serde(skip)]
    pub bytes: Bytes,
    /// Version number.
    pub version: u32,
    /// Upload time.
    pub created_at: DateTime<Utc>,
    /// Uploader.
    pub author_id: AccountId,
    /// Status (trashed with its page).
    pub status: PageStatus,
    /// Media-platform file id: what the signed download URL names. A new upload of the same
    /// attachment (a new version) gets a new file id, as in Cloud.
    pub file_id: String,
}

/// A label (all generated ones have prefix `global`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Numeric id.
    pub id: u64,
    /// Name, lower-case.
    pub name: String,
    /// Prefix: `global`, `my`, `team`.
    pub prefix: String,
}

/// A space permission's operation, e.g. `{key: "read", target: "space"}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Operation {
    /// `read`, `create`, `delete`, `administer`, …
    pub key: String,
    /// `space`, `page`, `blogpost`, `comment`, `attachment`.
    pub target: String,
}

/// A space permission grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpacePermission {
    /// Numeric id.
    pub id: u64,
    /// Space key.
    pub space_key: String,
    /// Who it is granted to.
    pub subject: Subject,
    /// What it grants.
    pub operation: Operation,
}

/// An invitation sent by `invite-by-email`, completed asynchronously into a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingInvite {
    /// Invited address.
    pub email: String,
    /// When the invite turns into a user.
    pub due_at: DateTime<Utc>,
}

/// Basic-auth credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Account email.
    pub email: String,
    /// API token.
    pub api_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .field("api_token", &"<redacted>")
            .finish()
    }
}

/// A scoped API token: works only through the gateway, and only for calls its scopes cover.
#[derive(Clone, PartialEq, Eq)]
pub struct ScopedToken {
    /// The account the token belongs to.
    pub account_id: AccountId,
    /// Granted scopes (classic `read:confluence-content.all` or granular `read:page:confluence`).
    pub scopes: BTreeSet<String>,
}

impl std::fmt::Debug for ScopedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedToken")
            .field("account_id", &self.account_id)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// An OAuth 2.0 client-credentials client (service account credential).
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// The (service) account the access tokens act as.
    pub account_id: AccountId,
    /// Scopes granted to the credential.
    pub scopes: BTreeSet<String>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("account_id", &self.account_id)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// A Bearer access token minted for an OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The account it acts as.
    pub account_id: AccountId,
    /// Its scopes.
    pub scopes: BTreeSet<String>,
    /// End of validity (simulator clock).
    pub expires_at: DateTime<Utc>,
}

/// The whole site.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Users by account id.
    pub users: BTreeMap<AccountId, User>,
    /// Lower-cased email → account id.
    pub users_by_email: HashMap<String, AccountId>,
    /// Groups by id.
    pub groups: BTreeMap<String, Group>,
    /// Spaces by id.
    pub spaces: BTreeMap<u64, Space>,
    /// Space key → id.
    pub space_ids_by_key: HashMap<String, u64>,
    /// Pages by id (trashed ones included).
    pub pages: BTreeMap<u64, Page>,
    /// Parent id → child page ids (current and trashed), kept sorted by (position, id) on read.
    pub children: HashMap<u64, Vec<u64>>,
    /// Attachments by numeric id.
    pub attachments: BTreeMap<u64, Attachment>,
    /// Folders, whiteboards, databases, embeds and blog posts by id.
    pub contents: BTreeMap<u64, Content>,
    /// Page id → attachment ids.
    pub page_attachments: HashMap<u64, Vec<u64>>,
    /// Labels by id.
    pub labels: BTreeMap<u64, Label>,
    /// Label name → id.
    pub label_ids_by_name: HashMap<String, u64>,
    /// Space permissions by id.
    pub space_permissions: BTreeMap<u64, SpacePermission>,
    /// Guest account id → the one space key it is assigned to.
    pub guest_spaces: BTreeMap<AccountId, String>,
    /// Spaces where unlicensed (logged-in, no Confluence licence) users may view.
    pub unlicensed_view: BTreeSet<String>,
    /// Spaces where anonymous users may view.
    pub anonymous_view: BTreeSet<String>,
    /// Site-wide unlicensed access switch (JSM knowledge base).
    pub global_unlicensed_access: bool,
    /// Invitations waiting to complete.
    pub pending_invites: Vec<PendingInvite>,
    /// When false, `check-access-by-email` answers 503 (feature disabled on the site).
    pub check_access_enabled: bool,
    /// How long an `invite-by-email` invitation takes to complete (simulator clock); `None`:
    /// [`crate::access::INVITE_DELAY_MS`]. Atlassian documents the call as asynchronous ("may
    /// take some time to complete") without a bound; tests set a long delay to model a slow
    /// site.
    pub invite_delay: Option<chrono::Duration>,
    /// The site's user limit (the plan's user tier): paid users plus guests may not exceed it
    /// ("Total number of users (paid + guests) can't exceed the current Confluence site user
    /// limit", Atlassian's guest docs). `None`: unlimited (the default).
    pub user_limit: Option<usize>,
    /// Id of the site's default Confluence product-access group, which licensed users (and
    /// completed invitations) join. It is designated by id, as a site's product-access
    /// configuration does, so it may have any name: generated sites call it
    /// [`crate::access::DEFAULT_ACCESS_GROUP`], and a test may rename it.
    pub default_access_group: Option<String>,
    /// Classic (unscoped) API token → account id (Basic auth on the site URL).
    pub api_tokens: HashMap<String, AccountId>,
    /// Scoped API tokens (Basic `email:token`, accepted on the gateway only).
    pub scoped_tokens: HashMap<String, ScopedToken>,
    /// OAuth 2.0 client-credentials clients of service accounts, by client id.
    pub oauth_clients: HashMap<String, OAuthClient>,
    /// Bearer access tokens issued by `POST /oauth/token` (gateway only).
    pub access_tokens: HashMap<String, AccessToken>,
    /// The site's cloud id (`GET /_edge/tenant_info`; the gateway path names it).
    pub cloud_id: String,
    /// Counter for minted scoped tokens and OAuth clients.
    pub next_credential_seq: u64,
    /// The org admin API key (Bearer) for admin.atlassian.com calls.
    pub admin_api_key: String,
    /// The service account kbgate uses (site admin, licensed).
    pub service_account: Option<Credentials>,
    /// A licensed non-admin account with a token.
    pub non_admin_account: Option<Credentials>,
    /// Company (staff) email domain.
    pub company_domain: String,
    /// Customer domains, in generation order.
    pub customer_domains: Vec<String>,
    /// Next content id (pages and attachments share the sequence, like Confluence).
    pub next_content_id: u64,
    /// Next label id.
    pub next_label_id: u64,
    /// Next space permission id.
    pub next_permission_id: u64,
    /// Next space id.
    pub next_space_id: u64,
    /// Counter used to mint deterministic account ids and group ids after generation.
    pub next_account_seq: u64,
}

impl State {
    /// Allocates a content id.
    pub fn alloc_content_id(&mut self) -> u64 {
        let id = self.next_content_id;
        self.next_content_id += 1;
        id
    }

    /// Looks a space up by key.
    pub fn space_by_key(&self, key: &str) -> Option<&Space> {
        self.space_ids_by_key
            .get(key)
            .and_then(|id| self.spaces.get(id))
    }

    /// Looks a user up by email (case-insensitive).
    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.users_by_email
            .get(&email.to_ascii_lowercase())
            .and_then(|id| self.users.get(id))
    }

    /// Inserts or replaces a user, keeping the email index.
    pub fn insert_user(&mut self, user: User) {
        self.users_by_email
            .insert(user.email.to_ascii_lowercase(), user.account_id.clone());
        self.users.insert(user.account_id.clone(), user);
    }

    /// Returns the id of label `name`, creating it (prefix `global`) if needed.
    pub fn label_id(&mut self, name: &str) -> u64 {
        let name = name.to_lowercase();
        if let Some(id) = self.label_ids_by_name.get(&name) {
            return *id;
        }
        let id = self.next_label_id;
        self.next_label_id += 1;
        self.label_ids_by_name.insert(name.clone(), id);
        self.labels.insert(
            id,
            Label {
                id,
                name,
                prefix: "global".into(),
            },
        );
        id
    }

    /// The parent of a page or other content (a page or a folder), if any.
    pub fn parent_of(&self, id: u64) -> Option<u64> {
        match self.pages.get(&id) {
            Some(p) => p.parent_id,
            None => self.contents.get(&id).and_then(|c| c.parent_id),
        }
    }

    /// The read restrictions set directly on a page or other content.
    pub fn own_restrictions(&self, id: u64) -> Option<&Restrictions> {
        self.pages
            .get(&id)
            .map(|p| &p.read_restrictions)
            .or_else(|| self.contents.get(&id).map(|c| &c.read_restrictions))
    }

    /// Ancestors of a page (or other content), root first (like v1 `expand=ancestors`);
    /// folders in the chain are included.
    pub fn ancestors(&self, page_id: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut cur = self.parent_of(page_id);
        while let Some(id) = cur {
            if out.contains(&id) {
                break; // defensive: never loop on a corrupt tree
            }
            out.push(id);
            cur = self.parent_of(id);
        }
        out.reverse();
        out
    }

    /// Children of a page ordered by (position, id).
    pub fn child_ids(&self, page_id: u64) -> Vec<u64> {
        let mut ids = self.children.get(&page_id).cloned().unwrap_or_default();
        ids.sort_by_key(|id| (self.pages.get(id).map(|p| p.position).unwrap_or(0), *id));
        ids
    }

    /// Whether `account_id` satisfies one page's own read restriction.
    pub(crate) fn satisfies(&self, r: &Restrictions, account_id: &str) -> bool {
        if r.is_empty() || r.users.contains(account_id) {
            return true;
        }
        r.groups.iter().any(|g| {
            self.groups
                .get(g)
                .is_some_and(|grp| grp.members.contains(account_id))
        })
    }

    /// Whether a user may read a page: Confluence requires the user to satisfy the read
    /// restriction on the page itself AND on every ancestor (restrictions inherit downwards,
    /// although the v1 restriction endpoint of a child only lists the child's own).
    /// Restrictions on folders count the same way: a folder's read restriction hides what is
    /// below it.
    pub fn can_read_page(&self, account_id: &str, page_id: u64) -> bool {
        let Some(own) = self.own_restrictions(page_id) else {
            return false;
        };
        if !self.satisfies(own, account_id) {
            return false;
        }
        self.ancestors(page_id).iter().all(|a| {
            self.own_restrictions(*a)
                .is_some_and(|r| self.satisfies(r, account_id))
        })
    }

    /// Whether a page (or other content), or any ancestor (folders included), carries a read
    /// restriction.
    pub fn is_effectively_restricted(&self, page_id: u64) -> bool {
        self.own_restrictions(page_id)
            .is_some_and(|r| !r.is_empty())
            || self
                .ancestors(page_id)
                .iter()
                .any(|a| self.own_restrictions(*a).is_some_and(|r| !r.is_empty()))
    }

    /// The smallest id of a current page of space `key` that no read restriction covers, if
    /// any (tests pick a page every reader may see with it).
    pub fn first_open_page(&self, key: &str) -> Option<u64> {
        let space_id = self.spaces.values().find(|sp| sp.key == key)?.id;
        self.pages
            .values()
            .filter(|p| p.space_id == space_id && p.status == PageStatus::Current)
            .filter(|p| !self.is_effectively_restricted(p.id))
            .map(|p| p.id)
            .min()
    }

    /// The v2 `parentType` of content whose parent is `parent`: `folder`, `whiteboard`, …,
    /// or `page`.
    pub fn parent_type(&self, parent: u64) -> &'static str {
        self.contents
            .get(&parent)
            .map(|c| c.kind.as_str())
            .unwrap_or("page")
    }

    /// Number of licensed, active users (the guest allowance is 5 per licensed user).
    pub fn licensed_count(&self) -> usize {
        self.users
            .values()
            .filter(|u| u.kind == UserKind::Licensed && u.status == UserStatus::Active)
            .count()
    }

    /// Number of paid users as Confluence counts them for billing and for the guest allowance:
    /// active licensed users plus people invited (by `invite-by-email`, which grants the
    /// default product access) whose invitation has not completed yet. Atlassian: users are
    /// "automatically counted towards billing even if they don't accept your invite or log in"
    /// (billing docs, "Manage users"). Counting pending invitations here makes the allowance
    /// the same whether a request comes before or after an invitation completes — the outcome
    /// does not depend on how fast a client calls.
    pub fn paid_count(&self) -> usize {
        let pending = self
            .pending_invites
            .iter()
            .filter(|i| self.user_by_email(&i.email).is_none())
            .map(|i| i.email.as_str())
            .collect::<BTreeSet<_>>()
            .len();
        self.licensed_count() + pending
    }

    /// Number of guests as Confluence counts them against the allowance: every active guest,
    /// whether or not they have accepted their invitation or ever signed in (accounts kbgate
    /// puts on the site and makes guests have never signed in, and count from the moment they
    /// are guests).
    pub fn guest_count(&self) -> usize {
        self.users
            .values()
            .filter(|u| u.kind == UserKind::Guest && u.status == UserStatus::Active)
            .count()
    }

    /// Completes invitations whose time has come (called lazily on every state access that
    /// cares; `now` comes from the simulator clock).
    pub fn complete_due_invites(&mut self, now: DateTime<Utc>) {
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_invites)
            .into_iter()
            .partition(|i| i.due_at <= now);
        self.pending_invites = rest;
        for inv in due {
            if self.user_by_email(&inv.email).is_some() {
                continue;
            }
            let seq = self.next_account_seq;
            self.next_account_seq += 1;
            let account_id = format!("712020:{}", uuid_like(0x1a71_7e00_u64 ^ seq, seq));
            let display_name = inv
                .email
                .split('@')
                .next()
                .unwrap_or("invited user")
                .to_string();
            self.insert_user(User {
                account_id,
                email: inv.email.clone(),
                display_name,
                account_type: AccountType::Atlassian,
                status: UserStatus::Active,
                kind: UserKind::Licensed,
                is_admin: false,
            });
        }
    }
}

/// Formats two numbers as a uuid-looking string (deterministic ids without a uuid crate).
pub fn uuid_like(a: u64, b: u64) -> String {
    let b = b.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ a.rotate_left(17);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a as u16,
        (b >> 48) as u16,
        b & 0xffff_ffff_ffff
    )
}
