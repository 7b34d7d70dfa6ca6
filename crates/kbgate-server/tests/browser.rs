//! A real browser over the portal: headless Chromium, driven through chromedriver (WebDriver),
//! against the simulator's site synced into SQLite. It signs in through the embed link the way
//! a host app's redirect would, opens a space, follows the page tree, opens a page, searches,
//! downloads an attachment, and opens every hostile page of the simulator's site with prompts
//! left open, so that a script that ran (an `alert`, a navigation, an injected element) shows.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the
//! test is skipped with a message, except under `CI=true`, where it fails.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::browser::{axe_source, start_browser};
use common::*;
use confluence_sim::SimConfig;
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::{Client, Locator};
use serde_json::json;

/// Where Debian puts the two programs; `KBGATE_CHROMIUM` / `KBGATE_CHROMEDRIVER` override.
fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let p = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    p.exists().then_some(p)
}

/// Nothing a page's content could have done is visible: no prompt is open, the browser is
/// still on the portal, no script element (but the portal's own suggestions script in the
/// head) or event-handler attribute is in the DOM, and the
/// marker a hostile script would set is absent.
async fn assert_nothing_ran(c: &Client, base: &str, what: &str) {
    assert!(
        c.get_alert_text().await.is_err(),
        "{what}: a prompt is open — script from the content ran"
    );
    let url = c.current_url().await.unwrap();
    assert!(
        url.as_str().starts_with(base),
        "{what}: the browser left the portal for {url}"
    );
    let found = c
        .execute(
            r#"
            const bad = [];
            for (const s of document.querySelectorAll('script')) {
              // The portal's own script (search suggestions), exactly as base.html has it.
              const ours = s.parentElement === document.head && s.getAttribute('src') === '/assets/suggest.js'
                && s.attributes.length === 2 && s.hasAttribute('defer') && s.textContent === '';
              if (!ours) bad.push('script ' + (s.src || s.textContent.slice(0, 40)));
            }
            for (const el of document.querySelectorAll('*')) {
              for (const a of el.attributes) {
                if (a.name.startsWith('on')) bad.push(el.tagName + ' @' + a.name);
                if (/^\s*(javascript|data|vbscript):/i.test(a.value) && el.tagName !== 'IMG') bad.push(el.tagName + ' ' + a.name + '=' + a.value.slice(0, 40));
              }
            }
            for (const f of document.querySelectorAll('iframe, object, embed')) bad.push(f.tagName);
            return bad;
            "#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(found, json!([]), "{what}: active content in the DOM");
}

/// axe-core finds no violation on the current page (every rule axe runs by default, WCAG
/// 2.x A and AA among them: contrast, names, landmarks, scrollable regions reachable by
/// keyboard…). Injected through WebDriver, so the portal's CSP needs no exception.
async fn assert_accessible(c: &Client, axe: &str, what: &str) {
    c.execute(&format!("{axe}\nreturn typeof axe;"), vec![])
        .await
        .unwrap();
    let found = c
        .execute_async(
            r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] })
              .then(r => done(r.violations.map(v => ({
                 id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 300)) }))))
              .catch(e => done([{ id: 'axe-error', nodes: [String(e)] }]));
            "#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        found,
        json!([]),
        "{what}: axe-core violations:\n{}",
        serde_json::to_string_pretty(&found).unwrap()
    );
}

/// A Chromium DevTools command sent through chromedriver (`goog/cdp/execute`): how the test
/// switches the page to dark mode (`Emulation.setEmulatedMedia`, `prefers-color-scheme`).
/// The endpoint is chromedriver's own (POST `/session/{id}/goog/cdp/execute`, body
/// `{"cmd", "params"}`), the one Selenium's `executeCdpCommand` and Appium use
/// (appium/appium-base-driver#405, SeleniumHQ/selenium#9856).
#[derive(Debug)]
struct Cdp(serde_json::Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

async fn color_scheme(c: &Client, scheme: &str) {
    c.issue_cmd(Cdp(json!({
        "cmd": "Emulation.setEmulatedMedia",
        "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] }
    })))
    .await
    .expect("emulate prefers-color-scheme");
}

/// The page does not scroll sideways: wide code, tables and images scroll inside their
/// own box.
async fn assert_no_sideways_scroll(c: &Client, what: &str) {
    let sizes = c
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let (scroll, inner) = (sizes[0].as_f64().unwrap(), sizes[1].as_f64().unwrap());
    if scroll > inner {
        // Name the culprits to make a failure quick to fix.
        let wide = c
            .execute(
                "const w = window.innerWidth; return [...document.querySelectorAll('body *')]
                   .filter(e => e.getBoundingClientRect().right > w + 0.5)
                   .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
                vec![],
            )
            .await
            .unwrap();
        panic!("{what}: scrolls sideways at {inner}px (scrollWidth {scroll}): {wide}");
    }
}

async fn attr(c: &Client, css: &str, name: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .attr(name)
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_customer_reads_the_knowledge_base_in_a_real_browser() {
    let (Some(chromium), Some(driver)) = (
        tool("KBGATE_CHROMIUM", "/usr/bin/chromium"),
        tool("KBGATE_CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but chromium/chromedriver are missing (apt-get install chromium chromium-driver)"
            );
        }
        eprintln!(
            "SKIPPED browser test: /usr/bin/chromium and /usr/bin/chromedriver are needed \
             (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let s = spawn_synced_on(Backend::Sqlite, SimConfig::default())
        .await
        .expect("SQLite is always available");
    let base = s.app.base.clone();
    let downloads = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(&chromium, &driver, downloads.path()).await;

    // 1. Sign in as the host app's redirect would: a fresh embed token in the URL.
    let (email, spaces, _) = SYNCED_VIEWERS[3]; // hooli.com reads KB, ONBOARD and API
    let token = mint_hs256(&claims(email));
    c.goto(&format!("{base}/auth/embed?token={token}&return_to=/"))
        .await
        .unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/", "lands on the home page: {url}");
    let shown = c.find(Locator::Css("header .email")).await.unwrap();
    assert_eq!(shown.text().await.unwrap(), email);
    let cards = c.find_all(Locator::Css("ul.cards a")).await.unwrap();
    assert_eq!(cards.len(), spaces.len(), "one card per readable space");
    assert_nothing_ran(&c, &base, "home").await;

    // 2. Open a space and follow its tree: open a collapsed branch, click a child.
    c.find(Locator::Css("a[href='/spaces/KB']"))
        .await
        .expect("KB card")
        .click()
        .await
        .unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/spaces/KB");
    // A top-level branch (its own parents are all visible).
    let branch = c
        .find(Locator::Css("nav.tree > ul > li > details > summary"))
        .await
        .expect("the tree has a branch");
    // Click the disclosure marker at the summary's left edge, as a person would: the link
    // inside the summary would navigate instead.
    let (_, _, width, _) = branch.rectangle().await.unwrap();
    let click = || {
        MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement {
                element: branch.clone(),
                duration: None,
                x: -(width / 2.0) + 4.0,
                y: 0.0,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            })
    };
    let was_open = c
        .execute(
            "return arguments[0].parentElement.open;",
            vec![serde_json::to_value(&branch).unwrap()],
        )
        .await
        .unwrap();
    c.perform_actions(click()).await.unwrap();
    assert_eq!(
        c.current_url().await.unwrap().path(),
        "/spaces/KB",
        "the marker toggles, it does not navigate"
    );
    let is_open = c
        .execute(
            "return arguments[0].parentElement.open;",
            vec![serde_json::to_value(&branch).unwrap()],
        )
        .await
        .unwrap();
    assert_ne!(was_open, is_open, "clicking the marker toggles the branch");
    if is_open == json!(false) {
        // It was open: the click closed it. Open it again the same way.
        c.perform_actions(click()).await.unwrap();
        let reopened = c
            .execute(
                "return arguments[0].parentElement.open;",
                vec![serde_json::to_value(&branch).unwrap()],
            )
            .await
            .unwrap();
        assert_eq!(reopened, json!(true), "a second click opens it again");
    }
    let child = branch
        .find(Locator::XPath("./following-sibling::ul/li/a"))
        .await
        .expect("an opened branch shows its children");
    assert!(
        child.is_displayed().await.unwrap(),
        "child entry is visible"
    );
    let child_href = child.attr("href").await.unwrap().unwrap();
    child.click().await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), child_href);

    // 3. The page view: breadcrumbs back to the space, a title, a last-updated date.
    let crumbs = c.find_all(Locator::Css("nav.crumbs li")).await.unwrap();
    assert!(crumbs.len() >= 3, "Spaces › KB › … › page");
    let title = c
        .find(Locator::Css("article h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!title.is_empty());
    assert!(!attr(&c, "article time", "datetime").await.is_empty());
    assert_nothing_ran(&c, &base, "child page").await;

    // 4. Search from the header box for a word of the title and one of the text, as a
    //    person looking for this page would; the page is a hit and the match is highlighted.
    let longest = |text: &str| {
        text.split(|ch: char| !ch.is_alphabetic())
            .filter(|w| w.len() >= 4)
            .max_by_key(|w| w.len())
            .map(str::to_lowercase)
    };
    // The words a person would have read on the page (its own text, as mirrored).
    let page_id = child_href.trim_start_matches("/pages/");
    let content = s
        .app
        .store
        .page(page_id)
        .await
        .unwrap()
        .expect("the page is mirrored")
        .body_text;
    let word = [longest(&title), longest(&content)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!word.is_empty(), "the page has words to search for");
    let q = c.find(Locator::Id("q")).await.unwrap();
    q.send_keys(&format!("{word}\n")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.current_url().await.unwrap().path() != "/search" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.current_url().await.unwrap().path(), "/search");
    let hits = c.find_all(Locator::Css("ol.hits > li")).await.unwrap();
    assert!(!hits.is_empty(), "search for {word:?} finds the page");
    let marks = c.find_all(Locator::Css("ol.hits mark")).await.unwrap();
    assert!(!marks.is_empty(), "excerpts highlight the match");
    let hit_hrefs = hrefs(&c, "ol.hits > li > a").await;
    assert!(
        hit_hrefs.contains(&child_href),
        "{child_href} among the hits {hit_hrefs:?}"
    );

    // 5. Download an attachment from a page that has one.
    let mut with_file = None;
    'spaces: for space in s.app.store.list_spaces().await.unwrap() {
        for p in s.app.store.page_summaries(&space.id).await.unwrap() {
            if p.effective_restricted {
                continue;
            }
            if let Some(a) = s
                .app
                .store
                .attachments(&p.id)
                .await
                .unwrap()
                .into_iter()
                .next()
            {
                with_file = Some((p.id.clone(), a));
                break 'spaces;
            }
        }
    }
    let (page_id, att) = with_file.expect("the site has a readable page with an attachment");
    c.goto(&format!("{base}/pages/{page_id}")).await.unwrap();
    let link = c
        .find(Locator::Css("section.attachments a"))
        .await
        .expect("attachment list");
    link.click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let file = loop {
        let done: Vec<PathBuf> = std::fs::read_dir(downloads.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_none_or(|x| x != "crdownload"))
            .collect();
        // Chromium may create the file under its final name before the bytes are in
        // (a placeholder next to the `.crdownload`): done when the whole size is there.
        let whole = done
            .into_iter()
            .find(|f| std::fs::metadata(f).is_ok_and(|m| m.len() as i64 == att.file_size));
        if let Some(f) = whole {
            break f;
        }
        assert!(Instant::now() < deadline, "the download did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(
        bytes.len() as i64,
        att.file_size,
        "downloaded {file:?} whole"
    );

    // 6. Every hostile page of the site: open it, click every link in its content, and
    //    check that nothing ran.
    let mut hostile = 0;
    for space in s.app.store.list_spaces().await.unwrap() {
        for p in s.app.store.page_summaries(&space.id).await.unwrap() {
            let full = s.app.store.page(&p.id).await.unwrap().unwrap();
            let body = full.body_storage.to_ascii_lowercase();
            if p.effective_restricted
                || !["<script", "javascript:", "onerror=", "<iframe"]
                    .iter()
                    .any(|b| body.contains(b))
            {
                continue;
            }
            hostile += 1;
            let page_url = format!("{base}/pages/{}", p.id);
            c.goto(&page_url).await.unwrap();
            // Let any image error handlers and timers fire.
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_nothing_ran(&c, &base, &format!("hostile page {}", p.id)).await;
            let links = c.find_all(Locator::Css("div.content a")).await.unwrap();
            for i in 0..links.len() {
                // Re-find after a navigation: the old handles are stale.
                let links = c.find_all(Locator::Css("div.content a")).await.unwrap();
                let Some(l) = links.get(i) else { break };
                let href = l.attr("href").await.unwrap().unwrap_or_default();
                if !href.starts_with('#') && !href.is_empty() && !l.is_displayed().await.unwrap() {
                    continue;
                }
                if href.starts_with("http") && !href.starts_with(&base) {
                    continue; // an outside link: no network here, and not ours to follow
                }
                if l.click().await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    assert_nothing_ran(&c, &base, &format!("link {i} ({href}) of {}", p.id)).await;
                }
                if c.current_url().await.unwrap().as_str() != page_url {
                    c.goto(&page_url).await.unwrap();
                }
            }
        }
    }
    assert!(
        hostile > 0,
        "the simulator's site has hostile pages to open"
    );

    // 7. Accessibility and phones. axe-core reports nothing on each kind of page (wide
    //    screen, then phone), and at 390 px no page of the site scrolls sideways.
    let axe = axe_source();
    let some_page = format!("{base}{child_href}");
    let kinds = [
        ("home", format!("{base}/")),
        ("space", format!("{base}/spaces/KB")),
        ("space index", format!("{base}/spaces/ONBOARD")),
        ("page", some_page.clone()),
        (
            "search",
            format!("{base}/search?q={}", word.replace(' ', "+")),
        ),
        (
            "search, nothing found",
            format!("{base}/search?q=zzzqqqxxx"),
        ),
        ("not found", format!("{base}/pages/999999999")),
    ];
    for (what, url) in &kinds {
        c.goto(url).await.unwrap();
        assert_accessible(&c, &axe, what).await;
    }
    // Dark mode too: contrast everywhere, search highlights included.
    color_scheme(&c, "dark").await;
    for (what, url) in &kinds {
        c.goto(url).await.unwrap();
        let dark = c
            .execute(
                "return matchMedia('(prefers-color-scheme: dark)').matches;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(dark, json!(true), "{what}: dark mode is on");
        assert_accessible(&c, &axe, &format!("{what} (dark)")).await;
    }
    color_scheme(&c, "light").await;
    c.set_window_size(390, 844).await.unwrap();
    let inner = c
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap();
    assert!(
        inner.as_f64().is_some_and(|w| w <= 400.0),
        "the window is phone-sized: {inner}"
    );
    for (what, url) in &kinds {
        c.goto(url).await.unwrap();
        assert_no_sideways_scroll(&c, what).await;
        assert_accessible(&c, &axe, &format!("{what} (phone)")).await;
    }
    // On a phone the article comes first; the page tree opens from the drawer link.
    c.goto(&some_page).await.unwrap();
    let tree_shown = |c: Client| async move {
        c.find(Locator::Css("aside.sidebar"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    };
    assert!(!tree_shown(c.clone()).await, "the tree waits in its drawer");
    c.find(Locator::Css("a.drawer-open"))
        .await
        .expect("a drawer link")
        .click()
        .await
        .unwrap();
    assert!(
        tree_shown(c.clone()).await,
        "the drawer opens without script"
    );
    let mut pages = 0;
    for space in s.app.store.list_spaces().await.unwrap() {
        for p in s.app.store.page_summaries(&space.id).await.unwrap() {
            if p.effective_restricted {
                continue;
            }
            pages += 1;
            c.goto(&format!("{base}/pages/{}", p.id)).await.unwrap();
            assert_no_sideways_scroll(&c, &format!("page {} ({})", p.id, p.title)).await;
        }
    }
    assert!(pages > 10, "the site has pages to lay out: {pages}");
    c.set_window_size(1280, 900).await.unwrap();

    // 8. Sign out ends the session: the home page asks for sign-in again.
    c.goto(&format!("{base}/")).await.unwrap();
    c.find(Locator::Css("header .user button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Let the form post finish before navigating (a navigation would cancel it).
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.find(Locator::Css("header .email")).await.is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.goto(&format!("{base}/")).await.unwrap();
    assert!(
        c.find(Locator::Css("header .email")).await.is_err(),
        "signed out: no viewer in the header"
    );
    // And the portal asks for sign-in again.
    assert!(
        c.source().await.unwrap().contains("/auth/email"),
        "the home page links to sign-in once signed out"
    );
    // The sign-in page and the "sign in required" page are accessible too.
    for (what, url) in [
        ("sign-in", format!("{base}/auth/email")),
        ("sign-in required", format!("{base}/spaces/KB")),
    ] {
        c.goto(&url).await.unwrap();
        assert_accessible(&c, &axe, what).await;
    }

    // 9. A person whose organisation's access ended sees an honest refusal, accessible,
    //    with a sign-out button and no sign-in prompt.
    let token = mint_hs256(&claims(email));
    c.goto(&format!("{base}/auth/embed?token={token}&return_to=/"))
        .await
        .unwrap();
    let mut audiences = synced_policy().audiences().to_vec();
    audiences.retain(|a| !a.domains.iter().any(|d| d.as_str() == "hooli.com"));
    s.app
        .policy
        .replace(kbgate_policy::Policy::new(audiences, vec![]).unwrap());
    c.goto(&some_page).await.unwrap();
    let text = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("does not give access"), "{text}");
    assert!(text.contains(email), "{text}");
    assert!(
        c.find(Locator::Css("main form button")).await.is_ok(),
        "a sign-out button"
    );
    assert_accessible(&c, &axe, "refusal").await;
    c.close().await.unwrap();
}

async fn hrefs(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(css)).await.unwrap() {
        if let Some(h) = e.attr("href").await.unwrap() {
            out.push(h);
        }
    }
    out
}

/// The browser tools, or `None` (test skipped with a message) when they are missing outside
/// CI.
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    match (
        tool("KBGATE_CHROMIUM", "/usr/bin/chromium"),
        tool("KBGATE_CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but chromium/chromedriver are missing");
            }
            eprintln!(
                "SKIPPED browser test: /usr/bin/chromium and /usr/bin/chromedriver are needed"
            );
            None
        }
    }
}

/// Waits up to 5 s for `script` (a WebDriver script returning a value) to return `want`.
async fn wait_for(c: &Client, script: &str, want: serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = c.execute(script, vec![]).await.unwrap();
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{script} gave {got}, not {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn suggestions_are_a_keyboard_combobox_and_feedback_is_a_plain_form() {
    let Some((chromium, driver)) = browser_tools() else {
        return;
    };
    let app = spawn_app().await;
    let base = app.base.clone();
    let downloads = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(&chromium, &driver, downloads.path()).await;
    let token = mint_hs256(&claims("ann@acme.com"));
    c.goto(&format!("{base}/auth/embed?token={token}&return_to=/"))
        .await
        .unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/");

    // The header box becomes a combobox controlling a listbox (WAI-ARIA combobox pattern).
    let q = c.find(Locator::Id("q")).await.unwrap();
    assert_eq!(q.attr("role").await.unwrap().as_deref(), Some("combobox"));
    assert_eq!(
        q.attr("aria-expanded").await.unwrap().as_deref(),
        Some("false")
    );
    let list_id = q
        .attr("aria-controls")
        .await
        .unwrap()
        .expect("aria-controls");
    q.send_keys("pub").await.unwrap();
    wait_for(
        &c,
        "return document.getElementById('q').getAttribute('aria-expanded')",
        json!("true"),
    )
    .await;
    let options: Vec<String> = {
        let mut out = Vec::new();
        for o in c
            .find_all(Locator::Css(&format!("#{list_id} [role=option]")))
            .await
            .unwrap()
        {
            out.push(o.text().await.unwrap());
        }
        out
    };
    assert_eq!(options, ["Public FAQ KB", "Public under internal KB"]);
    // Arrow down makes the first option active; Enter opens it.
    q.send_keys("\u{E015}").await.unwrap(); // ArrowDown
    let active = q
        .attr("aria-activedescendant")
        .await
        .unwrap()
        .expect("active");
    assert_eq!(active, format!("{list_id}-0"));
    assert_eq!(
        attr(&c, &format!("#{active}"), "aria-selected").await,
        "true"
    );
    // Escape closes, ArrowDown opens again.
    q.send_keys("\u{E00C}").await.unwrap(); // Escape
    assert_eq!(
        q.attr("aria-expanded").await.unwrap().as_deref(),
        Some("false")
    );
    q.send_keys("\u{E015}").await.unwrap();
    q.send_keys("\u{E007}").await.unwrap(); // Enter
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.current_url().await.unwrap().path() != format!("/pages/{}", ids::PUBLIC_FAQ)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        c.current_url().await.unwrap().path(),
        format!("/pages/{}", ids::PUBLIC_FAQ)
    );
    assert_nothing_ran(&c, &base, "page after a suggestion").await;

    // "Was this helpful?": a plain HTML form post; no script takes part.
    c.execute(
        "document.getElementById('fb-comment').value = 'Clear, thanks';",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Css("section.feedback button[value=yes]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The click starts a navigation: until the answer has loaded, the old page's heading may
    // be found (and go stale under us), so read it until it is the answer's.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut h1 = String::new();
    while Instant::now() < deadline {
        if let Ok(e) = c.find(Locator::Css("main h1")).await
            && let Ok(t) = e.text().await
        {
            h1 = t;
            if h1 == "Thank you for your feedback" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(h1, "Thank you for your feedback");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = app
            .store
            .feedback(&kbgate_store::FeedbackFilter::default())
            .await
            .unwrap();
        if let Some(v) = v.first() {
            assert!(v.helpful);
            assert_eq!(v.comment.as_deref(), Some("Clear, thanks"));
            break;
        }
        assert!(Instant::now() < deadline, "the vote was not stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits up to 10 s for the browser to be on `path` (a form post and its redirect).
async fn wait_for_path(c: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = c.current_url().await.unwrap();
        if url.path() == path {
            return;
        }
        assert!(Instant::now() < deadline, "still on {url}, not {path}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The admin console in a real browser (issue #13): its confirm step and every page of it —
/// home, explain with a result, sessions, sync, access requests, the native plan (with a
/// plan), the audit log, insights (with views and searches), view as with its banner and a
/// page viewed as someone — has no
/// axe-core violation, in light and dark mode and at 390 px, where none scrolls sideways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_console_is_accessible_in_a_real_browser() {
    let Some((chromium, driver)) = browser_tools() else {
        return;
    };
    let s = spawn_synced_on(Backend::Sqlite, SimConfig::default())
        .await
        .expect("SQLite is always available");
    let base = s.app.base.clone();
    let store = s.app.store.clone();

    // Native mode: a group audience on the simulated site, people to invite (one of them
    // with an invitation of unknown outcome), someone who asked for access, and the plan
    // `kbgate plan` keeps.
    let mut audiences = synced_policy().audiences().to_vec();
    audiences.push(kbgate_policy::Audience {
        name: kbgate_policy::AudienceName::parse("grouped").unwrap(),
        domains: vec![kbgate_policy::Domain::parse("group.com").unwrap()],
        include_subdomains: false,
        spaces: vec![kbgate_policy::SpaceKey::parse("KB").unwrap()],
        labels: vec![],
        expires: None,
        delivery: kbgate_policy::Delivery::Group,
    });
    let native = kbgate_policy::Policy::new(audiences, synced_policy().deny().to_vec()).unwrap();
    s.app.policy.replace(native.clone());
    for (email, source) in [
        ("ann@group.com", "import"),
        ("bob@group.com", "access-request"),
        ("late@group.com", "import"),
    ] {
        store
            .add_person(&kbgate_store::PersonRecord {
                email: email.into(),
                domain: "group.com".into(),
                source: source.into(),
                created_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
    }
    let now = chrono::Utc::now();
    store
        .journal_put(&kbgate_store::JournalEntry {
            action_id: "invite:grouped:late@group.com".into(),
            kind: "invite".into(),
            target: "late@group.com".into(),
            state: kbgate_provision::journal_state::UNKNOWN.into(),
            detail: json!({}),
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    let creds = s.sim.service_account();
    let mut cfg = confluence_client::ClientConfig::new(
        s.sim.base_url().parse().unwrap(),
        creds.email,
        creds.api_token,
    );
    cfg.requests_per_second = 0;
    let plan = kbgate_provision::Reconciler::new(
        confluence_client::Client::new(cfg).unwrap(),
        store.clone(),
        native,
        kbgate_provision::ReconcileOptions::default(),
    )
    .plan()
    .await
    .unwrap();
    assert!(
        !plan.actions.is_empty() && !plan.awaiting.is_empty(),
        "{plan}"
    );

    let downloads = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(&chromium, &driver, downloads.path()).await;
    let axe = axe_source();

    // The admin signs in as a reader (and reads and searches a little, for the insights),
    // then confirms the console.
    let kb = store.space_by_key("KB").await.unwrap().unwrap();
    let page = store
        .page_summaries(&kb.id)
        .await
        .unwrap()
        .into_iter()
        .find(|p| !p.effective_restricted)
        .expect("a readable KB page");
    let token = mint_hs256(&claims(ADMIN));
    c.goto(&format!(
        "{base}/auth/embed?token={token}&return_to=/pages/{}",
        page.id
    ))
    .await
    .unwrap();
    wait_for_path(&c, &format!("/pages/{}", page.id)).await;
    c.goto(&format!("{base}/search?q=zzzqqqxxx")).await.unwrap();
    c.goto(&format!("{base}/admin")).await.unwrap();
    wait_for_path(&c, "/admin").await;
    assert_accessible(&c, &axe, "admin confirm").await;
    c.find(Locator::Css("main form button"))
        .await
        .expect("the confirm button")
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c
        .find(Locator::Css("nav[aria-label='Admin']"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the console did not open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut kinds = vec![
        ("admin home", format!("{base}/admin")),
        (
            "admin explain",
            format!(
                "{base}/admin/explain?email=alice%40acme.com&page={}",
                page.id
            ),
        ),
        ("admin sessions", format!("{base}/admin/sessions")),
        ("admin sync", format!("{base}/admin/sync")),
        (
            "admin access requests",
            format!("{base}/admin/access-requests"),
        ),
        ("admin native plan", format!("{base}/admin/plan")),
        ("admin audit", format!("{base}/admin/audit")),
        ("admin insights", format!("{base}/admin/insights")),
    ];
    // The insights writer batches off the request path: wait for the admin's page view.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        c.goto(&kinds[7].1).await.unwrap();
        let main = c
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if main.contains(&page.title) && main.contains("zzzqqqxxx") {
            break;
        }
        assert!(Instant::now() < deadline, "no insights recorded: {main}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The explainer shows its result; the plan page its tables.
    c.goto(&kinds[1].1).await.unwrap();
    let main = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        main.contains("Allowed") && main.contains("Who can read"),
        "{main}"
    );
    c.goto(&kinds[5].1).await.unwrap();
    let main = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        main.contains("ann@group.com") && main.contains("late@group.com"),
        "{main}"
    );

    // View as: the form, then the banner on every console page, and a page as seen.
    c.goto(&format!("{base}/admin/view-as")).await.unwrap();
    assert_accessible(&c, &axe, "admin view as (form)").await;
    c.find(Locator::Id("as"))
        .await
        .unwrap()
        .send_keys("alice@acme.com")
        .await
        .unwrap();
    c.find(Locator::Css("main form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c
        .find(Locator::Css(".notice[role='status']"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "no view-as banner");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kinds.push(("admin view as", format!("{base}/admin/view-as")));
    kinds.push((
        "admin view as, a page",
        format!("{base}/admin/view-as/pages/{}", page.id),
    ));

    for (what, url) in &kinds {
        c.goto(url).await.unwrap();
        assert_accessible(&c, &axe, what).await;
    }
    color_scheme(&c, "dark").await;
    for (what, url) in &kinds {
        c.goto(url).await.unwrap();
        assert_accessible(&c, &axe, &format!("{what} (dark)")).await;
    }
    color_scheme(&c, "light").await;
    c.set_window_size(390, 844).await.unwrap();
    for (what, url) in &kinds {
        c.goto(url).await.unwrap();
        assert_no_sideways_scroll(&c, what).await;
        assert_accessible(&c, &axe, &format!("{what} (phone)")).await;
    }
    c.close().await.unwrap();
}

/// Under a path prefix (`public_url = http://127.0.0.1:PORT/kb`), the suggestions script asks
/// `/kb/suggest` (next to itself) and an option leads to `/kb/pages/…`.
#[tokio::test]
async fn suggestions_work_under_a_path_prefix() {
    let Some((chromium, driver)) = browser_tools() else {
        return;
    };
    let app = spawn_app_with(
        |p| p.public_url = p.public_url.join("kb").unwrap(),
        hs256_verifier(),
    )
    .await;
    let base = app.base.clone();
    let downloads = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(&chromium, &driver, downloads.path()).await;
    let token = mint_hs256(&claims("ann@acme.com"));
    c.goto(&format!(
        "{base}/kb/auth/embed?token={token}&return_to=/kb/"
    ))
    .await
    .unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/kb/");
    let q = c.find(Locator::Id("q")).await.unwrap();
    assert_eq!(q.attr("role").await.unwrap().as_deref(), Some("combobox"));
    q.send_keys("pub").await.unwrap();
    wait_for(
        &c,
        "return document.getElementById('q').getAttribute('aria-expanded')",
        json!("true"),
    )
    .await;
    q.send_keys("\u{E015}").await.unwrap(); // ArrowDown
    q.send_keys("\u{E007}").await.unwrap(); // Enter
    let want = format!("/kb/pages/{}", ids::PUBLIC_FAQ);
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.current_url().await.unwrap().path() != want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.current_url().await.unwrap().path(), want);
}
