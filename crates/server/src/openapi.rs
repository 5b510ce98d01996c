//! The OpenAPI document, generated from the handlers and types themselves.

use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::routes::{health, jobs, products};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "lendcore API",
        description = "The lending core behind a lender's borrower app and operations team. \
            Amounts are integer minor units (fen, cents); rates are decimal strings; instants are \
            RFC 3339 UTC."
    ),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        products::create,
        products::list,
        products::get,
        products::add_version,
        products::replace_version,
        products::retire,
        jobs::list,
        jobs::redrive,
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "products", description = "Loan products and their versions"),
        (name = "operations", description = "Health, metrics and the job queue"),
    )
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
