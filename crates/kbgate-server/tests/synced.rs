//! The portal over real synced content: the Confluence simulator's default site, synced by
//! the mirror's engine and renderer, served over HTTP — on SQLite and PostgreSQL.

mod common;

use std::collections::{BTreeSet, HashSet};

use common::*;
use confluence_sim::SimConfig;
use kbgate_store::PageSummary;

macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await;
            }
        }
    };
}

/// Every mirrored page, with its space key.
async fn all_pages(s: &SyncedApp) -> Vec<(String, PageSummary)> {
    let mut out = Vec::new();
    for space in s.app.store.list_spaces().await.unwrap() {
        for p in s.app.store.page_summaries(&space.id).await.unwrap() {
            out.push((space.key.clone(), p));
        }
    }
    out
}

/// The ids a viewer of [`SYNCED_VIEWERS`] may read, from the store's own flags.
fn readable_ids(
    pages: &[(String, PageSummary)],
    spaces: &[&str],
    label: Option<&str>,
) -> HashSet<String> {
    pages
        .iter()
        .filter(|(k, p)| {
            spaces.contains(&k.as_str())
                && !p.effective_restricted
                && label.is_none_or(|l| p.labels.iter().any(|x| x == l))
        })
        .map(|(_, p)| p.id.clone())
        .collect()
}

fn tree_ids(nodes: &serde_json::Value, out: &mut Vec<String>) {
    for n in nodes.as_array().unwrap() {
        out.push(n["id"].as_str().unwrap().to_owned());
        tree_ids(&n["children"], out);
    }
}

both_backends!(home_lists_exactly_the_audiences_spaces);
async fn home_lists_exactly_the_audiences_spaces(backend: Backend) {
    let Some(s) = spawn_synced_on(backend, SimConfig::default()).await else {
        return;
    };
    assert!(s.space_keys.len() >= 3, "{:?}", s.space_keys);
    for (email, spaces, _) in SYNCED_VIEWERS {
        let cookie = s.app.sign_in(email).await;
        let (status, home) = s.app.get_text("/", &cookie).await;
        assert_eq!(status, 200);
        for key in &s.space_keys {
            let listed = home.contains(&format!("href=\"/spaces/{key}\""));
            assert_eq!(
                listed,
                spaces.contains(&key.as_str()),
                "{email}: space {key}"
            );
        }
        let (status, json) = s.app.api_get("/api/v1/spaces", email).await;
        assert_eq!(status, 200);
        let got: BTreeSet<&str> = json["spaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sp| sp["key"].as_str().unwrap())
            .collect();
        let want: BTreeSet<&str> = spaces.iter().copied().collect();
        assert_eq!(got, want, "{email}");
    }
    // A denied domain gets no session at all.
    let token = mint_hs256(&claims("dan@gmail.com"));
    let resp = s
        .app
        .client
        .get(s.app.url("/auth/embed"))
        .query(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert!(session_cookie(&resp).is_none());
}

both_backends!(every_readable_page_opens_and_nothing_else_is_reachable);
async fn every_readable_page_opens_and_nothing_else_is_reachable(backend: Backend) {
    let Some(s) = spawn_synced_on(backend, SimConfig::default()).await else {
        return;
    };
    let pages = all_pages(&s).await;
    let restricted: Vec<&PageSummary> = pages
        .iter()
        .map(|(_, p)| p)
        .filter(|p| p.effective_restricted)
        .collect();
    assert!(!restricted.is_empty(), "the simulator restricts some pages");
    let mut resolved_links = 0;
    for (email, spaces, label) in SYNCED_VIEWERS {
        let readable = readable_ids(&pages, spaces, *label);
        assert!(!readable.is_empty(), "{email} reads something");
        let cookie = s.app.sign_in(email).await;
        for (key, p) in &pages {
            let (status, html) = s.app.get_text(&format!("/pages/{}", p.id), &cookie).await;
            if readable.contains(&p.id) {
                assert_eq!(status, 200, "{email}: page {} in {key}", p.id);
                assert_inert(&html, &format!("{email}: page {}", p.id));
                // Links, children lists, includes and attachments only name readable pages.
                let (links, files) = linked_ids(&html);
                for id in links.iter().chain(&files) {
                    assert!(readable.contains(id), "{email}: page {} links {id}", p.id);
                }
                // The JSON API's body goes through the same resolution.
                let (status, json) = s
                    .app
                    .api_get(&format!("/api/v1/pages/{}", p.id), email)
                    .await;
                assert_eq!(status, 200);
                let body = json["html"].as_str().unwrap();
                assert_inert(body, &format!("{email}: JSON page {}", p.id));
                let (links, files) = linked_ids(body);
                resolved_links += links.len();
                for id in links.iter().chain(&files) {
                    assert!(
                        readable.contains(id),
                        "{email}: JSON page {} links {id}",
                        p.id
                    );
                }
            } else {
                assert_eq!(
                    status, 404,
                    "{email}: page {} in {key} must be hidden",
                    p.id
                );
                let (status, _) = s
                    .app
                    .api_get(&format!("/api/v1/pages/{}", p.id), email)
                    .await;
                assert_eq!(status, 404, "{email}: JSON page {}", p.id);
            }
        }
        // Trees: exactly the readable pages, and no title of anything else.
        for key in *spaces {
            let (status, tree) = s
                .app
                .api_get(&format!("/api/v1/spaces/{key}/tree"), email)
                .await;
            assert_eq!(status, 200);
            let mut ids = Vec::new();
            tree_ids(&tree["pages"], &mut ids);
            let got: HashSet<String> = ids.iter().cloned().collect();
            assert_eq!(
                got.len(),
                ids.len(),
                "{email}: a page twice in the {key} tree"
            );
            let want: HashSet<String> = pages
                .iter()
                .filter(|(k, p)| k == key && readable.contains(&p.id))
                .map(|(_, p)| p.id.clone())
                .collect();
            assert_eq!(got, want, "{email}: tree of {key}");
            let (status, html) = s.app.get_text(&format!("/spaces/{key}"), &cookie).await;
            assert_eq!(status, 200);
            for (_, p) in pages.iter().filter(|(_, p)| !readable.contains(&p.id)) {
                assert!(
                    !html.contains(&format!("href=\"/pages/{}\"", p.id)),
                    "{email}: /spaces/{key} links hidden page {}",
                    p.id
                );
                assert!(
                    !html.contains(&kbgate_render::escape_html(&p.title)),
                    "{email}: /spaces/{key} names hidden page {:?}",
                    p.title
                );
            }
        }
        for key in s
            .space_keys
            .iter()
            .filter(|k| !spaces.contains(&k.as_str()))
        {
            let (status, _) = s.app.get_text(&format!("/spaces/{key}"), &cookie).await;
            assert_eq!(status, 404, "{email}: space {key}");
            let (status, _) = s
                .app
                .api_get(&format!("/api/v1/spaces/{key}/tree"), email)
                .await;
            assert_eq!(status, 404, "{email}: tree of {key}");
        }
    }
    // Not vacuous: links and children lists in the bodies did resolve.
    assert!(resolved_links > 0, "no page link in any body resolved");
}

both_backends!(hostile_pages_render_inert);
async fn hostile_pages_render_inert(backend: Backend) {
    let Some(s) = spawn_synced_on(backend, SimConfig::default()).await else {
        return;
    };
    // hooli reads every space; find the generator's hostile pages it may open.
    let (email, spaces, label) = SYNCED_VIEWERS[3];
    let pages = all_pages(&s).await;
    let readable = readable_ids(&pages, spaces, label);
    let cookie = s.app.sign_in(email).await;
    let mut hostile = 0;
    for (_, p) in &pages {
        let full = s.app.store.page(&p.id).await.unwrap().unwrap();
        let body = full.body_storage.to_ascii_lowercase();
        if !readable.contains(&p.id)
            || !["<script", "javascript:", "onerror=", "<iframe"]
                .iter()
                .any(|b| body.contains(b))
        {
            continue;
        }
        hostile += 1;
        let (status, html) = s.app.get_text(&format!("/pages/{}", p.id), &cookie).await;
        assert_eq!(status, 200);
        assert_inert(&html, &format!("HTML of hostile page {}", p.id));
        let (status, json) = s
            .app
            .api_get(&format!("/api/v1/pages/{}", p.id), email)
            .await;
        assert_eq!(status, 200);
        assert_inert(
            json["html"].as_str().unwrap(),
            &format!("JSON of hostile page {}", p.id),
        );
    }
    assert!(
        hostile > 0,
        "the simulator's site has readable hostile pages"
    );
}

/// The words of a title, as a search query.
fn words(title: &str) -> String {
    title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1)
        .collect::<Vec<_>>()
        .join(" ")
}

both_backends!(search_finds_readable_pages_and_never_others);
async fn search_finds_readable_pages_and_never_others(backend: Backend) {
    let Some(s) = spawn_synced_on(backend, SimConfig::default()).await else {
        return;
    };
    let pages = all_pages(&s).await;
    for (email, spaces, label) in SYNCED_VIEWERS.iter().take(3) {
        let readable = readable_ids(&pages, spaces, *label);
        let mut found = 0;
        // Search every page's title: a readable page is found, and whatever comes back
        // (for any query) is readable.
        for (_, p) in &pages {
            let q = words(&p.title);
            if q.is_empty() {
                continue;
            }
            let (status, json) = s
                .app
                .api_get(
                    &format!("/api/v1/search?q={}&limit=100", urlencode(&q)),
                    email,
                )
                .await;
            assert_eq!(status, 200);
            let hits: Vec<&str> = json["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_str().unwrap())
                .collect();
            for h in &hits {
                assert!(
                    readable.contains(*h),
                    "{email}: {q:?} found hidden page {h}"
                );
            }
            if readable.contains(&p.id) {
                assert!(
                    hits.contains(&p.id.as_str()),
                    "{email}: {q:?} misses {}",
                    p.id
                );
                found += 1;
            }
        }
        assert!(found > 0, "{email} found nothing");
        // The HTML search route applies the same scope.
        let cookie = s.app.sign_in(email).await;
        for (_, p) in pages.iter().filter(|(_, p)| !readable.contains(&p.id)) {
            let (status, html) = s
                .app
                .get_text(
                    &format!("/search?q={}", urlencode(&words(&p.title))),
                    &cookie,
                )
                .await;
            assert_eq!(status, 200);
            assert!(
                !html.contains(&format!("href=\"/pages/{}\"", p.id)),
                "{email}: HTML search shows hidden page {}",
                p.id
            );
        }
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

both_backends!(confluence_content_shows_neutrally_by_default);
/// Mentions, Jira keys and unknown macros of real synced pages, as the portal serves them
/// with default settings: no staff name, no account id, no dead Jira link, no macro name.
async fn confluence_content_shows_neutrally_by_default(backend: Backend) {
    let Some(s) = spawn_synced_on(backend, SimConfig::default()).await else {
        return;
    };
    let (email, spaces, label) = SYNCED_VIEWERS[3];
    let pages = all_pages(&s).await;
    let readable = readable_ids(&pages, spaces, label);
    let people: Vec<(String, String)> = s.sim.state().read(|st| {
        st.users
            .values()
            .map(|u| (u.account_id.to_string(), u.display_name.clone()))
            .collect()
    });
    let cookie = s.app.sign_in(email).await;
    let (mut mentions, mut jira, mut unknown) = (0, 0, 0);
    for (_, p) in &pages {
        if !readable.contains(&p.id) {
            continue;
        }
        let full = s.app.store.page(&p.id).await.unwrap().unwrap();
        let storage = &full.body_storage;
        let has_mention = storage.contains("ri:account-id");
        let has_jira = storage.contains("ac:name=\"jira\"");
        let has_unknown = storage.contains("acme-roadmap-planner");
        if !(has_mention || has_jira || has_unknown) {
            continue;
        }
        let (status, html) = s.app.get_text(&format!("/pages/{}", p.id), &cookie).await;
        assert_eq!(status, 200);
        if has_mention {
            mentions += 1;
            assert!(
                html.contains("<span class=\"user-mention\">a team member</span>"),
                "page {}",
                p.id
            );
            for (id, _) in &people {
                assert!(
                    !html.contains(&format!("\"{id}\"")),
                    "account id in page {}",
                    p.id
                );
            }
        }
        if has_jira {
            jira += 1;
            // The simulator is not on atlassian.net and no jira_url is set: plain keys.
            assert!(
                html.contains("<span class=\"jira-key\">SUP-"),
                "page {}",
                p.id
            );
            assert!(
                !html.contains("/jira/") && !html.contains("/browse/"),
                "page {}",
                p.id
            );
        }
        if has_unknown {
            unknown += 1;
            assert!(html.contains("Roadmap content rendered by a third-party app."));
            assert!(!html.contains("acme-roadmap-planner"), "page {}", p.id);
        }
        assert!(
            !html.contains("This content ("),
            "a macro name in page {}",
            p.id
        );
    }
    assert!(
        mentions > 0 && jira > 0 && unknown > 0,
        "{mentions} {jira} {unknown}"
    );
}
