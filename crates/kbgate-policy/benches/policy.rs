//! Policy checks per second (a benchmark, not a test): `cargo bench -p kbgate-policy`.
//!
//! A policy of 25 audiences (one domain each, some with subdomains, some label-filtered) and a
//! deny list; emails cycle through members, subdomain members, strangers and denied addresses.

use std::hint::black_box;
use std::time::Instant;

use chrono::Utc;
use kbgate_policy::{Audience, AudienceName, Delivery, Domain, Email, Label, Policy, SpaceKey};

fn main() {
    let audiences: Vec<Audience> = (0..25)
        .map(|i| Audience {
            name: AudienceName::parse(&format!("customer{i}")).expect("valid name"),
            domains: vec![Domain::parse(&format!("customer{i}.com")).expect("valid domain")],
            include_subdomains: i % 3 == 0,
            spaces: vec![
                SpaceKey::parse("KB").expect("valid key"),
                SpaceKey::parse(&format!("C{i}")).expect("valid key"),
            ],
            labels: if i % 4 == 0 {
                vec![Label::parse("public").expect("valid label")]
            } else {
                vec![]
            },
            expires: None,
            delivery: Delivery::Portal,
        })
        .collect();
    let deny = vec![Domain::parse("gmail.com").expect("valid domain")];
    let policy = Policy::new(audiences, deny).expect("valid policy");
    let emails: Vec<Email> = (0..1000)
        .map(|i| {
            let addr = match i % 4 {
                0 => format!("user{i}@customer{}.com", i % 25),
                1 => format!("user{i}@eu.customer{}.com", (i % 9) * 3),
                2 => format!("user{i}@stranger{i}.org"),
                _ => format!("user{i}@gmail.com"),
            };
            Email::parse(&addr).expect("valid email")
        })
        .collect();
    let now = Utc::now();

    for (label, rounds) in [("warm-up", 200), ("measured", 2000)] {
        let start = Instant::now();
        let mut granted = 0usize;
        for _ in 0..rounds {
            for e in &emails {
                if policy.viewer(black_box(e), now).is_ok() {
                    granted += 1;
                }
            }
        }
        let n = rounds * emails.len();
        let secs = start.elapsed().as_secs_f64();
        if label == "measured" {
            println!(
                "Policy::viewer: {n} checks in {secs:.3} s = {:.0} checks/s ({granted} granted)",
                n as f64 / secs
            );
        }
    }

    let start = Instant::now();
    let mut n = 0usize;
    for _ in 0..200 {
        for e in &emails {
            black_box(policy.decide(black_box(e), now));
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "Policy::decide: {n} decisions in {secs:.3} s = {:.0} decisions/s",
        n as f64 / secs
    );

    let raw: Vec<String> = emails.iter().map(|e| e.as_str().to_owned()).collect();
    let start = Instant::now();
    let mut n = 0usize;
    for _ in 0..50 {
        for r in &raw {
            black_box(Email::parse(black_box(r)).is_ok());
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "Email::parse: {n} parses in {secs:.3} s = {:.0} parses/s",
        n as f64 / secs
    );
}
