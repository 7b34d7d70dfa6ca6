//! Errors that name the fix, and the people table (CSV import). Access requests are decided
//! by `kbgate_policy::Policy::may_request_access` and recorded by the server (tested there).

mod common;

use chrono::Utc;
use common::*;
use confluence_sim::SimConfig;
use kbgate_policy::Delivery;
use kbgate_provision::{
    ACCESS_CHECK_DISABLED, NoProgress, ProvisionError, Reconciler, import_people_csv, list_people,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_names_the_token() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    add_people(&*t.store, &emails("a", "acme.com", 2)).await;
    let acc = h.service_account();
    let c = client_as(&h, &acc.email, "not-the-token");
    let p = policy(
        vec![aud("acme", &["acme.com"], &["KB"], Delivery::Group)],
        &[],
    );
    let r = Reconciler::new(c, t.store.clone(), p, opts());
    let e = r.plan().await.unwrap_err();
    assert!(matches!(e, ProvisionError::Unauthorized { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("401") && msg.contains("API token"), "{msg}");
    assert!(
        !msg.contains("not-the-token"),
        "the token never appears: {msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_admin_account_is_told_which_permission_it_needs() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    add_people(&*t.store, &emails("a", "acme.com", 2)).await;
    let acc = h.non_admin_account();
    let c = client_as(&h, &acc.email, &acc.api_token);
    let p = policy(
        vec![aud("acme", &["acme.com"], &["KB"], Delivery::Group)],
        &[],
    );
    let r = Reconciler::new(c, t.store.clone(), p, opts());
    let plan = r.plan().await.unwrap();
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert!(s.failed >= 1, "{s}");
    let (_, msg) = &s.failures[0];
    assert!(msg.contains("403") && msg.contains("admin"), "{msg}");
    assert!(
        s.to_string().contains("fix: give the service account"),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_access_check_is_explained_and_the_fallback_used() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    h.state().write(|s| s.check_access_enabled = false);
    let people = emails("a", "acme.com", 3);
    add_people(&*t.store, &people).await;
    let p = policy(
        vec![aud("acme", &["acme.com"], &["KB"], Delivery::Group)],
        &[],
    );
    let r = reconciler(&h, t.store.clone(), p, opts());
    let plan = r.plan().await.unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.message == ACCESS_CHECK_DISABLED),
        "{plan}"
    );
    assert!(plan.to_string().contains("503"));
    // No invitation (invite-by-email is off too); people are created and added directly.
    assert!(
        !plan.actions.iter().any(|a| a.op.kind() == "invite"),
        "{plan}"
    );
    assert_eq!(
        plan.actions
            .iter()
            .filter(|a| a.op.kind() == "create-site-user")
            .count(),
        3
    );
    let s = r.apply(&plan, &NoProgress).await.unwrap();
    assert_eq!(s.failed, 0, "{s}");
    assert_eq!(group_member_emails(&h, "kbgate-acme").len(), 3);
    let plan = r.plan().await.unwrap();
    assert!(plan.is_empty(), "{plan}");
}

#[tokio::test]
async fn csv_import_keeps_good_rows_and_reports_bad_ones() {
    let t = kbgate_store::testing::sqlite().await;
    let p = policy(
        vec![aud("acme", &["acme.com"], &["KB"], Delivery::Group)],
        &[],
    );
    let csv = "\u{feff}Name,EMAIL,company\n\
               Ann,ann@acme.com,Acme\n\
               \"Bob, Jr.\",Bob@ACME.com,Acme\n\
               Eve,not-an-email,Evil\n\
               \n\
               Ann again,ann@acme.com,Acme\n\
               Carl,,Acme\n\
               Dan,dan@other.org,Other\n\
               Quote,\"broken,x\n";
    let r = import_people_csv(&*t.store, &p, csv.as_bytes(), Utc::now())
        .await
        .unwrap();
    assert_eq!(r.added, 3, "{r:?}");
    assert_eq!(r.duplicates, 1);
    assert_eq!(r.outside_policy, 1);
    let lines: Vec<usize> = r.bad_rows.iter().map(|b| b.line).collect();
    assert_eq!(lines, vec![4, 7, 9], "{r:?}");
    let people: Vec<String> = list_people(&*t.store)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.email)
        .collect();
    // The domain is normalised; the local part is kept as given (native mode compares
    // addresses case-insensitively, as Atlassian does).
    assert_eq!(people, ["Bob@acme.com", "ann@acme.com", "dan@other.org"]);
    // A second import of the same file adds nobody.
    let r = import_people_csv(&*t.store, &p, csv.as_bytes(), Utc::now())
        .await
        .unwrap();
    assert_eq!((r.added, r.duplicates), (0, 4));
    // No email column: a clear error.
    let e = import_people_csv(&*t.store, &p, "name,mail\nx,y\n".as_bytes(), Utc::now())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no `email` column"), "{e}");
}

#[tokio::test]
async fn csv_import_reads_quoted_fields_spanning_lines() {
    let t = kbgate_store::testing::sqlite().await;
    let p = policy(
        vec![aud("acme", &["acme.com"], &["KB"], Delivery::Group)],
        &[],
    );
    // The old line-based reader dropped Bob (his row was split in two at the line break).
    let csv = "name,email,notes\n\
               \"Bob\nJunior\",bob@acme.com,\"line one\r\nline two\"\n\
               Ann,ann@acme.com,x\n\
               Cy,\"cy@acme.com\",\"a \"\"quoted\"\"\nnote\"\n";
    let r = import_people_csv(&*t.store, &p, csv.as_bytes(), Utc::now())
        .await
        .unwrap();
    assert_eq!((r.added, r.bad_rows.len()), (3, 0), "{r:?}");
    let people: Vec<String> = list_people(&*t.store)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.email)
        .collect();
    assert_eq!(people, ["ann@acme.com", "bob@acme.com", "cy@acme.com"]);
    // Line numbers still name where a bad record starts, after multi-line ones.
    let csv = "email,notes\nann@acme.com,\"a\nb\nc\"\nnot-an-email,x\n";
    let r = import_people_csv(&*t.store, &p, csv.as_bytes(), Utc::now())
        .await
        .unwrap();
    let lines: Vec<usize> = r.bad_rows.iter().map(|b| b.line).collect();
    assert_eq!(lines, [5], "{r:?}");
}

/// Every plan is kept in the store as the latest (what the admin console shows without a
/// Confluence call), with the calls it took; a plan that fails keeps the previous one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_plan_is_kept_as_the_latest() {
    let t = kbgate_store::testing::sqlite().await;
    let h = sim(SimConfig::default()).await;
    assert_eq!(
        kbgate_provision::latest_plan(&*t.store).await.unwrap(),
        None
    );
    add_people(&*t.store, &emails("a", "acme.com", 3)).await;
    let p = policy(
        vec![aud("acme", &["acme.com"], &["KB"], Delivery::Group)],
        &[],
    );
    let r = Reconciler::new(client(&h), t.store.clone(), p.clone(), opts());
    h.reset_stats();
    let plan = r.plan().await.unwrap();
    let kept = kbgate_provision::latest_plan(&*t.store)
        .await
        .unwrap()
        .expect("kept");
    assert_eq!(kept.plan.actions, plan.actions);
    assert_eq!(kept.plan.generated_at, plan.generated_at);
    assert_eq!(kept.calls, h.stats().total);
    assert!(kept.calls > 0);
    assert!((Utc::now() - kept.computed_at).num_seconds() < 60);
    // A plan that fails (wrong token) leaves the latest one as it was.
    let acc = h.service_account();
    let bad = Reconciler::new(
        client_as(&h, &acc.email, "nope"),
        t.store.clone(),
        p,
        opts(),
    );
    assert!(bad.plan().await.is_err());
    let again = kbgate_provision::latest_plan(&*t.store)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, kept);
}
