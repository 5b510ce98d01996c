//! Credit line use cases: grant, change the limit, freeze, unfreeze, close, and read with the
//! log. Operators drive them for now; the decision engine will grant lines later. Two timers
//! run as jobs: a line's expiry is written to its log when its validity ends, and a freeze with
//! an end lifts itself then.

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::credit_line::{
    CreditLine, GrantInput, LineError, LineEvent, LineStatus, LineView,
};
use lendcore_domain::reasons::{Language, Reason};
use lendcore_domain::topic::Topic;
use lendcore_store::{BorrowerUnit, Job, NewJob, OutboxEvent, StoreError, UnitOfWork};

use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::jobs::kinds;
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler};
use crate::{Engine, EngineError, new_id, new_id_for};

const STALE_RETRIES: usize = 3;

/// Who the log names for what the timers do.
const SYSTEM_ACTOR: &str = "system:lendcore";

pub async fn grant(
    engine: &Engine,
    input: GrantInput,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<LineView>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_for(&input.borrower_id).await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let view = grant_in(uow.as_mut(), input, now).await?;
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(view))
}

/// Grants a line in the caller's unit of work, the borrower's (an accepted application grants
/// one with its acceptance): the line, its expiry timer and its announcement.
pub(crate) async fn grant_in(
    uow: &mut dyn BorrowerUnit,
    input: GrantInput,
    now: Timestamp,
) -> Result<LineView, EngineError> {
    let id = new_id_for(&input.borrower_id);
    let (line, event) = CreditLine::grant(id, input, now).map_err(line_error)?;
    uow.insert_credit_line(&line, &event).await?;
    uow.enqueue_job(
        &NewJob {
            id: format!("line-expiry:{}", line.id),
            kind: kinds::LINE_EXPIRY.to_owned(),
            payload: serde_json::json!({ "line_id": line.id }),
            run_at: line.valid_until,
            max_attempts: lendcore_domain::jobs::DEFAULT_MAX_ATTEMPTS,
        },
        now,
    )
    .await?;
    announce(uow, &line, &event).await?;
    Ok(line.view(now))
}

/// A change an operator asks for, decided by the domain on the line as it is now.
pub enum LineChange {
    Limit {
        limit_minor: i64,
    },
    Freeze {
        reason: Reason,
        until: Option<Timestamp>,
    },
    Unfreeze,
    Close {
        reason: Reason,
    },
}

pub async fn change(
    engine: &Engine,
    line_id: &str,
    change: LineChange,
    actor: String,
    note: Option<String>,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<LineView>, EngineError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let now = engine.clock.now();
        let mut uow = crate::begin_for_id(engine.store.as_ref(), line_id)
            .await?
            .ok_or_else(|| line_not_found(line_id))?;
        if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
            return idempotency::replayed(uow, done).await;
        }
        let line = match change_in(
            uow.as_mut(),
            line_id,
            &change,
            actor.clone(),
            note.clone(),
            now,
        )
        .await
        {
            // A drawdown's hold moved the line since we read it: decide again on fresh figures.
            Err(EngineError::Conflict {
                code: "conflict.concurrent_update",
                ..
            }) if attempt < STALE_RETRIES => continue,
            other => other?,
        };
        let view = line.view(now);
        idempotency::record(uow.as_mut(), request, &view, now).await?;
        uow.commit().await?;
        return Ok(Outcome::Fresh(view));
    }
}

/// Makes `change` to the line in `uow`: decided by the domain on the line as it is, logged,
/// its timer set, announced. `conflict.concurrent_update` when the line moved meanwhile.
pub(crate) async fn change_in(
    uow: &mut dyn BorrowerUnit,
    line_id: &str,
    change: &LineChange,
    actor: String,
    note: Option<String>,
    now: Timestamp,
) -> Result<CreditLine, EngineError> {
    let mut line = uow
        .find_credit_line(line_id)
        .await?
        .ok_or_else(|| line_not_found(line_id))?;
    let last_seq = uow
        .credit_line_events(line_id)
        .await?
        .last()
        .map_or(0, |e| e.seq);
    let read_revision = line.revision;
    let event = match change {
        LineChange::Limit { limit_minor } => {
            line.change_limit(*limit_minor, actor, note, last_seq, now)
        }
        LineChange::Freeze { reason, until } => {
            line.freeze(*reason, *until, actor, note, last_seq, now)
        }
        LineChange::Unfreeze => line.unfreeze(actor, note, last_seq, now),
        LineChange::Close { reason } => line.close(*reason, actor, note, last_seq, now),
    }
    .map_err(line_error)?;
    match uow.update_credit_line(&line, read_revision, &event).await {
        Err(StoreError::Stale(_)) => {
            return Err(EngineError::conflict(
                "conflict.concurrent_update",
                "the line changed while this change was decided; retry",
            ));
        }
        other => other?,
    }
    if let LineStatus::Frozen {
        until: Some(until), ..
    } = line.status
        && event.kind == lendcore_domain::credit_line::LineEventKind::Frozen
    {
        uow.enqueue_job(
            &NewJob {
                id: format!("line-freeze-end:{}:{}", line.id, event.seq),
                kind: kinds::LINE_FREEZE_END.to_owned(),
                payload: serde_json::json!({ "line_id": line.id, "until": until }),
                run_at: until,
                max_attempts: lendcore_domain::jobs::DEFAULT_MAX_ATTEMPTS,
            },
            now,
        )
        .await?;
    }
    announce(uow, &line, &event).await?;
    Ok(line)
}

pub async fn get(engine: &Engine, line_id: &str) -> Result<LineView, EngineError> {
    let now = engine.clock.now();
    let mut uow = read_line(engine, line_id).await?;
    Ok(find(uow.as_mut(), line_id).await?.view(now))
}

/// A snapshot of the borrower whose line `line_id` is.
async fn read_line(engine: &Engine, line_id: &str) -> Result<Box<dyn BorrowerUnit>, EngineError> {
    crate::read_for_id(engine.store.as_ref(), line_id)
        .await?
        .ok_or_else(|| line_not_found(line_id))
}

async fn find(uow: &mut dyn BorrowerUnit, line_id: &str) -> Result<CreditLine, EngineError> {
    uow.find_credit_line(line_id)
        .await?
        .ok_or_else(|| line_not_found(line_id))
}

/// A line as [`get`] reads it and, where the credit policy's review froze it or last changed
/// its limit, which rule decided (in `language`): what the line's own page shows. Two reads
/// more than [`get`], which the hot paths use.
pub async fn get_with_decider(
    engine: &Engine,
    line_id: &str,
    language: Language,
) -> Result<LineView, EngineError> {
    let now = engine.clock.now();
    let mut uow = read_line(engine, line_id).await?;
    let line = find(uow.as_mut(), line_id).await?;
    let decided_by = decided_by(engine, uow.as_mut(), &line, language).await?;
    let mut view = line.view(now);
    view.decided_by = decided_by;
    Ok(view)
}

/// The policy's decision behind a line's freeze, or behind its last change of limit, when the
/// policy (not a person) made it.
async fn decided_by(
    engine: &Engine,
    uow: &mut dyn BorrowerUnit,
    line: &CreditLine,
    language: Language,
) -> Result<Option<lendcore_domain::decision::Decider>, EngineError> {
    use lendcore_domain::credit_line::LineEventKind;
    let events = uow.credit_line_events(&line.id).await?;
    let frozen = matches!(line.status, LineStatus::Frozen { .. });
    // The decision's outcome behind each event that can explain the line as it stands.
    let explains = |kind: LineEventKind| match kind {
        LineEventKind::Frozen if frozen => Some("freeze"),
        LineEventKind::Decreased if !frozen => Some("decrease"),
        LineEventKind::Increased if !frozen => Some("increase"),
        LineEventKind::Frozen
        | LineEventKind::Decreased
        | LineEventKind::Increased
        | LineEventKind::Granted
        | LineEventKind::FreezeKept
        | LineEventKind::Unfrozen
        | LineEventKind::Closed
        | LineEventKind::Expired => None,
    };
    let Some((event, outcome)) = events
        .iter()
        .rev()
        .find_map(|e| explains(e.kind).map(|outcome| (e, outcome)))
    else {
        return Ok(None);
    };
    if event.actor != crate::decisions::POLICY_ACTOR {
        return Ok(None);
    }
    let found =
        crate::decisions::latest_about(uow, &line.borrower_id, "credit_line", &line.id, &[outcome])
            .await?;
    match found {
        Some(record) => {
            crate::decisions::decider(
                engine,
                uow,
                &record,
                crate::decisions::SettledBy::Policy,
                language,
            )
            .await
        }
        None => Ok(None),
    }
}

pub async fn of_borrower(engine: &Engine, borrower_id: &str) -> Result<Vec<LineView>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read_for(borrower_id).await?;
    let lines = uow.credit_lines().await?;
    Ok(lines.into_iter().map(|l| l.view(now)).collect())
}

pub async fn events(engine: &Engine, line_id: &str) -> Result<Vec<LineEvent>, EngineError> {
    let mut uow = read_line(engine, line_id).await?;
    if uow.find_credit_line(line_id).await?.is_none() {
        return Err(line_not_found(line_id));
    }
    Ok(uow.credit_line_events(line_id).await?)
}

/// Writes a line's expiry to its log (and tells the borrower) once its validity has ended.
pub struct ExpiryHandler;

/// Lifts a freeze whose end has come, unless the line was unfrozen or frozen anew meanwhile.
pub struct FreezeEndHandler;

#[async_trait]
impl JobHandler for ExpiryHandler {
    fn kind(&self) -> &'static str {
        kinds::LINE_EXPIRY
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        run_timer(job, ctx, |line, last, now| {
            if now < line.valid_until {
                return Ok(Timer::NotYet(line.valid_until));
            }
            Ok(Timer::Done(line.record_expiry(
                SYSTEM_ACTOR.to_owned(),
                last,
                now,
            )))
        })
        .await
    }
}

#[async_trait]
impl JobHandler for FreezeEndHandler {
    fn kind(&self) -> &'static str {
        kinds::LINE_FREEZE_END
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let set_for: Timestamp = serde_json::from_value(job.payload["until"].clone())
            .map_err(|e| JobFailure::permanent(format!("payload has no until: {e}")))?;
        run_timer(job, ctx, |line, last, now| match line.status {
            // Only the freeze this job was set for: unfrozen, or frozen anew with another end
            // (or none), the line is someone else's decision now.
            LineStatus::Frozen {
                until: Some(until), ..
            } if until == set_for => {
                if now < until {
                    return Ok(Timer::NotYet(until));
                }
                Ok(Timer::Done(line.lift_freeze_at_end(
                    SYSTEM_ACTOR.to_owned(),
                    last,
                    now,
                )?))
            }
            LineStatus::Frozen { .. } | LineStatus::Active | LineStatus::Closed { .. } => {
                Ok(Timer::Done(None))
            }
        })
        .await
    }
}

/// What a timer decided about its line.
enum Timer {
    /// Its time has not come (a job made before it knew the time): run again then.
    NotYet(Timestamp),
    /// The change to write, or nothing left to do.
    Done(Option<LineEvent>),
}

/// Loads the job's line, lets `decide` change it, and writes the change, its log entry, its
/// notification and the job's completion in one unit of work; decides again if a drawdown's
/// hold moved the line meanwhile.
async fn run_timer(
    job: &Job,
    ctx: &JobContext,
    decide: impl Fn(&mut CreditLine, i64, Timestamp) -> Result<Timer, LineError>,
) -> Result<JobDone, JobFailure> {
    let id = job.payload["line_id"]
        .as_str()
        .ok_or_else(|| JobFailure::permanent("payload has no line_id"))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let now = ctx.clock.now();
        let mut uow = crate::begin_for_id(ctx.store.as_ref(), id)
            .await?
            .ok_or_else(|| JobFailure::permanent(format!("credit line {id} is gone")))?;
        let mut line = uow
            .find_credit_line(id)
            .await?
            .ok_or_else(|| JobFailure::permanent(format!("credit line {id} is gone")))?;
        let last_seq = uow
            .credit_line_events(id)
            .await?
            .last()
            .map_or(0, |e| e.seq);
        let read_revision = line.revision;
        let event = match decide(&mut line, last_seq, now)
            .map_err(|e| JobFailure::permanent(format!("line {id}: {e}")))?
        {
            Timer::NotYet(at) => return Ok(JobDone::Postponed(at)),
            Timer::Done(None) => return Ok(JobDone::Succeeded),
            Timer::Done(Some(event)) => event,
        };
        match uow.update_credit_line(&line, read_revision, &event).await {
            Err(StoreError::Stale(_)) if attempt < STALE_RETRIES => continue,
            other => other?,
        }
        announce(uow.as_mut(), &line, &event)
            .await
            .map_err(|e| JobFailure::retryable(e.to_string()))?;
        uow.complete_job(&ctx.lease, now).await?;
        uow.commit().await?;
        return Ok(JobDone::CompletedWithEffects);
    }
}

pub(crate) async fn announce(
    uow: &mut dyn UnitOfWork,
    line: &CreditLine,
    event: &LineEvent,
) -> Result<(), EngineError> {
    let topic = Topic::of_line_event(event.kind).as_str().to_owned();
    crate::audit::announce(
        uow,
        OutboxEvent {
            id: new_id(),
            topic,
            aggregate_type: "credit_line".to_owned(),
            aggregate_id: line.id.clone(),
            payload: serde_json::json!({
                "line_id": line.id,
                "borrower_id": line.borrower_id,
                "seq": event.seq,
                "limit_before_minor": event.limit_before_minor,
                "limit_after_minor": event.limit_after_minor,
                "currency": line.currency,
                "reason": event.reason,
            }),
            created_at: event.at,
            published_at: None,
        },
        &event.actor,
    )
    .await?;
    Ok(())
}

fn line_not_found(id: &str) -> EngineError {
    EngineError::not_found(
        "not_found.credit_line",
        format!("no credit line with id {id}"),
    )
}

pub(crate) fn line_error(err: LineError) -> EngineError {
    let code = err.code();
    match err {
        LineError::Invalid(v) => EngineError::Invalid(v),
        LineError::Closed
        | LineError::Frozen
        | LineError::NotFrozen
        | LineError::LimitBelowUsage { .. } => EngineError::conflict(code, err.to_string()),
    }
}
