//! Faults: 5xx and 429 storms, and a run killed in the middle; the journal makes the next
//! run finish the job without inviting anyone twice.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use confluence_sim::model::UserKind;
use confluence_sim::{Knobs, RateLimit, SimConfig};
use kbgate_policy::Delivery;
use kbgate_provision::{
    Action, ApplyProgress, NoProgress, Op, Outcome, Plan, ReconcileOptions, journal_state,
};

fn invites(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::Invite { email } => Some(email.clone()),
            _ => None,
        })
        .collect()
}

fn setup_policy() -> kbgate_policy::Policy {
    policy(
        vec![
            aud("acme", &["acme.com"], &["KB"], Delivery::Group),
            aud(
                "initech",
                &["initech.io"],
                &["KB", "API"],
                Delivery::Unlicensed,
            ),
        ],
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_under_5xx_and_429_storms_without_duplicate_invites() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig {
        users: 100,
        ..SimConfig::default()
    })
    .await;
    let group_people = emails("g", "acme.com", 120);
    let unl_people = emails("u", "initech.io", 60);
    add_people(&*t.store, &group_people).await;
    add_people(&*t.store, &unl_people).await;
    h.set_knobs(Knobs {
        error_rate: 0.2,
        rate_limit: Some(RateLimit {
            per_second: 150,
            burst: 15,
        }),
        ..Knobs::default()
    });
    // The simulator never acts on a request it fails, so an invitation that got a 5xx may be
    // sent again at once; the check below proves none goes to someone already invited.
    let o = ReconcileOptions {
        invite_retry_after: chrono::Duration::zero(),
        ..opts()
    };
    let r = reconciler(&h, t.store.clone(), setup_policy(), o);
    let mut failures_seen = 0;
    let mut done = false;
    for round in 0..25 {
        if round >= 3 {
            settle_invites(&h);
        }
        let received = invited_or_present(&h);
        let plan = r.plan().await.expect("reads retry through the faults");
        for e in invites(&plan) {
            assert!(
                !received.contains(&e),
                "round {round}: {e} would be invited twice"
            );
        }
        if plan.is_empty() && round >= 3 {
            done = true;
            break;
        }
        let s = r.apply(&plan, &NoProgress).await.unwrap();
        failures_seen += s.failed;
    }
    assert!(done, "did not converge");
    let stats = h.stats();
    assert!(
        stats.errors_injected > 0 && stats.rate_limited > 0,
        "{stats:?}"
    );
    assert!(failures_seen > 0, "writes hit injected 5xx and were redone");
    h.set_knobs(Knobs::default());
    assert!(r.plan().await.unwrap().is_empty());
    assert_eq!(
        group_member_emails(&h, "kbgate-acme"),
        group_people.iter().cloned().collect::<BTreeSet<_>>()
    );
    for e in &unl_people {
        assert_eq!(
            h.state().read(|s| s.user_by_email(e).map(|u| u.kind)),
            Some(UserKind::Unlicensed),
            "{e}"
        );
    }
}

/// Signals after `n` actions of one kind have finished.
struct StopAfter {
    kind: &'static str,
    n: usize,
    seen: AtomicUsize,
    notify: tokio::sync::Notify,
}

impl StopAfter {
    fn new(kind: &'static str, n: usize) -> Self {
        StopAfter {
            kind,
            n,
            seen: AtomicUsize::new(0),
            notify: tokio::sync::Notify::new(),
        }
    }
}

impl ApplyProgress for StopAfter {
    fn finished(&self, action: &Action, _: &Outcome) {
        if action.op.kind() == self.kind && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            self.notify.notify_one();
        }
    }
}

/// Runs `apply` and drops it (a kill) once `stop` fires.
async fn apply_killed(r: &kbgate_provision::Reconciler, plan: &Plan, stop: &StopAfter) {
    tokio::select! {
        res = r.apply(plan, stop) => panic!("apply finished before the kill: {res:?}"),
        _ = stop.notify.notified() => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_apply_is_resumed_from_the_journal() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    let group_people = emails("g", "acme.com", 250);
    let unl_people = emails("u", "initech.io", 120);
    add_people(&*t.store, &group_people).await;
    add_people(&*t.store, &unl_people).await;
    // Latency keeps several calls in flight at the moment of the kill.
    h.set_knobs(Knobs {
        latency_ms: 15,
        ..Knobs::default()
    });
    let r = reconciler(&h, t.store.clone(), setup_policy(), opts());

    // Kill 1: in the middle of creating site users.
    let plan = r.plan().await.unwrap();
    apply_killed(&r, &plan, &StopAfter::new("create-site-user", 30)).await;
    let pending = t
        .store
        .journal_list(Some(journal_state::PENDING))
        .await
        .unwrap();
    assert!(!pending.is_empty(), "calls were in flight at the kill");

    // Kill 2: after the first batch of invitations.
    let plan = r.plan().await.unwrap();
    assert_eq!(
        invites(&plan).len(),
        250,
        "nobody was invited before the second run"
    );
    assert!(
        plan.actions
            .iter()
            .all(|a| !matches!(a.op, Op::CreateGroup { .. })),
        "the group exists: {plan}"
    );
    apply_killed(&r, &plan, &StopAfter::new("invite", 100)).await;
    let journal = t.store.journal_list(None).await.unwrap();
    let unsure: BTreeSet<String> = journal
        .iter()
        .filter(|j| j.kind == "invite" && j.state == journal_state::PENDING)
        .map(|j| j.target.clone())
        .collect();
    assert!(
        !unsure.is_empty(),
        "some invitations were in flight at the kill"
    );

    // Resume: nothing is invited again while the outcome of an invitation is unknown.
    settle_invites(&h);
    let received = invited_or_present(&h);
    let plan = r.plan().await.unwrap();
    assert!(invites(&plan).is_empty(), "{plan}");
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");

    // A day later, invitations that never reached the site are sent; no one gets a second.
    let later = ReconcileOptions {
        now: Some(chrono::Utc::now() + chrono::Duration::hours(25)),
        ..opts()
    };
    let r = reconciler(&h, t.store.clone(), setup_policy(), later);
    let plan = r.plan().await.unwrap();
    for e in invites(&plan) {
        assert!(unsure.contains(&e), "{e} was not an unsure invitation");
        assert!(!received.contains(&e), "{e} would be invited twice");
    }
    r.apply(&plan, &NoProgress).await.unwrap();
    settle_invites(&h);
    let (last, s) = r.converge(&NoProgress, 5).await.unwrap();
    assert!(last.is_empty(), "{last}");
    assert_eq!(s.failed, 0, "{s}");
    assert_eq!(
        group_member_emails(&h, "kbgate-acme"),
        group_people.iter().cloned().collect::<BTreeSet<_>>()
    );
    for e in &unl_people {
        assert!(account_of(&h, e).is_some(), "{e}");
    }
    // Every invitation journal entry ended up settled.
    let journal = t
        .store
        .journal_list(Some(journal_state::PENDING))
        .await
        .unwrap();
    assert!(journal.iter().all(|j| j.kind != "invite"
        || !group_people.contains(&j.target)
        || unsure.contains(&j.target)));
}
