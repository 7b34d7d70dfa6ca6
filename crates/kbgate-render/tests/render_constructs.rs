//! One test per storage-format construct, checked on the resolved HTML.

mod render_common;

use std::collections::HashMap;

use kbgate_render::{Heading, PrepareContext, Ref, mentioned_accounts, prepare, resolve};
use render_common::{Mirror, assert_inert, render, render_with};

fn ctx() -> PrepareContext<'static> {
    PrepareContext {
        space_key: "KB",
        page_id: "100",
        user_names: None,
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
    assert!(
        p.html.starts_with(
            "<pre class=\"code-block\" tabindex=\"0\"><code class=\"language-javascript\">"
        ),
        "{}",
        p.html
    );
    assert_eq!(
        text_of(&p.html),
        "if (a &lt; b &amp;&amp; c &gt; d) { x = \"]]&gt;\"; }"
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
    for (kind, class) in [
        ("info", "info"),
        ("note", "warning"),
        ("warning", "error"),
        ("tip", "success"),
    ] {
        let out = render(&format!(
            r#"<ac:structured-macro ac:name="{kind}"><ac:parameter ac:name="title">T</ac:parameter><ac:rich-text-body><p>body</p></ac:rich-text-body></ac:structured-macro>"#
        ));
        assert_eq!(
            out,
            format!(
                "<aside class=\"panel panel-{class}\" role=\"note\"><p class=\"panel-title\"><strong>T</strong></p><p>body</p></aside>"
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
                // Empty body: the title shows only to viewers who may read the target.
                text: String::new()
            },
        ]
    );
    assert_eq!(p.html, "\u{E000}0\u{E001}\u{E000}1\u{E001}");
}

/// The markup of `html` with its tags removed (entities kept).
fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

const JIRA_KEY: &str = r#"<ac:structured-macro ac:name="jira" ac:schema-version="1"><ac:parameter ac:name="server">System JIRA</ac:parameter><ac:parameter ac:name="serverId">a1b2c3d4-0000-1111-2222-333344445555</ac:parameter><ac:parameter ac:name="key">ABC-123</ac:parameter></ac:structured-macro>"#;

#[test]
fn jira_macro_links_the_key_to_the_configured_site() {
    let site = Mirror {
        jira: Some("https://acme.atlassian.net/".into()),
        ..Mirror::default()
    };
    assert_eq!(
        render_with(JIRA_KEY, &site),
        "<a class=\"jira-key\" href=\"https://acme.atlassian.net/browse/ABC-123\" rel=\"noopener noreferrer nofollow\">ABC-123</a>"
    );
    // No Jira site: the key as text, never a dead link.
    assert_eq!(render(JIRA_KEY), "<span class=\"jira-key\">ABC-123</span>");
    // The key is searchable; the server name and id are not shown.
    let p = prepare(JIRA_KEY, &ctx());
    assert_eq!(p.text, "ABC-123");
    assert!(!render_with(JIRA_KEY, &site).contains("System"));
    // A JQL list is not shown, and neither is its query.
    let out = render_with(
        r#"<ac:structured-macro ac:name="jira"><ac:parameter ac:name="jqlQuery">project = SECRET</ac:parameter></ac:structured-macro>"#,
        &site,
    );
    assert_eq!(
        out,
        "<div class=\"macro-unsupported\">This content is not available here.</div>"
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
    for name in [
        "content-by-label",
        "pagetree",
        "html",
        "hide-if",
        "show-if",
        "visibility-restricted",
        "some-plugin",
    ] {
        let out = render(&format!(
            r#"<ac:structured-macro ac:name="{name}"><ac:parameter ac:name="x">y</ac:parameter><ac:plain-text-body>secret</ac:plain-text-body></ac:structured-macro>"#
        ));
        assert_eq!(
            out, "<div class=\"macro-unsupported\">This content is not available here.</div>",
            "{name}"
        );
    }
    // Listing and visibility macros never show a body, even one they carry.
    for name in [
        "content-by-label",
        "pagetree",
        "hide-if",
        "show-if",
        "hidden-content",
    ] {
        let out = render(&format!(
            r#"<ac:structured-macro ac:name="{name}"><ac:rich-text-body><p>secret</p></ac:rich-text-body></ac:structured-macro>"#
        ));
        assert!(
            !out.contains("secret") && out.contains("macro-unsupported"),
            "{name}: {out}"
        );
        assert!(!out.contains(name), "{out}");
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
        "<p>2024-05-01 \u{2705} marked <span class=\"user-mention\">a team member</span></p>"
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

#[test]
fn unknown_macros_with_a_body_show_the_body_not_the_name() {
    let out = render(
        r#"<ac:structured-macro ac:name="aura-card-box"><ac:parameter ac:name="color">red</ac:parameter><ac:rich-text-body><p>Body text</p></ac:rich-text-body></ac:structured-macro>"#,
    );
    assert_eq!(out, "<div class=\"macro-body\"><p>Body text</p></div>");
}

#[test]
fn panels_use_the_names_and_colours_people_see() {
    for (macro_name, class) in [
        ("info", "panel-info"),
        ("tip", "panel-success"),
        ("note", "panel-warning"),
        ("warning", "panel-error"),
    ] {
        let out = render(&format!(
            r#"<ac:structured-macro ac:name="{macro_name}"><ac:parameter ac:name="title">T</ac:parameter><ac:rich-text-body><p>b</p></ac:rich-text-body></ac:structured-macro>"#
        ));
        assert_eq!(
            out,
            format!(
                "<aside class=\"panel {class}\" role=\"note\"><p class=\"panel-title\"><strong>T</strong></p><p>b</p></aside>"
            )
        );
    }
}

#[test]
fn custom_panels_map_their_colour_to_the_palette() {
    let out = render(
        r#"<ac:structured-macro ac:name="panel" ac:schema-version="1"><ac:parameter ac:name="panelIcon">:slight_smile:</ac:parameter><ac:parameter ac:name="panelIconText">&#128578;</ac:parameter><ac:parameter ac:name="bgColor">#FFF0B3</ac:parameter><ac:rich-text-body><p>Custom</p></ac:rich-text-body></ac:structured-macro>"#,
    );
    assert_eq!(
        out,
        "<aside class=\"panel panel-custom panel-bg-orange\" role=\"note\"><span class=\"panel-icon\">\u{1f642}</span><p>Custom</p></aside>"
    );
    // A colour that is not a colour is dropped, never passed through.
    let out = render(
        r#"<ac:structured-macro ac:name="panel"><ac:parameter ac:name="bgColor">red;background:url(x)</ac:parameter><ac:rich-text-body><p>x</p></ac:rich-text-body></ac:structured-macro>"#,
    );
    assert_eq!(
        out,
        "<aside class=\"panel panel-custom\" role=\"note\"><p>x</p></aside>"
    );
    assert_inert(&out);
}

#[test]
fn adf_panels_render_from_their_node_not_the_fallback() {
    let out = render(
        r#"<ac:adf-extension><ac:adf-node type="panel"><ac:adf-attribute key="panel-type">note</ac:adf-attribute><ac:adf-content><p>A note</p></ac:adf-content></ac:adf-node><ac:adf-fallback><div class="panel"><p>A note</p></div></ac:adf-fallback></ac:adf-extension>"#,
    );
    assert_eq!(
        out,
        "<aside class=\"panel panel-note\" role=\"note\"><p>A note</p></aside>"
    );
    for kind in ["success", "error", "warning", "info"] {
        let out = render(&format!(
            r#"<ac:adf-extension><ac:adf-node type="panel"><ac:adf-attribute key="panel-type">{kind}</ac:adf-attribute><ac:adf-content><p>x</p></ac:adf-content></ac:adf-node></ac:adf-extension>"#
        ));
        assert!(
            out.starts_with(&format!("<aside class=\"panel panel-{kind}\"")),
            "{out}"
        );
    }
    let out = render(
        r#"<ac:adf-extension><ac:adf-node type="panel"><ac:adf-attribute key="panel-type">custom</ac:adf-attribute><ac:adf-attribute key="panel-color">#eae6ff</ac:adf-attribute><ac:adf-content><p>x</p></ac:adf-content></ac:adf-node></ac:adf-extension>"#,
    );
    assert!(
        out.starts_with("<aside class=\"panel panel-custom panel-bg-purple\""),
        "{out}"
    );
    // Other nodes keep using the fallback.
    let out = render(
        r#"<ac:adf-extension><ac:adf-node type="decision-list"><ac:adf-content>x</ac:adf-content></ac:adf-node><ac:adf-fallback><p>fallback</p></ac:adf-fallback></ac:adf-extension>"#,
    );
    assert_eq!(out, "<p>fallback</p>");
}

#[test]
fn status_lozenges_keep_their_colour() {
    let out = render(
        r#"<ac:structured-macro ac:name="status"><ac:parameter ac:name="colour">Green</ac:parameter><ac:parameter ac:name="title">Done</ac:parameter></ac:structured-macro><ac:structured-macro ac:name="status"><ac:parameter ac:name="colour">Red</ac:parameter><ac:parameter ac:name="title">Blocked</ac:parameter><ac:parameter ac:name="subtle">true</ac:parameter></ac:structured-macro><ac:structured-macro ac:name="status"><ac:parameter ac:name="colour">pink" onclick="x</ac:parameter></ac:structured-macro>"#,
    );
    assert_eq!(
        out,
        "<span class=\"status status-green\">Done</span><span class=\"status status-red status-subtle\">Blocked</span><span class=\"status status-grey\">GREY</span>"
    );
}

#[test]
fn layouts_become_grids_by_section_type() {
    let out = render(
        r#"<ac:layout><ac:layout-section ac:type="two_left_sidebar" ac:breakout-mode="default"><ac:layout-cell><p>a</p></ac:layout-cell><ac:layout-cell><p>b</p></ac:layout-cell></ac:layout-section><ac:layout-section ac:type="weird&quot; x"><ac:layout-cell><p>c</p></ac:layout-cell></ac:layout-section></ac:layout>"#,
    );
    assert_eq!(
        out,
        "<div class=\"layout\"><div class=\"layout-section layout-two-left-sidebar\"><div class=\"layout-cell\"><p>a</p></div><div class=\"layout-cell\"><p>b</p></div></div><div class=\"layout-section\"><div class=\"layout-cell\"><p>c</p></div></div></div>"
    );
}

#[test]
fn tabs_become_titled_sections_in_order() {
    let out = render(
        r#"<ac:structured-macro ac:name="ui-tabs"><ac:rich-text-body><ac:structured-macro ac:name="ui-tab"><ac:parameter ac:name="title">Windows</ac:parameter><ac:rich-text-body><p>w</p></ac:rich-text-body></ac:structured-macro><ac:structured-macro ac:name="ui-tab"><ac:parameter ac:name="title">macOS</ac:parameter><ac:rich-text-body><p>m</p></ac:rich-text-body></ac:structured-macro></ac:rich-text-body></ac:structured-macro>"#,
    );
    assert_eq!(
        out,
        "<div class=\"tab-group\"><div class=\"tab\"><p class=\"tab-title\">Windows</p><p>w</p></div><div class=\"tab\"><p class=\"tab-title\">macOS</p><p>m</p></div></div>"
    );
    let out = render(
        r#"<ac:structured-macro ac:name="deck"><ac:parameter ac:name="id">d</ac:parameter><ac:rich-text-body><ac:structured-macro ac:name="card"><ac:parameter ac:name="label">One</ac:parameter><ac:rich-text-body><p>1</p></ac:rich-text-body></ac:structured-macro></ac:rich-text-body></ac:structured-macro>"#,
    );
    assert_eq!(
        out,
        "<div class=\"tab-group\"><div class=\"tab\"><p class=\"tab-title\">One</p><p>1</p></div></div>"
    );
}

#[test]
fn expand_is_details_and_summary() {
    let out = render(
        r#"<ac:structured-macro ac:name="expand"><ac:parameter ac:name="title">More</ac:parameter><ac:rich-text-body><p>hidden</p></ac:rich-text-body></ac:structured-macro>"#,
    );
    assert_eq!(
        out,
        "<details class=\"expand\"><summary>More</summary><div class=\"expand-body\"><p>hidden</p></div></details>"
    );
}

#[test]
fn code_is_highlighted_with_fixed_classes_and_wraps_on_request() {
    let body = r#"<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">python</ac:parameter><ac:parameter ac:name="wrap">true</ac:parameter><ac:plain-text-body><![CDATA[def f(x):
    return "<b>" # note
]]></ac:plain-text-body></ac:structured-macro>"#;
    let p = prepare(body, &ctx());
    assert!(
        p.html.starts_with(
            "<pre class=\"code-block code-wrap\" tabindex=\"0\"><code class=\"language-python\">"
        ),
        "{}",
        p.html
    );
    assert!(
        p.html.contains("<span class=\"hl-keyword\">def"),
        "{}",
        p.html
    );
    assert!(
        p.html.contains("<span class=\"hl-comment\"># note"),
        "{}",
        p.html
    );
    assert!(p.html.contains("&lt;b&gt;"), "{}", p.html);
    // Search text is the code, not the markup.
    assert!(p.text.contains("return \"<b>\" # note"), "{}", p.text);
    assert!(!p.text.contains("hl-"), "{}", p.text);
    // No language, an unknown one: plain text, no spans.
    let plain = prepare(
        r#"<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">cobol-9000</ac:parameter><ac:plain-text-body>def f</ac:plain-text-body></ac:structured-macro>"#,
        &ctx(),
    );
    assert_eq!(
        plain.html,
        "<pre class=\"code-block\" tabindex=\"0\"><code>def f</code></pre>"
    );
    // collapse=true folds the block.
    let folded = prepare(
        r#"<ac:structured-macro ac:name="code"><ac:parameter ac:name="collapse">true</ac:parameter><ac:plain-text-body>x</ac:plain-text-body></ac:structured-macro>"#,
        &ctx(),
    );
    assert!(
        folded
            .html
            .starts_with("<details class=\"expand\"><summary>Expand source</summary><pre"),
        "{}",
        folded.html
    );
}

#[test]
fn mentions_show_the_looked_up_name_only_when_names_are_shown() {
    let body = r#"<p>Ask <ac:link><ri:user ri:account-id="557058:f58131cb-b67d"/></ac:link> or <ac:link><ri:user ri:account-id="unknown-id"/></ac:link>.</p>"#;
    assert_eq!(
        mentioned_accounts(body),
        vec!["557058:f58131cb-b67d".to_string(), "unknown-id".to_string()]
    );
    let names: HashMap<String, String> = [(
        "557058:f58131cb-b67d".to_string(),
        "Dana <Support> Lee".to_string(),
    )]
    .into();
    let p = prepare(
        body,
        &PrepareContext {
            user_names: Some(&names),
            ..ctx()
        },
    );
    // The name is neither in the search text nor in the template (it is a reference).
    assert!(!p.text.contains("Dana"), "{}", p.text);
    assert!(
        !p.html.contains("Dana") && !p.html.contains("557058"),
        "{}",
        p.html
    );
    let shown = Mirror {
        show_names: true,
        ..Mirror::default()
    };
    assert_eq!(
        resolve(&p.encode(), &shown),
        "<p>Ask <span class=\"user-mention\">@Dana &lt;Support&gt; Lee</span> or <span class=\"user-mention\">a team member</span>.</p>"
    );
    assert_eq!(
        resolve(&p.encode(), &Mirror::default()),
        "<p>Ask <span class=\"user-mention\">a team member</span> or <span class=\"user-mention\">a team member</span>.</p>"
    );
    // Account ids that are not ids are not looked up.
    assert!(
        mentioned_accounts(r#"<ac:link><ri:user ri:account-id="a&amp;b=c"/></ac:link>"#).is_empty()
    );
}

#[test]
fn empty_link_to_an_unreadable_page_shows_a_placeholder_not_the_title() {
    let body = r#"<p><ac:link><ri:page ri:content-title="Secret Merger Plan"/></ac:link> and <ac:link><ri:page ri:content-title="Secret Merger Plan"/><ac:plain-text-link-body><![CDATA[see here]]></ac:plain-text-link-body></ac:link></p>"#;
    let p = prepare(body, &ctx());
    assert!(!p.text.contains("Secret"), "{}", p.text);
    let out = render(body);
    assert_eq!(
        out,
        "<p><span class=\"link-unavailable\">another page</span> and see here</p>"
    );
    // Readable: the target's title.
    let mut m = Mirror::default();
    m.add("KB", "7", "Secret Merger Plan", "<p>x</p>", true);
    assert_eq!(
        render_with(body, &m),
        "<p><a href=\"/spaces/KB/pages/7\">Secret Merger Plan</a> and <a href=\"/spaces/KB/pages/7\">see here</a></p>"
    );
}

#[test]
fn included_ids_are_made_unique_and_their_links_follow() {
    let mut m = Mirror::default();
    m.add(
        "KB",
        "8",
        "Shared",
        r#"<ac:structured-macro ac:name="toc"/><h2>Setup</h2><p><ac:link ac:anchor="Setup"><ac:plain-text-link-body><![CDATA[up]]></ac:plain-text-link-body></ac:link></p>"#,
        true,
    );
    let include = r#"<ac:structured-macro ac:name="include"><ac:parameter ac:name=""><ac:link><ri:page ri:content-title="Shared"/></ac:link></ac:parameter></ac:structured-macro>"#;
    let out = render_with(&format!("<h2>Setup</h2>{include}{include}"), &m);
    let ids: Vec<&str> = out
        .match_indices("id=\"")
        .map(|(i, _)| {
            let rest = &out[i + 4..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(ids, vec!["setup", "setup-2", "setup-3"], "{out}");
    // Each copy's toc and anchor link point at its own heading.
    assert_eq!(out.matches("href=\"#setup-2\"").count(), 2, "{out}");
    assert_eq!(out.matches("href=\"#setup-3\"").count(), 2, "{out}");
    assert!(!out.contains("href=\"#setup\""), "{out}");
}
