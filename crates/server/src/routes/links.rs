//! `/v1/links`: opening and renewing signed links (resume an application on another device).
//! An expired, used or altered link is refused with its reason and the one step to take:
//! sign in, then renew it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lendcore_engine::links::{self, LinkIssued, LinkOpened, Purpose};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathParams};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: String,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenRequest(hidden)")
    }
}

#[derive(Debug, Deserialize)]
pub struct AppPath {
    id: String,
}

/// A link that resumes this application on another device (single use, 72 hours; a reminder
/// goes out a day before it expires).
#[utoipa::path(post, path = "/v1/applications/{id}/resume-link", tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 201, description = "Issued", body = LinkIssued),
        (status = 404, description = "No such application", body = ErrorBody),
    ))]
pub async fn resume_link(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<AppPath>,
) -> Result<Response, ApiError> {
    issue(&state, &caller, Purpose::ResumeApplication, &path.id).await
}

async fn issue(
    state: &AppState,
    caller: &Caller,
    purpose: Purpose,
    subject: &str,
) -> Result<Response, ApiError> {
    let subject = subject
        .get(..lendcore_domain::ids::MAX_ID_LEN)
        .unwrap_or(subject);
    let issued = links::issue_link(&state.engine, &caller.0, purpose, subject).await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// A link to read and accept the offer of an approved application (single use, 72 hours).
#[utoipa::path(post, path = "/v1/applications/{id}/contract-link", tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 201, description = "Issued", body = LinkIssued),
        (status = 409, description = "Not approved", body = ErrorBody),
    ))]
pub async fn contract_link(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<AppPath>,
) -> Result<Response, ApiError> {
    issue(&state, &caller, Purpose::SignContract, &path.id).await
}

/// Open a link: the borrower is signed in and told what it opens. The app's page calls this
/// (not a GET on the link itself, which mail scanners would use up).
#[utoipa::path(post, path = "/v1/links/open", tag = "applications", request_body = TokenRequest,
    responses(
        (status = 200, description = "Opened; a session for its owner", body = LinkOpened),
        (status = 422, description = "link.expired, link.used or link.invalid: sign in and renew it", body = ErrorBody),
    ))]
pub async fn open(
    State(state): State<AppState>,
    body: JsonBody<TokenRequest>,
) -> Result<Json<LinkOpened>, ApiError> {
    Ok(Json(
        links::open_link(&state.engine, &body.value.token).await?,
    ))
}

/// Renew an expired or used link, signed in as its owner: a new link for the same thing.
#[utoipa::path(post, path = "/v1/links/renew", tag = "applications", request_body = TokenRequest,
    responses(
        (status = 201, description = "A new link", body = LinkIssued),
        (status = 409, description = "The link still opens (conflict.link_still_valid): use it", body = ErrorBody),
        (status = 422, description = "link.invalid: not a link of yours", body = ErrorBody),
    ))]
pub async fn renew(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<TokenRequest>,
) -> Result<Response, ApiError> {
    let issued = links::renew(&state.engine, &caller.0, &body.value.token).await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route(
            "/v1/applications/{id}/resume-link",
            routing::post(resume_link),
        )
        .route(
            "/v1/applications/{id}/contract-link",
            routing::post(contract_link),
        )
        .route("/v1/links/open", routing::post(open))
        .route("/v1/links/renew", routing::post(renew))
}
