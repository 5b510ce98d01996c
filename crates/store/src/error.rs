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
    /// The job's lease expired and another worker may hold it; the outcome must be dropped.
    #[error("lease on job {0} was lost")]
    LeaseLost(String),
    /// The schema is missing migrations, or has ones this build does not know.
    #[error("schema not current: {0}")]
    SchemaNotCurrent(String),
    #[error("configuration: {0}")]
    Config(String),
    /// A stored row could not be turned back into a domain value.
    #[error("corrupt data in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
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
                if db.is_unique_violation() {
                    StoreError::Duplicate(db.constraint().unwrap_or(db.message()).to_owned())
                } else if matches!(code.as_ref(), "40001" | "40P01" | "5" | "6" | "517") {
                    // 40001/40P01: PostgreSQL serialization failure and deadlock.
                    // 5/6/517: SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT.
                    StoreError::Busy(db.message().to_owned())
                } else {
                    StoreError::Database(err.to_string())
                }
            }
            sqlx::Error::Migrate(m) => StoreError::SchemaNotCurrent(m.to_string()),
            _ => StoreError::Database(err.to_string()),
        }
    }
}
