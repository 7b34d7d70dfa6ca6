//! Access-management endpoints (native mode): users, invitations, groups, space permissions,
//! knowledge-base view switches, the undocumented `/cgraphql` guest operations and Jira user
//! creation.
//!
//! Shapes come from Atlassian's OpenAPI documents where they exist (v2, v1, Jira); the
//! undocumented ones are documented on their handlers as best guesses. Rules enforced like
//! Confluence Cloud:
//! * a guest (external collaborator) may be given access to ONE space only;
//! * at most [`GUESTS_PER_LICENSED_USER`] active guests per active licensed user;
//! * `invite-by-email` completes asynchronously ([`INVITE_DELAY_MS`] of simulator time later)
//!   and the invitee gets the site's default product access — a Confluence licence (AX-274);
//! * group writes, permission writes, knowledge-base switches and Jira user creation need a site
//!   admin (403 otherwise).

mod graphql;
mod groups;
mod kb;
mod permissions;
mod users;

use axum::Router;
use axum::routing::{delete, get, post};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::Sim;
use crate::error::{ApiError, ApiFamily};
use crate::model::{AccountType, State, User, UserKind, UserStatus, uuid_like};

/// Confluence's guest allowance: 5 free guests per paid (licensed) user.
pub const GUESTS_PER_LICENSED_USER: usize = 5;
/// Delay, in simulator time, before an invitation turns into a user. Tests move the simulator
/// clock (`Sim::advance_clock`) instead of sleeping.
pub const INVITE_DELAY_MS: i64 = 1_000;
/// Cap of `users-bulk`.
pub const MAX_BULK_ACCOUNT_IDS: usize = 250;
/// Cap of `check-access-by-email` and `invite-by-email`.
pub const MAX_EMAILS: usize = 100;
/// Cap of v1 `membersByGroupId` (`limit` above it is a 400, not clamped).
pub const MAX_GROUP_MEMBERS_LIMIT: usize = 200;
/// The `/cgraphql` operations served (`?q=` or `operationName`). `/_sim/stats` counts each
/// under `POST /cgraphql?q=<operation>`.
pub const GRAPHQL_OPERATIONS: &[&str] = &["GuestDataQuery", "ResetExCoSpacePermissionsMutation"];
/// Name of the group every licensed user joins (Confluence's default product access group) on
/// generated sites; the site designates it by id ([`State::default_access_group`]).
pub const DEFAULT_ACCESS_GROUP: &str = "confluence-users";

/// Every (method, path template) this module serves — the conformance test checks each one.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/wiki/api/v2/users-bulk"),
    ("POST", "/wiki/api/v2/user/access/check-access-by-email"),
    ("POST", "/wiki/api/v2/user/access/invite-by-email"),
    ("GET", "/wiki/api/v2/spaces/{id}/permissions"),
    ("GET", "/wiki/rest/api/space"),
    ("GET", "/wiki/rest/api/space/{spaceKey}"),
    ("GET", "/wiki/rest/api/group"),
    ("POST", "/wiki/rest/api/group"),
    ("GET", "/wiki/rest/api/group/by-name"),
    ("GET", "/wiki/rest/api/group/by-id"),
    ("DELETE", "/wiki/rest/api/group/by-id"),
    ("GET", "/wiki/rest/api/group/picker"),
    ("GET", "/wiki/rest/api/group/{groupId}/membersByGroupId"),
    ("POST", "/wiki/rest/api/group/userByGroupId"),
    ("DELETE", "/wiki/rest/api/group/userByGroupId"),
    ("POST", "/wiki/rest/api/space/{spaceKey}/permission"),
    ("DELETE", "/wiki/rest/api/space/{spaceKey}/permission/{id}"),
    (
        "POST",
        "/wiki/rest/knowledge-base/1.0/permissions/space/unlicensedview",
    ),
    (
        "POST",
        "/wiki/rest/knowledge-base/1.0/permissions/space/anonymousview",
    ),
    (
        "POST",
        "/wiki/rest/knowledge-base/1.0/permissions/global/unlicensedaccess",
    ),
    ("POST", "/cgraphql"),
    ("POST", "/rest/api/3/user"),
];

/// Routes merged into the simulator's router.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/wiki/api/v2/users-bulk", post(users::users_bulk))
        .route(
            "/wiki/api/v2/user/access/check-access-by-email",
            post(users::check_access),
        )
        .route(
            "/wiki/api/v2/user/access/invite-by-email",
            post(users::invite),
        )
        .route(
            "/wiki/api/v2/spaces/{id}/permissions",
            get(permissions::list_v2),
        )
        .route("/wiki/rest/api/space", get(permissions::list_spaces_v1))
        .route(
            "/wiki/rest/api/space/{spaceKey}",
            get(permissions::get_space_v1),
        )
        .route(
            "/wiki/rest/api/group",
            get(groups::list).post(groups::create),
        )
        .route("/wiki/rest/api/group/by-name", get(groups::by_name))
        .route(
            "/wiki/rest/api/group/by-id",
            get(groups::by_id).delete(groups::delete_by_id),
        )
        .route("/wiki/rest/api/group/picker", get(groups::picker))
        .route(
            "/wiki/rest/api/group/{groupId}/membersByGroupId",
            get(groups::members),
        )
        .route(
            "/wiki/rest/api/group/userByGroupId",
            post(groups::add_member).delete(groups::remove_member),
        )
        .route(
            "/wiki/rest/api/space/{spaceKey}/permission",
            post(permissions::add),
        )
        .route(
            "/wiki/rest/api/space/{spaceKey}/permission/{id}",
            delete(permissions::remove),
        )
        .route(
            "/wiki/rest/knowledge-base/1.0/permissions/space/unlicensedview",
            post(kb::unlicensed_view),
        )
        .route(
            "/wiki/rest/knowledge-base/1.0/permissions/space/anonymousview",
            post(kb::anonymous_view),
        )
        .route(
            "/wiki/rest/knowledge-base/1.0/permissions/global/unlicensedaccess",
            post(kb::global_unlicensed_access),
        )
        .route("/cgraphql", post(graphql::cgraphql))
        .route("/rest/api/3/user", post(users::jira_create_user))
}

/// Parses a JSON request body, answering 400 in the family's shape when it is not valid.
pub(crate) fn parse_body<T: DeserializeOwned>(
    family: ApiFamily,
    body: &Bytes,
) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(family, format!("Could not parse the request body: {e}"))
    })
}

/// An email in the simple addr-spec form Atlassian accepts: one `@`, a non-empty local part
/// without spaces, a dotted domain of letters, digits and hyphens. Returns it lower-cased.
pub fn parse_email(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let (local, domain) = raw.split_once('@')?;
    if local.is_empty()
        || local.len() > 64
        || domain.contains('@')
        || local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"')
    {
        return None;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return None;
    }
    Some(format!("{local}@{}", domain.to_ascii_lowercase()).to_lowercase())
}

/// Whether a group makes its members guests. Confluence Cloud marks guest groups with the guest
/// role; the model has no such flag, so a name convention stands in for it: `guests`,
/// `guests-…` or `confluence-guests…`.
pub fn is_guest_group(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "guests" || n.starts_with("guests-") || n.starts_with("confluence-guests")
}

/// The guest allowance: [`GUESTS_PER_LICENSED_USER`] per paid user, paid users counted as
/// Confluence counts them ([`State::paid_count`]: pending invitations included).
pub fn guest_allowance(s: &State) -> usize {
    s.paid_count() * GUESTS_PER_LICENSED_USER
}

/// Whether one more guest fits the site's allowance.
///
/// Callers check and act under one write lock ([`crate::Sim::write`]), so the check and the
/// change are one atomic step: concurrent requests cannot both take the last place, and the
/// outcome is the same at any request rate.
pub fn guest_allowance_left(s: &State) -> bool {
    s.guest_count() < guest_allowance(s)
}

/// The message Confluence answers (403) when the guest allowance is used up — the text
/// operators saw from Confluence Cloud (issue 16; Atlassian publishes no error body for it).
pub fn guest_limit_message(s: &State) -> String {
    format!(
        "You've reached your guest limit: your site can have up to {} guests ({} per paid user). \
         Add more paid users or remove guests to invite more.",
        guest_allowance(s),
        GUESTS_PER_LICENSED_USER
    )
}

/// Whether one more user (paid or guest) fits the site's user limit ([`State::user_limit`]).
pub fn user_limit_left(s: &State) -> bool {
    s.user_limit
        .is_none_or(|limit| s.paid_count() + s.guest_count() < limit)
}

/// The message Confluence answers at the plan's user limit (Atlassian KB "What happens when
/// you exceed your user license limit in Confluence Cloud").
pub const USER_LIMIT_MESSAGE: &str = "You've reached the maximum number of users for your plan. \
     To add this user, upgrade your plan.";

/// Mints a fresh Atlassian-style account id from the shared sequence.
pub(crate) fn mint_account_id(s: &mut State) -> String {
    let seq = s.next_account_seq;
    s.next_account_seq += 1;
    format!("712020:{}", uuid_like(0x0acc_e550_u64 ^ seq, seq))
}

/// Mints a fresh group id.
pub(crate) fn mint_group_id(s: &mut State) -> String {
    let seq = s.next_account_seq;
    s.next_account_seq += 1;
    uuid_like(0x6a0u64 << 32 ^ seq, seq.rotate_left(7))
}

/// Adds a user with the given product relationship (used by Jira user creation).
pub(crate) fn create_user(s: &mut State, email: &str, kind: UserKind) -> String {
    let account_id = mint_account_id(s);
    let display_name = email.split('@').next().unwrap_or("new user").to_string();
    s.insert_user(User {
        account_id: account_id.clone(),
        email: email.to_string(),
        display_name,
        account_type: AccountType::Atlassian,
        status: UserStatus::Active,
        kind,
        is_admin: false,
    });
    if kind == UserKind::Licensed {
        join_default_group(s, &account_id);
    }
    account_id
}

/// Licensed users join the default product-access group ([`State::default_access_group`]),
/// as on a real site.
fn join_default_group(s: &mut State, account_id: &str) {
    let Some(id) = s.default_access_group.clone() else {
        return;
    };
    if let Some(g) = s.groups.get_mut(&id) {
        g.members.insert(account_id.to_string());
    }
}

/// Completes due invitations (lazily, on every access call) and gives the new users the
/// default product access group membership.
pub(crate) fn settle(sim: &Sim) {
    let now = sim.now();
    sim.write(|s| {
        if !s.pending_invites.iter().any(|i| i.due_at <= now) {
            return;
        }
        let due: Vec<String> = s
            .pending_invites
            .iter()
            .filter(|i| i.due_at <= now && s.user_by_email(&i.email).is_none())
            .map(|i| i.email.clone())
            .collect();
        s.complete_due_invites(now);
        for email in due {
            if let Some(id) = s.user_by_email(&email).map(|u| u.account_id.clone()) {
                join_default_group(s, &id);
            }
        }
    });
}

/// Whether `user` holds `administer` on space `key` (directly or through a group).
pub(crate) fn is_space_admin(s: &State, account_id: &str, key: &str) -> bool {
    s.space_permissions.values().any(|p| {
        p.space_key == key
            && p.operation.key == "administer"
            && match &p.subject {
                crate::model::Subject::User(u) => u == account_id,
                crate::model::Subject::Group(g) => s
                    .groups
                    .get(g)
                    .is_some_and(|grp| grp.members.contains(account_id)),
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_parse_like_atlassian_accepts_them() {
        assert_eq!(parse_email(" Ann@Acme.COM "), Some("ann@acme.com".into()));
        assert_eq!(
            parse_email("a.b+c@x-y.example.org"),
            Some("a.b+c@x-y.example.org".into())
        );
        for bad in [
            "",
            "no-at",
            "@acme.com",
            "a@",
            "a@acme",
            "a@@acme.com",
            "a b@acme.com",
            "a@-acme.com",
            "a@acme..com",
            "a@acme.com@evil.net",
        ] {
            assert_eq!(parse_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn guest_groups_are_recognised_by_name() {
        assert!(is_guest_group("confluence-guests-acme"));
        assert!(is_guest_group("guests-kb"));
        assert!(is_guest_group("Guests"));
        assert!(!is_guest_group("kb-guests-are-not-this"));
        assert!(!is_guest_group("confluence-users"));
    }
}
