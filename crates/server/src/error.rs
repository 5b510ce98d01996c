//! The one place errors become HTTP. Every error answers `{code, message, details}` with a
//! stable `code`; the status follows from the error's kind and from nothing else.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lendcore_engine::EngineError;
use serde::Serialize;
use utoipa::ToSchema;

/// Seconds a shed or timed-out client should wait before retrying.
const RETRY_AFTER_SECS: &str = "1";

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable, e.g. `validation.amount_out_of_range`.
    pub code: String,
    /// For humans; may change wording between releases.
    pub message: String,
    /// Structured context: `violations` (field, code, message) for validation errors, the
    /// offending `field` for malformed bodies, and so on. Always an object.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The body is not JSON at all (syntax error, truncated, trailing garbage, empty).
    #[error("request body is not valid JSON: {message}")]
    MalformedJson { message: String },
    /// Well-formed JSON whose shape does not match: unknown or missing field, wrong type,
    /// value not allowed for an enum.
    #[error("{message}")]
    BodyShape {
        code: &'static str,
        field: String,
        message: String,
    },
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    #[error("{message}")]
    InvalidParameter {
        code: &'static str,
        parameter: String,
        message: String,
    },
    #[error("no such route")]
    RouteNotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("the server is at capacity; retry shortly")]
    Overloaded,
    #[error("the request took too long and was abandoned; retry it with the same Idempotency-Key")]
    Timeout,
    #[error("not ready: {0}")]
    NotReady(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Engine(e) => e.code(),
            ApiError::MalformedJson { .. } => "validation.malformed_json",
            ApiError::BodyShape { code, .. } | ApiError::InvalidParameter { code, .. } => code,
            ApiError::BodyTooLarge { .. } => "validation.body_too_large",
            ApiError::UnsupportedMediaType => "validation.unsupported_media_type",
            ApiError::RouteNotFound => "not_found.route",
            ApiError::MethodNotAllowed => "validation.method_not_allowed",
            ApiError::Overloaded => "system.overloaded",
            ApiError::Timeout => "system.timeout",
            ApiError::NotReady(_) => "system.not_ready",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Engine(e) => match e {
                EngineError::Invalid(_) => StatusCode::BAD_REQUEST,
                EngineError::NotFound { .. } => StatusCode::NOT_FOUND,
                EngineError::Refused { .. } | EngineError::RefusedWith { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                EngineError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
                EngineError::Forbidden { .. } => StatusCode::FORBIDDEN,
                EngineError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                EngineError::Conflict { .. }
                | EngineError::IdempotencyKeyReused
                | EngineError::IdempotencyInProgress => StatusCode::CONFLICT,
                EngineError::Unavailable(_) | EngineError::NotConfigured(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                EngineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::MalformedJson { .. }
            | ApiError::BodyShape { .. }
            | ApiError::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Overloaded | ApiError::Timeout | ApiError::NotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn message(&self) -> String {
        match self {
            // A refusal speaks the borrower's language (see `language::negotiate`).
            ApiError::Engine(
                EngineError::Refused { reason }
                | EngineError::RefusedWith { reason, .. }
                | EngineError::Throttled { reason, .. },
            ) => reason
                .entry()
                .message(crate::language::current())
                .to_owned(),
            // Internal details belong in the log, under the request id, not in the response.
            ApiError::Engine(EngineError::Internal(_)) => {
                "internal error; quote the X-Request-Id header when reporting it".to_owned()
            }
            ApiError::Engine(EngineError::Unavailable(_)) => {
                "the service is temporarily unavailable; retry shortly".to_owned()
            }
            other => other.to_string(),
        }
    }

    fn details(&self) -> serde_json::Value {
        match self {
            ApiError::Engine(e) if !e.violations().is_empty() => {
                serde_json::json!({ "violations": e.violations() })
            }
            // What the catalogue says: the borrower's next step, and the message in each
            // language (`message` is in the one the request asked for).
            ApiError::Engine(
                EngineError::Refused { reason } | EngineError::Throttled { reason, .. },
            ) => refusal(*reason, None),
            ApiError::Engine(EngineError::RefusedWith { reason, facts }) => {
                refusal(*reason, Some(facts))
            }
            ApiError::BodyShape { field, .. } => serde_json::json!({ "field": field }),
            ApiError::InvalidParameter { parameter, .. } => {
                serde_json::json!({ "parameter": parameter })
            }
            ApiError::BodyTooLarge { limit } => serde_json::json!({ "limit_bytes": limit }),
            _ => serde_json::json!({}),
        }
    }

    /// Seconds to send in `Retry-After`, when the caller should come back later.
    fn retry_after(&self) -> Option<HeaderValue> {
        match self {
            ApiError::Overloaded | ApiError::Timeout | ApiError::NotReady(_) => {
                Some(HeaderValue::from_static(RETRY_AFTER_SECS))
            }
            ApiError::Engine(EngineError::Unavailable(_)) => {
                Some(HeaderValue::from_static(RETRY_AFTER_SECS))
            }
            ApiError::Engine(EngineError::Throttled {
                retry_after_secs, ..
            }) => Some(HeaderValue::from(*retry_after_secs)),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Engine(EngineError::Internal(detail)) => {
                tracing::error!(code = self.code(), %detail, "request failed with an internal error");
            }
            ApiError::Engine(EngineError::NotConfigured(detail)) => {
                tracing::error!(code = self.code(), %detail, "request refused: the service is not configured for it");
            }
            ApiError::Engine(EngineError::Unavailable(detail)) | ApiError::NotReady(detail) => {
                tracing::warn!(code = self.code(), %detail, "request refused: unavailable");
            }
            _ => tracing::info!(
                code = self.code(),
                status = status.as_u16(),
                "request refused"
            ),
        }
        let body = ErrorBody {
            code: self.code().to_owned(),
            message: self.message(),
            details: self.details(),
        };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::Engine(
            EngineError::Refused { reason }
            | EngineError::RefusedWith { reason, .. }
            | EngineError::Throttled { reason, .. },
        ) = &self
        {
            metrics::counter!("lendcore_refusals_total", "reason" => reason.code()).increment(1);
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_LANGUAGE,
                HeaderValue::from_static(crate::language::current().tag()),
            );
            // The same request in another language gets another answer: caches must know.
            headers.insert(header::VARY, HeaderValue::from_static("accept-language"));
        }
        if let Some(seconds) = self.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, seconds);
        }
        response
    }
}

/// What the catalogue says of a refusal (the next step, the message in each language), with
/// the facts the borrower needs to take that step.
fn refusal(
    reason: lendcore_domain::reasons::Reason,
    facts: Option<&serde_json::Value>,
) -> serde_json::Value {
    let entry = reason.entry();
    let mut details = serde_json::json!({
        "category": entry.category,
        "retryable": entry.retryable,
        "next_action": entry.next_action,
        "message_en": entry.message_en,
        "message_zh": entry.message_zh,
    });
    if let Some(facts) = facts {
        details["facts"] = facts.clone();
    }
    details
}
