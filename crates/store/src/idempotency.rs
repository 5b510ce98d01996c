//! Idempotency keys, claimed in the same transaction as the effect they guard.
//!
//! The first request inserts its key; the effect and the stored response commit with it. A
//! concurrent duplicate's insert waits on the first one's uncommitted row (PostgreSQL) or on the
//! single writer (SQLite), then finds the committed row and replays it; if the first rolled back,
//! the duplicate's insert succeeds and it does the work itself. A second effect cannot happen.

use async_trait::async_trait;
use lendcore_domain::Timestamp;

use crate::StoreError;
use crate::time::to_ms;
use crate::unit_of_work::SqlUnitOfWork;

#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyClaim {
    /// The key is new; it is held by this unit of work until it commits or rolls back.
    Claimed,
    /// The key was used before, with this fingerprint; `response` is what that request
    /// returned, or `None` if it is (impossibly, after commit) still unfinished.
    Seen {
        fingerprint: String,
        response: Option<serde_json::Value>,
    },
}

#[async_trait]
pub trait IdempotencyRepository {
    async fn claim_idempotency_key(
        &mut self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<IdempotencyClaim, StoreError>;

    /// Stores the response of a claimed key; commits with the effect.
    async fn record_idempotent_response(
        &mut self,
        scope: &str,
        key: &str,
        response: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(), StoreError>;
}

#[async_trait]
impl IdempotencyRepository for SqlUnitOfWork {
    async fn claim_idempotency_key(
        &mut self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<IdempotencyClaim, StoreError> {
        let inserted = self
            .execute(
                self.sql(
                    "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, created_at_ms) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (scope, idem_key) DO NOTHING",
                )
                .bind(scope)
                .bind(key)
                .bind(fingerprint)
                .bind(to_ms(now)),
            )
            .await?;
        if inserted == 1 {
            return Ok(IdempotencyClaim::Claimed);
        }
        let (fingerprint, response): (String, Option<String>) = self
            .fetch_one(
                self.sql(
                    "SELECT fingerprint, response FROM idempotency_keys \
                     WHERE scope = $1 AND idem_key = $2",
                )
                .bind(scope)
                .bind(key),
            )
            .await?;
        let response = response
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(|e| StoreError::corrupt("idempotency_keys", e))?;
        Ok(IdempotencyClaim::Seen {
            fingerprint,
            response,
        })
    }

    async fn record_idempotent_response(
        &mut self,
        scope: &str,
        key: &str,
        response: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.execute(
            self.sql(
                "UPDATE idempotency_keys SET response = $1, completed_at_ms = $2 \
                 WHERE scope = $3 AND idem_key = $4",
            )
            .bind(response.to_string())
            .bind(to_ms(now))
            .bind(scope)
            .bind(key),
        )
        .await?;
        Ok(())
    }
}
