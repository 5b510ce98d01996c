//! The outbox: events written in the same transaction as the change they report, delivered
//! afterwards by whoever publishes them (notifiers and webhooks, issue #5), so a change and its
//! announcement can never disagree.

use async_trait::async_trait;
use lendcore_domain::Timestamp;

use crate::StoreError;
use crate::pending::{Cell, PendingRows};
use crate::sql::from_row;
use crate::time::{from_ms, from_opt_ms, to_ms};
use crate::unit_of_work::{PENDING_OUTBOX, SqlUnitOfWork};

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub id: String,
    /// What happened, e.g. `product.version_added`.
    pub topic: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub payload: serde_json::Value,
    pub created_at: Timestamp,
    pub published_at: Option<Timestamp>,
}

#[async_trait]
pub trait OutboxRepository {
    async fn append_outbox(&mut self, event: &OutboxEvent) -> Result<(), StoreError>;

    /// Appends several events at once. Events are written when the unit of work commits (or
    /// before it reads the outbox), with what else it appended: a duplicate id fails the
    /// commit.
    async fn append_outbox_many(&mut self, events: &[OutboxEvent]) -> Result<(), StoreError>;

    /// Appends an event now unless one with its id exists already; `true` if it was added.
    async fn append_outbox_once(&mut self, event: &OutboxEvent) -> Result<bool, StoreError>;

    /// Unpublished events, oldest first.
    async fn unpublished_outbox(&mut self, limit: u32) -> Result<Vec<OutboxEvent>, StoreError>;

    /// Marks the events `ids` published, in one statement.
    async fn mark_outbox_published(
        &mut self,
        ids: &[String],
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Every event about one aggregate, oldest first: the raw material of timelines.
    async fn outbox_for(
        &mut self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<OutboxEvent>, StoreError>;
}

struct OutboxRow {
    id: String,
    topic: String,
    aggregate_type: String,
    aggregate_id: String,
    payload: String,
    created_at_ms: i64,
    published_at_ms: Option<i64>,
}
from_row!(OutboxRow {
    id,
    topic,
    aggregate_type,
    aggregate_id,
    payload,
    created_at_ms,
    published_at_ms
});

const SELECT: &str = "SELECT id, topic, aggregate_type, aggregate_id, payload, created_at_ms, \
     published_at_ms FROM outbox";

#[async_trait]
impl OutboxRepository for SqlUnitOfWork {
    async fn append_outbox(&mut self, event: &OutboxEvent) -> Result<(), StoreError> {
        self.append_outbox_many(std::slice::from_ref(event)).await
    }

    async fn append_outbox_many(&mut self, events: &[OutboxEvent]) -> Result<(), StoreError> {
        for event in events {
            self.pending[PENDING_OUTBOX].push(vec![
                Cell::Text(event.id.clone()),
                Cell::Text(event.topic.clone()),
                Cell::Text(event.aggregate_type.clone()),
                Cell::Text(event.aggregate_id.clone()),
                Cell::Text(event.payload.to_string()),
                Cell::Number(to_ms(event.created_at)),
            ]);
        }
        Ok(())
    }

    async fn append_outbox_once(&mut self, event: &OutboxEvent) -> Result<bool, StoreError> {
        self.flush_pending().await?;
        let inserted = self
            .execute(
                self.sql(
                    "INSERT INTO outbox (id, topic, aggregate_type, aggregate_id, \
                        payload, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT \
                        (id) DO NOTHING",
                )
                .bind(&event.id)
                .bind(&event.topic)
                .bind(&event.aggregate_type)
                .bind(&event.aggregate_id)
                .bind(event.payload.to_string())
                .bind(to_ms(event.created_at)),
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn unpublished_outbox(&mut self, limit: u32) -> Result<Vec<OutboxEvent>, StoreError> {
        self.flush_pending().await?;
        let sql =
            format!("{SELECT} WHERE published_at_ms IS NULL ORDER BY created_at_ms, id LIMIT $1");
        let rows: Vec<OutboxRow> = self
            .fetch_all(self.sql(&sql).bind(i64::from(limit)))
            .await?;
        rows.into_iter().map(event_from_row).collect()
    }

    async fn mark_outbox_published(
        &mut self,
        ids: &[String],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.flush_pending().await?;
        let ids = serde_json::to_string(ids)
            .map_err(|e| StoreError::Database(format!("outbox ids: {e}")))?;
        let sql = format!(
            "UPDATE outbox SET published_at_ms = $1 WHERE id IN ({}) AND published_at_ms IS NULL",
            self.listed(2)
        );
        self.execute(self.sql(&sql).bind(to_ms(now)).bind(&ids))
            .await?;
        Ok(())
    }

    async fn outbox_for(
        &mut self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        self.flush_pending().await?;
        let sql = format!(
            "{SELECT} WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY created_at_ms, id"
        );
        let rows: Vec<OutboxRow> = self
            .fetch_all(self.sql(&sql).bind(aggregate_type).bind(aggregate_id))
            .await?;
        rows.into_iter().map(event_from_row).collect()
    }
}

fn event_from_row(row: OutboxRow) -> Result<OutboxEvent, StoreError> {
    const T: &str = "outbox";
    Ok(OutboxEvent {
        payload: serde_json::from_str(&row.payload).map_err(|e| StoreError::corrupt(T, e))?,
        created_at: from_ms(T, row.created_at_ms)?,
        published_at: from_opt_ms(T, row.published_at_ms)?,
        id: row.id,
        topic: row.topic,
        aggregate_type: row.aggregate_type,
        aggregate_id: row.aggregate_id,
    })
}

/// One event by id.
pub(crate) async fn find_event(
    uow: &mut SqlUnitOfWork,
    id: &str,
) -> Result<Option<OutboxEvent>, StoreError> {
    let sql = format!("{SELECT} WHERE id = $1");
    let row: Option<OutboxRow> = uow.fetch_optional(uow.sql(&sql).bind(id)).await?;
    row.map(event_from_row).transpose()
}

/// Events appended by [`OutboxRepository::append_outbox_many`], written when the unit of work
/// commits.
pub(crate) const fn pending_rows() -> PendingRows {
    PendingRows::new(
        "outbox (id, topic, aggregate_type, aggregate_id, payload, created_at_ms)",
        6,
    )
}
