//! Call budget (DESIGN.md §8, issue 5), counted by the simulator's `/_sim/stats`: for 10,000
//! people in 25 domains a first apply stays within 10% of the batch lower bound, and a no-op
//! plan costs at most ⌈n/100⌉ + ⌈n/250⌉ + a small constant.

mod common;

use common::*;
use confluence_sim::SimConfig;
use confluence_sim::generator::customer_domain;
use kbgate_policy::Delivery;
use kbgate_provision::NoProgress;

const PEOPLE: usize = 10_000;
const DOMAINS: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_people_in_25_domains() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig {
        users: 400,
        domains: DOMAINS,
        ..SimConfig::default()
    })
    .await;
    let domains: Vec<String> = (0..DOMAINS).map(customer_domain).collect();
    // The site's own customers of these domains, plus new people up to 10,000.
    let mut people: Vec<String> = h.state().read(|s| {
        s.users
            .values()
            .map(|u| u.email.clone())
            .filter(|e| domains.iter().any(|d| e.ends_with(&format!("@{d}"))))
            .collect()
    });
    let existing = people.len();
    let mut i = 0;
    while people.len() < PEOPLE {
        people.push(format!("person{i}@{}", domains[i % DOMAINS]));
        i += 1;
    }
    add_people(&*t.store, &people).await;
    let domain_refs: Vec<&str> = domains.iter().map(String::as_str).collect();
    let p = policy(
        vec![aud(
            "customers",
            &domain_refs,
            &["KB", "API"],
            Delivery::Unlicensed,
        )],
        &[],
    );
    let r = reconciler(&h, t.store.clone(), p, opts());

    h.reset_stats();
    let plan = r.plan().await.unwrap();
    let writes = plan.actions.len() as u64;
    assert!(
        writes as usize >= PEOPLE - existing,
        "{}",
        plan.actions.len()
    );
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    let first = h.stats().total;
    let n = PEOPLE as u64;
    // Batch lower bound: one access check per 100 emails, plus one call per single-object
    // write (Jira user creation has no batch form; switches are one call each).
    let lower = n.div_ceil(100) + writes;
    eprintln!(
        "first apply: {first} calls (lower bound {lower}, {:.2}%), {existing} people already on the site; by endpoint {:?}",
        100.0 * (first as f64 / lower as f64 - 1.0),
        sim_calls(&h)
    );
    assert!(
        first as f64 <= lower as f64 * 1.10,
        "{first} > 1.1 × {lower}"
    );

    h.reset_stats();
    let plan = r.plan().await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    let noop = h.stats().total;
    let bound = n.div_ceil(100) + n.div_ceil(250) + 5;
    eprintln!(
        "no-op plan: {noop} calls (bound {bound}); by endpoint {:?}",
        sim_calls(&h)
    );
    assert!(noop <= bound, "{noop} > {bound}");
}
