//! The one implementation of [`UnitOfWork`]: a transaction on either backend. Repository code is
//! written once against it; `on_tx!` runs the same statement on whichever connection it holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite, Transaction};

use crate::pending::PendingRows;
use crate::sql::{Args, FromRow, Statement, Target, run_on_writer};
use crate::{Backend, BorrowerUnit, StoreError, UnitOfWork};

pub(crate) enum Tx {
    Sqlite(SqliteTx),
    Postgres(Transaction<'static, Postgres>),
}

/// A SQLite unit of work: a snapshot on a reader, or a unit of the writer's batch.
pub(crate) enum SqliteTx {
    Read(Transaction<'static, Sqlite>),
    Write(crate::group_commit::Unit),
}

impl SqliteTx {
    pub(crate) fn conn(&mut self) -> &mut sqlx::SqliteConnection {
        match self {
            SqliteTx::Read(tx) => tx,
            SqliteTx::Write(unit) => unit.conn(),
        }
    }
}

pub(crate) struct SqlUnitOfWork {
    pub(crate) tx: Tx,
    /// Where a write transaction's commit is counted, when the store counts them itself.
    commits: Option<Arc<AtomicU64>>,
    /// Audit entries, decision records, jobs and outbox events appended in this unit of work,
    /// not yet written: they go together when it commits (or before it reads one of their
    /// tables), so what a change records and queues beside itself costs no round trip of its
    /// own. Rolled back, they are dropped with it.
    pub(crate) pending: [PendingRows; 4],
    /// The borrower whose rows the unit reaches, begun by [`crate::Store::begin_for`]; empty
    /// for any other unit, which cannot read a line or drawdown by id nor write one (those
    /// traits are not among its own), only read across borrowers (`BookRepository`).
    pub(crate) borrower: String,
}

/// Where each table's rows wait in [`SqlUnitOfWork::pending`].
pub(crate) const PENDING_AUDIT: usize = 0;
pub(crate) const PENDING_DECISIONS: usize = 1;
pub(crate) const PENDING_JOBS: usize = 2;
pub(crate) const PENDING_OUTBOX: usize = 3;

impl SqlUnitOfWork {
    /// A unit of work that writes; its commits are counted in `commits`, when given.
    pub(crate) fn writer(tx: Tx, commits: Option<Arc<AtomicU64>>) -> SqlUnitOfWork {
        Self::new(tx, commits)
    }

    /// A unit of work that reads one snapshot.
    pub(crate) fn reader(tx: Tx) -> SqlUnitOfWork {
        Self::new(tx, None)
    }

    fn new(tx: Tx, commits: Option<Arc<AtomicU64>>) -> SqlUnitOfWork {
        SqlUnitOfWork {
            tx,
            commits,
            pending: [
                crate::audit::pending_rows(),
                crate::decisions::pending_rows(),
                crate::jobs::pending_rows(),
                crate::outbox::pending_rows(),
            ],
            borrower: String::new(),
        }
    }

    /// This unit, on `borrower_id`'s rows.
    pub(crate) fn for_borrower(mut self, borrower_id: &str) -> SqlUnitOfWork {
        borrower_id.clone_into(&mut self.borrower);
        self
    }

    /// `Ok` when a `what` given to write is this unit's borrower's.
    pub(crate) fn owns(&self, what: &'static str, borrower_id: &str) -> Result<(), StoreError> {
        if borrower_id == self.borrower {
            Ok(())
        } else {
            Err(StoreError::OtherBorrower(what))
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self.tx {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }

    /// The texts of a JSON array bound at parameter `n`, as a subquery for `IN (…)`: one
    /// statement, the same text however many there are (a statement kept prepared, not one
    /// per count).
    pub(crate) fn listed(&self, n: u8) -> String {
        match self.backend() {
            Backend::Sqlite => format!("SELECT value FROM json_each(${n})"),
            Backend::Postgres => format!("SELECT jsonb_array_elements_text(${n}::jsonb)"),
        }
    }
}

impl SqlUnitOfWork {
    /// A statement to run in this unit of work, its parameters encoded for its connection.
    pub(crate) fn sql<'q>(&self, text: &'q str) -> Statement<'q> {
        let target = match &self.tx {
            Tx::Sqlite(SqliteTx::Write(_)) => Target::SqliteWriter,
            Tx::Sqlite(SqliteTx::Read(_)) => Target::SqliteReader,
            Tx::Postgres(_) => Target::Postgres,
        };
        Statement::new(target, text)
    }

    /// Runs a statement; the rows it changed.
    pub(crate) async fn execute(&mut self, statement: Statement<'_>) -> Result<u64, StoreError> {
        statement.check()?;
        if let Tx::Sqlite(SqliteTx::Write(unit)) = &mut self.tx {
            let conn = unit.lite().await?;
            return run_on_writer(conn, &statement, |_| Ok(true));
        }
        let text = statement.text;
        match (&mut self.tx, statement.args) {
            (Tx::Sqlite(SqliteTx::Read(tx)), Args::Sqlite(args)) => {
                Ok(sqlx::query_with(text, args)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected())
            }
            (Tx::Postgres(tx), Args::Postgres(args)) => Ok(sqlx::query_with(text, args)
                .execute(&mut **tx)
                .await?
                .rows_affected()),
            _ => Err(misrouted()),
        }
    }

    /// Runs a query; every row of its result.
    pub(crate) async fn fetch_all<T: FromRow>(
        &mut self,
        statement: Statement<'_>,
    ) -> Result<Vec<T>, StoreError> {
        self.fetch(statement, usize::MAX).await
    }

    /// Runs a query; the first row of its result, if any.
    pub(crate) async fn fetch_optional<T: FromRow>(
        &mut self,
        statement: Statement<'_>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.fetch(statement, 1).await?.pop())
    }

    /// Runs a query that always has a row (an aggregate, `RETURNING`); that row.
    pub(crate) async fn fetch_one<T: FromRow>(
        &mut self,
        statement: Statement<'_>,
    ) -> Result<T, StoreError> {
        let text = statement.text;
        self.fetch_optional(statement)
            .await?
            .ok_or_else(|| StoreError::Database(format!("no row from: {text}")))
    }

    async fn fetch<T: FromRow>(
        &mut self,
        statement: Statement<'_>,
        most: usize,
    ) -> Result<Vec<T>, StoreError> {
        statement.check()?;
        if let Tx::Sqlite(SqliteTx::Write(unit)) = &mut self.tx {
            let conn = unit.lite().await?;
            let mut found = Vec::new();
            run_on_writer(conn, &statement, |row| {
                found.push(T::from_row(row)?);
                Ok(found.len() < most)
            })?;
            return Ok(found);
        }
        let text = statement.text;
        // The first `most` rows through sqlx; a macro, as the two databases' queries differ in
        // type.
        macro_rules! rows {
            ($conn:expr, $args:expr) => {{
                let query = sqlx::query_with(text, $args);
                let rows = if most == 1 {
                    query.fetch_optional($conn).await?.into_iter().collect()
                } else {
                    query.fetch_all($conn).await?
                };
                rows.iter().map(T::from_row).collect()
            }};
        }
        match (&mut self.tx, statement.args) {
            (Tx::Sqlite(SqliteTx::Read(tx)), Args::Sqlite(args)) => rows!(&mut **tx, args),
            (Tx::Postgres(tx), Args::Postgres(args)) => rows!(&mut **tx, args),
            _ => Err(misrouted()),
        }
    }
}

fn misrouted() -> StoreError {
    StoreError::Database("a statement was encoded for another connection".to_owned())
}

/// Evaluates `$body` with `$conn` bound to the transaction's connection, whichever backend it is.
/// The SQL inside must be valid on both (`$1`-style parameters are).
macro_rules! on_tx {
    ($uow:expr, $conn:ident => $body:expr) => {
        match &mut $uow.tx {
            $crate::unit_of_work::Tx::Sqlite(tx) => {
                let $conn = tx.conn();
                $body
            }
            $crate::unit_of_work::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

#[async_trait]
impl UnitOfWork for SqlUnitOfWork {
    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.flush_pending().await?;
        match self.tx {
            Tx::Sqlite(SqliteTx::Read(tx)) => tx.commit().await?,
            // The batch counts its COMMITs.
            Tx::Sqlite(SqliteTx::Write(unit)) => unit.commit().await?,
            Tx::Postgres(tx) => {
                tx.commit().await?;
                if let Some(commits) = &self.commits {
                    commits.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        match self.tx {
            Tx::Sqlite(SqliteTx::Read(tx)) => tx.rollback().await?,
            Tx::Sqlite(SqliteTx::Write(unit)) => unit.rollback().await?,
            Tx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

impl BorrowerUnit for SqlUnitOfWork {
    fn borrower_id(&self) -> &str {
        &self.borrower
    }
}
