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
        ..RetryConfig::default()
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
    // 20 a second, burst 5: every 429 carries `Retry-After: 1`.
    h.set_knobs(Knobs {
        rate_limit: Some(RateLimit {
            per_second: 20,
            burst: 5,
        }),
        ..Knobs::default()
    });
    h.reset_stats();
    c.reset_stats();
    h.state().record_arrivals(true);
    let started = std::time::Instant::now();
    let pages: Vec<Page> = futures::stream::iter(ids.iter())
        .map(|id| c.page(id, false))
        .buffer_unordered(20)
        .try_collect()
        .await
        .unwrap();
    let elapsed = started.elapsed();
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
    assert_eq!(s.by_endpoint, sim_stats.by_endpoint);

    // The waits were honoured: each page is its own path, so the sim's arrival log shows every
    // call's attempts; after each 429 the next attempt of that call came Retry-After (1 s)
    // later, and a call refused k times took at least k seconds.
    let arrivals = h.state().arrivals();
    assert_eq!(arrivals.len() as u64, sim_stats.total);
    let wait = Duration::from_millis(990);
    let mut forced_waits = 0;
    let mut longest = 0;
    for id in &ids {
        let tries: Vec<_> = arrivals
            .iter()
            .filter(|a| a.path.starts_with(&format!("/wiki/api/v2/pages/{id}?")))
            .collect();
        assert_eq!(tries.last().and_then(|a| a.status), Some(200), "page {id}");
        let refused = tries.iter().filter(|a| a.status == Some(429)).count();
        assert_eq!(tries.len(), refused + 1, "page {id}: {tries:?}");
        for pair in tries.windows(2) {
            let gap = pair[1].at.duration_since(pair[0].at);
            assert!(
                gap >= wait,
                "page {id}: retried {gap:?} after a 429 with Retry-After: 1"
            );
        }
        let span = tries[tries.len() - 1].at.duration_since(tries[0].at);
        assert!(
            span >= wait * refused as u32,
            "page {id}: {refused} waits in {span:?}"
        );
        forced_waits += refused;
        longest = longest.max(refused);
    }
    assert_eq!(forced_waits as u64, sim_stats.rate_limited);
    assert!(
        elapsed >= wait * longest as u32,
        "{longest} consecutive waits of 1 s took {elapsed:?}"
    );
    h.state().record_arrivals(false);
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

/// The knowledge-base switches read back per space through v1 `expand=permissions`, 25 keys a
/// call; unknown keys are absent.
#[tokio::test]
async fn unlicensed_view_reads_back_through_space_permissions() {
    let h = sim(SimConfig {
        spaces: 30,
        pages: 40,
        users: 40,
        ..SimConfig::default()
    })
    .await;
    let c = client(&h);
    let keys: Vec<String> = h
        .state()
        .read(|s| s.spaces.values().map(|sp| sp.key.clone()).collect());
    assert_eq!(keys.len(), 30);
    c.set_unlicensed_view(&keys[0], true).await.unwrap();
    c.set_unlicensed_view(&keys[29], true).await.unwrap();
    c.set_anonymous_view(&keys[1], true).await.unwrap();
    let mut asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    asked.push("NOSUCHSPACE");
    reset(&h, &c);
    let spaces: Vec<SpaceV1> = c
        .spaces_with_permissions(&asked)
        .try_collect()
        .await
        .unwrap();
    assert_calls(
        &h,
        &c,
        "GET /wiki/rest/api/space",
        asked.len(),
        V1_SPACES_PER_CALL,
    );
    let got: BTreeSet<&str> = spaces.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(got, keys.iter().map(String::as_str).collect());
    for s in &spaces {
        let on = s.key == keys[0] || s.key == keys[29];
        assert_eq!(s.unlicensed_view(), Some(on), "{}", s.key);
        assert_eq!(s.anonymous_view(), Some(s.key == keys[1]), "{}", s.key);
        // The ordinary permissions come along, with their subjects.
        let perms = s.permissions.as_ref().unwrap();
        assert!(perms.iter().any(|p| p.operation.operation == "administer"
            && p.subjects.as_ref().is_some_and(|x| x.user.is_some())));
    }
    // Switched off again, the entry is gone.
    c.set_unlicensed_view(&keys[0], false).await.unwrap();
    let one: Vec<SpaceV1> = c
        .spaces_with_permissions(&[keys[0].as_str()])
        .try_collect()
        .await
        .unwrap();
    assert_eq!(one[0].unlicensed_view(), Some(false));
    // No keys, no call.
    reset(&h, &c);
    let none: Vec<SpaceV1> = c.spaces_with_permissions(&[]).try_collect().await.unwrap();
    assert!(none.is_empty());
    assert_eq!(h.stats().total, 0);
}

// ------------------------------------------------------------------ paging past 250

/// Listing `items` items in pages of `per_call` took the expected number of calls, by the
/// sim's count and by the client's (the two use the same `METHOD /template` keys).
fn assert_calls(h: &SimHandle, c: &Client, endpoint: &str, items: usize, per_call: usize) {
    let calls = items.div_ceil(per_call).max(1) as u64;
    let sim = h.stats();
    assert_eq!(
        sim.by_endpoint.get(endpoint).copied(),
        Some(calls),
        "sim calls of {endpoint} for {items} items: {:?}",
        sim.by_endpoint
    );
    assert_eq!(
        c.stats().calls(endpoint),
        calls,
        "client calls of {endpoint}"
    );
    assert_eq!(
        sim.total, calls,
        "other calls were made: {:?}",
        sim.by_endpoint
    );
}

fn reset(h: &SimHandle, c: &Client) {
    h.reset_stats();
    c.reset_stats();
}

/// The service account's account id.
fn me(h: &SimHandle) -> String {
    let email = h.service_account().email;
    h.state()
        .read(|s| s.user_by_email(&email).map(|u| u.account_id.clone()))
        .expect("service account")
}

/// A current page the service account may read, in space `key`.
fn readable_page(h: &SimHandle, key: &str) -> u64 {
    let me = me(h);
    let ids = h.state().page_ids_in_space(key);
    h.state()
        .read(|s| ids.iter().copied().find(|id| s.can_read_page(&me, *id)))
        .expect("a readable page")
}

#[tokio::test]
async fn spaces_page_past_250() {
    let h = sim(SimConfig {
        spaces: 260,
        pages: 270,
        users: 40,
        ..SimConfig::default()
    })
    .await;
    let c = client(&h);
    let expected: BTreeSet<String> = h
        .state()
        .read(|s| s.spaces.values().map(|sp| sp.key.clone()).collect());
    assert_eq!(expected.len(), 260);
    reset(&h, &c);
    let spaces: Vec<Space> = c.spaces(&[]).try_collect().await.unwrap();
    let got: BTreeSet<String> = spaces.iter().map(|s| s.key.clone()).collect();
    assert_eq!(got, expected);
    assert_eq!(spaces.len(), expected.len(), "duplicates across cursors");
    assert_calls(&h, &c, "GET /wiki/api/v2/spaces", 260, 250);

    // By key: 260 keys are split into requests of 250 keys, one page each.
    let keys: Vec<&str> = expected.iter().map(String::as_str).collect();
    reset(&h, &c);
    let by_key: Vec<Space> = c.spaces(&keys).try_collect().await.unwrap();
    assert_eq!(
        by_key
            .iter()
            .map(|s| s.key.clone())
            .collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(h.stats().by_endpoint["GET /wiki/api/v2/spaces"], 2);
    assert_eq!(c.stats().calls("GET /wiki/api/v2/spaces"), 2);
}

#[tokio::test]
async fn page_attachments_and_labels_page_past_250() {
    let h = sim(SimConfig::default()).await;
    let c = client(&h);
    let key = h
        .state()
        .read(|s| s.spaces.values().next().unwrap().key.clone());
    let page = readable_page(&h, &key);
    for i in 0..260 {
        h.state()
            .add_attachment(
                page,
                &format!("bulk-{i:03}.txt"),
                "text/plain",
                bytes::Bytes::from(format!("file {i}")),
            )
            .unwrap();
    }
    for i in 0..270 {
        h.state()
            .add_label(page, &format!("bulk-label-{i:03}"))
            .unwrap();
    }
    let (want_atts, want_labels) = h.state().read(|s| {
        let atts: BTreeSet<String> = s.page_attachments[&page]
            .iter()
            .filter(|a| s.attachments[a].status == confluence_sim::model::PageStatus::Current)
            .map(|a| format!("att{a}"))
            .collect();
        let labels: BTreeSet<String> = s.pages[&page].labels.iter().map(u64::to_string).collect();
        (atts, labels)
    });
    assert!(want_atts.len() >= 260 && want_labels.len() >= 270);

    reset(&h, &c);
    let atts: Vec<Attachment> = c
        .page_attachments(&page.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(atts.len(), want_atts.len(), "duplicates across cursors");
    assert_eq!(
        atts.iter().map(|a| a.id.clone()).collect::<BTreeSet<_>>(),
        want_atts
    );
    assert_calls(
        &h,
        &c,
        "GET /wiki/api/v2/pages/{id}/attachments",
        want_atts.len(),
        250,
    );

    reset(&h, &c);
    let labels: Vec<Label> = c
        .page_labels(&page.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(labels.len(), want_labels.len(), "duplicates across cursors");
    assert_eq!(
        labels.iter().map(|l| l.id.clone()).collect::<BTreeSet<_>>(),
        want_labels
    );
    assert_calls(
        &h,
        &c,
        "GET /wiki/api/v2/pages/{id}/labels",
        want_labels.len(),
        250,
    );
}

#[tokio::test]
async fn label_pages_page_past_250() {
    let h = sim(big_space()).await;
    let c = client(&h);
    let key = h
        .state()
        .read(|s| s.spaces.values().next().unwrap().key.clone());
    let all = h.state().page_ids_in_space(&key);
    let mut label = 0;
    for id in &all {
        label = h.state().add_label(*id, "everywhere").unwrap();
    }
    let expected = visible_pages(&h, &key);
    assert!(expected.len() > 250, "{}", expected.len());
    reset(&h, &c);
    let pages: Vec<Page> = c
        .label_pages(&label.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), expected.len(), "duplicates across cursors");
    assert_eq!(
        pages.iter().map(|p| p.id.clone()).collect::<BTreeSet<_>>(),
        expected
    );
    assert_calls(
        &h,
        &c,
        "GET /wiki/api/v2/labels/{id}/pages",
        expected.len(),
        250,
    );
}

#[tokio::test]
async fn space_permissions_page_past_250() {
    let h = sim(big_space()).await;
    let c = client(&h);
    let (space_id, key) = h.state().read(|s| {
        let sp = s.spaces.values().next().unwrap();
        (sp.id, sp.key.clone())
    });
    // 300 more grants: `export` for 300 users (none holds it yet).
    h.state().write(|s| {
        let users: Vec<String> = s.users.keys().take(300).cloned().collect();
        assert_eq!(users.len(), 300);
        for u in users {
            let id = s.next_permission_id;
            s.next_permission_id += 1;
            s.space_permissions.insert(
                id,
                confluence_sim::model::SpacePermission {
                    id,
                    space_key: key.clone(),
                    subject: confluence_sim::model::Subject::User(u),
                    operation: confluence_sim::model::Operation {
                        key: "export".into(),
                        target: "space".into(),
                    },
                },
            );
        }
    });
    let expected: BTreeSet<String> = h.state().read(|s| {
        s.space_permissions
            .values()
            .filter(|p| p.space_key == key)
            .map(|p| p.id.to_string())
            .collect()
    });
    assert!(expected.len() > 300);
    reset(&h, &c);
    let listed: Vec<SpacePermissionAssignment> = c
        .space_permissions(&space_id.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), expected.len(), "duplicates across cursors");
    assert_eq!(
        listed.iter().map(|p| p.id.clone()).collect::<BTreeSet<_>>(),
        expected
    );
    assert_calls(
        &h,
        &c,
        "GET /wiki/api/v2/spaces/{id}/permissions",
        expected.len(),
        250,
    );
}

#[tokio::test]
async fn group_members_page_past_250() {
    let h = sim(big_space()).await;
    let c = client(&h);
    let g = c.create_group("kbgate-many-members").await.unwrap();
    let ids: BTreeSet<String> = h.state().write(|s| {
        let ids: BTreeSet<String> = s.users.keys().take(450).cloned().collect();
        s.groups
            .get_mut(&g.id)
            .unwrap()
            .members
            .extend(ids.iter().cloned());
        ids
    });
    assert_eq!(ids.len(), 450);
    reset(&h, &c);
    let members: Vec<UserV1> = c.group_members(&g.id).try_collect().await.unwrap();
    assert_eq!(members.len(), 450, "duplicates across pages");
    assert_eq!(
        members
            .iter()
            .filter_map(|m| m.account_id.clone())
            .collect::<BTreeSet<_>>(),
        ids
    );
    // v1 member listings cap `limit` at 200.
    assert_calls(
        &h,
        &c,
        "GET /wiki/rest/api/group/{groupId}/membersByGroupId",
        450,
        200,
    );
}

#[tokio::test]
async fn guest_data_query_pages_past_250() {
    use confluence_sim::model::{AccountType, User, UserKind, UserStatus};
    let h = sim(SimConfig::default()).await;
    let c = client(&h);
    h.state().write(|s| {
        for i in 0..280 {
            s.insert_user(User {
                account_id: format!("712020:bulk-guest-{i:03}"),
                email: format!("guest{i}@guests-example.com"),
                display_name: format!("Guest {i}"),
                account_type: AccountType::Atlassian,
                status: UserStatus::Active,
                kind: UserKind::Guest,
                is_admin: false,
            });
        }
    });
    let (all, unassigned): (BTreeSet<String>, BTreeSet<String>) = h.state().read(|s| {
        let active: Vec<&User> = s
            .users
            .values()
            .filter(|u| u.kind == UserKind::Guest && u.status == UserStatus::Active)
            .collect();
        (
            active.iter().map(|u| u.account_id.clone()).collect(),
            active
                .iter()
                .filter(|u| !s.guest_spaces.contains_key(&u.account_id))
                .map(|u| u.account_id.clone())
                .collect(),
        )
    });
    assert!(all.len() >= 280 && unassigned.len() >= 280);
    let endpoint = "POST /cgraphql?q=GuestDataQuery";
    for (only_unassigned, expected) in [(false, &all), (true, &unassigned)] {
        reset(&h, &c);
        let guests: Vec<Guest> = c
            .undocumented()
            .guest_data_query(only_unassigned)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(guests.len(), expected.len(), "duplicates across cursors");
        assert_eq!(
            &guests
                .iter()
                .map(|g| g.account_id.clone())
                .collect::<BTreeSet<_>>(),
            expected
        );
        // The sim caps `first` at 100.
        assert_calls(&h, &c, endpoint, expected.len(), 100);
    }
}

/// One call of every endpoint: the client and the sim count them under the same keys (the
/// spec's parameter names; `/cgraphql` per operation).
#[tokio::test]
async fn client_and_sim_count_under_the_same_keys() {
    let h = sim(SimConfig::demo()).await;
    let c = client(&h);
    let space: Space = c.spaces(&[]).try_next().await.unwrap().unwrap();
    let me = me(&h);
    let (page, att) = h
        .state()
        .read(|s| {
            s.attachments
                .values()
                .find(|a| {
                    a.status == confluence_sim::model::PageStatus::Current
                        && s.space_by_key(&space.key)
                            .is_some_and(|sp| s.pages[&a.page_id].space_id == sp.id)
                        && s.can_read_page(&me, a.page_id)
                })
                .map(|a| (a.page_id.to_string(), format!("att{}", a.id)))
        })
        .expect("an attachment in the first space");
    let guest = h.state().read(|s| {
        s.users
            .values()
            .find(|u| {
                u.kind == confluence_sim::model::UserKind::Guest
                    && u.status == confluence_sim::model::UserStatus::Active
            })
            .map(|u| u.account_id.clone())
            .expect("a guest")
    });
    let user_ids: Vec<String> = h
        .state()
        .read(|s| s.users.keys().take(3).cloned().collect());
    reset(&h, &c);

    let _ = c
        .space_pages(
            &space.id,
            PageListOptions {
                limit: 5,
                ..Default::default()
            },
        )
        .try_next()
        .await
        .unwrap();
    c.page(&page, true).await.unwrap();
    let atts: Vec<Attachment> = c.page_attachments(&page).try_collect().await.unwrap();
    let labels: Vec<Label> = c.page_labels(&page).try_collect().await.unwrap();
    if let Some(l) = labels.first() {
        let _ = c.label_pages(&l.id).try_next().await.unwrap();
    }
    let _ = c.space_permissions(&space.id).try_next().await.unwrap();
    let _: Vec<SpaceV1> = c
        .spaces_with_permissions(&[space.key.as_str()])
        .try_collect()
        .await
        .unwrap();
    c.users_bulk(&user_ids).await.unwrap();
    c.check_access_by_email(&["someone@nowhere-example.com"])
        .await
        .unwrap();
    c.invite_by_email(&["someone@nowhere-example.com"])
        .await
        .unwrap();
    c.read_restrictions(&page).await.unwrap();
    let cql = format!("space = \"{}\" AND type = page", space.key);
    let _ = c.search(&cql).try_next().await.unwrap();
    let _ = c
        .content_search(&cql, &["version"])
        .try_next()
        .await
        .unwrap();
    assert!(atts.iter().any(|a| a.id == att), "attachment listed");
    let g = c.create_group("kbgate-same-keys").await.unwrap();
    assert!(c.group_by_name("kbgate-same-keys").await.unwrap().is_some());
    c.add_group_member(&g.id, &user_ids[0]).await.unwrap();
    let _: Vec<UserV1> = c.group_members(&g.id).try_collect().await.unwrap();
    c.remove_group_member(&g.id, &user_ids[0]).await.unwrap();
    let p = c
        .add_space_permission(
            &space.key,
            &PermissionSubject::group(&g.id),
            &SpaceOperation::read_space(),
        )
        .await
        .unwrap();
    c.remove_space_permission(&space.key, &p.id).await.unwrap();
    c.set_unlicensed_view(&space.key, true).await.unwrap();
    c.set_anonymous_view(&space.key, false).await.unwrap();
    c.set_global_unlicensed_access(false).await.unwrap();
    c.create_site_user("same.keys@customer-example.com")
        .await
        .unwrap();
    let _: Vec<Guest> = c
        .undocumented()
        .guest_data_query(false)
        .try_collect()
        .await
        .unwrap();
    c.undocumented()
        .reset_ex_co_space_permissions(&guest, &space.key)
        .await
        .unwrap();

    let client_keys = c.stats().by_endpoint;
    let sim_keys = h.stats().by_endpoint;
    assert_eq!(client_keys, sim_keys);
    for k in [
        "GET /wiki/rest/api/content/{id}/restriction/byOperation/{operationKey}",
        "POST /cgraphql?q=GuestDataQuery",
        "POST /cgraphql?q=ResetExCoSpacePermissionsMutation",
    ] {
        assert!(sim_keys.contains_key(k), "{k} not counted: {sim_keys:?}");
    }

    // The REST download is a 302 to the media host (another origin, no credentials): one
    // Confluence call on both sides, one media request, never the legacy servlet path.
    reset(&h, &c);
    let d = c.download_attachment(&page, &att).await.unwrap();
    let _: Vec<bytes::Bytes> = d.bytes.try_collect().await.unwrap();
    let rest = "GET /wiki/rest/api/content/{id}/child/attachment/{attachmentId}/download";
    assert_eq!(c.stats().calls(rest), 1);
    assert_eq!(c.stats().media_requests, 1);
    let sim_stats = h.stats();
    assert_eq!(sim_stats.by_endpoint.get(rest), Some(&1), "{sim_stats:?}");
    assert_eq!(sim_stats.media_requests, 1);
    assert_eq!(
        sim_stats
            .by_endpoint
            .get("GET /wiki/download/attachments/{pageId}/{filename}"),
        None
    );
}

#[tokio::test]
async fn spaces_with_descriptions_and_icons() {
    // Demo spaces: KB has a description and an uploaded icon; ONBOARD neither.
    let h = sim(SimConfig::demo()).await;
    let c = client(&h);
    let spaces: Vec<Space> = c.spaces_with_details(&[]).try_collect().await.unwrap();
    let kb = spaces.iter().find(|s| s.key == "KB").unwrap();
    let desc = kb
        .description
        .as_ref()
        .and_then(|d| d.plain.as_ref())
        .unwrap();
    assert!(desc.value.starts_with("Guides, how-tos"), "{desc:?}");
    let icon = kb.icon.as_ref().unwrap();
    let path = icon.path.as_deref().unwrap();
    assert!(
        path.starts_with("/wiki/download/attachments/") && path.contains("version=1"),
        "{path}"
    );
    let link = icon.api_download_link.as_deref().unwrap();

    let onboard = spaces.iter().find(|s| s.key == "ONBOARD").unwrap();
    let empty = onboard.description.as_ref().and_then(|d| d.plain.as_ref());
    assert_eq!(empty.map(|b| b.value.as_str()), Some(""));
    let default = onboard.icon.as_ref().unwrap();
    assert_eq!(
        default.path.as_deref(),
        Some("/wiki/images/logo/default-space-logo.svg")
    );
    assert_eq!(default.api_download_link, None);

    // The plain listing carries neither.
    let plain: Vec<Space> = c.spaces(&["KB"]).try_collect().await.unwrap();
    assert_eq!(
        (plain[0].description.clone(), plain[0].icon.clone()),
        (None, None)
    );

    // The API link leads to the bytes (REST download → media host).
    c.reset_stats();
    let d = c.download_space_icon(link).await.unwrap();
    let bytes: Vec<bytes::Bytes> = d.bytes.try_collect().await.unwrap();
    let want = h.state().read(|s| {
        s.spaces
            .values()
            .find(|sp| sp.key == "KB")
            .and_then(|sp| sp.icon.as_ref())
            .map(|i| i.bytes.to_vec())
            .unwrap()
    });
    assert_eq!(bytes.concat(), want);
    assert!(want.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(c.stats().calls("GET {space icon apiDownloadLink}"), 1);

    // The browser path answers 401 to API tokens (CHANGE-2735), as any attachment's does.
    assert!(c.download_space_icon(path).await.is_err());
    // Links that would take the credentials elsewhere are refused before any call.
    c.reset_stats();
    for bad in [
        "https://evil.example/wiki/x",
        "//evil.example/wiki/x",
        "/wiki/../admin",
        "/wiki/%2E%2E/admin",
        "/other/x",
        "/wiki/a\\b",
    ] {
        assert!(c.download_space_icon(bad).await.is_err(), "{bad}");
    }
    assert_eq!(c.stats().total, 0);

    // A new icon: a new path (version 2) and the new bytes.
    h.state()
        .set_space_icon(
            "KB",
            "KB.png",
            "image/png",
            bytes::Bytes::from_static(b"\x89PNG\r\n\x1a\nnew"),
        )
        .unwrap();
    let again: Vec<Space> = c.spaces_with_details(&["KB"]).try_collect().await.unwrap();
    let icon2 = again[0].icon.clone().unwrap();
    assert_ne!(icon2.path.as_deref(), Some(path));
    assert!(icon2.path.unwrap().contains("version=2"));
    let d = c
        .download_space_icon(&icon2.api_download_link.unwrap())
        .await
        .unwrap();
    let bytes: Vec<bytes::Bytes> = d.bytes.try_collect().await.unwrap();
    assert_eq!(bytes.concat(), b"\x89PNG\r\n\x1a\nnew");
}
