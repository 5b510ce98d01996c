//! Credit line use cases: grant, change the limit, freeze, unfreeze, close, and read with the
//! log. Operators drive them for now; the decision engine will grant lines later.

use lendcore_domain::Timestamp;
use lendcore_domain::credit_line::{CreditLine, GrantInput, LineError, LineEvent, LineView};
use lendcore_domain::reasons::Reason;
use lendcore_store::{OutboxEvent, StoreError, UnitOfWork};

use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::{Engine, EngineError, new_id};

const STALE_RETRIES: usize = 3;

pub async fn grant(
    engine: &Engine,
    input: GrantInput,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<LineView>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return Ok(Outcome::Replayed(done));
    }
    let (line, event) = CreditLine::grant(new_id(), input, now).map_err(line_error)?;
    uow.insert_credit_line(&line, &event).await?;
    announce(uow.as_mut(), &line, &event).await?;
    let view = line.view(now);
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(view))
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
        let mut uow = engine.store.begin().await?;
        if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
            return Ok(Outcome::Replayed(done));
        }
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
        let (actor, note) = (actor.clone(), note.clone());
        let event = match change {
            LineChange::Limit { limit_minor } => {
                line.change_limit(limit_minor, actor, note, last_seq, now)
            }
            LineChange::Freeze { reason, until } => {
                line.freeze(reason, until, actor, note, last_seq, now)
            }
            LineChange::Unfreeze => line.unfreeze(actor, note, last_seq, now),
            LineChange::Close { reason } => line.close(reason, actor, note, last_seq, now),
        }
        .map_err(line_error)?;
        match uow.update_credit_line(&line, read_revision, &event).await {
            // A drawdown's hold moved the line since we read it: decide again on fresh figures.
            Err(StoreError::Stale(_)) if attempt < STALE_RETRIES => continue,
            other => other?,
        }
        announce(uow.as_mut(), &line, &event).await?;
        let view = line.view(now);
        idempotency::record(uow.as_mut(), request, &view, now).await?;
        uow.commit().await?;
        return Ok(Outcome::Fresh(view));
    }
}

pub async fn get(engine: &Engine, line_id: &str) -> Result<LineView, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    let line = uow
        .find_credit_line(line_id)
        .await?
        .ok_or_else(|| line_not_found(line_id))?;
    Ok(line.view(now))
}

pub async fn of_borrower(engine: &Engine, borrower_id: &str) -> Result<Vec<LineView>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    let lines = uow.credit_lines_of(borrower_id).await?;
    Ok(lines.into_iter().map(|l| l.view(now)).collect())
}

pub async fn events(engine: &Engine, line_id: &str) -> Result<Vec<LineEvent>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    if uow.find_credit_line(line_id).await?.is_none() {
        return Err(line_not_found(line_id));
    }
    Ok(uow.credit_line_events(line_id).await?)
}

async fn announce(
    uow: &mut dyn UnitOfWork,
    line: &CreditLine,
    event: &LineEvent,
) -> Result<(), EngineError> {
    let topic = format!(
        "credit_line.{}",
        serde_json::to_value(event.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    );
    uow.append_outbox(&OutboxEvent {
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
            "reason": event.reason,
        }),
        created_at: event.at,
        published_at: None,
    })
    .await?;
    Ok(())
}

fn line_not_found(id: &str) -> EngineError {
    EngineError::not_found(
        "not_found.credit_line",
        format!("no credit line with id {id}"),
    )
}

fn line_error(err: LineError) -> EngineError {
    let code = err.code();
    match err {
        LineError::Invalid(v) => EngineError::Invalid(v),
        LineError::Closed
        | LineError::Frozen
        | LineError::NotFrozen
        | LineError::LimitBelowUsage { .. } => EngineError::conflict(code, err.to_string()),
    }
}
