//! The `Viewer` capability: the only value that lets code read the mirror.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::email::Email;
use crate::names::{AudienceName, Label, SpaceKey};

/// Which pages of a granted space may be read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "labels")]
pub enum LabelFilter {
    /// Every page of the space (restricted pages excepted, always).
    All,
    /// Only pages carrying at least one of these labels. Never empty.
    AnyOf(BTreeSet<Label>),
}

impl LabelFilter {
    /// Whether a page with these labels passes the filter.
    pub fn admits(&self, page_labels: &[Label]) -> bool {
        match self {
            LabelFilter::All => true,
            LabelFilter::AnyOf(set) => page_labels.iter().any(|l| set.contains(l)),
        }
    }

    /// The union of two filters: `All` absorbs, label sets merge.
    fn union_with(&mut self, other: &LabelFilter) {
        match (&mut *self, other) {
            (LabelFilter::All, _) => {}
            (_, LabelFilter::All) => *self = LabelFilter::All,
            (LabelFilter::AnyOf(mine), LabelFilter::AnyOf(theirs)) => {
                mine.extend(theirs.iter().cloned())
            }
        }
    }
}

impl fmt::Display for LabelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelFilter::All => f.write_str("all pages"),
            LabelFilter::AnyOf(set) => {
                f.write_str("pages labelled ")?;
                for (i, l) in set.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{l}")?;
                }
                Ok(())
            }
        }
    }
}

/// Read access to one space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SpaceGrant {
    pub space_key: SpaceKey,
    pub labels: LabelFilter,
}

/// Builds the grants of one audience (spaces × label filter), sorted by space key.
pub(crate) fn audience_grants(spaces: &[SpaceKey], labels: &[Label]) -> Arc<[SpaceGrant]> {
    let filter = if labels.is_empty() {
        LabelFilter::All
    } else {
        LabelFilter::AnyOf(labels.iter().cloned().collect())
    };
    let keys: BTreeSet<&SpaceKey> = spaces.iter().collect();
    keys.into_iter()
        .map(|k| SpaceGrant {
            space_key: k.clone(),
            labels: filter.clone(),
        })
        .collect()
}

/// The union of several audiences' grants, sorted by space key.
pub(crate) fn union_grants<'a>(
    sets: impl IntoIterator<Item = &'a [SpaceGrant]>,
) -> Arc<[SpaceGrant]> {
    let mut by_space: BTreeMap<SpaceKey, LabelFilter> = BTreeMap::new();
    for g in sets.into_iter().flatten() {
        by_space
            .entry(g.space_key.clone())
            .and_modify(|f| f.union_with(&g.labels))
            .or_insert_with(|| g.labels.clone());
    }
    by_space
        .into_iter()
        .map(|(space_key, labels)| SpaceGrant { space_key, labels })
        .collect()
}

/// Proof that a verified email may read some spaces of the mirror, and exactly which.
///
/// Only [`crate::Policy::viewer`] makes one, from portal-delivery audiences that match the email's
/// domain, are not expired, and are not overridden by a deny rule. Code that reads pages,
/// attachments, search hits or page trees takes a `&Viewer` and filters by it; there is no other
/// way to build one (no public fields, no `Default`, no `Deserialize`):
///
/// ```compile_fail
/// use kbgate_policy::Viewer;
/// let forged = Viewer { email: todo!(), grants: todo!(), audiences: todo!() };
/// ```
///
/// ```compile_fail
/// let forged: kbgate_policy::Viewer = Default::default();
/// ```
///
/// A `Viewer` reflects the policy at the moment it was made; build a fresh one per request so
/// policy changes take effect at once. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Viewer {
    email: Email,
    grants: Arc<[SpaceGrant]>,
    audiences: Arc<[AudienceName]>,
}

impl Viewer {
    pub(crate) fn new(
        email: Email,
        grants: Arc<[SpaceGrant]>,
        audiences: Arc<[AudienceName]>,
    ) -> Viewer {
        Viewer {
            email,
            grants,
            audiences,
        }
    }

    /// The verified email this capability was issued to.
    pub fn email(&self) -> &Email {
        &self.email
    }

    /// What may be read: the union over the viewer's audiences, one entry per space, sorted by
    /// space key. Never empty.
    pub fn grants(&self) -> &[SpaceGrant] {
        &self.grants
    }

    /// The grants as one shared value: equal for two viewers exactly when they may read the
    /// same things, whoever they are — the key under which a view rendered for one viewer may
    /// be shown to another (the email is deliberately not part of it).
    pub fn reach(&self) -> Arc<[SpaceGrant]> {
        self.grants.clone()
    }

    /// The names of the audiences that granted access (for audit logs), in policy order.
    pub fn audiences(&self) -> &[AudienceName] {
        &self.audiences
    }

    /// The label filter for a space, or `None` when the space is not granted.
    pub fn grant_for(&self, space_key: &SpaceKey) -> Option<&LabelFilter> {
        self.grants
            .binary_search_by(|g| g.space_key.cmp(space_key))
            .ok()
            .map(|i| &self.grants[i].labels)
    }

    /// The granted space keys, sorted.
    pub fn space_keys(&self) -> impl Iterator<Item = &SpaceKey> {
        self.grants.iter().map(|g| &g.space_key)
    }

    /// Whether any page of the space may be read (space home, listing).
    pub fn may_read_space(&self, space_key: &SpaceKey) -> bool {
        self.grant_for(space_key).is_some()
    }

    /// Whether a page may be read. `effectively_restricted` is true when the page or any ancestor
    /// has a Confluence read restriction; such pages are never readable (ARCHITECTURE.md, S2).
    pub fn may_read_page(
        &self,
        space_key: &SpaceKey,
        page_labels: &[Label],
        effectively_restricted: bool,
    ) -> bool {
        !effectively_restricted
            && self
                .grant_for(space_key)
                .is_some_and(|f| f.admits(page_labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SpaceKey {
        SpaceKey::parse(s).unwrap()
    }
    fn label(s: &str) -> Label {
        Label::parse(s).unwrap()
    }

    #[test]
    fn union_all_absorbs_labels() {
        let full = audience_grants(&[key("KB")], &[]);
        let filtered = audience_grants(&[key("KB"), key("DOCS")], &[label("public")]);
        let u = union_grants([&*filtered, &*full]);
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].space_key, key("DOCS"));
        assert_eq!(u[0].labels, LabelFilter::AnyOf([label("public")].into()));
        assert_eq!(u[1].space_key, key("KB"));
        assert_eq!(u[1].labels, LabelFilter::All);
    }

    #[test]
    fn union_merges_label_sets() {
        let a = audience_grants(&[key("KB")], &[label("a")]);
        let b = audience_grants(&[key("KB")], &[label("b")]);
        let u = union_grants([&*a, &*b]);
        assert_eq!(
            u[0].labels,
            LabelFilter::AnyOf([label("a"), label("b")].into())
        );
    }

    #[test]
    fn page_checks() {
        let email = Email::parse("a@acme.com").unwrap();
        let grants = union_grants([
            &*audience_grants(&[key("KB")], &[]),
            &*audience_grants(&[key("DOCS")], &[label("public")]),
        ]);
        let v = Viewer::new(email, grants, Arc::from([]));
        assert!(v.may_read_space(&key("KB")));
        assert!(v.may_read_space(&key("DOCS")));
        assert!(!v.may_read_space(&key("HR")));
        assert!(v.may_read_page(&key("KB"), &[], false));
        assert!(!v.may_read_page(&key("KB"), &[], true));
        assert!(!v.may_read_page(&key("DOCS"), &[], false));
        assert!(!v.may_read_page(&key("DOCS"), &[label("internal")], false));
        assert!(v.may_read_page(&key("DOCS"), &[label("internal"), label("public")], false));
        assert!(!v.may_read_page(&key("DOCS"), &[label("public")], true));
        assert!(!v.may_read_page(&key("HR"), &[label("public")], false));
        assert_eq!(v.space_keys().count(), 2);
    }
}
