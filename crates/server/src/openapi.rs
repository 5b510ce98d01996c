//! The OpenAPI document, generated from the handlers and types themselves.

use axum::http::Method;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes::{
    access, applications, auth, borrowers, channels, credit_lines, deliveries, drawdowns, health,
    jobs, links, loans, maintenance, products, quotes,
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
        borrowers::remove_second_factor,
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
        drawdowns::review_ask,
        drawdowns::review_paid,
        drawdowns::review_approve,
        drawdowns::review_failed,
        drawdowns::review_line,
        channels::callback,
        loans::repay,
        loans::timeline,
        loans::view_link,
        maintenance::create,
        maintenance::list,
        maintenance::get,
        maintenance::cancel,
        jobs::list,
        jobs::redrive,
        applications::start,
        applications::list,
        applications::get,
        applications::save,
        applications::submit,
        applications::verification_code,
        applications::verify,
        applications::decide,
        applications::accept,
        applications::withdraw,
        applications::status,
        applications::upload,
        applications::documents,
        applications::document,
        links::resume_link,
        links::contract_link,
        links::open,
        links::renew,
        deliveries::list,
        deliveries::get,
        deliveries::redrive,
        auth::send_code,
        auth::verify_code,
        auth::second_factor,
        auth::enrol,
        auth::confirm,
        auth::operator_sign_in,
        auth::session,
        auth::sign_out,
        auth::change_password,
        access::create_key,
        access::list_keys,
        access::revoke_key,
        access::create_operator,
        access::list_operators,
        access::disable_operator,
        access::reset_operator,
    ),
    components(schemas(ErrorBody)),
    modifiers(&EveryOperation),
    tags(
        (name = "products", description = "Loan products and their versions"),
        (name = "quotes", description = "What a drawdown costs: schedule, fees, APR, legal caps"),
        (name = "borrowers", description = "Individuals and enterprises; personal data encrypted at rest, shown masked"),
        (name = "credit lines", description = "Credit lines (额度): limits, freezes and their log"),
        (name = "drawdowns", description = "Drawing on a line: quote, confirm, payout, timeline"),
        (name = "operations", description = "Health, metrics, the job queue, maintenance windows and the delivery log of notifications"),
        (name = "applications", description = "Credit applications: saved at every step, resumable anywhere, verified, decided by an underwriter, with deadlines and reasons"),
        (name = "sign-in", description = "Borrowers by SMS code (and authenticator code), operators by password and authenticator code; sessions"),
        (name = "access", description = "API keys for lenders' back-ends and operators' accounts (admins only)"),
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
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (lck_…) or a session token (lcs_…) from a sign-in",
                    ))
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (Method::GET, &mut item.get),
                (Method::POST, &mut item.post),
                (Method::PUT, &mut item.put),
                (Method::PATCH, &mut item.patch),
                (Method::DELETE, &mut item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let rule = crate::auth::rule(&method, path);
                let responses = &mut operation.responses.responses;
                if rule != Some(crate::auth::Rule::Public) {
                    operation.security = Some(vec![SecurityRequirement::new(
                        "bearer",
                        Vec::<String>::new(),
                    )]);
                    responses.entry("401".to_owned()).or_insert_with(|| {
                        error("No credentials, or they do not hold (auth.unauthenticated, auth.session_expired, auth.second_factor_required)")
                    });
                    responses
                        .entry("403".to_owned())
                        .or_insert_with(|| error("The caller may not do this (auth.forbidden)"));
                }
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
