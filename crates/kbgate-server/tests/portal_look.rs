//! The portal as a customer sees it: the brand on every page (and its files served safely),
//! a new brand on reload, the start page and space home, honest refusals, and sign-in led
//! by the host app (`[embed] login_url`, magic links off).

mod common;

use common::ids::*;
use common::*;
use kbgate_config::{BrandConfig, BrandImage, CssColor, FooterLink};

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

async fn html(app: &TestApp, path: &str, cookie: Option<&str>) -> (u16, String) {
    let mut rb = app.client.get(app.url(path)).header("accept", "text/html");
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The value of the first `attr="…"` following `after` in `html`.
fn attr_after<'a>(html: &'a str, after: &str, attr: &str) -> &'a str {
    let rest = &html[html
        .find(after)
        .unwrap_or_else(|| panic!("{after} in {html}"))..];
    let key = format!("{attr}=\"");
    let start = rest.find(&key).unwrap() + key.len();
    let end = start + rest[start..].find('"').unwrap();
    &rest[start..end]
}

fn acme_brand(dir: &std::path::Path) -> BrandConfig {
    let logo = dir.join("logo.svg");
    std::fs::write(
        &logo,
        "<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
    )
    .unwrap();
    let css = dir.join("extra.css");
    std::fs::write(&css, ".brand { letter-spacing: .02em; }").unwrap();
    BrandConfig {
        site_name: "Acme Help & Docs".into(),
        title_name: "Acme".into(),
        logo: Some(BrandImage::File(logo)),
        logo_dark: None,
        favicon: None,
        accent: Some(CssColor::parse("#b3261e").unwrap()),
        accent_dark: Some(CssColor::parse("#ffb4ab").unwrap()),
        footer_links: vec![FooterLink {
            text: "Privacy".into(),
            url: "https://acme.example/privacy".parse().unwrap(),
        }],
        support_email: Some(kbgate_policy::Email::parse("help@acme.example").unwrap()),
        support_url: None,
        custom_css: Some(css),
    }
}

#[tokio::test]
async fn the_brand_frames_every_page_and_its_files_are_served_safely() {
    let dir = tempfile::tempdir().unwrap();
    let brand = acme_brand(dir.path());
    let app = spawn_app_with(move |p| p.brand = brand, hs256_verifier()).await;
    let cookie = app.sign_in("alice@acme.com").await;

    for (path, cookie, status) in [
        ("/auth/email", None, 200),
        ("/", Some(cookie.as_str()), 200),
        (
            &format!("/pages/{WELCOME}") as &str,
            Some(cookie.as_str()),
            200,
        ),
        ("/spaces/KB", Some(cookie.as_str()), 200),
        ("/search?q=alpha", Some(cookie.as_str()), 200),
        ("/nowhere", Some(cookie.as_str()), 404),
    ] {
        let (s, body) = html(&app, path, cookie).await;
        assert_eq!(s, status, "{path}");
        assert!(body.contains("Acme Help &#38; Docs"), "{path}: site name");
        assert!(body.contains(" · Acme</title>"), "{path}: title name");
        assert!(!body.contains("Knowledge base"), "{path}: no default name");
        assert!(
            body.contains("<a href=\"https://acme.example/privacy\">Privacy</a>"),
            "{path}: footer link"
        );
        assert!(
            body.contains("href=\"mailto:help@acme.example\""),
            "{path}: support contact"
        );
        assert!(
            body.contains("<link rel=\"icon\" href=\"/static/brand/favicon?v="),
            "{path}"
        );
        assert!(
            body.contains("<img src=\"/static/brand/logo?v="),
            "{path}: logo"
        );
    }

    // The stylesheet carries the accent colours; its URL changes with its content.
    let (_, page) = html(&app, "/", Some(&cookie)).await;
    let sheet = attr_after(&page, "rel=\"stylesheet\"", "href").replace("&#38;", "&");
    assert!(sheet.starts_with("/static/brand/style.css?v="), "{sheet}");
    let r = app.get(&sheet, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let css = r.text().await.unwrap();
    assert!(css.contains(":root { --accent: #b3261e; }"), "{css}");
    assert!(css.contains("--accent: #ffb4ab"), "dark accent");
    // The custom stylesheet comes after the portal's own, from our origin (CSP-safe).
    let custom_at = page
        .find("/static/brand/custom.css?v=")
        .expect("custom CSS linked");
    assert!(custom_at > page.find(&sheet).unwrap());
    let custom = attr_after(&page, "/static/brand/style.css", "href");
    assert!(
        custom.starts_with("/static/brand/custom.css?v="),
        "{custom}"
    );
    let r = app.get(custom, None).await;
    assert_eq!(r.text().await.unwrap(), ".brand { letter-spacing: .02em; }");

    // The logo, an SVG with a script attribute, is served under a sandboxing CSP.
    let logo = attr_after(&page, "<img", "src");
    let r = app.get(logo, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // Only the brand's own files: no path can reach anything else.
    for bad in [
        "/static/brand/../Cargo.toml",
        "/static/brand/secret",
        "/static/brand/%2e%2e%2fx",
    ] {
        assert_eq!(app.get(bad, None).await.status(), 404, "{bad}");
    }
    // The fixed stylesheet URL serves the branded sheet too.
    let fixed = app
        .get("/static/style.css", None)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(fixed, css);
}

#[tokio::test]
async fn a_new_brand_applies_on_reload_and_a_broken_one_is_refused() {
    let app = spawn_app().await;
    let cookie = app.sign_in("alice@acme.com").await;
    let page = format!("/pages/{WELCOME}");
    let (_, before) = html(&app, &page, Some(&cookie)).await;
    assert!(before.contains("Knowledge base"));

    let dir = tempfile::tempdir().unwrap();
    app.state.set_brand(&acme_brand(dir.path())).unwrap();
    // The page view was cached with the old frame: the new brand shows at once anyway.
    let (_, after) = html(&app, &page, Some(&cookie)).await;
    assert!(after.contains("Acme Help &#38; Docs"), "{after}");
    assert!(!after.contains("Knowledge base"));

    let broken = BrandConfig {
        site_name: "Broken".into(),
        custom_css: Some(dir.path().join("missing.css")),
        ..BrandConfig::default()
    };
    let e = app.state.set_brand(&broken).unwrap_err().to_string();
    assert!(e.contains("custom_css") && e.contains("missing.css"), "{e}");
    let (_, still) = html(&app, &page, Some(&cookie)).await;
    assert!(
        still.contains("Acme Help &#38; Docs"),
        "the running brand stays"
    );
}

#[tokio::test]
async fn the_start_page_searches_first_and_lists_only_readable_recent_pages() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@acme.com").await;
    let (s, home) = html(&app, "/", Some(&alice)).await;
    assert_eq!(s, 200);
    let search = home
        .find("aria-label=\"Search articles\"")
        .expect("search box");
    let spaces = home.find("<h2>Spaces</h2>").expect("spaces");
    let recent = home
        .find("<h2>Recently updated</h2>")
        .expect("recent pages");
    assert!(
        search < spaces && spaces < recent,
        "search first, then spaces"
    );
    let recent_html = &home[recent..];
    assert!(recent_html.contains(&format!("href=\"/pages/{WELCOME}\"")));
    for hidden in ["Secret plans", "Hidden child", "Salaries", "Old stuff"] {
        assert!(!home.contains(hidden), "alice's start page shows {hidden}");
    }

    // A viewer of KB's `public` pages only sees those.
    let partner = app.sign_in("pat@partner.com").await;
    let (_, home) = html(&app, "/", Some(&partner)).await;
    let recent_html = &home[home.find("<h2>Recently updated</h2>").unwrap()..];
    assert!(recent_html.contains("Public FAQ"));
    for hidden in [
        "Welcome",
        "Child page",
        "Secret plans",
        "Hidden child",
        "Internal notes",
        "Salaries",
    ] {
        assert!(
            !recent_html.contains(hidden),
            "partner's start page shows {hidden}"
        );
    }
}

#[tokio::test]
async fn the_start_page_shows_space_descriptions_escaped_and_icons_through_the_gate() {
    let app = spawn_app().await;
    let tail = "zulu-tail-word";
    let long = format!(
        "Guides <b>bold</b> & \"quotes\" for customers. {} {tail}",
        "Setting things up and using them well. ".repeat(8)
    );
    set_space_details(&app.store, "KB", &long, Some(PNG_BYTES)).await;
    let alice = app.sign_in("alice@acme.com").await;
    let (s, home) = html(&app, "/", Some(&alice)).await;
    assert_eq!(s, 200);
    // Plain text, escaped, shortened on the card.
    assert!(
        home.contains("Guides &#60;b&#62;bold&#60;/b&#62; &#38; "),
        "{home}"
    );
    assert!(!home.contains("<b>bold</b>"));
    assert!(!home.contains(tail), "the card shortens a long description");
    assert!(home.contains('…'));
    // The space home shows it whole.
    let (_, space) = html(&app, "/spaces/KB", Some(&alice)).await;
    assert!(space.contains(tail));
    assert!(!space.contains("<b>bold</b>"));

    // The icon: an image through the gate, immutable under its content-hash URL.
    let src = attr_after(&home, "<img class=\"icon\"", "src").to_owned();
    assert!(src.starts_with("/spaces/KB/icon?v="), "{src}");
    assert_eq!(attr_after(&home, "<img class=\"icon\"", "alt"), "");
    let resp = app.get(&src, Some(&alice)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let cache = resp.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(
        cache.contains("private") && cache.contains("immutable"),
        "{cache}"
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), PNG_BYTES);
    // A stale or missing `v` is not cached for good.
    let resp = app.get("/spaces/KB/icon?v=0000", Some(&alice)).await;
    assert_eq!(resp.status(), 200);
    assert!(
        !resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    // Signed out: no icon.
    assert_eq!(app.get(&src, None).await.status(), 401);

    // No icon: a neutral letter tile, no image.
    set_space_details(&app.store, "KB", "", None).await;
    let (_, home) = html(&app, "/", Some(&alice)).await;
    assert!(!home.contains("<img class=\"icon\""));
    assert!(home.contains("<span class=\"icon\" aria-hidden=\"true\">K</span>"));
    assert_eq!(app.get("/spaces/KB/icon", Some(&alice)).await.status(), 404);
}

#[tokio::test]
async fn a_space_home_shows_its_home_page_and_the_first_levels_open() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@acme.com").await;
    let (s, body) = html(&app, "/spaces/KB", Some(&alice)).await;
    assert_eq!(s, 200);
    assert!(body.contains("welcome alpha"), "the home page's content");
    assert!(body.contains("<nav aria-label=\"Pages\" class=\"tree\">"));
    assert!(body.contains(
        "<li class=\"branch\"><a href=\"/pages/1001\">Welcome</a><details open><summary>"
    ));
    assert!(
        body.contains("Child page"),
        "the first level under the home page"
    );
    assert!(!body.contains("Secret plans"));
    // The article comes before the page tree (phones show it first).
    assert!(body.find("welcome alpha").unwrap() < body.find("class=\"tree\"").unwrap());

    // A viewer who may not read the home page gets the index alone, and nothing of it.
    let partner = app.sign_in("pat@partner.com").await;
    let (_, body) = html(&app, "/spaces/KB", Some(&partner)).await;
    assert!(!body.contains("welcome alpha") && !body.contains(">Welcome<"));
    assert!(body.contains("Public FAQ"));
}

#[tokio::test]
async fn a_person_whose_access_ended_is_told_so_and_can_sign_out() {
    let dir = tempfile::tempdir().unwrap();
    let brand = acme_brand(dir.path());
    let app = spawn_app_with(move |p| p.brand = brand, hs256_verifier()).await;
    let cookie = app.sign_in("alice@acme.com").await;
    app.policy.replace(policy_without_acme());

    let (s, body) = html(&app, &format!("/pages/{WELCOME}"), Some(&cookie)).await;
    assert_eq!(s, 403);
    assert!(body.contains("alice@acme.com"), "names the address: {body}");
    assert!(body.contains("does not give access"));
    assert!(
        body.contains("Contact support at <a href=\"mailto:help@acme.example\">"),
        "{body}"
    );
    assert!(
        !body.contains("/auth/email") && !body.contains(">Sign in<"),
        "{body}"
    );
    assert!(!body.contains("welcome alpha"), "no content");
    // Once the session has ended (by that request, or by the reload's sweep), the next
    // request is told the same, not asked to sign in.
    let (s, again) = html(&app, "/", Some(&cookie)).await;
    assert_eq!(s, 403);
    assert!(again.contains("alice@acme.com") && again.contains("does not give access"));
    // The sign-out button works (the session is already ended; the cookie goes too).
    let csrf = attr_after(&body, "name=\"csrf\"", "value").to_owned();
    assert!(!csrf.is_empty());
    let out = app
        .client
        .post(app.url("/auth/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let cleared = out
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().contains("Max-Age=0"));
    assert!(cleared, "the cookie is cleared");
    // The JSON API says 403 in JSON, without a page.
    let r = app
        .client
        .get(app.url("/api/v1/spaces"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 403));
    assert!(r.text().await.unwrap().starts_with('{'));
}

#[tokio::test]
async fn without_a_session_people_go_back_to_the_host_app() {
    let store = open_store(Backend::Sqlite).await.unwrap();
    write_mirror(&store.store).await;
    let app = serve_with_extras(
        store,
        policy(),
        |_| {},
        hs256_verifier(),
        |e| e.login_url = Some("https://app.example.com/login?from=kb".parse().unwrap()),
    )
    .await;
    let r = app
        .client
        .get(app.url(&format!("/pages/{WELCOME}?x=1")))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        "https://app.example.com/login?from=kb&return_to=%2Fpages%2F1001%3Fx%3D1"
    );
    // An expired session too.
    let r = app
        .client
        .get(app.url("/"))
        .header("accept", "text/html")
        .header("cookie", "kbgate_session=expired-or-forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("https://app.example.com/login?"));
    // The JSON API and non-browser clients get a 401, not a redirect.
    let r = app
        .client
        .get(app.url("/api/v1/spaces"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(app.url("/"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The sign-in routes themselves never redirect there (no loop on a bad hand-over).
    let r = app
        .client
        .get(app.url("/auth/embed?token=bad"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The magic-link form is still there (not switched off), and names the host app too.
    let (s, body) = html(&app, "/auth/email", None).await;
    assert_eq!(s, 200);
    assert!(body.contains("name=\"email\""));
}

#[tokio::test]
async fn magic_links_can_be_switched_off() {
    let store = open_store(Backend::Sqlite).await.unwrap();
    write_mirror(&store.store).await;
    let app = serve_with_extras(
        store,
        policy(),
        |p| p.magic_links = false,
        hs256_verifier(),
        |e| e.login_url = Some("https://app.example.com/login".parse().unwrap()),
    )
    .await;
    let (s, body) = html(&app, "/auth/email?return_to=/spaces/KB", None).await;
    assert_eq!(s, 200);
    assert!(!body.contains("name=\"email\""), "no form: {body}");
    assert!(
        body.contains("href=\"https://app.example.com/login?return_to=%2Fspaces%2FKB\""),
        "leads to the host app: {body}"
    );
    let r = app
        .post_form("/auth/email", &[("email", "alice@acme.com")])
        .await;
    assert_eq!(r.status(), 404);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        std::fs::read_dir(app.outbox.path()).unwrap().count(),
        0,
        "no mail sent"
    );
    // Hand-over still signs people in.
    let cookie = app.sign_in("alice@acme.com").await;
    let (s, _) = html(&app, "/", Some(&cookie)).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn with_magic_links_off_and_no_host_app_the_401_page_offers_no_dead_form() {
    let app = spawn_app_with(|p| p.magic_links = false, hs256_verifier()).await;
    let (s, body) = html(&app, "/", None).await;
    assert_eq!(s, 401);
    assert!(!body.contains("/auth/email"), "{body}");
    assert!(
        body.contains("from the application you use it with"),
        "{body}"
    );
}
