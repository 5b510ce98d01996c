//! The OpenAPI document, generated from the handlers and types themselves.

use axum::http::Method;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes::{
    access, alerts, applications, auth, borrowers, cases, channels, credit_lines, deliveries,
    drawdowns, health, incidents, jobs, links, loans, maintenance, policies, products, quotes,
    status,
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
        borrowers::search,
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
        drawdowns::review_release,
        drawdowns::review_decline,
        channels::callback,
        loans::repay,
        loans::timeline,
        loans::view_link,
        maintenance::create,
        maintenance::list,
        maintenance::get,
        maintenance::cancel,
        incidents::declare,
        incidents::list,
        incidents::get,
        incidents::change,
        incidents::end,
        status::current,
        cases::open_case,
        cases::list_cases,
        cases::get_case,
        cases::write_to_case,
        cases::resolve_case,
        cases::queue,
        jobs::list,
        jobs::redrive,
        alerts::list_rules,
        alerts::save_rule,
        alerts::delete_rule,
        alerts::list_alerts,
        applications::start,
        applications::list,
        applications::get,
        applications::save,
        applications::submit,
        applications::verification_code,
        applications::verify,
        applications::decide,
        applications::decision,
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
        policies::features,
        policies::list,
        policies::author,
        policies::validate,
        policies::import,
        policies::simulate,
        policies::get,
        policies::activate,
        policies::borrower_decisions,
        policies::decision,
        policies::replay,
        policies::challenges,
        policies::start_challenge,
        policies::challenge,
        policies::end_challenge,
        policies::comparison,
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
        (name = "policies", description = "Credit policies as versioned data (decision tables, scorecard, bands), authored by one person and activated by another; the features they name; every decision made, with its replay"),
        (name = "access", description = "API keys for lenders' back-ends and operators' accounts (admins only)"),
        (name = "support", description = "Support cases: a borrower (or support on their behalf) asks for help about an application, drawdown, loan or line; support answers by a deadline, is reminded and alerted; the borrower is told of each answer"),
        (name = "status", description = "The service's status for borrowers, public: incidents and maintenance as a banner shows them"),
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
                operation.operation_id = Some(operation_id(
                    path,
                    operation.operation_id.as_deref().unwrap_or_default(),
                ));
                describe_parameters(path, operation);
                let rule = crate::auth::rule(&method, path);
                let has_body = operation.request_body.is_some();
                let has_query = operation.parameters.as_ref().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query)
                });
                let responses = &mut operation.responses.responses;
                // What the extractors answer before a handler runs: a body that is not JSON or
                // not of its type, a path or query parameter that does not parse.
                if has_body || has_query || path.contains('{') {
                    responses.entry("400".to_owned()).or_insert_with(|| {
                        error("Bad input: the code says which (validation.*, idempotency.key_invalid)")
                    });
                }
                if has_body {
                    responses.entry("413".to_owned()).or_insert_with(|| {
                        error("The body is too large (validation.body_too_large)")
                    });
                    responses.entry("415".to_owned()).or_insert_with(|| {
                        error(
                            "The body is not application/json (validation.unsupported_media_type)",
                        )
                    });
                }
                if path.contains('{') {
                    responses
                        .entry("404".to_owned())
                        .or_insert_with(|| error("Nothing with that id (not_found.*)"));
                }
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

/// Writes into the schema the limits the extractors enforce on parameters: an
/// `Idempotency-Key` is 1-255 visible ASCII characters, an id in a path 1-128
/// (`lendcore_domain::ids::MAX_ID_LEN`), a product code follows its pattern.
fn describe_parameters(path: &str, operation: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let text = |min: usize, max: usize, pattern: &str| {
        RefOr::T(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(min))
                .max_length(Some(max))
                .pattern(Some(pattern))
                .into(),
        )
    };
    for parameter in operation.parameters.iter_mut().flatten() {
        match (&parameter.parameter_in, parameter.name.as_str()) {
            (ParameterIn::Header, "Idempotency-Key") => {
                parameter.schema = Some(text(1, 255, "^[\\x21-\\x7E]+$"));
            }
            (ParameterIn::Path, "code") if path.starts_with("/v1/products/") => {
                parameter.schema = Some(text(2, 32, "^[a-z0-9][a-z0-9_-]{1,31}$"));
            }
            (ParameterIn::Path, "id") => {
                parameter.schema = Some(text(
                    1,
                    lendcore_domain::ids::MAX_ID_LEN,
                    "^[\\x21-\\x7E]+$",
                ));
            }
            _ => {}
        }
    }
}

/// An operation's id, unique in the document: the resource its path names (the first segment
/// after `/v1`) and the handler's name, e.g. `drawdowns_review_ask`; what a client generator
/// names its methods.
fn operation_id(path: &str, handler: &str) -> String {
    match path.strip_prefix("/v1/") {
        Some(rest) => {
            let resource = rest.split('/').next().unwrap_or_default().replace('-', "_");
            format!("{resource}_{handler}")
        }
        None => handler.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_unique_so_a_generated_client_has_one_method_each() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let mut seen = std::collections::HashMap::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap().to_owned();
                if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
                    panic!("{id} names both {other} and {method} {path}");
                }
            }
        }
        assert!(seen.contains_key("drawdowns_review_ask"), "{seen:?}");
    }

    #[test]
    fn reasons_are_documented_by_the_codes_the_api_sends() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let codes = doc["components"]["schemas"]["Reason"]["enum"]
            .as_array()
            .unwrap();
        assert!(
            codes.contains(&serde_json::json!("credit.line_frozen")),
            "{codes:?}"
        );
        assert!(!codes.contains(&serde_json::json!("LineFrozen")));
        assert_eq!(codes.len(), lendcore_domain::reasons::Reason::ALL.len());
    }
}
