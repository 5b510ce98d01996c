use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Process is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers and its schema is the one this build expects.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready for traffic", body = Health),
    (status = 503, description = "Database unreachable or migrations not current", body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state
        .engine
        .store
        .readiness()
        .await
        .map_err(|e| ApiError::NotReady(e.to_string()))?;
    Ok(Json(Health { status: "ready" }))
}

/// How long a scrape waits for the figures read from the database before it answers without
/// them (`lendcore_figures_up` 0): a slow database must not stall monitoring.
const FIGURES_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

static READING_FIGURES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Prometheus text exposition (docs/OPERATIONS.md lists every series): requests, refusals and
/// business events by reason, credit decisions, payouts by channel, deliveries, jobs and the
/// queues waiting for a person, read from the database at each scrape.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // `/metrics` is public and never shed: scrapes read the database one at a time, so a
    // flood of them costs the database one reader, not one per request.
    let figures = tokio::time::timeout(FIGURES_WITHIN, async {
        let _one = READING_FIGURES.lock().await;
        lendcore_engine::operations::figures(&state.engine).await
    })
    .await;
    let up = match figures {
        Ok(Ok(figures)) => {
            crate::metrics::record_figures(&figures);
            1.0
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "could not read the figures for /metrics");
            0.0
        }
        Err(_) => {
            tracing::warn!("the figures for /metrics took too long; answered without them");
            0.0
        }
    };
    metrics::gauge!("lendcore_figures_up").set(up);
    state.metrics.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/healthz", routing::get(healthz))
        .route("/readyz", routing::get(readyz))
        .route("/metrics", routing::get(metrics))
}
