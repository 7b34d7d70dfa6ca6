//! The session cookie: its name, its flags, reading and writing it, and whether a request
//! comes from another site (the one thing a cookie cannot tell by itself).

use axum::http::{HeaderMap, header};

use crate::secret::Opaque;
use crate::settings::{CookiePrefix, Settings};

/// Name of the session cookie. `__Host-` binds it to this exact origin when it can be Secure
/// (`__Secure-` under a path prefix, see [`Settings::cookie_prefix`]).
pub(crate) fn cookie_name(settings: &Settings) -> &'static str {
    match settings.cookie_prefix() {
        CookiePrefix::Host => "__Host-kbgate_session",
        CookiePrefix::Secure => "__Secure-kbgate_session",
        CookiePrefix::None => "kbgate_session",
    }
}

/// The session id presented in the request's cookies, if well formed.
pub(crate) fn session_cookie(headers: &HeaderMap, settings: &Settings) -> Option<Opaque> {
    read_cookie(headers, cookie_name(settings))
}

/// The opaque value of cookie `name`, if present and well formed.
pub(crate) fn read_cookie(headers: &HeaderMap, name: &str) -> Option<Opaque> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| Opaque::parse(v.trim()))
}

/// `Set-Cookie` value that installs a session id.
pub(crate) fn set_cookie(settings: &Settings, id: &Opaque) -> String {
    format!(
        "{}={}; Path={}; HttpOnly; {}Max-Age={}",
        cookie_name(settings),
        id.expose(),
        settings.cookie_path(),
        cookie_flags(settings),
        settings.session_absolute.as_secs()
    )
}

/// `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie(settings: &Settings) -> String {
    format!(
        "{}=; Path={}; HttpOnly; {}Max-Age=0",
        cookie_name(settings),
        settings.cookie_path(),
        cookie_flags(settings)
    )
}

/// Whether the browser says the request comes from another site: an `Origin` other than
/// ours, or `Sec-Fetch-Site: cross-site` / `same-site`. `Origin: null` is not foreign by
/// itself: browsers send it for a same-origin form post under the portal's own
/// `Referrer-Policy: no-referrer` (form tokens cover what headers cannot tell).
pub(crate) fn cross_site(headers: &HeaderMap, settings: &Settings) -> bool {
    let foreign_origin = headers.get(header::ORIGIN).is_some_and(|origin| {
        origin.as_bytes() != b"null" && origin.as_bytes() != settings.origin().as_bytes()
    });
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site");
    foreign_origin || cross_site
}

pub(crate) fn cookie_flags(settings: &Settings) -> &'static str {
    match (settings.same_site_none(), settings.cookie_secure) {
        (true, _) => "SameSite=None; Secure; ",
        (false, true) => "SameSite=Lax; Secure; ",
        (false, false) => "SameSite=Lax; ",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::settings::tests::{at, framed};

    #[test]
    fn cookie_flags_follow_settings() {
        let local = at("http://127.0.0.1:8080");
        let id = Opaque::generate();
        let c = set_cookie(&local, &id);
        assert!(c.starts_with("kbgate_session="));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && !c.contains("Secure"));
        let prod = at("https://kb.example.com");
        let c = set_cookie(&prod, &id);
        assert!(c.starts_with("__Host-kbgate_session="));
        assert!(c.contains("SameSite=Lax; Secure"));
        let framed = framed("https://kb.example.com", &["https://app.example.com"]);
        assert!(set_cookie(&framed, &id).contains("SameSite=None; Secure"));
        assert!(clear_cookie(&framed).contains("Max-Age=0"));
        let under = at("https://app.example.com/kb");
        let c = set_cookie(&under, &id);
        assert!(
            c.starts_with("__Secure-kbgate_session=") && c.contains("; Path=/kb;"),
            "{c}"
        );
        assert!(clear_cookie(&under).contains("; Path=/kb;"));
    }

    #[test]
    fn reads_the_session_cookie() {
        let s = at("http://localhost:8080");
        let id = Opaque::generate();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("a=b; kbgate_session={}; c=d", id.expose())
                .parse()
                .unwrap(),
        );
        assert_eq!(session_cookie(&h, &s), Some(id));
        h.insert(header::COOKIE, "kbgate_session=short".parse().unwrap());
        assert_eq!(session_cookie(&h, &s), None);
    }
}
