//! SQLite: WAL, foreign keys on, a busy timeout, synchronous=FULL (a commit survives power
//! loss), one writer connection so transactions never fight over the lock, its units of work
//! committed in batches (`group_commit.rs`), and a few read-only connections for snapshots.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::group_commit::GroupCommit;
use crate::migrations;
use crate::unit_of_work::{SqlUnitOfWork, SqliteTx, Tx};
use crate::{Backend, ConnectOptions, MigrationReport, Store, StoreError, UnitOfWork};

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SqliteStore {
    writer: SqlitePool,
    batches: GroupCommit,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens the database file a `sqlite://path` URL names, creating it if it is missing and
    /// `options` allow.
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            // The writer and the readers would each open a database of their own.
            return Err(StoreError::Config(
                "in-memory SQLite is not supported; give a file path".to_owned(),
            ));
        }
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad SQLite URL {url}: {e}")))?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // 32 MiB of page cache per connection rather than 2: a large book's indexes stay
            // in memory (close of business over a million loans ran 20% faster).
            .pragma("cache_size", "-32768");
        let path = base.get_filename();
        if !options.create_if_missing && !path.exists() {
            return Err(StoreError::Config(format!(
                "the database {} does not exist",
                path.display()
            )));
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .after_release(crate::only_idle_connections)
            .before_acquire(crate::only_idle_connections)
            .connect_with(
                base.clone()
                    .create_if_missing(options.create_if_missing)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full),
            )
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.clamp(1, 8))
            .acquire_timeout(options.acquire_timeout)
            .after_release(crate::only_idle_connections)
            .before_acquire(crate::only_idle_connections)
            .connect_with(base.read_only(true))
            .await?;
        Ok(Self {
            batches: GroupCommit::new(
                writer.clone(),
                options.acquire_timeout,
                options.group_commit_wait,
            ),
            writer,
            reader,
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn commits(&self) -> u64 {
        self.batches.commits()
    }

    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        let unit = self.batches.begin().await?;
        Ok(Box::new(SqlUnitOfWork::writer(
            Tx::Sqlite(SqliteTx::Write(unit)),
            None,
        )))
    }

    async fn begin_read(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        let tx = self.reader.begin().await?;
        Ok(Box::new(SqlUnitOfWork::reader(Tx::Sqlite(SqliteTx::Read(
            tx,
        )))))
    }

    async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let before = self.applied().await?.len();
        migrations::SQLITE
            .run(&self.writer)
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
        migrations::check_current(&migrations::SQLITE, &applied)
    }

    async fn close(&self) {
        self.reader.close().await;
        self.batches.close().await;
        self.writer.close().await;
    }
}

impl SqliteStore {
    async fn applied(&self) -> Result<Vec<i64>, StoreError> {
        migrations::applied_or_empty(
            sqlx::query_scalar(migrations::APPLIED_VERSIONS)
                .fetch_all(&self.reader)
                .await,
        )
    }
}
