pub mod access;
pub mod alerts;
pub mod applications;
pub mod auth;
pub mod borrowers;
pub mod channels;
pub mod credit_lines;
pub mod deliveries;
pub mod docs;
pub mod drawdowns;
pub mod health;
pub mod jobs;
pub mod links;
pub mod loans;
pub mod maintenance;
pub mod policies;
pub mod products;
pub mod quotes;

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lendcore_engine::Outcome;
use serde::Serialize;

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
