//! The one implementation of [`UnitOfWork`]: a transaction on either backend. Repository code is
//! written once against it; `on_tx!` runs the same statement on whichever connection it holds.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite, Transaction};

use crate::pending::PendingRows;
use crate::{Backend, StoreError, UnitOfWork};

pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

pub(crate) struct SqlUnitOfWork {
    pub(crate) tx: Tx,
    /// Begun to write (`Store::begin`), not to read a snapshot.
    writes: bool,
    /// Audit entries and decision records appended in this unit of work, not yet written: they
    /// go together when it commits (or before it reads one of their tables), so recording a
    /// decision beside a change costs no round trip of its own. Rolled back, they are dropped
    /// with it.
    pub(crate) pending: [PendingRows; 2],
}

/// Where each table's rows wait in [`SqlUnitOfWork::pending`].
pub(crate) const PENDING_AUDIT: usize = 0;
pub(crate) const PENDING_DECISIONS: usize = 1;

/// Write transactions this process has committed, on either backend.
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// Write transactions this process has committed so far: the load test's commits per second.
pub fn commits() -> u64 {
    COMMITS.load(Ordering::Relaxed)
}

impl SqlUnitOfWork {
    /// A unit of work that writes.
    pub(crate) fn writer(tx: Tx) -> SqlUnitOfWork {
        Self::new(tx, true)
    }

    /// A unit of work that reads one snapshot.
    pub(crate) fn reader(tx: Tx) -> SqlUnitOfWork {
        Self::new(tx, false)
    }

    fn new(tx: Tx, writes: bool) -> SqlUnitOfWork {
        SqlUnitOfWork {
            tx,
            writes,
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
                let $conn = &mut **tx;
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
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        if self.writes {
            COMMITS.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        match self.tx {
            Tx::Sqlite(tx) => tx.rollback().await?,
            Tx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}
