//! Black-box tests of the policy: email parsing, audiences, grants and expiry.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use kbgate_policy::{
    Audience, AudienceName, Delivery, Domain, Email, EmailError, Label, LabelFilter, MatchStatus,
    Policy, PolicyError, Refusal, SpaceKey,
};

fn d(s: &str) -> Domain {
    Domain::parse(s).unwrap()
}
fn k(s: &str) -> SpaceKey {
    SpaceKey::parse(s).unwrap()
}
fn l(s: &str) -> Label {
    Label::parse(s).unwrap()
}
fn e(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn audience(name: &str, domains: &[&str], spaces: &[&str]) -> Audience {
    Audience {
        name: AudienceName::parse(name).unwrap(),
        domains: domains.iter().map(|s| d(s)).collect(),
        include_subdomains: false,
        spaces: spaces.iter().map(|s| k(s)).collect(),
        labels: vec![],
        expires: None,
        delivery: Delivery::Portal,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn acme_policy() -> Policy {
    Policy::new(
        vec![audience(
            "acme",
            &["acme.com", "acme.co.uk"],
            &["KB", "ONBOARD"],
        )],
        vec![d("gmail.com")],
    )
    .unwrap()
}

/// Parses the email (if it parses) and reports whether the portal would grant anything.
fn granted(policy: &Policy, email: &str) -> bool {
    match Email::parse(email) {
        Ok(em) => policy.viewer(&em, now()).is_ok(),
        Err(_) => false,
    }
}

#[test]
fn upper_case_domain_matches() {
    let p = acme_policy();
    let v = p.viewer(&e("a@ACME.com"), now()).unwrap();
    assert_eq!(v.email().as_str(), "a@acme.com");
    assert_eq!(v.grants().len(), 2);
    assert!(v.may_read_space(&k("KB")));
    assert!(v.may_read_space(&k("ONBOARD")));
    assert!(!v.may_read_space(&k("HR")));
    assert_eq!(v.audiences()[0].as_str(), "acme");
}

#[test]
fn hostile_addresses_never_match() {
    let p = acme_policy();
    for bad in [
        "a@acme.com.evil.net",
        "a@evil.com@acme.com",
        "\"a@acme.com\"@evil.net",
        "a@acme.com@",
        "a@.acme.com",
        "a@acme.com.",
        "a@evilacme.com",
        "a@sub.acme.com",
        "a@acme.com\u{0}",
        "a@acme.com ",
        "a@[acme.com]",
        // Cyrillic а in place of Latin a: a mixed-script homograph, refused at parse.
        "a@\u{430}cme.com",
        // All-Cyrillic look-alike "асме.сом": a distinct IDN, parses but never matches.
        "a@\u{430}\u{441}\u{43c}\u{435}.\u{441}\u{43e}\u{43c}",
        // Greek omicron, Armenian o.
        "a@acm\u{3b5}.com",
        "a@\u{585}acme.com",
    ] {
        assert!(!granted(&p, bad), "{bad:?} must not be granted");
    }
}

#[test]
fn specific_parse_errors() {
    assert_eq!(
        Email::parse("a@evil.com@acme.com"),
        Err(EmailError::MultipleAt)
    );
    assert_eq!(
        Email::parse("\"a@acme.com\"@evil.net"),
        Err(EmailError::QuotedLocalPart)
    );
    assert_eq!(Email::parse("a@acme.com@"), Err(EmailError::MultipleAt));
    assert!(matches!(
        Email::parse("a@acme.com."),
        Err(EmailError::Domain(kbgate_policy::DomainError::TrailingDot))
    ));
    // The whole-script Cyrillic look-alike parses to an A-label that is not acme.com.
    let cyr = e("a@\u{430}\u{441}\u{43c}\u{435}.com");
    assert!(cyr.domain().as_str().starts_with("xn--"));
    assert_ne!(cyr.domain(), &d("acme.com"));
}

#[test]
fn idn_equivalence() {
    let p = Policy::new(vec![audience("buch", &["bücher.de"], &["KB"])], vec![]).unwrap();
    assert_eq!(e("a@bücher.de"), e("a@xn--bcher-kva.de"));
    assert!(granted(&p, "a@xn--bcher-kva.de"));
    assert!(granted(&p, "a@BÜCHER.de"));
    assert!(!granted(&p, "a@bucher.de"));
}

#[test]
fn subdomains_only_when_included() {
    let mut a = audience("acme", &["acme.com"], &["KB"]);
    let p = Policy::new(vec![a.clone()], vec![]).unwrap();
    assert!(!granted(&p, "a@sub.acme.com"));
    a.include_subdomains = true;
    let p = Policy::new(vec![a], vec![]).unwrap();
    assert!(granted(&p, "a@sub.acme.com"));
    assert!(granted(&p, "a@deep.sub.acme.com"));
    assert!(granted(&p, "a@acme.com"));
    assert!(!granted(&p, "a@evilacme.com"));
    assert!(!granted(&p, "a@acme.com.evil.net"));
    assert!(!granted(&p, "a@com"));
}

#[test]
fn plus_addressing_keeps_domain() {
    let p = acme_policy();
    let v = p.viewer(&e("jane+kb@acme.com"), now()).unwrap();
    assert_eq!(v.email().local_part(), "jane+kb");
    assert_eq!(v.email().domain().as_str(), "acme.com");
    assert!(!granted(&p, "jane+acme.com@evil.net"));
}

#[test]
fn deny_wins_and_covers_subdomains() {
    let mut a = audience("acme", &["acme.com", "gmail.com"], &["KB"]);
    a.include_subdomains = true;
    let p = Policy::new(vec![a], vec![d("gmail.com"), d("contractors.acme.com")]).unwrap();
    assert_eq!(
        p.viewer(&e("a@gmail.com"), now()).unwrap_err(),
        Refusal::Denied {
            rule: d("gmail.com")
        }
    );
    // Deny covers subdomains of a denied domain.
    assert_eq!(
        p.viewer(&e("a@x.contractors.acme.com"), now()).unwrap_err(),
        Refusal::Denied {
            rule: d("contractors.acme.com")
        }
    );
    assert!(granted(&p, "a@acme.com"));
    assert!(granted(&p, "a@eu.acme.com"));
    let decision = p.decide(&e("a@gmail.com"), now());
    assert!(!decision.is_allowed());
    assert!(decision.grants().is_empty());
    assert_eq!(decision.matches().len(), 1, "the match is still explained");
    assert!(decision.to_string().contains("deny"));
}

#[test]
fn expiry_is_end_of_day_utc() {
    let mut a = audience("acme", &["acme.com"], &["KB"]);
    a.expires = Some(NaiveDate::from_ymd_opt(2026, 6, 1).unwrap());
    let p = Policy::new(vec![a], vec![]).unwrap();
    let last_second = Utc.with_ymd_and_hms(2026, 6, 1, 23, 59, 59).unwrap();
    let next_day = Utc.with_ymd_and_hms(2026, 6, 2, 0, 0, 0).unwrap();
    assert!(p.viewer(&e("a@acme.com"), last_second).is_ok());
    assert_eq!(
        p.viewer(&e("a@acme.com"), next_day).unwrap_err(),
        Refusal::Expired {
            audiences: vec![AudienceName::parse("acme").unwrap()]
        }
    );
    let decision = p.decide(&e("a@acme.com"), next_day);
    assert!(!decision.is_allowed());
    assert_eq!(decision.matches()[0].status, MatchStatus::Expired);
    assert!(decision.to_string().contains("EXPIRED"));
}

#[test]
fn expired_audience_does_not_contribute_to_union() {
    let mut old = audience("old", &["acme.com"], &["HR"]);
    old.expires = Some(NaiveDate::from_ymd_opt(2020, 1, 1).unwrap());
    let p = Policy::new(vec![old, audience("acme", &["acme.com"], &["KB"])], vec![]).unwrap();
    let v = p.viewer(&e("a@acme.com"), now()).unwrap();
    assert!(v.may_read_space(&k("KB")));
    assert!(!v.may_read_space(&k("HR")));
}

#[test]
fn union_across_audiences() {
    let full = audience("full", &["acme.com"], &["KB"]);
    let mut filtered = audience("filtered", &["acme.com"], &["KB", "DOCS"]);
    filtered.labels = vec![l("public")];
    let p = Policy::new(vec![filtered, full], vec![]).unwrap();
    let v = p.viewer(&e("a@acme.com"), now()).unwrap();
    assert_eq!(v.grant_for(&k("KB")), Some(&LabelFilter::All));
    assert_eq!(
        v.grant_for(&k("DOCS")),
        Some(&LabelFilter::AnyOf([l("public")].into()))
    );
    assert_eq!(v.audiences().len(), 2);
    assert!(v.may_read_page(&k("KB"), &[], false));
    assert!(!v.may_read_page(&k("KB"), &[], true));
    assert!(!v.may_read_page(&k("DOCS"), &[l("internal")], false));
    assert!(v.may_read_page(&k("DOCS"), &[l("PUBLIC")], false));
}

#[test]
fn native_audiences_do_not_make_viewers() {
    let mut g = audience("guests", &["acme.com"], &["KB"]);
    g.delivery = Delivery::Guest;
    let p = Policy::new(vec![g], vec![]).unwrap();
    assert!(matches!(
        p.viewer(&e("a@acme.com"), now()),
        Err(Refusal::NotPortal { .. })
    ));
    let decision = p.decide(&e("a@acme.com"), now());
    assert!(decision.is_allowed());
    assert!(!decision.may_use_portal());
    assert_eq!(decision.native_audiences().count(), 1);
    assert_eq!(p.audiences_for_delivery(Delivery::Guest).count(), 1);
    assert_eq!(p.audiences_for_delivery(Delivery::Portal).count(), 0);
    assert_eq!(p.granting_audiences(&d("acme.com"), now()).len(), 1);
    assert_eq!(p.audiences_matching(&d("evil.com")).len(), 0);
}

/// Moved here from kbgate-provision with the rule itself (issue 11): only active native
/// audiences qualify for an access request.
#[test]
fn access_requests_qualify_only_for_active_native_domains() {
    let native = |name: &str, domains: &[&str], delivery: Delivery| Audience {
        delivery,
        ..audience(name, domains, &["KB"])
    };
    let p = Policy::new(
        vec![
            native("acme", &["acme.com"], Delivery::Group),
            native("guests", &["guest.com"], Delivery::Guest),
            native("free", &["free.com"], Delivery::Unlicensed),
            audience("web", &["portal.com"], &["KB"]),
            Audience {
                expires: Some(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()),
                ..native("gone", &["gone.com"], Delivery::Group)
            },
            native("denied", &["gmail.com"], Delivery::Group),
        ],
        vec![d("gmail.com")],
    )
    .unwrap();
    for (email, want) in [
        ("ann@acme.com", true),
        ("Ann@ACME.com", true),
        ("gus@guest.com", true),
        ("una@free.com", true),
        ("bob@portal.com", false),
        ("eve@evil.net", false),
        ("gil@gone.com", false),
        ("dan@gmail.com", false),
        ("ann@eu.acme.com", false),
    ] {
        assert_eq!(p.may_request_access(&e(email), now()), want, "{email}");
    }
    // The same answer as the decision's list of native audiences.
    for email in [
        "ann@acme.com",
        "bob@portal.com",
        "dan@gmail.com",
        "gil@gone.com",
    ] {
        assert_eq!(
            p.may_request_access(&e(email), now()),
            p.decide(&e(email), now())
                .native_audiences()
                .next()
                .is_some(),
            "{email}"
        );
    }
}

#[test]
fn no_audience() {
    let p = acme_policy();
    assert_eq!(
        p.viewer(&e("a@other.org"), now()).unwrap_err(),
        Refusal::NoAudience
    );
    let decision = p.decide(&e("a@other.org"), now());
    assert_eq!(decision.refusal(), Some(Refusal::NoAudience));
    assert!(decision.to_string().contains("REFUSED"));
}

#[test]
fn decision_explains_grants() {
    let mut a = audience("acme", &["acme.com"], &["KB"]);
    a.labels = vec![l("faq")];
    let p = Policy::new(vec![a], vec![]).unwrap();
    let text = p.decide(&e("a@acme.com"), now()).to_string();
    assert!(text.contains("ALLOWED"), "{text}");
    assert!(text.contains("audience acme"), "{text}");
    assert!(text.contains("KB: pages labelled faq"), "{text}");
}

#[test]
fn constructor_validates() {
    let err = Policy::new(
        vec![
            audience("acme", &["acme.com"], &["KB"]),
            audience("ACME", &["b.com"], &["KB"]),
        ],
        vec![],
    )
    .unwrap_err();
    assert!(matches!(
        err,
        PolicyError::DuplicateAudience {
            audience: 1,
            first: 0,
            ..
        }
    ));
    let err = Policy::new(vec![audience("acme", &[], &["KB"])], vec![]).unwrap_err();
    assert!(matches!(err, PolicyError::NoDomains { audience: 0, .. }));
    let err = Policy::new(vec![audience("acme", &["acme.com"], &[])], vec![]).unwrap_err();
    assert!(matches!(err, PolicyError::NoSpaces { audience: 0, .. }));
    assert_eq!(err.audience_index(), 0);
}
