//! Group commit on SQLite (#15): units of work from many requests share one transaction. The
//! single writer connection runs them one after another, each in a savepoint of its own (a
//! unit that fails or is dropped rolls back only itself), and the transaction commits when no
//! unit is waiting for the writer, or when the batch reaches [`MAX_UNITS`] units or its first
//! unit has waited [`MAX_WAIT`]. A unit's `commit` answers only once that COMMIT is durable
//! (`synchronous=FULL` stays): a crash before it loses only units whose callers heard nothing.
//! A unit reads what earlier units of its batch wrote, as it would once they committed.
//!
//! The COMMIT and the clean-up after a unit runs in a task of its own, so a caller dropped at
//! any point (a client gone) cannot leave the batch half-finished for the next unit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use crate::StoreError;

/// Units one COMMIT covers at most.
const MAX_UNITS: usize = 256;
/// How long a unit released into the batch may wait for later ones before the batch commits.
const MAX_WAIT: Duration = Duration::from_millis(5);

/// How a unit's batch ended: committed, or the reason it did not.
type Outcome = Result<(), String>;

/// The writer of one SQLite database.
pub(crate) struct GroupCommit {
    pool: SqlitePool,
    batch: Arc<Mutex<Batch>>,
    /// Units waiting for the writer: while any is, a finished unit leaves the COMMIT to them.
    queued: Arc<AtomicUsize>,
    commits: Arc<AtomicU64>,
    acquire_timeout: Duration,
}

/// The open transaction and the units in it.
#[derive(Default)]
struct Batch {
    /// The writer connection, taken from its pool for the batch and given back after.
    conn: Option<PoolConnection<Sqlite>>,
    /// Whether a transaction is open.
    open: bool,
    /// Counts the batches ended, so a late flush knows whether its batch is still the one open.
    ended: u64,
    /// Units released into the transaction, each waiting to hear how its COMMIT went.
    released: Vec<oneshot::Sender<Outcome>>,
    /// When the first of them was released: how long the oldest has waited.
    first_released: Option<Instant>,
    /// A unit's savepoint may still be open: it ended without commit or rollback.
    unit_open: bool,
}

/// Counts a caller as waiting for the writer until it has it or gives up (dropped included).
struct Queued(Arc<AtomicUsize>);

impl Queued {
    fn join(queued: &Arc<AtomicUsize>) -> Queued {
        queued.fetch_add(1, Ordering::SeqCst);
        Queued(Arc::clone(queued))
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A unit of work's hold on the writer, inside its savepoint.
pub(crate) struct Unit {
    batch: Option<OwnedMutexGuard<Batch>>,
    writer: Writer,
}

/// What a unit needs of the writer to end: the batch's lock, who waits, the COMMIT count.
#[derive(Clone)]
struct Writer {
    batch: Arc<Mutex<Batch>>,
    queued: Arc<AtomicUsize>,
    commits: Arc<AtomicU64>,
}

impl GroupCommit {
    pub(crate) fn new(pool: SqlitePool, acquire_timeout: Duration) -> GroupCommit {
        GroupCommit {
            pool,
            batch: Arc::default(),
            queued: Arc::default(),
            commits: Arc::default(),
            acquire_timeout,
        }
    }

    /// COMMITs so far: each covers one batch of units.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Waits for the writer and opens a unit in the batch (beginning one if none is open).
    pub(crate) async fn begin(&self) -> Result<Unit, StoreError> {
        let queued = Queued::join(&self.queued);
        let locked =
            tokio::time::timeout(self.acquire_timeout, Arc::clone(&self.batch).lock_owned()).await;
        drop(queued);
        let batch = locked.map_err(|_| {
            StoreError::Unavailable(format!(
                "the SQLite writer stayed busy for {:?}",
                self.acquire_timeout
            ))
        })?;
        let mut unit = Unit {
            batch: Some(batch),
            writer: Writer {
                batch: Arc::clone(&self.batch),
                queued: Arc::clone(&self.queued),
                commits: Arc::clone(&self.commits),
            },
        };
        let batch = unit.batch();
        if batch.unit_open {
            close_abandoned(batch).await;
        }
        if batch.conn.is_none() {
            batch.conn = Some(self.pool.acquire().await?);
        }
        if !batch.open {
            // IMMEDIATE takes the write lock up front, so a unit that reads and then writes
            // cannot fail half-way when another process (a CLI run) holds the lock. Marked
            // first: a caller dropped while BEGIN runs leaves a transaction that is open.
            batch.open = true;
            if let Err(e) = execute(batch, "BEGIN IMMEDIATE").await {
                batch.open = false;
                return Err(e);
            }
        }
        // Marked first: a caller dropped while SAVEPOINT runs leaves it for the next to close.
        batch.unit_open = true;
        execute(batch, "SAVEPOINT unit").await?;
        Ok(unit)
    }
}

impl Unit {
    fn batch(&mut self) -> &mut Batch {
        self.batch
            .as_mut()
            .expect("a unit holds the writer until it ends")
    }

    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        self.batch()
            .conn
            .as_mut()
            .expect("a unit's batch holds the writer connection")
    }

    /// Releases the unit into the batch and waits until the batch's COMMIT is durable.
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        let mut batch = self.batch.take().expect("a unit ends once");
        let writer = self.writer.clone();
        let (tell, heard) = oneshot::channel();
        tokio::spawn(async move {
            match execute(&mut batch, "RELEASE unit").await {
                Ok(()) => {
                    batch.unit_open = false;
                    if batch.released.is_empty() {
                        batch.first_released = Some(Instant::now());
                        // Should the units meant to follow never come (their callers gone),
                        // the batch still commits once this one has waited long enough.
                        flush_later(writer.clone(), batch.ended);
                    }
                    batch.released.push(tell);
                }
                Err(e) => {
                    let _ = tell.send(Err(e.to_string()));
                    close_abandoned(&mut batch).await;
                }
            }
            finish(batch, &writer).await;
        });
        match heard.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(StoreError::Database(why)),
            Err(_) => Err(StoreError::Database(
                "the batch ended without saying whether it committed".to_owned(),
            )),
        }
    }

    /// Rolls the unit back; the batch goes on without it.
    pub(crate) async fn rollback(mut self) -> Result<(), StoreError> {
        let batch = self.batch.take().expect("a unit ends once");
        end_abandoned(batch, self.writer.clone()).await;
        Ok(())
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        // Ended without commit or rollback (an early return, a dropped request): its savepoint
        // is rolled back apart, and the batch finished, as a rollback would. Without a runtime
        // (one shutting down) the next unit to begin closes it.
        if let Some(batch) = self.batch.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let writer = self.writer.clone();
            runtime.spawn(async move { end_abandoned(batch, writer).await });
        }
    }
}

async fn end_abandoned(mut batch: OwnedMutexGuard<Batch>, writer: Writer) {
    // Apart from the caller, which may be dropped while it waits.
    let ended = tokio::spawn(async move {
        if batch.unit_open {
            close_abandoned(&mut batch).await;
        }
        finish(batch, &writer).await;
    });
    let _ = ended.await;
}

/// Commits batch number `ended` once its first unit has waited [`MAX_WAIT`], if it is still
/// open then.
fn flush_later(writer: Writer, ended: u64) {
    tokio::spawn(async move {
        tokio::time::sleep(MAX_WAIT).await;
        let batch = Arc::clone(&writer.batch).lock_owned().await;
        if batch.ended == ended && batch.open {
            finish(batch, &writer).await;
        }
    });
}

/// Rolls back an open unit's savepoint. If that fails the connection's state is unknown: the
/// whole batch is rolled back and its units told so.
async fn close_abandoned(batch: &mut Batch) {
    let closed = match execute(batch, "ROLLBACK TO unit").await {
        Ok(()) => execute(batch, "RELEASE unit").await,
        // Dropped before its SAVEPOINT ran: there is nothing to close.
        Err(e) if e.to_string().contains("no such savepoint") => Ok(()),
        Err(e) => Err(e),
    };
    batch.unit_open = false;
    if let Err(e) = closed {
        let why = format!("a unit could not be rolled back alone, so its batch was: {e}");
        tracing::error!("{why}");
        let _ = execute(batch, "ROLLBACK").await;
        end_batch(batch, Err(why));
    }
}

/// After a unit: COMMITs the batch when nothing waits for the writer, or it is full or old
/// enough; otherwise leaves the transaction open for the next unit, which takes the writer as
/// `batch` is dropped.
async fn finish(mut batch: OwnedMutexGuard<Batch>, writer: &Writer) {
    if !batch.open {
        return;
    }
    let due = writer.queued.load(Ordering::SeqCst) == 0
        || batch.released.len() >= MAX_UNITS
        || batch
            .first_released
            .is_some_and(|t| t.elapsed() >= MAX_WAIT);
    if !due {
        return;
    }
    let outcome = if batch.released.is_empty() {
        // Every unit rolled back: there is nothing to keep. A BEGIN whose caller was dropped
        // before it ran left no transaction to roll back.
        match execute(&mut batch, "ROLLBACK").await {
            Err(e) if e.to_string().contains("no transaction is active") => Ok(()),
            other => other,
        }
    } else {
        let committed = execute(&mut batch, "COMMIT").await;
        if committed.is_err() {
            let _ = execute(&mut batch, "ROLLBACK").await;
        } else {
            writer.commits.fetch_add(1, Ordering::Relaxed);
        }
        committed
    };
    end_batch(&mut batch, outcome.map_err(|e| e.to_string()));
}

/// Tells every released unit how its batch ended, and gives the connection back to its pool
/// (migrations and closing the store need it).
fn end_batch(batch: &mut Batch, outcome: Outcome) {
    batch.open = false;
    batch.ended += 1;
    batch.first_released = None;
    for unit in batch.released.drain(..) {
        let _ = unit.send(outcome.clone());
    }
    batch.conn = None;
}

async fn execute(batch: &mut Batch, statement: &'static str) -> Result<(), StoreError> {
    let conn = batch
        .conn
        .as_mut()
        .ok_or_else(|| StoreError::Database("the SQLite writer has no connection".to_owned()))?;
    sqlx::query(statement).execute(&mut **conn).await?;
    Ok(())
}
