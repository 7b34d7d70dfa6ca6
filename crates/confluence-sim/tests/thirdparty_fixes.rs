//! What the third-party client checks (`thirdparty/run.sh`: atlassian-python-api and
//! confluence.js) found the simulator answering differently from Confluence Cloud, fixed:
//!
//! * `GET /wiki/rest/api/user/current` and `GET …/content/{id}/restriction/byOperation` (still
//!   in Atlassian's v1 spec) were 404 "No route".
//! * `GET …/content/{id}/child/{type}` and `…/content/{id}/label` (deprecated, still answered
//!   on Cloud) were 404.
//! * Content by id and the content list (removed from Cloud) were 404; Cloud answers 410 with a
//!   `GoneException`.
//! * `GET /wiki/api/v2/pages?space-id=` (the v2 page list) was 404.
//! * CQL `title ~`, `text ~`, `parent =`, `type = blogpost` and `now("-1d")` dates were 400
//!   "Could not parse cql".
//!
//! Plus the control route the checks compare against: `GET /_sim/spaces/{key}/pages`, with its
//! `status=` and `type=` filters (archived pages, folders, blog posts, …).

use std::collections::{BTreeMap, BTreeSet};

use confluence_sim::model::{ContentKind, PageStatus};
use confluence_sim::{Credentials, SimConfig, SimHandle, spawn};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct T {
    h: SimHandle,
    http: reqwest::Client,
    admin: Credentials,
}

impl T {
    async fn start() -> T {
        let h = spawn(SimConfig::default()).await.expect("sim");
        let admin = h.service_account();
        T {
            h,
            http: reqwest::Client::new(),
            admin,
        }
    }

    async fn get_as(&self, who: Option<&Credentials>, path: &str) -> (StatusCode, Value) {
        let mut rb = self.http.get(format!("{}{path}", self.h.base_url()));
        if let Some(c) = who {
            rb = rb.basic_auth(&c.email, Some(&c.api_token));
        }
        let r = rb.send().await.expect("request");
        let status = r.status();
        let body = r.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_as(Some(&self.admin), path).await
    }

    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    fn admin_id(&self) -> String {
        let email = self.admin.email.clone();
        self.h
            .state()
            .read(|s| s.user_by_email(&email).expect("admin").account_id.clone())
    }

    /// (space key, space id, ids of the current pages the service account sees).
    fn big_space(&self) -> (String, u64, BTreeSet<String>) {
        let me = self.admin_id();
        self.h.state().read(|s| {
            s.spaces
                .values()
                .map(|sp| {
                    let ids: BTreeSet<String> = s
                        .pages
                        .values()
                        .filter(|p| {
                            p.space_id == sp.id
                                && p.status == confluence_sim::model::PageStatus::Current
                                && confluence_sim::v2::page_visible(s, &s.users[&me], p)
                        })
                        .map(|p| p.id.to_string())
                        .collect();
                    (sp.key.clone(), sp.id, ids)
                })
                .max_by_key(|x| x.2.len())
                .expect("a space")
        })
    }
}

/// id → (parent, status, type), as `/_sim/spaces/{key}/pages` lists content.
type Listing = BTreeMap<String, (Option<String>, String, String)>;

impl T {
    /// What the service account sees in space `space_id`, straight from the state: id →
    /// (parent, status, type) of the pages and other content with one of `statuses`.
    fn seen(&self, space_id: u64, statuses: &[PageStatus]) -> Listing {
        let me = self.admin_id();
        self.h.state().read(|s| {
            let u = &s.users[&me];
            let visible = |sp: u64, id: u64| {
                s.spaces.get(&sp).is_some_and(|x| {
                    confluence_sim::v2::can_read_space(s, u, &x.key)
                        && s.can_read_page(&u.account_id, id)
                })
            };
            let pages = s
                .pages
                .values()
                .filter(|p| p.space_id == space_id && statuses.contains(&p.status))
                .filter(|p| visible(p.space_id, p.id))
                .map(|p| (p.id, p.parent_id, p.status.as_str(), "page"));
            let other = s
                .contents
                .values()
                .filter(|c| c.space_id == space_id && statuses.contains(&c.status))
                .filter(|c| visible(c.space_id, c.id))
                .map(|c| (c.id, c.parent_id, c.status.as_str(), c.kind.as_str()));
            pages
                .chain(other)
                .map(|(id, parent, st, ty)| {
                    let parent = parent.map(|x| x.to_string());
                    (id.to_string(), (parent, st.to_string(), ty.to_string()))
                })
                .collect()
        })
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn result_ids(v: &Value, inner: bool) -> Vec<String> {
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let c = if inner { &r["content"] } else { r };
            c["id"].as_str().expect("id").to_string()
        })
        .collect()
}

#[tokio::test]
async fn control_lists_the_pages_an_account_sees() {
    let t = T::start().await;
    let (key, _, want) = t.big_space();
    let me = t.admin_id();
    let v = t
        .ok(&format!("/_sim/spaces/{key}/pages?visible_to={}", enc(&me)))
        .await;
    let got: BTreeSet<String> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    assert_eq!(v["count"], json!(want.len()));
    assert!(
        v["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x == "current")
    );
    assert!(v["types"].as_array().unwrap().iter().all(|x| x == "page"));
    let all = t.ok(&format!("/_sim/spaces/{key}/pages")).await;
    assert!(all["count"].as_u64().unwrap() >= want.len() as u64);
    assert_eq!(
        t.get("/_sim/spaces/NOPE/pages").await.0,
        StatusCode::NOT_FOUND
    );
}

/// A `/_sim/spaces/{key}/pages` answer as id → (parent, status, type).
fn listing(v: &Value) -> Listing {
    let col = |k: &str| {
        v[k].as_array()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .clone()
    };
    let (ids, parents, statuses, types) =
        (col("ids"), col("parents"), col("statuses"), col("types"));
    assert_eq!(v["count"], json!(ids.len()));
    assert!(
        [&parents, &statuses, &types]
            .iter()
            .all(|c| c.len() == ids.len())
    );
    (0..ids.len())
        .map(|i| {
            (
                ids[i].as_str().unwrap().to_string(),
                (
                    parents[i].as_str().map(str::to_string),
                    statuses[i].as_str().unwrap().to_string(),
                    types[i].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn control_lists_archived_pages_and_other_content_on_request() {
    let t = T::start().await;
    let me = enc(&t.admin_id());
    let only = |m: &Listing, keep: &dyn Fn(&str, &str) -> bool| -> Listing {
        m.iter()
            .filter(|(_, x)| keep(&x.1, &x.2))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let (mut archived, mut kinds) = (0, BTreeSet::new());
    for (key, space_id) in t.h.state().read(|s| {
        s.spaces
            .values()
            .map(|sp| (sp.key.clone(), sp.id))
            .collect::<Vec<_>>()
    }) {
        let base = format!("/_sim/spaces/{key}/pages?visible_to={me}");
        let live = listing(&t.ok(&format!("{base}&status=current,archived")).await);
        let want = t.seen(space_id, &[PageStatus::Current, PageStatus::Archived]);
        assert_eq!(
            live,
            only(&want, &|_, ty| ty == "page"),
            "{key}: current and archived pages"
        );
        let arch = listing(&t.ok(&format!("{base}&status=archived")).await);
        assert_eq!(
            arch,
            only(&want, &|st, ty| st == "archived" && ty == "page")
        );
        archived += arch.len();

        let every = listing(&t.ok(&format!("{base}&type=all")).await);
        let current = t.seen(space_id, &[PageStatus::Current]);
        assert_eq!(every, current, "{key}: every current item");
        kinds.extend(every.values().map(|x| x.2.clone()));
        let pb = listing(&t.ok(&format!("{base}&type=page,blogpost")).await);
        assert_eq!(
            pb,
            only(&current, &|_, ty| ty == "page" || ty == "blogpost"),
            "{key}: pages and blog posts"
        );
    }
    assert!(archived > 0, "the generated site has archived pages");
    for k in [
        "page",
        "folder",
        "whiteboard",
        "database",
        "embed",
        "blogpost",
    ] {
        assert!(
            kinds.contains(k),
            "the generated site has a visible {k}: {kinds:?}"
        );
    }
    let key =
        t.h.state()
            .read(|s| s.spaces.values().next().unwrap().key.clone());
    for bad in ["status=live", "type=comment"] {
        assert_eq!(
            t.get(&format!("/_sim/spaces/{key}/pages?{bad}")).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn current_user_is_the_caller() {
    let t = T::start().await;
    let v = t.ok("/wiki/rest/api/user/current").await;
    assert_eq!(v["accountId"], json!(t.admin_id()));
    assert_eq!(v["type"], json!("known"));
    let (status, _) = t.get_as(None, "/wiki/rest/api/user/current").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn restrictions_of_every_operation() {
    let t = T::start().await;
    let me = t.admin_id();
    let (pid, users, groups) = t.h.state().read(|s| {
        let p = s
            .pages
            .values()
            .find(|p| !p.read_restrictions.is_empty() && s.can_read_page(&me, p.id))
            .expect("a restricted page the service account reads");
        (
            p.id,
            p.read_restrictions.users.clone(),
            p.read_restrictions.groups.clone(),
        )
    });
    let v = t
        .ok(&format!(
            "/wiki/rest/api/content/{pid}/restriction/byOperation?expand=restrictions.user,restrictions.group"
        ))
        .await;
    assert_eq!(v["read"]["operation"], json!("read"));
    assert_eq!(v["update"]["operation"], json!("update"));
    let listed = |kind: &str, field: &str| -> BTreeSet<String> {
        v["read"]["restrictions"][kind]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x[field].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(listed("user", "accountId"), users.iter().cloned().collect());
    assert_eq!(listed("group", "id"), groups.iter().cloned().collect());
    // Without expands the lists are only linked.
    let v = t
        .ok(&format!(
            "/wiki/rest/api/content/{pid}/restriction/byOperation"
        ))
        .await;
    assert!(v["read"]["restrictions"]["_expandable"]["user"].is_string());
    assert_eq!(
        t.get("/wiki/rest/api/content/999999999/restriction/byOperation")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn removed_v1_content_reads_answer_410_gone() {
    let t = T::start().await;
    let (_, _, ids) = t.big_space();
    let pid = ids.iter().next().unwrap().clone();
    for path in [
        format!("/wiki/rest/api/content/{pid}?expand=body.storage,version"),
        "/wiki/rest/api/content?spaceKey=X&type=page".to_string(),
        "/wiki/rest/api/content/999999999".to_string(),
    ] {
        let (status, body) = t.get(&path).await;
        assert_eq!(status, StatusCode::GONE, "{path}: {body}");
        assert_eq!(body["statusCode"], json!(410), "{path}");
        assert_eq!(
            body["message"],
            json!(confluence_sim::v1_extra::GONE_MESSAGE),
            "{path}"
        );
        let (status, _) = t.get_as(None, &path).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{path} without credentials"
        );
    }
    // The endpoints below these paths are still served.
    let (status, _) = t.get("/wiki/rest/api/content/search?cql=type%3Dpage").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn v1_children_attachments_and_labels_are_served() {
    let t = T::start().await;
    let me = t.admin_id();
    let (parent, kids, att_page, atts, labelled, labels) = t.h.state().read(|s| {
        let user = &s.users[&me];
        let visible = |id: &u64| {
            s.pages.get(id).is_some_and(|p| {
                p.status == confluence_sim::model::PageStatus::Current
                    && confluence_sim::v2::page_visible(s, user, p)
            })
        };
        let parent = *s
            .pages
            .keys()
            .filter(|id| visible(id))
            .max_by_key(|id| s.child_ids(**id).len())
            .unwrap();
        let kids: Vec<String> = s
            .child_ids(parent)
            .into_iter()
            .filter(|c| visible(c))
            .map(|c| c.to_string())
            .collect();
        let (att_page, atts) = s
            .page_attachments
            .iter()
            .find(|(p, a)| visible(p) && !a.is_empty())
            .map(|(p, a)| {
                (
                    *p,
                    a.iter().map(|x| format!("att{x}")).collect::<BTreeSet<_>>(),
                )
            })
            .unwrap();
        let labelled = s
            .pages
            .values()
            .find(|p| visible(&p.id) && p.labels.len() >= 2)
            .unwrap();
        let labels: BTreeSet<String> = labelled
            .labels
            .iter()
            .map(|l| s.labels[l].name.clone())
            .collect();
        (parent, kids, att_page, atts, labelled.id, labels)
    });
    // Children by start/limit, following _links.next (relative to _links.base).
    let mut got = Vec::new();
    let mut path = format!("/wiki/rest/api/content/{parent}/child/page?limit=2");
    loop {
        let v = t.ok(&path).await;
        assert_eq!(v["start"], json!(got.len()));
        got.extend(result_ids(&v, false));
        match v["_links"]["next"].as_str() {
            Some(n) => path = format!("/wiki{n}"),
            None => break,
        }
    }
    assert_eq!(got, kids, "children in position order, each once");
    let v = t
        .ok(&format!(
            "/wiki/rest/api/content/{att_page}/child/attachment"
        ))
        .await;
    assert_eq!(
        result_ids(&v, false).into_iter().collect::<BTreeSet<_>>(),
        atts
    );
    assert_eq!(v["results"][0]["type"], json!("attachment"));
    let v = t
        .ok(&format!("/wiki/rest/api/content/{labelled}/label"))
        .await;
    let names: BTreeSet<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, labels);
    assert_eq!(
        t.get("/wiki/rest/api/content/999999999/child/page").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.get(&format!("/wiki/rest/api/content/{parent}/child/nonsense"))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn v2_pages_of_a_space_page_through() {
    let t = T::start().await;
    let (_, space_id, current) = t.big_space();
    // By default current and archived pages (v2 spec: "By default, `current` and `archived`
    // are used"); `status=current` only the current ones.
    let live: BTreeSet<String> = t
        .seen(space_id, &[PageStatus::Current, PageStatus::Archived])
        .into_iter()
        .filter(|(_, x)| x.2 == "page")
        .map(|(k, _)| k)
        .collect();
    assert!(live.len() > current.len(), "the space has an archived page");
    for (status, want) in [("", &live), ("&status=current", &current)] {
        let mut got = Vec::new();
        let mut path =
            format!("/wiki/api/v2/pages?space-id={space_id}&body-format=storage&limit=7{status}");
        loop {
            let v = t.ok(&path).await;
            for p in v["results"].as_array().unwrap() {
                assert_eq!(p["spaceId"], json!(space_id.to_string()));
                assert!(p["body"]["storage"]["value"].is_string());
                got.push(p["id"].as_str().unwrap().to_string());
            }
            match v["_links"]["next"].as_str() {
                Some(n) => path = n.to_string(),
                None => break,
            }
        }
        assert_eq!(got.len(), want.len(), "no page twice ({status})");
        assert_eq!(&got.into_iter().collect::<BTreeSet<_>>(), want, "{status}");
    }
    let want = current;
    let one = want.iter().next().unwrap();
    let v = t.ok(&format!("/wiki/api/v2/pages?id={one}")).await;
    assert_eq!(result_ids(&v, false), vec![one.clone()]);
    assert_eq!(
        t.get("/wiki/api/v2/pages?space-id=abc").await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn cql_title_text_parent_blogpost_and_relative_dates() {
    let t = T::start().await;
    let (key, _, ids) = t.big_space();
    let state = t.h.state();
    let (pid, title, parent) = state.read(|s| {
        let p = ids
            .iter()
            .filter_map(|i| s.pages.get(&i.parse::<u64>().unwrap()))
            .find(|p| p.parent_id.is_some())
            .expect("a child page");
        (p.id, p.title.clone(), p.parent_id.unwrap())
    });
    let search = |cql: String| {
        let t = &t;
        async move {
            let v = t
                .ok(&format!(
                    "/wiki/rest/api/search?limit=1000&cql={}",
                    enc(&cql)
                ))
                .await;
            result_ids(&v, true)
        }
    };
    let word = title.split_whitespace().next().unwrap().to_uppercase();
    let hits = search(format!("space = \"{key}\" and title ~ \"{word}\"")).await;
    assert!(hits.contains(&pid.to_string()), "title ~ {word}");
    let hits_text = search(format!("space = \"{key}\" and text ~ \"{word}\"")).await;
    assert!(
        hits.iter().all(|h| hits_text.contains(h)),
        "text ~ covers title ~"
    );

    // `parent =` without a type: the direct children of every kind (pages, folders,
    // whiteboards, …); with `type = page` the child pages.
    let space_id = state.read(|s| s.space_by_key(&key).unwrap().id);
    let current = t.seen(space_id, &[PageStatus::Current]);
    let children = |of: u64, page_only: bool| -> BTreeSet<String> {
        current
            .iter()
            .filter(|(_, x)| x.0 == Some(of.to_string()) && (!page_only || x.2 == "page"))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let kids = search(format!("parent = {parent}")).await;
    assert_eq!(
        kids.into_iter().collect::<BTreeSet<_>>(),
        children(parent, false)
    );
    let home = state.read(|s| {
        s.space_by_key(&key)
            .unwrap()
            .homepage_id
            .expect("a home page")
    });
    let want = children(home, false);
    assert_ne!(
        want,
        children(home, true),
        "the home page has a child that is not a page"
    );
    let kids = search(format!("parent = {home}")).await;
    assert_eq!(kids.into_iter().collect::<BTreeSet<_>>(), want);
    let kids = search(format!("parent = {home} and type = page")).await;
    assert_eq!(
        kids.into_iter().collect::<BTreeSet<_>>(),
        children(home, true)
    );

    // Blog posts are content: `type in (page, blogpost)` counts them.
    let me = t.admin_id();
    let blogs: BTreeSet<String> = state.read(|s| {
        let me = &s.users[&me];
        s.contents
            .values()
            .filter(|c| c.kind == ContentKind::Blogpost && c.status == PageStatus::Current)
            .filter(|c| {
                s.spaces.get(&c.space_id).is_some_and(|sp| {
                    confluence_sim::v2::can_read_space(s, me, &sp.key)
                        && s.can_read_page(&me.account_id, c.id)
                })
            })
            .map(|c| c.id.to_string())
            .collect()
    });
    assert!(!blogs.is_empty(), "the generated site has a blog post");
    let in_space = blogs.iter().filter(|b| current.contains_key(*b)).count();
    let all = search(format!("space = \"{key}\" and type in (page, blogpost)")).await;
    assert_eq!(all.len(), ids.len() + in_space);
    let found = search("type = blogpost".into()).await;
    assert_eq!(found.into_iter().collect::<BTreeSet<_>>(), blogs);

    // now() follows the site clock: an edit is newer than now("-1d"), the rest is not.
    state.advance_clock(chrono::Duration::days(30));
    state
        .edit_page(pid, None, Some("<p>edited</p>".into()))
        .unwrap();
    let recent = search(format!(
        "space = \"{key}\" and type = page and lastmodified > now(\"-1d\")"
    ))
    .await;
    assert_eq!(recent, vec![pid.to_string()]);
    let older = search(format!(
        "space = \"{key}\" and type = page and lastmodified <= now('-1d')"
    ))
    .await;
    assert_eq!(older.len() + 1, ids.len());
    let (status, _) = t
        .get(&format!(
            "/wiki/rest/api/search?cql={}",
            enc("lastmodified > now(\"-1x\")")
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn search_honours_start_without_a_cursor() {
    let t = T::start().await;
    let (key, _, ids) = t.big_space();
    let cql = enc(&format!("space = \"{key}\" and type = page"));
    let mut seen = Vec::new();
    let mut start = 0;
    while start < ids.len() {
        let v = t
            .ok(&format!(
                "/wiki/rest/api/search?cql={cql}&limit=7&start={start}"
            ))
            .await;
        assert_eq!(v["start"], json!(start));
        let page = result_ids(&v, true);
        assert!(!page.is_empty());
        start += page.len();
        seen.extend(page);
    }
    assert_eq!(seen.len(), ids.len(), "no result twice");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), ids);
    let v = t
        .ok(&format!(
            "/wiki/rest/api/search?cql={cql}&start={}",
            ids.len() + 5
        ))
        .await;
    assert_eq!(result_ids(&v, true), Vec::<String>::new());
    assert!(v["_links"]["next"].is_null());
}
