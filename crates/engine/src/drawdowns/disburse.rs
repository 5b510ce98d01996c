//! Exactly-once disbursement. Every call to the channel is recorded before it is made. The
//! payout's reference (the channel's idempotency key) is fixed per drawdown and channel, so a
//! resend can never pay twice; an unanswered call is settled by asking the channel, never by
//! sending under a new key. Success turns the hold into drawn principal and posts the ledger;
//! a definitive failure releases the hold; when the attempts run out a person takes over. Each
//! outcome commits in one unit of work with the job's completion.

use lendcore_domain::topic::Topic;
use std::sync::Arc;

use async_trait::async_trait;
use lendcore_connectors::channel::{PaymentChannel, Payout, QueryOutcome, SubmitOutcome};
use lendcore_domain::Timestamp;
use lendcore_domain::credit_line::CreditLine;
use lendcore_domain::drawdown::{
    Drawdown, DrawdownStatus, IllegalTransition, PayoutAnswer, PayoutCall,
};
use lendcore_domain::ledger::{Layer, LoanAccounts};
use lendcore_domain::money::Currency;
use lendcore_domain::reasons::Reason;
use lendcore_store::{BorrowerUnit, Job, PayoutAttempt, Store, StoreError};

use super::notify;
use crate::jobs::kinds;
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler};
use crate::{EngineError, new_id};

pub struct DisburseHandler {
    channels: Vec<Arc<dyn PaymentChannel>>,
}

impl DisburseHandler {
    pub fn new(channels: Vec<Arc<dyn PaymentChannel>>) -> Self {
        Self { channels }
    }
}

/// Where an attempt left the payout.
pub(crate) enum Settled {
    Paid {
        amount_minor: i64,
        currency: Currency,
    },
    NotPaid(Reason),
    /// Unknown or still pending: ask again later.
    Open(String),
}

#[async_trait]
impl JobHandler for DisburseHandler {
    fn kind(&self) -> &'static str {
        kinds::DISBURSE
    }

    async fn dead_lettered(
        &self,
        store: &dyn Store,
        job: &Job,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        self.on_death(store, job, now).await
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let done = self.run_once(job, ctx).await;
        match done {
            // A prompted query is only a hint: the payout's own job asks again anyway, so a
            // failed one (a database hiccup, a channel that did not answer) is no failure.
            Err(failure) if hint(job) => {
                tracing::warn!(job = %job.id, error = %failure.message,
                    "a callback-prompted query failed; the payout job will ask");
                Ok(JobDone::Succeeded)
            }
            done => done,
        }
    }
}

/// What a payout job run found to do.
enum Found {
    /// A drawdown still to be paid out, and the calls made to channels for it so far.
    Payout(Box<Drawdown>, Vec<PayoutAttempt>),
    /// Nothing to pay now: settled, with a person, or waiting out maintenance.
    Done(JobDone),
}

impl DisburseHandler {
    /// One run: find what is to be paid, choose the channel, make one round with it, and
    /// conclude.
    async fn run_once(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let (drawdown, attempts) = match self.find_payout(job, ctx).await? {
            Found::Payout(drawdown, attempts) => (*drawdown, attempts),
            Found::Done(done) => return Ok(done),
        };
        // A run a callback prompted only asks; the drawdown's own job sends, fails over,
        // retries and escalates, so two runs can never both send.
        let hint = hint(job);
        let last_attempt = job.attempts >= job.max_attempts;
        let channel = match self.choose_channel(&attempts) {
            Ok(channel) => channel,
            Err((reason, why)) => {
                return finish(ctx, &drawdown, Ending::Review(reason, &why)).await;
            }
        };
        let reference = format!("{}:{}", drawdown.id, channel.id());
        let outcome = if hint {
            match self
                .query(ctx, channel.as_ref(), &drawdown, &reference)
                .await?
            {
                Some(settled) => Ok(settled),
                None => return Ok(JobDone::Succeeded),
            }
        } else {
            self.attempt(ctx, channel.as_ref(), &drawdown, &reference, &attempts)
                .await
        };
        let settled = match outcome {
            Ok(settled) => settled,
            // Whatever went wrong, the last attempt hands the payout to a person, with a reason.
            Err(failure) if last_attempt && !hint => Settled::Open(failure.message),
            Err(failure) => return Err(failure),
        };
        conclude(ctx, &drawdown, channel.id(), settled, hint, last_attempt).await
    }

    /// The drawdown the job pays out, once it is under way; or why there is nothing to do.
    async fn find_payout(&self, job: &Job, ctx: &JobContext) -> Result<Found, JobFailure> {
        let id = job.payload["drawdown_id"]
            .as_str()
            .ok_or_else(|| JobFailure::permanent("payload has no drawdown_id"))?;
        // One snapshot for what the run reads; the calls made so far are read whatever the
        // state, as one indexed read costs less than a snapshot of its own.
        let (drawdown, held_until, attempts) = {
            let gone = || JobFailure::permanent(format!("drawdown {id} is gone"));
            let mut uow = crate::read_for_id(ctx.store.as_ref(), id)
                .await?
                .ok_or_else(gone)?;
            let drawdown = uow.find_drawdown(id).await?.ok_or_else(gone)?;
            let held = crate::maintenance::held_until(uow.as_mut(), ctx.clock.now()).await?;
            let attempts = uow.payout_attempts(id).await?;
            (drawdown, held, attempts)
        };
        let (drawdown, attempts) = match drawdown.status {
            // Payouts wait out a maintenance window without using up their attempts.
            DrawdownStatus::Disbursing | DrawdownStatus::QueuedForMaintenance { .. }
                if held_until.is_some() =>
            {
                return Ok(Found::Done(JobDone::Postponed(
                    held_until.unwrap_or(ctx.clock.now()),
                )));
            }
            // Resumed in a unit of its own: the calls are read again after it.
            DrawdownStatus::QueuedForMaintenance { .. } => {
                let resumed = resume(ctx, &drawdown).await?;
                let attempts = ctx
                    .store
                    .begin_read_for(&resumed.borrower_id)
                    .await?
                    .payout_attempts(id)
                    .await?;
                (resumed, attempts)
            }
            DrawdownStatus::Disbursing => (drawdown, attempts),
            // In a person's hands: a re-driven payout job asks the channels again and settles
            // only what they confirm; everything else stays with the person.
            DrawdownStatus::ManualReview { .. } if !hint(job) => {
                super::review::ask_again(
                    ctx.store.as_ref(),
                    ctx.clock.as_ref(),
                    &self.channels,
                    &drawdown.id,
                )
                .await
                .map_err(|e| JobFailure::retryable(e.to_string()))?;
                return Ok(Found::Done(JobDone::Succeeded));
            }
            // Settled already, or in a person's hands.
            DrawdownStatus::Quoted { .. }
            | DrawdownStatus::HeldForReview { .. }
            | DrawdownStatus::ManualReview { .. }
            | DrawdownStatus::Active
            | DrawdownStatus::Expired { .. }
            | DrawdownStatus::Refused { .. }
            | DrawdownStatus::Failed { .. }
            | DrawdownStatus::Closed { .. } => return Ok(Found::Done(JobDone::Succeeded)),
        };
        Ok(match drawdown.status {
            DrawdownStatus::Disbursing => Found::Payout(Box::new(drawdown), attempts),
            // Another run resumed it and moved it on meanwhile.
            DrawdownStatus::Quoted { .. }
            | DrawdownStatus::QueuedForMaintenance { .. }
            | DrawdownStatus::HeldForReview { .. }
            | DrawdownStatus::ManualReview { .. }
            | DrawdownStatus::Active
            | DrawdownStatus::Expired { .. }
            | DrawdownStatus::Refused { .. }
            | DrawdownStatus::Failed { .. }
            | DrawdownStatus::Closed { .. } => Found::Done(JobDone::Succeeded),
        })
    }

    /// The channel to ask: the first that has not certainly refused it, the last when all
    /// have. Failing over only from a channel that certainly has not paid keeps a payout from
    /// being made twice; a channel called before but configured no longer is for a person.
    fn choose_channel(
        &self,
        attempts: &[PayoutAttempt],
    ) -> Result<&Arc<dyn PaymentChannel>, (Reason, String)> {
        if let Some(gone) = attempts
            .iter()
            .find(|a| !self.channels.iter().any(|c| c.id() == a.channel_id))
        {
            return Err((
                Reason::SyncFailure,
                format!(
                    "channel {} was called but is no longer configured",
                    gone.channel_id
                ),
            ));
        }
        let certainly_unpaid = |c: &Arc<dyn PaymentChannel>| {
            let at_channel: Vec<&PayoutAttempt> =
                attempts.iter().filter(|a| a.channel_id == c.id()).collect();
            certainly_unpaid(&at_channel)
        };
        self.channels
            .iter()
            .find(|c| !certainly_unpaid(c))
            .or(self.channels.last())
            .ok_or_else(|| {
                (
                    Reason::ChannelUnavailable,
                    "no payment channel is configured".to_owned(),
                )
            })
    }
}

/// What one round with a channel comes to: paid (for the amount sent, or an integrity alert),
/// not paid, or still open — retried, or handed to a person on the last attempt.
/// Counts a call to a channel and how long it took, by channel, call and answer.
fn observe_call(channel: &str, call: PayoutCall, answer: PayoutAnswer, took: std::time::Duration) {
    let labels = [
        ("channel", channel.to_owned()),
        ("call", call.as_str().to_owned()),
        ("answer", answer.as_str().to_owned()),
    ];
    metrics::counter!("lendcore_payout_calls_total", &labels).increment(1);
    metrics::histogram!("lendcore_payout_call_duration_seconds", &labels)
        .record(took.as_secs_f64());
}

async fn conclude(
    ctx: &JobContext,
    drawdown: &Drawdown,
    channel_id: &str,
    settled: Settled,
    hint: bool,
    last_attempt: bool,
) -> Result<JobDone, JobFailure> {
    // How the payout ended through this channel, counted once its ending is committed.
    let ending = match &settled {
        Settled::Paid {
            amount_minor,
            currency,
        } if *amount_minor == drawdown.quote.schedule.disbursed_minor
            && *currency == drawdown.currency =>
        {
            Some("paid")
        }
        // Paid other than asked: a person reconciles it.
        Settled::Paid { .. } => Some("manual_review"),
        Settled::NotPaid(_) => Some("failed"),
        Settled::Open(_) if last_attempt && !hint => Some("manual_review"),
        Settled::Open(_) => None,
    };
    let done = act_on(ctx, drawdown, channel_id, settled, hint, last_attempt).await?;
    if let Some(outcome) = ending {
        metrics::counter!("lendcore_payouts_total",
            "channel" => channel_id.to_owned(), "outcome" => outcome)
        .increment(1);
    }
    Ok(done)
}

/// Acts on what the channel said: finishes the payout, leaves it to a person, or tries again.
async fn act_on(
    ctx: &JobContext,
    drawdown: &Drawdown,
    channel_id: &str,
    settled: Settled,
    hint: bool,
    last_attempt: bool,
) -> Result<JobDone, JobFailure> {
    match settled {
        Settled::Paid {
            amount_minor,
            currency,
        } => {
            let sent = drawdown.quote.schedule.disbursed_minor;
            let ending = if amount_minor != sent || currency != drawdown.currency {
                Ending::Integrity {
                    amount_minor,
                    currency,
                }
            } else {
                Ending::Paid {
                    channel_id: channel_id.to_owned(),
                }
            };
            finish(ctx, drawdown, ending).await
        }
        Settled::NotPaid(reason) => finish(ctx, drawdown, Ending::Failed(reason)).await,
        Settled::Open(_) if hint => Ok(JobDone::Succeeded),
        Settled::Open(why) if last_attempt => {
            finish(ctx, drawdown, Ending::Review(Reason::SyncFailure, &why)).await
        }
        Settled::Open(why) => Err(JobFailure::retryable(why)),
    }
}

impl DisburseHandler {
    /// A payout job that died leaves its drawdown with a person at once; a prompted query that
    /// died leaves nothing, since the payout's own job asks anyway.
    async fn on_death(
        &self,
        store: &dyn Store,
        job: &Job,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        if hint(job) {
            return Ok(());
        }
        let Some(id) = job.payload["drawdown_id"].as_str() else {
            return Ok(());
        };
        let Some(mut uow) = crate::begin_for_id(store, id).await? else {
            return Ok(());
        };
        hand_to_person(uow.as_mut(), id, "its payout job was dead-lettered", now).await?;
        Ok(uow.commit().await?)
    }

    /// One round with the channel: ask first if we called before, send if it never got it.
    async fn attempt(
        &self,
        ctx: &JobContext,
        channel: &dyn PaymentChannel,
        drawdown: &Drawdown,
        reference: &str,
        attempts: &[PayoutAttempt],
    ) -> Result<Settled, JobFailure> {
        let called_before = attempts
            .iter()
            .any(|a| a.reference == reference && a.action == PayoutCall::Submit);
        // Called before: ask first. If the channel never got it, send it (same reference) below.
        if called_before
            && let Some(settled) = self.query(ctx, channel, drawdown, reference).await?
        {
            return Ok(settled);
        }
        let payout = Payout {
            reference: reference.to_owned(),
            account: drawdown.account.clone(),
            amount_minor: drawdown.quote.schedule.disbursed_minor,
            currency: drawdown.currency,
        };
        let store = ctx.store.as_ref();
        let attempt = record_start(
            store,
            ctx.clock.now(),
            drawdown,
            channel.id(),
            reference,
            PayoutCall::Submit,
        )
        .await?;
        let started = std::time::Instant::now();
        let outcome = channel.submit(&payout).await;
        let took = started.elapsed();
        let (label, detail) = match &outcome {
            SubmitOutcome::Accepted { channel_reference } => {
                (PayoutAnswer::Accepted, channel_reference.clone())
            }
            SubmitOutcome::Rejected { reason, detail } if channel_side(*reason) => (
                PayoutAnswer::RefusedByChannel,
                format!("{reason}: {detail}"),
            ),
            SubmitOutcome::Rejected { reason, detail } => {
                (PayoutAnswer::Rejected, format!("{reason}: {detail}"))
            }
            SubmitOutcome::NotSent { detail } => (PayoutAnswer::NotSent, detail.clone()),
            SubmitOutcome::Unknown { detail } => (PayoutAnswer::Unknown, detail.clone()),
        };
        observe_call(channel.id(), PayoutCall::Submit, label, took);
        record_end(
            store,
            ctx.clock.now(),
            drawdown,
            (channel.id(), PayoutCall::Submit, attempt),
            label,
            &detail,
        )
        .await?;
        match outcome {
            SubmitOutcome::Rejected { reason, .. }
                if channel_side(reason) && self.after(channel) =>
            {
                Ok(Settled::Open(format!(
                    "{} refused it ({reason}); failing over",
                    channel.id()
                )))
            }
            SubmitOutcome::Rejected { reason, .. } => Ok(Settled::NotPaid(reason)),
            SubmitOutcome::NotSent { detail } => Ok(Settled::Open(format!("not sent: {detail}"))),
            SubmitOutcome::Accepted { .. } | SubmitOutcome::Unknown { .. } => {
                match self.query(ctx, channel, drawdown, reference).await? {
                    Some(settled) => Ok(settled),
                    None => Ok(Settled::Open(
                        "the channel has no record of the payout yet".to_owned(),
                    )),
                }
            }
        }
    }

    /// Asks the channel; `None` when it has never seen the reference (nothing was paid).
    async fn query(
        &self,
        ctx: &JobContext,
        channel: &dyn PaymentChannel,
        drawdown: &Drawdown,
        reference: &str,
    ) -> Result<Option<Settled>, JobFailure> {
        let answer = ask(
            ctx.store.as_ref(),
            ctx.clock.as_ref(),
            channel,
            drawdown,
            reference,
        )
        .await?;
        Ok(answer.settled)
    }
}

/// What a channel said when asked about a payout.
pub(crate) struct Answer {
    /// `None` when the channel has never seen the reference (nothing was paid under it).
    pub settled: Option<Settled>,
    /// The channel's own reference for a payout it made.
    pub channel_reference: Option<String>,
    /// The answer as recorded; `None` when the channel could not be asked at all (it is no
    /// longer configured).
    pub answer: Option<PayoutAnswer>,
    /// The answer in a few words, for a person.
    pub summary: String,
}

/// Asks `channel` about the payout under `reference`, recording the call before it is made
/// and its answer after.
pub(crate) async fn ask(
    store: &dyn Store,
    clock: &dyn crate::Clock,
    channel: &dyn PaymentChannel,
    drawdown: &Drawdown,
    reference: &str,
) -> Result<Answer, StoreError> {
    let attempt = record_start(
        store,
        clock.now(),
        drawdown,
        channel.id(),
        reference,
        PayoutCall::Query,
    )
    .await?;
    let started = std::time::Instant::now();
    let answer = channel.query(reference).await;
    let took = started.elapsed();
    let (label, detail) = match &answer {
        Ok(QueryOutcome::Succeeded {
            channel_reference, ..
        }) => (PayoutAnswer::Succeeded, channel_reference.clone()),
        Ok(QueryOutcome::Failed { reason, detail }) => {
            (PayoutAnswer::Failed, format!("{reason}: {detail}"))
        }
        Ok(QueryOutcome::Pending) => (PayoutAnswer::Pending, String::new()),
        Ok(QueryOutcome::NotFound) => (PayoutAnswer::NotFound, String::new()),
        Err(err) => (PayoutAnswer::Error, err.to_string()),
    };
    observe_call(channel.id(), PayoutCall::Query, label, took);
    record_end(
        store,
        clock.now(),
        drawdown,
        (channel.id(), PayoutCall::Query, attempt),
        label,
        &detail,
    )
    .await?;
    let summary = match detail.is_empty() {
        true => format!("{}: {}", channel.id(), label.as_str()),
        false => format!("{}: {} ({detail})", channel.id(), label.as_str()),
    };
    let (settled, channel_reference) = match answer {
        Ok(QueryOutcome::Succeeded {
            amount_minor,
            currency,
            channel_reference,
        }) => (
            Some(Settled::Paid {
                amount_minor,
                currency,
            }),
            Some(channel_reference),
        ),
        Ok(QueryOutcome::Failed { reason, .. }) => (Some(Settled::NotPaid(reason)), None),
        Ok(QueryOutcome::Pending) => (
            Some(Settled::Open(
                "the channel reports the payout pending".to_owned(),
            )),
            None,
        ),
        Ok(QueryOutcome::NotFound) => (None, None),
        Err(err) => (Some(Settled::Open(err.to_string())), None),
    };
    Ok(Answer {
        settled,
        channel_reference,
        answer: Some(label),
        summary,
    })
}

impl DisburseHandler {
    /// Whether a channel follows `channel` in the order of preference.
    fn after(&self, channel: &dyn PaymentChannel) -> bool {
        self.channels
            .iter()
            .skip_while(|c| c.id() != channel.id())
            .nth(1)
            .is_some()
    }
}

/// Whether a channel has certainly not paid, from the calls made to it, oldest first. A submit
/// that never reached it, or that it refused for reasons of its own, paid nothing. A submit
/// that may have reached it (no answer, a 5xx, accepted) may have paid; that doubt ends only
/// when a later query found no payout under the reference and a later submit under the same
/// reference was refused: a channel keeps one payout per reference, so had it paid it would
/// have answered with that payout rather than a refusal.
pub(crate) fn certainly_unpaid(attempts: &[&PayoutAttempt]) -> bool {
    let mut submitted = false;
    let mut doubt = false;
    let mut found_nothing_since = false;
    for attempt in attempts {
        match (attempt.action, attempt.outcome) {
            (PayoutCall::Submit, Some(PayoutAnswer::RefusedByChannel)) => {
                submitted = true;
                if found_nothing_since {
                    doubt = false;
                }
            }
            (PayoutCall::Submit, Some(PayoutAnswer::NotSent)) => submitted = true,
            (PayoutCall::Submit, _) => {
                submitted = true;
                doubt = true;
                found_nothing_since = false;
            }
            (PayoutCall::Query, Some(PayoutAnswer::NotFound)) => found_nothing_since = doubt,
            // An error tells nothing; any other answer means the channel has the payout.
            (PayoutCall::Query, Some(PayoutAnswer::Error) | None) => {}
            (PayoutCall::Query, Some(_)) => found_nothing_since = false,
        }
    }
    submitted && !doubt
}

/// A refusal about the channel itself (down, over its limit), not about the borrower's account:
/// another channel may well pay.
fn channel_side(reason: Reason) -> bool {
    matches!(reason, Reason::ChannelUnavailable | Reason::ChannelLimit)
}

/// Whether a payout job run was prompted by a channel's callback: such a run only asks.
fn hint(job: &Job) -> bool {
    job.payload["hint"].as_bool().unwrap_or(false)
}

pub(crate) async fn record_start(
    store: &dyn Store,
    now: Timestamp,
    drawdown: &Drawdown,
    channel_id: &str,
    reference: &str,
    action: PayoutCall,
) -> Result<i64, StoreError> {
    // A prompted query and the payout job may number an attempt at the same moment; the
    // loser of that race simply takes the next number.
    let mut tries = 0;
    loop {
        tries += 1;
        let mut uow = store.begin_for(&drawdown.borrower_id).await?;
        match uow
            .start_payout_attempt(drawdown, channel_id, reference, action, now)
            .await
        {
            Ok(attempt) => {
                uow.commit().await?;
                return Ok(attempt);
            }
            Err(StoreError::Duplicate(_)) if tries < 3 => uow.rollback().await?,
            Err(other) => return Err(other),
        }
    }
}

/// Records a call's answer, and in the audit chain which channel answered what: the evidence
/// of what a channel said, and what alert rules on payout calls count.
pub(crate) async fn record_end(
    store: &dyn Store,
    now: Timestamp,
    drawdown: &Drawdown,
    call: (&str, PayoutCall, i64),
    outcome: PayoutAnswer,
    detail: &str,
) -> Result<(), StoreError> {
    let (channel_id, action, attempt) = call;
    let mut uow = store.begin_for(&drawdown.borrower_id).await?;
    uow.finish_payout_attempt(&drawdown.id, attempt, outcome, detail, now)
        .await?;
    let entry = lendcore_domain::audit::AuditEntry {
        at: now,
        actor: crate::audit::SYSTEM.to_owned(),
        action: "payout.call".to_owned(),
        subject_type: "drawdown".to_owned(),
        subject_id: drawdown.id.clone(),
        detail: serde_json::json!({
            "borrower_id": drawdown.borrower_id,
            "channel": channel_id,
            "call": action.as_str(),
            "answer": outcome.as_str(),
        })
        .to_string(),
    };
    uow.append_audit(&crate::new_id(), &entry).await?;
    uow.commit().await
}

/// How a payout ends, or that it goes to a person.
pub(crate) enum Ending<'a> {
    Paid {
        channel_id: String,
    },
    Failed(Reason),
    Review(Reason, &'a str),
    /// The channel paid something other than what we sent: stop the line, call a person.
    Integrity {
        amount_minor: i64,
        currency: Currency,
    },
}

/// Writes how the payout ended, with the job's completion, in one unit of work.
async fn finish(
    ctx: &JobContext,
    read: &Drawdown,
    ending: Ending<'_>,
) -> Result<JobDone, JobFailure> {
    let now = ctx.clock.now();
    let mut uow = ctx.store.begin_for(&read.borrower_id).await?;
    let mut drawdown = uow
        .lock_drawdown(&read.id)
        .await?
        .ok_or_else(|| JobFailure::permanent(format!("drawdown {} is gone", read.id)))?;
    if matches!(ending, Ending::Paid { .. })
        && matches!(drawdown.status, DrawdownStatus::Failed { .. })
    {
        metrics::counter!("lendcore_payout_integrity_failures_total").increment(1);
        tracing::error!(drawdown = %drawdown.id,
            "INTEGRITY: a channel reports paid a drawdown already failed and released; a person must reconcile it");
        return Err(JobFailure::permanent(
            "paid after the payout was declared failed",
        ));
    }
    let open = match drawdown.status {
        DrawdownStatus::Disbursing => true,
        // Already with a person (a prompted query and the payout job found the same thing):
        // only the channel's word that it paid settles it now.
        DrawdownStatus::ManualReview { .. } => matches!(ending, Ending::Paid { .. }),
        // Another run settled it first.
        DrawdownStatus::Quoted { .. }
        | DrawdownStatus::QueuedForMaintenance { .. }
        | DrawdownStatus::HeldForReview { .. }
        | DrawdownStatus::Active
        | DrawdownStatus::Expired { .. }
        | DrawdownStatus::Refused { .. }
        | DrawdownStatus::Failed { .. }
        | DrawdownStatus::Closed { .. } => false,
    };
    if !open {
        return Ok(JobDone::Succeeded);
    }
    let step = settle(uow.as_mut(), &mut drawdown, ending, now)
        .await
        .map_err(|e| JobFailure::retryable(e.to_string()))?;
    uow.update_drawdown(&drawdown, step.read_revision, Some(&step.transition))
        .await?;
    notify(uow.as_mut(), &drawdown, step.topic, step.reason)
        .await
        .map_err(|e| JobFailure::retryable(e.to_string()))?;
    uow.complete_job(&ctx.lease, now).await?;
    uow.commit().await?;
    Ok(JobDone::CompletedWithEffects)
}

/// Hands a payout still under way (or queued behind maintenance) to a person, with its reason
/// and a notification, in `uow`. `false` when it is not under way any more.
pub(crate) async fn hand_to_person(
    uow: &mut dyn BorrowerUnit,
    drawdown_id: &str,
    why: &str,
    now: Timestamp,
) -> Result<bool, EngineError> {
    let Some(mut drawdown) = uow.lock_drawdown(drawdown_id).await? else {
        return Ok(false);
    };
    match drawdown.status {
        DrawdownStatus::Disbursing | DrawdownStatus::QueuedForMaintenance { .. } => {}
        DrawdownStatus::Quoted { .. }
        | DrawdownStatus::HeldForReview { .. }
        | DrawdownStatus::ManualReview { .. }
        | DrawdownStatus::Active
        | DrawdownStatus::Expired { .. }
        | DrawdownStatus::Refused { .. }
        | DrawdownStatus::Failed { .. }
        | DrawdownStatus::Closed { .. } => return Ok(false),
    }
    let step = settle(
        uow,
        &mut drawdown,
        Ending::Review(Reason::SyncFailure, why),
        now,
    )
    .await?;
    uow.update_drawdown(&drawdown, step.read_revision, Some(&step.transition))
        .await?;
    notify(uow, &drawdown, step.topic, step.reason).await?;
    Ok(true)
}

/// A settlement decided, to write: the step for the timeline and the borrower's notification.
pub(crate) struct Step {
    pub read_revision: i64,
    pub transition: lendcore_domain::drawdown::Transition,
    pub topic: Topic,
    pub reason: Option<Reason>,
}

/// Books how a payout ended on the drawdown (locked in `uow`): the line, the ledger and the
/// drawdown's state. The caller writes the drawdown with the step and tells the borrower.
pub(crate) async fn settle(
    uow: &mut dyn BorrowerUnit,
    drawdown: &mut Drawdown,
    ending: Ending<'_>,
    now: Timestamp,
) -> Result<Step, EngineError> {
    let read_revision = drawdown.revision;
    let principal = drawdown.amount_minor;
    let illegal = |e: IllegalTransition| EngineError::conflict(e.code(), e.to_string());
    let (next, topic, reason) = match ending {
        Ending::Paid { channel_id } => {
            uow.draw_hold(&drawdown.line_id, principal, now).await?;
            clear_pending(uow, drawdown, now).await?;
            let accounts = LoanAccounts {
                loan_id: drawdown.id.clone(),
                channel_id,
                currency: drawdown.currency,
            };
            let entry = accounts
                .disburse(
                    new_id(),
                    Layer::Posted,
                    principal,
                    drawdown.quote.schedule.upfront_fee_minor,
                    now,
                )
                .map_err(|e| EngineError::Internal(format!("ledger: {e}")))?;
            uow.post_entry(&entry).await?;
            (
                drawdown.status.paid_out().map_err(illegal)?,
                Topic::DrawdownPaidOut,
                None,
            )
        }
        Ending::Failed(reason) => {
            uow.release_hold(&drawdown.line_id, principal, now).await?;
            clear_pending(uow, drawdown, now).await?;
            (
                drawdown.status.payout_failed(reason).map_err(illegal)?,
                Topic::DrawdownEnded,
                Some(reason),
            )
        }
        Ending::Review(reason, why) => {
            metrics::counter!("lendcore_payouts_manual_review_total").increment(1);
            tracing::error!(drawdown = %drawdown.id, reason = %reason, why,
                "payout needs a person: automatic settling gave up");
            (
                drawdown.status.to_manual_review(reason).map_err(illegal)?,
                Topic::DrawdownManualReview,
                Some(reason),
            )
        }
        Ending::Integrity {
            amount_minor,
            currency,
        } => {
            metrics::counter!("lendcore_payout_integrity_failures_total").increment(1);
            tracing::error!(drawdown = %drawdown.id, paid = amount_minor, %currency,
                sent = drawdown.quote.schedule.disbursed_minor,
                "INTEGRITY: the channel paid a different amount or currency; line frozen");
            freeze_line(uow, &drawdown.line_id, now).await?;
            let reason = Reason::AbnormalPattern;
            (
                drawdown.status.to_manual_review(reason).map_err(illegal)?,
                Topic::DrawdownManualReview,
                Some(reason),
            )
        }
    };
    let transition = drawdown.move_to(next, now);
    Ok(Step {
        read_revision,
        transition,
        topic,
        reason,
    })
}

/// The maintenance window a confirmed drawdown waited out is over: it moves on to its payout,
/// and the borrower is told. Returns the drawdown as it now stands.
async fn resume(ctx: &JobContext, read: &Drawdown) -> Result<Drawdown, JobFailure> {
    let now = ctx.clock.now();
    let mut uow = ctx.store.begin_for(&read.borrower_id).await?;
    let mut drawdown = uow
        .lock_drawdown(&read.id)
        .await?
        .ok_or_else(|| JobFailure::permanent(format!("drawdown {} is gone", read.id)))?;
    let Ok(next) = drawdown.status.resume() else {
        // Another run resumed it first.
        return Ok(drawdown);
    };
    let read_revision = drawdown.revision;
    let step = drawdown.move_to(next, now);
    uow.update_drawdown(&drawdown, read_revision, Some(&step))
        .await?;
    notify(uow.as_mut(), &drawdown, Topic::DrawdownResumed, None)
        .await
        .map_err(|e| JobFailure::retryable(e.to_string()))?;
    uow.commit().await?;
    Ok(drawdown)
}

/// Reverses the pending payout entry once the payout is settled either way.
async fn clear_pending(
    uow: &mut dyn BorrowerUnit,
    drawdown: &Drawdown,
    now: Timestamp,
) -> Result<(), EngineError> {
    let pending_id = super::pending_entry_id(&drawdown.id);
    let entries = uow.entries_for(&drawdown.id).await?;
    let Some(pending) = entries.iter().find(|e| e.id == pending_id) else {
        return Ok(());
    };
    let reversal = pending
        .reversal(format!("{pending_id}:reversed"), now)
        .map_err(|e| EngineError::Internal(format!("ledger: {e}")))?;
    uow.post_entry(&reversal).await?;
    Ok(())
}

async fn freeze_line(
    uow: &mut dyn BorrowerUnit,
    line_id: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    let Some(mut line): Option<CreditLine> = uow.find_credit_line(line_id).await? else {
        return Err(EngineError::Internal(format!("line {line_id} is gone")));
    };
    let last_seq = uow
        .credit_line_events(line_id)
        .await?
        .last()
        .map_or(0, |e| e.seq);
    let read_revision = line.revision;
    if let Ok(event) = line.freeze(
        Reason::AbnormalPattern,
        None,
        "system:disbursement".to_owned(),
        Some("the channel paid a different amount or currency than sent".to_owned()),
        last_seq,
        now,
    ) {
        uow.update_credit_line(&line, read_revision, &event).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(action: PayoutCall, outcome: Option<PayoutAnswer>) -> PayoutAttempt {
        PayoutAttempt {
            drawdown_id: "d".into(),
            attempt: 0,
            channel_id: "c".into(),
            reference: "d:c".into(),
            action,
            outcome,
            detail: None,
            started_at: chrono::DateTime::UNIX_EPOCH,
            ended_at: None,
        }
    }

    fn unpaid(calls: &[(PayoutCall, Option<PayoutAnswer>)]) -> bool {
        let attempts: Vec<PayoutAttempt> = calls.iter().map(|(a, o)| call(*a, *o)).collect();
        certainly_unpaid(&attempts.iter().collect::<Vec<_>>())
    }

    #[test]
    fn a_channel_is_certainly_unpaid_only_when_no_submit_may_have_reached_it() {
        use PayoutAnswer::*;
        use PayoutCall::{Query, Submit};
        assert!(!unpaid(&[]), "never called: nothing to fail over from");
        assert!(unpaid(&[(Submit, Some(NotSent))]));
        assert!(unpaid(&[(Submit, Some(RefusedByChannel))]));
        assert!(
            !unpaid(&[(Submit, Some(Unknown))]),
            "a lost answer may have paid"
        );
        assert!(
            !unpaid(&[(Submit, None)]),
            "a call its worker died in may have paid"
        );
        // One ambiguous answer, then the channel had nothing and refused the same reference.
        assert!(unpaid(&[
            (Submit, Some(Unknown)),
            (Query, Some(NotFound)),
            (Submit, Some(RefusedByChannel)),
        ]));
        // A refusal with no query between proves nothing about the ambiguous call.
        assert!(!unpaid(&[
            (Submit, Some(Unknown)),
            (Submit, Some(RefusedByChannel))
        ]));
        // Nothing found, but then not reached: the first call may still land.
        assert!(!unpaid(&[
            (Submit, Some(Unknown)),
            (Query, Some(NotFound)),
            (Submit, Some(NotSent)),
        ]));
        // The channel said it is paying: no refusal afterwards clears that.
        assert!(!unpaid(&[
            (Submit, Some(Accepted)),
            (Query, Some(NotFound)),
            (Query, Some(Pending)),
            (Submit, Some(RefusedByChannel)),
        ]));
        // An unanswered query changes nothing either way.
        assert!(unpaid(&[
            (Submit, Some(Unknown)),
            (Query, Some(NotFound)),
            (Query, Some(Error)),
            (Submit, Some(RefusedByChannel)),
        ]));
    }
}
