//! The portal's URL scheme in one place: the route templates the router mounts and the paths
//! handlers, templates' data and the renderer's link resolution point at. Pages and
//! attachments follow the renderer's [`PortalUrls`] (it writes a page's own attachment links
//! at sync time); a path prefix for the public URL would be set on it here, once.

use kbgate_render::PortalUrls;

use crate::secret::Opaque;

/// Route templates (axum path syntax), as the router mounts them.
pub(crate) mod routes {
    pub(crate) const HOME: &str = "/";
    pub(crate) const SPACE: &str = "/spaces/{key}";
    /// A space's icon; its URL carries the image's content hash (`?v=`).
    pub(crate) const SPACE_ICON: &str = "/spaces/{key}/icon";
    pub(crate) const PAGE: &str = "/pages/{id}";
    pub(crate) const SEARCH: &str = "/search";
    pub(crate) const ATTACHMENT_BY_ID: &str = "/attachments/id/{id}";
    pub(crate) const ATTACHMENT: &str = "/attachments/{page_id}/{file}";
    pub(crate) const STYLESHEET: &str = "/static/style.css";
    pub(crate) const SUGGEST_JS: &str = "/assets/suggest.js";
    pub(crate) const SUGGEST: &str = "/suggest";
    pub(crate) const FEEDBACK: &str = "/pages/{id}/feedback";
    /// The brand's files (stylesheet with its colours, logos, favicon, custom CSS), by name;
    /// their URLs carry a content hash (`?v=`).
    pub(crate) const BRAND_ASSET: &str = "/static/brand/{name}";
    pub(crate) const BRAND_PREFIX: &str = "/static/brand/";
    pub(crate) const AUTH_EMBED: &str = "/auth/embed";
    pub(crate) const AUTH_CODE: &str = "/auth/code";
    pub(crate) const AUTH_EMAIL: &str = "/auth/email";
    pub(crate) const AUTH_EMAIL_CONFIRM: &str = "/auth/email/confirm";
    pub(crate) const AUTH_LOGOUT: &str = "/auth/logout";
    /// Where OpenID Providers send the browser back (the redirect URI to register).
    pub(crate) const AUTH_OIDC_CALLBACK: &str = "/auth/oidc/callback";
    pub(crate) const REQUEST_ACCESS: &str = "/request-access";
    pub(crate) const REQUEST_ACCESS_CONFIRM: &str = "/request-access/confirm";
    pub(crate) const API_HANDOVER: &str = "/api/v1/handover";
    pub(crate) const API_ACCESS_REQUESTS: &str = "/api/v1/access-requests";
    pub(crate) const API_SPACES: &str = "/api/v1/spaces";
    pub(crate) const API_TREE: &str = "/api/v1/spaces/{key}/tree";
    pub(crate) const API_PAGE: &str = "/api/v1/pages/{id}";
    pub(crate) const API_SEARCH: &str = "/api/v1/search";
    pub(crate) const API_OPENAPI: &str = "/api/v1/openapi.json";
    pub(crate) const API_SUGGEST: &str = "/api/v1/suggest";
    pub(crate) const WIDGET_JS: &str = "/widget.js";
    pub(crate) const WIDGET_FRAME: &str = "/widget/frame";
    pub(crate) const WIDGET_FRAME_JS: &str = "/widget/frame.js";
    pub(crate) const WIDGET_FRAME_CSS: &str = "/widget/frame.css";
    pub(crate) const WIDGET_SESSION: &str = "/widget/session";
    pub(crate) const WIDGET_SIGNOUT: &str = "/widget/signout";
    pub(crate) const HEALTHZ: &str = "/healthz";
    pub(crate) const READYZ: &str = "/readyz";
    /// Every JSON API route starts with it.
    pub(crate) const API_PREFIX: &str = "/api/";
    /// Every sign-in route starts with it.
    pub(crate) const AUTH_PREFIX: &str = "/auth/";
}

/// Pages and attachments, as the renderer writes them too.
const PORTAL: PortalUrls = PortalUrls::ROOT;

/// A page.
pub(crate) fn page(id: &str) -> String {
    PORTAL.page(id)
}

/// Where a page's "Was this helpful?" form posts.
pub(crate) fn feedback(id: &str) -> String {
    format!("{}/feedback", PORTAL.page(id))
}

/// A space's home with its page tree.
pub(crate) fn space(key: &str) -> String {
    format!("/spaces/{key}")
}

/// A space's icon, keyed by the image's content hash (`v`, a prefix of its SHA-256) so the
/// browser may keep it for good: a new icon has a new URL.
pub(crate) fn space_icon(key: &str, sha256: &str) -> String {
    format!("/spaces/{key}/icon?v={}", icon_version(sha256))
}

/// The `v` of [`space_icon`] for a blob hash.
pub(crate) fn icon_version(sha256: &str) -> &str {
    sha256.get(..16).unwrap_or(sha256)
}

/// A space's index under one of its pages (the levels below the first ones).
pub(crate) fn space_under(key: &str, page_id: &str) -> String {
    format!(
        "/spaces/{key}?{}",
        serde_urlencoded::to_string([("under", page_id)]).unwrap_or_default()
    )
}

/// The download URL of an attachment (by page and file name, as storage format names them).
pub(crate) fn attachment(page_id: &str, file_name: &str) -> String {
    PORTAL.attachment(page_id, file_name)
}

/// A mailed or handed-over link: `path` with a single-use `code` (the code is URL-safe
/// base64, so it goes in as it is).
pub(crate) fn with_code(path: &str, code: &Opaque) -> String {
    format!("{path}?code={}", code.expose())
}

/// `link` (which has a query already) with `&return_to=`, unless it is the start page.
pub(crate) fn with_return_to(link: &str, return_to: &crate::redirect::LocalPath) -> String {
    if return_to.as_str() == routes::HOME {
        return link.to_owned();
    }
    format!(
        "{link}&{}",
        serde_urlencoded::to_string([("return_to", return_to.as_str())]).unwrap_or_default()
    )
}

/// The sign-in form, leading back to `return_to` (a local path) when given.
pub(crate) fn sign_in(return_to: Option<&str>) -> String {
    match return_to {
        Some(p) => format!(
            "{}?{}",
            routes::AUTH_EMAIL,
            serde_urlencoded::to_string([("return_to", p)]).unwrap_or_default()
        ),
        None => routes::AUTH_EMAIL.to_owned(),
    }
}

/// The host app's sign-in page (`[embed] login_url`) with `return_to`, the local path to
/// hand the person over to again (the host app passes it on to `/auth/embed` or the
/// hand-over API, which accept local paths only).
pub(crate) fn host_login(login: &url::Url, return_to: &str) -> String {
    let mut url = login.clone();
    url.query_pairs_mut().append_pair("return_to", return_to);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_match_the_routes() {
        assert_eq!(page("12 3"), "/pages/12%203");
        assert_eq!(space("KB"), "/spaces/KB");
        assert_eq!(feedback("12 3"), "/pages/12%203/feedback");
        assert_eq!(attachment("7", "a b/c.pdf"), "/attachments/7/a%20b%2Fc.pdf");
        assert_eq!(sign_in(None), "/auth/email");
        assert_eq!(
            sign_in(Some("/pages/1?x=y")),
            "/auth/email?return_to=%2Fpages%2F1%3Fx%3Dy"
        );
        let login = url::Url::parse("https://app.example.com/login?from=kb").unwrap();
        assert_eq!(
            host_login(&login, "/pages/1?x=y"),
            "https://app.example.com/login?from=kb&return_to=%2Fpages%2F1%3Fx%3Dy"
        );
    }
}
