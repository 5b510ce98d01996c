//! `/v1/loans/{id}`: a paid-out drawdown as a loan — its repayments and its timeline.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use lendcore_domain::ids::LoanId;
use lendcore_engine::links::ViewLinkSent;
use lendcore_engine::loans::{self, RepaymentMode, RepaymentReceipt};
use lendcore_engine::timeline::{self, Timeline};
use serde::Deserialize;
use utoipa::ToSchema;

use super::respond;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyHeader, JsonBody, PathParams, path_id};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepaymentRequest {
    /// At most what is owed: the whole schedule left (`installments`) or the payoff today
    /// (`payoff`). More is refused, never taken.
    #[schema(example = 91680, minimum = 1, maximum = 10_000_000_000_000_i64)]
    pub amount_minor: i64,
    /// `installments` (the default) or `payoff`.
    #[serde(default = "installments")]
    pub mode: RepaymentMode,
}

fn installments() -> RepaymentMode {
    RepaymentMode::Installments
}

#[derive(Debug, Deserialize)]
pub struct LoanPath {
    id: String,
}

/// Repay a loan: installments oldest first in the product's allocation order, or a payoff.
/// An amount above what is owed is refused (`validation.amount_above_owed`), so nothing is
/// collected that would have to be refunded.
#[utoipa::path(post, path = "/v1/loans/{id}/repayments", tag = "drawdowns", request_body = RepaymentRequest,
    params(("id" = String, Path, description = "Loan (drawdown) id"),
        ("Idempotency-Key" = String, Header, description = "Required: this call moves money. Reuse it on retries")),
    responses(
        (status = 201, description = "Booked", body = RepaymentReceipt),
        (status = 400, description = "Invalid amount, less than a payoff takes, more than is owed (validation.amount_above_owed, the message says how much is), no Idempotency-Key", body = ErrorBody),
        (status = 404, description = "No such loan", body = ErrorBody),
        (status = 409, description = "The loan is not active", body = ErrorBody),
    ))]
pub async fn repay(
    State(state): State<AppState>,
    PathParams(path): PathParams<LoanPath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<RepaymentRequest>,
) -> Result<Response, ApiError> {
    let id = path_id::<LoanId>(&path.id)?;
    let request = idempotency.required(&body.raw)?;
    let outcome = loans::repay(
        &state.engine,
        id.as_str(),
        body.value.amount_minor,
        body.value.mode,
        Some(&request),
    )
    .await?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Everything that happened to a loan, oldest first: state changes, calls to payment channels,
/// ledger postings and notifications, with times and reason codes.
#[utoipa::path(get, path = "/v1/loans/{id}/timeline", tag = "drawdowns",
    params(("id" = String, Path, description = "Loan (drawdown) id")),
    responses(
        (status = 200, description = "The timeline", body = Timeline),
        (status = 404, description = "No such loan", body = ErrorBody),
    ))]
pub async fn timeline(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    PathParams(path): PathParams<LoanPath>,
) -> Result<Json<Timeline>, ApiError> {
    let id = path_id::<LoanId>(&path.id)?;
    use lendcore_engine::access::Principal;
    let reader = match &caller.0 {
        Principal::Borrower {
            borrower_id,
            mobile_index,
            ..
        } => timeline::Reader::Borrower {
            borrower_id: borrower_id.as_deref(),
            mobile_index,
        },
        Principal::ApiKey { .. } | Principal::Operator { .. } => {
            lendcore_engine::access::require(
                &caller.0,
                lendcore_domain::access::Permission::LoansRead,
            )?;
            timeline::Reader::Staff
        }
    };
    Ok(Json(
        timeline::timeline(&state.engine, reader, id.as_str()).await?,
    ))
}

/// Text the loan's borrower a link to their loan, at the number registered for them. The link
/// opens once, signs them in to this loan's timeline only, and never passes through the
/// caller: the answer says where it went (masked) and until when it opens.
#[utoipa::path(post, path = "/v1/loans/{id}/view-link", tag = "drawdowns",
    params(("id" = String, Path, description = "Loan (drawdown) id")),
    responses(
        (status = 201, description = "Sent", body = ViewLinkSent),
        (status = 404, description = "No such loan", body = ErrorBody),
        (status = 409, description = "The borrower has no registered mobile number", body = ErrorBody),
        (status = 429, description = "Three links an hour per loan at most", body = ErrorBody),
        (status = 503, description = "No SMS gateway or link address configured, or the gateway is down", body = ErrorBody),
    ))]
pub async fn view_link(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    PathParams(path): PathParams<LoanPath>,
) -> Result<(StatusCode, Json<ViewLinkSent>), ApiError> {
    let id = path_id::<LoanId>(&path.id)?;
    let sent =
        lendcore_engine::links::send_view_link(&state.engine, &caller.0, id.as_str()).await?;
    Ok((StatusCode::CREATED, Json(sent)))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/loans/{id}/repayments", routing::post(repay))
        .route("/v1/loans/{id}/timeline", routing::get(timeline))
        .route("/v1/loans/{id}/view-link", routing::post(view_link))
}
