//! Per-viewer rendering (ARCHITECTURE.md, S1): a page written in Confluence storage format,
//! prepared by the mirror's renderer exactly as the sync stores it, links to, includes,
//! excerpt-includes and lists children of pages the viewer may not read. Over HTTP, on
//! SQLite and PostgreSQL, HTML and JSON.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use common::*;
use kbgate_render::{PrepareContext, escape_html, prepare};
use kbgate_store::{
    AttachmentRecord, Heading, PageRecord, SpaceRecord, Store, SyncMode, SyncState,
};

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

const HUB: &str = "1101";
const GUIDE: &str = "1102";
const SECRET: &str = "1103";
const INTERNAL: &str = "1104";
const UNDER_SECRET: &str = "1105";
const STALE: &str = "1106";
const TRICKY: &str = "1107";
const SALARIES: &str = "2001";
const PAYROLL: &str = "2002";

const TRICKY_TITLE: &str = "<script>alert('t')</script> Tricky & \"quoted\"";

/// A page as the sync stores it: storage format prepared by the renderer and encoded.
#[allow(clippy::too_many_arguments)] // a fixture table reads best as positional rows
fn stored_page(
    id: &str,
    space: &SpaceRecord,
    parent: Option<&str>,
    title: &str,
    labels: &[&str],
    restricted: bool,
    effective: bool,
    storage: &str,
) -> PageRecord {
    let prepared = prepare(
        storage,
        &PrepareContext {
            space_key: &space.key,
            page_id: id,
            user_names: None,
        },
    );
    let t = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    PageRecord {
        id: id.into(),
        space_id: space.id.clone(),
        parent_id: parent.map(str::to_owned),
        position: id.parse().unwrap_or(0),
        title: title.into(),
        version: 1,
        created_at: t,
        updated_at: t,
        labels: labels.iter().map(|s| s.to_string()).collect(),
        restricted,
        effective_restricted: effective,
        body_storage: storage.into(),
        body_html: prepared.encode(),
        body_text: prepared.text.clone(),
        headings: prepared
            .headings
            .iter()
            .map(|h| Heading {
                level: h.level,
                text: h.text.clone(),
                anchor: h.anchor.clone(),
            })
            .collect(),
    }
}

fn link(space: Option<&str>, title: &str, text: &str) -> String {
    let sk = space
        .map(|s| format!(" ri:space-key=\"{s}\""))
        .unwrap_or_default();
    format!(
        "<ac:link><ri:page{sk} ri:content-title=\"{title}\"/><ac:plain-text-link-body><![CDATA[{text}]]></ac:plain-text-link-body></ac:link>"
    )
}

fn page_macro(name: &str, param: &str, space: Option<&str>, title: &str) -> String {
    let sk = space
        .map(|s| format!(" ri:space-key=\"{s}\""))
        .unwrap_or_default();
    format!(
        "<ac:structured-macro ac:name=\"{name}\"><ac:parameter ac:name=\"{param}\"><ac:link><ri:page{sk} ri:content-title=\"{title}\"/></ac:link></ac:parameter></ac:structured-macro>"
    )
}

fn include(space: Option<&str>, title: &str) -> String {
    page_macro("include", "", space, title)
}

fn excerpt_include(space: Option<&str>, title: &str) -> String {
    page_macro("excerpt-include", "", space, title)
}

fn excerpt(text: &str) -> String {
    format!(
        "<ac:structured-macro ac:name=\"excerpt\"><ac:rich-text-body><p>{text}</p></ac:rich-text-body></ac:structured-macro>"
    )
}

const HOSTILE: &str = "<script>alert(1)</script><p><a href=\"javascript:alert(2)\">click</a></p><p><img src=\"x\" onerror=\"alert(3)\"/></p><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(4)</script></svg><iframe src=\"https://evil.example/\"></iframe><p><a href=\" JaVaScRiPt:alert(5)\" onclick=\"alert(6)\">x</a></p><ac:structured-macro ac:name=\"html\"><ac:plain-text-body><![CDATA[<script>alert(7)</script>]]></ac:plain-text-body></ac:structured-macro>";

fn hub_storage() -> String {
    [
        format!("<p>Readable: {}</p>", link(None, "Guide", "guide link")),
        format!("<p>Other space: {}</p>", link(Some("HR"), "Salaries", "hr link")),
        format!("<p>Restricted: {}</p>", link(None, "Secret plans", "secret link")),
        format!("<p>Labelled: {}</p>", link(None, "Internal notes", "internal link")),
        format!("<p>Missing: {}</p>", link(None, "No such page", "missing link")),
        format!("<p>Self: {}</p>", link(None, "Hub", "self link")),
        include(None, "Guide"),
        include(Some("HR"), "Salaries"),
        include(None, "Secret plans"),
        include(None, "Under secret"),
        include(None, "Stale flag"),
        include(None, "Internal notes"),
        excerpt_include(None, "Guide"),
        excerpt_include(Some("HR"), "Salaries"),
        excerpt_include(None, "Secret plans"),
        excerpt_include(None, "Internal notes"),
        "<h2>Children</h2><ac:structured-macro ac:name=\"children\"/>".into(),
        page_macro("children", "page", Some("HR"), "Salaries"),
        page_macro("children", "page", None, "Secret plans"),
        "<p><ac:image><ri:attachment ri:filename=\"chart.png\"><ri:page ri:space-key=\"HR\" ri:content-title=\"Salaries\"/></ri:attachment></ac:image></p>".into(),
        "<p><ac:link><ri:attachment ri:filename=\"guide.pdf\"><ri:page ri:content-title=\"Guide\"/></ri:attachment><ac:plain-text-link-body><![CDATA[the guide pdf]]></ac:plain-text-link-body></ac:link></p>".into(),
        "<p><ac:link><ri:attachment ri:filename=\"hub.txt\"/><ac:plain-text-link-body><![CDATA[own file]]></ac:plain-text-link-body></ac:link></p>".into(),
        HOSTILE.into(),
    ]
    .concat()
}

async fn write_space(
    store: &Arc<dyn Store>,
    space: &SpaceRecord,
    pages: Vec<PageRecord>,
    attachments: Vec<(AttachmentRecord, &[u8])>,
) {
    let mut tx = store.begin_space_sync(space, SyncMode::Full).await.unwrap();
    tx.upsert_pages(pages).await.unwrap();
    for (mut a, bytes) in attachments {
        a.blob = Some(store.blobs().write_bytes(bytes).await.unwrap());
        tx.upsert_attachment(a).await.unwrap();
    }
    tx.commit(SyncState {
        space_key: space.key.clone(),
        space_id: space.id.clone(),
        watermark: None,
        last_full_sync: Some(Utc::now()),
        last_sync: Some(Utc::now()),
    })
    .await
    .unwrap();
}

fn attachment(id: &str, page_id: &str, name: &str, bytes: &[u8]) -> AttachmentRecord {
    AttachmentRecord {
        id: id.into(),
        page_id: page_id.into(),
        title: name.into(),
        media_type: "application/octet-stream".into(),
        file_size: bytes.len() as i64,
        version: 1,
        updated_at: Utc::now(),
        blob: None,
    }
}

/// KB (acme: all; partner: `public` only) and HR (other.com), under the common policy.
async fn spawn(backend: Backend) -> Option<TestApp> {
    let t = open_store(backend).await?;
    let kb = SpaceRecord {
        id: "100".into(),
        key: "KB".into(),
        name: "Knowledge Base".into(),
        homepage_id: Some(HUB.into()),
        ..Default::default()
    };
    let hr = SpaceRecord {
        id: "200".into(),
        key: "HR".into(),
        name: "Human Resources".into(),
        homepage_id: Some(SALARIES.into()),
        ..Default::default()
    };
    let guide_body = format!(
        "{}<p>guideword</p>{}{HOSTILE}",
        excerpt("guideexcerpt"),
        include(None, "Internal notes")
    );
    write_space(
        &t.store,
        &kb,
        vec![
            stored_page(
                HUB,
                &kb,
                None,
                "Hub",
                &["public"],
                false,
                false,
                &hub_storage(),
            ),
            stored_page(
                GUIDE,
                &kb,
                Some(HUB),
                "Guide",
                &["public"],
                false,
                false,
                &guide_body,
            ),
            stored_page(
                SECRET,
                &kb,
                Some(HUB),
                "Secret plans",
                &["public"],
                true,
                true,
                &format!("{}<p>secretword</p>", excerpt("secretexcerpt")),
            ),
            stored_page(
                INTERNAL,
                &kb,
                Some(HUB),
                "Internal notes",
                &["internal"],
                false,
                false,
                &format!("{}<p>internalword</p>", excerpt("internalexcerpt")),
            ),
            stored_page(
                UNDER_SECRET,
                &kb,
                Some(SECRET),
                "Under secret",
                &["public"],
                false,
                true,
                "<p>undersecretword</p>",
            ),
            // A stale flag under a restricted parent: the ancestor re-check must hold.
            stored_page(
                STALE,
                &kb,
                Some(SECRET),
                "Stale flag",
                &["public"],
                false,
                false,
                "<p>staleword</p>",
            ),
            stored_page(
                TRICKY,
                &kb,
                Some(HUB),
                TRICKY_TITLE,
                &["public"],
                false,
                false,
                "<p>trickyword</p>",
            ),
        ],
        vec![
            (
                attachment("9101", GUIDE, "guide.pdf", b"%PDF guide"),
                b"%PDF guide",
            ),
            (attachment("9102", HUB, "hub.txt", b"hub file"), b"hub file"),
        ],
    )
    .await;
    write_space(
        &t.store,
        &hr,
        vec![
            stored_page(
                SALARIES,
                &hr,
                None,
                "Salaries",
                &[],
                false,
                false,
                &format!("{}<p>hrword</p>", excerpt("hrexcerpt")),
            ),
            stored_page(
                PAYROLL,
                &hr,
                Some(SALARIES),
                "Payroll",
                &[],
                false,
                false,
                "<p>payrollword</p>",
            ),
        ],
        vec![(attachment("9201", SALARIES, "chart.png", b"png"), b"png")],
    )
    .await;
    Some(serve(t, policy()).await)
}

/// What no viewer of the hub may ever see: titles, content and URLs of other-space,
/// restricted and restricted-ancestor pages.
const NEVER: &[&str] = &[
    "Salaries",
    "Payroll",
    "hrword",
    "hrexcerpt",
    "payrollword",
    "/pages/2001",
    "/pages/2002",
    "/attachments/2001",
    "Secret plans",
    "secretword",
    "secretexcerpt",
    "Under secret",
    "undersecretword",
    "Stale flag",
    "staleword",
    "/pages/1103",
    "/pages/1105",
    "/pages/1106",
];

/// Only for viewers without the `internal` label.
const NEVER_FOR_PARTNER: &[&str] = &[
    "Internal notes",
    "internalword",
    "internalexcerpt",
    "/pages/1104",
];

fn assert_absent(html: &str, needles: &[&str], what: &str) {
    for n in needles {
        assert!(!html.contains(n), "{what}: shows {n:?}");
    }
}

fn assert_present(html: &str, needles: &[&str], what: &str) {
    for n in needles {
        assert!(html.contains(n), "{what}: misses {n:?}");
    }
}

/// The page links of the first children list in `html`.
fn first_children_list(html: &str) -> BTreeSet<String> {
    let start = html
        .find("<ul class=\"children\">")
        .expect("a children list");
    let end = start + html[start..].find("</ul>").expect("end of the list");
    linked_ids(&html[start..end]).0.into_iter().collect()
}

/// HTML (page view) and JSON body of the hub for `email`.
async fn hub_for(app: &TestApp, email: &str) -> (String, String) {
    let cookie = app.sign_in(email).await;
    let (status, html) = app.get_text(&format!("/pages/{HUB}"), &cookie).await;
    assert_eq!(status, 200, "{email}");
    let (status, json) = app.api_get(&format!("/api/v1/pages/{HUB}"), email).await;
    assert_eq!(status, 200, "{email}");
    (html, json["html"].as_str().unwrap().to_owned())
}

both_backends!(label_filtered_viewer_sees_only_readable_targets);
async fn label_filtered_viewer_sees_only_readable_targets(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let email = "pat@partner.com";
    let (html, body) = hub_for(&app, email).await;
    for (what, h) in [("HTML", &html), ("JSON", &body)] {
        let what = format!("{email} {what}");
        assert_absent(h, NEVER, &what);
        assert_absent(h, NEVER_FOR_PARTNER, &what);
        assert_present(
            h,
            &[
                "guideword",
                "guideexcerpt",
                "href=\"/pages/1102\"",
                "href=\"/attachments/1102/guide.pdf\"",
                "href=\"/attachments/1101/hub.txt\"",
                // This page's own link text stays, as text.
                "hr link",
                "secret link",
                "missing link",
            ],
            &what,
        );
        assert_inert(h, &what);
    }
    assert_eq!(
        first_children_list(&body),
        BTreeSet::from([GUIDE.to_owned(), TRICKY.to_owned()])
    );
}

both_backends!(full_viewer_sees_its_space_but_nothing_restricted_or_foreign);
async fn full_viewer_sees_its_space_but_nothing_restricted_or_foreign(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let email = "alice@acme.com";
    let (html, body) = hub_for(&app, email).await;
    for (what, h) in [("HTML", &html), ("JSON", &body)] {
        let what = format!("{email} {what}");
        assert_absent(h, NEVER, &what);
        assert_present(
            h,
            &[
                "guideword",
                "guideexcerpt",
                "internalword",
                "internalexcerpt",
                "href=\"/pages/1104\"",
                "href=\"/pages/1101\"",
            ],
            &what,
        );
        assert_inert(h, &what);
    }
    assert_eq!(
        first_children_list(&body),
        BTreeSet::from([GUIDE.to_owned(), INTERNAL.to_owned(), TRICKY.to_owned()])
    );
    // The hostile title is shown as text, never as markup.
    assert!(body.contains(&escape_html(TRICKY_TITLE)));
}

both_backends!(every_resolved_link_works);
async fn every_resolved_link_works(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    for email in ["alice@acme.com", "pat@partner.com"] {
        let cookie = app.sign_in(email).await;
        let (_, body) = hub_for(&app, email).await;
        let mut hrefs = Vec::new();
        for (_, attrs) in start_tags(&body) {
            for (a, v) in attrs {
                if (a == "href" || a == "src") && v.starts_with('/') {
                    hrefs.push(v.split('#').next().unwrap_or("").to_owned());
                }
            }
        }
        assert!(hrefs.len() >= 4, "{email}: {hrefs:?}");
        for h in hrefs {
            let (status, _) = app.get_text(&h, &cookie).await;
            assert_eq!(status, 200, "{email}: {h}");
        }
    }
}

both_backends!(a_viewer_of_another_space_cannot_open_the_hub);
async fn a_viewer_of_another_space_cannot_open_the_hub(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let email = "olga@other.com";
    let cookie = app.sign_in(email).await;
    let (status, html) = app.get_text(&format!("/pages/{HUB}"), &cookie).await;
    assert_eq!(status, 404);
    assert_absent(&html, &["guideword", "Hub", "Guide"], email);
    let (status, _) = app.api_get(&format!("/api/v1/pages/{HUB}"), email).await;
    assert_eq!(status, 404);
    // Their own page renders, and nothing of KB leaks into it.
    let (status, html) = app.get_text(&format!("/pages/{SALARIES}"), &cookie).await;
    assert_eq!(status, 200);
    assert_present(&html, &["hrword", "Payroll"], email);
    assert_absent(&html, &["guideword", "/pages/1101"], email);
}
