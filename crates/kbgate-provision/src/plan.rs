//! The plan: what `kbgate apply` would change, with a reason for each change. `Display` is
//! for humans (grouped by audience and action, with counts); serde gives `--output json`.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A warning or refusal, optionally about one audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// The audience concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// What the operator should know (and, where there is one, the way out).
    pub message: String,
}

impl Note {
    /// A note about one audience.
    pub fn for_audience(audience: &str, message: impl Into<String>) -> Self {
        Note {
            audience: Some(audience.to_owned()),
            message: message.into(),
        }
    }

    /// A note about the whole run.
    pub fn general(message: impl Into<String>) -> Self {
        Note {
            audience: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.audience {
            Some(a) => write!(f, "[{a}] {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// One change in Confluence. Every grant is `read` on `space` or a group membership; kbgate
/// has no operation that grants anything else.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Op {
    /// Create the group kbgate manages for an audience.
    CreateGroup {
        /// Group name.
        group: String,
    },
    /// Give a group `read` on a space.
    GrantGroupRead {
        /// Space key.
        space: String,
        /// Group name.
        group: String,
    },
    /// Remove a space permission kbgate granted (to a group or a guest).
    RevokeSpacePermission {
        /// Space key.
        space: String,
        /// Confluence permission id.
        permission_id: String,
        /// `group NAME` or the guest's email, for humans.
        holder: String,
    },
    /// Switch unlicensed view of a space on or off (JSM knowledge base).
    SetUnlicensedView {
        /// Space key.
        space: String,
        /// On or off.
        enable: bool,
    },
    /// Switch the site-wide unlicensed access on or off.
    SetGlobalUnlicensedAccess {
        /// On or off.
        enable: bool,
    },
    /// Put a person on the site with no product access (Jira `POST /rest/api/3/user`,
    /// `products: []`; the AX-274 workaround). Never a paid seat.
    CreateSiteUser {
        /// Email.
        email: String,
    },
    /// Invite a person by email (batched by 100). The invitee gets the site's default product
    /// access — a licence — which group members need anyway.
    Invite {
        /// Email.
        email: String,
    },
    /// Add a person to a kbgate group.
    AddGroupMember {
        /// Group name.
        group: String,
        /// Email.
        email: String,
    },
    /// Remove a person kbgate added from a kbgate group.
    RemoveGroupMember {
        /// Group name.
        group: String,
        /// Email (as recorded when added).
        email: String,
        /// Account id.
        account_id: String,
    },
    /// Assign a guest their one space (`read` on the space).
    AssignGuestSpace {
        /// Email.
        email: String,
        /// Space key.
        space: String,
    },
}

impl Op {
    /// Short kebab-case name, as in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::CreateGroup { .. } => "create-group",
            Op::GrantGroupRead { .. } => "grant-group-read",
            Op::RevokeSpacePermission { .. } => "revoke-space-permission",
            Op::SetUnlicensedView { .. } => "set-unlicensed-view",
            Op::SetGlobalUnlicensedAccess { .. } => "set-global-unlicensed-access",
            Op::CreateSiteUser { .. } => "create-site-user",
            Op::Invite { .. } => "invite",
            Op::AddGroupMember { .. } => "add-group-member",
            Op::RemoveGroupMember { .. } => "remove-group-member",
            Op::AssignGuestSpace { .. } => "assign-guest-space",
        }
    }

    /// Whether this takes access away.
    pub fn is_revocation(&self) -> bool {
        matches!(
            self,
            Op::RevokeSpacePermission { .. }
                | Op::RemoveGroupMember { .. }
                | Op::SetUnlicensedView { enable: false, .. }
                | Op::SetGlobalUnlicensedAccess { enable: false }
        )
    }

    /// The object acted on, for humans and the journal.
    pub fn target(&self) -> String {
        match self {
            Op::CreateGroup { group } => group.clone(),
            Op::GrantGroupRead { space, group } => format!("{space} ← group {group}"),
            Op::RevokeSpacePermission {
                space,
                permission_id,
                holder,
            } => format!("{space} permission {permission_id} ({holder})"),
            Op::SetUnlicensedView { space, enable } => {
                format!("{space} {}", if *enable { "on" } else { "off" })
            }
            Op::SetGlobalUnlicensedAccess { enable } => {
                (if *enable { "on" } else { "off" }).to_owned()
            }
            Op::CreateSiteUser { email } | Op::Invite { email } => email.clone(),
            Op::AddGroupMember { group, email } | Op::RemoveGroupMember { group, email, .. } => {
                format!("{email} in {group}")
            }
            Op::AssignGuestSpace { email, space } => format!("{email} → {space}"),
        }
    }

    /// Execution phase: revocations first, then groups, permissions, switches, accounts,
    /// memberships, guest spaces. Later phases may depend on earlier ones.
    pub(crate) fn phase(&self) -> u8 {
        match self {
            Op::RemoveGroupMember { .. } => 0,
            Op::RevokeSpacePermission { .. } => 1,
            Op::SetUnlicensedView { enable: false, .. } => 2,
            Op::SetGlobalUnlicensedAccess { enable: false } => 3,
            Op::CreateGroup { .. } => 4,
            Op::GrantGroupRead { .. } => 5,
            Op::SetGlobalUnlicensedAccess { enable: true } => 6,
            Op::SetUnlicensedView { enable: true, .. } => 7,
            Op::CreateSiteUser { .. } => 8,
            Op::Invite { .. } => 9,
            Op::AddGroupMember { .. } => 10,
            Op::AssignGuestSpace { .. } => 11,
        }
    }
}

/// One planned change, with the audience it serves and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Stable id (the journal's idempotency key): `KIND:AUDIENCE:TARGET`.
    pub id: String,
    /// The audience the change serves (or served, for revocations).
    pub audience: String,
    /// The change.
    #[serde(flatten)]
    pub op: Op,
    /// Why.
    pub reason: String,
}

impl Action {
    /// Builds an action with its stable id.
    pub fn new(audience: &str, op: Op, reason: impl Into<String>) -> Self {
        let id = format!("{}:{}:{}", op.kind(), audience, op_key(&op));
        Action {
            id,
            audience: audience.to_owned(),
            op,
            reason: reason.into(),
        }
    }
}

fn op_key(op: &Op) -> String {
    match op {
        Op::CreateGroup { group } => group.clone(),
        Op::GrantGroupRead { space, group } => format!("{space}:{group}"),
        Op::RevokeSpacePermission {
            space,
            permission_id,
            ..
        } => format!("{space}:{permission_id}"),
        Op::SetUnlicensedView { space, enable } => format!("{space}:{enable}"),
        Op::SetGlobalUnlicensedAccess { enable } => enable.to_string(),
        Op::CreateSiteUser { email } | Op::Invite { email } => email.clone(),
        Op::AddGroupMember { group, email } | Op::RemoveGroupMember { group, email, .. } => {
            format!("{group}:{email}")
        }
        Op::AssignGuestSpace { email, space } => format!("{space}:{email}"),
    }
}

/// Facts read while planning that `apply` needs but humans do not (account ids learnt from
/// Confluence, group ids). Not part of the JSON plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PlanContext {
    /// email → account id.
    pub(crate) accounts: BTreeMap<String, String>,
    /// group name → group id.
    pub(crate) group_ids: BTreeMap<String, String>,
    /// Emails discovered on the site (guests, group members) to add to the people table.
    pub(crate) discovered: Vec<String>,
}

/// People of one audience whom a site limit leaves out of this plan: kbgate provisions only
/// what fits and reports the rest here, before anything is applied. They are not failures:
/// they wait on the limit, and a later plan provisions them once there is room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitHold {
    /// The audience.
    pub audience: String,
    /// Which limit (`guests`: 5 guests per paid user).
    pub limit: confluence_client::Limit,
    /// The site's allowance (paid users × 5 for guests).
    pub allowance: usize,
    /// Paid users counted, and where the number came from.
    pub paid_users: usize,
    /// Guests already on the site (or counted so far), before this plan.
    pub existing: usize,
    /// Whether `existing` is a lower bound (all guests of the site cannot be listed without
    /// `allow_undocumented_apis`; only those in kbgate's guest groups are counted).
    pub existing_is_lower_bound: bool,
    /// New guests of this audience the plan provisions (they fit).
    pub fits: usize,
    /// Emails that do not fit, in a stable order (audiences in configuration order, people by
    /// email), so that the same people wait from one plan to the next.
    pub waiting: Vec<String>,
    /// What to do about it.
    pub advice: String,
}

impl fmt::Display for LimitHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<&str> = self
            .waiting
            .iter()
            .take(SHOWN_PER_GROUP)
            .map(String::as_str)
            .collect();
        let more = self.waiting.len().saturating_sub(SHOWN_PER_GROUP);
        write!(
            f,
            "[{}] {} reached: {} of {} new guest(s) fit (allowance {} = {} paid user(s) × {}, {}{} \
             guest(s) already); {} wait: {}{}. {}",
            self.audience,
            self.limit,
            self.fits,
            self.fits + self.waiting.len(),
            self.allowance,
            self.paid_users,
            crate::GUESTS_PER_PAID_USER,
            if self.existing_is_lower_bound {
                "at least "
            } else {
                ""
            },
            self.existing,
            self.waiting.len(),
            shown.join(", "),
            if more > 0 {
                format!(" … and {more} more")
            } else {
                String::new()
            },
            self.advice
        )
    }
}

/// Why a person is not provisioned yet although nothing is planned for them now: they wait on
/// an invitation. Not a grant, and the plan is not converged while anyone waits
/// ([`Plan::converged`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Awaiting {
    /// The audience.
    pub audience: String,
    /// The person.
    pub email: String,
    /// What is known of their invitation.
    pub state: AwaitState,
    /// When the invitation was sent, or was about to be sent (the journal's time).
    pub since: DateTime<Utc>,
    /// When kbgate sends the invitation again if the site still shows no access by then;
    /// `None` when it is not sent again (Confluence accepted it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
}

/// What is known of an invitation that has not arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AwaitState {
    /// Confluence accepted it (200); the invitation completes asynchronously.
    Sent,
    /// Its outcome is unknown: a run stopped between journaling it and seeing the answer, or
    /// Confluence answered 5xx. Re-checked against the site by every plan.
    Unknown,
}

/// What `kbgate plan` shows and `kbgate apply` executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// When the plan was computed (the `now` of the policy's expiry rules).
    pub generated_at: DateTime<Utc>,
    /// The changes, ordered by audience, then kind, then target.
    pub actions: Vec<Action>,
    /// Things the operator should know; they do not make the plan non-empty.
    pub warnings: Vec<Note>,
    /// Audiences (or parts of them) kbgate refuses to provision, with the way out.
    pub refusals: Vec<Note>,
    /// People left out because a site limit is reached (not in `actions`): they wait on it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<LimitHold>,
    /// People waiting on an invitation (sent, or of unknown outcome): nothing to do for them
    /// now, but not provisioned either.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting: Vec<Awaiting>,
    #[serde(skip)]
    pub(crate) context: PlanContext,
}

impl Plan {
    /// An empty plan.
    pub fn empty(generated_at: DateTime<Utc>) -> Self {
        Plan {
            generated_at,
            actions: Vec::new(),
            warnings: Vec::new(),
            refusals: Vec::new(),
            limits: Vec::new(),
            awaiting: Vec::new(),
            context: PlanContext::default(),
        }
    }

    /// True when there is nothing to change (`--detailed-exitcode` exits 0; otherwise 2).
    /// Warnings and refusals do not count as changes.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// True when Confluence matches the policy for everyone the plan can provision: nothing
    /// to change and nobody waiting on an invitation (people held by a site limit are
    /// counted apart, [`Plan::waiting_on_limits`]).
    pub fn converged(&self) -> bool {
        self.actions.is_empty() && self.awaiting.is_empty()
    }

    /// The earliest time an invitation of unknown outcome is sent again (if the site still
    /// shows no access then): when the next `apply` has something to do.
    pub fn next_retry(&self) -> Option<DateTime<Utc>> {
        self.awaiting.iter().filter_map(|w| w.retry_at).min()
    }

    /// People who wait on a site limit (see [`Plan::limits`]).
    pub fn waiting_on_limits(&self) -> usize {
        self.limits.iter().map(|l| l.waiting.len()).sum()
    }

    /// Number of grants and of revocations.
    pub fn counts(&self) -> (usize, usize) {
        let rev = self.actions.iter().filter(|a| a.op.is_revocation()).count();
        (self.actions.len() - rev, rev)
    }

    /// Action counts per (audience, kind).
    pub fn counts_by_kind(&self) -> BTreeMap<(String, &'static str), usize> {
        let mut m = BTreeMap::new();
        for a in &self.actions {
            *m.entry((a.audience.clone(), a.op.kind())).or_insert(0) += 1;
        }
        m
    }

    /// JSON for `--output json`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let (add, remove) = self.counts();
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "summary".into(),
                serde_json::json!({ "changes": self.actions.len(), "grants": add, "revocations": remove, "waiting_on_limits": self.waiting_on_limits(), "awaiting_invitations": self.awaiting.len(), "converged": self.converged(), "next_retry": self.next_retry() }),
            );
        }
        v
    }

    pub(crate) fn sort(&mut self) {
        self.actions.sort_by(|a, b| {
            (&a.audience, a.op.kind(), &a.op).cmp(&(&b.audience, b.op.kind(), &b.op))
        });
        self.actions.dedup_by(|a, b| a.id == b.id);
    }
}

/// Lines shown per (audience, kind) before "… and N more".
const SHOWN_PER_GROUP: usize = 10;

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.refusals {
            writeln!(f, "REFUSED {r}")?;
        }
        if self.is_empty() && !self.limits.is_empty() {
            writeln!(
                f,
                "No changes that fit: everything else matches the policy, but some people wait \
                 on a site limit (below)."
            )?;
        } else if self.is_empty() && !self.awaiting.is_empty() {
            writeln!(
                f,
                "No changes to make now, but not converged: some people wait on an invitation \
                 (below)."
            )?;
        } else if self.is_empty() {
            writeln!(
                f,
                "No changes. Confluence matches the policy for every native audience."
            )?;
        } else {
            let mut by: BTreeMap<(&str, &str), Vec<&Action>> = BTreeMap::new();
            for a in &self.actions {
                by.entry((a.audience.as_str(), a.op.kind()))
                    .or_default()
                    .push(a);
            }
            let mut current: Option<&str> = None;
            for ((aud, kind), list) in &by {
                if current != Some(aud) {
                    writeln!(f, "audience {aud}:")?;
                    current = Some(aud);
                }
                let sign = if list[0].op.is_revocation() { '-' } else { '+' };
                writeln!(f, "  {sign} {kind} ×{}", list.len())?;
                for a in list.iter().take(SHOWN_PER_GROUP) {
                    writeln!(f, "      {}  ({})", a.op.target(), a.reason)?;
                }
                if list.len() > SHOWN_PER_GROUP {
                    writeln!(f, "      … and {} more", list.len() - SHOWN_PER_GROUP)?;
                }
            }
        }
        for l in &self.limits {
            writeln!(f, "LIMIT {l}")?;
        }
        self.fmt_awaiting(f)?;
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        let (add, remove) = self.counts();
        write!(
            f,
            "Plan: {} change(s): {add} grant(s), {remove} revocation(s)",
            self.actions.len()
        )?;
        if self.waiting_on_limits() > 0 {
            write!(
                f,
                "; {} person(s) wait on a site limit (not applied)",
                self.waiting_on_limits()
            )?;
        }
        if !self.awaiting.is_empty() {
            write!(
                f,
                "; {} person(s) wait on an invitation (not granted yet)",
                self.awaiting.len()
            )?;
        }
        writeln!(f, ".")
    }
}

impl Plan {
    /// `WAITING` lines: per audience and state, how many, when they are retried, examples.
    fn fmt_awaiting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut by: BTreeMap<(&str, AwaitState), Vec<&Awaiting>> = BTreeMap::new();
        for w in &self.awaiting {
            by.entry((w.audience.as_str(), w.state))
                .or_default()
                .push(w);
        }
        for ((aud, st), list) in by {
            let shown: Vec<&str> = list
                .iter()
                .take(SHOWN_PER_GROUP)
                .map(|w| w.email.as_str())
                .collect();
            let more = list.len().saturating_sub(SHOWN_PER_GROUP);
            let more = if more > 0 {
                format!(" … and {more} more")
            } else {
                String::new()
            };
            match st {
                AwaitState::Sent => writeln!(
                    f,
                    "WAITING [{aud}] {} person(s) invited, invitation not complete yet (not on \
                     the site): they are given access by the first apply after it completes, \
                     and are not invited twice: {}{more}",
                    list.len(),
                    shown.join(", ")
                )?,
                AwaitState::Unknown => {
                    let next = list.iter().filter_map(|w| w.retry_at).min();
                    let when = match next {
                        Some(t) if t <= self.generated_at => "now".to_owned(),
                        Some(t) => format!("from {}", t.format("%Y-%m-%d %H:%M UTC")),
                        None => "later".to_owned(),
                    };
                    writeln!(
                        f,
                        "WAITING [{aud}] {} person(s) whose invitation may never have been sent \
                         (a run stopped before Confluence answered, or it answered 5xx) and who \
                         have no site access yet: every plan re-checks them with \
                         check-access-by-email, and apply re-sends the invitation to those \
                         still without access {when}: {}{more}",
                        list.len(),
                        shown.join(", ")
                    )?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> DateTime<Utc> {
        "2026-05-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn display_groups_and_counts() {
        let mut p = Plan::empty(t());
        for i in 0..12 {
            p.actions.push(Action::new(
                "acme",
                Op::CreateSiteUser {
                    email: format!("u{i:02}@acme.com"),
                },
                "acme.com is in audience acme",
            ));
        }
        p.actions.push(Action::new(
            "acme",
            Op::RemoveGroupMember {
                group: "kbgate-acme".into(),
                email: "old@acme.com".into(),
                account_id: "a1".into(),
            },
            "person removed",
        ));
        p.warnings.push(Note::general("w"));
        p.sort();
        let s = p.to_string();
        assert!(s.contains("audience acme:"), "{s}");
        assert!(s.contains("+ create-site-user ×12"), "{s}");
        assert!(s.contains("- remove-group-member ×1"), "{s}");
        assert!(s.contains("… and 2 more"), "{s}");
        assert!(
            s.contains("13 change(s): 12 grant(s), 1 revocation(s)"),
            "{s}"
        );
        assert!(!p.is_empty());
    }

    #[test]
    fn json_round_trips_and_has_kinds() {
        let mut p = Plan::empty(t());
        p.actions.push(Action::new(
            "g",
            Op::AssignGuestSpace {
                email: "a@b.com".into(),
                space: "KB".into(),
            },
            "r",
        ));
        let v = p.to_json();
        assert_eq!(v["actions"][0]["kind"], "assign-guest-space");
        assert_eq!(v["actions"][0]["space"], "KB");
        assert_eq!(v["summary"]["changes"], 1);
        let back: Plan = serde_json::from_value(v).unwrap();
        assert_eq!(back.actions, p.actions);
        assert!(Plan::empty(t()).is_empty());
        assert!(Plan::empty(t()).to_string().contains("No changes"));
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = Action::new(
            "x",
            Op::Invite {
                email: "a@b.com".into(),
            },
            "r1",
        );
        let b = Action::new(
            "x",
            Op::Invite {
                email: "a@b.com".into(),
            },
            "r2",
        );
        let c = Action::new(
            "x",
            Op::CreateSiteUser {
                email: "a@b.com".into(),
            },
            "r1",
        );
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
    }
}
