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

/// What `migrator` would apply to a database that applied `applied`.
pub(crate) fn plan(migrator: &Migrator, applied: &[i64]) -> crate::MigrationPlan {
    crate::MigrationPlan {
        applied: applied.len(),
        pending: migrator
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each migration's checksum as released, one per line: `{backend} {version} {sha384}`.
    const RELEASED: &str = "migrations/released.txt";

    fn checksums() -> Vec<String> {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        [("sqlite", &SQLITE), ("postgres", &POSTGRES)]
            .iter()
            .flat_map(|(backend, migrator)| {
                migrator
                    .iter()
                    .map(move |m| format!("{backend} {} {}", m.version, hex(&m.checksum)))
            })
            .collect()
    }

    /// A migration a database has run is never edited, not even a comment: sqlx checksums the
    /// whole file, and a database that ran the old one would refuse to migrate. New ones are
    /// appended to the list with `LENDCORE_UPDATE_GOLDEN=1`; that never rewrites a listed one.
    #[test]
    fn released_migrations_are_never_edited() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(RELEASED);
        let released = std::fs::read_to_string(&path).unwrap_or_default();
        let listed: Vec<&str> = released.lines().filter(|l| !l.is_empty()).collect();
        let now = checksums();
        for line in &listed {
            let key: Vec<&str> = line.splitn(3, ' ').take(2).collect();
            let current = now
                .iter()
                .find(|c| c.splitn(3, ' ').take(2).eq(key.iter().copied()));
            assert_eq!(
                current.map(String::as_str),
                Some(*line),
                "migration {key:?} was edited (or removed) after its release"
            );
        }
        let new: Vec<&String> = now
            .iter()
            .filter(|c| !listed.contains(&c.as_str()))
            .collect();
        if std::env::var_os("LENDCORE_UPDATE_GOLDEN").is_some() && !new.is_empty() {
            let mut text = released.clone();
            for line in &new {
                text.push_str(line);
                text.push('\n');
            }
            std::fs::write(&path, text).unwrap();
            return;
        }
        assert!(
            new.is_empty(),
            "new migrations {new:?}: list them with LENDCORE_UPDATE_GOLDEN=1"
        );
    }
}
