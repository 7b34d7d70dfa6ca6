//! Call budget (ARCHITECTURE.md, "Performance budget"), counted by the simulator's `/_sim/stats`: for 10,000
//! people in 25 domains a first apply stays within 10% of the batch lower bound, and a no-op
//! plan costs at most ⌈n/100⌉ + ⌈n/250⌉ + a small constant — for the unlicensed delivery and
//! for the group delivery. The constant (5) covers the per-plan reads that do not grow with n:
//! group look-ups, space ids and permissions of the audiences' spaces, and the read of the
//! unlicensed-view switches (`GET /wiki/rest/api/space?expand=permissions`, one call per 25
//! spaces: 1 here).

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
    assert_eq!(
        sim_calls(&h).get("GET /wiki/rest/api/space"),
        Some(&1),
        "the switches of both spaces are read in one call"
    );
}

/// Group delivery: one apply invites everyone (batches of 100), waits for the invitations to
/// complete and adds each person to the audience's group — Confluence adds group
/// members one account id per call, so the memberships are part of the lower bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_people_in_25_domains_by_group() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig {
        users: 400,
        domains: DOMAINS,
        ..SimConfig::default()
    })
    .await;
    let domains: Vec<String> = (0..DOMAINS).map(customer_domain).collect();
    // People not on the site yet (people already on it without an id kbgate knows cannot be
    // added by any API kbgate uses; the plan names them instead).
    let people: Vec<String> = (0..PEOPLE)
        .map(|i| format!("member{i}@{}", domains[i % DOMAINS]))
        .collect();
    assert!(
        people.iter().all(|e| account_of(&h, e).is_none()),
        "the generated site has none of them"
    );
    add_people(&*t.store, &people).await;
    let domain_refs: Vec<&str> = domains.iter().map(String::as_str).collect();
    let spaces = ["KB", "API"];
    let p = policy(
        vec![aud("customers", &domain_refs, &spaces, Delivery::Group)],
        &[],
    );
    let r = reconciler(&h, t.store.clone(), p, opts());

    h.reset_stats();
    let plan = r.plan().await.unwrap();
    let by_kind = plan.counts_by_kind();
    let kind = |k: &'static str| by_kind.get(&("customers".to_string(), k)).copied();
    assert_eq!(kind("invite"), Some(PEOPLE), "{plan}");
    assert_eq!(kind("create-group"), Some(1));
    assert_eq!(kind("grant-group-read"), Some(spaces.len()));
    // One apply: it invites, waits for the invitations to complete (1 s on the simulator),
    // and adds everyone to the group.
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    assert!(s.awaiting.is_empty(), "{s}");
    let first = h.stats().total;
    assert_eq!(group_member_emails(&h, "kbgate-customers").len(), PEOPLE);

    let n = PEOPLE as u64;
    // Batch lower bound of getting 10,000 people into the group:
    // - who lacks access: one access check per 100 emails;
    // - the invitations: one invite-by-email per 100 emails;
    // - seeing them complete: one more access check per 100 emails (apply polls only those
    //   not seen yet);
    // - the invitees' account ids: Confluence has no batch lookup of ids by email, so the
    //   cheapest way is to list the default product-access group they join, 200 members a
    //   page (membersByGroupId's cap);
    // - one call per single-object write: the group, a read permission per space, and one
    //   membership per person.
    let writes = 1 + spaces.len() as u64 + n;
    let lower = 3 * n.div_ceil(100) + n.div_ceil(200) + writes;
    eprintln!(
        "group delivery, one apply (plan, apply with its wait): {first} calls (lower bound \
         {lower}, {:.2}% over); by endpoint {:?}",
        100.0 * (first as f64 / lower as f64 - 1.0),
        sim_calls(&h)
    );
    assert!(
        first as f64 <= lower as f64 * 1.10,
        "{first} > 1.1 × {lower}"
    );

    h.reset_stats();
    let plan = r.plan().await.unwrap();
    assert!(plan.converged(), "{plan}");
    let noop = h.stats().total;
    let bound = n.div_ceil(100) + n.div_ceil(250) + 5;
    eprintln!(
        "group delivery, no-op plan: {noop} calls (bound {bound}); by endpoint {:?}",
        sim_calls(&h)
    );
    assert!(noop <= bound, "{noop} > {bound}");
}
