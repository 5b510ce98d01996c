//! Alert rules, the signals they count (by minute, rolled up from the audit chain) and the
//! alerts they raise. The operators' tables: no borrower's rows.

use async_trait::async_trait;
use lendcore_domain::Timestamp;

use crate::StoreError;
use crate::time::{from_ms, from_opt_ms, to_ms};
use crate::unit_of_work::{SqlUnitOfWork, on_tx};

/// A rule as stored: its document is the rule as written, validated before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlertRule {
    pub name: String,
    pub document: String,
    pub revision: i64,
    pub updated_by: String,
    pub updated_at: Timestamp,
}

/// An alert of one rule and group; `body` is its state and evidence as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlert {
    pub id: String,
    pub rule: String,
    pub grouping: String,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    pub body: String,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
}

/// One minute's count of one label set of a signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalCount {
    pub signal: String,
    pub minute: Timestamp,
    /// The labels as sorted JSON, e.g. `{"reason":"channel.timeout","topic":"drawdown.ended"}`.
    pub labels: String,
    pub count: i64,
    /// A few of the records counted (the API path that shows each, e.g. `/v1/drawdowns/ID`),
    /// the latest rolled up.
    pub examples: Vec<String>,
}

#[async_trait]
pub trait AlertRepository {
    /// Inserts a rule (`expected_revision` `None`), or replaces the one at that revision;
    /// false when the name is taken, or the rule is gone or was changed meanwhile.
    async fn save_alert_rule(
        &mut self,
        rule: &StoredAlertRule,
        expected_revision: Option<i64>,
    ) -> Result<bool, StoreError>;

    async fn alert_rules(&mut self) -> Result<Vec<StoredAlertRule>, StoreError>;

    async fn find_alert_rule(&mut self, name: &str) -> Result<Option<StoredAlertRule>, StoreError>;

    /// False when there was none.
    async fn delete_alert_rule(&mut self, name: &str) -> Result<bool, StoreError>;

    /// The last audit seq rolled up into the counts; 0 before the first roll-up.
    async fn alert_cursor(&mut self) -> Result<i64, StoreError>;

    /// Records that the one-time step `name` is done: true the first time, false after.
    async fn mark_once(&mut self, name: &str) -> Result<bool, StoreError>;

    /// Moves the mark `name` up to `value`: false when it is there or past it already.
    async fn advance_alert_mark(&mut self, name: &str, value: i64) -> Result<bool, StoreError>;

    /// Adds `counts` to what is kept and moves the cursor to `seq`, together.
    async fn add_signal_counts(
        &mut self,
        counts: &[SignalCount],
        seq: i64,
    ) -> Result<(), StoreError>;

    /// Each label set's total of `signal` in `[from, to)`.
    async fn signal_counts(
        &mut self,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, i64)>, StoreError>;

    /// Every minute's count of `signal` in `[from, to)`, oldest first, with its examples.
    async fn signal_minutes(
        &mut self,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SignalCount>, StoreError>;

    /// Forgets counts of minutes before `before`; returns how many rows went.
    async fn prune_signal_counts(&mut self, before: Timestamp) -> Result<u64, StoreError>;

    /// Alerts not resolved.
    async fn open_alerts(&mut self) -> Result<Vec<StoredAlert>, StoreError>;

    /// Inserts or replaces an alert by id.
    async fn save_alert(&mut self, alert: &StoredAlert) -> Result<(), StoreError>;

    /// Forgets an alert (a breach that cleared before it fired).
    async fn delete_alert(&mut self, id: &str) -> Result<(), StoreError>;

    /// The latest alerts changed, newest first; `state` narrows to one state.
    async fn list_alerts(
        &mut self,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, StoreError>;
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    name: String,
    document: String,
    revision: i64,
    updated_by: String,
    updated_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: String,
    rule: String,
    grouping: String,
    state: String,
    body: String,
    opened_at_ms: i64,
    updated_at_ms: i64,
    resolved_at_ms: Option<i64>,
}

fn rule_from_row(row: RuleRow) -> Result<StoredAlertRule, StoreError> {
    Ok(StoredAlertRule {
        updated_at: from_ms("alert_rules", row.updated_at_ms)?,
        name: row.name,
        document: row.document,
        revision: row.revision,
        updated_by: row.updated_by,
    })
}

fn alert_from_row(row: AlertRow) -> Result<StoredAlert, StoreError> {
    const T: &str = "alerts";
    Ok(StoredAlert {
        opened_at: from_ms(T, row.opened_at_ms)?,
        updated_at: from_ms(T, row.updated_at_ms)?,
        resolved_at: from_opt_ms(T, row.resolved_at_ms)?,
        id: row.id,
        rule: row.rule,
        grouping: row.grouping,
        state: row.state,
        body: row.body,
    })
}

const SELECT_RULE: &str =
    "SELECT name, document, revision, updated_by, updated_at_ms FROM alert_rules";
const SELECT_ALERT: &str = "SELECT id, rule, grouping, state, body, opened_at_ms, \
     updated_at_ms, resolved_at_ms FROM alerts";

/// Rows per INSERT of counts: four parameters each, far under either store's limit.
const COUNTS_PER_STATEMENT: usize = 500;

#[async_trait]
impl AlertRepository for SqlUnitOfWork {
    async fn save_alert_rule(
        &mut self,
        rule: &StoredAlertRule,
        expected_revision: Option<i64>,
    ) -> Result<bool, StoreError> {
        let saved = match expected_revision {
            None => on_tx!(self, c => sqlx::query(
                "INSERT INTO alert_rules (name, document, revision, updated_by, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&rule.name)
            .bind(&rule.document)
            .bind(rule.revision)
            .bind(&rule.updated_by)
            .bind(to_ms(rule.updated_at))
            .execute(c)
            .await
            .map(|done| done.rows_affected()))?,
            Some(expected) => on_tx!(self, c => sqlx::query(
                "UPDATE alert_rules SET document = $2, revision = $3, updated_by = $4, \
                 updated_at_ms = $5 WHERE name = $1 AND revision = $6",
            )
            .bind(&rule.name)
            .bind(&rule.document)
            .bind(rule.revision)
            .bind(&rule.updated_by)
            .bind(to_ms(rule.updated_at))
            .bind(expected)
            .execute(c)
            .await
            .map(|done| done.rows_affected()))?,
        };
        Ok(saved == 1)
    }

    async fn alert_rules(&mut self) -> Result<Vec<StoredAlertRule>, StoreError> {
        let sql = format!("{SELECT_RULE} ORDER BY name");
        let rows: Vec<RuleRow> = on_tx!(self, c => sqlx::query_as(&sql).fetch_all(c).await)?;
        rows.into_iter().map(rule_from_row).collect()
    }

    async fn find_alert_rule(&mut self, name: &str) -> Result<Option<StoredAlertRule>, StoreError> {
        let sql = format!("{SELECT_RULE} WHERE name = $1");
        let row: Option<RuleRow> =
            on_tx!(self, c => sqlx::query_as(&sql).bind(name).fetch_optional(c).await)?;
        row.map(rule_from_row).transpose()
    }

    async fn delete_alert_rule(&mut self, name: &str) -> Result<bool, StoreError> {
        let done = on_tx!(self, c => sqlx::query("DELETE FROM alert_rules WHERE name = $1")
            .bind(name)
            .execute(c)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    async fn alert_cursor(&mut self) -> Result<i64, StoreError> {
        let seq: Option<i64> = on_tx!(self, c => sqlx::query_scalar(
            "SELECT value FROM alert_marks WHERE name = 'audit'",
        )
        .fetch_optional(c)
        .await)?;
        Ok(seq.unwrap_or(0))
    }

    async fn advance_alert_mark(&mut self, name: &str, value: i64) -> Result<bool, StoreError> {
        let moved = on_tx!(self, c => sqlx::query(
            "INSERT INTO alert_marks (name, value) VALUES ($1, $2) ON CONFLICT (name) \
             DO UPDATE SET value = excluded.value WHERE alert_marks.value < excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(moved == 1)
    }

    async fn mark_once(&mut self, name: &str) -> Result<bool, StoreError> {
        let done = on_tx!(self, c => sqlx::query(
            "INSERT INTO alert_marks (name, value) VALUES ($1, 1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    async fn add_signal_counts(
        &mut self,
        counts: &[SignalCount],
        seq: i64,
    ) -> Result<(), StoreError> {
        for chunk in counts.chunks(COUNTS_PER_STATEMENT) {
            let values = crate::placeholders(self.backend(), chunk.len(), 5);
            // The examples are the latest page's, unless it brought none.
            let sql = format!(
                "INSERT INTO alert_counts (signal, minute_ms, labels, count, examples) \
                 VALUES {values} ON CONFLICT (signal, minute_ms, labels) \
                 DO UPDATE SET count = alert_counts.count + excluded.count, \
                 examples = CASE WHEN excluded.examples = '[]' THEN alert_counts.examples \
                 ELSE excluded.examples END"
            );
            let examples: Vec<String> = chunk
                .iter()
                .map(|count| serde_json::to_string(&count.examples))
                .collect::<Result<_, _>>()
                .map_err(|e| StoreError::corrupt("alert_counts", e))?;
            on_tx!(self, c => {
                let mut query = sqlx::query(&sql);
                for (count, examples) in chunk.iter().zip(&examples) {
                    query = query
                        .bind(&count.signal)
                        .bind(to_ms(count.minute))
                        .bind(&count.labels)
                        .bind(count.count)
                        .bind(examples);
                }
                query.execute(c).await.map(drop)
            })?;
        }
        on_tx!(self, c => sqlx::query(
            "INSERT INTO alert_marks (name, value) VALUES ('audit', $1) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(seq)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn signal_counts(
        &mut self,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = on_tx!(self, c => sqlx::query_as(
            "SELECT labels, CAST(SUM(count) AS BIGINT) FROM alert_counts \
             WHERE signal = $1 AND minute_ms >= $2 AND minute_ms < $3 \
             GROUP BY labels ORDER BY labels",
        )
        .bind(signal)
        .bind(to_ms(from))
        .bind(to_ms(to))
        .fetch_all(c)
        .await)?;
        Ok(rows)
    }

    async fn signal_minutes(
        &mut self,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SignalCount>, StoreError> {
        let rows: Vec<(i64, String, i64, String)> = on_tx!(self, c => sqlx::query_as(
            "SELECT minute_ms, labels, count, examples FROM alert_counts \
             WHERE signal = $1 AND minute_ms >= $2 AND minute_ms < $3 \
             ORDER BY minute_ms, labels",
        )
        .bind(signal)
        .bind(to_ms(from))
        .bind(to_ms(to))
        .fetch_all(c)
        .await)?;
        rows.into_iter()
            .map(|(minute_ms, labels, count, examples)| {
                Ok(SignalCount {
                    signal: signal.to_owned(),
                    minute: from_ms("alert_counts", minute_ms)?,
                    count,
                    examples: serde_json::from_str(&examples)
                        .map_err(|e| StoreError::corrupt("alert_counts", e))?,
                    labels,
                })
            })
            .collect()
    }

    async fn prune_signal_counts(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        Ok(
            on_tx!(self, c => sqlx::query("DELETE FROM alert_counts WHERE minute_ms < $1")
            .bind(to_ms(before))
            .execute(c)
            .await
            .map(|done| done.rows_affected()))?,
        )
    }

    async fn open_alerts(&mut self) -> Result<Vec<StoredAlert>, StoreError> {
        let sql = format!("{SELECT_ALERT} WHERE state <> 'resolved' ORDER BY rule, grouping");
        let rows: Vec<AlertRow> = on_tx!(self, c => sqlx::query_as(&sql).fetch_all(c).await)?;
        rows.into_iter().map(alert_from_row).collect()
    }

    async fn save_alert(&mut self, alert: &StoredAlert) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO alerts (id, rule, grouping, state, body, opened_at_ms, updated_at_ms, \
               resolved_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, body = excluded.body, \
               updated_at_ms = excluded.updated_at_ms, resolved_at_ms = excluded.resolved_at_ms",
        )
        .bind(&alert.id)
        .bind(&alert.rule)
        .bind(&alert.grouping)
        .bind(&alert.state)
        .bind(&alert.body)
        .bind(to_ms(alert.opened_at))
        .bind(to_ms(alert.updated_at))
        .bind(alert.resolved_at.map(to_ms))
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn delete_alert(&mut self, id: &str) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query("DELETE FROM alerts WHERE id = $1")
            .bind(id)
            .execute(c)
            .await
            .map(drop))?;
        Ok(())
    }

    async fn list_alerts(
        &mut self,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let sql = match state {
            Some(_) => {
                format!("{SELECT_ALERT} WHERE state = $2 ORDER BY updated_at_ms DESC, id LIMIT $1")
            }
            None => format!("{SELECT_ALERT} ORDER BY updated_at_ms DESC, id LIMIT $1"),
        };
        let rows: Vec<AlertRow> = on_tx!(self, c => {
            let query = sqlx::query_as(&sql).bind(i64::from(limit));
            match state {
                Some(state) => query.bind(state).fetch_all(c).await,
                None => query.fetch_all(c).await,
            }
        })?;
        rows.into_iter().map(alert_from_row).collect()
    }
}
