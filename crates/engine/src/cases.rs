//! Support cases: a borrower (or support on their behalf) opens one about their application,
//! drawdown, loan or line; support owes an answer by a deadline (`Engine::case_response`), is
//! reminded a quarter of that time before it (`case.due_soon`) and alerted when it passes
//! (`case.overdue`, which the default alert rule `support-case-overdue` counts); the borrower is
//! told of the case, of each answer and of its resolution, by SMS and email. Every change is one
//! transaction with its audited event; every statement names the borrower.

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::case::{
    Author, Case, CaseError, CaseMessage, CaseStatus, NewCase, Subject, SubjectKind,
};
use lendcore_domain::reasons::Reason;
use lendcore_domain::topic::Topic;
use lendcore_store::{Job, NewJob, OutboxEvent, UnitOfWork};
use serde::{Deserialize, Serialize};

use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler, kinds};
use crate::{Engine, EngineError, new_id};

/// Who is acting on a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The borrower themselves.
    Borrower,
    /// Support (an operator, or the lender's back-end), as the audit names them.
    Support(String),
}

impl Actor {
    fn author(&self) -> Author {
        match self {
            Actor::Borrower => Author::Borrower,
            Actor::Support(actor) => Author::Support {
                actor: actor.clone(),
            },
        }
    }

    fn audit_name(&self, borrower_id: &str) -> String {
        match self {
            Actor::Borrower => format!("borrower:{borrower_id}"),
            Actor::Support(actor) => actor.clone(),
        }
    }
}

/// A case with its messages, as its reader may see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseView {
    #[serde(flatten)]
    pub case: Case,
    /// Oldest first; a borrower is not shown support's internal notes.
    pub thread: Vec<CaseMessage>,
}

/// Open cases a borrower may have at once: enough for every thing they have, few enough that a
/// script cannot text them (and page support) without end.
pub const MAX_OPEN_CASES: usize = 5;

impl CaseView {
    /// What its reader may see: a borrower is shown the reason as the catalogue tells
    /// borrowers (never a risk rule's exact cause) and support as "support", not by name.
    fn seen_by(mut self, reader: &Actor) -> CaseView {
        match reader {
            Actor::Support(_) => self,
            Actor::Borrower => {
                self.case = borrowers_view(self.case);
                for message in &mut self.thread {
                    if let Author::Support { actor } = &mut message.author {
                        *actor = "support".to_owned();
                    }
                }
                self
            }
        }
    }
}

fn borrowers_view(mut case: Case) -> Case {
    case.reason = case.reason.map(Reason::for_borrower);
    if !case.opened_by.starts_with("borrower:") {
        case.opened_by = "support".to_owned();
    }
    case
}

/// Whether `borrower_id` is the borrower registered with the number a session proved (a session
/// opened before its borrower registered names none).
pub async fn registered_with(
    engine: &Engine,
    borrower_id: &str,
    mobile_index: &str,
) -> Result<bool, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    Ok(uow
        .find_borrower(borrower_id)
        .await?
        .and_then(|b| b.mobile_index)
        .is_some_and(|index| index == mobile_index))
}

fn case_error(err: CaseError) -> EngineError {
    let code = err.code();
    match err {
        CaseError::Invalid(v) => EngineError::Invalid(v),
        CaseError::Resolved | CaseError::TooOldToReopen => {
            EngineError::conflict(code, err.to_string())
        }
    }
}

fn not_found() -> EngineError {
    // The same words for a case that does not exist and one that is another borrower's.
    EngineError::not_found("not_found.case", "no case with that id for that borrower")
}

fn changed() -> EngineError {
    EngineError::conflict(
        "conflict.case_changed",
        "the case changed while this was written: read it again",
    )
}

/// Opens a case about `subject`, which must be the borrower's.
pub async fn open(
    engine: &Engine,
    borrower_id: &str,
    actor: &Actor,
    subject: Subject,
    reason: Option<Reason>,
    text: &str,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<CaseView>, EngineError> {
    let now = engine.clock.now();
    // The borrower's unit: a line or drawdown of anyone else's is not found in it.
    let mut uow = engine.store.begin_for(borrower_id).await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    if uow.find_borrower(borrower_id).await?.is_none() {
        return Err(EngineError::not_found(
            "not_found.borrower",
            "no borrower with that id",
        ));
    }
    let owner = match subject.kind {
        SubjectKind::Drawdown | SubjectKind::Loan => {
            uow.find_drawdown(&subject.id).await?.map(|d| d.borrower_id)
        }
        SubjectKind::CreditLine => uow
            .find_credit_line(&subject.id)
            .await?
            .map(|l| l.borrower_id),
        SubjectKind::Application => uow
            .find_application(&subject.id)
            .await?
            .and_then(|(app, _)| app.borrower_id),
    };
    if owner.as_deref() != Some(borrower_id) {
        return Err(EngineError::not_found(
            "not_found.case_subject",
            format!("the borrower has no {} with that id", subject.kind.as_str()),
        ));
    }
    let open_now = uow
        .cases_of(borrower_id, None, 50)
        .await?
        .iter()
        .filter(|c| c.status != CaseStatus::Resolved)
        .count();
    if open_now >= MAX_OPEN_CASES {
        return Err(EngineError::conflict(
            "conflict.too_many_open_cases",
            format!(
                "the borrower has {open_now} cases open: write to one of them, or wait for \
                 one to be resolved"
            ),
        ));
    }
    let (case, first) = Case::open(
        NewCase {
            id: new_id(),
            borrower_id: borrower_id.to_owned(),
            subject,
            reason,
            author: actor.author(),
            text: text.to_owned(),
        },
        now,
        engine.case_response,
    )
    .map_err(case_error)?;
    uow.insert_case(&case).await?;
    uow.append_case_message(borrower_id, &case.id, &first)
        .await?;
    schedule_due(engine, uow.as_mut(), &case, now).await?;
    announce(
        uow.as_mut(),
        Topic::CaseOpened,
        &case,
        Some(&first),
        &actor.audit_name(borrower_id),
        now,
    )
    .await?;
    let view = CaseView {
        case,
        thread: vec![first],
    }
    .seen_by(actor);
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(view))
}

/// Writes to a case: the borrower (which reopens a resolved one for a while), or support (an
/// answer the borrower is sent, or an internal note they never see).
pub async fn write(
    engine: &Engine,
    borrower_id: &str,
    case_id: &str,
    actor: &Actor,
    text: &str,
    internal: bool,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<CaseView>, EngineError> {
    change(
        engine,
        (borrower_id, case_id),
        actor,
        request,
        |case, now| {
            Ok(match actor {
                Actor::Borrower if internal => {
                    return Err(EngineError::Invalid(
                        lendcore_domain::validation::Violations::single(
                            "internal",
                            "validation.not_allowed",
                            "internal notes are support's",
                        ),
                    ));
                }
                Actor::Borrower => (
                    case.borrower_writes(text, now, engine.case_response)
                        .map_err(case_error)?,
                    Topic::CaseBorrowerWrote,
                ),
                Actor::Support(who) => (
                    case.support_writes(who, text, internal, now)
                        .map_err(case_error)?,
                    if internal {
                        Topic::CaseNoted
                    } else {
                        Topic::CaseAnswered
                    },
                ),
            })
        },
    )
    .await
}

/// Support settles a case, telling the borrower how.
pub async fn resolve(
    engine: &Engine,
    borrower_id: &str,
    case_id: &str,
    actor: &str,
    text: &str,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<CaseView>, EngineError> {
    let support = Actor::Support(actor.to_owned());
    change(
        engine,
        (borrower_id, case_id),
        &support,
        request,
        |case, now| {
            Ok((
                case.resolve(actor, text, now).map_err(case_error)?,
                Topic::CaseResolved,
            ))
        },
    )
    .await
}

/// One change to a case by `actor`, in one transaction: `decide` moves the case (in the
/// domain) and says what it wrote and what to announce; the case is saved at the revision read,
/// the message appended, a new deadline scheduled, the change announced and audited.
async fn change(
    engine: &Engine,
    (borrower_id, case_id): (&str, &str),
    actor: &Actor,
    request: Option<&IdempotentRequest>,
    decide: impl FnOnce(&mut Case, Timestamp) -> Result<(CaseMessage, Topic), EngineError>,
) -> Result<Outcome<CaseView>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let mut case = uow
        .find_case(borrower_id, case_id)
        .await?
        .ok_or_else(not_found)?;
    let read_revision = case.revision;
    let (message, topic) = decide(&mut case, now)?;
    save(uow.as_mut(), &case, read_revision, &message).await?;
    if topic == Topic::CaseBorrowerWrote {
        schedule_due(engine, uow.as_mut(), &case, now).await?;
    }
    announce(
        uow.as_mut(),
        topic,
        &case,
        Some(&message),
        &actor.audit_name(borrower_id),
        now,
    )
    .await?;
    let view = view(uow.as_mut(), case, actor).await?;
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(view))
}

pub async fn get(
    engine: &Engine,
    borrower_id: &str,
    case_id: &str,
    reader: &Actor,
) -> Result<CaseView, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let case = uow
        .find_case(borrower_id, case_id)
        .await?
        .ok_or_else(not_found)?;
    view(uow.as_mut(), case, reader).await
}

/// A borrower's cases, latest first; `about` narrows to what one page shows.
pub async fn list(
    engine: &Engine,
    borrower_id: &str,
    about: Option<(SubjectKind, &str)>,
    reader: &Actor,
    limit: u32,
) -> Result<Vec<Case>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let cases = uow.cases_of(borrower_id, about, limit).await?;
    Ok(match reader {
        Actor::Support(_) => cases,
        Actor::Borrower => cases.into_iter().map(borrowers_view).collect(),
    })
}

/// Support's queue: cases in `status`, the soonest deadline first.
pub async fn queue(
    engine: &Engine,
    status: CaseStatus,
    limit: u32,
) -> Result<Vec<Case>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    Ok(uow.case_queue(status, limit).await?)
}

async fn view(
    uow: &mut dyn UnitOfWork,
    case: Case,
    reader: &Actor,
) -> Result<CaseView, EngineError> {
    let thread = uow
        .case_messages(&case.borrower_id, &case.id)
        .await?
        .into_iter()
        .filter(|m| match reader {
            Actor::Borrower => !m.internal,
            Actor::Support(_) => true,
        })
        .collect();
    Ok(CaseView { case, thread }.seen_by(reader))
}

async fn save(
    uow: &mut dyn UnitOfWork,
    case: &Case,
    read_revision: i64,
    message: &CaseMessage,
) -> Result<(), EngineError> {
    if !uow.update_case(case, read_revision).await? {
        return Err(changed());
    }
    uow.append_case_message(&case.borrower_id, &case.id, message)
        .await?;
    Ok(())
}

/// The reminder before a case's deadline and the check at it, each a job named by the
/// deadline, so a new deadline has its own and a met one finds nothing to do.
async fn schedule_due(
    engine: &Engine,
    uow: &mut dyn UnitOfWork,
    case: &Case,
    now: Timestamp,
) -> Result<(), EngineError> {
    let Some(deadline) = case.respond_by else {
        return Ok(());
    };
    let reminder = deadline - engine.case_response / 4;
    for (stage, at) in [(Stage::Reminder, reminder), (Stage::Deadline, deadline)] {
        uow.enqueue_job_once(
            &NewJob {
                id: format!(
                    "case-{}:{}:{}:{}",
                    stage.as_str(),
                    case.borrower_id,
                    case.id,
                    deadline.timestamp_millis()
                ),
                kind: kinds::CASE_DUE.to_owned(),
                payload: serde_json::to_value(DuePayload {
                    borrower_id: case.borrower_id.clone(),
                    case_id: case.id.clone(),
                    deadline,
                    stage,
                })
                .map_err(|e| EngineError::Internal(e.to_string()))?,
                run_at: at.max(now),
                max_attempts: lendcore_domain::jobs::DEFAULT_MAX_ATTEMPTS,
            },
            now,
        )
        .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Stage {
    Reminder,
    Deadline,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Reminder => "reminder",
            Stage::Deadline => "deadline",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct DuePayload {
    borrower_id: String,
    case_id: String,
    deadline: Timestamp,
    stage: Stage,
}

/// Announces a change of a case, done by `actor`: the event carries the message for those who
/// are sent it (the borrower, for an answer; support's tools, for the rest), while the audit
/// records who did what without the words, which may hold personal data the permanent chain
/// must not.
async fn announce(
    uow: &mut dyn UnitOfWork,
    topic: Topic,
    case: &Case,
    message: Option<&CaseMessage>,
    actor: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    uow.append_outbox(&OutboxEvent {
        id: new_id(),
        topic: topic.as_str().to_owned(),
        aggregate_type: "support_case".to_owned(),
        aggregate_id: case.id.clone(),
        payload: serde_json::json!({
            "borrower_id": case.borrower_id,
            "case": case,
            "message": message,
        }),
        created_at: now,
        published_at: None,
    })
    .await?;
    crate::audit::record(
        uow,
        actor,
        topic.as_str(),
        ("support_case", &case.id),
        serde_json::json!({
            "borrower_id": case.borrower_id,
            "subject": case.subject,
            "status": case.status,
            "respond_by": case.respond_by,
            "message_seq": message.map(|m| m.seq),
        }),
        now,
    )
    .await
}

/// Reminds support before a case's deadline, and marks it overdue when the deadline passes
/// unanswered; a case answered meanwhile (or given a new deadline) is left alone.
pub struct DueHandler;

#[async_trait]
impl JobHandler for DueHandler {
    fn kind(&self) -> &'static str {
        kinds::CASE_DUE
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let due: DuePayload = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobFailure::permanent(format!("payload: {e}")))?;
        let now = ctx.clock.now();
        let mut uow = ctx.store.begin().await?;
        let Some(mut case) = uow.find_case(&due.borrower_id, &due.case_id).await? else {
            return Err(JobFailure::permanent(format!(
                "case {} of borrower {} is gone",
                due.case_id, due.borrower_id
            )));
        };
        let read_revision = case.revision;
        let topic = match due.stage {
            Stage::Reminder if case.still_due(due.deadline) => Topic::CaseDueSoon,
            Stage::Deadline if case.fall_due(due.deadline, now) => {
                if !uow.update_case(&case, read_revision).await? {
                    return Err(JobFailure::retryable("the case changed meanwhile"));
                }
                Topic::CaseOverdue
            }
            Stage::Reminder | Stage::Deadline => return Ok(JobDone::Succeeded),
        };
        announce(uow.as_mut(), topic, &case, None, crate::audit::SYSTEM, now)
            .await
            .map_err(|e| JobFailure::retryable(e.to_string()))?;
        uow.complete_job(&ctx.lease, now).await?;
        uow.commit().await?;
        if topic == Topic::CaseOverdue {
            tracing::warn!(case = %case.id, borrower = %case.borrower_id,
                "a support case passed its deadline unanswered");
        }
        Ok(JobDone::CompletedWithEffects)
    }
}
