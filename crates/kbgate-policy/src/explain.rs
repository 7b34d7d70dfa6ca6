//! The access explainer: why an email may or may not read a page, step by step, and who may
//! read a page at all.
//!
//! It walks the same rules the gate applies — [`Policy::denied_by`],
//! [`Audience::matched_domain`], [`Audience::is_active`], the portal delivery, the audience's
//! spaces and [`LabelFilter::admits`], and the page's read restrictions (its own, an
//! ancestor's, or the mirror's fail-closed flag) — but audience by audience, so each step can
//! be shown. Its verdict must equal [`Policy::viewer`] followed by [`Viewer::may_read_page`]
//! (the property test `tests/explain.rs` checks they never disagree).
//!
//! [`Viewer::may_read_page`]: crate::Viewer::may_read_page

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::email::{Domain, Email};
use crate::names::{AudienceName, Label, SpaceKey};
use crate::policy::{Audience, Delivery, Policy};
use crate::viewer::LabelFilter;

/// What the explainer needs to know of a page: the mirror's facts, no body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageFacts {
    pub id: String,
    pub title: String,
    pub space_key: SpaceKey,
    /// The page's labels (stored labels that do not parse are left out, as the gate does).
    pub labels: Vec<Label>,
    /// A read restriction sits on the page itself.
    pub restricted: bool,
    /// The mirror counts the page restricted (itself, an ancestor, or fail-closed: a missing
    /// parent or a cycle).
    pub effective_restricted: bool,
    /// Ancestors, root first.
    pub ancestors: Vec<AncestorFacts>,
}

/// An ancestor of a page, as far as restrictions go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AncestorFacts {
    pub id: String,
    pub title: String,
    /// The mirror counts this ancestor restricted (on itself or further up).
    pub effective_restricted: bool,
}

impl PageFacts {
    /// Whether the gate treats the page as restricted: the page's own flag, the mirror's
    /// effective flag, or any ancestor's (ARCHITECTURE.md, S2).
    pub fn is_restricted(&self) -> bool {
        self.restricted
            || self.effective_restricted
            || self.ancestors.iter().any(|a| a.effective_restricted)
    }

    /// The ancestor whose restriction the page inherits: the one nearest the root that the
    /// mirror flags (restrictions flow down, so the first flagged ancestor holds it).
    pub fn restricted_ancestor(&self) -> Option<&AncestorFacts> {
        self.ancestors.iter().find(|a| a.effective_restricted)
    }
}

/// How one step of the explanation came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The step lets access through.
    Pass,
    /// The step stops access.
    Fail,
    /// Context only.
    Info,
}

/// One step of an explanation, in the order the rules apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `policy`, `audience`, `space`, `labels`, `restrictions` or `verdict`.
    pub stage: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

/// One audience's part in a decision about an email (and a page, when one is named).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudienceCheck {
    pub audience: AudienceName,
    pub delivery: Delivery,
    /// The audience domain the email's domain matched.
    pub matched_domain: Domain,
    /// Matched as a subdomain (`include_subdomains`).
    pub via_subdomain: bool,
    pub expires: Option<NaiveDate>,
    pub active: bool,
    /// Whether the page's space is one of the audience's (`None`: no page named).
    pub space_granted: Option<bool>,
    /// Whether the audience's label filter admits the page (`None`: not reached).
    pub labels_admit: Option<bool>,
    /// The audience lets the portal show the page (or, without a page, something).
    pub grants: bool,
}

/// Why an email may or may not read a page (or anything, without a page), each step shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub email: Email,
    pub at: DateTime<Utc>,
    pub page: Option<PageFacts>,
    /// The deny rule covering the email's domain, if any (it wins over every audience).
    pub denied_by: Option<Domain>,
    /// Every audience whose domains include the email's domain, in policy order.
    pub audiences: Vec<AudienceCheck>,
    /// The steps, in order; the last is the verdict.
    pub steps: Vec<Step>,
    /// True when the portal shows the page (or, without a page, issues a reader session).
    pub allowed: bool,
}

impl Policy {
    /// Explains, step by step, whether `email` may read `page` at `now` through the portal
    /// (or, with no page, whether the portal lets the email in at all).
    pub fn explain(
        &self,
        email: &Email,
        page: Option<&PageFacts>,
        now: DateTime<Utc>,
    ) -> Explanation {
        let domain = email.domain();
        let mut steps = Vec::new();
        let denied_by = self.denied_by(domain).cloned();
        match &denied_by {
            Some(rule) if rule == domain => steps.push(Step {
                stage: "policy",
                outcome: Outcome::Fail,
                detail: format!("{rule} is on the deny list (deny wins over every audience)"),
            }),
            Some(rule) => steps.push(Step {
                stage: "policy",
                outcome: Outcome::Fail,
                detail: format!(
                    "{domain} is under {rule}, which is on the deny list (deny covers subdomains and wins over every audience)"
                ),
            }),
            None => steps.push(Step {
                stage: "policy",
                outcome: Outcome::Pass,
                detail: format!("{domain} is not on the deny list"),
            }),
        }
        let mut audiences = Vec::new();
        for a in self.audiences() {
            let Some((matched, via_subdomain)) = a.matched_domain(domain) else {
                continue;
            };
            audiences.push(check_audience(
                a,
                matched,
                via_subdomain,
                page,
                now,
                &mut steps,
            ));
        }
        if audiences.is_empty() {
            steps.push(Step {
                stage: "audience",
                outcome: Outcome::Fail,
                detail: format!("no audience lists {domain} (or a parent with subdomains)"),
            });
        }
        let granting = audiences.iter().any(|c| c.grants);
        let mut allowed = denied_by.is_none() && granting;
        if let Some(p) = page {
            restriction_steps(p, &mut steps);
            allowed &= !p.is_restricted();
        }
        let verdict = match (allowed, page, &denied_by) {
            (true, Some(p), _) => format!("{email} may read page {} ({})", p.id, p.title),
            (true, None, _) => format!("{email} may sign in to the portal"),
            (false, _, Some(rule)) => format!("refused: denied by {rule}"),
            (false, Some(p), None) if granting && p.is_restricted() => {
                "refused: the page has a Confluence read restriction".to_owned()
            }
            (false, Some(p), None) => {
                format!("refused: no active portal audience grants page {}", p.id)
            }
            (false, None, None) => "refused: no active portal audience matches".to_owned(),
        };
        steps.push(Step {
            stage: "verdict",
            outcome: if allowed {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            detail: verdict,
        });
        Explanation {
            email: email.clone(),
            at: now,
            page: page.cloned(),
            denied_by,
            audiences,
            steps,
            allowed,
        }
    }

    /// Who may read `page` at `now` through the portal: each audience with what it says
    /// about the page, and the deny rules that carve domains out of them.
    pub fn who_can_read(&self, page: &PageFacts, now: DateTime<Utc>) -> Readership {
        let restricted = page.is_restricted();
        let audiences = self
            .audiences()
            .iter()
            .map(|a| {
                let space_granted = a.spaces.contains(&page.space_key);
                let labels_admit = label_filter(a).admits(&page.labels);
                let active = a.is_active(now);
                let portal = a.delivery == Delivery::Portal;
                let reason = if !space_granted {
                    format!("space {} is not one of its spaces", page.space_key)
                } else if !labels_admit {
                    format!("its filter admits only {}", label_filter(a))
                } else if !portal {
                    format!(
                        "{} delivery: reads in Confluence, not the portal",
                        a.delivery
                    )
                } else if !active {
                    match a.expires {
                        Some(d) => format!("expired (last day {d})"),
                        None => "expired".to_owned(),
                    }
                } else if restricted {
                    "the page is restricted in Confluence".to_owned()
                } else {
                    "reads it".to_owned()
                };
                AudienceReach {
                    audience: a.name.clone(),
                    domains: a.domains.clone(),
                    include_subdomains: a.include_subdomains,
                    reads: space_granted && labels_admit && portal && active && !restricted,
                    reason,
                }
            })
            .collect();
        Readership {
            page: page.clone(),
            restricted,
            audiences,
            deny: self.deny().to_vec(),
        }
    }
}

/// One audience's answer to "who can read this page".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudienceReach {
    pub audience: AudienceName,
    pub domains: Vec<Domain>,
    pub include_subdomains: bool,
    /// Its people read the page through the portal (deny rules aside).
    pub reads: bool,
    pub reason: String,
}

/// Who can read a page: per audience, and the deny rules that win over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readership {
    pub page: PageFacts,
    pub restricted: bool,
    pub audiences: Vec<AudienceReach>,
    /// Denied domains (and their subdomains) never read anything.
    pub deny: Vec<Domain>,
}

/// The audience's label filter, as the gate builds it.
fn label_filter(a: &Audience) -> LabelFilter {
    if a.labels.is_empty() {
        LabelFilter::All
    } else {
        LabelFilter::AnyOf(a.labels.iter().cloned().collect())
    }
}

fn check_audience(
    a: &Audience,
    matched: &Domain,
    via_subdomain: bool,
    page: Option<&PageFacts>,
    now: DateTime<Utc>,
    steps: &mut Vec<Step>,
) -> AudienceCheck {
    let how = if via_subdomain {
        format!("as a subdomain of {matched} (include_subdomains)")
    } else {
        format!("by domain {matched}")
    };
    let active = a.is_active(now);
    let status = match (active, a.expires) {
        (true, None) => "active, no expiry".to_owned(),
        (true, Some(d)) => format!("active through {d} (UTC)"),
        (false, Some(d)) => format!("EXPIRED (last day {d})"),
        (false, None) => "EXPIRED".to_owned(),
    };
    let portal = a.delivery == Delivery::Portal;
    let usable = active && portal;
    steps.push(Step {
        stage: "audience",
        outcome: if usable { Outcome::Pass } else { Outcome::Fail },
        detail: format!(
            "audience {} matches {how}: {status}; {} delivery{}",
            a.name,
            a.delivery,
            if portal {
                ""
            } else {
                " (Confluence itself, not the portal)"
            }
        ),
    });
    let mut check = AudienceCheck {
        audience: a.name.clone(),
        delivery: a.delivery,
        matched_domain: matched.clone(),
        via_subdomain,
        expires: a.expires,
        active,
        space_granted: None,
        labels_admit: None,
        grants: usable,
    };
    let Some(p) = page else {
        return check;
    };
    let space_granted = a.spaces.contains(&p.space_key);
    check.space_granted = Some(space_granted);
    let spaces: Vec<&str> = a.spaces.iter().map(SpaceKey::as_str).collect();
    steps.push(Step {
        stage: "space",
        outcome: if space_granted {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        detail: format!(
            "audience {}: space {} {} its spaces ({})",
            a.name,
            p.space_key,
            if space_granted {
                "is one of"
            } else {
                "is not one of"
            },
            spaces.join(", ")
        ),
    });
    if !space_granted {
        check.grants = false;
        return check;
    }
    let filter = label_filter(a);
    let admits = filter.admits(&p.labels);
    check.labels_admit = Some(admits);
    let labels: Vec<&str> = p.labels.iter().map(Label::as_str).collect();
    steps.push(Step {
        stage: "labels",
        outcome: if admits { Outcome::Pass } else { Outcome::Fail },
        detail: format!(
            "audience {}: reads {filter}; the page is labelled {}",
            a.name,
            if labels.is_empty() {
                "with nothing".to_owned()
            } else {
                labels.join(", ")
            }
        ),
    });
    check.grants = usable && admits;
    check
}

fn restriction_steps(p: &PageFacts, steps: &mut Vec<Step>) {
    let (outcome, detail) = if p.restricted {
        (
            Outcome::Fail,
            format!("page {} has a Confluence read restriction of its own", p.id),
        )
    } else if let Some(a) = p.restricted_ancestor() {
        (
            Outcome::Fail,
            format!(
                "page {} inherits a read restriction from ancestor {} ({})",
                p.id, a.id, a.title
            ),
        )
    } else if p.effective_restricted {
        (
            Outcome::Fail,
            format!(
                "page {} counts as restricted: the mirror cannot prove it unrestricted (a parent is missing or the hierarchy loops), so it fails closed",
                p.id
            ),
        )
    } else {
        (
            Outcome::Pass,
            format!(
                "no read restriction on page {} or its {} ancestor(s)",
                p.id,
                p.ancestors.len()
            ),
        )
    };
    steps.push(Step {
        stage: "restrictions",
        outcome,
        detail,
    });
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.allowed { "ALLOWED" } else { "REFUSED" };
        match &self.page {
            Some(p) => writeln!(
                f,
                "{}: {verdict} for page {} \"{}\" in {} (at {})",
                self.email,
                p.id,
                p.title,
                p.space_key,
                self.at.format("%Y-%m-%d %H:%M:%S UTC")
            )?,
            None => writeln!(
                f,
                "{}: {verdict} (at {})",
                self.email,
                self.at.format("%Y-%m-%d %H:%M:%S UTC")
            )?,
        }
        for s in &self.steps {
            let mark = match s.outcome {
                Outcome::Pass => "ok  ",
                Outcome::Fail => "FAIL",
                Outcome::Info => "    ",
            };
            writeln!(f, "  [{mark}] {:<12} {}", s.stage, s.detail)?;
        }
        Ok(())
    }
}

impl fmt::Display for Readership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "who can read page {} \"{}\" in {}:",
            self.page.id, self.page.title, self.page.space_key
        )?;
        if self.restricted {
            writeln!(
                f,
                "  nobody through the portal: the page is restricted in Confluence"
            )?;
        }
        for a in &self.audiences {
            let domains: Vec<&str> = a.domains.iter().map(Domain::as_str).collect();
            writeln!(
                f,
                "  [{}] audience {} ({}{}): {}",
                if a.reads { "reads" } else { "  -  " },
                a.audience,
                domains.join(", "),
                if a.include_subdomains {
                    ", with subdomains"
                } else {
                    ""
                },
                a.reason
            )?;
        }
        if !self.deny.is_empty() {
            let deny: Vec<&str> = self.deny.iter().map(Domain::as_str).collect();
            writeln!(
                f,
                "  except denied domains and their subdomains: {}",
                deny.join(", ")
            )?;
        }
        Ok(())
    }
}
