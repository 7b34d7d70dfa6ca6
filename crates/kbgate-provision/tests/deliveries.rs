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
    let r = reconciler(&h, t.store.clone(), p, opts());

    let plan = r.plan().await.unwrap();
    assert_eq!(count(&plan, "create-group"), 1, "{plan}");
    assert_eq!(count(&plan, "grant-group-read"), 2, "{plan}");
    assert_eq!(count(&plan, "invite"), 5, "{plan}");
    assert_eq!(plan.actions.len(), 8, "{plan}");
    assert!(plan.warnings.iter().any(|w| w.message.contains("licence")));
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!((s.done, s.failed), (8, 0), "{s}");

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
    // Invitations are pending; the next plan neither re-invites nor adds yet.
    let plan = r.plan().await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.message.contains("not invited twice"))
    );

    settle_invites(&h);
    let plan = r.plan().await.unwrap();
    assert_eq!(kinds(&plan), vec!["add-group-member"; 5], "{plan}");
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!((s.done, s.failed), (5, 0), "{s}");
    assert_eq!(
        group_member_emails(&h, "kbgate-acme"),
        people.iter().cloned().collect()
    );
    assert!(r.plan().await.unwrap().is_empty());

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
    assert_eq!(count(&plan, "set-global-unlicensed-access"), 1, "{plan}");
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
    assert!(!views.contains("KB") && !views.contains("API") && !global);
    assert!(people.iter().all(|e| account_of(&h, e).is_some()));
    assert!(r.plan().await.unwrap().is_empty());
}

kbgate_store::store_tests!(group_delivery, guest_delivery, unlicensed_delivery);

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
