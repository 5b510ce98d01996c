//! The daily review of credit lines, after close of business: the policy's `line_review`
//! tables decide for each open line to keep it, raise it, lower it, freeze or unfreeze it, and
//! what to warn its borrower of. A borrower hears of a freeze or a lower limit a day before it
//! takes effect (`credit_line.change_scheduled`), and it takes effect only if the policy still
//! says so then; a raise and the lifting of a freeze the policy made take effect at once.
//! Warnings (`credit_line.warning`) go out before a rule bites.

use std::sync::Arc;

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::calendar::Date;
use lendcore_domain::credit_line::{CreditLine, LineEventKind, LineStatus};
use lendcore_domain::decision::{
    BureauStatus, Feature, Features, Outcome, PolicyRef, Stage, Value, Warning,
};
use lendcore_domain::drawdown::DrawdownStatus;
use lendcore_domain::reasons::Reason;
use lendcore_domain::topic::Topic;
use lendcore_store::{BorrowerUnit, Job, NewJob, OutboxEvent, RiskRecords, UnitOfWork};

use super::features;
use super::record::{self, DecisionRecord, DecisionSubject, POLICY_ACTOR, Timings};
use crate::credit_lines::{LineChange, change_in};
use crate::jobs::kinds;
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler};
use crate::{Engine, EngineError, new_id};

/// How long before a freeze or a lower limit takes effect the borrower is told.
pub const NOTICE: chrono::Duration = chrono::Duration::hours(24);
/// Lines reviewed per job: each page queues the next.
const PAGE: u32 = 100;

/// The id of the job that reviews lines after `after` for `date`.
fn page_job_id(date: Date, after: &str) -> String {
    format!("line-review:{date}:{after}")
}

/// Queues the review of every open line for `date` (close of business calls it when the date
/// is closed). Safe to call again.
pub(crate) async fn schedule(
    uow: &mut dyn UnitOfWork,
    date: Date,
    now: Timestamp,
) -> Result<(), EngineError> {
    enqueue_page(uow, date, "", now).await
}

async fn enqueue_page(
    uow: &mut dyn UnitOfWork,
    date: Date,
    after: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    uow.enqueue_job_once(
        &NewJob {
            id: page_job_id(date, after),
            kind: kinds::LINE_REVIEW.to_owned(),
            payload: serde_json::json!({ "date": date, "after": after }),
            run_at: now,
            max_attempts: lendcore_domain::jobs::DEFAULT_MAX_ATTEMPTS,
        },
        now,
    )
    .await?;
    Ok(())
}

/// What the review of one line found.
struct Reviewed {
    record: DecisionRecord,
    line: CreditLine,
}

/// Evaluates the policy in effect on one line, reading the borrower's records in `uow`.
/// `None` without a policy in effect, or for a line that is closed or past its validity.
/// `review_date` is the business date a daily review is for; `None` when a scheduled change is
/// checked again before it takes effect.
async fn evaluate(
    engine: &Engine,
    uow: &mut dyn BorrowerUnit,
    line: CreditLine,
    review_date: Option<Date>,
    now: Timestamp,
) -> Result<Option<Reviewed>, EngineError> {
    if line.valid_until <= now || matches!(line.status, LineStatus::Closed { .. }) {
        return Ok(None);
    }
    let Some(compiled) = engine.policies.in_effect(uow, now).await? else {
        return Ok(None);
    };
    let started = std::time::Instant::now();
    let today = features::business_date(now);
    let mut found = Features::default();
    let records = features::read_records(uow, &line.borrower_id, now).await?;
    features::set_records(&mut found, &records, now);
    features::set_stored_bureau(&mut found, &records, &line.borrower_id, now)?;
    let read = compiled.policy.features_read(Stage::LineReview);
    if read.contains(&Feature::AgeYears) || read.contains(&Feature::Region) {
        features::set_borrower_identity(&mut found, engine, &line.borrower_id, &records, today)?;
    }
    let _ = found.set(
        Feature::LineFrozen,
        Value::Flag(matches!(line.status, LineStatus::Frozen { .. })),
    );
    found.set_number(
        Feature::DaysToLineExpiry,
        (line.valid_until - now).num_days(),
    );
    let limit_set = uow
        .credit_line_events(&line.id)
        .await?
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                LineEventKind::Granted | LineEventKind::Increased | LineEventKind::Decreased
            )
        })
        .map(|e| e.at)
        .max()
        .unwrap_or(line.created_at);
    found.set_number(Feature::DaysSinceLimitChange, (now - limit_set).num_days());
    if let Some(days) = days_to_next_due(&records, &line, today) {
        found.set_number(Feature::DaysToNextDue, days);
    }
    let features_us = micros(started);
    let evaluating = std::time::Instant::now();
    let evaluation = compiled
        .policy
        .decide(Stage::LineReview, &found, BureauStatus::NotAsked);
    let record = DecisionRecord {
        id: new_id(),
        borrower_id: line.borrower_id.clone(),
        subject: DecisionSubject {
            kind: "credit_line".to_owned(),
            id: line.id.clone(),
        },
        policy: PolicyRef {
            code: compiled.version.code.as_str().to_owned(),
            version: compiled.version.version,
        },
        policy_sha256: compiled.version.sha256.clone(),
        inputs: serde_json::json!({
            "review_date": review_date,
            "limit_minor": line.limit_minor,
            "drawn_minor": line.drawn_minor,
            "held_minor": line.held_minor,
            "currency": line.currency,
            "valid_until": line.valid_until,
        }),
        features: found.snapshot(read),
        bureau: None,
        timings: Timings {
            features_us,
            bureau_us: 0,
            evaluate_us: micros(evaluating),
        },
        evaluation,
        beside: None,
        decided_at: now,
    };
    Ok(Some(Reviewed { record, line }))
}

fn micros(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Days until the next unpaid installment of a loan on the line falls due, counting today.
fn days_to_next_due(records: &RiskRecords, line: &CreditLine, today: Date) -> Option<i64> {
    records
        .drawdowns
        .iter()
        .filter(|l| l.line_id == line.id && l.status == DrawdownStatus::Active)
        .flat_map(|loan| {
            let unpaid: Vec<u32> = loan.dues().iter().map(|d| d.installment).collect();
            loan.quote
                .schedule
                .installments
                .iter()
                .filter(move |i| unpaid.contains(&i.number) && i.due_date >= today)
                .map(|i| (i.due_date - today).num_days())
                .collect::<Vec<_>>()
        })
        .min()
}

/// The limit after a change of `percent` (down when `lower`), in whole 100s of minor units,
/// never below what is drawn and held.
fn new_limit(line: &CreditLine, percent: u32, lower: bool) -> i64 {
    let limit = i128::from(line.limit_minor);
    let p = i128::from(percent);
    let changed = if lower {
        limit * (100 - p) / 100
    } else {
        limit * (100 + p) / 100
    };
    let changed = i64::try_from(changed).unwrap_or(line.limit_minor);
    let stepped = changed - changed.rem_euclid(100);
    stepped.max(line.drawn_minor + line.held_minor).max(100)
}

/// Reviews one line and does what the policy says, in one unit of work; the decision is kept
/// when the review does or says anything.
pub(crate) async fn review_line(
    engine: &Engine,
    line: CreditLine,
    date: Date,
) -> Result<(), EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_for(&line.borrower_id).await?;
    // Reviewed for this date already (a page run again): nothing twice.
    let date_json = serde_json::json!(date);
    // What earlier reviews of the line were given: their date, the warnings they told.
    let earlier = uow
        .decisions_about(&line.borrower_id, "credit_line", &line.id)
        .await?
        .iter()
        .map(|d| {
            serde_json::from_str::<serde_json::Value>(&d.record)
                .map(|record| record["inputs"].clone())
                .map_err(|e| EngineError::Internal(format!("decision {}: {e}", d.id)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if earlier
        .iter()
        .any(|inputs| inputs["review_date"] == date_json)
    {
        return Ok(());
    }
    let Some(Reviewed { mut record, line }) =
        evaluate(engine, uow.as_mut(), line, Some(date), now).await?
    else {
        return Ok(());
    };
    let evaluation = &record.evaluation;
    let note = || {
        format!(
            "daily review by credit policy {} version {} (decision {})",
            record.policy.code, record.policy.version, record.id
        )
    };
    let reason = evaluation.reasons.first().copied();
    let acted = match &evaluation.outcome {
        Outcome::Freeze | Outcome::Decrease { .. } => {
            let frozen = matches!(line.status, LineStatus::Frozen { .. });
            let percent = if let Outcome::Decrease { percent } = evaluation.outcome {
                Some(percent)
            } else {
                None
            };
            if (percent.is_none() && frozen)
                || percent.is_some_and(|p| new_limit(&line, p, true) >= line.limit_minor)
            {
                false
            } else {
                schedule_change(uow.as_mut(), &line, percent, reason, date, now).await?
            }
        }
        Outcome::Unfreeze => match &line.status {
            // Only a freeze the policy made is the policy's to lift.
            LineStatus::Frozen { by, .. } if by == POLICY_ACTOR => {
                change_in(
                    uow.as_mut(),
                    &line.id,
                    &LineChange::Unfreeze,
                    POLICY_ACTOR.to_owned(),
                    Some(note()),
                    now,
                )
                .await?;
                true
            }
            LineStatus::Frozen { .. } | LineStatus::Active | LineStatus::Closed { .. } => false,
        },
        Outcome::Increase { percent } => {
            let raised = new_limit(&line, *percent, false);
            if raised > line.limit_minor && matches!(line.status, LineStatus::Active) {
                change_in(
                    uow.as_mut(),
                    &line.id,
                    &LineChange::Limit {
                        limit_minor: raised,
                    },
                    POLICY_ACTOR.to_owned(),
                    Some(note()),
                    now,
                )
                .await?;
                true
            } else {
                false
            }
        }
        Outcome::Keep => false,
        // Not outcomes of a line review (validation keeps them out).
        Outcome::Approve(_)
        | Outcome::Refer
        | Outcome::RequestDocuments
        | Outcome::Decline
        | Outcome::Pass
        | Outcome::Hold => false,
    };
    // A warning is told once a week, not every day its cause lasts: reviews of the six dates
    // before this one say which they told.
    let week_ago = serde_json::json!(date - chrono::Duration::days(7));
    let told_lately: Vec<&serde_json::Value> = earlier
        .iter()
        // ISO dates compare as text; a re-check before a change takes effect has none.
        .filter(|inputs| inputs["review_date"].as_str() > week_ago.as_str())
        .filter_map(|inputs| inputs["told_warnings"].as_array())
        .flatten()
        .collect();
    let fresh: Vec<Warning> = evaluation
        .warnings
        .iter()
        .copied()
        .filter(|w| !told_lately.iter().any(|t| t.as_str() == Some(w.as_str())))
        .collect();
    for warning in &fresh {
        tell(
            uow.as_mut(),
            &line,
            Topic::CreditLineWarning,
            serde_json::json!({ "warning": warning.as_str() }),
            now,
        )
        .await?;
    }
    if acted || !fresh.is_empty() {
        record.inputs["told_warnings"] = serde_json::json!(fresh);
        record::keep(uow.as_mut(), &record).await?;
        uow.commit().await?;
    }
    Ok(())
}

/// Tells the borrower a freeze or a lower limit comes in [`NOTICE`], and queues its taking
/// effect; `false` when the same change is pending already (told this week).
async fn schedule_change(
    uow: &mut dyn UnitOfWork,
    line: &CreditLine,
    percent: Option<u32>,
    reason: Option<Reason>,
    date: Date,
    now: Timestamp,
) -> Result<bool, EngineError> {
    use chrono::Datelike;
    let effective_at = now + NOTICE;
    let change = if percent.is_some() {
        "decrease"
    } else {
        "freeze"
    };
    // One notice a week for the same change to the same line: the daily reviews that follow
    // while it is pending, or after what prompted it passed, do not repeat it every day.
    let week = date.iso_week();
    let scheduled = uow
        .enqueue_job_once(
            &NewJob {
                id: format!(
                    "line-review-apply:{}:{change}:{}:{}-W{}",
                    line.id,
                    line.limit_minor,
                    week.year(),
                    week.week()
                ),
                kind: kinds::LINE_REVIEW_APPLY.to_owned(),
                payload: serde_json::json!({
                    "line_id": line.id,
                    "change": change,
                    "percent": percent,
                }),
                run_at: effective_at,
                max_attempts: lendcore_domain::jobs::DEFAULT_MAX_ATTEMPTS,
            },
            now,
        )
        .await?;
    if !scheduled {
        return Ok(false);
    }
    tell(
        uow,
        line,
        Topic::CreditLineChangeScheduled,
        serde_json::json!({
            "change": change,
            "percent": percent,
            "reason": reason.map(Reason::for_borrower),
            "next_action": reason.map(|r| r.for_borrower().entry().next_action),
            "effective_at": effective_at,
        }),
        now,
    )
    .await?;
    Ok(true)
}

async fn tell(
    uow: &mut dyn UnitOfWork,
    line: &CreditLine,
    topic: Topic,
    detail: serde_json::Value,
    now: Timestamp,
) -> Result<(), EngineError> {
    let mut payload = serde_json::json!({
        "line_id": line.id,
        "borrower_id": line.borrower_id,
        "limit_minor": line.limit_minor,
        "currency": line.currency,
    });
    if let (Some(target), serde_json::Value::Object(extra)) = (payload.as_object_mut(), detail) {
        target.extend(extra);
    }
    crate::audit::announce(
        uow,
        OutboxEvent {
            id: new_id(),
            topic: topic.as_str().to_owned(),
            aggregate_type: "credit_line".to_owned(),
            aggregate_id: line.id.clone(),
            payload,
            created_at: now,
            published_at: None,
        },
        POLICY_ACTOR,
    )
    .await
}

/// What a notice told the borrower would happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announced {
    Freeze,
    Decrease { percent: u32 },
}

/// Makes the announced freeze or lower limit take effect, if the policy still says so now;
/// nothing else (a freeze nobody announced waits for its own notice).
async fn apply(engine: &Engine, line_id: &str, announced: Announced) -> Result<(), EngineError> {
    let now = engine.clock.now();
    let Some(mut uow) = crate::begin_for_id(engine.store.as_ref(), line_id).await? else {
        return Ok(());
    };
    let Some(line) = uow.find_credit_line(line_id).await? else {
        return Ok(());
    };
    let Some(Reviewed { record, line }) = evaluate(engine, uow.as_mut(), line, None, now).await?
    else {
        return Ok(());
    };
    let note = format!(
        "daily review by credit policy {} version {} (decision {}), after notice",
        record.policy.code, record.policy.version, record.id
    );
    // The policy must still say what was announced.
    let still = match (&record.evaluation.outcome, announced) {
        (Outcome::Freeze, Announced::Freeze) => Some(announced),
        (Outcome::Decrease { .. }, Announced::Decrease { .. }) => Some(announced),
        // What prompted it has passed (repaid, say), or the policy now says something else.
        (
            Outcome::Freeze
            | Outcome::Decrease { .. }
            | Outcome::Keep
            | Outcome::Unfreeze
            | Outcome::Increase { .. }
            | Outcome::Approve(_)
            | Outcome::Refer
            | Outcome::RequestDocuments
            | Outcome::Decline
            | Outcome::Pass
            | Outcome::Hold,
            Announced::Freeze | Announced::Decrease { .. },
        ) => None,
    };
    let open = match line.status {
        LineStatus::Active => Some(true),
        LineStatus::Frozen { .. } => Some(false),
        LineStatus::Closed { .. } => None,
    };
    let change = match (still, open) {
        (Some(Announced::Freeze), Some(true)) => Some(LineChange::Freeze {
            reason: record
                .evaluation
                .reasons
                .first()
                .copied()
                .unwrap_or(Reason::RiskContactUs),
            until: None,
        }),
        (Some(Announced::Decrease { percent }), Some(_)) => {
            let lowered = new_limit(&line, percent, true);
            (lowered < line.limit_minor).then_some(LineChange::Limit {
                limit_minor: lowered,
            })
        }
        // Frozen meanwhile, or closed, or no longer warranted.
        (Some(Announced::Freeze), Some(false) | None)
        | (Some(Announced::Decrease { .. }), None)
        | (None, _) => None,
    };
    if let Some(change) = change {
        change_in(
            uow.as_mut(),
            &line.id,
            &change,
            POLICY_ACTOR.to_owned(),
            Some(note),
            now,
        )
        .await?;
    }
    record::keep(uow.as_mut(), &record).await?;
    uow.commit().await?;
    Ok(())
}

/// Reviews one page of open lines for a date, and queues the next page.
pub struct LineReviewHandler {
    engine: Arc<Engine>,
}

impl LineReviewHandler {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

#[async_trait]
impl JobHandler for LineReviewHandler {
    fn kind(&self) -> &'static str {
        kinds::LINE_REVIEW
    }

    async fn run(&self, job: &Job, _ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let (Some(date), Some(after)) = (
            job.payload["date"]
                .as_str()
                .and_then(|d| d.parse::<Date>().ok()),
            job.payload["after"].as_str(),
        ) else {
            return Err(JobFailure::permanent("malformed line review job"));
        };
        let engine = &self.engine;
        let lines = {
            let mut uow = engine.store.begin_read().await?;
            uow.open_credit_lines_after(after, PAGE).await?
        };
        let last = lines.last().map(|l| l.id.clone());
        for line in lines {
            let id = line.id.clone();
            if let Err(e) = review_line(engine, line, date).await {
                // One line's trouble does not stop the others' review; it is reviewed again
                // tomorrow, and counted so operators see it today.
                metrics::counter!("lendcore_line_reviews_failed_total").increment(1);
                tracing::error!(line = %id, error = %e, "a credit line could not be reviewed");
            }
        }
        if let Some(last) = last {
            let now = engine.clock.now();
            let mut uow = engine.store.begin().await?;
            enqueue_page(uow.as_mut(), date, &last, now)
                .await
                .map_err(|e| JobFailure::retryable(e.to_string()))?;
            uow.commit().await?;
        }
        Ok(JobDone::Succeeded)
    }
}

/// Makes a scheduled freeze or lower limit take effect after its notice.
pub struct ReviewApplyHandler {
    engine: Arc<Engine>,
}

impl ReviewApplyHandler {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

#[async_trait]
impl JobHandler for ReviewApplyHandler {
    fn kind(&self) -> &'static str {
        kinds::LINE_REVIEW_APPLY
    }

    async fn run(&self, job: &Job, _ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let p = &job.payload;
        let announced = match (p["change"].as_str(), p["percent"].as_u64()) {
            (Some("freeze"), _) => Some(Announced::Freeze),
            (Some("decrease"), Some(percent)) => u32::try_from(percent)
                .ok()
                .map(|percent| Announced::Decrease { percent }),
            _ => None,
        };
        let (Some(line_id), Some(announced)) = (p["line_id"].as_str(), announced) else {
            return Err(JobFailure::permanent("malformed review job"));
        };
        apply(&self.engine, line_id, announced)
            .await
            .map_err(|e| JobFailure::retryable(e.to_string()))?;
        Ok(JobDone::Succeeded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_limit_moves_in_hundreds_and_never_below_what_is_used() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let (mut line, _) = CreditLine::grant(
            "l".into(),
            lendcore_domain::credit_line::GrantInput {
                borrower_id: "b".into(),
                currency: "CNY".into(),
                limit_minor: 1_000_050,
                rate_tier: None,
                valid_from: None,
                valid_until: at + chrono::Duration::days(30),
                actor: "ops:a".into(),
                note: None,
            },
            at,
        )
        .unwrap();
        assert_eq!(new_limit(&line, 20, true), 800_000);
        assert_eq!(new_limit(&line, 10, false), 1_100_000);
        line.drawn_minor = 900_000;
        assert_eq!(
            new_limit(&line, 20, true),
            900_000,
            "not below what is drawn"
        );
    }
}
