//! Drawdowns, their timelines and their payout attempts. The drawdown is stored as JSON beside
//! the columns queries need, except its quote, which never changes once given and is written
//! once to a table of its own; every change of state appends a step to its timeline in the
//! same unit of work.

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::drawdown::{Drawdown, PayoutAnswer, PayoutCall, Transition};
use lendcore_domain::reasons::Reason;

use crate::StoreError;
use crate::sql::from_row;
use crate::time::{from_ms, from_opt_ms, to_ms};
use crate::unit_of_work::SqlUnitOfWork;

/// One call to a payment channel, recorded before it is made and completed after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutAttempt {
    pub drawdown_id: String,
    pub attempt: i64,
    pub channel_id: String,
    /// The channel's idempotency key: the same for every call about this drawdown on this
    /// channel, so a resend can never pay twice.
    pub reference: String,
    pub action: PayoutCall,
    /// What came of it; `None` while the call is in flight (or its process died mid-call).
    pub outcome: Option<PayoutAnswer>,
    pub detail: Option<String>,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

#[async_trait]
pub trait DrawdownRepository {
    async fn insert_drawdown(
        &mut self,
        drawdown: &Drawdown,
        token_hash: &str,
        step: &Transition,
    ) -> Result<(), StoreError>;

    /// Writes a changed drawdown read at `read_revision`, with the step that changed its state
    /// if it did (a repayment changes what is paid, not the state).
    async fn update_drawdown(
        &mut self,
        drawdown: &Drawdown,
        read_revision: i64,
        step: Option<&Transition>,
    ) -> Result<(), StoreError>;

    async fn find_drawdown(&mut self, id: &str) -> Result<Option<Drawdown>, StoreError>;

    /// The drawdown a confirmation token was issued for, with its timeline so far, in one
    /// read: a confirmation answers with the timeline, the step it adds last, and reads back
    /// nothing it wrote.
    async fn find_drawdown_by_token(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<(Drawdown, Vec<Transition>)>, StoreError>;

    /// Reads a drawdown to change it, locking its row until the unit of work ends (PostgreSQL;
    /// SQLite's single writer serialises anyway), so concurrent changes queue instead of racing.
    async fn lock_drawdown(&mut self, id: &str) -> Result<Option<Drawdown>, StoreError>;

    async fn drawdown_timeline(&mut self, id: &str) -> Result<Vec<Transition>, StoreError>;

    /// Records a call about to be made; returns its attempt number.
    async fn start_payout_attempt(
        &mut self,
        drawdown: &Drawdown,
        channel_id: &str,
        reference: &str,
        action: PayoutCall,
        now: Timestamp,
    ) -> Result<i64, StoreError>;

    async fn finish_payout_attempt(
        &mut self,
        drawdown_id: &str,
        attempt: i64,
        outcome: PayoutAnswer,
        detail: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    async fn payout_attempts(
        &mut self,
        drawdown_id: &str,
    ) -> Result<Vec<PayoutAttempt>, StoreError>;
}

struct TransitionRow {
    from_state: String,
    to_state: String,
    reason: Option<String>,
    at_ms: i64,
    actor: Option<String>,
    note: Option<String>,
}
from_row!(TransitionRow {
    from_state,
    to_state,
    reason,
    at_ms,
    actor,
    note
});

/// A drawdown's row joined with one step of its timeline (none when it has none).
struct WithStepRow {
    body: String,
    quote: Option<String>,
    from_state: Option<String>,
    to_state: Option<String>,
    reason: Option<String>,
    at_ms: Option<i64>,
    actor: Option<String>,
    note: Option<String>,
}
from_row!(WithStepRow {
    body,
    quote,
    from_state,
    to_state,
    reason,
    at_ms,
    actor,
    note
});

fn transition(row: TransitionRow) -> Result<Transition, StoreError> {
    const T: &str = "drawdown_transitions";
    Ok(Transition {
        from: row.from_state,
        to: row.to_state,
        reason: row
            .reason
            .map(|code| {
                Reason::parse(&code)
                    .ok_or_else(|| StoreError::corrupt(T, format!("unknown reason {code}")))
            })
            .transpose()?,
        at: from_ms(T, row.at_ms)?,
        actor: row.actor,
        note: row.note,
    })
}

struct AttemptRow {
    drawdown_id: String,
    attempt: i64,
    channel_id: String,
    reference: String,
    action: String,
    outcome: Option<String>,
    detail: Option<String>,
    started_at_ms: i64,
    ended_at_ms: Option<i64>,
}
from_row!(AttemptRow {
    drawdown_id,
    attempt,
    channel_id,
    reference,
    action,
    outcome,
    detail,
    started_at_ms,
    ended_at_ms
});

#[async_trait]
impl DrawdownRepository for SqlUnitOfWork {
    async fn insert_drawdown(
        &mut self,
        drawdown: &Drawdown,
        token_hash: &str,
        step: &Transition,
    ) -> Result<(), StoreError> {
        self.owns("drawdown", &drawdown.borrower_id)?;
        self.execute(
            self.sql(
                "INSERT INTO drawdowns (id, line_id, borrower_id, state, body, \
                    token_hash, revision, created_at_ms, updated_at_ms) VALUES ($1, $2, \
                    $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&drawdown.id)
            .bind(&drawdown.line_id)
            .bind(self.borrower.clone())
            .bind(drawdown.status.name())
            .bind(body(drawdown)?)
            .bind(token_hash)
            .bind(drawdown.revision)
            .bind(to_ms(drawdown.created_at))
            .bind(to_ms(drawdown.updated_at)),
        )
        .await?;
        let quote = serde_json::to_string(&drawdown.quote)
            .map_err(|e| StoreError::corrupt("drawdown_quotes", e))?;
        self.execute(
            self.sql(
                "INSERT INTO drawdown_quotes (drawdown_id, borrower_id, quote) VALUES \
                    ($1, $2, $3)",
            )
            .bind(&drawdown.id)
            .bind(self.borrower.clone())
            .bind(&quote),
        )
        .await?;
        self.append_step(drawdown, step).await
    }

    async fn update_drawdown(
        &mut self,
        drawdown: &Drawdown,
        read_revision: i64,
        step: Option<&Transition>,
    ) -> Result<(), StoreError> {
        self.owns("drawdown", &drawdown.borrower_id)?;
        let update = "UPDATE drawdowns SET state = $1, body = $2, revision = $3, \
             updated_at_ms = $4, closed_through = $5 WHERE borrower_id = $8 AND id = $6 \
             AND revision = $7";
        // On PostgreSQL the step goes in the same round trip: the UPDATE as a data-modifying
        // part, the step inserted from the row it returns, so a stale read inserts nothing
        // and counts no row. (SQLite's writer runs both statements itself, at no hand-off.)
        let (sql, step_with_it) = match (self.backend(), step) {
            (crate::Backend::Postgres, Some(step)) => (
                format!(
                    "WITH updated AS ({update} RETURNING id) \
                     INSERT INTO drawdown_transitions (drawdown_id, seq, borrower_id, from_state, \
                     to_state, reason, at_ms, actor, note) SELECT u.id, COALESCE((SELECT \
                     MAX(t.seq) FROM drawdown_transitions t WHERE t.borrower_id = $8 \
                     AND t.drawdown_id = u.id), 0) + 1, $8, $9, $10, $11, $12, $13, $14 \
                     FROM updated u"
                ),
                Some(step),
            ),
            _ => (update.to_owned(), None),
        };
        let mut statement = self
            .sql(&sql)
            .bind(drawdown.status.name())
            .bind(body(drawdown)?)
            .bind(drawdown.revision)
            .bind(to_ms(drawdown.updated_at))
            .bind(drawdown.servicing.last_close.map(|d| d.to_string()))
            .bind(&drawdown.id)
            .bind(read_revision)
            .bind(self.borrower.clone());
        if let Some(step) = step_with_it {
            statement = statement
                .bind(&step.from)
                .bind(&step.to)
                .bind(step.reason.map(Reason::code))
                .bind(to_ms(step.at))
                .bind(&step.actor)
                .bind(&step.note);
        }
        let updated = self.execute(statement).await?;
        if updated != 1 {
            return Err(StoreError::Stale("drawdown"));
        }
        match (step, step_with_it) {
            (Some(step), None) => self.append_step(drawdown, step).await,
            (Some(_), Some(_)) | (None, _) => Ok(()),
        }
    }

    async fn find_drawdown(&mut self, id: &str) -> Result<Option<Drawdown>, StoreError> {
        self.one_drawdown(
            &format!("{SELECT_BODY} WHERE d.borrower_id = $1 AND d.id = $2"),
            id,
        )
        .await
    }

    async fn find_drawdown_by_token(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<(Drawdown, Vec<Transition>)>, StoreError> {
        // A row per step, each repeating the drawdown: a quote has one step, and only a quote
        // is confirmed.
        let rows: Vec<WithStepRow> = self
            .fetch_all(
                self.sql(
                    "SELECT d.body, q.quote, t.from_state, t.to_state, t.reason, t.at_ms, \
                        t.actor, t.note FROM drawdowns d LEFT JOIN drawdown_quotes q ON \
                        q.borrower_id = d.borrower_id AND q.drawdown_id = d.id \
                        LEFT JOIN drawdown_transitions t ON t.borrower_id = d.borrower_id \
                        AND t.drawdown_id = d.id WHERE d.borrower_id = $1 AND d.token_hash = $2 \
                        ORDER BY t.seq",
                )
                .bind(self.borrower.clone())
                .bind(token_hash),
            )
            .await?;
        let mut timeline = Vec::with_capacity(rows.len());
        let mut drawdown = None;
        for row in rows {
            if drawdown.is_none() {
                drawdown = Some(
                    BodyRow {
                        body: row.body,
                        quote: row.quote,
                    }
                    .parse()?,
                );
            }
            if let (Some(from_state), Some(to_state), Some(at_ms)) =
                (row.from_state, row.to_state, row.at_ms)
            {
                timeline.push(transition(TransitionRow {
                    from_state,
                    to_state,
                    reason: row.reason,
                    at_ms,
                    actor: row.actor,
                    note: row.note,
                })?);
            }
        }
        Ok(drawdown.map(|drawdown| (drawdown, timeline)))
    }

    async fn lock_drawdown(&mut self, id: &str) -> Result<Option<Drawdown>, StoreError> {
        // SQLite's single writer serialises anyway.
        let lock = match self.backend() {
            crate::Backend::Sqlite => "",
            crate::Backend::Postgres => " FOR UPDATE OF d",
        };
        self.one_drawdown(
            &format!("{SELECT_BODY} WHERE d.borrower_id = $1 AND d.id = $2{lock}"),
            id,
        )
        .await
    }

    async fn drawdown_timeline(&mut self, id: &str) -> Result<Vec<Transition>, StoreError> {
        let rows: Vec<TransitionRow> = self
            .fetch_all(
                self.sql(
                    "SELECT from_state, to_state, reason, at_ms, actor, note FROM \
                        drawdown_transitions WHERE borrower_id = $1 AND drawdown_id = $2 \
                        ORDER BY seq",
                )
                .bind(self.borrower.clone())
                .bind(id),
            )
            .await?;
        rows.into_iter().map(transition).collect()
    }

    async fn start_payout_attempt(
        &mut self,
        drawdown: &Drawdown,
        channel_id: &str,
        reference: &str,
        action: PayoutCall,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        // Numbered in the statement that writes it: no read of the last number first. Two
        // callers numbering at once collide on the key, and the loser takes the next number.
        self.owns("drawdown", &drawdown.borrower_id)?;
        let (next,): (i64,) = self
            .fetch_one(
                self.sql(
                    "INSERT INTO payout_attempts (drawdown_id, attempt, borrower_id, \
                    channel_id, reference, action, started_at_ms) \
                    SELECT $1, COALESCE(MAX(attempt), 0) + 1, $2, $3, $4, $5, $6 \
                    FROM payout_attempts WHERE borrower_id = $2 AND drawdown_id = $1 \
                    RETURNING attempt",
                )
                .bind(&drawdown.id)
                .bind(self.borrower.clone())
                .bind(channel_id)
                .bind(reference)
                .bind(action.as_str())
                .bind(to_ms(now)),
            )
            .await?;
        Ok(next)
    }

    async fn finish_payout_attempt(
        &mut self,
        drawdown_id: &str,
        attempt: i64,
        outcome: PayoutAnswer,
        detail: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let updated = self
            .execute(
                self.sql(
                    "UPDATE payout_attempts SET outcome = $1, detail = $2, ended_at_ms = $3 \
                    WHERE borrower_id = $6 AND drawdown_id = $4 AND attempt = $5",
                )
                .bind(outcome.as_str())
                .bind(detail)
                .bind(to_ms(now))
                .bind(drawdown_id)
                .bind(attempt)
                .bind(self.borrower.clone()),
            )
            .await?;
        // What a channel answered is evidence: an answer with no call to write it to is a
        // bug, never dropped quietly.
        if updated == 1 {
            Ok(())
        } else {
            Err(StoreError::corrupt(
                "payout_attempts",
                format!("no attempt {attempt} of drawdown {drawdown_id} to record its answer on"),
            ))
        }
    }

    async fn payout_attempts(
        &mut self,
        drawdown_id: &str,
    ) -> Result<Vec<PayoutAttempt>, StoreError> {
        let rows: Vec<AttemptRow> = self
            .fetch_all(
                self.sql(
                    "SELECT drawdown_id, attempt, channel_id, reference, action, outcome, \
                detail, started_at_ms, ended_at_ms FROM payout_attempts WHERE \
                borrower_id = $1 AND drawdown_id = $2 ORDER BY attempt",
                )
                .bind(self.borrower.clone())
                .bind(drawdown_id),
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                const T: &str = "payout_attempts";
                Ok(PayoutAttempt {
                    started_at: from_ms(T, row.started_at_ms)?,
                    ended_at: from_opt_ms(T, row.ended_at_ms)?,
                    drawdown_id: row.drawdown_id,
                    attempt: row.attempt,
                    channel_id: row.channel_id,
                    reference: row.reference,
                    action: PayoutCall::parse(&row.action)
                        .ok_or_else(|| StoreError::corrupt(T, format!("action {}", row.action)))?,
                    outcome: row
                        .outcome
                        .map(|o| {
                            PayoutAnswer::parse(&o)
                                .ok_or_else(|| StoreError::corrupt(T, format!("outcome {o}")))
                        })
                        .transpose()?,
                    detail: row.detail,
                })
            })
            .collect()
    }
}

impl SqlUnitOfWork {
    async fn append_step(
        &mut self,
        drawdown: &Drawdown,
        step: &Transition,
    ) -> Result<(), StoreError> {
        // The next number is found by the insert itself: one statement, not a read and a write.
        self.execute(
            self.sql(
                "INSERT INTO drawdown_transitions (drawdown_id, seq, borrower_id, \
                    from_state, to_state, reason, at_ms, actor, note) SELECT $1, \
                    COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8 FROM \
                    drawdown_transitions WHERE borrower_id = $2 AND drawdown_id = $1",
            )
            .bind(&drawdown.id)
            .bind(self.borrower.clone())
            .bind(&step.from)
            .bind(&step.to)
            .bind(step.reason.map(Reason::code))
            .bind(to_ms(step.at))
            .bind(&step.actor)
            .bind(&step.note),
        )
        .await?;
        Ok(())
    }
}

/// A drawdown's body with its quote, for a `WHERE` on `d` to follow.
const SELECT_BODY: &str = "SELECT d.body, q.quote FROM drawdowns d LEFT JOIN drawdown_quotes q \
     ON q.borrower_id = d.borrower_id AND q.drawdown_id = d.id";

impl SqlUnitOfWork {
    /// The borrower's drawdown `sql` (a [`SELECT_BODY`] with two parameters, the borrower and
    /// `key`) finds, if any.
    async fn one_drawdown(&mut self, sql: &str, key: &str) -> Result<Option<Drawdown>, StoreError> {
        let found: Option<BodyRow> = self
            .fetch_optional(self.sql(sql).bind(self.borrower.clone()).bind(key))
            .await?;
        found.map(BodyRow::parse).transpose()
    }
}

/// The drawdown as stored in its row: everything but the quote, which has its own table.
/// Written straight from the drawdown, with no JSON tree built in between: close of business
/// writes one for every loan every day, and a confirmation writes one while it holds SQLite's
/// writer. Taken apart field by field, so a field added to [`Drawdown`] does not compile here
/// until it is stored too.
pub(crate) fn body(drawdown: &Drawdown) -> Result<String, StoreError> {
    let Drawdown {
        id,
        line_id,
        borrower_id,
        product_code,
        product_version,
        currency,
        amount_minor,
        account,
        quote: _,
        status,
        paid,
        servicing,
        risk_policy,
        revision,
        created_at,
        updated_at,
    } = drawdown;
    serde_json::to_string(&StoredBody {
        id,
        line_id,
        borrower_id,
        product_code,
        product_version: *product_version,
        currency,
        amount_minor: *amount_minor,
        account,
        status,
        paid,
        servicing,
        risk_policy: risk_policy.as_ref(),
        revision: *revision,
        created_at,
        updated_at,
    })
    .map_err(|e| StoreError::corrupt("drawdowns", e))
}

/// [`Drawdown`] without its quote, serialized as the drawdown is.
#[derive(serde::Serialize)]
struct StoredBody<'a> {
    id: &'a str,
    line_id: &'a str,
    borrower_id: &'a str,
    product_code: &'a lendcore_domain::product::ProductCode,
    product_version: u32,
    currency: &'a lendcore_domain::money::Currency,
    amount_minor: i64,
    account: &'a str,
    status: &'a lendcore_domain::drawdown::DrawdownStatus,
    paid: &'a [lendcore_domain::drawdown::PaidInstallment],
    servicing: &'a lendcore_domain::drawdown::Servicing,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_policy: Option<&'a lendcore_domain::decision::PolicyRef>,
    revision: i64,
    created_at: &'a Timestamp,
    updated_at: &'a Timestamp,
}

/// A stored drawdown: its row's body and its quote, or none when the body still holds it (a
/// drawdown written by a process older than the quotes table).
pub(crate) struct BodyRow {
    pub(crate) body: String,
    pub(crate) quote: Option<String>,
}
from_row!(BodyRow { body, quote });

impl BodyRow {
    pub(crate) fn parse(self) -> Result<Drawdown, StoreError> {
        let corrupt = |e| StoreError::corrupt("drawdowns", e);
        let Some(quote) = self.quote else {
            return serde_json::from_str(&self.body).map_err(corrupt);
        };
        // The body is an object we wrote, never empty: the quote goes back in as its last field.
        let Some(open) = self.body.strip_suffix('}') else {
            return Err(StoreError::corrupt(
                "drawdowns",
                "body is not a JSON object",
            ));
        };
        let whole = format!("{open},\"quote\":{quote}}}");
        serde_json::from_str(&whole).map_err(corrupt)
    }
}
