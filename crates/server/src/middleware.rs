//! Cross-cutting request handling: admission control, timeouts, body limits and metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::extract::BodyLimit;

/// Bounds on concurrent work. Past `max_in_flight` requests, up to `max_queued` more wait up to
/// `queue_timeout` for a slot; anything beyond is shed at once with 503 and `Retry-After`, so
/// an overloaded server answers quickly instead of half-doing work.
pub struct Admission {
    in_flight: Semaphore,
    queue: Semaphore,
    queue_timeout: Duration,
}

impl Admission {
    pub fn new(max_in_flight: usize, max_queued: usize, queue_timeout: Duration) -> Self {
        Self {
            in_flight: Semaphore::new(max_in_flight.max(1)),
            queue: Semaphore::new(max_queued),
            queue_timeout,
        }
    }
}

/// Probes and scrapes are never shed: an overloaded server must still say how it is.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

pub async fn admit(State(admission): State<Arc<Admission>>, req: Request, next: Next) -> Response {
    if exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let permit = match admission.in_flight.try_acquire() {
        Ok(permit) => permit,
        Err(_) => {
            let Ok(_place_in_queue) = admission.queue.try_acquire() else {
                return shed();
            };
            match tokio::time::timeout(admission.queue_timeout, admission.in_flight.acquire()).await
            {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) | Err(_) => return shed(),
            }
        }
    };
    let response = next.run(req).await;
    drop(permit);
    response
}

fn shed() -> Response {
    metrics::counter!("lendcore_http_shed_total").increment(1);
    ApiError::Overloaded.into_response()
}

/// Abandons a request that runs past `limit`. Its unit of work is dropped, which rolls it back;
/// a client that retries with the same `Idempotency-Key` gets the first result if it had
/// committed after all.
pub async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// Drops a client-sent `x-request-id` that is not a short token, so a new one is made: the id
/// goes into every log line, and a client must not be able to write whatever it likes there.
pub async fn sanitise_request_id(mut req: Request, next: Next) -> Response {
    let acceptable = req.headers().get("x-request-id").map(|value| {
        let bytes = value.as_bytes();
        (1..=64).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    if acceptable == Some(false) {
        req.headers_mut().remove("x-request-id");
    }
    next.run(req).await
}

/// A handler that panics answers `500 system.internal` with a JSON body, not a dropped
/// connection; the panic itself is logged under the request id.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".to_owned());
    ApiError::Engine(lendcore_engine::EngineError::Internal(format!(
        "handler panicked: {detail}"
    )))
    .into_response()
}

/// Records the body limit on the request so a rejection can name it.
pub async fn note_body_limit(State(limit): State<usize>, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(BodyLimit(limit));
    next.run(req).await
}

/// Counts requests and their latency by method, route template and status.
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
