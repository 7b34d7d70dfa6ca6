//! The latest plan, kept in the store by every [`crate::Reconciler::plan`] (so by `kbgate
//! plan`, `kbgate apply` and the service's reconcile loop alike): the admin console shows it
//! read-only without spending a Confluence call per page load.

use chrono::{DateTime, Utc};
use kbgate_store::{NativePlanRecord, Store};

use crate::error::ProvisionError;
use crate::plan::Plan;

/// The latest plan and how it was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestPlan {
    /// The plan, as `kbgate plan` showed it (its `generated_at` is the time the policy's
    /// expiry was evaluated at).
    pub plan: Plan,
    /// When it was computed.
    pub computed_at: DateTime<Utc>,
    /// Confluence requests computing it took (reads only).
    pub calls: u64,
}

/// Keeps `plan` as the latest (a plan computed later by another process wins).
pub(crate) async fn keep(
    store: &dyn Store,
    plan: &Plan,
    computed_at: DateTime<Utc>,
    calls: u64,
) -> Result<(), ProvisionError> {
    store
        .put_native_plan(&NativePlanRecord {
            computed_at,
            calls,
            plan: plan.to_json(),
        })
        .await?;
    Ok(())
}

/// The latest plan kept in the store, if a plan was ever computed with it. A plan this
/// version cannot read (kept by another version of kbgate) is
/// [`ProvisionError::UnreadablePlan`].
pub async fn latest_plan(store: &dyn Store) -> Result<Option<LatestPlan>, ProvisionError> {
    let Some(r) = store.native_plan().await? else {
        return Ok(None);
    };
    let plan: Plan = serde_json::from_value(r.plan)
        .map_err(|e| ProvisionError::UnreadablePlan(e.to_string()))?;
    Ok(Some(LatestPlan {
        plan,
        computed_at: r.computed_at,
        calls: r.calls,
    }))
}
