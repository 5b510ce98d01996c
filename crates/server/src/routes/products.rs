//! `/v1/products`: loan products and their versions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use lendcore_domain::product::{
    NewProductInput, ProductCode, ProductKind, ProductTermsInput, ProductView,
};
use lendcore_engine::products;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::respond;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyHeader, JsonBody, PathParams, QueryParams};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    /// 2-32 characters of a-z, 0-9, `_` and `-`; unique; never changes.
    #[schema(example = "cash-12m")]
    pub code: String,
    pub name: String,
    pub kind: ProductKind,
    /// `CNY` or `USD`.
    #[schema(example = "CNY")]
    pub currency: String,
    /// Terms of version 1.
    pub terms: ProductTermsInput,
    /// When version 1 takes effect; now if omitted. Never in the past.
    #[serde(default)]
    pub effective_from: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionRequest {
    pub terms: ProductTermsInput,
    /// When this version takes effect; now (or, for a replacement, unchanged) if omitted.
    #[serde(default)]
    pub effective_from: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireRequest {
    /// From this instant the product takes no new business. Loans already running are not
    /// touched: they finish under the version they started with.
    pub ends_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Return products whose code sorts after this one (the previous page's `next_after`).
    pub after: Option<String>,
    /// Page size, 1-200; 50 if omitted.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    pub items: Vec<ProductView>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CodePath {
    code: String,
}

#[derive(Debug, Deserialize)]
pub struct VersionPath {
    code: String,
    version: u32,
}

fn parse_code(raw: &str) -> Result<ProductCode, ApiError> {
    ProductCode::parse(raw).map_err(|v| ApiError::Engine(v.into()))
}

/// Create a product with its first version.
#[utoipa::path(post, path = "/v1/products", tag = "products",
    request_body = CreateProductRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 201, description = "Created", body = ProductView),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 409, description = "Code taken, or Idempotency-Key reused with another body", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    idempotency: IdempotencyHeader,
    body: JsonBody<CreateProductRequest>,
) -> Result<Response, ApiError> {
    let request = idempotency.request(&body.raw);
    let input = body.value;
    let outcome = products::create_product(
        &state.engine,
        NewProductInput {
            code: input.code,
            name: input.name,
            kind: input.kind,
            currency: input.currency,
            terms: input.terms,
            effective_from: input.effective_from,
        },
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// List products by code.
#[utoipa::path(get, path = "/v1/products", tag = "products", params(ListQuery),
    responses(
        (status = 200, description = "One page of products", body = ProductPage),
        (status = 400, description = "Invalid query", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<ProductPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidParameter {
            code: "validation.limit_out_of_range",
            parameter: "limit".to_owned(),
            message: format!("limit must be between 1 and {MAX_PAGE}"),
        });
    }
    let after = query.after.as_deref().map(parse_code).transpose()?;
    let items = products::list_products(&state.engine, after.as_ref(), limit).await?;
    let next_after = match items.len() as u32 == limit {
        true => items.last().map(|p| p.product.code.to_string()),
        false => None,
    };
    Ok(Json(ProductPage { items, next_after }))
}

/// A product with all its versions, its status and the version in effect now.
#[utoipa::path(get, path = "/v1/products/{code}", tag = "products",
    params(("code" = String, Path, description = "Product code")),
    responses(
        (status = 200, description = "The product", body = ProductView),
        (status = 404, description = "No such product", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    PathParams(path): PathParams<CodePath>,
) -> Result<Json<ProductView>, ApiError> {
    let code = parse_code(&path.code)?;
    Ok(Json(products::get_product(&state.engine, &code).await?))
}

/// Add a version; it takes effect at `effective_from` (now if omitted).
#[utoipa::path(post, path = "/v1/products/{code}/versions", tag = "products",
    request_body = VersionRequest,
    params(("code" = String, Path, description = "Product code"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 201, description = "Version added; the whole product is returned", body = ProductView),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "Product retired, or Idempotency-Key reused", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn add_version(
    State(state): State<AppState>,
    PathParams(path): PathParams<CodePath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<VersionRequest>,
) -> Result<Response, ApiError> {
    let code = parse_code(&path.code)?;
    let request = idempotency.request(&body.raw);
    let outcome = products::add_product_version(
        &state.engine,
        &code,
        body.value.terms,
        body.value.effective_from,
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Replace a version that has not taken effect yet. Effective versions are immutable.
#[utoipa::path(put, path = "/v1/products/{code}/versions/{version}", tag = "products",
    request_body = VersionRequest,
    params(("code" = String, Path, description = "Product code"),
        ("version" = u32, Path, description = "Version number"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Version replaced; the whole product is returned", body = ProductView),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such product or version", body = ErrorBody),
        (status = 409, description = "The version has taken effect, or the product is retired", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn replace_version(
    State(state): State<AppState>,
    PathParams(path): PathParams<VersionPath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<VersionRequest>,
) -> Result<Response, ApiError> {
    let code = parse_code(&path.code)?;
    let request = idempotency.request(&body.raw);
    let outcome = products::replace_scheduled_version(
        &state.engine,
        &code,
        path.version,
        body.value.terms,
        body.value.effective_from,
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Retire the product from `ends_at` on (or move a retirement that has not happened yet).
#[utoipa::path(post, path = "/v1/products/{code}/retire", tag = "products",
    request_body = RetireRequest,
    params(("code" = String, Path, description = "Product code"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Retirement scheduled", body = ProductView),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "Already retired", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn retire(
    State(state): State<AppState>,
    PathParams(path): PathParams<CodePath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<RetireRequest>,
) -> Result<Response, ApiError> {
    let code = parse_code(&path.code)?;
    let request = idempotency.request(&body.raw);
    let outcome =
        products::retire_product(&state.engine, &code, body.value.ends_at, request.as_ref())
            .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/products", routing::get(list).post(create))
        .route("/v1/products/{code}", routing::get(get))
        .route("/v1/products/{code}/versions", routing::post(add_version))
        .route(
            "/v1/products/{code}/versions/{version}",
            routing::put(replace_version),
        )
        .route("/v1/products/{code}/retire", routing::post(retire))
}
