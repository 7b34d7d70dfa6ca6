//! The admin console's store access: what only an [`Admin`] may read or change. Every method
//! takes `&Admin` (only the `[admin]` rule makes one), and the store stays private here, as
//! it does in the library: admin handlers never touch the store.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kbgate_policy::{Admin, AncestorFacts, Label, PageFacts, SpaceKey};
use kbgate_provision::{LatestPlan, ProvisionError};
use kbgate_store::{
    AdminSessionRecord, AuditEvent, AuditFilter, DomainInsights, FeedbackFilter, FeedbackRecord,
    InsightsQuery, InsightsSummary, LastSync, LeaseHolder, PersonRecord, Store, StoreError,
    SyncState,
};
use serde::Serialize;

use crate::error::Error;

/// The facts the access explainer needs about a mirrored page — space, labels, its own and
/// its ancestors' restriction flags, no body — read as the gate reads them (`library.rs`):
/// labels that do not parse are left out. `None` for an unknown page. For the admin console
/// and `kbgate explain`, never for a reader's request.
pub async fn page_facts(store: &dyn Store, page_id: &str) -> Result<Option<PageFacts>, StoreError> {
    if page_id.is_empty() || page_id.len() > 64 || !page_id.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let Some(page) = store.page(page_id).await? else {
        return Ok(None);
    };
    let Some(space) = store.space(&page.space_id).await? else {
        return Ok(None);
    };
    let Ok(space_key) = SpaceKey::parse(&space.key) else {
        return Ok(None);
    };
    let ancestors = store.ancestors(page_id).await?;
    Ok(Some(PageFacts {
        id: page.id,
        title: page.title,
        space_key,
        labels: page
            .labels
            .iter()
            .filter_map(|l| Label::parse(l).ok())
            .collect(),
        restricted: page.restricted,
        effective_restricted: page.effective_restricted,
        ancestors: ancestors
            .into_iter()
            .map(|a| AncestorFacts {
                id: a.id,
                title: a.title,
                effective_restricted: a.effective_restricted,
            })
            .collect(),
    }))
}

/// Admin-only reads and writes of the store. Crate-private.
pub(crate) struct Desk {
    store: Arc<dyn Store>,
}

/// One space's sync status, as `kbgate status` shows it.
pub(crate) struct SpaceSync {
    pub key: String,
    pub name: String,
    pub state: Option<SyncState>,
    pub last: Option<LastSync>,
    pub running: Option<LeaseHolder>,
}

/// When the background sync next syncs a space, as the console's sync page and `kbgate
/// status` show it. JSON: `{"state": "running" | "due" | "scheduled" | "off", "at": time}`
/// (`at` only when scheduled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "at", rename_all = "kebab-case")]
pub enum NextRun {
    /// A sync holds the space's lease now.
    Running,
    /// At the next round: never synced, or its interval has passed (overdue).
    Due,
    /// At this time: the last sync plus the interval.
    Scheduled(DateTime<Utc>),
    /// No background sync (this process runs none, or `[sync] interval` is 0).
    Off,
}

impl NextRun {
    /// From the space's last sync (any process's), the background interval (`None`: no
    /// background sync) and whether a sync holds its lease now. A background round skips a
    /// space some process synced within its interval (kbgate-service `loops::sync`), so the
    /// round that syncs it next comes at `last + interval`, or at the next round when that
    /// time has passed or it was never synced.
    pub fn of(
        last: Option<DateTime<Utc>>,
        interval: Option<std::time::Duration>,
        running: bool,
        now: DateTime<Utc>,
    ) -> NextRun {
        if running {
            return NextRun::Running;
        }
        let Some(interval) = interval.filter(|i| !i.is_zero()) else {
            return NextRun::Off;
        };
        let due = last.and_then(|l| {
            chrono::Duration::from_std(interval)
                .ok()
                .and_then(|i| l.checked_add_signed(i))
        });
        match due {
            Some(at) if at > now => NextRun::Scheduled(at),
            _ => NextRun::Due,
        }
    }

    /// For people, relative to `now`: "running now", "due now", "2026-12-07 18:00:00 UTC (in
    /// 12 min)", "no background sync".
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        match self {
            NextRun::Running => "running now".to_owned(),
            NextRun::Due => "due now".to_owned(),
            NextRun::Scheduled(at) => {
                let secs = (*at - now).num_seconds().max(0);
                let rel = match secs {
                    0..60 => format!("in {secs} s"),
                    60..3600 => format!("in {} min", (secs + 59) / 60),
                    _ => format!("in {} h {} min", secs / 3600, (secs % 3600) / 60),
                };
                format!("{} ({rel})", at.format("%Y-%m-%d %H:%M:%S UTC"))
            }
            NextRun::Off => "no background sync".to_owned(),
        }
    }
}

impl fmt::Display for NextRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(Utc::now()))
    }
}

/// Native mode's latest plan as the console finds it in the store.
pub(crate) enum KeptPlan {
    /// No plan was ever computed with this store.
    None,
    /// The latest plan.
    Plan(Box<LatestPlan>),
    /// Kept by a version of kbgate whose plan this one cannot read; why.
    Unreadable(String),
}

fn store_err(e: StoreError) -> Error {
    Error::internal(e)
}

impl Desk {
    pub(crate) fn new(store: Arc<dyn Store>) -> Desk {
        Desk { store }
    }

    /// The facts the explainer needs about a page (see [`page_facts`]).
    pub(crate) async fn page_facts(
        &self,
        _: &Admin,
        page_id: &str,
    ) -> Result<Option<PageFacts>, Error> {
        page_facts(&*self.store, page_id).await.map_err(store_err)
    }

    pub(crate) async fn sessions_per_domain(&self, _: &Admin) -> Result<Vec<(String, u64)>, Error> {
        self.store
            .sessions_per_domain(Utc::now())
            .await
            .map_err(store_err)
    }

    /// Ends every session at `domain` and its subdomains. Returns how many.
    pub(crate) async fn revoke_domain(&self, _: &Admin, domain: &str) -> Result<u64, Error> {
        self.store
            .revoke_sessions_under_domain(domain)
            .await
            .map_err(store_err)
    }

    pub(crate) async fn sync_status(&self, _: &Admin) -> Result<Vec<SpaceSync>, Error> {
        let mut out = Vec::new();
        for s in self.store.list_spaces().await.map_err(store_err)? {
            out.push(SpaceSync {
                state: self.store.sync_state(&s.key).await.map_err(store_err)?,
                last: self.store.last_synced(&s.key).await.map_err(store_err)?,
                running: self
                    .store
                    .sync_lease_holder(&s.key)
                    .await
                    .map_err(store_err)?,
                key: s.key,
                name: s.name,
            });
        }
        Ok(out)
    }

    /// Native mode's latest plan, as `kbgate plan`, `apply` or the reconcile loop kept it
    /// (no Confluence call).
    pub(crate) async fn native_plan(&self, _: &Admin) -> Result<KeptPlan, Error> {
        match kbgate_provision::latest_plan(&*self.store).await {
            Ok(Some(p)) => Ok(KeptPlan::Plan(Box::new(p))),
            Ok(None) => Ok(KeptPlan::None),
            Err(e @ ProvisionError::UnreadablePlan(_)) => Ok(KeptPlan::Unreadable(e.to_string())),
            Err(e) => Err(Error::internal(e)),
        }
    }

    /// People who asked for access (native mode), newest first.
    pub(crate) async fn access_requests(&self, _: &Admin) -> Result<Vec<PersonRecord>, Error> {
        let mut people: Vec<PersonRecord> = self
            .store
            .people()
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|p| p.source == "access-request")
            .collect();
        people.sort_by_key(|p| std::cmp::Reverse(p.created_at));
        Ok(people)
    }

    pub(crate) async fn audit(
        &self,
        _: &Admin,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>, Error> {
        self.store.query_audit(filter).await.map_err(store_err)
    }

    /// Reader insights over `q`'s period (and domain): the totals with top lists, and one
    /// row per domain.
    pub(crate) async fn insights(
        &self,
        _: &Admin,
        q: &InsightsQuery,
    ) -> Result<(InsightsSummary, Vec<DomainInsights>), Error> {
        let total = self.store.insights_summary(q).await.map_err(store_err)?;
        let per_domain = self.store.insights_by_domain(q).await.map_err(store_err)?;
        Ok((total, per_domain))
    }

    /// "Was this helpful?" votes over a period (and domain), oldest first.
    pub(crate) async fn feedback(
        &self,
        _: &Admin,
        f: &FeedbackFilter,
    ) -> Result<Vec<FeedbackRecord>, Error> {
        self.store.feedback(f).await.map_err(store_err)
    }

    /// The current titles of mirrored pages, by id: what the console shows for a page id.
    /// A page no longer mirrored is absent (its title is not shown any more anywhere).
    pub(crate) async fn titles(
        &self,
        _: &Admin,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>, Error> {
        Ok(self
            .store
            .page_summaries_by_ids(ids)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|p| (p.id, p.title))
            .collect())
    }

    /// Appends an admin action to the audit log (the admin is the actor).
    pub(crate) async fn record(&self, admin: &Admin, action: &str, detail: serde_json::Value) {
        let ev = AuditEvent {
            ts: Utc::now(),
            actor: admin.email().as_str().to_owned(),
            action: action.to_owned(),
            detail,
        };
        if let Err(e) = self.store.append_audit(&ev).await {
            tracing::warn!(error = %e, action, "audit write failed");
        }
    }
}

/// Admin sessions: made only after the `[admin]` rule admitted the email (the handler holds
/// an [`Admin`]), looked up by the hash of the admin cookie and of the reader cookie.
pub(crate) struct AdminSessions {
    store: Arc<dyn Store>,
}

impl AdminSessions {
    pub(crate) fn new(store: Arc<dyn Store>) -> AdminSessions {
        AdminSessions { store }
    }

    pub(crate) async fn create(
        &self,
        admin: &Admin,
        id_hash: String,
        reader_hash: String,
        now: DateTime<Utc>,
        lifetime: std::time::Duration,
    ) -> Result<(), Error> {
        let lifetime = chrono::Duration::from_std(lifetime)
            .map_err(|_| Error::BadRequest("bad admin session lifetime"))?;
        self.store
            .create_admin_session(&AdminSessionRecord {
                id_hash,
                reader_hash,
                email: admin.email().as_str().to_owned(),
                created_at: now,
                expires_at: now + lifetime,
                view_as: None,
            })
            .await
            .map_err(store_err)
    }

    pub(crate) async fn active(
        &self,
        id_hash: &str,
        reader_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AdminSessionRecord>, Error> {
        self.store
            .active_admin_session(id_hash, reader_hash, now)
            .await
            .map_err(store_err)
    }

    pub(crate) async fn revoke(&self, id_hash: &str) -> Result<bool, Error> {
        self.store
            .revoke_admin_session(id_hash)
            .await
            .map_err(store_err)
    }

    pub(crate) async fn set_view_as(
        &self,
        id_hash: &str,
        email: Option<&str>,
    ) -> Result<(), Error> {
        self.store
            .set_admin_view_as(id_hash, email)
            .await
            .map_err(store_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_next_run_follows_the_last_sync_and_the_interval() {
        let now = t("2026-12-07T12:00:00Z");
        let ten = Some(Duration::from_secs(600));
        let last = Some(t("2026-12-07T11:55:00Z"));
        assert_eq!(
            NextRun::of(last, ten, false, now),
            NextRun::Scheduled(t("2026-12-07T12:05:00Z"))
        );
        assert_eq!(
            NextRun::of(last, ten, false, now).describe(now),
            "2026-12-07 12:05:00 UTC (in 5 min)"
        );
        // Overdue, or never synced: at the next round.
        assert_eq!(
            NextRun::of(Some(t("2026-12-07T11:40:00Z")), ten, false, now),
            NextRun::Due
        );
        assert_eq!(NextRun::of(None, ten, false, now), NextRun::Due);
        assert_eq!(NextRun::Due.describe(now), "due now");
        // A sync holding the lease wins, background sync or not.
        assert_eq!(NextRun::of(last, ten, true, now), NextRun::Running);
        assert_eq!(NextRun::of(None, None, true, now), NextRun::Running);
        // No background sync (or interval 0).
        assert_eq!(NextRun::of(last, None, false, now), NextRun::Off);
        assert_eq!(
            NextRun::of(last, Some(Duration::ZERO), false, now),
            NextRun::Off
        );
        assert_eq!(
            serde_json::to_value(NextRun::Scheduled(t("2026-12-07T12:05:00Z"))).unwrap(),
            serde_json::json!({ "state": "scheduled", "at": "2026-12-07T12:05:00Z" })
        );
        assert_eq!(
            serde_json::to_value(NextRun::Off).unwrap(),
            serde_json::json!({ "state": "off" })
        );
    }
}
