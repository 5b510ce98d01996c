//! Each backend embeds its own migrations; readiness compares them with what the database ran.

use sqlx::migrate::Migrator;

use crate::StoreError;

pub(crate) static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
pub(crate) static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// SQL listing the successful migrations a database has applied.
pub(crate) const APPLIED_VERSIONS: &str =
    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";

/// `Ok` when the database applied every migration this build carries. Migrations it does not
/// know are allowed (with a warning): during a rolling deploy the first new process migrates,
/// and the old ones must keep serving. Migrations are therefore written to be additive.
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
    if !missing.is_empty() {
        return Err(StoreError::SchemaNotCurrent(format!(
            "migrations {missing:?} not applied; run `lendcore migrate`"
        )));
    }
    if !unknown.is_empty() {
        tracing::warn!(
            ?unknown,
            "database has migrations this build does not know; upgrade lendcore"
        );
    }
    Ok(())
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
