//! What the portal reports to the `metrics` facade: requests and latency by route, cache
//! lookups, sign-ins. The binary installs the recorder (Prometheus, `[metrics] listen`) and
//! says so ([`enable`]); without one these calls return at once, so the portal never depends
//! on it and pays nothing for it (building the labels of a request's series costs more than
//! the rest of its accounting: measured in the portal bench, 2026-12-07).
//!
//! Labels are bounded on purpose: routes are the router's templates (`/pages/{id}`), never the
//! raw path, so a crawler of made-up URLs cannot grow the series without bound, and no label
//! ever carries an email, a token or a page id.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Route label of requests no route matched (404s of made-up paths).
const UNMATCHED: &str = "unmatched";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the portal's metrics on: called once a recorder is installed.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Counts each request by route template, method and status, and times it.
pub(crate) async fn http(req: Request, next: Next) -> Response {
    if !enabled() {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = method_label(req.method());
    let started = Instant::now();
    let resp = next.run(req).await;
    request(&route, method, resp.status(), started);
    resp
}

/// One request answered: its route template, method, status, and when it began.
pub(crate) fn request(
    route: &str,
    method: &'static str,
    status: axum::http::StatusCode,
    started: Instant,
) {
    if !enabled() {
        return;
    }
    let status = status.as_u16().to_string();
    let route = route.to_owned();
    metrics::counter!("kbgate_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("kbgate_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
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
    if !enabled() {
        return;
    }
    let outcome = if hit { "hit" } else { "miss" };
    metrics::counter!("kbgate_cache_lookups_total", "cache" => cache, "outcome" => outcome)
        .increment(1);
}

/// A sign-in attempt by `method` (`embed`, `handover`, `magic`, …) and its outcome
/// (`ok`, `refused` by the policy, `invalid` credential).
pub(crate) fn sign_in(method: &str, outcome: &'static str) {
    if !enabled() {
        return;
    }
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
