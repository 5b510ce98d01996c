//! Repaying a loan (an active drawdown): by installments, oldest first, or in full (payoff).
//! A repayment is allocated by the product's order, booked on the installments, posted to the
//! ledger, and gives the line back the principal it repaid; a loan repaid in full closes with
//! `closed.paid_off`. Installment fees are recognised as they are repaid.

use lendcore_domain::allocation::{self, Allocation, Component, Due};
use lendcore_domain::drawdown::{Drawdown, DrawdownStatus};
use lendcore_domain::ledger::LoanAccounts;
use lendcore_domain::product::MAX_AMOUNT_MINOR;
use lendcore_domain::reasons::Reason;
use lendcore_domain::schedule::accrued_interest;
use lendcore_domain::topic::Topic;
use lendcore_domain::validation::Violations;
use lendcore_store::{BorrowerUnit, OutboxEvent, UnitOfWork};
use serde::{Deserialize, Serialize};

use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::{Engine, EngineError, new_id};

/// Repayments arrive through the lender's collection account at the channels.
const COLLECTIONS: &str = "collections";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RepaymentMode {
    /// Settle installments oldest first, in the product's allocation order; paying ahead of the
    /// schedule settles the next installments in full.
    Installments,
    /// Repay everything today: installments due, the principal left, the current period's
    /// interest to date. Future interest is not charged.
    Payoff,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepaymentReceipt {
    pub loan: Drawdown,
    pub allocation: Allocation,
    pub outstanding_principal_minor: i64,
}

pub async fn repay(
    engine: &Engine,
    loan_id: &str,
    amount_minor: i64,
    mode: RepaymentMode,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<RepaymentReceipt>, EngineError> {
    let now = engine.clock.now();
    check_amount(amount_minor)?;
    let mut uow = crate::begin_for_id(engine.store.as_ref(), loan_id)
        .await?
        .ok_or_else(|| loan_not_found(loan_id))?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let mut loan = lock_active_loan(uow.as_mut(), loan_id).await?;
    let order = allocation_order(uow.as_mut(), &loan).await?;
    let dues = dues_for(&loan, mode, amount_minor, now.date_naive())?;
    let allocation = allocation::allocate(amount_minor, &dues, &order)
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    let read_revision = loan.revision;
    loan.apply(&allocation);
    loan.revision += 1;
    loan.updated_at = now;
    book(uow.as_mut(), &mut loan, &allocation, now).await?;
    let settled = match mode {
        RepaymentMode::Payoff => true,
        RepaymentMode::Installments => loan.dues().is_empty(),
    };
    let step = if settled {
        let closed = loan
            .status
            .close(Reason::PaidOff)
            .map_err(|e| EngineError::conflict(e.code(), e.to_string()))?;
        // `move_to` counts its own revision; undo the one taken above.
        loan.revision -= 1;
        Some(loan.move_to(closed, now))
    } else {
        None
    };
    uow.update_drawdown(&loan, read_revision, step.as_ref())
        .await?;
    announce(uow.as_mut(), &loan, amount_minor, &allocation, settled).await?;
    let receipt = RepaymentReceipt {
        outstanding_principal_minor: loan.outstanding_principal_minor(),
        loan,
        allocation,
    };
    idempotency::record(uow.as_mut(), request, &receipt, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(receipt))
}

fn loan_not_found(loan_id: &str) -> EngineError {
    EngineError::not_found("not_found.loan", format!("no loan with id {loan_id}"))
}

fn check_amount(amount_minor: i64) -> Result<(), EngineError> {
    if (1..=MAX_AMOUNT_MINOR).contains(&amount_minor) {
        return Ok(());
    }
    Err(Violations::single(
        "amount_minor",
        "validation.amount_out_of_range",
        format!("amount_minor must be between 1 and {MAX_AMOUNT_MINOR}"),
    )
    .into())
}

/// The loan, locked for the repayment; only a loan paid out and not yet closed is repaid.
async fn lock_active_loan(
    uow: &mut dyn BorrowerUnit,
    loan_id: &str,
) -> Result<Drawdown, EngineError> {
    let loan = uow
        .lock_drawdown(loan_id)
        .await?
        .ok_or_else(|| loan_not_found(loan_id))?;
    match loan.status {
        DrawdownStatus::Active => Ok(loan),
        DrawdownStatus::Quoted { .. }
        | DrawdownStatus::QueuedForMaintenance { .. }
        | DrawdownStatus::HeldForReview { .. }
        | DrawdownStatus::Disbursing
        | DrawdownStatus::ManualReview { .. }
        | DrawdownStatus::Expired { .. }
        | DrawdownStatus::Refused { .. }
        | DrawdownStatus::Failed { .. }
        | DrawdownStatus::Closed { .. } => Err(EngineError::conflict(
            "conflict.loan_not_active",
            format!("loan {loan_id} is {}: nothing to repay", loan.status.name()),
        )),
    }
}

/// The order the loan's product version allocates repayments in.
async fn allocation_order(
    uow: &mut dyn UnitOfWork,
    loan: &Drawdown,
) -> Result<allocation::AllocationOrder, EngineError> {
    let product = uow
        .find_product(&loan.product_code)
        .await?
        .ok_or_else(|| EngineError::Internal(format!("product of loan {} is gone", loan.id)))?;
    Ok(product
        .versions
        .iter()
        .find(|v| v.version == loan.product_version)
        .map(|v| v.terms.allocation().clone())
        .unwrap_or_default())
}

/// What the repayment settles: the installments left, or what paying off today takes. A
/// repayment takes at most what is owed: more would have to be refunded, and a wrong amount
/// typed by a person must not close a loan and debit the collections account.
fn dues_for(
    loan: &Drawdown,
    mode: RepaymentMode,
    amount_minor: i64,
    today: lendcore_domain::calendar::Date,
) -> Result<Vec<Due>, EngineError> {
    let owed = |dues: &[Due]| -> i64 {
        dues.iter()
            .map(|d| d.penalty_minor + d.fee_minor + d.interest_minor + d.principal_minor)
            .sum()
    };
    let dues = match mode {
        RepaymentMode::Installments => loan.dues(),
        RepaymentMode::Payoff => payoff_dues(loan, today),
    };
    let owed = owed(&dues);
    if mode == RepaymentMode::Payoff && amount_minor < owed {
        return Err(Violations::single(
            "amount_minor",
            "validation.amount_below_payoff",
            format!("paying off today takes {owed} minor units"),
        )
        .into());
    }
    if amount_minor > owed {
        return Err(Violations::single(
            "amount_minor",
            "validation.amount_above_owed",
            format!("{owed} minor units are owed; a repayment takes at most that"),
        )
        .into());
    }
    Ok(dues)
}

/// Posts the repayment to the ledger — recognising interest paid ahead of its accrual and
/// fees as they are paid — and gives the line back the principal repaid.
async fn book(
    uow: &mut dyn BorrowerUnit,
    loan: &mut Drawdown,
    allocation: &Allocation,
    now: lendcore_domain::Timestamp,
) -> Result<(), EngineError> {
    let share = |c: Component| -> i64 {
        allocation
            .shares
            .iter()
            .filter(|s| s.component == c)
            .map(|s| s.amount_minor)
            .sum()
    };
    let accounts = LoanAccounts {
        loan_id: loan.id.clone(),
        channel_id: COLLECTIONS.to_owned(),
        currency: loan.currency,
    };
    let ledger =
        |e: lendcore_domain::ledger::LedgerError| EngineError::Internal(format!("ledger: {e}"));
    // Interest paid ahead of its accrual (a payoff, paying early) is recognised now, so the
    // receivable never goes below zero; close of business then has nothing left to accrue.
    let interest_paid: i64 = loan.paid.iter().map(|p| p.interest_minor).sum();
    let unrecognised = interest_paid - loan.servicing.interest_accrued_minor;
    if unrecognised > 0 {
        uow.post_entry(
            &accounts
                .accrue_interest(new_id(), unrecognised, now)
                .map_err(ledger)?,
        )
        .await?;
        loan.servicing.interest_accrued_minor = interest_paid;
    }
    let fees = share(Component::Fee);
    if fees > 0 {
        uow.post_entry(&accounts.charge_fee(new_id(), fees, now).map_err(ledger)?)
            .await?;
    }
    uow.post_entry(&accounts.repay(new_id(), allocation, now).map_err(ledger)?)
        .await?;
    let principal = share(Component::Principal);
    if principal > 0 {
        uow.repay_drawn(&loan.line_id, principal, now).await?;
    }
    Ok(())
}

/// What paying off today settles: installments already due in full, then the rest of the
/// principal with the current period's interest accrued to today.
fn payoff_dues(loan: &Drawdown, today: lendcore_domain::calendar::Date) -> Vec<Due> {
    let mut dues = Vec::new();
    let open = loan.dues();
    let schedule = &loan.quote.schedule;
    let mut rest_principal = 0;
    let mut current: Option<(u32, i64)> = None;
    for due in open {
        let Some(installment) = schedule
            .installments
            .iter()
            .find(|i| i.number == due.installment)
        else {
            continue;
        };
        if installment.due_date <= today {
            dues.push(due);
        } else {
            rest_principal += due.principal_minor;
            if current.is_none() {
                let accrued = accrued_interest(
                    schedule,
                    installment.accrues_from,
                    today.max(installment.accrues_from),
                );
                let paid = installment.interest_minor - due.interest_minor;
                current = Some((due.installment, (accrued - paid).max(0)));
            }
        }
    }
    if let Some((number, interest)) = current {
        dues.push(Due {
            installment: number,
            penalty_minor: 0,
            fee_minor: 0,
            interest_minor: interest,
            principal_minor: rest_principal,
        });
    }
    dues
}

async fn announce(
    uow: &mut dyn UnitOfWork,
    loan: &Drawdown,
    amount_minor: i64,
    allocation: &Allocation,
    settled: bool,
) -> Result<(), EngineError> {
    let topic = if settled {
        Topic::LoanPaidOff
    } else {
        Topic::LoanRepaid
    };
    crate::audit::announce(
        uow,
        OutboxEvent {
            id: new_id(),
            topic: topic.as_str().to_owned(),
            aggregate_type: "drawdown".to_owned(),
            aggregate_id: loan.id.clone(),
            payload: serde_json::json!({
                "loan_id": loan.id,
                "borrower_id": loan.borrower_id,
                "amount_minor": amount_minor,
                "currency": loan.currency,
                "unapplied_minor": allocation.unapplied_minor,
                "outstanding_principal_minor": loan.outstanding_principal_minor(),
                "reason": settled.then_some(Reason::PaidOff),
            }),
            created_at: loan.updated_at,
            published_at: None,
        },
        &crate::acting::current(),
    )
    .await?;
    Ok(())
}
