//! The portal as the connections see it: the page-view route `GET /pages/{id}` answered
//! directly, everything else by the router.
//!
//! Why: page views are nearly all of a portal's traffic, and the budget is nginx's throughput
//! serving the same HTML (DESIGN §8). Measured on the portal bench (2026-12-07, 2 cores, wrk
//! on the same machine): hyper alone serves the bench page at ~180,000 req/s, behind axum's
//! router ~140,000, and with the two middleware layers and their boxed services and futures
//! ~105,000 — nginx serves the file at ~120,000. The direct route skips the routing
//! machinery only: it runs the same gate ([`CurrentViewer`]), the same handler
//! ([`crate::pages::page`]), the same edge ([`Edge`]: error rendering, security headers,
//! request log) and the same metrics as the routed one, under the same path prefix.

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use kbgate_render::PortalUrls;

use crate::conns::Handle;
use crate::extractors::CurrentViewer;
use crate::security::Edge;
use crate::state::AppState;
use crate::urls::{self, routes};

/// The router and the direct page-view route in front of it.
#[derive(Clone)]
pub(crate) struct Portal {
    router: Router,
    state: AppState,
    urls: PortalUrls,
}

impl Portal {
    pub(crate) fn new(state: AppState) -> Portal {
        Portal {
            router: crate::router(state.clone()),
            urls: PortalUrls::under(state.settings().path_prefix()),
            state,
        }
    }

    /// The page id of a `GET /pages/{id}` under the prefix, and the request's URI as the
    /// router would hand it on (prefix stripped; `None`: unchanged, at the root). Only ids
    /// the router's `{id}` segment takes as they are (letters, digits, `-`: nothing
    /// percent-decoded); any other request, and any other id, goes to the router.
    fn page_route(
        &self,
        req: &hyper::Request<Incoming>,
    ) -> Option<(String, Option<axum::http::Uri>)> {
        if req.method() != Method::GET {
            return None;
        }
        let inner = req.uri().path().strip_prefix(self.urls.prefix())?;
        let id = inner.strip_prefix("/pages/")?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
        let rewritten = if self.urls.prefix().is_empty() {
            None
        } else {
            Some(crate::inside_prefix(self.urls.prefix(), req.uri())?)
        };
        Some((id.to_owned(), rewritten))
    }

    async fn page(self, req: hyper::Request<Incoming>, id: String) -> Response {
        let edge = Edge::begin(&req);
        let started = edge.started();
        // The body of a GET is not read, as on the routed page route.
        let (mut parts, _body) = req.into_parts();
        let state = &self.state;
        let answer = async {
            match CurrentViewer::from_request_parts(&mut parts, state).await {
                Ok(cv) => crate::pages::page(State(state.clone()), cv, Path(id))
                    .await
                    .into_response(),
                Err(e) => e.into_response(),
            }
        };
        let resp = if self.urls.prefix().is_empty() {
            answer.await
        } else {
            urls::scoped(self.urls.clone(), answer).await
        };
        let resp = edge.finish(resp, state);
        crate::telemetry::request(routes::PAGE, "GET", resp.status(), started);
        resp
    }
}

impl Handle for Portal {
    async fn handle(self, mut req: hyper::Request<Incoming>) -> Response {
        match self.page_route(&req) {
            Some((id, inner)) => {
                if let Some(uri) = inner {
                    *req.uri_mut() = uri;
                }
                self.page(req, id).await
            }
            None => self.router.clone().handle(req).await,
        }
    }
}
