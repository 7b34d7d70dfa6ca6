//! Sync against a simulator that behaves like today's Confluence Cloud: the legacy download
//! path refused, attachments through a cross-origin media redirect, a site in a non-UTC time
//! zone, conservative page-size caps, burst rate limits, folders (one restricted), archived
//! pages and other content kinds — through the site URL and through the gateway, with each
//! way of authenticating. And the mirror forgets what it no longer needs.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use chrono::FixedOffset;
use confluence_client::{Client, ClientConfig, OAuthClientCredentials, SecretString, gateway_base};
use confluence_sim::cql::SiteTimeZone;
use confluence_sim::model::PageStatus;
use confluence_sim::{NewPage, RateLimit, SimConfig, SimHandle, spawn};
use kbgate_mirror::sync::{
    Progress, SyncOptions, SyncReport, confluence::ConfluenceSource, forget, sync_spaces,
};
use kbgate_store::Store;
use kbgate_store::testing::{TestStore, postgres, sqlite};

/// The three ways kbgate authenticates.
#[derive(Debug, Clone, Copy)]
enum Auth {
    ClassicOnSite,
    ScopedViaGateway,
    OAuthViaGateway,
}

const PORTAL_SCOPES: &[&str] = confluence_client::scopes::PORTAL_SCOPES;

fn source(sim: &SimHandle, auth: Auth) -> ConfluenceSource {
    let svc = sim.service_account();
    let site: url::Url = sim.base_url().parse().expect("sim url");
    let gateway = gateway_base(&site, &sim.cloud_id());
    let mut cfg = match auth {
        Auth::ClassicOnSite => ClientConfig::new(site.clone(), &svc.email, svc.api_token),
        Auth::ScopedViaGateway => {
            let scoped = sim
                .state()
                .create_scoped_token(&svc.email, PORTAL_SCOPES)
                .expect("scoped token");
            let mut cfg = ClientConfig::new(gateway, &svc.email, scoped.api_token);
            cfg.site_url = Some(site.clone());
            cfg
        }
        Auth::OAuthViaGateway => {
            let client = sim
                .state()
                .create_oauth_client(&svc.email, PORTAL_SCOPES)
                .expect("oauth client");
            let mut cfg = ClientConfig::new(gateway, "", "");
            cfg.site_url = Some(site.clone());
            cfg.oauth = Some(OAuthClientCredentials {
                client_id: client.client_id,
                client_secret: SecretString::from(client.client_secret),
                token_url: site.join("/oauth/token").expect("token url"),
            });
            cfg
        }
    };
    cfg.requests_per_second = 0;
    cfg.retry.initial_backoff = std::time::Duration::from_millis(20);
    cfg.retry.max_backoff = std::time::Duration::from_millis(200);
    cfg.retry.near_limit_pause = std::time::Duration::from_millis(10);
    ConfluenceSource::new(Client::new(cfg).expect("client"))
}

fn keys(sim: &SimHandle) -> Vec<String> {
    let mut k: Vec<String> = sim
        .state()
        .read(|s| s.spaces.values().map(|sp| sp.key.clone()).collect());
    k.sort();
    k
}

async fn sync(
    sim: &SimHandle,
    store: &dyn Store,
    auth: Auth,
    keys: &[String],
    full: bool,
) -> SyncReport {
    let opts = SyncOptions {
        full,
        ..SyncOptions::default()
    };
    sync_spaces(&source(sim, auth), store, keys, &opts, &Progress::quiet())
        .await
        .expect("sync")
}

/// Every current page the service account can read, with whether it is restricted (on
/// itself, an ancestor page or an ancestor folder), as the simulator knows it.
fn expected_pages(sim: &SimHandle) -> BTreeMap<String, bool> {
    sim.state().read(|s| {
        let svc = s
            .users
            .values()
            .find(|u| u.email == sim.service_account().email)
            .map(|u| u.account_id.clone())
            .expect("service account");
        s.pages
            .values()
            .filter(|p| p.status == PageStatus::Current && s.can_read_page(&svc, p.id))
            .map(|p| (p.id.to_string(), s.is_effectively_restricted(p.id)))
            .collect()
    })
}

/// Every current attachment of a mirrored page, with its size.
fn expected_attachments(sim: &SimHandle, pages: &BTreeMap<String, bool>) -> BTreeMap<String, i64> {
    sim.state().read(|s| {
        s.attachments
            .values()
            .filter(|a| a.status == PageStatus::Current)
            .filter(|a| pages.contains_key(&a.page_id.to_string()))
            .map(|a| (format!("att{}", a.id), a.bytes.len() as i64))
            .collect()
    })
}

/// The mirror holds exactly the expected pages (restriction flags included) and every
/// attachment with its bytes on disk.
async fn assert_mirror(sim: &SimHandle, store: &dyn Store, keys: &[String]) {
    let want = expected_pages(sim);
    let mut got = BTreeMap::new();
    for key in keys {
        let space = store.space_by_key(key).await.unwrap().expect("space");
        for s in store.page_summaries(&space.id).await.unwrap() {
            got.insert(s.id.clone(), s.effective_restricted);
        }
    }
    assert_eq!(got, want, "pages and their restriction flags");
    for (id, size) in expected_attachments(sim, &want) {
        let a = store
            .attachment(&id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("attachment {id} mirrored"));
        let blob = a.blob.unwrap_or_else(|| panic!("bytes of {id}"));
        assert_eq!(blob.size(), size, "{id}");
        assert!(store.blobs().exists(&blob).await.unwrap(), "{id} on disk");
    }
}

/// The blobs every attachment of the mirror refers to now.
async fn all_blob_refs(store: &dyn Store) -> Vec<kbgate_store::BlobRef> {
    let mut out = Vec::new();
    for space in store.list_spaces().await.unwrap() {
        let blobs = store.attachment_blobs(&space.id).await.unwrap();
        out.extend(blobs.into_iter().map(|(_, b)| b));
    }
    out
}

/// Of the blobs in `seen`, the blob store still holds exactly those the mirror refers to.
async fn assert_no_orphaned_blobs(store: &dyn Store, seen: &[kbgate_store::BlobRef]) {
    let referenced: HashSet<String> = store.blob_hashes().await.unwrap().into_iter().collect();
    let missing = store.blobs().missing(seen).await.unwrap();
    for blob in seen {
        let stored = !missing.contains(blob.sha256());
        assert_eq!(
            stored,
            referenced.contains(blob.sha256()),
            "blob {} stored: {stored}",
            blob.sha256()
        );
    }
}

/// A site as today's Cloud: non-UTC zone, conservative caps (the defaults), a burst limit
/// on every endpoint, the media redirect, folders and archived pages (the generator's).
fn cloud_like(zone_hours: i32) -> SimConfig {
    SimConfig {
        time_zone: SiteTimeZone(FixedOffset::east_opt(zone_hours * 3600).expect("offset")),
        endpoint_rate_limit: Some(RateLimit {
            per_second: 40,
            burst: 20,
        }),
        ..SimConfig::default()
    }
}

macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::sqlite().await).await;
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

both_backends!(full_sync_through_the_site_and_the_gateway_mirrors_everything);
async fn full_sync_through_the_site_and_the_gateway_mirrors_everything(t: TestStore) {
    for auth in [
        Auth::ClassicOnSite,
        Auth::ScopedViaGateway,
        Auth::OAuthViaGateway,
    ] {
        let sim = spawn(cloud_like(-8)).await.expect("sim");
        let keys = keys(&sim);
        // A fresh store per way of authenticating (the spaces are the same ids).
        for key in &keys {
            if let Some(s) = t.store.space_by_key(key).await.unwrap() {
                t.store.delete_space(&s.id).await.unwrap();
            }
        }
        let report = sync(&sim, &*t.store, auth, &keys, true).await;
        assert!(report.calls > 0, "{auth:?}");
        assert_mirror(&sim, &*t.store, &keys).await;
        let stats = sim.stats();
        assert!(
            stats.media_requests > 0,
            "{auth:?}: downloads went to the media host"
        );
        assert!(
            !stats
                .by_endpoint
                .contains_key("GET /wiki/download/attachments/{pageId}/{filename}"),
            "{auth:?}: never the legacy path"
        );
        // The restricted folder's page is mirrored as restricted, not served.
        let in_restricted_folder = sim.state().read(|s| {
            s.pages
                .values()
                .filter(|p| p.status == PageStatus::Current && s.is_effectively_restricted(p.id))
                .count()
        });
        assert!(in_restricted_folder > 0);
    }
}

both_backends!(incremental_sync_is_right_in_any_site_time_zone);
async fn incremental_sync_is_right_in_any_site_time_zone(t: TestStore) {
    for zone in [-8, 13] {
        let sim = spawn(cloud_like(zone)).await.expect("sim");
        let keys = keys(&sim);
        for key in &keys {
            if let Some(s) = t.store.space_by_key(key).await.unwrap() {
                t.store.delete_space(&s.id).await.unwrap();
            }
        }
        sync(&sim, &*t.store, Auth::ClassicOnSite, &keys, true).await;
        let state = sim.state();
        let key = keys[0].clone();
        // A new page, an edited page, a new attachment on an existing page.
        let new_page = state
            .create_page(NewPage {
                space_key: key.clone(),
                parent_id: None,
                title: format!("Created at UTC{zone:+}"),
                body: "<p>fresh words quokka</p>".into(),
                labels: Vec::new(),
            })
            .expect("create");
        let (edited, host) = {
            let want = expected_pages(&sim);
            let mut open: Vec<u64> = want
                .iter()
                .filter(|(_, r)| !**r)
                .filter_map(|(id, _)| id.parse().ok())
                .filter(|id| *id != new_page)
                .collect();
            open.sort();
            (open[0], open[1])
        };
        state
            .edit_page(edited, None, Some("<p>edited words wombat</p>".into()))
            .expect("edit");
        let att = state
            .add_attachment(
                host,
                "late.txt",
                "text/plain",
                Bytes::from_static(b"late bytes"),
            )
            .expect("attachment");
        let report = sync(&sim, &*t.store, Auth::ClassicOnSite, &keys, false).await;
        assert!(
            report.spaces.iter().all(|s| !s.full),
            "UTC{zone:+}: incremental"
        );
        let p = t.store.page(&new_page.to_string()).await.unwrap();
        assert!(p.is_some(), "UTC{zone:+}: new page");
        let p = t.store.page(&edited.to_string()).await.unwrap().unwrap();
        assert!(p.body_text.contains("wombat"), "UTC{zone:+}: edit");
        let a = t.store.attachment(&format!("att{att}")).await.unwrap();
        assert!(
            a.is_some_and(|a| a.blob.is_some()),
            "UTC{zone:+}: the new attachment and its bytes"
        );
        assert_mirror(&sim, &*t.store, &keys).await;
    }
}

both_backends!(the_mirror_forgets_spaces_pages_and_bytes);
async fn the_mirror_forgets_spaces_pages_and_bytes(t: TestStore) {
    let sim = spawn(cloud_like(0)).await.expect("sim");
    let keys = keys(&sim);
    let state = sim.state();
    // Two attachments with bytes no other attachment has (the generator reuses contents, and
    // blobs are shared by content): one to delete, one to replace.
    let host: u64 = expected_pages(&sim)
        .into_iter()
        .find(|(_, r)| !r)
        .map(|(id, _)| id.parse().unwrap())
        .unwrap();
    let deleted = state
        .add_attachment(
            host,
            "gone.txt",
            "text/plain",
            Bytes::from_static(b"only here: gone"),
        )
        .expect("attachment");
    let replaced = state
        .add_attachment(
            host,
            "old.txt",
            "text/plain",
            Bytes::from_static(b"only here: v1"),
        )
        .expect("attachment");
    sync(&sim, &*t.store, Auth::ClassicOnSite, &keys, true).await;
    // Every blob the mirror has referred to; whichever backend keeps the bytes, those left
    // must be exactly those still referred to.
    let mut seen = all_blob_refs(&*t.store).await;
    assert!(!seen.is_empty());

    // A deleted attachment, a replaced one and a deleted page.
    state.delete_attachment(deleted).expect("delete attachment");
    state
        .replace_attachment(
            replaced,
            None,
            Bytes::from_static(b"replacement bytes, version 2"),
        )
        .expect("replace");
    let gone_page = expected_pages(&sim)
        .into_iter()
        .filter(|(_, r)| !r)
        .map(|(id, _)| id.parse::<u64>().unwrap())
        .find(|id| *id != host && state.read(|s| s.child_ids(*id).is_empty()))
        .unwrap();
    let gone_title = t
        .store
        .page(&gone_page.to_string())
        .await
        .unwrap()
        .unwrap()
        .title;
    state.delete_page(gone_page).expect("delete page");
    // A full pass sweeps what CQL cannot show (an attachment removed from a page).
    sync(&sim, &*t.store, Auth::ClassicOnSite, &keys, true).await;
    seen.extend(all_blob_refs(&*t.store).await);
    let report = forget(&*t.store, &keys, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(report.spaces_removed.is_empty());
    assert!(report.blobs_removed >= 2, "{report:?}");
    assert_no_orphaned_blobs(&*t.store, &seen).await;
    assert!(
        t.store
            .attachment(&format!("att{deleted}"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.store
            .page(&gone_page.to_string())
            .await
            .unwrap()
            .is_none()
    );
    let scope: Vec<kbgate_store::ScopeEntry> = {
        let mut v = Vec::new();
        for s in t.store.list_spaces().await.unwrap() {
            v.push(kbgate_store::ScopeEntry {
                space_id: s.id,
                labels: None,
            });
        }
        v
    };
    let hits = t.store.search(&gone_title, &scope, 50, 0).await.unwrap();
    assert!(
        hits.hits.iter().all(|h| h.page_id != gone_page.to_string()),
        "a deleted page leaves search"
    );
    assert_mirror(&sim, &*t.store, &keys).await;

    // A space no audience names any more: removed, with its pages and bytes.
    let (dropped, kept) = (keys[0].clone(), keys[1..].to_vec());
    let report = forget(&*t.store, &kept, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.spaces_removed, vec![dropped.clone()]);
    assert!(t.store.space_by_key(&dropped).await.unwrap().is_none());
    assert_no_orphaned_blobs(&*t.store, &seen).await;
}
