//! Confluence REST v1 endpoints: restrictions, CQL search, content search, downloads.

use axum::Router;

use crate::Sim;

/// v1 routes.
pub fn routes() -> Router<Sim> {
    Router::new()
}
