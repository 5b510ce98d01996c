use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::calendar::DayCount;
use crate::product::{Fee, RateBasis};
use crate::schedule::build;

fn d(y: i32, m: u32, day: u32) -> Date {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn spec(method: RepaymentMethod) -> LoanSpec {
    LoanSpec {
        principal_minor: 1_000_000,
        method,
        term: 12,
        term_unit: TermUnit::Month,
        rate_basis: RateBasis::Annual,
        rate: Decimal::new(12, 2),
        start: d(2026, 1, 31),
        rounding: RoundingMode::HalfUp,
        day_count: DayCount::Actual365,
        fees: Vec::new(),
    }
}

#[test]
fn payoff_mid_period_is_principal_plus_interest_to_date() {
    let s = spec(RepaymentMethod::EqualInstallment);
    let schedule = build(&s).unwrap();
    // 14 of the 28 days of the first period: half of its 100.00.
    let p = payoff(&s, &schedule, 0, d(2026, 2, 14)).unwrap();
    assert_eq!(
        (
            p.due_installments_minor,
            p.principal_minor,
            p.accrued_interest_minor,
            p.total_minor
        ),
        (0, 1_000_000, 5_000, 1_005_000)
    );
    // A month late: installment 1 in full, then the rest with 14 days of March's interest.
    let late = payoff(&s, &schedule, 0, d(2026, 3, 14)).unwrap();
    assert_eq!(late.due_installments_minor, 88_849);
    assert_eq!(late.principal_minor, 921_151);
    assert_eq!(late.accrued_interest_minor, 9_212 * 14 / 31);
}

#[test]
fn a_prepayment_fee_applies_to_the_principal_repaid_early() {
    let mut s = spec(RepaymentMethod::EqualInstallment);
    s.fees.push(Fee {
        code: "early".into(),
        timing: FeeTiming::OnPrepayment,
        amount: FeeAmount::RateOfPrincipal(Decimal::new(1, 2)),
    });
    let schedule = build(&s).unwrap();
    let p = payoff(&s, &schedule, 0, d(2026, 2, 14)).unwrap();
    assert_eq!(p.prepayment_fee_minor, 10_000);
    assert_eq!(p.total_minor, 1_015_000);
    assert_eq!(
        schedule.upfront_fee_minor, 0,
        "an early-repayment fee is not taken up front"
    );
}

#[test]
fn prepaying_half_reduces_the_installment_or_the_term() {
    let s = spec(RepaymentMethod::EqualInstallment);
    let schedule = build(&s).unwrap();
    let on = d(2026, 2, 28); // installment 1 just paid
    let smaller = prepay(
        &s,
        &schedule,
        1,
        on,
        500_000,
        PrepaymentMode::ReduceInstallment,
    )
    .unwrap();
    assert_eq!(
        smaller.interest_minor, 0,
        "nothing has accrued yet in the new period"
    );
    let rest = &smaller.schedule.installments[1..];
    assert_eq!(rest.len(), 11);
    assert_eq!(rest.iter().map(|i| i.principal_minor).sum::<i64>(), 421_151);
    // 4211.51 over 11 months at 1%: 4211.51 × 0.01 / (1 − 1.01^−11) = 406.2232… → 406.22.
    assert_eq!(rest[0].principal_minor + rest[0].interest_minor, 40_622);

    let shorter = prepay(&s, &schedule, 1, on, 500_000, PrepaymentMode::ReduceTerm).unwrap();
    let rest = &shorter.schedule.installments[1..];
    assert_eq!(
        rest[0].principal_minor + rest[0].interest_minor,
        88_849,
        "same installment"
    );
    assert_eq!(rest.len(), 5, "4211.51 at 888.49 a month is done in five");
    assert_eq!(rest.iter().map(|i| i.principal_minor).sum::<i64>(), 421_151);
    assert_eq!(rest.last().unwrap().remaining_principal_minor, 0);
}

#[test]
fn a_prepayment_mid_period_pays_interest_to_date_and_the_rest_runs_on_the_new_balance() {
    let s = spec(RepaymentMethod::EqualPrincipal);
    let schedule = build(&s).unwrap();
    let p = prepay(
        &s,
        &schedule,
        0,
        d(2026, 2, 14),
        400_000,
        PrepaymentMode::ReduceInstallment,
    )
    .unwrap();
    assert_eq!(p.interest_minor, 5_000);
    let first = &p.schedule.installments[0];
    assert_eq!(first.accrues_from, d(2026, 2, 14));
    // 6000.00 × 1% × 14/28 = 30.00 for the rest of February.
    assert_eq!(first.interest_minor, 3_000);
    assert_eq!(first.principal_minor, 50_000);
}

#[test]
fn a_second_prepayment_in_the_same_period_charges_only_the_days_left() {
    let s = spec(RepaymentMethod::EqualPrincipal);
    let schedule = build(&s).unwrap();
    let first = prepay(
        &s,
        &schedule,
        0,
        d(2026, 2, 14),
        400_000,
        PrepaymentMode::ReduceInstallment,
    )
    .unwrap();
    // 7 days after the first: interest on 6000.00 for those 7 of February's 28 days is 15.00.
    let second = prepay(
        &s,
        &first.schedule,
        0,
        d(2026, 2, 21),
        100_000,
        PrepaymentMode::ReduceInstallment,
    )
    .unwrap();
    assert_eq!(second.interest_minor, 1_500);
    // What is left of February, 7 of its 28 days, on 5000.00 at 1% a month: 12.50.
    assert_eq!(second.schedule.installments[0].interest_minor, 1_250);
}

#[test]
fn a_bullet_prepaid_twice_is_charged_for_the_time_left_only() {
    let s = spec(RepaymentMethod::Bullet);
    let schedule = build(&s).unwrap();
    assert_eq!(schedule.installments[0].interest_minor, 120_000);
    // Half of 10000.00 repaid on day 181 of 365: the rest bears interest for the 184 days left.
    let once = prepay(
        &s,
        &schedule,
        0,
        d(2026, 7, 31),
        500_000,
        PrepaymentMode::ReduceInstallment,
    )
    .unwrap();
    assert_eq!(once.schedule.installments[0].interest_minor, 30_247);
    let twice = prepay(
        &s,
        &once.schedule,
        0,
        d(2026, 10, 31),
        250_000,
        PrepaymentMode::ReduceInstallment,
    )
    .unwrap();
    // 2500.00 at 12% for the last 92 days of 365: 75.62.
    assert_eq!(twice.schedule.installments[0].interest_minor, 7_562);
}

#[test]
fn reducing_the_installment_mid_period_keeps_the_installments_level() {
    let s = spec(RepaymentMethod::EqualInstallment);
    let schedule = build(&s).unwrap();
    let p = prepay(
        &s,
        &schedule,
        1,
        d(2026, 3, 15),
        500_000,
        PrepaymentMode::ReduceInstallment,
    )
    .unwrap();
    let rest = &p.schedule.installments[1..];
    assert_eq!(rest.len(), 11);
    let level = rest[0].principal_minor + rest[0].interest_minor;
    let last = rest.last().unwrap();
    assert!(
        (last.principal_minor + last.interest_minor - level).abs() <= 11,
        "{rest:?}"
    );
}

#[test]
fn prepayments_that_make_no_sense_are_refused() {
    let s = spec(RepaymentMethod::EqualInstallment);
    let schedule = build(&s).unwrap();
    let on = d(2026, 3, 5);
    assert_eq!(
        prepay(&s, &schedule, 0, on, 1000, PrepaymentMode::ReduceTerm),
        Err(ServicingError::InstallmentDue(1))
    );
    assert_eq!(
        prepay(&s, &schedule, 1, on, 0, PrepaymentMode::ReduceTerm),
        Err(ServicingError::NonPositivePrepayment)
    );
    assert_eq!(
        prepay(&s, &schedule, 1, on, 921_151, PrepaymentMode::ReduceTerm),
        Err(ServicingError::CoversBalance)
    );
    let io = spec(RepaymentMethod::InterestOnly);
    assert_eq!(
        prepay(
            &io,
            &build(&io).unwrap(),
            0,
            d(2026, 2, 1),
            1000,
            PrepaymentMode::ReduceTerm
        ),
        Err(ServicingError::ReduceTermNotAvailable(
            RepaymentMethod::InterestOnly
        ))
    );
    assert_eq!(
        payoff(&s, &schedule, 13, on),
        Err(ServicingError::PaidBeyondSchedule {
            paid: 13,
            count: 12
        })
    );
}

#[test]
fn penalty_runs_from_the_due_date_once_the_grace_days_are_over() {
    let terms = PenaltyTerms {
        grace_days: 3,
        daily_rate: Decimal::new(5, 4),
        on_interest: false,
        rounding: RoundingMode::HalfUp,
    };
    let due = d(2026, 2, 28);
    let on_time = overdue(due, due, 78_849, 10_000, &terms).unwrap();
    assert_eq!(
        (
            on_time.days_past_due,
            on_time.penalty_minor,
            on_time.delinquency
        ),
        (0, 0, Delinquency::Current)
    );
    let in_grace = overdue(due, d(2026, 3, 3), 78_849, 10_000, &terms).unwrap();
    assert!(in_grace.in_grace);
    // The day after the grace days end, the penalty counts from the due date: four days.
    let just_after = overdue(due, d(2026, 3, 4), 78_849, 10_000, &terms).unwrap();
    assert_eq!(
        (just_after.in_grace, just_after.penalty_minor),
        (false, 4 * 39)
    );
    assert_eq!(
        (in_grace.penalty_minor, in_grace.delinquency),
        (0, Delinquency::Current)
    );
    // 788.49 × 0.05% = 0.394… → 0.39 a day, for 10 days.
    let late = overdue(due, d(2026, 3, 10), 78_849, 10_000, &terms).unwrap();
    assert_eq!(
        (late.days_past_due, late.penalty_minor, late.delinquency),
        (10, 390, Delinquency::Dpd1To30)
    );
    let on_interest = PenaltyTerms {
        on_interest: true,
        ..terms
    };
    assert_eq!(
        overdue(due, d(2026, 3, 10), 78_849, 10_000, &on_interest)
            .unwrap()
            .penalty_minor,
        440
    );
    assert_eq!(Delinquency::of_days_past_due(45), Delinquency::Dpd31To60);
    assert_eq!(Delinquency::of_days_past_due(90), Delinquency::Dpd61To90);
    assert_eq!(Delinquency::of_days_past_due(91), Delinquency::Dpd90Plus);
}

fn any_monthly_method() -> impl Strategy<Value = RepaymentMethod> {
    prop_oneof![
        Just(RepaymentMethod::EqualInstallment),
        Just(RepaymentMethod::EqualPrincipal),
        Just(RepaymentMethod::InterestOnly),
    ]
}

prop_compose! {
    fn any_loan()(
        method in any_monthly_method(),
        principal_minor in 10_000i64..=1_000_000_000,
        term in 2u32..=60,
        rate_units in 0i64..=3_600,
    ) -> LoanSpec {
        LoanSpec { principal_minor, term, rate: Decimal::new(rate_units, 4), ..spec(method) }
    }
}

proptest! {
    #[test]
    fn a_payoff_today_and_the_rest_of_the_schedule_reconcile(
        loan in any_loan(), paid_fraction in 0.0f64..1.0, day_fraction in 0.0f64..1.0,
    ) {
        let schedule = build(&loan).unwrap();
        let paid = ((schedule.installments.len() as f64) * paid_fraction) as u32;
        let current = &schedule.installments[paid as usize];
        let span = (current.due_date - current.accrues_from).num_days();
        let on = current.accrues_from + chrono::Duration::days((span as f64 * day_fraction) as i64);
        let p = payoff(&loan, &schedule, paid, on).unwrap();
        let principal_left: i64 = schedule.installments[paid as usize..].iter().map(|i| i.principal_minor).sum();
        prop_assert_eq!(p.principal_minor, principal_left);
        prop_assert_eq!(p.due_installments_minor, 0);
        // Interest to date plus interest from today to the due date is the period's interest.
        let rest = accrued_interest(&schedule, on, current.due_date);
        prop_assert_eq!(p.accrued_interest_minor + rest, current.interest_minor);
        // On the due date itself, the payoff is that installment plus the principal after it.
        let at_due = payoff(&loan, &schedule, paid, current.due_date).unwrap();
        prop_assert_eq!(at_due.total_minor, current.total_minor + current.remaining_principal_minor);
    }

    #[test]
    fn after_a_partial_prepayment_the_rest_still_repays_exactly_the_new_balance(
        loan in any_loan(), paid_fraction in 0.0f64..1.0, day_fraction in 0.0f64..1.0,
        prepaid_fraction in 0.01f64..0.99, reduce_term in any::<bool>(),
    ) {
        let schedule = build(&loan).unwrap();
        let paid = ((schedule.installments.len() as f64) * paid_fraction) as u32;
        let current = &schedule.installments[paid as usize];
        let balance = current.principal_minor + current.remaining_principal_minor;
        let amount = ((balance as f64) * prepaid_fraction) as i64;
        prop_assume!(amount > 0 && amount < balance);
        let span = (current.due_date - current.accrues_from).num_days();
        let on = current.accrues_from + chrono::Duration::days(((span - 1).max(0) as f64 * day_fraction) as i64);
        let mode = if reduce_term { PrepaymentMode::ReduceTerm } else { PrepaymentMode::ReduceInstallment };
        let result = prepay(&loan, &schedule, paid, on, amount, mode);
        if loan.method == RepaymentMethod::InterestOnly && reduce_term {
            prop_assert_eq!(result, Err(ServicingError::ReduceTermNotAvailable(RepaymentMethod::InterestOnly)));
            return Ok(());
        }
        let prepaid = result.unwrap();
        let open = schedule.installments.len() - paid as usize;
        let rest = &prepaid.schedule.installments[paid as usize..];
        // Never longer; shorter when a small balance is cleared early by rounding or by design.
        prop_assert!(!rest.is_empty() && rest.len() <= open);
        prop_assert_eq!(rest.iter().map(|i| i.principal_minor).sum::<i64>(), balance - amount);
        prop_assert!(rest.iter().all(|i| i.principal_minor >= 0 && i.interest_minor >= 0));
        prop_assert_eq!(rest.last().unwrap().remaining_principal_minor, 0);
        prop_assert_eq!(&prepaid.schedule.installments[..paid as usize], &schedule.installments[..paid as usize]);
    }
}

#[test]
fn revolving_interest_follows_the_balance_day_by_day() {
    let rate = Decimal::new(4, 4); // 0.04% a day
    let balances = [
        (d(2026, 1, 1), 1_000_000),
        (d(2026, 1, 11), 600_000),
        (d(2026, 1, 21), 0),
    ];
    // Ten days at 4.00, ten at 2.40, then nothing owed.
    let total = revolving_interest(
        &balances,
        d(2026, 1, 1),
        d(2026, 1, 31),
        rate,
        RoundingMode::HalfUp,
    )
    .unwrap();
    assert_eq!(total, 4_000 + 2_400);
    // Any window of it: the 6th to the 16th is five days at 4.00 and five at 2.40.
    let window = revolving_interest(
        &balances,
        d(2026, 1, 6),
        d(2026, 1, 16),
        rate,
        RoundingMode::HalfUp,
    )
    .unwrap();
    assert_eq!(window, 2_000 + 1_200);
    assert_eq!(
        revolving_interest(
            &[],
            d(2026, 1, 1),
            d(2026, 2, 1),
            rate,
            RoundingMode::HalfUp
        )
        .unwrap(),
        0
    );
}

proptest! {
    #[test]
    fn revolving_interest_over_a_range_is_the_sum_of_its_days(
        steps in proptest::collection::vec((1i64..20, 0i64..5_000_000), 1..6),
        span in 1i64..120,
        rate_units in 0i64..=100,
    ) {
        let mut date = d(2026, 1, 1);
        let mut balances = Vec::new();
        for (gap, balance) in steps {
            balances.push((date, balance));
            date += chrono::Duration::days(gap);
        }
        let rate = Decimal::new(rate_units, 5);
        let from = d(2026, 1, 1);
        let to = from + chrono::Duration::days(span);
        let whole = revolving_interest(&balances, from, to, rate, RoundingMode::HalfUp).unwrap();
        let mut by_day = 0;
        let mut day = from;
        while day < to {
            let next = day.succ_opt().unwrap();
            by_day += revolving_interest(&balances, day, next, rate, RoundingMode::HalfUp).unwrap();
            day = next;
        }
        prop_assert_eq!(whole, by_day);
    }
}
