//! Snapshot tests over hand-written tricky bodies and pages of the simulator's demo site.
//! The `.snap` files under `tests/snapshots/` were reviewed by hand.

mod render_common;

use confluence_sim::SimConfig;
use kbgate_render::{PrepareContext, prepare};
use render_common::{Mirror, assert_inert_markup, render, render_with};

/// Prepared template (tokens shown as `{{ref N}}`), refs, headings, text and resolved HTML.
fn describe(storage: &str, access: &Mirror) -> String {
    let p = prepare(
        storage,
        &PrepareContext {
            space_key: "KB",
            page_id: "100",
            user_names: None,
        },
    );
    let template = p
        .html
        .replace('\u{E000}', "{{ref ")
        .replace('\u{E001}', "}}");
    format!(
        "--- template\n{template}\n--- refs\n{:#?}\n--- headings\n{:#?}\n--- excerpt\n{:?}\n--- text\n{}\n--- resolved\n{}\n",
        p.refs,
        p.headings,
        p.excerpt,
        p.text,
        render_with(storage, access)
    )
}

fn access() -> Mirror {
    let mut m = Mirror::default();
    m.add("KB", "1", "Readable", "<ac:structured-macro ac:name=\"excerpt\"><ac:rich-text-body><p>Readable <em>excerpt</em></p></ac:rich-text-body></ac:structured-macro><p>Readable body</p>", true);
    m.add("KB", "2", "Denied", "<p>denied body</p>", false);
    m.add_child("100", "KB", "Readable");
    m.add_child("100", "KB", "Denied");
    m
}

#[test]
fn nested_macros() {
    let body = r#"<h1>Overview</h1>
<ac:structured-macro ac:name="toc"><ac:parameter ac:name="maxLevel">2</ac:parameter></ac:structured-macro>
<ac:structured-macro ac:name="expand"><ac:parameter ac:name="title">Details &amp; more</ac:parameter><ac:rich-text-body>
  <h2>Inside expand</h2>
  <ac:structured-macro ac:name="warning"><ac:rich-text-body>
    <p>Careful: <ac:structured-macro ac:name="status"><ac:parameter ac:name="colour">Red</ac:parameter><ac:parameter ac:name="title">BROKEN</ac:parameter></ac:structured-macro></p>
    <ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash</ac:parameter><ac:plain-text-body><![CDATA[echo "a<b" && exit 1]]></ac:plain-text-body></ac:structured-macro>
    <p>See <ac:link><ri:page ri:content-title="Readable"/></ac:link> and <ac:link><ri:page ri:content-title="Denied"/><ac:plain-text-link-body><![CDATA[the other one]]></ac:plain-text-link-body></ac:link>.</p>
  </ac:rich-text-body></ac:structured-macro>
</ac:rich-text-body></ac:structured-macro>
<h2>Overview</h2>
<h3>Too deep for the toc</h3>"#;
    insta::assert_snapshot!(describe(body, &access()));
}

#[test]
fn cdata_split_and_angle_heavy_code() {
    let body = r#"<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">xml</ac:parameter><ac:parameter ac:name="title">config.xml</ac:parameter><ac:plain-text-body><![CDATA[<?xml version="1.0"?>
<root attr="x&amp;y">
  <![CDATA[inner]]]]><![CDATA[>
  <script>alert("not run")</script>
  &nbsp; &lt; <<>> </root>]]></ac:plain-text-body></ac:structured-macro>
<ac:structured-macro ac:name="noformat"><ac:plain-text-body><![CDATA[  indented
	tabbed
trailing   ]]></ac:plain-text-body></ac:structured-macro>"#;
    insta::assert_snapshot!(describe(body, &access()));
}

#[test]
fn entities() {
    let body = "<p>a&nbsp;b &mdash; c &ndash; d &hellip; &ldquo;q&rdquo; &copy; &euro;5 &#8364; &#x1F600; &unknown; &amp;amp; AT&T &lt;tag&gt;</p><p title=\"x&nbsp;y\">&auml;&ouml;&uuml;&szlig;</p>";
    insta::assert_snapshot!(describe(body, &access()));
}

#[test]
fn malformed_xml() {
    let body = "<p>unclosed <strong>bold <em>both</p><p>next</strong> para</em></p></div></span>stray close<ul><li>one<li>two</ul><table><tr><td>cell<td>cell2</table><p>a < b and c > d</p><br><hr><p>end";
    insta::assert_snapshot!(describe(body, &access()));
}

#[test]
fn unknown_and_view_time_macros() {
    let body = r#"<ac:structured-macro ac:name="gliffy"><ac:parameter ac:name="name">diagram</ac:parameter></ac:structured-macro>
<ac:structured-macro ac:name="content-by-label"><ac:parameter ac:name="labels">secret</ac:parameter></ac:structured-macro>
<ac:structured-macro ac:name="include"><ac:parameter ac:name=""><ac:link><ri:page ri:content-title="Readable"/></ac:link></ac:parameter></ac:structured-macro>
<ac:structured-macro ac:name="include"><ac:parameter ac:name=""><ac:link><ri:page ri:content-title="Denied"/></ac:link></ac:parameter></ac:structured-macro>
<ac:structured-macro ac:name="excerpt-include"><ac:parameter ac:name=""><ac:link><ri:page ri:content-title="Readable"/></ac:link></ac:parameter></ac:structured-macro>
<ac:structured-macro ac:name="children"><ac:parameter ac:name="all">true</ac:parameter></ac:structured-macro>
<ac:structured-macro ac:name="jira"><ac:parameter ac:name="key">KB-42</ac:parameter></ac:structured-macro>
<ac:structured-macro ac:name="jira"><ac:parameter ac:name="jqlQuery">project = SECRET</ac:parameter></ac:structured-macro>
<p><ac:link><ri:attachment ri:filename="spec v2.pdf"><ri:page ri:content-title="Denied"/></ri:attachment></ac:link></p>"#;
    insta::assert_snapshot!(describe(body, &access()));
}

#[test]
fn deeply_nested_lists() {
    let mut body = String::new();
    for i in 0..12 {
        body.push_str(&format!("<ul><li>level {i}"));
    }
    for _ in 0..12 {
        body.push_str("</li></ul>");
    }
    body.push_str("<ol start=\"3\"><li>x<ol><li>y<ul><li>z</li></ul></li></ol></li></ol>");
    insta::assert_snapshot!(describe(&body, &access()));
}

#[test]
fn tables() {
    let body = r#"<table data-layout="wide"><colgroup><col style="width: 100px"/><col/></colgroup><tbody>
<tr><th colspan="2"><p>Header</p></th></tr>
<tr><td rowspan="2">left</td><td><ul><li>in cell</li></ul></td></tr>
<tr><td><ac:structured-macro ac:name="status"><ac:parameter ac:name="colour">Green</ac:parameter><ac:parameter ac:name="title">OK</ac:parameter></ac:structured-macro></td></tr>
<tr><td colspan="99999">huge span dropped</td><td rowspan="x">bad span dropped</td></tr>
</tbody></table>"#;
    insta::assert_snapshot!(describe(body, &access()));
}

#[test]
fn layouts_images_tasks_and_links() {
    let body = r#"<ac:layout><ac:layout-section ac:type="two_equal"><ac:layout-cell><p><ac:image ac:height="150" ac:alt="Logo"><ri:attachment ri:filename="logo.png"/></ac:image></p></ac:layout-cell><ac:layout-cell><ac:task-list><ac:task><ac:task-id>1</ac:task-id><ac:task-status>complete</ac:task-status><ac:task-body>Ship <strong>it</strong></ac:task-body></ac:task></ac:task-list></ac:layout-cell></ac:layout-section></ac:layout>
<p><ac:link><ri:url ri:value="https://example.com/docs"/><ac:plain-text-link-body><![CDATA[docs]]></ac:plain-text-link-body></ac:link> <ac:link><ri:user ri:account-id="5b10ac8d82e05b22cc7d4ef5"/></ac:link> <ac:link><ri:space ri:space-key="OPS"/></ac:link> <ac:emoticon ac:name="smile"/> <ac:emoticon ac:name="blue-star" ac:emoji-fallback="*"/></p>"#;
    insta::assert_snapshot!(describe(body, &access()));
}

fn demo_pages() -> Vec<(u64, String, String, String)> {
    let sim = SimConfig::demo().build();
    let spaces: Vec<String> = sim.read(|s| s.spaces.values().map(|sp| sp.key.clone()).collect());
    let mut pages = Vec::new();
    for key in spaces {
        for id in sim.page_ids_in_space(&key) {
            if let (Some(page), Some(body)) = (sim.page(id), sim.page_body(id)) {
                pages.push((id, key.clone(), page.title, body));
            }
        }
    }
    pages
}

#[test]
fn every_demo_page_renders_inert() {
    let pages = demo_pages();
    assert!(pages.len() > 100);
    let mut m = Mirror::default();
    for (id, key, title, body) in &pages {
        m.add(key, &id.to_string(), title, body, id % 3 != 0);
    }
    for (id, key, _, body) in &pages {
        let p = prepare(
            body,
            &PrepareContext {
                space_key: key,
                page_id: &id.to_string(),
                user_names: None,
            },
        );
        let out = kbgate_render::resolve(&p.encode(), &m);
        assert_inert_markup(&out);
    }
}

#[test]
fn demo_page_snapshots() {
    let pages = demo_pages();
    // The first page of each of a few content kinds, chosen by what their bodies contain.
    let picks = [
        ("demo_code", "ac:name=\"code\""),
        ("demo_include", "ac:name=\"include\""),
        ("demo_children", "ac:name=\"children\""),
        ("demo_hostile", "<script"),
        ("demo_attachment", "ri:attachment"),
    ];
    for (name, needle) in picks {
        let Some((_, _, title, body)) = pages.iter().find(|(_, _, _, b)| b.contains(needle)) else {
            panic!("demo site has no page containing {needle}");
        };
        let out = render(body);
        assert_inert_markup(&out);
        insta::assert_snapshot!(name, format!("{title}\n---\n{out}"));
    }
}
