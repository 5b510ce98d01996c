use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The database cannot be reached or has no free connection; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Another transaction holds what this one needs (SQLite busy, PostgreSQL serialization
    /// failure or deadlock); the whole unit of work may be retried.
    #[error("database busy, retry the transaction: {0}")]
    Busy(String),
    /// A unique constraint refused a row; carries the constraint or column list.
    #[error("unique constraint violated: {0}")]
    Duplicate(String),
    /// A row changed since it was read (optimistic concurrency); reload and decide again.
    #[error("{0} changed concurrently")]
    Stale(&'static str),
    /// A write tried to change a record that may no longer change (a product version that took
    /// effect). The domain prevents this; the store refuses it too, loudly.
    #[error("immutable: {0}")]
    Immutable(String),
    /// The job's lease expired and another worker may hold it; the outcome must be dropped.
    #[error("lease on job {0} was lost")]
    LeaseLost(String),
    /// The schema is missing migrations, or has ones this build does not know.
    #[error("schema not current: {0}")]
    SchemaNotCurrent(String),
    #[error("configuration: {0}")]
    Config(String),
    /// The database refused a value as malformed (e.g. a NUL character on PostgreSQL): the
    /// caller's input, not a fault of ours.
    #[error("value refused by the database: {0}")]
    InvalidValue(String),
    /// A stored row could not be turned back into a domain value.
    #[error("corrupt data in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    /// A unit of work on one borrower's rows was given another borrower's row to write: a bug
    /// upstream, refused before it reaches the database.
    #[error("a unit of work for one borrower was given another borrower's {0}")]
    OtherBorrower(&'static str),
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            table,
            detail: detail.to_string(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(err.to_string())
            }
            sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => {
                StoreError::Unavailable(err.to_string())
            }
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                // SQLite reports extended result codes; the low byte is the primary code. Only
                // SQLite's: a PostgreSQL SQLSTATE may be digits too (42501 would read as BUSY).
                let sqlite_primary = db
                    .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                    .and_then(|_| code.parse::<i32>().ok())
                    .map(|c| c & 0xff);
                if db.is_unique_violation() {
                    StoreError::Duplicate(db.constraint().unwrap_or(db.message()).to_owned())
                } else if matches!(code.as_ref(), "40001" | "40P01")
                    || matches!(sqlite_primary, Some(5 | 6))
                {
                    // PostgreSQL serialization failure or deadlock; SQLITE_BUSY or SQLITE_LOCKED.
                    StoreError::Busy(db.message().to_owned())
                } else if code.starts_with("22") && code.len() == 5 {
                    // PostgreSQL class 22, data exception: a value it cannot store.
                    StoreError::InvalidValue(db.message().to_owned())
                } else {
                    StoreError::Database(err.to_string())
                }
            }
            sqlx::Error::Migrate(m) => StoreError::SchemaNotCurrent(m.to_string()),
            _ => StoreError::Database(err.to_string()),
        }
    }
}

/// The SQLite writer's own statements (`sql.rs`) fail as sqlx's would on the same database.
impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match &err {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let message = message.clone().unwrap_or_else(|| failure.to_string());
                match failure.code {
                    // SQLITE_CONSTRAINT_UNIQUE and _PRIMARYKEY, as sqlx's is_unique_violation.
                    ErrorCode::ConstraintViolation
                        if matches!(failure.extended_code, 2067 | 1555) =>
                    {
                        StoreError::Duplicate(message)
                    }
                    ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                        StoreError::Busy(message)
                    }
                    _ => StoreError::Database(message),
                }
            }
            _ => StoreError::Database(err.to_string()),
        }
    }
}
