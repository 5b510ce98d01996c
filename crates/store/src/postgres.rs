//! PostgreSQL: any number of lendcore processes share one database. Migrations take an advisory
//! lock, so processes starting together apply them once.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::migrations;
use crate::unit_of_work::{SqlUnitOfWork, Tx};
use crate::{
    Backend, BorrowerUnit, ConnectOptions, MigrationPlan, MigrationReport, Store, StoreError,
    UnitOfWork, redact_url,
};

pub struct PgStore {
    pool: PgPool,
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl PgStore {
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Config(format!("bad PostgreSQL URL {}: {e}", redact_url(url)))
        })?;
        Self::connect_with(connect, options).await
    }

    /// For callers that set options a URL cannot carry, such as a test schema's search path.
    pub async fn connect_with(
        connect: PgConnectOptions,
        options: &ConnectOptions,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            // SQLite needs no such hook: its worker runs a dropped transaction's rollback before
            // anything the next user sends.
            .after_release(crate::only_idle_connections)
            .before_acquire(crate::only_idle_connections)
            .connect_with(connect)
            .await?;
        Ok(Self {
            pool,
            commits: std::sync::Arc::default(),
        })
    }
}

/// Begins a transaction in a task of its own. sqlx counts a transaction only once its `BEGIN`
/// is answered, so a caller dropped while `BEGIN` was on the wire (a client gone, a deadline
/// passed) would leave its connection inside a transaction that neither sqlx's rollback nor
/// the pool's check can see, for the next unit of work to run inside (read-only, or never
/// committed). Begun apart, a dropped caller's transaction finishes beginning and is then
/// dropped like any other: rolled back, its connection returned clean.
async fn begin_apart(
    pool: &sqlx::PgPool,
    statement: impl Into<std::borrow::Cow<'static, str>>,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
    let statement = statement.into();
    let pool = pool.clone();
    tokio::spawn(async move { pool.begin_with(statement).await })
        .await
        .map_err(|e| StoreError::Database(format!("beginning a transaction: {e}")))?
        .map_err(StoreError::from)
}

const BEGIN_WRITE: &str = "BEGIN";
const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// `begin` for a unit of `borrower_id`'s, naming the borrower for the transaction in the same
/// round trip: `lendcore.borrower`, which the PostgreSQL tests' row-level security checks every
/// row of a keyed table against (testkit/src/sql_lint.rs), so a borrower's unit that reached
/// another borrower's rows would fail there.
fn begin_for_borrower(begin: &str, borrower_id: &str) -> String {
    // A literal (BEGIN goes by the simple protocol, which takes no parameters), its quotes
    // doubled: with standard_conforming_strings, on since PostgreSQL 9.1, that is the whole
    // escape.
    let literal = borrower_id.replace('\'', "''");
    format!("{begin}; SET LOCAL lendcore.borrower = '{literal}'")
}

impl PgStore {
    async fn writer(&self, borrower_id: Option<&str>) -> Result<SqlUnitOfWork, StoreError> {
        let tx = match borrower_id {
            Some(borrower_id) => {
                begin_apart(&self.pool, begin_for_borrower(BEGIN_WRITE, borrower_id)).await?
            }
            None => begin_apart(&self.pool, BEGIN_WRITE).await?,
        };
        Ok(SqlUnitOfWork::writer(
            Tx::Postgres(tx),
            Some(std::sync::Arc::clone(&self.commits)),
        ))
    }

    async fn reader(&self, borrower_id: Option<&str>) -> Result<SqlUnitOfWork, StoreError> {
        let tx = match borrower_id {
            Some(borrower_id) => {
                begin_apart(&self.pool, begin_for_borrower(BEGIN_READ, borrower_id)).await?
            }
            None => begin_apart(&self.pool, BEGIN_READ).await?,
        };
        Ok(SqlUnitOfWork::reader(Tx::Postgres(tx)))
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        Ok(Box::new(self.writer(None).await?))
    }

    async fn begin_read(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        Ok(Box::new(self.reader(None).await?))
    }

    async fn begin_for(&self, borrower_id: &str) -> Result<Box<dyn BorrowerUnit>, StoreError> {
        let unit = self.writer(Some(borrower_id)).await?;
        Ok(Box::new(unit.for_borrower(borrower_id)))
    }

    async fn begin_read_for(&self, borrower_id: &str) -> Result<Box<dyn BorrowerUnit>, StoreError> {
        let unit = self.reader(Some(borrower_id)).await?;
        Ok(Box::new(unit.for_borrower(borrower_id)))
    }

    async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let before = self.applied().await?.len();
        migrations::POSTGRES
            .run(&self.pool)
            .await
            .map_err(sqlx::Error::from)?;
        let after = self.applied().await?.len();
        Ok(MigrationReport {
            applied_before: before,
            applied_now: after - before,
        })
    }

    async fn migration_plan(&self) -> Result<MigrationPlan, StoreError> {
        let applied = self.applied().await?;
        Ok(migrations::plan(&migrations::POSTGRES, &applied))
    }

    async fn readiness(&self) -> Result<(), StoreError> {
        let applied = self.applied().await?;
        migrations::check_current(&migrations::POSTGRES, &applied)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

impl PgStore {
    async fn applied(&self) -> Result<Vec<i64>, StoreError> {
        migrations::applied_or_empty(
            sqlx::query_scalar(migrations::APPLIED_VERSIONS)
                .fetch_all(&self.pool)
                .await,
        )
    }
}
