//! A running loan on a given date: what paying it off costs, what a partial prepayment does to
//! the rest of the schedule, and what an overdue installment adds in penalty interest.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::Date;
use crate::product::{FeeAmount, FeeTiming, RepaymentMethod, TermUnit};
use crate::rounding::RoundingMode;
use crate::schedule::{self, Installment, LoanSpec, Schedule, ScheduleError, accrued_interest};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServicingError {
    #[error("installment {0} is due and unpaid: settle it before prepaying")]
    InstallmentDue(u32),
    #[error("the prepayment must be a positive amount of principal")]
    NonPositivePrepayment,
    #[error("the prepayment covers the whole balance: ask for a payoff quote instead")]
    CoversBalance,
    #[error("{0:?} loans cannot shorten their term by prepaying")]
    ReduceTermNotAvailable(RepaymentMethod),
    #[error("every installment is paid")]
    NothingOwed,
    #[error("{paid} installments paid, but the schedule has only {count}")]
    PaidBeyondSchedule { paid: u32, count: u32 },
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

/// What settles the loan in full on a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payoff {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub on: Date,
    /// Installments already due and unpaid, in full (penalty interest comes on top).
    pub due_installments_minor: i64,
    /// Principal not yet due.
    pub principal_minor: i64,
    /// Interest of the current period, accrued to `on`.
    pub accrued_interest_minor: i64,
    pub prepayment_fee_minor: i64,
    pub total_minor: i64,
}

/// The payoff quote on `on` of a loan with its first `paid` installments paid.
pub fn payoff(
    spec: &LoanSpec,
    schedule: &Schedule,
    paid: u32,
    on: Date,
) -> Result<Payoff, ServicingError> {
    let open = open_installments(schedule, paid)?;
    let due_installments: i64 = open
        .iter()
        .filter(|i| i.due_date <= on)
        .map(|i| i.total_minor)
        .sum();
    let (principal, accrued) = match open.iter().find(|i| i.due_date > on) {
        Some(current) => (
            current.principal_minor + current.remaining_principal_minor,
            accrued_interest(schedule, current.accrues_from, on.max(current.accrues_from)),
        ),
        None => (0, 0),
    };
    let fee = prepayment_fee(spec, principal)?;
    Ok(Payoff {
        on,
        due_installments_minor: due_installments,
        principal_minor: principal,
        accrued_interest_minor: accrued,
        prepayment_fee_minor: fee,
        total_minor: due_installments + principal + accrued + fee,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PrepaymentMode {
    /// Keep the number of installments; each becomes smaller.
    ReduceInstallment,
    /// Keep the installment; the loan ends sooner.
    ReduceTerm,
}

/// A partial prepayment and the schedule that follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prepaid {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub on: Date,
    /// Interest accrued on the old balance up to `on`, paid now.
    pub interest_minor: i64,
    pub principal_minor: i64,
    pub fee_minor: i64,
    /// interest + principal + fee: what the borrower pays today.
    pub total_minor: i64,
    /// Paid installments unchanged, then the recalculated rest. The first recalculated one
    /// accrues from `on`, on the new balance. `principal_minor` and the upfront figures stay
    /// those of the original loan; the prepayment itself is the fields above, not an
    /// installment, so this schedule's totals cover its installments only.
    pub schedule: Schedule,
}

/// Prepays `principal_minor` on `on`, with the first `paid` installments paid, and recalculates
/// the rest of the schedule by `mode`.
pub fn prepay(
    spec: &LoanSpec,
    schedule: &Schedule,
    paid: u32,
    on: Date,
    principal_minor: i64,
    mode: PrepaymentMode,
) -> Result<Prepaid, ServicingError> {
    let open = open_installments(schedule, paid)?;
    if let Some(due) = open.iter().find(|i| i.due_date <= on) {
        return Err(ServicingError::InstallmentDue(due.number));
    }
    let current = open.first().ok_or(ServicingError::NothingOwed)?;
    let balance = current.principal_minor + current.remaining_principal_minor;
    if principal_minor <= 0 {
        return Err(ServicingError::NonPositivePrepayment);
    }
    if principal_minor >= balance {
        return Err(ServicingError::CoversBalance);
    }
    let interest_now =
        accrued_interest(schedule, current.accrues_from, on.max(current.accrues_from));
    let new_balance = balance - principal_minor;
    let dues: Vec<Date> = open.iter().map(|i| i.due_date).collect();
    // The share of the current period still to run after `on`, by the product's day count,
    // measured against the whole period (from the previous due date), however many
    // prepayments have already cut into it.
    let period_start = match paid {
        0 => schedule.start,
        _ => schedule.installments[paid as usize - 1].due_date,
    };
    let from = on.max(current.accrues_from);
    let period_days = spec.day_count.days(period_start, current.due_date).max(1);
    let rest_days = (current.due_date - from).num_days().max(0);
    let first_share = Decimal::from(spec.day_count.days(from, current.due_date).max(0))
        / Decimal::from(period_days);
    let rows = rest_of_schedule(
        spec,
        current,
        new_balance,
        dues.len(),
        first_share,
        rest_days,
        mode,
    )?;

    let fee_per_installment = spec.fees_with(FeeTiming::PerInstallment)?;
    let mut installments: Vec<Installment> = schedule.installments[..paid as usize].to_vec();
    let mut remaining = new_balance;
    let mut accrues_from = on.max(current.accrues_from);
    for (index, (principal, interest)) in rows.into_iter().enumerate() {
        remaining -= principal;
        installments.push(Installment {
            number: paid + index as u32 + 1,
            due_date: dues[index],
            accrues_from,
            principal_minor: principal,
            interest_minor: interest,
            fee_minor: fee_per_installment,
            total_minor: principal + interest + fee_per_installment,
            remaining_principal_minor: remaining,
        });
        accrues_from = dues[index];
    }
    let fee = prepayment_fee(spec, principal_minor)?;
    let total_interest = installments.iter().map(|i| i.interest_minor).sum();
    let installment_fees: i64 = installments.iter().map(|i| i.fee_minor).sum();
    let total_repaid = installments.iter().map(|i| i.total_minor).sum();
    Ok(Prepaid {
        on,
        interest_minor: interest_now,
        principal_minor,
        fee_minor: fee,
        total_minor: interest_now + principal_minor + fee,
        schedule: Schedule {
            installments,
            total_interest_minor: total_interest,
            total_fee_minor: installment_fees + schedule.upfront_fee_minor,
            total_repaid_minor: total_repaid,
            ..schedule.clone()
        },
    })
}

/// (principal, interest) for what is left after a prepayment: `periods` due dates at most,
/// starting with the current one, of which only `first_share` is still to run.
fn rest_of_schedule(
    spec: &LoanSpec,
    current: &Installment,
    balance: i64,
    periods: usize,
    first_share: Decimal,
    rest_days: i64,
    mode: PrepaymentMode,
) -> Result<Vec<(i64, i64)>, ServicingError> {
    let rate = spec.monthly_rate();
    let round = |exact: Decimal| -> Result<i64, ServicingError> { Ok(spec.round(exact)?) };
    let interest_on = |balance: i64, first: bool| -> Result<i64, ServicingError> {
        let share = if first { first_share } else { Decimal::ONE };
        round(Decimal::from(balance) * rate * share)
    };
    match (spec.method, spec.term_unit, mode) {
        (RepaymentMethod::EqualInstallment, TermUnit::Month, _) => {
            let payment = match mode {
                // Level over the remaining periods, the first of them short: an annuity on the
                // balance carried to the end of a full first period at the short period's rate.
                PrepaymentMode::ReduceInstallment => {
                    let carried = Decimal::from(balance) * (Decimal::ONE + rate * first_share)
                        / (Decimal::ONE + rate);
                    round(schedule::annuity_payment(carried, rate, periods as u32)?)?
                }
                PrepaymentMode::ReduceTerm => current_payment(current),
            };
            amortise(balance, periods, interest_on, |_, interest| {
                payment - interest
            })
        }
        (RepaymentMethod::EqualPrincipal, TermUnit::Month, _) => {
            let share = match mode {
                PrepaymentMode::ReduceInstallment => {
                    round(Decimal::from(balance) / Decimal::from(periods as u64))?
                }
                PrepaymentMode::ReduceTerm => current.principal_minor,
            };
            amortise(balance, periods, interest_on, |_, _| share)
        }
        (RepaymentMethod::InterestOnly, TermUnit::Month, PrepaymentMode::ReduceInstallment) => {
            let mut rows = Vec::with_capacity(periods);
            for k in 0..periods {
                let principal = if k + 1 == periods { balance } else { 0 };
                rows.push((principal, interest_on(balance, k == 0)?));
            }
            Ok(rows)
        }
        (RepaymentMethod::Bullet, TermUnit::Month, PrepaymentMode::ReduceInstallment) => {
            // One period covering the whole term.
            let whole = Decimal::from(balance) * rate * Decimal::from(spec.term);
            Ok(vec![(balance, round(whole * first_share)?)])
        }
        (
            RepaymentMethod::Bullet | RepaymentMethod::RevolvingDaily,
            TermUnit::Day,
            PrepaymentMode::ReduceInstallment,
        )
        | (RepaymentMethod::RevolvingDaily, TermUnit::Month, PrepaymentMode::ReduceInstallment) => {
            let per_day = round(Decimal::from(balance) * spec.daily_rate())?;
            Ok(vec![(balance, per_day * rest_days)])
        }
        (
            method @ (RepaymentMethod::InterestOnly
            | RepaymentMethod::Bullet
            | RepaymentMethod::RevolvingDaily),
            _,
            PrepaymentMode::ReduceTerm,
        ) => Err(ServicingError::ReduceTermNotAvailable(method)),
        (
            method @ (RepaymentMethod::EqualInstallment | RepaymentMethod::EqualPrincipal),
            TermUnit::Day,
            PrepaymentMode::ReduceInstallment | PrepaymentMode::ReduceTerm,
        )
        | (
            method @ RepaymentMethod::InterestOnly,
            TermUnit::Day,
            PrepaymentMode::ReduceInstallment,
        ) => Err(ServicingError::Schedule(ScheduleError::TermUnitNotAllowed(
            method,
        ))),
    }
}

/// Runs a balance down over at most `periods`: interest each period, principal as `principal`
/// says (never more than the balance, never negative); the last period, or the one that clears
/// the balance, takes what is left.
fn amortise(
    mut balance: i64,
    periods: usize,
    interest: impl Fn(i64, bool) -> Result<i64, ServicingError>,
    principal: impl Fn(i64, i64) -> i64,
) -> Result<Vec<(i64, i64)>, ServicingError> {
    let mut rows = Vec::with_capacity(periods);
    for k in 0..periods {
        let interest = interest(balance, k == 0)?;
        let last = k + 1 == periods;
        let part = if last {
            balance
        } else {
            principal(balance, interest).clamp(0, balance)
        };
        balance -= part;
        rows.push((part, interest));
        if balance == 0 {
            break;
        }
    }
    Ok(rows)
}

/// The level installment (principal + interest) the loan was paying.
fn current_payment(current: &Installment) -> i64 {
    current.principal_minor + current.interest_minor
}

fn open_installments(schedule: &Schedule, paid: u32) -> Result<&[Installment], ServicingError> {
    let count = schedule.installments.len() as u32;
    if paid > count {
        return Err(ServicingError::PaidBeyondSchedule { paid, count });
    }
    Ok(&schedule.installments[paid as usize..])
}

fn prepayment_fee(spec: &LoanSpec, prepaid_minor: i64) -> Result<i64, ServicingError> {
    if prepaid_minor <= 0 {
        return Ok(0);
    }
    let mut total = 0i64;
    for fee in spec
        .fees
        .iter()
        .filter(|f| f.timing == FeeTiming::OnPrepayment)
    {
        total += match fee.amount {
            FeeAmount::FixedMinor(minor) => minor,
            FeeAmount::RateOfPrincipal(rate) => spec.round(rate * Decimal::from(prepaid_minor))?,
        };
    }
    Ok(total)
}

/// Revolving interest on a balance that changes. `balances` lists, oldest first, the date from
/// which each balance is owed (a drawdown or a repayment on that date). Interest is charged per
/// day held: for every day from `from` up to, not including, `to`, round(balance × daily rate)
/// (the revolving rounding point) on the balance owed that day. Drawn on the 1st and repaid on
/// the 11th is ten days of interest.
pub fn revolving_interest(
    balances: &[(Date, i64)],
    from: Date,
    to: Date,
    daily_rate: Decimal,
    rounding: RoundingMode,
) -> Result<i64, ServicingError> {
    let mut total = 0i64;
    for (index, &(since, balance)) in balances.iter().enumerate() {
        let until = balances
            .get(index + 1)
            .map_or(to, |&(next, _)| next.min(to));
        let days = (until - since.max(from)).num_days();
        if days <= 0 {
            continue;
        }
        let per_day = rounding
            .to_minor(Decimal::from(balance.max(0)) * daily_rate)
            .map_err(ScheduleError::from)?;
        total = per_day
            .checked_mul(days)
            .and_then(|x| x.checked_add(total))
            .ok_or(ServicingError::Schedule(ScheduleError::Overflow))?;
    }
    Ok(total)
}

/// How late a borrower is, in the buckets collections work by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Delinquency {
    Current,
    #[serde(rename = "dpd_1_30")]
    Dpd1To30,
    #[serde(rename = "dpd_31_60")]
    Dpd31To60,
    #[serde(rename = "dpd_61_90")]
    Dpd61To90,
    #[serde(rename = "dpd_90_plus")]
    Dpd90Plus,
}

impl Delinquency {
    pub fn of_days_past_due(days: u32) -> Self {
        match days {
            0 => Delinquency::Current,
            1..=30 => Delinquency::Dpd1To30,
            31..=60 => Delinquency::Dpd31To60,
            61..=90 => Delinquency::Dpd61To90,
            _ => Delinquency::Dpd90Plus,
        }
    }
}

/// The penalty terms of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PenaltyTerms {
    pub grace_days: u32,
    pub daily_rate: Decimal,
    pub on_interest: bool,
    pub rounding: RoundingMode,
}

/// An unpaid installment as of a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Overdue {
    pub days_past_due: u32,
    /// Late, but within the grace days: no penalty, still current.
    pub in_grace: bool,
    pub delinquency: Delinquency,
    /// Penalty interest from the day after the due date, once the grace days have passed.
    pub penalty_minor: i64,
}

/// Where an installment due on `due` with `unpaid_principal` and `unpaid_interest` stands on
/// `as_of`. Paid within the grace days, no penalty; past them, penalty for every day since the
/// due date: each day's penalty rounded (a named rounding point), times the days.
pub fn overdue(
    due: Date,
    as_of: Date,
    unpaid_principal_minor: i64,
    unpaid_interest_minor: i64,
    terms: &PenaltyTerms,
) -> Result<Overdue, ServicingError> {
    let days = u32::try_from((as_of - due).num_days().max(0)).unwrap_or(u32::MAX);
    let in_grace = days > 0 && days <= terms.grace_days;
    if days == 0 || in_grace {
        return Ok(Overdue {
            days_past_due: days,
            in_grace,
            delinquency: Delinquency::Current,
            penalty_minor: 0,
        });
    }
    let base = unpaid_principal_minor.max(0)
        + if terms.on_interest {
            unpaid_interest_minor.max(0)
        } else {
            0
        };
    let per_day = terms
        .rounding
        .to_minor(Decimal::from(base) * terms.daily_rate)
        .map_err(ScheduleError::from)?;
    Ok(Overdue {
        days_past_due: days,
        in_grace: false,
        delinquency: Delinquency::of_days_past_due(days),
        penalty_minor: per_day
            .checked_mul(i64::from(days))
            .ok_or(ServicingError::Schedule(ScheduleError::Overflow))?,
    })
}

#[cfg(test)]
mod tests;
