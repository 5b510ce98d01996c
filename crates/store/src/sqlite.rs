//! SQLite: WAL, foreign keys on, a busy timeout, synchronous=FULL (a commit survives power
//! loss), one writer connection so transactions never fight over the lock, its units of work
//! committed in batches (`group_commit.rs`), a few read-only connections for snapshots, and
//! the WAL checkpointed beside the writer rather than by it.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::group_commit::GroupCommit;
use crate::migrations;
use crate::unit_of_work::{SqlUnitOfWork, SqliteTx, Tx};
use crate::{
    Backend, BorrowerUnit, ConnectOptions, MigrationPlan, MigrationReport, Store, StoreError,
    UnitOfWork,
};

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the WAL is checkpointed beside the writer. Under writes that never pause the
/// writer finishes the job once the WAL outgrows `ConnectOptions::sqlite_wal_bound`.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

pub struct SqliteStore {
    writer: SqlitePool,
    batches: GroupCommit,
    reader: SqlitePool,
    /// Checkpoints the WAL until the store closes.
    checkpointer: tokio::task::JoinHandle<()>,
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
        // The pool holds the connection the writer takes and keeps (`group_commit.rs`), and one
        // more, opened when asked for, for migrations and checkpoints.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .after_release(crate::only_idle_connections)
            .before_acquire(crate::only_idle_connections)
            .connect_with(
                base.clone()
                    .create_if_missing(options.create_if_missing)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    // Not by the COMMIT that crosses a thousand pages, while every unit waits
                    // for the writer: by `checkpoint` below, beside it.
                    .pragma("wal_autocheckpoint", "0")
                    // A WAL that grew past its bound is cut back to it when it starts again.
                    .pragma("journal_size_limit", options.sqlite_wal_bound.to_string()),
            )
            .await?;
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&writer)
            .await?;
        let bound_frames = i64::try_from(options.sqlite_wal_bound)
            .unwrap_or(i64::MAX)
            .checked_div(page_size)
            .unwrap_or(i64::MAX);
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.clamp(1, 8))
            .acquire_timeout(options.acquire_timeout)
            .after_release(crate::only_idle_connections)
            .before_acquire(crate::only_idle_connections)
            .connect_with(base.read_only(true))
            .await?;
        let batches = GroupCommit::new(
            writer.clone(),
            options.acquire_timeout,
            options.group_commit_wait,
        );
        let checkpointer = tokio::spawn(checkpoint_every(
            writer.clone(),
            CHECKPOINT_EVERY,
            (bound_frames, batches.wal_too_long()),
        ));
        Ok(Self {
            batches,
            writer,
            reader,
            checkpointer,
        })
    }

    /// Copies what the WAL holds into the database now, as the checkpointer does every
    /// 200 ms; the WAL's frames, and how many of them are in the database.
    pub async fn checkpoint(&self) -> Result<(i64, i64), StoreError> {
        checkpoint(&self.writer).await
    }
}

/// A PASSIVE checkpoint on a connection of its own: it copies what no reader still needs and
/// never blocks the writer or a reader. The WAL starts again from its beginning once all of it
/// is in the database.
async fn checkpoint(pool: &SqlitePool) -> Result<(i64, i64), StoreError> {
    let (_, frames, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    Ok((frames, copied))
}

/// Checkpoints every `every`; when the WAL still holds more frames than its bound after one,
/// asks the writer to finish the job between two batches (`GroupCommit::wal_too_long`).
async fn checkpoint_every(pool: SqlitePool, every: Duration, bound: (i64, Arc<AtomicBool>)) {
    let (bound_frames, too_long) = bound;
    loop {
        tokio::time::sleep(every).await;
        if pool.is_closed() {
            return;
        }
        match checkpoint(&pool).await {
            Ok((frames, _)) if frames > bound_frames => too_long.store(true, Ordering::SeqCst),
            Ok(_) => {}
            Err(e) => tracing::warn!("the WAL checkpoint failed; the next will try again: {e}"),
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpointer.abort();
    }
}

impl SqliteStore {
    async fn writer(&self) -> Result<SqlUnitOfWork, StoreError> {
        let unit = self.batches.begin().await?;
        Ok(SqlUnitOfWork::writer(
            Tx::Sqlite(SqliteTx::Write(unit)),
            None,
        ))
    }

    async fn reader(&self) -> Result<SqlUnitOfWork, StoreError> {
        let tx = self.reader.begin().await?;
        Ok(SqlUnitOfWork::reader(Tx::Sqlite(SqliteTx::Read(tx))))
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
        Ok(Box::new(self.writer().await?))
    }

    async fn begin_read(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        Ok(Box::new(self.reader().await?))
    }

    async fn begin_for(&self, borrower_id: &str) -> Result<Box<dyn BorrowerUnit>, StoreError> {
        Ok(Box::new(self.writer().await?.for_borrower(borrower_id)))
    }

    async fn begin_read_for(&self, borrower_id: &str) -> Result<Box<dyn BorrowerUnit>, StoreError> {
        Ok(Box::new(self.reader().await?.for_borrower(borrower_id)))
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

    async fn migration_plan(&self) -> Result<MigrationPlan, StoreError> {
        let applied = self.applied().await?;
        Ok(migrations::plan(&migrations::SQLITE, &applied))
    }

    async fn readiness(&self) -> Result<(), StoreError> {
        let applied = self.applied().await?;
        migrations::check_current(&migrations::SQLITE, &applied)
    }

    async fn close(&self) {
        self.reader.close().await;
        self.batches.close().await;
        self.checkpointer.abort();
        // What the WAL still holds, in the database before the file is closed.
        let _ = checkpoint(&self.writer).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::OutboxEvent;

    fn event(id: String, payload: serde_json::Value) -> OutboxEvent {
        OutboxEvent {
            id,
            topic: "test.written".into(),
            aggregate_type: "test".into(),
            aggregate_id: "test".into(),
            payload,
            created_at: chrono::Utc::now(),
            published_at: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_leaves_the_wal_to_the_checkpointer() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.sqlite3").display());
        let store = SqliteStore::connect(&url, &ConnectOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let mut unit = store.batches.begin().await.unwrap();
        let every: i64 = unit
            .lite()
            .await
            .unwrap()
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
            .unwrap();
        assert_eq!(every, 0, "no COMMIT of the writer's checkpoints");
        unit.rollback().await.unwrap();

        for n in 0..20 {
            let mut uow = store.begin().await.unwrap();
            uow.append_outbox(&event(format!("e-{n}"), serde_json::json!({"n": n})))
                .await
                .unwrap();
            uow.commit().await.unwrap();
        }
        let (frames, copied) = store.checkpoint().await.unwrap();
        assert!(frames > 0, "the writes are in the WAL");
        assert_eq!(
            copied, frames,
            "all of it copied: no reader holds an older snapshot"
        );
        store.close().await;
    }

    /// The WAL header's checkpoint sequence number: how many times the WAL started again.
    fn wal_restarts(wal: &std::path::Path) -> u32 {
        let header = std::fs::read(wal).unwrap();
        u32::from_be_bytes(header[12..16].try_into().unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_that_never_pause_still_start_the_wal_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let url = format!("sqlite://{}", path.display());
        let bound = 64 * 1024;
        let store = SqliteStore::connect(
            &url,
            &ConnectOptions {
                sqlite_wal_bound: bound,
                ..ConnectOptions::default()
            },
        )
        .await
        .unwrap();
        store.migrate().await.unwrap();
        let wal = dir.path().join("t.sqlite3-wal");
        let before = wal_restarts(&wal);
        // Four writers back to back, so one always waits for the writer and it never idles:
        // the checkpointer beside it never finds the WAL all copied at a batch's start. They
        // write until the WAL has started again three times, or for a minute at most (no
        // timing is asserted: a slow machine only takes longer to get there).
        let store = Arc::new(store);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let mut uow = store.begin().await.unwrap();
                        let pad = serde_json::json!({"pad": "x".repeat(8000)});
                        uow.append_outbox(&event(format!("e-{w}-{n}"), pad))
                            .await
                            .unwrap();
                        uow.commit().await.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let give_up = std::time::Instant::now() + Duration::from_secs(60);
        while wal_restarts(&wal) - before < 3 && std::time::Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, Ordering::SeqCst);
        let written: u64 = futures::future::join_all(writers)
            .await
            .into_iter()
            .map(|n| n.unwrap())
            .sum();
        let restarts = wal_restarts(&wal) - before;
        assert!(
            restarts >= 3,
            "{written} units of 8 KB against a 64 KiB bound: the WAL started again only \
             {restarts} times"
        );
        store.close().await;
    }
}
