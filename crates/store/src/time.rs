//! Instants are stored as UTC epoch milliseconds on both stores.

use chrono::{DateTime, Utc};

use crate::StoreError;

pub(crate) fn to_ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_ms(table: &'static str, ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::corrupt(table, format!("instant {ms} ms is out of range")))
}

pub(crate) fn from_opt_ms(
    table: &'static str,
    ms: Option<i64>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(|ms| from_ms(table, ms)).transpose()
}
