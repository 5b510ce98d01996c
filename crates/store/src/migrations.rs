//! Each backend embeds its own migrations; readiness compares them with what the database ran.

use sqlx::migrate::Migrator;

use crate::StoreError;

pub(crate) static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
pub(crate) static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// SQL listing the successful migrations a database has applied.
pub(crate) const APPLIED_VERSIONS: &str =
    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";

/// `Ok` when the database applied exactly the migrations this build carries.
pub(crate) fn check_current(migrator: &Migrator, applied: &[i64]) -> Result<(), StoreError> {
    let expected: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    let missing: Vec<i64> = expected
        .iter()
        .filter(|v| !applied.contains(v))
        .copied()
        .collect();
    let unknown: Vec<i64> = applied
        .iter()
        .filter(|v| !expected.contains(v))
        .copied()
        .collect();
    match (missing.is_empty(), unknown.is_empty()) {
        (true, true) => Ok(()),
        (false, _) => Err(StoreError::SchemaNotCurrent(format!(
            "migrations {missing:?} not applied; run `lendcore migrate`"
        ))),
        (true, false) => Err(StoreError::SchemaNotCurrent(format!(
            "database has migrations {unknown:?} that this build does not know; upgrade lendcore"
        ))),
    }
}

/// Reads the applied versions, treating a missing bookkeeping table as "none applied".
pub(crate) fn applied_or_empty(
    result: Result<Vec<i64>, sqlx::Error>,
) -> Result<Vec<i64>, StoreError> {
    match result {
        Ok(applied) => Ok(applied),
        Err(sqlx::Error::Database(db))
            if db.message().contains("_sqlx_migrations")
                || db.code().as_deref() == Some("42P01") =>
        {
            Ok(Vec::new())
        }
        Err(other) => Err(other.into()),
    }
}
