//! `/v1/drawdowns`: quote a drawdown, confirm it, and follow it — with its timeline and every
//! call made to the payment channel.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use lendcore_domain::ids::DrawdownId;
use lendcore_domain::product::{ProductCode, RepaymentMethod};
use lendcore_engine::drawdowns::{self, DrawdownRequest, DrawdownView, Quoted, review};
use serde::Deserialize;
use utoipa::ToSchema;

use super::respond;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyHeader, JsonBody, PathParams, path_id};

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
    let request = idempotency.request(&body.raw);
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
    params(("Idempotency-Key" = String, Header, description = "Required: this call moves money. Reuse it on retries")),
    responses(
        (status = 200, description = "The drawdown: disbursing, or ended with its reason", body = DrawdownView),
        (status = 400, description = "No or an invalid Idempotency-Key", body = ErrorBody),
        (status = 404, description = "No quote has this token", body = ErrorBody),
        (status = 409, description = "Already confirmed or ended", body = ErrorBody),
    ))]
pub async fn confirm(
    State(state): State<AppState>,
    idempotency: IdempotencyHeader,
    body: JsonBody<ConfirmRequest>,
) -> Result<Response, ApiError> {
    let request = idempotency.required(&body.raw)?;
    let outcome = drawdowns::confirm(
        &state.engine,
        &body.value.confirmation_token,
        Some(&request),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// A drawdown with its timeline (every step and its reason), every call to the channel, and,
/// when the credit policy held or refused it, which rule decided or that a person did (in the
/// `Accept-Language` asked for).
#[utoipa::path(get, path = "/v1/drawdowns/{id}", tag = "drawdowns",
    params(("id" = String, Path, description = "Drawdown id")),
    responses(
        (status = 200, description = "The drawdown", body = DrawdownView),
        (status = 404, description = "No such drawdown", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    PathParams(path): PathParams<DrawdownPath>,
) -> Result<Response, ApiError> {
    let id = path_id::<DrawdownId>(&path.id)?;
    let language = crate::language::current();
    let view = drawdowns::get(&state.engine, id.as_str(), language).await?;
    Ok(crate::language::answer_in(view, language))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkPaidRequest {
    /// The channel that paid: one the payout was sent to.
    #[schema(example = "sandbox")]
    pub channel_id: String,
    /// The channel's own reference for the payout, from its statement.
    #[schema(example = "sbx-0192…:sandbox", min_length = 1, max_length = 128)]
    pub channel_reference: String,
    /// How the payout was established (1-500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub note: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovePaidRequest {
    /// The claim's channel, as the approver checked it.
    pub channel_id: String,
    /// The claim's channel reference, as the approver checked it; a claim changed meanwhile
    /// is not approved (`conflict.claim_changed`).
    pub channel_reference: String,
    /// Why the claim holds (1-500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub note: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkFailedRequest {
    /// A catalogue reason of the channel, network, risk or system category; the borrower is
    /// told it with its next step.
    pub reason: lendcore_domain::reasons::Reason,
    /// Why the payout did not happen (1-500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub note: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// What was checked (1-500 characters); kept in the timeline.
    #[schema(min_length = 1, max_length = 500)]
    pub note: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineHeldRequest {
    /// A catalogue reason of the risk or credit category; the borrower is told it (or, where
    /// the catalogue hides the exact cause, a general one) with its next step.
    pub reason: lendcore_domain::reasons::Reason,
    /// Why (1-500 characters); kept in the timeline.
    #[schema(min_length = 1, max_length = 500)]
    pub note: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineDecisionRequest {
    pub decision: review::LineDecision,
    /// Why (1-500 characters); kept in the line's log and the drawdown's timeline.
    #[schema(min_length = 1, max_length = 500)]
    pub note: String,
}

/// Ask every channel the payout in review was sent to. A payout a channel confirms, for the
/// amount sent, is settled as paid; otherwise the answers go to the timeline.
#[utoipa::path(post, path = "/v1/drawdowns/{id}/review/ask", tag = "drawdowns",
    params(("id" = String, Path, description = "Drawdown id"),
        ("Idempotency-Key" = String, Header, description = "Required: this call may settle a payout")),
    responses(
        (status = 200, description = "The drawdown, paid out or still in review with the answers in its timeline", body = DrawdownView),
        (status = 400, description = "No or an invalid Idempotency-Key", body = ErrorBody),
        (status = 404, description = "No such drawdown", body = ErrorBody),
        (status = 409, description = "Not in manual review", body = ErrorBody),
    ))]
pub async fn review_ask(
    State(state): State<AppState>,
    PathParams(path): PathParams<DrawdownPath>,
    idempotency: IdempotencyHeader,
) -> Result<Response, ApiError> {
    let id = path_id::<DrawdownId>(&path.id)?;
    let request = idempotency.required(b"")?;
    let outcome = review::ask_channels(&state.engine, id.as_str(), Some(&request)).await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Mark a payout in review as paid, with the channel's reference. Settled at once when the
/// channel confirms it (paid under lendcore's reference, for the amount sent, as that
/// reference); otherwise it waits, claimed, for a second operator's approval.
#[utoipa::path(post, path = "/v1/drawdowns/{id}/review/paid", tag = "drawdowns", request_body = MarkPaidRequest,
    params(("id" = String, Path, description = "Drawdown id"),
        ("Idempotency-Key" = String, Header, description = "Required: this call may settle a payout")),
    responses(
        (status = 200, description = "The drawdown: paid out, or in review with the claim awaiting approval", body = DrawdownView),
        (status = 400, description = "Invalid input, a channel the payout was never sent to, no Idempotency-Key", body = ErrorBody),
        (status = 403, description = "Only an operator makes the claim", body = ErrorBody),
        (status = 404, description = "No such drawdown", body = ErrorBody),
        (status = 409, description = "Not in manual review", body = ErrorBody),
    ))]
pub async fn review_paid(
    State(state): State<AppState>,
    PathParams(path): PathParams<DrawdownPath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<MarkPaidRequest>,
) -> Result<Response, ApiError> {
    let id = path_id::<DrawdownId>(&path.id)?;
    let request = idempotency.required(&body.raw)?;
    let b = body.value;
    let mark = review::PaidMark {
        channel_id: b.channel_id,
        channel_reference: b.channel_reference,
        note: b.note,
    };
    let outcome = review::mark_paid(&state.engine, id.as_str(), mark, Some(&request)).await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Approve another operator's claim that a payout in review was made: it is settled as paid.
#[utoipa::path(post, path = "/v1/drawdowns/{id}/review/paid/approve", tag = "drawdowns", request_body = ApprovePaidRequest,
    params(("id" = String, Path, description = "Drawdown id"),
        ("Idempotency-Key" = String, Header, description = "Required: this call settles a payout")),
    responses(
        (status = 200, description = "The drawdown, paid out", body = DrawdownView),
        (status = 400, description = "Invalid note, no Idempotency-Key", body = ErrorBody),
        (status = 403, description = "Only an operator approves, and not the one who made the claim (auth.four_eyes)", body = ErrorBody),
        (status = 404, description = "No such drawdown", body = ErrorBody),
        (status = 409, description = "Not in manual review, nobody claimed it paid, or the claim is not the one named", body = ErrorBody),
    ))]
pub async fn review_approve(
    State(state): State<AppState>,
    PathParams(path): PathParams<DrawdownPath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<ApprovePaidRequest>,
) -> Result<Response, ApiError> {
    let id = path_id::<DrawdownId>(&path.id)?;
    let request = idempotency.required(&body.raw)?;
    let b = body.value;
    let approved = review::PaidMark {
        channel_id: b.channel_id,
        channel_reference: b.channel_reference,
        note: b.note,
    };
    let outcome =
        review::approve_paid(&state.engine, id.as_str(), &approved, Some(&request)).await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Mark a payout in review as not made, with a catalogue reason: the hold is released and the
/// borrower told. Refused while a channel says it paid or is still paying.
#[utoipa::path(post, path = "/v1/drawdowns/{id}/review/failed", tag = "drawdowns", request_body = MarkFailedRequest,
    params(("id" = String, Path, description = "Drawdown id"),
        ("Idempotency-Key" = String, Header, description = "Required: this call releases a hold")),
    responses(
        (status = 200, description = "The drawdown, failed with the reason", body = DrawdownView),
        (status = 400, description = "Invalid input, a reason of another category, no Idempotency-Key", body = ErrorBody),
        (status = 404, description = "No such drawdown", body = ErrorBody),
        (status = 403, description = "Only an operator marks a payout failed", body = ErrorBody),
        (status = 409, description = "Not in manual review, a channel may have paid or could not be asked (conflict.payout_may_have_paid), or a paid claim awaits approval", body = ErrorBody),
    ))]
pub async fn review_failed(
    State(state): State<AppState>,
    PathParams(path): PathParams<DrawdownPath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<MarkFailedRequest>,
) -> Result<Response, ApiError> {
    let id = path_id::<DrawdownId>(&path.id)?;
    let request = idempotency.required(&body.raw)?;
    let b = body.value;
    let outcome = review::mark_failed(
        &state.engine,
        id.as_str(),
        b.reason,
        &b.note,
        Some(&request),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Release a drawdown the credit policy held for review: its payout starts.
#[utoipa::path(post, path = "/v1/drawdowns/{id}/review/release", tag = "drawdowns", request_body = ReleaseRequest,
    params(("id" = String, Path, description = "Drawdown id"),
        ("Idempotency-Key" = String, Header, description = "Required: this call starts a payout")),
    responses(
        (status = 200, description = "The drawdown, paying out (or queued behind maintenance)", body = DrawdownView),
        (status = 400, description = "Invalid input, no Idempotency-Key", body = ErrorBody),
        (status = 403, description = "Only an operator releases a drawdown", body = ErrorBody),
        (status = 404, description = "No such drawdown", body = ErrorBody),
        (status = 409, description = "Not held for review, or the line no longer lends (`conflict.line_blocked`)", body = ErrorBody),
    ))]
pub async fn review_release(
    State(state): State<AppState>,
    PathParams(path): PathParams<DrawdownPath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<ReleaseRequest>,
) -> Result<Response, ApiError> {
    let id = path_id::<DrawdownId>(&path.id)?;
    let request = idempotency.required(&body.raw)?;
    let outcome = lendcore_engine::drawdowns::held::release(
        &state.engine,
        id.as_str(),
        &body.value.note,
        Some(&request),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Decline a drawdown the credit policy held for review, with a risk or credit reason: the
/// amount held on the line is given back and the borrower told.
#[utoipa::path(post, path = "/v1/drawdowns/{id}/review/decline", tag = "drawdowns", request_body = DeclineHeldRequest,
    params(("id" = String, Path, description = "Drawdown id"),
        ("Idempotency-Key" = String, Header, description = "Required: this call releases a hold")),
    responses(
        (status = 200, description = "The drawdown, refused with the reason", body = DrawdownView),
        (status = 400, description = "Invalid input, a reason of another category, no Idempotency-Key", body = ErrorBody),
        (status = 403, description = "Only an operator declines a drawdown", body = ErrorBody),
        (status = 404, description = "No such drawdown", body = ErrorBody),
        (status = 409, description = "Not held for review", body = ErrorBody),
    ))]
pub async fn review_decline(
    State(state): State<AppState>,
    PathParams(path): PathParams<DrawdownPath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<DeclineHeldRequest>,
) -> Result<Response, ApiError> {
    let id = path_id::<DrawdownId>(&path.id)?;
    let request = idempotency.required(&body.raw)?;
    let b = body.value;
    let outcome = lendcore_engine::drawdowns::held::decline(
        &state.engine,
        id.as_str(),
        b.reason,
        &b.note,
        Some(&request),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Decide about the line a payout of the wrong amount froze: unfreeze it or keep it frozen,
/// with a note in the line's log and the drawdown's timeline.
#[utoipa::path(post, path = "/v1/drawdowns/{id}/review/line", tag = "drawdowns", request_body = LineDecisionRequest,
    params(("id" = String, Path, description = "Drawdown id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "The drawdown, with the decision in its timeline", body = DrawdownView),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such drawdown", body = ErrorBody),
        (status = 409, description = "Not in review for a wrong payout, or the line is not frozen", body = ErrorBody),
    ))]
pub async fn review_line(
    State(state): State<AppState>,
    PathParams(path): PathParams<DrawdownPath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<LineDecisionRequest>,
) -> Result<Response, ApiError> {
    let id = path_id::<DrawdownId>(&path.id)?;
    let request = idempotency.request(&body.raw);
    let b = body.value;
    let outcome = review::decide_line(
        &state.engine,
        id.as_str(),
        b.decision,
        &b.note,
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/drawdowns/quotes", routing::post(quote))
        .route("/v1/drawdowns/confirm", routing::post(confirm))
        .route("/v1/drawdowns/{id}", routing::get(get))
        .route("/v1/drawdowns/{id}/review/ask", routing::post(review_ask))
        .route("/v1/drawdowns/{id}/review/paid", routing::post(review_paid))
        .route(
            "/v1/drawdowns/{id}/review/paid/approve",
            routing::post(review_approve),
        )
        .route(
            "/v1/drawdowns/{id}/review/failed",
            routing::post(review_failed),
        )
        .route("/v1/drawdowns/{id}/review/line", routing::post(review_line))
        .route(
            "/v1/drawdowns/{id}/review/release",
            routing::post(review_release),
        )
        .route(
            "/v1/drawdowns/{id}/review/decline",
            routing::post(review_decline),
        )
}
