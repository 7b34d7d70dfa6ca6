//! The portal's URLs for pages and attachments: the one scheme the renderer writes (a page's
//! own attachments, at sync time) and the portal resolves (other pages and their attachments,
//! at view time, through [`crate::PageAccess`]).

use std::sync::Arc;

use crate::percent_encode_segment;

/// Where the portal serves pages and attachments. Ids and file names are percent-encoded as
/// one path segment each, so content can never add a segment, a query or a fragment.
///
/// The portal builds its links through the same value, with the path prefix of its public
/// URL ([`PortalUrls::under`]). The renderer writes stored content at the root
/// ([`PortalUrls::ROOT`]): [`crate::resolve`] adds the prefix at view time
/// ([`crate::PageAccess::link_prefix`]), so mirrored content never depends on where the
/// portal is mounted and changing the prefix needs no re-sync.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortalUrls {
    /// `None` at the root; otherwise `/seg[/seg…]`, no trailing slash.
    prefix: Option<Arc<str>>,
}

impl PortalUrls {
    /// The portal served at the root of its origin.
    pub const ROOT: PortalUrls = PortalUrls { prefix: None };

    /// The portal served under a path prefix (`/kb`); `""`, `/` and a trailing slash
    /// normalise (`/kb/` is `/kb`, `/` is the root).
    pub fn under(prefix: &str) -> PortalUrls {
        let p = prefix.trim_end_matches('/');
        PortalUrls {
            prefix: (!p.is_empty()).then(|| Arc::from(p)),
        }
    }

    /// The path prefix: `""` at the root, else `/kb` (no trailing slash).
    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or("")
    }

    /// The public path of a path relative to the portal's root (`/search` → `/kb/search`;
    /// the root `/` → `/kb/`).
    pub fn path(&self, local: &str) -> String {
        let mut out = String::with_capacity(self.prefix().len() + local.len());
        out.push_str(self.prefix());
        out.push_str(local);
        out
    }

    /// A page.
    pub fn page(&self, id: &str) -> String {
        format!("{}/pages/{}", self.prefix(), percent_encode_segment(id))
    }

    /// An attachment, by its page and file name (as storage format names them).
    pub fn attachment(&self, page_id: &str, file_name: &str) -> String {
        format!(
            "{}/attachments/{}/{}",
            self.prefix(),
            percent_encode_segment(page_id),
            percent_encode_segment(file_name)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_segment_each() {
        let u = PortalUrls::ROOT;
        assert_eq!(u.page("12 3"), "/pages/12%203");
        assert_eq!(
            u.attachment("7", "a b/c?.pdf"),
            "/attachments/7/a%20b%2Fc%3F.pdf"
        );
        assert_eq!(u.path("/"), "/");
    }

    #[test]
    fn under_a_prefix_every_link_starts_with_it() {
        for p in ["/kb", "/kb/", "/kb//"] {
            let u = PortalUrls::under(p);
            assert_eq!(u.prefix(), "/kb");
            assert_eq!(u.page("1"), "/kb/pages/1");
            assert_eq!(u.attachment("1", "a.png"), "/kb/attachments/1/a.png");
            assert_eq!(u.path("/"), "/kb/");
            assert_eq!(u.path("/search"), "/kb/search");
        }
        assert_eq!(PortalUrls::under("/a/b/").page("1"), "/a/b/pages/1");
        assert_eq!(PortalUrls::under("/"), PortalUrls::ROOT);
        assert_eq!(PortalUrls::under(""), PortalUrls::ROOT);
    }
}
