//! A loan's timeline: every state change, call to a payment channel, ledger posting,
//! notification and support case, in time order, with reason codes — what support needs to
//! answer "why".

use lendcore_domain::Timestamp;
use lendcore_domain::case::SubjectKind;
use lendcore_domain::ledger::{EntryEvent, JournalEntry, Layer};
use lendcore_domain::money::Money;
use lendcore_domain::reasons::{Language, Reason};
use serde::{Deserialize, Serialize};

use crate::{Engine, EngineError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timeline {
    pub loan_id: String,
    pub borrower_id: String,
    /// Where the loan stands now, e.g. `active`.
    pub state: String,
    /// The reason of its current state, if it carries one.
    pub reason: Option<Reason>,
    /// Oldest first.
    pub events: Vec<TimelineEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEvent {
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub at: Timestamp,
    pub kind: EventKind,
    /// One line for a person, e.g. `disbursing → active` or `submit to sandbox: accepted`.
    pub summary: String,
    pub reason: Option<Reason>,
    /// The record itself: the attempt, the entry with its postings, the notification payload.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    StateChange,
    PayoutAttempt,
    Posting,
    Notification,
    /// A support case about the loan: opened, and resolved.
    SupportCase,
}

fn not_found() -> EngineError {
    // The same words for a loan that does not exist and one that is someone else's.
    EngineError::not_found("not_found.loan", "no loan with that id")
}

/// Who reads a timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader<'a> {
    /// Support and the lender's back-end: every record, with channel and ledger details.
    Staff,
    /// A signed-in borrower: only their own loan (the session's borrower, or the borrower
    /// registered with the number they signed in with, as a session opened before they
    /// registered has none), and only what concerns them — its state changes and the money
    /// moved, without payment channels, accounts or internal events.
    Borrower {
        borrower_id: Option<&'a str>,
        mobile_index: &'a str,
    },
}

/// The timeline of a loan (any drawdown, paid out or not), read from one snapshot.
pub async fn timeline(
    engine: &Engine,
    reader: Reader<'_>,
    loan_id: &str,
) -> Result<Timeline, EngineError> {
    let mut uow = crate::read_for_id(engine.store.as_ref(), loan_id)
        .await?
        .ok_or_else(not_found)?;
    let loan = uow.find_drawdown(loan_id).await?.ok_or_else(not_found)?;
    let staff = match reader {
        Reader::Staff => true,
        Reader::Borrower {
            borrower_id: Some(own),
            ..
        } if own == loan.borrower_id => false,
        Reader::Borrower {
            borrower_id: Some(_),
            ..
        } => return Err(not_found()),
        // A session opened before its borrower registered names none: the borrower registered
        // with the number it proved is the one.
        Reader::Borrower {
            borrower_id: None,
            mobile_index,
        } => {
            let registered = uow.find_borrower(&loan.borrower_id).await?;
            if registered.and_then(|b| b.mobile_index).as_deref() != Some(mobile_index) {
                return Err(not_found());
            }
            false
        }
    };
    let mut events = Vec::new();
    for step in uow.drawdown_timeline(loan_id).await? {
        events.push(TimelineEvent {
            at: step.at,
            kind: EventKind::StateChange,
            summary: format!("{} → {}", step.from, step.to),
            reason: step.reason,
            detail: serde_json::json!({ "from": step.from, "to": step.to }),
        });
    }
    // Cases opened about it, as a drawdown or as the loan it became.
    for kind in [SubjectKind::Drawdown, SubjectKind::Loan] {
        for case in uow
            .cases_of(&loan.borrower_id, Some((kind, loan_id)), 50)
            .await?
        {
            let detail = serde_json::json!({
                "case_id": case.id, "status": case.status, "respond_by": case.respond_by,
            });
            events.push(TimelineEvent {
                at: case.opened_at,
                kind: EventKind::SupportCase,
                summary: format!("support case opened: {}", case.status.as_str()),
                reason: case.reason,
                detail: detail.clone(),
            });
            if let Some(at) = case.resolved_at {
                events.push(TimelineEvent {
                    at,
                    kind: EventKind::SupportCase,
                    summary: "support case resolved".to_owned(),
                    reason: None,
                    detail,
                });
            }
        }
    }
    if !staff {
        for entry in uow.entries_for(loan_id).await? {
            if entry.layer == Layer::Posted {
                events.push(TimelineEvent {
                    at: entry.at,
                    kind: EventKind::Posting,
                    summary: posting_summary(&entry),
                    reason: None,
                    detail: serde_json::Value::Null,
                });
            }
        }
        // The exact cause of a risk decision is not the borrower's to see.
        for event in &mut events {
            event.reason = event.reason.map(Reason::for_borrower);
        }
        let mut own = finish(&loan, events);
        own.reason = own.reason.map(Reason::for_borrower);
        return Ok(own);
    }
    for attempt in uow.payout_attempts(loan_id).await? {
        let outcome = attempt.outcome.map_or("no answer recorded", |o| o.as_str());
        events.push(TimelineEvent {
            at: attempt.started_at,
            kind: EventKind::PayoutAttempt,
            summary: format!(
                "{} to {}: {outcome}",
                attempt.action.as_str(),
                attempt.channel_id
            ),
            reason: None,
            detail: serde_json::json!({
                "attempt": attempt.attempt,
                "channel_id": attempt.channel_id,
                "reference": attempt.reference,
                "action": attempt.action,
                "outcome": attempt.outcome,
                "detail": attempt.detail,
                "ended_at": attempt.ended_at,
            }),
        });
    }
    for entry in uow.entries_for(loan_id).await? {
        events.push(TimelineEvent {
            at: entry.at,
            kind: EventKind::Posting,
            summary: posting_summary(&entry),
            reason: None,
            detail: serde_json::to_value(&entry)
                .map_err(|e| EngineError::Internal(format!("entry as JSON: {e}")))?,
        });
    }
    for event in uow.outbox_for("drawdown", loan_id).await? {
        let reason = event.payload["reason"].as_str().and_then(Reason::parse);
        events.push(TimelineEvent {
            at: event.created_at,
            kind: EventKind::Notification,
            summary: event.topic.clone(),
            reason,
            detail: serde_json::json!({
                "id": event.id,
                "topic": event.topic,
                "payload": event.payload,
                "published_at": event.published_at,
            }),
        });
    }
    Ok(finish(&loan, events))
}

fn finish(loan: &lendcore_domain::drawdown::Drawdown, mut events: Vec<TimelineEvent>) -> Timeline {
    // Stable: within one instant, a state change comes before the calls, postings and
    // notifications it caused, each kind in the order it was written.
    events.sort_by_key(|e| (e.at, e.kind));
    Timeline {
        loan_id: loan.id.clone(),
        borrower_id: loan.borrower_id.clone(),
        state: loan.status.name().to_owned(),
        reason: loan.status.reason(),
        events,
    }
}

fn posting_summary(entry: &JournalEntry) -> String {
    let event = match entry.event {
        EntryEvent::Disburse => "disbursement",
        EntryEvent::AccrueInterest => "interest accrued",
        EntryEvent::ChargeFee => "fee charged",
        EntryEvent::ChargePenalty => "penalty charged",
        EntryEvent::Repay => "repayment",
        EntryEvent::Waive => "waiver",
        EntryEvent::WriteOff => "write-off",
        EntryEvent::Reverse => "reversal",
    };
    let layer = match entry.layer {
        Layer::Pending => "pending",
        Layer::Posted => "posted",
    };
    let amount: i64 = entry.postings.iter().map(|p| p.debit_minor).sum();
    match entry.postings.first() {
        Some(posting) => format!(
            "{event} ({layer}): {}",
            Money::new(amount, posting.account.currency).for_people(Language::En)
        ),
        None => format!("{event} ({layer})"),
    }
}
