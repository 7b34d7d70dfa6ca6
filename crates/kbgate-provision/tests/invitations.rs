//! Group delivery in one `apply`: apply waits (a bounded, configurable time) for the
//! invitations it sent to complete and adds the invitees to the group in the same run; what
//! does not complete in time is listed as waiting, with the reason, never as a grant.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use confluence_sim::SimConfig;
use kbgate_policy::Delivery;
use kbgate_provision::{AwaitState, NoProgress, ReconcileOptions};

const CHECK: &str = "POST /wiki/api/v2/user/access/check-access-by-email";
const INVITE: &str = "POST /wiki/api/v2/user/access/invite-by-email";

fn group_policy() -> kbgate_policy::Policy {
    policy(
        vec![aud("acme", &["acme.com"], &["KB"], Delivery::Group)],
        &[],
    )
}

/// Invitations complete in 1 s of the simulator's clock (which runs with real time): well
/// within the wait, so one apply invites, waits, and adds everyone to the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_audience_converges_in_one_apply() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    let people = emails("one", "acme.com", 250);
    add_people(&*t.store, &people).await;
    let o = ReconcileOptions {
        // Generous: the run ends as soon as everyone has arrived, not at the bound.
        invite_wait: Duration::from_secs(60),
        ..opts()
    };
    let r = reconciler(&h, t.store.clone(), group_policy(), o);
    let plan = r.plan().await.unwrap();
    h.reset_stats();
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    assert!(s.awaiting.is_empty(), "{s}");
    assert_eq!(s.invitations_completed, people.len(), "{s}");
    // create-group + grant + 250 invitations + 250 memberships.
    assert_eq!(s.done, 2 + 2 * people.len(), "{s}");
    assert_eq!(
        group_member_emails(&h, "kbgate-acme"),
        people.iter().cloned().collect::<BTreeSet<_>>()
    );
    let calls = sim_calls(&h);
    let checks = calls.get(CHECK).copied().unwrap_or(0);
    eprintln!(
        "one apply for 250 invitees: {} calls, {checks} access checks while waiting; by endpoint {calls:?}",
        h.stats().total
    );
    // Each poll checks only those not seen yet, 100 a call: at least one full round (3
    // calls), and a handful of rounds at most (the first pause is 0.5 s, invitations take 1 s).
    assert!((3..=12).contains(&checks), "{checks} access checks");
    assert_eq!(calls.get(INVITE), Some(&3));
    let plan = r.plan().await.unwrap();
    assert!(plan.converged(), "{plan}");
}

/// Invitations that take longer than the wait: apply lists the invitees as waiting, with the
/// reason, grants them nothing, and the plan stays unconverged until the next apply adds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_slower_than_the_wait_are_listed_as_waiting() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    h.state()
        .write(|s| s.invite_delay = Some(chrono::Duration::hours(1)));
    let people = emails("slow", "acme.com", 120);
    add_people(&*t.store, &people).await;
    let o = ReconcileOptions {
        invite_wait: Duration::from_millis(1500),
        ..opts()
    };
    let r = reconciler(&h, t.store.clone(), group_policy(), o);
    let plan = r.plan().await.unwrap();
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    assert_eq!(s.invitations_completed, 0, "{s}");
    // The group, its read and the invitations are done; no membership is claimed.
    assert_eq!(s.done, 2 + people.len(), "{s}");
    let waiting: BTreeSet<String> = s.awaiting.iter().map(|(e, _)| e.clone()).collect();
    assert_eq!(waiting, people.iter().cloned().collect(), "{s}");
    assert!(
        s.awaiting
            .iter()
            .all(|(_, why)| why.contains("did not complete within 1.5s")),
        "{s}"
    );
    assert!(group_member_emails(&h, "kbgate-acme").is_empty());
    let text = s.to_string();
    assert!(
        text.contains("120 person(s) wait on an invitation"),
        "{text}"
    );

    // The plan: nothing to do now, not converged, nobody invited twice.
    let plan = r.plan().await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    assert!(!plan.converged(), "{plan}");
    assert_eq!(plan.awaiting.len(), people.len());
    assert!(plan.awaiting.iter().all(|w| w.state == AwaitState::Sent));
    assert!(
        plan.next_retry().is_none(),
        "accepted invitations are not re-sent"
    );

    // Once the invitations complete, the next apply adds everyone.
    h.state().advance_clock(chrono::Duration::hours(2));
    let plan = r.plan().await.unwrap();
    assert_eq!(plan.actions.len(), people.len(), "{plan}");
    assert!(plan.awaiting.is_empty(), "{plan}");
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!((s.done, s.failed), (people.len(), 0), "{s}");
    assert!(r.plan().await.unwrap().converged());
    assert_eq!(
        group_member_emails(&h, "kbgate-acme"),
        people.iter().cloned().collect::<BTreeSet<_>>()
    );
}

/// Some invitations complete within the wait and some do not: the first are added in the same
/// run, the others are listed as waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_completed_wait_adds_those_that_arrived() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    let fast = emails("fast", "acme.com", 30);
    let slow = emails("late", "acme.com", 20);
    add_people(&*t.store, &fast).await;
    add_people(&*t.store, &slow).await;
    // `late…` sort after `fast…`: the plan's invitations go in email order, one batch of 50.
    // The simulator completes them all at the same time, so make the late ones late by
    // inviting them out of band first, with a long delay (an invitation already in flight is
    // not invited twice by Confluence; the simulator ignores the second).
    h.state()
        .write(|s| s.invite_delay = Some(chrono::Duration::hours(1)));
    let c = client(&h);
    c.invite_by_email(&slow).await.unwrap();
    h.state().write(|s| s.invite_delay = None);
    let o = ReconcileOptions {
        invite_wait: Duration::from_secs(4),
        ..opts()
    };
    let r = reconciler(&h, t.store.clone(), group_policy(), o);
    let plan = r.plan().await.unwrap();
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    assert_eq!(s.invitations_completed, fast.len(), "{s}");
    let waiting: BTreeSet<String> = s.awaiting.iter().map(|(e, _)| e.clone()).collect();
    assert_eq!(waiting, slow.iter().cloned().collect(), "{s}");
    assert_eq!(
        group_member_emails(&h, "kbgate-acme"),
        fast.iter().cloned().collect::<BTreeSet<_>>()
    );
}
