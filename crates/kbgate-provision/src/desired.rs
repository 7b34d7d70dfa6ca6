//! The desired state (pure): from the policy, the known people and `now`, who should have
//! what in Confluence for each native audience.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use kbgate_policy::{Delivery, Email, Policy};
use serde::{Deserialize, Serialize};

use crate::plan::Note;

/// Name of the group kbgate creates for a `group` audience.
pub fn group_name(audience: &str) -> String {
    format!("kbgate-{}", audience.to_ascii_lowercase())
}

/// Name of the guest group kbgate creates for a `guest` audience. Confluence gives the guest
/// role to a group (admin.atlassian.com → product access → guests); the `guests-` prefix is
/// the convention the simulator (and kbgate's docs) use for such a group.
pub fn guest_group_name(audience: &str) -> String {
    format!("guests-kbgate-{}", audience.to_ascii_lowercase())
}

/// What one native audience should have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredAudience {
    /// Audience name.
    pub name: String,
    /// Guest, unlicensed or group.
    pub delivery: Delivery,
    /// Space keys the audience reads (exactly one for a guest audience).
    pub spaces: Vec<String>,
    /// Normalised emails of the people who should have access through this audience.
    pub members: BTreeSet<String>,
    /// The group kbgate manages for it (group and guest deliveries).
    pub group: Option<String>,
}

/// The whole desired state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    /// Active, acceptable native audiences, in configuration order.
    pub audiences: Vec<DesiredAudience>,
    /// Audiences that kbgate refuses to provision; what it granted them earlier is left
    /// untouched (a refusal is a configuration problem, not a revocation).
    pub frozen: BTreeSet<String>,
    /// Why audiences are refused.
    pub refusals: Vec<Note>,
    /// Things the operator should know.
    pub warnings: Vec<Note>,
}

impl DesiredState {
    /// The desired audience of that name, if active and acceptable.
    pub fn audience(&self, name: &str) -> Option<&DesiredAudience> {
        self.audiences.iter().find(|a| a.name == name)
    }

    /// Every email some desired audience wants, with the audiences that want it.
    pub fn people(&self) -> BTreeMap<&str, Vec<&DesiredAudience>> {
        let mut m: BTreeMap<&str, Vec<&DesiredAudience>> = BTreeMap::new();
        for a in &self.audiences {
            for e in &a.members {
                m.entry(e.as_str()).or_default().push(a);
            }
        }
        m
    }
}

/// Computes the desired state. `emails` are the known people (already normalised or not:
/// each is parsed again; unparsable ones are skipped with a warning).
pub fn desired_state<'a>(
    policy: &Policy,
    emails: impl IntoIterator<Item = &'a str>,
    now: DateTime<Utc>,
) -> DesiredState {
    let mut out = DesiredState::default();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for a in policy.audiences() {
        if !a.delivery.is_native() {
            continue;
        }
        let name = a.name.as_str().to_owned();
        if a.delivery == Delivery::Guest && a.spaces.len() > 1 {
            let spaces: Vec<&str> = a.spaces.iter().map(|s| s.as_str()).collect();
            out.refusals.push(Note::for_audience(
                &name,
                format!(
                    "guest audience {name} lists {} spaces ({}), but a Confluence guest can be \
                     given exactly one space. Split it into one guest audience per space, or \
                     use delivery = \"portal\" (kbgate's portal serves any number of spaces \
                     without Atlassian accounts or seats). Nothing is changed for this audience.",
                    spaces.len(),
                    spaces.join(", ")
                ),
            ));
            out.frozen.insert(name);
            continue;
        }
        if !a.is_active(now) {
            continue;
        }
        let group = match a.delivery {
            Delivery::Group => Some(group_name(&name)),
            Delivery::Guest => Some(guest_group_name(&name)),
            _ => None,
        };
        if a.delivery == Delivery::Group {
            out.warnings.push(Note::for_audience(
                &name,
                format!(
                    "members of group {} need a Confluence licence to read: give the group \
                     Confluence product access in admin.atlassian.com (each member takes a paid \
                     seat), or use delivery = \"portal\" for seat-free access",
                    group_name(&name)
                ),
            ));
        }
        index.insert(name.clone(), out.audiences.len());
        out.audiences.push(DesiredAudience {
            name,
            delivery: a.delivery,
            spaces: dedup(a.spaces.iter().map(|s| s.as_str().to_owned())),
            members: BTreeSet::new(),
            group,
        });
    }

    let mut bad = 0usize;
    let mut double_guests: Vec<String> = Vec::new();
    for raw in emails {
        let Ok(email) = Email::parse(raw) else {
            bad += 1;
            continue;
        };
        let mut guest_taken = false;
        for a in policy.granting_audiences(email.domain(), now) {
            let Some(&i) = index.get(a.name.as_str()) else {
                continue;
            };
            if a.delivery == Delivery::Guest {
                if guest_taken {
                    double_guests.push(email.as_str().to_owned());
                    continue;
                }
                guest_taken = true;
            }
            // Atlassian matches account emails case-insensitively.
            out.audiences[i]
                .members
                .insert(email.as_str().to_ascii_lowercase());
        }
    }
    if bad > 0 {
        out.warnings.push(Note::general(format!(
            "{bad} known people have addresses that no longer parse; they are ignored"
        )));
    }
    if !double_guests.is_empty() {
        out.warnings.push(Note::general(format!(
            "{} people match several guest audiences; a guest has one space, so only the first \
             guest audience (configuration order) applies to them (e.g. {})",
            double_guests.len(),
            double_guests[0]
        )));
    }
    out
}

fn dedup(it: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    it.filter(|s| seen.insert(s.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use kbgate_policy::{Audience, AudienceName, Domain, SpaceKey};

    fn aud(name: &str, domains: &[&str], spaces: &[&str], delivery: Delivery) -> Audience {
        Audience {
            name: AudienceName::parse(name).unwrap(),
            domains: domains.iter().map(|d| Domain::parse(d).unwrap()).collect(),
            include_subdomains: false,
            spaces: spaces.iter().map(|s| SpaceKey::parse(s).unwrap()).collect(),
            labels: vec![],
            expires: None,
            delivery,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-05-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn members_follow_domains_and_deliveries() {
        let p = Policy::new(
            vec![
                aud("acme", &["acme.com"], &["KB"], Delivery::Group),
                aud(
                    "globex",
                    &["globex.com"],
                    &["KB", "DOCS"],
                    Delivery::Unlicensed,
                ),
                aud("portal", &["acme.com"], &["KB"], Delivery::Portal),
            ],
            vec![],
        )
        .unwrap();
        let d = desired_state(
            &p,
            [
                "ann@acme.com",
                "bob@GLOBEX.com",
                "eve@evil.net",
                "not an email",
            ],
            now(),
        );
        assert_eq!(d.audiences.len(), 2);
        let acme = d.audience("acme").unwrap();
        assert_eq!(acme.group.as_deref(), Some("kbgate-acme"));
        assert_eq!(acme.members.iter().collect::<Vec<_>>(), ["ann@acme.com"]);
        let globex = d.audience("globex").unwrap();
        assert_eq!(
            globex.members.iter().collect::<Vec<_>>(),
            ["bob@globex.com"]
        );
        assert_eq!(globex.spaces, ["KB", "DOCS"]);
        assert!(d.warnings.iter().any(|w| w.message.contains("licence")));
        assert!(
            d.warnings
                .iter()
                .any(|w| w.message.contains("no longer parse"))
        );
    }

    #[test]
    fn multi_space_guest_audience_is_refused_and_frozen() {
        let p = Policy::new(
            vec![aud("g", &["acme.com"], &["KB", "DOCS"], Delivery::Guest)],
            vec![],
        )
        .unwrap();
        let d = desired_state(&p, ["ann@acme.com"], now());
        assert!(d.audiences.is_empty());
        assert!(d.frozen.contains("g"));
        let r = &d.refusals[0].message;
        assert!(
            r.contains("exactly one space") && r.contains("portal"),
            "{r}"
        );
    }

    #[test]
    fn expired_and_denied_grant_nothing() {
        let mut a = aud("old", &["acme.com"], &["KB"], Delivery::Group);
        a.expires = NaiveDate::from_ymd_opt(2026, 4, 30);
        let p = Policy::new(
            vec![a, aud("g", &["globex.com"], &["KB"], Delivery::Group)],
            vec![Domain::parse("globex.com").unwrap()],
        )
        .unwrap();
        let d = desired_state(&p, ["ann@acme.com", "bob@globex.com"], now());
        assert!(d.audience("old").is_none());
        assert!(d.audience("g").unwrap().members.is_empty());
    }

    #[test]
    fn a_person_gets_only_the_first_guest_audience() {
        let p = Policy::new(
            vec![
                aud("g1", &["acme.com"], &["KB"], Delivery::Guest),
                aud("g2", &["acme.com"], &["DOCS"], Delivery::Guest),
            ],
            vec![],
        )
        .unwrap();
        let d = desired_state(&p, ["ann@acme.com"], now());
        assert_eq!(d.audience("g1").unwrap().members.len(), 1);
        assert!(d.audience("g2").unwrap().members.is_empty());
        assert!(
            d.warnings
                .iter()
                .any(|w| w.message.contains("several guest"))
        );
    }
}
