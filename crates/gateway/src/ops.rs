use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::AppState;

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often the recorder drains its histograms' raw samples into their summaries.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process-wide Prometheus recorder once. Call it inside the Tokio runtime.
pub fn install_metrics() {
    METRICS.get_or_init(|| {
        let handle = PrometheusBuilder::new().install_recorder().ok()?;
        // A histogram keeps every sample until it is drained: left to scrapes alone, a
        // gateway nobody scrapes would grow with every message. The task lives on the
        // runtime of the first gateway to start, which in a process is the only one (test
        // binaries that start many lose it with the first test's runtime; harmless there).
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_EVERY);
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });
        Some(handle)
    });
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let db = s.services.store.ping().await.is_ok();
    let broker = s.services.publisher.ready().await;
    let redis = s.dedup.ping().await.is_ok();
    let status = if db && broker && redis {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "down" };
    (
        status,
        Json(json!({"database": word(db), "broker": word(broker), "redis": word(redis)})),
    )
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    if !s.services.config.metrics.listen.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            "metrics are served on metrics.listen".to_owned(),
        );
    }
    match METRICS.get().and_then(Option::as_ref) {
        Some(h) => (StatusCode::OK, h.render()),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed".to_owned(),
        ),
    }
}
