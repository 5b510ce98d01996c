//! Drawdowns in two steps, as a borrower app uses them: a quote (the price and a confirmation
//! token that expires) and a confirmation (the token and an `Idempotency-Key`), which holds the
//! amount on the line and starts the payout. Every way it can end is written with its reason,
//! its step in the timeline and a notification in the outbox.

mod disburse;
mod expire;
pub mod held;
pub mod review;

use lendcore_domain::credit_line::LineView;
use lendcore_domain::decision::Decider;
use lendcore_domain::drawdown::{
    Confirmation, Drawdown, DrawdownStatus, PayoutAnswer, PayoutCall, RiskCheck, Transition,
};
use lendcore_domain::ledger::{Layer, LoanAccounts};
use lendcore_domain::product::{ProductCode, RepaymentMethod};
use lendcore_domain::reasons::{Language, Reason};
use lendcore_domain::topic::Topic;
use lendcore_store::{BorrowerUnit, NewJob, OutboxEvent, PayoutAttempt, UnitOfWork};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use disburse::DisburseHandler;
pub(crate) use disburse::hand_to_person;
pub use expire::ExpireHandler;

use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::jobs::kinds;
use crate::quotes::{self, QuoteRequest};
use crate::{Engine, EngineError, new_id, new_id_for};

/// Attempts at paying out before a person takes over.
const PAYOUT_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone)]
pub struct DrawdownRequest {
    pub line_id: String,
    pub product: ProductCode,
    pub amount_minor: i64,
    pub term: u32,
    pub split: Option<RepaymentMethod>,
    /// Where to pay the money.
    pub account: String,
}

/// A fresh quote, with the token that confirms it: shown once, stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quoted {
    pub drawdown: Drawdown,
    pub confirmation_token: String,
    /// Set when the credit policy asks a person to look before the payout: confirming holds
    /// the amount and the drawdown waits for that check. The reason as the borrower may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_before_payout: Option<Reason>,
    /// What the borrower is warned of (most of the limit in use, say); nothing is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<lendcore_domain::decision::Warning>,
}

/// A drawdown with everything support needs to answer "why".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DrawdownView {
    pub drawdown: Drawdown,
    pub timeline: Vec<Transition>,
    pub payout_attempts: Vec<AttemptView>,
    /// Read on its own (`GET /v1/drawdowns/{id}`), held for review or refused by the credit
    /// policy: which rule decided, or that a person did, in the language asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Decider>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptView {
    pub attempt: i64,
    pub channel_id: String,
    pub reference: String,
    pub action: PayoutCall,
    pub outcome: Option<PayoutAnswer>,
    pub detail: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub started_at: lendcore_domain::Timestamp,
}

impl From<PayoutAttempt> for AttemptView {
    fn from(a: PayoutAttempt) -> Self {
        AttemptView {
            attempt: a.attempt,
            channel_id: a.channel_id,
            reference: a.reference,
            action: a.action,
            outcome: a.outcome,
            detail: a.detail,
            started_at: a.started_at,
        }
    }
}

/// Prices a drawdown and issues its confirmation token. With an `Idempotency-Key` a retry gets
/// the same quote and token back (so the stored response holds the token until the key is
/// purged; the token itself expires with the quote).
pub async fn quote(
    engine: &Engine,
    request: DrawdownRequest,
    idempotent: Option<&IdempotentRequest>,
) -> Result<Outcome<Quoted>, EngineError> {
    let now = engine.clock.now();
    if !(1..=64).contains(&request.account.len())
        || !request.account.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(lendcore_domain::validation::Violations::single(
            "account",
            "validation.invalid_account",
            "account must be 1-64 visible characters",
        )
        .into());
    }
    let line = crate::credit_lines::get(engine, &request.line_id).await?;
    let quote = quotes::quote(
        engine,
        QuoteRequest {
            product: request.product.clone(),
            version: None,
            amount_minor: request.amount_minor,
            term: request.term,
            start: Some(now.date_naive()),
            split: request.split,
            rate_tier: line.line.rate_tier.clone(),
        },
    )
    .await?;
    if quote.currency != line.line.currency {
        return Err(lendcore_domain::validation::Violations::single(
            "product_code",
            "validation.currency_mismatch",
            "the product's currency is not the credit line's",
        )
        .into());
    }
    refuse_unless_holdable(&line, request.amount_minor)?;
    let borrower = line.line.borrower_id.clone();
    let token = new_token(&borrower);
    let expires_at = lendcore_domain::to_millis(now + engine.confirmation_window);
    let mut drawdown = Drawdown {
        id: new_id_for(&borrower),
        line_id: line.line.id.clone(),
        borrower_id: line.line.borrower_id.clone(),
        product_code: request.product,
        product_version: quote.version,
        currency: quote.currency,
        amount_minor: request.amount_minor,
        account: request.account,
        quote,
        status: DrawdownStatus::Quoted { expires_at },
        paid: Vec::new(),
        servicing: Default::default(),
        risk_policy: None,
        revision: 1,
        created_at: lendcore_domain::to_millis(now),
        updated_at: lendcore_domain::to_millis(now),
    };
    // A retried quote gets the answer it got before, whatever the check would say now.
    if let Some(done) = review::earlier_answer(engine, idempotent).await? {
        return Ok(Outcome::Replayed(done));
    }
    let checked = {
        let mut read = engine.store.begin_read_for(&borrower).await?;
        crate::decisions::check_drawdown(engine, read.as_mut(), &drawdown, now).await?
    };
    drawdown.risk_policy = checked.policy.clone();
    if let RiskCheck::Decline(reason) = checked.check {
        // Refused before anything is held; the decision is kept all the same.
        let mut uow = engine.store.begin_for(&borrower).await?;
        crate::decisions::keep_check(uow.as_mut(), &checked).await?;
        uow.commit().await?;
        return Err(refusal(reason, &checked, &drawdown));
    }
    let step = Transition {
        from: "new".to_owned(),
        to: drawdown.status.name().to_owned(),
        reason: None,
        at: drawdown.created_at,
        actor: None,
        note: None,
    };
    let mut uow = engine.store.begin_for(&borrower).await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), idempotent, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    uow.insert_drawdown(&drawdown, &token_hash(&token), &step)
        .await?;
    uow.enqueue_job(
        &NewJob {
            id: new_id(),
            kind: kinds::EXPIRE_QUOTE.to_owned(),
            payload: serde_json::json!({ "drawdown_id": drawdown.id }),
            run_at: expires_at,
            max_attempts: lendcore_domain::jobs::DEFAULT_MAX_ATTEMPTS,
        },
        now,
    )
    .await?;
    notify(uow.as_mut(), &drawdown, Topic::DrawdownQuoted, None).await?;
    // A quote that passes is not recorded (its confirmation is); one a rule holds is.
    let review_before_payout = match checked.check {
        RiskCheck::Hold(reason) => {
            crate::decisions::keep_check(uow.as_mut(), &checked).await?;
            Some(reason.for_borrower())
        }
        RiskCheck::Pass | RiskCheck::Decline(_) => None,
    };
    let quoted = Quoted {
        drawdown,
        confirmation_token: token,
        review_before_payout,
        warnings: checked.warnings,
    };
    idempotency::record(uow.as_mut(), idempotent, &quoted, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(quoted))
}

/// Confirms a quote by its token. Holds the amount and starts the payout, or ends the drawdown
/// with its reason (the quote expired, the line refused); either way the answer is the drawdown.
pub async fn confirm(
    engine: &Engine,
    token: &str,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<DrawdownView>, EngineError> {
    let now = engine.clock.now();
    let no_quote = || {
        EngineError::not_found(
            "not_found.confirmation",
            "no quote has this confirmation token",
        )
    };
    let hash = token_hash(token);
    let borrower = match token_borrower(token) {
        Some(borrower) => borrower.to_owned(),
        // A token issued before tokens carried their borrower: 64 hexadecimal digits.
        None if is_secret(token) => engine
            .store
            .begin_read()
            .await?
            .legacy_route(&hash)
            .await?
            .ok_or_else(no_quote)?,
        None => return Err(no_quote()),
    };
    let mut uow = engine.store.begin_for(&borrower).await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let (mut drawdown, mut timeline) = uow
        .find_drawdown_by_token(&hash)
        .await?
        .ok_or_else(no_quote)?;
    // Only a quote is confirmed (the domain answers for the rest below), and it is checked in
    // the transaction that holds the money: what the check counts is what the hold sees, on
    // either store. The check reads the line with the borrower's records; it is not read twice.
    let (checked, line_read) = match drawdown.status {
        DrawdownStatus::Quoted { .. } => {
            let mut checked =
                crate::decisions::check_drawdown(engine, uow.as_mut(), &drawdown, now).await?;
            let line = checked.line.take();
            (Some(checked), line)
        }
        DrawdownStatus::QueuedForMaintenance { .. }
        | DrawdownStatus::HeldForReview { .. }
        | DrawdownStatus::Disbursing
        | DrawdownStatus::ManualReview { .. }
        | DrawdownStatus::Active
        | DrawdownStatus::Expired { .. }
        | DrawdownStatus::Refused { .. }
        | DrawdownStatus::Failed { .. }
        | DrawdownStatus::Closed { .. } => (None, None),
    };
    let line = match line_read {
        Some(line) => line,
        None => uow
            .find_credit_line(&drawdown.line_id)
            .await?
            .ok_or_else(|| {
                EngineError::Internal(format!("line of drawdown {} is gone", drawdown.id))
            })?,
    };
    let read_revision = drawdown.revision;
    let held_until = crate::maintenance::held_until(uow.as_mut(), now).await?;
    let risk = checked.as_ref().map_or(RiskCheck::Pass, |c| c.check);
    let (mut next, mut outcome) = drawdown
        .status
        .confirm(
            now,
            line.can_hold(drawdown.amount_minor, now),
            risk,
            held_until,
        )
        .map_err(|e| EngineError::conflict(e.code(), e.to_string()))?;
    if matches!(outcome, Confirmation::Proceed | Confirmation::Held(_))
        && !uow.place_hold(&line.id, drawdown.amount_minor, now).await?
    {
        // Another drawdown took what was left between the check and the hold.
        let reason = Reason::LimitExceeded;
        next = DrawdownStatus::Refused { reason };
        outcome = Confirmation::Ended(reason);
    }
    let step = drawdown.move_to(next, now);
    uow.update_drawdown(&drawdown, read_revision, Some(&step))
        .await?;
    if let Some(checked) = &checked {
        crate::decisions::keep_check(uow.as_mut(), checked).await?;
    }
    match outcome {
        Confirmation::Proceed => {
            start_payout(uow.as_mut(), &drawdown, held_until, now).await?;
            announce_payout(
                uow.as_mut(),
                &drawdown,
                Topic::DrawdownConfirmed,
                held_until,
            )
            .await?;
        }
        Confirmation::Held(reason) => {
            held::expire_later(uow.as_mut(), &drawdown, now).await?;
            notify(uow.as_mut(), &drawdown, Topic::DrawdownHeld, Some(reason)).await?;
        }
        Confirmation::Ended(reason) => {
            notify(uow.as_mut(), &drawdown, Topic::DrawdownEnded, Some(reason)).await?;
        }
    }
    // What was just written is answered as it stands, nothing read back: the timeline is the
    // steps read with the quote and the one just taken (its time to the millisecond, as
    // stored), and no call to a channel can come before the confirmation.
    timeline.push(Transition {
        at: lendcore_domain::to_millis(step.at),
        ..step
    });
    let view = DrawdownView {
        timeline,
        payout_attempts: Vec::new(),
        decided_by: None,
        drawdown,
    };
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(view))
}

/// Books the promised payout in the pending layer and queues the job that makes it (after the
/// maintenance window under way, if one is).
pub(crate) async fn start_payout(
    uow: &mut dyn UnitOfWork,
    drawdown: &Drawdown,
    held_until: Option<lendcore_domain::Timestamp>,
    now: lendcore_domain::Timestamp,
) -> Result<(), EngineError> {
    // The payout is promised, not yet made: it stands in the pending layer until the channel
    // settles it one way or the other.
    let pending = pending_accounts(drawdown)
        .disburse(
            pending_entry_id(&drawdown.id),
            Layer::Pending,
            drawdown.amount_minor,
            drawdown.quote.schedule.upfront_fee_minor,
            now,
        )
        .map_err(|e| EngineError::Internal(format!("ledger: {e}")))?;
    uow.post_entry(&pending).await?;
    uow.enqueue_job(
        &NewJob {
            id: disburse_job_id(&drawdown.id),
            kind: kinds::DISBURSE.to_owned(),
            payload: serde_json::json!({ "drawdown_id": drawdown.id }),
            run_at: held_until.unwrap_or(now),
            max_attempts: PAYOUT_ATTEMPTS,
        },
        now,
    )
    .await?;
    Ok(())
}

/// Tells the borrower the payout starts (`topic`), or waits out the maintenance window under
/// way.
pub(crate) async fn announce_payout(
    uow: &mut dyn UnitOfWork,
    drawdown: &Drawdown,
    topic: Topic,
    held_until: Option<lendcore_domain::Timestamp>,
) -> Result<(), EngineError> {
    match held_until {
        None => notify(uow, drawdown, topic, None).await,
        Some(_) => {
            notify(
                uow,
                drawdown,
                Topic::DrawdownQueuedForMaintenance,
                Some(Reason::SystemMaintenance),
            )
            .await
        }
    }
}

/// A refusal by the risk check: with what is overdue when that is the reason, so the
/// borrower knows what to repay.
fn refusal(
    reason: Reason,
    checked: &crate::decisions::Checked,
    drawdown: &Drawdown,
) -> EngineError {
    match reason {
        Reason::Overdue => EngineError::RefusedWith {
            reason,
            facts: serde_json::json!({
                "overdue_minor": checked.overdue_minor,
                "currency": drawdown.currency,
            }),
        },
        _ => EngineError::Refused {
            reason: reason.for_borrower(),
        },
    }
}

/// A drawdown with its timeline, its payout attempts and, where the credit policy held or
/// refused it, what decided (in `language`).
pub async fn get(
    engine: &Engine,
    id: &str,
    language: Language,
) -> Result<DrawdownView, EngineError> {
    let not_found =
        || EngineError::not_found("not_found.drawdown", format!("no drawdown with id {id}"));
    let mut uow = crate::read_for_id(engine.store.as_ref(), id)
        .await?
        .ok_or_else(not_found)?;
    let drawdown = uow.find_drawdown(id).await?.ok_or_else(not_found)?;
    let mut view = view_in(uow.as_mut(), drawdown).await?;
    view.decided_by = decided_by(engine, uow.as_mut(), &view, language).await?;
    Ok(view)
}

/// What held or refused a drawdown: the policy's rule (held, or refused for the reason its
/// decision gave), or the operator who declined it once held. Nothing for any other state,
/// nor for a hold that nobody reviewed in time (its reason says so).
async fn decided_by(
    engine: &Engine,
    uow: &mut dyn UnitOfWork,
    view: &DrawdownView,
    language: Language,
) -> Result<Option<Decider>, EngineError> {
    use crate::decisions::SettledBy;
    let drawdown = &view.drawdown;
    let (settled_by, outcome, refused_for) = match drawdown.status {
        DrawdownStatus::HeldForReview { .. } => (SettledBy::Policy, "hold", None),
        DrawdownStatus::Refused { reason } => {
            let declined_by_operator = view
                .timeline
                .last()
                .is_some_and(|step| step.from == "held_for_review" && step.actor.is_some());
            if declined_by_operator {
                (SettledBy::Person, "hold", None)
            } else {
                (SettledBy::Policy, "decline", Some(reason))
            }
        }
        DrawdownStatus::Quoted { .. }
        | DrawdownStatus::QueuedForMaintenance { .. }
        | DrawdownStatus::Disbursing
        | DrawdownStatus::ManualReview { .. }
        | DrawdownStatus::Active
        | DrawdownStatus::Expired { .. }
        | DrawdownStatus::Failed { .. }
        | DrawdownStatus::Closed { .. } => return Ok(None),
    };
    let found = crate::decisions::latest_about(
        uow,
        &drawdown.borrower_id,
        "drawdown",
        &drawdown.id,
        &[outcome],
    )
    .await?;
    let Some(record) = found else {
        return Ok(None);
    };
    // Refused for something else (the limit taken meanwhile, the line frozen): not the policy.
    if refused_for.is_some() && record.evaluation.reasons.first().copied() != refused_for {
        return Ok(None);
    }
    crate::decisions::decider(engine, uow, &record, settled_by, language).await
}

async fn view_in(
    uow: &mut dyn BorrowerUnit,
    drawdown: Drawdown,
) -> Result<DrawdownView, EngineError> {
    let timeline = uow.drawdown_timeline(&drawdown.id).await?;
    let payout_attempts = uow
        .payout_attempts(&drawdown.id)
        .await?
        .into_iter()
        .map(AttemptView::from)
        .collect();
    Ok(DrawdownView {
        drawdown,
        timeline,
        payout_attempts,
        decided_by: None,
    })
}

/// Refuses a quote the line could not hold now, with the reason the borrower is given.
fn refuse_unless_holdable(line: &LineView, amount_minor: i64) -> Result<(), EngineError> {
    let over_limit = (amount_minor > line.available_minor).then_some(Reason::LimitExceeded);
    match line.blocked_by.or(over_limit) {
        Some(reason) => Err(EngineError::Refused { reason }),
        None => Ok(()),
    }
}

/// The borrower-facing notification of a step, in the outbox with the step's reason.
pub(crate) async fn notify(
    uow: &mut dyn UnitOfWork,
    drawdown: &Drawdown,
    topic: Topic,
    reason: Option<Reason>,
) -> Result<(), EngineError> {
    crate::audit::announce(
        uow,
        OutboxEvent {
            id: new_id(),
            topic: topic.as_str().to_owned(),
            aggregate_type: "drawdown".to_owned(),
            aggregate_id: drawdown.id.clone(),
            payload: serde_json::json!({
                "drawdown_id": drawdown.id,
                "borrower_id": drawdown.borrower_id,
                "state": drawdown.status.name(),
                "amount_minor": drawdown.amount_minor,
                "currency": drawdown.currency,
                "reason": reason,
                "next_action": reason.map(|r| r.entry().next_action),
            }),
            created_at: drawdown.updated_at,
            published_at: None,
        },
        &crate::acting::current(),
    )
    .await?;
    Ok(())
}

/// The accounts a payout in flight is booked on: the channel is not chosen until it is made.
pub(crate) fn pending_accounts(drawdown: &Drawdown) -> LoanAccounts {
    LoanAccounts {
        loan_id: drawdown.id.clone(),
        channel_id: "pending".to_owned(),
        currency: drawdown.currency,
    }
}

/// The payout job's id: one per drawdown, so an operator (and close of business) can find it.
pub fn disburse_job_id(drawdown_id: &str) -> String {
    format!("disburse:{drawdown_id}")
}

pub(crate) fn pending_entry_id(drawdown_id: &str) -> String {
    format!("{drawdown_id}:pending-disbursement")
}

/// A new quote's confirmation token: its borrower, a dot, and 32 random bytes in hex. Only its
/// hash is kept; the borrower in front routes the confirmation (issue #16).
fn new_token(borrower_id: &str) -> String {
    format!("{borrower_id}.{}", hex::encode(rand::random::<[u8; 32]>()))
}

/// The borrower a token made by [`new_token`] was issued for; `None` for any other string.
fn token_borrower(token: &str) -> Option<&str> {
    let (borrower, secret) = token.rsplit_once('.')?;
    (lendcore_domain::ids::could_be_borrower(borrower) && is_secret(secret)).then_some(borrower)
}

/// Whether `text` is a token's secret: 64 hexadecimal digits.
fn is_secret(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
