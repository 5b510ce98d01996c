//! The features a policy decides on, defined once: name, type, where the value comes from,
//! when it is known, and what it means. Numbers are integers in the unit their name gives
//! (minor units, days, counts, percent), so conditions compare exactly and validation can
//! prove a table has no gap.

use serde::{Deserialize, Serialize};

use super::Stage;

/// What kind of value a feature holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FeatureType {
    Number,
    Text,
    Flag,
}

/// Where a feature's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FeatureSource {
    /// The application form, the drawdown asked for, or the borrower record.
    Application,
    /// lendcore's own records of this borrower.
    Records,
    /// The credit bureau's report.
    Bureau,
}

const ALL_STAGES: &[Stage] = &[Stage::Application, Stage::Drawdown, Stage::LineReview];
const APPLICATION: &[Stage] = &[Stage::Application];
const DRAWDOWN: &[Stage] = &[Stage::Drawdown];
const REVIEW: &[Stage] = &[Stage::LineReview];
const DRAWDOWN_AND_REVIEW: &[Stage] = &[Stage::Drawdown, Stage::LineReview];

const MONEY: (i64, i64) = (0, 1_000_000_000_000);
const COUNT: (i64, i64) = (0, 100_000);
const DAYS: (i64, i64) = (0, 36_500);
const PERCENT: (i64, i64) = (0, 1_000_000);

macro_rules! features {
    ($( $variant:ident => $name:literal, $kind:ident, $source:ident, $stages:expr,
        missing: $missing:literal, range: $range:expr, $description:literal; )*) => {
        /// A feature a policy's conditions and scorecard may name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Feature {
            $( $variant, )*
        }

        impl Feature {
            pub const ALL: &'static [Feature] = &[$(Feature::$variant),*];

            pub fn definition(self) -> FeatureDefinition {
                match self {
                    $( Feature::$variant => FeatureDefinition {
                        name: $name,
                        kind: FeatureType::$kind,
                        source: FeatureSource::$source,
                        stages: $stages,
                        may_be_missing: $missing,
                        range: $range,
                        description: $description,
                    }, )*
                }
            }
        }
    };
}

/// Everything the catalogue says about one feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureDefinition {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: FeatureType,
    pub source: FeatureSource,
    /// The decisions it is known at.
    pub stages: &'static [Stage],
    /// Whether it can be absent (no history yet, a bureau that did not answer); conditions
    /// then match it only with `missing`, and a scorecard needs a bin for it.
    pub may_be_missing: bool,
    /// The values a number can take, both ends included; `None` for text and flags.
    pub range: Option<(i64, i64)>,
    pub description: &'static str,
}

features! {
    AgeYears => "age_years", Number, Application, ALL_STAGES, missing: true, range: Some((0, 150)),
        "Age in whole years on the decision date, from the resident identity number; missing for a company.";
    Region => "region", Text, Application, ALL_STAGES, missing: true, range: None,
        "Province of the resident identity number: its first two digits, e.g. \"11\" for Beijing.";
    MonthlyIncomeMinor => "monthly_income_minor", Number, Application, APPLICATION, missing: false, range: Some(MONEY),
        "Monthly income the applicant declared, in minor units.";
    RequestedLimitMinor => "requested_limit_minor", Number, Application, APPLICATION, missing: false, range: Some(MONEY),
        "The credit limit the applicant asked for, in minor units.";
    AmountMinor => "amount_minor", Number, Application, DRAWDOWN, missing: false, range: Some(MONEY),
        "The amount of this drawdown, in minor units.";
    TermMonths => "term_months", Number, Application, DRAWDOWN, missing: false, range: Some((0, 600)),
        "Installments of this drawdown (one a month).";
    Product => "product", Text, Application, DRAWDOWN, missing: false, range: None,
        "Code of the product this drawdown is priced under.";
    ApplicationsLast7Days => "applications_7d", Number, Records, APPLICATION, missing: false, range: Some(COUNT),
        "Applications this applicant started in the last 7 days, this one included.";
    ApplicationsLast30Days => "applications_30d", Number, Records, APPLICATION, missing: false, range: Some(COUNT),
        "Applications this applicant started in the last 30 days, this one included.";
    DrawdownsLast24Hours => "drawdowns_24h", Number, Records, DRAWDOWN_AND_REVIEW, missing: false, range: Some(COUNT),
        "Drawdowns made in the last 24 hours before this one, counting those confirmed and paying out or paid (not quotes, nor ones refused or left unconfirmed).";
    DrawdownsLast7Days => "drawdowns_7d", Number, Records, DRAWDOWN_AND_REVIEW, missing: false, range: Some(COUNT),
        "Drawdowns made in the last 7 days before this one, counted as drawdowns_24h is.";
    DaysOverdueNow => "days_overdue_now", Number, Records, ALL_STAGES, missing: false, range: Some(DAYS),
        "Days the oldest unpaid installment is past its due date; 0 when nothing is overdue.";
    WorstDaysOverdue12Months => "worst_days_overdue_12m", Number, Records, ALL_STAGES, missing: false, range: Some(DAYS),
        "The most days any installment was overdue in the last 12 months.";
    OverdueMinor => "overdue_minor", Number, Records, ALL_STAGES, missing: false, range: Some(MONEY),
        "What is overdue now, in minor units.";
    UtilisationPercent => "utilisation_pct", Number, Records, DRAWDOWN_AND_REVIEW, missing: true, range: Some(PERCENT),
        "Drawn and held as a percentage of the limits of open lines, before this drawdown, rounded down; missing without an open line.";
    OpenLines => "open_lines", Number, Records, ALL_STAGES, missing: false, range: Some(COUNT),
        "Credit lines active or frozen.";
    DrawnMinor => "drawn_minor", Number, Records, ALL_STAGES, missing: false, range: Some(MONEY),
        "Drawn and held on this lender's lines, in minor units.";
    MobileChanges90Days => "mobile_changes_90d", Number, Records, ALL_STAGES, missing: false, range: Some(COUNT),
        "Changes of mobile number in the last 90 days.";
    BankAccountChanges90Days => "bank_account_changes_90d", Number, Records, ALL_STAGES, missing: false, range: Some(COUNT),
        "Changes of bank account in the last 90 days.";
    AddressChanges90Days => "address_changes_90d", Number, Records, ALL_STAGES, missing: false, range: Some(COUNT),
        "Changes of address in the last 90 days.";
    DaysSinceMobileChange => "days_since_mobile_change", Number, Records, DRAWDOWN_AND_REVIEW, missing: true, range: Some(DAYS),
        "Days since the mobile number last changed; missing if it never did.";
    DaysSinceBankAccountChange => "days_since_bank_account_change", Number, Records, DRAWDOWN_AND_REVIEW, missing: true, range: Some(DAYS),
        "Days since the bank account last changed; missing if it never did.";
    DaysSinceRegistration => "days_since_registration", Number, Records, ALL_STAGES, missing: false, range: Some(DAYS),
        "Days since the borrower was registered.";
    AmountVersusUsualPercent => "amount_vs_usual_pct", Number, Records, DRAWDOWN, missing: true, range: Some(PERCENT),
        "This drawdown as a percentage of the largest one in the last 12 months; missing without one.";
    DaysToNextDue => "days_to_next_due", Number, Records, REVIEW, missing: true, range: Some(DAYS),
        "Days until the next unpaid installment falls due; missing when none is due.";
    DaysToLineExpiry => "days_to_line_expiry", Number, Records, REVIEW, missing: true, range: Some(DAYS),
        "Days until the line under review expires.";
    DaysSinceLimitChange => "days_since_limit_change", Number, Records, REVIEW, missing: false, range: Some(DAYS),
        "Days since the line's limit last changed, or since it was granted: lets a review change a limit once, not every day.";
    LineFrozen => "line_frozen", Flag, Records, REVIEW, missing: false, range: None,
        "Whether the line under review is frozen.";
    BureauLendersOpen => "bureau_lenders_open", Number, Bureau, ALL_STAGES, missing: true, range: Some(COUNT),
        "Lenders with credit open to this borrower, per the bureau (at a drawdown or a review: its last report).";
    BureauExposureMinor => "bureau_exposure_minor", Number, Bureau, ALL_STAGES, missing: true, range: Some(MONEY),
        "What this borrower owes all lenders, per the bureau, in minor units.";
    BureauInquiries3Months => "bureau_inquiries_3m", Number, Bureau, ALL_STAGES, missing: true, range: Some(COUNT),
        "Credit inquiries in the last 3 months, per the bureau.";
    BureauWorstDelinquencyDays => "bureau_worst_delinquency_days", Number, Bureau, ALL_STAGES, missing: true, range: Some(DAYS),
        "The worst delinquency the bureau knows of, in days past due.";
    DebtToIncomePercent => "debt_to_income_pct", Number, Bureau, APPLICATION, missing: true, range: Some(PERCENT),
        "What the bureau reports owed, as a percentage of a year's declared income, rounded down; missing without either.";
    BureauReportAgeDays => "bureau_report_age_days", Number, Bureau, DRAWDOWN_AND_REVIEW, missing: true, range: Some(DAYS),
        "Days since the bureau report the drawdown check or review reads was made (at the borrower's last application decision); missing without one.";
    TotalExposureMinor => "total_exposure_minor", Number, Records, DRAWDOWN, missing: false, range: Some(MONEY),
        "Drawn and held on this lender's lines, plus this drawdown, plus what the last bureau report said was owed to all lenders (an upper bound: that figure may include this lender's own), in minor units.";
}

impl Feature {
    pub fn name(self) -> &'static str {
        self.definition().name
    }

    pub fn parse(name: &str) -> Option<Feature> {
        Feature::ALL.iter().copied().find(|f| f.name() == name)
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn is_known_at(self, stage: Stage) -> bool {
        self.definition().stages.contains(&stage)
    }
}

/// One feature's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Number(i64),
    Flag(bool),
    Text(String),
}

impl Value {
    fn kind(&self) -> FeatureType {
        match self {
            Value::Number(_) => FeatureType::Number,
            Value::Flag(_) => FeatureType::Flag,
            Value::Text(_) => FeatureType::Text,
        }
    }
}

/// The values a decision is made on; a feature not set is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    values: Vec<Option<Value>>,
}

impl Default for Features {
    fn default() -> Self {
        Self {
            values: vec![None; Feature::ALL.len()],
        }
    }
}

/// A value given to a feature of another type, or out of its range: a bug in whoever loads
/// features, refused so a policy never decides on nonsense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("feature {feature}: {problem}")]
pub struct FeatureError {
    pub feature: String,
    pub problem: String,
}

impl Features {
    pub fn get(&self, feature: Feature) -> Option<&Value> {
        self.values[feature.index()].as_ref()
    }

    /// Sets a value, checked against the feature's type and range.
    pub fn set(&mut self, feature: Feature, value: Value) -> Result<(), FeatureError> {
        let definition = feature.definition();
        let problem = if value.kind() != definition.kind {
            Some(format!("expects a {:?} value", definition.kind).to_lowercase())
        } else {
            match (&value, definition.range) {
                (Value::Number(n), Some((lo, hi))) if !(lo..=hi).contains(n) => {
                    Some(format!("{n} is outside {lo}..={hi}"))
                }
                _ => None,
            }
        };
        if let Some(problem) = problem {
            return Err(FeatureError {
                feature: definition.name.to_owned(),
                problem,
            });
        }
        self.values[feature.index()] = Some(value);
        Ok(())
    }

    /// Sets a number, clamped into the feature's range: counts and amounts from records are
    /// never negative, but a sum may exceed what a policy can name.
    pub fn set_number(&mut self, feature: Feature, n: i64) {
        let (lo, hi) = feature.definition().range.unwrap_or((i64::MIN, i64::MAX));
        self.values[feature.index()] = Some(Value::Number(n.clamp(lo, hi)));
    }

    pub fn clear(&mut self, feature: Feature) {
        self.values[feature.index()] = None;
    }

    /// The features in `read` by name, `null` where missing: the snapshot a decision record
    /// keeps of what its policy read (what it did not read cannot have decided).
    pub fn snapshot(
        &self,
        read: &std::collections::BTreeSet<Feature>,
    ) -> std::collections::BTreeMap<String, Option<Value>> {
        read.iter()
            .map(|f| (f.name().to_owned(), self.get(*f).cloned()))
            .collect()
    }

    /// Features back from a snapshot; names this build does not know are refused, so a
    /// replay never decides on less than was recorded.
    pub fn from_snapshot(
        snapshot: &std::collections::BTreeMap<String, Option<Value>>,
    ) -> Result<Features, FeatureError> {
        let mut features = Features::default();
        for (name, value) in snapshot {
            let Some(feature) = Feature::parse(name) else {
                return Err(FeatureError {
                    feature: name.clone(),
                    problem: "not a feature this build knows".to_owned(),
                });
            };
            if let Some(value) = value {
                features.set(feature, value.clone())?;
            }
        }
        Ok(features)
    }
}
