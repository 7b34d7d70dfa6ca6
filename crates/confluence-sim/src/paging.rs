//! Query-string parsing and paging helpers shared by the v1, v2 and access routes.
//!
//! * [`Params`]: raw query pairs; arrays accept both `k=a,b` and `k=a&k=b`.
//! * [`SortKey`] + [`keyset`]: cursor paging that stays stable while content changes.
//! * [`v2_list`]: the v2 `{results, _links:{next, base}}` body plus the `Link` header.

use std::cmp::Ordering;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::Sim;
use crate::error::{ApiError, ApiFamily};

/// Page-size caps: a `limit` above its cap is clamped silently, and the answer carries the
/// effective limit (v1 `limit`; v2 the `limit` of the `next` link).
///
/// * v2 lists: 250 (the v2 document's `limit` maximum, e.g. `getPagesInSpace`).
/// * v1 search and content search: 1000 without expansions, 200 with expansions other than a
///   body, 50 when a body is expanded — Atlassian KB "Searching for content with the REST API
///   and CQL always limits results to 50"
///   (<https://confluence.atlassian.com/confkb/searching-for-content-with-the-rest-api-and-cql-always-limits-results-to-50-1032258424.html>:
///   "When the body expansion is specified, the limit is set to 50. If no expansions are
///   specified, results are limited to 1000 … other expansions … 200"). The article is
///   labelled Server/Data Center; no Cloud figure is published, so the same caps are kept.
/// * v1 restrictions: 100 (conservative: undocumented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PageCaps {
    /// v2 list endpoints.
    pub v2_list: usize,
    /// v1 search / content search, no expansion.
    pub search: usize,
    /// v1 search / content search with expansions other than a body.
    pub search_expand: usize,
    /// v1 search / content search with a body expanded.
    pub search_body: usize,
    /// v1 restriction endpoint.
    pub restriction: usize,
}

impl Default for PageCaps {
    fn default() -> Self {
        Self {
            v2_list: 250,
            search: 1000,
            search_expand: 200,
            search_body: 50,
            restriction: 100,
        }
    }
}

/// Raw query parameters in order.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .map(Params)
            .map_err(|e| ApiError::bad_request(ApiFamily::of_path(parts.uri.path()), e.to_string()))
    }
}

impl Params {
    /// First value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// All values of `name`, comma lists split, empties dropped.
    pub fn get_all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(',').map(|x| x.trim().to_string()))
            .filter(|x| !x.is_empty())
            .collect()
    }
    /// A boolean flag (`true`/`false`), default if absent.
    pub fn flag(&self, name: &str, default: bool, family: ApiFamily) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::bad_request(
                family,
                format!("Invalid value for parameter {name}: {v}"),
            )),
        }
    }
    /// `limit`: default when absent, 400 when not a positive integer, clamped to `max`.
    pub fn limit(&self, default: usize, max: usize, family: ApiFamily) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 1 => Ok((n as usize).min(max)),
                Ok(0) if family == ApiFamily::V1 => Ok(default.min(max)),
                _ => Err(ApiError::bad_request(
                    family,
                    format!("Invalid value for parameter limit: {v}"),
                )),
            },
        }
    }
    /// A v1 `start` offset.
    pub fn start(&self, family: ApiFamily) -> Result<usize, ApiError> {
        match self.get("start") {
            None => Ok(0),
            Some(v) => v.parse::<usize>().map_err(|_| {
                ApiError::bad_request(family, format!("Invalid value for parameter start: {v}"))
            }),
        }
    }
    /// The pairs except the given names (to rebuild `next` links).
    pub fn without(&self, names: &[&str]) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| !names.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

/// Encodes query pairs.
pub fn encode_query(pairs: &[(String, String)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// A sort key for keyset paging.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortKey {
    /// Numeric (ids, timestamps in ms).
    Int(i64),
    /// Text (titles, keys).
    Str(String),
}

/// Makes an opaque cursor from the last item's key and id.
pub fn make_cursor(key: &SortKey, id: u64) -> String {
    let raw = match key {
        SortKey::Int(n) => format!("i|{id}|{n}"),
        SortKey::Str(s) => format!("s|{id}|{s}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Parses a cursor made by [`make_cursor`].
pub fn parse_cursor(c: &str) -> Option<(SortKey, u64)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let mut it = raw.splitn(3, '|');
    let kind = it.next()?;
    let id = it.next()?.parse().ok()?;
    let rest = it.next()?;
    let key = match kind {
        "i" => SortKey::Int(rest.parse().ok()?),
        "s" => SortKey::Str(rest.to_string()),
        _ => return None,
    };
    Some((key, id))
}

/// One keyset page: `items` are (key, id, payload) in any order. Returns the page in sort order
/// and the cursor of the next page if there is one. O(n) selection + O(limit log limit) sort.
pub fn keyset<T>(
    mut items: Vec<(SortKey, u64, T)>,
    desc: bool,
    cursor: Option<&(SortKey, u64)>,
    limit: usize,
) -> (Vec<(SortKey, u64, T)>, Option<String>) {
    let cmp = |a: &(SortKey, u64), b: &(SortKey, u64)| -> Ordering {
        let o = a.0.cmp(&b.0).then(a.1.cmp(&b.1));
        if desc { o.reverse() } else { o }
    };
    if let Some(c) = cursor {
        items.retain(|(k, id, _)| cmp(&(k.clone(), *id), c) == Ordering::Greater);
    }
    let by = |a: &(SortKey, u64, T), b: &(SortKey, u64, T)| {
        let o = a.0.cmp(&b.0).then(a.1.cmp(&b.1));
        if desc { o.reverse() } else { o }
    };
    let has_more = items.len() > limit;
    if has_more {
        items.select_nth_unstable_by(limit, by);
        items.truncate(limit);
    }
    items.sort_by(by);
    let next = if has_more {
        items.last().map(|(k, id, _)| make_cursor(k, *id))
    } else {
        None
    };
    (items, next)
}

/// Decodes the `cursor` param or answers 400.
pub fn cursor_param(p: &Params, family: ApiFamily) -> Result<Option<(SortKey, u64)>, ApiError> {
    match p.get("cursor") {
        None | Some("") => Ok(None),
        Some(c) => parse_cursor(c)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(family, "Invalid cursor")),
    }
}

/// The site base (`http://host:port`) as the client addressed it.
pub fn site_base(headers: &HeaderMap, sim: &Sim) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| format!("http://{h}"))
        .unwrap_or_else(|| sim.base_url())
}

/// A v2 list response: body `{results, _links:{next?, base}}` and `Link` header.
pub fn v2_list(
    base: &str,
    path: &str,
    params: &Params,
    results: Vec<Value>,
    next_cursor: Option<String>,
    limit: usize,
) -> Response {
    let mut links = json!({ "base": format!("{base}/wiki") });
    let mut link_header = None;
    if let Some(c) = next_cursor {
        let mut pairs = params.without(&["cursor", "limit"]);
        pairs.push(("limit".into(), limit.to_string()));
        pairs.push(("cursor".into(), c));
        let next = format!("{path}?{}", encode_query(&pairs));
        link_header = Some(format!(
            "<{next}>; rel=\"next\", <{base}/wiki>; rel=\"base\""
        ));
        links["next"] = json!(next);
    }
    let mut resp = Json(json!({ "results": results, "_links": links })).into_response();
    if let Some(l) = link_header
        && let Ok(v) = HeaderValue::from_str(&l)
    {
        resp.headers_mut().insert(header::LINK, v);
    }
    resp
}

/// Percent-encodes a path segment.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        for k in [SortKey::Int(-5), SortKey::Str("a|b c".into())] {
            let c = make_cursor(&k, 42);
            assert_eq!(parse_cursor(&c), Some((k, 42)));
        }
        assert_eq!(parse_cursor("!!"), None);
    }

    #[test]
    fn keyset_pages_cover_everything_once() {
        let items: Vec<_> = (0..103u64)
            .map(|i| (SortKey::Int((i % 7) as i64), i, i))
            .collect();
        for desc in [false, true] {
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let (page, next) = keyset(items.clone(), desc, cursor.as_ref(), 10);
                seen.extend(page.iter().map(|x| x.2));
                match next {
                    Some(c) => cursor = parse_cursor(&c),
                    None => break,
                }
            }
            let mut sorted = seen.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 103);
            assert_eq!(seen.len(), 103);
        }
    }
}
