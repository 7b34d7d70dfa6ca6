//! Faults: 5xx and 429 storms, and a run killed in the middle; the journal makes the next
//! run finish the job without inviting anyone twice.

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;

use common::*;
use confluence_sim::model::UserKind;
use confluence_sim::{Knobs, RateLimit, SimConfig};
use kbgate_policy::Delivery;
use kbgate_provision::{
    Action, ApplyProgress, AwaitState, NoProgress, Op, Outcome, Plan, ReconcileOptions,
    journal_state,
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

/// The storm test's policy: the group and unlicensed audiences, plus a guest audience.
fn storm_policy() -> kbgate_policy::Policy {
    policy(
        vec![
            aud("acme", &["acme.com"], &["KB"], Delivery::Group),
            aud(
                "initech",
                &["initech.io"],
                &["KB", "API"],
                Delivery::Unlicensed,
            ),
            aud("globex", &["globex.co.uk"], &["KB"], Delivery::Guest),
        ],
        &[],
    )
}

fn creations(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::CreateSiteUser { email } => Some(email.clone()),
            _ => None,
        })
        .collect()
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
    let guest_people = emails("p", "globex.co.uk", 40);
    add_people(&*t.store, &group_people).await;
    add_people(&*t.store, &unl_people).await;
    add_people(&*t.store, &guest_people).await;
    h.set_knobs(Knobs {
        error_rate: 0.2,
        // Low enough that the apply always outruns it, however busy the machine (at 150/s a
        // slow run could finish without a single 429, and the storm went untested).
        rate_limit: Some(RateLimit {
            per_second: 50,
            burst: 5,
        }),
        ..Knobs::default()
    });
    // The simulator never acts on a request it fails, so an invitation that got a 5xx may be
    // sent again at once; the check below proves none goes to someone already invited.
    let o = ReconcileOptions {
        invite_retry_after: chrono::Duration::zero(),
        ..opts()
    };
    let r = reconciler(&h, t.store.clone(), storm_policy(), o);
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
        // Nobody already on the site is created again (guests and unlicensed people).
        for e in creations(&plan) {
            assert!(
                account_of(&h, &e).is_none(),
                "round {round}: {e} is on the site and would be created twice"
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
    // Every guest is a guest of KB, with read on KB and nothing else, and none was invited
    // by email (an invitation would have made them a licensed user).
    for e in &guest_people {
        let id = account_of(&h, e).expect("guest on the site");
        let (kind, space) = h
            .state()
            .read(|s| (s.users[&id].kind, s.guest_spaces.get(&id).cloned()));
        assert_eq!(kind, UserKind::Guest, "{e}");
        assert_eq!(space.as_deref(), Some("KB"), "{e}");
        assert_eq!(
            permissions_of(&h, &id),
            vec![("KB".into(), "read".into(), "space".into())],
            "{e}"
        );
    }
    assert_eq!(
        group_member_emails(&h, "guests-kbgate-globex"),
        guest_people.iter().cloned().collect::<BTreeSet<_>>()
    );
    // No creation was answered "already exists" (which would mean a second creation).
    let journal = t.store.journal_list(None).await.unwrap();
    assert!(
        !journal
            .iter()
            .any(|j| j.kind == "create-site-user" && j.state == journal_state::SKIPPED),
        "a person was created twice"
    );
    assert!(
        journal
            .iter()
            .filter(|j| j.kind == "invite")
            .all(|j| group_people.contains(&j.target)),
        "only group members are invited by email"
    );
}

/// Polls `cond` every millisecond until it holds (10 s at most).
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Runs `apply` and drops it (a kill) once `kill_now` holds.
async fn apply_killed(
    r: &kbgate_provision::Reconciler,
    plan: &Plan,
    progress: &dyn ApplyProgress,
    kill_now: impl Fn() -> bool,
) {
    tokio::select! {
        res = r.apply(plan, progress) => panic!("apply finished before the kill: {res:?}"),
        _ = until("the moment of the kill", kill_now) => {}
    }
}

/// Records the emails of the invitations whose actions have finished.
#[derive(Default)]
struct FinishedInvites(Mutex<BTreeSet<String>>);

impl ApplyProgress for FinishedInvites {
    fn finished(&self, action: &Action, _: &Outcome) {
        if let Op::Invite { email } = &action.op {
            self.0.lock().unwrap().insert(email.clone());
        }
    }
}

/// Journal entries of `kind` in `state`, by target.
async fn journaled(
    t: &kbgate_store::testing::TestStore,
    kind: &str,
    state: &str,
) -> BTreeSet<String> {
    t.store
        .journal_list(Some(state))
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.kind == kind)
        .map(|j| j.target)
        .collect()
}

/// Kills are made deterministic by holding calls at the simulator (`Sim::hold_after`): a held
/// call has been sent, so its action was journaled `pending`, and its answer cannot arrive
/// before the kill. Then the held calls are served (the call reached Confluence, kbgate never
/// saw the answer) or dropped (the call was lost on its way), and the next run must cope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_apply_is_resumed_from_the_journal() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    let group_people = emails("g", "acme.com", 250);
    let unl_people = emails("u", "initech.io", 120);
    add_people(&*t.store, &group_people).await;
    add_people(&*t.store, &unl_people).await;
    let concurrency = opts().concurrency as u64;
    let r = reconciler(&h, t.store.clone(), setup_policy(), opts());

    // Kill 1: in the middle of creating site users. The first 30 Jira user creations are
    // answered; the kill comes once every concurrent slot waits on a held one.
    let create_user = "POST /rest/api/3/user";
    h.state().hold_after(create_user, 30);
    let plan = r.plan().await.unwrap();
    let to_create: BTreeSet<String> = creations(&plan).into_iter().collect();
    assert!(to_create.len() as u64 > 30 + concurrency, "{plan}");
    apply_killed(&r, &plan, &NoProgress, || h.state().held() >= concurrency).await;
    let pending = journaled(&t, "create-site-user", journal_state::PENDING).await;
    assert_eq!(
        pending.len() as u64,
        concurrency,
        "calls were in flight at the kill: {pending:?}"
    );
    assert_eq!(
        journaled(&t, "create-site-user", journal_state::DONE)
            .await
            .len(),
        30
    );
    // The held calls reach Confluence after all: people kbgate does not know it created.
    h.state().release();
    until("the held calls to be served", || h.state().in_flight() == 0).await;
    assert!(pending.iter().all(|e| account_of(&h, e).is_some()));

    // Kill 2: after the first batch of invitations. One invite-by-email call is answered; the
    // kill comes once its batch is journaled and the other batches wait, held, at the site.
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
    for e in creations(&plan) {
        assert!(
            account_of(&h, &e).is_none(),
            "{e} is on the site and is created again"
        );
    }
    let batches: Vec<Vec<String>> = invites(&plan)
        .chunks(confluence_client::EMAILS_CAP)
        .map(<[String]>::to_vec)
        .collect();
    assert_eq!(batches.len(), 3);
    let invite = "POST /wiki/api/v2/user/access/invite-by-email";
    h.state().hold_after(invite, 1);
    let finished = FinishedInvites::default();
    apply_killed(&r, &plan, &finished, || {
        let done = finished.0.lock().unwrap();
        h.state().held() == 2 && batches.iter().any(|b| b.iter().all(|e| done.contains(e)))
    })
    .await;
    let answered = finished.0.lock().unwrap().clone();
    let unsure = journaled(&t, "invite", journal_state::PENDING).await;
    assert!(
        !unsure.is_empty(),
        "some invitations were in flight at the kill"
    );
    assert_eq!(
        unsure.len() + answered.len(),
        250,
        "one batch done, the others in flight"
    );
    assert!(unsure.is_disjoint(&answered));
    assert_eq!(journaled(&t, "invite", journal_state::DONE).await, answered);
    // The held invitations are lost on their way: they never reach the site.
    h.state().drop_held();
    until("the held calls to be dropped", || {
        h.state().in_flight() == 0
    })
    .await;

    // Resume: nothing is invited again while the outcome of an invitation is unknown and it
    // may still complete; the plan says so, with the time of the re-check, and is not
    // converged.
    settle_invites(&h);
    let received = invited_or_present(&h);
    let plan = r.plan().await.unwrap();
    assert!(invites(&plan).is_empty(), "{plan}");
    let waiting: BTreeSet<String> = plan
        .awaiting
        .iter()
        .filter(|w| w.state == AwaitState::Unknown)
        .map(|w| w.email.clone())
        .collect();
    assert_eq!(waiting, unsure, "{plan}");
    assert!(!plan.converged());
    assert!(plan.next_retry().is_some_and(|t| t > chrono::Utc::now()));
    assert!(
        plan.to_string().contains("may never have been sent"),
        "{plan}"
    );
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");

    // Once the retry time has come, invitations that never reached the site are sent; no one
    // gets a second.
    let later = ReconcileOptions {
        now: Some(chrono::Utc::now() + opts().invite_retry_after + chrono::Duration::minutes(1)),
        ..opts()
    };
    let r = reconciler(&h, t.store.clone(), setup_policy(), later);
    let plan = r.plan().await.unwrap();
    for e in invites(&plan) {
        assert!(unsure.contains(&e), "{e} was not an unsure invitation");
        assert!(!received.contains(&e), "{e} would be invited twice");
    }
    assert_eq!(
        invites(&plan).into_iter().collect::<BTreeSet<_>>(),
        unsure,
        "the lost invitations are sent, once"
    );
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

/// A crash between "intent" (the invitation journaled `pending`) and "sent" for a subset:
/// of two killed runs, the invitations of the first never reached the site (lost on the way)
/// and those of the second did (Confluence acted; kbgate never saw the answer). The next plan
/// re-checks every one of them against the site in bulk, the apply re-sends exactly those
/// with neither access nor an invitation in flight, no one twice, and the group converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_invitations_are_rechecked_and_only_the_lost_ones_resent() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    let p = policy(
        vec![aud("acme", &["acme.com"], &["KB"], Delivery::Group)],
        &[],
    );
    let first = emails("first", "acme.com", 200);
    add_people(&*t.store, &first).await;
    let r = reconciler(&h, t.store.clone(), p.clone(), opts());
    let invite = "POST /wiki/api/v2/user/access/invite-by-email";

    // Run 1: one batch answered, the other held at the kill and then lost.
    let plan = r.plan().await.unwrap();
    assert_eq!(invites(&plan).len(), 200);
    h.state().hold_after(invite, 1);
    let finished = FinishedInvites::default();
    apply_killed(&r, &plan, &finished, || {
        h.state().held() == 1 && finished.0.lock().unwrap().len() == 100
    })
    .await;
    h.state().drop_held();
    until("the held call to be dropped", || h.state().in_flight() == 0).await;
    let lost = journaled(&t, "invite", journal_state::PENDING).await;
    assert_eq!(lost.len(), 100);
    assert!(lost.iter().all(|e| !invited_or_present(&h).contains(e)));

    // Run 2, for people added since: every invitation is held at the kill, then served to
    // the end (the site acts on it; kbgate never sees the answer).
    let second = emails("second", "acme.com", 60);
    add_people(&*t.store, &second).await;
    let plan = r.plan().await.unwrap();
    assert_eq!(
        invites(&plan).into_iter().collect::<BTreeSet<_>>(),
        second.iter().cloned().collect(),
        "the unknown invitations of run 1 wait for their retry time: {plan}"
    );
    h.state().hold_after(invite, 0);
    apply_killed(&r, &plan, &NoProgress, || h.state().held() == 1).await;
    // The site is slow to complete them: they stay in flight until the clock is moved.
    h.state()
        .write(|s| s.invite_delay = Some(chrono::Duration::hours(1)));
    h.state().release();
    until("the held call to be served", || h.state().in_flight() == 0).await;
    let unknown = journaled(&t, "invite", journal_state::PENDING).await;
    assert_eq!(unknown.len(), 160, "100 lost + 60 reached the site");

    // Right away, run 2's invitations are still in flight at the site: no access yet, and
    // not re-sent (Confluence lists no invitations in flight; the retry time covers them).
    let plan = r.plan().await.unwrap();
    assert!(invites(&plan).is_empty(), "{plan}");
    let waiting: BTreeSet<String> = plan
        .awaiting
        .iter()
        .filter(|w| w.state == AwaitState::Unknown)
        .map(|w| w.email.clone())
        .collect();
    assert_eq!(waiting, unknown, "{plan}");

    // At the retry time the site has completed what it received.
    h.state().advance_clock(chrono::Duration::hours(2));
    h.state().write(|s| s.invite_delay = None);
    let received = invited_or_present(&h);
    assert!(second.iter().all(|e| received.contains(e)));
    let later = ReconcileOptions {
        now: Some(chrono::Utc::now() + opts().invite_retry_after + chrono::Duration::minutes(1)),
        ..opts()
    };
    let r = reconciler(&h, t.store.clone(), p, later);
    h.reset_stats();
    let plan = r.plan().await.unwrap();
    let checks = sim_calls(&h)
        .get("POST /wiki/api/v2/user/access/check-access-by-email")
        .copied();
    // The re-check is one bulk check per 100 people: everyone without a known account id
    // (the 260 people here), not one call per person.
    eprintln!(
        "re-check of 160 unknown invitations (260 people without a known id): {checks:?} \
         access-check calls; plan total {} calls, by endpoint {:?}",
        h.stats().total,
        sim_calls(&h)
    );
    assert_eq!(checks, Some(3));
    let resent: BTreeSet<String> = invites(&plan).into_iter().collect();
    assert_eq!(resent, lost, "exactly the lost invitations are sent again");
    assert!(resent.is_disjoint(&received), "no one is invited twice");
    assert!(
        plan.actions
            .iter()
            .filter(|a| matches!(a.op, Op::Invite { .. }))
            .all(|a| a.reason.contains("sent again")),
        "{plan}"
    );
    // Those whose unknown invitation did reach the site are found and added, not re-invited.
    let adds: BTreeSet<String> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::AddGroupMember { email, .. } => Some(email.clone()),
            _ => None,
        })
        .collect();
    assert!(second.iter().all(|e| adds.contains(e)), "{plan}");
    assert!(plan.awaiting.is_empty(), "{plan}");
    h.reset_stats();
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    assert!(
        s.awaiting.is_empty(),
        "the re-sent invitations complete in the wait: {s}"
    );
    assert_eq!(
        sim_calls(&h).get(invite),
        Some(&1),
        "one batch of 100 re-sent"
    );
    let plan = r.plan().await.unwrap();
    assert!(plan.converged(), "{plan}");
    let all: BTreeSet<String> = first.iter().chain(&second).cloned().collect();
    assert_eq!(group_member_emails(&h, "kbgate-acme"), all);
}
