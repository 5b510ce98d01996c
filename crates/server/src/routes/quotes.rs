//! `/v1/quotes`: the price of a drawdown, with its schedule, APR and cap checks.

use axum::Json;
use axum::extract::State;
use chrono::NaiveDate;
use lendcore_domain::product::{ProductCode, RepaymentMethod};
use lendcore_domain::quote::Quote;
use lendcore_engine::quotes::{self, QuoteRequest};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteBody {
    #[schema(example = "cash-12m")]
    pub product_code: String,
    /// A specific version; the one in effect now if omitted.
    #[serde(default)]
    pub version: Option<u32>,
    /// The amount to draw, in minor units.
    #[schema(example = 1000000)]
    pub amount_minor: i64,
    /// In the product's term unit.
    #[schema(example = 12)]
    pub term: u32,
    /// The drawdown date (YYYY-MM-DD); today if omitted.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date, example = "2026-11-22")]
    pub start_date: Option<NaiveDate>,
    /// Revolving products only: repay in `equal_installment`s or `equal_principal` instead of at will.
    #[serde(default)]
    pub split: Option<RepaymentMethod>,
    /// Price a credit line's tier (`rate_tier` on the line): the product's rate for that tier
    /// if it names one, its standard rate otherwise.
    #[serde(default)]
    #[schema(example = "preferred")]
    pub rate_tier: Option<String>,
}

/// Price a drawdown: schedule, fees, APR (nominal and effective) and every legal cap. Nothing
/// is stored; the same request always gets the same answer while the product version is the same.
#[utoipa::path(post, path = "/v1/quotes", tag = "quotes", request_body = QuoteBody,
    responses(
        (status = 200, description = "The quote", body = Quote),
        (status = 400, description = "Invalid input, an amount or term not offered, or an APR above a binding cap", body = ErrorBody),
        (status = 404, description = "No such product or version", body = ErrorBody),
        (status = 409, description = "The product is retired or not in effect yet", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    body: JsonBody<QuoteBody>,
) -> Result<Json<Quote>, ApiError> {
    let body = body.value;
    let product = ProductCode::parse(&body.product_code)
        .map_err(|v| ApiError::Engine(v.within("product_code").into()))?;
    let quote = quotes::quote(
        &state.engine,
        QuoteRequest {
            product,
            version: body.version,
            amount_minor: body.amount_minor,
            term: body.term,
            start: body.start_date,
            split: body.split,
            rate_tier: body.rate_tier,
        },
    )
    .await?;
    Ok(Json(quote))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new().route("/v1/quotes", routing::post(create))
}
