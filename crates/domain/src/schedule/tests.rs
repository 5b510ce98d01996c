use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::apr;

fn d(y: i32, m: u32, day: u32) -> Date {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn spec(method: RepaymentMethod, principal_minor: i64, term: u32, annual: &str) -> LoanSpec {
    LoanSpec {
        principal_minor,
        method,
        term,
        term_unit: TermUnit::Month,
        rate_basis: RateBasis::Annual,
        rate: annual.parse().unwrap(),
        start: d(2026, 1, 31),
        rounding: RoundingMode::HalfUp,
        day_count: DayCount::Actual365,
        fees: Vec::new(),
    }
}

/// (principal, interest, total, remaining) per installment, in fen.
fn rows(s: &Schedule) -> Vec<(i64, i64, i64, i64)> {
    s.installments
        .iter()
        .map(|i| {
            (
                i.principal_minor,
                i.interest_minor,
                i.total_minor,
                i.remaining_principal_minor,
            )
        })
        .collect()
}

#[test]
fn worked_example_equal_installment_10000_cny_12_months_at_12_percent() {
    let s = build(&spec(
        RepaymentMethod::EqualInstallment,
        1_000_000,
        12,
        "0.12",
    ))
    .unwrap();
    // 1% a month: 10000 × 0.01 / (1 − 1.01^−12) = 888.4878867… → 888.49.
    let expected = vec![
        (78849, 10000, 88849, 921151),
        (79637, 9212, 88849, 841514),
        (80434, 8415, 88849, 761080),
        (81238, 7611, 88849, 679842),
        (82051, 6798, 88849, 597791),
        (82871, 5978, 88849, 514920),
        (83700, 5149, 88849, 431220),
        (84537, 4312, 88849, 346683),
        (85382, 3467, 88849, 261301),
        (86236, 2613, 88849, 175065),
        (87098, 1751, 88849, 87967),
        (87967, 880, 88847, 0),
    ];
    assert_eq!(rows(&s), expected);
    assert_eq!(s.total_interest_minor, 66186);
    let dues: Vec<Date> = s.installments.iter().map(|i| i.due_date).collect();
    assert_eq!(dues[0], d(2026, 2, 28));
    assert_eq!(dues[1], d(2026, 3, 31));
    assert_eq!(dues[11], d(2027, 1, 31));
}

#[test]
fn worked_example_equal_principal_10000_cny_12_months_at_12_percent() {
    let s = build(&spec(
        RepaymentMethod::EqualPrincipal,
        1_000_000,
        12,
        "0.12",
    ))
    .unwrap();
    let r = rows(&s);
    assert_eq!(r[0], (83333, 10000, 93333, 916667));
    assert_eq!(r[1], (83333, 9167, 92500, 833334));
    assert_eq!(r[11], (83337, 833, 84170, 0));
    assert_eq!(s.total_interest_minor, 65000);
}

#[test]
fn worked_example_interest_only_and_bullet() {
    let s = build(&spec(RepaymentMethod::InterestOnly, 1_000_000, 12, "0.12")).unwrap();
    let r = rows(&s);
    assert!(
        r[..11]
            .iter()
            .all(|row| *row == (0, 10000, 10000, 1_000_000))
    );
    assert_eq!(r[11], (1_000_000, 10000, 1_010_000, 0));

    let s = build(&spec(RepaymentMethod::Bullet, 1_000_000, 12, "0.12")).unwrap();
    assert_eq!(rows(&s), vec![(1_000_000, 120_000, 1_120_000, 0)]);
    assert_eq!(s.installments[0].due_date, d(2027, 1, 31));
}

#[test]
fn revolving_interest_is_daily_interest_times_days() {
    let mut revolving = spec(RepaymentMethod::RevolvingDaily, 1_000_000, 30, "0.0004");
    revolving.rate_basis = RateBasis::Daily;
    revolving.term_unit = TermUnit::Day;
    let s = build(&revolving).unwrap();
    // 0.04% a day on 10000.00 is 4.00 a day; 30 days.
    assert_eq!(rows(&s), vec![(1_000_000, 12_000, 1_012_000, 0)]);
    assert_eq!(s.installments[0].due_date, d(2026, 3, 2));
}

#[test]
fn fees_are_deducted_up_front_or_added_to_each_installment() {
    let mut with_fees = spec(RepaymentMethod::EqualInstallment, 1_000_000, 12, "0.12");
    with_fees.fees = vec![
        Fee {
            code: "service".into(),
            timing: FeeTiming::Upfront,
            amount: FeeAmount::RateOfPrincipal(Decimal::new(1, 2)),
        },
        Fee {
            code: "account".into(),
            timing: FeeTiming::PerInstallment,
            amount: FeeAmount::FixedMinor(500),
        },
    ];
    let s = build(&with_fees).unwrap();
    assert_eq!(s.upfront_fee_minor, 10_000);
    assert_eq!(s.disbursed_minor, 990_000);
    assert!(s.installments.iter().all(|i| i.fee_minor == 500));
    assert_eq!(s.installments[0].total_minor, 88_849 + 500);
    assert_eq!(s.total_fee_minor, 10_000 + 12 * 500);
    let apr = apr::of_schedule(&s).unwrap();
    assert!(
        apr.nominal_annual > Decimal::new(12, 2) + Decimal::new(2, 2),
        "{apr:?}"
    );
}

#[test]
fn fees_that_swallow_the_principal_are_refused() {
    let mut greedy = spec(RepaymentMethod::EqualInstallment, 100_000, 12, "0.12");
    greedy.fees = vec![Fee {
        code: "service".into(),
        timing: FeeTiming::Upfront,
        amount: FeeAmount::FixedMinor(100_000),
    }];
    assert_eq!(
        build(&greedy),
        Err(ScheduleError::FeesExceedPrincipal {
            fees: 100_000,
            principal: 100_000
        })
    );
}

#[test]
fn a_revolving_line_held_for_months_discloses_the_same_apr_whatever_the_month() {
    let mut line = spec(RepaymentMethod::RevolvingDaily, 1_000_000, 1, "0.0004");
    line.rate_basis = RateBasis::Daily;
    for start in [d(2026, 1, 15), d(2026, 2, 15)] {
        line.start = start;
        let apr = apr::of_schedule(&build(&line).unwrap()).unwrap();
        assert_eq!(
            apr.nominal_annual.round_dp(6),
            Decimal::new(146, 3),
            "from {start}"
        );
    }
}

#[test]
fn bad_specs_are_refused() {
    let mut zero = spec(RepaymentMethod::EqualInstallment, 0, 12, "0.12");
    assert_eq!(build(&zero), Err(ScheduleError::NonPositiveAmount));
    zero.principal_minor = 100;
    zero.term = 0;
    assert_eq!(build(&zero), Err(ScheduleError::ZeroTerm));
    let mut days = spec(RepaymentMethod::EqualPrincipal, 100, 30, "0.12");
    days.term_unit = TermUnit::Day;
    assert_eq!(
        build(&days),
        Err(ScheduleError::TermUnitNotAllowed(
            RepaymentMethod::EqualPrincipal
        ))
    );
}

#[test]
fn accrual_spreads_each_period_over_its_days() {
    let s = build(&spec(
        RepaymentMethod::EqualInstallment,
        1_000_000,
        12,
        "0.12",
    ))
    .unwrap();
    // First period: 31 Jan → 28 Feb, 28 days, 100.00 of interest.
    assert_eq!(accrued_interest(&s, d(2026, 1, 31), d(2026, 2, 14)), 5000);
    assert_eq!(accrued_interest(&s, d(2026, 1, 31), d(2026, 2, 1)), 357);
    assert_eq!(accrued_interest(&s, d(2026, 2, 14), d(2026, 2, 28)), 5000);
    assert_eq!(accrued_interest(&s, d(2026, 2, 28), d(2026, 2, 28)), 0);
    assert_eq!(
        accrued_interest(&s, d(2020, 1, 1), d(2030, 1, 1)),
        s.total_interest_minor
    );
}

fn any_method() -> impl Strategy<Value = RepaymentMethod> {
    prop_oneof![
        Just(RepaymentMethod::EqualInstallment),
        Just(RepaymentMethod::EqualPrincipal),
        Just(RepaymentMethod::InterestOnly),
        Just(RepaymentMethod::Bullet),
    ]
}

fn any_rounding() -> impl Strategy<Value = RoundingMode> {
    prop_oneof![
        Just(RoundingMode::HalfUp),
        Just(RoundingMode::HalfEven),
        Just(RoundingMode::Down),
    ]
}

prop_compose! {
    fn any_spec()(
        method in any_method(),
        principal_minor in 1i64..=10_000_000_000,
        term in 1u32..=360,
        basis_is_daily in any::<bool>(),
        rate_units in 0i64..=10_000,
        rounding in any_rounding(),
        y in 2000i32..2090, m in 1u32..=12, day in 1u32..=31,
    ) -> LoanSpec {
        let start = (0..4).find_map(|back| NaiveDate::from_ymd_opt(y, m, day - back)).unwrap();
        let (rate_basis, rate) = if basis_is_daily {
            (RateBasis::Daily, Decimal::new(rate_units, 6)) // up to 1% a day
        } else {
            (RateBasis::Annual, Decimal::new(rate_units, 4)) // up to 100% a year
        };
        LoanSpec {
            principal_minor,
            method,
            term,
            term_unit: TermUnit::Month,
            rate_basis,
            rate,
            start,
            rounding,
            day_count: DayCount::Actual365,
            fees: Vec::new(),
        }
    }
}

proptest! {
    #[test]
    fn principals_sum_to_the_amount_and_nothing_is_negative(spec in any_spec()) {
        let s = build(&spec).unwrap();
        let principal: i64 = s.installments.iter().map(|i| i.principal_minor).sum();
        prop_assert_eq!(principal, spec.principal_minor);
        let mut previous_remaining = spec.principal_minor;
        let mut previous_due = spec.start;
        for i in &s.installments {
            prop_assert!(i.principal_minor >= 0 && i.interest_minor >= 0 && i.fee_minor >= 0);
            prop_assert_eq!(i.total_minor, i.principal_minor + i.interest_minor + i.fee_minor);
            prop_assert_eq!(i.remaining_principal_minor, previous_remaining - i.principal_minor);
            prop_assert!(i.due_date > previous_due);
            previous_remaining = i.remaining_principal_minor;
            previous_due = i.due_date;
        }
        prop_assert_eq!(previous_remaining, 0);
        let interest: i64 = s.installments.iter().map(|i| i.interest_minor).sum();
        prop_assert_eq!(interest, s.total_interest_minor);
    }

}

proptest! {
    // Walks every day of the loan, so fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn daily_accruals_sum_to_the_scheduled_interest(spec in any_spec()) {
        let s = build(&spec).unwrap();
        let last = s.installments.last().unwrap().due_date;
        let mut day = s.start;
        let mut sum = 0i64;
        while day < last {
            let next = day.succ_opt().unwrap();
            let accrued = accrued_interest(&s, day, next);
            prop_assert!(accrued >= 0);
            sum += accrued;
            day = next;
        }
        prop_assert_eq!(sum, s.total_interest_minor);
    }
}

proptest! {
    #[test]
    fn the_disclosed_apr_of_a_fee_free_schedule_is_its_nominal_rate(
        principal in 1_000_000i64..=10_000_000_000,
        term in 2u32..=120,
        rate_units in 1i64..=3_600,
        equal_principal in any::<bool>(),
    ) {
        let method = if equal_principal { RepaymentMethod::EqualPrincipal } else { RepaymentMethod::EqualInstallment };
        let loan = LoanSpec { principal_minor: principal, term, rate: Decimal::new(rate_units, 4), ..spec(method, 1, 1, "0") };
        let disclosed = apr::of_schedule(&build(&loan).unwrap()).unwrap();
        // Rounding each period to the fen moves the rate by well under a hundredth of a point.
        let gap = (disclosed.nominal_annual - loan.rate).abs();
        prop_assert!(gap < Decimal::new(1, 4), "{} vs {}", disclosed.nominal_annual, loan.rate);
    }

    #[test]
    fn the_apr_of_a_fee_free_annuity_is_its_nominal_rate(
        principal in 1_000i64..=1_000_000_000_000,
        term in 1u32..=360,
        rate_units in 1i64..=10_000,
    ) {
        // Exact cash flows: every installment the unrounded annuity payment.
        let monthly = Decimal::new(rate_units, 4) / Decimal::from(12);
        let payment = annuity_payment(Decimal::from(principal), monthly, term).unwrap();
        let payment: f64 = payment.try_into().unwrap();
        let mut flows = vec![-(principal as f64)];
        flows.extend(std::iter::repeat_n(payment, term as usize));
        let periodic = apr::irr(&flows).unwrap();
        let nominal = periodic * 12.0;
        let expected: f64 = (monthly * Decimal::from(12)).try_into().unwrap();
        prop_assert!((nominal - expected).abs() < 1e-9, "{nominal} vs {expected}");
    }
}
