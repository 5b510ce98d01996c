//! `/v1/drawdowns`: quote a drawdown, confirm it, and follow it — with its timeline and every
//! call made to the payment channel.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use lendcore_domain::product::{ProductCode, RepaymentMethod};
use lendcore_engine::drawdowns::{self, DrawdownRequest, DrawdownView, Quoted};
use serde::Deserialize;
use utoipa::ToSchema;

use super::respond;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyHeader, JsonBody, PathParams};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteDrawdownRequest {
    pub line_id: String,
    #[schema(example = "cash-12m")]
    pub product_code: String,
    #[schema(example = 1000000)]
    pub amount_minor: i64,
    #[schema(example = 12)]
    pub term: u32,
    /// Revolving products only: repay in installments.
    #[serde(default)]
    pub split: Option<RepaymentMethod>,
    /// The receiving account at the payment channel.
    #[schema(example = "acct-6222020200112233")]
    pub account: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The token the quote returned.
    pub confirmation_token: String,
}

#[derive(Debug, Deserialize)]
pub struct DrawdownPath {
    id: String,
}

/// Quote a drawdown on a credit line: the price, and a confirmation token that expires.
#[utoipa::path(post, path = "/v1/drawdowns/quotes", tag = "drawdowns", request_body = QuoteDrawdownRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 201, description = "Quoted; confirm with the token before the drawdown's expires_at", body = Quoted),
        (status = 400, description = "Invalid input, an amount or term not offered", body = ErrorBody),
        (status = 404, description = "No such line or product", body = ErrorBody),
        (status = 422, description = "The line cannot hold it now: the code is the reason (credit.line_frozen, credit.limit_exceeded…), details say what to do", body = ErrorBody),
    ))]
pub async fn quote(
    State(state): State<AppState>,
    idempotency: IdempotencyHeader,
    body: JsonBody<QuoteDrawdownRequest>,
) -> Result<Response, ApiError> {
    let request = idempotency.request("POST", "/v1/drawdowns/quotes", &body.raw);
    let b = body.value;
    let product = ProductCode::parse(&b.product_code)
        .map_err(|v| ApiError::Engine(v.within("product_code").into()))?;
    let outcome = drawdowns::quote(
        &state.engine,
        DrawdownRequest {
            line_id: b.line_id,
            product,
            amount_minor: b.amount_minor,
            term: b.term,
            split: b.split,
            account: b.account,
        },
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Confirm a quote: the amount is held on the line and the payout starts. A quote that expired,
/// or a line that refuses by now, ends the drawdown with its reason — the answer shows it.
#[utoipa::path(post, path = "/v1/drawdowns/confirm", tag = "drawdowns", request_body = ConfirmRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "The drawdown: disbursing, or ended with its reason", body = DrawdownView),
        (status = 404, description = "No quote has this token", body = ErrorBody),
        (status = 409, description = "Already confirmed or ended", body = ErrorBody),
    ))]
pub async fn confirm(
    State(state): State<AppState>,
    idempotency: IdempotencyHeader,
    body: JsonBody<ConfirmRequest>,
) -> Result<Response, ApiError> {
    let request = idempotency.request("POST", "/v1/drawdowns/confirm", &body.raw);
    let outcome = drawdowns::confirm(
        &state.engine,
        &body.value.confirmation_token,
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// A drawdown with its timeline (every step and its reason) and every call to the channel.
#[utoipa::path(get, path = "/v1/drawdowns/{id}", tag = "drawdowns",
    params(("id" = String, Path, description = "Drawdown id")),
    responses(
        (status = 200, description = "The drawdown", body = DrawdownView),
        (status = 404, description = "No such drawdown", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    PathParams(path): PathParams<DrawdownPath>,
) -> Result<Json<DrawdownView>, ApiError> {
    if path.id.is_empty() || path.id.len() > 64 || !path.id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::Engine(lendcore_engine::EngineError::NotFound {
            code: "not_found.drawdown",
            message: "no drawdown with that id".to_owned(),
        }));
    }
    Ok(Json(drawdowns::get(&state.engine, &path.id).await?))
}
