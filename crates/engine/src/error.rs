use lendcore_domain::product::ProductError;
use lendcore_domain::validation::{Violation, Violations};
use lendcore_store::StoreError;
use thiserror::Error;

/// Every way a use case can fail, each with a stable code. The server maps these to HTTP in one
/// place; nothing else decides a status.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Invalid(#[from] Violations),
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A business refusal with a reason from the catalogue, shown to the borrower with its
    /// next step.
    #[error("{}", reason.entry().message_en)]
    Refused {
        reason: lendcore_domain::reasons::Reason,
    },
    /// A refusal with the facts the borrower needs to act on it (what is overdue, in what
    /// currency), shown beside the reason.
    #[error("{}", reason.entry().message_en)]
    RefusedWith {
        reason: lendcore_domain::reasons::Reason,
        facts: serde_json::Value,
    },
    /// No credentials, or credentials that do not hold (unknown, revoked, expired, wrong).
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// The caller is known but may not do this.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// Too many attempts: the reason says which, `retry_after_secs` when one will be allowed.
    #[error("{}", reason.entry().message_en)]
    Throttled {
        reason: lendcore_domain::reasons::Reason,
        retry_after_secs: u64,
    },
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyInProgress,
    /// The database is unreachable or busy; the request may be retried as it is.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// The service lacks a setting this needs (e.g. the personal data key): retrying will not
    /// help until an operator configures it.
    #[error("not configured: {0}")]
    NotConfigured(String),
    /// A bug or corrupt data. The details go to the log, not to the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Invalid(v) => v.first().code,
            EngineError::NotFound { code, .. } | EngineError::Conflict { code, .. } => code,
            EngineError::Unauthenticated { code, .. } | EngineError::Forbidden { code, .. } => code,
            EngineError::Refused { reason }
            | EngineError::RefusedWith { reason, .. }
            | EngineError::Throttled { reason, .. } => reason.code(),
            EngineError::IdempotencyKeyReused => "idempotency.key_reused",
            EngineError::IdempotencyInProgress => "idempotency.request_in_progress",
            EngineError::Unavailable(_) => "system.unavailable",
            EngineError::NotConfigured(_) => "system.not_configured",
            EngineError::Internal(_) => "system.internal",
        }
    }

    /// Field-level problems, when there are any.
    pub fn violations(&self) -> &[Violation] {
        match self {
            EngineError::Invalid(v) => v.all(),
            EngineError::NotFound { .. }
            | EngineError::Conflict { .. }
            | EngineError::Refused { .. }
            | EngineError::RefusedWith { .. }
            | EngineError::Unauthenticated { .. }
            | EngineError::Forbidden { .. }
            | EngineError::Throttled { .. }
            | EngineError::IdempotencyKeyReused
            | EngineError::IdempotencyInProgress
            | EngineError::Unavailable(_)
            | EngineError::NotConfigured(_)
            | EngineError::Internal(_) => &[],
        }
    }

    pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        EngineError::NotFound {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        EngineError::Unauthenticated {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        EngineError::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        EngineError::Conflict {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) | StoreError::Busy(_) => {
                EngineError::Unavailable(err.to_string())
            }
            StoreError::SchemaNotCurrent(_) => EngineError::Unavailable(err.to_string()),
            StoreError::Stale(what) => EngineError::conflict(
                "conflict.concurrent_update",
                format!("the {what} was changed by another request; read it again and retry"),
            ),
            StoreError::Immutable(detail) => {
                EngineError::conflict("conflict.product_version_effective", detail)
            }
            StoreError::InvalidValue(detail) => EngineError::Invalid(Violations::single(
                "",
                "validation.invalid_value",
                format!("a value in the request cannot be stored: {detail}"),
            )),
            StoreError::Duplicate(_)
            | StoreError::LeaseLost(_)
            | StoreError::Config(_)
            | StoreError::Corrupt { .. }
            | StoreError::OtherBorrower(_)
            | StoreError::Database(_) => EngineError::Internal(err.to_string()),
        }
    }
}

impl From<ProductError> for EngineError {
    fn from(err: ProductError) -> Self {
        let code = err.code();
        match err {
            ProductError::Invalid(v) => EngineError::Invalid(v),
            ProductError::Retired(_) | ProductError::VersionEffective(_) => {
                EngineError::conflict(code, err.to_string())
            }
            ProductError::VersionNotFound(_) => EngineError::not_found(code, err.to_string()),
        }
    }
}
