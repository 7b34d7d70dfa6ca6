//! [`Reconciler`]: the entry point the binary uses for `kbgate plan` and `kbgate apply`.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use confluence_client::Client;
use kbgate_policy::{Delivery, Email, Policy};
use kbgate_store::Store;

use crate::actual::{self, Actual, InviteRecord, SiteSwitches, SwitchReader};
use crate::apply::{ApplyProgress, ApplySummary, Exec};
use crate::desired::desired_state;
use crate::diff::{DiffOptions, diff};
use crate::error::ProvisionError;
use crate::owned::Owned;
use crate::plan::{Op, Plan};

/// Confluence Cloud's own name for the default product-access group, the one every licensed
/// user is in (the default of [`ReconcileOptions::default_access_group`]).
pub const DEFAULT_ACCESS_GROUP: &str = "confluence-users";

/// Default of [`ReconcileOptions::invite_retry_after`]: Confluence processes an invitation
/// asynchronously ("may take some time to complete", v2 `inviteByEmail`), in seconds on the
/// simulator and in practice; ten minutes leaves a wide margin before an invitation of unknown
/// outcome is sent again.
pub const DEFAULT_INVITE_RETRY_AFTER: Duration = Duration::minutes(10);

/// Default of [`ReconcileOptions::invite_wait`].
pub const DEFAULT_INVITE_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Knobs of a reconcile: plain values, so that native mode does not depend on how they are
/// configured (the binary maps `[confluence]` onto them).
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Use the undocumented `cgraphql` operations (`GuestDataQuery` to list guests,
    /// `ResetExCoSpacePermissionsMutation` to assign a guest's space). Default false.
    pub allow_undocumented_apis: bool,
    /// The group every licensed user is in (the site's default Confluence product-access
    /// group, the one invitees land in). Used to count licensed users for the guest allowance
    /// and to find the account ids of invited people once their invitation completes. Default
    /// [`DEFAULT_ACCESS_GROUP`].
    pub default_access_group: String,
    /// Paid (licensed) users on the site, for the allowance of 5 guests per paid user: the plan
    /// provisions only the guests that fit and reports the rest in `Plan::limits`. When set it
    /// wins over any count; otherwise kbgate counts the members of `default_access_group`
    /// (documented v1 `membersByGroupId`) when new guests are planned.
    pub licensed_users: Option<usize>,
    /// Concurrent single-object writes during apply.
    pub concurrency: usize,
    /// An invitation whose outcome is unknown (the run was killed between journaling it and
    /// seeing Confluence's answer, or Confluence answered 5xx) is re-checked against the site
    /// by every plan (`check-access-by-email`) and sent again once this long has passed since
    /// it was journaled, if the person still has no access. It is the time an invitation that
    /// did reach Confluence is given to complete (Confluence lists no invitations in flight).
    /// Invitations Confluence accepted are never sent again. Default 10 minutes.
    pub invite_retry_after: Duration,
    /// How long `apply` waits for the invitations it sent to complete (the invitees show up
    /// in `check-access-by-email`) before it adds them to their audience's group in the same
    /// run. Those that do not complete in time are reported as waiting, and the next apply
    /// adds them. Zero: do not wait. Default 2 minutes.
    pub invite_wait: std::time::Duration,
    /// The time policy expiry is evaluated at; `None` = now. (Tests and `--at`.)
    pub now: Option<DateTime<Utc>>,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        ReconcileOptions {
            allow_undocumented_apis: false,
            default_access_group: DEFAULT_ACCESS_GROUP.into(),
            licensed_users: None,
            concurrency: 8,
            invite_retry_after: DEFAULT_INVITE_RETRY_AFTER,
            invite_wait: DEFAULT_INVITE_WAIT,
            now: None,
        }
    }
}

/// Plans and applies native-mode provisioning for one site.
pub struct Reconciler {
    client: Client,
    store: Arc<dyn Store>,
    policy: Policy,
    options: ReconcileOptions,
    switches: Arc<dyn SwitchReader>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("client", &self.client)
            .field("store", &self.store.backend())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Reconciler {
    /// A reconciler over a client, a store and a policy.
    pub fn new(
        client: Client,
        store: Arc<dyn Store>,
        policy: Policy,
        options: ReconcileOptions,
    ) -> Self {
        Reconciler {
            client,
            store,
            policy,
            options,
            switches: Arc::new(SiteSwitches),
        }
    }

    /// Reads the site's knowledge-base view switches with `reader` instead of [`SiteSwitches`]
    /// (unlicensed view per space from the site; the site-wide switch unknown; see
    /// [`SwitchReader`]).
    pub fn with_switch_reader(mut self, reader: Arc<dyn SwitchReader>) -> Self {
        self.switches = reader;
        self
    }

    /// The client (for its call statistics).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Replaces the policy (e.g. after a config reload).
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Changes the options.
    pub fn options_mut(&mut self) -> &mut ReconcileOptions {
        &mut self.options
    }

    fn now(&self) -> DateTime<Utc> {
        self.options.now.unwrap_or_else(Utc::now)
    }

    /// Computes the plan: reads the store and Confluence (reads only, batched) and compares
    /// with the policy. Changes nothing in Confluence; its one write is the plan itself, kept
    /// in the store as the latest ([`crate::latest_plan`], what the admin console shows).
    pub async fn plan(&self) -> Result<Plan, ProvisionError> {
        let calls_before = self.client.stats().total;
        let plan = self.compute_plan().await?;
        let calls = self.client.stats().total.saturating_sub(calls_before);
        crate::latest::keep(&*self.store, &plan, Utc::now(), calls).await?;
        Ok(plan)
    }

    async fn compute_plan(&self) -> Result<Plan, ProvisionError> {
        let now = self.now();
        let client = &self.client;
        let owned = Owned::load(&*self.store).await?;
        let people = self.store.people().await?;
        let mut actual = Actual::default();
        let mut warnings = Vec::new();
        for (e, (id, _)) in &owned.accounts {
            actual.accounts.insert(e.clone(), id.clone());
        }
        for j in self.store.journal_list(None).await? {
            if j.kind == "create-site-user" && j.state == crate::apply::state::SKIPPED {
                actual.exists_without_access.insert(j.target.clone());
            }
            if j.kind == "invite" {
                actual.invites.insert(
                    j.target.clone(),
                    InviteRecord {
                        state: j.state.clone(),
                        at: j.updated_at,
                    },
                );
            }
        }

        // Guests on the site (opt-in), so that unassigned ones are picked up.
        let guest_audiences = self
            .policy
            .audiences_for_delivery(Delivery::Guest)
            .next()
            .is_some();
        if self.options.allow_undocumented_apis && guest_audiences {
            actual::read_guests(client, &mut actual).await?;
        }
        let mut emails: BTreeSet<String> = people
            .iter()
            .map(|p| p.email.to_ascii_lowercase())
            .collect();
        let mut discovered = Vec::new();
        if let Some(guests) = &actual.guests {
            for (email, assigned) in guests.values() {
                let Some(email) = email else { continue };
                let Ok(e) = Email::parse(email) else { continue };
                // Unassigned guests (or guests of the audience's own space) are picked up;
                // guests of other spaces belong to someone else.
                let wanted = self
                    .policy
                    .granting_audiences(e.domain(), now)
                    .iter()
                    .any(|a| {
                        a.delivery == Delivery::Guest
                            && a.spaces.len() == 1
                            && assigned.as_ref().is_none_or(|s| s == a.spaces[0].as_str())
                    });
                if wanted && emails.insert(e.as_str().to_ascii_lowercase()) {
                    discovered.push(e.as_str().to_ascii_lowercase());
                }
            }
        }
        let desired = desired_state(&self.policy, emails.iter().map(String::as_str), now);

        // Groups kbgate manages (desired or owned).
        let mut groups: BTreeSet<String> = desired
            .audiences
            .iter()
            .filter_map(|a| a.group.clone())
            .collect();
        groups.extend(owned.groups.keys().cloned());
        actual::read_groups(client, &groups, &mut actual).await?;

        // Spaces whose permissions matter.
        let mut spaces: BTreeSet<String> = desired
            .audiences
            .iter()
            .filter(|a| a.delivery != Delivery::Unlicensed)
            .flat_map(|a| a.spaces.iter().cloned())
            .collect();
        spaces.extend(owned.reads.iter().map(|r| r.space.clone()));
        actual::read_spaces(client, &spaces, &mut actual).await?;

        // The knowledge-base switches, when unlicensed view is wanted or kbgate owns some.
        let switch_spaces: BTreeSet<String> = desired
            .audiences
            .iter()
            .filter(|a| a.delivery == Delivery::Unlicensed)
            .flat_map(|a| a.spaces.iter().cloned())
            .chain(owned.unlicensed_view.keys().cloned())
            .collect();
        if !switch_spaces.is_empty() || owned.global_unlicensed {
            actual.switches = self.switches.read(client, &switch_spaces).await?;
        }

        // Account status of everyone kbgate knows an id for.
        let wanted: BTreeSet<&str> = desired
            .audiences
            .iter()
            .flat_map(|a| a.members.iter().map(String::as_str))
            .collect();
        let mut ids: BTreeSet<String> = wanted
            .iter()
            .filter_map(|e| actual.accounts.get(*e).cloned())
            .collect();
        ids.extend(owned.members.iter().map(|m| m.account_id.clone()));
        actual::read_users(client, &ids, &mut actual).await?;

        // Site access of the others.
        let unknown: BTreeSet<String> = wanted
            .iter()
            .filter(|e| !actual.accounts.contains_key(**e))
            .map(|e| (*e).to_owned())
            .collect();
        actual::read_access(client, &unknown, &mut actual, &mut warnings).await?;

        // Invited people who have arrived: find their account ids.
        let arrived: BTreeSet<String> = unknown
            .iter()
            .filter(|e| actual.invites.contains_key(*e) && actual.has_access(e) == Some(true))
            .cloned()
            .collect();
        if !arrived.is_empty() {
            actual::resolve_from_group(
                client,
                &self.options.default_access_group,
                &arrived,
                &mut actual,
            )
            .await?;
        }

        let o = DiffOptions {
            now,
            invite_retry_after: self.options.invite_retry_after,
        };
        let mut plan = diff(&desired, &owned, &actual, &o);
        let new_guests = plan
            .actions
            .iter()
            .any(|a| matches!(a.op, Op::AssignGuestSpace { .. }));
        if new_guests {
            // The operator's number wins over any count (also over the one taken while
            // resolving invitees); otherwise the default group's members are counted once.
            let before = actual.licensed;
            if let Some(n) = self.options.licensed_users {
                actual.licensed = Some(n);
            } else if actual.licensed.is_none() {
                actual::read_licensed(client, &self.options.default_access_group, &mut actual)
                    .await?;
            }
            if actual.licensed != before {
                plan = diff(&desired, &owned, &actual, &o);
            }
        }
        plan.warnings.extend(warnings);
        plan.context.discovered = discovered;
        Ok(plan)
    }

    /// Applies a plan with the journal. Per-action failures are counted in the summary (the
    /// next plan shows what is still to do); a 401 or a store failure stops the run with an
    /// error.
    pub async fn apply(
        &self,
        plan: &Plan,
        progress: &dyn ApplyProgress,
    ) -> Result<ApplySummary, ProvisionError> {
        Exec::new(&self.client, &*self.store, progress, &self.options, plan)
            .run(plan)
            .await
    }

    /// Plans and applies until the plan is empty, a round makes no progress, or `max_rounds`
    /// rounds ran (retries transient failures by re-reading the actual state). Returns the
    /// last plan (what is left) and the summed summary.
    pub async fn converge(
        &self,
        progress: &dyn ApplyProgress,
        max_rounds: u32,
    ) -> Result<(Plan, ApplySummary), ProvisionError> {
        let before = self.client.stats().total;
        let mut total = ApplySummary::default();
        let mut plan = self.plan().await?;
        for _ in 0..max_rounds.max(1) {
            if plan.is_empty() {
                break;
            }
            let s = self.apply(&plan, progress).await?;
            let progressed = s.done > 0;
            total.add(s);
            plan = self.plan().await?;
            if !progressed {
                break;
            }
        }
        total.calls = self.client.stats().total.saturating_sub(before);
        Ok((plan, total))
    }
}
