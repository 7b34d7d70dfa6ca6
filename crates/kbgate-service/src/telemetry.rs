//! `/metrics`: the Prometheus recorder behind the `metrics` facade, and its listener.
//!
//! The recorder is process-wide (the facade has one global recorder), installed on first use
//! and shared by every service the process runs (tests start several). The text is served by
//! our own axum on `[metrics] listen`, apart from the portal, so the reverse proxy customers
//! reach never exposes it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use kbgate_store::Store;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Latency buckets (seconds): page views from memory take well under a millisecond, a cold
/// search or a sign-in with a store write some milliseconds, anything near a second is a
/// problem worth seeing.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The content type of Prometheus' text exposition format 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the metrics recorder could not be installed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot install the metrics recorder: {0}")]
pub struct RecorderError(String);

static RECORDER: OnceLock<Result<PrometheusHandle, RecorderError>> = OnceLock::new();

/// The process's Prometheus recorder, installed as the `metrics` facade's global recorder on
/// first call. Fails when another recorder was installed first.
pub fn recorder() -> Result<PrometheusHandle, RecorderError> {
    RECORDER
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .map_err(|e| RecorderError(e.to_string()))?
                .install_recorder()
                .map_err(|e| RecorderError(e.to_string()))
                .inspect(|_| kbgate_server::enable_metrics())
        })
        .clone()
}

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    store: Arc<dyn Store>,
}

/// `GET /metrics`: the gauges read from the store at scrape time (live sessions, shared by
/// every instance on the store), then everything recorded in this process.
async fn metrics(State(s): State<Scrape>) -> impl IntoResponse {
    match s.store.sessions_per_domain(chrono::Utc::now()).await {
        Ok(per_domain) => {
            let live: u64 = per_domain.iter().map(|(_, n)| n).sum();
            // Gauges are f64; session counts are far below 2^53.
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("kbgate_sessions").set(live as f64);
            metrics::gauge!("kbgate_session_domains").set(per_domain.len() as f64);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count live sessions"),
    }
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], s.handle.render())
}

/// Serves `/metrics` on `listener` until `stop`; drains the recorder's histogram buffers
/// every few seconds meanwhile (the exporter's upkeep) so memory stays bounded between scrapes.
pub(crate) async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    store: Arc<dyn Store>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let upkeep = {
        let (handle, stop) = (handle.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            while stop.run_until_cancelled(tick.tick()).await.is_some() {
                handle.run_upkeep();
            }
        })
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(Scrape { handle, store });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stop.clone().cancelled_owned())
        .await;
    stop.cancel();
    let _ = upkeep.await;
    served
}
