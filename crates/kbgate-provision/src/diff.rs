//! The difference between desired and actual state (pure): the plan.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use kbgate_policy::Delivery;

use crate::actual::Actual;
use crate::desired::{DesiredAudience, DesiredState};
use crate::owned::{Owned, Subject};
use crate::plan::{Action, AwaitState, Awaiting, Note, Op, Plan};

/// Confluence's guest allowance: 5 free guests per paid user.
pub const GUESTS_PER_PAID_USER: usize = 5;

/// Knobs of the diff.
#[derive(Debug, Clone)]
pub(crate) struct DiffOptions {
    pub now: DateTime<Utc>,
    /// An invitation whose outcome is unknown (run stopped mid-call, or a 5xx) is sent again
    /// once this long has passed since it was journaled, if the person still has no access.
    pub invite_retry_after: Duration,
}

#[derive(Default)]
struct Counts {
    inactive: BTreeSet<String>,
    unknown_id: BTreeSet<String>,
    other_guest_space: BTreeSet<String>,
    exists_elsewhere: BTreeSet<String>,
}

/// Computes the plan.
pub(crate) fn diff(
    desired: &DesiredState,
    owned: &Owned,
    actual: &Actual,
    o: &DiffOptions,
) -> Plan {
    let mut plan = Plan::empty(o.now);
    plan.warnings.extend(desired.warnings.iter().cloned());
    plan.refusals.extend(desired.refusals.iter().cloned());
    let mut frozen = desired.frozen.clone();
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();

    for k in &actual.missing_spaces {
        plan.refusals.push(Note::general(format!(
            "space {k} is named by the policy but does not exist on the site (or the service \
             account cannot see it); nothing is granted on it"
        )));
    }

    // Groups kbgate would manage but did not create: hands off.
    for a in &desired.audiences {
        if let Some(g) = &a.group
            && actual.groups.contains_key(g)
            && !owned.groups.contains_key(g)
        {
            plan.refusals.push(Note::for_audience(
                &a.name,
                format!(
                    "group {g} already exists but kbgate did not create it; kbgate never \
                     changes a group it did not create. Rename or delete that group, or rename \
                     the audience. Nothing is changed for this audience."
                ),
            ));
            frozen.insert(a.name.clone());
        }
    }

    // New guests per guest audience, in configuration order (people by email within each).
    let mut planned_guests: Vec<(String, Vec<String>)> = Vec::new();
    let mut global_needed = false;
    for a in &desired.audiences {
        if frozen.contains(&a.name) {
            continue;
        }
        let c = counts.entry(a.name.clone()).or_default();
        match a.delivery {
            Delivery::Group => plan_group(a, actual, o, &mut plan, c),
            Delivery::Guest => {
                let new = plan_guest(a, owned, actual, o, &mut plan, c);
                planned_guests.push((a.name.clone(), new));
            }
            Delivery::Unlicensed => {
                global_needed = true;
                plan_unlicensed(a, owned, actual, &mut plan, c);
            }
            Delivery::Portal => {}
        }
    }
    // The site-wide switch: switched on when it is off (or, when the site's state cannot be
    // read, when kbgate has no record of switching it on).
    let global_off = match actual.global_unlicensed() {
        Some(on) => !on,
        None => !owned.global_unlicensed,
    };
    if global_needed
        && global_off
        && let Some(first) = desired
            .audiences
            .iter()
            .find(|a| a.delivery == Delivery::Unlicensed && !frozen.contains(&a.name))
    {
        let reason = if owned.global_unlicensed {
            "unlicensed audiences need the site-wide unlicensed access switch on; kbgate \
             switched it on earlier and it is off now (turned off by hand?), so it is switched \
             back on"
        } else {
            "unlicensed audiences need the site-wide unlicensed access switch on"
        };
        plan.actions.push(Action::new(
            &first.name,
            Op::SetGlobalUnlicensedAccess { enable: true },
            reason,
        ));
    }
    let global_in_play = global_needed || owned.global_unlicensed;
    let switches_in_play = global_in_play || !owned.unlicensed_view.is_empty();
    match &actual.switches {
        None if switches_in_play => plan
            .warnings
            .push(Note::general(crate::actual::SWITCHES_UNREADABLE)),
        None => {}
        Some(sw) => {
            if global_in_play && sw.global_unlicensed_access.is_none() {
                plan.warnings
                    .push(Note::general(crate::actual::GLOBAL_SWITCH_UNREADABLE));
            }
            if !sw.unreadable.is_empty() {
                let spaces: Vec<&str> = sw.unreadable.iter().map(String::as_str).collect();
                plan.warnings.push(Note::general(format!(
                    "the unlicensed-view state of space(s) {} could not be read (the site did \
                     not list them to kbgate's account, or listed them without permissions), so \
                     kbgate trusts its own records for them: with no record a switch is assumed \
                     off and switched on as kbgate's",
                    spaces.join(", ")
                )));
            }
        }
    }

    revoke(desired, &frozen, owned, actual, &mut plan);

    guest_allowance(desired, actual, &planned_guests, &mut plan);

    for (aud, c) in counts {
        let sample =
            |s: &BTreeSet<String>| s.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        if !c.inactive.is_empty() {
            plan.warnings.push(Note::for_audience(
                &aud,
                format!(
                    "{} people have a deactivated or closed Atlassian account and cannot read \
                     until an admin reactivates it (e.g. {})",
                    c.inactive.len(),
                    sample(&c.inactive)
                ),
            ));
        }
        if !c.unknown_id.is_empty() {
            plan.warnings.push(Note::for_audience(
                &aud,
                format!(
                    "{} people are already on the site but kbgate does not know their account id \
                     (accounts made outside kbgate); Confluence has no lookup by email in the \
                     APIs kbgate uses. Add them to the group (or assign the guest space) by hand \
                     once; kbgate then sees them as members (e.g. {})",
                    c.unknown_id.len(),
                    sample(&c.unknown_id)
                ),
            ));
        }
        if !c.exists_elsewhere.is_empty() {
            plan.warnings.push(Note::for_audience(
                &aud,
                format!(
                    "{} people have an Atlassian account that is not a site user (e.g. a Jira \
                     Service Management portal-only customer): Jira answers \"already exists\" \
                     and check-access-by-email shows no access. Convert them in \
                     admin.atlassian.com; kbgate does not retry (e.g. {})",
                    c.exists_elsewhere.len(),
                    sample(&c.exists_elsewhere)
                ),
            ));
        }
        if !c.other_guest_space.is_empty() {
            plan.warnings.push(Note::for_audience(
                &aud,
                format!(
                    "{} people are already guests of another space, which kbgate did not \
                     assign; a guest has one space, so they are left as they are (e.g. {})",
                    c.other_guest_space.len(),
                    sample(&c.other_guest_space)
                ),
            ));
        }
    }

    // People whose accounts kbgate created and who are in no audience any more.
    let wanted: BTreeSet<&str> = desired
        .audiences
        .iter()
        .flat_map(|a| a.members.iter().map(String::as_str))
        .collect();
    let gone: Vec<&String> = owned
        .accounts
        .iter()
        .filter(|(e, (_, created))| *created && !wanted.contains(e.as_str()))
        .map(|(e, _)| e)
        .collect();
    if !gone.is_empty() {
        plan.warnings.push(Note::general(format!(
            "{} people kbgate put on the site are in no audience any more. kbgate took back \
             what it granted them, but it never deletes Atlassian accounts; unlicensed view is \
             site-wide, so deactivate their accounts in admin.atlassian.com if they must lose \
             it too (e.g. {})",
            gone.len(),
            gone[0]
        )));
    }

    plan.context.accounts = actual.accounts.clone();
    plan.context.group_ids = actual
        .groups
        .iter()
        .map(|(n, g)| (n.clone(), g.id.clone()))
        .collect();
    plan.sort();
    plan
}

fn domain_reason(a: &DesiredAudience, email: &str) -> String {
    let domain = email.rsplit('@').next().unwrap_or("");
    format!("{domain} is in audience {} ({})", a.name, a.delivery)
}

/// Plans the account of one person; returns true when an account will exist after apply
/// (already active, or created in this run) with a known or soon-known id.
fn plan_account(
    a: &DesiredAudience,
    email: &str,
    actual: &Actual,
    o: &DiffOptions,
    plan: &mut Plan,
    c: &mut Counts,
    prefer_invite: bool,
) -> bool {
    if actual.active_account(email).is_some() {
        return true;
    }
    if actual.accounts.contains_key(email) {
        c.inactive.insert(email.to_owned());
        return false;
    }
    match actual.has_access(email) {
        Some(true) => {
            c.unknown_id.insert(email.to_owned());
            false
        }
        Some(false) | None => {
            if actual.exists_without_access.contains(email) {
                c.exists_elsewhere.insert(email.to_owned());
                return false;
            }
            // An earlier invitation that has not arrived. The site is the judge: this person
            // was just checked with `check-access-by-email` (the plan checks everyone without a
            // known account, 100 a call) and has no access. Confluence exposes no list of
            // invitations in flight, so an invitation of unknown outcome (journaled `pending`:
            // the run stopped between the intent and the answer; or `unknown`: a 5xx) is given
            // `invite_retry_after` to complete — an invitation Confluence did receive gives
            // site access once its asynchronous processing ends ("If the user with that email
            // address has an Atlassian account, they'll now be able to log in to your site",
            // https://support.atlassian.com/user-management/docs/invite-a-user/) — and is sent
            // again after that if the site still shows no access. Sending it again is safe for
            // anyone who got access meanwhile: invite-by-email "Ignores all invalid emails and
            // no action is taken for the emails that already have access to the site" (v2
            // OpenAPI, `inviteByEmail`). An invitation Confluence accepted (200) is not sent
            // again; `failed` (refused, certainly not sent) is sent again at once.
            let mut resend = None;
            if let Some(inv) = actual.invites.get(email) {
                let state = match inv.state.as_str() {
                    "failed" => None,
                    "done" => Some(AwaitState::Sent),
                    _ => Some(AwaitState::Unknown),
                };
                if let Some(state) = state {
                    let retry_at =
                        (state == AwaitState::Unknown).then(|| inv.at + o.invite_retry_after);
                    match retry_at {
                        Some(t) if o.now >= t => resend = Some(inv.at),
                        _ => {
                            plan.awaiting.push(Awaiting {
                                audience: a.name.clone(),
                                email: email.to_owned(),
                                state,
                                since: inv.at,
                                retry_at,
                            });
                            return false;
                        }
                    }
                }
            }
            if prefer_invite && !actual.access_check_disabled {
                let why = match resend {
                    Some(at) => format!(
                        "{}; an invitation of unknown outcome (journaled {}) has not given them \
                         site access, so it is sent again",
                        domain_reason(a, email),
                        at.format("%Y-%m-%d %H:%M UTC")
                    ),
                    None => format!(
                        "{}; not on the site (invitation grants the licence group members need)",
                        domain_reason(a, email)
                    ),
                };
                plan.actions.push(Action::new(
                    &a.name,
                    Op::Invite {
                        email: email.to_owned(),
                    },
                    why,
                ));
                false
            } else {
                let how = if a.delivery == Delivery::Guest {
                    "created with no product access, then made a guest by the guest group; not \
                     invited by email, because an invitation grants a paid seat (Atlassian \
                     AX-274) and a guest must have none"
                } else {
                    "created with no product access"
                };
                plan.actions.push(Action::new(
                    &a.name,
                    Op::CreateSiteUser {
                        email: email.to_owned(),
                    },
                    format!("{}; not on the site ({how})", domain_reason(a, email)),
                ));
                true
            }
        }
    }
}

fn plan_membership(
    a: &DesiredAudience,
    group: &str,
    email: &str,
    actual: &Actual,
    plan: &mut Plan,
) {
    let is_member = actual
        .active_account(email)
        .zip(actual.groups.get(group))
        .is_some_and(|(id, g)| g.members.contains_key(id));
    if !is_member {
        plan.actions.push(Action::new(
            &a.name,
            Op::AddGroupMember {
                group: group.to_owned(),
                email: email.to_owned(),
            },
            domain_reason(a, email),
        ));
    }
}

fn plan_group(
    a: &DesiredAudience,
    actual: &Actual,
    o: &DiffOptions,
    plan: &mut Plan,
    c: &mut Counts,
) {
    let Some(group) = a.group.as_deref() else {
        return;
    };
    let group_state = actual.groups.get(group);
    if group_state.is_none() {
        plan.actions.push(Action::new(
            &a.name,
            Op::CreateGroup {
                group: group.to_owned(),
            },
            format!("audience {} is delivered by a group", a.name),
        ));
    }
    for space in &a.spaces {
        if actual.missing_spaces.contains(space) {
            continue;
        }
        let has = group_state.is_some_and(|g| {
            actual
                .read_permission(space, &Subject::Group(g.id.clone()))
                .is_some()
        });
        if !has {
            plan.actions.push(Action::new(
                &a.name,
                Op::GrantGroupRead {
                    space: space.clone(),
                    group: group.to_owned(),
                },
                format!("audience {} reads space {space}", a.name),
            ));
        }
    }
    for email in &a.members {
        if plan_account(a, email, actual, o, plan, c, true) {
            plan_membership(a, group, email, actual, plan);
        }
    }
}

/// Returns the emails of the people who would become guests (sorted: members are a set).
fn plan_guest(
    a: &DesiredAudience,
    owned: &Owned,
    actual: &Actual,
    o: &DiffOptions,
    plan: &mut Plan,
    c: &mut Counts,
) -> Vec<String> {
    let (Some(group), Some(space)) = (a.group.as_deref(), a.spaces.first()) else {
        return Vec::new();
    };
    if actual.missing_spaces.contains(space) {
        return Vec::new();
    }
    if !actual.groups.contains_key(group) {
        plan.actions.push(Action::new(
            &a.name,
            Op::CreateGroup {
                group: group.to_owned(),
            },
            format!(
                "audience {} is delivered to guests; the group needs the guest role in \
                 admin.atlassian.com",
                a.name
            ),
        ));
    }
    let mut new_guests = Vec::new();
    for email in &a.members {
        if !plan_account(a, email, actual, o, plan, c, false) {
            continue;
        }
        let id = actual.active_account(email);
        let is_guest = id
            .and_then(|id| actual.users.get(id))
            .is_some_and(|u| u.guest);
        if let Some(id) = id {
            let subject = Subject::User(id.to_owned());
            // Already a guest of another space that kbgate did not assign: leave them be.
            let elsewhere = actual
                .guests
                .as_ref()
                .and_then(|g| g.get(id))
                .and_then(|(_, s)| s.clone())
                .filter(|s| s != space);
            if let Some(other) = elsewhere {
                let ours = owned
                    .reads
                    .iter()
                    .any(|r| r.space == other && r.subject == subject);
                if !ours {
                    c.other_guest_space.insert(email.clone());
                    continue;
                }
            }
            plan_membership(a, group, email, actual, plan);
            if actual.read_permission(space, &subject).is_some() {
                continue;
            }
        } else {
            plan_membership(a, group, email, actual, plan);
        }
        if !is_guest {
            new_guests.push(email.clone());
        }
        plan.actions.push(Action::new(
            &a.name,
            Op::AssignGuestSpace {
                email: email.clone(),
                space: space.clone(),
            },
            domain_reason(a, email),
        ));
    }
    new_guests
}

/// The guest allowance (5 guests per paid user), applied in the plan: of the people who
/// would become guests, those that fit are planned, in a stable order (audiences in
/// configuration order, people by email); the others are taken out of the plan — their
/// account creation, guest-group membership and space assignment — and reported in
/// [`Plan::limits`] as waiting on the limit, with what to do.
///
/// The count of paid users comes from `[confluence] licensed_users` or the members of the
/// default product-access group (documented v1 `membersByGroupId`); the count of guests from
/// `GuestDataQuery` when undocumented APIs are allowed, otherwise from the members of kbgate's
/// own guest groups (documented, a lower bound: Confluence documents no way to list every
/// guest). With the paid count unknown nothing is held and the plan says so; Confluence's own
/// 403 at the limit is then reported by apply as waiting on the limit.
fn guest_allowance(
    desired: &DesiredState,
    actual: &Actual,
    planned: &[(String, Vec<String>)],
    plan: &mut Plan,
) {
    let new_total: usize = planned.iter().map(|(_, n)| n.len()).sum();
    if new_total == 0 {
        return;
    }
    let Some(paid) = actual.licensed else {
        plan.warnings.push(Note::general(format!(
            "{new_total} new guests planned; the number of paid users is unknown, so kbgate \
             cannot check the allowance of {GUESTS_PER_PAID_USER} guests per paid user before \
             applying (set [confluence] licensed_users); if Confluence refuses guests at the \
             limit, apply reports them as waiting on it"
        )));
        return;
    };
    let (existing, lower_bound) = match &actual.guests {
        Some(g) => (g.len(), false),
        None => {
            let guest_groups: BTreeSet<&str> = desired
                .audiences
                .iter()
                .filter(|a| a.delivery == Delivery::Guest)
                .filter_map(|a| a.group.as_deref())
                .collect();
            let members: BTreeSet<&str> = actual
                .groups
                .iter()
                .filter(|(name, _)| guest_groups.contains(name.as_str()))
                .flat_map(|(_, g)| g.members.keys().map(String::as_str))
                .collect();
            (members.len(), true)
        }
    };
    let allowance = paid * GUESTS_PER_PAID_USER;
    let mut free = allowance.saturating_sub(existing);
    if new_total <= free {
        return;
    }
    for (audience, new) in planned {
        let fits = new.len().min(free);
        free -= fits;
        let waiting: Vec<String> = new[fits..].to_vec();
        if waiting.is_empty() {
            continue;
        }
        let held: BTreeSet<&str> = waiting.iter().map(String::as_str).collect();
        let group = crate::desired::guest_group_name(audience);
        plan.actions.retain(|act| {
            if act.audience != *audience {
                return true;
            }
            match &act.op {
                Op::CreateSiteUser { email } | Op::AssignGuestSpace { email, .. } => {
                    !held.contains(email.as_str())
                }
                Op::AddGroupMember { group: g, email } => {
                    *g != group || !held.contains(email.as_str())
                }
                _ => true,
            }
        });
        plan.limits.push(crate::plan::LimitHold {
            audience: audience.clone(),
            limit: confluence_client::Limit::Guests,
            allowance,
            paid_users: paid,
            existing,
            existing_is_lower_bound: lower_bound,
            fits,
            waiting,
            advice: format!(
                "To do: add paid users (each one makes room for {GUESTS_PER_PAID_USER} guests), \
                 remove guests, or deliver audience {audience} through kbgate's portal \
                 (delivery = \"portal\": no guests, no seats, no guest allowance). The people \
                 waiting are provisioned by a later apply once there is room."
            ),
        });
    }
    let waiting: usize = plan.limits.iter().map(|l| l.waiting.len()).sum();
    plan.warnings.push(Note::general(format!(
        "guests would exceed Confluence's allowance of {GUESTS_PER_PAID_USER} per paid user: \
         {}{existing} existing + {new_total} new > {allowance} ({paid} licensed users). kbgate \
         provisions the {} that fit and leaves {waiting} waiting on the guest limit (see LIMIT). \
         Way out: more paid users, or delivery = \"portal\" (no seats, no guest limit).",
        if lower_bound { "at least " } else { "" },
        new_total - waiting,
    )));
}

fn plan_unlicensed(
    a: &DesiredAudience,
    owned: &Owned,
    actual: &Actual,
    plan: &mut Plan,
    c: &mut Counts,
) {
    for space in &a.spaces {
        let ours = owned.unlicensed_view.contains_key(space);
        // Switched on only when it is off; when the site's state cannot be read, when kbgate
        // has no record of switching it on.
        let off = match actual.unlicensed_view(space) {
            Some(on) => !on,
            None => !ours,
        };
        if !off {
            continue;
        }
        let drift = if ours {
            "; kbgate switched it on earlier and it is off now (turned off by hand?), so it is \
             switched back on"
        } else {
            ""
        };
        plan.actions.push(Action::new(
            &a.name,
            Op::SetUnlicensedView {
                space: space.clone(),
                enable: true,
            },
            format!(
                "audience {} reads space {space} as unlicensed users (needs Jira Service \
                 Management on the site){drift}",
                a.name
            ),
        ));
    }
    for email in &a.members {
        if actual.active_account(email).is_some() {
            continue;
        }
        if actual.accounts.contains_key(email) {
            c.inactive.insert(email.clone());
            continue;
        }
        if actual.has_access(email) == Some(true) {
            continue;
        }
        if actual.exists_without_access.contains(email) {
            c.exists_elsewhere.insert(email.clone());
            continue;
        }
        plan.actions.push(Action::new(
            &a.name,
            Op::CreateSiteUser {
                email: email.clone(),
            },
            format!(
                "{}; not on the site (created with no product access: no seat)",
                domain_reason(a, email)
            ),
        ));
    }
}

fn revoke(
    desired: &DesiredState,
    frozen: &BTreeSet<String>,
    owned: &Owned,
    actual: &Actual,
    plan: &mut Plan,
) {
    let why = |aud: &str, what: &str| -> String {
        match desired.audience(aud) {
            None => {
                format!("audience {aud} is no longer active (removed, expired or no longer native)")
            }
            Some(_) => what.to_owned(),
        }
    };
    // Memberships.
    for m in &owned.members {
        if frozen.contains(&m.audience) {
            continue;
        }
        let keep = desired.audience(&m.audience).is_some_and(|a| {
            a.group.as_deref() == Some(m.group.as_str()) && a.members.contains(&m.email)
        });
        if keep {
            continue;
        }
        let present = actual
            .groups
            .get(&m.group)
            .is_some_and(|g| g.members.contains_key(&m.account_id));
        if present {
            plan.actions.push(Action::new(
                &m.audience,
                Op::RemoveGroupMember {
                    group: m.group.clone(),
                    email: m.email.clone(),
                    account_id: m.account_id.clone(),
                },
                why(
                    &m.audience,
                    &format!(
                        "{} is no longer in audience {} (person removed, domain removed or denied)",
                        m.email, m.audience
                    ),
                ),
            ));
        }
    }
    // Space permissions.
    for r in &owned.reads {
        if frozen.contains(&r.audience) {
            continue;
        }
        let keep = desired.audience(&r.audience).is_some_and(|a| {
            if !a.spaces.contains(&r.space) {
                return false;
            }
            match (&r.subject, a.delivery) {
                (Subject::Group(id), Delivery::Group) => a
                    .group
                    .as_ref()
                    .and_then(|g| owned.groups.get(g))
                    .is_some_and(|(gid, _)| gid == id),
                (Subject::User(_), Delivery::Guest) => a.members.contains(&r.holder),
                _ => false,
            }
        });
        if keep {
            continue;
        }
        if let Some(p) = actual.read_permission(&r.space, &r.subject) {
            plan.actions.push(Action::new(
                &r.audience,
                Op::RevokeSpacePermission {
                    space: r.space.clone(),
                    permission_id: p.id.clone(),
                    holder: r.holder.clone(),
                },
                why(
                    &r.audience,
                    &format!(
                        "{} no longer reads {} through audience {}",
                        r.holder, r.space, r.audience
                    ),
                ),
            ));
        }
    }
    // Unlicensed view.
    let unlicensed_spaces: BTreeSet<&str> = desired
        .audiences
        .iter()
        .filter(|a| a.delivery == Delivery::Unlicensed)
        .flat_map(|a| a.spaces.iter().map(String::as_str))
        .collect();
    // Only switches kbgate recorded as switched on by itself are ever switched off. One that
    // is already off (turned off by hand) is "switched off" once more, a no-op that clears the
    // record, so that kbgate never later takes someone else's switch for its own.
    let already_off = |space: Option<&str>| -> &'static str {
        let off = match space {
            Some(k) => actual.unlicensed_view(k) == Some(false),
            None => actual.global_unlicensed() == Some(false),
        };
        if off {
            " (it is already off: this only clears kbgate's record of it)"
        } else {
            ""
        }
    };
    for (space, aud) in &owned.unlicensed_view {
        if frozen.contains(aud) || unlicensed_spaces.contains(space.as_str()) {
            continue;
        }
        plan.actions.push(Action::new(
            aud,
            Op::SetUnlicensedView {
                space: space.clone(),
                enable: false,
            },
            format!(
                "no active unlicensed audience reads {space} any more; kbgate switched its \
                 unlicensed view on{}",
                already_off(Some(space))
            ),
        ));
    }
    let any_unlicensed =
        !unlicensed_spaces.is_empty() || owned.unlicensed_view.values().any(|a| frozen.contains(a));
    // With the site-wide state unreadable, kbgate cannot tell whether the switch was on
    // before it: it leaves the switch on rather than risk turning off what someone else
    // turned on. The switch grants nothing by itself (each space's unlicensed view, which
    // kbgate reads and revokes, does); the plan says so.
    if owned.global_unlicensed && !any_unlicensed && actual.global_unlicensed().is_none() {
        plan.warnings.push(Note::general(
            "no active unlicensed audience is left, but kbgate leaves the site-wide unlicensed \
             access switch on: its state cannot be read, so kbgate cannot tell whether it was \
             on before kbgate switched it on. It gives no access by itself (every space's \
             unlicensed view kbgate turned on is turned off); turn it off in Confluence's \
             admin if nothing else needs it.",
        ));
    } else if owned.global_unlicensed && !any_unlicensed {
        plan.actions.push(Action::new(
            "-",
            Op::SetGlobalUnlicensedAccess { enable: false },
            format!(
                "no active unlicensed audience is left; kbgate switched the site-wide \
                 unlicensed access on{}",
                already_off(None)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actual::{GroupState, InviteRecord, Perm, UserInfo};
    use crate::owned::{OwnedMember, OwnedRead};

    fn opts() -> DiffOptions {
        DiffOptions {
            now: "2026-05-01T12:00:00Z".parse().unwrap(),
            invite_retry_after: Duration::hours(24),
        }
    }

    fn aud(name: &str, delivery: Delivery, spaces: &[&str], members: &[&str]) -> DesiredAudience {
        DesiredAudience {
            name: name.into(),
            delivery,
            spaces: spaces.iter().map(|s| s.to_string()).collect(),
            members: members.iter().map(|s| s.to_string()).collect(),
            group: match delivery {
                Delivery::Group => Some(crate::desired::group_name(name)),
                Delivery::Guest => Some(crate::desired::guest_group_name(name)),
                _ => None,
            },
        }
    }

    fn desired(a: Vec<DesiredAudience>) -> DesiredState {
        DesiredState {
            audiences: a,
            ..Default::default()
        }
    }

    fn kinds(p: &Plan) -> Vec<(&'static str, String)> {
        p.actions
            .iter()
            .map(|a| (a.op.kind(), a.op.target()))
            .collect()
    }

    #[test]
    fn fresh_group_audience() {
        let d = desired(vec![aud(
            "acme",
            Delivery::Group,
            &["KB"],
            &["ann@acme.com"],
        )]);
        let mut act = Actual::default();
        act.checked.insert("ann@acme.com".into());
        act.without_access.insert("ann@acme.com".into());
        let p = diff(&d, &Owned::default(), &act, &opts());
        assert_eq!(
            kinds(&p),
            vec![
                ("create-group", "kbgate-acme".to_string()),
                ("grant-group-read", "KB ← group kbgate-acme".to_string()),
                ("invite", "ann@acme.com".to_string()),
            ]
        );
    }

    #[test]
    fn group_in_sync_is_empty_and_foreign_group_is_refused() {
        let d = desired(vec![aud(
            "acme",
            Delivery::Group,
            &["KB"],
            &["ann@acme.com"],
        )]);
        let mut act = Actual::default();
        act.groups.insert(
            "kbgate-acme".into(),
            GroupState {
                id: "g1".into(),
                members: [("u1".to_string(), Some("ann@acme.com".to_string()))].into(),
            },
        );
        act.permissions.insert(
            "KB".into(),
            vec![Perm {
                id: "p1".into(),
                subject: Subject::Group("g1".into()),
                operation: "read".into(),
                target: "space".into(),
            }],
        );
        act.accounts.insert("ann@acme.com".into(), "u1".into());
        act.users.insert(
            "u1".into(),
            UserInfo {
                active: true,
                guest: false,
            },
        );
        let mut owned = Owned::default();
        owned
            .groups
            .insert("kbgate-acme".into(), ("g1".into(), "acme".into()));
        let p = diff(&d, &owned, &act, &opts());
        assert!(p.is_empty(), "{p}");
        // The same group, not created by kbgate: refused, nothing planned.
        let p = diff(&d, &Owned::default(), &act, &opts());
        assert!(p.is_empty());
        assert!(p.refusals[0].message.contains("did not create"));
    }

    #[test]
    fn invites_are_not_repeated() {
        let d = desired(vec![aud(
            "acme",
            Delivery::Group,
            &["KB"],
            &["ann@acme.com", "bob@acme.com", "cat@acme.com"],
        )]);
        let mut act = Actual::default();
        for e in ["ann@acme.com", "bob@acme.com", "cat@acme.com"] {
            act.checked.insert(e.into());
            act.without_access.insert(e.into());
        }
        let at = opts().now - Duration::minutes(5);
        for (e, state) in [
            ("ann@acme.com", "pending"),
            ("bob@acme.com", "failed"),
            ("cat@acme.com", "done"),
        ] {
            act.invites.insert(
                e.into(),
                InviteRecord {
                    state: state.into(),
                    at,
                },
            );
        }
        let p = diff(&d, &Owned::default(), &act, &opts());
        let invites: Vec<_> = p
            .actions
            .iter()
            .filter(|a| a.op.kind() == "invite")
            .collect();
        assert_eq!(invites.len(), 1);
        assert_eq!(invites[0].op.target(), "bob@acme.com");
        // The other two wait, and say until when; the plan is not converged.
        let waiting: Vec<_> = p
            .awaiting
            .iter()
            .map(|w| (w.email.as_str(), w.state, w.retry_at))
            .collect();
        assert_eq!(
            waiting,
            vec![
                (
                    "ann@acme.com",
                    AwaitState::Unknown,
                    Some(at + Duration::hours(24))
                ),
                ("cat@acme.com", AwaitState::Sent, None),
            ]
        );
        assert_eq!(p.next_retry(), Some(at + Duration::hours(24)));
        let text = p.to_string();
        assert!(text.contains("may never have been sent"), "{text}");
        assert!(text.contains("not invited twice"), "{text}");
        // Without the failed one, nothing is to be done now, and still it is not converged.
        let quiet = desired(vec![aud(
            "acme",
            Delivery::Group,
            &["KB"],
            &["ann@acme.com", "cat@acme.com"],
        )]);
        let p = diff(&quiet, &Owned::default(), &act, &opts());
        assert!(!p.actions.iter().any(|a| a.op.kind() == "invite"), "{p}");
        assert!(!p.converged(), "{p}");
        // Once the retry time has come, the unconfirmed invitation is sent again (the person
        // still has no access); the accepted one is not.
        let mut later = opts();
        later.now += Duration::hours(25);
        let p = diff(&d, &Owned::default(), &act, &later);
        let mut invited: Vec<_> = p
            .actions
            .iter()
            .filter(|a| a.op.kind() == "invite")
            .map(|a| (a.op.target(), a.reason.contains("sent again")))
            .collect();
        invited.sort();
        assert_eq!(
            invited,
            vec![
                ("ann@acme.com".to_string(), true),
                ("bob@acme.com".to_string(), false)
            ]
        );
        assert_eq!(p.awaiting.len(), 1, "cat still waits");
        // Someone whose unknown invitation did arrive is neither waiting nor invited.
        let mut arrived = act.clone();
        arrived.without_access.remove("ann@acme.com");
        let p = diff(&d, &Owned::default(), &arrived, &later);
        assert!(!p.awaiting.iter().any(|w| w.email == "ann@acme.com"));
        assert!(!p.actions.iter().any(|a| a.op.target() == "ann@acme.com"));
    }

    #[test]
    fn revokes_only_what_kbgate_owns() {
        // Audience gone: its member and permission are revoked; a foreign member stays.
        let d = desired(vec![]);
        let mut act = Actual::default();
        act.groups.insert(
            "kbgate-acme".into(),
            GroupState {
                id: "g1".into(),
                members: [
                    ("u1".to_string(), Some("ann@acme.com".to_string())),
                    ("u2".to_string(), Some("someone@else.com".to_string())),
                ]
                .into(),
            },
        );
        act.permissions.insert(
            "KB".into(),
            vec![
                Perm {
                    id: "p1".into(),
                    subject: Subject::Group("g1".into()),
                    operation: "read".into(),
                    target: "space".into(),
                },
                Perm {
                    id: "p2".into(),
                    subject: Subject::Group("other".into()),
                    operation: "read".into(),
                    target: "space".into(),
                },
            ],
        );
        let mut owned = Owned::default();
        owned
            .groups
            .insert("kbgate-acme".into(), ("g1".into(), "acme".into()));
        owned.members.push(OwnedMember {
            group: "kbgate-acme".into(),
            account_id: "u1".into(),
            email: "ann@acme.com".into(),
            audience: "acme".into(),
        });
        owned.reads.push(OwnedRead {
            space: "KB".into(),
            subject: Subject::Group("g1".into()),
            audience: "acme".into(),
            holder: "group kbgate-acme".into(),
        });
        owned.unlicensed_view.insert("DOCS".into(), "old".into());
        owned.global_unlicensed = true;
        // The site says both switches are on (kbgate turned them on): both are revoked.
        act.switches = switches(&["DOCS"], true);
        let p = diff(&d, &owned, &act, &opts());
        let k = kinds(&p);
        assert!(
            k.contains(&("remove-group-member", "ann@acme.com in kbgate-acme".into())),
            "{k:?}"
        );
        assert!(
            k.iter()
                .any(|(kind, t)| *kind == "revoke-space-permission" && t.contains("p1")),
            "{k:?}"
        );
        assert!(
            !k.iter()
                .any(|(_, t)| t.contains("p2") || t.contains("someone@else.com")),
            "{k:?}"
        );
        assert!(k.contains(&("set-unlicensed-view", "DOCS off".into())));
        assert!(k.contains(&("set-global-unlicensed-access", "off".into())));
        assert_eq!(p.counts().1, p.actions.len());
    }

    #[test]
    fn unlicensed_creates_people_without_access_only() {
        let d = desired(vec![aud(
            "u",
            Delivery::Unlicensed,
            &["KB"],
            &["a@x.com", "b@x.com", "c@x.com"],
        )]);
        let mut act = Actual::default();
        act.checked
            .extend(["a@x.com".to_string(), "b@x.com".to_string()]);
        act.without_access.insert("a@x.com".into());
        act.accounts.insert("c@x.com".into(), "u3".into());
        act.users.insert(
            "u3".into(),
            UserInfo {
                active: false,
                guest: false,
            },
        );
        let p = diff(&d, &Owned::default(), &act, &opts());
        let k = kinds(&p);
        assert!(k.contains(&("create-site-user", "a@x.com".into())));
        assert!(!k.iter().any(|(_, t)| t == "b@x.com" || t == "c@x.com"));
        assert!(k.contains(&("set-unlicensed-view", "KB on".into())));
        assert!(k.contains(&("set-global-unlicensed-access", "on".into())));
        assert!(p.warnings.iter().any(|w| w.message.contains("deactivated")));
    }

    fn switches(on: &[&str], global: bool) -> Option<crate::actual::SwitchState> {
        Some(crate::actual::SwitchState {
            unlicensed_view: on.iter().map(|s| s.to_string()).collect(),
            unreadable: BTreeSet::new(),
            global_unlicensed_access: Some(global),
        })
    }

    fn switch_kinds(p: &Plan) -> Vec<(&'static str, String)> {
        kinds(p)
            .into_iter()
            .filter(|(k, _)| k.starts_with("set-"))
            .collect()
    }

    #[test]
    fn switches_follow_the_sites_state() {
        let d = desired(vec![aud("u", Delivery::Unlicensed, &["KB", "API"], &[])]);
        // Already on before kbgate: nothing to switch on, nothing claimed.
        let mut act = Actual {
            switches: switches(&["KB"], true),
            ..Default::default()
        };
        let p = diff(&d, &Owned::default(), &act, &opts());
        assert_eq!(
            switch_kinds(&p),
            vec![("set-unlicensed-view", "API on".into())]
        );
        assert!(!p.warnings.iter().any(|w| w.message.contains("cannot read")));
        // The audience goes: switches kbgate does not own stay as they are.
        let p = diff(&desired(vec![]), &Owned::default(), &act, &opts());
        assert!(p.is_empty(), "{p}");

        // kbgate's own switches, turned off by hand: switched back on, with the reason.
        let mut owned = Owned::default();
        owned.unlicensed_view.insert("KB".into(), "u".into());
        owned.unlicensed_view.insert("API".into(), "u".into());
        owned.global_unlicensed = true;
        act.switches = switches(&["API"], false);
        let p = diff(&d, &owned, &act, &opts());
        assert_eq!(
            switch_kinds(&p),
            vec![
                ("set-global-unlicensed-access", "on".into()),
                ("set-unlicensed-view", "KB on".into()),
            ]
        );
        assert!(
            p.actions.iter().all(|a| a.reason.contains("by hand")),
            "{p}"
        );
        // In line: nothing to do.
        act.switches = switches(&["KB", "API"], true);
        assert!(diff(&d, &owned, &act, &opts()).is_empty());
        // Revocation switches off what kbgate owns; one already off only clears the record.
        act.switches = switches(&["API"], true);
        let p = diff(&desired(vec![]), &owned, &act, &opts());
        assert_eq!(
            switch_kinds(&p),
            vec![
                ("set-global-unlicensed-access", "off".into()),
                ("set-unlicensed-view", "API off".into()),
                ("set-unlicensed-view", "KB off".into()),
            ]
        );
        let kb = p
            .actions
            .iter()
            .find(|a| a.op.target() == "KB off")
            .unwrap();
        assert!(kb.reason.contains("already off"), "{}", kb.reason);
    }

    /// What the default reader gives: unlicensed view per space, the site-wide switch unknown.
    #[test]
    fn an_unreadable_global_switch_falls_back_to_its_record_alone() {
        let d = desired(vec![aud("u", Delivery::Unlicensed, &["KB", "API"], &[])]);
        let mut act = Actual {
            switches: switches(&["KB"], false),
            ..Default::default()
        };
        act.switches.as_mut().unwrap().global_unlicensed_access = None;
        let p = diff(&d, &Owned::default(), &act, &opts());
        assert_eq!(
            switch_kinds(&p),
            vec![
                ("set-global-unlicensed-access", "on".into()),
                ("set-unlicensed-view", "API on".into()),
            ],
            "KB is on already; the global switch has no record"
        );
        assert!(
            p.warnings
                .iter()
                .any(|w| w.message.contains("no documented way to read")),
            "{p}"
        );
        assert!(!p.warnings.iter().any(|w| w.message.contains("cannot read")));
        // kbgate's record of the global switch: not switched on again (a switch-off by hand
        // cannot be seen), and not switched off on revocation either (it may have been on
        // before kbgate); KB, not kbgate's, stays on.
        let mut owned = Owned::default();
        owned.unlicensed_view.insert("API".into(), "u".into());
        owned.global_unlicensed = true;
        act.switches
            .as_mut()
            .unwrap()
            .unlicensed_view
            .insert("API".into());
        assert!(diff(&d, &owned, &act, &opts()).is_empty());
        let p = diff(&desired(vec![]), &owned, &act, &opts());
        assert_eq!(
            switch_kinds(&p),
            vec![("set-unlicensed-view", "API off".into())],
            "the unreadable site-wide switch is left on: it may not be kbgate's to turn off"
        );
        assert!(
            p.warnings.iter().any(|w| w
                .message
                .contains("leaves the site-wide unlicensed access switch on")),
            "{p}"
        );
        assert!(p.actions.iter().all(|a| !a.reason.contains("already off")));
        assert!(
            p.warnings
                .iter()
                .any(|w| w.message.contains("no documented way to read")),
            "still in play while kbgate owns it: {p}"
        );
        // Neither wanted nor owned: no warning about it.
        let g = desired(vec![aud("g", Delivery::Group, &["KB"], &[])]);
        let p = diff(&g, &Owned::default(), &act, &opts());
        assert!(
            !p.warnings
                .iter()
                .any(|w| w.message.contains("no documented way to read")),
            "{p}"
        );
    }

    #[test]
    fn an_unreadable_space_falls_back_to_its_record() {
        let d = desired(vec![aud("u", Delivery::Unlicensed, &["KB", "API"], &[])]);
        let mut act = Actual {
            switches: switches(&[], true),
            ..Default::default()
        };
        act.switches
            .as_mut()
            .unwrap()
            .unreadable
            .insert("API".into());
        let mut owned = Owned::default();
        owned.unlicensed_view.insert("API".into(), "u".into());
        let p = diff(&d, &owned, &act, &opts());
        assert_eq!(
            switch_kinds(&p),
            vec![("set-unlicensed-view", "KB on".into())],
            "API is kbgate's by its record: {p}"
        );
        assert!(
            p.warnings
                .iter()
                .any(|w| w.message.contains("space(s) API could not be read")),
            "{p}"
        );
        let p = diff(&d, &Owned::default(), &act, &opts());
        assert_eq!(
            switch_kinds(&p),
            vec![
                ("set-unlicensed-view", "API on".into()),
                ("set-unlicensed-view", "KB on".into()),
            ]
        );
    }

    #[test]
    fn unreadable_switches_fall_back_to_the_records_with_a_warning() {
        let d = desired(vec![aud("u", Delivery::Unlicensed, &["KB"], &[])]);
        let p = diff(&d, &Owned::default(), &Actual::default(), &opts());
        assert_eq!(
            switch_kinds(&p),
            vec![
                ("set-global-unlicensed-access", "on".into()),
                ("set-unlicensed-view", "KB on".into()),
            ]
        );
        assert!(
            p.warnings.iter().any(|w| w.message.contains("cannot read")),
            "{p}"
        );
        let mut owned = Owned::default();
        owned.unlicensed_view.insert("KB".into(), "u".into());
        owned.global_unlicensed = true;
        assert!(diff(&d, &owned, &Actual::default(), &opts()).is_empty());
        // No unlicensed audience and no switch owned: no warning.
        let g = desired(vec![aud("g", Delivery::Group, &["KB"], &[])]);
        let p = diff(&g, &Owned::default(), &Actual::default(), &opts());
        assert!(!p.warnings.iter().any(|w| w.message.contains("cannot read")));
    }

    #[test]
    fn guest_accounts_say_why_they_are_not_invited() {
        let d = desired(vec![aud("g", Delivery::Guest, &["KB"], &["a@x.com"])]);
        let mut act = Actual::default();
        act.checked.insert("a@x.com".into());
        act.without_access.insert("a@x.com".into());
        act.guests = Some(BTreeMap::new());
        act.licensed = Some(10);
        let p = diff(&d, &Owned::default(), &act, &opts());
        let create = p
            .actions
            .iter()
            .find(|a| a.op.kind() == "create-site-user")
            .expect("created, not invited");
        assert!(
            create.reason.contains("AX-274") && create.reason.contains("paid seat"),
            "{}",
            create.reason
        );
        assert!(!p.actions.iter().any(|a| a.op.kind() == "invite"));
    }

    #[test]
    fn guests_warn_beyond_the_allowance() {
        let members: Vec<String> = (0..12).map(|i| format!("g{i}@x.com")).collect();
        let refs: Vec<&str> = members.iter().map(String::as_str).collect();
        let d = desired(vec![aud("g", Delivery::Guest, &["KB"], &refs)]);
        let mut act = Actual::default();
        for m in &members {
            act.checked.insert(m.clone());
            act.without_access.insert(m.clone());
        }
        act.licensed = Some(2);
        act.guests = Some(BTreeMap::new());
        let p = diff(&d, &Owned::default(), &act, &opts());
        // All 12 are accounted for: the 10 that fit the allowance are planned, the other 2
        // wait on the guest limit (issue 16: only what fits is applied).
        let assigned = p
            .actions
            .iter()
            .filter(|a| a.op.kind() == "assign-guest-space")
            .count();
        assert_eq!(assigned + p.waiting_on_limits(), 12);
        assert_eq!(assigned, 10);
        assert!(
            p.warnings
                .iter()
                .any(|w| w.message.contains("allowance") && w.message.contains("portal")),
            "{:?}",
            p.warnings
        );
        act.licensed = Some(3);
        let p = diff(&d, &Owned::default(), &act, &opts());
        assert!(!p.warnings.iter().any(|w| w.message.contains("exceed")));
    }

    /// A guest audience of `n` people without accounts, `paid` paid users, `existing` guests.
    fn guest_site(n: usize, paid: usize, existing: usize) -> (DesiredState, Actual) {
        let members: Vec<String> = (0..n).map(|i| format!("p{i:03}@x.com")).collect();
        let refs: Vec<&str> = members.iter().map(String::as_str).collect();
        let d = desired(vec![aud("g", Delivery::Guest, &["KB"], &refs)]);
        let mut act = Actual::default();
        for m in &members {
            act.checked.insert(m.clone());
            act.without_access.insert(m.clone());
        }
        act.licensed = Some(paid);
        act.guests = Some(
            (0..existing)
                .map(|i| (format!("old{i}"), (Some(format!("old{i}@y.com")), None)))
                .collect(),
        );
        (d, act)
    }

    fn count(p: &Plan, kind: &str) -> usize {
        p.actions.iter().filter(|a| a.op.kind() == kind).count()
    }

    #[test]
    fn plan_under_the_guest_cap_provisions_everyone() {
        // 2 paid users → 10 places; 3 taken; 6 new.
        let (d, act) = guest_site(6, 2, 3);
        let p = diff(&d, &Owned::default(), &act, &opts());
        assert!(p.limits.is_empty(), "{p}");
        assert_eq!(count(&p, "assign-guest-space"), 6);
        assert_eq!(count(&p, "create-site-user"), 6);
        assert!(!p.warnings.iter().any(|w| w.message.contains("exceed")));
    }

    #[test]
    fn plan_at_the_guest_cap_provisions_everyone() {
        // 2 paid users → 10 places; 3 taken; exactly 7 new.
        let (d, act) = guest_site(7, 2, 3);
        let p = diff(&d, &Owned::default(), &act, &opts());
        assert!(p.limits.is_empty(), "{p}");
        assert_eq!(count(&p, "assign-guest-space"), 7);
        assert_eq!(p.waiting_on_limits(), 0);
        assert!(!p.to_string().contains("LIMIT"));
    }

    #[test]
    fn plan_over_the_guest_cap_holds_the_rest_in_a_stable_order() {
        // 2 paid users → 10 places; 3 taken; 9 new: 7 fit, 2 wait.
        let (d, act) = guest_site(9, 2, 3);
        let p = diff(&d, &Owned::default(), &act, &opts());
        assert_eq!(count(&p, "assign-guest-space"), 7);
        assert_eq!(count(&p, "create-site-user"), 7);
        assert_eq!(count(&p, "add-group-member"), 7);
        assert_eq!(p.limits.len(), 1);
        let l = &p.limits[0];
        assert_eq!(l.audience, "g");
        assert_eq!(l.limit, confluence_client::Limit::Guests);
        assert_eq!((l.allowance, l.paid_users, l.existing), (10, 2, 3));
        assert!(!l.existing_is_lower_bound);
        assert_eq!(l.fits, 7);
        assert_eq!(
            l.waiting,
            ["p007@x.com", "p008@x.com"],
            "the last by email wait"
        );
        for waiting in &l.waiting {
            assert!(
                !p.actions
                    .iter()
                    .any(|a| a.op.target().contains(waiting.as_str())),
                "nothing is planned for {waiting}: {p}"
            );
        }
        assert!(l.advice.contains("paid users") && l.advice.contains("portal"));
        let text = p.to_string();
        assert!(
            text.contains("LIMIT [g] guest limit reached: 7 of 9"),
            "{text}"
        );
        assert!(text.contains("2 person(s) wait on a site limit"), "{text}");
        assert_eq!(p.to_json()["summary"]["waiting_on_limits"], 2);
        assert_eq!(p.to_json()["limits"][0]["waiting"][1], "p008@x.com");
        // The same inputs give the same plan (the order does not depend on anything else).
        assert_eq!(diff(&d, &Owned::default(), &act, &opts()).limits, p.limits);
        // Full: nothing about people fits (only the guest group is created), and the plan
        // still says who waits.
        let (d, act) = guest_site(2, 2, 10);
        let p = diff(&d, &Owned::default(), &act, &opts());
        assert_eq!(
            kinds(&p),
            vec![("create-group", "guests-kbgate-g".to_string())]
        );
        assert_eq!(p.limits[0].fits, 0);
        assert!(p.to_string().contains("0 of 2 new guest(s) fit"), "{p}");
        // With the group there, the plan has no changes but still says who waits.
        let mut act = act;
        act.groups
            .insert("guests-kbgate-g".into(), GroupState::default());
        let mut owned = Owned::default();
        owned
            .groups
            .insert("guests-kbgate-g".into(), (String::new(), "g".into()));
        let p = diff(&d, &owned, &act, &opts());
        assert!(p.is_empty(), "{p}");
        assert!(p.to_string().contains("No changes that fit"), "{p}");
    }

    #[test]
    fn guests_of_several_audiences_fill_the_cap_in_configuration_order() {
        let a: Vec<String> = (0..4).map(|i| format!("a{i}@a.com")).collect();
        let b: Vec<String> = (0..4).map(|i| format!("b{i}@b.com")).collect();
        let ar: Vec<&str> = a.iter().map(String::as_str).collect();
        let br: Vec<&str> = b.iter().map(String::as_str).collect();
        // "zeta" comes first in the configuration although it sorts last.
        let d = desired(vec![
            aud("zeta", Delivery::Guest, &["KB"], &ar),
            aud("alpha", Delivery::Guest, &["DOCS"], &br),
        ]);
        let mut act = Actual::default();
        for m in a.iter().chain(&b) {
            act.checked.insert(m.clone());
            act.without_access.insert(m.clone());
        }
        act.licensed = Some(1);
        act.guests = Some(BTreeMap::new());
        let p = diff(&d, &Owned::default(), &act, &opts());
        assert_eq!(p.limits.len(), 1, "{p}");
        assert_eq!(p.limits[0].audience, "alpha");
        assert_eq!(p.limits[0].fits, 1);
        assert_eq!(p.limits[0].waiting, ["b1@b.com", "b2@b.com", "b3@b.com"]);
    }

    #[test]
    fn without_the_guest_list_kbgates_guest_groups_are_a_lower_bound() {
        let (d, mut act) = guest_site(3, 1, 0);
        act.guests = None;
        act.groups.insert(
            "guests-kbgate-g".into(),
            GroupState {
                id: "gg".into(),
                members: (0..4)
                    .map(|i| (format!("u{i}"), Some(format!("m{i}@x.com"))))
                    .collect(),
            },
        );
        let mut owned = Owned::default();
        owned
            .groups
            .insert("guests-kbgate-g".into(), ("gg".into(), "g".into()));
        let p = diff(&d, &owned, &act, &opts());
        assert_eq!(p.limits.len(), 1, "{p}");
        assert!(p.limits[0].existing_is_lower_bound);
        assert_eq!((p.limits[0].existing, p.limits[0].fits), (4, 1));
        assert!(p.to_string().contains("at least 4"), "{p}");
    }
}
