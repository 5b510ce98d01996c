pub mod access;
pub mod alerts;
pub mod applications;
pub mod auth;
pub mod borrowers;
pub mod cases;
pub mod channels;
pub mod credit_lines;
pub mod deliveries;
pub mod docs;
pub mod drawdowns;
pub mod health;
pub mod incidents;
pub mod jobs;
pub mod links;
pub mod loans;
pub mod maintenance;
pub mod policies;
pub mod products;
pub mod quotes;
pub mod status;

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lendcore_engine::Outcome;
use serde::Serialize;

/// A list's `limit`: 1-500, 50 if omitted.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, crate::error::ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(crate::error::ApiError::InvalidParameter {
            code: "validation.limit_out_of_range",
            parameter: "limit".to_owned(),
            message: "limit must be between 1 and 500".to_owned(),
        });
    }
    Ok(limit)
}

/// Header set on a response that replays the stored result of an earlier request.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The response of a mutating call, marked when it is a replay.
pub(crate) fn respond<T: Serialize>(status: StatusCode, outcome: Outcome<T>) -> Response {
    let replayed = outcome.is_replay();
    let mut response = (status, Json(outcome.into_inner())).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}
