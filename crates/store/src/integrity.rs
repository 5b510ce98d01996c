//! Whole-database checks, for `lendcore verify` after a restore (or at any time): each names, by
//! id, what breaks one of the book's rules, and finds nothing in a sound database. They scan
//! whole tables, so they belong to an operator's command, never to a request.

use async_trait::async_trait;

use crate::StoreError;
use crate::unit_of_work::{SqlUnitOfWork, on_tx};

#[async_trait]
pub trait IntegrityRepository {
    /// Lines whose drawn or held amount is negative, or whose drawn and held together exceed
    /// the limit.
    async fn overdrawn_lines(&mut self, limit: u32) -> Result<Vec<String>, StoreError>;

    /// Lines whose held amount is not the sum of their drawdowns that hold money (held for
    /// review, queued for maintenance, disbursing, in manual review).
    async fn lines_with_unexplained_holds(&mut self, limit: u32)
    -> Result<Vec<String>, StoreError>;

    /// Lines whose drawn amount is not the principal their loans owe in the posted ledger.
    async fn lines_drawn_unlike_their_ledger(
        &mut self,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Drawdowns in flight that no live job will move on: disbursing or queued for maintenance
    /// without their payout job, held for review without the job that ends an unsettled hold.
    async fn drawdowns_in_flight_without_a_job(
        &mut self,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Decision records after `after` (borrower, id) in that order, at most `limit`, each with
    /// the digest its audit entry keeps (sealed, or still pending), if it has one.
    async fn decisions_with_digests(
        &mut self,
        after: (&str, &str),
        limit: u32,
    ) -> Result<Vec<DecisionDigest>, StoreError>;
}

/// A decision record as stored and the digest the audit chain keeps of it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DecisionDigest {
    pub borrower_id: String,
    pub id: String,
    pub record: String,
    pub record_sha256: Option<String>,
}

/// The drawdown states in which an amount is held on the line.
const HOLDING: &str =
    "('held_for_review', 'queued_for_maintenance', 'disbursing', 'manual_review')";

#[async_trait]
impl IntegrityRepository for SqlUnitOfWork {
    async fn overdrawn_lines(&mut self, limit: u32) -> Result<Vec<String>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(
            "/* across borrowers: book check */ SELECT id FROM credit_lines \
             WHERE drawn_minor < 0 OR held_minor < 0 OR drawn_minor + held_minor > limit_minor \
             ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(c)
        .await)?)
    }

    async fn lines_with_unexplained_holds(
        &mut self,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "/* across borrowers: book check */ SELECT l.id FROM credit_lines l \
             LEFT JOIN (SELECT borrower_id, line_id, SUM(CAST(json_amount AS BIGINT)) AS held \
               FROM (SELECT borrower_id, line_id, {amount} AS json_amount FROM drawdowns \
                 WHERE state IN {HOLDING}) AS holding GROUP BY borrower_id, line_id) AS h \
               ON h.borrower_id = l.borrower_id AND h.line_id = l.id \
             WHERE l.held_minor <> COALESCE(h.held, 0) ORDER BY l.id LIMIT $1",
            amount = self.json_field("body", "amount_minor"),
        );
        Ok(on_tx!(self, c => sqlx::query_scalar(&sql)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await)?)
    }

    async fn lines_drawn_unlike_their_ledger(
        &mut self,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(
            "/* across borrowers: book check */ SELECT l.id FROM credit_lines l \
             LEFT JOIN (SELECT d.borrower_id, d.line_id, \
                   SUM(p.debit_minor - p.credit_minor) AS owed \
                 FROM drawdowns d JOIN ledger_postings p \
                   ON p.account_owner = d.id AND p.account_kind = 'principal_receivable' \
                  AND p.layer = 'posted' \
                 GROUP BY d.borrower_id, d.line_id) AS o \
               ON o.borrower_id = l.borrower_id AND o.line_id = l.id \
             WHERE l.drawn_minor <> COALESCE(o.owed, 0) ORDER BY l.id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(c)
        .await)?)
    }

    async fn drawdowns_in_flight_without_a_job(
        &mut self,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.flush_pending().await?;
        Ok(on_tx!(self, c => sqlx::query_scalar(
            "/* across borrowers: book check */ SELECT d.id FROM drawdowns d \
             WHERE d.state IN ('disbursing', 'queued_for_maintenance', 'held_for_review') \
               AND NOT EXISTS (SELECT 1 FROM jobs j \
                 WHERE j.id = CASE d.state WHEN 'held_for_review' THEN 'hold-expiry:' || d.id \
                                           ELSE 'disburse:' || d.id END \
                   AND j.status IN ('pending', 'running')) \
             ORDER BY d.id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(c)
        .await)?)
    }

    async fn decisions_with_digests(
        &mut self,
        after: (&str, &str),
        limit: u32,
    ) -> Result<Vec<DecisionDigest>, StoreError> {
        // The sealed entry through the audit log's index by subject; the pending ones (a few
        // seconds' worth) are looked through only for a decision not sealed yet.
        let sql = format!(
            "SELECT d.borrower_id, d.id, d.record, COALESCE( \
               (SELECT {sealed} FROM audit_log a WHERE a.subject_type = 'decision' \
                  AND a.subject_id = d.id AND a.action = 'decision.made' LIMIT 1), \
               (SELECT {pending} FROM audit_pending p WHERE p.subject_type = 'decision' \
                  AND p.subject_id = d.id AND p.action = 'decision.made' LIMIT 1) \
             ) AS record_sha256 \
             FROM credit_decisions d \
             WHERE d.borrower_id > $1 OR (d.borrower_id = $1 AND d.id > $2) \
             ORDER BY d.borrower_id, d.id LIMIT $3",
            sealed = self.json_field("a.detail", "record_sha256"),
            pending = self.json_field("p.detail", "record_sha256"),
        );
        Ok(on_tx!(self, c => sqlx::query_as(&sql)
            .bind(after.0)
            .bind(after.1)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await)?)
    }
}

impl SqlUnitOfWork {
    /// A number at the top level of a JSON text column, as text.
    fn json_field(&self, column: &str, field: &str) -> String {
        match self.backend() {
            crate::Backend::Sqlite => format!("json_extract({column}, '$.{field}')"),
            crate::Backend::Postgres => format!("CAST({column} AS JSONB) ->> '{field}'"),
        }
    }
}
