//! The explainer and the gate must never disagree: over random policies (audiences, domains,
//! subdomain flags, expiries, deliveries, labels, deny rules), random pages (space, labels,
//! restrictions on the page and its ancestors) and random viewers, `Policy::explain`'s
//! verdict equals `Policy::viewer` + `Viewer::may_read_page` — the gate the portal applies.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use kbgate_policy::{
    AncestorFacts, Audience, AudienceName, Delivery, Domain, Email, Label, Outcome, PageFacts,
    Policy, SpaceKey,
};
use proptest::prelude::*;

const DOMAINS: [&str; 6] = [
    "acme.com",
    "eu.acme.com",
    "x.eu.acme.com",
    "globex.io",
    "evilacme.com",
    "gmail.com",
];
const SPACES: [&str; 3] = ["KB", "DOCS", "HR"];
const LABELS: [&str; 3] = ["public", "beta", "internal"];

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
}

fn pick<T: Clone + std::fmt::Debug + 'static>(all: &[T]) -> impl Strategy<Value = Vec<T>> {
    prop::sample::subsequence(all.to_vec(), 0..=all.len())
}

/// Domains, include_subdomains, spaces, labels, expiry (days from today), delivery index.
type RawAudience = (
    Vec<&'static str>,
    bool,
    Vec<&'static str>,
    Vec<&'static str>,
    Option<i64>,
    usize,
);

fn audience() -> impl Strategy<Value = RawAudience> {
    (
        prop::sample::subsequence(DOMAINS.to_vec(), 1..=3),
        any::<bool>(),
        prop::sample::subsequence(SPACES.to_vec(), 1..=3),
        pick(&LABELS),
        prop::option::of(-2i64..=2),
        0usize..4,
    )
}

fn policy() -> impl Strategy<Value = Policy> {
    (prop::collection::vec(audience(), 0..4), pick(&DOMAINS)).prop_map(|(auds, deny)| {
        let audiences = auds
            .into_iter()
            .enumerate()
            .map(
                |(i, (domains, subs, spaces, labels, expires, delivery))| Audience {
                    name: AudienceName::parse(&format!("a{i}")).unwrap(),
                    domains: domains.iter().map(|d| Domain::parse(d).unwrap()).collect(),
                    include_subdomains: subs,
                    spaces: spaces.iter().map(|s| SpaceKey::parse(s).unwrap()).collect(),
                    labels: labels.iter().map(|l| Label::parse(l).unwrap()).collect(),
                    expires: expires.map(|d| today() + Duration::days(d)),
                    delivery: Delivery::ALL[delivery],
                },
            )
            .collect();
        let deny = deny.iter().map(|d| Domain::parse(d).unwrap()).collect();
        Policy::new(audiences, deny).unwrap()
    })
}

fn page() -> impl Strategy<Value = PageFacts> {
    (
        prop::sample::select(SPACES.to_vec()),
        pick(&LABELS),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 0..4),
    )
        .prop_map(
            |(space, labels, restricted, effective, ancestors)| PageFacts {
                id: "1001".into(),
                title: "Page".into(),
                space_key: SpaceKey::parse(space).unwrap(),
                labels: labels.iter().map(|l| Label::parse(l).unwrap()).collect(),
                restricted,
                // The store's flag follows the page's own restriction; it may also be set alone
                // (inherited, or fail-closed).
                effective_restricted: restricted || effective,
                ancestors: ancestors
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| AncestorFacts {
                        id: format!("90{i}"),
                        title: format!("Ancestor {i}"),
                        effective_restricted: r,
                    })
                    .collect(),
            },
        )
}

fn email() -> impl Strategy<Value = Email> {
    (prop::sample::select(DOMAINS.to_vec()), "[a-z]{1,6}")
        .prop_map(|(d, local)| Email::parse(&format!("{local}@{d}")).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn explainer_agrees_with_the_gate(
        policy in policy(),
        page in page(),
        email in email(),
        hour in 0u32..24,
        day in -3i64..=3,
    ) {
        let now = Utc.from_utc_datetime(&(today() + Duration::days(day)).and_hms_opt(hour, 0, 0).unwrap());
        // The gate, exactly as the portal applies it (library.rs: the page's effective flag,
        // then any ancestor's).
        let gate = policy.viewer(&email, now).is_ok_and(|v| {
            let restricted = page.effective_restricted
                || page.ancestors.iter().any(|a| a.effective_restricted);
            v.may_read_page(&page.space_key, &page.labels, restricted)
        });
        let explained = policy.explain(&email, Some(&page), now);
        prop_assert_eq!(explained.allowed, gate, "{}", explained);
        let last = explained.steps.last().unwrap();
        prop_assert_eq!(last.stage, "verdict");
        prop_assert_eq!(last.outcome == Outcome::Pass, gate);

        // Without a page: the portal lets the email in exactly when the gate issues a Viewer.
        let signin = policy.explain(&email, None, now);
        prop_assert_eq!(signin.allowed, policy.viewer(&email, now).is_ok(), "{}", signin);

        // "Who can read": an allowed email's domain is in an audience that reads the page.
        let who = policy.who_can_read(&page, now);
        if gate {
            prop_assert!(who.audiences.iter().any(|a| a.reads
                && a.domains.iter().any(|d| d == email.domain()
                    || (a.include_subdomains && email.domain().is_subdomain_of(d)))));
        }
        if page.effective_restricted || page.ancestors.iter().any(|a| a.effective_restricted) {
            prop_assert!(who.audiences.iter().all(|a| !a.reads));
        }
    }
}

#[test]
fn names_the_restricted_ancestor_and_the_failing_label() {
    let policy = Policy::new(
        vec![Audience {
            name: AudienceName::parse("acme").unwrap(),
            domains: vec![Domain::parse("acme.com").unwrap()],
            include_subdomains: true,
            spaces: vec![SpaceKey::parse("KB").unwrap()],
            labels: vec![Label::parse("public").unwrap()],
            expires: None,
            delivery: Delivery::Portal,
        }],
        vec![],
    )
    .unwrap();
    let email = Email::parse("alice@eu.acme.com").unwrap();
    let mut page = PageFacts {
        id: "7".into(),
        title: "Setup".into(),
        space_key: SpaceKey::parse("KB").unwrap(),
        labels: vec![Label::parse("public").unwrap()],
        restricted: false,
        effective_restricted: true,
        ancestors: vec![
            AncestorFacts {
                id: "1".into(),
                title: "Root".into(),
                effective_restricted: false,
            },
            AncestorFacts {
                id: "3".into(),
                title: "Secret".into(),
                effective_restricted: true,
            },
        ],
    };
    let e = policy.explain(&email, Some(&page), Utc::now());
    assert!(!e.allowed);
    let text = e.to_string();
    assert!(text.contains("subdomain of acme.com"), "{text}");
    assert!(
        text.contains("inherits a read restriction from ancestor 3 (Secret)"),
        "{text}"
    );
    page.ancestors[1].effective_restricted = false;
    page.effective_restricted = false;
    page.labels = vec![Label::parse("beta").unwrap()];
    let e = policy.explain(&email, Some(&page), Utc::now());
    assert!(!e.allowed);
    let labels = e.steps.iter().find(|s| s.stage == "labels").unwrap();
    assert_eq!(labels.outcome, Outcome::Fail);
    assert!(
        labels.detail.contains("pages labelled public"),
        "{}",
        labels.detail
    );
    page.labels.push(Label::parse("public").unwrap());
    assert!(policy.explain(&email, Some(&page), Utc::now()).allowed);
}
