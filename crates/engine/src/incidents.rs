//! Incidents: declared by an operator, or raised by an alert whose rule says so and ended when
//! it resolves. Each shows on `/v1/status` while it lasts and a day after; the borrowers whose
//! payouts it touches are told in their language (a job, so a large book does not hold the
//! declaration up), and the same borrowers are told when it ends. An incident and its
//! messages are written under one lock per incident, so nobody is told of one after being
//! told it is over.

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::incident::{
    Component, Incident, IncidentChange, IncidentError, IncidentInput, IncidentSpec,
};
use lendcore_domain::topic::Topic;
use lendcore_store::{Job, NewJob, OutboxEvent, UnitOfWork};

use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler, kinds};
use crate::{Engine, EngineError, new_id};

/// Borrowers told per transaction.
const PAGE: u32 = 200;

fn incident_error(err: IncidentError) -> EngineError {
    match err {
        IncidentError::Invalid(v) => EngineError::Invalid(v),
        IncidentError::Ended => EngineError::conflict(err.code(), err.to_string()),
    }
}

fn not_found() -> EngineError {
    EngineError::not_found("not_found.incident", "no incident with that id")
}

fn lock(id: &str) -> String {
    format!("incident:{id}")
}

/// An operator declares an incident; borrowers whose payouts it touches are told next.
pub async fn declare(
    engine: &Engine,
    input: IncidentInput,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<Incident>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let actor = crate::acting::current();
    let incident = Incident::declare(new_id(), input, &actor, now).map_err(incident_error)?;
    // A misspelt channel would tell nobody while the banner names it.
    if let Some(channel) = &incident.channel
        && !engine.channels.iter().any(|c| c.id() == channel)
    {
        return Err(EngineError::Invalid(
            lendcore_domain::validation::Violations::single(
                "channel",
                "validation.unknown_channel",
                format!("no payment channel {channel} is configured"),
            ),
        ));
    }
    opened(uow.as_mut(), &incident, &actor, now).await?;
    idempotency::record(uow.as_mut(), request, &incident, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(incident))
}

/// Changes an open incident read at `revision`: its impact, note or expected end. Borrowers
/// see it on the status; they are not messaged again.
pub async fn change(
    engine: &Engine,
    id: &str,
    revision: i64,
    change: IncidentChange,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<Incident>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    // The incident's lock, as its end takes: an alert resolving meanwhile waits, rather than
    // failing its whole evaluation on a revision this change moved.
    uow.serialise_on(&lock(id)).await?;
    let mut incident = uow.find_incident(id).await?.ok_or_else(not_found)?;
    if incident.revision != revision {
        return Err(changed(incident.revision));
    }
    incident.change(change, now).map_err(incident_error)?;
    if !uow.update_incident(&incident, revision).await? {
        return Err(changed(revision + 1));
    }
    announce(
        uow.as_mut(),
        Topic::IncidentChanged,
        &incident,
        &crate::acting::current(),
        now,
    )
    .await?;
    idempotency::record(uow.as_mut(), request, &incident, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(incident))
}

fn changed(now_at: i64) -> EngineError {
    EngineError::conflict(
        "conflict.incident_changed",
        format!("the incident is at revision {now_at} now: read it again before changing it"),
    )
}

/// An operator ends an incident (one an alert raised too); the borrowers told of it are told.
pub async fn end(
    engine: &Engine,
    id: &str,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<Incident>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    uow.serialise_on(&lock(id)).await?;
    let mut incident = uow.find_incident(id).await?.ok_or_else(not_found)?;
    ended(uow.as_mut(), &mut incident, &crate::acting::current(), now).await?;
    idempotency::record(uow.as_mut(), request, &incident, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(incident))
}

pub async fn get(engine: &Engine, id: &str) -> Result<Incident, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    uow.find_incident(id).await?.ok_or_else(not_found)
}

/// The latest incidents, newest first; `open` narrows to open or ended ones.
pub async fn list(
    engine: &Engine,
    open: Option<bool>,
    limit: u32,
) -> Result<Vec<Incident>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    Ok(uow.list_incidents(open, limit).await?)
}

/// Raises the incident an alert's rule asks for, in the alert's transaction; `channel` is the
/// alert's group when the rule groups by channel. One open incident per alert.
pub(crate) async fn raise_for_alert(
    uow: &mut dyn UnitOfWork,
    spec: &IncidentSpec,
    channel: Option<String>,
    alert_id: &str,
    rule: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    if uow.open_incident_of_alert(alert_id).await?.is_some() {
        return Ok(());
    }
    let incident = Incident::raised_by(new_id(), spec, channel, alert_id, rule, now);
    opened(uow, &incident, crate::audit::SYSTEM, now).await
}

/// Ends the incident an alert raised, if it is still open, in the alert's transaction.
pub(crate) async fn end_for_alert(
    uow: &mut dyn UnitOfWork,
    alert_id: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    let Some(incident) = uow.open_incident_of_alert(alert_id).await? else {
        return Ok(());
    };
    uow.serialise_on(&lock(&incident.id)).await?;
    // Read again under the lock: an operator may have ended it meanwhile.
    let Some(mut incident) = uow.find_incident(&incident.id).await? else {
        return Ok(());
    };
    if !incident.is_open() {
        return Ok(());
    }
    ended(uow, &mut incident, crate::audit::SYSTEM, now).await
}

async fn opened(
    uow: &mut dyn UnitOfWork,
    incident: &Incident,
    actor: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    uow.insert_incident(incident).await?;
    uow.enqueue_job(
        &job(kinds::INCIDENT_NOTICE, "incident-notice", &incident.id, now),
        now,
    )
    .await?;
    announce(uow, Topic::IncidentDeclared, incident, actor, now).await
}

async fn ended(
    uow: &mut dyn UnitOfWork,
    incident: &mut Incident,
    actor: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    let read_revision = incident.revision;
    incident.end(now).map_err(incident_error)?;
    if !uow.update_incident(incident, read_revision).await? {
        return Err(changed(read_revision + 1));
    }
    uow.enqueue_job(
        &job(kinds::INCIDENT_OVER, "incident-over", &incident.id, now),
        now,
    )
    .await?;
    announce(uow, Topic::IncidentEnded, incident, actor, now).await
}

fn job(kind: &str, prefix: &str, id: &str, now: Timestamp) -> NewJob {
    NewJob {
        id: format!("{prefix}:{id}"),
        kind: kind.to_owned(),
        payload: serde_json::json!({ "incident_id": id }),
        run_at: now,
        max_attempts: lendcore_domain::jobs::DEFAULT_MAX_ATTEMPTS,
    }
}

async fn announce(
    uow: &mut dyn UnitOfWork,
    topic: Topic,
    incident: &Incident,
    actor: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    crate::audit::announce(
        uow,
        OutboxEvent {
            id: new_id(),
            topic: topic.as_str().to_owned(),
            aggregate_type: "incident".to_owned(),
            aggregate_id: incident.id.clone(),
            payload: serde_json::to_value(incident)
                .map_err(|e| EngineError::Internal(e.to_string()))?,
            created_at: now,
            published_at: None,
        },
        actor,
    )
    .await
}

/// What a borrower is sent of an incident: the incident, so the message is written in their
/// language when it is sent.
fn borrower_event(
    topic: Topic,
    borrower: &str,
    incident: &Incident,
    now: Timestamp,
) -> OutboxEvent {
    OutboxEvent {
        id: new_id(),
        topic: topic.as_str().to_owned(),
        aggregate_type: "borrower".to_owned(),
        aggregate_id: borrower.to_owned(),
        payload: serde_json::json!({ "borrower_id": borrower, "incident": incident }),
        created_at: now,
        published_at: None,
    }
}

fn incident_id(job: &Job) -> Result<String, JobFailure> {
    job.payload["incident_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| JobFailure::permanent("payload has no incident_id"))
}

/// Tells each borrower whose payouts an incident touches, a page per transaction; a borrower
/// told already (a retried job) is not told twice. Incidents of applications or repayments
/// show on the status only: nothing in flight waits on them for a borrower to be told of.
pub struct NoticeHandler;

#[async_trait]
impl JobHandler for NoticeHandler {
    fn kind(&self) -> &'static str {
        kinds::INCIDENT_NOTICE
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let id = incident_id(job)?;
        let mut after = String::new();
        let mut told = 0;
        loop {
            let now = ctx.clock.now();
            let mut uow = ctx.store.begin().await?;
            uow.serialise_on(&lock(&id)).await?;
            let incident = uow
                .find_incident(&id)
                .await?
                .ok_or_else(|| JobFailure::permanent(format!("incident {id} is gone")))?;
            if !incident.is_open() {
                break;
            }
            let channel = match incident.component {
                Component::Payouts => incident.channel.as_deref(),
                Component::Service => None,
                Component::Applications | Component::Repayments => break,
            };
            let borrowers = uow.borrowers_paying_out(channel, &after, PAGE).await?;
            let Some(last) = borrowers.last().cloned() else {
                break;
            };
            for borrower in uow.record_incident_notices(&id, &borrowers, now).await? {
                uow.append_outbox(&borrower_event(
                    Topic::IncidentNotice,
                    &borrower,
                    &incident,
                    now,
                ))
                .await?;
                told += 1;
            }
            uow.commit().await?;
            after = last;
        }
        tracing::info!(incident = %id, borrowers = told, "incident notices queued");
        Ok(JobDone::Succeeded)
    }
}

/// Tells the borrowers told of an incident that it is over, a page per transaction, each once.
pub struct OverHandler;

#[async_trait]
impl JobHandler for OverHandler {
    fn kind(&self) -> &'static str {
        kinds::INCIDENT_OVER
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let id = incident_id(job)?;
        loop {
            let now = ctx.clock.now();
            let mut uow = ctx.store.begin().await?;
            uow.serialise_on(&lock(&id)).await?;
            let incident = uow
                .find_incident(&id)
                .await?
                .ok_or_else(|| JobFailure::permanent(format!("incident {id} is gone")))?;
            let borrowers = uow.take_incident_ends_to_tell(&id, PAGE, now).await?;
            if borrowers.is_empty() {
                return Ok(JobDone::Succeeded);
            }
            for borrower in &borrowers {
                uow.append_outbox(&borrower_event(
                    Topic::IncidentOver,
                    borrower,
                    &incident,
                    now,
                ))
                .await?;
            }
            uow.commit().await?;
        }
    }
}
