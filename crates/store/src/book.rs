//! Reads across the whole book of lines and loans, for the work that walks it: close of
//! business, the sweeps that resume drawdowns left in flight, the daily review of open lines.
//! They are the deliberate exceptions to "one unit of work, one borrower" (issue #16): each is
//! a read marked `across borrowers` for the SQL lint (testkit/src/sql_lint.rs), and what it
//! finds is then changed one borrower at a time, in units begun for that borrower, except
//! close of business's servicing write ([`BookRepository::update_servicing`]).

use async_trait::async_trait;
use lendcore_domain::credit_line::CreditLine;
use lendcore_domain::drawdown::Drawdown;

use crate::StoreError;
use crate::credit_lines::{LINE_COLUMNS, LineRow, line_from_row};
use crate::drawdowns::{BodyRow, body};
use crate::unit_of_work::{SqlUnitOfWork, on_tx};

/// Rows per multi-row statement: well under both databases' limits on bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

#[async_trait]
pub trait BookRepository {
    /// The next `limit` lines not closed, by id after `after`, whoever's they are.
    async fn open_credit_lines_after(
        &mut self,
        after: &str,
        limit: u32,
    ) -> Result<Vec<CreditLine>, StoreError>;

    /// Drawdowns in `state` (e.g. `disbursing`) as `(borrower, id)`, by id, `limit` after
    /// `after`: each is then taken up in a unit of work of its borrower.
    async fn drawdown_ids_in_state(
        &mut self,
        state: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// The next `limit` active loans, by id after `after`, that close of business has not yet
    /// closed for `date`: how close of business walks the book, a batch at a time. Not
    /// locked: close of business reads them before its write transaction and writes them back
    /// only at the revision it read ([`Self::update_servicing`]).
    async fn loans_to_close(
        &mut self,
        date: lendcore_domain::calendar::Date,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Drawdown>, StoreError>;

    /// How many drawdowns are in `state` (an index count, cheap on a large book).
    async fn count_drawdowns_in_state(&mut self, state: &str) -> Result<u64, StoreError>;

    /// Writes the servicing of several loans (what close of business keeps: accruals,
    /// penalties, delinquency, the date closed), each read at the revision given. Their state
    /// and `updated_at` are not written: servicing changes neither, and leaving them alone
    /// spares the indexes on them. [`StoreError::Stale`] if any loan moved meanwhile. Each row
    /// is found by its borrower and id, but one statement writes loans of many borrowers: the
    /// write left to split by borrower (docs/SCALING.md, decision 5).
    async fn update_servicing(&mut self, changed: &[(Drawdown, i64)]) -> Result<(), StoreError>;
}

#[async_trait]
impl BookRepository for SqlUnitOfWork {
    async fn open_credit_lines_after(
        &mut self,
        after: &str,
        limit: u32,
    ) -> Result<Vec<CreditLine>, StoreError> {
        let sql = format!(
            "/* across borrowers: open lines */ SELECT {LINE_COLUMNS} FROM credit_lines \
             WHERE id > $1 AND state <> 'closed' ORDER BY id LIMIT $2"
        );
        let rows: Vec<LineRow> = self
            .fetch_all(self.sql(&sql).bind(after).bind(i64::from(limit)))
            .await?;
        rows.into_iter().map(line_from_row).collect()
    }

    async fn drawdown_ids_in_state(
        &mut self,
        state: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.fetch_all(
            self.sql(
                "/* across borrowers: drawdowns by state */ SELECT borrower_id, id \
                 FROM drawdowns WHERE state = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(state)
            .bind(after)
            .bind(i64::from(limit)),
        )
        .await
    }

    async fn loans_to_close(
        &mut self,
        date: lendcore_domain::calendar::Date,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Drawdown>, StoreError> {
        // ISO dates compare as text in date order.
        let sql = "/* across borrowers: loans to close */ SELECT d.body, q.quote FROM drawdowns d \
                   LEFT JOIN drawdown_quotes q ON q.borrower_id = d.borrower_id \
                   AND q.drawdown_id = d.id \
                   WHERE d.state = 'active' AND d.id > $1 \
                   AND (d.closed_through IS NULL OR d.closed_through < $2) ORDER BY d.id LIMIT $3";
        let rows: Vec<BodyRow> = self
            .fetch_all(
                self.sql(sql)
                    .bind(after)
                    .bind(date.to_string())
                    .bind(i64::from(limit)),
            )
            .await?;
        rows.into_iter().map(BodyRow::parse).collect()
    }

    async fn count_drawdowns_in_state(&mut self, state: &str) -> Result<u64, StoreError> {
        let count: i64 = self
            .fetch_one::<(_,)>(
                self.sql(
                    "/* across borrowers: drawdowns by state */ SELECT COUNT(*) FROM drawdowns \
                     WHERE state = $1",
                )
                .bind(state),
            )
            .await
            .map(|(v,)| v)?;
        u64::try_from(count).map_err(|e| StoreError::corrupt("drawdowns", e))
    }

    async fn update_servicing(&mut self, changed: &[(Drawdown, i64)]) -> Result<(), StoreError> {
        for chunk in changed.chunks(ROWS_PER_STATEMENT) {
            // One statement per chunk; VALUES columns are column1… on both databases.
            let sql = format!(
                "UPDATE drawdowns SET body = v.column2, revision = v.column3, \
                 closed_through = v.column4 FROM (VALUES {}) AS v \
                 WHERE drawdowns.borrower_id = v.column6 AND drawdowns.id = v.column1 \
                 AND drawdowns.revision = v.column5",
                crate::placeholders(self.backend(), chunk.len(), 6)
            );
            let mut bodies = Vec::with_capacity(chunk.len());
            for (drawdown, _) in chunk {
                bodies.push(body(drawdown)?);
            }
            let updated = on_tx!(self, c => {
                let mut query = sqlx::query(&sql);
                for ((drawdown, read_revision), body) in chunk.iter().zip(&bodies) {
                    query = query
                        .bind(&drawdown.id)
                        .bind(body)
                        .bind(drawdown.revision)
                        .bind(drawdown.servicing.last_close.map(|d| d.to_string()))
                        .bind(*read_revision)
                        .bind(&drawdown.borrower_id);
                }
                query.execute(c).await.map(|r| r.rows_affected())
            })?;
            if updated != chunk.len() as u64 {
                return Err(StoreError::Stale("drawdown"));
            }
        }
        Ok(())
    }
}
