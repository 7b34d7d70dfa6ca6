//! Each delivery end to end against the simulator, then revocation; on SQLite and PostgreSQL.

mod common;

use common::*;
use confluence_sim::SimConfig;
use confluence_sim::model::UserKind;
use kbgate_policy::Delivery;
use kbgate_provision::{NoProgress, Op, ReconcileOptions};
use kbgate_store::testing::TestStore;

fn kinds(p: &kbgate_provision::Plan) -> Vec<&'static str> {
    p.actions.iter().map(|a| a.op.kind()).collect()
}

fn count(p: &kbgate_provision::Plan, kind: &str) -> usize {
    p.actions.iter().filter(|a| a.op.kind() == kind).count()
}

async fn group_delivery(t: &TestStore) {
    let h = sim(SimConfig::default()).await;
    let people = emails("newcust", "acme.com", 5);
    add_people(&*t.store, &people).await;
    add_people(&*t.store, &["stranger@evil.net".to_string()]).await;
    let p = policy(
        vec![aud("acme", &["acme.com"], &["KB", "API"], Delivery::Group)],
        &[],
    );
    // Without a wait, apply leaves the invitees to the next run (the path of a site whose
    // invitations take longer than the wait; `tests/invitations.rs` has the one-run path).
    let o = ReconcileOptions {
        invite_wait: std::time::Duration::ZERO,
        ..opts()
    };
    let r = reconciler(&h, t.store.clone(), p, o);

    let plan = r.plan().await.unwrap();
    assert_eq!(count(&plan, "create-group"), 1, "{plan}");
    assert_eq!(count(&plan, "grant-group-read"), 2, "{plan}");
    assert_eq!(count(&plan, "invite"), 5, "{plan}");
    assert_eq!(plan.actions.len(), 8, "{plan}");
    assert!(plan.warnings.iter().any(|w| w.message.contains("licence")));
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!((s.done, s.failed), (8, 0), "{s}");
    // The invitees are listed as waiting, not as grants.
    let mut waiting: Vec<String> = s.awaiting.iter().map(|(e, _)| e.clone()).collect();
    waiting.sort();
    assert_eq!(waiting, people, "{s}");
    assert!(s.to_string().contains("not granted yet"), "{s}");

    // The group reads exactly KB and API, nothing else.
    let gid = group_id(&h, "kbgate-acme").expect("group created");
    let mut perms = permissions_of(&h, &gid);
    perms.sort();
    assert_eq!(
        perms,
        vec![
            ("API".into(), "read".into(), "space".into()),
            ("KB".into(), "read".into(), "space".into())
        ]
    );
    // Invitations are pending; the next plan neither re-invites nor adds yet, and it is not
    // converged: the invitees wait.
    let plan = r.plan().await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    assert!(!plan.converged(), "{plan}");
    assert_eq!(plan.awaiting.len(), 5, "{plan}");
    assert!(plan.to_string().contains("not invited twice"), "{plan}");

    settle_invites(&h);
    let plan = r.plan().await.unwrap();
    assert_eq!(kinds(&plan), vec!["add-group-member"; 5], "{plan}");
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!((s.done, s.failed), (5, 0), "{s}");
    assert_eq!(
        group_member_emails(&h, "kbgate-acme"),
        people.iter().cloned().collect()
    );
    assert!(r.plan().await.unwrap().converged());

    // Someone else's member of kbgate's group and someone else's permission: never touched.
    let foreign = h
        .state()
        .read(|s| {
            s.users
                .values()
                .find(|u| u.email.ends_with("@example.com") && !u.is_admin)
                .map(|u| u.account_id.clone())
        })
        .unwrap();
    h.state().write(|s| {
        s.groups
            .get_mut(&gid)
            .unwrap()
            .members
            .insert(foreign.clone());
    });

    // Revocation: a person removed.
    t.store.remove_person(&people[0]).await.unwrap();
    let plan = r.plan().await.unwrap();
    assert_eq!(kinds(&plan), vec!["remove-group-member"], "{plan}");
    r.apply(&plan, &NoProgress).await.unwrap();
    assert!(!group_member_emails(&h, "kbgate-acme").contains(&people[0]));

    // Revocation: the audience expires.
    let p = policy(
        vec![expired(aud(
            "acme",
            &["acme.com"],
            &["KB", "API"],
            Delivery::Group,
        ))],
        &[],
    );
    let r = reconciler(&h, t.store.clone(), p, opts());
    let plan = r.plan().await.unwrap();
    assert_eq!(count(&plan, "remove-group-member"), 4, "{plan}");
    assert_eq!(count(&plan, "revoke-space-permission"), 2, "{plan}");
    assert_eq!(plan.counts(), (0, 6));
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    assert!(permissions_of(&h, &gid).is_empty());
    let left = group_member_emails(&h, "kbgate-acme");
    assert_eq!(left.len(), 1, "only the foreign member stays: {left:?}");
    assert!(r.plan().await.unwrap().is_empty());
}

async fn guest_delivery(t: &TestStore) {
    guest_delivery_with(t, false).await
}

async fn guest_delivery_with(t: &TestStore, undocumented: bool) {
    let h = sim(SimConfig::default()).await;
    let people = emails("guest", "globex.co.uk", 3);
    add_people(&*t.store, &people).await;
    let p = policy(
        vec![aud("globex", &["globex.co.uk"], &["KB"], Delivery::Guest)],
        &[],
    );
    // With the undocumented guest listing, the site's unassigned guests of globex are picked up.
    if undocumented {
        h.state().write(|s| {
            s.insert_user(confluence_sim::model::User {
                account_id: "712020:unassigned-guest".into(),
                email: "lonely.guest@globex.co.uk".into(),
                display_name: "Lonely Guest".into(),
                account_type: confluence_sim::model::AccountType::Atlassian,
                status: confluence_sim::model::UserStatus::Active,
                kind: UserKind::Guest,
                is_admin: false,
            })
        });
    }
    let o = ReconcileOptions {
        allow_undocumented_apis: undocumented,
        ..opts()
    };
    let r = reconciler(&h, t.store.clone(), p.clone(), o.clone());
    let plan = r.plan().await.unwrap();
    assert_eq!(count(&plan, "create-group"), 1, "{plan}");
    assert_eq!(count(&plan, "create-site-user"), 3, "{plan}");
    assert!(count(&plan, "add-group-member") >= 3, "{plan}");
    let unassigned = if undocumented {
        h.state().read(|s| {
            s.users
                .values()
                .filter(|u| {
                    u.kind == UserKind::Guest
                        && u.email.ends_with("@globex.co.uk")
                        && !s.guest_spaces.contains_key(&u.account_id)
                        && u.status == confluence_sim::model::UserStatus::Active
                })
                .count()
        })
    } else {
        0
    };
    assert_eq!(count(&plan, "assign-guest-space"), 3 + unassigned, "{plan}");
    if undocumented {
        assert!(
            unassigned > 0,
            "the generated site has unassigned globex guests"
        );
    }
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    for e in &people {
        let id = account_of(&h, e).expect("on the site");
        let (kind, space) = h
            .state()
            .read(|s| (s.users[&id].kind, s.guest_spaces.get(&id).cloned()));
        assert_eq!(kind, UserKind::Guest, "{e} is a guest (no seat)");
        assert_eq!(space.as_deref(), Some("KB"));
        assert_eq!(
            permissions_of(&h, &id),
            vec![("KB".into(), "read".into(), "space".into())]
        );
    }
    let plan = r.plan().await.unwrap();
    assert!(plan.is_empty(), "{plan}");

    // Revocation: the domain is denied.
    let p = policy(
        vec![aud("globex", &["globex.co.uk"], &["KB"], Delivery::Guest)],
        &["globex.co.uk"],
    );
    let r = reconciler(&h, t.store.clone(), p, o);
    let plan = r.plan().await.unwrap();
    assert!(count(&plan, "revoke-space-permission") >= 3, "{plan}");
    assert!(count(&plan, "remove-group-member") >= 3, "{plan}");
    assert!(plan.actions.iter().all(|a| a.op.is_revocation()));
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    for e in &people {
        let id = account_of(&h, e).unwrap();
        assert!(permissions_of(&h, &id).is_empty());
        assert!(h.state().read(|s| !s.guest_spaces.contains_key(&id)));
        assert!(
            h.state().read(|s| s.users.contains_key(&id)),
            "accounts are never deleted"
        );
    }
    assert!(r.plan().await.unwrap().is_empty());
}

async fn unlicensed_delivery(t: &TestStore) {
    let h = sim(SimConfig::default()).await;
    let people = emails("unl", "initech.io", 4);
    add_people(&*t.store, &people).await;
    // Someone already on the site needs nothing.
    let existing = h.state().read(|s| {
        s.users
            .values()
            .find(|u| {
                u.email.ends_with("@initech.io")
                    && u.status == confluence_sim::model::UserStatus::Active
                    && u.account_type == confluence_sim::model::AccountType::Atlassian
            })
            .map(|u| u.email.clone())
    });
    if let Some(e) = &existing {
        add_people(&*t.store, std::slice::from_ref(e)).await;
    }
    let p = policy(
        vec![aud(
            "initech",
            &["initech.io"],
            &["KB", "API"],
            Delivery::Unlicensed,
        )],
        &[],
    );
    let r = reconciler(&h, t.store.clone(), p, opts());
    let plan = r.plan().await.unwrap();
    assert_eq!(count(&plan, "create-site-user"), 4, "{plan}");
    assert_eq!(count(&plan, "set-unlicensed-view"), 2, "{plan}");
    assert_eq!(count(&plan, "set-global-unlicensed-access"), 1, "{plan}");
    // The default reader reads unlicensed view per space from the site; the site-wide switch
    // has no documented read, and the plan says what kbgate does about it.
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.message.contains("no documented way to read")),
        "{plan}"
    );
    assert!(
        !plan.warnings.iter().any(|w| w
            .message
            .contains("cannot read the unlicensed-view switches")),
        "{plan}"
    );
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!((s.done, s.failed), (7, 0), "{s}");
    assert!(s.unverified.is_empty(), "{s}");
    for e in &people {
        let kind = h.state().read(|s| s.user_by_email(e).map(|u| u.kind));
        assert_eq!(
            kind,
            Some(UserKind::Unlicensed),
            "{e}: on the site without a seat"
        );
    }
    let (views, global) = h
        .state()
        .read(|s| (s.unlicensed_view.clone(), s.global_unlicensed_access));
    assert!(views.contains("KB") && views.contains("API") && global);
    assert!(
        h.state().read(|s| s.anonymous_view.is_empty()),
        "never anonymous"
    );
    assert!(r.plan().await.unwrap().is_empty());

    // Revocation: the audience is removed from the policy.
    let r = reconciler(&h, t.store.clone(), policy(vec![], &[]), opts());
    let plan = r.plan().await.unwrap();
    assert_eq!(count(&plan, "set-unlicensed-view"), 2, "{plan}");
    // The site-wide switch cannot be read, so kbgate cannot tell whether it was on before it:
    // it is left on (it grants nothing without a space's unlicensed view), and the plan says so.
    assert_eq!(count(&plan, "set-global-unlicensed-access"), 0, "{plan}");
    assert!(
        plan.warnings.iter().any(|w| w
            .message
            .contains("leaves the site-wide unlicensed access switch on")),
        "{plan}"
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.message.contains("never deletes")),
        "{plan}"
    );
    r.apply(&plan, &NoProgress).await.unwrap();
    let (views, global) = h
        .state()
        .read(|s| (s.unlicensed_view.clone(), s.global_unlicensed_access));
    assert!(
        !views.contains("KB") && !views.contains("API"),
        "no space keeps unlicensed view"
    );
    assert!(
        global,
        "the unreadable site-wide switch is not kbgate's to turn off"
    );
    assert!(people.iter().all(|e| account_of(&h, e).is_some()));
    assert!(r.plan().await.unwrap().is_empty());
}

/// Switches already on before kbgate are not kbgate's: not switched on again, not recorded,
/// and not switched off when the audience goes.
async fn pre_enabled_switches_survive_revocation(t: &TestStore) {
    let h = sim(SimConfig::default()).await;
    h.state().write(|s| {
        s.unlicensed_view.insert("KB".into());
        s.global_unlicensed_access = true;
    });
    let p = policy(
        vec![aud(
            "initech",
            &["initech.io"],
            &["KB", "API"],
            Delivery::Unlicensed,
        )],
        &[],
    );
    let r = reconciler_reading_switches(&h, t.store.clone(), p, opts());
    let plan = r.plan().await.unwrap();
    let switch_ops: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| a.op.kind().starts_with("set-"))
        .map(|a| a.op.target())
        .collect();
    assert_eq!(switch_ops, vec!["API on"], "only what is off: {plan}");
    assert!(
        !plan
            .warnings
            .iter()
            .any(|w| w.message.contains("cannot read")),
        "{plan}"
    );
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    assert_eq!(
        switches(&h),
        (["API".to_string(), "KB".to_string()].into(), true)
    );
    assert!(r.plan().await.unwrap().is_empty());

    // Revocation: the audience is removed. Only API, which kbgate switched on, goes off.
    let r = reconciler_reading_switches(&h, t.store.clone(), policy(vec![], &[]), opts());
    let plan = r.plan().await.unwrap();
    let targets: Vec<String> = plan.actions.iter().map(|a| a.op.target()).collect();
    assert_eq!(targets, vec!["API off"], "{plan}");
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    assert_eq!(
        switches(&h),
        (["KB".to_string()].into(), true),
        "what was on before kbgate is still on"
    );
    assert!(r.plan().await.unwrap().is_empty());
}

/// A switch kbgate turned on and an admin turned off by hand is turned back on by the next
/// apply, and stays kbgate's (switched off on revocation).
async fn switches_turned_off_by_hand_are_turned_back_on(t: &TestStore) {
    let h = sim(SimConfig::default()).await;
    let p = policy(
        vec![aud(
            "initech",
            &["initech.io"],
            &["KB", "API"],
            Delivery::Unlicensed,
        )],
        &[],
    );
    let r = reconciler_reading_switches(&h, t.store.clone(), p, opts());
    let plan = r.plan().await.unwrap();
    assert_eq!(count(&plan, "set-unlicensed-view"), 2, "{plan}");
    assert_eq!(count(&plan, "set-global-unlicensed-access"), 1, "{plan}");
    r.apply(&plan, &NoProgress).await.unwrap();
    let both: std::collections::BTreeSet<String> = ["API".to_string(), "KB".to_string()].into();
    assert_eq!(switches(&h), (both.clone(), true));
    assert!(r.plan().await.unwrap().is_empty());

    // An admin turns unlicensed view of KB and the site-wide switch off.
    h.state().write(|s| {
        s.unlicensed_view.remove("KB");
        s.global_unlicensed_access = false;
    });
    let plan = r.plan().await.unwrap();
    let mut targets: Vec<String> = plan.actions.iter().map(|a| a.op.target()).collect();
    targets.sort();
    assert_eq!(targets, vec!["KB on", "on"], "{plan}");
    assert!(
        plan.actions.iter().all(|a| a.reason.contains("by hand")),
        "{plan}"
    );
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!((s.done, s.failed), (2, 0), "{s}");
    assert_eq!(switches(&h), (both, true));
    assert!(r.plan().await.unwrap().is_empty());

    // Still kbgate's: revocation switches all of them off.
    let r = reconciler_reading_switches(&h, t.store.clone(), policy(vec![], &[]), opts());
    let plan = r.plan().await.unwrap();
    assert_eq!(plan.counts(), (0, 3), "{plan}");
    r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(switches(&h), (Default::default(), false));
    assert!(r.plan().await.unwrap().is_empty());
}

/// The default reader (no test stand-in): unlicensed view of each space is read from the site
/// (v1 `expand=permissions`), so a space switched on before kbgate is neither claimed nor
/// switched off, and one kbgate switched on and an admin switched off is switched back on. The
/// site-wide switch cannot be read: kbgate goes by its record, as the plan warns.
async fn site_switches_are_read_by_default(t: &TestStore) {
    let h = sim(SimConfig::default()).await;
    h.state().write(|s| {
        s.unlicensed_view.insert("KB".into());
    });
    let p = policy(
        vec![aud(
            "initech",
            &["initech.io"],
            &["KB", "API"],
            Delivery::Unlicensed,
        )],
        &[],
    );
    let r = reconciler(&h, t.store.clone(), p.clone(), opts());
    h.reset_stats();
    let plan = r.plan().await.unwrap();
    let mut targets: Vec<String> = plan.actions.iter().map(|a| a.op.target()).collect();
    targets.sort();
    assert_eq!(targets, vec!["API on", "on"], "KB is on already: {plan}");
    assert_eq!(
        sim_calls(&h).get("GET /wiki/rest/api/space"),
        Some(&1),
        "one batched read of the switches"
    );
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    assert_eq!(
        switches(&h),
        (["API".to_string(), "KB".to_string()].into(), true)
    );
    assert!(r.plan().await.unwrap().is_empty());

    // An admin switches API off by hand: switched back on. (The site-wide switch turned off by
    // hand would not be seen: it cannot be read.)
    h.state().write(|s| {
        s.unlicensed_view.remove("API");
    });
    let plan = r.plan().await.unwrap();
    let targets: Vec<String> = plan.actions.iter().map(|a| a.op.target()).collect();
    assert_eq!(targets, vec!["API on"], "{plan}");
    assert!(plan.actions[0].reason.contains("by hand"), "{plan}");
    r.apply(&plan, &NoProgress).await.unwrap();
    assert!(r.plan().await.unwrap().is_empty());

    // Revocation: API, kbgate's, goes off; KB, on before kbgate, stays on. The site-wide switch
    // cannot be read, so it is left on, as the warnings say.
    let r = reconciler(&h, t.store.clone(), policy(vec![], &[]), opts());
    let plan = r.plan().await.unwrap();
    let mut targets: Vec<String> = plan.actions.iter().map(|a| a.op.target()).collect();
    targets.sort();
    assert_eq!(targets, vec!["API off"], "{plan}");
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.message.contains("no documented way to read")),
        "{plan}"
    );
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    assert_eq!(
        switches(&h),
        (["KB".to_string()].into(), true),
        "unlicensed view that was on before kbgate is still on; so is the site-wide switch"
    );
    assert!(r.plan().await.unwrap().is_empty());
}

/// `default_access_group`: invitees land in the site's default product-access group, whatever
/// its name; kbgate finds their account ids there only when it looks in the right group.
async fn a_renamed_default_access_group_is_used(t: &TestStore) {
    let h = sim(SimConfig::default()).await;
    const GROUP: &str = "acme-staff-and-customers";
    h.state().write(|s| {
        let id = s
            .default_access_group
            .clone()
            .expect("generated sites have one");
        s.groups.get_mut(&id).unwrap().name = GROUP.into();
    });
    assert!(group_id(&h, "confluence-users").is_none());
    let people = emails("renamed", "acme.com", 3);
    add_people(&*t.store, &people).await;
    let p = policy(
        vec![aud("acme", &["acme.com"], &["KB"], Delivery::Group)],
        &[],
    );
    // Looking in the default name, the invitees are never found.
    let r = reconciler(&h, t.store.clone(), p.clone(), opts());
    let plan = r.plan().await.unwrap();
    assert_eq!(count(&plan, "invite"), 3, "{plan}");
    r.apply(&plan, &NoProgress).await.unwrap();
    settle_invites(&h);
    let plan = r.plan().await.unwrap();
    // (The simulator completes due invitations on the plan's calls.)
    let landed = group_member_emails(&h, GROUP);
    assert!(
        people.iter().all(|e| landed.contains(e)),
        "invitees land in the site's default group"
    );
    assert_eq!(count(&plan, "add-group-member"), 0, "{plan}");
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.message.contains("account id")),
        "{plan}"
    );

    // With the site's group configured, they are found and added.
    let o = ReconcileOptions {
        default_access_group: GROUP.into(),
        ..opts()
    };
    let r = reconciler(&h, t.store.clone(), p, o);
    let plan = r.plan().await.unwrap();
    assert_eq!(count(&plan, "add-group-member"), 3, "{plan}");
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    assert_eq!(
        group_member_emails(&h, "kbgate-acme"),
        people.iter().cloned().collect()
    );
    assert!(r.plan().await.unwrap().is_empty());
}

/// `licensed_users`: the operator's number of paid users drives the guest-allowance warning,
/// and kbgate then does not count the default group's members.
async fn configured_paid_users_drive_the_guest_allowance(t: &TestStore) {
    let h = sim(SimConfig::default()).await;
    add_people(&*t.store, &emails("allowance", "globex.co.uk", 6)).await;
    let p = policy(
        vec![aud("globex", &["globex.co.uk"], &["KB"], Delivery::Guest)],
        &[],
    );
    let members = "GET /wiki/rest/api/group/{groupId}/membersByGroupId";
    // Counted: the generated site has enough paid users for 6 guests.
    let r = reconciler(&h, t.store.clone(), p.clone(), opts());
    h.reset_stats();
    let plan = r.plan().await.unwrap();
    assert_eq!(count(&plan, "assign-guest-space"), 6, "{plan}");
    assert!(sim_calls(&h).get(members).is_some_and(|n| *n > 0));
    assert!(
        !plan
            .warnings
            .iter()
            .any(|w| w.message.contains("allowance")),
        "{plan}"
    );
    // Configured: 1 paid user allows 5 guests.
    let o = ReconcileOptions {
        licensed_users: Some(1),
        ..opts()
    };
    let r = reconciler(&h, t.store.clone(), p, o);
    h.reset_stats();
    let plan = r.plan().await.unwrap();
    assert_eq!(sim_calls(&h).get(members), None, "not counted");
    let w = plan
        .warnings
        .iter()
        .find(|w| w.message.contains("exceed Confluence's allowance"))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(w.message.contains("(1 licensed users)"), "{}", w.message);
}

/// Revocation when a domain leaves an audience that stays: its people lose the membership
/// (group) or the membership and space permission (guest); the others, the group and its
/// permissions stay.
async fn a_domain_removed_from_an_audience_that_stays(t: &TestStore) {
    let h = sim(SimConfig::default()).await;
    let acme = emails("a", "acme.com", 3);
    let labs = emails("l", "acme-labs.com", 3);
    let globex = emails("g", "globex.co.uk", 2);
    let umbrella = emails("u", "umbrella.org", 2);
    for list in [&acme, &labs, &globex, &umbrella] {
        add_people(&*t.store, list).await;
    }
    let with = |group_domains: &[&str], guest_domains: &[&str]| {
        policy(
            vec![
                aud("acme", group_domains, &["KB", "API"], Delivery::Group),
                aud("partners", guest_domains, &["KB"], Delivery::Guest),
            ],
            &[],
        )
    };
    let r = reconciler(
        &h,
        t.store.clone(),
        with(
            &["acme.com", "acme-labs.com"],
            &["globex.co.uk", "umbrella.org"],
        ),
        opts(),
    );
    converge(&r, &h, 4).await;
    let members = |name: &str| group_member_emails(&h, name);
    let all_group: std::collections::BTreeSet<String> = acme.iter().chain(&labs).cloned().collect();
    assert_eq!(members("kbgate-acme"), all_group);
    let gid = group_id(&h, "kbgate-acme").unwrap();
    let group_perms = permissions_of(&h, &gid);
    assert_eq!(group_perms.len(), 2);
    for e in globex.iter().chain(&umbrella) {
        let id = account_of(&h, e).unwrap();
        assert_eq!(permissions_of(&h, &id).len(), 1, "{e}");
    }

    // acme-labs.com leaves the group audience, umbrella.org the guest audience.
    let r = reconciler(
        &h,
        t.store.clone(),
        with(&["acme.com"], &["globex.co.uk"]),
        opts(),
    );
    let plan = r.plan().await.unwrap();
    assert!(plan.actions.iter().all(|a| a.op.is_revocation()), "{plan}");
    let mut removed: Vec<String> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::RemoveGroupMember { group, email, .. } => Some(format!("{group} {email}")),
            _ => None,
        })
        .collect();
    removed.sort();
    let mut expected: Vec<String> = labs
        .iter()
        .map(|e| format!("kbgate-acme {e}"))
        .chain(
            umbrella
                .iter()
                .map(|e| format!("guests-kbgate-partners {e}")),
        )
        .collect();
    expected.sort();
    assert_eq!(removed, expected, "{plan}");
    let revoked: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::RevokeSpacePermission { holder, .. } => Some(holder.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(revoked.len(), umbrella.len(), "{plan}");
    assert!(
        revoked.iter().all(|h| umbrella.iter().any(|e| e == h)),
        "{plan}"
    );
    assert!(
        plan.actions
            .iter()
            .all(|a| a.reason.contains("no longer in audience")
                || a.reason.contains("no longer reads")),
        "{plan}"
    );
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");

    assert_eq!(members("kbgate-acme"), acme.iter().cloned().collect());
    assert_eq!(
        permissions_of(&h, &gid),
        group_perms,
        "the group keeps its spaces"
    );
    for e in &globex {
        let id = account_of(&h, e).unwrap();
        assert_eq!(permissions_of(&h, &id).len(), 1, "{e} keeps KB");
    }
    for e in &umbrella {
        let id = account_of(&h, e).unwrap();
        assert!(permissions_of(&h, &id).is_empty(), "{e} lost KB");
        assert!(!members("guests-kbgate-partners").contains(e));
    }
    for e in labs.iter().chain(&umbrella) {
        assert!(account_of(&h, e).is_some(), "accounts are never deleted");
    }
    assert!(r.plan().await.unwrap().is_empty());
}

kbgate_store::store_tests!(
    group_delivery,
    guest_delivery,
    unlicensed_delivery,
    pre_enabled_switches_survive_revocation,
    switches_turned_off_by_hand_are_turned_back_on,
    site_switches_are_read_by_default,
    a_renamed_default_access_group_is_used,
    configured_paid_users_drive_the_guest_allowance,
    a_domain_removed_from_an_audience_that_stays,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_delivery_with_undocumented_apis() {
    let t = kbgate_store::testing::sqlite().await;
    guest_delivery_with(&t, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_space_guest_audience_is_refused_without_changes() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    add_people(&*t.store, &emails("g", "hooli.com", 2)).await;
    let p = policy(
        vec![aud(
            "hooli",
            &["hooli.com"],
            &["KB", "API"],
            Delivery::Guest,
        )],
        &[],
    );
    let r = reconciler(&h, t.store.clone(), p, opts());
    let plan = r.plan().await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    assert!(plan.refusals[0].message.contains("exactly one space"));
    assert!(plan.to_string().contains("REFUSED [hooli]"));
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a.op, Op::CreateGroup { .. }))
    );
}
