//! The OpenAPI document, generated from the handlers and types themselves.

use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes::{
    borrowers, channels, credit_lines, drawdowns, health, jobs, loans, maintenance, products,
    quotes,
};

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
        quotes::create,
        borrowers::register,
        borrowers::get,
        borrowers::change_contact,
        borrowers::changes,
        credit_lines::grant,
        credit_lines::list,
        credit_lines::get,
        credit_lines::events,
        credit_lines::limit,
        credit_lines::freeze,
        credit_lines::unfreeze,
        credit_lines::close,
        drawdowns::quote,
        drawdowns::confirm,
        drawdowns::get,
        channels::callback,
        loans::repay,
        loans::timeline,
        maintenance::create,
        maintenance::list,
        maintenance::get,
        maintenance::cancel,
        jobs::list,
        jobs::redrive,
    ),
    components(schemas(ErrorBody)),
    modifiers(&EveryOperation),
    tags(
        (name = "products", description = "Loan products and their versions"),
        (name = "quotes", description = "What a drawdown costs: schedule, fees, APR, legal caps"),
        (name = "borrowers", description = "Individuals and enterprises; personal data encrypted at rest, shown masked"),
        (name = "credit lines", description = "Credit lines (额度): limits, freezes and their log"),
        (name = "drawdowns", description = "Drawing on a line: quote, confirm, payout, timeline"),
        (name = "operations", description = "Health, metrics, the job queue and maintenance windows"),
    )
)]
struct ApiDoc;

/// Answers every operation can give, whatever it does: documented once, here.
struct EveryOperation;

impl Modify for EveryOperation {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| -> RefOr<utoipa::openapi::Response> {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .into()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses.entry("500".to_owned()).or_insert_with(|| {
                    error("A bug (system.internal); quote the X-Request-Id header")
                });
                responses.entry("503".to_owned()).or_insert_with(|| {
                    error("Shed under load (system.overloaded), past its deadline (system.timeout) \
                           or the database is unavailable (system.unavailable); retry after Retry-After")
                });
            }
        }
    }
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
