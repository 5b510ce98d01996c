//! Credit lines and their limit-change log. Holds and draws are single conditional updates, so
//! a line cannot be overdrawn whatever runs concurrently, on either store, in any number of
//! processes: the check and the change are one statement on one row.

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::credit_line::{CreditLine, LineEvent, LineEventKind, LineStatus};
use lendcore_domain::money::Currency;
use lendcore_domain::reasons::Reason;

use crate::StoreError;
use crate::sql::from_row;
use crate::time::{from_ms, to_ms};
use crate::unit_of_work::SqlUnitOfWork;

#[async_trait]
pub trait CreditLineRepository {
    async fn insert_credit_line(
        &mut self,
        line: &CreditLine,
        event: &LineEvent,
    ) -> Result<(), StoreError>;

    /// Writes a line changed by the domain (limit, status) with its log entry.
    /// [`StoreError::Stale`] if the line changed since it was read at `read_revision`.
    async fn update_credit_line(
        &mut self,
        line: &CreditLine,
        read_revision: i64,
        event: &LineEvent,
    ) -> Result<(), StoreError>;

    async fn find_credit_line(&mut self, id: &str) -> Result<Option<CreditLine>, StoreError>;

    /// The borrower's lines, oldest first.
    async fn credit_lines(&mut self) -> Result<Vec<CreditLine>, StoreError>;

    /// The line's log, oldest first.
    async fn credit_line_events(&mut self, line_id: &str) -> Result<Vec<LineEvent>, StoreError>;

    /// Reserves `amount` for a drawdown. `false`, and nothing changed, when the line is not
    /// active and valid at `now` or has less than `amount` available.
    async fn place_hold(
        &mut self,
        line_id: &str,
        amount_minor: i64,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Gives back a hold that will not be drawn (the payout definitively failed).
    async fn release_hold(
        &mut self,
        line_id: &str,
        amount_minor: i64,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Turns a hold into drawn principal (the payout succeeded).
    async fn draw_hold(
        &mut self,
        line_id: &str,
        amount_minor: i64,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Repaid principal makes room on the line again.
    async fn repay_drawn(
        &mut self,
        line_id: &str,
        amount_minor: i64,
        now: Timestamp,
    ) -> Result<(), StoreError>;
}

pub(crate) struct LineRow {
    pub(crate) id: String,
    pub(crate) borrower_id: String,
    pub(crate) currency: String,
    pub(crate) limit_minor: i64,
    pub(crate) drawn_minor: i64,
    pub(crate) held_minor: i64,
    pub(crate) rate_tier: Option<String>,
    pub(crate) valid_from_ms: i64,
    pub(crate) valid_until_ms: i64,
    pub(crate) status: String,
    pub(crate) revision: i64,
    pub(crate) created_at_ms: i64,
    pub(crate) updated_at_ms: i64,
}
from_row!(LineRow {
    id,
    borrower_id,
    currency,
    limit_minor,
    drawn_minor,
    held_minor,
    rate_tier,
    valid_from_ms,
    valid_until_ms,
    status,
    revision,
    created_at_ms,
    updated_at_ms,
});

struct EventRow {
    line_id: String,
    seq: i64,
    kind: String,
    limit_before_minor: i64,
    limit_after_minor: i64,
    reason: Option<String>,
    actor: String,
    note: Option<String>,
    at_ms: i64,
}
from_row!(EventRow {
    line_id,
    seq,
    kind,
    limit_before_minor,
    limit_after_minor,
    reason,
    actor,
    note,
    at_ms
});

pub(crate) const LINE_COLUMNS: &str = "id, borrower_id, currency, limit_minor, drawn_minor, held_minor, \
     rate_tier, valid_from_ms, valid_until_ms, status, revision, created_at_ms, updated_at_ms";

#[async_trait]
impl CreditLineRepository for SqlUnitOfWork {
    async fn insert_credit_line(
        &mut self,
        line: &CreditLine,
        event: &LineEvent,
    ) -> Result<(), StoreError> {
        self.owns("credit line", &line.borrower_id)?;
        self.execute(
            self.sql(
                "INSERT INTO credit_lines (id, borrower_id, currency, limit_minor, \
                drawn_minor, held_minor, rate_tier, valid_from_ms, valid_until_ms, \
                state, status, revision, created_at_ms, updated_at_ms) VALUES ($1, \
                $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&line.id)
            .bind(&line.borrower_id)
            .bind(line.currency.code())
            .bind(line.limit_minor)
            .bind(line.drawn_minor)
            .bind(line.held_minor)
            .bind(&line.rate_tier)
            .bind(to_ms(line.valid_from))
            .bind(to_ms(line.valid_until))
            .bind(state_of(&line.status))
            .bind(status_json(&line.status)?)
            .bind(line.revision)
            .bind(to_ms(line.created_at))
            .bind(to_ms(line.updated_at)),
        )
        .await?;
        self.append_line_event(event).await
    }

    async fn update_credit_line(
        &mut self,
        line: &CreditLine,
        read_revision: i64,
        event: &LineEvent,
    ) -> Result<(), StoreError> {
        self.owns("credit line", &line.borrower_id)?;
        let updated = self
            .execute(
                self.sql(
                    "UPDATE credit_lines SET limit_minor = $1, state = $2, status = $3, \
                revision = $4, updated_at_ms = $5 WHERE borrower_id = $6 AND id = $7 \
                AND revision = $8",
                )
                .bind(line.limit_minor)
                .bind(state_of(&line.status))
                .bind(status_json(&line.status)?)
                .bind(line.revision)
                .bind(to_ms(line.updated_at))
                .bind(self.borrower.clone())
                .bind(&line.id)
                .bind(read_revision),
            )
            .await?;
        if updated != 1 {
            return Err(StoreError::Stale("credit line"));
        }
        self.append_line_event(event).await
    }

    async fn find_credit_line(&mut self, id: &str) -> Result<Option<CreditLine>, StoreError> {
        let sql =
            format!("SELECT {LINE_COLUMNS} FROM credit_lines WHERE borrower_id = $1 AND id = $2");
        let row: Option<LineRow> = self
            .fetch_optional(self.sql(&sql).bind(self.borrower.clone()).bind(id))
            .await?;
        row.map(line_from_row).transpose()
    }

    async fn credit_lines(&mut self) -> Result<Vec<CreditLine>, StoreError> {
        let sql = format!(
            "SELECT {LINE_COLUMNS} FROM credit_lines WHERE borrower_id = $1 ORDER BY created_at_ms, id"
        );
        let rows: Vec<LineRow> = self
            .fetch_all(self.sql(&sql).bind(self.borrower.clone()))
            .await?;
        rows.into_iter().map(line_from_row).collect()
    }

    async fn credit_line_events(&mut self, line_id: &str) -> Result<Vec<LineEvent>, StoreError> {
        let rows: Vec<EventRow> = self
            .fetch_all(
                self.sql(
                    "SELECT line_id, seq, kind, limit_before_minor, limit_after_minor, \
                reason, actor, note, at_ms FROM credit_line_events WHERE borrower_id = $1 \
                AND line_id = $2 ORDER BY seq",
                )
                .bind(self.borrower.clone())
                .bind(line_id),
            )
            .await?;
        rows.into_iter().map(event_from_row).collect()
    }

    async fn place_hold(
        &mut self,
        line_id: &str,
        amount_minor: i64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let updated = self
            .execute(
                self.sql(
                    "UPDATE credit_lines SET held_minor = held_minor + $2, revision = \
                        revision + 1, updated_at_ms = $3 WHERE borrower_id = $4 AND id = $1 \
                        AND state = 'active' \
                        AND valid_from_ms <= $3 AND valid_until_ms > $3 AND $2 > 0 AND \
                        drawn_minor + held_minor + $2 <= limit_minor",
                )
                .bind(line_id)
                .bind(amount_minor)
                .bind(to_ms(now))
                .bind(self.borrower.clone()),
            )
            .await?;
        Ok(updated == 1)
    }

    async fn release_hold(
        &mut self,
        line_id: &str,
        amount_minor: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.move_amount(RELEASE_HOLD, line_id, amount_minor, now)
            .await
    }

    async fn draw_hold(
        &mut self,
        line_id: &str,
        amount_minor: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.move_amount(DRAW_HOLD, line_id, amount_minor, now)
            .await
    }

    async fn repay_drawn(
        &mut self,
        line_id: &str,
        amount_minor: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.move_amount(REPAY_DRAWN, line_id, amount_minor, now)
            .await
    }
}

/// Moves of money already on a line; each refuses to take more than is there.
const RELEASE_HOLD: &str = "UPDATE credit_lines SET held_minor = held_minor - $2, \
     revision = revision + 1, updated_at_ms = $3 WHERE borrower_id = $4 AND id = $1 AND $2 > 0 \
     AND held_minor >= $2";
const DRAW_HOLD: &str = "UPDATE credit_lines SET held_minor = held_minor - $2, \
     drawn_minor = drawn_minor + $2, revision = revision + 1, updated_at_ms = $3 \
     WHERE borrower_id = $4 AND id = $1 AND $2 > 0 AND held_minor >= $2";
const REPAY_DRAWN: &str = "UPDATE credit_lines SET drawn_minor = drawn_minor - $2, \
     revision = revision + 1, updated_at_ms = $3 WHERE borrower_id = $4 AND id = $1 AND $2 > 0 \
     AND drawn_minor >= $2";

impl SqlUnitOfWork {
    /// Runs one of the moves above. Taking more than is held or drawn is a bug upstream, never
    /// something to ignore.
    async fn move_amount(
        &mut self,
        sql: &str,
        line_id: &str,
        amount_minor: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let updated = self
            .execute(
                self.sql(sql)
                    .bind(line_id)
                    .bind(amount_minor)
                    .bind(to_ms(now))
                    .bind(self.borrower.clone()),
            )
            .await?;
        if updated == 1 {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                table: "credit_lines",
                detail: format!(
                    "line {line_id} has less held or drawn than the {amount_minor} being moved"
                ),
            })
        }
    }

    async fn append_line_event(&mut self, event: &LineEvent) -> Result<(), StoreError> {
        self.execute(
            self.sql(
                "INSERT INTO credit_line_events (line_id, seq, borrower_id, kind, \
                limit_before_minor, limit_after_minor, reason, actor, note, at_ms) \
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&event.line_id)
            .bind(event.seq)
            .bind(self.borrower.clone())
            .bind(kind_str(event.kind))
            .bind(event.limit_before_minor)
            .bind(event.limit_after_minor)
            .bind(event.reason.map(Reason::code))
            .bind(&event.actor)
            .bind(event.note.as_deref())
            .bind(to_ms(event.at)),
        )
        .await?;
        Ok(())
    }
}

fn state_of(status: &LineStatus) -> &'static str {
    match status {
        LineStatus::Active => "active",
        LineStatus::Frozen { .. } => "frozen",
        LineStatus::Closed { .. } => "closed",
    }
}

fn status_json(status: &LineStatus) -> Result<String, StoreError> {
    serde_json::to_string(status).map_err(|e| StoreError::corrupt("credit_lines", e))
}

fn kind_str(kind: LineEventKind) -> &'static str {
    match kind {
        LineEventKind::Granted => "granted",
        LineEventKind::Increased => "increased",
        LineEventKind::Decreased => "decreased",
        LineEventKind::Frozen => "frozen",
        LineEventKind::FreezeKept => "freeze_kept",
        LineEventKind::Unfrozen => "unfrozen",
        LineEventKind::Closed => "closed",
        LineEventKind::Expired => "expired",
    }
}

pub(crate) fn line_from_row(row: LineRow) -> Result<CreditLine, StoreError> {
    const T: &str = "credit_lines";
    Ok(CreditLine {
        currency: Currency::parse(&row.currency)
            .ok_or_else(|| StoreError::corrupt(T, format!("unknown currency {}", row.currency)))?,
        status: serde_json::from_str(&row.status).map_err(|e| StoreError::corrupt(T, e))?,
        valid_from: from_ms(T, row.valid_from_ms)?,
        valid_until: from_ms(T, row.valid_until_ms)?,
        created_at: from_ms(T, row.created_at_ms)?,
        updated_at: from_ms(T, row.updated_at_ms)?,
        id: row.id,
        borrower_id: row.borrower_id,
        limit_minor: row.limit_minor,
        drawn_minor: row.drawn_minor,
        held_minor: row.held_minor,
        rate_tier: row.rate_tier,
        revision: row.revision,
    })
}

fn event_from_row(row: EventRow) -> Result<LineEvent, StoreError> {
    const T: &str = "credit_line_events";
    let kind = serde_json::from_value(serde_json::Value::String(row.kind.clone()))
        .map_err(|e| StoreError::corrupt(T, format!("kind {}: {e}", row.kind)))?;
    let reason = row
        .reason
        .map(|code| {
            Reason::parse(&code)
                .ok_or_else(|| StoreError::corrupt(T, format!("unknown reason {code}")))
        })
        .transpose()?;
    Ok(LineEvent {
        line_id: row.line_id,
        seq: row.seq,
        kind,
        limit_before_minor: row.limit_before_minor,
        limit_after_minor: row.limit_after_minor,
        reason,
        actor: row.actor,
        note: row.note,
        at: from_ms(T, row.at_ms)?,
    })
}
