//! The pure core's speed: schedules and APR solves per second. Run with
//! `cargo bench -p lendcore-domain`; results go in docs/PERFORMANCE.md.

use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};
use lendcore_domain::apr;
use lendcore_domain::calendar::DayCount;
use lendcore_domain::product::{Fee, FeeAmount, FeeTiming, RateBasis, RepaymentMethod, TermUnit};
use lendcore_domain::rounding::RoundingMode;
use lendcore_domain::schedule::{self, LoanSpec};
use rust_decimal::Decimal;

fn annuity(term: u32) -> LoanSpec {
    LoanSpec {
        principal_minor: 1_000_000,
        method: RepaymentMethod::EqualInstallment,
        term,
        term_unit: TermUnit::Month,
        rate_basis: RateBasis::Annual,
        rate: Decimal::new(18, 2),
        start: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
        rounding: RoundingMode::HalfUp,
        day_count: DayCount::Actual365,
        fees: vec![Fee {
            code: "service".into(),
            timing: FeeTiming::Upfront,
            amount: FeeAmount::RateOfPrincipal(Decimal::new(1, 2)),
        }],
    }
}

fn benches(c: &mut Criterion) {
    let twelve = annuity(12);
    let thirty_years = annuity(360);
    c.bench_function("schedule/annuity_12", |b| {
        b.iter(|| schedule::build(black_box(&twelve)).unwrap())
    });
    c.bench_function("schedule/annuity_360", |b| {
        b.iter(|| schedule::build(black_box(&thirty_years)).unwrap())
    });
    let built = schedule::build(&twelve).unwrap();
    c.bench_function("apr/annuity_12_with_fee", |b| {
        b.iter(|| apr::of_schedule(black_box(&built)).unwrap())
    });
}

criterion_group! {
    name = loan_math;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(5));
    targets = benches
}
criterion_main!(loan_math);
