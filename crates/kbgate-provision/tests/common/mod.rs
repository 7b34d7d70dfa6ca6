//! Shared helpers: an in-process simulator, a fast client, policies and people.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use confluence_client::{Client, ClientConfig, RetryConfig};
use confluence_sim::{SimConfig, SimHandle};
use kbgate_policy::{Audience, AudienceName, Delivery, Domain, Policy, SpaceKey};
use kbgate_provision::{
    ProvisionError, ReconcileOptions, Reconciler, SiteSwitches, SwitchReader, SwitchState,
};
use kbgate_store::{PersonRecord, Store};

pub async fn sim(cfg: SimConfig) -> SimHandle {
    confluence_sim::spawn(cfg).await.expect("simulator starts")
}

pub fn client_as(h: &SimHandle, email: &str, token: &str) -> Client {
    let mut cfg = ClientConfig::new(h.base_url().parse().unwrap(), email, token);
    cfg.requests_per_second = 0;
    cfg.retry = RetryConfig {
        max_retries: 8,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(10),
        ..RetryConfig::default()
    };
    Client::new(cfg).unwrap()
}

pub fn client(h: &SimHandle) -> Client {
    let a = h.service_account();
    client_as(h, &a.email, &a.api_token)
}

pub fn aud(name: &str, domains: &[&str], spaces: &[&str], delivery: Delivery) -> Audience {
    Audience {
        name: AudienceName::parse(name).unwrap(),
        domains: domains.iter().map(|d| Domain::parse(d).unwrap()).collect(),
        include_subdomains: false,
        spaces: spaces.iter().map(|s| SpaceKey::parse(s).unwrap()).collect(),
        labels: vec![],
        expires: None,
        delivery,
    }
}

pub fn expired(mut a: Audience) -> Audience {
    a.expires = NaiveDate::from_ymd_opt(2020, 1, 1);
    a
}

pub fn policy(a: Vec<Audience>, deny: &[&str]) -> Policy {
    Policy::new(a, deny.iter().map(|d| Domain::parse(d).unwrap()).collect()).unwrap()
}

pub async fn add_people(store: &dyn Store, emails: &[String]) {
    for e in emails {
        let domain = e.rsplit('@').next().unwrap().to_owned();
        store
            .add_person(&PersonRecord {
                email: e.clone(),
                domain,
                source: "test".into(),
                created_at: Utc::now(),
            })
            .await
            .unwrap();
    }
}

pub fn emails(prefix: &str, domain: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}@{domain}")).collect()
}

pub fn reconciler(
    h: &SimHandle,
    store: Arc<dyn Store>,
    p: Policy,
    o: ReconcileOptions,
) -> Reconciler {
    Reconciler::new(client(h), store, p, o)
}

/// The default reader ([`SiteSwitches`]: unlicensed view per space, read from the site), plus
/// the site-wide switch read from the simulator's state (what `/_sim/switches` shows).
/// Confluence documents no read of the site-wide switch; this stands in for one, so that the
/// tests exercise what kbgate does once it knows that switch's state too.
pub struct SimSwitches(pub confluence_sim::Sim);

impl SwitchReader for SimSwitches {
    fn read<'a>(
        &'a self,
        client: &'a Client,
        spaces: &'a BTreeSet<String>,
    ) -> futures::future::BoxFuture<'a, Result<Option<SwitchState>, ProvisionError>> {
        Box::pin(async move {
            let mut state = SiteSwitches.read(client, spaces).await?.unwrap_or_default();
            state.global_unlicensed_access = Some(self.0.read(|s| s.global_unlicensed_access));
            Ok(Some(state))
        })
    }
}

/// A reconciler that reads the knowledge-base switches of the simulator, the site-wide one
/// included.
pub fn reconciler_reading_switches(
    h: &SimHandle,
    store: Arc<dyn Store>,
    p: Policy,
    o: ReconcileOptions,
) -> Reconciler {
    reconciler(h, store, p, o).with_switch_reader(Arc::new(SimSwitches(h.state())))
}

/// (spaces with unlicensed view on, global unlicensed access) in the simulator.
pub fn switches(h: &SimHandle) -> (BTreeSet<String>, bool) {
    h.state()
        .read(|s| (s.unlicensed_view.clone(), s.global_unlicensed_access))
}

/// Plans and applies until the plan is empty, letting invitations complete between rounds.
pub async fn converge(r: &Reconciler, h: &SimHandle, rounds: usize) {
    for _ in 0..rounds {
        let plan = r.plan().await.unwrap();
        if plan.is_empty() {
            return;
        }
        let s = r.apply(&plan, &kbgate_provision::NoProgress).await.unwrap();
        assert_eq!(s.failed, 0, "{s}");
        settle_invites(h);
    }
    let plan = r.plan().await.unwrap();
    assert!(plan.is_empty(), "did not converge: {plan}");
}

/// Options for tests: no waiting for unknown invitations unless a test says so.
pub fn opts() -> ReconcileOptions {
    ReconcileOptions::default()
}

/// Lets pending invitations complete (the simulator's invitations take 1 s of its clock).
pub fn settle_invites(h: &SimHandle) {
    h.state().advance_clock(chrono::Duration::seconds(5));
}

// ----- inspection of the simulator's state ---------------------------------------------

pub fn group_id(h: &SimHandle, name: &str) -> Option<String> {
    h.state().read(|s| {
        s.groups
            .values()
            .find(|g| g.name == name)
            .map(|g| g.id.clone())
    })
}

pub fn group_member_emails(h: &SimHandle, name: &str) -> BTreeSet<String> {
    h.state().read(|s| {
        s.groups
            .values()
            .find(|g| g.name == name)
            .map(|g| {
                g.members
                    .iter()
                    .filter_map(|id| s.users.get(id))
                    .map(|u| u.email.clone())
                    .collect()
            })
            .unwrap_or_default()
    })
}

pub fn account_of(h: &SimHandle, email: &str) -> Option<String> {
    h.state()
        .read(|s| s.user_by_email(email).map(|u| u.account_id.clone()))
}

/// (space, subject, operation key, operation target) of every permission naming `subject_id`.
pub fn permissions_of(h: &SimHandle, subject_id: &str) -> Vec<(String, String, String)> {
    h.state().read(|s| {
        s.space_permissions
            .values()
            .filter(|p| match &p.subject {
                confluence_sim::model::Subject::User(u) => u == subject_id,
                confluence_sim::model::Subject::Group(g) => g == subject_id,
            })
            .map(|p| {
                (
                    p.space_key.clone(),
                    p.operation.key.clone(),
                    p.operation.target.clone(),
                )
            })
            .collect()
    })
}

/// Every email the site has received an invitation for (pending or completed).
pub fn invited_or_present(h: &SimHandle) -> BTreeSet<String> {
    h.state().read(|s| {
        s.pending_invites
            .iter()
            .map(|i| i.email.clone())
            .chain(s.users_by_email.keys().cloned())
            .collect()
    })
}

pub fn sim_calls(h: &SimHandle) -> BTreeMap<String, u64> {
    h.stats().by_endpoint
}
