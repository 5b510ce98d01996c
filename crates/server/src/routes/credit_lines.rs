//! `/v1/credit-lines`: credit lines (额度), their limit and status changes and their log.
//! Every change is recorded as done by the authenticated caller.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use lendcore_domain::credit_line::{GrantInput, LineEvent, LineView};
use lendcore_domain::ids::LineId;
use lendcore_domain::reasons::Reason;
use lendcore_engine::credit_lines::{self, LineChange};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::respond;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyHeader, JsonBody, PathParams, QueryParams, path_id};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The lender's identifier for the borrower.
    #[schema(example = "b-1001")]
    pub borrower_id: String,
    #[schema(example = "CNY")]
    pub currency: String,
    #[schema(example = 5000000)]
    pub limit_minor: i64,
    /// The price tier drawdowns on the line pay (see `rate_tiers` on product terms); the
    /// products' standard rates if omitted.
    #[serde(default)]
    #[schema(example = "preferred")]
    pub rate_tier: Option<String>,
    /// Now if omitted.
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: DateTime<Utc>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitRequest {
    pub limit_minor: i64,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeRequest {
    /// A reason code of the credit, risk or policy category, e.g. `credit.overdue`.
    pub reason: Reason,
    /// When the freeze is planned to end; it still ends only by an unfreeze.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnfreezeRequest {
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    pub reason: Reason,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinesQuery {
    /// The borrower whose lines to list.
    pub borrower_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinePage {
    pub items: Vec<LineView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<LineEvent>,
}

#[derive(Debug, Deserialize)]
pub struct LinePath {
    id: String,
}

/// Grant a credit line.
#[utoipa::path(post, path = "/v1/credit-lines", tag = "credit lines", request_body = GrantRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 201, description = "Granted", body = LineView),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with another body", body = ErrorBody),
    ))]
pub async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    idempotency: IdempotencyHeader,
    body: JsonBody<GrantRequest>,
) -> Result<Response, ApiError> {
    let request = idempotency.request(&body.raw);
    let input = body.value;
    let outcome = credit_lines::grant(
        &state.engine,
        GrantInput {
            borrower_id: input.borrower_id,
            currency: input.currency,
            limit_minor: input.limit_minor,
            rate_tier: input.rate_tier,
            valid_from: input.valid_from,
            valid_until: input.valid_until,
            actor: caller.actor(),
            note: input.note,
        },
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// A borrower's lines, oldest first.
#[utoipa::path(get, path = "/v1/credit-lines", tag = "credit lines", params(LinesQuery),
    responses(
        (status = 200, description = "The lines", body = LinePage),
        (status = 400, description = "Invalid query", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<LinesQuery>,
) -> Result<Json<LinePage>, ApiError> {
    let items = credit_lines::of_borrower(&state.engine, &query.borrower_id).await?;
    Ok(Json(LinePage { items }))
}

/// A line: limit, drawn, held, available now, why nothing may be drawn when that is so, and
/// which rule of the credit policy froze it or last changed its limit (in the
/// `Accept-Language` asked for).
#[utoipa::path(get, path = "/v1/credit-lines/{id}", tag = "credit lines",
    params(("id" = String, Path, description = "Line id")),
    responses(
        (status = 200, description = "The line", body = LineView),
        (status = 404, description = "No such line", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    PathParams(path): PathParams<LinePath>,
) -> Result<axum::response::Response, ApiError> {
    let language = crate::language::current();
    let view = credit_lines::get_with_decider(
        &state.engine,
        path_id::<LineId>(&path.id)?.as_str(),
        language,
    )
    .await?;
    Ok(crate::language::answer_in(view, language))
}

/// The line's limit-change log: grant, increases, decreases, freezes, unfreezes, closing.
#[utoipa::path(get, path = "/v1/credit-lines/{id}/events", tag = "credit lines",
    params(("id" = String, Path, description = "Line id")),
    responses(
        (status = 200, description = "The log, oldest first", body = EventPage),
        (status = 404, description = "No such line", body = ErrorBody),
    ))]
pub async fn events(
    State(state): State<AppState>,
    PathParams(path): PathParams<LinePath>,
) -> Result<Json<EventPage>, ApiError> {
    let items = credit_lines::events(&state.engine, path_id::<LineId>(&path.id)?.as_str()).await?;
    Ok(Json(EventPage { items }))
}

/// Who asks for a change, and why in their own words.
struct Who {
    actor: String,
    note: Option<String>,
}

async fn apply(
    state: AppState,
    id: &str,
    idempotency: IdempotencyHeader,
    raw: &[u8],
    change: LineChange,
    who: Who,
) -> Result<Response, ApiError> {
    let id = path_id::<LineId>(id)?;
    let request = idempotency.request(raw);
    let outcome = credit_lines::change(
        &state.engine,
        id.as_str(),
        change,
        who.actor,
        who.note,
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Raise or lower the limit; never below what is drawn and held.
#[utoipa::path(post, path = "/v1/credit-lines/{id}/limit", tag = "credit lines", request_body = LimitRequest,
    params(("id" = String, Path, description = "Line id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Changed", body = LineView),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such line", body = ErrorBody),
        (status = 409, description = "Closed, or below what is drawn and held", body = ErrorBody),
    ))]
pub async fn limit(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<LinePath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<LimitRequest>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let change = LineChange::Limit {
        limit_minor: b.limit_minor,
    };
    apply(
        state,
        &path.id,
        idempotency,
        &body.raw,
        change,
        Who {
            actor: caller.actor(),
            note: b.note,
        },
    )
    .await
}

/// Freeze: no new drawdowns until unfrozen; loans already drawn run on.
#[utoipa::path(post, path = "/v1/credit-lines/{id}/freeze", tag = "credit lines", request_body = FreezeRequest,
    params(("id" = String, Path, description = "Line id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Frozen", body = LineView),
        (status = 400, description = "Invalid input or a reason not allowed here", body = ErrorBody),
        (status = 404, description = "No such line", body = ErrorBody),
        (status = 409, description = "Already frozen, or closed", body = ErrorBody),
    ))]
pub async fn freeze(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<LinePath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<FreezeRequest>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let change = LineChange::Freeze {
        reason: b.reason,
        until: b.until,
    };
    apply(
        state,
        &path.id,
        idempotency,
        &body.raw,
        change,
        Who {
            actor: caller.actor(),
            note: b.note,
        },
    )
    .await
}

/// Unfreeze a frozen line.
#[utoipa::path(post, path = "/v1/credit-lines/{id}/unfreeze", tag = "credit lines", request_body = UnfreezeRequest,
    params(("id" = String, Path, description = "Line id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Unfrozen", body = LineView),
        (status = 404, description = "No such line", body = ErrorBody),
        (status = 409, description = "Not frozen, or closed", body = ErrorBody),
    ))]
pub async fn unfreeze(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<LinePath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<UnfreezeRequest>,
) -> Result<Response, ApiError> {
    let b = body.value;
    apply(
        state,
        &path.id,
        idempotency,
        &body.raw,
        LineChange::Unfreeze,
        Who {
            actor: caller.actor(),
            note: b.note,
        },
    )
    .await
}

/// Close the line for good; what is drawn is still repaid as scheduled.
#[utoipa::path(post, path = "/v1/credit-lines/{id}/close", tag = "credit lines", request_body = CloseRequest,
    params(("id" = String, Path, description = "Line id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Closed", body = LineView),
        (status = 400, description = "Invalid input or a reason not allowed here", body = ErrorBody),
        (status = 404, description = "No such line", body = ErrorBody),
        (status = 409, description = "Already closed", body = ErrorBody),
    ))]
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<LinePath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<CloseRequest>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let change = LineChange::Close { reason: b.reason };
    apply(
        state,
        &path.id,
        idempotency,
        &body.raw,
        change,
        Who {
            actor: caller.actor(),
            note: b.note,
        },
    )
    .await
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/credit-lines", routing::get(list).post(grant))
        .route("/v1/credit-lines/{id}", routing::get(get))
        .route("/v1/credit-lines/{id}/events", routing::get(events))
        .route("/v1/credit-lines/{id}/limit", routing::post(limit))
        .route("/v1/credit-lines/{id}/freeze", routing::post(freeze))
        .route("/v1/credit-lines/{id}/unfreeze", routing::post(unfreeze))
        .route("/v1/credit-lines/{id}/close", routing::post(close))
}
