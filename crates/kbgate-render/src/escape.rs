//! The workspace's one HTML-escaping helper and one percent-encoder for path segments: the
//! renderer and the portal build the same links and text, so they must escape them the same
//! way. (A crate was considered for escaping: `html-escape` also escapes `/` or writes `&#x27;`,
//! which would change every stored and served page for no gain over these few lines.)

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Appends `s` escaped for HTML text and attribute (double- or single-quoted) contexts.
pub fn escape_html_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `s` escaped for HTML text and attribute contexts (see [`escape_html_into`]).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    escape_html_into(&mut out, s);
    out
}

/// Percent-encodes one URL path segment (everything but RFC 3986 unreserved characters), so a
/// file name or id can never add a segment (`/`), a query or a fragment to a link.
pub fn percent_encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_five_characters() {
        assert_eq!(
            escape_html(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
        assert_eq!(escape_html("plain ü"), "plain ü");
        let mut out = String::from("<p>");
        escape_html_into(&mut out, "<");
        assert_eq!(out, "<p>&lt;");
    }

    #[test]
    fn percent_encoding_of_file_names() {
        assert_eq!(percent_encode_segment("a b/ü.png"), "a%20b%2F%C3%BC.png");
        assert_eq!(percent_encode_segment("../x"), "..%2Fx");
        assert_eq!(percent_encode_segment("A-z_0.9~"), "A-z_0.9~");
        assert_eq!(percent_encode_segment("?#%"), "%3F%23%25");
    }
}
