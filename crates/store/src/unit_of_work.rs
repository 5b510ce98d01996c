//! The one implementation of [`UnitOfWork`]: a transaction on either backend. Repository code is
//! written once against it; `on_tx!` runs the same statement on whichever connection it holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite, Transaction};

use crate::pending::PendingRows;
use crate::{Backend, StoreError, UnitOfWork};

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
    /// Audit entries and decision records appended in this unit of work, not yet written: they
    /// go together when it commits (or before it reads one of their tables), so recording a
    /// decision beside a change costs no round trip of its own. Rolled back, they are dropped
    /// with it.
    pub(crate) pending: [PendingRows; 2],
}

/// Where each table's rows wait in [`SqlUnitOfWork::pending`].
pub(crate) const PENDING_AUDIT: usize = 0;
pub(crate) const PENDING_DECISIONS: usize = 1;

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
            ],
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self.tx {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }
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
