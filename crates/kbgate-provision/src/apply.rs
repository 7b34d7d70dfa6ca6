//! Journaled execution of a plan. Every action is written to the store's journal as
//! `pending` before its call and as `done`, `skipped`, `failed` or `unknown` after it, so a
//! run that is killed can be resumed: the next plan re-reads Confluence, and an invitation
//! whose outcome is not known is re-checked against the site and sent again only to people
//! still without access once it had time to complete (`ReconcileOptions::invite_retry_after`).
//! Invitations sent by a run are waited for (`ReconcileOptions::invite_wait`) and their
//! people added to their group in the same run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use confluence_client::{Client, PermissionSubject, SpaceOperation};
use futures::StreamExt;
use kbgate_store::{JournalEntry, PersonRecord, Store};
use serde::Serialize;
use serde_json::json;

use crate::error::{ProvisionError, describe_failure};
use crate::owned::{self, Subject, kind};
use crate::plan::{Action, Op, Plan};

/// Journal states.
pub mod state {
    /// Recorded before the call.
    pub const PENDING: &str = "pending";
    /// The call succeeded (or its effect was already there).
    pub const DONE: &str = "done";
    /// Not attempted (a prerequisite failed or is missing).
    pub const SKIPPED: &str = "skipped";
    /// Refused by Confluence: certainly not done.
    pub const FAILED: &str = "failed";
    /// Refused because a site limit is reached (e.g. the guest allowance): not done, not a
    /// failure; a later run does it once there is room.
    pub const WAITING: &str = "waiting";
    /// A 5xx or a broken connection on a write: it may or may not have happened.
    pub const UNKNOWN: &str = "unknown";
}

/// How one action ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Done (or already so).
    Done,
    /// Not attempted, and why.
    Skipped {
        /// Why.
        why: String,
    },
    /// Not done because a site limit is reached (Confluence said so, or a prerequisite waits
    /// on it); not a failure: a later run does it once there is room.
    Waiting {
        /// The limit.
        limit: confluence_client::Limit,
        /// What Confluence said, and the way out.
        why: String,
    },
    /// Failed, with a message naming the fix where one is known.
    Failed {
        /// What went wrong.
        error: String,
        /// The write may have happened (5xx, broken connection).
        uncertain: bool,
    },
}

/// Progress of an apply, rendered by the binary (e.g. an indicatif bar). All methods have
/// empty defaults.
pub trait ApplyProgress: Send + Sync {
    /// Called once with the number of actions.
    fn started(&self, total: usize) {
        let _ = total;
    }
    /// Called after each action.
    fn finished(&self, action: &Action, outcome: &Outcome) {
        let _ = (action, outcome);
    }
    /// Free-form news (phase changes, verification).
    fn note(&self, message: &str) {
        let _ = message;
    }
}

/// Progress that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ApplyProgress for NoProgress {}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplySummary {
    /// Actions done.
    pub done: usize,
    /// Actions not attempted.
    pub skipped: usize,
    /// Actions that failed.
    pub failed: usize,
    /// Actions Confluence refused because a site limit is reached (not failures).
    pub waiting: usize,
    /// `(action id, message)` of each action waiting on a limit.
    pub waiting_on: Vec<(String, String)>,
    /// People the plan left out because a site limit is reached ([`crate::Plan::limits`]).
    pub held: usize,
    /// `(action id, message)` of each failure.
    pub failures: Vec<(String, String)>,
    /// People created on the site whom `check-access-by-email` does not show yet.
    pub unverified: Vec<String>,
    /// `(email, why)` of people waiting on an invitation: sent by this run and not complete
    /// within [`crate::ReconcileOptions::invite_wait`], or waiting since an earlier run
    /// ([`crate::Plan::awaiting`]). Not granted; a later apply finishes them.
    pub awaiting: Vec<(String, String)>,
    /// Invitations of this run that completed within the wait (their invitees were then
    /// added to their group in the same run).
    pub invitations_completed: usize,
    /// HTTP requests sent to Confluence (retries included).
    pub calls: u64,
    /// Plan/apply rounds (1 for a single apply).
    pub rounds: u32,
}

impl ApplySummary {
    pub(crate) fn add(&mut self, o: ApplySummary) {
        self.done += o.done;
        self.skipped += o.skipped;
        self.failed += o.failed;
        self.failures.extend(o.failures);
        self.waiting += o.waiting;
        self.waiting_on.extend(o.waiting_on);
        // What is held is what the last round's plan held.
        self.held = o.held;
        self.unverified = o.unverified;
        // What waits is what waits after the last round.
        self.awaiting = o.awaiting;
        self.invitations_completed += o.invitations_completed;
        self.calls += o.calls;
        self.rounds += o.rounds;
    }
}

impl ApplySummary {
    /// True when some of the policy could not be applied because a site limit is reached
    /// (people held by the plan, or refused by Confluence at the limit).
    pub fn limits_reached(&self) -> bool {
        self.held > 0 || self.waiting > 0
    }
}

impl fmt::Display for ApplySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Apply: {} done, {} skipped, {} failed; {} Confluence call(s){}.",
            self.done,
            self.skipped,
            self.failed,
            self.calls,
            if self.rounds > 1 {
                format!(" over {} rounds", self.rounds)
            } else {
                String::new()
            }
        )?;
        for (id, e) in self.failures.iter().take(20) {
            writeln!(f, "  failed {id}: {e}")?;
        }
        if self.limits_reached() {
            writeln!(
                f,
                "  waiting on a site limit (not failures): {} person(s) left out by the plan, {} \
                 action(s) refused by Confluence at the limit",
                self.held, self.waiting
            )?;
        }
        for (id, e) in self.waiting_on.iter().take(20) {
            writeln!(f, "  waiting {id}: {e}")?;
        }
        if self.failures.len() > 20 {
            writeln!(f, "  … and {} more failures", self.failures.len() - 20)?;
        }
        if !self.awaiting.is_empty() {
            writeln!(
                f,
                "  {} person(s) wait on an invitation (not granted yet):",
                self.awaiting.len()
            )?;
            for (email, why) in self.awaiting.iter().take(20) {
                writeln!(f, "  waiting {email}: {why}")?;
            }
            if self.awaiting.len() > 20 {
                writeln!(f, "  … and {} more waiting", self.awaiting.len() - 20)?;
            }
        }
        if !self.unverified.is_empty() {
            writeln!(
                f,
                "  {} created people are not yet visible to check-access-by-email (e.g. {})",
                self.unverified.len(),
                self.unverified[0]
            )?;
        }
        Ok(())
    }
}

pub(crate) struct Exec<'a> {
    pub client: &'a Client,
    pub store: &'a dyn Store,
    pub progress: &'a dyn ApplyProgress,
    pub allow_undocumented: bool,
    pub concurrency: usize,
    pub now: DateTime<Utc>,
    /// How long to wait for this run's invitations ([`crate::ReconcileOptions::invite_wait`]).
    invite_wait: std::time::Duration,
    /// The group invitees join, where their account ids are found.
    default_access_group: String,
    /// (audience, email) of the invitations Confluence accepted in this run.
    invited: Mutex<Vec<(String, String)>>,
    accounts: Mutex<BTreeMap<String, String>>,
    group_ids: Mutex<BTreeMap<String, String>>,
    failed_people: Mutex<BTreeSet<String>>,
    /// (group, email) of memberships that did not succeed in this run.
    failed_memberships: Mutex<BTreeSet<(String, String)>>,
    /// Set once Confluence answered that the guest limit is reached (its words): the
    /// remaining guest memberships of the run wait without a call.
    guest_limit_reached: Mutex<Option<String>>,
    /// (group, email) of memberships refused at a site limit in this run.
    waiting_memberships: Mutex<BTreeMap<(String, String), confluence_client::Limit>>,
    created: Mutex<Vec<String>>,
    summary: Mutex<ApplySummary>,
    fatal: Mutex<Option<ProvisionError>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the data is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a failed write may nevertheless have happened.
fn uncertain(e: &confluence_client::Error) -> bool {
    use confluence_client::Error as E;
    matches!(
        e,
        E::Server { .. } | E::Transport { .. } | E::ServiceUnavailable { .. } | E::Decode { .. }
    )
}

impl<'a> Exec<'a> {
    pub(crate) fn new(
        client: &'a Client,
        store: &'a dyn Store,
        progress: &'a dyn ApplyProgress,
        options: &crate::ReconcileOptions,
        plan: &Plan,
    ) -> Self {
        Exec {
            client,
            store,
            progress,
            allow_undocumented: options.allow_undocumented_apis,
            concurrency: options.concurrency.max(1),
            now: Utc::now(),
            invite_wait: options.invite_wait,
            default_access_group: options.default_access_group.clone(),
            invited: Mutex::new(Vec::new()),
            accounts: Mutex::new(plan.context.accounts.clone()),
            group_ids: Mutex::new(plan.context.group_ids.clone()),
            failed_people: Mutex::new(BTreeSet::new()),
            failed_memberships: Mutex::new(BTreeSet::new()),
            waiting_memberships: Mutex::new(BTreeMap::new()),
            guest_limit_reached: Mutex::new(None),
            created: Mutex::new(Vec::new()),
            summary: Mutex::new(ApplySummary::default()),
            fatal: Mutex::new(None),
        }
    }

    pub(crate) async fn run(self, plan: &Plan) -> Result<ApplySummary, ProvisionError> {
        let before = self.client.stats().total;
        for email in &plan.context.discovered {
            if let Ok(e) = kbgate_policy::Email::parse(email) {
                self.store
                    .add_person(&PersonRecord {
                        email: e.as_str().to_owned(),
                        domain: e.domain().as_str().to_owned(),
                        source: "discovery".into(),
                        created_at: self.now,
                    })
                    .await?;
            }
        }
        self.progress.started(plan.actions.len());
        let mut phases: BTreeMap<u8, Vec<&Action>> = BTreeMap::new();
        for a in &plan.actions {
            phases.entry(a.op.phase()).or_default().push(a);
        }
        for (_, actions) in phases {
            if lock(&self.fatal).is_some() {
                for a in actions {
                    self.finish(
                        a,
                        Outcome::Skipped {
                            why: "the run stopped after a fatal error".into(),
                        },
                    );
                }
                continue;
            }
            if matches!(actions[0].op, Op::Invite { .. }) {
                let batches: Vec<&[&Action]> =
                    actions.chunks(confluence_client::EMAILS_CAP).collect();
                futures::stream::iter(batches)
                    .for_each_concurrent(self.concurrency, |b| self.invite_batch(b))
                    .await;
            } else {
                // After Confluence's first "guest limit" answer, the remaining memberships that
                // would make people guests wait without a call (see `run_one`). When the plan's
                // count of room is exact (it is with `allow_undocumented_apis`), nothing is
                // refused and the outcome does not depend on the order of the requests; when
                // kbgate could not see every guest, which of the last people get the last
                // places can depend on it (the plan still reports every one of them).
                futures::stream::iter(actions)
                    .for_each_concurrent(self.concurrency, |a| self.run_one(a))
                    .await;
            }
        }
        self.await_invitations().await;
        self.verify().await;
        if let Some(e) = lock(&self.fatal).take() {
            return Err(e);
        }
        let mut s = std::mem::take(&mut *lock(&self.summary));
        s.held = plan.waiting_on_limits();
        for w in &plan.awaiting {
            let why = match w.retry_at {
                Some(t) => format!(
                    "invitation of unknown outcome (journaled {}), no site access yet; sent \
                     again from {} if still without access",
                    w.since.format("%Y-%m-%d %H:%M UTC"),
                    t.format("%Y-%m-%d %H:%M UTC")
                ),
                None => format!(
                    "invited {}, the invitation has not completed yet; given access by the \
                     first apply after it does",
                    w.since.format("%Y-%m-%d %H:%M UTC")
                ),
            };
            s.awaiting.push((w.email.clone(), why));
        }
        s.calls = self.client.stats().total.saturating_sub(before);
        s.rounds = 1;
        Ok(s)
    }

    fn finish(&self, a: &Action, o: Outcome) {
        {
            let mut s = lock(&self.summary);
            match &o {
                Outcome::Done => s.done += 1,
                Outcome::Skipped { .. } => s.skipped += 1,
                Outcome::Failed { error, .. } => {
                    s.failed += 1;
                    s.failures.push((a.id.clone(), error.clone()));
                }
                Outcome::Waiting { why, .. } => {
                    s.waiting += 1;
                    s.waiting_on.push((a.id.clone(), why.clone()));
                }
            }
        }
        self.progress.finished(a, &o);
    }

    fn entry(&self, a: &Action, state: &str, error: Option<&str>) -> JournalEntry {
        let now = Utc::now();
        JournalEntry {
            action_id: a.id.clone(),
            kind: a.op.kind().to_owned(),
            target: match &a.op {
                Op::Invite { email } | Op::CreateSiteUser { email } => email.clone(),
                other => other.target(),
            },
            state: state.to_owned(),
            detail: json!({ "audience": a.audience, "op": a.op, "reason": a.reason, "error": error }),
            created_at: now,
            updated_at: now,
        }
    }

    async fn journal(&self, a: &Action, state: &str, error: Option<&str>) -> bool {
        match self.store.journal_put(&self.entry(a, state, error)).await {
            Ok(()) => true,
            Err(e) => {
                lock(&self.fatal).get_or_insert(ProvisionError::Store(e));
                false
            }
        }
    }

    fn state_of(o: &Outcome) -> (&'static str, Option<&str>) {
        match o {
            Outcome::Done => (state::DONE, None),
            Outcome::Skipped { why } => (state::SKIPPED, Some(why)),
            Outcome::Waiting { why, .. } => (state::WAITING, Some(why)),
            Outcome::Failed {
                error,
                uncertain: true,
            } => (state::UNKNOWN, Some(error)),
            Outcome::Failed { error, .. } => (state::FAILED, Some(error)),
        }
    }

    async fn run_one(&self, a: &Action) {
        if lock(&self.fatal).is_some() {
            self.finish(
                a,
                Outcome::Skipped {
                    why: "the run stopped after a fatal error".into(),
                },
            );
            return;
        }
        if !self.journal(a, state::PENDING, None).await {
            return;
        }
        let full = makes_guest(&a.op)
            .then(|| lock(&self.guest_limit_reached).clone())
            .flatten();
        let outcome = match full {
            Some(why) => Outcome::Waiting {
                limit: confluence_client::Limit::Guests,
                why: format!("not tried: {why}"),
            },
            None => self.execute_reporting(a).await,
        };
        if let (Outcome::Waiting { limit, why }, true) = (&outcome, makes_guest(&a.op))
            && *limit == confluence_client::Limit::Guests
        {
            lock(&self.guest_limit_reached).get_or_insert_with(|| why.clone());
        }
        if let (Outcome::Failed { .. } | Outcome::Skipped { .. }, Op::CreateSiteUser { email }) =
            (&outcome, &a.op)
        {
            lock(&self.failed_people).insert(email.clone());
        }
        self.after(a, outcome).await;
    }

    async fn execute_reporting(&self, a: &Action) -> Outcome {
        match self.execute(a).await {
            Ok(o) => o,
            Err(Fail::Client(what, e)) => self.client_failure(&what, e),
            Err(Fail::Store(e)) => {
                lock(&self.fatal).get_or_insert(ProvisionError::Store(e));
                Outcome::Failed {
                    error: "store error".into(),
                    uncertain: true,
                }
            }
        }
    }

    async fn after(&self, a: &Action, outcome: Outcome) {
        if let (
            Outcome::Failed { .. } | Outcome::Skipped { .. },
            Op::AddGroupMember { group, email },
        ) = (&outcome, &a.op)
        {
            lock(&self.failed_memberships).insert((group.clone(), email.clone()));
        }
        if let (Outcome::Waiting { limit, .. }, Op::AddGroupMember { group, email }) =
            (&outcome, &a.op)
        {
            lock(&self.waiting_memberships).insert((group.clone(), email.clone()), *limit);
        }
        let (st, err) = Self::state_of(&outcome);
        self.journal(a, st, err).await;
        self.finish(a, outcome);
    }

    fn client_failure(&self, what: &str, e: confluence_client::Error) -> Outcome {
        // A site limit is not a failure: the action waits until there is room.
        if let Some(limit) = e.limit() {
            return Outcome::Waiting {
                limit,
                why: describe_failure(what, &e),
            };
        }
        let error = describe_failure(what, &e);
        let unc = uncertain(&e);
        if matches!(e, confluence_client::Error::Unauthorized { .. }) {
            lock(&self.fatal).get_or_insert(ProvisionError::from_client(what, e));
        }
        Outcome::Failed {
            error,
            uncertain: unc,
        }
    }

    async fn invite_batch(&self, batch: &[&Action]) {
        if lock(&self.fatal).is_some() {
            for a in batch {
                self.finish(
                    a,
                    Outcome::Skipped {
                        why: "the run stopped after a fatal error".into(),
                    },
                );
            }
            return;
        }
        for a in batch {
            if !self.journal(a, state::PENDING, None).await {
                return;
            }
        }
        let emails: Vec<&str> = batch.iter().filter_map(|a| person_of(&a.op)).collect();
        let outcome = match self.client.invite_by_email(&emails).await {
            Ok(()) => Outcome::Done,
            Err(e) => self.client_failure("invite by email", e),
        };
        let (st, err) = Self::state_of(&outcome);
        for a in batch {
            self.journal(a, st, err).await;
            if outcome == Outcome::Done
                && let Some(email) = person_of(&a.op)
            {
                lock(&self.invited).push((a.audience.clone(), email.to_owned()));
            }
            self.finish(a, outcome.clone());
        }
    }

    /// Waits up to `invite_wait` for the invitations Confluence accepted in this run to
    /// complete, then adds the invitees to their audience's group in the same run, so a group
    /// audience converges in one apply. Confluence processes an invitation asynchronously ("may
    /// take some time to complete", v2 `inviteByEmail`) and lists no invitations in flight, so
    /// completion is seen the way the plan sees it: the invitee has site access by
    /// `check-access-by-email` (100 emails a call, only those not seen yet, polled with a
    /// growing pause), and their account id is read from the site's default product-access
    /// group they join (the plan's way too). Whoever is not there in time is reported as
    /// waiting, never as a grant.
    async fn await_invitations(&self) {
        let invited = std::mem::take(&mut *lock(&self.invited));
        if invited.is_empty() || lock(&self.fatal).is_some() {
            return;
        }
        let mut pending: BTreeSet<String> = invited.iter().map(|(_, e)| e.clone()).collect();
        let mut arrived: BTreeSet<String> = BTreeSet::new();
        let mut trouble: Option<String> = None;
        let wait = self.invite_wait;
        if !wait.is_zero() {
            self.progress.note(&format!(
                "waiting up to {} for {} invitation(s) to complete",
                human(wait),
                pending.len()
            ));
            let deadline = std::time::Instant::now() + wait;
            let mut pause = std::time::Duration::from_millis(500);
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(pause.min(left)).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(15));
                let list: Vec<&str> = pending.iter().map(String::as_str).collect();
                match self.client.check_access_by_email(&list).await {
                    Ok(a) => {
                        let without: BTreeSet<String> = a
                            .emails_without_access
                            .iter()
                            .chain(&a.invalid_emails)
                            .map(|e| crate::actual::normalise(e))
                            .collect();
                        arrived.extend(pending.iter().filter(|e| !without.contains(*e)).cloned());
                        pending.retain(|e| without.contains(e));
                    }
                    Err(e) => {
                        trouble = Some(format!("their site access could not be checked: {e}"));
                        break;
                    }
                }
                if pending.is_empty() {
                    break;
                }
            }
        }
        let mut ids: BTreeMap<String, String> = BTreeMap::new();
        if !arrived.is_empty() {
            let mut found = crate::actual::Actual::default();
            match crate::actual::resolve_from_group(
                self.client,
                &self.default_access_group,
                &arrived,
                &mut found,
            )
            .await
            {
                Ok(()) => ids = found.accounts,
                Err(e) => trouble = Some(format!("their account ids could not be read: {e}")),
            }
        }
        lock(&self.summary).invitations_completed += arrived.len();
        let mut members = Vec::new();
        for (audience, email) in &invited {
            let group = crate::desired::group_name(audience);
            match ids.get(email) {
                Some(id) => {
                    lock(&self.accounts).insert(email.clone(), id.clone());
                    members.push(Action::new(
                        audience,
                        Op::AddGroupMember {
                            group,
                            email: email.clone(),
                        },
                        format!(
                            "{} is in audience {audience} (group); invited in this run, the \
                             invitation completed",
                            email.rsplit('@').next().unwrap_or("")
                        ),
                    ));
                }
                None => {
                    let why = if arrived.contains(email) {
                        format!(
                            "invited in this run and on the site, but {}; added to {group} by \
                             the next apply",
                            trouble.as_deref().unwrap_or(
                                "their account id is not among the members of the default \
                                 product-access group yet"
                            )
                        )
                    } else {
                        format!(
                            "invited in this run; the invitation did not complete within {} \
                             (Confluence processes invitations asynchronously){}; not granted \
                             yet: added to {group} by the first apply after it completes",
                            human(wait),
                            trouble
                                .as_deref()
                                .map(|t| format!(", and {t}"))
                                .unwrap_or_default()
                        )
                    };
                    lock(&self.summary).awaiting.push((email.clone(), why));
                }
            }
        }
        if members.is_empty() {
            return;
        }
        self.progress.note(&format!(
            "{} invitation(s) completed: adding them to their groups",
            members.len()
        ));
        futures::stream::iter(&members)
            .for_each_concurrent(self.concurrency, |a| self.run_one(a))
            .await;
    }

    fn account(&self, email: &str) -> Result<String, Outcome> {
        if let Some(id) = lock(&self.accounts).get(email) {
            return Ok(id.clone());
        }
        let why = if lock(&self.failed_people).contains(email) {
            "creating the person's account did not succeed".to_owned()
        } else {
            "the person's account id is not known yet".to_owned()
        };
        Err(Outcome::Skipped { why })
    }

    fn group_id(&self, group: &str) -> Result<String, Outcome> {
        lock(&self.group_ids)
            .get(group)
            .cloned()
            .ok_or_else(|| Outcome::Skipped {
                why: format!("group {group} does not exist (creating it failed)"),
            })
    }

    async fn own(&self, r: kbgate_store::OwnedResource) -> Result<(), Fail> {
        self.store.record_owned(&r).await.map_err(Fail::Store)
    }

    async fn forget(&self, kind: &str, target: &str) -> Result<(), Fail> {
        self.store
            .forget_owned(kind, target)
            .await
            .map(drop)
            .map_err(Fail::Store)
    }

    async fn execute(&self, a: &Action) -> Result<Outcome, Fail> {
        let c = self.client;
        let now = self.now;
        match &a.op {
            Op::CreateGroup { group } => {
                let what = format!("create group {group}");
                let g = match c.create_group(group).await {
                    Ok(g) => g,
                    Err(e) if e.is_already_exists() => {
                        // Ours only if an earlier run of kbgate sent this very creation.
                        let earlier = self.store.journal_get(&a.id).await.map_err(Fail::Store)?;
                        let ours = earlier.is_some_and(|j| {
                            j.state == state::PENDING || j.state == state::UNKNOWN
                        });
                        if !ours {
                            return Ok(Outcome::Failed {
                                error: format!(
                                    "{what}: a group of that name appeared meanwhile; kbgate does not take over groups it did not create"
                                ),
                                uncertain: false,
                            });
                        }
                        match c
                            .group_by_name(group)
                            .await
                            .map_err(|e| Fail::Client(what.clone(), e))?
                        {
                            Some(g) => g,
                            None => return Err(Fail::Client(what, e)),
                        }
                    }
                    Err(e) => return Err(Fail::Client(what, e)),
                };
                self.own(owned::record(
                    kind::GROUP,
                    group,
                    json!({ "id": g.id, "audience": a.audience }),
                    now,
                ))
                .await?;
                lock(&self.group_ids).insert(group.clone(), g.id);
                Ok(Outcome::Done)
            }
            Op::GrantGroupRead { space, group } => {
                let gid = match self.group_id(group) {
                    Ok(g) => g,
                    Err(o) => return Ok(o),
                };
                let what = format!("give group {group} read on space {space}");
                match c
                    .add_space_permission(
                        space,
                        &PermissionSubject::group(gid.clone()),
                        &SpaceOperation::read_space(),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_already_exists() => {}
                    Err(e) => return Err(Fail::Client(what, e)),
                }
                let target = owned::read_target(space, &Subject::Group(gid));
                self.own(owned::record(
                    kind::SPACE_READ,
                    &target,
                    json!({ "audience": a.audience, "holder": format!("group {group}") }),
                    now,
                ))
                .await?;
                Ok(Outcome::Done)
            }
            Op::RevokeSpacePermission {
                space,
                permission_id,
                ..
            } => {
                let what = format!("remove permission {permission_id} from space {space}");
                match c.remove_space_permission(space, permission_id).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(Fail::Client(what, e)),
                }
                // Forget whichever owned read this permission was.
                let owned = self
                    .store
                    .owned(Some(kind::SPACE_READ))
                    .await
                    .map_err(Fail::Store)?;
                let holder_targets: Vec<String> = owned
                    .into_iter()
                    .filter(|r| {
                        r.target.starts_with(&format!("{space}|"))
                            && r.detail.get("audience").and_then(|v| v.as_str())
                                == Some(a.audience.as_str())
                    })
                    .filter(|r| match &a.op {
                        Op::RevokeSpacePermission { holder, .. } => {
                            r.detail.get("holder").and_then(|v| v.as_str()) == Some(holder.as_str())
                        }
                        _ => false,
                    })
                    .map(|r| r.target)
                    .collect();
                for t in holder_targets {
                    self.forget(kind::SPACE_READ, &t).await?;
                }
                Ok(Outcome::Done)
            }
            Op::SetUnlicensedView { space, enable } => {
                let what = format!(
                    "switch unlicensed view of {space} {}",
                    if *enable { "on" } else { "off" }
                );
                let call = c.set_unlicensed_view(space, *enable);
                self.switch(
                    *enable,
                    kind::UNLICENSED_VIEW,
                    space,
                    &a.audience,
                    what,
                    call,
                )
                .await
            }
            Op::SetGlobalUnlicensedAccess { enable } => {
                let what = format!(
                    "switch the site's unlicensed access {}",
                    if *enable { "on" } else { "off" }
                );
                let call = c.set_global_unlicensed_access(*enable);
                self.switch(
                    *enable,
                    kind::GLOBAL_UNLICENSED,
                    "site",
                    &a.audience,
                    what,
                    call,
                )
                .await
            }
            Op::CreateSiteUser { email } => {
                let what = format!("put {email} on the site (Jira user, no products)");
                match c.create_site_user(email).await {
                    Ok(u) => {
                        self.own(owned::account_record(email, &u.account_id, true, now))
                            .await?;
                        lock(&self.accounts).insert(email.clone(), u.account_id);
                        lock(&self.created).push(email.clone());
                        Ok(Outcome::Done)
                    }
                    Err(e) if e.is_already_exists() => Ok(Outcome::Skipped {
                        why: "already on the site".into(),
                    }),
                    Err(e) => Err(Fail::Client(what, e)),
                }
            }
            Op::Invite { .. } => Ok(Outcome::Skipped {
                why: "invitations are sent in batches".into(),
            }),
            Op::AddGroupMember { group, email } => {
                let id = match self.account(email) {
                    Ok(id) => id,
                    Err(o) => return Ok(o),
                };
                let gid = match self.group_id(group) {
                    Ok(g) => g,
                    Err(o) => return Ok(o),
                };
                let what = format!("add {email} to group {group}");
                c.add_group_member(&gid, &id)
                    .await
                    .map_err(|e| Fail::Client(what, e))?;
                self.own(owned::account_record(email, &id, false, now))
                    .await?;
                self.own(owned::record(
                    kind::GROUP_MEMBER,
                    &owned::member_target(group, &id),
                    json!({ "audience": a.audience, "email": email }),
                    now,
                ))
                .await?;
                Ok(Outcome::Done)
            }
            Op::RemoveGroupMember {
                group,
                account_id,
                email,
            } => {
                let gid = match self.group_id(group) {
                    Ok(g) => g,
                    Err(o) => return Ok(o),
                };
                let what = format!("remove {email} from group {group}");
                match c.remove_group_member(&gid, account_id).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(Fail::Client(what, e)),
                }
                self.forget(kind::GROUP_MEMBER, &owned::member_target(group, account_id))
                    .await?;
                Ok(Outcome::Done)
            }
            Op::AssignGuestSpace { email, space } => {
                let id = match self.account(email) {
                    Ok(id) => id,
                    Err(o) => return Ok(o),
                };
                // The person must be a guest before their space is assigned: a space
                // permission given to someone who is not a guest yet does not become their
                // guest space when they turn into one, and they could not read it.
                let group = crate::desired::guest_group_name(&a.audience);
                if let Some(limit) = lock(&self.waiting_memberships)
                    .get(&(group.clone(), email.clone()))
                    .copied()
                {
                    return Ok(Outcome::Waiting {
                        limit,
                        why: format!(
                            "{email} could not be made a guest ({limit} reached); the space is \
                             assigned once there is room"
                        ),
                    });
                }
                if lock(&self.failed_memberships).contains(&(group.clone(), email.clone())) {
                    return Ok(Outcome::Skipped {
                        why: format!(
                            "adding them to the guest group {group} did not succeed; the space \
                             is assigned once they are a guest"
                        ),
                    });
                }
                let what = format!("assign space {space} to guest {email}");
                if self.allow_undocumented {
                    let r = c
                        .undocumented()
                        .reset_ex_co_space_permissions(&id, space)
                        .await
                        .map_err(|e| Fail::Client(what.clone(), e))?;
                    if !r.success {
                        return Ok(Outcome::Failed {
                            error: format!(
                                "{what}: Confluence refused: {}",
                                serde_json::Value::Array(r.errors)
                            ),
                            uncertain: false,
                        });
                    }
                } else {
                    match c
                        .add_space_permission(
                            space,
                            &PermissionSubject::user(id.clone()),
                            &SpaceOperation::read_space(),
                        )
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.is_already_exists() => {}
                        Err(e) => return Err(Fail::Client(what, e)),
                    }
                }
                self.own(owned::account_record(email, &id, false, now))
                    .await?;
                let target = owned::read_target(space, &Subject::User(id));
                self.own(owned::record(
                    kind::SPACE_READ,
                    &target,
                    json!({ "audience": a.audience, "holder": email }),
                    now,
                ))
                .await?;
                Ok(Outcome::Done)
            }
        }
    }

    /// Sets a knowledge-base switch. The plan switches on only what is off, so switching on
    /// makes the switch kbgate's: the ownership record is written *before* the call, so that a
    /// run killed after the call still knows the switch is its own (and switches it off on
    /// revocation); it is dropped again when Confluence certainly did not do it. Switching
    /// off (only ever planned for a switch kbgate owns) forgets the record.
    async fn switch(
        &self,
        enable: bool,
        record_kind: &str,
        target: &str,
        audience: &str,
        what: String,
        call: impl std::future::Future<
            Output = Result<confluence_client::KbPermissionState, confluence_client::Error>,
        >,
    ) -> Result<Outcome, Fail> {
        if enable {
            self.own(owned::record(
                record_kind,
                target,
                json!({ "audience": audience }),
                self.now,
            ))
            .await?;
        }
        match call.await {
            Ok(_) => {}
            Err(e) => {
                if enable && !uncertain(&e) {
                    self.forget(record_kind, target).await?;
                }
                return Err(Fail::Client(what, e));
            }
        }
        if !enable {
            self.forget(record_kind, target).await?;
        }
        Ok(Outcome::Done)
    }

    /// Checks, in batches of 100, that the people created in this run now have site access.
    async fn verify(&self) {
        let created = std::mem::take(&mut *lock(&self.created));
        if created.is_empty() || lock(&self.fatal).is_some() {
            return;
        }
        self.progress.note(&format!(
            "verifying {} new site users with check-access-by-email",
            created.len()
        ));
        match self.client.check_access_by_email(&created).await {
            Ok(a) => {
                let missing: BTreeSet<String> = a
                    .emails_without_access
                    .iter()
                    .map(|e| crate::actual::normalise(e))
                    .collect();
                lock(&self.summary).unverified = created
                    .into_iter()
                    .filter(|e| missing.contains(e))
                    .collect();
            }
            Err(confluence_client::Error::ServiceUnavailable { .. }) => {
                self.progress.note(crate::actual::ACCESS_CHECK_DISABLED);
            }
            Err(e) => self
                .progress
                .note(&format!("could not verify new site users: {e}")),
        }
    }
}

/// A wait for humans: `2m`, `90s`, `1.5s`.
fn human(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else if d.subsec_millis() == 0 {
        format!("{secs}s")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

enum Fail {
    Client(String, confluence_client::Error),
    Store(kbgate_store::StoreError),
}

/// Whether the action adds someone to one of kbgate's guest groups (which makes them a guest).
fn makes_guest(op: &Op) -> bool {
    matches!(op, Op::AddGroupMember { group, .. } if group.starts_with(GUEST_GROUP_PREFIX))
}

/// Prefix of [`crate::desired::guest_group_name`].
const GUEST_GROUP_PREFIX: &str = "guests-kbgate-";

fn person_of(op: &Op) -> Option<&str> {
    match op {
        Op::CreateSiteUser { email }
        | Op::Invite { email }
        | Op::AddGroupMember { email, .. }
        | Op::AssignGuestSpace { email, .. } => Some(email),
        _ => None,
    }
}
