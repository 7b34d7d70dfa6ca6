//! Property tests: no generated email outside the audience domains is ever granted.

use chrono::{TimeZone, Utc};
use kbgate_policy::{Audience, AudienceName, Delivery, Domain, Email, Policy, SpaceKey};
use proptest::prelude::*;

const AUDIENCE_DOMAINS: [&str; 3] = ["acme.com", "acme.co.uk", "bücher.de"];

fn policy(include_subdomains: bool) -> Policy {
    Policy::new(
        vec![Audience {
            name: AudienceName::parse("acme").unwrap(),
            domains: AUDIENCE_DOMAINS
                .iter()
                .map(|s| Domain::parse(s).unwrap())
                .collect(),
            include_subdomains,
            spaces: vec![SpaceKey::parse("KB").unwrap()],
            labels: vec![],
            expires: None,
            delivery: Delivery::Portal,
        }],
        vec![Domain::parse("gmail.com").unwrap()],
    )
    .unwrap()
}

/// The reference rule, written independently of the crate: the granted domains, as ASCII.
fn truly_inside(domain_ascii: &str, include_subdomains: bool) -> bool {
    ["acme.com", "acme.co.uk", "xn--bcher-kva.de"]
        .iter()
        .any(|a| {
            domain_ascii == *a || (include_subdomains && domain_ascii.ends_with(&format!(".{a}")))
        })
}

fn local_part() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._%+-]{1,20}",
        "[a-z]{1,8}\\+[a-z@.\"]{0,8}",
        ".{0,12}",
        Just("\"a@acme.com\"".to_owned()),
        Just("a@acme.com".to_owned()),
    ]
}

/// Characters that look like Latin letters of "acme"/"bucher".
fn lookalike() -> impl Strategy<Value = char> {
    prop::sample::select(vec![
        '\u{430}', '\u{441}', '\u{43c}', '\u{435}', '\u{3bf}', '\u{585}', '\u{1d00}', 'ａ', 'ɑ',
        'ḿ', 'ċ', 'é', '\u{200b}', '\u{ad}', 'ı', 'ü', 'u', '0', '1', 'l',
    ])
}

/// Random domains and near misses of the audience domains.
fn domain() -> impl Strategy<Value = String> {
    let base = prop::sample::select(AUDIENCE_DOMAINS.to_vec()).prop_map(str::to_owned);
    prop_oneof![
        // fully random
        "[a-z0-9.-]{1,30}",
        ".{1,20}",
        // prefixes, suffixes, extra labels
        (base.clone(), "[a-z0-9-]{1,6}").prop_map(|(b, p)| format!("{p}{b}")),
        (base.clone(), "[a-z0-9-]{1,6}").prop_map(|(b, s)| format!("{b}{s}")),
        (base.clone(), "[a-z0-9-]{1,6}").prop_map(|(b, s)| format!("{b}.{s}")),
        (base.clone(), "[a-z0-9-]{1,6}").prop_map(|(b, s)| format!("{s}.{b}")),
        (base.clone(), "[a-z]{1,6}\\.[a-z]{2,3}").prop_map(|(b, s)| format!("{b}.{s}")),
        (base.clone(), "[a-z]{1,6}\\.[a-z]{2,3}").prop_map(|(b, s)| format!("{b}@{s}")),
        (base.clone(), "[a-z]{1,6}\\.[a-z]{2,3}").prop_map(|(b, s)| format!("{s}@{b}")),
        base.clone().prop_map(|b| format!("{b}.")),
        base.clone().prop_map(|b| format!(".{b}")),
        base.clone().prop_map(|b| format!("[{b}]")),
        base.clone().prop_map(|b| b.replace('.', "..")),
        base.clone().prop_map(|b| b.to_uppercase()),
        // one character replaced by a look-alike, or one character inserted or dropped
        (base.clone(), any::<prop::sample::Index>(), lookalike()).prop_map(|(b, i, c)| {
            let mut chars: Vec<char> = b.chars().collect();
            let at = i.index(chars.len());
            chars[at] = c;
            chars.into_iter().collect()
        }),
        (base.clone(), any::<prop::sample::Index>(), lookalike()).prop_map(|(b, i, c)| {
            let mut chars: Vec<char> = b.chars().collect();
            let at = i.index(chars.len() + 1);
            chars.insert(at, c);
            chars.into_iter().collect()
        }),
        (base, any::<prop::sample::Index>()).prop_map(|(b, i)| {
            let mut chars: Vec<char> = b.chars().collect();
            let at = i.index(chars.len());
            chars.remove(at);
            chars.into_iter().collect()
        }),
    ]
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the input, a grant implies the email's canonical domain is an audience domain
    /// (or a subdomain of one, when allowed), and the raw input ended in exactly that domain
    /// after a single `@`.
    #[test]
    fn nothing_outside_the_audience_is_granted(
        local in local_part(),
        dom in domain(),
        subs in any::<bool>(),
    ) {
        let p = policy(subs);
        let raw = format!("{local}@{dom}");
        if let Ok(email) = Email::parse(&raw) {
            let granted = p.viewer(&email, now()).is_ok();
            let inside = truly_inside(email.domain().as_str(), subs);
            prop_assert_eq!(granted, inside, "raw {:?} parsed as {}", raw, email);
            if granted {
                prop_assert_eq!(raw.matches('@').count(), 1);
                prop_assert!(!raw.contains('"'));
                prop_assert!(!raw.ends_with('.'));
                // The canonical domain round-trips: parsing it again gives the same domain.
                let again = Domain::parse(email.domain().as_str()).unwrap();
                prop_assert_eq!(&again, email.domain());
            }
        }
    }

    /// Random well-formed domains outside the audience are never granted, with or without
    /// subdomains, and denied domains never are.
    #[test]
    fn random_domains_are_refused(
        labels in prop::collection::vec("[a-z0-9]{1,10}", 2..5),
        subs in any::<bool>(),
    ) {
        let p = policy(subs);
        let dom = labels.join(".");
        let email = Email::parse(&format!("user@{dom}"));
        prop_assume!(email.is_ok());
        let email = email.unwrap();
        let granted = p.viewer(&email, now()).is_ok();
        prop_assert_eq!(granted, truly_inside(email.domain().as_str(), subs));
        let denied = Email::parse(&format!("user@{dom}.gmail.com")).unwrap();
        prop_assert!(p.viewer(&denied, now()).is_err());
    }
}
