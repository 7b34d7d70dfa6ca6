//! Which OAuth scopes let each call through, for scoped API tokens and service accounts.
//!
//! Read from Atlassian's OpenAPI documents (`x-atlassian-oauth2-scopes` of each operation in
//! the v2 document of 2026-04 and the v1 document): v2 operations name granular scopes only;
//! v1 operations name a classic scope ("Current") and a granular set ("Beta"). A token needs
//! one of the sets. kbgate recommends the granular scopes: a token of classic scopes alone
//! cannot call v2.

/// The scopes one call needs: the granular set, and the classic alternative where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallScopes {
    /// `METHOD /path/{template}`, the key of [`crate::CallStats::by_endpoint`].
    pub endpoint: &'static str,
    /// Granular scopes (all needed).
    pub granular: &'static [&'static str],
    /// Classic scopes (all needed) that work instead, if any.
    pub classic: &'static [&'static str],
}

/// Every call kbgate makes through the site or the gateway, with its scopes.
pub const CALL_SCOPES: &[CallScopes] = &[
    s("GET /wiki/api/v2/spaces", &["read:space:confluence"], &[]),
    s(
        "GET /wiki/api/v2/spaces/{id}/pages",
        &["read:page:confluence"],
        &[],
    ),
    s(
        "GET /wiki/api/v2/pages/{id}",
        &["read:page:confluence"],
        &[],
    ),
    s(
        "GET /wiki/api/v2/pages/{id}/attachments",
        &["read:attachment:confluence"],
        &[],
    ),
    s(
        "GET /wiki/api/v2/pages/{id}/labels",
        &["read:page:confluence"],
        &[],
    ),
    s(
        "GET /wiki/api/v2/labels/{id}/pages",
        &["read:page:confluence"],
        &[],
    ),
    s(
        "GET /wiki/api/v2/spaces/{id}/permissions",
        &["read:space:confluence"],
        &[],
    ),
    s(
        "POST /wiki/api/v2/users-bulk",
        &["read:user:confluence"],
        &[],
    ),
    s(
        "POST /wiki/api/v2/user/access/check-access-by-email",
        &["read:configuration:confluence"],
        &[],
    ),
    s(
        "POST /wiki/api/v2/user/access/invite-by-email",
        &["read:configuration:confluence"],
        &[],
    ),
    s(
        "GET /wiki/rest/api/search",
        &["read:content-details:confluence"],
        &["search:confluence"],
    ),
    s(
        "GET /wiki/rest/api/content/search",
        &["read:content-details:confluence"],
        &["search:confluence"],
    ),
    s(
        "GET /wiki/rest/api/content/{id}/restriction/byOperation/{operationKey}",
        &["read:content-details:confluence"],
        &["read:confluence-content.all"],
    ),
    s(
        "GET /wiki/rest/api/content/{id}/child/attachment/{attachmentId}/download",
        &["read:attachment:confluence"],
        &["readonly:content.attachment:confluence"],
    ),
    // A space icon is an attachment of the space: its download link reads like one.
    s(
        "GET {space icon apiDownloadLink}",
        &["read:attachment:confluence"],
        &["readonly:content.attachment:confluence"],
    ),
    s(
        "GET /wiki/rest/api/user/current",
        &["read:content-details:confluence"],
        &["read:confluence-user"],
    ),
    s(
        "GET /wiki/rest/api/space",
        &["read:content-details:confluence"],
        &["read:confluence-space.summary"],
    ),
    s(
        "GET /wiki/rest/api/group/by-name",
        &["read:group:confluence"],
        &["read:confluence-groups"],
    ),
    s(
        "GET /wiki/rest/api/group/{groupId}/membersByGroupId",
        &["read:group:confluence", "read:user:confluence"],
        &["read:confluence-groups"],
    ),
    s(
        "POST /wiki/rest/api/group",
        &["read:group:confluence", "write:group:confluence"],
        &["write:confluence-groups"],
    ),
    s(
        "POST /wiki/rest/api/group/userByGroupId",
        &["write:group:confluence"],
        &["write:confluence-groups"],
    ),
    s(
        "DELETE /wiki/rest/api/group/userByGroupId",
        &["write:group:confluence"],
        &["write:confluence-groups"],
    ),
    s(
        "POST /wiki/rest/api/space/{spaceKey}/permission",
        &[
            "read:space.permission:confluence",
            "write:space.permission:confluence",
        ],
        &[],
    ),
    s(
        "DELETE /wiki/rest/api/space/{spaceKey}/permission/{id}",
        &["write:space.permission:confluence"],
        &[],
    ),
];

const fn s(
    endpoint: &'static str,
    granular: &'static [&'static str],
    classic: &'static [&'static str],
) -> CallScopes {
    CallScopes {
        endpoint,
        granular,
        classic,
    }
}

/// The scopes of one endpoint template, if the call is one of [`CALL_SCOPES`].
pub fn scopes_for(endpoint: &str) -> Option<&'static CallScopes> {
    CALL_SCOPES.iter().find(|c| c.endpoint == endpoint)
}

/// The read-only scopes portal mode needs (granular): spaces, pages, attachments, and the v1
/// reads of the structure scan (CQL search with restrictions and labels).
pub const PORTAL_SCOPES: &[&str] = &[
    "read:space:confluence",
    "read:page:confluence",
    "read:attachment:confluence",
    "read:content-details:confluence",
];

impl CallScopes {
    /// `granular (or classic: …)`, for error messages.
    pub fn describe(&self) -> String {
        let mut out = self.granular.join(" + ");
        if !self.classic.is_empty() {
            out.push_str(" (or classic: ");
            out.push_str(&self.classic.join(" + "));
            out.push(')');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_portal_read_has_its_scopes_in_the_portal_set() {
        for e in [
            "GET /wiki/api/v2/spaces",
            "GET /wiki/api/v2/spaces/{id}/pages",
            "GET /wiki/api/v2/pages/{id}",
            "GET /wiki/rest/api/search",
            "GET /wiki/rest/api/content/search",
            "GET /wiki/rest/api/content/{id}/child/attachment/{attachmentId}/download",
            "GET {space icon apiDownloadLink}",
        ] {
            let c = scopes_for(e).unwrap();
            for g in c.granular {
                assert!(PORTAL_SCOPES.contains(g), "{e}: {g}");
            }
        }
        assert_eq!(
            scopes_for("GET /wiki/rest/api/search").unwrap().describe(),
            "read:content-details:confluence (or classic: search:confluence)"
        );
    }
}
