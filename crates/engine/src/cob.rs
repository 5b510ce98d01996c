//! Close of business: once per business date, for every active loan, in a short transaction
//! of its own — accrue the day's interest, charge penalty interest on installments past their
//! grace days, update the delinquency bucket and queue reminders. Re-running a date, or resuming
//! after a crash, does nothing twice: each loan remembers the last date it was closed for.
//!
//! It runs by hand (`lendcore cob run`) or as the daily job every `serve` process schedules:
//! the job for a date has a fixed id, so however many processes schedule it, it exists once
//! and one worker at a time runs it (its lease). A long run continues in slices, each shorter
//! than a lease, so no other worker takes it over mid-way.

use lendcore_domain::topic::Topic;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::NaiveTime;
use lendcore_domain::calendar::Date;
use lendcore_domain::drawdown::{Drawdown, DrawdownStatus};
use lendcore_domain::ledger::LoanAccounts;
use lendcore_domain::schedule::accrued_interest;
use lendcore_domain::servicing::{Delinquency, PenaltyTerms, overdue};
use lendcore_store::{Job, JobStatus, NewJob, OutboxEvent, Store, StoreError, UnitOfWork};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::jobs::kinds;
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler};
use crate::{Clock, Engine, EngineError, new_id};

const PAGE: u32 = 500;
const STALE_RETRIES: usize = 3;

/// Attempts at a day's close (a failure is a database outage or loans that kept changing)
/// before it is dead-lettered and an operator is alerted.
const COB_ATTEMPTS: u32 = 10;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CobReport {
    pub loans_closed: usize,
    /// Loans this date had already been run for.
    pub loans_skipped: usize,
    /// Payouts whose job died (its worker crashed on the last attempt) handed to a person.
    pub payouts_escalated: usize,
    /// Loans left for a re-run because repayments kept changing them during this one.
    pub loans_busy: usize,
    pub interest_accrued_minor: i64,
    pub penalty_charged_minor: i64,
    pub reminders: usize,
    /// Every loan was visited; `false` when a slice ran out of time first.
    pub complete: bool,
}

/// Runs close of business for `date`. `progress` is told (loans visited, active loans) after
/// each batch.
pub async fn run(
    engine: &Engine,
    date: Date,
    progress: impl FnMut(usize, usize),
) -> Result<CobReport, EngineError> {
    run_until(engine, date, None, progress).await
}

/// Runs close of business for `date` until every loan is visited or `deadline` passes, when
/// the report says it is not `complete`; running again continues where it stopped.
pub async fn run_until(
    engine: &Engine,
    date: Date,
    deadline: Option<Instant>,
    mut progress: impl FnMut(usize, usize),
) -> Result<CobReport, EngineError> {
    let mut report = CobReport {
        payouts_escalated: escalate_dead_payouts(engine).await?,
        ..CobReport::default()
    };
    // Every active loan, closed for this date already or not: counting only those still to
    // close would read every row of a large book.
    let total = {
        let mut uow = engine.store.begin_read().await?;
        usize::try_from(uow.count_drawdowns_in_state("active").await?).unwrap_or(usize::MAX)
    };
    let mut terms = TermsCache::default();
    let mut after = String::new();
    let mut next = decide_batch(engine, &after, date, &mut terms).await?;
    let mut attempt = 1;
    while let Some(batch) = next {
        // The next batch is read and decided while this one is written and committed: it
        // holds other loans (those after this one's last), and the two overlap the wait for
        // the COMMIT with the work of deciding.
        let (written, following) = tokio::join!(
            write_batch(engine, &batch),
            decide_batch(engine, &batch.last, date, &mut terms)
        );
        if !written? {
            // A loan moved since it was read (a repayment): the same loans again on fresh
            // figures, a few times, then left for a re-run.
            if attempt < STALE_RETRIES {
                attempt += 1;
                next = decide_batch(engine, &after, date, &mut terms).await?;
                continue;
            }
            tracing::warn!(%date, loans = batch.changed.len(), "close of business left a batch for a re-run: it kept changing");
            report.loans_busy += batch.changed.len();
        } else {
            report.loans_closed += batch.counts.loans_closed;
            report.interest_accrued_minor += batch.counts.interest_accrued_minor;
            report.penalty_charged_minor += batch.counts.penalty_charged_minor;
            report.reminders += batch.counts.reminders;
        }
        report.loans_skipped += batch.counts.loans_skipped;
        attempt = 1;
        after = batch.last;
        next = following?;
        let done = report.loans_closed + report.loans_skipped + report.loans_busy;
        progress(done, total.max(done));
        // Checked after a batch, so every slice makes progress however short it is.
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(report);
        }
    }
    report.complete = true;
    Ok(report)
}

/// The id of the job that closes `date`: one per date, whoever schedules it.
pub fn cob_job_id(date: Date) -> String {
    format!("cob:{date}")
}

/// The latest business date whose close is due at `now`: a date closes once it has ended and
/// the clock has passed `run_after` (UTC) on the next day.
pub fn due_date(now: lendcore_domain::Timestamp, run_after: NaiveTime) -> Date {
    let since_midnight = run_after - NaiveTime::MIN;
    (now - since_midnight).date_naive() - chrono::Duration::days(1)
}

/// Schedules the next close of business that is due, if any: the day after the last one
/// closed (catching up, one date at a time and in order, on every day missed while no process
/// ran), or the date just due on a fresh database. A date whose job is dead holds back the
/// dates after it until an operator re-drives it: none is skipped. Safe to call from every
/// process at once.
/// Returns the date scheduled now.
pub async fn schedule_due(
    store: &dyn Store,
    clock: &dyn Clock,
    run_after: NaiveTime,
) -> Result<Option<Date>, EngineError> {
    let now = clock.now();
    let due = due_date(now, run_after);
    let mut uow = store.begin().await?;
    let latest = uow.latest_job_of_kind(kinds::CLOSE_OF_BUSINESS).await?;
    let next = match latest {
        None => due,
        // Dates close in order: the next waits until this one is done (a dead one has alerted).
        Some(job) if job.status != JobStatus::Succeeded => return Ok(None),
        Some(job) => match job_date(&job) {
            Some(date) if date < due => date + chrono::Duration::days(1),
            Some(_) => return Ok(None),
            None => return Err(EngineError::Internal(format!("job {} has no date", job.id))),
        },
    };
    let added = uow
        .enqueue_job_once(
            &NewJob {
                id: cob_job_id(next),
                kind: kinds::CLOSE_OF_BUSINESS.to_owned(),
                payload: serde_json::json!({ "date": next }),
                run_at: now,
                max_attempts: COB_ATTEMPTS,
            },
            now,
        )
        .await?;
    uow.commit().await?;
    if added {
        tracing::info!(date = %next, "close of business scheduled");
    }
    Ok(added.then_some(next))
}

fn job_date(job: &Job) -> Option<Date> {
    job.payload["date"].as_str()?.parse().ok()
}

/// Runs the daily close of business in slices of `slice`, each shorter than a lease.
pub struct CobHandler {
    slice: StdDuration,
    batch: u32,
}

impl CobHandler {
    /// Slices of `slice`, `batch` loans per unit of work.
    pub fn new(slice: StdDuration, batch: u32) -> Self {
        Self { slice, batch }
    }
}

#[async_trait]
impl JobHandler for CobHandler {
    fn kind(&self) -> &'static str {
        kinds::CLOSE_OF_BUSINESS
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let date = job_date(job).ok_or_else(|| JobFailure::permanent("payload has no date"))?;
        let mut engine = Engine::new(ctx.store.clone(), ctx.clock.clone());
        engine.cob_batch = self.batch;
        let report = run_until(&engine, date, Some(Instant::now() + self.slice), |_, _| {})
            .await
            .map_err(|e| JobFailure::retryable(e.to_string()))?;
        tracing::info!(%date, closed = report.loans_closed, busy = report.loans_busy,
            escalated = report.payouts_escalated, complete = report.complete,
            "close of business slice done");
        if !report.complete {
            return Ok(JobDone::Postponed(ctx.clock.now()));
        }
        if report.loans_busy > 0 {
            // Close the loans repayments kept changing on a later attempt, before the next date.
            return Err(JobFailure::retryable(format!(
                "{} loan(s) kept changing during close of business",
                report.loans_busy
            )));
        }
        // The date is closed: the credit policy reviews every open line on its figures.
        let now = ctx.clock.now();
        let mut uow = ctx.store.begin().await?;
        crate::decisions::schedule_line_review(uow.as_mut(), date, now)
            .await
            .map_err(|e| JobFailure::retryable(e.to_string()))?;
        uow.commit().await?;
        Ok(JobDone::Succeeded)
    }
}

/// A drawdown still `disbursing` (or queued behind maintenance) whose payout job is dead goes
/// to manual review, with its reason and a notification. The runner does this when it buries
/// the job; this sweep catches any a process without that hook (an older version) left behind.
async fn escalate_dead_payouts(engine: &Engine) -> Result<usize, EngineError> {
    let mut escalated = 0;
    for state in ["disbursing", "queued_for_maintenance"] {
        escalated += escalate_dead_payouts_in(engine, state).await?;
    }
    Ok(escalated)
}

async fn escalate_dead_payouts_in(engine: &Engine, state: &str) -> Result<usize, EngineError> {
    let mut escalated = 0;
    let mut after = String::new();
    loop {
        let ids = {
            let mut uow = engine.store.begin_read().await?;
            uow.drawdown_ids_in_state(state, &after, PAGE).await?
        };
        let Some((_, last)) = ids.last().cloned() else {
            return Ok(escalated);
        };
        for (borrower, id) in &ids {
            let now = engine.clock.now();
            let mut uow = engine.store.begin_for(borrower).await?;
            let dead = uow
                .find_job(&crate::drawdowns::disburse_job_id(id))
                .await?
                .is_some_and(|job| job.status == lendcore_store::JobStatus::Dead);
            if dead
                && crate::drawdowns::hand_to_person(uow.as_mut(), id, "its payout job is dead", now)
                    .await?
            {
                uow.commit().await?;
                escalated += 1;
            } else {
                uow.rollback().await?;
            }
        }
        after = last;
    }
}

/// A batch of loans read and decided, to be written.
struct Decided {
    /// The id of the batch's last loan: the next batch starts after it.
    last: String,
    /// Each loan changed, with the revision it was read at.
    changed: Vec<(Drawdown, i64)>,
    writes: Writes,
    /// What the batch closes and skips, and the sums it accrues.
    counts: CobReport,
}

/// Reads the next batch of loans after `after` and decides each loan's day, outside any
/// write transaction: on SQLite every request waits while a unit of work holds the single
/// writer, and reading and working out a batch is most of its time. `None` when no loan is
/// left to close. Committing loans in batches, read in one statement and written in a few, is
/// what lets a book of a million close in about a minute.
async fn decide_batch(
    engine: &Engine,
    after: &str,
    date: Date,
    terms: &mut TermsCache,
) -> Result<Option<Decided>, EngineError> {
    let now = engine.clock.now();
    let mut read = engine.store.begin_read().await?;
    let loans = read
        .loans_to_close(date, after, engine.cob_batch.max(1))
        .await?;
    let Some(last) = loans.last().map(|l| l.id.clone()) else {
        return Ok(None);
    };
    let mut counts = CobReport::default();
    let mut writes = Writes::default();
    let mut changed = Vec::with_capacity(loans.len());
    for mut loan in loans {
        if loan.status != DrawdownStatus::Active
            || loan.servicing.last_close.is_some_and(|d| d >= date)
        {
            counts.loans_skipped += 1;
            continue;
        }
        let read_revision = loan.revision;
        let terms = terms.get(read.as_mut(), &loan).await?;
        let day = close_day(&terms, &mut loan, date, now, &mut writes)?;
        loan.servicing.last_close = Some(date);
        loan.revision += 1;
        changed.push((loan, read_revision));
        counts.loans_closed += 1;
        counts.interest_accrued_minor += day.interest;
        counts.penalty_charged_minor += day.penalty;
        counts.reminders += day.reminders;
    }
    Ok(Some(Decided {
        last,
        changed,
        writes,
        counts,
    }))
}

/// Writes a decided batch in one short unit of work, each loan only at the revision it was
/// read at. `false`, with nothing written, when a loan moved since.
async fn write_batch(engine: &Engine, batch: &Decided) -> Result<bool, EngineError> {
    let mut uow = engine.store.begin().await?;
    uow.post_entries(&batch.writes.entries).await?;
    uow.append_outbox_many(&batch.writes.events).await?;
    // A change of delinquency is a change of the loan's standing: audited. Reminders are
    // messages, not changes.
    for event in batch
        .writes
        .events
        .iter()
        .filter(|e| e.topic == Topic::LoanDelinquencyChanged.as_str())
    {
        crate::audit::record_event(uow.as_mut(), event, crate::audit::SYSTEM).await?;
    }
    match uow.update_servicing(&batch.changed).await {
        Err(StoreError::Stale(_)) => return Ok(false),
        other => other?,
    }
    uow.commit().await?;
    Ok(true)
}

/// What closing a batch writes, gathered so it is written in a few statements.
#[derive(Default)]
struct Writes {
    entries: Vec<lendcore_domain::ledger::JournalEntry>,
    events: Vec<OutboxEvent>,
}

/// Product terms by code and version, read once per run: versions never change once
/// effective, so they cannot go stale during one.
#[derive(Default)]
struct TermsCache(std::collections::HashMap<(String, u32), lendcore_domain::product::ProductTerms>);

impl TermsCache {
    async fn get(
        &mut self,
        uow: &mut dyn UnitOfWork,
        loan: &Drawdown,
    ) -> Result<lendcore_domain::product::ProductTerms, EngineError> {
        let key = (loan.product_code.as_str().to_owned(), loan.product_version);
        if let Some(terms) = self.0.get(&key) {
            return Ok(terms.clone());
        }
        let product = uow.find_product(&loan.product_code).await?;
        let terms = product
            .as_ref()
            .and_then(|p| {
                p.versions
                    .iter()
                    .find(|v| v.version == loan.product_version)
            })
            .map(|v| v.terms.clone())
            .ok_or_else(|| EngineError::Internal(format!("terms of loan {} are gone", loan.id)))?;
        self.0.insert(key, terms.clone());
        Ok(terms)
    }
}

#[derive(Default)]
struct Day {
    interest: i64,
    penalty: i64,
    reminders: usize,
}

/// Decides one loan's day: the interest it accrues, the penalties it is charged, its
/// delinquency and its reminders; the entries and notifications go to `writes`.
fn close_day(
    terms: &lendcore_domain::product::ProductTerms,
    loan: &mut Drawdown,
    date: Date,
    now: lendcore_domain::Timestamp,
    writes: &mut Writes,
) -> Result<Day, EngineError> {
    let mut day = Day::default();
    let accounts = LoanAccounts {
        loan_id: loan.id.clone(),
        channel_id: "collections".to_owned(),
        currency: loan.currency,
    };
    let ledger =
        |e: lendcore_domain::ledger::LedgerError| EngineError::Internal(format!("ledger: {e}"));
    let schedule = &loan.quote.schedule;

    // Interest accrued through `date`, as the schedule spreads it over the days.
    let target = accrued_interest(schedule, schedule.start, date);
    if target > loan.servicing.interest_accrued_minor {
        day.interest = target - loan.servicing.interest_accrued_minor;
        writes.entries.push(
            accounts
                .accrue_interest(new_id(), day.interest, now)
                .map_err(ledger)?,
        );
        loan.servicing.interest_accrued_minor = target;
    }

    let penalty_terms = PenaltyTerms {
        grace_days: terms.grace_days(),
        daily_rate: terms.penalty_daily_rate(),
        on_interest: terms.penalty_on_interest(),
        rounding: terms.rounding(),
    };
    let mut worst = Delinquency::Current;
    for due in loan.dues() {
        let Some(installment) = loan
            .quote
            .schedule
            .installments
            .iter()
            .find(|i| i.number == due.installment)
        else {
            continue;
        };
        let days_to_due = (installment.due_date - date).num_days();
        let reminder = match days_to_due {
            3 => Some("due_in_3_days"),
            0 => Some("due_today"),
            d if d == -(i64::from(penalty_terms.grace_days) + 1) => Some("overdue"),
            _ => None,
        };
        if let Some(kind) = reminder {
            day.reminders += 1;
            writes.events.push(event(loan, Topic::LoanReminder, serde_json::json!({
                "kind": kind, "installment": installment.number, "due_date": installment.due_date,
                "amount_minor": due.principal_minor + due.interest_minor + due.fee_minor + due.penalty_minor,
                "currency": loan.currency,
            }), now));
        }
        if days_to_due > 0 {
            continue;
        }
        let standing = overdue(
            installment.due_date,
            date,
            due.principal_minor,
            due.interest_minor,
            &penalty_terms,
        )
        .map_err(|e| EngineError::Internal(e.to_string()))?;
        let charged: i64 = loan
            .servicing
            .penalties
            .iter()
            .filter(|(n, _)| *n == installment.number)
            .map(|(_, m)| m)
            .sum();
        if standing.penalty_minor > charged {
            let delta = standing.penalty_minor - charged;
            writes.entries.push(
                accounts
                    .charge_penalty(new_id(), delta, now)
                    .map_err(ledger)?,
            );
            loan.servicing.penalties.push((installment.number, delta));
            day.penalty += delta;
        }
        loan.servicing
            .note_days_past_due(date, standing.days_past_due);
        if rank(standing.delinquency) > rank(worst) {
            worst = standing.delinquency;
        }
    }
    match loan.servicing.delinquency {
        Some(was) if was == worst => {}
        // A loan's first close finds it current: nothing worth telling anyone.
        None if worst == Delinquency::Current => loan.servicing.delinquency = Some(worst),
        was => {
            writes.events.push(event(
                loan,
                Topic::LoanDelinquencyChanged,
                serde_json::json!({ "from": was, "to": worst }),
                now,
            ));
            loan.servicing.delinquency = Some(worst);
        }
    }
    Ok(day)
}

fn rank(d: Delinquency) -> u8 {
    match d {
        Delinquency::Current => 0,
        Delinquency::Dpd1To30 => 1,
        Delinquency::Dpd31To60 => 2,
        Delinquency::Dpd61To90 => 3,
        Delinquency::Dpd90Plus => 4,
    }
}

fn event(
    loan: &Drawdown,
    topic: Topic,
    detail: serde_json::Value,
    now: lendcore_domain::Timestamp,
) -> OutboxEvent {
    OutboxEvent {
        id: new_id(),
        topic: topic.as_str().to_owned(),
        aggregate_type: "drawdown".to_owned(),
        aggregate_id: loan.id.clone(),
        payload: serde_json::json!({ "loan_id": loan.id, "borrower_id": loan.borrower_id, "detail": detail }),
        created_at: now,
        published_at: None,
    }
}
