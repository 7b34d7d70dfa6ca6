//! The page-view route is answered without the router (`hot.rs`, for throughput); a page
//! id written with a percent-escape (`/pages/100%31`) is not taken by that direct route and
//! goes through the router, whose `{id}` segment decodes it to the same id. So each request
//! below is asked both ways, and the two answers must be the same: status, every header but
//! `date` and `content-length`, and body — for readers who may and may not read the page,
//! without a session, with a forged one, as HTML and as JSON. (A sign-in prompt leads back to
//! the path asked for, so there the escaped path is read as the plain one.)

mod common;

use common::ids::*;
use common::*;

/// `/pages/{id}` with its last character percent-escaped (taken by the router only).
fn escaped(id: &str) -> String {
    let (head, last) = id.split_at(id.len() - 1);
    let byte = last.as_bytes()[0];
    format!("/pages/{head}%{byte:02X}")
}

async fn answer(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    accept: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let mut rb = app.client.get(app.url(path));
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    if let Some(a) = accept {
        rb = rb.header("accept", a);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let mut headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str() != "date" && k.as_str() != "content-length")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    headers.sort();
    (status, headers, resp.text().await.unwrap())
}

#[tokio::test]
async fn the_direct_page_route_answers_as_the_router_does() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@acme.com").await;
    let partner = app.sign_in("pat@partner.com").await;
    let forged = "kbgate_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned();
    let viewers: [(&str, Option<&str>); 4] = [
        ("alice@acme.com", Some(alice.as_str())),
        ("pat@partner.com (labels)", Some(partner.as_str())),
        ("no session", None),
        ("forged session", Some(forged.as_str())),
    ];
    let mut compared = 0;
    let mut served = 0;
    for id in [
        WELCOME,
        RESTRICTED,
        UNDER_RESTRICTED,
        PUBLIC_FAQ,
        HR,
        "999999",
    ] {
        for (who, cookie) in viewers {
            for accept in [None, Some("application/json")] {
                let direct = answer(&app, &format!("/pages/{id}"), cookie, accept).await;
                let mut routed = answer(&app, &escaped(id), cookie, accept).await;
                // The way back after signing in names the path asked for (form-encoded).
                let back = |p: &str| p.replace('%', "%25").replace('/', "%2F");
                routed.2 = routed
                    .2
                    .replace(&back(&escaped(id)), &back(&format!("/pages/{id}")));
                assert_eq!(
                    direct, routed,
                    "page {id} for {who} (accept {accept:?}): direct and routed answers differ"
                );
                compared += 1;
                served += usize::from(direct.0 == 200);
            }
        }
    }
    assert_eq!(compared, 48);
    // alice reads WELCOME and PUBLIC_FAQ; pat reads PUBLIC_FAQ only (labelled public).
    assert_eq!(served, 6, "pages served in all");
}
