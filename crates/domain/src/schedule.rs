//! Repayment schedules: every installment's due date, principal, interest, fee and the principal
//! left after it, to the minor unit. Principals always sum exactly to the amount lent.
//!
//! Rates: an annual nominal rate gives a monthly rate of annual / 12; a daily rate gives a
//! monthly rate of daily × 30 and, for revolving interest, is used per day as it is. An annual
//! rate is turned into a daily one by the product's day count (annual / 365 or / 360).

use rust_decimal::prelude::*;
use serde::{Deserialize, Serialize};

use crate::calendar::{Date, DayCount, add_months_anchored};
use crate::product::{Fee, FeeAmount, FeeTiming, RateBasis, RepaymentMethod, TermUnit};
use crate::rounding::{AmountOverflow, RoundingMode};

/// Everything a schedule depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct LoanSpec {
    pub principal_minor: i64,
    pub method: RepaymentMethod,
    /// Number of `term_unit`s; days only for bullet and revolving loans.
    pub term: u32,
    pub term_unit: TermUnit,
    pub rate_basis: RateBasis,
    pub rate: Decimal,
    pub start: Date,
    pub rounding: RoundingMode,
    pub day_count: DayCount,
    pub fees: Vec<Fee>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the amount must be positive")]
    NonPositiveAmount,
    #[error("the term must be at least one period")]
    ZeroTerm,
    #[error("{0:?} repayment needs a term in months")]
    TermUnitNotAllowed(RepaymentMethod),
    #[error("a due date falls outside the calendar")]
    DateOutOfRange,
    #[error("an amount is too large to represent")]
    Overflow,
    #[error("the upfront fees ({fees}) leave nothing of the principal ({principal}) to pay out")]
    FeesExceedPrincipal { fees: i64, principal: i64 },
}

impl From<AmountOverflow> for ScheduleError {
    fn from(_: AmountOverflow) -> Self {
        ScheduleError::Overflow
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Installment {
    /// 1 for the first installment.
    pub number: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub due_date: Date,
    /// Interest of this installment accrues from this date (exclusive) to its due date: the
    /// previous due date, or the start, or the day of a partial prepayment.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub accrues_from: Date,
    pub principal_minor: i64,
    pub interest_minor: i64,
    pub fee_minor: i64,
    /// principal + interest + fee.
    pub total_minor: i64,
    /// Principal still owed once this installment is paid.
    pub remaining_principal_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schedule {
    pub principal_minor: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub start: Date,
    /// Fees deducted from the amount paid out.
    pub upfront_fee_minor: i64,
    /// What the borrower receives: principal less upfront fees.
    pub disbursed_minor: i64,
    pub installments: Vec<Installment>,
    pub total_interest_minor: i64,
    pub total_fee_minor: i64,
    /// Everything the borrower repays.
    pub total_repaid_minor: i64,
    /// Periods per year of the installments, for annualising their rate: 12 for monthly
    /// installments, 12 / term for one payment after a term in months, 365 / term in days.
    pub periods_per_year: Decimal,
}

impl LoanSpec {
    /// The rate per monthly period.
    pub fn monthly_rate(&self) -> Decimal {
        match self.rate_basis {
            RateBasis::Annual => self.rate / Decimal::from(12),
            RateBasis::Daily => self.rate * Decimal::from(30),
        }
    }

    /// The rate per day.
    pub fn daily_rate(&self) -> Decimal {
        match self.rate_basis {
            RateBasis::Annual => self.day_count.daily_rate(self.rate),
            RateBasis::Daily => self.rate,
        }
    }

    pub(crate) fn round(&self, exact_minor: Decimal) -> Result<i64, ScheduleError> {
        Ok(self.rounding.to_minor(exact_minor)?)
    }

    /// A fee's amount on this loan's principal, rounded.
    fn fee_amount(&self, fee: &Fee) -> Result<i64, ScheduleError> {
        match fee.amount {
            FeeAmount::FixedMinor(minor) => Ok(minor),
            FeeAmount::RateOfPrincipal(rate) => {
                self.round(rate * Decimal::from(self.principal_minor))
            }
        }
    }

    pub(crate) fn fees_with(&self, timing: FeeTiming) -> Result<i64, ScheduleError> {
        self.fees
            .iter()
            .filter(|fee| fee.timing == timing)
            .try_fold(0i64, |sum, fee| {
                sum.checked_add(self.fee_amount(fee)?)
                    .ok_or(ScheduleError::Overflow)
            })
    }
}

/// Builds the schedule of a loan.
pub fn build(spec: &LoanSpec) -> Result<Schedule, ScheduleError> {
    if spec.principal_minor <= 0 {
        return Err(ScheduleError::NonPositiveAmount);
    }
    if spec.term == 0 {
        return Err(ScheduleError::ZeroTerm);
    }
    let rows = match (spec.method, spec.term_unit) {
        (RepaymentMethod::EqualInstallment, TermUnit::Month) => annuity(spec)?,
        (RepaymentMethod::EqualPrincipal, TermUnit::Month) => equal_principal(spec)?,
        (RepaymentMethod::InterestOnly, TermUnit::Month) => interest_only(spec)?,
        (RepaymentMethod::Bullet, TermUnit::Month) => {
            let interest = spec.round(
                Decimal::from(spec.principal_minor)
                    * spec.monthly_rate()
                    * Decimal::from(spec.term),
            )?;
            vec![(spec.principal_minor, interest)]
        }
        (RepaymentMethod::Bullet | RepaymentMethod::RevolvingDaily, TermUnit::Day)
        | (RepaymentMethod::RevolvingDaily, TermUnit::Month) => {
            // Interest accrues per day on the whole balance: each day's interest is rounded
            // (the revolving rounding point) and the days are summed.
            let days = i64::from(days_of_term(spec)?);
            let per_day = spec.round(Decimal::from(spec.principal_minor) * spec.daily_rate())?;
            let interest = per_day.checked_mul(days).ok_or(ScheduleError::Overflow)?;
            vec![(spec.principal_minor, interest)]
        }
        (
            method @ (RepaymentMethod::EqualInstallment
            | RepaymentMethod::EqualPrincipal
            | RepaymentMethod::InterestOnly),
            TermUnit::Day,
        ) => return Err(ScheduleError::TermUnitNotAllowed(method)),
    };
    assemble(spec, rows)
}

/// Days from the start to the single due date of a bullet or revolving term.
fn days_of_term(spec: &LoanSpec) -> Result<u32, ScheduleError> {
    let due = due_date(spec, 1, 1)?;
    u32::try_from((due - spec.start).num_days()).map_err(|_| ScheduleError::DateOutOfRange)
}

/// The due date of installment `number` out of `count`.
fn due_date(spec: &LoanSpec, number: u32, count: u32) -> Result<Date, ScheduleError> {
    let due = match (spec.term_unit, count) {
        (TermUnit::Month, 1) => add_months_anchored(spec.start, spec.term),
        (TermUnit::Month, _) => add_months_anchored(spec.start, number),
        (TermUnit::Day, _) => spec
            .start
            .checked_add_days(chrono::Days::new(u64::from(spec.term))),
    };
    due.ok_or(ScheduleError::DateOutOfRange)
}

/// 等额本息: one installment amount, rounded once; each period's interest on the balance; the
/// last installment takes whatever principal is left, absorbing every rounding.
fn annuity(spec: &LoanSpec) -> Result<Vec<(i64, i64)>, ScheduleError> {
    let rate = spec.monthly_rate();
    let n = spec.term;
    let payment = spec.round(annuity_payment(
        Decimal::from(spec.principal_minor),
        rate,
        n,
    )?)?;
    let mut balance = spec.principal_minor;
    let mut rows = Vec::with_capacity(n as usize);
    for k in 1..=n {
        let interest = spec.round(Decimal::from(balance) * rate)?;
        let principal = if k == n {
            balance
        } else {
            (payment - interest).clamp(0, balance)
        };
        balance -= principal;
        rows.push((principal, interest));
    }
    Ok(rows)
}

/// The exact (unrounded) installment that repays `principal` in `periods` equal installments
/// at `rate` per period: principal × r / (1 − (1 + r)^−n), or principal / n at a zero rate.
pub fn annuity_payment(
    principal: Decimal,
    rate: Decimal,
    periods: u32,
) -> Result<Decimal, ScheduleError> {
    if periods == 0 {
        return Err(ScheduleError::ZeroTerm);
    }
    if rate.is_zero() {
        return Ok(principal / Decimal::from(periods));
    }
    // (1 + r)^-n; past Decimal's range it is below 1e-28, and zero to every digit we keep.
    let discount = (Decimal::ONE + rate)
        .checked_powu(u64::from(periods))
        .and_then(|growth| Decimal::ONE.checked_div(growth))
        .unwrap_or(Decimal::ZERO);
    principal
        .checked_mul(rate)
        .and_then(|x| x.checked_div(Decimal::ONE - discount))
        .ok_or(ScheduleError::Overflow)
}

/// 等额本金: the same principal each period (rounded), interest on the balance; the last period
/// takes the remainder.
fn equal_principal(spec: &LoanSpec) -> Result<Vec<(i64, i64)>, ScheduleError> {
    let rate = spec.monthly_rate();
    let n = spec.term;
    let share = spec.round(Decimal::from(spec.principal_minor) / Decimal::from(n))?;
    let mut balance = spec.principal_minor;
    let mut rows = Vec::with_capacity(n as usize);
    for k in 1..=n {
        let interest = spec.round(Decimal::from(balance) * rate)?;
        let principal = if k == n { balance } else { share.min(balance) };
        balance -= principal;
        rows.push((principal, interest));
    }
    Ok(rows)
}

/// 先息后本: interest every period, all principal with the last.
fn interest_only(spec: &LoanSpec) -> Result<Vec<(i64, i64)>, ScheduleError> {
    let interest = spec.round(Decimal::from(spec.principal_minor) * spec.monthly_rate())?;
    Ok((1..=spec.term)
        .map(|k| {
            let principal = if k == spec.term {
                spec.principal_minor
            } else {
                0
            };
            (principal, interest)
        })
        .collect())
}

/// Turns (principal, interest) per period into installments with dates, fees and totals.
pub(crate) fn assemble(spec: &LoanSpec, rows: Vec<(i64, i64)>) -> Result<Schedule, ScheduleError> {
    let count = u32::try_from(rows.len()).map_err(|_| ScheduleError::Overflow)?;
    let fee = spec.fees_with(FeeTiming::PerInstallment)?;
    let upfront = spec.fees_with(FeeTiming::Upfront)?;
    if upfront >= spec.principal_minor {
        return Err(ScheduleError::FeesExceedPrincipal {
            fees: upfront,
            principal: spec.principal_minor,
        });
    }
    let mut remaining = spec.principal_minor;
    let mut installments = Vec::with_capacity(rows.len());
    let mut accrues_from = spec.start;
    for (index, (principal, interest)) in rows.into_iter().enumerate() {
        let number = index as u32 + 1;
        remaining -= principal;
        let total = principal
            .checked_add(interest)
            .and_then(|x| x.checked_add(fee))
            .ok_or(ScheduleError::Overflow)?;
        let due = due_date(spec, number, count)?;
        installments.push(Installment {
            number,
            due_date: due,
            accrues_from,
            principal_minor: principal,
            interest_minor: interest,
            fee_minor: fee,
            total_minor: total,
            remaining_principal_minor: remaining,
        });
        accrues_from = due;
    }
    let sum = |f: fn(&Installment) -> i64| -> Result<i64, ScheduleError> {
        installments.iter().try_fold(0i64, |acc, i| {
            acc.checked_add(f(i)).ok_or(ScheduleError::Overflow)
        })
    };
    let total_interest = sum(|i| i.interest_minor)?;
    let installment_fees = sum(|i| i.fee_minor)?;
    let total_repaid = sum(|i| i.total_minor)?;
    // A single payment is one period as long as the loan: months for a bullet in months, the
    // actual days when interest is counted per day (a revolving line held for some months).
    let periods_per_year = match (spec.term_unit, spec.method, count) {
        (TermUnit::Month, RepaymentMethod::RevolvingDaily, _) | (TermUnit::Day, _, _) => {
            let days = (installments[0].due_date - spec.start).num_days().max(1);
            Decimal::from(365) / Decimal::from(days)
        }
        (TermUnit::Month, _, 1) => Decimal::from(12) / Decimal::from(spec.term),
        (TermUnit::Month, _, _) => Decimal::from(12),
    };
    Ok(Schedule {
        principal_minor: spec.principal_minor,
        start: spec.start,
        upfront_fee_minor: upfront,
        disbursed_minor: spec.principal_minor - upfront,
        installments,
        total_interest_minor: total_interest,
        total_fee_minor: installment_fees
            .checked_add(upfront)
            .ok_or(ScheduleError::Overflow)?,
        total_repaid_minor: total_repaid,
        periods_per_year,
    })
}

/// Interest of `schedule` that accrues after `from` up to and including `to`. Each period's
/// interest is spread over its days by cumulative rounding down, so the daily amounts of a
/// period sum exactly to its interest and close of business can post them day by day.
pub fn accrued_interest(schedule: &Schedule, from: Date, to: Date) -> i64 {
    if to <= from {
        return 0;
    }
    let mut total = 0i64;
    for installment in &schedule.installments {
        let period_start = installment.accrues_from;
        let period_end = installment.due_date;
        let period_days = (period_end - period_start).num_days();
        let accrued_by = |date: Date| -> i64 {
            if period_days <= 0 {
                return if date >= period_end {
                    installment.interest_minor
                } else {
                    0
                };
            }
            let elapsed = (date.max(period_start).min(period_end) - period_start).num_days();
            // Exact integer arithmetic: floor(interest × elapsed / days).
            let scaled = i128::from(installment.interest_minor) * i128::from(elapsed);
            (scaled / i128::from(period_days)) as i64
        };
        total += accrued_by(to) - accrued_by(from);
    }
    total
}

#[cfg(test)]
mod tests;
