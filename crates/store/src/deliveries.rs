//! The delivery log: each outbox event's deliveries (webhook, SMS, email) and every attempt.

use async_trait::async_trait;
use lendcore_domain::Timestamp;

use crate::StoreError;
use crate::sql::from_row;
use crate::time::{from_ms, to_ms};
use crate::unit_of_work::SqlUnitOfWork;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryChannel {
    Webhook,
    Sms,
    Email,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet; its job is trying.
    Pending,
    Delivered,
    /// Refused for good, or out of attempts: an operator looks, and may re-drive it.
    Failed,
    /// Nothing could be sent (the borrower has no such address); kept so it is seen.
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Delivered,
    /// Failed in a way a later attempt may not (timeout, 5xx).
    Retryable,
    /// Refused by the receiver; another attempt will not help.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub topic: String,
    pub channel: DeliveryChannel,
    /// A webhook's id, or the address masked.
    pub target: String,
    pub borrower_id: Option<String>,
    /// For an applicant not registered yet: the application whose number they are reached at.
    pub application_id: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub delivery_id: String,
    pub attempt: i64,
    pub at: Timestamp,
    pub outcome: AttemptOutcome,
    pub detail: String,
}

#[async_trait]
pub trait DeliveryRepository {
    /// Inserts deliveries; one already there for the same event, channel and target is left
    /// as it is (two publishers may read the same event). Returns the ids inserted.
    async fn insert_deliveries(
        &mut self,
        deliveries: &[Delivery],
    ) -> Result<Vec<String>, StoreError>;
    async fn find_delivery(&mut self, id: &str) -> Result<Option<Delivery>, StoreError>;
    /// Newest first; `status` filters when given.
    async fn list_deliveries(
        &mut self,
        status: Option<DeliveryStatus>,
        event_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Records an attempt and the delivery's new status, attempts and last error.
    async fn record_attempt(
        &mut self,
        attempt: &DeliveryAttempt,
        status: DeliveryStatus,
        last_error: Option<&str>,
    ) -> Result<(), StoreError>;
    async fn delivery_attempts(&mut self, id: &str) -> Result<Vec<DeliveryAttempt>, StoreError>;
    /// The outbox event a delivery carries.
    async fn find_outbox_event(
        &mut self,
        id: &str,
    ) -> Result<Option<crate::OutboxEvent>, StoreError>;
}

struct DeliveryRow {
    id: String,
    event_id: String,
    topic: String,
    channel: String,
    target: String,
    borrower_id: Option<String>,
    application_id: Option<String>,
    status: String,
    attempts: i64,
    last_error: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
}
from_row!(DeliveryRow {
    id,
    event_id,
    topic,
    channel,
    target,
    borrower_id,
    application_id,
    status,
    attempts,
    last_error,
    created_at_ms,
    updated_at_ms
});

struct AttemptRow {
    delivery_id: String,
    attempt: i64,
    at_ms: i64,
    outcome: String,
    detail: String,
}
from_row!(AttemptRow {
    delivery_id,
    attempt,
    at_ms,
    outcome,
    detail
});

fn channel_str(channel: DeliveryChannel) -> &'static str {
    match channel {
        DeliveryChannel::Webhook => "webhook",
        DeliveryChannel::Sms => "sms",
        DeliveryChannel::Email => "email",
    }
}

pub fn status_str(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Skipped => "skipped",
    }
}

fn outcome_str(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Retryable => "retryable",
        AttemptOutcome::Rejected => "rejected",
    }
}

impl DeliveryStatus {
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
            DeliveryStatus::Skipped,
        ]
        .into_iter()
        .find(|st| status_str(*st) == s)
    }
}

fn from_row(row: DeliveryRow) -> Result<Delivery, StoreError> {
    const T: &str = "deliveries";
    let channel = [
        DeliveryChannel::Webhook,
        DeliveryChannel::Sms,
        DeliveryChannel::Email,
    ]
    .into_iter()
    .find(|c| channel_str(*c) == row.channel)
    .ok_or_else(|| StoreError::corrupt(T, format!("channel {}", row.channel)))?;
    let status = DeliveryStatus::parse(&row.status)
        .ok_or_else(|| StoreError::corrupt(T, format!("status {}", row.status)))?;
    Ok(Delivery {
        channel,
        status,
        created_at: from_ms(T, row.created_at_ms)?,
        updated_at: from_ms(T, row.updated_at_ms)?,
        id: row.id,
        event_id: row.event_id,
        topic: row.topic,
        target: row.target,
        borrower_id: row.borrower_id,
        application_id: row.application_id,
        attempts: row.attempts,
        last_error: row.last_error,
    })
}

/// A pending delivery whose job is dead (its worker died, or its attempt was cut off, on the
/// last attempt: nothing was left to record the end) reads as failed, with the job's error, so
/// it is listed with the failures and can be re-driven. The job id is the engine's
/// `deliver:{delivery id}`.
const SELECT: &str = "SELECT d.id, d.event_id, d.topic, d.channel, d.target, d.borrower_id, \
     d.application_id, \
     CASE WHEN d.status = 'pending' AND j.status = 'dead' THEN 'failed' ELSE d.status END \
     AS status, d.attempts, \
     CASE WHEN d.status = 'pending' AND j.status = 'dead' THEN j.last_error \
     ELSE d.last_error END AS last_error, d.created_at_ms, d.updated_at_ms \
     FROM deliveries d LEFT JOIN jobs j ON j.id = 'deliver:' || d.id";
/// Whether the delivery is pending with its job dead (so reads as failed), for the status
/// filter.
const DEAD: &str = "(d.status = 'pending' AND COALESCE(j.status, '') = 'dead')";

#[async_trait]
impl DeliveryRepository for SqlUnitOfWork {
    async fn insert_deliveries(
        &mut self,
        deliveries: &[Delivery],
    ) -> Result<Vec<String>, StoreError> {
        let mut inserted = Vec::new();
        for d in deliveries {
            let n = self
                .execute(
                    self.sql(
                        "INSERT INTO deliveries (id, event_id, topic, channel, target, \
                    borrower_id, status, attempts, last_error, created_at_ms, \
                    updated_at_ms, application_id) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                    $8, $9, $10, $11, $12) ON CONFLICT (event_id, channel, target) DO \
                    NOTHING",
                    )
                    .bind(&d.id)
                    .bind(&d.event_id)
                    .bind(&d.topic)
                    .bind(channel_str(d.channel))
                    .bind(&d.target)
                    .bind(d.borrower_id.as_deref())
                    .bind(status_str(d.status))
                    .bind(d.attempts)
                    .bind(d.last_error.as_deref())
                    .bind(to_ms(d.created_at))
                    .bind(to_ms(d.updated_at))
                    .bind(d.application_id.as_deref()),
                )
                .await?;
            if n == 1 {
                inserted.push(d.id.clone());
            }
        }
        Ok(inserted)
    }

    async fn find_delivery(&mut self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let sql = format!("{SELECT} WHERE d.id = $1");
        let row: Option<DeliveryRow> = self.fetch_optional(self.sql(&sql).bind(id)).await?;
        row.map(from_row).transpose()
    }

    async fn list_deliveries(
        &mut self,
        status: Option<DeliveryStatus>,
        event_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "{SELECT} WHERE ($1 IS NULL OR (d.status = $1 AND NOT {DEAD}) \
             OR ($1 = 'failed' AND d.status = 'pending' AND {DEAD})) \
             AND ($2 IS NULL OR d.event_id = $2) \
             ORDER BY d.created_at_ms DESC, d.id DESC LIMIT $3"
        );
        let rows: Vec<DeliveryRow> = self
            .fetch_all(
                self.sql(&sql)
                    .bind(status.map(status_str))
                    .bind(event_id)
                    .bind(i64::from(limit)),
            )
            .await?;
        rows.into_iter().map(from_row).collect()
    }

    async fn record_attempt(
        &mut self,
        a: &DeliveryAttempt,
        status: DeliveryStatus,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.execute(
            self.sql(
                "INSERT INTO delivery_attempts (delivery_id, attempt, at_ms, outcome, \
                    detail) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&a.delivery_id)
            .bind(a.attempt)
            .bind(to_ms(a.at))
            .bind(outcome_str(a.outcome))
            .bind(&a.detail),
        )
        .await?;
        self.execute(
            self.sql(
                "UPDATE deliveries SET status = $1, attempts = $2, last_error = $3, \
                    updated_at_ms = $4 WHERE id = $5",
            )
            .bind(status_str(status))
            .bind(a.attempt)
            .bind(last_error)
            .bind(to_ms(a.at))
            .bind(&a.delivery_id),
        )
        .await?;
        Ok(())
    }

    async fn delivery_attempts(&mut self, id: &str) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let rows: Vec<AttemptRow> = self
            .fetch_all(
                self.sql(
                    "SELECT delivery_id, attempt, at_ms, outcome, detail FROM \
                        delivery_attempts WHERE delivery_id = $1 ORDER BY attempt",
                )
                .bind(id),
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                const T: &str = "delivery_attempts";
                let outcome = [
                    AttemptOutcome::Delivered,
                    AttemptOutcome::Retryable,
                    AttemptOutcome::Rejected,
                ]
                .into_iter()
                .find(|o| outcome_str(*o) == r.outcome)
                .ok_or_else(|| StoreError::corrupt(T, format!("outcome {}", r.outcome)))?;
                Ok(DeliveryAttempt {
                    outcome,
                    at: from_ms(T, r.at_ms)?,
                    delivery_id: r.delivery_id,
                    attempt: r.attempt,
                    detail: r.detail,
                })
            })
            .collect()
    }

    async fn find_outbox_event(
        &mut self,
        id: &str,
    ) -> Result<Option<crate::OutboxEvent>, StoreError> {
        crate::outbox::find_event(self, id).await
    }
}
