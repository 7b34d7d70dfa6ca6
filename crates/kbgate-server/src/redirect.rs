//! `return_to`: a local path to go back to after sign-in, parsed so it cannot leave the site
//! (nor, under a path prefix, the portal's part of it).

use std::fmt;

/// Longest `return_to` accepted.
const MAX_LEN: usize = 2048;

/// A path on this site (`/spaces/KB/pages/1?x=y#frag`), safe to put in a `Location` header.
///
/// Parsing refuses anything a browser could resolve to another origin: scheme-relative
/// (`//evil.com`), absolute (`https://evil.com`), backslash tricks (`/\evil.com`, which browsers
/// treat as `//`), percent-encoded variants of those (`/%2F%2Fevil.com`, `/%5Cevil.com`), any
/// path that a further percent-decoding would change again (double or deeper encoding, e.g.
/// `/%252F%252Fevil.com`), and any control character, space or non-ASCII byte. It is a
/// public path: under a path prefix (`/kb`, see `crate::urls`) it must lie inside it
/// (`/kb`, `/kb/…`), and no segment may be `.` or `..` (which browsers resolve, e.g.
/// `/kb/../other-app`, out of it).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct LocalPath(String);

impl LocalPath {
    /// The portal's start page (`/`, or `/kb/` under a prefix).
    pub(crate) fn root() -> LocalPath {
        LocalPath(crate::urls::to("/"))
    }

    /// Parses a candidate `return_to`; `None` when it is not a safe local path.
    pub(crate) fn parse(input: &str) -> Option<LocalPath> {
        if input.is_empty() || input.len() > MAX_LEN {
            return None;
        }
        if !is_safe_shape(input) {
            return None;
        }
        // One level of percent-encoding is normal (`?q=a%2Fb`); a second is not. The decoded
        // form must be safe and must decode to itself: were it to change again, some later
        // decoder (browser, proxy, app) could see a path never checked here, however many
        // levels deep (`/%25252F%25252Fevil.com`).
        let decoded = percent_decode(input)?;
        if !is_safe_decoded(&decoded) || percent_decode(&decoded)? != decoded {
            return None;
        }
        let prefix = crate::urls::prefix();
        if !inside(input, &prefix) || !inside(&decoded, &prefix) || has_dot_segment(&decoded) {
            return None;
        }
        Some(LocalPath(input.to_owned()))
    }

    /// Parses, falling back to the site root.
    pub(crate) fn parse_or_root(input: Option<&str>) -> LocalPath {
        input
            .and_then(LocalPath::parse)
            .unwrap_or_else(LocalPath::root)
    }

    /// The path as given.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LocalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalPath({:?})", self.0)
    }
}

impl fmt::Display for LocalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_safe_shape(s: &str) -> bool {
    let b = s.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    if matches!(b.get(1), Some(b'/') | Some(b'\\')) {
        return false;
    }
    // Printable ASCII only, and no backslash anywhere (browsers normalise it to a slash).
    b.iter().all(|&c| (0x21..=0x7e).contains(&c) && c != b'\\')
}

/// Whether `path` lies under `prefix` (`""`: anywhere): it is the prefix itself or goes on
/// with a new segment, query or fragment (`/kb`, `/kb/x`, `/kb?x`, never `/kbx`).
fn inside(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
}

/// Whether the path part (before any query or fragment) has a `.` or `..` segment.
fn has_dot_segment(decoded: &str) -> bool {
    let path = decoded.split(['?', '#']).next().unwrap_or("");
    path.split('/').any(|seg| seg == "." || seg == "..")
}

/// A decoded form may contain spaces or non-ASCII text, but nothing that changes the origin.
fn is_safe_decoded(s: &str) -> bool {
    let b = s.as_bytes();
    b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/') | Some(b'\\'))
        && !s.chars().any(|c| c == '\\' || c.is_control())
}

/// Percent-decodes (a `%` not followed by two hex digits stays as is); `None` when the result
/// is not UTF-8 (refused).
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_local_paths() {
        for ok in [
            "/",
            "/spaces/KB",
            "/spaces/KB/pages/123?x=1&y=%20a#top",
            "/search?q=foo%2Fbar",
        ] {
            assert!(LocalPath::parse(ok).is_some(), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_that_leaves_the_site() {
        for bad in [
            "",
            "//evil.com",
            "///evil.com",
            "https://evil.com",
            "http:/evil.com",
            "evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/%2F%2Fevil.com",
            "%2F%2Fevil.com",
            "/%5Cevil.com",
            "/%2fevil.com",
            "/%252F%252Fevil.com",
            "/%255Cevil.com",
            // Deeper than any fixed number of decoding rounds.
            "/%25252F%25252Fevil.com",
            "/%2525252F%2525252Fevil.com",
            "/%252525252F%252525252Fevil.com",
            "/%25252525255Cevil.com",
            // Any second level of encoding, even of harmless text.
            "/a%2541",
            "/search?q=%2520",
            "/\tevil",
            "/\r\nSet-Cookie: x=y",
            "/%0d%0aSet-Cookie:x",
            "/a b",
            "/é",
            "/%ff",
            " /x",
            "javascript:alert(1)",
        ] {
            assert!(LocalPath::parse(bad).is_none(), "{bad:?}");
        }
        assert!(LocalPath::parse(&format!("/{}", "a".repeat(3000))).is_none());
    }

    #[tokio::test]
    async fn under_a_prefix_only_paths_inside_it() {
        let urls = kbgate_render::PortalUrls::under("/kb");
        crate::urls::scoped(urls, async {
            for ok in [
                "/kb",
                "/kb/",
                "/kb/pages/1?x=y#top",
                "/kb?x=1",
                "/kb/search?q=a%2Fb",
            ] {
                assert!(LocalPath::parse(ok).is_some(), "{ok}");
            }
            for bad in [
                "/",
                "/pages/1",
                "/kbx",
                "/kbx/pages/1",
                "/k%62/pages/1",
                "/kb/../other",
                "/kb/%2e%2e/other",
                "/kb/./x",
                "//evil.com/kb/",
                "/kb/..",
                "https://evil.com/kb/",
                "/kb/\\evil.com",
            ] {
                assert!(LocalPath::parse(bad).is_none(), "{bad:?}");
            }
            assert_eq!(LocalPath::root().as_str(), "/kb/");
            assert_eq!(LocalPath::parse_or_root(Some("/pages/1")).as_str(), "/kb/");
        })
        .await;
    }

    #[test]
    fn fallback_is_root() {
        assert_eq!(LocalPath::parse_or_root(Some("//evil.com")).as_str(), "/");
        assert_eq!(LocalPath::parse_or_root(None).as_str(), "/");
        assert_eq!(LocalPath::parse_or_root(Some("/x")).as_str(), "/x");
    }
}
