//! The portal's URL scheme in one place: the route templates the router mounts and the paths
//! handlers, templates' data and the renderer's link resolution point at. Pages and
//! attachments follow the renderer's [`PortalUrls`] (it writes a page's own attachment links
//! at sync time, at the root; `resolve` adds the prefix at view time).
//!
//! **Path prefix.** With `[portal] public_url = "https://app.example.com/kb"` the portal is
//! served under `/kb`: the reverse proxy forwards `/kb/...` unchanged, [`crate::router`]
//! answers only under the prefix (404 elsewhere), strips it before routing (so the
//! [`routes`] stay prefix-free) and runs each request inside [`scoped`], which makes every
//! builder here return *public* paths (`/kb/pages/1`). Build every link, form action and
//! `Location` through these builders ([`to`] for a bare route) and it follows the prefix;
//! a route constant written straight into a page would not. The prefix is fixed for the
//! server's life (`public_url` needs a restart); outside a request the builders answer for
//! the root, so a task spawned by a handler that builds links takes [`current`] along
//! (as the mailed-link sender in `auth.rs` does).

use kbgate_render::PortalUrls;

use crate::secret::Opaque;

tokio::task_local! {
    /// The portal's URLs for the request being handled (set by [`scoped`]).
    static CURRENT: PortalUrls;
}

/// Runs `f` (a request's handling) with links built under `urls`' prefix.
pub(crate) async fn scoped<F: std::future::Future>(urls: PortalUrls, f: F) -> F::Output {
    CURRENT.scope(urls, f).await
}

/// The portal's URLs for the request being handled; the root outside one.
pub(crate) fn current() -> PortalUrls {
    CURRENT
        .try_with(PortalUrls::clone)
        .unwrap_or(PortalUrls::ROOT)
}

/// The path prefix (`/kb`, or `""` at the root).
pub(crate) fn prefix() -> String {
    current().prefix().to_owned()
}

/// The public path of a route path (`/search` → `/kb/search`, `/` → `/kb/`).
pub(crate) fn to(route: &str) -> String {
    current().path(route)
}

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

/// A page.
pub(crate) fn page(id: &str) -> String {
    current().page(id)
}

/// Where a page's "Was this helpful?" form posts.
pub(crate) fn feedback(id: &str) -> String {
    format!("{}/feedback", page(id))
}

/// A space's home with its page tree.
pub(crate) fn space(key: &str) -> String {
    to(&format!("/spaces/{key}"))
}

/// A space's icon, keyed by the image's content hash (`v`, a prefix of its SHA-256) so the
/// browser may keep it for good: a new icon has a new URL.
pub(crate) fn space_icon(key: &str, sha256: &str) -> String {
    to(&format!("/spaces/{key}/icon?v={}", icon_version(sha256)))
}

/// The `v` of [`space_icon`] for a blob hash.
pub(crate) fn icon_version(sha256: &str) -> &str {
    sha256.get(..16).unwrap_or(sha256)
}

/// A space's index under one of its pages (the levels below the first ones).
pub(crate) fn space_under(key: &str, page_id: &str) -> String {
    format!(
        "{}?{}",
        space(key),
        serde_urlencoded::to_string([("under", page_id)]).unwrap_or_default()
    )
}

/// The download URL of an attachment (by page and file name, as storage format names them).
pub(crate) fn attachment(page_id: &str, file_name: &str) -> String {
    current().attachment(page_id, file_name)
}

/// A mailed or handed-over link: the route `route` with a single-use `code` (the code is
/// URL-safe base64, so it goes in as it is).
pub(crate) fn with_code(route: &str, code: &Opaque) -> String {
    format!("{}?code={}", to(route), code.expose())
}

/// `link` (which has a query already) with `&return_to=`, unless it is the start page.
pub(crate) fn with_return_to(link: &str, return_to: &crate::redirect::LocalPath) -> String {
    if *return_to == crate::redirect::LocalPath::root() {
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
            to(routes::AUTH_EMAIL),
            serde_urlencoded::to_string([("return_to", p)]).unwrap_or_default()
        ),
        None => to(routes::AUTH_EMAIL),
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
        assert_eq!(to(routes::HOME), "/");
    }

    #[tokio::test]
    async fn under_a_prefix_every_builder_starts_with_it() {
        let code = Opaque::generate();
        let built = scoped(PortalUrls::under("/kb/"), async {
            vec![
                page("1"),
                feedback("1"),
                space("KB"),
                space_under("KB", "1"),
                attachment("1", "a.png"),
                sign_in(None),
                sign_in(Some("/kb/pages/1")),
                with_code(routes::AUTH_CODE, &code),
                to(routes::HOME),
                to(routes::SEARCH),
            ]
        })
        .await;
        for b in &built {
            assert!(b.starts_with("/kb/"), "{b}");
        }
        assert_eq!(built[2], "/kb/spaces/KB");
        assert_eq!(built[8], "/kb/");
        // Outside a request: the root.
        assert_eq!(page("1"), "/pages/1");
    }
}
