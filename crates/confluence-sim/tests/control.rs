//! The `/_sim/` control surface over HTTP: knobs (rate limit, latency, 5xx, resets), stats and
//! their reset, the inspection routes after changes made through the real API, and content
//! edits made through `/_sim/` as the real v2/v1 endpoints show them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use confluence_sim::model::{AccountType, PageStatus, User, UserKind, UserStatus};
use confluence_sim::{Credentials, SimConfig, SimHandle, spawn};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct T {
    h: SimHandle,
    http: reqwest::Client,
    admin: Credentials,
    reader: Credentials,
}

/// A response, read whole.
struct R {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl T {
    async fn start() -> T {
        let h = spawn(SimConfig::default()).await.expect("sim");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let admin = h.service_account();
        let reader = h.non_admin_account();
        T {
            h,
            http,
            admin,
            reader,
        }
    }

    async fn send(
        &self,
        who: Option<&Credentials>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> R {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.h.base_url()));
        if let Some(c) = who {
            rb = rb.basic_auth(&c.email, Some(&c.api_token));
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String("<not json>".into()))
        };
        R {
            status,
            headers,
            body,
        }
    }

    /// The service account on the real API.
    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> R {
        self.send(Some(&self.admin), method, path, body).await
    }

    async fn api_ok(&self, path: &str) -> Value {
        let r = self.api(Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.body);
        r.body
    }

    /// The unauthenticated control surface.
    async fn sim(&self, method: Method, path: &str, body: Option<Value>) -> R {
        self.send(None, method, &format!("/_sim{path}"), body).await
    }

    async fn sim_ok(&self, path: &str) -> Value {
        let r = self.sim(Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "GET /_sim{path}: {}", r.body);
        r.body
    }

    async fn knobs(&self, knobs: Value) -> Value {
        let r = self.sim(Method::POST, "/knobs", Some(knobs)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }
}

fn header<'a>(r: &'a R, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header: {:?}", r.headers))
        .to_str()
        .unwrap()
}

fn set<T: ToString>(xs: &[T]) -> BTreeSet<String> {
    xs.iter().map(T::to_string).collect()
}

/// Percent-encodes a path segment.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn ids(list: &Value) -> BTreeSet<String> {
    list["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|x| x["id"].as_str().expect("id").to_string())
        .collect()
}

// ------------------------------------------------------------------ knobs and stats

#[tokio::test]
async fn rate_limit_knob_answers_429_with_retry_after_and_quota_headers() {
    let t = T::start().await;
    let defaults = t.sim_ok("/knobs").await;
    assert_eq!(defaults["rate_limit"], Value::Null, "{defaults}");
    let set = t
        .knobs(json!({ "rate_limit": { "per_second": 1, "burst": 3 } }))
        .await;
    assert_eq!(set["rate_limit"], json!({ "per_second": 1, "burst": 3 }));
    assert_eq!(t.sim_ok("/knobs").await, set);

    let mut remaining = Vec::new();
    let mut limited = None;
    for _ in 0..8 {
        let r = t.api(Method::GET, "/wiki/api/v2/spaces", None).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(header(&r, "x-ratelimit-limit"), "3");
        remaining.push(header(&r, "x-ratelimit-remaining").parse::<u32>().unwrap());
    }
    let r = limited.expect("a 429 within 8 calls at burst 3");
    assert!(remaining.len() >= 3, "burst not served: {remaining:?}");
    assert_eq!(&remaining[..3], &[2, 1, 0], "{remaining:?}");
    let retry_after: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&r, "x-ratelimit-limit"), "3");
    assert_eq!(header(&r, "x-ratelimit-remaining"), "0");
    // ISO 8601 to the minute, as Cloud documents it (`yyyy-MM-ddTHH:mmZ`).
    let reset =
        chrono::NaiveDateTime::parse_from_str(header(&r, "x-ratelimit-reset"), "%Y-%m-%dT%H:%MZ")
            .expect("X-RateLimit-Reset is yyyy-MM-ddTHH:mmZ")
            .and_utc();
    let now = chrono::Utc::now();
    assert!(
        reset > now - chrono::Duration::seconds(61) && reset <= now + chrono::Duration::seconds(3),
        "{reset} vs {now}"
    );
    assert!(r.headers.contains_key("ratelimit-reason"));
    assert_eq!(r.body["errors"][0]["status"], 429, "{}", r.body);

    // The control surface is never limited, and the stats saw every call and the 429.
    for _ in 0..10 {
        assert_eq!(t.sim(Method::GET, "/stats", None).await.status, 200);
    }
    let stats = t.sim_ok("/stats").await;
    let calls = remaining.len() as u64 + 1;
    assert_eq!(stats["total"], calls, "{stats}");
    assert_eq!(stats["rate_limited"], 1, "{stats}");
    assert_eq!(stats["by_endpoint"]["GET /wiki/api/v2/spaces"], calls);

    // Waiting out Retry-After is enough.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let r = t.api(Method::GET, "/wiki/api/v2/spaces", None).await;
    assert_eq!(r.status, StatusCode::OK);

    // Knobs are replaced as a whole: `{}` lifts the limit.
    t.knobs(json!({})).await;
    for _ in 0..10 {
        let r = t.api(Method::GET, "/wiki/api/v2/spaces", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(!r.headers.contains_key("x-ratelimit-limit"));
    }
}

#[tokio::test]
async fn latency_error_and_reset_knobs() {
    let t = T::start().await;
    t.knobs(json!({ "latency_ms": 300 })).await;
    assert_eq!(t.sim_ok("/knobs").await["latency_ms"], 300);
    for path in ["/wiki/api/v2/spaces", "/wiki/rest/api/search?cql=type=page"] {
        let started = Instant::now();
        let r = t.api(Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{path} answered in {:?}",
            started.elapsed()
        );
    }

    // Every call fails: a 500, 502 or 503 in the family's error shape; 503s say when to retry.
    t.knobs(json!({ "error_rate": 1.0 })).await;
    t.sim(Method::POST, "/stats/reset", None).await;
    let mut codes = BTreeSet::new();
    for _ in 0..30 {
        let r = t.api(Method::GET, "/wiki/api/v2/spaces", None).await;
        assert!([500, 502, 503].contains(&r.status.as_u16()), "{}", r.status);
        assert_eq!(
            r.body["errors"][0]["status"],
            r.status.as_u16(),
            "{}",
            r.body
        );
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(header(&r, "retry-after"), "1");
        }
        codes.insert(r.status.as_u16());
    }
    assert!(codes.len() >= 2, "one kind of failure only: {codes:?}");
    let stats = t.sim_ok("/stats").await;
    assert_eq!(stats["errors_injected"], 30, "{stats}");
    assert_eq!(stats["total"], 30, "{stats}");

    // Half the calls fail (seeded, so the split is stable but not all-or-nothing).
    t.knobs(json!({ "error_rate": 0.5 })).await;
    let mut ok = 0;
    for _ in 0..40 {
        if t.api(Method::GET, "/wiki/api/v2/spaces", None).await.status == StatusCode::OK {
            ok += 1;
        }
    }
    assert!(
        (5..=35).contains(&ok),
        "{ok} of 40 succeeded at error_rate 0.5"
    );

    // Resets drop the connection without an answer (a fresh client: no pooled connection).
    t.knobs(json!({ "reset_rate": 1.0 })).await;
    let dropped = reqwest::Client::new()
        .get(format!("{}/wiki/api/v2/spaces", t.h.base_url()))
        .basic_auth(&t.admin.email, Some(&t.admin.api_token))
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    // The control surface is not faulted.
    assert_eq!(t.sim(Method::GET, "/knobs", None).await.status, 200);
    t.knobs(json!({})).await;
    assert_eq!(
        t.api(Method::GET, "/wiki/api/v2/spaces", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn stats_count_templates_with_spec_names_and_reset() {
    let t = T::start().await;
    let (page, att) = t.h.state().read(|s| {
        let a = s
            .attachments
            .values()
            .find(|a| {
                a.status == PageStatus::Current
                    && s.pages.get(&a.page_id).is_some_and(|p| {
                        p.status == PageStatus::Current && !s.is_effectively_restricted(p.id)
                    })
            })
            .expect("an attachment on an unrestricted page")
            .clone();
        (a.page_id, a)
    });
    let r = t.sim(Method::POST, "/stats/reset", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["total"], 0);
    assert_eq!(r.body["by_endpoint"], json!({}));

    t.api_ok("/wiki/api/v2/spaces?limit=1").await;
    t.api_ok(&format!("/wiki/api/v2/pages/{page}")).await;
    t.api_ok(&format!(
        "/wiki/rest/api/content/{page}/restriction/byOperation/read"
    ))
    .await;
    let r = t
        .api(
            Method::GET,
            &format!(
                "/wiki/rest/api/content/{page}/child/attachment/att{}/download",
                att.id
            ),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let file = format!("/wiki/download/attachments/{page}/{}", enc(&att.title));
    let r = t.api(Method::GET, &file, None).await;
    // The legacy path refuses API tokens (CHANGE-2735); still counted.
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{file}");
    let gql = |q: Option<&str>, op: Option<&str>| {
        let path = match q {
            Some(q) => format!("/cgraphql?q={q}"),
            None => "/cgraphql".to_string(),
        };
        let mut body = json!({ "query": "…", "variables": { "first": 2 } });
        if let Some(op) = op {
            body["operationName"] = json!(op);
        }
        (path, body)
    };
    for (q, op, status) in [
        (Some("GuestDataQuery"), None, 200),
        (None, Some("GuestDataQuery"), 200),
        (Some("NoSuchQuery"), None, 400),
        (None, None, 400),
    ] {
        let (path, body) = gql(q, op);
        let r = t.api(Method::POST, &path, Some(body)).await;
        assert_eq!(r.status.as_u16(), status, "{path} {op:?}: {}", r.body);
    }
    // /_sim calls are not counted.
    t.sim_ok("/users").await;
    t.sim_ok("/knobs").await;

    let stats = t.sim_ok("/stats").await;
    let by = stats["by_endpoint"].as_object().expect("by_endpoint");
    let expected: Vec<(&str, u64)> = vec![
        ("GET /wiki/api/v2/spaces", 1),
        ("GET /wiki/api/v2/pages/{id}", 1),
        (
            "GET /wiki/rest/api/content/{id}/restriction/byOperation/{operationKey}",
            1,
        ),
        (
            "GET /wiki/rest/api/content/{id}/child/attachment/{attachmentId}/download",
            1,
        ),
        ("GET /wiki/download/attachments/{pageId}/{filename}", 1),
        ("POST /cgraphql?q=GuestDataQuery", 2),
        ("POST /cgraphql", 2),
    ];
    let got: Vec<(&str, u64)> = by
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_u64().unwrap()))
        .collect();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(got, want, "{stats}");
    assert_eq!(stats["total"], 9);
    assert_eq!(t.h.stats().total, 9);

    let r = t.sim(Method::POST, "/stats/reset", None).await;
    assert_eq!(r.body["total"], 0);
    let stats = t.sim_ok("/stats").await;
    assert_eq!(stats["total"], 0, "{stats}");
    assert_eq!(stats["rate_limited"], 0);
    assert_eq!(stats["by_endpoint"], json!({}));
}

// ------------------------------------------------------------------ inspection

#[tokio::test]
async fn inspection_routes_reflect_changes_made_through_the_api() {
    let t = T::start().await;
    let key = "KB";

    // ---- users, credentials, spaces ----
    let users = t.sim_ok("/users").await;
    let users = users.as_array().expect("users");
    assert_eq!(users.len(), t.h.state().read(|s| s.users.len()));
    let me = users
        .iter()
        .find(|u| u["email"] == t.admin.email.as_str())
        .expect("the service account is listed");
    assert_eq!(me["is_admin"], true);
    assert_eq!(me["kind"], "licensed");
    let creds = t.sim_ok("/credentials").await;
    assert_eq!(creds["service_account"]["api_token"], t.admin.api_token);
    assert_eq!(creds["non_admin_account"]["email"], t.reader.email);
    let spaces = t.sim_ok("/spaces").await;
    assert!(
        spaces.as_array().unwrap().iter().any(|s| s["key"] == key),
        "{spaces}"
    );

    // ---- groups and members ----
    let r = t
        .api(
            Method::POST,
            "/wiki/rest/api/group",
            Some(json!({ "name": "control-test-group" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let gid = r.body["id"].as_str().expect("group id").to_string();
    let member = users
        .iter()
        .find(|u| {
            u["kind"] == "licensed"
                && u["status"] == "active"
                && u["email"] != t.admin.email.as_str()
        })
        .and_then(|u| u["account_id"].as_str())
        .expect("a licensed user")
        .to_string();
    let r = t
        .api(
            Method::POST,
            &format!("/wiki/rest/api/group/userByGroupId?groupId={gid}"),
            Some(json!({ "accountId": member })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let groups = t.sim_ok("/groups").await;
    let g = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == gid.as_str())
        .unwrap_or_else(|| panic!("new group not listed: {groups}"));
    assert_eq!(g["name"], "control-test-group");
    assert_eq!(g["member_count"], 1);
    for by in [gid.as_str(), "control-test-group"] {
        let m = t.sim_ok(&format!("/groups/{by}/members")).await;
        assert_eq!(m["members"], json!([member]), "{m}");
    }
    assert_eq!(
        t.sim(Method::GET, "/groups/no-such-group/members", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = t
        .api(
            Method::DELETE,
            &format!("/wiki/rest/api/group/userByGroupId?groupId={gid}&accountId={member}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let m = t.sim_ok(&format!("/groups/{gid}/members")).await;
    assert_eq!(m["members"], json!([]));

    // ---- space permissions ----
    let before = t.sim_ok(&format!("/spaces/{key}/permissions")).await;
    let r = t
        .api(
            Method::POST,
            &format!("/wiki/rest/api/space/{key}/permission"),
            Some(json!({
                "subject": { "type": "group", "identifier": gid },
                "operation": { "key": "read", "target": "space" },
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let pid = r.body["id"].as_u64().expect("permission id");
    let after = t.sim_ok(&format!("/spaces/{key}/permissions")).await;
    let after = after.as_array().unwrap();
    assert_eq!(after.len(), before.as_array().unwrap().len() + 1);
    let p = after
        .iter()
        .find(|p| p["id"] == pid)
        .unwrap_or_else(|| panic!("grant {pid} not listed"));
    assert_eq!(p["subject"], json!({ "type": "group", "identifier": gid }));
    assert_eq!(p["operation"]["key"], "read");
    assert_eq!(p["space_key"], key);
    let r = t
        .api(
            Method::DELETE,
            &format!("/wiki/rest/api/space/{key}/permission/{pid}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let gone = t.sim_ok(&format!("/spaces/{key}/permissions")).await;
    assert!(!gone.as_array().unwrap().iter().any(|p| p["id"] == pid));
    assert_eq!(
        t.sim(Method::GET, "/spaces/NOPE/permissions", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // ---- guests: assign a space through the GraphQL mutation ----
    let guest = t.h.state().write(|s| {
        let id = "712020:control-test-guest".to_string();
        s.insert_user(User {
            account_id: id.clone(),
            email: "control.guest@guest-example.com".into(),
            display_name: "Control Guest".into(),
            account_type: AccountType::Atlassian,
            status: UserStatus::Active,
            kind: UserKind::Guest,
            is_admin: false,
        });
        id
    });
    let guests = t.sim_ok("/guests").await;
    let listed = guests["guests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["account_id"] == guest.as_str())
        .cloned()
        .expect("new guest listed");
    assert_eq!(listed["space_key"], Value::Null);
    assert_eq!(
        guests["guest_allowance"],
        guests["licensed"].as_u64().unwrap() * 5
    );
    let active_before = guests["active_guests"].as_u64().unwrap();
    let r = t
        .api(
            Method::POST,
            "/cgraphql?q=ResetExCoSpacePermissionsMutation",
            Some(json!({
                "operationName": "ResetExCoSpacePermissionsMutation",
                "query": "mutation …",
                "variables": { "accountId": guest, "spaceKey": key },
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["data"]["resetExCoSpacePermissions"]["success"], true,
        "{}",
        r.body
    );
    let guests = t.sim_ok("/guests").await;
    let listed = guests["guests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["account_id"] == guest.as_str())
        .cloned()
        .unwrap();
    assert_eq!(listed["space_key"], key);
    assert_eq!(guests["active_guests"], active_before);
    let users = t.sim_ok("/users").await;
    let u = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["account_id"] == guest.as_str())
        .cloned()
        .unwrap();
    assert_eq!(u["guest_space"], key);
    assert_eq!(u["kind"], "guest");
    let perms = t.sim_ok(&format!("/spaces/{key}/permissions")).await;
    assert!(perms.as_array().unwrap().iter().any(|p| {
        p["subject"] == json!({ "type": "user", "identifier": guest })
            && p["operation"]["key"] == "read"
    }));

    // ---- switches ----
    let on = |sw: &Value, field: &str| {
        sw[field]
            .as_array()
            .unwrap_or_else(|| panic!("{field}: {sw}"))
            .contains(&json!(key))
    };
    let r = t
        .api(
            Method::POST,
            "/wiki/rest/knowledge-base/1.0/permissions/global/unlicensedaccess",
            Some(json!({ "enablePermission": false })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        t.sim_ok("/switches").await["global_unlicensed_access"],
        false
    );
    for (path, field) in [
        ("space/unlicensedview", "unlicensed_view"),
        ("space/anonymousview", "anonymous_view"),
    ] {
        let r = t
            .api(
                Method::POST,
                &format!("/wiki/rest/knowledge-base/1.0/permissions/{path}"),
                Some(json!({ "spaceKey": key, "enablePermission": true })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(on(&t.sim_ok("/switches").await, field), "{field}");
    }
    let r = t
        .api(
            Method::POST,
            "/wiki/rest/knowledge-base/1.0/permissions/global/unlicensedaccess",
            Some(json!({ "enablePermission": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        t.sim_ok("/switches").await["global_unlicensed_access"],
        true
    );
    let r = t
        .api(
            Method::POST,
            "/wiki/rest/knowledge-base/1.0/permissions/space/unlicensedview",
            Some(json!({ "spaceKey": key, "enablePermission": false })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let sw = t.sim_ok("/switches").await;
    assert!(!on(&sw, "unlicensed_view"), "{sw}");
    assert!(on(&sw, "anonymous_view"), "{sw}");

    // ---- invites complete on the simulator clock ----
    let email = "invited.person@customer-example.com";
    let r = t
        .api(
            Method::POST,
            "/wiki/api/v2/user/access/invite-by-email",
            Some(json!({ "emails": [email] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let inv = t.sim_ok("/invites").await;
    let inv = inv.as_array().expect("invites");
    assert_eq!(inv.len(), 1, "{inv:?}");
    assert_eq!(inv[0]["email"], email);
    assert!(
        !t.sim_ok("/users")
            .await
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["email"] == email)
    );
    let before = t.sim_ok("/clock").await["now"]
        .as_str()
        .unwrap()
        .to_string();
    let moved = t
        .sim(
            Method::POST,
            "/clock/advance",
            Some(json!({ "seconds": 2 })),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK);
    assert!(moved.body["now"].as_str().unwrap() > before.as_str());
    assert_eq!(t.sim_ok("/invites").await, json!([]));
    let users = t.sim_ok("/users").await;
    let invited = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .cloned()
        .expect("the invite became a user");
    assert_eq!(invited["kind"], "licensed");

    // ---- Jira user creation ----
    let r = t
        .api(
            Method::POST,
            "/rest/api/3/user",
            Some(json!({ "emailAddress": "jira.made@customer-example.com", "products": [] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let users = t.sim_ok("/users").await;
    let made = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "jira.made@customer-example.com")
        .cloned()
        .expect("created user listed");
    assert_eq!(made["account_id"], r.body["accountId"]);
    assert_eq!(made["kind"], "unlicensed");
}

// ------------------------------------------------------------------ content edits

#[tokio::test]
async fn content_edits_through_sim_show_in_the_real_api() {
    let t = T::start().await;
    let key = "KB";
    let (space_id, home, internal, other_space_page) = t.h.state().read(|s| {
        let sp = s.space_by_key(key).expect("KB");
        let internal = s
            .groups
            .values()
            .find(|g| g.name == "kb-internal")
            .expect("kb-internal")
            .id
            .clone();
        let other = s
            .pages
            .values()
            .find(|p| p.space_id != sp.id)
            .expect("a page in another space")
            .id;
        (sp.id, sp.homepage_id.expect("home page"), internal, other)
    });

    // ---- create ----
    let create = |title: &str, parent: Option<u64>| {
        json!({
            "space_key": key,
            "parent_id": parent,
            "title": title,
            "body": format!("<p>{title} body</p>"),
            "labels": ["fresh-label"],
        })
    };
    let r = t
        .sim(Method::POST, "/pages", Some(create("Control A", None)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let a: u64 = r.body["id"].as_str().unwrap().parse().unwrap();
    let r = t
        .sim(Method::POST, "/pages", Some(create("Control B", None)))
        .await;
    let b: u64 = r.body["id"].as_str().unwrap().parse().unwrap();
    let dup = t
        .sim(Method::POST, "/pages", Some(create("Control A", None)))
        .await;
    assert!(dup.status.is_client_error(), "{}", dup.status);

    let page = t
        .api_ok(&format!("/wiki/api/v2/pages/{a}?body-format=storage"))
        .await;
    assert_eq!(page["title"], "Control A");
    assert_eq!(page["spaceId"], space_id.to_string());
    assert_eq!(page["parentId"], home.to_string());
    assert_eq!(page["version"]["number"], 1);
    assert_eq!(page["body"]["storage"]["value"], "<p>Control A body</p>");
    let labels = t.api_ok(&format!("/wiki/api/v2/pages/{a}/labels")).await;
    assert_eq!(labels["results"][0]["name"], "fresh-label", "{labels}");
    let label_id = labels["results"][0]["id"].as_str().unwrap().to_string();
    let tagged = t
        .api_ok(&format!("/wiki/api/v2/labels/{label_id}/pages"))
        .await;
    assert_eq!(ids(&tagged), set(&[a, b]));
    let in_space = t
        .api_ok(&format!("/wiki/api/v2/spaces/{space_id}/pages?limit=250"))
        .await;
    assert!(ids(&in_space).contains(&a.to_string()));
    let sim_view = t.sim_ok(&format!("/pages/{a}")).await;
    assert_eq!(sim_view["title"], "Control A");
    assert_eq!(sim_view["labels"], json!(["fresh-label"]));

    // ---- edit ----
    let r = t
        .sim(
            Method::PUT,
            &format!("/pages/{a}"),
            Some(json!({ "title": "Control A2", "body": "<p>second</p>" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 2);
    let page = t
        .api_ok(&format!("/wiki/api/v2/pages/{a}?body-format=storage"))
        .await;
    assert_eq!(page["title"], "Control A2");
    assert_eq!(page["version"]["number"], 2);
    assert_eq!(page["body"]["storage"]["value"], "<p>second</p>");

    // ---- move ----
    let r = t
        .sim(
            Method::POST,
            &format!("/pages/{a}/move"),
            Some(json!({ "parent_id": b.to_string() })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let page = t.api_ok(&format!("/wiki/api/v2/pages/{a}")).await;
    assert_eq!(page["parentId"], b.to_string());
    assert_eq!(page["version"]["number"], 3);
    let kids = t.api_ok(&format!("/wiki/api/v2/pages/{b}/children")).await;
    assert_eq!(ids(&kids), set(&[a]));
    // Newest first, so the pages just made or changed are on the first page of results.
    let cql = format!(
        "/wiki/rest/api/content/search?cql={}&limit=25&expand=ancestors,metadata.labels,restrictions.read.restrictions.group",
        enc(&format!(
            "space = \"{key}\" AND type = page ORDER BY lastmodified DESC"
        ))
    );
    let v1 = t.api_ok(&cql).await;
    let item = v1["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"].as_str() == Some(&*a.to_string()))
        .cloned()
        .expect("moved page in v1 content search");
    let ancestors: Vec<&str> = item["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ancestors.last(), Some(&b.to_string().as_str()), "{item}");
    assert_eq!(
        item["metadata"]["labels"]["results"][0]["name"],
        "fresh-label"
    );
    for (target, body) in [
        (a, json!({ "parent_id": a })),
        (b, json!({ "parent_id": a })),
        (a, json!({ "parent_id": other_space_page })),
    ] {
        let r = t
            .sim(Method::POST, &format!("/pages/{target}/move"), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    }

    // ---- restrictions (inherited by descendants) ----
    let r = t
        .sim(
            Method::POST,
            &format!("/pages/{b}/restrictions"),
            Some(json!({ "group": internal })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let rr = t
        .api_ok(&format!(
            "/wiki/rest/api/content/{b}/restriction/byOperation/read"
        ))
        .await;
    assert_eq!(
        rr["restrictions"]["group"]["results"][0]["id"], internal,
        "{rr}"
    );
    assert_eq!(
        t.sim_ok(&format!("/pages/{a}")).await["effectively_restricted"],
        true
    );
    // The service account is in kb-internal; the reader is not, and loses the child too.
    for p in [a, b] {
        assert_eq!(
            t.api(Method::GET, &format!("/wiki/api/v2/pages/{p}"), None)
                .await
                .status,
            StatusCode::OK
        );
        let r = t
            .send(
                Some(&t.reader),
                Method::GET,
                &format!("/wiki/api/v2/pages/{p}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "page {p}");
    }
    let v1 = t.api_ok(&cql).await;
    let item = v1["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"].as_str() == Some(&*b.to_string()))
        .cloned()
        .unwrap();
    assert_eq!(
        item["restrictions"]["read"]["restrictions"]["group"]["results"][0]["id"],
        internal
    );
    let bad = t
        .sim(
            Method::POST,
            &format!("/pages/{b}/restrictions"),
            Some(json!({})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let r = t
        .sim(
            Method::DELETE,
            &format!("/pages/{b}/restrictions"),
            Some(json!({ "group": internal })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let rr = t
        .api_ok(&format!(
            "/wiki/rest/api/content/{b}/restriction/byOperation/read"
        ))
        .await;
    assert_eq!(rr["restrictions"]["group"]["results"], json!([]), "{rr}");
    let r = t
        .send(
            Some(&t.reader),
            Method::GET,
            &format!("/wiki/api/v2/pages/{a}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // ---- labels ----
    let r = t
        .sim(
            Method::POST,
            &format!("/pages/{a}/labels"),
            Some(json!({ "name": "Added-Label" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "added-label");
    let added = r.body["id"].as_str().unwrap().to_string();
    let labels = t.api_ok(&format!("/wiki/api/v2/pages/{a}/labels")).await;
    assert_eq!(ids(&labels), set(&[&label_id, &added]));
    let tagged = t
        .api_ok(&format!("/wiki/api/v2/labels/{added}/pages"))
        .await;
    assert_eq!(ids(&tagged), set(&[a]));
    let r = t
        .sim(
            Method::DELETE,
            &format!("/pages/{a}/labels"),
            Some(json!({ "name": "fresh-label" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let labels = t.api_ok(&format!("/wiki/api/v2/pages/{a}/labels")).await;
    assert_eq!(ids(&labels), set(&[&added]));
    let tagged = t
        .api_ok(&format!("/wiki/api/v2/labels/{label_id}/pages"))
        .await;
    assert_eq!(ids(&tagged), set(&[b]));

    // ---- delete ----
    let r = t.sim(Method::DELETE, &format!("/pages/{a}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.api(Method::GET, &format!("/wiki/api/v2/pages/{a}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.sim_ok(&format!("/pages/{a}")).await["status"], "trashed");
    let kids = t.api_ok(&format!("/wiki/api/v2/pages/{b}/children")).await;
    assert_eq!(ids(&kids), BTreeSet::new());
    assert_eq!(
        t.sim(Method::DELETE, &format!("/pages/{a}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.sim(Method::GET, "/pages/999999999", None).await.status,
        StatusCode::NOT_FOUND
    );
}

/// `Sim::hold_after`: calls to one endpoint beyond the first n wait, counted and unanswered,
/// until `Sim::release`; `Sim::in_flight` counts them until they are answered or dropped.
#[tokio::test]
async fn held_calls_wait_until_released() {
    let t = T::start().await;
    let sim = t.h.state();
    let group_exists = |name: &str| sim.read(|s| s.groups.values().any(|g| g.name == name));
    let create = |name: &str| {
        reqwest::Client::new()
            .post(format!("{}/wiki/rest/api/group", t.h.base_url()))
            .basic_auth(&t.admin.email, Some(&t.admin.api_token))
            .json(&json!({ "name": name }))
            .send()
    };
    async fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    sim.hold_after("POST /wiki/rest/api/group", 1);
    let first = create("held-first").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = tokio::spawn(create("held-second"));
    until("the second call to be held", || sim.held() == 1).await;
    assert_eq!(sim.in_flight(), 1);
    assert!(!group_exists("held-second"), "a held call is not served");
    assert_eq!(t.h.stats().by_endpoint["POST /wiki/rest/api/group"], 2);
    // Other endpoints are not held.
    t.api_ok("/wiki/api/v2/spaces").await;
    assert!(!second.is_finished());
    sim.release();
    assert_eq!(second.await.unwrap().unwrap().status(), StatusCode::CREATED);
    assert!(group_exists("held-second"));
    until("nothing in flight", || sim.in_flight() == 0).await;
    assert_eq!(sim.held(), 0);

    // A held call whose client gave up leaves the flight count once the release ends it.
    sim.hold_after("POST /wiki/rest/api/group", 0);
    let gave_up = tokio::spawn(create("held-abandoned"));
    until("the call to be held", || sim.held() == 1).await;
    gave_up.abort();
    assert!(gave_up.await.unwrap_err().is_cancelled());
    assert_eq!(sim.in_flight(), 1);
    sim.release();
    until("nothing in flight", || sim.in_flight() == 0).await;
    assert!(
        group_exists("held-abandoned"),
        "released, it is served even though its client went away"
    );
    // After the release nothing is held.
    assert_eq!(
        create("not-held").await.unwrap().status(),
        StatusCode::CREATED
    );

    // Dropped instead of released: the connection closes unanswered and nothing is served.
    sim.hold_after("POST /wiki/rest/api/group", 0);
    let dropped = tokio::spawn(create("held-dropped"));
    until("the call to be held", || sim.held() == 1).await;
    sim.drop_held();
    let answer = dropped.await.unwrap();
    assert!(answer.is_err(), "{answer:?}");
    until("nothing in flight", || sim.in_flight() == 0).await;
    assert!(!group_exists("held-dropped"));
    assert_eq!(
        create("after-drop").await.unwrap().status(),
        StatusCode::CREATED
    );
}
