//! One test per storage-format construct, checked on the resolved HTML.

mod render_common;

use kbgate_render::{Heading, PrepareContext, Ref, prepare};
use render_common::{assert_inert, render};

fn ctx() -> PrepareContext<'static> {
    PrepareContext {
        space_key: "KB",
        page_id: "100",
    }
}

#[test]
fn paragraphs_lists_and_inline_formatting() {
    let out = render(
        "<p>Hello <strong>bold</strong> <em>it</em></p><ul><li>a</li><li>b<ol><li>c</li></ol></li></ul>",
    );
    assert_eq!(
        out,
        "<p>Hello <strong>bold</strong> <em>it</em></p><ul><li>a</li><li>b<ol><li>c</li></ol></li></ul>"
    );
}

#[test]
fn headings_get_stable_deduplicated_anchors() {
    let p = prepare(
        "<h1>Intro</h1><h2>Setup &amp; Run</h2><h2>Intro</h2>",
        &ctx(),
    );
    assert_eq!(
        p.headings,
        vec![
            Heading {
                level: 1,
                text: "Intro".into(),
                anchor: "intro".into()
            },
            Heading {
                level: 2,
                text: "Setup & Run".into(),
                anchor: "setup-run".into()
            },
            Heading {
                level: 2,
                text: "Intro".into(),
                anchor: "intro-2".into()
            },
        ]
    );
    assert!(p.html.contains("<h1 id=\"intro\">Intro</h1>"), "{}", p.html);
    assert!(
        p.html.contains("<h2 id=\"intro-2\">Intro</h2>"),
        "{}",
        p.html
    );
}

#[test]
fn tables_keep_spans_only() {
    let out = render(
        r#"<table class="x" style="width:1px"><tbody><tr><th colspan="2" style="c">H</th></tr><tr><td rowspan="3" onclick="x">a</td><td colspan="0">b</td></tr></tbody></table>"#,
    );
    assert_eq!(
        out,
        "<table tabindex=\"0\"><tbody><tr><th colspan=\"2\">H</th></tr><tr><td rowspan=\"3\">a</td><td>b</td></tr></tbody></table>"
    );
}

#[test]
fn code_macro_keeps_code_exact() {
    let body = r#"<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">js</ac:parameter><ac:plain-text-body><![CDATA[if (a < b && c > d) { x = "]]]]><![CDATA[>"; }]]></ac:plain-text-body></ac:structured-macro>"#;
    let p = prepare(body, &ctx());
    assert_eq!(
        p.html,
        "<pre class=\"code-block\" tabindex=\"0\"><code class=\"language-javascript\">if (a &lt; b &amp;&amp; c &gt; d) { x = \"]]&gt;\"; }</code></pre>"
    );
    assert!(
        p.text.contains("if (a < b && c > d) { x = \"]]>\"; }"),
        "{}",
        p.text
    );
}

#[test]
fn code_macro_with_unknown_language_has_no_class() {
    let out = render(
        r#"<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">evil" onclick="x</ac:parameter><ac:plain-text-body><![CDATA[x]]></ac:plain-text-body></ac:structured-macro>"#,
    );
    assert_eq!(
        out,
        "<pre class=\"code-block\" tabindex=\"0\"><code>x</code></pre>"
    );
}

#[test]
fn panels_render_as_asides() {
    for kind in ["info", "note", "warning", "tip"] {
        let out = render(&format!(
            r#"<ac:structured-macro ac:name="{kind}"><ac:parameter ac:name="title">T</ac:parameter><ac:rich-text-body><p>body</p></ac:rich-text-body></ac:structured-macro>"#
        ));
        assert_eq!(
            out,
            format!(
                "<aside class=\"panel panel-{kind}\" role=\"note\"><p class=\"panel-title\"><strong>T</strong></p><p>body</p></aside>"
            )
        );
    }
}

#[test]
fn expand_renders_as_details() {
    let out = render(
        r#"<ac:structured-macro ac:name="expand"><ac:parameter ac:name="title">More</ac:parameter><ac:rich-text-body><p>hidden</p></ac:rich-text-body></ac:structured-macro>"#,
    );
    assert_eq!(
        out,
        "<details class=\"expand\"><summary>More</summary><div class=\"expand-body\"><p>hidden</p></div></details>"
    );
}

#[test]
fn status_renders_a_badge_with_known_colours_only() {
    let out = render(
        r#"<ac:structured-macro ac:name="status"><ac:parameter ac:name="colour">Green</ac:parameter><ac:parameter ac:name="title">DONE</ac:parameter></ac:structured-macro>"#,
    );
    assert_eq!(out, "<span class=\"status status-green\">DONE</span>");
    let out = render(
        r#"<ac:structured-macro ac:name="status"><ac:parameter ac:name="colour">x" onclick="y</ac:parameter></ac:structured-macro>"#,
    );
    assert_eq!(out, "<span class=\"status status-grey\">GREY</span>");
}

#[test]
fn toc_lists_the_headings() {
    let out = render(r#"<ac:structured-macro ac:name="toc"/><h1>A</h1><h2>B</h2>"#);
    assert_eq!(
        out,
        "<nav class=\"toc\"><ul><li><a href=\"#a\" rel=\"noopener noreferrer nofollow\">A</a><ul><li><a href=\"#b\" rel=\"noopener noreferrer nofollow\">B</a></li></ul></li></ul></nav><h1 id=\"a\">A</h1><h2 id=\"b\">B</h2>"
    );
}

#[test]
fn anchor_macro_and_anchor_links_meet() {
    let out = render(
        r#"<p><ac:structured-macro ac:name="anchor"><ac:parameter ac:name="">My Spot</ac:parameter></ac:structured-macro></p><p><ac:link ac:anchor="My Spot"><ac:plain-text-link-body><![CDATA[go]]></ac:plain-text-link-body></ac:link></p>"#,
    );
    assert!(
        out.contains("<span class=\"anchor\" id=\"my-spot\"></span>"),
        "{out}"
    );
    assert!(out.contains("<a href=\"#my-spot\""), "{out}");
}

#[test]
fn own_attachments_use_kbgate_urls() {
    let out = render(
        r#"<ac:image ac:alt="diagram" ac:width="300"><ri:attachment ri:filename="a b.png"/></ac:image><ac:link><ri:attachment ri:filename="guide.pdf"/></ac:link>"#,
    );
    assert_eq!(
        out,
        "<img src=\"/attachments/100/a%20b.png\" alt=\"diagram\" width=\"300\"><a href=\"/attachments/100/guide.pdf\" rel=\"noopener noreferrer nofollow\">guide.pdf</a>"
    );
}

#[test]
fn external_images_only_over_http() {
    let out = render(r#"<ac:image><ri:url ri:value="https://img.example/x.png"/></ac:image>"#);
    assert_eq!(out, "<img src=\"https://img.example/x.png\" alt=\"\">");
    let out = render(
        r#"<ac:image ac:alt="alt"><ri:url ri:value="data:image/png;base64,AAAA"/></ac:image>"#,
    );
    assert_eq!(out, "alt");
}

#[test]
fn page_links_become_refs() {
    let p = prepare(
        r#"<ac:link ac:anchor="Part 2"><ri:page ri:content-title="Other Page" ri:space-key="OPS"/><ac:plain-text-link-body><![CDATA[see this]]></ac:plain-text-link-body></ac:link><ac:link><ri:page ri:content-title="Same Space"/></ac:link>"#,
        &ctx(),
    );
    assert_eq!(
        p.refs,
        vec![
            Ref::PageLink {
                space_key: "OPS".into(),
                title: "Other Page".into(),
                anchor: Some("part-2".into()),
                text: "see this".into()
            },
            Ref::PageLink {
                space_key: "KB".into(),
                title: "Same Space".into(),
                anchor: None,
                text: "Same Space".into()
            },
        ]
    );
    assert_eq!(p.html, "\u{E000}0\u{E001}\u{E000}1\u{E001}");
}

#[test]
fn jira_macro_links_the_key_through_the_portal() {
    let out = render(
        r#"<ac:structured-macro ac:name="jira"><ac:parameter ac:name="server">System JIRA</ac:parameter><ac:parameter ac:name="key">ABC-123</ac:parameter></ac:structured-macro>"#,
    );
    assert_eq!(
        out,
        "<a class=\"jira-key\" href=\"/jira/ABC-123\" rel=\"noopener noreferrer nofollow\">ABC-123</a>"
    );
    // Anything that is not a plain issue key stays text.
    let out = render(
        r#"<ac:structured-macro ac:name="jira"><ac:parameter ac:name="key">x"&gt;&lt;script&gt;</ac:parameter></ac:structured-macro>"#,
    );
    assert!(out.starts_with("<span class=\"jira-key\">"), "{out}");
    assert!(!out.contains("<script"), "{out}");
}

#[test]
fn unknown_and_listing_macros_become_placeholders() {
    for name in ["content-by-label", "pagetree", "html", "some-plugin"] {
        let out = render(&format!(
            r#"<ac:structured-macro ac:name="{name}"><ac:rich-text-body><p>secret</p></ac:rich-text-body></ac:structured-macro>"#
        ));
        assert_eq!(
            out,
            format!(
                "<div class=\"macro-unsupported\">This content ({name}) is not available here.</div>"
            )
        );
    }
    let out = render(r#"<ac:structured-macro ac:name="&lt;img src=x onerror=alert(1)&gt;"/>"#);
    assert_inert(&out);
    assert!(out.contains("macro-unsupported"), "{out}");
}

#[test]
fn excerpt_is_recorded_and_shown_unless_hidden() {
    let shown = prepare(
        r#"<ac:structured-macro ac:name="excerpt"><ac:rich-text-body><p>short</p></ac:rich-text-body></ac:structured-macro><p>rest</p>"#,
        &ctx(),
    );
    assert_eq!(shown.html, "<p>short</p><p>rest</p>");
    assert_eq!(shown.excerpt.as_deref(), Some("<p>short</p>"));
    let hidden = prepare(
        r#"<ac:structured-macro ac:name="excerpt"><ac:parameter ac:name="hidden">true</ac:parameter><ac:rich-text-body><p>short</p></ac:rich-text-body></ac:structured-macro><p>rest</p>"#,
        &ctx(),
    );
    assert_eq!(hidden.html, "<p>rest</p>");
    assert_eq!(hidden.excerpt.as_deref(), Some("<p>short</p>"));
    assert_eq!(hidden.text, "rest");
}

#[test]
fn task_lists_use_check_characters() {
    let out = render(
        "<ac:task-list><ac:task><ac:task-id>1</ac:task-id><ac:task-status>complete</ac:task-status><ac:task-body>done</ac:task-body></ac:task><ac:task><ac:task-status>incomplete</ac:task-status><ac:task-body>todo</ac:task-body></ac:task></ac:task-list>",
    );
    assert_eq!(
        out,
        "<ul class=\"task-list\"><li class=\"task task-done\">\u{2611} done</li><li class=\"task\">\u{2610} todo</li></ul>"
    );
}

#[test]
fn small_inline_constructs() {
    let out = render(
        r#"<p><time datetime="2024-05-01"/> <ac:emoticon ac:name="tick"/> <ac:inline-comment-marker ac:ref="x">marked</ac:inline-comment-marker> <ac:link><ri:user ri:account-id="557058:secret-id"/></ac:link></p>"#,
    );
    assert_eq!(
        out,
        "<p>2024-05-01 \u{2705} marked <span class=\"user-mention\">@user</span></p>"
    );
    assert!(!out.contains("secret-id"));
}

#[test]
fn html_links_only_safe_schemes() {
    let out = render(
        r##"<a href="https://ex.com/a?b=1&amp;c=2">ok</a><a href="mailto:a@b.c">m</a><a href="#x">h</a><a href="ftp://x">f</a>"##,
    );
    assert_eq!(
        out,
        "<a href=\"https://ex.com/a?b=1&amp;c=2\" rel=\"noopener noreferrer nofollow\">ok</a><a href=\"mailto:a@b.c\" rel=\"noopener noreferrer nofollow\">m</a><a href=\"#x\" rel=\"noopener noreferrer nofollow\">h</a>f"
    );
}

#[test]
fn search_text_is_plain() {
    let p = prepare(
        "<h1>Title</h1><p>Some&nbsp;text &amp; more</p><ul><li>one</li><li>two</li></ul>",
        &ctx(),
    );
    // nbsp counts as whitespace in search text
    assert_eq!(p.text, "Title\nSome text & more\none\ntwo");
}
