//! Quotes: what a drawdown of a given amount and term under a product version costs — the
//! schedule, the fees, the APR and how it stands against the legal caps. Also the check a
//! product's terms must pass: no amount and term it offers may exceed a binding cap.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::apr::{self, Apr, AprCap, CapCheck};
use crate::calendar::Date;
use crate::money::Currency;
use crate::product::{
    InterestRate, ProductCode, ProductKind, ProductTerms, RateBasis, RepaymentMethod, TermUnit,
};
use crate::schedule::{self, LoanSpec, Schedule, ScheduleError};
use crate::validation::Violations;

/// What the borrower asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteInput {
    pub amount_minor: i64,
    pub term: u32,
    pub start: Date,
    /// Revolving products only: split the drawdown into equal installments or equal principal
    /// instead of repaying it at will with daily interest.
    pub split: Option<RepaymentMethod>,
    /// The price tier of the credit line drawn on, if it has one.
    pub rate_tier: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quote {
    pub product_code: ProductCode,
    pub version: u32,
    pub currency: Currency,
    pub amount_minor: i64,
    pub term: u32,
    pub term_unit: TermUnit,
    pub repayment_method: RepaymentMethod,
    pub rate_basis: RateBasis,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub rate: Decimal,
    /// The price tier whose rate this is; absent when the product's standard rate applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_tier: Option<String>,
    pub schedule: Schedule,
    pub apr: Apr,
    /// Every configured cap and whether this quote is within it.
    pub cap_checks: Vec<CapCheck>,
}

/// Prices a drawdown under `terms`. Refused when the amount or term is not offered, or when the
/// APR exceeds a binding cap.
#[allow(clippy::too_many_arguments)]
pub fn quote(
    code: &ProductCode,
    version: u32,
    kind: ProductKind,
    currency: Currency,
    terms: &ProductTerms,
    input: &QuoteInput,
    caps: &[AprCap],
) -> Result<Quote, Violations> {
    if !terms.amount().contains(input.amount_minor) {
        return Err(Violations::single(
            "amount_minor",
            "validation.amount_out_of_range",
            format!(
                "amount must be between {} and {} minor units for this product",
                terms.amount().min_minor(),
                terms.amount().max_minor()
            ),
        ));
    }
    if !terms.terms().options().contains(&input.term) {
        return Err(Violations::single(
            "term",
            "validation.term_not_offered",
            format!("term must be one of {:?}", terms.terms().options()),
        ));
    }
    let method = repayment_method(kind, terms, input.split)?;
    let (rate, rate_tier) = terms.rate_for(input.rate_tier.as_deref());
    let spec = loan_spec(
        terms,
        rate,
        method,
        input.amount_minor,
        input.term,
        input.start,
    );
    let schedule = schedule::build(&spec).map_err(schedule_violation)?;
    let apr = apr::of_schedule(&schedule).map_err(|e| {
        Violations::single(
            "",
            "validation.apr_undefined",
            format!("no APR for this quote: {e}"),
        )
    })?;
    let cap_checks: Vec<CapCheck> = caps.iter().map(|cap| cap.check(&apr)).collect();
    if let Some(broken) = cap_checks.iter().find(|c| c.cap.binding && !c.within) {
        return Err(above_cap("", &apr, &broken.cap));
    }
    Ok(Quote {
        product_code: code.clone(),
        version,
        currency,
        amount_minor: input.amount_minor,
        term: input.term,
        term_unit: terms.terms().unit(),
        repayment_method: method,
        rate_basis: rate.basis(),
        rate: rate.value(),
        rate_tier: rate_tier.map(str::to_owned),
        schedule,
        apr,
        cap_checks,
    })
}

/// Every amount at the edges of the range, with every term offered, at every rate (the standard
/// one and each tier's), must stay within every binding cap: fixed fees weigh most on the
/// smallest amount, upfront fees on the shortest term.
pub fn check_within_caps(
    kind: ProductKind,
    terms: &ProductTerms,
    caps: &[AprCap],
    reference_start: Date,
) -> Result<(), Violations> {
    let mut methods = vec![repayment_method(kind, terms, None)?];
    if kind == ProductKind::Revolving && terms.terms().unit() == TermUnit::Month {
        // A revolving drawdown may be split; per-installment fees weigh more on a split.
        methods.extend([
            RepaymentMethod::EqualInstallment,
            RepaymentMethod::EqualPrincipal,
        ]);
    }
    let range = terms.amount();
    let cases = terms.every_rate().flat_map(|rate| {
        methods
            .iter()
            .flat_map(move |&m| [(rate, m, range.min_minor()), (rate, m, range.max_minor())])
    });
    for (rate, method, amount) in cases {
        for &term in terms.terms().options() {
            let spec = loan_spec(terms, rate, method, amount, term, reference_start);
            let schedule =
                schedule::build(&spec).map_err(|e| schedule_violation(e).within("terms"))?;
            let apr = apr::of_schedule(&schedule).map_err(|e| {
                Violations::single(
                    "terms",
                    "validation.apr_undefined",
                    format!("a loan of {amount} minor units over {term} has no stateable APR: {e}"),
                )
            })?;
            if let Some(cap) = caps
                .iter()
                .find(|cap| cap.binding && !cap.check(&apr).within)
            {
                return Err(above_cap("terms", &apr, cap));
            }
        }
    }
    Ok(())
}

fn repayment_method(
    kind: ProductKind,
    terms: &ProductTerms,
    split: Option<RepaymentMethod>,
) -> Result<RepaymentMethod, Violations> {
    match (kind, split) {
        (_, None) => Ok(terms.repayment_method()),
        (
            ProductKind::Revolving,
            Some(method @ (RepaymentMethod::EqualInstallment | RepaymentMethod::EqualPrincipal)),
        ) if terms.terms().unit() == TermUnit::Month => Ok(method),
        (ProductKind::Revolving | ProductKind::Installment, Some(method)) => {
            Err(Violations::single(
                "split",
                "validation.split_not_allowed",
                format!(
                    "{} cannot be chosen here: only revolving products with terms in months can be split, into equal_installment or equal_principal",
                    method.as_str()
                ),
            ))
        }
    }
}

fn loan_spec(
    terms: &ProductTerms,
    rate: InterestRate,
    method: RepaymentMethod,
    amount_minor: i64,
    term: u32,
    start: Date,
) -> LoanSpec {
    LoanSpec {
        principal_minor: amount_minor,
        method,
        term,
        term_unit: terms.terms().unit(),
        rate_basis: rate.basis(),
        rate: rate.value(),
        start,
        rounding: terms.rounding(),
        day_count: terms.day_count(),
        fees: terms.fees().to_vec(),
    }
}

fn schedule_violation(err: ScheduleError) -> Violations {
    Violations::single("", "validation.schedule_impossible", err.to_string())
}

fn above_cap(field: &str, apr: &Apr, cap: &AprCap) -> Violations {
    Violations::single(
        field,
        "validation.apr_above_cap",
        format!(
            "the APR ({} nominal, {} effective) exceeds the {} cap of {}",
            apr.nominal_annual.round_dp(4),
            apr.effective_annual.round_dp(4),
            cap.name,
            cap.limit
        ),
    )
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::product::ProductTermsInput;

    fn terms(json: serde_json::Value) -> ProductTerms {
        let input: ProductTermsInput = serde_json::from_value(json).unwrap();
        ProductTerms::parse(input).unwrap()
    }

    fn cash(rate: &str, upfront_fee_rate: &str) -> ProductTerms {
        terms(serde_json::json!({
            "amount": {"min_minor": 100000, "max_minor": 5000000},
            "terms": {"unit": "month", "options": [3, 6, 12]},
            "rate": {"basis": "annual", "value": rate},
            "repayment_method": "equal_installment",
            "fees": [{"code": "service", "timing": "upfront", "rate": upfront_fee_rate}],
            "penalty_daily_rate": "0.0005",
            "grace_days": 3
        }))
    }

    fn input(amount_minor: i64, term: u32) -> QuoteInput {
        QuoteInput {
            amount_minor,
            term,
            start: NaiveDate::from_ymd_opt(2026, 1, 15).unwrap(),
            split: None,
            rate_tier: None,
        }
    }

    fn code() -> ProductCode {
        ProductCode::parse("cash").unwrap()
    }

    fn price(
        terms: &ProductTerms,
        kind: ProductKind,
        input: &QuoteInput,
    ) -> Result<Quote, Violations> {
        quote(
            &code(),
            1,
            kind,
            Currency::Cny,
            terms,
            input,
            &apr::default_caps(),
        )
    }

    #[test]
    fn a_quote_carries_schedule_apr_and_every_cap() {
        let q = price(
            &cash("0.18", "0.01"),
            ProductKind::Installment,
            &input(1_000_000, 12),
        )
        .unwrap();
        assert_eq!(q.schedule.installments.len(), 12);
        assert_eq!(q.schedule.disbursed_minor, 990_000);
        assert!(q.apr.nominal_annual > Decimal::new(18, 2));
        assert_eq!(q.cap_checks.len(), 2);
        assert!(q.cap_checks.iter().all(|c| c.within));
    }

    #[test]
    fn amounts_and_terms_must_be_offered() {
        let t = cash("0.18", "0");
        let err = price(&t, ProductKind::Installment, &input(99_999, 12)).unwrap_err();
        assert_eq!(err.first().code, "validation.amount_out_of_range");
        let err = price(&t, ProductKind::Installment, &input(100_000, 7)).unwrap_err();
        assert_eq!(err.first().code, "validation.term_not_offered");
        let mut split = input(100_000, 12);
        split.split = Some(RepaymentMethod::EqualPrincipal);
        let err = price(&t, ProductKind::Installment, &split).unwrap_err();
        assert_eq!(err.first().code, "validation.split_not_allowed");
    }

    #[test]
    fn a_revolving_drawdown_can_be_split_into_installments() {
        let t = terms(serde_json::json!({
            "amount": {"min_minor": 10000, "max_minor": 20000000},
            "terms": {"unit": "month", "options": [1, 3, 6, 12]},
            "rate": {"basis": "daily", "value": "0.0004"},
            "repayment_method": "revolving_daily",
            "penalty_daily_rate": "0.0006",
            "grace_days": 3
        }));
        let at_will = price(&t, ProductKind::Revolving, &input(1_000_000, 3)).unwrap();
        assert_eq!(at_will.schedule.installments.len(), 1);
        assert_eq!(at_will.repayment_method, RepaymentMethod::RevolvingDaily);
        let mut split = input(1_000_000, 3);
        split.split = Some(RepaymentMethod::EqualInstallment);
        let q = price(&t, ProductKind::Revolving, &split).unwrap();
        assert_eq!(q.schedule.installments.len(), 3);
        assert_eq!(q.repayment_method, RepaymentMethod::EqualInstallment);
    }

    #[test]
    fn quotes_and_products_above_a_binding_cap_are_refused() {
        // 30% a year plus 5% taken up front on a 3-month loan: about 70% a year.
        let t = cash("0.30", "0.05");
        let err = price(&t, ProductKind::Installment, &input(1_000_000, 3)).unwrap_err();
        assert_eq!(err.first().code, "validation.apr_above_cap");
        let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let err = check_within_caps(ProductKind::Installment, &t, &apr::default_caps(), start)
            .unwrap_err();
        assert_eq!(err.first().code, "validation.apr_above_cap");
        assert!(
            check_within_caps(
                ProductKind::Installment,
                &cash("0.18", "0.01"),
                &apr::default_caps(),
                start
            )
            .is_ok()
        );
        // The 24% cap is reported, not binding: a 12-month loan at 30% is quoted, marked.
        let q = price(
            &cash("0.30", "0"),
            ProductKind::Installment,
            &input(1_000_000, 12),
        )
        .unwrap();
        let protected = q
            .cap_checks
            .iter()
            .find(|c| c.cap.name == "protected")
            .unwrap();
        assert!(!protected.within);
    }

    #[test]
    fn a_tier_prices_at_its_rate_and_every_tier_is_held_to_the_caps() {
        let mut json = serde_json::to_value(ProductTermsInput::from(cash("0.18", "0.01"))).unwrap();
        json["rate_tiers"] = serde_json::json!({"preferred": "0.12"});
        let t = terms(json.clone());
        let mut preferred = input(1_000_000, 12);
        preferred.rate_tier = Some("preferred".into());
        let q = price(&t, ProductKind::Installment, &preferred).unwrap();
        assert_eq!(
            (q.rate, q.rate_tier.as_deref()),
            (Decimal::new(12, 2), Some("preferred"))
        );
        let standard = price(&t, ProductKind::Installment, &input(1_000_000, 12)).unwrap();
        assert!(q.schedule.total_interest_minor < standard.schedule.total_interest_minor);
        preferred.rate_tier = Some("gold".into());
        let unpriced = price(&t, ProductKind::Installment, &preferred).unwrap();
        assert_eq!(
            (unpriced.rate, unpriced.rate_tier),
            (Decimal::new(18, 2), None)
        );

        json["rate_tiers"]["subprime"] = serde_json::json!("0.40");
        let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let err = check_within_caps(
            ProductKind::Installment,
            &terms(json),
            &apr::default_caps(),
            start,
        )
        .unwrap_err();
        assert_eq!(err.first().code, "validation.apr_above_cap");
    }
}
