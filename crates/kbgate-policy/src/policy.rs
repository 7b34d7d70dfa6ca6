//! Audiences, the policy, and decisions.
//!
//! Semantics:
//! - A domain matches an audience domain exactly; with `include_subdomains` a proper subdomain
//!   (`sub.acme.com`) matches too. `acme.com.evil.net` and `evilacme.com` never match.
//! - A **denied domain also denies all its subdomains** (denying `gmail.com` denies
//!   `x.gmail.com`), and deny rules win over every audience. Deny is the safety net, so it is
//!   the broader rule.
//! - An audience with `expires = D` is active until the end of day `D` in UTC, and grants nothing
//!   afterwards.
//! - What a viewer may read is the union over all active portal audiences that match.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::email::{Domain, Email, self_and_parents};
use crate::names::{AudienceName, Label, SpaceKey};
use crate::viewer::{SpaceGrant, Viewer, audience_grants, union_grants};

/// How an audience's access is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Served read-only by kbgate's own portal (the default).
    Portal,
    /// Native: Confluence guests assigned to the (single) space.
    Guest,
    /// Native: unlicensed access (JSM knowledge base) to the spaces.
    Unlicensed,
    /// Native: a `kbgate-<audience>` group with read on the spaces.
    Group,
}

impl Delivery {
    /// Every delivery, in declaration order.
    pub const ALL: [Delivery; 4] = [
        Delivery::Portal,
        Delivery::Guest,
        Delivery::Unlicensed,
        Delivery::Group,
    ];

    /// The config spelling: `portal`, `guest`, `unlicensed`, `group`.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Portal => "portal",
            Delivery::Guest => "guest",
            Delivery::Unlicensed => "unlicensed",
            Delivery::Group => "group",
        }
    }

    /// True for the deliveries that native mode provisions in Confluence.
    pub fn is_native(self) -> bool {
        self != Delivery::Portal
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown delivery name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown delivery {0:?}; expected portal, guest, unlicensed or group")]
pub struct UnknownDelivery(pub String);

impl FromStr for Delivery {
    type Err = UnknownDelivery;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Delivery::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownDelivery(s.to_owned()))
    }
}

/// A group of email domains and what they may read. Fields are plain data; [`Policy::new`]
/// checks them as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    pub name: AudienceName,
    pub domains: Vec<Domain>,
    pub include_subdomains: bool,
    pub spaces: Vec<SpaceKey>,
    /// Empty: every page of the spaces; otherwise only pages with at least one of these labels.
    pub labels: Vec<Label>,
    /// Last day (UTC) on which the audience grants anything.
    pub expires: Option<NaiveDate>,
    pub delivery: Delivery,
}

impl Audience {
    /// Whether the audience still grants at `now` (active through the whole `expires` day, UTC).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_none_or(|d| now.date_naive() <= d)
    }

    /// The audience domain that `domain` matches, if any, and whether it matched as a subdomain.
    /// Ignores expiry and deny rules (see [`Policy::decide`] for the full decision).
    pub fn matched_domain(&self, domain: &Domain) -> Option<(&Domain, bool)> {
        if let Some(d) = self.domains.iter().find(|d| *d == domain) {
            return Some((d, false));
        }
        if self.include_subdomains {
            return self
                .domains
                .iter()
                .find(|d| domain.is_subdomain_of(d))
                .map(|d| (d, true));
        }
        None
    }

    /// Whether `domain` belongs to this audience (ignoring expiry and deny rules).
    pub fn matches_domain(&self, domain: &Domain) -> bool {
        self.matched_domain(domain).is_some()
    }
}

/// A policy that cannot be built. `audience` is the index in the list given to [`Policy::new`],
/// so a config loader can point at the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("audience name {name:?} is used twice (also by audience #{first})")]
    DuplicateAudience {
        audience: usize,
        first: usize,
        name: AudienceName,
    },
    #[error("audience {name:?} lists no domains")]
    NoDomains { audience: usize, name: AudienceName },
    #[error("audience {name:?} lists no spaces")]
    NoSpaces { audience: usize, name: AudienceName },
}

impl PolicyError {
    /// Index of the offending audience.
    pub fn audience_index(&self) -> usize {
        match self {
            PolicyError::DuplicateAudience { audience, .. }
            | PolicyError::NoDomains { audience, .. }
            | PolicyError::NoSpaces { audience, .. } => *audience,
        }
    }
}

/// The validated domain policy, with indexes so that decisions cost a few hash lookups.
#[derive(Debug, Clone)]
pub struct Policy {
    audiences: Vec<Audience>,
    deny: Vec<Domain>,
    deny_set: HashSet<Domain>,
    /// domain → audiences listing it (exact match).
    exact: HashMap<Domain, Vec<usize>>,
    /// domain → audiences listing it with `include_subdomains` (proper-subdomain match).
    subtree: HashMap<Domain, Vec<usize>>,
    /// Per audience: its grants and its name as a one-element list, shared into viewers.
    grants: Vec<Arc<[SpaceGrant]>>,
    names: Vec<Arc<[AudienceName]>>,
}

/// Why an email gets nothing (from [`Policy::viewer`] or [`Decision::refusal`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The domain (or a parent domain) is on the deny list.
    #[error("the domain is denied by the deny rule {rule}")]
    Denied { rule: Domain },
    /// No audience lists the domain.
    #[error("no audience includes this domain")]
    NoAudience,
    /// Every audience that matched has expired.
    #[error("every matching audience has expired: {}", join(.audiences))]
    Expired { audiences: Vec<AudienceName> },
    /// Only native-delivery audiences matched (portal sign-in is refused; they read in Confluence).
    #[error("the matching audiences are delivered in Confluence, not by the portal: {}", join(.audiences))]
    NotPortal { audiences: Vec<AudienceName> },
}

fn join(names: &[AudienceName]) -> String {
    names
        .iter()
        .map(AudienceName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a matched audience grants at the decision time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchStatus {
    Active,
    Expired,
}

/// One audience whose domains include the email's domain.
#[derive(Debug, Clone)]
pub struct AudienceMatch<'p> {
    pub audience: &'p Audience,
    /// The audience domain that matched.
    pub matched_domain: &'p Domain,
    /// True when the email's domain is a proper subdomain of `matched_domain`.
    pub via_subdomain: bool,
    pub status: MatchStatus,
}

/// The full, explained decision for one email (for `kbgate check` and audit).
#[derive(Debug, Clone)]
pub struct Decision<'p> {
    email: Email,
    at: DateTime<Utc>,
    denied_by: Option<Domain>,
    matches: Vec<AudienceMatch<'p>>,
    grants: Arc<[SpaceGrant]>,
}

impl Policy {
    /// Validates and indexes a policy: audience names unique (case-insensitively), every audience
    /// with at least one domain and one space. Duplicate domains, spaces or labels inside an
    /// audience are harmless and kept.
    pub fn new(audiences: Vec<Audience>, deny: Vec<Domain>) -> Result<Policy, PolicyError> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, a) in audiences.iter().enumerate() {
            if let Some(&first) = seen.get(&a.name.as_str().to_ascii_lowercase()) {
                return Err(PolicyError::DuplicateAudience {
                    audience: i,
                    first,
                    name: a.name.clone(),
                });
            }
            seen.insert(a.name.as_str().to_ascii_lowercase(), i);
            if a.domains.is_empty() {
                return Err(PolicyError::NoDomains {
                    audience: i,
                    name: a.name.clone(),
                });
            }
            if a.spaces.is_empty() {
                return Err(PolicyError::NoSpaces {
                    audience: i,
                    name: a.name.clone(),
                });
            }
        }
        let mut exact: HashMap<Domain, Vec<usize>> = HashMap::new();
        let mut subtree: HashMap<Domain, Vec<usize>> = HashMap::new();
        for (i, a) in audiences.iter().enumerate() {
            for d in &a.domains {
                push_unique(exact.entry(d.clone()).or_default(), i);
                if a.include_subdomains {
                    push_unique(subtree.entry(d.clone()).or_default(), i);
                }
            }
        }
        let grants = audiences
            .iter()
            .map(|a| audience_grants(&a.spaces, &a.labels))
            .collect();
        let names = audiences
            .iter()
            .map(|a| Arc::from([a.name.clone()]))
            .collect();
        Ok(Policy {
            deny_set: deny.iter().cloned().collect(),
            deny,
            audiences,
            exact,
            subtree,
            grants,
            names,
        })
    }

    /// The audiences, in configuration order.
    pub fn audiences(&self) -> &[Audience] {
        &self.audiences
    }

    /// An audience by name (exact spelling).
    pub fn audience(&self, name: &str) -> Option<&Audience> {
        self.audiences.iter().find(|a| a.name.as_str() == name)
    }

    /// The deny list, in configuration order.
    pub fn deny(&self) -> &[Domain] {
        &self.deny
    }

    /// The deny rule that covers `domain` (the domain itself or a parent), if any.
    pub fn denied_by(&self, domain: &Domain) -> Option<&Domain> {
        self.denied_by_str(domain.as_str())
    }

    /// Whether `domain` is denied (itself or through a parent domain).
    pub fn is_denied(&self, domain: &Domain) -> bool {
        self.denied_by(domain).is_some()
    }

    /// Audiences of one delivery kind (native mode walks these), in configuration order.
    pub fn audiences_for_delivery(&self, delivery: Delivery) -> impl Iterator<Item = &Audience> {
        self.audiences
            .iter()
            .filter(move |a| a.delivery == delivery)
    }

    /// Every audience whose domains include `domain`, ignoring expiry and deny rules, in
    /// configuration order. Native mode uses it to find what to revoke.
    pub fn audiences_matching(&self, domain: &Domain) -> Vec<&Audience> {
        let mut idx = Vec::new();
        self.for_each_match(domain.as_str(), |i, _, _| push_unique(&mut idx, i));
        idx.sort_unstable();
        idx.into_iter().map(|i| &self.audiences[i]).collect()
    }

    /// The audiences that grant `domain` something at `now`: matching, active, not denied (empty
    /// when the domain is denied). Native mode uses it to compute the desired state.
    pub fn granting_audiences(&self, domain: &Domain, now: DateTime<Utc>) -> Vec<&Audience> {
        if self.is_denied(domain) {
            return Vec::new();
        }
        let mut v = self.audiences_matching(domain);
        v.retain(|a| a.is_active(now));
        v
    }

    /// The access-request rule: whether `email` may ask to be let into Confluence itself at
    /// `now` — an active native-delivery audience (guest, unlicensed, group) grants its
    /// domain, and no deny rule covers it. Portal audiences do not qualify: their people sign
    /// in, there is nothing to provision. One rule for the portal's form, the host app's API
    /// and `kbgate people import`; the caller records (or counts) the outcome.
    pub fn may_request_access(&self, email: &Email, now: DateTime<Utc>) -> bool {
        self.granting_audiences(email.domain(), now)
            .iter()
            .any(|a| a.delivery.is_native())
    }

    /// Decides, with reasons, what `email` may read at `now` across every delivery.
    pub fn decide(&self, email: &Email, now: DateTime<Utc>) -> Decision<'_> {
        let domain = email.domain().as_str();
        let mut matches: Vec<AudienceMatch<'_>> = Vec::new();
        self.for_each_match(domain, |i, matched, via_subdomain| {
            if matches
                .iter()
                .any(|m| std::ptr::eq(m.audience, &self.audiences[i]))
            {
                return;
            }
            let audience = &self.audiences[i];
            let matched_domain = audience
                .domains
                .iter()
                .find(|d| d.as_str() == matched)
                .unwrap_or(&audience.domains[0]); // always found: `matched` came from this list
            matches.push(AudienceMatch {
                audience,
                matched_domain,
                via_subdomain,
                status: if audience.is_active(now) {
                    MatchStatus::Active
                } else {
                    MatchStatus::Expired
                },
            });
        });
        matches.sort_by_key(|m| self.index_of(m.audience));
        let denied_by = self.denied_by_str(domain).cloned();
        let grants = if denied_by.is_some() {
            Arc::from([])
        } else {
            union_grants(
                matches
                    .iter()
                    .filter(|m| {
                        m.status == MatchStatus::Active && m.audience.delivery == Delivery::Portal
                    })
                    .map(|m| &*self.grants[self.index_of(m.audience)]),
            )
        };
        Decision {
            email: email.clone(),
            at: now,
            denied_by,
            matches,
            grants,
        }
    }

    /// Issues the read capability for a verified email, from its active portal audiences.
    /// Cheap: a few hash lookups; no allocation in the common one-audience case beyond the
    /// email's reference count.
    pub fn viewer(&self, email: &Email, now: DateTime<Utc>) -> Result<Viewer, Refusal> {
        let domain = email.domain().as_str();
        if let Some(rule) = self.denied_by_str(domain) {
            return Err(Refusal::Denied { rule: rule.clone() });
        }
        let mut first: Option<usize> = None;
        let mut more: Vec<usize> = Vec::new();
        let mut any_match = false;
        self.for_each_match(domain, |i, _, _| {
            any_match = true;
            let a = &self.audiences[i];
            if a.delivery != Delivery::Portal || !a.is_active(now) {
                return;
            }
            match first {
                None => first = Some(i),
                Some(f) if f == i => {}
                Some(_) => push_unique(&mut more, i),
            }
        });
        let Some(first) = first else {
            return Err(self.refusal_without_portal(email, now, any_match));
        };
        if more.is_empty() {
            return Ok(Viewer::new(
                email.clone(),
                self.grants[first].clone(),
                self.names[first].clone(),
            ));
        }
        more.push(first);
        more.sort_unstable();
        let grants = union_grants(more.iter().map(|&i| &*self.grants[i]));
        let names: Arc<[AudienceName]> = more
            .iter()
            .map(|&i| self.audiences[i].name.clone())
            .collect();
        Ok(Viewer::new(email.clone(), grants, names))
    }

    /// The slow path of a refusal: explain why no active portal audience matched.
    fn refusal_without_portal(
        &self,
        email: &Email,
        now: DateTime<Utc>,
        any_match: bool,
    ) -> Refusal {
        if !any_match {
            return Refusal::NoAudience;
        }
        let matched = self.audiences_matching(email.domain());
        let active_native: Vec<AudienceName> = matched
            .iter()
            .filter(|a| a.is_active(now))
            .map(|a| a.name.clone())
            .collect();
        if active_native.is_empty() {
            Refusal::Expired {
                audiences: matched.iter().map(|a| a.name.clone()).collect(),
            }
        } else {
            Refusal::NotPortal {
                audiences: active_native,
            }
        }
    }

    fn index_of(&self, a: &Audience) -> usize {
        self.audiences
            .iter()
            .position(|x| std::ptr::eq(x, a))
            .unwrap_or(usize::MAX)
    }

    fn denied_by_str(&self, domain: &str) -> Option<&Domain> {
        self_and_parents(domain).find_map(|d| self.deny_set.get(d))
    }

    /// Calls `f(audience index, matched audience domain, via_subdomain)` for each match; an
    /// audience may be reported more than once.
    fn for_each_match<'s>(&'s self, domain: &str, mut f: impl FnMut(usize, &'s str, bool)) {
        if let Some((d, list)) = self.exact.get_key_value(domain) {
            for &i in list {
                f(i, d.as_str(), false);
            }
        }
        for parent in self_and_parents(domain).skip(1) {
            if let Some((d, list)) = self.subtree.get_key_value(parent) {
                for &i in list {
                    f(i, d.as_str(), true);
                }
            }
        }
    }
}

fn push_unique(v: &mut Vec<usize>, i: usize) {
    if !v.contains(&i) {
        v.push(i);
    }
}

impl<'p> Decision<'p> {
    /// The email decided on.
    pub fn email(&self) -> &Email {
        &self.email
    }

    /// The time of the decision.
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// The deny rule that applies, if any (it overrides every match).
    pub fn denied_by(&self) -> Option<&Domain> {
        self.denied_by.as_ref()
    }

    /// Every audience whose domains include the email's domain, active or expired, in
    /// configuration order.
    pub fn matches(&self) -> &[AudienceMatch<'p>] {
        &self.matches
    }

    /// What the portal lets this email read (union of active portal audiences; empty if denied).
    pub fn grants(&self) -> &[SpaceGrant] {
        &self.grants
    }

    /// Active native-delivery audiences (guest, unlicensed, group); empty if denied.
    pub fn native_audiences(&self) -> impl Iterator<Item = &'p Audience> + '_ {
        self.matches
            .iter()
            .filter(|m| {
                self.denied_by.is_none()
                    && m.status == MatchStatus::Active
                    && m.audience.delivery.is_native()
            })
            .map(|m| m.audience)
    }

    /// True when the email may read something through any delivery (`kbgate check` exits 0).
    pub fn is_allowed(&self) -> bool {
        self.refusal().is_none()
    }

    /// True when the portal would issue a [`Viewer`].
    pub fn may_use_portal(&self) -> bool {
        !self.grants.is_empty()
    }

    /// Why nothing at all is granted; `None` when something is.
    pub fn refusal(&self) -> Option<Refusal> {
        if let Some(rule) = &self.denied_by {
            return Some(Refusal::Denied { rule: rule.clone() });
        }
        if self.matches.is_empty() {
            return Some(Refusal::NoAudience);
        }
        if self
            .matches
            .iter()
            .all(|m| m.status == MatchStatus::Expired)
        {
            return Some(Refusal::Expired {
                audiences: self
                    .matches
                    .iter()
                    .map(|m| m.audience.name.clone())
                    .collect(),
            });
        }
        None
    }
}

impl fmt::Display for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_allowed() {
            "ALLOWED"
        } else {
            "REFUSED"
        };
        writeln!(
            f,
            "{}: {verdict} (domain {}, at {})",
            self.email,
            self.email.domain(),
            self.at.format("%Y-%m-%d %H:%M:%S UTC")
        )?;
        if let Some(rule) = &self.denied_by {
            if rule == self.email.domain() {
                writeln!(
                    f,
                    "  denied: {rule} is on the deny list (deny wins over audiences)"
                )?;
            } else {
                writeln!(
                    f,
                    "  denied: parent domain {rule} is on the deny list (deny wins over audiences)"
                )?;
            }
        }
        if self.matches.is_empty() {
            writeln!(f, "  no audience includes {}", self.email.domain())?;
        }
        for m in &self.matches {
            let a = m.audience;
            let how = if m.via_subdomain {
                format!("subdomain of {}", m.matched_domain)
            } else {
                format!("domain {}", m.matched_domain)
            };
            let status = match (m.status, a.expires) {
                (MatchStatus::Expired, Some(d)) => format!("EXPIRED (last day {d})"),
                (MatchStatus::Expired, None) => "EXPIRED".to_owned(),
                (MatchStatus::Active, Some(d)) => format!("active through {d} (UTC)"),
                (MatchStatus::Active, None) => "active, no expiry".to_owned(),
            };
            writeln!(
                f,
                "  audience {} ({} delivery) matches by {how}: {status}",
                a.name, a.delivery
            )?;
            let spaces: Vec<&str> = a.spaces.iter().map(SpaceKey::as_str).collect();
            write!(f, "    spaces: {}", spaces.join(", "))?;
            if a.labels.is_empty() {
                writeln!(f, "; all pages")?;
            } else {
                let labels: Vec<&str> = a.labels.iter().map(Label::as_str).collect();
                writeln!(f, "; only pages labelled {}", labels.join(" or "))?;
            }
        }
        if self.grants.is_empty() {
            writeln!(f, "  portal: nothing may be read")?;
        } else {
            writeln!(f, "  portal may read:")?;
            for g in self.grants.iter() {
                writeln!(f, "    {}: {}", g.space_key, g.labels)?;
            }
        }
        let native: Vec<String> = self
            .native_audiences()
            .map(|a| format!("{} ({})", a.name, a.delivery))
            .collect();
        if !native.is_empty() {
            writeln!(f, "  in Confluence through: {}", native.join(", "))?;
        }
        if let Some(r) = self.refusal() {
            writeln!(f, "  reason: {r}")?;
        }
        Ok(())
    }
}
