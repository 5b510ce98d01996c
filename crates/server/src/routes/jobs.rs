//! `/v1/jobs`: the durable job queue as operators see it; dead-letter above all.
//! Reading needs `operations:read`; re-driving, `operations:write`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use lendcore_domain::ids::JobId;
use lendcore_engine::jobs::JobStatus;
use lendcore_engine::jobs::{self, JobView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::respond;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyHeader, PathParams, QueryParams, path_id};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListJobsQuery {
    /// `pending`, `running`, `succeeded` or `dead` (the default).
    pub status: Option<String>,
    /// 1-500; 50 if omitted.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub items: Vec<JobView>,
}

#[derive(Debug, Deserialize)]
pub struct JobPath {
    id: String,
}

/// Jobs in one status, most recently changed first.
#[utoipa::path(get, path = "/v1/jobs", tag = "operations", params(ListJobsQuery),
    responses(
        (status = 200, description = "Jobs", body = JobPage),
        (status = 400, description = "Invalid query", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListJobsQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let status = match query.status.as_deref() {
        None => JobStatus::Dead,
        Some(raw) => JobStatus::parse(raw).ok_or_else(|| ApiError::InvalidParameter {
            code: "validation.invalid_job_status",
            parameter: "status".to_owned(),
            message: "status must be one of pending, running, succeeded, dead".to_owned(),
        })?,
    };
    let limit = super::page_limit(query.limit)?;
    let items = jobs::list_jobs(&state.engine, status, limit).await?;
    Ok(Json(JobPage { items }))
}

/// Put a dead job back in the queue with a fresh budget of attempts.
#[utoipa::path(post, path = "/v1/jobs/{id}/redrive", tag = "operations",
    params(("id" = String, Path, description = "Job id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Re-driven", body = JobView),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not dead", body = ErrorBody),
    ))]
pub async fn redrive(
    State(state): State<AppState>,
    PathParams(path): PathParams<JobPath>,
    idempotency: IdempotencyHeader,
) -> Result<Response, ApiError> {
    let id = path_id::<JobId>(&path.id)?;
    let request = idempotency.request(b"");
    let outcome = jobs::redrive_job(&state.engine, id.as_str(), request.as_ref()).await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/jobs", routing::get(list))
        .route("/v1/jobs/{id}/redrive", routing::post(redrive))
}
