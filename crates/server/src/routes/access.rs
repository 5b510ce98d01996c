//! `/v1/api-keys` and `/v1/operators`: who may call lendcore. Admins only; every change is
//! audited under the admin's name.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lendcore_domain::access::Role;
use lendcore_domain::ids::{ApiKeyId, OperatorId};
use lendcore_engine::access::Principal;
use lendcore_engine::access::api_keys::{self, ApiKeyCreated, ApiKeyView};
use lendcore_engine::access::operators::{self, OperatorCreated, OperatorView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathParams, path_id};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    /// What uses the key, e.g. `loan-app backend`.
    pub name: String,
    /// What it may do, e.g. `["credit_lines:read", "drawdowns:write"]`.
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorRequest {
    #[schema(example = "alice")]
    pub username: String,
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyPage {
    pub items: Vec<ApiKeyView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorPage {
    pub items: Vec<OperatorView>,
}

#[derive(Debug, Deserialize)]
pub struct IdPath {
    id: String,
}

/// Create an API key. The key is in this answer only: lendcore keeps its hash.
#[utoipa::path(post, path = "/v1/api-keys", tag = "access", request_body = ApiKeyRequest,
    responses(
        (status = 201, description = "Created", body = ApiKeyCreated),
        (status = 400, description = "No or unknown scopes, or a bad name", body = ErrorBody),
    ))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<ApiKeyRequest>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let created = api_keys::create(
        &state.engine,
        &caller.actor(),
        Some(&caller.0),
        &b.name,
        &b.scopes,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "access",
    responses((status = 200, description = "Every key, revoked ones too; never the key itself", body = ApiKeyPage)))]
pub async fn list_keys(State(state): State<AppState>) -> Result<Json<ApiKeyPage>, ApiError> {
    Ok(Json(ApiKeyPage {
        items: api_keys::list(&state.engine).await?,
    }))
}

/// Revoke a key: it stops working at once on this process, within ten seconds on the others.
#[utoipa::path(post, path = "/v1/api-keys/{id}/revoke", tag = "access",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 200, description = "Revoked", body = ApiKeyView),
        (status = 404, description = "No such key", body = ErrorBody),
    ))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<IdPath>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let id = path_id::<ApiKeyId>(&path.id)?;
    Ok(Json(
        api_keys::revoke(&state.engine, &caller.actor(), id.as_str()).await?,
    ))
}

/// Create an operator. The answer holds their first password and authenticator secret, once.
#[utoipa::path(post, path = "/v1/operators", tag = "access", request_body = OperatorRequest,
    responses(
        (status = 201, description = "Created", body = OperatorCreated),
        (status = 400, description = "Bad username or role", body = ErrorBody),
        (status = 409, description = "conflict.username_taken", body = ErrorBody),
    ))]
pub async fn create_operator(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<OperatorRequest>,
) -> Result<Response, ApiError> {
    // People are let in by people: a key could otherwise mint an admin and sign in as it.
    if !matches!(caller.0, Principal::Operator { .. }) {
        return Err(ApiError::Engine(lendcore_engine::EngineError::Forbidden {
            code: "auth.forbidden",
            message: "operators are created by an admin operator, or by `lendcore operators add`"
                .to_owned(),
        }));
    }
    let b = body.value;
    let created = operators::create(&state.engine, &caller.actor(), &b.username, b.role).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[utoipa::path(get, path = "/v1/operators", tag = "access",
    responses((status = 200, description = "Every operator", body = OperatorPage)))]
pub async fn list_operators(State(state): State<AppState>) -> Result<Json<OperatorPage>, ApiError> {
    Ok(Json(OperatorPage {
        items: operators::list(&state.engine).await?,
    }))
}

/// Reset an operator who lost their password or authenticator: a new password and a new
/// authenticator secret, in this answer only; their sessions end.
#[utoipa::path(post, path = "/v1/operators/{id}/reset", tag = "access",
    params(("id" = String, Path, description = "Operator id")),
    responses(
        (status = 200, description = "Reset", body = OperatorCreated),
        (status = 404, description = "No such operator", body = ErrorBody),
        (status = 409, description = "conflict.operator_disabled", body = ErrorBody),
    ))]
pub async fn reset_operator(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<IdPath>,
) -> Result<Json<OperatorCreated>, ApiError> {
    let id = path_id::<OperatorId>(&path.id)?;
    Ok(Json(
        operators::reset(&state.engine, &caller.0, id.as_str()).await?,
    ))
}

/// Disable an operator: they can no longer sign in, and their sessions end now.
#[utoipa::path(post, path = "/v1/operators/{id}/disable", tag = "access",
    params(("id" = String, Path, description = "Operator id")),
    responses(
        (status = 200, description = "Disabled", body = OperatorView),
        (status = 404, description = "No such operator", body = ErrorBody),
    ))]
pub async fn disable_operator(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<IdPath>,
) -> Result<Json<OperatorView>, ApiError> {
    let id = path_id::<OperatorId>(&path.id)?;
    Ok(Json(
        operators::disable(&state.engine, &caller.actor(), id.as_str()).await?,
    ))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/api-keys", routing::get(list_keys).post(create_key))
        .route("/v1/api-keys/{id}/revoke", routing::post(revoke_key))
        .route(
            "/v1/operators",
            routing::get(list_operators).post(create_operator),
        )
        .route(
            "/v1/operators/{id}/disable",
            routing::post(disable_operator),
        )
        .route("/v1/operators/{id}/reset", routing::post(reset_operator))
}
