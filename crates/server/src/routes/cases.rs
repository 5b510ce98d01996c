//! Support cases: `/v1/borrowers/{id}/cases` for the borrower themselves (signed in, their own
//! id) and for support on their behalf (`borrowers:read` to read, `borrowers:write` to open,
//! answer and resolve); `/v1/cases` is support's queue across borrowers. A borrower never sees
//! support's internal notes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use lendcore_domain::access::Permission;
use lendcore_domain::case::{Case, CaseStatus, Subject, SubjectKind};
use lendcore_domain::ids::{BorrowerId, CaseId};
use lendcore_domain::reasons::Reason;
use lendcore_engine::EngineError;
use lendcore_engine::access::{self, Principal};
use lendcore_engine::cases::{self, Actor, CaseView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::respond;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyHeader, JsonBody, PathParams, QueryParams, path_id};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCaseRequest {
    /// What the case is about: one of the borrower's applications, drawdowns, loans or lines.
    pub subject: Subject,
    /// The reason code of the refusal or failure that led here, as the API answered it.
    pub reason: Option<Reason>,
    /// What the borrower needs, 1-2,000 characters.
    pub body: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteRequest {
    /// 1-2,000 characters.
    pub body: String,
    /// Support only: a note between staff, never shown or sent to the borrower.
    #[serde(default)]
    pub internal: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// How it was settled, sent to the borrower; 1-2,000 characters.
    pub body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CasePage {
    pub items: Vec<Case>,
}

#[derive(Debug, Deserialize)]
pub struct BorrowerCasesPath {
    id: String,
}

#[derive(Debug, Deserialize)]
pub struct CasePath {
    id: String,
    case_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCasesQuery {
    /// Only the cases about one thing, as `drawdown:{id}`, `loan:{id}`, `application:{id}` or
    /// `credit_line:{id}` (what a page about it shows).
    pub about: Option<String>,
    /// 1-500; 50 if omitted.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// `waiting_for_support` (the default), `waiting_for_borrower` or `resolved`.
    pub status: Option<String>,
    /// 1-500; 50 if omitted.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Who is acting on `borrower`'s cases: the borrower themselves (by their session, or, for a
/// session opened before they registered, by the number it proved), or support holding
/// `permission`. Another borrower is told there is no such borrower's case.
async fn actor_for(
    state: &AppState,
    caller: &Caller,
    borrower: &str,
    permission: Permission,
) -> Result<Actor, ApiError> {
    let theirs = match &caller.0 {
        Principal::Borrower {
            borrower_id: Some(own),
            ..
        } => own == borrower,
        Principal::Borrower {
            borrower_id: None,
            mobile_index,
            ..
        } => cases::registered_with(&state.engine, borrower, mobile_index).await?,
        Principal::ApiKey { .. } | Principal::Operator { .. } => {
            access::require(&caller.0, permission)?;
            return Ok(Actor::Support(caller.actor()));
        }
    };
    if theirs {
        Ok(Actor::Borrower)
    } else {
        Err(ApiError::Engine(EngineError::NotFound {
            code: "not_found.borrower",
            message: "no borrower with that id".to_owned(),
        }))
    }
}

fn about(raw: Option<&str>) -> Result<Option<(SubjectKind, String)>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let kind = |k: &str| match k {
        "application" => Some(SubjectKind::Application),
        "drawdown" => Some(SubjectKind::Drawdown),
        "loan" => Some(SubjectKind::Loan),
        "credit_line" => Some(SubjectKind::CreditLine),
        _ => None,
    };
    raw.split_once(':')
        .and_then(|(k, id)| Some((kind(k)?, id)))
        .filter(|(_, id)| {
            !id.is_empty() && id.len() <= lendcore_domain::ids::MAX_ID_LEN && !id.contains('\0')
        })
        .map(|(k, id)| Some((k, id.to_owned())))
        .ok_or_else(|| ApiError::InvalidParameter {
            code: "validation.invalid_case_subject",
            parameter: "about".to_owned(),
            message: "about must be drawdown:{id}, loan:{id}, application:{id} or credit_line:{id}"
                .to_owned(),
        })
}

fn subject_id_checked(subject: &Subject) -> Result<(), ApiError> {
    if subject.id.is_empty()
        || subject.id.len() > lendcore_domain::ids::MAX_ID_LEN
        || subject.id.contains('\0')
    {
        return Err(ApiError::Engine(EngineError::NotFound {
            code: "not_found.case_subject",
            message: format!("the borrower has no {} with that id", subject.kind.as_str()),
        }));
    }
    Ok(())
}

/// Open a case: the borrower asking for help (often from a refusal's `get help`), or support
/// on their behalf. Support owes an answer by `respond_by`; the borrower is told so.
#[utoipa::path(post, path = "/v1/borrowers/{id}/cases", tag = "support", request_body = OpenCaseRequest,
    params(("id" = String, Path, description = "Borrower id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 201, description = "Opened", body = CaseView),
        (status = 400, description = "Invalid case", body = ErrorBody),
        (status = 404, description = "No such borrower, or no such thing of theirs", body = ErrorBody),
        (status = 409, description = "Five cases open already, or Idempotency-Key reused with another body", body = ErrorBody),
    ))]
pub async fn open_case(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<BorrowerCasesPath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<OpenCaseRequest>,
) -> Result<Response, ApiError> {
    let borrower = path_id::<BorrowerId>(&path.id)?;
    let actor = actor_for(
        &state,
        &caller,
        borrower.as_str(),
        Permission::BorrowersWrite,
    )
    .await?;
    let request = idempotency.request(&body.raw);
    let b = body.value;
    subject_id_checked(&b.subject)?;
    let outcome = cases::open(
        &state.engine,
        borrower.as_str(),
        &actor,
        b.subject,
        b.reason,
        &b.body,
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// A borrower's cases, latest first; `about` narrows to one thing's.
#[utoipa::path(get, path = "/v1/borrowers/{id}/cases", tag = "support",
    params(("id" = String, Path, description = "Borrower id"), ListCasesQuery),
    responses(
        (status = 200, description = "The cases", body = CasePage),
        (status = 400, description = "Invalid query", body = ErrorBody),
    ))]
pub async fn list_cases(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<BorrowerCasesPath>,
    QueryParams(query): QueryParams<ListCasesQuery>,
) -> Result<Json<CasePage>, ApiError> {
    let borrower = path_id::<BorrowerId>(&path.id)?;
    let reader = actor_for(
        &state,
        &caller,
        borrower.as_str(),
        Permission::BorrowersRead,
    )
    .await?;
    let about = about(query.about.as_deref())?;
    let limit = super::page_limit(query.limit)?;
    let about = about.as_ref().map(|(k, id)| (*k, id.as_str()));
    Ok(Json(CasePage {
        items: cases::list(&state.engine, borrower.as_str(), about, &reader, limit).await?,
    }))
}

/// A case and its messages (the borrower sees no internal note).
#[utoipa::path(get, path = "/v1/borrowers/{id}/cases/{case_id}", tag = "support",
    params(("id" = String, Path, description = "Borrower id"), ("case_id" = String, Path, description = "Case id")),
    responses(
        (status = 200, description = "The case", body = CaseView),
        (status = 404, description = "No such case of that borrower", body = ErrorBody),
    ))]
pub async fn get_case(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<CasePath>,
) -> Result<Json<CaseView>, ApiError> {
    let borrower = path_id::<BorrowerId>(&path.id)?;
    let case = path_id::<CaseId>(&path.case_id)?;
    let reader = actor_for(
        &state,
        &caller,
        borrower.as_str(),
        Permission::BorrowersRead,
    )
    .await?;
    Ok(Json(
        cases::get(&state.engine, borrower.as_str(), case.as_str(), &reader).await?,
    ))
}

/// Write to a case: the borrower (reopening a resolved one within 14 days), or support, whose
/// answer is sent to the borrower by SMS and email (an internal note is not).
#[utoipa::path(post, path = "/v1/borrowers/{id}/cases/{case_id}/messages", tag = "support", request_body = WriteRequest,
    params(("id" = String, Path, description = "Borrower id"), ("case_id" = String, Path, description = "Case id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Written", body = CaseView),
        (status = 400, description = "Invalid message", body = ErrorBody),
        (status = 404, description = "No such case of that borrower", body = ErrorBody),
        (status = 409, description = "Resolved (support), too old to reopen (borrower), or changed meanwhile", body = ErrorBody),
    ))]
pub async fn write_to_case(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<CasePath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<WriteRequest>,
) -> Result<Response, ApiError> {
    let borrower = path_id::<BorrowerId>(&path.id)?;
    let case = path_id::<CaseId>(&path.case_id)?;
    let actor = actor_for(
        &state,
        &caller,
        borrower.as_str(),
        Permission::BorrowersWrite,
    )
    .await?;
    let request = idempotency.request(&body.raw);
    let outcome = cases::write(
        &state.engine,
        borrower.as_str(),
        case.as_str(),
        &actor,
        &body.value.body,
        body.value.internal,
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Resolve a case, telling the borrower how it was settled (support only).
#[utoipa::path(post, path = "/v1/borrowers/{id}/cases/{case_id}/resolve", tag = "support", request_body = ResolveRequest,
    params(("id" = String, Path, description = "Borrower id"), ("case_id" = String, Path, description = "Case id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Resolved", body = CaseView),
        (status = 400, description = "Invalid message", body = ErrorBody),
        (status = 404, description = "No such case of that borrower", body = ErrorBody),
        (status = 409, description = "Resolved already, or changed meanwhile", body = ErrorBody),
    ))]
pub async fn resolve_case(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<CasePath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<ResolveRequest>,
) -> Result<Response, ApiError> {
    let borrower = path_id::<BorrowerId>(&path.id)?;
    let case = path_id::<CaseId>(&path.case_id)?;
    let request = idempotency.request(&body.raw);
    let outcome = cases::resolve(
        &state.engine,
        borrower.as_str(),
        case.as_str(),
        &caller.actor(),
        &body.value.body,
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Support's queue across borrowers: cases in a status, the soonest deadline first.
#[utoipa::path(get, path = "/v1/cases", tag = "support", params(QueueQuery),
    responses(
        (status = 200, description = "The cases", body = CasePage),
        (status = 400, description = "Invalid query", body = ErrorBody),
    ))]
pub async fn queue(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<QueueQuery>,
) -> Result<Json<CasePage>, ApiError> {
    let status = match query.status.as_deref() {
        None => CaseStatus::WaitingForSupport,
        Some(raw) => CaseStatus::parse(raw).ok_or_else(|| ApiError::InvalidParameter {
            code: "validation.invalid_case_status",
            parameter: "status".to_owned(),
            message: "status must be waiting_for_support, waiting_for_borrower or resolved"
                .to_owned(),
        })?,
    };
    let limit = super::page_limit(query.limit)?;
    Ok(Json(CasePage {
        items: cases::queue(&state.engine, status, limit).await?,
    }))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route(
            "/v1/borrowers/{id}/cases",
            routing::get(list_cases).post(open_case),
        )
        .route("/v1/borrowers/{id}/cases/{case_id}", routing::get(get_case))
        .route(
            "/v1/borrowers/{id}/cases/{case_id}/messages",
            routing::post(write_to_case),
        )
        .route(
            "/v1/borrowers/{id}/cases/{case_id}/resolve",
            routing::post(resolve_case),
        )
        .route("/v1/cases", routing::get(queue))
}
