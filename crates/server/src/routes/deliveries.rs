//! `/v1/deliveries`: the delivery log of notifications (webhooks, SMS, email) — what was sent
//! for each event, every attempt, what failed — and re-driving a failed one.

use axum::Json;
use axum::extract::State;
use lendcore_domain::ids::DeliveryId;
use lendcore_engine::notify::DeliveryStatus;
use lendcore_engine::notify::{self, DeliveryView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{PathParams, QueryParams, path_id};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListDeliveriesQuery {
    /// `pending`, `delivered`, `failed` or `skipped`; every status if omitted.
    pub status: Option<String>,
    /// Only the deliveries of this outbox event.
    pub event_id: Option<String>,
    /// 1-500; 50 if omitted.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
}

#[derive(Debug, Deserialize)]
pub struct DeliveryPath {
    id: String,
}

/// Deliveries, newest first.
#[utoipa::path(get, path = "/v1/deliveries", tag = "operations", params(ListDeliveriesQuery),
    responses(
        (status = 200, description = "Deliveries", body = DeliveryPage),
        (status = 400, description = "Invalid query", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListDeliveriesQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let status = query
        .status
        .as_deref()
        .map(|raw| {
            DeliveryStatus::parse(raw).ok_or_else(|| ApiError::InvalidParameter {
                code: "validation.invalid_delivery_status",
                parameter: "status".to_owned(),
                message: "status must be one of pending, delivered, failed, skipped".to_owned(),
            })
        })
        .transpose()?;
    let limit = super::page_limit(query.limit)?;
    if query.event_id.as_ref().is_some_and(|e| e.len() > 64) {
        return Err(ApiError::InvalidParameter {
            code: "validation.invalid_event_id",
            parameter: "event_id".to_owned(),
            message: "an event id is at most 64 characters".to_owned(),
        });
    }
    let event_id = query.event_id.as_deref();
    let items = notify::list(&state.engine, status, event_id, limit).await?;
    Ok(Json(DeliveryPage { items }))
}

/// One delivery with every attempt.
#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "operations",
    params(("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryView),
        (status = 404, description = "No such delivery", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    PathParams(path): PathParams<DeliveryPath>,
) -> Result<Json<DeliveryView>, ApiError> {
    Ok(Json(
        notify::get(&state.engine, path_id::<DeliveryId>(&path.id)?.as_str()).await?,
    ))
}

/// Try a failed delivery again, with a fresh set of attempts (after fixing its cause: the
/// receiver, the address, the gateway).
#[utoipa::path(post, path = "/v1/deliveries/{id}/redrive", tag = "operations",
    params(("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "Queued again", body = DeliveryView),
        (status = 404, description = "No such delivery", body = ErrorBody),
        (status = 409, description = "conflict.delivery_not_failed", body = ErrorBody),
    ))]
pub async fn redrive(
    State(state): State<AppState>,
    PathParams(path): PathParams<DeliveryPath>,
) -> Result<Json<DeliveryView>, ApiError> {
    Ok(Json(
        notify::redrive(&state.engine, path_id::<DeliveryId>(&path.id)?.as_str()).await?,
    ))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/deliveries", routing::get(list))
        .route("/v1/deliveries/{id}", routing::get(get))
        .route("/v1/deliveries/{id}/redrive", routing::post(redrive))
}
