//! `/v1/status` and `/status`: the service's status for borrowers, public. A borrower app shows
//! the banner; the page is the same for a person, with no script. Both answer in the language
//! `?lang=` names, else the one `Accept-Language` prefers, else English, and may be cached for
//! fifteen seconds.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use lendcore_domain::incident::ServiceState;
use lendcore_domain::reasons::Language;
use lendcore_engine::status::{self, ServiceStatus};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::QueryParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// `en` or `zh-Hans`; the request's `Accept-Language` if omitted.
    pub lang: Option<String>,
}

fn language(query: &StatusQuery) -> Result<Language, ApiError> {
    match query.lang.as_deref() {
        None => Ok(crate::language::current()),
        Some(tag) => Language::from_tag(tag).ok_or_else(|| ApiError::InvalidParameter {
            code: "validation.unknown_language",
            parameter: "lang".to_owned(),
            message: "lang must be en or zh-Hans".to_owned(),
        }),
    }
}

fn cached(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=15"),
    );
    response
}

/// How the service stands, for a banner: open incidents and those ended in the last day,
/// maintenance in progress or planned within a week, and the one sentence to show.
#[utoipa::path(get, path = "/v1/status", tag = "status", params(StatusQuery),
    responses(
        (status = 200, description = "The status", body = ServiceStatus),
        (status = 400, description = "Unknown language", body = ErrorBody),
    ))]
pub async fn current(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<StatusQuery>,
) -> Result<Response, ApiError> {
    let language = language(&query)?;
    let status = status::current(&state.engine, language).await?;
    Ok(cached(crate::language::answer_in(status, language)))
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage<'a> {
    status: &'a ServiceStatus,
    zh: bool,
    headline: &'static str,
}

/// The status as a page.
pub async fn page(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<StatusQuery>,
) -> Result<Response, ApiError> {
    let language = language(&query)?;
    let status = status::current(&state.engine, language).await?;
    let headline = match (language, status.state) {
        (Language::En, ServiceState::Operational) => "All services are running normally",
        (Language::En, ServiceState::Degraded) => "Some services are slower than usual",
        (Language::En, ServiceState::Maintenance) => "Maintenance is under way",
        (Language::En, ServiceState::Unavailable) => "Some services are unavailable",
        (Language::ZhHans, ServiceState::Operational) => "所有服务运行正常",
        (Language::ZhHans, ServiceState::Degraded) => "部分服务比平时慢",
        (Language::ZhHans, ServiceState::Maintenance) => "系统维护中",
        (Language::ZhHans, ServiceState::Unavailable) => "部分服务暂不可用",
    };
    let html = StatusPage {
        status: &status,
        zh: language == Language::ZhHans,
        headline,
    }
    .render()
    .map_err(|e| ApiError::Engine(lendcore_engine::EngineError::Internal(e.to_string())))?;
    let mut response = cached(Html(html).into_response());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(language.tag()),
    );
    // Without `?lang=`, the language came from the request: a cache must keep each apart.
    headers.insert(header::VARY, HeaderValue::from_static("accept-language"));
    Ok(response)
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/status", routing::get(current))
        .route("/status", routing::get(page))
}
