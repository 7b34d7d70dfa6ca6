//! Site limits (issue 16): the guest allowance is known to the plan, apply provisions only
//! what fits and reports the rest as waiting (not failed), the same at any request rate; a
//! 403 at a limit is reported as that limit, not as missing admin rights.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use confluence_client::{Client, ClientConfig, Limit, RetryConfig};
use confluence_sim::model::UserKind;
use confluence_sim::{SimConfig, SimHandle};
use kbgate_policy::Delivery;
use kbgate_provision::{NoProgress, Outcome, Plan, Reconciler};

/// The service account's client; `throttle`: a client-side throttle of 50 requests/s, otherwise
/// none (`requests_per_second = 0`).
fn client_with(h: &SimHandle, throttle: bool) -> Client {
    let a = h.service_account();
    let mut cfg = ClientConfig::new(
        h.base_url().parse().unwrap(),
        &a.email,
        a.api_token.as_str(),
    );
    if throttle {
        cfg.requests_per_second = 50;
    } else {
        cfg.requests_per_second = 0;
    }
    cfg.retry = RetryConfig {
        max_retries: 8,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(10),
        ..RetryConfig::default()
    };
    Client::new(cfg).unwrap()
}

/// (paid users, guests) on the site, as Confluence counts them.
fn counts(h: &SimHandle) -> (usize, usize) {
    h.state().read(|s| (s.paid_count(), s.guest_count()))
}

fn guest_emails(h: &SimHandle, domain: &str) -> BTreeSet<String> {
    h.state().read(|s| {
        s.users
            .values()
            .filter(|u| u.kind == UserKind::Guest && u.email.ends_with(domain))
            .map(|u| u.email.clone())
            .collect()
    })
}

struct Run {
    first_plan: Plan,
    last_plan: Plan,
    failed: usize,
    held: usize,
    guests: BTreeSet<String>,
    allowance: usize,
    guests_after: usize,
    wanted: usize,
}

/// A guest audience 7 people over the site's free guest places, converged with the throttle
/// on or off.
async fn over_the_cap(throttle: bool) -> Run {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    let (paid, guests) = counts(&h);
    let free = paid * 5 - guests;
    let people = emails("p", "globex.co.uk", free + 7);
    add_people(&*t.store, &people).await;
    let p = policy(
        vec![aud("globex", &["globex.co.uk"], &["KB"], Delivery::Guest)],
        &[],
    );
    let o = kbgate_provision::ReconcileOptions {
        allow_undocumented_apis: true,
        ..opts()
    };
    let r = Reconciler::new(client_with(&h, throttle), t.store.clone(), p, o);
    let first_plan = r.plan().await.unwrap();
    let (last_plan, summary) = r.converge(&NoProgress, 5).await.unwrap();
    Run {
        first_plan,
        last_plan,
        failed: summary.failed,
        held: summary.held,
        // Of the people given (the site may have guests of that domain already).
        guests: guest_emails(&h, "globex.co.uk")
            .into_iter()
            .filter(|e| people.contains(e))
            .collect(),
        allowance: h.state().read(confluence_sim::access::guest_allowance),
        guests_after: h.state().read(|s| s.guest_count()),
        wanted: free + 7,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_over_the_guest_cap_converges_on_what_fits_at_any_speed() {
    let fast = over_the_cap(false).await;
    let slow = over_the_cap(true).await;
    for run in [&fast, &slow] {
        // The plan says so before anything is applied. kbgate counts paid users as the
        // members of the default product-access group (a documented read); on the generated
        // site that is a little below what Confluence bills (app accounts hold licences
        // outside the group), so kbgate errs on the safe side: at least the 7 over
        // Confluence's own allowance wait.
        let l = &run.first_plan.limits;
        assert_eq!(l.len(), 1, "{}", run.first_plan);
        assert_eq!(l[0].limit, Limit::Guests);
        assert!(l[0].waiting.len() >= 7, "{}", run.first_plan);
        assert_eq!(l[0].fits + l[0].waiting.len(), run.wanted);
        assert_eq!(l[0].allowance, l[0].paid_users * 5);
        assert!(
            !l[0].existing_is_lower_bound,
            "GuestDataQuery lists every guest"
        );
        // Apply provisions what fits; the rest waits, no failure.
        assert_eq!(run.failed, 0);
        assert_eq!(run.held, l[0].waiting.len());
        assert_eq!(run.guests.len(), l[0].fits);
        assert!(
            run.guests_after <= run.allowance,
            "never over Confluence's allowance"
        );
        // Converged: nothing left that fits, the same 7 still reported as waiting.
        assert!(run.last_plan.is_empty(), "{}", run.last_plan);
        assert_eq!(run.last_plan.limits[0].waiting, l[0].waiting);
        for w in &l[0].waiting {
            assert!(!run.guests.contains(w), "{w} waits");
        }
    }
    // The same outcome with the client throttle on and off.
    assert_eq!(fast.guests, slow.guests);
    assert_eq!(fast.first_plan.limits, slow.first_plan.limits);
}

/// kbgate cannot list every guest without the undocumented API: its count is a lower bound.
/// When Confluence then refuses at the limit, apply reports the refused people as waiting on
/// the guest limit — not as failures, and not with "give the service account admin rights".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluences_403_at_the_limit_is_waiting_not_a_permission_failure() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    let (paid, guests) = counts(&h);
    let free = paid * 5 - guests;
    add_people(&*t.store, &emails("p", "globex.co.uk", free.min(20))).await;
    // Guests kbgate does not see take all but 3 places.
    let others = free.saturating_sub(3);
    h.state().write(|s| {
        for i in 0..others {
            s.insert_user(confluence_sim::model::User {
                account_id: format!("other-guest-{i}"),
                email: format!("other{i}@elsewhere.example"),
                display_name: format!("other {i}"),
                account_type: confluence_sim::model::AccountType::Atlassian,
                status: confluence_sim::model::UserStatus::Active,
                kind: UserKind::Guest,
                is_admin: false,
            });
        }
    });
    let p = policy(
        vec![aud("globex", &["globex.co.uk"], &["KB"], Delivery::Guest)],
        &[],
    );
    let r = reconciler(&h, t.store.clone(), p, opts());
    let plan = r.plan().await.unwrap();
    assert!(
        plan.limits.is_empty(),
        "kbgate's lower bound sees room: {plan}"
    );
    let seen = std::sync::Mutex::new(Vec::new());
    struct Record<'a>(&'a std::sync::Mutex<Vec<(String, Outcome)>>);
    impl kbgate_provision::ApplyProgress for Record<'_> {
        fn finished(&self, a: &kbgate_provision::Action, o: &Outcome) {
            self.0.lock().unwrap().push((a.id.clone(), o.clone()));
        }
    }
    let s = r.apply(&plan, &Record(&seen)).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    let want = free.min(20).saturating_sub(3);
    assert!(s.waiting >= want, "{s}");
    assert!(s.limits_reached());
    let text = s.to_string();
    assert!(text.contains("guest limit reached"), "{text}");
    assert!(!text.contains("give the service account"), "{text}");
    assert!(text.contains("portal"), "{text}");
    let seen = seen.into_inner().unwrap();
    assert!(seen.iter().any(|(id, o)| id.starts_with("add-group-member")
        && matches!(
            o,
            Outcome::Waiting {
                limit: Limit::Guests,
                ..
            }
        )));
    assert!(
        seen.iter()
            .any(|(id, o)| id.starts_with("assign-guest-space")
                && matches!(
                    o,
                    Outcome::Waiting {
                        limit: Limit::Guests,
                        ..
                    }
                ))
    );
    assert_eq!(
        h.state().read(|s| s.guest_count()),
        paid * 5,
        "Confluence's allowance is used up, never exceeded"
    );
    // The journal says "waiting", and the next plan still wants them (nothing is lost).
    let next = r.plan().await.unwrap();
    assert!(
        next.actions
            .iter()
            .filter(|a| a.op.kind() == "add-group-member")
            .count()
            >= want,
        "{next}"
    );
}

/// Makes the site have exactly `paid` paid users, all members of the default product-access
/// group (what kbgate counts) and nobody else licensed (apps and deactivated users included),
/// so that kbgate's count and Confluence's agree.
fn set_paid_users(h: &SimHandle, paid: usize) {
    h.state().write(|s| {
        let group = s.default_access_group.clone().expect("default group");
        let service = s
            .service_account
            .as_ref()
            .and_then(|c| s.user_by_email(&c.email))
            .map(|u| u.account_id.clone());
        let mut licensed: Vec<String> = s
            .users
            .values()
            .filter(|u| u.kind == UserKind::Licensed)
            .map(|u| u.account_id.clone())
            .collect();
        // The service account stays licensed.
        licensed.sort_by_key(|id| Some(id) != service.as_ref());
        let mut kept = 0;
        for id in licensed {
            let u = s.users.get_mut(&id).unwrap();
            let keep = kept < paid
                && u.status == confluence_sim::model::UserStatus::Active
                && u.account_type != confluence_sim::model::AccountType::App;
            let g = s.groups.get_mut(&group).unwrap();
            if keep {
                kept += 1;
                g.members.insert(id);
            } else {
                u.kind = UserKind::Unlicensed;
                g.members.remove(&id);
            }
        }
        for i in kept..paid {
            let id = format!("staff-{i}");
            s.insert_user(confluence_sim::model::User {
                account_id: id.clone(),
                email: format!("staff{i}@staff.example"),
                display_name: format!("staff {i}"),
                account_type: confluence_sim::model::AccountType::Atlassian,
                status: confluence_sim::model::UserStatus::Active,
                kind: UserKind::Licensed,
                is_admin: false,
            });
            s.groups.get_mut(&group).unwrap().members.insert(id);
        }
        assert_eq!(s.paid_count(), paid);
    });
}

struct IssueRun {
    guests: BTreeSet<String>,
    failed: usize,
    held: usize,
    waiting: usize,
    after_second: BTreeSet<String>,
}

/// Issue 16's site: 3 native audiences of 300 people each (group, unlicensed, guest) on a site
/// with 45 paid users (225 guests); one plan + apply, then — once the group's invitations
/// have completed (300 more paid users) — another.
async fn issue_16(throttle: bool) -> IssueRun {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    set_paid_users(&h, 45);
    let guests_people = emails("g", "globex.co.uk", 300);
    add_people(&*t.store, &emails("a", "acme.com", 300)).await;
    add_people(&*t.store, &emails("u", "initech.io", 300)).await;
    add_people(&*t.store, &guests_people).await;
    let p = policy(
        vec![
            aud("acme", &["acme.com"], &["KB"], Delivery::Group),
            aud("initech", &["initech.io"], &["KB"], Delivery::Unlicensed),
            aud("globex", &["globex.co.uk"], &["KB"], Delivery::Guest),
        ],
        &[],
    );
    let o = kbgate_provision::ReconcileOptions {
        allow_undocumented_apis: true,
        ..opts()
    };
    let mut client = client_with(&h, throttle);
    if throttle {
        // Issue 16's slow run used the client's default throttle; 100/s keeps the test short
        // while invitations (1 s of simulator time) still complete in the middle of the apply.
        let a = h.service_account();
        let mut cfg = ClientConfig::new(
            h.base_url().parse().unwrap(),
            &a.email,
            a.api_token.as_str(),
        );
        cfg.requests_per_second = 100;
        client = Client::new(cfg).unwrap();
    }
    let r = Reconciler::new(client, t.store.clone(), p, o);
    let plan = r.plan().await.unwrap();
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    let ours = |h: &SimHandle| -> BTreeSet<String> {
        guest_emails(h, "globex.co.uk")
            .into_iter()
            .filter(|e| guests_people.contains(e))
            .collect()
    };
    let guests = ours(&h);
    settle_invites(&h);
    let (_, _) = r.converge(&NoProgress, 4).await.unwrap();
    IssueRun {
        guests,
        failed: s.failed,
        held: s.held,
        waiting: s.waiting,
        after_second: ours(&h),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_same_outcome_with_and_without_the_throttle() {
    let fast = issue_16(false).await;
    let slow = issue_16(true).await;
    for run in [&fast, &slow] {
        assert_eq!(run.failed, 0, "nothing fails at the guest limit");
        assert_eq!(
            run.waiting, 0,
            "the plan's count was exact: Confluence refused nothing"
        );
        assert!(run.held > 0, "the guests beyond 225 wait");
        assert_eq!(run.guests.len() + run.held, 300);
        // Once the 300 invited group members count as paid users, there is room for all.
        assert_eq!(run.after_second.len(), 300);
    }
    assert_eq!(fast.guests, slow.guests, "the same people, at any speed");
    assert_eq!(fast.held, slow.held);
}
