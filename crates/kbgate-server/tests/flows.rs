//! Sign-in flows, sessions, headers and bad input, over HTTP.

mod common;

use common::ids::*;
use common::*;

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn return_to_never_leaves_the_site() {
    let app = spawn_app().await;
    for bad in [
        "//evil.com",
        "https://evil.com",
        "http://evil.com/x",
        "/\\evil.com",
        "\\\\evil.com",
        "%2F%2Fevil.com",
        "/%2F%2Fevil.com",
        "/%5Cevil.com",
        "/%255C%255Cevil.com",
        "/%252525252F%252525252Fevil.com",
        "/%25252525255Cevil.com",
        "//evil.com/%2e%2e",
        "/\r\nLocation: https://evil.com",
        "javascript:alert(1)",
        "",
    ] {
        let token = mint_hs256(&claims("alice@acme.com"));
        let resp = app
            .client
            .get(app.url("/auth/embed"))
            .query(&[("token", token.as_str()), ("return_to", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{bad:?}");
        assert_eq!(location(&resp), "/", "{bad:?}");
    }
    let token = mint_hs256(&claims("alice@acme.com"));
    let resp = app
        .client
        .post(app.url("/auth/embed"))
        .form(&[
            ("token", token.as_str()),
            ("return_to", "/pages/1001?x=1#intro"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&resp), "/pages/1001?x=1#intro");
}

#[tokio::test]
async fn back_channel_handover_code_is_single_use() {
    let app = spawn_app().await;
    let post = |key: &str, body: serde_json::Value| {
        app.client
            .post(app.url("/api/v1/handover"))
            .header("authorization", format!("Bearer {key}"))
            .json(&body)
            .send()
    };
    let r = post("wrong", serde_json::json!({"email": "alice@acme.com"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .post(app.url("/api/v1/handover"))
        .json(&serde_json::json!({"email": "alice@acme.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = post(API_KEY, serde_json::json!({"email": "dan@gmail.com"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(API_KEY, serde_json::json!({"email": "nope"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post(API_KEY, serde_json::json!({"nothing": 1}))
        .await
        .unwrap();
    assert!(r.status().is_client_error());

    let r = post(
        API_KEY,
        serde_json::json!({"email": "alice@acme.com", "return_to": "/pages/1002"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let url = v["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&app.base) && url.contains("/auth/code?code="));
    assert!(v["expires_in"].as_u64().unwrap() <= 60);

    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/pages/1002");
    let cookie = session_cookie(&r).unwrap();
    assert_eq!(app.get("/pages/1002", Some(&cookie)).await.status(), 200);
    // Second use.
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(session_cookie(&r).is_none());
    // Made-up codes.
    for code in ["", "x", &"A".repeat(43)] {
        let r = app.get(&format!("/auth/code?code={code}"), None).await;
        assert_eq!(r.status(), 401);
    }
}

fn outbox_links(app: &TestApp) -> Vec<String> {
    let mut links = Vec::new();
    for entry in std::fs::read_dir(app.outbox.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            if line.contains("/auth/email/confirm?code=") {
                links.push(line.trim().to_owned());
            }
        }
    }
    links
}

async fn wait_for_mail(app: &TestApp, count: usize) -> Vec<String> {
    // The mail is written by a background task; poll for it (not a timing assertion).
    for _ in 0..200 {
        let links = outbox_links(app);
        if links.len() >= count {
            return links;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    outbox_links(app)
}

#[tokio::test]
async fn magic_link_no_enumeration_single_use() {
    let app = spawn_app().await;
    let ask = |email: &str| {
        app.client
            .post(app.url("/auth/email"))
            .form(&[("email", email), ("return_to", "/spaces/KB")])
            .send()
    };
    let allowed = ask("alice@acme.com").await.unwrap();
    let allowed_status = allowed.status();
    let allowed_body = allowed.text().await.unwrap();
    for other in ["bob@nobody.org", "dan@gmail.com", "carol@old.com"] {
        let r = ask(other).await.unwrap();
        assert_eq!(r.status(), allowed_status);
        let body = r.text().await.unwrap();
        assert_eq!(body, allowed_body, "answer differs for {other}");
    }
    let links = wait_for_mail(&app, 1).await;
    assert_eq!(links.len(), 1, "exactly one mail, for the allowed address");
    let link = &links[0];
    assert!(link.starts_with(&app.base));

    // GET only shows a confirmation form (mail scanners must not burn the link).
    let r = app.client.get(link).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(session_cookie(&r).is_none());
    let link_url = url::Url::parse(link).unwrap();
    let param = |name: &str| {
        link_url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let code = param("code").expect("the link carries its code");
    assert_eq!(
        param("return_to").as_deref(),
        Some("/spaces/KB"),
        "and the page it leads to"
    );
    let form = app.confirm_form(&code).await;
    let confirm = || {
        app.client
            .post(app.url("/auth/email/confirm"))
            .header("cookie", &form.cookie)
            .form(&[("code", code.as_str()), ("csrf", form.csrf.as_str())])
            .send()
    };
    let r = confirm().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/spaces/KB");
    assert!(session_cookie(&r).is_some());
    let cookie = session_cookie(&r).unwrap();
    let r = confirm().await.unwrap();
    assert_eq!(r.status(), 401, "a magic link works once");

    // The used link, opened again by the person now signed in: to the page, not to sign-in.
    let again = app
        .client
        .post(app.url("/auth/email/confirm"))
        .header("cookie", format!("{}; {cookie}", form.cookie))
        .form(&[
            ("code", code.as_str()),
            ("csrf", form.csrf.as_str()),
            ("return_to", "/spaces/KB"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(location(&again), "/spaces/KB");
    assert!(session_cookie(&again).is_none(), "no new session");
    // Only to a local page, whatever the form says.
    let evil = app
        .client
        .post(app.url("/auth/email/confirm"))
        .header("cookie", format!("{}; {cookie}", form.cookie))
        .form(&[
            ("code", code.as_str()),
            ("csrf", form.csrf.as_str()),
            ("return_to", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 303);
    assert_eq!(location(&evil), "/");
}

#[tokio::test]
async fn magic_link_expires() {
    let app = spawn_app().await;
    // An expired magic-link code, as the store would hold it after 15 minutes.
    let code = "E".repeat(43);
    let now = chrono::Utc::now();
    app.store
        .create_code(&kbgate_store::CodeRecord {
            code_hash: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(code.as_bytes())),
            purpose: "magic-link".into(),
            email: "alice@acme.com".into(),
            return_to: Some("/".into()),
            created_at: now - chrono::Duration::minutes(16),
            expires_at: now - chrono::Duration::minutes(1),
        })
        .await
        .unwrap();
    let r = app.confirm_magic_link(&code).await;
    assert_eq!(r.status(), 401);
    assert!(session_cookie(&r).is_none());
}

#[tokio::test]
async fn magic_link_is_rate_limited_per_email() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = app
            .post_form("/auth/email", &[("email", "alice@acme.com")])
            .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert_eq!(statuses[3], 429);
    // A different address from the same client is still served (per-client limit is higher).
    let r = app
        .post_form("/auth/email", &[("email", "bob@acme.com")])
        .await;
    assert_eq!(r.status(), 200);
    // Malformed input: clean 400.
    let r = app
        .post_form("/auth/email", &[("email", "not an email")])
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn magic_link_is_rate_limited_per_client() {
    let app = spawn_app().await;
    let mut limited = false;
    for i in 0..25 {
        let r = app
            .post_form("/auth/email", &[("email", format!("user{i}@nobody.org"))])
            .await;
        if r.status() == 429 {
            limited = true;
            assert!(i >= 20, "limited too early at {i}");
            break;
        }
    }
    assert!(limited);
}

/// Sends magic-link requests from "client" `xff` (as a reverse proxy would name it) until
/// refused; returns how many were accepted (at most 25).
async fn accepted_from(app: &TestApp, xff: &str, tag: &str) -> usize {
    for i in 0..25 {
        let r = app
            .client
            .post(app.url("/auth/email"))
            .header("x-forwarded-for", xff)
            .form(&[("email", format!("{tag}{i}@nobody.org"))])
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            return i;
        }
        assert_eq!(r.status(), 200);
    }
    25
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let app = spawn_app_with(
        |p| p.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()],
        hs256_verifier(),
    )
    .await;
    assert_eq!(accepted_from(&app, "198.51.100.1", "a").await, 20);
    // Another customer behind the same proxy is not refused for the first one's requests...
    assert_eq!(accepted_from(&app, "198.51.100.2", "b").await, 20);
    // ...and the first cannot escape its limit by prepending an address of its choice.
    assert_eq!(
        accepted_from(&app, "203.0.113.50, 198.51.100.1", "c").await,
        0
    );
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_header_changes_nothing() {
    let app = spawn_app().await;
    assert_eq!(accepted_from(&app, "198.51.100.1", "a").await, 20);
    // Every request comes from the same peer: a made-up header does not open a new bucket.
    assert_eq!(accepted_from(&app, "198.51.100.2", "b").await, 0);
}

#[tokio::test]
async fn logout_ends_the_session_and_needs_the_form_token() {
    let app = spawn_app().await;
    let cookie = app.sign_in("alice@acme.com").await;
    let home = app.get("/", Some(&cookie)).await.text().await.unwrap();
    let csrf = home
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    // Without the token, or from another origin: refused, session intact.
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.com")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A browser that says the post comes from another site is refused even with the token.
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.get("/", Some(&cookie)).await.status(), 200);
    // Proper sign-out, as Chromium sends it: our `Referrer-Policy: no-referrer` makes the
    // browser serialise the form post's origin as `null` (the browser test found this).
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .header("cookie", &cookie)
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The old cookie is dead even if the browser kept it.
    assert_eq!(app.get("/", Some(&cookie)).await.status(), 401);
}

#[tokio::test]
async fn sign_in_rotates_the_session() {
    let app = spawn_app().await;
    let first = app.sign_in("alice@acme.com").await;
    let token = mint_hs256(&claims("alice@acme.com"));
    let r = app
        .client
        .get(app.url("/auth/embed"))
        .header("cookie", &first)
        .query(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    let second = session_cookie(&r).unwrap();
    assert_ne!(first, second);
    assert_eq!(app.get("/", Some(&first)).await.status(), 401);
    assert_eq!(app.get("/", Some(&second)).await.status(), 200);
}

#[tokio::test]
async fn policy_change_applies_to_existing_sessions() {
    let app = spawn_app().await;
    let cookie = app.sign_in("alice@acme.com").await;
    assert_eq!(
        app.get(&format!("/pages/{WELCOME}"), Some(&cookie))
            .await
            .status(),
        200
    );
    app.policy.replace(policy_without_acme());
    // Refused on the next request, told why (also when the reload's sweep ended it first) ...
    let status = app
        .get(&format!("/pages/{WELCOME}"), Some(&cookie))
        .await
        .status();
    assert_eq!(status, 403);
    // ... and the session is over: removing a domain ends its sessions.
    assert_eq!(app.get("/api/v1/spaces", Some(&cookie)).await.status(), 403);
    let live = app
        .store
        .active_session(&session_hash(&cookie), chrono::Utc::now())
        .await
        .unwrap();
    assert!(live.is_none(), "the session ended");
    app.policy.replace(policy());
    // Putting the domain back does not revive the old cookie; signing in again works.
    assert_eq!(
        app.get(&format!("/pages/{WELCOME}"), Some(&cookie))
            .await
            .status(),
        401
    );
    let cookie = app.sign_in("alice@acme.com").await;
    assert_eq!(app.get("/", Some(&cookie)).await.status(), 200);
    // Revocation by domain, as the CLI does it.
    assert_eq!(
        app.store
            .revoke_sessions_by_domain("acme.com")
            .await
            .unwrap(),
        1
    );
    assert_eq!(app.get("/", Some(&cookie)).await.status(), 401);
}

/// A domain removed and put back before its people made a request: their sessions ended
/// all the same (the reload's sweep, and until it is done, the check of every policy
/// installed since), so old cookies stay dead. Every request is still decided by the policy.
#[tokio::test]
async fn a_domain_removed_and_restored_does_not_revive_idle_sessions() {
    let app = spawn_app().await;
    let idle = app.sign_in("alice@acme.com").await;
    let other = app.sign_in("bob@acme.com").await;
    for c in [&idle, &other] {
        assert_eq!(app.get("/", Some(c)).await.status(), 200);
    }
    // Removed and restored at once: no request in between.
    app.policy.replace(policy_without_acme());
    app.policy.replace(policy());
    for c in [&idle, &other] {
        let status = app.get("/", Some(c)).await.status();
        assert!(status == 401 || status == 403, "{status}");
        assert_eq!(app.get("/", Some(c)).await.status(), 401);
    }
    // The sweep ended them in the store, too (so every instance sharing it agrees).
    let mut ended = false;
    for _ in 0..200 {
        if app
            .store
            .active_session(&session_hash(&idle), chrono::Utc::now())
            .await
            .unwrap()
            .is_none()
        {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ended);
    // A session of a domain the change did not touch lives on; new sign-ins work.
    let fresh = app.sign_in("alice@acme.com").await;
    assert_eq!(app.get("/", Some(&fresh)).await.status(), 200);
}

/// A session nobody used while its domain was out: the sweep ends it in the store without
/// any request, so a later restore (here: in another process's view) finds nothing to
/// revive.
#[tokio::test]
async fn the_sweep_ends_sessions_a_new_policy_refuses_without_a_request() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@acme.com").await;
    let hash = session_hash(&alice);
    app.policy.replace(policy_without_acme());
    let mut ended = false;
    for _ in 0..200 {
        if app
            .store
            .active_session(&hash, chrono::Utc::now())
            .await
            .unwrap()
            .is_none()
        {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        ended,
        "the removed domain's session is still active in the store"
    );
    app.policy.replace(policy());
    assert_eq!(app.get("/", Some(&alice)).await.status(), 401);
}

#[tokio::test]
async fn headers_and_attachments_are_safe() {
    let app = spawn_app().await;
    let cookie = app.sign_in("alice@acme.com").await;
    let r = app.get(&format!("/pages/{WELCOME}"), Some(&cookie)).await;
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let body = r.text().await.unwrap();
    assert!(body.contains("/attachments/1001/guide.pdf"));
    assert!(body.contains("href=\"#intro\""), "table of contents");
    assert!(
        body.contains("aria-current=\"page\""),
        "tree marks the current page"
    );

    let r = app.get("/attachments/1001/guide.pdf", Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PDF_BYTES);
    for (path, bytes) in [
        ("/attachments/1001/evil.html", HTML_BYTES),
        ("/attachments/1001/logo.svg", SVG_BYTES),
        ("/attachments/id/9002", HTML_BYTES),
    ] {
        let r = app.get(path, Some(&cookie)).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert!(
            r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment;")
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("sandbox")
        );
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes);
    }
    let r = app.get("/static/style.css", None).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn bad_input_gets_clean_4xx() {
    let app = spawn_app().await;
    let cookie = app.sign_in("alice@acme.com").await;
    let c = Some(cookie.as_str());
    // Unknown routes and ids.
    let r = app.get("/nope", c).await;
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let r = app
        .client
        .get(app.url("/nope"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], 404);
    for path in [
        "/pages/%00",
        "/pages/..%2F..%2Fetc%2Fpasswd",
        "/pages/abc'%20OR%201=1",
        "/spaces/%3Cscript%3E",
        "/attachments/1001/..%2F..%2Fsecret",
        "/search?offset=-1",
        "/search?offset=99999999999",
        "/api/v1/search?limit=abc",
    ] {
        let r = app.get(path, c).await;
        let s = r.status().as_u16();
        assert!((400..500).contains(&s), "{path}: {s}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("<script>"), "{path} echoes input");
        assert!(
            !body.to_lowercase().contains("deserialize"),
            "{path} leaks internals"
        );
    }
    // Overlong search.
    let r = app.get(&format!("/search?q={}", "a".repeat(500)), c).await;
    assert_eq!(r.status(), 400);
    // Oversized bodies.
    let r = app
        .post_form("/auth/embed", &[("token", "x".repeat(100_000))])
        .await;
    assert_eq!(r.status(), 413);
    let r = app
        .client
        .post(app.url("/api/v1/handover"))
        .header("authorization", format!("Bearer {API_KEY}"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    // Health.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    assert_eq!(app.get("/readyz", None).await.status(), 200);
}

#[tokio::test]
async fn search_highlights_safely() {
    let app = spawn_app().await;
    let cookie = app.sign_in("alice@acme.com").await;
    let r = app.get("/search?q=bravo", Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("<mark>bravo</mark>"), "{body}");
    let r = app.get("/search?q=%3Cscript%3E", Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    assert!(!r.text().await.unwrap().contains("<script>"));
}

#[tokio::test]
async fn signed_out_pages_offer_sign_in_and_return() {
    let app = spawn_app().await;
    let r = app.get("/pages/1001", None).await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = r.text().await.unwrap();
    assert!(
        body.contains("/auth/email?return_to=%2Fpages%2F1001"),
        "{body}"
    );
    assert!(!body.contains("Welcome"), "no title before sign-in");
    let r = app.get("/auth/email?return_to=%2Fpages%2F1001", None).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("value=\"/pages/1001\""));
}

#[tokio::test]
async fn the_per_email_limit_counts_every_spelling_of_one_mailbox() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for e in [
        "alice@acme.com",
        "Alice@acme.com",
        "ALICE@ACME.COM",
        "aLiCe@acme.com",
        "alice+kb@acme.com",
    ] {
        let r = app.post_form("/auth/email", &[("email", e)]).await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn ipv6_clients_are_limited_per_64() {
    let app = spawn_app_with(
        |p| p.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()],
        hs256_verifier(),
    )
    .await;
    // One host, a fresh address of its /64 for every request.
    let mut accepted = 0;
    for i in 1..=25u32 {
        let r = app
            .client
            .post(app.url("/auth/email"))
            .header("x-forwarded-for", format!("2001:db8:1:2::{i:x}"))
            .form(&[("email", format!("v6user{i}@nobody.org"))])
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            break;
        }
        assert_eq!(r.status(), 200);
        accepted += 1;
    }
    assert_eq!(accepted, 20, "one /64 is one client");
    // The neighbouring /64 is another client.
    assert_eq!(accepted_from(&app, "2001:db8:1:3::1", "n").await, 20);
}

/// Login CSRF: another site posts the attacker's own magic link from the victim's browser,
/// which would sign the victim in as the attacker. Refused, and the code is not used up.
#[tokio::test]
async fn magic_link_confirmation_refuses_cross_site_posts() {
    let app = spawn_app().await;
    let ask = app
        .post_form("/auth/email", &[("email", "mallory@acme.com")])
        .await;
    assert_eq!(ask.status(), 200);
    let links = wait_for_mail(&app, 1).await;
    let code = links[0].split("code=").nth(1).unwrap().to_owned();
    let post = |headers: &[(&str, &str)], form: &[(&str, &str)]| {
        let mut rb = app.client.post(app.url("/auth/email/confirm"));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb.form(form).send()
    };
    // The attacker's page posts the bare code (it can read neither our cookie nor a token
    // derived from it): whatever the headers, no session.
    let bare = [("code", code.as_str())];
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("origin", "null"), ("sec-fetch-site", "cross-site")],
        vec![("origin", "null")],
        vec![],
    ] {
        let r = post(&headers, &bare).await.unwrap();
        assert_eq!(r.status(), 403, "{headers:?}");
        assert!(session_cookie(&r).is_none(), "{headers:?}");
    }
    // The attacker's own token and cookie, fetched by the attacker, do not travel: a token
    // from one browser is worthless with another's cookie, and a cross-site post is refused
    // even with a matching pair.
    let attacker = app.confirm_form(&code).await;
    let victim = app.confirm_form(&code).await;
    let r = post(
        &[("cookie", victim.cookie.as_str())],
        &[("code", code.as_str()), ("csrf", attacker.csrf.as_str())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(
        &[
            ("cookie", attacker.cookie.as_str()),
            ("origin", "https://evil.example"),
        ],
        &[("code", code.as_str()), ("csrf", attacker.csrf.as_str())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    // The link still works for the browser that opened it, from this site.
    let origin = app.base.clone();
    let r = post(
        &[
            ("cookie", victim.cookie.as_str()),
            ("origin", origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
        &[("code", code.as_str()), ("csrf", victim.csrf.as_str())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert!(session_cookie(&r).is_some());
}
