//! `/v1/alert-rules` and `/v1/alerts`: alert rules as data (docs/OPERATIONS.md), and the alerts
//! they raised. Reading needs `operations:read`; changing a rule, `operations:write`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lendcore_domain::alerting::AlertRule;
use lendcore_engine::alerts::{self, AlertRuleView, AlertView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathParams, QueryParams};

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertRulePage {
    pub items: Vec<AlertRuleView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPage {
    pub items: Vec<AlertView>,
}

#[derive(Debug, Deserialize)]
pub struct RulePath {
    name: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SaveRuleQuery {
    /// The revision being replaced, as last read; absent to create the rule.
    pub revision: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListAlertsQuery {
    /// `pending`, `firing` or `resolved`; every state if omitted.
    pub state: Option<String>,
    /// 1-500; 50 if omitted.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Every alert rule, by name.
#[utoipa::path(get, path = "/v1/alert-rules", tag = "operations",
    responses((status = 200, description = "The rules", body = AlertRulePage)))]
pub async fn list_rules(State(state): State<AppState>) -> Result<Json<AlertRulePage>, ApiError> {
    Ok(Json(AlertRulePage {
        items: alerts::list_rules(&state.engine).await?,
    }))
}

/// Create a rule (no `revision`), or replace it at the revision last read. Every problem of
/// the rule is reported at once.
#[utoipa::path(put, path = "/v1/alert-rules/{name}", tag = "operations", request_body = AlertRule,
    params(("name" = String, Path, description = "The rule's name, as in the body"), SaveRuleQuery),
    responses(
        (status = 200, description = "Saved", body = AlertRuleView),
        (status = 400, description = "Invalid rule, or a name unlike the path's", body = ErrorBody),
        (status = 404, description = "No rule to replace", body = ErrorBody),
        (status = 409, description = "The rule exists (create) or changed since it was read (replace)", body = ErrorBody),
    ))]
pub async fn save_rule(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<RulePath>,
    QueryParams(query): QueryParams<SaveRuleQuery>,
    body: JsonBody<AlertRule>,
) -> Result<Json<AlertRuleView>, ApiError> {
    if body.value.name != path.name {
        return Err(ApiError::InvalidParameter {
            code: "validation.name_mismatch",
            parameter: "name".to_owned(),
            message: "the rule's name must be the path's".to_owned(),
        });
    }
    let saved =
        alerts::save_rule(&state.engine, &caller.actor(), body.value, query.revision).await?;
    Ok(Json(saved))
}

/// Delete a rule; the alerts it raised stay, for the record.
#[utoipa::path(delete, path = "/v1/alert-rules/{name}", tag = "operations",
    params(("name" = String, Path, description = "The rule's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such rule", body = ErrorBody),
    ))]
pub async fn delete_rule(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<RulePath>,
) -> Result<StatusCode, ApiError> {
    alerts::delete_rule(&state.engine, &caller.actor(), &path.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Alerts, most recently changed first: each with its state and the evidence of the evaluation
/// that last moved it (the value, what it was held to, the history it was compared with).
#[utoipa::path(get, path = "/v1/alerts", tag = "operations", params(ListAlertsQuery),
    responses(
        (status = 200, description = "Alerts", body = AlertPage),
        (status = 400, description = "Invalid query", body = ErrorBody),
    ))]
pub async fn list_alerts(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListAlertsQuery>,
) -> Result<Json<AlertPage>, ApiError> {
    let wanted = query.state.as_deref();
    if let Some(raw) = wanted
        && !["pending", "firing", "resolved"].contains(&raw)
    {
        return Err(ApiError::InvalidParameter {
            code: "validation.invalid_alert_state",
            parameter: "state".to_owned(),
            message: "state must be one of pending, firing, resolved".to_owned(),
        });
    }
    let limit = super::page_limit(query.limit)?;
    Ok(Json(AlertPage {
        items: alerts::list_alerts(&state.engine, wanted, limit).await?,
    }))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/alert-rules", routing::get(list_rules))
        .route(
            "/v1/alert-rules/{name}",
            routing::put(save_rule).delete(delete_rule),
        )
        .route("/v1/alerts", routing::get(list_alerts))
}
