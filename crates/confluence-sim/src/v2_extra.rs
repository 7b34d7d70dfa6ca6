//! More v2 reads, found missing by the third-party client checks (`thirdparty/`):
//!
//! * `GET /wiki/api/v2/pages`: all pages the caller may see, filtered by `id` and `space-id`
//!   (arrays), `title`, `status`, with `body-format`, `sort` and cursor paging like the other
//!   page lists (atlassian-python-api's `get_pages(space_id=…)` and confluence.js's
//!   `page.getPages` list a space's pages through it).
//!
//! Kept out of `v2.rs` so the file can be merged around; the routes are merged in
//! `server::router`.

use axum::Router;
use axum::extract::State as AxState;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use crate::Sim;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiFamily};
use crate::paging::Params;
use crate::v2::list_pages_where;

const F: ApiFamily = ApiFamily::V2;

/// The routes of this module.
pub fn routes() -> Router<Sim> {
    Router::new().route("/wiki/api/v2/pages", get(list_pages))
}

fn ids(p: &Params, name: &str) -> Result<Vec<u64>, ApiError> {
    let raw = p.get_all(name);
    if raw.len() > 250 {
        return Err(ApiError::bad_request(
            F,
            format!("At most 250 values of {name}"),
        ));
    }
    raw.iter()
        .map(|i| {
            i.parse::<u64>()
                .map_err(|_| ApiError::bad_request(F, format!("Invalid {name}: {i}")))
        })
        .collect()
}

async fn list_pages(
    AxState(sim): AxState<Sim>,
    auth: AuthUser,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let page_ids = ids(&p, "id")?;
    let space_ids = ids(&p, "space-id")?;
    list_pages_where(&sim, &auth, &headers, &p, "/wiki/api/v2/pages", |_, pg| {
        (page_ids.is_empty() || page_ids.contains(&pg.id))
            && (space_ids.is_empty() || space_ids.contains(&pg.space_id))
    })
}
