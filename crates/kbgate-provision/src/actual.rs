//! The actual state, read from Confluence in bulk: members of kbgate's groups, permissions of
//! the audiences' spaces, guests (only when undocumented APIs are allowed), account status by
//! `users-bulk` (250 ids a call) and site access by `check-access-by-email` (100 emails a call).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use confluence_client::Client;
use futures::TryStreamExt;
use futures::future::BoxFuture;
use serde_json::Value;

use crate::error::ProvisionError;
use crate::owned::Subject;
use crate::plan::Note;

/// A space permission as listed by Confluence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Perm {
    pub id: String,
    pub subject: Subject,
    pub operation: String,
    pub target: String,
}

/// What `users-bulk` says about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserInfo {
    pub active: bool,
    pub guest: bool,
}

/// A guest's email (if visible) and assigned space (if any).
pub(crate) type GuestInfo = (Option<String>, Option<String>);

/// A group as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupState {
    pub id: String,
    /// account id → email (if visible).
    pub members: BTreeMap<String, Option<String>>,
}

/// How an earlier invitation went, from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InviteRecord {
    /// `pending` (the run stopped mid-call), `unknown` (5xx: may have been sent), `done`,
    /// `failed` (certainly not sent).
    pub state: String,
    pub at: DateTime<Utc>,
}

/// The actual state relevant to the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Actual {
    /// group name → state; absent name: looked up and not found.
    pub groups: BTreeMap<String, GroupState>,
    /// space key → id, for the spaces that exist.
    pub space_ids: BTreeMap<String, String>,
    /// Spaces the policy names that the site does not have.
    pub missing_spaces: BTreeSet<String>,
    /// space key → permissions.
    pub permissions: BTreeMap<String, Vec<Perm>>,
    /// guest account id → (email, assigned space); `None` when not read.
    pub guests: Option<BTreeMap<String, GuestInfo>>,
    /// account id → status.
    pub users: BTreeMap<String, UserInfo>,
    /// email → account id (recorded by kbgate, or seen in group members and guests).
    pub accounts: BTreeMap<String, String>,
    /// Emails given to `check-access-by-email`.
    pub checked: BTreeSet<String>,
    /// Of those, the ones without access.
    pub without_access: BTreeSet<String>,
    /// `check-access-by-email` answered 503.
    pub access_check_disabled: bool,
    /// email → last invitation.
    pub invites: BTreeMap<String, InviteRecord>,
    /// Emails for which Jira user creation answered "already exists" although
    /// `check-access-by-email` shows no access (e.g. JSM portal-only customer accounts).
    pub exists_without_access: BTreeSet<String>,
    /// Licensed users on the site, when needed and known.
    pub licensed: Option<usize>,
    /// The knowledge-base view switches as they are on the site; `None` when the site's
    /// state could not be read (see [`SwitchReader`]).
    pub switches: Option<SwitchState>,
}

/// The knowledge-base (JSM) view switches as they are on the site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchState {
    /// Of the spaces asked about, those whose unlicensed view is on.
    pub unlicensed_view: BTreeSet<String>,
    /// Spaces asked about whose state could not be read (e.g. the site did not list them to
    /// kbgate's account); for these kbgate falls back to its own records.
    pub unreadable: BTreeSet<String>,
    /// Whether the site-wide unlicensed access switch is on; `None` when it cannot be read,
    /// and then kbgate falls back to its own record of it.
    pub global_unlicensed_access: Option<bool>,
}

/// Reads the knowledge-base view switches of a site, so that kbgate switches on only what is
/// off, records as its own only what it switched on itself, switches off on revocation only
/// what it owns, and switches back on what was turned off by hand.
///
/// The switches' endpoints (`POST /wiki/rest/knowledge-base/1.0/permissions/…`) are setters:
/// they answer the state *after* the call, so they cannot be used to look before writing. The
/// default reader, [`SiteSwitches`], reads unlicensed view per space from the documented v1
/// space read; Confluence documents no read of the site-wide switch, so that one stays
/// unknown. Another reader plugs in with [`crate::Reconciler::with_switch_reader`].
pub trait SwitchReader: Send + Sync {
    /// The state of unlicensed view on `spaces` and of the global switch, or `Ok(None)` when
    /// this reader cannot tell at all.
    fn read<'a>(
        &'a self,
        client: &'a Client,
        spaces: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<Option<SwitchState>, ProvisionError>>;
}

/// The default [`SwitchReader`]: unlicensed view per space from
/// `GET /wiki/rest/api/space?spaceKey=…&expand=permissions` (v1, 25 spaces a call, see
/// [`Client::spaces_with_permissions`]): it is on when the space has a `read space` permission
/// with `unlicensedAccess` (the v1 spec's `SpacePermission`: "grants access to unlicensed users
/// from JIRA Service Desk when used with the 'read space' operation").
///
/// The site-wide unlicensed access switch has no documented read (neither v1 nor v2 has one),
/// so it is reported unknown and the plan says what kbgate does about it. A space the site does
/// not list, or lists without permissions, is reported unreadable. If the site no longer
/// serves this deprecated v1 read at all (404 or 410), the whole state is unknown, as with
/// [`UnreadableSwitches`], and the plan says so.
#[derive(Debug, Clone, Copy, Default)]
pub struct SiteSwitches;

impl SwitchReader for SiteSwitches {
    fn read<'a>(
        &'a self,
        client: &'a Client,
        spaces: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<Option<SwitchState>, ProvisionError>> {
        Box::pin(async move {
            let mut state = SwitchState::default();
            if spaces.is_empty() {
                return Ok(Some(state));
            }
            let keys: Vec<&str> = spaces.iter().map(String::as_str).collect();
            let listed: Vec<_> = match client.spaces_with_permissions(&keys).try_collect().await {
                Ok(l) => l,
                // The deprecated v1 read is gone from the site: the state is unknown.
                Err(e) if matches!(e.status(), Some(404 | 410)) => return Ok(None),
                Err(e) => {
                    return Err(ProvisionError::from_client(
                        "read the unlicensed-view switches (space permissions)",
                        e,
                    ));
                }
            };
            let mut seen = BTreeSet::new();
            for s in listed {
                if !spaces.contains(&s.key) {
                    continue;
                }
                match s.unlicensed_view() {
                    Some(true) => {
                        state.unlicensed_view.insert(s.key.clone());
                    }
                    Some(false) => {}
                    None => {
                        state.unreadable.insert(s.key.clone());
                    }
                }
                seen.insert(s.key);
            }
            state
                .unreadable
                .extend(spaces.iter().filter(|k| !seen.contains(*k)).cloned());
            Ok(Some(state))
        })
    }
}

/// A [`SwitchReader`] that knows nothing: every switch's state is unknown and kbgate relies on
/// its own records alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnreadableSwitches;

impl SwitchReader for UnreadableSwitches {
    fn read<'a>(
        &'a self,
        _client: &'a Client,
        _spaces: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<Option<SwitchState>, ProvisionError>> {
        Box::pin(async { Ok(None) })
    }
}

/// The warning shown when the switches' state cannot be read.
pub(crate) const SWITCHES_UNREADABLE: &str = "kbgate cannot read the unlicensed-view switches \
     of this site, so it trusts its own records: a switch it has no record of is assumed off, \
     switched on and recorded as kbgate's (even if it was already on before kbgate), and \
     switched off again when no audience needs it; a switch turned off by hand is not noticed. \
     If unlicensed view was on before kbgate, check it after a revocation. The site-wide \
     unlicensed access switch is never switched off by kbgate while it cannot be read.";

/// The warning shown when only the site-wide switch cannot be read (the usual case: Confluence
/// documents no read of it).
pub(crate) const GLOBAL_SWITCH_UNREADABLE: &str = "Confluence has no documented way to read \
     the site-wide unlicensed access switch (Jira Service Management), so for that switch \
     kbgate trusts its own record: with no record it is switched on (harmless if it was on \
     already) and recorded; it is never switched off by kbgate, since kbgate cannot tell \
     whether it was on before; if an admin turns it off by hand, kbgate does not notice. \
     (Unlicensed view of each space is read from the site, and revoked by kbgate.)";

impl Actual {
    /// Whether the email has an active account on the site, as far as kbgate can tell:
    /// `Some(true)` yes, `Some(false)` no, `None` unknown.
    pub(crate) fn has_access(&self, email: &str) -> Option<bool> {
        if let Some(id) = self.accounts.get(email)
            && let Some(u) = self.users.get(id)
        {
            return Some(u.active);
        }
        if self.checked.contains(email) {
            return Some(!self.without_access.contains(email));
        }
        None
    }

    /// The account id of an active account for `email`, if known.
    pub(crate) fn active_account(&self, email: &str) -> Option<&str> {
        let id = self.accounts.get(email)?;
        match self.users.get(id) {
            Some(u) if !u.active => None,
            _ => Some(id.as_str()),
        }
    }

    /// Unlicensed view of `space` as read from the site; `None` when unknown.
    pub(crate) fn unlicensed_view(&self, space: &str) -> Option<bool> {
        let sw = self.switches.as_ref()?;
        if sw.unreadable.contains(space) {
            return None;
        }
        Some(sw.unlicensed_view.contains(space))
    }

    /// The site-wide unlicensed access switch as read from the site; `None` when unknown.
    pub(crate) fn global_unlicensed(&self) -> Option<bool> {
        self.switches.as_ref()?.global_unlicensed_access
    }

    /// The read permission of `subject` on `space`, if it exists.
    pub(crate) fn read_permission(&self, space: &str, subject: &Subject) -> Option<&Perm> {
        self.permissions
            .get(space)?
            .iter()
            .find(|p| &p.subject == subject && p.operation == "read" && p.target == "space")
    }
}

fn wrap(what: &str) -> impl FnOnce(confluence_client::Error) -> ProvisionError + '_ {
    move |e| ProvisionError::from_client(what, e)
}

/// Looks groups up by name and lists the members of those that exist.
pub(crate) async fn read_groups(
    client: &Client,
    names: &BTreeSet<String>,
    actual: &mut Actual,
) -> Result<(), ProvisionError> {
    for name in names {
        let what = format!("look up group {name}");
        let Some(g) = client.group_by_name(name).await.map_err(wrap(&what))? else {
            continue;
        };
        let what = format!("list the members of group {name}");
        let members: Vec<_> = client
            .group_members(&g.id)
            .try_collect()
            .await
            .map_err(wrap(&what))?;
        let mut st = GroupState {
            id: g.id.clone(),
            members: BTreeMap::new(),
        };
        for m in members {
            let Some(id) = m.account_id.clone() else {
                continue;
            };
            let email = m.email.as_deref().filter(|e| !e.is_empty()).map(normalise);
            if let Some(e) = &email {
                actual
                    .accounts
                    .entry(e.clone())
                    .or_insert_with(|| id.clone());
            }
            st.members.insert(id, email);
        }
        actual.groups.insert(name.clone(), st);
    }
    Ok(())
}

/// Space ids and permissions of `keys`.
pub(crate) async fn read_spaces(
    client: &Client,
    keys: &BTreeSet<String>,
    actual: &mut Actual,
) -> Result<(), ProvisionError> {
    if keys.is_empty() {
        return Ok(());
    }
    let list: Vec<&str> = keys.iter().map(String::as_str).collect();
    let spaces: Vec<_> = client
        .spaces(&list)
        .try_collect()
        .await
        .map_err(wrap("look up the audiences' spaces"))?;
    for s in spaces {
        actual.space_ids.insert(s.key.clone(), s.id.clone());
    }
    for k in keys {
        let Some(id) = actual.space_ids.get(k).cloned() else {
            actual.missing_spaces.insert(k.clone());
            continue;
        };
        let what = format!("list the permissions of space {k}");
        let perms: Vec<_> = client
            .space_permissions(&id)
            .try_collect()
            .await
            .map_err(wrap(&what))?;
        let list = perms
            .into_iter()
            .filter_map(|p| {
                let pid = p.principal.id?;
                let subject = match p.principal.principal_type.as_str() {
                    "group" => Subject::Group(pid),
                    "user" => Subject::User(pid),
                    _ => return None,
                };
                Some(Perm {
                    id: p.id,
                    subject,
                    operation: p.operation.key,
                    target: p.operation.target_type.unwrap_or_else(|| "space".into()),
                })
            })
            .collect();
        actual.permissions.insert(k.clone(), list);
    }
    Ok(())
}

/// Guests by the undocumented `GuestDataQuery` (caller checks the opt-in).
pub(crate) async fn read_guests(
    client: &Client,
    actual: &mut Actual,
) -> Result<(), ProvisionError> {
    let guests: Vec<_> = client
        .undocumented()
        .guest_data_query(false)
        .try_collect()
        .await
        .map_err(wrap("list guests (GuestDataQuery)"))?;
    let mut m = BTreeMap::new();
    for g in guests {
        let email = g.email.as_deref().filter(|e| !e.is_empty()).map(normalise);
        if let Some(e) = &email {
            actual
                .accounts
                .entry(e.clone())
                .or_insert_with(|| g.account_id.clone());
        }
        let space = g
            .spaces
            .first()
            .and_then(|s| s.get("key"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        m.insert(g.account_id, (email, space));
    }
    actual.guests = Some(m);
    Ok(())
}

/// Status of accounts by `users-bulk` (250 a call).
pub(crate) async fn read_users(
    client: &Client,
    ids: &BTreeSet<String>,
    actual: &mut Actual,
) -> Result<(), ProvisionError> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let users = client
        .users_bulk(&ids)
        .await
        .map_err(wrap("read accounts (users-bulk)"))?;
    for u in users {
        let active = u.is_active();
        let guest = u.is_external_collaborator.unwrap_or(false);
        actual
            .users
            .insert(u.account_id, UserInfo { active, guest });
    }
    // Ids Confluence no longer knows (deleted accounts) are inactive.
    for id in ids {
        actual.users.entry(id.to_owned()).or_insert(UserInfo {
            active: false,
            guest: false,
        });
    }
    Ok(())
}

/// Site access by `check-access-by-email` (100 a call). A 503 means the API is disabled on
/// the site: noted, not an error.
pub(crate) async fn read_access(
    client: &Client,
    emails: &BTreeSet<String>,
    actual: &mut Actual,
    warnings: &mut Vec<Note>,
) -> Result<(), ProvisionError> {
    if emails.is_empty() {
        return Ok(());
    }
    let list: Vec<&str> = emails.iter().map(String::as_str).collect();
    match client.check_access_by_email(&list).await {
        Ok(a) => {
            actual.checked.extend(emails.iter().cloned());
            actual
                .without_access
                .extend(a.emails_without_access.iter().map(|e| normalise(e)));
            // Emails Confluence calls invalid have no access either.
            actual
                .without_access
                .extend(a.invalid_emails.iter().map(|e| normalise(e)));
            Ok(())
        }
        Err(confluence_client::Error::ServiceUnavailable { .. }) => {
            actual.access_check_disabled = true;
            warnings.push(Note::general(ACCESS_CHECK_DISABLED));
            Ok(())
        }
        Err(e) => Err(ProvisionError::from_client(
            "check site access (check-access-by-email)",
            e,
        )),
    }
}

/// The warning shown when `check-access-by-email` answers 503.
pub const ACCESS_CHECK_DISABLED: &str = "check-access-by-email answered 503: this API is disabled on the site (it is an \
     experimental Confluence API that Atlassian enables per site). kbgate falls back to what it \
     knows: account ids it recorded, and Jira user creation (which answers \"already exists\" \
     for people already on the site) instead of invite-by-email.";

/// Counts licensed users as the members of the default product-access group.
pub(crate) async fn read_licensed(
    client: &Client,
    group: &str,
    actual: &mut Actual,
) -> Result<(), ProvisionError> {
    let what = format!("count licensed users (members of {group})");
    let Some(g) = client.group_by_name(group).await.map_err(wrap(&what))? else {
        return Ok(());
    };
    let n = client
        .group_members(&g.id)
        .try_fold(0usize, |n, _| async move { Ok(n + 1) })
        .await
        .map_err(wrap(&what))?;
    actual.licensed = Some(n);
    Ok(())
}

/// Learns account ids of `emails` from the members of `group` (invitees join the site's
/// default product-access group once their invitation completes).
pub(crate) async fn resolve_from_group(
    client: &Client,
    group: &str,
    emails: &BTreeSet<String>,
    actual: &mut Actual,
) -> Result<(), ProvisionError> {
    let what = format!("find invited people in {group}");
    let Some(g) = client.group_by_name(group).await.map_err(wrap(&what))? else {
        return Ok(());
    };
    let members: Vec<_> = client
        .group_members(&g.id)
        .try_collect()
        .await
        .map_err(wrap(&what))?;
    actual.licensed = Some(members.len());
    for m in members {
        let (Some(id), Some(e)) = (m.account_id, m.email) else {
            continue;
        };
        let e = normalise(&e);
        if emails.contains(&e) {
            actual.accounts.insert(e, id.clone());
            actual.users.insert(
                id,
                UserInfo {
                    active: true,
                    guest: m.is_external_collaborator.unwrap_or(false),
                },
            );
        }
    }
    Ok(())
}

/// Emails as Confluence returns them, normalised like the desired state's: parsed like
/// `kbgate_policy::Email` (IDN domains as A-labels), then lower-cased whole, because
/// Atlassian matches account emails case-insensitively.
pub(crate) fn normalise(e: &str) -> String {
    kbgate_policy::Email::parse(e)
        .map(|e| e.as_str().to_ascii_lowercase())
        .unwrap_or_else(|_| e.trim().to_ascii_lowercase())
}
