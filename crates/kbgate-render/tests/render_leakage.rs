//! No leakage (ARCHITECTURE.md, S1): what resolves depends only on what the viewer may read.

mod render_common;

use kbgate_render::{PrepareContext, Prepared, Ref, prepare, resolve};
use render_common::{Mirror, render_with};

const SECRET_TITLE: &str = "Secret Roadmap";
const SECRET_BODY: &str = "<ac:structured-macro ac:name=\"excerpt\"><ac:rich-text-body><p>secret excerpt</p></ac:rich-text-body></ac:structured-macro><p>secret body</p>";

fn mirror() -> Mirror {
    let mut m = Mirror::default();
    m.add("KB", "1", "Public Guide", "<ac:structured-macro ac:name=\"excerpt\"><ac:rich-text-body><p>public excerpt</p></ac:rich-text-body></ac:structured-macro><p>public body</p>", true);
    m.add("KB", "2", SECRET_TITLE, SECRET_BODY, false);
    m.add("OPS", "3", "Ops Page", "<p>ops body</p>", false);
    m.add_child("100", "KB", "Public Guide");
    m.add_child("100", "KB", SECRET_TITLE);
    m.add_child("100", "OPS", "Ops Page");
    m
}

fn assert_no_secret(out: &str) {
    for s in [
        SECRET_TITLE,
        "secret body",
        "secret excerpt",
        "Ops Page",
        "ops body",
        "/pages/2",
        "/pages/3",
    ] {
        assert!(!out.contains(s), "leaked {s:?} in {out}");
    }
}

#[test]
fn links_to_readable_pages_resolve_and_denied_show_only_link_text() {
    let m = mirror();
    let out = render_with(
        r#"<p><ac:link><ri:page ri:content-title="Public Guide"/><ac:plain-text-link-body><![CDATA[guide]]></ac:plain-text-link-body></ac:link> and <ac:link><ri:page ri:content-title="Secret Roadmap"/><ac:plain-text-link-body><![CDATA[the plan]]></ac:plain-text-link-body></ac:link> and <ac:link><ri:page ri:space-key="OPS" ri:content-title="Ops Page"/><ac:link-body><strong>ops</strong></ac:link-body></ac:link></p>"#,
        &m,
    );
    assert_eq!(
        out,
        "<p><a href=\"/spaces/KB/pages/1\">guide</a> and the plan and ops</p>"
    );
    assert_no_secret(&out);
}

#[test]
fn empty_link_body_to_an_unreadable_page_shows_a_neutral_placeholder() {
    let mut m = mirror();
    // The target exists under this title; the viewer may not read it. Titles outside a
    // viewer's reach never show (DESIGN §7.1), not even as written in this page's link.
    let link = r#"<ac:link><ri:page ri:content-title="Secret Roadmap"/></ac:link>"#;
    let out = render_with(link, &m);
    assert_eq!(out, "<span class=\"link-unavailable\">another page</span>");
    assert_no_secret(&out);
    // Not in this page's search text either.
    let p = prepare(link, &PrepareContext::default());
    assert!(!p.text.contains("Secret"), "{}", p.text);
    // Older stored pages carry the title as the link text: also a placeholder.
    let old = Prepared {
        html: "\u{E000}0\u{E001}".into(),
        text: String::new(),
        headings: vec![],
        excerpt: None,
        refs: vec![Ref::PageLink {
            space_key: "KB".into(),
            title: SECRET_TITLE.into(),
            anchor: None,
            text: SECRET_TITLE.into(),
        }],
    };
    assert_eq!(
        resolve(&old.encode(), &m),
        "<span class=\"link-unavailable\">another page</span>"
    );
    // Readable: linked, with the target's title.
    m.readable.insert(("KB".into(), SECRET_TITLE.into()));
    let out = render_with(
        r#"<ac:link ac:anchor="Part 2"><ri:page ri:content-title="Secret Roadmap"/></ac:link>"#,
        &m,
    );
    assert_eq!(
        out,
        "<a href=\"/spaces/KB/pages/2#part-2\">Secret Roadmap</a>"
    );
}

#[test]
fn includes_of_denied_pages_render_nothing() {
    let m = mirror();
    let body = |t: &str| {
        format!(
            r#"<ac:structured-macro ac:name="include"><ac:parameter ac:name=""><ac:link><ri:page ri:content-title="{t}"/></ac:link></ac:parameter></ac:structured-macro>"#
        )
    };
    let out = render_with(&body("Public Guide"), &m);
    assert_eq!(
        out,
        "<div class=\"include\"><p>public excerpt</p><p>public body</p></div>"
    );
    let out = render_with(&body(SECRET_TITLE), &m);
    assert_eq!(out, "");
    let out = render_with(&body("Missing"), &m);
    assert_eq!(out, "");
}

#[test]
fn excerpt_includes_of_denied_pages_render_nothing() {
    let m = mirror();
    let body = |t: &str| {
        format!(
            r#"<p>before</p><ac:structured-macro ac:name="excerpt-include"><ac:parameter ac:name=""><ac:link><ri:page ri:content-title="{t}"/></ac:link></ac:parameter></ac:structured-macro>"#
        )
    };
    let out = render_with(&body("Public Guide"), &m);
    assert_eq!(
        out,
        "<p>before</p><div class=\"excerpt-include\"><p>public excerpt</p></div>"
    );
    let out = render_with(&body(SECRET_TITLE), &m);
    assert_eq!(out, "<p>before</p>");
    assert_no_secret(&out);
}

#[test]
fn legacy_text_parameter_targets_are_checked_too() {
    let m = mirror();
    let out = render_with(
        r#"<ac:structured-macro ac:name="include"><ac:parameter ac:name="">KB:Secret Roadmap</ac:parameter></ac:structured-macro><ac:structured-macro ac:name="include"><ac:parameter ac:name="">Public Guide</ac:parameter></ac:structured-macro>"#,
        &m,
    );
    assert!(out.contains("public body"), "{out}");
    assert_no_secret(&out);
}

#[test]
fn children_list_omits_denied_children() {
    let m = mirror();
    let out = render_with(r#"<ac:structured-macro ac:name="children"/>"#, &m);
    assert_eq!(
        out,
        "<ul class=\"children\"><li><a href=\"/spaces/KB/pages/1\">Public Guide</a></li></ul>"
    );
    assert_no_secret(&out);
}

#[test]
fn children_of_a_denied_page_render_nothing() {
    let mut m = mirror();
    m.add_child("2", "KB", "Public Guide");
    let out = render_with(
        r#"<ac:structured-macro ac:name="children"><ac:parameter ac:name="page"><ac:link><ri:page ri:content-title="Secret Roadmap"/></ac:link></ac:parameter></ac:structured-macro>"#,
        &m,
    );
    assert_eq!(out, "");
}

#[test]
fn attachments_of_denied_pages_show_the_file_name_only() {
    let m = mirror();
    let out = render_with(
        r#"<ac:link><ri:attachment ri:filename="plan.pdf"><ri:page ri:content-title="Secret Roadmap"/></ri:attachment></ac:link> <ac:image><ri:attachment ri:filename="chart.png"><ri:page ri:content-title="Secret Roadmap"/></ri:attachment></ac:image> <ac:link><ri:attachment ri:filename="guide.pdf"><ri:page ri:content-title="Public Guide"/></ri:attachment></ac:link> <ac:image><ri:attachment ri:filename="ok.png"><ri:page ri:content-title="Public Guide"/></ri:attachment></ac:image>"#,
        &m,
    );
    assert_eq!(
        out,
        "plan.pdf chart.png <a href=\"/attachments/1/guide.pdf\">guide.pdf</a> <img src=\"/attachments/1/ok.png\" alt=\"ok.png\">"
    );
    assert_no_secret(&out);
}

#[test]
fn a_denied_page_inside_an_allowed_include_stays_hidden() {
    let mut m = mirror();
    m.add(
        "KB",
        "4",
        "Wrapper",
        r#"<p>wrapper</p><ac:structured-macro ac:name="include"><ac:parameter ac:name=""><ac:link><ri:page ri:content-title="Secret Roadmap"/></ac:link></ac:parameter></ac:structured-macro><ac:link><ri:page ri:content-title="Secret Roadmap"/><ac:plain-text-link-body><![CDATA[x]]></ac:plain-text-link-body></ac:link>"#,
        true,
    );
    let out = render_with(
        r#"<ac:structured-macro ac:name="include"><ac:parameter ac:name=""><ac:link><ri:page ri:content-title="Wrapper"/></ac:link></ac:parameter></ac:structured-macro>"#,
        &m,
    );
    assert_eq!(out, "<div class=\"include\"><p>wrapper</p>x</div>");
}

#[test]
fn include_cycles_terminate() {
    let mut m = Mirror::default();
    let inc = |t: &str| {
        format!(
            r#"<p>{t}</p><ac:structured-macro ac:name="include"><ac:parameter ac:name=""><ac:link><ri:page ri:content-title="{t}"/></ac:link></ac:parameter></ac:structured-macro>"#
        )
    };
    // A includes B, B includes A; C includes itself.
    m.add(
        "KB",
        "1",
        "A",
        &inc("B").replace("<p>B</p>", "<p>in A</p>"),
        true,
    );
    m.add(
        "KB",
        "2",
        "B",
        &inc("A").replace("<p>A</p>", "<p>in B</p>"),
        true,
    );
    m.add("KB", "3", "C", &inc("C"), true);
    let out = render_with(&inc("A"), &m);
    assert_eq!(
        out,
        "<p>A</p><div class=\"include\"><p>in A</p><div class=\"include\"><p>in B</p></div></div>"
    );
    let (_, c) = &m.pages[&("KB".to_string(), "C".to_string())];
    let out = resolve(c, &m);
    assert_eq!(out.matches("<p>C</p>").count(), 2, "{out}");
}

#[test]
fn include_depth_is_bounded() {
    let mut m = Mirror::default();
    for i in 0..10 {
        m.add(
            "KB",
            &i.to_string(),
            &format!("P{i}"),
            &format!(
                r#"<p>level {i}</p><ac:structured-macro ac:name="include"><ac:parameter ac:name=""><ac:link><ri:page ri:content-title="P{}"/></ac:link></ac:parameter></ac:structured-macro>"#,
                i + 1
            ),
            true,
        );
    }
    let (_, p0) = &m.pages[&("KB".to_string(), "P0".to_string())];
    let out = resolve(p0, &m);
    assert_eq!(
        out.matches("level").count(),
        1 + kbgate_render::MAX_INCLUDE_DEPTH,
        "{out}"
    );
}

#[test]
fn inserted_titles_and_urls_are_escaped() {
    let mut m = Mirror::default();
    m.add(
        "KB",
        "7\"><script>",
        "<b>Tricky</b> & \"Title\"",
        "<p>x</p>",
        true,
    );
    m.add_child("100", "KB", "<b>Tricky</b> & \"Title\"");
    let out = render_with(r#"<ac:structured-macro ac:name="children"/>"#, &m);
    assert_eq!(
        out,
        "<ul class=\"children\"><li><a href=\"/spaces/KB/pages/7&quot;&gt;&lt;script&gt;\">&lt;b&gt;Tricky&lt;/b&gt; &amp; &quot;Title&quot;</a></li></ul>"
    );
}

#[test]
fn stored_strings_without_trailer_resolve_as_plain_templates() {
    let m = Mirror::default();
    assert_eq!(
        resolve("<p>old \u{E000}0\u{E001} html</p>", &m),
        "<p>old  html</p>"
    );
    let p = prepare(
        "<p>plain</p>",
        &PrepareContext {
            space_key: "KB",
            page_id: "1",
            user_names: None,
        },
    );
    assert_eq!(p.encode(), "<p>plain</p>");
    assert_eq!(resolve(&p.encode(), &m), "<p>plain</p>");
}
