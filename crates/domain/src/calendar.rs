//! Dates for loans: business dates (no time of day), day-count conventions, and monthly due
//! dates anchored to the start day, so 31 Jan is followed by 28 (or 29) Feb and then 31 Mar.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A calendar date in the lender's business calendar.
pub type Date = NaiveDate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DayCount {
    /// Actual days over a 365-day year (the default; usual for CNY lending).
    #[default]
    #[serde(rename = "actual_365")]
    Actual365,
    /// Actual days over a 360-day year.
    #[serde(rename = "actual_360")]
    Actual360,
    /// Every month 30 days, a 360-day year (30/360 bond basis: a 31st counts as the 30th).
    #[serde(rename = "thirty_360")]
    Thirty360,
}

impl DayCount {
    /// Days counted between two dates, `from` exclusive and `to` inclusive.
    pub fn days(self, from: Date, to: Date) -> i64 {
        match self {
            DayCount::Actual365 | DayCount::Actual360 => (to - from).num_days(),
            DayCount::Thirty360 => {
                let (y1, m1, d1) = (from.year() as i64, from.month() as i64, from.day() as i64);
                let (y2, m2, d2) = (to.year() as i64, to.month() as i64, to.day() as i64);
                let d1 = d1.min(30);
                let d2 = if d1 == 30 { d2.min(30) } else { d2 };
                360 * (y2 - y1) + 30 * (m2 - m1) + (d2 - d1)
            }
        }
    }

    /// Days in the year the convention divides by.
    pub fn year_days(self) -> u32 {
        match self {
            DayCount::Actual365 => 365,
            DayCount::Actual360 | DayCount::Thirty360 => 360,
        }
    }

    /// The daily rate equivalent to an annual nominal rate under this convention.
    pub fn daily_rate(self, annual: Decimal) -> Decimal {
        annual / Decimal::from(self.year_days())
    }
}

/// `start` moved on by `months`, keeping its day of the month where the target month has it and
/// taking the month's last day where it has not. Always anchored to `start`, never chained, so a
/// short month does not shorten every later due date.
pub fn add_months_anchored(start: Date, months: u32) -> Option<Date> {
    let total = start.year() as i64 * 12 + i64::from(start.month0()) + i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = u32::try_from(total.rem_euclid(12)).ok()? + 1;
    let last = last_day_of_month(year, month)?;
    NaiveDate::from_ymd_opt(year, month, start.day().min(last))
}

fn last_day_of_month(year: i32, month: u32) -> Option<u32> {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    first_of_next.pred_opt().map(|d| d.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> Date {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn month_ends_follow_the_anchor_not_the_previous_due_date() {
        let start = d(2024, 1, 31);
        let dues: Vec<Date> = (1..=3)
            .map(|k| add_months_anchored(start, k).unwrap())
            .collect();
        assert_eq!(dues, [d(2024, 2, 29), d(2024, 3, 31), d(2024, 4, 30)]);
        assert_eq!(add_months_anchored(d(2025, 1, 31), 1), Some(d(2025, 2, 28)));
        assert_eq!(
            add_months_anchored(d(2025, 11, 15), 2),
            Some(d(2026, 1, 15))
        );
        assert_eq!(add_months_anchored(d(2025, 3, 10), 0), Some(d(2025, 3, 10)));
    }

    #[test]
    fn day_counts_follow_their_conventions() {
        assert_eq!(DayCount::Actual365.days(d(2024, 2, 1), d(2024, 3, 1)), 29);
        assert_eq!(DayCount::Thirty360.days(d(2024, 2, 1), d(2024, 3, 1)), 30);
        assert_eq!(DayCount::Thirty360.days(d(2024, 1, 31), d(2024, 2, 29)), 29);
        assert_eq!(DayCount::Thirty360.days(d(2024, 1, 30), d(2024, 3, 31)), 60);
        assert_eq!(DayCount::Actual360.days(d(2024, 1, 1), d(2025, 1, 1)), 366);
        assert_eq!(DayCount::Actual360.year_days(), 360);
    }

    proptest! {
        #[test]
        fn anchored_dates_increase_and_keep_the_day_when_they_can(
            y in 1990i32..2100, m in 1u32..=12, day in 1u32..=31, k in 0u32..480
        ) {
            prop_assume!(NaiveDate::from_ymd_opt(y, m, day).is_some());
            let start = d(y, m, day);
            let due = add_months_anchored(start, k).unwrap();
            let next = add_months_anchored(start, k + 1).unwrap();
            prop_assert!(next > due);
            prop_assert_eq!(due.day(), day.min(last_day_of_month(due.year(), due.month()).unwrap()));
        }
    }
}
