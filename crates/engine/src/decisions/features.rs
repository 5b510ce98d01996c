//! Loading features: from the application and the borrower record, from lendcore's own
//! records of the borrower (a few indexed reads), and from the bureau's answer.

use chrono::Datelike;
use lendcore_connectors::bureau::{BureauReport, Inquiry};
use lendcore_domain::Timestamp;
use lendcore_domain::application::Form;
use lendcore_domain::borrower::ChangedField;
use lendcore_domain::calendar::Date;
use lendcore_domain::credit_line::{CreditLine, LineStatus};
use lendcore_domain::decision::{Feature, Features, Value};
use lendcore_domain::drawdown::DrawdownStatus;
use lendcore_domain::identity::ResidentId;
use lendcore_store::{RiskRecords, UnitOfWork};
use serde::Deserialize;

use crate::EngineError;

/// The business date decisions count days by: the one schedules fall due on and close of
/// business closes (UTC), so an installment due today is never counted late before its day
/// has ended.
pub(crate) fn business_date(now: Timestamp) -> Date {
    now.date_naive()
}

fn whole_years(birth: Date, on: Date) -> i64 {
    let mut years = i64::from(on.year() - birth.year());
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years.max(0)
}

/// Age and region from a resident identity number.
pub(crate) fn set_identity(features: &mut Features, resident_id: Option<&str>, today: Date) {
    let Some(id) = resident_id.and_then(|raw| ResidentId::parse(raw, today).ok()) else {
        return;
    };
    features.set_number(Feature::AgeYears, whole_years(id.birth_date(), today));
    let _ = features.set(
        Feature::Region,
        Value::Text(id.expose().chars().take(2).collect()),
    );
}

/// Age and region from the borrower's sealed record, for a decision after the application
/// (a drawdown, a review); left missing for an enterprise or without the personal data key.
pub(crate) fn set_borrower_identity(
    features: &mut Features,
    engine: &crate::Engine,
    borrower_id: &str,
    records: &RiskRecords,
    today: Date,
) -> Result<(), EngineError> {
    let (Some(borrower), Ok(vault)) = (&records.borrower, engine.vault()) else {
        return Ok(());
    };
    let personal = vault.open(&borrower.personal, borrower_id)?;
    if let Some(id) = personal.resident_id {
        set_identity(features, Some(id.expose()), today);
    }
    Ok(())
}

/// What the application says: income and the limit asked for.
pub(crate) fn set_form(features: &mut Features, form: &Form, today: Date) {
    set_identity(features, form.resident_id.as_deref(), today);
    if let Some(income) = form.monthly_income_minor {
        features.set_number(Feature::MonthlyIncomeMinor, income);
    }
    if let Some(requested) = form.requested_limit_minor {
        features.set_number(Feature::RequestedLimitMinor, requested);
    }
}

/// What reading a borrower's records found beside the features: the largest drawdown of the
/// last year (what a drawdown is compared with).
pub(crate) struct Records {
    pub largest_drawdown_minor: Option<i64>,
}

/// Reads everything decisions count of a borrower, a year back, in one statement.
pub(crate) async fn read_records(
    uow: &mut dyn UnitOfWork,
    borrower_id: &str,
    now: Timestamp,
) -> Result<RiskRecords, EngineError> {
    let records = uow
        .risk_records(borrower_id, now - chrono::Duration::days(365))
        .await?;
    let cap = usize::try_from(lendcore_store::decisions::MAX_RISK_DRAWDOWNS).unwrap_or(usize::MAX);
    if records.drawdowns.len() >= cap {
        // Older drawdowns were left out: a late one among them would not count. Rare enough
        // (a thousand in a year) to be worth a person's look.
        tracing::warn!(
            borrower_id,
            cap,
            "a credit decision read only the borrower's newest drawdowns"
        );
        metrics::counter!("lendcore_decision_drawdowns_capped_total").increment(1);
    }
    Ok(records)
}

/// What lendcore's records say of a borrower: lines, loans, lateness, changes of details,
/// days since registration.
pub(crate) fn set_records(
    features: &mut Features,
    records: &RiskRecords,
    now: Timestamp,
) -> Records {
    let today = business_date(now);
    let lines = &records.lines;
    let open: Vec<&CreditLine> = lines
        .iter()
        .filter(|l| {
            l.valid_until > now
                && match l.status {
                    LineStatus::Active | LineStatus::Frozen { .. } => true,
                    LineStatus::Closed { .. } => false,
                }
        })
        .collect();
    let limits: i64 = open.iter().map(|l| l.limit_minor).sum();
    let drawn: i64 = lines.iter().map(|l| l.drawn_minor + l.held_minor).sum();
    features.set_number(Feature::OpenLines, open.len() as i64);
    features.set_number(Feature::DrawnMinor, drawn);
    if limits > 0 {
        features.set_number(
            Feature::UtilisationPercent,
            i64::try_from(i128::from(drawn) * 100 / i128::from(limits)).unwrap_or(i64::MAX),
        );
    }

    let year_ago = now - chrono::Duration::days(365);
    let (mut late_now, mut late_year, mut owed_late) = (0u32, 0u32, 0i64);
    let (mut last_day, mut last_week, mut largest) = (0i64, 0i64, None::<i64>);
    for loan in &records.drawdowns {
        let counts = !matches!(
            loan.status,
            DrawdownStatus::Quoted { .. }
                | DrawdownStatus::Expired { .. }
                | DrawdownStatus::Refused { .. }
        );
        if counts && loan.created_at >= now - chrono::Duration::hours(24) {
            last_day += 1;
        }
        if counts && loan.created_at >= now - chrono::Duration::days(7) {
            last_week += 1;
        }
        if counts && loan.created_at >= year_ago {
            largest = Some(largest.unwrap_or(0).max(loan.amount_minor));
        }
        if loan.status == DrawdownStatus::Active {
            let (days, owed) = loan.past_due(today);
            late_now = late_now.max(days);
            owed_late += owed;
        }
        late_year = late_year.max(loan.servicing.worst_days_past_due_in_year(today));
    }
    features.set_number(Feature::DaysOverdueNow, i64::from(late_now));
    features.set_number(
        Feature::WorstDaysOverdue12Months,
        i64::from(late_year.max(late_now)),
    );
    features.set_number(Feature::OverdueMinor, owed_late);
    features.set_number(Feature::DrawdownsLast24Hours, last_day);
    features.set_number(Feature::DrawdownsLast7Days, last_week);

    let since = now - chrono::Duration::days(90);
    let count = |field: ChangedField| {
        records
            .changes
            .iter()
            .filter(|(f, at)| *f == field && *at >= since)
            .count() as i64
    };
    features.set_number(Feature::MobileChanges90Days, count(ChangedField::Mobile));
    features.set_number(
        Feature::BankAccountChanges90Days,
        count(ChangedField::BankAccount),
    );
    features.set_number(Feature::AddressChanges90Days, count(ChangedField::Address));
    let days_since = |field: ChangedField| {
        records
            .changes
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, at)| *at)
            .max()
            .map(|at| (now - at).num_days())
    };
    if let Some(days) = days_since(ChangedField::Mobile) {
        features.set_number(Feature::DaysSinceMobileChange, days);
    }
    if let Some(days) = days_since(ChangedField::BankAccount) {
        features.set_number(Feature::DaysSinceBankAccountChange, days);
    }
    if let Some(borrower) = &records.borrower {
        features.set_number(
            Feature::DaysSinceRegistration,
            (now - borrower.registered_at).num_days(),
        );
    }
    Records {
        largest_drawdown_minor: largest.filter(|l| *l > 0),
    }
}

/// The bureau's last answer about the borrower, kept from their last application decision
/// (a drawdown check or a review does not ask again); its age too. `false` without one.
pub(crate) fn set_stored_bureau(
    features: &mut Features,
    records: &RiskRecords,
    borrower_id: &str,
    now: Timestamp,
) -> Result<bool, EngineError> {
    let Some((_, inquiry, asked_at)) = &records.bureau else {
        return Ok(false);
    };
    let inquiry = Inquiry::deserialize(inquiry)
        .map_err(|e| EngineError::Internal(format!("bureau report of {borrower_id}: {e}")))?;
    set_bureau(features, &inquiry);
    features.set_number(Feature::BureauReportAgeDays, (now - *asked_at).num_days());
    Ok(true)
}

/// Applications the applicant started in the last 7 and 30 days.
pub(crate) async fn set_applications(
    features: &mut Features,
    uow: &mut dyn UnitOfWork,
    owner: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    for (feature, days) in [
        (Feature::ApplicationsLast7Days, 7),
        (Feature::ApplicationsLast30Days, 30),
    ] {
        let n = uow
            .count_applications_since(owner, now - chrono::Duration::days(days))
            .await?;
        features.set_number(feature, i64::try_from(n).unwrap_or(i64::MAX));
    }
    Ok(())
}

/// The bureau's figures, when it answered. No file reads as nobody having lent: no lenders,
/// nothing owed, no inquiries, and no delinquency history (missing).
pub(crate) fn set_bureau(features: &mut Features, inquiry: &Inquiry) {
    let report = match inquiry {
        Inquiry::Found(report) => report.clone(),
        Inquiry::NoFile => BureauReport {
            lenders_open: 0,
            exposure_minor: 0,
            inquiries_3m: 0,
            worst_delinquency_days: None,
        },
        Inquiry::Unavailable { .. } => return,
    };
    features.set_number(Feature::BureauLendersOpen, report.lenders_open);
    features.set_number(Feature::BureauExposureMinor, report.exposure_minor);
    features.set_number(Feature::BureauInquiries3Months, report.inquiries_3m);
    if let Some(days) = report.worst_delinquency_days {
        features.set_number(Feature::BureauWorstDelinquencyDays, days);
    }
    if let Some(Value::Number(income)) = features.get(Feature::MonthlyIncomeMinor).cloned()
        && income > 0
    {
        let ratio = i128::from(report.exposure_minor) * 100 / (i128::from(income) * 12);
        features.set_number(
            Feature::DebtToIncomePercent,
            i64::try_from(ratio).unwrap_or(i64::MAX),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_whole_years_and_region_is_the_province() {
        let today = Date::from_ymd_opt(2026, 12, 3).unwrap();
        let mut f = Features::default();
        set_identity(&mut f, Some("11010519491231002X"), today);
        assert_eq!(f.get(Feature::AgeYears), Some(&Value::Number(76)));
        assert_eq!(f.get(Feature::Region), Some(&Value::Text("11".into())));
        let mut g = Features::default();
        set_identity(&mut g, Some("not a number"), today);
        assert_eq!(g.get(Feature::AgeYears), None, "missing, never guessed");
        assert_eq!(
            whole_years(Date::from_ymd_opt(2000, 12, 4).unwrap(), today),
            25
        );
        assert_eq!(
            whole_years(Date::from_ymd_opt(2000, 12, 3).unwrap(), today),
            26
        );
    }

    #[test]
    fn no_file_is_no_credit_and_a_down_bureau_leaves_its_features_missing() {
        let mut f = Features::default();
        f.set_number(Feature::MonthlyIncomeMinor, 1_000_000);
        set_bureau(&mut f, &Inquiry::NoFile);
        assert_eq!(f.get(Feature::BureauLendersOpen), Some(&Value::Number(0)));
        assert_eq!(f.get(Feature::BureauWorstDelinquencyDays), None);
        assert_eq!(f.get(Feature::DebtToIncomePercent), Some(&Value::Number(0)));
        let mut g = Features::default();
        set_bureau(
            &mut g,
            &Inquiry::Unavailable {
                detail: "down".into(),
            },
        );
        assert_eq!(g.get(Feature::BureauLendersOpen), None);
        let mut h = Features::default();
        h.set_number(Feature::MonthlyIncomeMinor, 1_000_000);
        set_bureau(
            &mut h,
            &Inquiry::Found(BureauReport {
                lenders_open: 2,
                exposure_minor: 6_000_000,
                inquiries_3m: 1,
                worst_delinquency_days: Some(0),
            }),
        );
        assert_eq!(
            h.get(Feature::DebtToIncomePercent),
            Some(&Value::Number(50))
        );
    }
}
