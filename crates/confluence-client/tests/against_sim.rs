//! The client against the in-process simulator (`confluence_sim::spawn`, port 0).

use std::collections::BTreeSet;
use std::time::Duration;

use confluence_client::*;
use confluence_sim::{Knobs, RateLimit, SimConfig, SimHandle};
use futures::{StreamExt, TryStreamExt};

async fn sim(cfg: SimConfig) -> SimHandle {
    confluence_sim::spawn(cfg).await.unwrap()
}

fn config_for(h: &SimHandle, email: &str, token: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new(h.base_url().parse().unwrap(), email, token);
    cfg.requests_per_second = 0;
    cfg.retry = RetryConfig {
        max_retries: 8,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    };
    cfg
}

fn client(h: &SimHandle) -> Client {
    let acc = h.service_account();
    Client::new(config_for(h, &acc.email, &acc.api_token)).unwrap()
}

/// Current pages of a space the service account may read (Confluence hides pages whose read
/// restriction, on the page or an ancestor, does not name the caller, even from admins).
fn visible_pages(h: &SimHandle, key: &str) -> BTreeSet<String> {
    let me = h.state().read(|s| {
        s.service_account
            .as_ref()
            .and_then(|c| s.api_tokens.get(&c.api_token).cloned())
            .unwrap_or_default()
    });
    let ids = h.state().page_ids_in_space(key);
    h.state().read(|s| {
        ids.iter()
            .filter(|id| s.can_read_page(&me, **id))
            .map(u64::to_string)
            .collect()
    })
}

fn big_space() -> SimConfig {
    SimConfig {
        spaces: 1,
        pages: 620,
        users: 600,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn reads_a_space_of_more_than_250_pages_in_bulk() {
    let h = sim(big_space()).await;
    let c = client(&h);
    let spaces: Vec<Space> = c.spaces(&[]).try_collect().await.unwrap();
    assert_eq!(spaces.len(), 1);
    let space = &spaces[0];
    let expected = visible_pages(&h, &space.key);
    assert!(h.state().page_ids_in_space(&space.key).len() >= expected.len());
    assert!(
        expected.len() > 250,
        "sim generated only {} pages",
        expected.len()
    );

    h.reset_stats();
    let pages: Vec<Page> = c
        .space_pages(&space.id, PageListOptions::default())
        .try_collect()
        .await
        .unwrap();
    let got: BTreeSet<String> = pages.iter().map(|p| p.id.clone()).collect();
    assert_eq!(got, expected);
    assert_eq!(got.len(), pages.len(), "duplicates across cursors");
    assert!(
        pages
            .iter()
            .all(|p| p.storage().is_some_and(|b| !b.is_empty()))
    );
    let calls = expected.len().div_ceil(250) as u64;
    assert_eq!(c.stats().calls("GET /wiki/api/v2/spaces/{id}/pages"), calls);
    assert_eq!(
        h.stats().total,
        calls,
        "client and sim disagree on the call count"
    );

    // The same space through v1 content search with the bulk expansions.
    let cql = format!("space = \"{}\" AND type = page", space.key);
    let content: Vec<Content> = c
        .content_search(
            &cql,
            &[
                "version",
                "ancestors",
                "metadata.labels",
                "restrictions.read.restrictions.user",
                "restrictions.read.restrictions.group",
            ],
        )
        .try_collect()
        .await
        .unwrap();
    let got: BTreeSet<String> = content.iter().map(|p| p.id.clone()).collect();
    assert_eq!(got, expected);
    for item in &content {
        let page = h.state().page(item.id.parse().unwrap()).unwrap();
        assert_eq!(
            item.is_read_restricted(),
            !page.read_restrictions.is_empty(),
            "restriction mismatch on {}",
            item.id
        );
        assert_eq!(
            item.version.as_ref().and_then(|v| v.number),
            Some(page.version().number)
        );
        let parent = item
            .ancestors
            .as_ref()
            .and_then(|a| a.last())
            .map(|a| a.id.clone());
        assert_eq!(parent, page.parent_id.map(|p| p.to_string()));
    }
}

#[tokio::test]
async fn single_page_labels_attachments_restrictions_and_download() {
    let h = sim(SimConfig::demo()).await;
    let c = client(&h);
    let spaces: Vec<Space> = c.spaces(&[]).try_collect().await.unwrap();
    // Find a page with an attachment.
    let (page_id, att) = h
        .state()
        .read(|s| {
            s.attachments
                .values()
                .find(|a| {
                    s.pages
                        .get(&a.page_id)
                        .is_some_and(|p| p.read_restrictions.is_empty())
                })
                .map(|a| (a.page_id, a.clone()))
        })
        .expect("demo site has attachments");
    let page = c.page(&page_id.to_string(), true).await.unwrap();
    assert!(page.storage().is_some());
    let sim_page = h.state().page(page_id).unwrap();
    let labels: Vec<Label> = c.page_labels(&page.id).try_collect().await.unwrap();
    assert_eq!(labels.len(), sim_page.labels.len());
    if let Some(inline) = &page.labels {
        assert_eq!(inline.results.len().min(25), labels.len().min(25));
    }
    if let Some(l) = labels.first() {
        let tagged: Vec<Page> = c.label_pages(&l.id).try_collect().await.unwrap();
        assert!(tagged.iter().any(|p| p.id == page.id));
    }
    let atts: Vec<Attachment> = c.page_attachments(&page.id).try_collect().await.unwrap();
    let a = atts
        .iter()
        .find(|a| a.title == att.title)
        .expect("attachment listed");
    assert_eq!(a.file_size, Some(att.bytes.len() as u64));
    let d = c.download_attachment(&page.id, &a.id).await.unwrap();
    let bytes: Vec<bytes::Bytes> = d.bytes.try_collect().await.unwrap();
    assert_eq!(bytes.concat(), att.bytes.to_vec());

    let r = c.read_restrictions(&page.id).await.unwrap();
    assert!(!r.is_restricted());
    let restricted = h.state().read(|s| {
        s.pages
            .values()
            .find(|p| !p.read_restrictions.is_empty())
            .map(|p| p.id)
    });
    if let Some(id) = restricted {
        assert!(
            c.read_restrictions(&id.to_string())
                .await
                .unwrap()
                .is_restricted()
        );
    }
    assert!(!spaces.is_empty());
}

#[tokio::test]
async fn incremental_search_with_cursor() {
    let h = sim(big_space()).await;
    let c = client(&h);
    let space: Space = c.spaces(&[]).try_next().await.unwrap().unwrap();
    let cql = format!(
        "space = \"{}\" AND type = page AND lastmodified > \"2000/01/01 00:00\" ORDER BY lastmodified DESC",
        space.key
    );
    let hits: Vec<SearchResult> = c.search(&cql).try_collect().await.unwrap();
    let ids: BTreeSet<String> = hits
        .iter()
        .filter_map(|r| r.content.as_ref().map(|c| c.id.clone()))
        .collect();
    assert_eq!(ids, visible_pages(&h, &space.key));
    assert_eq!(ids.len(), hits.len());

    let bad = c
        .search("space = ")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(bad, Error::BadRequest { status: 400, .. }),
        "{bad:?}"
    );
}

#[tokio::test]
async fn wrong_token_is_a_clear_unauthorized_error() {
    let h = sim(SimConfig::default()).await;
    let acc = h.service_account();
    let c = Client::new(config_for(&h, &acc.email, "wrong-token-value")).unwrap();
    let e = c.spaces(&[]).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    let text = format!("{e} {e:?}");
    assert!(!text.contains("wrong-token-value"), "{text}");
    assert!(!text.contains(&acc.api_token));
    let e = c
        .group_members("x")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
}

#[tokio::test]
async fn storm_of_429_is_absorbed() {
    let h = sim(big_space()).await;
    let c = client(&h);
    let space: Space = c.spaces(&[]).try_next().await.unwrap().unwrap();
    let ids: Vec<String> = visible_pages(&h, &space.key).into_iter().take(40).collect();
    h.set_knobs(Knobs {
        rate_limit: Some(RateLimit {
            per_second: 20,
            burst: 5,
        }),
        ..Knobs::default()
    });
    h.reset_stats();
    c.reset_stats();
    let pages: Vec<Page> = futures::stream::iter(ids.iter())
        .map(|id| c.page(id, false))
        .buffer_unordered(20)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 40);
    let sim_stats = h.stats();
    assert!(sim_stats.rate_limited > 0, "the storm did not happen");
    let s = c.stats();
    assert_eq!(s.rate_limited, sim_stats.rate_limited);
    assert_eq!(
        s.total, sim_stats.total,
        "client {s:?} vs sim {sim_stats:?}"
    );
    assert_eq!(s.retries, s.rate_limited);
}

#[tokio::test]
async fn injected_5xx_are_retried_for_reads() {
    let h = sim(big_space()).await;
    let c = client(&h);
    let space: Space = c.spaces(&[]).try_next().await.unwrap().unwrap();
    h.set_knobs(Knobs {
        error_rate: 0.3,
        ..Knobs::default()
    });
    let pages: Vec<Page> = c
        .space_pages(
            &space.id,
            PageListOptions {
                storage_body: false,
                ..Default::default()
            },
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), visible_pages(&h, &space.key).len());
    let ids: Vec<String> = h
        .state()
        .read(|s| s.users.keys().take(300).cloned().collect());
    let users = c.users_bulk(&ids).await.unwrap();
    assert_eq!(users.len(), 300);
    let injected = h.stats().errors_injected;
    assert!(injected > 0, "no fault was injected");
    assert!(c.stats().retries >= injected);
}

#[tokio::test]
async fn bulk_caps_against_the_sim() {
    let h = sim(big_space()).await;
    let c = client(&h);
    let (ids, emails): (Vec<String>, Vec<String>) = h.state().read(|s| {
        s.users
            .values()
            .map(|u| (u.account_id.clone(), u.email.clone()))
            .unzip()
    });
    assert!(ids.len() > 500);
    h.reset_stats();
    let users = c.users_bulk(&ids).await.unwrap();
    assert_eq!(users.len(), ids.len());
    assert_eq!(
        h.stats().by_endpoint["POST /wiki/api/v2/users-bulk"],
        ids.len().div_ceil(250) as u64
    );

    let mut probe: Vec<String> = emails.iter().take(240).cloned().collect();
    probe.extend((0..15).map(|i| format!("newcomer{i}@nowhere-example.com")));
    let r = c.check_access_by_email(&probe).await.unwrap();
    assert_eq!(
        h.stats().by_endpoint["POST /wiki/api/v2/user/access/check-access-by-email"],
        3
    );
    for i in 0..15 {
        assert!(
            r.emails_without_access
                .contains(&format!("newcomer{i}@nowhere-example.com"))
        );
    }
    c.invite_by_email(&probe).await.unwrap();
    assert_eq!(
        h.stats().by_endpoint["POST /wiki/api/v2/user/access/invite-by-email"],
        3
    );
}

#[tokio::test]
async fn groups_members_and_space_permissions() {
    let h = sim(big_space()).await;
    let c = client(&h);
    let name = "kbgate-customers-example-com";
    assert!(c.group_by_name(name).await.unwrap().is_none());
    let g = c.create_group(name).await.unwrap();
    assert_eq!(c.group_by_name(name).await.unwrap().as_ref(), Some(&g));

    let ids: Vec<String> = h
        .state()
        .read(|s| s.users.keys().take(230).cloned().collect());
    for id in &ids {
        c.add_group_member(&g.id, id).await.unwrap();
    }
    h.reset_stats();
    let members: Vec<UserV1> = c.group_members(&g.id).try_collect().await.unwrap();
    let got: BTreeSet<String> = members
        .iter()
        .filter_map(|m| m.account_id.clone())
        .collect();
    assert_eq!(got, ids.iter().cloned().collect());
    assert!(members.iter().all(|m| m.is_guest().is_some()));
    assert_eq!(
        h.stats().by_endpoint["GET /wiki/rest/api/group/{groupId}/membersByGroupId"],
        2
    );
    c.remove_group_member(&g.id, &ids[0]).await.unwrap();
    let n = c.group_members(&g.id).count().await;
    assert_eq!(n, 229);

    let space: Space = c.spaces(&[]).try_next().await.unwrap().unwrap();
    let subject = PermissionSubject::group(&g.id);
    let p = c
        .add_space_permission(&space.key, &subject, &SpaceOperation::read_space())
        .await
        .unwrap();
    let again = c
        .add_space_permission(&space.key, &subject, &SpaceOperation::read_space())
        .await
        .unwrap_err();
    assert!(again.is_already_exists(), "{again:?}");
    let listed: Vec<SpacePermissionAssignment> =
        c.space_permissions(&space.id).try_collect().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|a| a.id == p.id && a.principal.id.as_deref() == Some(g.id.as_str()))
    );
    c.remove_space_permission(&space.key, &p.id).await.unwrap();
    let gone = c
        .remove_space_permission(&space.key, &p.id)
        .await
        .unwrap_err();
    assert!(gone.is_not_found(), "{gone:?}");
}

#[tokio::test]
async fn non_admin_gets_forbidden_with_a_hint() {
    let h = sim(SimConfig::default()).await;
    let acc = h.non_admin_account();
    let c = Client::new(config_for(&h, &acc.email, &acc.api_token)).unwrap();
    let e = c.create_group("nope").await.unwrap_err();
    match &e {
        Error::Forbidden { path, hint, .. } => {
            assert_eq!(path, "/wiki/rest/api/group");
            assert!(hint.contains("admin"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.stats().retries, 0);
}

#[tokio::test]
async fn knowledge_base_graphql_and_jira() {
    let h = sim(SimConfig::demo()).await;
    let c = client(&h);
    let space: Space = c.spaces(&[]).try_next().await.unwrap().unwrap();
    let s = c.set_unlicensed_view(&space.key, true).await.unwrap();
    assert_eq!(s.state(), Some(true));
    assert!(h.state().read(|st| st.unlicensed_view.contains(&space.key)));
    let s = c.set_unlicensed_view(&space.key, false).await.unwrap();
    assert_eq!(s.state(), Some(false));
    assert_eq!(
        c.set_anonymous_view(&space.key, false)
            .await
            .unwrap()
            .state(),
        Some(false)
    );
    assert_eq!(
        c.set_global_unlicensed_access(true).await.unwrap().state(),
        Some(true)
    );
    assert!(h.state().read(|st| st.global_unlicensed_access));

    let all: Vec<Guest> = c
        .undocumented()
        .guest_data_query(false)
        .try_collect()
        .await
        .unwrap();
    let unassigned: Vec<Guest> = c
        .undocumented()
        .guest_data_query(true)
        .try_collect()
        .await
        .unwrap();
    assert!(unassigned.iter().all(|g| g.spaces.is_empty()));
    assert!(unassigned.len() <= all.len());
    if let Some(g) = unassigned.first() {
        let out = c
            .undocumented()
            .reset_ex_co_space_permissions(&g.account_id, &space.key)
            .await
            .unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(
            h.state()
                .read(|st| st.guest_spaces.get(&g.account_id).cloned()),
            Some(space.key.clone())
        );
    }

    let u = c
        .create_site_user("fresh.person@customer-example.com")
        .await
        .unwrap();
    assert!(!u.account_id.is_empty());
    let found = c.users_bulk(&[u.account_id.as_str()]).await.unwrap();
    assert_eq!(found.len(), 1);
}
