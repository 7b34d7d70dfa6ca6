//! The router, the fault/stats middleware and the connection loop.
//!
//! The connection loop uses hyper directly (not `axum::serve`) so that an injected
//! "connection reset" can drop the connection without writing any response.

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::Sim;
use crate::error::{ApiError, ApiFamily};
use crate::sim::{Arrival, Fault, Gauge, Quota};

/// Marker extension: the connection loop drops the connection instead of answering.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}
impl std::error::Error for ResetConnection {}

/// Builds the full application: Confluence routes (counted, faulted) + `/_sim` (neither).
pub(crate) fn router(sim: Sim) -> Router {
    let api: Router<Sim> = Router::new()
        .merge(crate::v2::routes())
        .merge(crate::v2_extra::routes())
        .merge(crate::v1::routes())
        .merge(crate::v1_extra::routes())
        .merge(crate::access::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(sim.clone(), faults));
    let inner = Router::new()
        .nest("/_sim", crate::control::routes())
        .merge(crate::gateway::routes())
        .merge(api)
        .with_state(sim.clone());
    crate::gateway::wrap(sim, inner)
}

async fn not_found(req: Request) -> ApiError {
    let family = ApiFamily::of_path(req.uri().path());
    ApiError::not_found(
        family,
        format!("No route for {} {}", req.method(), req.uri().path()),
    )
}

/// Counts the call under `METHOD /template`, waits while a hold applies to it
/// ([`Sim::hold_after`]), adds latency, then maybe rate-limits, fails or resets it. Adds
/// `X-RateLimit-*` headers when a rate limit is configured. The call counts as in flight
/// ([`Sim::in_flight`]) from its arrival until it is answered or dropped.
///
/// `/cgraphql` is keyed by operation, `POST /cgraphql?q=GuestDataQuery` (the operation is what
/// matters, and it is the key the client counts under): taken from `?q=`, else from the body's
/// `operationName`; an unknown or missing operation counts as `POST /cgraphql`.
pub(crate) async fn faults(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let arrived = std::time::Instant::now();
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "<unmatched>".to_string());
    let method = req.method().clone();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let (req, template) = if template == "/cgraphql" {
        graphql_endpoint(req).await
    } else {
        (req, template)
    };
    let endpoint = format!("{method} {template}");
    sim.count(endpoint.clone());
    let flight = sim.flight();
    let arrival = Arrival {
        at: arrived,
        method: method.to_string(),
        path: path_and_query,
        endpoint,
        status: None,
    };
    let Some(ticket) = sim.hold_ticket(&arrival.endpoint) else {
        return answer(sim, req, next, arrival, flight).await;
    };
    // A held call waits and is answered in a task of its own: the connection drops this future
    // when the client goes away, but a released call is still served to the end (so a test
    // knows the site did what it asked), and a dropped one never is.
    let task = async move {
        if ticket.wait().await {
            sim.record_arrival(arrival);
            drop(flight);
            let mut r = Response::new(Body::empty());
            r.extensions_mut().insert(ResetConnection);
            r
        } else {
            answer(sim, req, next, arrival, flight).await
        }
    };
    tokio::spawn(task)
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The rest of [`faults`]: latency, injected faults, the handler, quota headers.
async fn answer(
    sim: Sim,
    req: Request,
    next: Next,
    mut arrival: Arrival,
    _flight: Gauge,
) -> Response {
    let family = ApiFamily::of_path(req.uri().path());
    let record = |arrival: &mut Arrival, status: Option<u16>| {
        arrival.status = status;
        sim.record_arrival(arrival.clone());
    };
    let latency = sim.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (fault, quota) = sim.decide_fault(&arrival.endpoint);
    sim.count_fault(fault);
    let mut resp = match fault {
        Fault::None => next.run(req).await,
        Fault::RateLimited {
            retry_after,
            limit,
            window_secs,
            reason,
        } => {
            let mut e = ApiError::new(
                family,
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit exceeded. Please retry after the time given in Retry-After.",
            );
            let q = Quota {
                limit,
                remaining: 0,
                reset_secs: retry_after,
                window_secs,
                reason,
            };
            e = e.with_header(header::RETRY_AFTER, HeaderValue::from(retry_after));
            for (k, v) in quota_headers(&sim, &q, true) {
                e = e.with_header(k, v);
            }
            record(&mut arrival, Some(StatusCode::TOO_MANY_REQUESTS.as_u16()));
            return e.into_response();
        }
        Fault::Error(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let msg = match code {
                502 => "Bad Gateway",
                503 => {
                    "Service Unavailable: the server is temporarily unable to handle the request"
                }
                _ => "An internal error occurred while processing the request",
            };
            let mut e = ApiError::new(family, status, msg);
            if code == 503 {
                e = e.with_header(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            e.into_response()
        }
        Fault::Reset => {
            record(&mut arrival, None);
            let mut r = Response::new(Body::empty());
            r.extensions_mut().insert(ResetConnection);
            return r;
        }
    };
    if let Some(q) = quota {
        let h = resp.headers_mut();
        for (k, v) in quota_headers(&sim, &q, false) {
            h.insert(k, v);
        }
    }
    record(&mut arrival, Some(resp.status().as_u16()));
    resp
}

/// The rate-limit headers of one answer, as Confluence Cloud names them
/// (<https://developer.atlassian.com/cloud/confluence/rate-limiting/>):
/// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (ISO 8601,
/// `yyyy-MM-ddTHH:mmZ`, "the request timestamp plus the Retry-After period" —
/// <https://jira.atlassian.com/browse/JRACLOUD-69262>), `X-RateLimit-NearLimit: true` when less
/// than 20% of the bucket is left, and the structured beta pair
/// `Beta-RateLimit-Policy: "NAME";q=LIMIT;w=WINDOW` / `Beta-RateLimit: "NAME";r=REMAINING;t=SECONDS`
/// ("At enforcement Beta- prefix will be dropped"; documented for the points-based app quotas
/// and informational only — the simulator sends them for its buckets so clients can be tested
/// against their presence, never relying on them). On a 429 also `RateLimit-Reason`
/// (`confluence-burst-based` for an endpoint bucket, `confluence-quota-global-based` for the
/// global one) and `Retry-After` (seconds; added by the caller).
pub(crate) fn quota_headers(
    sim: &Sim,
    q: &Quota,
    limited: bool,
) -> Vec<(header::HeaderName, HeaderValue)> {
    let reset = sim.now() + chrono::Duration::seconds(q.reset_secs as i64);
    let name = if q.reason == crate::sim::BURST_REASON {
        "confluence-burst"
    } else {
        "confluence-global"
    };
    let mut out = vec![
        ("x-ratelimit-limit", q.limit.to_string()),
        ("x-ratelimit-remaining", q.remaining.to_string()),
        (
            "x-ratelimit-reset",
            reset.format("%Y-%m-%dT%H:%MZ").to_string(),
        ),
        (
            "beta-ratelimit-policy",
            format!("\"{name}\";q={};w={}", q.limit, q.window_secs),
        ),
        (
            "beta-ratelimit",
            format!("\"{name}\";r={};t={}", q.remaining, q.reset_secs),
        ),
    ];
    if (q.remaining as u64) * 5 < q.limit as u64 {
        out.push(("x-ratelimit-nearlimit", "true".to_string()));
    }
    if limited {
        out.push(("ratelimit-reason", q.reason.to_string()));
    }
    out.into_iter()
        .filter_map(|(k, v)| {
            Some((
                header::HeaderName::from_static(k),
                HeaderValue::from_str(&v).ok()?,
            ))
        })
        .collect()
}

/// Largest `/cgraphql` body read to find its `operationName` (bigger bodies are not counted
/// by operation and reach the handler empty, which answers 400).
const GRAPHQL_BODY_MAX: usize = 1 << 20;

/// The stats template of a `/cgraphql` call: `/cgraphql?q=<operation>` for the operations the
/// simulator serves, `/cgraphql` otherwise. Reads (and puts back) the body when `?q=` is absent.
async fn graphql_endpoint(req: Request) -> (Request, String) {
    let known = |op: &str| crate::access::GRAPHQL_OPERATIONS.contains(&op);
    let from_query = req.uri().query().and_then(|q| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == "q")
            .map(|(_, v)| v)
    });
    let (req, op) = match from_query {
        Some(op) => (req, Some(op)),
        None => {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, GRAPHQL_BODY_MAX)
                .await
                .unwrap_or_default();
            let op = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["operationName"].as_str().map(str::to_string));
            (Request::from_parts(parts, Body::from(bytes)), op)
        }
    };
    match op {
        Some(op) if known(&op) => (req, format!("/cgraphql?q={op}")),
        _ => (req, "/cgraphql".to_string()),
    }
}

/// Accepts connections until `shutdown` fires; each connection is served by hyper's HTTP/1
/// server. Dropping the task aborts all connections.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let app = app.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let app = app.clone();
                        async move {
                            let resp = match app.oneshot(req.map(Body::new)).await {
                                Ok(r) => r,
                                Err(e) => match e {},
                            };
                            if resp.extensions().get::<ResetConnection>().is_some() {
                                Err(ResetConnection)
                            } else {
                                Ok::<_, ResetConnection>(resp)
                            }
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
}

#[allow(dead_code)]
fn _assert_infallible(e: Infallible) -> ! {
    match e {}
}
