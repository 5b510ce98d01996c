//! `/v1/incidents`: trouble with the service as borrowers are told of it. Operators declare,
//! change and end incidents (alerts whose rules say so raise and end their own); each shows on
//! `/v1/status`, and borrowers whose payouts it touches are told, and told when it ends.
//! Reading needs `operations:read`; the rest, `operations:write`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use lendcore_domain::incident::{Component, Impact, Incident, IncidentChange, IncidentInput, Note};
use lendcore_engine::incidents;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::respond;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyHeader, JsonBody, PathParams, QueryParams, path_id};
use lendcore_domain::ids::IncidentId;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareRequest {
    pub component: Component,
    /// For payouts: the channel in trouble (its configured id); absent: every channel.
    pub channel: Option<String>,
    pub impact: Impact,
    /// Words added to the standard message, per language.
    #[serde(default)]
    pub note: Note,
    /// When borrowers are told to expect the service back: in the future, within seven days.
    pub expected_by: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    /// The incident's revision as last read: a change made meanwhile is not overwritten.
    pub revision: i64,
    pub impact: Option<Impact>,
    /// Replaces the note.
    pub note: Option<Note>,
    pub expected_by: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentPage {
    pub items: Vec<Incident>,
}

#[derive(Debug, Deserialize)]
pub struct IncidentPath {
    id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListIncidentsQuery {
    /// `open` or `ended`; both if omitted.
    pub state: Option<String>,
    /// 1-500; 50 if omitted.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Declare an incident. It shows on `/v1/status` at once; borrowers with payouts in flight (for
/// a payouts incident, through its channel) are told in their language.
#[utoipa::path(post, path = "/v1/incidents", tag = "operations", request_body = DeclareRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 201, description = "Declared", body = Incident),
        (status = 400, description = "Invalid incident", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with another body", body = ErrorBody),
    ))]
pub async fn declare(
    State(state): State<AppState>,
    idempotency: IdempotencyHeader,
    body: JsonBody<DeclareRequest>,
) -> Result<Response, ApiError> {
    let request = idempotency.request(&body.raw);
    let b = body.value;
    let outcome = incidents::declare(
        &state.engine,
        IncidentInput {
            component: b.component,
            channel: b.channel,
            impact: b.impact,
            note: b.note,
            expected_by: b.expected_by,
        },
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Incidents, latest started first.
#[utoipa::path(get, path = "/v1/incidents", tag = "operations", params(ListIncidentsQuery),
    responses(
        (status = 200, description = "Incidents", body = IncidentPage),
        (status = 400, description = "Invalid query", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListIncidentsQuery>,
) -> Result<Json<IncidentPage>, ApiError> {
    let open = match query.state.as_deref() {
        None => None,
        Some("open") => Some(true),
        Some("ended") => Some(false),
        Some(_) => {
            return Err(ApiError::InvalidParameter {
                code: "validation.invalid_incident_state",
                parameter: "state".to_owned(),
                message: "state must be open or ended".to_owned(),
            });
        }
    };
    let limit = super::page_limit(query.limit)?;
    Ok(Json(IncidentPage {
        items: incidents::list(&state.engine, open, limit).await?,
    }))
}

#[utoipa::path(get, path = "/v1/incidents/{id}", tag = "operations",
    params(("id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident", body = Incident),
        (status = 404, description = "No such incident", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    PathParams(path): PathParams<IncidentPath>,
) -> Result<Json<Incident>, ApiError> {
    let id = path_id::<IncidentId>(&path.id)?;
    Ok(Json(incidents::get(&state.engine, id.as_str()).await?))
}

/// Change an open incident's impact, note or expected end, at the revision last read. The
/// status shows it at once; borrowers are not messaged again.
#[utoipa::path(post, path = "/v1/incidents/{id}/change", tag = "operations", request_body = ChangeRequest,
    params(("id" = String, Path, description = "Incident id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Changed", body = Incident),
        (status = 400, description = "Invalid change", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Ended, or changed since it was read", body = ErrorBody),
    ))]
pub async fn change(
    State(state): State<AppState>,
    PathParams(path): PathParams<IncidentPath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<ChangeRequest>,
) -> Result<Response, ApiError> {
    let id = path_id::<IncidentId>(&path.id)?;
    let request = idempotency.request(&body.raw);
    let b = body.value;
    let outcome = incidents::change(
        &state.engine,
        id.as_str(),
        b.revision,
        IncidentChange {
            impact: b.impact,
            note: b.note,
            expected_by: b.expected_by,
        },
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// End an incident (one an alert raised too); the borrowers told of it are told it is over.
#[utoipa::path(post, path = "/v1/incidents/{id}/end", tag = "operations",
    params(("id" = String, Path, description = "Incident id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Ended", body = Incident),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Ended already", body = ErrorBody),
    ))]
pub async fn end(
    State(state): State<AppState>,
    PathParams(path): PathParams<IncidentPath>,
    idempotency: IdempotencyHeader,
) -> Result<Response, ApiError> {
    let id = path_id::<IncidentId>(&path.id)?;
    let request = idempotency.request(b"");
    let outcome = incidents::end(&state.engine, id.as_str(), request.as_ref()).await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/incidents", routing::get(list).post(declare))
        .route("/v1/incidents/{id}", routing::get(get))
        .route("/v1/incidents/{id}/change", routing::post(change))
        .route("/v1/incidents/{id}/end", routing::post(end))
}
