//! PostgreSQL: any number of lendcore processes share one database. Migrations take an advisory
//! lock, so processes starting together apply them once.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::migrations;
use crate::unit_of_work::{SqlUnitOfWork, Tx};
use crate::{Backend, ConnectOptions, MigrationReport, Store, StoreError, UnitOfWork, redact_url};

pub struct PgStore {
    pool: PgPool,
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
        // Every unit of work begins by ending whatever transaction its connection may still be
        // in (see `BEGIN`), which outside one is a harmless warning: not worth a log line each.
        let connect = connect.options([("client_min_messages", "error")]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            // SQLite needs no such hook: its worker runs a dropped transaction's rollback before
            // anything the next user sends.
            .after_release(crate::only_idle_connections)
            .before_acquire(crate::only_idle_connections)
            .connect_with(connect)
            .await?;
        Ok(Self { pool })
    }
}

/// How a unit of work begins: by rolling back first, in the same round trip. A request dropped
/// while its `BEGIN` was on the wire (a client gone, a deadline passed) leaves its connection
/// inside a transaction that sqlx does not know of (it counts one only once `BEGIN` is
/// answered), so the pool's check cannot see it; the next unit of work on that connection
/// would otherwise run inside it — a read-only one, or one that never commits.
const BEGIN: &str = "ROLLBACK; BEGIN";
const BEGIN_READ: &str = "ROLLBACK; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        let tx = self.pool.begin_with(BEGIN).await?;
        Ok(Box::new(SqlUnitOfWork::new(Tx::Postgres(tx))))
    }

    async fn begin_read(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        let tx = self.pool.begin_with(BEGIN_READ).await?;
        Ok(Box::new(SqlUnitOfWork::new(Tx::Postgres(tx))))
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
