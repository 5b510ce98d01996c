//! `/v1/maintenance-windows`: announce, list and cancel maintenance windows, as done by the
//! authenticated caller.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use lendcore_domain::ids::WindowId;
use lendcore_domain::maintenance::WindowInput;
use lendcore_engine::maintenance::{self, WindowView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::respond;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyHeader, JsonBody, PathParams, path_id};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowRequest {
    /// When it starts; a time already past means now.
    pub starts_at: DateTime<Utc>,
    /// When it ends: after it starts, in the future, at most 72 hours later.
    pub ends_at: DateTime<Utc>,
    /// What borrowers are told, e.g. "Payouts pause for the bank's year-end close."
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WindowPage {
    pub items: Vec<WindowView>,
}

#[derive(Debug, Deserialize)]
pub struct WindowPath {
    id: String,
}

/// Schedule a maintenance window. Borrowers with work in flight are told ahead; while it runs,
/// confirmed drawdowns are held and queued (`queued_for_maintenance`) and payouts wait; nothing
/// in flight is closed because of it.
#[utoipa::path(post, path = "/v1/maintenance-windows", tag = "operations", request_body = WindowRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 201, description = "Scheduled", body = WindowView),
        (status = 400, description = "Invalid window", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with another body", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    idempotency: IdempotencyHeader,
    body: JsonBody<WindowRequest>,
) -> Result<Response, ApiError> {
    let request = idempotency.request(&body.raw);
    let b = body.value;
    let outcome = maintenance::schedule(
        &state.engine,
        WindowInput {
            starts_at: b.starts_at,
            ends_at: b.ends_at,
            message: b.message,
            actor: caller.actor(),
        },
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Windows to come, in progress, and those that ended in the last seven days.
#[utoipa::path(get, path = "/v1/maintenance-windows", tag = "operations",
    responses((status = 200, description = "The windows, soonest first", body = WindowPage)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<WindowPage>, ApiError> {
    Ok(Json(WindowPage {
        items: maintenance::list(&state.engine).await?,
    }))
}

#[utoipa::path(get, path = "/v1/maintenance-windows/{id}", tag = "operations",
    params(("id" = String, Path, description = "Window id")),
    responses(
        (status = 200, description = "The window", body = WindowView),
        (status = 404, description = "No such window", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    PathParams(path): PathParams<WindowPath>,
) -> Result<Json<WindowView>, ApiError> {
    Ok(Json(
        maintenance::get(&state.engine, path_id::<WindowId>(&path.id)?.as_str()).await?,
    ))
}

/// Call a window off before it ends; what it held back continues at once.
#[utoipa::path(post, path = "/v1/maintenance-windows/{id}/cancel", tag = "operations",
    params(("id" = String, Path, description = "Window id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Cancelled", body = WindowView),
        (status = 404, description = "No such window", body = ErrorBody),
        (status = 409, description = "Already over or cancelled", body = ErrorBody),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    PathParams(path): PathParams<WindowPath>,
    idempotency: IdempotencyHeader,
) -> Result<Response, ApiError> {
    let id = path_id::<WindowId>(&path.id)?;
    let id = id.as_str();
    let request = idempotency.request(b"");
    let outcome = maintenance::cancel(&state.engine, id, request.as_ref()).await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/maintenance-windows", routing::get(list).post(create))
        .route("/v1/maintenance-windows/{id}", routing::get(get))
        .route("/v1/maintenance-windows/{id}/cancel", routing::post(cancel))
}
