//! HTTP: the JSON API under `/v1`, its OpenAPI document and reference page, health, readiness
//! and metrics. Thin by design: parse, call the engine, render. Errors become HTTP in
//! [`error`] and nowhere else.

mod auth;
pub mod error;
mod extract;
mod language;
mod metrics;
mod middleware;
mod openapi;
mod reference;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post, put};
use lendcore_engine::Engine;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ErrorBody};
pub use openapi::openapi;
pub use routes::REPLAYED_HEADER;

use crate::middleware::Admission;

/// Limits that protect the server; defaults suit a 2-core machine.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub max_in_flight: usize,
    pub max_queued: usize,
    pub queue_timeout: Duration,
    /// Behind a proxy: the header it puts the client's address in (its last entry is taken),
    /// so per-client limits count clients, not the proxy. `None`: the peer address.
    pub client_ip_header: Option<HeaderName>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            max_in_flight: 256,
            max_queued: 1024,
            queue_timeout: Duration::from_millis(500),
            client_ip_header: None,
        }
    }
}

/// Rendered once at start-up: the documents never change while the process runs.
pub(crate) struct Docs {
    openapi_json: String,
    link_html: String,
    reference_html: String,
    index_html: String,
}

#[derive(Clone)]
pub(crate) struct AppState {
    engine: Arc<Engine>,
    metrics: PrometheusHandle,
    docs: Arc<Docs>,
    client_ip_header: Option<HeaderName>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application.
pub fn router(engine: Arc<Engine>, limits: &HttpLimits) -> Router {
    let doc = openapi();
    let doc_value = serde_json::to_value(&doc).unwrap_or_default();
    let render = |result: Result<String, askama::Error>| {
        result.unwrap_or_else(|e| format!("page failed to render: {e}"))
    };
    let docs = Docs {
        openapi_json: doc.to_pretty_json().unwrap_or_default(),
        reference_html: render(reference::ReferencePage::from_openapi(&doc_value).render()),
        index_html: render(
            reference::IndexPage {
                version: env!("CARGO_PKG_VERSION"),
            }
            .render(),
        ),
        link_html: render(reference::LinkPage.render()),
    };
    let state = AppState {
        engine,
        metrics: metrics::handle(),
        docs: Arc::new(docs),
        client_ip_header: limits.client_ip_header.clone(),
    };
    let admission = Arc::new(Admission::new(
        limits.max_in_flight,
        limits.max_queued,
        limits.queue_timeout,
    ));

    Router::new()
        .route("/", get(routes::docs::index))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .route("/openapi.json", get(routes::docs::openapi_json))
        .route("/docs/api", get(routes::docs::reference))
        .route("/links/open", get(routes::docs::link))
        .route("/v1/products", get(routes::products::list).post(routes::products::create))
        .route("/v1/products/{code}", get(routes::products::get))
        .route("/v1/products/{code}/versions", post(routes::products::add_version))
        .route(
            "/v1/products/{code}/versions/{version}",
            put(routes::products::replace_version),
        )
        .route("/v1/products/{code}/retire", post(routes::products::retire))
        .route("/v1/quotes", post(routes::quotes::create))
        .route(
            "/v1/credit-lines",
            get(routes::credit_lines::list).post(routes::credit_lines::grant),
        )
        .route("/v1/credit-lines/{id}", get(routes::credit_lines::get))
        .route("/v1/credit-lines/{id}/events", get(routes::credit_lines::events))
        .route("/v1/credit-lines/{id}/limit", post(routes::credit_lines::limit))
        .route("/v1/credit-lines/{id}/freeze", post(routes::credit_lines::freeze))
        .route("/v1/credit-lines/{id}/unfreeze", post(routes::credit_lines::unfreeze))
        .route("/v1/credit-lines/{id}/close", post(routes::credit_lines::close))
        .route("/v1/drawdowns/quotes", post(routes::drawdowns::quote))
        .route("/v1/drawdowns/confirm", post(routes::drawdowns::confirm))
        .route("/v1/drawdowns/{id}", get(routes::drawdowns::get))
        .route("/v1/drawdowns/{id}/review/ask", post(routes::drawdowns::review_ask))
        .route("/v1/drawdowns/{id}/review/paid", post(routes::drawdowns::review_paid))
        .route(
            "/v1/drawdowns/{id}/review/paid/approve",
            post(routes::drawdowns::review_approve),
        )
        .route("/v1/drawdowns/{id}/review/failed", post(routes::drawdowns::review_failed))
        .route("/v1/drawdowns/{id}/review/line", post(routes::drawdowns::review_line))
        .route("/v1/channels/{id}/callbacks", post(routes::channels::callback))
        .route("/v1/loans/{id}/repayments", post(routes::loans::repay))
        .route("/v1/loans/{id}/timeline", get(routes::loans::timeline))
        .route("/v1/loans/{id}/view-link", post(routes::loans::view_link))
        .route(
            "/v1/maintenance-windows",
            get(routes::maintenance::list).post(routes::maintenance::create),
        )
        .route("/v1/maintenance-windows/{id}", get(routes::maintenance::get))
        .route(
            "/v1/maintenance-windows/{id}/cancel",
            post(routes::maintenance::cancel),
        )
        .route("/v1/borrowers", post(routes::borrowers::register))
        .route("/v1/borrowers/search", post(routes::borrowers::search))
        .route("/v1/borrowers/{id}", get(routes::borrowers::get))
        .route("/v1/borrowers/{id}/contact", post(routes::borrowers::change_contact))
        .route("/v1/borrowers/{id}/changes", get(routes::borrowers::changes))
        .route(
            "/v1/borrowers/{id}/second-factor/remove",
            post(routes::borrowers::remove_second_factor),
        )
        .route("/v1/jobs", get(routes::jobs::list))
        .route("/v1/jobs/{id}/redrive", post(routes::jobs::redrive))
        .route(
            "/v1/applications",
            get(routes::applications::list).post(routes::applications::start),
        )
        .route(
            "/v1/applications/{id}",
            get(routes::applications::get).patch(routes::applications::save),
        )
        .route("/v1/applications/{id}/submit", post(routes::applications::submit))
        .route(
            "/v1/applications/{id}/verification/code",
            post(routes::applications::verification_code),
        )
        .route(
            "/v1/applications/{id}/verification",
            post(routes::applications::verify),
        )
        .route("/v1/applications/{id}/decision", post(routes::applications::decide))
        .route("/v1/applications/{id}/accept", post(routes::applications::accept))
        .route("/v1/applications/{id}/withdraw", post(routes::applications::withdraw))
        .route("/v1/applications/{id}/status", get(routes::applications::status))
        .route(
            "/v1/applications/{id}/documents",
            get(routes::applications::documents).post(routes::applications::upload).layer(
                // Documents are files, not JSON: their own limit, a little over 5 MiB.
                DefaultBodyLimit::max(lendcore_engine::applications::MAX_DOCUMENT_BYTES + 1024),
            ),
        )
        .route(
            "/v1/applications/{id}/documents/{document_id}",
            get(routes::applications::document),
        )
        .route(
            "/v1/applications/{id}/resume-link",
            post(routes::links::resume_link),
        )
        .route(
            "/v1/applications/{id}/contract-link",
            post(routes::links::contract_link),
        )
        .route("/v1/links/open", post(routes::links::open))
        .route("/v1/links/renew", post(routes::links::renew))
        .route("/v1/deliveries", get(routes::deliveries::list))
        .route("/v1/deliveries/{id}", get(routes::deliveries::get))
        .route(
            "/v1/deliveries/{id}/redrive",
            post(routes::deliveries::redrive),
        )
        .route("/v1/auth/codes", post(routes::auth::send_code))
        .route("/v1/auth/codes/verify", post(routes::auth::verify_code))
        .route("/v1/auth/second-factor", post(routes::auth::second_factor))
        .route("/v1/auth/second-factor/enrol", post(routes::auth::enrol))
        .route("/v1/auth/second-factor/confirm", post(routes::auth::confirm))
        .route("/v1/auth/operators/sign-in", post(routes::auth::operator_sign_in))
        .route("/v1/auth/session", get(routes::auth::session))
        .route("/v1/auth/sign-out", post(routes::auth::sign_out))
        .route("/v1/auth/password", post(routes::auth::change_password))
        .route(
            "/v1/api-keys",
            get(routes::access::list_keys).post(routes::access::create_key),
        )
        .route("/v1/api-keys/{id}/revoke", post(routes::access::revoke_key))
        .route(
            "/v1/operators",
            get(routes::access::list_operators).post(routes::access::create_operator),
        )
        .route(
            "/v1/operators/{id}/disable",
            post(routes::access::disable_operator),
        )
        .route("/v1/operators/{id}/reset", post(routes::access::reset_operator))
        // Every matched route passes its access rule first (see `auth::rule`).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authorise,
        ))
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Layers run outermost-last: a request meets SetRequestId first and the handler last.
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            limits.request_timeout,
            middleware::time_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(admission, middleware::admit))
        // Outside admission and the timeout, so shed and timed-out requests are counted too.
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(axum::middleware::from_fn(language::negotiate))
        .layer(axum::middleware::from_fn_with_state(
            limits.max_body_bytes,
            middleware::note_body_limit,
        ))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let request_id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("http", request_id = %request_id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::from_fn(middleware::sanitise_request_id))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
