//! A drawdown's life, as a state machine in which every way out names its reason: a quote that
//! expires, a line that refuses, a payout that fails, a payout that needs a person, a loan
//! repaid. Terminal states carry a [`Reason`] in their type, so none can be reached without one.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::money::Currency;
use crate::product::ProductCode;
use crate::quote::Quote;
use crate::reasons::Reason;

/// A drawdown: an amount drawn from a line under a product version, priced by a quote, paid out
/// to the borrower's account, then repaid on its schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Drawdown {
    pub id: String,
    pub line_id: String,
    pub borrower_id: String,
    pub product_code: ProductCode,
    pub product_version: u32,
    pub currency: Currency,
    pub amount_minor: i64,
    /// The receiving account at the payment channel.
    pub account: String,
    /// The price the borrower confirmed: schedule, fees, APR.
    pub quote: Quote,
    pub status: DrawdownStatus,
    /// What has been repaid of each installment, in schedule order.
    #[serde(default)]
    pub paid: Vec<PaidInstallment>,
    /// Servicing state kept by close of business and repayments.
    #[serde(default)]
    pub servicing: Servicing,
    /// The credit policy version its risk check ran under at the quote: the confirmation is
    /// checked under the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_policy: Option<crate::decision::PolicyRef>,
    pub revision: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub updated_at: Timestamp,
}

/// What close of business and repayments keep about a running loan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Servicing {
    /// The last business date close of business finished for this loan.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub last_close: Option<crate::calendar::Date>,
    /// Interest posted to the receivable so far (accrued day by day, or recognised when paid
    /// ahead of its accrual); never more than is due or paid.
    pub interest_accrued_minor: i64,
    /// Penalty interest charged per installment number.
    pub penalties: Vec<(u32, i64)>,
    pub delinquency: Option<crate::servicing::Delinquency>,
    /// The most days any installment was past due, by month (`yyyymm`), for the last
    /// [`LATE_MONTHS_KEPT`] months: what a credit policy's "worst in 12 months" reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worst_by_month: Vec<(u32, u32)>,
}

/// Months of lateness a loan keeps: a year back from any day of the current month.
pub const LATE_MONTHS_KEPT: usize = 13;

fn month_of(date: crate::calendar::Date) -> u32 {
    use chrono::Datelike;
    u32::try_from(date.year()).unwrap_or(0) * 100 + date.month()
}

impl Servicing {
    /// Notes that an installment was `days` past due on `date`.
    pub fn note_days_past_due(&mut self, date: crate::calendar::Date, days: u32) {
        if days == 0 {
            return;
        }
        let month = month_of(date);
        match self.worst_by_month.iter_mut().find(|(m, _)| *m == month) {
            Some((_, worst)) => *worst = (*worst).max(days),
            None => self.worst_by_month.push((month, days)),
        }
        self.worst_by_month.sort_unstable();
        let excess = self.worst_by_month.len().saturating_sub(LATE_MONTHS_KEPT);
        self.worst_by_month.drain(..excess);
    }

    /// The most days past due in the twelve months up to `today` (by calendar month: the
    /// current one and the eleven before it).
    pub fn worst_days_past_due_in_year(&self, today: crate::calendar::Date) -> u32 {
        let now = month_of(today);
        let year_ago = now - 100;
        self.worst_by_month
            .iter()
            .filter(|(m, _)| *m > year_ago && *m <= now)
            .map(|(_, d)| *d)
            .max()
            .unwrap_or(0)
    }
}

/// What has been repaid of one installment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaidInstallment {
    pub number: u32,
    pub principal_minor: i64,
    pub interest_minor: i64,
    pub fee_minor: i64,
    pub penalty_minor: i64,
}

impl Drawdown {
    /// What each installment still owes, oldest first; settled installments are left out.
    pub fn dues(&self) -> Vec<crate::allocation::Due> {
        self.quote
            .schedule
            .installments
            .iter()
            .map(|i| {
                let paid = self
                    .paid
                    .iter()
                    .find(|p| p.number == i.number)
                    .copied()
                    .unwrap_or_default();
                let charged: i64 = self
                    .servicing
                    .penalties
                    .iter()
                    .filter(|(n, _)| *n == i.number)
                    .map(|(_, m)| m)
                    .sum();
                crate::allocation::Due {
                    installment: i.number,
                    penalty_minor: charged - paid.penalty_minor,
                    fee_minor: i.fee_minor - paid.fee_minor,
                    interest_minor: i.interest_minor - paid.interest_minor,
                    principal_minor: i.principal_minor - paid.principal_minor,
                }
            })
            .filter(|d| d.penalty_minor + d.fee_minor + d.interest_minor + d.principal_minor > 0)
            .collect()
    }

    /// Books an allocated repayment against the installments.
    pub fn apply(&mut self, allocation: &crate::allocation::Allocation) {
        use crate::allocation::Component;
        for share in &allocation.shares {
            let slot = match self.paid.iter_mut().find(|p| p.number == share.installment) {
                Some(slot) => slot,
                None => {
                    self.paid.push(PaidInstallment {
                        number: share.installment,
                        ..PaidInstallment::default()
                    });
                    self.paid.last_mut().expect("just pushed")
                }
            };
            match share.component {
                Component::Principal => slot.principal_minor += share.amount_minor,
                Component::Interest => slot.interest_minor += share.amount_minor,
                Component::Fee => slot.fee_minor += share.amount_minor,
                Component::Penalty => slot.penalty_minor += share.amount_minor,
            }
        }
        self.paid.sort_by_key(|p| p.number);
    }

    /// What is past due on `today`: the days since the oldest unpaid installment fell due
    /// (0 when none has), and everything still owed on installments already due.
    pub fn past_due(&self, today: crate::calendar::Date) -> (u32, i64) {
        let mut days = 0;
        let mut owed = 0;
        for due in self.dues() {
            let Some(installment) = self
                .quote
                .schedule
                .installments
                .iter()
                .find(|i| i.number == due.installment)
            else {
                continue;
            };
            if installment.due_date < today {
                let late = u32::try_from((today - installment.due_date).num_days()).unwrap_or(0);
                days = days.max(late);
                owed +=
                    due.penalty_minor + due.fee_minor + due.interest_minor + due.principal_minor;
            }
        }
        (days, owed)
    }

    /// Principal not yet repaid.
    pub fn outstanding_principal_minor(&self) -> i64 {
        let paid: i64 = self.paid.iter().map(|p| p.principal_minor).sum();
        self.amount_minor - paid
    }
    /// A step that changes nothing but the record: a person's action on the drawdown as it
    /// stands (asking the channel, claiming it paid), for the timeline.
    pub fn remark(&mut self, actor: impl Into<String>, note: String, now: Timestamp) -> Transition {
        self.revision += 1;
        self.updated_at = now;
        Transition {
            from: self.status.name().to_owned(),
            to: self.status.name().to_owned(),
            reason: self.status.reason(),
            at: now,
            actor: Some(actor.into()),
            note: Some(note),
        }
    }

    /// Moves to `next`, returning the step for the timeline.
    pub fn move_to(&mut self, next: DrawdownStatus, now: Timestamp) -> Transition {
        let step = Transition {
            from: self.status.name().to_owned(),
            to: next.name().to_owned(),
            reason: next.reason(),
            at: now,
            actor: None,
            note: None,
        };
        self.status = next;
        self.revision += 1;
        self.updated_at = now;
        step
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DrawdownStatus {
    /// Priced; waits for the borrower's confirmation until `expires_at`.
    Quoted {
        #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
        expires_at: Timestamp,
    },
    /// Confirmed during a maintenance window: the amount is held on the line and the payout
    /// starts when the window ends (`until`, or later if the window is extended).
    QueuedForMaintenance {
        #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
        until: Timestamp,
    },
    /// Confirmed, and held for a person by a risk rule of the credit policy (`reason`): the
    /// amount is held on the line; an operator releases it to be paid out, or declines it.
    HeldForReview { reason: Reason },
    /// Confirmed: the amount is held on the line and the payout is under way.
    Disbursing,
    /// The payout could not be settled automatically; a person takes over. Not terminal: it
    /// ends paid out or failed. `claim` is an operator's word that the channel paid, which the
    /// channel did not confirm: it waits for a second operator's approval.
    ManualReview {
        reason: Reason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claim: Option<PaidClaim>,
    },
    /// Paid out: the loan runs.
    Active,
    /// Terminal: the borrower did not confirm in time.
    Expired { reason: Reason },
    /// Terminal: refused when confirmed (line frozen, limit exceeded, product retired…).
    Refused { reason: Reason },
    /// Terminal: the payout definitively did not happen; the hold was released.
    Failed { reason: Reason },
    /// Terminal: the loan ended (repaid in full, written off…).
    Closed { reason: Reason },
}

impl DrawdownStatus {
    /// The reason of a terminal state; `None` while the drawdown is still going.
    pub fn terminal_reason(&self) -> Option<Reason> {
        match self {
            DrawdownStatus::Expired { reason }
            | DrawdownStatus::Refused { reason }
            | DrawdownStatus::Failed { reason }
            | DrawdownStatus::Closed { reason } => Some(*reason),
            DrawdownStatus::Quoted { .. }
            | DrawdownStatus::QueuedForMaintenance { .. }
            | DrawdownStatus::HeldForReview { .. }
            | DrawdownStatus::Disbursing
            | DrawdownStatus::ManualReview { .. }
            | DrawdownStatus::Active => None,
        }
    }

    /// Why the drawdown is where it is: the reason of an end, of a hand-over to a person, or of
    /// waiting out maintenance; `None` while it simply runs.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            DrawdownStatus::ManualReview { reason, .. }
            | DrawdownStatus::HeldForReview { reason } => Some(*reason),
            DrawdownStatus::QueuedForMaintenance { .. } => Some(Reason::SystemMaintenance),
            DrawdownStatus::Expired { reason }
            | DrawdownStatus::Refused { reason }
            | DrawdownStatus::Failed { reason }
            | DrawdownStatus::Closed { reason } => Some(*reason),
            DrawdownStatus::Quoted { .. } | DrawdownStatus::Disbursing | DrawdownStatus::Active => {
                None
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            DrawdownStatus::Quoted { .. } => "quoted",
            DrawdownStatus::QueuedForMaintenance { .. } => "queued_for_maintenance",
            DrawdownStatus::HeldForReview { .. } => "held_for_review",
            DrawdownStatus::Disbursing => "disbursing",
            DrawdownStatus::ManualReview { .. } => "manual_review",
            DrawdownStatus::Active => "active",
            DrawdownStatus::Expired { .. } => "expired",
            DrawdownStatus::Refused { .. } => "refused",
            DrawdownStatus::Failed { .. } => "failed",
            DrawdownStatus::Closed { .. } => "closed",
        }
    }
}

/// One step of a drawdown's life, for its timeline and the borrower's notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transition {
    pub from: String,
    pub to: String,
    pub reason: Option<Reason>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub at: Timestamp,
    /// Who took the step, when a person did (an operator settling a payout by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// What the person wrote, or what the channel answered when they asked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Transition {
    /// The step as taken by a person, with what they wrote.
    pub fn by(mut self, actor: impl Into<String>, note: Option<String>) -> Self {
        self.actor = Some(actor.into());
        self.note = note;
        self
    }
}

/// An operator's word that a channel paid a drawdown in review, with the channel's reference
/// for the payout. Unless the channel confirms it, it settles nothing until a second operator
/// approves it (four eyes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaidClaim {
    pub channel_id: String,
    pub channel_reference: String,
    /// The operator who made the claim; the approver must be someone else.
    pub claimed_by: String,
    pub note: String,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub claimed_at: Timestamp,
}

/// A call made to a payment channel about a payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PayoutCall {
    /// Asked the channel to pay.
    Submit,
    /// Asked the channel what became of the payout.
    Query,
}

/// What a call to a payment channel came to, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PayoutAnswer {
    /// A submit the channel took.
    Accepted,
    /// A submit refused for a reason of the borrower's (the account): nothing paid.
    Rejected,
    /// A submit refused for a reason of the channel's own (down, over its limit): nothing paid,
    /// another channel may pay.
    RefusedByChannel,
    /// A submit that never reached the channel: nothing paid.
    NotSent,
    /// A submit with no answer that can be read: the channel may have paid.
    Unknown,
    /// A query: the channel paid.
    Succeeded,
    /// A query: the payout definitely failed.
    Failed,
    /// A query: the channel is still paying.
    Pending,
    /// A query: the channel has no payout under the reference.
    NotFound,
    /// A query that got no answer.
    Error,
}

impl PayoutCall {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutCall::Submit => "submit",
            PayoutCall::Query => "query",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [PayoutCall::Submit, PayoutCall::Query]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

impl PayoutAnswer {
    pub const ALL: &'static [PayoutAnswer] = &[
        PayoutAnswer::Accepted,
        PayoutAnswer::Rejected,
        PayoutAnswer::RefusedByChannel,
        PayoutAnswer::NotSent,
        PayoutAnswer::Unknown,
        PayoutAnswer::Succeeded,
        PayoutAnswer::Failed,
        PayoutAnswer::Pending,
        PayoutAnswer::NotFound,
        PayoutAnswer::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PayoutAnswer::Accepted => "accepted",
            PayoutAnswer::Rejected => "rejected",
            PayoutAnswer::RefusedByChannel => "refused_by_channel",
            PayoutAnswer::NotSent => "not_sent",
            PayoutAnswer::Unknown => "unknown",
            PayoutAnswer::Succeeded => "succeeded",
            PayoutAnswer::Failed => "failed",
            PayoutAnswer::Pending => "pending",
            PayoutAnswer::NotFound => "not_found",
            PayoutAnswer::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        PayoutAnswer::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} drawdown cannot {action}")]
pub struct IllegalTransition {
    pub from: &'static str,
    pub action: &'static str,
}

impl IllegalTransition {
    pub fn code(&self) -> &'static str {
        "conflict.drawdown_state"
    }
}

/// The outcome of a confirmation: it went ahead, it waits for a person, or it ended, with a
/// reason where it did not simply go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    Proceed,
    /// The amount is held; a person looks before the payout.
    Held(Reason),
    Ended(Reason),
}

/// What the credit policy's risk check said of a drawdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskCheck {
    Pass,
    /// A person looks before the payout.
    Hold(Reason),
    Decline(Reason),
}

impl DrawdownStatus {
    /// The borrower confirms at `now`. `line_check` is the line's answer to holding the amount
    /// (see `CreditLine::can_hold`); `risk` the credit policy's; `maintenance_until` is the end
    /// of a maintenance window under way, during which a confirmed drawdown is held and
    /// queued, not paid out.
    pub fn confirm(
        &self,
        now: Timestamp,
        line_check: Result<(), Reason>,
        risk: RiskCheck,
        maintenance_until: Option<Timestamp>,
    ) -> Result<(DrawdownStatus, Confirmation), IllegalTransition> {
        match self {
            DrawdownStatus::Quoted { expires_at } if now >= *expires_at => {
                let reason = Reason::ConfirmationTimedOut;
                Ok((
                    DrawdownStatus::Expired { reason },
                    Confirmation::Ended(reason),
                ))
            }
            DrawdownStatus::Quoted { .. } => match (line_check, risk, maintenance_until) {
                (Err(reason), _, _) | (Ok(()), RiskCheck::Decline(reason), _) => Ok((
                    DrawdownStatus::Refused { reason },
                    Confirmation::Ended(reason),
                )),
                (Ok(()), RiskCheck::Hold(reason), _) => Ok((
                    DrawdownStatus::HeldForReview { reason },
                    Confirmation::Held(reason),
                )),
                (Ok(()), RiskCheck::Pass, None) => {
                    Ok((DrawdownStatus::Disbursing, Confirmation::Proceed))
                }
                (Ok(()), RiskCheck::Pass, Some(until)) => Ok((
                    DrawdownStatus::QueuedForMaintenance { until },
                    Confirmation::Proceed,
                )),
            },
            other => Err(illegal(other, "be confirmed")),
        }
    }

    /// A quote nobody confirmed, past its time.
    pub fn expire(&self, now: Timestamp) -> Result<DrawdownStatus, IllegalTransition> {
        match self {
            DrawdownStatus::Quoted { expires_at } if now >= *expires_at => {
                Ok(DrawdownStatus::Expired {
                    reason: Reason::ConfirmationTimedOut,
                })
            }
            other => Err(illegal(other, "expire")),
        }
    }

    /// An operator releases a held drawdown: its payout starts, or waits out a maintenance
    /// window under way.
    pub fn release(
        &self,
        maintenance_until: Option<Timestamp>,
    ) -> Result<DrawdownStatus, IllegalTransition> {
        match (self, maintenance_until) {
            (DrawdownStatus::HeldForReview { .. }, None) => Ok(DrawdownStatus::Disbursing),
            (DrawdownStatus::HeldForReview { .. }, Some(until)) => {
                Ok(DrawdownStatus::QueuedForMaintenance { until })
            }
            (other, _) => Err(illegal(other, "be released")),
        }
    }

    /// An operator declines a held drawdown, with the reason the borrower is given.
    pub fn decline_held(&self, reason: Reason) -> Result<DrawdownStatus, IllegalTransition> {
        match self {
            DrawdownStatus::HeldForReview { .. } => Ok(DrawdownStatus::Refused { reason }),
            other => Err(illegal(other, "be declined after review")),
        }
    }

    /// The maintenance window a confirmed drawdown waited out is over: the payout starts.
    pub fn resume(&self) -> Result<DrawdownStatus, IllegalTransition> {
        match self {
            DrawdownStatus::QueuedForMaintenance { .. } => Ok(DrawdownStatus::Disbursing),
            other => Err(illegal(other, "resume after maintenance")),
        }
    }

    /// The channel confirmed the payout.
    pub fn paid_out(&self) -> Result<DrawdownStatus, IllegalTransition> {
        match self {
            DrawdownStatus::Disbursing | DrawdownStatus::ManualReview { .. } => {
                Ok(DrawdownStatus::Active)
            }
            other => Err(illegal(other, "be paid out")),
        }
    }

    /// The payout definitively did not happen.
    pub fn payout_failed(&self, reason: Reason) -> Result<DrawdownStatus, IllegalTransition> {
        match self {
            DrawdownStatus::Disbursing | DrawdownStatus::ManualReview { .. } => {
                Ok(DrawdownStatus::Failed { reason })
            }
            other => Err(illegal(other, "fail its payout")),
        }
    }

    /// An operator says the channel paid; until a second operator approves, the drawdown stays
    /// in review with the claim. A new claim replaces an earlier one.
    pub fn claim_paid(&self, claim: PaidClaim) -> Result<DrawdownStatus, IllegalTransition> {
        match self {
            DrawdownStatus::ManualReview { reason, .. } => Ok(DrawdownStatus::ManualReview {
                reason: *reason,
                claim: Some(claim),
            }),
            other => Err(illegal(other, "be claimed paid")),
        }
    }

    /// Automatic settling gave up; a person takes over.
    pub fn to_manual_review(&self, reason: Reason) -> Result<DrawdownStatus, IllegalTransition> {
        match self {
            DrawdownStatus::Disbursing | DrawdownStatus::QueuedForMaintenance { .. } => {
                Ok(DrawdownStatus::ManualReview {
                    reason,
                    claim: None,
                })
            }
            other => Err(illegal(other, "go to manual review")),
        }
    }

    pub fn close(&self, reason: Reason) -> Result<DrawdownStatus, IllegalTransition> {
        match self {
            DrawdownStatus::Active => Ok(DrawdownStatus::Closed { reason }),
            other => Err(illegal(other, "close")),
        }
    }
}

fn illegal(from: &DrawdownStatus, action: &'static str) -> IllegalTransition {
    IllegalTransition {
        from: from.name(),
        action,
    }
}

#[cfg(test)]
mod tests;
