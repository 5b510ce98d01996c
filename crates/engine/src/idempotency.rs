//! `Idempotency-Key` handling for use cases. The key is claimed inside the use case's unit of
//! work and the response stored in it, so the effect and its record commit together.

use lendcore_domain::Timestamp;
use lendcore_domain::validation::Violations;
use lendcore_store::{IdempotencyClaim, UnitOfWork};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::EngineError;

/// A client-chosen key: 1 to 255 visible ASCII characters (a UUID is a good choice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, Violations> {
        if (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Violations::single(
                "Idempotency-Key",
                "idempotency.key_invalid",
                "Idempotency-Key must be 1-255 visible ASCII characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A keyed request: who sent it, the key, and a fingerprint of what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// Keys are unique per caller; until callers authenticate (issue #5) there is one caller.
    pub scope: String,
    pub key: IdempotencyKey,
    pub fingerprint: String,
}

impl IdempotentRequest {
    /// Fingerprints the method, the path and the body. A JSON body is canonicalised first
    /// (object keys sorted, whitespace dropped), so the same request re-serialised by a client
    /// library still matches.
    pub fn new(scope: &str, key: IdempotencyKey, method: &str, path: &str, body: &[u8]) -> Self {
        let canonical = serde_json::from_slice::<serde_json::Value>(body)
            .map(|value| value.to_string().into_bytes())
            .unwrap_or_else(|_| body.to_vec());
        let mut hash = Sha256::new();
        hash.update(method.as_bytes());
        hash.update(b"\n");
        hash.update(path.as_bytes());
        hash.update(b"\n");
        hash.update(&canonical);
        Self {
            scope: scope.to_owned(),
            key,
            fingerprint: hex::encode(hash.finalize()),
        }
    }
}

/// A use case's result, and whether it was produced now or replayed from the first request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    Fresh(T),
    Replayed(T),
}

impl<T> Outcome<T> {
    pub fn is_replay(&self) -> bool {
        matches!(self, Outcome::Replayed(_))
    }

    pub fn into_inner(self) -> T {
        match self {
            Outcome::Fresh(t) | Outcome::Replayed(t) => t,
        }
    }
}

/// Ends a replay's unit of work and gives the earlier answer. The unit is rolled back, not
/// dropped: on SQLite the answer may have been stored by a unit of the same batch whose COMMIT
/// is still to come, and a rollback waits for it (and fails if it was lost).
pub(crate) async fn replayed<T>(
    uow: Box<dyn UnitOfWork>,
    done: T,
) -> Result<Outcome<T>, EngineError> {
    uow.rollback().await?;
    Ok(Outcome::Replayed(done))
}

/// Claims the request's key in `uow`. `Some(result)` means the request was already done and
/// `result` is what it returned; the caller returns it without doing anything.
pub(crate) async fn claim<T: DeserializeOwned>(
    uow: &mut dyn UnitOfWork,
    request: Option<&IdempotentRequest>,
    now: Timestamp,
) -> Result<Option<T>, EngineError> {
    let Some(request) = request else {
        return Ok(None);
    };
    let claim = uow
        .claim_idempotency_key(
            &request.scope,
            request.key.as_str(),
            &request.fingerprint,
            now,
        )
        .await?;
    match claim {
        IdempotencyClaim::Claimed => Ok(None),
        IdempotencyClaim::Seen { fingerprint, .. } if fingerprint != request.fingerprint => {
            Err(EngineError::IdempotencyKeyReused)
        }
        IdempotencyClaim::Seen {
            response: Some(response),
            ..
        } => serde_json::from_value(response)
            .map(Some)
            .map_err(|e| EngineError::Internal(format!("stored idempotent response: {e}"))),
        IdempotencyClaim::Seen { response: None, .. } => Err(EngineError::IdempotencyInProgress),
    }
}

/// Stores the result of a claimed request, in the same unit of work as its effect.
pub(crate) async fn record<T: Serialize>(
    uow: &mut dyn UnitOfWork,
    request: Option<&IdempotentRequest>,
    result: &T,
    now: Timestamp,
) -> Result<(), EngineError> {
    let Some(request) = request else {
        return Ok(());
    };
    let value = serde_json::to_value(result)
        .map_err(|e| EngineError::Internal(format!("serialising a response: {e}")))?;
    uow.record_idempotent_response(&request.scope, request.key.as_str(), &value, now)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> IdempotencyKey {
        IdempotencyKey::parse("k-1").unwrap()
    }

    #[test]
    fn the_same_json_in_another_layout_has_the_same_fingerprint() {
        let a = IdempotentRequest::new("s", key(), "POST", "/v1/p", br#"{"a":1,"b":[1,2]}"#);
        let b = IdempotentRequest::new(
            "s",
            key(),
            "POST",
            "/v1/p",
            b"{ \"b\": [1, 2],\n \"a\": 1 }",
        );
        let c = IdempotentRequest::new("s", key(), "POST", "/v1/p", br#"{"a":2,"b":[1,2]}"#);
        let d = IdempotentRequest::new("s", key(), "POST", "/v1/q", br#"{"a":1,"b":[1,2]}"#);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_ne!(a.fingerprint, d.fingerprint);
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse("0b7c6f0e-6a0e-4b7e-9d7c-1f2e3d4c5b6a").is_ok());
        for bad in ["", "has space", "tab\t", "ключ", &"x".repeat(256)] {
            assert_eq!(
                IdempotencyKey::parse(bad).unwrap_err().first().code,
                "idempotency.key_invalid"
            );
        }
    }
}
