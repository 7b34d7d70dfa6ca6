//! Storage format → a small element tree.
//!
//! The tree is built with quick-xml in a forgiving mode: mismatched or missing end tags are
//! repaired (an end tag closes the nearest open element of that name, stray end tags are
//! ignored, everything still open at the end is closed), HTML entities are resolved from a
//! table, and a syntax error never aborts the page: parsing resumes after it, or, if the
//! reader cannot make progress, the rest of the input is kept as text. Nesting is capped so a
//! hostile body cannot exhaust the stack when the tree is walked or dropped.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::entities;

/// Deepest element nesting kept; deeper start tags are flattened into their parent.
const MAX_DEPTH: usize = 96;
/// At most this many attributes are read per element.
const MAX_ATTRS: usize = 64;

/// Name of the synthetic root that lets fragments with several top-level nodes parse.
const ROOT: &str = "kbgate-root";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Element(Element),
    /// Decoded text (entities resolved, private-use characters removed).
    Text(String),
    /// Content of a CDATA section (private-use characters removed).
    CData(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Element {
    /// Qualified name, ASCII-lower-cased (`ac:structured-macro`, `p`).
    pub name: String,
    /// Attributes with lower-cased names and decoded values.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Child elements with the given name.
    pub fn child_elements<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter_map(move |n| match n {
            Node::Element(e) if e.name == name => Some(e),
            _ => None,
        })
    }

    pub fn first_child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find_map(|n| match n {
            Node::Element(e) if e.name == name => Some(e),
            _ => None,
        })
    }

    /// All text below this element, CDATA included, in document order.
    pub fn text(&self) -> String {
        let mut s = String::new();
        collect_text(&self.children, &mut s);
        s
    }
}

fn collect_text(nodes: &[Node], out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) | Node::CData(t) => out.push_str(t),
            Node::Element(e) => collect_text(&e.children, out),
        }
    }
}

/// True for characters that view-time reference tokens are made of; content may never
/// contain them.
pub(crate) fn is_private_use(c: char) -> bool {
    ('\u{E000}'..='\u{F8FF}').contains(&c)
}

/// Removes private-use characters (and NUL) so content cannot forge reference tokens.
pub(crate) fn strip_private_use(s: &str) -> String {
    s.chars()
        .filter(|&c| !is_private_use(c) && c != '\0')
        .collect()
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "br" | "hr"
            | "img"
            | "col"
            | "meta"
            | "link"
            | "input"
            | "area"
            | "base"
            | "wbr"
            | "source"
            | "param"
            | "embed"
            | "track"
    )
}

/// Parses a storage-format body. Never fails: malformed input degrades to a best-effort tree.
pub(crate) fn parse(storage: &str) -> Element {
    let wrapped = format!("<{ROOT}>{}</{ROOT}>", escape_stray_lt(storage));
    let mut reader = Reader::from_str(&wrapped);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = false;
        cfg.allow_unmatched_ends = true;
        cfg.allow_dangling_amp = true;
        cfg.check_comments = false;
        cfg.expand_empty_elements = false;
        cfg.trim_text(false);
    }

    let mut b = TreeBuilder::default();
    loop {
        let before = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let el = element_from(&e);
                if is_void(&el.name) {
                    b.append(Node::Element(el));
                } else {
                    b.open(el);
                }
            }
            Ok(Event::Empty(e)) => b.append(Node::Element(element_from(&e))),
            Ok(Event::End(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).to_ascii_lowercase();
                b.close(&name);
            }
            Ok(Event::Text(t)) => {
                let raw = String::from_utf8_lossy(&t);
                b.text(&raw);
            }
            Ok(Event::GeneralRef(r)) => {
                let name = String::from_utf8_lossy(&r).into_owned();
                match r.resolve_char_ref() {
                    Ok(Some(c)) => b.text(c.encode_utf8(&mut [0; 4])),
                    Ok(None) => match entities::lookup(&name) {
                        Some(s) => b.text(s),
                        None => b.text(&format!("&{name};")),
                    },
                    Err(_) => b.text(&format!("&{name};")),
                }
            }
            Ok(Event::CData(c)) => {
                let raw = String::from_utf8_lossy(&c);
                b.append(Node::CData(strip_private_use(&raw)));
            }
            Ok(Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_)) => {}
            Ok(Event::Eof) => break,
            Err(_) => {
                let after = reader.buffer_position();
                if after <= before {
                    // No progress possible: keep the remainder as text rather than looping.
                    let start = usize::try_from(before).unwrap_or(usize::MAX);
                    if let Some(rest) = wrapped.get(start..) {
                        let rest = rest.strip_suffix(&format!("</{ROOT}>")).unwrap_or(rest);
                        b.text(rest);
                    }
                    break;
                }
            }
        }
    }
    b.finish()
}

/// Escapes a `<` that cannot start markup (`a < b`), as an HTML parser would read it as
/// text; CDATA sections and comments are copied untouched.
fn escape_stray_lt(s: &str) -> std::borrow::Cow<'_, str> {
    let stray = |rest: &str| {
        !rest[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'))
    };
    // Fast path: nothing to do for well-formed bodies.
    if !s.match_indices('<').any(|(i, _)| stray(&s[i..])) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let section_end = if rest.starts_with("<![CDATA[") {
            Some("]]>")
        } else if rest.starts_with("<!--") {
            Some("-->")
        } else {
            None
        };
        if let Some(end) = section_end {
            let len = rest.find(end).map_or(rest.len(), |j| j + end.len());
            out.push_str(&rest[..len]);
            rest = &rest[len..];
        } else if stray(rest) {
            out.push_str("&lt;");
            rest = &rest[1..];
        } else {
            out.push('<');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn element_from(e: &BytesStart<'_>) -> Element {
    let name = String::from_utf8_lossy(e.name().as_ref()).to_ascii_lowercase();
    let mut attrs = Vec::new();
    for a in e.html_attributes().with_checks(false).take(MAX_ATTRS) {
        let Ok(a) = a else { continue };
        let key = String::from_utf8_lossy(a.key.as_ref()).to_ascii_lowercase();
        let value = decode_attr_value(&String::from_utf8_lossy(&a.value));
        attrs.push((key, value));
    }
    Element {
        name,
        attrs,
        children: Vec::new(),
    }
}

/// Resolves entity and character references in an attribute value; unknown or broken
/// references stay literal.
fn decode_attr_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .char_indices()
            .take(40)
            .find(|&(_, c)| c == ';')
            .map(|(j, _)| j);
        match end.and_then(|j| decode_ref(&after[..j]).map(|s| (j, s))) {
            Some((j, s)) => {
                out.push_str(&s);
                rest = &after[j + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    strip_private_use(&out)
}

fn decode_ref(name: &str) -> Option<String> {
    if let Some(num) = name.strip_prefix('#') {
        let code = if let Some(hex) = num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
            u32::from_str_radix(hex, 16).ok()?
        } else {
            num.parse::<u32>().ok()?
        };
        return char::from_u32(code).map(String::from);
    }
    entities::lookup(name).map(String::from)
}

#[derive(Default)]
struct TreeBuilder {
    /// Open elements; index 0 is the synthetic root once it is opened.
    stack: Vec<Element>,
    /// Completed top-level nodes (only before the root opens or after it closes).
    top: Vec<Node>,
}

impl TreeBuilder {
    fn open(&mut self, el: Element) {
        if self.stack.len() >= MAX_DEPTH {
            return;
        }
        self.stack.push(el);
    }

    fn append(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(node),
            None => self.top.push(node),
        }
    }

    fn text(&mut self, raw: &str) {
        let s = strip_private_use(raw);
        if s.is_empty() {
            return;
        }
        if let Some(parent) = self.stack.last_mut() {
            if let Some(Node::Text(prev)) = parent.children.last_mut() {
                prev.push_str(&s);
                return;
            }
            parent.children.push(Node::Text(s));
        } else {
            self.top.push(Node::Text(s));
        }
    }

    fn close(&mut self, name: &str) {
        let Some(pos) = self.stack.iter().rposition(|e| e.name == name) else {
            return; // stray end tag
        };
        while self.stack.len() > pos {
            self.pop_one();
        }
    }

    fn pop_one(&mut self) {
        if let Some(el) = self.stack.pop() {
            self.append(Node::Element(el));
        }
    }

    fn finish(mut self) -> Element {
        while !self.stack.is_empty() {
            self.pop_one();
        }
        let mut root = Element {
            name: ROOT.to_string(),
            ..Element::default()
        };
        for n in self.top {
            match n {
                Node::Element(e) if e.name == ROOT => root.children.extend(e.children),
                other => root.children.push(other),
            }
        }
        root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(root: &Element) -> &Element {
        match &root.children[0] {
            Node::Element(e) => e,
            other => panic!("expected element, got {other:?}"),
        }
    }

    #[test]
    fn parses_multiple_top_level_nodes() {
        let root = parse("<p>a</p><p>b</p>text");
        assert_eq!(root.children.len(), 3);
        assert_eq!(root.text(), "abtext");
    }

    #[test]
    fn resolves_html_entities_and_char_refs() {
        let root = parse("<p>a&nbsp;b&mdash;c&#65;&#x42;&amp;&bogus;</p>");
        assert_eq!(root.text(), "a\u{a0}b\u{2014}cAB&&bogus;");
    }

    #[test]
    fn stray_ampersand_is_text() {
        let root = parse("<p>Tom & Jerry &</p>");
        assert_eq!(root.text(), "Tom & Jerry &");
    }

    #[test]
    fn repairs_unclosed_and_stray_tags() {
        let root = parse("<p><strong>bold</p></em>after");
        let p = first(&root);
        assert_eq!(p.name, "p");
        assert_eq!(p.text(), "bold");
        assert_eq!(root.text(), "boldafter");
    }

    #[test]
    fn cdata_is_kept_exactly() {
        let root = parse("<x><![CDATA[a < b && ]]]]><![CDATA[> c]]></x>");
        assert_eq!(first(&root).text(), "a < b && ]]> c");
    }

    #[test]
    fn private_use_characters_are_removed() {
        let root = parse("<p a=\"x\u{E000}y&#xE001;\">1\u{E000}2&#xE000;3</p>");
        let p = first(&root);
        assert_eq!(p.text(), "123");
        assert_eq!(p.attr("a"), Some("xy"));
    }

    #[test]
    fn attribute_entities_are_decoded() {
        let root = parse("<a href=\"javascript&#58;alert(1)\" title=\"a&amp;b &nbsp;\">x</a>");
        let a = first(&root);
        assert_eq!(a.attr("href"), Some("javascript:alert(1)"));
        assert_eq!(a.attr("title"), Some("a&b \u{a0}"));
    }

    #[test]
    fn void_html_elements_do_not_swallow_siblings() {
        let root = parse("<p>a<br>b</p><p>c</p>");
        assert_eq!(root.children.len(), 2);
    }

    #[test]
    fn deep_nesting_is_capped() {
        let body = "<div>".repeat(10_000) + "x" + &"</div>".repeat(10_000);
        let root = parse(&body);
        assert_eq!(root.text(), "x");
        fn depth(e: &Element) -> usize {
            1 + e
                .children
                .iter()
                .filter_map(|n| match n {
                    Node::Element(c) => Some(depth(c)),
                    _ => None,
                })
                .max()
                .unwrap_or(0)
        }
        assert!(depth(&root) <= MAX_DEPTH + 1);
    }

    #[test]
    fn a_lone_less_than_is_text() {
        let root = parse("<p>a < b and c > d, x<3, <= <</p><x><![CDATA[a < b]]></x>");
        assert_eq!(root.text(), "a < b and c > d, x<3, <= <a < b");
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            "<",
            "<<>>",
            "a < b > c",
            "<!--",
            "<![CDATA[",
            "</",
            "<p",
            "<?x",
            "&#xFFFFFFFF;",
            "<a b=>",
        ] {
            let _ = parse(s);
        }
    }
}
