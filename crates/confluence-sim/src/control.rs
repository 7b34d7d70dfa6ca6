//! The `/_sim/` control surface: stats, knobs, inspection and content edits.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::Sim;
use crate::sim::{Knobs, Stats};

/// Routes nested under `/_sim`.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset_stats))
        .route("/knobs", get(get_knobs).post(set_knobs))
}

async fn stats(State(sim): State<Sim>) -> Json<Stats> {
    Json(sim.stats())
}

async fn reset_stats(State(sim): State<Sim>) -> Json<Stats> {
    sim.reset_stats();
    Json(sim.stats())
}

async fn get_knobs(State(sim): State<Sim>) -> Json<Knobs> {
    Json(sim.knobs())
}

async fn set_knobs(State(sim): State<Sim>, Json(k): Json<Knobs>) -> Json<Knobs> {
    sim.set_knobs(k);
    Json(sim.knobs())
}
