//! lendcore's loan mathematics against numpy-financial, an independent implementation. The
//! cases and the script that generated them are in `reference/`.

use chrono::NaiveDate;
use lendcore_domain::apr;
use lendcore_domain::calendar::DayCount;
use lendcore_domain::product::{RateBasis, RepaymentMethod, TermUnit};
use lendcore_domain::rounding::RoundingMode;
use lendcore_domain::schedule::{self, LoanSpec, annuity_payment};
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    annuities: Vec<AnnuityCase>,
    irr: Vec<IrrCase>,
}

#[derive(Deserialize)]
struct AnnuityCase {
    principal_minor: i64,
    annual_rate: String,
    periods: u32,
    pmt: String,
    installment_minor: i64,
    #[serde(default)]
    ipmt: Vec<String>,
    #[serde(default)]
    ppmt: Vec<String>,
    rate: Option<String>,
}

#[derive(Deserialize)]
struct IrrCase {
    flows: Vec<i64>,
    irr: String,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("reference/annuity_cases.json")).unwrap()
}

fn f(s: &str) -> f64 {
    s.parse().unwrap()
}

fn spec(case: &AnnuityCase) -> LoanSpec {
    LoanSpec {
        principal_minor: case.principal_minor,
        method: RepaymentMethod::EqualInstallment,
        term: case.periods,
        term_unit: TermUnit::Month,
        rate_basis: RateBasis::Annual,
        rate: case.annual_rate.parse().unwrap(),
        start: NaiveDate::from_ymd_opt(2026, 3, 15).unwrap(),
        rounding: RoundingMode::HalfUp,
        day_count: DayCount::Actual365,
        fees: Vec::new(),
    }
}

#[test]
fn at_least_two_hundred_cases() {
    let fixture = fixture();
    assert!(fixture.annuities.len() + fixture.irr.len() >= 200);
}

#[test]
fn installments_match_numpy_pmt_to_the_fen() {
    for case in fixture().annuities {
        let spec = spec(&case);
        let exact = annuity_payment(
            Decimal::from(case.principal_minor),
            spec.monthly_rate(),
            case.periods,
        )
        .unwrap();
        let exact: f64 = exact.try_into().unwrap();
        let reference = f(&case.pmt);
        assert!(
            (exact - reference).abs() <= 1e-9 * reference.abs().max(1.0),
            "pmt {exact} vs numpy {reference} for {} at {} over {}",
            case.principal_minor,
            case.annual_rate,
            case.periods
        );
        let schedule = schedule::build(&spec).unwrap();
        let first = &schedule.installments[0];
        if case.periods > 1 {
            assert_eq!(
                first.total_minor, case.installment_minor,
                "installment for {} at {} over {}",
                case.principal_minor, case.annual_rate, case.periods
            );
        }
    }
}

#[test]
fn interest_and_principal_per_period_match_numpy_ipmt_and_ppmt() {
    for case in fixture().annuities.iter().filter(|c| !c.ipmt.is_empty()) {
        let spec = spec(case);
        let r: f64 = spec.monthly_rate().try_into().unwrap();
        let schedule = schedule::build(&spec).unwrap();
        for (k, installment) in schedule.installments.iter().enumerate() {
            // numpy keeps every fraction; we round the installment and each period's interest,
            // half a fen each, and a balance that is off grows by (1 + r) a period. So after
            // k periods the balance may be off by at most ((1 + r)^k - 1) / r fen, and a
            // period's interest by r times that plus its own rounding.
            let drift = if r == 0.0 {
                k as f64
            } else {
                ((1.0 + r).powi(k as i32) - 1.0) / r
            };
            let interest_bound = r * drift + 0.5 + 1e-6;
            let ipmt = f(&case.ipmt[k]);
            let ppmt = f(&case.ppmt[k]);
            let interest_gap = (installment.interest_minor as f64 - ipmt).abs();
            assert!(
                interest_gap <= interest_bound,
                "period {} interest {} vs numpy {ipmt}, bound {interest_bound} ({} at {} over {})",
                k + 1,
                installment.interest_minor,
                case.principal_minor,
                case.annual_rate,
                case.periods
            );
            if k + 1 < schedule.installments.len() {
                let principal_gap = (installment.principal_minor as f64 - ppmt).abs();
                assert!(
                    principal_gap <= interest_bound + 0.5,
                    "period {} principal {} vs numpy {ppmt}",
                    k + 1,
                    installment.principal_minor
                );
            }
        }
    }
}

#[test]
fn the_rate_solved_from_the_installment_matches_numpy_rate() {
    for case in fixture().annuities.iter().filter(|c| c.rate.is_some()) {
        let pmt = f(&case.pmt);
        let mut flows = vec![-(case.principal_minor as f64)];
        flows.extend(std::iter::repeat_n(pmt, case.periods as usize));
        let ours = apr::irr(&flows).unwrap();
        let reference = f(case.rate.as_deref().unwrap());
        assert!(
            (ours - reference).abs() < 1e-8,
            "rate {ours} vs numpy {reference}"
        );
    }
}

#[test]
fn irr_matches_numpy_irr_with_fees() {
    for case in fixture().irr {
        let flows: Vec<f64> = case.flows.iter().map(|&x| x as f64).collect();
        let ours = apr::irr(&flows).unwrap();
        let reference = f(&case.irr);
        assert!(
            (ours - reference).abs() < 1e-8,
            "irr {ours} vs numpy {reference} for {:?}",
            case.flows
        );
    }
}
