//! `/v1/applications`: a borrower's credit application, saved at every step and resumable on
//! any device after signing in; submitted once however often it is sent; verified; decided by
//! an underwriter; accepted. Borrowers see their own; staff with `applications:read` see all,
//! and `applications:decide` (the risk role) decides.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lendcore_domain::access::Permission;
use lendcore_domain::application::{Application, Decision, Form, Offer};
use lendcore_domain::ids::{ApplicationId, DocumentId};
use lendcore_domain::reasons::Reason;
use lendcore_engine::access::otp::CodeSent;
use lendcore_engine::access::{self, Principal};
use lendcore_engine::applications::{
    self, ApplicationView, DecisionInput, DocumentView, StatusExplanation, VerificationOutcome,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::respond;
use crate::AppState;
use crate::auth::{Caller, Client};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyHeader, JsonBody, PathParams, QueryParams, path_id};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveRequest {
    /// The revision the client last read; a save from a stale tab is refused (409).
    pub revision: i64,
    /// This step's answers: a field sent replaces the saved one, one left out is kept.
    pub answers: Form,
}

impl std::fmt::Debug for SaveRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SaveRequest(revision {}, answers hidden)", self.revision)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityCheckRequest {
    /// `sms_otp`, `bank_card` or `face`.
    pub method: String,
    /// For `sms_otp`: `{"challenge_id": "…", "code": "123456"}`; for the provider's methods,
    /// what the provider needs.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Approve,
    Decline,
    RequestInfo,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub decision: DecisionKind,
    /// Reason codes: required to decline or to ask for information, e.g. `credit.score_too_low`.
    #[serde(default)]
    pub reasons: Vec<Reason>,
    /// For an approval: the limit offered, its currency and how long the line is valid.
    #[serde(default)]
    pub limit_minor: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub valid_days: Option<u32>,
    /// For an approval: the price tier, as the lender's products name it.
    #[serde(default)]
    pub rate_tier: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Staff: the state to list (default `referred`, the underwriters' queue). Borrowers get
    /// their own, every state.
    pub state: Option<String>,
    /// 1-200; 50 if omitted.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name, e.g. `statement-2026-10.pdf`.
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationPage {
    pub items: Vec<Application>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentPage {
    pub items: Vec<DocumentView>,
}

#[derive(Debug, Deserialize)]
pub struct AppPath {
    id: String,
}

#[derive(Debug, Deserialize)]
pub struct DocPath {
    id: String,
    document_id: String,
}

/// Borrowers read their own (the engine sees to it); staff need `applications:read`.
fn may_read(caller: &Caller) -> Result<(), ApiError> {
    match &caller.0 {
        Principal::Borrower { .. } => Ok(()),
        Principal::ApiKey { .. } | Principal::Operator { .. } => {
            Ok(access::require(&caller.0, Permission::ApplicationsRead)?)
        }
    }
}

/// Start a draft.
#[utoipa::path(post, path = "/v1/applications", tag = "applications",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses((status = 201, description = "A draft, saved", body = ApplicationView),
        (status = 409, description = "The applicant has an application open already (conflict.application_open): resume it or withdraw it", body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    idempotency: IdempotencyHeader,
) -> Result<Response, ApiError> {
    let request = idempotency.request(b"");
    let outcome = applications::start(&state.engine, &caller.0, request.as_ref()).await?;
    Ok(respond(StatusCode::CREATED, outcome))
}

#[utoipa::path(get, path = "/v1/applications", tag = "applications", params(ListQuery),
    responses((status = 200, description = "Newest first", body = ApplicationPage)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<ApplicationPage>, ApiError> {
    may_read(&caller)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::InvalidParameter {
            code: "validation.limit_out_of_range",
            parameter: "limit".to_owned(),
            message: "limit must be between 1 and 200".to_owned(),
        });
    }
    let state_filter = match (&caller.0, query.state.as_deref()) {
        (Principal::Borrower { .. }, s) => s.map(str::to_owned),
        (_, None) => Some("referred".to_owned()),
        (_, Some(s)) => Some(s.to_owned()),
    };
    let items =
        applications::list(&state.engine, &caller.0, state_filter.as_deref(), limit).await?;
    Ok(Json(ApplicationPage { items }))
}

/// The application with its form (identifiers masked), history, checks and deadline: what a
/// second device needs to resume it.
#[utoipa::path(get, path = "/v1/applications/{id}", tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "The application", body = ApplicationView),
        (status = 404, description = "No such application (or not yours)", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<AppPath>,
) -> Result<Json<ApplicationView>, ApiError> {
    may_read(&caller)?;
    Ok(Json(
        applications::get(
            &state.engine,
            &caller.0,
            path_id::<ApplicationId>(&path.id)?.as_str(),
        )
        .await?,
    ))
}

/// Save a step. Every step is kept server-side: a refresh, a closed tab or a lost connection
/// loses nothing, and the draft's deadline starts again.
#[utoipa::path(patch, path = "/v1/applications/{id}", tag = "applications", request_body = SaveRequest,
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "Saved", body = ApplicationView),
        (status = 400, description = "An answer is invalid", body = ErrorBody),
        (status = 409, description = "Saved elsewhere since (reload), or not editable now", body = ErrorBody),
    ))]
pub async fn save(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<AppPath>,
    body: JsonBody<SaveRequest>,
) -> Result<Json<ApplicationView>, ApiError> {
    let b = body.value;
    Ok(Json(
        applications::save(
            &state.engine,
            &caller.0,
            path_id::<ApplicationId>(&path.id)?.as_str(),
            b.revision,
            b.answers,
        )
        .await?,
    ))
}

/// Submit. Sending it again — after a dropped connection, a double tap — answers the
/// application as it stands and submits nothing twice.
#[utoipa::path(post, path = "/v1/applications/{id}/submit", tag = "applications",
    params(("id" = String, Path, description = "Application id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Submitted (now waiting for identity verification)", body = ApplicationView),
        (status = 400, description = "Answers missing or invalid, every one named", body = ErrorBody),
        (status = 409, description = "Withdrawn or expired", body = ErrorBody),
        (status = 422, description = "The identity number is registered under another mobile number (identity.already_registered): sign in with that number", body = ErrorBody),
    ))]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<AppPath>,
    idempotency: IdempotencyHeader,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id::<ApplicationId>(&path.id)?;
    let id = id.as_str();
    let request = idempotency.request(b"");
    // The language the applicant's app asks in is the one a new borrower is written to.
    let language = crate::language::asked(&headers);
    let outcome =
        applications::submit(&state.engine, &caller.0, id, language, request.as_ref()).await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Send a code to the mobile number of the application, for the `sms_otp` method.
#[utoipa::path(post, path = "/v1/applications/{id}/verification/code", tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 202, description = "Sent", body = CodeSent),
        (status = 409, description = "Not waiting for verification", body = ErrorBody),
    ))]
pub async fn verification_code(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    PathParams(path): PathParams<AppPath>,
) -> Result<Response, ApiError> {
    let sent = applications::send_code(
        &state.engine,
        &caller.0,
        path_id::<ApplicationId>(&path.id)?.as_str(),
        &client.0,
        crate::language::current(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(sent)).into_response())
}

/// Verify identity with one method. If it fails or is unavailable, the answer says why and
/// which other methods to try.
#[utoipa::path(post, path = "/v1/applications/{id}/verification", tag = "applications", request_body = IdentityCheckRequest,
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "The outcome, recorded", body = VerificationOutcome),
        (status = 409, description = "Not waiting for verification", body = ErrorBody),
        (status = 422, description = "A wrong or expired code", body = ErrorBody),
    ))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    PathParams(path): PathParams<AppPath>,
    body: JsonBody<IdentityCheckRequest>,
) -> Result<Json<VerificationOutcome>, ApiError> {
    let b = body.value;
    Ok(Json(
        applications::verify(
            &state.engine,
            &caller.0,
            path_id::<ApplicationId>(&path.id)?.as_str(),
            &b.method,
            &b.evidence,
            &client.0,
        )
        .await?,
    ))
}

/// The credit policy's decision on the application, as an underwriter reviews it: the input
/// snapshot, features, policy version, rules that fired, the score by characteristic, the
/// outcome and its reasons, and what the bureau answered. Staff only.
#[utoipa::path(get, path = "/v1/applications/{id}/decision", tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "The decision record", body = lendcore_engine::decisions::DecisionRecord),
        (status = 404, description = "No such application, or no automated decision on it", body = ErrorBody),
    ))]
pub async fn decision(
    State(state): State<AppState>,
    PathParams(path): PathParams<AppPath>,
) -> Result<Json<lendcore_engine::decisions::DecisionRecord>, ApiError> {
    let id = path_id::<ApplicationId>(&path.id)?;
    Ok(Json(
        lendcore_engine::decisions::of_application(&state.engine, id.as_str()).await?,
    ))
}

/// An underwriter's decision on a referred application, always with reason codes to decline
/// or to ask for more.
#[utoipa::path(post, path = "/v1/applications/{id}/decision", tag = "applications", request_body = DecisionRequest,
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "Decided", body = ApplicationView),
        (status = 400, description = "No reasons, or a bad offer", body = ErrorBody),
        (status = 409, description = "Not referred", body = ErrorBody),
    ))]
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<AppPath>,
    body: JsonBody<DecisionRequest>,
) -> Result<Json<ApplicationView>, ApiError> {
    let b = body.value;
    let decision = match b.decision {
        DecisionKind::Approve => Decision::Approve(Offer {
            limit_minor: b.limit_minor.unwrap_or(0),
            currency: b.currency.unwrap_or_else(|| "CNY".to_owned()),
            valid_days: b.valid_days.unwrap_or(365),
            rate_tier: b.rate_tier,
        }),
        DecisionKind::Decline => Decision::Decline(b.reasons),
        DecisionKind::RequestInfo => Decision::RequestInfo(b.reasons),
    };
    Ok(Json(
        applications::decide(
            &state.engine,
            &caller.0,
            path_id::<ApplicationId>(&path.id)?.as_str(),
            DecisionInput {
                decision,
                note: b.note,
            },
        )
        .await?,
    ))
}

/// Accept the offer: the credit line opens.
#[utoipa::path(post, path = "/v1/applications/{id}/accept", tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "Accepted; `line_id` names the new line", body = ApplicationView),
        (status = 409, description = "Not approved", body = ErrorBody),
        (status = 422, description = "The offer lapsed (user.offer_expired): the application expires with that reason", body = ErrorBody),
    ))]
pub async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<AppPath>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(
        applications::accept(
            &state.engine,
            &caller.0,
            path_id::<ApplicationId>(&path.id)?.as_str(),
        )
        .await?,
    ))
}

#[utoipa::path(post, path = "/v1/applications/{id}/withdraw", tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "Withdrawn (user.cancelled)", body = ApplicationView),
        (status = 409, description = "Already ended", body = ErrorBody),
    ))]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<AppPath>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(
        applications::withdraw(
            &state.engine,
            &caller.0,
            path_id::<ApplicationId>(&path.id)?.as_str(),
        )
        .await?,
    ))
}

/// Where the application stands, why, and what to do next, in the language asked for.
#[utoipa::path(get, path = "/v1/applications/{id}/status", tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    responses((status = 200, description = "The explanation", body = StatusExplanation)))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<AppPath>,
) -> Result<Response, ApiError> {
    may_read(&caller)?;
    let language = crate::language::current();
    let explained = applications::explain(
        &state.engine,
        &caller.0,
        path_id::<ApplicationId>(&path.id)?.as_str(),
        language,
    )
    .await?;
    Ok(crate::language::answer_in(explained, language))
}

/// Upload a document: the raw file as the body, its type as `Content-Type` (PDF, JPEG, PNG),
/// at most 5 MiB.
#[utoipa::path(post, path = "/v1/applications/{id}/documents", tag = "applications", params(
        ("id" = String, Path, description = "Application id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/pdf"),
    responses(
        (status = 201, description = "Stored, with its SHA-256", body = DocumentView),
        (status = 400, description = "Wrong type, empty, too large, or not what its type says", body = ErrorBody),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<AppPath>,
    QueryParams(query): QueryParams<UploadQuery>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge {
                limit: applications::MAX_DOCUMENT_BYTES,
            }
        } else {
            ApiError::MalformedJson {
                message: r.body_text(),
            }
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let stored = applications::upload(
        &state.engine,
        &caller.0,
        path_id::<ApplicationId>(&path.id)?.as_str(),
        &query.name,
        &content_type,
        &body,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

#[utoipa::path(get, path = "/v1/applications/{id}/documents", tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    responses((status = 200, description = "The documents, without their content", body = DocumentPage)))]
pub async fn documents(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<AppPath>,
) -> Result<Json<DocumentPage>, ApiError> {
    may_read(&caller)?;
    let items = applications::list_documents(
        &state.engine,
        &caller.0,
        path_id::<ApplicationId>(&path.id)?.as_str(),
    )
    .await?;
    Ok(Json(DocumentPage { items }))
}

/// A document's content, checked against its SHA-256 (sent as `X-Content-SHA256`). Staff need
/// `applications:decide` (the underwriters): a statement or an ID photo is not for every role.
#[utoipa::path(get, path = "/v1/applications/{id}/documents/{document_id}", tag = "applications",
    params(("id" = String, Path, description = "Application id"), ("document_id" = String, Path, description = "Document id")),
    responses(
        (status = 200, description = "The file"),
        (status = 404, description = "No such document", body = ErrorBody),
    ))]
pub async fn document(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<DocPath>,
) -> Result<Response, ApiError> {
    match &caller.0 {
        Principal::Borrower { .. } => {}
        Principal::ApiKey { .. } | Principal::Operator { .. } => {
            access::require(&caller.0, Permission::ApplicationsDecide)?;
        }
    }
    let doc_id = path_id::<DocumentId>(&path.document_id)?;
    let file = applications::download(
        &state.engine,
        &caller.0,
        path_id::<ApplicationId>(&path.id)?.as_str(),
        doc_id.as_str(),
    )
    .await?;
    let sha = file.sha256.clone();
    let mut response = file.content.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&file.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    let ascii_name: String = file
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{ascii_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&sha) {
        headers.insert("x-content-sha256", v);
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/applications", routing::get(list).post(start))
        .route("/v1/applications/{id}", routing::get(get).patch(save))
        .route("/v1/applications/{id}/submit", routing::post(submit))
        .route(
            "/v1/applications/{id}/verification/code",
            routing::post(verification_code),
        )
        .route("/v1/applications/{id}/verification", routing::post(verify))
        .route(
            "/v1/applications/{id}/decision",
            routing::get(decision).post(decide),
        )
        .route("/v1/applications/{id}/accept", routing::post(accept))
        .route("/v1/applications/{id}/withdraw", routing::post(withdraw))
        .route("/v1/applications/{id}/status", routing::get(status))
        .route(
            "/v1/applications/{id}/documents",
            routing::get(documents).post(upload).layer(
                // Documents are files, not JSON: their own limit, a little over 5 MiB.
                axum::extract::DefaultBodyLimit::max(
                    lendcore_engine::applications::MAX_DOCUMENT_BYTES + 1024,
                ),
            ),
        )
        .route(
            "/v1/applications/{id}/documents/{document_id}",
            routing::get(document),
        )
}
