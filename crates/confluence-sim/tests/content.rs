//! Black-box tests of the content endpoints, over HTTP against an in-process simulator.

use confluence_sim::{Knobs, RateLimit, SimConfig, SimHandle, spawn};
use reqwest::StatusCode;
use serde_json::Value;

async fn start(pages: usize) -> SimHandle {
    spawn(SimConfig {
        pages,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(h: &SimHandle, path: &str) -> reqwest::Response {
    let c = h.service_account();
    client()
        .get(format!("{}{}", h.base_url(), path))
        .basic_auth(&c.email, Some(&c.api_token))
        .send()
        .await
        .unwrap()
}

async fn get_json(h: &SimHandle, path: &str) -> Value {
    let r = get(h, path).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

fn kb_id(h: &SimHandle) -> u64 {
    h.state().read(|s| s.space_by_key("KB").unwrap().id)
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_401_in_family_shape() {
    let h = start(20).await;
    let r = client()
        .get(format!("{}/wiki/api/v2/spaces", h.base_url()))
        .basic_auth("kbgate-service@example.com", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["status"], 401);
    assert_eq!(v["errors"][0]["code"], "UNAUTHORIZED");
    let r = client()
        .get(format!(
            "{}/wiki/rest/api/search?cql=type=page",
            h.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["statusCode"], 401);
}

#[tokio::test]
async fn v2_pages_page_across_more_than_250_with_link_header() {
    let h = start(700).await;
    let space = kb_id(&h);
    let expected = h.state().page_ids_in_space("KB");
    assert!(expected.len() > 250);
    let mut next = Some(format!(
        // `current` only: the default adds archived pages, as Cloud does.
        "/wiki/api/v2/spaces/{space}/pages?limit=250&body-format=storage&status=current"
    ));
    let mut seen = Vec::new();
    let mut calls = 0;
    while let Some(path) = next.take() {
        let r = get(&h, &path).await;
        assert_eq!(r.status(), StatusCode::OK);
        let link = r
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        let v: Value = r.json().await.unwrap();
        let results = v["results"].as_array().unwrap();
        assert!(results.len() <= 250);
        for p in results {
            assert_eq!(p["body"]["storage"]["representation"], "storage");
            seen.push(p["id"].as_str().unwrap().parse::<u64>().unwrap());
        }
        next = v["_links"]["next"].as_str().map(str::to_string);
        assert_eq!(link.is_some(), next.is_some());
        if let (Some(l), Some(n)) = (&link, &next) {
            assert!(l.contains(&format!("<{n}>; rel=\"next\"")));
        }
        calls += 1;
    }
    assert_eq!(calls, expected.len().div_ceil(250));
    // The service account cannot see pages restricted to a group it is not in.
    let visible: Vec<u64> = h.state().read(|s| {
        let me = s
            .user_by_email("kbgate-service@example.com")
            .unwrap()
            .account_id
            .clone();
        expected
            .iter()
            .copied()
            .filter(|id| s.can_read_page(&me, *id))
            .collect()
    });
    assert_eq!(seen, visible);
}

#[tokio::test]
async fn v2_limit_is_capped_at_250() {
    let h = start(700).await;
    let v = get_json(
        &h,
        &format!("/wiki/api/v2/spaces/{}/pages?limit=1000", kb_id(&h)),
    )
    .await;
    assert_eq!(v["results"].as_array().unwrap().len(), 250);
}

#[tokio::test]
async fn v1_search_pages_with_cursor_and_totals() {
    let h = start(700).await;
    let mut path = Some(
        "/wiki/rest/api/search?cql=space%20%3D%20%22KB%22%20and%20type%20%3D%20page&limit=100"
            .to_string(),
    );
    let mut ids = Vec::new();
    let mut total = None;
    while let Some(p) = path.take() {
        let v = get_json(&h, &p).await;
        total.get_or_insert(v["totalSize"].as_u64().unwrap());
        assert_eq!(v["start"].as_u64().unwrap() as usize, ids.len());
        for r in v["results"].as_array().unwrap() {
            ids.push(r["content"]["id"].as_str().unwrap().to_string());
        }
        path = v["_links"]["next"].as_str().map(|n| format!("/wiki{n}"));
    }
    assert!(ids.len() > 250);
    assert_eq!(Some(ids.len() as u64), total);
    let mut dedup = ids.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), ids.len());
}

#[tokio::test]
async fn bad_cql_is_400_with_confluence_message() {
    let h = start(20).await;
    for cql in [
        "text ~",
        "space = KB or type = page",
        "lastmodified > \"soon\"",
    ] {
        let r = get(&h, &format!("/wiki/rest/api/search?cql={}", urlencode(cql))).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let v: Value = r.json().await.unwrap();
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("Could not parse cql")
        );
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn content_search_expands_restrictions_ancestors_and_labels() {
    let h = start(200).await;
    let expand = "ancestors,version,metadata.labels,restrictions.read.restrictions.user,restrictions.read.restrictions.group";
    // Make a restricted parent with a child the service account can still read.
    let sim = h.state();
    let kb = sim.page_ids_in_space("KB");
    let parent = kb[1];
    let group = sim.read(|s| {
        s.groups
            .values()
            .find(|g| g.name == "kb-internal")
            .unwrap()
            .id
            .clone()
    });
    sim.add_read_restriction(parent, confluence_sim::model::Subject::Group(group.clone()))
        .unwrap();
    let child = sim
        .create_page(confluence_sim::NewPage {
            space_key: "KB".into(),
            parent_id: Some(parent),
            title: "Child of a restricted page".into(),
            body: "<p>x</p>".into(),
            labels: vec!["beta".into()],
        })
        .unwrap();
    let v = get_json(
        &h,
        &format!(
            "/wiki/rest/api/content/search?cql={}&expand={expand}",
            urlencode(&format!("id = {child}"))
        ),
    )
    .await;
    let c = &v["results"][0];
    assert_eq!(c["id"], child.to_string());
    assert_eq!(c["metadata"]["labels"]["results"][0]["name"], "beta");
    let anc: Vec<&str> = c["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(anc.last().copied(), Some(parent.to_string().as_str()));
    // The child's own restriction list is empty (Confluence does not list inherited ones) …
    assert_eq!(
        c["restrictions"]["read"]["restrictions"]["group"]["size"],
        0
    );
    let own = get_json(
        &h,
        &format!("/wiki/rest/api/content/{child}/restriction/byOperation/read"),
    )
    .await;
    assert_eq!(
        own["restrictions"]["group"]["results"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // … while the parent's shows the group.
    let par = get_json(
        &h,
        &format!("/wiki/rest/api/content/{parent}/restriction/byOperation/read"),
    )
    .await;
    assert_eq!(par["restrictions"]["group"]["results"][0]["id"], group);
    // Unexpanded fields are listed as _expandable.
    let v = get_json(
        &h,
        &format!(
            "/wiki/rest/api/content/search?cql={}",
            urlencode(&format!("id = {child}"))
        ),
    )
    .await;
    assert!(v["results"][0]["_expandable"]["version"].is_string());
    assert!(v["results"][0].get("version").is_none());
    // The non-admin reader is not in kb-internal: both pages are invisible to them.
    let na = h.non_admin_account();
    let r = client()
        .get(format!("{}/wiki/api/v2/pages/{child}", h.base_url()))
        .basic_auth(&na.email, Some(&na.api_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rate_limit_answers_429_with_headers_and_stats_count_it() {
    let h = start(20).await;
    h.set_knobs(Knobs {
        rate_limit: Some(RateLimit {
            per_second: 1,
            burst: 2,
        }),
        ..Knobs::default()
    });
    let mut limited = None;
    for _ in 0..5 {
        let r = get(&h, "/wiki/api/v2/spaces").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("a 429 within 5 calls at burst 2");
    for hdr in [
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "ratelimit-reason",
    ] {
        assert!(r.headers().contains_key(hdr), "{hdr}");
    }
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let stats = h.stats();
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.by_endpoint["GET /wiki/api/v2/spaces"], stats.total);
    // /_sim is never limited nor counted.
    let s: Value = client()
        .get(format!("{}/_sim/stats", h.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["total"].as_u64(), Some(stats.total));
}

#[tokio::test]
async fn injected_resets_drop_the_connection() {
    let h = start(20).await;
    h.set_knobs(Knobs {
        reset_rate: 1.0,
        ..Knobs::default()
    });
    let r = client()
        .get(format!("{}/wiki/api/v2/spaces", h.base_url()))
        .send()
        .await;
    assert!(r.is_err());
    h.set_knobs(Knobs {
        error_rate: 1.0,
        ..Knobs::default()
    });
    let r = get(&h, "/wiki/api/v2/spaces").await;
    assert!(r.status().is_server_error());
    assert_eq!(h.stats().errors_injected, 2);
}

#[tokio::test]
async fn control_edits_show_up_in_incremental_search() {
    let h = start(60).await;
    let sim = h.state();
    let page = sim.page_ids_in_space("KB")[2];
    let since = sim.now().format("%Y/%m/%d %H:%M").to_string();
    sim.advance_clock(chrono::Duration::minutes(1));
    let cql = urlencode(&format!("space = \"KB\" and lastmodified > \"{since}\""));
    let v = get_json(&h, &format!("/wiki/rest/api/search?cql={cql}")).await;
    assert_eq!(v["totalSize"], 0);
    let c = client();
    let r = c
        .put(format!("{}/_sim/pages/{page}", h.base_url()))
        .json(&serde_json::json!({"body": "<p>new</p>"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v = get_json(&h, &format!("/wiki/rest/api/search?cql={cql}")).await;
    assert_eq!(v["totalSize"], 1);
    assert_eq!(v["results"][0]["content"]["id"], page.to_string());
    let r = c
        .delete(format!("{}/_sim/pages/{page}", h.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let v = get_json(&h, &format!("/wiki/rest/api/search?cql={cql}")).await;
    assert_eq!(v["totalSize"], 0, "trashed pages are not searchable");
    assert_eq!(
        get(&h, &format!("/wiki/api/v2/pages/{page}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn attachment_download_redirects_to_the_bytes() {
    let h = start(60).await;
    let (page, att, bytes) = h.state().read(|s| {
        let a = s.attachments.values().next().unwrap();
        (a.page_id, a.id, a.bytes.clone())
    });
    let v = get_json(&h, &format!("/wiki/api/v2/pages/{page}/attachments")).await;
    let listed = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == format!("att{att}"))
        .unwrap()
        .clone();
    let r = get(
        &h,
        &format!("/wiki/rest/api/content/{page}/child/attachment/att{att}/download"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    // To the media origin, not to the legacy `downloadLink` (which refuses API tokens).
    assert!(loc.starts_with(&h.media_url()), "{loc}");
    assert!(
        listed["downloadLink"]
            .as_str()
            .unwrap()
            .starts_with("/download/attachments/")
    );
    // The signed URL needs (and takes) no credentials.
    let r = client().get(loc).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        bytes.len().to_string()
    );
    assert_eq!(r.bytes().await.unwrap(), bytes);
}
