//! Which OAuth scopes each endpoint the simulator serves needs, for scoped API tokens and
//! service-account Bearer tokens on the gateway.
//!
//! Source: the operations' `x-atlassian-oauth2-scopes` in Atlassian's OpenAPI documents
//! (v2: `https://dac-static.atlassian.com/cloud/confluence/openapi-v2.v3.json` as of 2026-04;
//! v1: `https://developer.atlassian.com/cloud/confluence/swagger.v3.json` as of 2023-08, whose
//! entries list a classic and a granular alternative). A token passes when it holds every scope of one alternative.
//! Endpoints no published document covers (knowledge-base permissions, `/cgraphql`, Jira) are
//! refused to scoped callers: strict, for want of evidence.
//!
//! A call whose scopes are missing gets 401 `{"code":401,"message":"Unauthorized; scope does
//! not match"}` with `X-Failure-Category: FAILURE_CLIENT_SCOPE_CHECK`
//! (<https://github.com/kovetskiy/mark/issues/917>: the gateway's answer to a scoped token
//! lacking a scope).

/// One way to satisfy an endpoint: all of these scopes.
pub type Alternative = &'static [&'static str];

/// `(method, route template, alternatives)`.
pub const TABLE: &[(&str, &str, &[Alternative])] = &[
    // v2 (spec 2026-04)
    ("GET", "/wiki/api/v2/spaces", &[&["read:space:confluence"]]),
    (
        "GET",
        "/wiki/api/v2/spaces/{id}",
        &[&["read:space:confluence"]],
    ),
    (
        "GET",
        "/wiki/api/v2/spaces/{id}/pages",
        &[&["read:page:confluence"]],
    ),
    (
        "GET",
        "/wiki/api/v2/pages/{id}",
        &[&["read:page:confluence"]],
    ),
    (
        "GET",
        "/wiki/api/v2/pages/{id}/attachments",
        &[&["read:attachment:confluence"]],
    ),
    (
        "GET",
        "/wiki/api/v2/pages/{id}/labels",
        &[&["read:page:confluence"]],
    ),
    (
        "GET",
        "/wiki/api/v2/pages/{id}/children",
        &[&["read:page:confluence"]],
    ),
    (
        "GET",
        "/wiki/api/v2/pages/{id}/direct-children",
        &[&["read:hierarchical-content:confluence"]],
    ),
    (
        "GET",
        "/wiki/api/v2/labels/{id}/pages",
        &[&["read:page:confluence"]],
    ),
    (
        "GET",
        "/wiki/api/v2/folders/{id}",
        &[&["read:folder:confluence"]],
    ),
    (
        "GET",
        "/wiki/api/v2/folders/{id}/direct-children",
        &[&["read:hierarchical-content:confluence"]],
    ),
    (
        "POST",
        "/wiki/api/v2/users-bulk",
        &[&["read:user:confluence"]],
    ),
    (
        "POST",
        "/wiki/api/v2/user/access/check-access-by-email",
        &[&["read:configuration:confluence"]],
    ),
    (
        "POST",
        "/wiki/api/v2/user/access/invite-by-email",
        &[&["read:configuration:confluence"]],
    ),
    (
        "GET",
        "/wiki/api/v2/spaces/{id}/permissions",
        &[&["read:space:confluence"]],
    ),
    // v1 (spec 2023-08: classic, then granular)
    (
        "GET",
        "/wiki/rest/api/search",
        &[&["search:confluence"], &["read:content-details:confluence"]],
    ),
    (
        "GET",
        "/wiki/rest/api/content/search",
        &[&["search:confluence"], &["read:content-details:confluence"]],
    ),
    (
        "GET",
        "/wiki/rest/api/content/{id}/restriction/byOperation/{operationKey}",
        &[
            &["read:confluence-content.all"],
            &["read:content-details:confluence"],
        ],
    ),
    (
        "GET",
        "/wiki/rest/api/content/{id}/restriction/byOperation",
        &[
            &["read:confluence-content.all"],
            &["read:content-details:confluence"],
        ],
    ),
    (
        "GET",
        "/wiki/rest/api/user/current",
        &[
            &["read:confluence-user"],
            &["read:content-details:confluence"],
        ],
    ),
    (
        "GET",
        "/wiki/rest/api/content/{id}/child/{type}",
        &[
            &["read:confluence-content.summary"],
            &["read:content-details:confluence"],
        ],
    ),
    (
        "GET",
        "/wiki/rest/api/content/{id}/label",
        &[
            &["read:confluence-content.summary"],
            &["read:label:confluence"],
        ],
    ),
    ("GET", "/wiki/api/v2/pages", &[&["read:page:confluence"]]),
    (
        "GET",
        "/wiki/rest/api/content/{id}/child/attachment/{attachmentId}/download",
        &[
            &["readonly:content.attachment:confluence"],
            &["read:attachment:confluence"],
        ],
    ),
    (
        "GET",
        "/wiki/rest/api/space",
        &[
            &["read:confluence-space.summary"],
            &["read:content-details:confluence"],
        ],
    ),
    (
        "GET",
        "/wiki/rest/api/space/{spaceKey}",
        &[
            &["read:confluence-space.summary"],
            &["read:content-details:confluence"],
        ],
    ),
    (
        "GET",
        "/wiki/rest/api/group",
        &[&["read:confluence-groups"], &["read:group:confluence"]],
    ),
    (
        "POST",
        "/wiki/rest/api/group",
        &[
            &["write:confluence-groups"],
            &["read:group:confluence", "write:group:confluence"],
        ],
    ),
    (
        "GET",
        "/wiki/rest/api/group/by-id",
        &[&["read:confluence-groups"], &["read:group:confluence"]],
    ),
    (
        "GET",
        "/wiki/rest/api/group/by-name",
        &[&["read:confluence-groups"], &["read:group:confluence"]],
    ),
    (
        "GET",
        "/wiki/rest/api/group/picker",
        &[&["read:confluence-groups"], &["read:group:confluence"]],
    ),
    (
        "GET",
        "/wiki/rest/api/group/{groupId}/membersByGroupId",
        &[
            &["read:confluence-groups"],
            &["read:group:confluence", "read:user:confluence"],
        ],
    ),
    (
        "POST",
        "/wiki/rest/api/group/userByGroupId",
        &[&["write:confluence-groups"], &["write:group:confluence"]],
    ),
    (
        "DELETE",
        "/wiki/rest/api/group/userByGroupId",
        &[&["write:confluence-groups"], &["write:group:confluence"]],
    ),
    (
        "POST",
        "/wiki/rest/api/space/{spaceKey}/permission",
        &[&[
            "read:space.permission:confluence",
            "write:space.permission:confluence",
        ]],
    ),
    (
        "DELETE",
        "/wiki/rest/api/space/{spaceKey}/permission/{id}",
        &[&["write:space.permission:confluence"]],
    ),
];

/// The alternatives of an endpoint; `None` when no document gives its scopes.
pub fn required(method: &str, template: &str) -> Option<&'static [Alternative]> {
    TABLE
        .iter()
        .find(|(m, t, _)| *m == method && *t == template)
        .map(|(_, _, alts)| *alts)
}

/// Whether `granted` satisfies the endpoint (unknown endpoints: never).
pub fn allows<'a>(method: &str, template: &str, granted: impl Fn(&str) -> bool + 'a) -> bool {
    required(method, template)
        .is_some_and(|alts| alts.iter().any(|alt| alt.iter().all(|s| granted(s))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_are_checked_whole() {
        let has = |set: &'static [&'static str]| move |s: &str| set.contains(&s);
        assert!(allows(
            "GET",
            "/wiki/api/v2/pages/{id}",
            has(&["read:page:confluence"])
        ));
        assert!(!allows(
            "GET",
            "/wiki/api/v2/pages/{id}",
            has(&["read:space:confluence"])
        ));
        assert!(allows(
            "GET",
            "/wiki/rest/api/search",
            has(&["read:content-details:confluence"])
        ));
        assert!(!allows(
            "POST",
            "/wiki/rest/api/group",
            has(&["write:group:confluence"])
        ));
        assert!(!allows("POST", "/cgraphql", has(&["read:page:confluence"])));
    }
}
