//! A person settles a payout that automatic settling gave up on (`manual_review`): ask the
//! channels again, mark it paid (at once when the channel confirms it, else only once a second
//! operator approves), mark it failed with a catalogue reason, and decide about a line frozen
//! because a channel paid the wrong amount. Each step is audited and shows in the drawdown's
//! timeline with who took it and what they wrote.

use std::sync::Arc;

use lendcore_connectors::channel::PaymentChannel;
use lendcore_domain::Timestamp;
use lendcore_domain::credit_line::LineStatus;
use lendcore_domain::drawdown::{Drawdown, DrawdownStatus, PaidClaim, PayoutCall, Transition};
use lendcore_domain::reasons::{Category, Reason};
use lendcore_domain::validation::Violations;
use lendcore_store::{BorrowerUnit, Store};
use serde::{Deserialize, Serialize};

use super::disburse::{self, Answer, Ending, Settled};
use super::{DrawdownView, notify, view_in};
use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::{Clock, Engine, EngineError};

/// Longest note a person may write on a step.
const MAX_NOTE_CHARS: usize = 500;

/// An operator's word that a channel paid, with the channel's reference for the payout.
#[derive(Debug, Clone)]
pub struct PaidMark {
    pub channel_id: String,
    pub channel_reference: String,
    pub note: String,
}

/// What to do with a line a wrong payout froze.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LineDecision {
    /// The difference is understood and dealt with: the borrower may draw again.
    Unfreeze,
    /// The line stays frozen; the log says why.
    KeepFrozen,
}

/// Asks every channel the payout was sent to, on an operator's request: a payout a channel
/// confirms for the amount sent is settled as paid; otherwise the answers are written to the
/// timeline and the drawdown stays with the person.
pub async fn ask_channels(
    engine: &Engine,
    id: &str,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<DrawdownView>, EngineError> {
    let actor = crate::acting::current();
    if let Some(done) = earlier_answer(engine, request).await? {
        return Ok(Outcome::Replayed(done));
    }
    let read = in_review(engine.store.as_ref(), id).await?;
    let answers = ask_all(
        engine.store.as_ref(),
        engine.clock.as_ref(),
        &engine.channels,
        &read,
    )
    .await?;
    let now = engine.clock.now();
    let mut uow = begin_on(engine.store.as_ref(), id).await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let mut drawdown = lock_in_review(uow.as_mut(), id).await?;
    record_answers(uow.as_mut(), &mut drawdown, &answers, &actor, now).await?;
    finish(
        uow,
        &actor,
        "drawdown.review.asked",
        summary(&answers),
        drawdown,
        request,
        now,
    )
    .await
}

/// A re-driven payout job of a drawdown in review: the same as [`ask_channels`], done by
/// lendcore.
pub(crate) async fn ask_again(
    store: &dyn Store,
    clock: &dyn Clock,
    channels: &[Arc<dyn PaymentChannel>],
    id: &str,
) -> Result<(), EngineError> {
    let read = in_review(store, id).await?;
    let answers = ask_all(store, clock, channels, &read).await?;
    let now = clock.now();
    let mut uow = begin_on(store, id).await?;
    let mut drawdown = lock_in_review(uow.as_mut(), id).await?;
    let actor = crate::audit::SYSTEM;
    record_answers(uow.as_mut(), &mut drawdown, &answers, actor, now).await?;
    audit(
        uow.as_mut(),
        actor,
        "drawdown.review.asked",
        &drawdown,
        summary(&answers),
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(())
}

/// An operator says the payout was made. When the channel confirms it (paid under our
/// reference, the amount sent, the reference given) it is settled at once; otherwise the claim
/// waits for a second operator's approval.
pub async fn mark_paid(
    engine: &Engine,
    id: &str,
    mark: PaidMark,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<DrawdownView>, EngineError> {
    let actor = operator()?;
    let note = parse_note(&mark.note)?;
    let channel_reference = parse_channel_reference(&mark.channel_reference)?;
    if let Some(done) = earlier_answer(engine, request).await? {
        return Ok(Outcome::Replayed(done));
    }
    let read = in_review(engine.store.as_ref(), id).await?;
    let called = called_channels(engine.store.as_ref(), &read.id).await?;
    let Some((_, reference)) = called.iter().find(|(c, _)| *c == mark.channel_id) else {
        return Err(Violations::single(
            "channel_id",
            "validation.unknown_channel",
            "the payout was never sent to this channel",
        )
        .into());
    };
    let confirmed = match engine.channels.iter().find(|c| c.id() == mark.channel_id) {
        Some(channel) => {
            let answer = disburse::ask(
                engine.store.as_ref(),
                engine.clock.as_ref(),
                channel.as_ref(),
                &read,
                reference,
            )
            .await?;
            let confirms = matches!(answer.settled, Some(Settled::Paid { amount_minor, currency })
                if amount_minor == read.quote.schedule.disbursed_minor && currency == read.currency)
                && answer.channel_reference.as_deref() == Some(channel_reference.as_str());
            (confirms, answer.summary)
        }
        None => (false, format!("{}: no longer configured", mark.channel_id)),
    };
    let now = engine.clock.now();
    let mut uow = begin_on(engine.store.as_ref(), id).await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let mut drawdown = lock_in_review(uow.as_mut(), id).await?;
    let detail = serde_json::json!({
        "channel_id": mark.channel_id,
        "channel_reference": channel_reference,
        "channel_says": confirmed.1,
        "confirmed": confirmed.0,
    });
    let action = if confirmed.0 {
        let note = format!("{note} (confirmed by the channel: {})", confirmed.1);
        settle_by(
            uow.as_mut(),
            &mut drawdown,
            Ending::Paid {
                channel_id: mark.channel_id,
            },
            &actor,
            note,
            now,
        )
        .await?;
        "drawdown.review.marked_paid"
    } else {
        let claim = PaidClaim {
            channel_id: mark.channel_id,
            channel_reference,
            claimed_by: actor.clone(),
            note: note.clone(),
            claimed_at: now,
        };
        let read_revision = drawdown.revision;
        let next = drawdown
            .status
            .claim_paid(claim)
            .map_err(|e| EngineError::conflict(e.code(), e.to_string()))?;
        drawdown.status = next;
        let note = format!(
            "{note} (claimed paid; the channel did not confirm it: {}; a second operator must approve)",
            confirmed.1
        );
        let step = drawdown.remark(actor.as_str(), note, now);
        uow.update_drawdown(&drawdown, read_revision, Some(&step))
            .await?;
        "drawdown.review.claimed_paid"
    };
    finish(uow, &actor, action, detail, drawdown, request, now).await
}

/// A second operator approves another's claim that the payout was made, naming the channel and
/// reference they checked: it is settled as paid through the claimed channel.
pub async fn approve_paid(
    engine: &Engine,
    id: &str,
    approved: &PaidMark,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<DrawdownView>, EngineError> {
    let actor = operator()?;
    let note = approved.note.as_str();
    let note = parse_note(note)?;
    let now = engine.clock.now();
    let mut uow = begin_on(engine.store.as_ref(), id).await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let mut drawdown = lock_in_review(uow.as_mut(), id).await?;
    let DrawdownStatus::ManualReview {
        claim: Some(claim), ..
    } = drawdown.status.clone()
    else {
        return Err(EngineError::conflict(
            "conflict.no_paid_claim",
            "nobody has claimed this payout paid; mark it paid first",
        ));
    };
    // The approver names what they checked, so a claim changed meanwhile is not approved.
    if claim.channel_id != approved.channel_id
        || claim.channel_reference != approved.channel_reference
    {
        return Err(EngineError::conflict(
            "conflict.claim_changed",
            format!(
                "the claim is now {} as {}; check that one",
                claim.channel_id, claim.channel_reference
            ),
        ));
    }
    if claim.claimed_by == actor {
        return Err(EngineError::Forbidden {
            code: "auth.four_eyes",
            message: "a claim is approved by a second operator, not by the one who made it"
                .to_owned(),
        });
    }
    let detail = serde_json::json!({
        "channel_id": claim.channel_id,
        "channel_reference": claim.channel_reference,
        "claimed_by": claim.claimed_by,
    });
    let note = format!(
        "{note} (approves {}'s claim: paid by {} as {})",
        claim.claimed_by, claim.channel_id, claim.channel_reference
    );
    settle_by(
        uow.as_mut(),
        &mut drawdown,
        Ending::Paid {
            channel_id: claim.channel_id,
        },
        &actor,
        note,
        now,
    )
    .await?;
    finish(
        uow,
        &actor,
        "drawdown.review.approved_paid",
        detail,
        drawdown,
        request,
        now,
    )
    .await
}

/// An operator ends the payout as not made, with a catalogue reason: the hold is released and
/// the borrower told. Refused while a channel says it paid or is still paying.
pub async fn mark_failed(
    engine: &Engine,
    id: &str,
    reason: Reason,
    note: &str,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<DrawdownView>, EngineError> {
    let actor = operator()?;
    let note = parse_note(note)?;
    match reason.entry().category {
        Category::Channel | Category::Network | Category::Risk | Category::System => {}
        Category::User
        | Category::Policy
        | Category::Identity
        | Category::Credit
        | Category::Link
        | Category::Closed => {
            return Err(Violations::single(
                "reason",
                "validation.reason_not_allowed",
                "a payout fails for a channel, network, risk or system reason",
            )
            .into());
        }
    }
    if let Some(done) = earlier_answer(engine, request).await? {
        return Ok(Outcome::Replayed(done));
    }
    let read = in_review(engine.store.as_ref(), id).await?;
    refuse_if_claimed(&read)?;
    let answers = ask_all(
        engine.store.as_ref(),
        engine.clock.as_ref(),
        &engine.channels,
        &read,
    )
    .await?;
    if let Some((channel, answer)) = answers.iter().find(|(_, a)| may_have_paid(a)) {
        return Err(EngineError::conflict(
            "conflict.payout_may_have_paid",
            format!(
                "{channel} may have paid it ({}); it cannot be marked failed",
                answer.summary
            ),
        ));
    }
    let now = engine.clock.now();
    let mut uow = begin_on(engine.store.as_ref(), id).await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let mut drawdown = lock_in_review(uow.as_mut(), id).await?;
    refuse_if_claimed(&drawdown)?;
    let said = summary(&answers);
    let note = format!("{note} (the channels said: {})", said["channels"]);
    settle_by(
        uow.as_mut(),
        &mut drawdown,
        Ending::Failed(reason),
        &actor,
        note,
        now,
    )
    .await?;
    finish(
        uow,
        &actor,
        "drawdown.review.marked_failed",
        serde_json::json!({ "reason": reason, "channels": said["channels"] }),
        drawdown,
        request,
        now,
    )
    .await
}

/// Decides about the line of a drawdown whose channel paid the wrong amount: unfreeze it or
/// keep it frozen, with a note in the line's log and the drawdown's timeline.
pub async fn decide_line(
    engine: &Engine,
    id: &str,
    decision: LineDecision,
    note: &str,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<DrawdownView>, EngineError> {
    let actor = crate::acting::current();
    let note = parse_note(note)?;
    let now = engine.clock.now();
    let mut uow = begin_on(engine.store.as_ref(), id).await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let mut drawdown = lock_in_review(uow.as_mut(), id).await?;
    if drawdown.status.reason() != Some(Reason::AbnormalPattern) {
        return Err(EngineError::conflict(
            "conflict.no_integrity_freeze",
            "only a payout of the wrong amount freezes the line for review",
        ));
    }
    let mut line = uow
        .find_credit_line(&drawdown.line_id)
        .await?
        .ok_or_else(|| {
            EngineError::Internal(format!("line of drawdown {} is gone", drawdown.id))
        })?;
    match line.status {
        LineStatus::Frozen {
            reason: Reason::AbnormalPattern,
            ..
        } => {}
        LineStatus::Frozen { .. } | LineStatus::Active | LineStatus::Closed { .. } => {
            return Err(EngineError::conflict(
                "conflict.line_not_frozen",
                "the line is not frozen for a wrong payout (any more): its freeze is risk's to change",
            ));
        }
    }
    let last_seq = uow
        .credit_line_events(&line.id)
        .await?
        .last()
        .map_or(0, |e| e.seq);
    let line_revision = line.revision;
    let event = match decision {
        LineDecision::Unfreeze => line.unfreeze(actor.clone(), Some(note.clone()), last_seq, now),
        LineDecision::KeepFrozen => {
            line.keep_frozen(actor.clone(), Some(note.clone()), last_seq, now)
        }
    }
    .map_err(crate::credit_lines::line_error)?;
    uow.update_credit_line(&line, line_revision, &event).await?;
    crate::credit_lines::announce(uow.as_mut(), &line, &event).await?;
    let read_revision = drawdown.revision;
    let said = match decision {
        LineDecision::Unfreeze => "line unfrozen",
        LineDecision::KeepFrozen => "line kept frozen",
    };
    let step = drawdown.remark(actor.as_str(), format!("{said}: {note}"), now);
    uow.update_drawdown(&drawdown, read_revision, Some(&step))
        .await?;
    finish(
        uow,
        &actor,
        "drawdown.review.line_decided",
        serde_json::json!({ "line_id": line.id, "decision": decision }),
        drawdown,
        request,
        now,
    )
    .await
}

/// A unit of work on the borrower of drawdown `id`; `not_found.drawdown` when there is none.
pub(super) async fn begin_on(
    store: &dyn Store,
    id: &str,
) -> Result<Box<dyn BorrowerUnit>, EngineError> {
    crate::begin_for_id(store, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// [`begin_on`], reading one snapshot.
async fn read_on(store: &dyn Store, id: &str) -> Result<Box<dyn BorrowerUnit>, EngineError> {
    crate::read_for_id(store, id)
        .await?
        .ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> EngineError {
    EngineError::not_found("not_found.drawdown", format!("no drawdown with id {id}"))
}

/// The drawdown, read to act on, which must be in review.
async fn in_review(store: &dyn Store, id: &str) -> Result<Drawdown, EngineError> {
    let mut uow = read_on(store, id).await?;
    let drawdown = uow.find_drawdown(id).await?;
    uow.rollback().await?;
    check_in_review(drawdown, id)
}

/// The drawdown, locked in `uow` for the change, which must still be in review.
async fn lock_in_review(uow: &mut dyn BorrowerUnit, id: &str) -> Result<Drawdown, EngineError> {
    let drawdown = uow.lock_drawdown(id).await?;
    check_in_review(drawdown, id)
}

fn check_in_review(drawdown: Option<Drawdown>, id: &str) -> Result<Drawdown, EngineError> {
    let drawdown = drawdown.ok_or_else(|| not_found(id))?;
    match drawdown.status {
        DrawdownStatus::ManualReview { .. } => Ok(drawdown),
        DrawdownStatus::Quoted { .. }
        | DrawdownStatus::QueuedForMaintenance { .. }
        | DrawdownStatus::HeldForReview { .. }
        | DrawdownStatus::Disbursing
        | DrawdownStatus::Active
        | DrawdownStatus::Expired { .. }
        | DrawdownStatus::Refused { .. }
        | DrawdownStatus::Failed { .. }
        | DrawdownStatus::Closed { .. } => Err(EngineError::conflict(
            "conflict.drawdown_state",
            format!(
                "drawdown {id} is {}; only one in manual review is settled by hand",
                drawdown.status.name()
            ),
        )),
    }
}

/// The channels the payout was sent to, each with its reference, in the order first called.
async fn called_channels(
    store: &dyn Store,
    id: &str,
) -> Result<Vec<(String, String)>, EngineError> {
    let mut uow = read_on(store, id).await?;
    let attempts = uow.payout_attempts(id).await?;
    uow.rollback().await?;
    let mut called: Vec<(String, String)> = Vec::new();
    for attempt in attempts
        .into_iter()
        .filter(|a| a.action == PayoutCall::Submit)
    {
        if !called.iter().any(|(c, _)| *c == attempt.channel_id) {
            called.push((attempt.channel_id, attempt.reference));
        }
    }
    Ok(called)
}

/// What each channel the payout was sent to says of it now.
async fn ask_all(
    store: &dyn Store,
    clock: &dyn Clock,
    channels: &[Arc<dyn PaymentChannel>],
    drawdown: &Drawdown,
) -> Result<Vec<(String, Answer)>, EngineError> {
    let mut answers = Vec::new();
    for (channel_id, reference) in called_channels(store, &drawdown.id).await? {
        let answer = match channels.iter().find(|c| c.id() == channel_id) {
            Some(channel) => {
                disburse::ask(store, clock, channel.as_ref(), drawdown, &reference).await?
            }
            None => Answer {
                settled: Some(Settled::Open("no longer configured".to_owned())),
                channel_reference: None,
                answer: None,
                summary: format!("{channel_id}: no longer configured"),
            },
        };
        answers.push((channel_id, answer));
    }
    Ok(answers)
}

/// Whether an answer leaves open that the channel paid: it says so, it is still paying, or it
/// could not be asked. A channel no longer configured cannot be asked at all; the operator's
/// word, audited, stands for it.
fn may_have_paid(answer: &Answer) -> bool {
    match &answer.settled {
        Some(Settled::Paid { .. }) => true,
        Some(Settled::Open(_)) => answer.answer.is_some(),
        Some(Settled::NotPaid(_)) | None => false,
    }
}

/// A payout an operator has claimed paid is not failed until the claim is settled.
fn refuse_if_claimed(drawdown: &Drawdown) -> Result<(), EngineError> {
    match &drawdown.status {
        DrawdownStatus::ManualReview {
            claim: Some(claim), ..
        } => Err(EngineError::conflict(
            "conflict.paid_claim_pending",
            format!(
                "{} has claimed it paid; that claim is approved before anything else",
                claim.claimed_by
            ),
        )),
        _ => Ok(()),
    }
}

/// The stored answer to a retried request, looked up before anything is asked or checked.
pub(super) async fn earlier_answer<T: serde::de::DeserializeOwned>(
    engine: &Engine,
    request: Option<&IdempotentRequest>,
) -> Result<Option<T>, EngineError> {
    if request.is_none() {
        return Ok(None);
    }
    let mut uow = engine.store.begin().await?;
    let done = idempotency::claim(uow.as_mut(), request, engine.clock.now()).await?;
    uow.rollback().await?;
    Ok(done)
}

/// Settles as the channels' answers allow (paid, for the amount sent, by one of them), or
/// writes what they said to the timeline.
async fn record_answers(
    uow: &mut dyn BorrowerUnit,
    drawdown: &mut Drawdown,
    answers: &[(String, Answer)],
    actor: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    let said = summary(answers)["channels"].to_string();
    let paying: Vec<&(String, Answer)> = answers
        .iter()
        .filter(|(_, a)| matches!(a.settled, Some(Settled::Paid { .. })))
        .collect();
    // Settled only when exactly one channel paid, and paid what was sent; two that paid, or
    // one that paid another amount, stay with the person.
    let paid = match paying.as_slice() {
        [(channel, answer)] => match answer.settled {
            Some(Settled::Paid {
                amount_minor,
                currency,
            }) if amount_minor == drawdown.quote.schedule.disbursed_minor
                && currency == drawdown.currency =>
            {
                Some(channel.clone())
            }
            Some(Settled::Paid { .. } | Settled::NotPaid(_) | Settled::Open(_)) | None => None,
        },
        [] => None,
        [_, _, ..] => {
            metrics::counter!("lendcore_payout_integrity_failures_total").increment(1);
            tracing::error!(drawdown = %drawdown.id, answers = %said,
                "INTEGRITY: more than one channel reports the payout paid");
            None
        }
    };
    match paid {
        Some(channel_id) => {
            let note = format!("the channel confirms it paid: {said}");
            settle_by(uow, drawdown, Ending::Paid { channel_id }, actor, note, now).await
        }
        None => {
            let read_revision = drawdown.revision;
            let step = drawdown.remark(actor, format!("asked the channels: {said}"), now);
            uow.update_drawdown(drawdown, read_revision, Some(&step))
                .await?;
            Ok(())
        }
    }
}

/// Settles the payout as a person's step, and tells the borrower.
async fn settle_by(
    uow: &mut dyn BorrowerUnit,
    drawdown: &mut Drawdown,
    ending: Ending<'_>,
    actor: &str,
    note: String,
    now: Timestamp,
) -> Result<(), EngineError> {
    let step = disburse::settle(uow, drawdown, ending, now).await?;
    let transition: Transition = step.transition.by(actor, Some(note));
    uow.update_drawdown(drawdown, step.read_revision, Some(&transition))
        .await?;
    notify(uow, drawdown, step.topic, step.reason).await
}

async fn audit(
    uow: &mut dyn BorrowerUnit,
    actor: &str,
    action: &str,
    drawdown: &Drawdown,
    detail: serde_json::Value,
    now: Timestamp,
) -> Result<(), EngineError> {
    crate::audit::record(uow, actor, action, ("drawdown", &drawdown.id), detail, now).await
}

/// Audits the step as `action` by `actor`, then answers with the drawdown as it now stands,
/// recorded under the request's key, in the step's unit of work.
pub(super) async fn finish(
    mut uow: Box<dyn BorrowerUnit>,
    actor: &str,
    action: &str,
    detail: serde_json::Value,
    drawdown: Drawdown,
    request: Option<&IdempotentRequest>,
    now: Timestamp,
) -> Result<Outcome<DrawdownView>, EngineError> {
    audit(uow.as_mut(), actor, action, &drawdown, detail, now).await?;
    let view = view_in(uow.as_mut(), drawdown).await?;
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(view))
}

fn summary(answers: &[(String, Answer)]) -> serde_json::Value {
    let said: Vec<&str> = answers.iter().map(|(_, a)| a.summary.as_str()).collect();
    serde_json::json!({ "channels": said.join("; ") })
}

/// Claims and approvals are a person's word: only an operator signed in gives it.
pub(super) fn operator() -> Result<String, EngineError> {
    let actor = crate::acting::current();
    match actor.starts_with("ops:") {
        true => Ok(actor),
        false => Err(EngineError::Forbidden {
            code: "auth.operator_required",
            message: "only an operator, signed in, says a payout was made".to_owned(),
        }),
    }
}

pub(super) fn parse_note(note: &str) -> Result<String, EngineError> {
    let note = note.trim();
    if note.is_empty()
        || note.chars().count() > MAX_NOTE_CHARS
        || note.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(Violations::single(
            "note",
            "validation.invalid_note",
            format!("note must be 1 to {MAX_NOTE_CHARS} printable characters"),
        )
        .into());
    }
    Ok(note.to_owned())
}

fn parse_channel_reference(reference: &str) -> Result<String, EngineError> {
    if (1..=128).contains(&reference.len()) && reference.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(reference.to_owned())
    } else {
        Err(Violations::single(
            "channel_reference",
            "validation.invalid_channel_reference",
            "channel_reference must be 1-128 visible ASCII characters",
        )
        .into())
    }
}
