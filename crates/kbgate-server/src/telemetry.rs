//! What the portal reports to the `metrics` facade: requests and latency by route, cache
//! lookups, sign-ins. The binary installs the recorder (Prometheus, `[metrics] listen`);
//! without one these calls do nothing, so the portal never depends on it.
//!
//! Labels are bounded on purpose: routes are the router's templates (`/pages/{id}`), never the
//! raw path, so a crawler of made-up URLs cannot grow the series without bound, and no label
//! ever carries an email, a token or a page id.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Route label of requests no route matched (404s of made-up paths).
const UNMATCHED: &str = "unmatched";

/// Counts each request by route template, method and status, and times it.
pub(crate) async fn http(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = method_label(req.method());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("kbgate_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("kbgate_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// The method as a label: the ones the portal serves, and one label for any other (clients
/// may send made-up methods; each must not become a series of its own).
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// A lookup in one of the portal's in-memory caches (`view`: resolved pages, `tree`: page
/// trees), found or not.
pub(crate) fn cache_lookup(cache: &'static str, hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    metrics::counter!("kbgate_cache_lookups_total", "cache" => cache, "outcome" => outcome)
        .increment(1);
}

/// A sign-in attempt by `method` (`embed`, `handover`, `magic`, …) and its outcome
/// (`ok`, `refused` by the policy, `invalid` credential).
pub(crate) fn sign_in(method: &str, outcome: &'static str) {
    metrics::counter!("kbgate_sign_ins_total", "method" => method.to_owned(), "outcome" => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        let custom = axum::http::Method::from_bytes(b"FROBNICATE").unwrap();
        assert_eq!(method_label(&custom), "other");
        assert_eq!(method_label(&axum::http::Method::GET), "GET");
    }
}
