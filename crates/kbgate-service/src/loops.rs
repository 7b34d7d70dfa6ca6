//! The background loops of the service. Each ends at its next await once `stop` is
//! cancelled; none holds anything that must be cleaned up by hand (the sync releases its
//! lease itself, see [`kbgate_mirror::sync::SyncOptions::cancel`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kbgate_config::Config;
use kbgate_mirror::sync::{
    BLOB_GRACE, Progress, SyncError, SyncOptions, confluence::ConfluenceSource, forget, sync_spaces,
};
use kbgate_server::{AppState, PolicyHandle};
use kbgate_store::Store;
use tokio_util::sync::CancellationToken;

use crate::ReloadTrigger;

/// How often page views and search events past `[insights] retention_days` are deleted
/// while serving: hourly keeps each delete small (an hour's worth of events), so it holds the
/// store's write lock briefly.
pub(crate) const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Retention of the insights: deletes page views and search events older than `retention`
/// every `every`, the first time at once. Several instances on one store each prune; the
/// deletes are idempotent. A failure is logged and retried next time.
pub(crate) async fn prune_insights(
    store: Arc<dyn Store>,
    retention: Duration,
    every: Duration,
    stop: CancellationToken,
) {
    let Ok(retention) = chrono::Duration::from_std(retention) else {
        // Not reachable with a validated config (at most 3650 days). A loop that ends stops
        // the service, so this one waits for the stop instead.
        tracing::warn!("insights retention out of range; old events are not pruned");
        stop.cancelled().await;
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if stop.run_until_cancelled(tick.tick()).await.is_none() {
            return;
        }
        let before = chrono::Utc::now() - retention;
        match stop.run_until_cancelled(store.purge_insights(before)).await {
            None => return,
            Some(Ok(0)) => {}
            Some(Ok(n)) => tracing::info!(
                removed = n,
                "insights: page views and searches before {} deleted (retention)",
                before.format("%Y-%m-%d %H:%M UTC")
            ),
            Some(Err(e)) => tracing::warn!("insights retention failed (will retry): {e}"),
        }
    }
}

/// Native mode in the background: plan and apply on an interval, with the policy re-read
/// from the file each round. A round cut short by `stop` is like a killed `kbgate apply`:
/// the journal resumes it next time without acting twice.
pub(crate) async fn reconcile(
    mut r: kbgate_provision::Reconciler,
    every: Duration,
    path: PathBuf,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if stop.run_until_cancelled(tick.tick()).await.is_none() {
            return;
        }
        match Config::load(&path) {
            Ok(c) => r.set_policy(c.policy),
            Err(e) => tracing::warn!("reconcile: config refused, keeping the last policy: {e}"),
        }
        let round = r.converge(&kbgate_provision::NoProgress, 3);
        match stop.run_until_cancelled(round).await {
            None => return,
            Some(Ok((left, summary))) => {
                record_native(&summary);
                tracing::info!(
                    done = summary.done,
                    failed = summary.failed,
                    calls = summary.calls,
                    left = left.actions.len(),
                    "native reconcile round finished"
                )
            }
            Some(Err(e)) => {
                metrics::counter!("kbgate_native_rounds_total", "outcome" => "error").increment(1);
                tracing::warn!("native reconcile failed (will retry): {e}")
            }
        }
    }
}

/// Native apply results for `/metrics`: rounds, and actions by outcome.
fn record_native(s: &kbgate_provision::ApplySummary) {
    metrics::counter!("kbgate_native_rounds_total", "outcome" => "ok").increment(1);
    for (outcome, n) in [
        ("done", s.done),
        ("failed", s.failed),
        ("skipped", s.skipped),
        ("waiting", s.waiting),
    ] {
        metrics::counter!("kbgate_native_actions_total", "outcome" => outcome)
            .increment(u64::try_from(n).unwrap_or(u64::MAX));
    }
}

/// One background sync round for `/metrics`: per space, a run (synced or skipped) and the
/// Confluence calls it cost.
fn record_sync(report: &kbgate_mirror::sync::SyncReport) {
    for s in &report.spaces {
        let outcome = if s.is_skipped() { "skipped" } else { "synced" };
        metrics::counter!("kbgate_sync_runs_total", "space" => s.key.clone(), "outcome" => outcome)
            .increment(1);
        metrics::counter!("kbgate_sync_calls_total", "space" => s.key.clone()).increment(s.calls);
    }
}

/// A failed background sync round for `/metrics`: an error for the space it names, or else
/// for every space of the round (none of them is known to be up to date).
fn record_sync_error(e: &SyncError, keys: &[String]) {
    let spaces = match e {
        SyncError::SpaceNotFound(key) => std::slice::from_ref(key),
        _ => keys,
    };
    for key in spaces {
        metrics::counter!("kbgate_sync_errors_total", "space" => key.clone()).increment(1);
    }
}

/// A fingerprint of the config file's bytes: a change of content is seen even when the
/// modification time is not (`cp -p`, two writes in one timestamp tick), and a file caught
/// half-written is re-read once the writer finishes, because its content changes again.
fn fingerprint(path: &Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

/// Re-reads the configuration when asked (SIGHUP in `kbgate serve`) or when the file's
/// content changes (polled every `poll`; zero: never), and applies what can change while
/// serving: the policy, then the portal's live settings (session and magic-link lifetimes,
/// mail, framing origins, embed keys, API key). Changed keys that need a restart are named in
/// a warning, on every reload until the process restarts. A bad file is refused with its
/// errors logged, and the running configuration stays.
pub(crate) async fn reload(
    started_with: Config,
    policy: PolicyHandle,
    state: AppState,
    poll: Duration,
    trigger: ReloadTrigger,
    stop: CancellationToken,
) {
    let path = started_with.path.clone();
    let mut seen = fingerprint(&path);
    // A zero period means no polling: the tick never fires.
    let mut tick = tokio::time::interval(if poll.is_zero() {
        Duration::from_secs(u64::from(u32::MAX))
    } else {
        poll
    });
    tick.tick().await; // the first tick is immediate
    loop {
        let forced = tokio::select! {
            () = stop.cancelled() => return,
            () = trigger.requested() => true,
            _ = tick.tick() => false,
        };
        let now = fingerprint(&path);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        let c = match Config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("config reload refused, keeping the running configuration: {e}");
                continue;
            }
        };
        policy.replace(c.policy.clone());
        match state.reload_from_config(&c) {
            Ok(()) => tracing::info!(
                "policy reloaded from {}, with the portal's settings",
                path.display()
            ),
            Err(e) => tracing::error!(
                "policy reloaded from {}, but the portal settings were not (keeping the \
                 running ones): {e}",
                path.display()
            ),
        }
        // The brand reloads with it; one whose files cannot be read keeps the running brand
        // (the policy and settings above still apply).
        if let Err(e) = state.set_brand(&c.portal.brand) {
            tracing::error!("brand reload refused, keeping the running brand: {e}");
        }
        let pending = crate::restart_needed(&started_with, &c);
        if !pending.is_empty() {
            tracing::warn!(
                keys = %pending.join(", "),
                "changed settings that take effect only after a restart: {}",
                pending.join(", ")
            );
        }
    }
}

/// Whether this background round should be a full pass: some space was never fully synced,
/// or its last full sync is older than `every` (zero: never).
async fn full_due(store: &dyn Store, keys: &[String], every: Duration) -> bool {
    if every.is_zero() {
        return false;
    }
    let Ok(every) = chrono::Duration::from_std(every) else {
        return false;
    };
    let now = chrono::Utc::now();
    for key in keys {
        match store.sync_state(key).await {
            Ok(Some(s)) if s.last_full_sync.is_some_and(|t| now - t < every) => {}
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!("cannot read the sync state of {key}: {e}");
                return false;
            }
        }
    }
    false
}

/// How much earlier than a full interval a background round may come after another
/// process's sync of a space and still sync it: a round's own ticks drift by milliseconds, and
/// the holders' clocks may differ a little. A tenth of the interval, at most 10 s.
fn round_slack(interval: Duration) -> Duration {
    (interval / 10).min(Duration::from_secs(10))
}

/// Syncs the spaces of the current policy (it may have been reloaded) on `[sync] interval`,
/// the first round at once, then removes what the policy no longer names. Cancelled, a round
/// drops the space it is writing before its commit and releases that space's lease.
///
/// Several instances on one store: a round skips a space any process synced within the
/// interval (less [`round_slack`]), so they spend one instance's Confluence calls; the
/// instance that syncs is whichever round comes first, the others serve its commits. That is
/// said once at `info`, then at `debug`. `now` (the admin console's "sync now") starts a
/// round at once that syncs every space, however recently synced.
pub(crate) async fn sync(
    source: ConfluenceSource,
    store: Arc<dyn Store>,
    config: Config,
    policy: PolicyHandle,
    now: Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) {
    let interval = config.sync.interval;
    // `interval = 0` turns scheduled rounds off (cron `kbgate sync` does them); the loop
    // stays, idle, for "sync now" — a loop that returned would stop the service with it.
    let mut tick = (!interval.is_zero()).then(|| {
        let mut t = tokio::time::interval(interval);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut told_elsewhere = false;
    loop {
        let woken = async {
            let scheduled = async {
                match tick.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = scheduled => false,
                _ = now.notified() => true,
            }
        };
        let Some(asked) = stop.run_until_cancelled(woken).await else {
            return;
        };
        if asked {
            tracing::info!("sync round asked for from the admin console");
        }
        let keys = crate::spaces_of(&policy.current());
        let Some(full) = stop
            .run_until_cancelled(full_due(&*store, &keys, config.sync.full_every))
            .await
        else {
            return;
        };
        let opts = SyncOptions {
            cancel: stop.clone(),
            skip_synced_within: if asked {
                Duration::ZERO
            } else {
                interval.saturating_sub(round_slack(interval))
            },
            ..crate::sync_options(&config, full)
        };
        let round = sync_spaces(&source, &*store, &keys, &opts, &Progress::quiet()).await;
        match &round {
            Ok(report) => record_sync(report),
            Err(SyncError::Cancelled) => {}
            Err(e) => record_sync_error(e, &keys),
        }
        match round {
            Ok(report)
                if !report.spaces.is_empty() && report.spaces.iter().all(|s| s.is_skipped()) =>
            {
                let summary = report.to_string().replace('\n', "; ");
                if report.spaces.iter().all(|s| s.synced_elsewhere) && !told_elsewhere {
                    told_elsewhere = true;
                    tracing::info!(
                        "background sync: another process synced every space within the \
                         interval; this one serves its commits and syncs when it stops (said \
                         once, then at debug): {summary}"
                    );
                } else {
                    tracing::debug!(calls = report.calls, "background sync skipped: {summary}");
                }
            }
            Ok(report) => tracing::info!(
                calls = report.calls,
                full,
                elapsed_ms = report.elapsed_ms as u64,
                "background sync done: {}",
                report.to_string().replace('\n', "; ")
            ),
            Err(SyncError::Cancelled) => {
                tracing::info!("background sync stopped by shutdown; the previous mirror stays");
                return;
            }
            Err(e) => tracing::warn!("background sync failed (will retry): {e}"),
        }
        match stop
            .run_until_cancelled(forget(&*store, &keys, BLOB_GRACE))
            .await
        {
            None => return,
            Some(Ok(r)) if !r.is_empty() => tracing::info!("mirror cleaned up: {r}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => tracing::warn!("could not clean up the mirror (will retry): {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use kbgate_store::{InsightsQuery, PageViewEvent, SearchEvent};

    /// The retention loop deletes what is older than the retention (at once, then on its
    /// period) and keeps the rest, on SQLite and on PostgreSQL.
    async fn prunes(t: kbgate_store::testing::TestStore) {
        let store = t.store.clone();
        let now = Utc::now();
        let view = |days: i64, page: &str| PageViewEvent {
            at: now - chrono::Duration::days(days),
            page_id: page.into(),
            space_key: "KB".into(),
            domain: "acme.com".into(),
            reader: "r".into(),
        };
        store
            .record_page_views(&[view(40, "old"), view(29, "kept"), view(0, "new")])
            .await
            .unwrap();
        let search = |days: i64| SearchEvent {
            at: now - chrono::Duration::days(days),
            domain: "acme.com".into(),
            email: None,
            query: "q".into(),
            results: 0,
        };
        store
            .record_searches(&[search(31), search(1)])
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(prune_insights(
            store.clone(),
            Duration::from_secs(30 * 24 * 3600),
            Duration::from_millis(50),
            stop.clone(),
        ));
        let all = InsightsQuery {
            top: 10,
            ..Default::default()
        };
        let mut left = store.insights_summary(&all).await.unwrap();
        for _ in 0..200 {
            if left.page_views == 2 && left.searches == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            left = store.insights_summary(&all).await.unwrap();
        }
        stop.cancel();
        task.await.unwrap();
        let mut pages: Vec<String> = left.top_pages.into_iter().map(|p| p.0).collect();
        pages.sort();
        assert_eq!(pages, ["kept", "new"]);
        assert_eq!(left.searches, 1);
    }

    #[tokio::test]
    async fn old_insights_are_pruned_on_sqlite() {
        prunes(kbgate_store::testing::sqlite().await).await;
    }

    #[tokio::test]
    async fn old_insights_are_pruned_on_postgres() {
        let Some(t) = kbgate_store::testing::postgres().await else {
            return;
        };
        prunes(t).await;
    }
}
