//! `/v1/channels/{id}/callbacks`: payment channels tell us a payout ended. A callback is only a
//! hint that makes us ask the channel; see docs/CHANNEL_PROTOCOL.md.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use lendcore_engine::callbacks::{self, CallbackReceipt, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::PathParams;

#[derive(Debug, Deserialize)]
pub struct ChannelPath {
    id: String,
}

/// Receive a channel's payout callback, signed with `X-Lendcore-Timestamp` and
/// `X-Lendcore-Signature` (docs/CHANNEL_PROTOCOL.md). A verified one schedules a query of the
/// payout; it never settles one itself, and the answer says nothing about the drawdown.
#[utoipa::path(post, path = "/v1/channels/{id}/callbacks", tag = "drawdowns",
    params(("id" = String, Path, description = "Channel id")),
    request_body(content = String, content_type = "application/json", description = "The payout's state, as the channel protocol defines it"),
    responses(
        (status = 200, description = "Received", body = CallbackReceipt),
        (status = 400, description = "Not a payout state", body = ErrorBody),
        (status = 401, description = "Unsigned, badly signed, or timestamped more than five minutes off (auth.bad_signature)", body = ErrorBody),
        (status = 404, description = "No such channel", body = ErrorBody),
    ))]
pub async fn callback(
    State(state): State<AppState>,
    PathParams(path): PathParams<ChannelPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<CallbackReceipt>, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let receipt = callbacks::receive(
        &state.engine,
        &path.id,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
    )
    .await?;
    Ok(Json(receipt))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new().route("/v1/channels/{id}/callbacks", routing::post(callback))
}
