//! The portal's URLs for pages and attachments: the one scheme the renderer writes (a page's
//! own attachments, at sync time) and the portal resolves (other pages and their attachments,
//! at view time, through [`crate::PageAccess`]).

use crate::percent_encode_segment;

/// Where the portal serves pages and attachments. Ids and file names are percent-encoded as
/// one path segment each, so content can never add a segment, a query or a fragment.
///
/// The portal builds its links through the same value; a path prefix for the public URL
/// would be a field here, set once for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortalUrls {
    _private: (),
}

impl PortalUrls {
    /// The portal served at the root of its origin.
    pub const ROOT: PortalUrls = PortalUrls { _private: () };

    /// A page.
    pub fn page(&self, id: &str) -> String {
        format!("/pages/{}", percent_encode_segment(id))
    }

    /// An attachment, by its page and file name (as storage format names them).
    pub fn attachment(&self, page_id: &str, file_name: &str) -> String {
        format!(
            "/attachments/{}/{}",
            percent_encode_segment(page_id),
            percent_encode_segment(file_name)
        )
    }
}

impl Default for PortalUrls {
    fn default() -> PortalUrls {
        PortalUrls::ROOT
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
    }
}
