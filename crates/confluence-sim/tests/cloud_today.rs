//! Today's (2026) Confluence Cloud, over HTTP: attachment downloads through the media origin,
//! the gateway with scoped tokens and service-account OAuth, the site time zone in CQL, caps
//! and per-endpoint burst limits. See the crate README, "Today's Cloud, as modelled".

use std::time::Duration;

use confluence_sim::model::{ContentKind, PageStatus};
use confluence_sim::{Credentials, Knobs, RateLimit, SimConfig, SimHandle, spawn};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn start() -> SimHandle {
    spawn(SimConfig::default()).await.unwrap()
}

fn basic(rb: RequestBuilder, c: &Credentials) -> RequestBuilder {
    rb.basic_auth(&c.email, Some(&c.api_token))
}

async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.unwrap_or(Value::Null)
}

/// An attachment on a page nobody restricted: (page id, attachment id, bytes, media type, title).
fn open_attachment(h: &SimHandle) -> (u64, u64, Vec<u8>, String, String) {
    h.state().read(|s| {
        let a = s
            .attachments
            .values()
            .find(|a| {
                s.pages
                    .get(&a.page_id)
                    .is_some_and(|p| !s.is_effectively_restricted(p.id))
            })
            .expect("an unrestricted attachment");
        (
            a.page_id,
            a.id,
            a.bytes.to_vec(),
            a.media_type.clone(),
            a.title.clone(),
        )
    })
}

fn open_page(h: &SimHandle) -> u64 {
    let kb = h.state().page_ids_in_space("KB");
    h.state().read(|s| {
        *kb.iter()
            .find(|id| !s.is_effectively_restricted(**id))
            .expect("an unrestricted page")
    })
}

async fn rest_download(h: &SimHandle, page: u64, att: u64) -> reqwest::Response {
    basic(
        client().get(format!(
            "{}/wiki/rest/api/content/{page}/child/attachment/att{att}/download",
            h.base_url()
        )),
        &h.service_account(),
    )
    .send()
    .await
    .unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn legacy_download_path_answers_401_with_an_oauth_realm() {
    let h = start().await;
    let (page, _, _, _, title) = open_attachment(&h);
    let r = basic(
        client().get(format!(
            "{}/wiki/download/attachments/{page}/{title}?version=1&api=v2",
            h.base_url()
        )),
        &h.service_account(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        format!("OAuth realm=\"{}/wiki\"", h.base_url())
    );
    // The same for a Bearer caller.
    let r = client()
        .get(format!(
            "{}/wiki/download/attachments/{page}/{title}",
            h.base_url()
        ))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rest_download_redirects_to_the_media_origin_which_serves_by_token_only() {
    let h = start().await;
    let (page, att, bytes, media_type, _title) = open_attachment(&h);
    let r = rest_download(&h, page, att).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(&r);
    assert!(loc.starts_with(&h.media_url()), "{loc}");
    let api = url::Url::parse(&h.base_url()).unwrap();
    let media = url::Url::parse(&loc).unwrap();
    assert_ne!(api.host_str(), media.host_str(), "another host name");
    assert_ne!(api.port(), media.port());
    assert!(media.path().starts_with("/file/") && media.path().ends_with("/binary"));
    let q: Vec<(String, String)> = media.query_pairs().into_owned().collect();
    for k in ["token", "client", "name"] {
        assert!(q.iter().any(|(n, _)| n == k), "{k} in {loc}");
    }
    // Served for the token alone.
    let ok = client().get(&loc).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["content-type"].to_str().unwrap(), media_type);
    assert_eq!(
        ok.headers()["content-length"].to_str().unwrap(),
        bytes.len().to_string()
    );
    assert!(
        ok.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(ok.bytes().await.unwrap().to_vec(), bytes);
    // Credentials forwarded to the media host are refused.
    let fwd = basic(client().get(&loc), &h.service_account())
        .send()
        .await
        .unwrap();
    assert_eq!(fwd.status(), StatusCode::BAD_REQUEST);
    assert!(
        json_of(fwd).await.to_string().contains("Authorization"),
        "a clear message"
    );
    let fwd = client().get(&loc).bearer_auth("x").send().await.unwrap();
    assert_eq!(fwd.status(), StatusCode::BAD_REQUEST);
    // Missing or tampered token.
    let bare = format!("{}{}", h.media_url(), media.path());
    assert_eq!(
        client().get(&bare).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let token = q.iter().find(|(k, _)| k == "token").unwrap().1.clone();
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let r = client()
        .get(&bare)
        .query(&[("token", forged.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A token is bound to its file.
    let other = h.state().read(|s| {
        s.attachments
            .values()
            .find(|a| a.id != att)
            .map(|a| a.file_id.clone())
            .unwrap()
    });
    let r = client()
        .get(format!("{}/file/{other}/binary", h.media_url()))
        .query(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // And it expires.
    h.state().advance_clock(chrono::Duration::seconds(61));
    assert_eq!(
        client().get(&loc).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // A short TTL set by the test.
    h.state().set_media_token_ttl(Duration::from_secs(5));
    let loc = location(&rest_download(&h, page, att).await);
    assert_eq!(
        client().get(&loc).send().await.unwrap().status(),
        StatusCode::OK
    );
    h.state().advance_clock(chrono::Duration::seconds(6));
    assert_eq!(
        client().get(&loc).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let stats = h.stats();
    assert_eq!(stats.media_requests, 9);
    assert!(!stats.by_endpoint.keys().any(|k| k.contains("/binary")));
}

#[tokio::test]
async fn control_uploads_replaces_and_deletes_attachments() {
    let h = start().await;
    // Long-lived media tokens: this test moves the clock, and checks files, not expiry.
    h.state().set_media_token_ttl(Duration::from_secs(3600));
    let page = open_page(&h);
    let http = client();
    let r = http
        .post(format!("{}/_sim/pages/{page}/attachments", h.base_url()))
        .json(&json!({ "title": "notes.txt", "media_type": "text/plain", "text": "first" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created = json_of(r).await;
    let att: u64 = created["id"].as_str().unwrap()[3..].parse().unwrap();
    let file1 = created["file_id"].as_str().unwrap().to_string();
    let loc1 = location(&rest_download(&h, page, att).await);
    assert_eq!(
        client()
            .get(&loc1)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "first"
    );
    let listed = json_of(
        basic(
            http.get(format!(
                "{}/wiki/api/v2/pages/{page}/attachments",
                h.base_url()
            )),
            &h.service_account(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let before = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == created["id"])
        .expect("listed")
        .clone();
    assert_eq!(before["version"]["number"], 1);

    h.state().advance_clock(chrono::Duration::minutes(2));
    let r = http
        .put(format!("{}/_sim/attachments/att{att}", h.base_url()))
        .json(&json!({ "base64": "c2Vjb25k" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let replaced = json_of(r).await;
    assert_eq!(replaced["version"], 2);
    assert_ne!(replaced["file_id"].as_str().unwrap(), file1);
    // The old file is gone from the media host; the new one is served.
    assert_eq!(
        client().get(&loc1).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let loc2 = location(&rest_download(&h, page, att).await);
    assert_eq!(
        client()
            .get(&loc2)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "second"
    );
    let listed = json_of(
        basic(
            http.get(format!(
                "{}/wiki/api/v2/pages/{page}/attachments",
                h.base_url()
            )),
            &h.service_account(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let after = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == created["id"])
        .unwrap()
        .clone();
    assert_eq!(after["version"]["number"], 2);
    assert!(after["version"]["createdAt"].as_str() > before["version"]["createdAt"].as_str());

    let r = http
        .delete(format!("{}/_sim/attachments/att{att}", h.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        rest_download(&h, page, att).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        client().get(&loc2).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn tenant_info_and_gateway_paths() {
    let h = start().await;
    let info = json_of(
        client()
            .get(format!("{}/_edge/tenant_info", h.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(info["cloudId"].as_str().unwrap(), h.cloud_id());
    // Deterministic from the seed.
    let again = start().await;
    assert_eq!(again.cloud_id(), h.cloud_id());

    let c = h
        .state()
        .create_scoped_token(
            &h.service_account().email,
            &[
                "read:space:confluence",
                "read:page:confluence",
                "search:confluence",
            ],
        )
        .unwrap();
    let gw = h.gateway_url();
    let r = basic(client().get(format!("{gw}/wiki/api/v2/spaces")), &c)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // v1 without `/wiki` under the gateway.
    let r = basic(client().get(format!("{gw}/rest/api/search")), &c)
        .query(&[("cql", "type=page")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = basic(client().get(format!("{gw}/wiki/rest/api/search")), &c)
        .query(&[("cql", "type=page")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Counted under the site's template.
    assert_eq!(h.stats().by_endpoint["GET /wiki/rest/api/search"], 2);
    // A wrong cloud id, or no API path.
    let wrong = format!(
        "{}/ex/confluence/00000000-0000-4000-a000-000000000000/wiki/api/v2/spaces",
        h.base_url()
    );
    let r = basic(client().get(wrong), &c).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = basic(client().get(format!("{gw}/nothing")), &c)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn gateway_next_links_lead_on_when_appended_to_the_gateway_base() {
    let h = start().await;
    let c = h
        .state()
        .create_scoped_token(&h.service_account().email, &["read:page:confluence"])
        .unwrap();
    let kb = h.state().read(|s| s.space_by_key("KB").unwrap().id);
    let gw = h.gateway_url();
    let mut next = Some(format!("/wiki/api/v2/spaces/{kb}/pages?limit=5"));
    let mut seen = 0;
    while let Some(path) = next.take() {
        let r = basic(client().get(format!("{gw}{path}")), &c)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let v = json_of(r).await;
        // `_links.base` names the site, not the gateway.
        assert_eq!(v["_links"]["base"], format!("{}/wiki", h.base_url()));
        seen += v["results"].as_array().unwrap().len();
        next = v["_links"]["next"].as_str().map(str::to_string);
        if let Some(n) = &next {
            assert!(n.starts_with("/wiki/api/v2/"), "{n}");
        }
    }
    // The default statuses are current and archived.
    let expected = h.state().read(|s| {
        s.pages
            .values()
            .filter(|p| p.space_id == kb)
            .filter(|p| matches!(p.status, PageStatus::Current | PageStatus::Archived))
            .count()
    });
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn scoped_tokens_work_only_on_the_gateway_and_only_within_their_scopes() {
    let h = start().await;
    let c = h
        .state()
        .create_scoped_token(&h.service_account().email, &["read:space:confluence"])
        .unwrap();
    let site = basic(
        client().get(format!("{}/wiki/api/v2/spaces", h.base_url())),
        &c,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(site.status(), StatusCode::UNAUTHORIZED);
    let gw = h.gateway_url();
    let ok = basic(client().get(format!("{gw}/wiki/api/v2/spaces")), &c)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let page = open_page(&h);
    let r = basic(client().get(format!("{gw}/wiki/api/v2/pages/{page}")), &c)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["x-failure-category"].to_str().unwrap(),
        "FAILURE_CLIENT_SCOPE_CHECK"
    );
    let v = json_of(r).await;
    assert_eq!(
        v,
        json!({ "code": 401, "message": "Unauthorized; scope does not match" })
    );
    // The classic token of the same account is refused on the gateway.
    let r = basic(
        client().get(format!("{gw}/wiki/api/v2/spaces")),
        &h.service_account(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // v1 accepts the granular alternative of its classic scope.
    let g = h
        .state()
        .create_scoped_token(
            &h.service_account().email,
            &["read:content-details:confluence"],
        )
        .unwrap();
    let r = basic(
        client().get(format!("{gw}/wiki/rest/api/content/search")),
        &g,
    )
    .query(&[("cql", "type=page")])
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Created over /_sim/ too.
    let r = client()
        .post(format!("{}/_sim/scoped-tokens", h.base_url()))
        .json(&json!({ "email": h.service_account().email, "scopes": ["read:page:confluence"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v = json_of(r).await;
    let t = Credentials {
        email: v["email"].as_str().unwrap().to_string(),
        api_token: v["api_token"].as_str().unwrap().to_string(),
    };
    let r = basic(client().get(format!("{gw}/wiki/api/v2/pages/{page}")), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn service_account_oauth_client_credentials_then_bearer_on_the_gateway() {
    let h = start().await;
    let r = client()
        .post(format!("{}/_sim/oauth-clients", h.base_url()))
        .json(&json!({
            "email": h.service_account().email,
            "scopes": ["read:space:confluence", "read:page:confluence"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let oc = json_of(r).await;
    let (id, secret) = (
        oc["client_id"].as_str().unwrap().to_string(),
        oc["client_secret"].as_str().unwrap().to_string(),
    );
    let token_url = format!("{}/oauth/token", h.base_url());
    let bad = client()
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let r = client()
        .post(&token_url)
        .json(&json!({ "grant_type": "client_credentials", "client_id": id, "client_secret": secret }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tok = json_of(r).await;
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 3600);
    let access = tok["access_token"].as_str().unwrap().to_string();
    let gw = h.gateway_url();
    let r = client()
        .get(format!("{gw}/wiki/api/v2/spaces"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Not on the site URL.
    let r = client()
        .get(format!("{}/wiki/api/v2/spaces", h.base_url()))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Missing scope.
    let r = client()
        .get(format!("{gw}/wiki/rest/api/search"))
        .query(&[("cql", "type=page")])
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json_of(r).await["message"],
        "Unauthorized; scope does not match"
    );
    // Expired after an hour.
    h.state().advance_clock(chrono::Duration::minutes(61));
    let r = client()
        .get(format!("{gw}/wiki/api/v2/spaces"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// Moves the simulator clock to `at`, then creates a page there; returns its id.
fn page_at(h: &SimHandle, at: chrono::DateTime<chrono::Utc>, title: &str) -> u64 {
    let sim = h.state();
    sim.advance_clock(at - sim.now());
    sim.create_page(confluence_sim::NewPage {
        space_key: "KB".into(),
        title: title.into(),
        body: "<p>x</p>".into(),
        ..Default::default()
    })
    .unwrap()
}

async fn cql_ids(h: &SimHandle, cql: &str) -> Vec<String> {
    let r = basic(
        client().get(format!("{}/wiki/rest/api/search", h.base_url())),
        &h.service_account(),
    )
    .query(&[("cql", cql)])
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{cql}");
    json_of(r).await["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["content"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn cql_date_literals_are_read_in_the_site_time_zone() {
    let h = spawn(SimConfig {
        time_zone: "-08:00".parse().unwrap(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let at: chrono::DateTime<chrono::Utc> = "2026-09-28T18:00:30Z".parse().unwrap();
    let id = page_at(&h, at, "Time zone probe").to_string();
    let found = |lit: &str| format!("id = {id} and lastmodified > \"{lit}\"");
    // 10:00 at UTC-8 is 18:00 UTC.
    assert_eq!(
        cql_ids(&h, &found("2026/09/28 10:00")).await,
        vec![id.clone()]
    );
    assert!(cql_ids(&h, &found("2026/09/28 10:01")).await.is_empty());
    // The UTC wall time means 02:00 UTC the next day there.
    assert!(cql_ids(&h, &found("2026-09-28 18:00")).await.is_empty());
    // Switch the site to UTC+13 over /_sim/.
    let r = client()
        .post(format!("{}/_sim/time-zone", h.base_url()))
        .json(&json!({ "time_zone": "+13:00" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["time_zone"], "+13:00");
    assert_eq!(
        cql_ids(&h, &found("2026/09/29 07:00")).await,
        vec![id.clone()]
    );
    assert!(cql_ids(&h, &found("2026/09/29 07:01")).await.is_empty());
    assert_eq!(
        cql_ids(&h, &format!("id = {id} and lastmodified >= \"2026-09-29\"")).await,
        vec![id.clone()]
    );
}

#[tokio::test]
async fn cql_now_offsets_are_computed_server_side() {
    let h = start().await;
    let at: chrono::DateTime<chrono::Utc> = "2026-09-28T18:00:30Z".parse().unwrap();
    let id = page_at(&h, at, "Relative date probe").to_string();
    let q = |f: &str| format!("id = {id} and lastmodified >= {f}");
    assert_eq!(cql_ids(&h, &q("now(\"-15m\")")).await, vec![id.clone()]);
    h.state().advance_clock(chrono::Duration::minutes(20));
    assert!(cql_ids(&h, &q("now(\"-15m\")")).await.is_empty());
    assert_eq!(cql_ids(&h, &q("now(\"-4h\")")).await, vec![id.clone()]);
    assert_eq!(cql_ids(&h, &q("startOfDay()")).await, vec![id.clone()]);
    h.state().advance_clock(chrono::Duration::days(2));
    assert!(cql_ids(&h, &q("now(\"-1d\")")).await.is_empty());
    assert_eq!(cql_ids(&h, &q("now(\"-1w\")")).await, vec![id.clone()]);
    assert!(cql_ids(&h, &q("startOfDay(\"-1d\")")).await.is_empty());
}

#[tokio::test]
async fn limits_above_the_caps_are_clamped_silently() {
    let h = spawn(SimConfig {
        pages: 300,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let admin = h.service_account();
    let kb = h.state().read(|s| s.space_by_key("KB").unwrap().id);
    let r = basic(
        client().get(format!(
            "{}/wiki/api/v2/spaces/{kb}/pages?limit=1000",
            h.base_url()
        )),
        &admin,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    let n = v["results"].as_array().unwrap().len();
    assert!(n <= 250);
    if let Some(next) = v["_links"]["next"].as_str() {
        assert!(next.contains("limit=250"), "{next}");
    }
    let r = client()
        .post(format!("{}/_sim/caps", h.base_url()))
        .json(&json!({ "search_expand": 7 }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["search_expand"], 7);
    let r = basic(
        client().get(format!("{}/wiki/rest/api/content/search", h.base_url())),
        &admin,
    )
    .query(&[
        ("cql", "type=page"),
        ("limit", "100"),
        ("expand", "version"),
    ])
    .send()
    .await
    .unwrap();
    let v = json_of(r).await;
    assert_eq!(v["limit"], 7);
    assert_eq!(v["results"].as_array().unwrap().len(), 7);
    // Without expansions the cap is the larger one.
    let r = basic(
        client().get(format!("{}/wiki/rest/api/content/search", h.base_url())),
        &admin,
    )
    .query(&[("cql", "type=page"), ("limit", "100")])
    .send()
    .await
    .unwrap();
    assert_eq!(json_of(r).await["limit"], 100);
}

#[tokio::test]
async fn per_endpoint_burst_buckets_send_cloud_headers_and_near_limit_before_429() {
    let h = start().await;
    h.set_knobs(Knobs {
        endpoint_rate_limit: Some(RateLimit {
            per_second: 0,
            burst: 10,
        }),
        ..Knobs::default()
    });
    let admin = h.service_account();
    let url = format!("{}/wiki/api/v2/spaces", h.base_url());
    let mut near_before_429 = false;
    let mut limited = None;
    for i in 0..12 {
        let r = basic(client().get(&url), &admin).send().await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, r));
            break;
        }
        let hd = r.headers();
        for k in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "beta-ratelimit-policy",
            "beta-ratelimit",
        ] {
            assert!(hd.contains_key(k), "{k} on call {i}");
        }
        assert_eq!(hd["x-ratelimit-limit"], "10");
        let remaining: u32 = hd["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(remaining, 9 - i);
        let near = hd.contains_key("x-ratelimit-nearlimit");
        assert_eq!(near, remaining < 2, "near-limit under 20% (call {i})");
        near_before_429 |= near;
        assert!(
            hd["beta-ratelimit-policy"]
                .to_str()
                .unwrap()
                .contains(";q=10;")
        );
    }
    assert!(near_before_429);
    let (i, r) = limited.expect("429 once the bucket is empty");
    assert_eq!(i, 10);
    let hd = r.headers();
    assert_eq!(hd["ratelimit-reason"], "confluence-burst-based");
    assert!(hd["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(hd["x-ratelimit-remaining"], "0");
    assert_eq!(hd["x-ratelimit-nearlimit"], "true");
    let reset = hd["x-ratelimit-reset"].to_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(reset, "%Y-%m-%dT%H:%MZ").is_ok(),
        "{reset}"
    );
    // Another endpoint has a bucket of its own.
    let r = basic(
        client().get(format!("{}/wiki/rest/api/search", h.base_url())),
        &admin,
    )
    .query(&[("cql", "type=page")])
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "9");
}

#[tokio::test]
async fn unknown_expansions_are_ignored() {
    let h = start().await;
    let r = basic(
        client().get(format!("{}/wiki/rest/api/content/search", h.base_url())),
        &h.service_account(),
    )
    .query(&[
        ("cql", "type=page"),
        ("limit", "3"),
        ("expand", "version,no.such.expansion,childTypes.all"),
    ])
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    let first = &v["results"][0];
    assert!(first["version"]["number"].is_number());
    assert!(first.get("no").is_none());
}

async fn v1_get(h: &SimHandle, who: &Credentials, path: &str, q: &[(&str, &str)]) -> Value {
    let r = basic(client().get(format!("{}{path}", h.base_url())), who)
        .query(q)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path} {q:?}");
    json_of(r).await
}

#[tokio::test]
async fn folders_sit_in_the_tree_and_in_v1_ancestors() {
    let h = start().await;
    let admin = h.service_account();
    // A page moved into the folder inside a folder.
    let (page, inner, outer) = h.state().read(|s| {
        s.pages
            .values()
            .find_map(|p| {
                let inner = s.contents.get(&p.parent_id?)?;
                let outer = s.contents.get(&inner.parent_id?)?;
                (inner.kind == ContentKind::Folder && outer.kind == ContentKind::Folder)
                    .then_some((p.id, inner.id, outer.id))
            })
            .expect("a page in a nested folder")
    });
    let v = json_of(
        basic(
            client().get(format!("{}/wiki/api/v2/pages/{page}", h.base_url())),
            &admin,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(v["parentId"], inner.to_string());
    assert_eq!(v["parentType"], "folder");
    let f = json_of(
        basic(
            client().get(format!("{}/wiki/api/v2/folders/{inner}", h.base_url())),
            &admin,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(f["type"], "folder");
    assert_eq!(f["parentId"], outer.to_string());
    assert_eq!(f["parentType"], "folder");
    // v1: the folders are ancestors, with their type.
    let v = v1_get(
        &h,
        &admin,
        "/wiki/rest/api/content/search",
        &[("cql", &format!("id = {page}")), ("expand", "ancestors")],
    )
    .await;
    let anc: Vec<(String, String)> = v["results"][0]["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let n = anc.len();
    assert!(n >= 3, "{anc:?}");
    assert_eq!(anc[0].1, "page", "the home page first");
    assert_eq!(anc[n - 2], (outer.to_string(), "folder".to_string()));
    assert_eq!(anc[n - 1], (inner.to_string(), "folder".to_string()));
    // type = folder, and type in (page, folder), with the bulk expansions.
    let expand = "ancestors,version,restrictions.read.restrictions.user,restrictions.read.restrictions.group";
    let v = v1_get(
        &h,
        &admin,
        "/wiki/rest/api/content/search",
        &[
            ("cql", "space = KB and type = folder"),
            ("expand", expand),
            ("limit", "200"),
        ],
    )
    .await;
    let folders = v["results"].as_array().unwrap();
    assert!(folders.len() >= 3);
    for f in folders {
        assert_eq!(f["type"], "folder");
        assert!(f["restrictions"]["read"]["restrictions"]["group"]["results"].is_array());
        assert!(f["ancestors"].is_array());
    }
    let v = v1_get(
        &h,
        &admin,
        "/wiki/rest/api/content/search",
        &[
            ("cql", "space = KB and type in (page, folder)"),
            ("expand", expand),
            ("limit", "200"),
        ],
    )
    .await;
    let types: std::collections::BTreeSet<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types.into_iter().collect::<Vec<_>>(), ["folder", "page"]);
}

#[tokio::test]
async fn a_restricted_folder_hides_its_pages() {
    let h = start().await;
    let (folder, page, group) = h.state().read(|s| {
        let f = s
            .contents
            .values()
            .find(|c| c.kind == ContentKind::Folder && !c.read_restrictions.is_empty())
            .expect("a restricted folder");
        let page = s
            .pages
            .values()
            .find(|p| p.parent_id == Some(f.id))
            .expect("a page in it")
            .id;
        (
            f.id,
            page,
            f.read_restrictions.groups.iter().next().unwrap().clone(),
        )
    });
    assert!(h.state().read(|s| s.is_effectively_restricted(page)));
    // The reader is not in the folder's group: neither the folder nor its page exist for them.
    let reader = h.non_admin_account();
    let in_group = h.state().read(|s| {
        let me = s.user_by_email(&reader.email).unwrap().account_id.clone();
        s.groups[&group].members.contains(&me)
    });
    assert!(!in_group);
    for path in [
        format!("/wiki/api/v2/pages/{page}"),
        format!("/wiki/api/v2/folders/{folder}"),
    ] {
        let r = basic(client().get(format!("{}{path}", h.base_url())), &reader)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let v = v1_get(
        &h,
        &reader,
        "/wiki/rest/api/search",
        &[("cql", &format!("id in ({page}, {folder})"))],
    )
    .await;
    assert_eq!(v["totalSize"], 0);
    // The folder's own restriction is readable where the folder is visible.
    let admin = h.service_account();
    let admin_sees = h.state().read(|s| {
        let me = s.user_by_email(&admin.email).unwrap().account_id.clone();
        s.can_read_page(&me, folder)
    });
    if admin_sees {
        let v = v1_get(
            &h,
            &admin,
            &format!("/wiki/rest/api/content/{folder}/restriction/byOperation/read"),
            &[],
        )
        .await;
        assert_eq!(v["restrictions"]["group"]["results"][0]["id"], group);
    }
}

#[tokio::test]
async fn archived_pages_are_listed_by_v2_by_default_but_not_found_by_cql() {
    let h = start().await;
    let admin = h.service_account();
    let (kb, archived) = h.state().read(|s| {
        let kb = s.space_by_key("KB").unwrap().id;
        let a = s
            .pages
            .values()
            .find(|p| p.space_id == kb && p.status == PageStatus::Archived)
            .expect("an archived page")
            .id;
        (kb, a)
    });
    let list = |status: Option<&'static str>| {
        let h = &h;
        let admin = &admin;
        async move {
            let mut q = vec![("limit", "250")];
            if let Some(st) = status {
                q.push(("status", st));
            }
            let v = v1_get(h, admin, &format!("/wiki/api/v2/spaces/{kb}/pages"), &q).await;
            v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["id"].as_str().unwrap().to_string(),
                        p["status"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let all = list(None).await;
    assert!(all.contains(&(archived.to_string(), "archived".to_string())));
    let current = list(Some("current")).await;
    assert!(!current.iter().any(|(id, _)| *id == archived.to_string()));
    let only = list(Some("archived")).await;
    assert_eq!(only, vec![(archived.to_string(), "archived".to_string())]);
    let v = v1_get(
        &h,
        &admin,
        "/wiki/rest/api/search",
        &[(
            "cql",
            &format!("space = KB and type = page and id = {archived}"),
        )],
    )
    .await;
    assert_eq!(v["totalSize"], 0);
}

#[tokio::test]
async fn other_content_kinds_show_up_in_lastmodified_queries() {
    let h = start().await;
    let v = v1_get(
        &h,
        &h.service_account(),
        "/wiki/rest/api/search",
        &[
            ("cql", "space = KB and lastmodified > \"2020/01/01 00:00\""),
            ("limit", "1000"),
        ],
    )
    .await;
    let types: std::collections::BTreeSet<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["content"]["type"].as_str().unwrap().to_string())
        .collect();
    for t in [
        "page",
        "attachment",
        "folder",
        "whiteboard",
        "database",
        "embed",
        "blogpost",
    ] {
        assert!(types.contains(t), "{t} in {types:?}");
    }
    let v = v1_get(
        &h,
        &h.service_account(),
        "/wiki/rest/api/search",
        &[("cql", "space = KB and type = blogpost")],
    )
    .await;
    assert_eq!(v["totalSize"], 1);
}
