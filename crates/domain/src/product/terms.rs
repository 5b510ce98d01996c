//! The economic terms of one product version, parsed from their wire form.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use crate::allocation::AllocationOrder;
pub use crate::calendar::DayCount;
pub use crate::rounding::RoundingMode;
use crate::validation::{Collector, Violations};

/// Largest amount any product may lend or charge: 100 billion in major units.
pub const MAX_AMOUNT_MINOR: i64 = 10_000_000_000_000;
const MAX_ANNUAL_RATE: Decimal = Decimal::ONE;
const MAX_DAILY_RATE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
const MAX_FEE_RATE: Decimal = Decimal::from_parts(5, 0, 0, false, 1);
const MAX_RATE_SCALE: u32 = 10;
const MAX_TERM_MONTHS: u32 = 360;
const MAX_TERM_DAYS: u32 = 1825;
const MAX_TERM_OPTIONS: usize = 24;
const MAX_FEES: usize = 10;
const MAX_GRACE_DAYS: u32 = 90;
const MAX_RATE_TIERS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RepaymentMethod {
    /// 等额本息: equal installments of principal + interest.
    EqualInstallment,
    /// 等额本金: equal principal each period, interest on the remaining balance.
    EqualPrincipal,
    /// 先息后本: interest each period, all principal at maturity.
    InterestOnly,
    /// Principal and interest in one payment at maturity.
    Bullet,
    /// 借呗-style: daily interest on the drawn balance, repay any amount any day.
    RevolvingDaily,
}

impl RepaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            RepaymentMethod::EqualInstallment => "equal_installment",
            RepaymentMethod::EqualPrincipal => "equal_principal",
            RepaymentMethod::InterestOnly => "interest_only",
            RepaymentMethod::Bullet => "bullet",
            RepaymentMethod::RevolvingDaily => "revolving_daily",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TermUnit {
    Month,
    Day,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RateBasis {
    /// Nominal rate per year, e.g. `0.18` for 18%.
    Annual,
    /// Rate per day, e.g. `0.00045` for 0.045% per day.
    Daily,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FeeTiming {
    /// Deducted from the amount paid out, once.
    Upfront,
    /// Charged with every installment.
    PerInstallment,
    /// Charged when principal is repaid early; a rate applies to the principal prepaid.
    OnPrepayment,
}

/// Amounts a drawdown may have, in minor units of the product's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AmountRangeInput {
    pub min_minor: i64,
    pub max_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TermOptionsInput {
    pub unit: TermUnit,
    /// Allowed terms, in `unit`s.
    pub options: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RateInput {
    pub basis: RateBasis,
    /// Decimal string, e.g. `"0.18"`; numbers are refused so no float ever touches a rate.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0.18"))]
    pub value: Decimal,
}

/// A rate as a decimal string; numbers are refused so no float ever touches a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RateValue(#[serde(with = "rust_decimal::serde::str")] pub Decimal);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FeeInput {
    pub code: String,
    pub timing: FeeTiming,
    /// A fixed amount in minor units; exactly one of `fixed_minor` and `rate` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_minor: Option<i64>,
    /// A share of the principal as a decimal string, e.g. `"0.01"`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "0.01"))]
    pub rate: Option<Decimal>,
}

/// The wire form of a product version's terms: what clients send and what the API returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProductTermsInput {
    pub amount: AmountRangeInput,
    pub terms: TermOptionsInput,
    pub rate: RateInput,
    /// Prices by tier: a credit line granted in a tier (the one a credit policy's band gave)
    /// draws at that tier's rate, in the basis of `rate`; a line in no tier, or in one this
    /// product does not name, draws at `rate`. Decimal strings, e.g. `{"preferred": "0.12"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub rate_tiers: BTreeMap<String, RateValue>,
    pub repayment_method: RepaymentMethod,
    #[serde(default)]
    pub fees: Vec<FeeInput>,
    /// Penalty interest per day on overdue principal, decimal string.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0.0005"))]
    pub penalty_daily_rate: Decimal,
    /// Days after a due date before an installment counts as overdue.
    pub grace_days: u32,
    #[serde(default)]
    pub rounding: RoundingMode,
    /// How days are counted when a rate is turned into interest for part of a period.
    #[serde(default)]
    pub day_count: DayCount,
    /// Whether penalty interest also runs on overdue interest, not only on overdue principal.
    #[serde(default)]
    pub penalty_on_interest: bool,
    /// The order a repayment settles what is owed.
    #[serde(default)]
    pub allocation: AllocationOrder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountRange {
    min_minor: i64,
    max_minor: i64,
}

impl AmountRange {
    pub fn min_minor(&self) -> i64 {
        self.min_minor
    }
    pub fn max_minor(&self) -> i64 {
        self.max_minor
    }
    pub fn contains(&self, minor: i64) -> bool {
        (self.min_minor..=self.max_minor).contains(&minor)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermOptions {
    unit: TermUnit,
    options: Vec<u32>,
}

impl TermOptions {
    pub fn unit(&self) -> TermUnit {
        self.unit
    }
    /// Ascending, without duplicates.
    pub fn options(&self) -> &[u32] {
        &self.options
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterestRate {
    basis: RateBasis,
    value: Decimal,
}

impl InterestRate {
    pub fn basis(&self) -> RateBasis {
        self.basis
    }
    pub fn value(&self) -> Decimal {
        self.value
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeAmount {
    FixedMinor(i64),
    RateOfPrincipal(Decimal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fee {
    pub code: String,
    pub timing: FeeTiming,
    pub amount: FeeAmount,
}

/// Terms that passed every check. Requests reach them only through [`ProductTerms::parse`];
/// deserializing is for reading back what this system stored, and does not re-check, so a
/// limit tightened later never turns terms that took effect under the old one into errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredTerms", into = "ProductTermsInput")]
pub struct ProductTerms {
    amount: AmountRange,
    terms: TermOptions,
    rate: InterestRate,
    rate_tiers: BTreeMap<String, Decimal>,
    repayment_method: RepaymentMethod,
    fees: Vec<Fee>,
    penalty_daily_rate: Decimal,
    grace_days: u32,
    rounding: RoundingMode,
    day_count: DayCount,
    penalty_on_interest: bool,
    allocation: AllocationOrder,
}

impl ProductTerms {
    pub fn amount(&self) -> AmountRange {
        self.amount
    }
    pub fn terms(&self) -> &TermOptions {
        &self.terms
    }
    /// The standard rate: what a line in no tier pays.
    pub fn rate(&self) -> InterestRate {
        self.rate
    }
    /// The rate a line in `tier` pays, and the tier when this product prices it; the standard
    /// rate and `None` otherwise.
    pub fn rate_for<'t>(&'t self, tier: Option<&str>) -> (InterestRate, Option<&'t str>) {
        match tier.and_then(|tier| self.rate_tiers.get_key_value(tier)) {
            Some((tier, &value)) => (
                InterestRate {
                    basis: self.rate.basis,
                    value,
                },
                Some(tier.as_str()),
            ),
            None => (self.rate, None),
        }
    }
    /// Every rate a drawdown under these terms may pay: the standard one and each tier's.
    pub fn every_rate(&self) -> impl Iterator<Item = InterestRate> + '_ {
        std::iter::once(self.rate).chain(self.rate_tiers.values().map(|&value| InterestRate {
            basis: self.rate.basis,
            value,
        }))
    }
    pub fn repayment_method(&self) -> RepaymentMethod {
        self.repayment_method
    }
    pub fn fees(&self) -> &[Fee] {
        &self.fees
    }
    pub fn penalty_daily_rate(&self) -> Decimal {
        self.penalty_daily_rate
    }
    pub fn grace_days(&self) -> u32 {
        self.grace_days
    }
    pub fn rounding(&self) -> RoundingMode {
        self.rounding
    }
    pub fn day_count(&self) -> DayCount {
        self.day_count
    }
    pub fn penalty_on_interest(&self) -> bool {
        self.penalty_on_interest
    }
    pub fn allocation(&self) -> &AllocationOrder {
        &self.allocation
    }

    /// Checks every field and reports every problem, with field paths relative to the terms.
    pub fn parse(input: ProductTermsInput) -> Result<Self, Violations> {
        let mut found = Collector::default();
        let amount = found.take(parse_amount_range(input.amount));
        let terms = found.take(parse_term_options(input.terms, input.repayment_method));
        let rate = found.take(parse_rate(input.rate));
        let rate_tiers = found.take(parse_rate_tiers(input.rate_tiers, input.rate.basis));
        let fees = found.take(parse_fees(input.fees));
        let penalty = found.take(parse_rate_value(
            "penalty_daily_rate",
            input.penalty_daily_rate,
            MAX_DAILY_RATE,
        ));
        if input.grace_days > MAX_GRACE_DAYS {
            found.add(
                "grace_days",
                "validation.grace_days_out_of_range",
                format!("grace_days must be between 0 and {MAX_GRACE_DAYS}"),
            );
        }
        let allocation = found.take(input.allocation.check().map_err(|v| v.within("allocation")));
        let value = match (amount, terms, rate, rate_tiers, fees, penalty, allocation) {
            (
                Some(amount),
                Some(terms),
                Some(rate),
                Some(rate_tiers),
                Some(fees),
                Some(penalty_daily_rate),
                Some(allocation),
            ) => Some(ProductTerms {
                amount,
                terms,
                rate,
                rate_tiers,
                repayment_method: input.repayment_method,
                fees,
                penalty_daily_rate,
                grace_days: input.grace_days,
                rounding: input.rounding,
                day_count: input.day_count,
                penalty_on_interest: input.penalty_on_interest,
                allocation,
            }),
            _ => None,
        };
        found.finish(value)
    }
}

/// Terms as this system stored them, already parsed once.
#[derive(Deserialize)]
#[serde(transparent)]
struct StoredTerms(ProductTermsInput);

impl From<StoredTerms> for ProductTerms {
    fn from(StoredTerms(stored): StoredTerms) -> Self {
        ProductTerms {
            amount: AmountRange {
                min_minor: stored.amount.min_minor,
                max_minor: stored.amount.max_minor,
            },
            terms: TermOptions {
                unit: stored.terms.unit,
                options: stored.terms.options,
            },
            rate: InterestRate {
                basis: stored.rate.basis,
                value: stored.rate.value,
            },
            rate_tiers: stored
                .rate_tiers
                .into_iter()
                .map(|(tier, RateValue(value))| (tier, value))
                .collect(),
            repayment_method: stored.repayment_method,
            fees: stored
                .fees
                .into_iter()
                .map(|fee| Fee {
                    amount: match (fee.fixed_minor, fee.rate) {
                        (_, Some(rate)) => FeeAmount::RateOfPrincipal(rate),
                        (fixed, None) => FeeAmount::FixedMinor(fixed.unwrap_or(0)),
                    },
                    code: fee.code,
                    timing: fee.timing,
                })
                .collect(),
            penalty_daily_rate: stored.penalty_daily_rate,
            grace_days: stored.grace_days,
            rounding: stored.rounding,
            day_count: stored.day_count,
            penalty_on_interest: stored.penalty_on_interest,
            allocation: stored.allocation,
        }
    }
}

impl From<ProductTerms> for ProductTermsInput {
    fn from(terms: ProductTerms) -> Self {
        ProductTermsInput {
            amount: AmountRangeInput {
                min_minor: terms.amount.min_minor,
                max_minor: terms.amount.max_minor,
            },
            terms: TermOptionsInput {
                unit: terms.terms.unit,
                options: terms.terms.options,
            },
            rate: RateInput {
                basis: terms.rate.basis,
                value: terms.rate.value,
            },
            rate_tiers: terms
                .rate_tiers
                .into_iter()
                .map(|(tier, value)| (tier, RateValue(value)))
                .collect(),
            repayment_method: terms.repayment_method,
            fees: terms
                .fees
                .into_iter()
                .map(|fee| FeeInput {
                    code: fee.code,
                    timing: fee.timing,
                    fixed_minor: match fee.amount {
                        FeeAmount::FixedMinor(minor) => Some(minor),
                        FeeAmount::RateOfPrincipal(_) => None,
                    },
                    rate: match fee.amount {
                        FeeAmount::FixedMinor(_) => None,
                        FeeAmount::RateOfPrincipal(rate) => Some(rate),
                    },
                })
                .collect(),
            penalty_daily_rate: terms.penalty_daily_rate,
            grace_days: terms.grace_days,
            rounding: terms.rounding,
            day_count: terms.day_count,
            penalty_on_interest: terms.penalty_on_interest,
            allocation: terms.allocation,
        }
    }
}

fn parse_amount_range(input: AmountRangeInput) -> Result<AmountRange, Violations> {
    let mut found = Collector::default();
    for (field, value) in [
        ("amount.min_minor", input.min_minor),
        ("amount.max_minor", input.max_minor),
    ] {
        if !(1..=MAX_AMOUNT_MINOR).contains(&value) {
            found.add(
                field,
                "validation.amount_out_of_range",
                format!("{field} must be between 1 and {MAX_AMOUNT_MINOR} minor units"),
            );
        }
    }
    if found.is_clean() && input.min_minor > input.max_minor {
        found.add(
            "amount",
            "validation.amount_range_inverted",
            "amount.min_minor must not exceed amount.max_minor",
        );
    }
    found.finish(Some(AmountRange {
        min_minor: input.min_minor,
        max_minor: input.max_minor,
    }))
}

fn parse_term_options(
    input: TermOptionsInput,
    method: RepaymentMethod,
) -> Result<TermOptions, Violations> {
    let mut found = Collector::default();
    let max = match input.unit {
        TermUnit::Month => MAX_TERM_MONTHS,
        TermUnit::Day => MAX_TERM_DAYS,
    };
    let day_terms_allowed = match method {
        RepaymentMethod::Bullet | RepaymentMethod::RevolvingDaily => true,
        RepaymentMethod::EqualInstallment
        | RepaymentMethod::EqualPrincipal
        | RepaymentMethod::InterestOnly => false,
    };
    if input.unit == TermUnit::Day && !day_terms_allowed {
        found.add(
            "terms.unit",
            "validation.term_unit_not_allowed",
            "terms in days are only allowed for bullet and revolving_daily repayment; use months",
        );
    }
    if input.options.is_empty() {
        found.add(
            "terms.options",
            "validation.term_options_empty",
            "at least one term option is required",
        );
    }
    if input.options.len() > MAX_TERM_OPTIONS {
        found.add(
            "terms.options",
            "validation.too_many_term_options",
            format!("at most {MAX_TERM_OPTIONS} term options are allowed"),
        );
    }
    if let Some(bad) = input.options.iter().find(|t| !(1..=max).contains(*t)) {
        found.add(
            "terms.options",
            "validation.term_out_of_range",
            format!("term {bad} is outside 1..={max}"),
        );
    }
    let mut options = input.options;
    options.sort_unstable();
    let before = options.len();
    options.dedup();
    if options.len() != before {
        found.add(
            "terms.options",
            "validation.term_options_duplicate",
            "term options must not repeat",
        );
    }
    found.finish(Some(TermOptions {
        unit: input.unit,
        options,
    }))
}

fn parse_rate(input: RateInput) -> Result<InterestRate, Violations> {
    let max = match input.basis {
        RateBasis::Annual => MAX_ANNUAL_RATE,
        RateBasis::Daily => MAX_DAILY_RATE,
    };
    let value = parse_rate_value("rate.value", input.value, max)?;
    Ok(InterestRate {
        basis: input.basis,
        value,
    })
}

fn parse_rate_tiers(
    input: BTreeMap<String, RateValue>,
    basis: RateBasis,
) -> Result<BTreeMap<String, Decimal>, Violations> {
    let mut found = Collector::default();
    if input.len() > MAX_RATE_TIERS {
        found.add(
            "rate_tiers",
            "validation.too_many_rate_tiers",
            format!("at most {MAX_RATE_TIERS} rate tiers are allowed"),
        );
    }
    let max = match basis {
        RateBasis::Annual => MAX_ANNUAL_RATE,
        RateBasis::Daily => MAX_DAILY_RATE,
    };
    let mut tiers = BTreeMap::new();
    for (tier, RateValue(value)) in input {
        let at = format!("rate_tiers.{tier}");
        found.take(check_rate_tier(&at, &tier));
        if let Some(value) = found.take(parse_rate_value(&at, value, max)) {
            tiers.insert(tier, value);
        }
    }
    found.finish(Some(tiers))
}

fn parse_rate_value(field: &str, value: Decimal, max: Decimal) -> Result<Decimal, Violations> {
    if value < Decimal::ZERO || value > max {
        return Err(Violations::single(
            field,
            "validation.rate_out_of_range",
            format!("{field} must be between 0 and {max}"),
        ));
    }
    if value.normalize().scale() > MAX_RATE_SCALE {
        return Err(Violations::single(
            field,
            "validation.rate_too_precise",
            format!("{field} may have at most {MAX_RATE_SCALE} decimal places"),
        ));
    }
    Ok(value.normalize())
}

fn parse_fees(input: Vec<FeeInput>) -> Result<Vec<Fee>, Violations> {
    let mut found = Collector::default();
    if input.len() > MAX_FEES {
        found.add(
            "fees",
            "validation.too_many_fees",
            format!("at most {MAX_FEES} fees are allowed"),
        );
    }
    let mut fees = Vec::with_capacity(input.len());
    for (i, fee) in input.into_iter().enumerate() {
        let at = format!("fees[{i}]");
        if !is_code(&fee.code) {
            found.add(
                format!("{at}.code"),
                "validation.invalid_fee_code",
                "fee codes are 2-32 characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
            );
        }
        if fees.iter().any(|f: &Fee| f.code == fee.code) {
            found.add(
                format!("{at}.code"),
                "validation.fee_code_duplicate",
                format!("fee code {:?} appears more than once", fee.code),
            );
        }
        let amount = match (fee.fixed_minor, fee.rate) {
            (Some(minor), None) if (0..=MAX_AMOUNT_MINOR).contains(&minor) => {
                Some(FeeAmount::FixedMinor(minor))
            }
            (Some(_), None) => {
                found.add(
                    format!("{at}.fixed_minor"),
                    "validation.amount_out_of_range",
                    format!("fixed_minor must be between 0 and {MAX_AMOUNT_MINOR}"),
                );
                None
            }
            (None, Some(rate)) => found
                .take(parse_rate_value(&format!("{at}.rate"), rate, MAX_FEE_RATE))
                .map(FeeAmount::RateOfPrincipal),
            (Some(_), Some(_)) | (None, None) => {
                found.add(
                    at.clone(),
                    "validation.fee_amount_ambiguous",
                    "give exactly one of fixed_minor and rate",
                );
                None
            }
        };
        if let Some(amount) = amount {
            fees.push(Fee {
                code: fee.code,
                timing: fee.timing,
                amount,
            });
        }
    }
    found.finish(Some(fees))
}

/// A price tier's name, as products price it, policies give it and lines keep it.
pub fn check_rate_tier(field: &str, tier: &str) -> Result<(), Violations> {
    if is_code(tier) {
        Ok(())
    } else {
        Err(Violations::single(
            field,
            "validation.invalid_rate_tier",
            "rate tiers are 2-32 characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
        ))
    }
}

/// Codes of products and fees: short, URL-safe, lower case.
pub(crate) fn is_code(s: &str) -> bool {
    let len_ok = (2..=32).contains(&s.len());
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    len_ok && first_ok && rest_ok
}
