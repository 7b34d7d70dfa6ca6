//! Who may use the admin console: the `Admin` capability and the rule that issues it.

use std::collections::{BTreeMap, BTreeSet};

use crate::email::{Domain, Email};

/// The `[admin]` rule: admin emails and admin domains (exact: a subdomain is not an admin
/// domain, so a customer's `eu.` subdomain can never make itself an admin). Emails compare
/// without regard to case, as the store's session revocation does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminPolicy {
    /// By the lower-cased address.
    emails: BTreeMap<String, Email>,
    domains: BTreeSet<Domain>,
}

impl AdminPolicy {
    /// A rule admitting exactly these emails and every email at exactly these domains.
    pub fn new(
        emails: impl IntoIterator<Item = Email>,
        domains: impl IntoIterator<Item = Domain>,
    ) -> AdminPolicy {
        AdminPolicy {
            emails: emails
                .into_iter()
                .map(|e| (e.as_str().to_lowercase(), e))
                .collect(),
            domains: domains.into_iter().collect(),
        }
    }

    /// True when nobody is an admin (the console is off: every `/admin` route is a 404).
    pub fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.domains.is_empty()
    }

    /// The admin emails, sorted.
    pub fn emails(&self) -> impl Iterator<Item = &Email> {
        self.emails.values()
    }

    /// The admin domains, sorted.
    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        self.domains.iter()
    }

    /// Whether `email` is an admin under this rule.
    pub fn is_admin(&self, email: &Email) -> bool {
        self.emails.contains_key(&email.as_str().to_lowercase())
            || self.domains.contains(email.domain())
    }

    /// Issues the admin capability for a verified email, or `None`.
    pub fn admin(&self, email: &Email) -> Option<Admin> {
        self.is_admin(email).then(|| Admin {
            email: email.clone(),
        })
    }
}

/// Proof that a verified email is an admin under the current `[admin]` rule. Only
/// [`AdminPolicy::admin`] makes one; admin routes take it, so a handler cannot forget the
/// check:
///
/// ```compile_fail
/// let forged = kbgate_policy::Admin { email: todo!() };
/// ```
#[derive(Debug, Clone)]
pub struct Admin {
    email: Email,
}

impl Admin {
    /// The admin's verified email (the actor in the audit log).
    pub fn email(&self) -> &Email {
        &self.email
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    #[test]
    fn emails_and_exact_domains() {
        let p = AdminPolicy::new(
            [e("boss@vendor.com")],
            [Domain::parse("ops.vendor.com").unwrap()],
        );
        assert!(p.admin(&e("Boss@Vendor.com")).is_some());
        assert!(p.admin(&e("x@ops.vendor.com")).is_some());
        assert!(p.admin(&e("x@vendor.com")).is_none());
        assert!(p.admin(&e("x@eu.ops.vendor.com")).is_none());
        assert!(p.admin(&e("x@evilops.vendor.com")).is_none());
        assert!(AdminPolicy::default().is_empty());
        assert!(
            AdminPolicy::default()
                .admin(&e("boss@vendor.com"))
                .is_none()
        );
    }
}
