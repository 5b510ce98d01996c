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
        .merge(routes::docs::routes())
        .merge(routes::health::routes())
        .merge(routes::products::routes())
        .merge(routes::quotes::routes())
        .merge(routes::credit_lines::routes())
        .merge(routes::drawdowns::routes())
        .merge(routes::channels::routes())
        .merge(routes::loans::routes())
        .merge(routes::maintenance::routes())
        .merge(routes::incidents::routes())
        .merge(routes::cases::routes())
        .merge(routes::status::routes())
        .merge(routes::borrowers::routes())
        .merge(routes::jobs::routes())
        .merge(routes::alerts::routes())
        .merge(routes::applications::routes())
        .merge(routes::links::routes())
        .merge(routes::deliveries::routes())
        .merge(routes::auth::routes())
        .merge(routes::access::routes())
        .merge(routes::policies::routes())
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
