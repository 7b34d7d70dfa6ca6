//! Black-box sync tests: the simulator in-process, a fresh store per test (SQLite and
//! PostgreSQL), call budgets read from the simulator's own counters.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use confluence_client::{Client, ClientConfig};
use confluence_sim::model::PageStatus;
use confluence_sim::{SimConfig, SimHandle, spawn};
use futures::StreamExt;
use kbgate_mirror::sync::source::{
    AttachmentMeta, Change, PageBody, ScanItem, Source, SourceError, SourceSpace, SourceStream,
};
use kbgate_mirror::sync::{
    Progress, SyncOptions, SyncReport, confluence::ConfluenceSource, sync_spaces,
};
use kbgate_store::Store;
use kbgate_store::testing::{TestStore, postgres, sqlite};
use tokio::io::AsyncReadExt;

fn source_for(sim: &SimHandle) -> ConfluenceSource {
    let creds = sim.service_account();
    let mut cfg = ClientConfig::new(
        sim.base_url().parse().expect("sim url"),
        creds.email,
        creds.api_token,
    );
    cfg.requests_per_second = 0;
    ConfluenceSource::new(Client::new(cfg).expect("client"))
}

fn space_keys(sim: &SimHandle) -> Vec<String> {
    sim.state()
        .read(|s| s.spaces.values().map(|sp| sp.key.clone()).collect())
}

async fn run(sim: &SimHandle, store: &dyn Store, keys: &[String], full: bool) -> (SyncReport, u64) {
    sim.reset_stats();
    let source = source_for(sim);
    let opts = SyncOptions {
        full,
        ..SyncOptions::default()
    };
    let report = sync_spaces(&source, store, keys, &opts, &Progress::quiet())
        .await
        .expect("sync");
    (report, sim.stats().total)
}

/// Pages the service account can see in a space, and how many of them carry (or inherit)
/// a read restriction.
fn visible_pages(sim: &SimHandle, key: &str) -> (usize, usize) {
    sim.state().read(|s| {
        let svc = s
            .users
            .values()
            .find(|u| u.email == sim.service_account().email)
            .map(|u| u.account_id.clone())
            .expect("service account");
        let space_id = s
            .spaces
            .values()
            .find(|sp| sp.key == key)
            .map(|sp| sp.id)
            .expect("space");
        let visible: Vec<u64> = s
            .pages
            .values()
            .filter(|p| p.space_id == space_id && p.status == PageStatus::Current)
            .filter(|p| s.can_read_page(&svc, p.id))
            .map(|p| p.id)
            .collect();
        let restricted = visible
            .iter()
            .filter(|id| s.is_effectively_restricted(**id))
            .count();
        (visible.len(), restricted)
    })
}

macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let t = super::sqlite().await;
                super::$name(t).await;
            }
            #[tokio::test]
            async fn postgres() {
                let Some(t) = super::postgres().await else {
                    return;
                };
                super::$name(t).await;
            }
        }
    };
}

both_backends!(full_sync_mirrors_every_visible_page_within_the_call_budget);
async fn full_sync_mirrors_every_visible_page_within_the_call_budget(t: TestStore) {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let keys = space_keys(&sim);
    let (report, calls) = run(&sim, &*t.store, &keys, false).await;
    assert!(report.spaces.iter().all(|s| s.full));

    let mut lower_bound = 1; // the spaces listing
    for key in &keys {
        let (visible, restricted) = visible_pages(&sim, key);
        let space = t.store.space_by_key(key).await.unwrap().expect("space");
        let summaries = t.store.page_summaries(&space.id).await.unwrap();
        assert_eq!(summaries.len(), visible, "space {key}: every visible page");
        let flagged = summaries.iter().filter(|s| s.effective_restricted).count();
        assert_eq!(flagged, restricted, "space {key}: restrictions inherited");
        let attachments = sim.state().read(|s| {
            s.attachments
                .values()
                .filter(|a| a.status == PageStatus::Current)
                .filter(|a| summaries.iter().any(|p| p.id == a.page_id.to_string()))
                .count()
        });
        // An uploaded space icon is one more download, like a new attachment's (stock
        // logos cost nothing).
        let icon = sim.state().read(|s| {
            s.spaces
                .values()
                .any(|sp| &sp.key == key && sp.icon.is_some())
        });
        // bodies (250 a call) + structure scan (200) + attachment listing (200) + downloads
        lower_bound += visible.div_ceil(250).max(1)
            + visible.div_ceil(200).max(1)
            + attachments.div_ceil(200).max(1)
            + attachments
            + usize::from(icon);
    }
    let budget = (lower_bound as f64 * 1.05).ceil() as u64;
    assert!(
        calls <= budget,
        "full sync used {calls} calls, budget {budget} (lower bound {lower_bound}): {:?}",
        sim.stats().by_endpoint
    );
    // No call per page: the per-page endpoints are never used by a full sync.
    let by = sim.stats().by_endpoint;
    assert!(!by.contains_key("GET /wiki/api/v2/pages/{id}"), "{by:?}");
    assert!(
        !by.keys().any(|k| k.contains("/restriction/")),
        "restrictions must be read in bulk: {by:?}"
    );
}

both_backends!(incremental_sync_without_changes_costs_at_most_two_calls_per_space);
async fn incremental_sync_without_changes_costs_at_most_two_calls_per_space(t: TestStore) {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let keys = space_keys(&sim);
    run(&sim, &*t.store, &keys, false).await;
    let (report, calls) = run(&sim, &*t.store, &keys, false).await;
    assert!(report.spaces.iter().all(|s| !s.full));
    // one spaces listing for the run, then ≤ 2 per space
    assert!(
        calls <= 1 + 2 * keys.len() as u64,
        "no-change sync used {calls} calls: {:?}",
        sim.stats().by_endpoint
    );
    for s in &report.spaces {
        assert_eq!(
            (s.pages_added, s.pages_changed, s.pages_removed),
            (0, 0, 0),
            "{s:?}"
        );
    }
}

fn first_page_with_children(sim: &SimHandle, key: &str) -> (u64, Vec<u64>) {
    sim.state().read(|s| {
        let space_id = s
            .spaces
            .values()
            .find(|sp| sp.key == key)
            .map(|sp| sp.id)
            .expect("space");
        let mut candidates: Vec<_> = s
            .pages
            .values()
            .filter(|p| p.space_id == space_id && p.status == PageStatus::Current)
            .filter(|p| !s.is_effectively_restricted(p.id))
            .map(|p| p.id)
            .collect();
        candidates.sort();
        for id in candidates {
            // Archived children are not mirrored (Cloud's v2 lists them unless asked not to).
            let kids: Vec<u64> = s
                .child_ids(id)
                .into_iter()
                .filter(|k| {
                    s.pages
                        .get(k)
                        .is_some_and(|p| p.status == PageStatus::Current)
                })
                .collect();
            if !kids.is_empty() && kids.iter().all(|k| !s.is_effectively_restricted(*k)) {
                return (id, kids);
            }
        }
        panic!("no unrestricted page with children in {key}");
    })
}

both_backends!(incremental_sync_picks_up_edits_deletions_moves_and_restrictions);
async fn incremental_sync_picks_up_edits_deletions_moves_and_restrictions(t: TestStore) {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let keys = space_keys(&sim);
    let key = keys[0].clone();
    run(&sim, &*t.store, &keys, false).await;
    let state = sim.state();

    // An edit: one page, a handful of calls.
    let (parent, kids) = first_page_with_children(&sim, &key);
    let edited = kids[0];
    state
        .edit_page(
            edited,
            Some("Edited title".into()),
            Some("<p>new words zebra</p>".into()),
        )
        .expect("edit");
    let (report, calls) = run(&sim, &*t.store, std::slice::from_ref(&key), false).await;
    assert_eq!(report.spaces[0].pages_changed, 1, "{report:?}");
    let (visible, _) = visible_pages(&sim, &key);
    assert!(
        calls <= 1 + 1 + visible.div_ceil(200) as u64 + 1 + 2,
        "one edit cost {calls} calls: {:?}",
        sim.stats().by_endpoint
    );
    let page = t
        .store
        .page(&edited.to_string())
        .await
        .unwrap()
        .expect("page");
    assert_eq!(page.title, "Edited title");
    assert!(page.body_text.contains("zebra"));

    // A read restriction on the parent: the parent and every descendant become restricted,
    // although Confluence does not change their `lastmodified`.
    let svc = state.read(|s| {
        s.users
            .values()
            .find(|u| u.email == sim.service_account().email)
            .map(|u| u.account_id.clone())
            .expect("svc")
    });
    state
        .add_read_restriction(parent, confluence_sim::model::Subject::User(svc.clone()))
        .expect("restrict");
    run(&sim, &*t.store, std::slice::from_ref(&key), false).await;
    for id in std::iter::once(parent).chain(kids.iter().copied()) {
        let s = t
            .store
            .page_summary(&id.to_string())
            .await
            .unwrap()
            .expect("still mirrored");
        assert!(s.effective_restricted, "page {id} must be restricted now");
    }
    state
        .remove_read_restriction(parent, &confluence_sim::model::Subject::User(svc))
        .expect("unrestrict");
    run(&sim, &*t.store, std::slice::from_ref(&key), false).await;
    let s = t
        .store
        .page_summary(&edited.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(!s.effective_restricted, "restriction lifted");

    // A deletion.
    let deleted = *kids.last().expect("kid");
    state.delete_page(deleted).expect("delete");
    let (report, _) = run(&sim, &*t.store, std::slice::from_ref(&key), false).await;
    assert!(report.spaces[0].pages_removed >= 1, "{report:?}");
    assert!(t.store.page(&deleted.to_string()).await.unwrap().is_none());

    // A move.
    if kids.len() >= 3 {
        let moved = kids[1];
        let new_parent = kids[0];
        state.move_page(moved, new_parent).expect("move");
        run(&sim, &*t.store, std::slice::from_ref(&key), false).await;
        let s = t
            .store
            .page_summary(&moved.to_string())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            s.parent_id.as_deref(),
            Some(new_parent.to_string().as_str())
        );
    }

    // A label.
    state.add_label(edited, "freshlabel").expect("label");
    run(&sim, &*t.store, std::slice::from_ref(&key), false).await;
    let s = t
        .store
        .page_summary(&edited.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(s.labels.iter().any(|l| l == "freshlabel"), "{:?}", s.labels);
}

both_backends!(attachments_are_mirrored_with_their_bytes_and_the_size_cap);
async fn attachments_are_mirrored_with_their_bytes_and_the_size_cap(t: TestStore) {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let keys = space_keys(&sim);
    run(&sim, &*t.store, &keys, false).await;
    let stats = t.store.mirror_stats().await.unwrap();
    assert!(stats.attachments > 0, "{stats:?}");
    // Find a mirrored attachment and compare its bytes with the simulator's.
    let (page_id, att_id, bytes) = sim.state().read(|s| {
        let a = s.attachments.values().next().expect("an attachment");
        (a.page_id, format!("att{}", a.id), a.bytes.to_vec())
    });
    if let Some(rec) = t.store.attachment(&att_id).await.unwrap() {
        assert_eq!(rec.page_id, page_id.to_string());
        let blob = rec.blob.expect("bytes mirrored");
        let mut stored = Vec::new();
        t.store
            .blobs()
            .open(&blob)
            .await
            .expect("blob stored")
            .read_to_end(&mut stored)
            .await
            .unwrap();
        assert_eq!(stored, bytes);
    }

    // With a 1-byte cap nothing is downloaded but the metadata stays.
    let other = sqlite().await;
    let source = source_for(&sim);
    let opts = SyncOptions {
        max_attachment_bytes: 1,
        ..SyncOptions::default()
    };
    sim.reset_stats();
    let report = sync_spaces(&source, &*other.store, &keys, &opts, &Progress::quiet())
        .await
        .unwrap();
    assert!(
        report
            .spaces
            .iter()
            .map(|s| s.attachments_skipped)
            .sum::<u64>()
            > 0
    );
    // Space icons have a cap of their own: their downloads (through the same REST download
    // route) are the only ones.
    let icons: u64 = report.spaces.iter().map(|s| s.icons_downloaded).sum();
    let downloads: u64 = sim
        .stats()
        .by_endpoint
        .iter()
        .filter(|(k, _)| k.contains("/download"))
        .map(|(_, n)| *n)
        .sum();
    assert_eq!(downloads, icons, "nothing over the cap is downloaded");
}

both_backends!(attachment_bytes_gone_from_the_blob_store_are_downloaded_again);
async fn attachment_bytes_gone_from_the_blob_store_are_downloaded_again(t: TestStore) {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let keys = space_keys(&sim);
    run(&sim, &*t.store, &keys, false).await;
    // What the mirror holds bytes for, and a steady incremental round's cost.
    let mut mirrored = Vec::new();
    for space in t.store.list_spaces().await.unwrap() {
        mirrored.extend(t.store.attachment_blobs(&space.id).await.unwrap());
    }
    assert!(mirrored.len() >= 2, "{mirrored:?}");
    let (_, steady_calls) = run(&sim, &*t.store, &keys, false).await;
    assert_eq!(sim.stats().media_requests, 0);
    let refs: Vec<_> = mirrored.iter().map(|(_, b)| b.clone()).collect();

    // Someone deletes every blob (here: a sweep told nothing is referenced); the mirror
    // still lists the attachments, unchanged in Confluence.
    t.store
        .blobs()
        .remove_unreferenced(&HashSet::new(), std::time::Duration::ZERO)
        .await
        .unwrap();
    let distinct = refs
        .iter()
        .map(|b| b.sha256())
        .collect::<HashSet<_>>()
        .len();
    assert_eq!(
        t.store.blobs().missing(&refs).await.unwrap().len(),
        distinct
    );

    // Both kinds of round repair: incremental first, then (after deleting again) full.
    for full in [false, true] {
        let (report, _) = run(&sim, &*t.store, &keys, full).await;
        let repaired: u64 = report.spaces.iter().map(|s| s.attachments_repaired).sum();
        // Space icons' bytes went too: each comes back with one download of its own.
        let icons: u64 = report.spaces.iter().map(|s| s.icons_downloaded).sum();
        let icon_spaces = t
            .store
            .list_spaces()
            .await
            .unwrap()
            .iter()
            .filter(|s| s.icon.is_some())
            .count() as u64;
        assert_eq!(icons, icon_spaces, "full: {full}: {report}");
        // Every lost blob comes back; an attachment whose bytes another space's sync already
        // brought back (same content) is not downloaded twice.
        assert!(
            (distinct as u64..=mirrored.len() as u64).contains(&repaired),
            "full: {full}: {repaired} of {} ({distinct} distinct): {report}",
            mirrored.len()
        );
        assert_eq!(
            sim.stats().media_requests,
            repaired + icons,
            "one download per attachment or icon whose bytes were gone"
        );
        assert!(t.store.blobs().missing(&refs).await.unwrap().is_empty());
        for (id, blob) in &mirrored {
            let rec = t
                .store
                .attachment(id)
                .await
                .unwrap()
                .expect("still mirrored");
            assert_eq!(rec.blob.as_ref(), Some(blob), "{id}: same bytes");
        }
        if !full {
            t.store
                .blobs()
                .remove_unreferenced(&HashSet::new(), std::time::Duration::ZERO)
                .await
                .unwrap();
        }
    }

    // Nothing missing: the check costs no Confluence call and downloads nothing.
    let (report, calls) = run(&sim, &*t.store, &keys, false).await;
    assert_eq!(calls, steady_calls, "{report}");
    assert_eq!(sim.stats().media_requests, 0);
    assert!(report.spaces.iter().all(|s| s.attachments_repaired == 0));
}

/// A source that fails after `budget` page bodies: a crash in the middle of a sync.
struct Failing<S> {
    inner: S,
    budget: usize,
}

#[async_trait]
impl<S: Source> Source for Failing<S> {
    async fn spaces(&self, keys: &[String]) -> Result<Vec<SourceSpace>, SourceError> {
        self.inner.spaces(keys).await
    }
    fn page_bodies<'a>(&'a self, space_id: &'a str) -> SourceStream<'a, PageBody> {
        let budget = self.budget;
        self.inner
            .page_bodies(space_id)
            .enumerate()
            .map(move |(i, r)| {
                if i >= budget {
                    Err(SourceError::other("connection reset (injected)"))
                } else {
                    r
                }
            })
            .boxed()
    }
    async fn page(&self, id: &str) -> Result<Option<PageBody>, SourceError> {
        self.inner.page(id).await
    }
    fn page_metas<'a>(&'a self, space_key: &'a str) -> SourceStream<'a, ScanItem> {
        self.inner.page_metas(space_key)
    }
    fn attachment_metas<'a>(&'a self, space_key: &'a str) -> SourceStream<'a, AttachmentMeta> {
        self.inner.attachment_metas(space_key)
    }
    fn changed_since<'a>(
        &'a self,
        space_key: &'a str,
        since: DateTime<Utc>,
    ) -> SourceStream<'a, Change> {
        self.inner.changed_since(space_key, since)
    }
    async fn download(
        &self,
        attachment: &AttachmentMeta,
    ) -> Result<SourceStream<'static, Bytes>, SourceError> {
        self.inner.download(attachment).await
    }
    async fn download_icon(&self, link: &str) -> Result<SourceStream<'static, Bytes>, SourceError> {
        self.inner.download_icon(link).await
    }
    fn calls(&self) -> u64 {
        self.inner.calls()
    }
}

both_backends!(a_sync_that_dies_midway_keeps_the_previous_mirror_and_the_next_completes);
async fn a_sync_that_dies_midway_keeps_the_previous_mirror_and_the_next_completes(t: TestStore) {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let keys = space_keys(&sim);
    let key = keys[0].clone();
    run(&sim, &*t.store, std::slice::from_ref(&key), false).await;
    let space = t.store.space_by_key(&key).await.unwrap().unwrap();
    let before: HashMap<String, i64> = t
        .store
        .page_versions(&space.id)
        .await
        .unwrap()
        .into_iter()
        .collect();

    // Change every page's title, then crash a full sync after 5 pages.
    let ids = sim.state().page_ids_in_space(&key);
    for id in &ids {
        let _ = sim
            .state()
            .edit_page(*id, None, Some("<p>rewritten</p>".into()));
    }
    let failing = Failing {
        inner: source_for(&sim),
        budget: 5,
    };
    let opts = SyncOptions {
        full: true,
        ..SyncOptions::default()
    };
    let err = sync_spaces(
        &failing,
        &*t.store,
        std::slice::from_ref(&key),
        &opts,
        &Progress::quiet(),
    )
    .await;
    assert!(err.is_err(), "the injected failure surfaces");
    let after: HashMap<String, i64> = t
        .store
        .page_versions(&space.id)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(before, after, "the previous mirror is intact");

    // The next sync completes.
    let (report, _) = run(&sim, &*t.store, std::slice::from_ref(&key), false).await;
    assert!(report.spaces[0].pages_changed > 0, "{report:?}");
    let after: HashMap<String, i64> = t
        .store
        .page_versions(&space.id)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_ne!(before, after);
}

both_backends!(a_space_the_service_account_cannot_see_is_an_error_not_a_wipe);
async fn a_space_the_service_account_cannot_see_is_an_error_not_a_wipe(t: TestStore) {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let source = source_for(&sim);
    let err = sync_spaces(
        &source,
        &*t.store,
        &["NOSUCHSPACE".to_string()],
        &SyncOptions::default(),
        &Progress::quiet(),
    )
    .await
    .expect_err("unknown space");
    assert!(err.to_string().contains("NOSUCHSPACE"), "{err}");
}

both_backends!(mentioned_people_get_their_names_looked_up_per_batch_of_pages);
async fn mentioned_people_get_their_names_looked_up_per_batch_of_pages(t: TestStore) {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let keys = space_keys(&sim);
    let key = keys[0].clone();
    let state = sim.state();
    let (person, name) = state.read(|s| {
        let u = s
            .users
            .values()
            .find(|u| u.email != sim.service_account().email)
            .expect("a user");
        (u.account_id.to_string(), u.display_name.clone())
    });
    let (_, kids) = first_page_with_children(&sim, &key);
    let mention = |id: &str| format!(r#"<ac:link><ri:user ri:account-id="{id}"/></ac:link>"#);
    let body = format!(
        "<p>Ask {} or {}.</p>",
        mention(&person),
        mention("5b10ac8d82e05b22cc7d4ef5")
    );
    state
        .edit_page(kids[0], None, Some(body.clone()))
        .expect("edit");
    state
        .edit_page(
            kids[1],
            None,
            Some(format!("<p>Also {}</p>", mention(&person))),
        )
        .expect("edit");

    // Off (the default): no lookup, and no name in the mirror.
    let (_, _) = run(&sim, &*t.store, std::slice::from_ref(&key), true).await;
    assert_eq!(
        sim.stats().by_endpoint.get("POST /wiki/api/v2/users-bulk"),
        None
    );
    let page = t.store.page(&kids[0].to_string()).await.unwrap().unwrap();
    assert!(!page.body_html.contains(&name), "{}", page.body_html);
    assert!(!page.body_html.contains(&person), "account id stored");

    // On: the people of a batch of up to 100 pages are looked up in one call (each person
    // once per sync), and the name is resolved.
    sim.reset_stats();
    let opts = SyncOptions {
        full: true,
        mention_names: true,
        ..SyncOptions::default()
    };
    sync_spaces(
        &source_for(&sim),
        &*t.store,
        std::slice::from_ref(&key),
        &opts,
        &Progress::quiet(),
    )
    .await
    .expect("sync");
    let (visible, _) = visible_pages(&sim, &key);
    let lookups = sim
        .stats()
        .by_endpoint
        .get("POST /wiki/api/v2/users-bulk")
        .copied()
        .unwrap_or(0);
    assert!(
        (1..=visible.div_ceil(100) as u64).contains(&lookups),
        "{lookups} lookups for {visible} pages: {:?}",
        sim.stats().by_endpoint
    );
    for id in [kids[0], kids[1]] {
        let page = t.store.page(&id.to_string()).await.unwrap().unwrap();
        assert!(!page.body_html.contains(&person), "account id stored");
        assert!(!page.body_text.contains(&name), "names are not searchable");
        struct Names;
        impl kbgate_render::PageAccess for Names {
            fn page_link(&self, _: &str, _: &str) -> Option<kbgate_render::PageTarget> {
                None
            }
            fn page_stored_html(&self, _: &str, _: &str) -> Option<String> {
                None
            }
            fn children(&self, _: &str) -> Vec<kbgate_render::PageTarget> {
                Vec::new()
            }
            fn attachment_url(&self, _: &str, _: &str, _: &str) -> Option<String> {
                None
            }
            fn show_staff_names(&self) -> bool {
                true
            }
        }
        let shown = kbgate_render::resolve(&page.body_html, &Names);
        assert!(
            shown.contains(&format!(
                "<span class=\"user-mention\">@{}</span>",
                kbgate_render::escape_html(&name)
            )),
            "{shown}"
        );
        if id == kids[0] {
            // The unknown account: neutral.
            assert!(
                shown.contains("<span class=\"user-mention\">a team member</span>"),
                "{shown}"
            );
        }
    }
}

both_backends!(space_descriptions_and_icons_are_mirrored_and_icons_fetched_only_when_changed);
async fn space_descriptions_and_icons_are_mirrored_and_icons_fetched_only_when_changed(
    t: TestStore,
) {
    let sim = spawn(SimConfig::default()).await.expect("sim");
    let keys = space_keys(&sim);
    let icons = |report: &SyncReport| -> HashMap<String, u64> {
        report
            .spaces
            .iter()
            .map(|s| (s.key.clone(), s.icons_downloaded))
            .collect()
    };
    // First sync: KB and API have uploaded icons, ONBOARD the default logo and no
    // description. One download per uploaded icon.
    let (report, _) = run(&sim, &*t.store, &keys, false).await;
    let fetched = icons(&report);
    assert_eq!(
        (fetched["KB"], fetched["ONBOARD"], fetched["API"]),
        (1, 0, 1),
        "{report}"
    );
    assert_eq!(
        sim.stats().media_requests - attachment_downloads(&report),
        2
    );
    let kb = t.store.space_by_key("KB").await.unwrap().unwrap();
    let want_desc = sim.state().read(|s| {
        s.spaces
            .values()
            .find(|sp| sp.key == "KB")
            .map(|sp| sp.description.clone())
            .unwrap()
    });
    assert!(!want_desc.is_empty());
    assert_eq!(kb.description, want_desc);
    let sim_icon = |key: &str| {
        sim.state().read(|s| {
            s.spaces
                .values()
                .find(|sp| sp.key == key)
                .and_then(|sp| sp.icon.as_ref())
                .map(|i| i.bytes.to_vec())
                .unwrap()
        })
    };
    assert_eq!(
        icon_bytes(&*t.store, "KB").await,
        ("image/png".to_owned(), sim_icon("KB"))
    );
    let onboard = t.store.space_by_key("ONBOARD").await.unwrap().unwrap();
    assert_eq!(onboard.description, "");
    assert_eq!(onboard.icon, None);
    assert_eq!(
        onboard.icon_path.as_deref(),
        Some("/wiki/images/logo/default-space-logo.svg")
    );
    let kb_shape = shape(&*t.store, "KB").await;
    let api_shape = shape(&*t.store, "API").await;

    // Nothing changed: no icon is asked for again, no shape moves.
    let (report, _) = run(&sim, &*t.store, &keys, false).await;
    assert!(icons(&report).values().all(|n| *n == 0), "{report}");
    assert_eq!(sim.stats().media_requests, 0);
    assert_eq!(shape(&*t.store, "KB").await, kb_shape);

    // A new KB icon and description: fetched once, and KB's shape moves (cached start
    // pages refresh); API's stays.
    let new_png = b"\x89PNG\r\n\x1a\nnew icon bytes".to_vec();
    sim.state()
        .set_space_icon("KB", "KB.png", "image/png", Bytes::from(new_png.clone()))
        .unwrap();
    sim.state()
        .set_space_description("KB", "Answers for <customers> & partners")
        .unwrap();
    let (report, _) = run(&sim, &*t.store, &keys, false).await;
    let fetched = icons(&report);
    assert_eq!((fetched["KB"], fetched["API"]), (1, 0), "{report}");
    assert_eq!(sim.stats().media_requests, 1);
    assert_eq!(
        icon_bytes(&*t.store, "KB").await,
        ("image/png".to_owned(), new_png)
    );
    let kb = t.store.space_by_key("KB").await.unwrap().unwrap();
    assert_eq!(kb.description, "Answers for <customers> & partners");
    assert!(shape(&*t.store, "KB").await > kb_shape);
    assert_eq!(shape(&*t.store, "API").await, api_shape);

    // An SVG icon is refused (letter tile), and not fetched again while it stays the same.
    sim.state()
        .set_space_icon(
            "API",
            "API.svg",
            "image/svg+xml",
            Bytes::from_static(b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
        )
        .unwrap();
    let (report, _) = run(&sim, &*t.store, &keys, false).await;
    assert_eq!(icons(&report)["API"], 1, "{report}");
    let api = t.store.space_by_key("API").await.unwrap().unwrap();
    assert_eq!(api.icon, None);
    assert!(api.icon_path.is_some_and(|p| p.contains("version=2")));
    assert!(shape(&*t.store, "API").await > api_shape);
    let (report, _) = run(&sim, &*t.store, &keys, false).await;
    assert!(icons(&report).values().all(|n| *n == 0), "{report}");
    assert_eq!(sim.stats().media_requests, 0);

    // A blob sweep keeps what a space icon refers to.
    let kb_blob = t
        .store
        .space_by_key("KB")
        .await
        .unwrap()
        .and_then(|s| s.icon)
        .map(|i| i.blob.sha256().to_owned())
        .unwrap();
    assert!(t.store.blob_hashes().await.unwrap().contains(&kb_blob));

    // Back to the default logo: no download, no icon.
    sim.state().clear_space_icon("KB").unwrap();
    let (report, _) = run(&sim, &*t.store, &keys, false).await;
    assert!(icons(&report).values().all(|n| *n == 0), "{report}");
    let kb = t.store.space_by_key("KB").await.unwrap().unwrap();
    assert_eq!(kb.icon, None);
    // The old icon's bytes are no longer referenced: a blob sweep may take them.
    assert!(!t.store.blob_hashes().await.unwrap().contains(&kb_blob));
}

/// Attachment downloads of a round (each one media-host request).
fn attachment_downloads(report: &SyncReport) -> u64 {
    report
        .spaces
        .iter()
        .map(|s| s.attachments_added + s.attachments_changed + s.attachments_repaired)
        .sum()
}

/// A mirrored space's icon: its type and bytes.
async fn icon_bytes(store: &dyn Store, key: &str) -> (String, Vec<u8>) {
    let space = store.space_by_key(key).await.unwrap().expect("space");
    let icon = space.icon.expect("icon");
    let mut out = Vec::new();
    store
        .blobs()
        .open(&icon.blob)
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    (icon.media_type, out)
}

/// A space's shape stamp.
async fn shape(store: &dyn Store, key: &str) -> i64 {
    store
        .space_stamps()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.space_key == key)
        .map(|s| s.shape)
        .unwrap_or(0)
}
