//! Group commit on SQLite (#15): units of work from many requests share one transaction. The
//! single writer connection runs them one after another, each in a savepoint of its own (a
//! unit that fails or is dropped rolls back only itself), and the transaction commits when no
//! unit is waiting for the writer, or when the batch reaches [`MAX_UNITS`] units or its first
//! unit has waited `max_wait` (5 ms by default; a timer armed when the batch begins sees to it
//! should the units meant to follow never come). A unit's `commit` answers only once that
//! COMMIT is durable (`synchronous=FULL` stays): a crash before it loses only units whose
//! callers heard nothing.
//! A unit reads what earlier units of its batch wrote, as it would once they committed.
//!
//! The COMMIT and the clean-up after a unit runs in a task of its own, so a caller dropped at
//! any point (a client gone) cannot leave the batch half-finished for the next unit. The batch
//! never trusts its own account of the transaction alone after a failure: SQLite rolls a whole
//! transaction back on its own after some errors (a full disk, an I/O error, no memory), which
//! shows as the failure of the unit's RELEASE or ROLLBACK TO (its savepoint went with it) or of
//! the COMMIT; the writer then asks SQLite whether the transaction is still open, a batch found
//! lost fails every unit released into it, and a connection left inside a transaction is closed
//! rather than used again.
//!
//! The writer runs its statements itself, on the calling task's thread, from prepared
//! statements it keeps (see [`Batch`] and `sql.rs`): the hand-off of each statement to sqlx's
//! worker thread and back had bounded it. BEGIN and COMMIT, which may wait, run on the blocking
//! pool.
//!
//! A unit that rolls back may have read what its batch-mates wrote (a refusal computed from
//! their holds, a replayed answer one of them stored): its `rollback` answers once their COMMIT
//! is durable and fails if it was not. Known limit (#15's note): a unit merely dropped (an
//! error returned early) cannot wait, so that error may come from a batch-mate's writes before
//! they are durable; should that COMMIT fail, it was given from writes that never landed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::sqlite::LockedSqliteHandle;
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use crate::StoreError;

/// Units one COMMIT covers at most.
const MAX_UNITS: usize = 256;

/// Statements the writer keeps prepared: every one its units run, with room to spare.
const STATEMENTS_KEPT: usize = 256;

/// How a unit's batch ended: committed, or the reason it did not.
type Outcome = Result<(), String>;

/// The writer of one SQLite database.
pub(crate) struct GroupCommit {
    pool: SqlitePool,
    writer: Writer,
    acquire_timeout: Duration,
}

/// The open transaction and the units in it.
///
/// The writer runs statements itself, on the calling task's thread (`sql.rs`): the connection's
/// SQLite handle is locked out of sqlx's worker thread and driven through rusqlite, whose
/// prepared statements the batch keeps. sqlx gets the handle back only for what still goes
/// through it. The fields are declared so that dropping a batch finalizes the kept statements
/// while the handle is locked, then unlocks it, then closes the connection (which sqlx can only
/// do once no statement of rusqlite's is left on it).
#[derive(Default)]
struct Batch {
    /// A BEGIN or COMMIT running on the blocking pool, with the rusqlite connection it took;
    /// kept here, not only by its caller, so that whoever uses the writer next waits for it
    /// even if that caller was dropped (statements stay in order, as on sqlx's worker).
    apart: Option<tokio::task::JoinHandle<Apart>>,
    /// rusqlite on the writer connection's handle, with its prepared statements.
    lite: Option<rusqlite::Connection>,
    /// The handle, locked out of sqlx's worker thread while the writer uses it itself.
    locked: Option<Locked>,
    /// The writer connection, taken from its pool once and kept (its prepared statements with
    /// it) until it is closed.
    conn: Option<SqliteConnection>,
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

/// The batch's lock, who waits for it, the COMMIT count and the wait bound.
#[derive(Clone)]
struct Writer {
    batch: Arc<Mutex<Batch>>,
    /// Units waiting for the writer: while any is, a finished unit leaves the COMMIT to them.
    queued: Arc<AtomicUsize>,
    commits: Arc<AtomicU64>,
    max_wait: Duration,
    /// Raised by the checkpointer when the WAL has outgrown its bound
    /// ([`GroupCommit::wal_too_long`]).
    wal_too_long: Arc<AtomicBool>,
}

impl GroupCommit {
    pub(crate) fn new(pool: SqlitePool, acquire_timeout: Duration, max_wait: Duration) -> Self {
        GroupCommit {
            pool,
            writer: Writer {
                batch: Arc::default(),
                queued: Arc::default(),
                commits: Arc::default(),
                max_wait,
                wal_too_long: Arc::default(),
            },
            acquire_timeout,
        }
    }

    /// Raised by the checkpointer when the WAL holds more than its bound. The checkpointer
    /// runs beside the writer, so while writes never pause it is always a batch or two behind,
    /// and SQLite starts the WAL again from its beginning only when a write transaction begins
    /// with every frame already in the database: under steady load the WAL would grow without
    /// end (gigabytes in a minute), each frame appended to fresh pages of the file. So the
    /// writer, before its next batch, checkpoints the frames the checkpointer has not yet
    /// copied (a batch or two's, the rest done beside it), and that batch starts the WAL again.
    pub(crate) fn wal_too_long(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.writer.wal_too_long)
    }

    /// COMMITs so far: each covers one batch of units.
    pub(crate) fn commits(&self) -> u64 {
        self.writer.commits.load(Ordering::Relaxed)
    }

    /// Closes the writer connection, once the unit holding the writer (if any) is done and
    /// the batch it leaves open has committed what was released into it.
    pub(crate) async fn close(&self) {
        let mut batch = Arc::clone(&self.writer.batch).lock_owned().await;
        if batch.unit_open {
            close_abandoned(&mut batch).await;
        }
        if batch.open {
            end_now(&mut batch, &self.writer).await;
        }
        close_writer(&mut batch).await;
    }

    /// Waits for the writer and opens a unit in the batch (beginning one if none is open).
    pub(crate) async fn begin(&self) -> Result<Unit, StoreError> {
        let queued = Queued::join(&self.writer.queued);
        let locked = tokio::time::timeout(
            self.acquire_timeout,
            Arc::clone(&self.writer.batch).lock_owned(),
        )
        .await;
        drop(queued);
        let batch = locked.map_err(|_| {
            StoreError::Unavailable(format!(
                "the SQLite writer stayed busy for {:?}",
                self.acquire_timeout
            ))
        })?;
        let mut unit = Unit {
            batch: Some(batch),
            writer: self.writer.clone(),
        };
        let batch = unit.batch();
        if batch.unit_open {
            close_abandoned(batch).await;
        }
        if batch.conn.is_none() {
            // Detached, the pool may open one more connection: migrations (at start, before
            // any unit) and the WAL checkpoints (`sqlite.rs`) use it, never a transaction of
            // their own beside the writer's.
            batch.conn = Some(self.pool.acquire().await?.detach());
        }
        if !batch.open && self.writer.wal_too_long.swap(false, Ordering::SeqCst) {
            // Between batches the writer has nothing under way, so all of the WAL can be
            // copied, unless a reader on an older snapshot holds frames back: then the
            // checkpointer asks again.
            if let Err(e) = apart(batch, |lite| {
                lite.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            })
            .await
            {
                tracing::warn!(
                    "the writer's WAL checkpoint failed; the checkpointer will ask again: {e}"
                );
            }
        }
        // Marked first: a caller dropped while BEGIN or SAVEPOINT runs leaves a transaction
        // and a savepoint that are open, for the next unit to close.
        batch.unit_open = true;
        if batch.open {
            execute(batch, "SAVEPOINT unit").await?;
        } else {
            // IMMEDIATE takes the write lock up front, so a unit that reads and then writes
            // cannot fail half-way when another process (a CLI run) holds the lock. Off this
            // thread: it may wait for that process (the busy timeout).
            batch.open = true;
            if let Err(e) = execute_apart(batch, "BEGIN IMMEDIATE; SAVEPOINT unit").await {
                batch.unit_open = false;
                end_batch(batch, Err(e.to_string())).await;
                return Err(e);
            }
            // Should every unit of the batch roll back, or the followers never come, the batch
            // still ends.
            flush_later(self.writer.clone(), batch.ended);
        }
        Ok(unit)
    }
}

/// What units of a batch SQLite rolled back on its own are told.
const LOST: &str = "SQLite rolled the batch's transaction back (a full disk, an I/O error): \
                    nothing of it was kept";

impl Unit {
    fn batch(&mut self) -> &mut Batch {
        self.batch
            .as_mut()
            .expect("a unit holds the writer until it ends")
    }

    /// The writer connection for a statement sqlx runs: its handle is given back to sqlx's
    /// worker thread first.
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        let batch = self.batch();
        // A unit begins only once BEGIN is back from the blocking pool (`lite` waits for it),
        // so nothing of rusqlite's runs on the handle as sqlx's worker gets it back.
        debug_assert!(batch.apart.is_none(), "statements still running apart");
        batch.locked = None;
        batch
            .conn
            .as_mut()
            .expect("a unit's batch holds the writer connection")
    }

    /// The writer connection for a statement the writer runs itself (`sql.rs`). Statements
    /// run on the task's thread without a pause of their own, so each one counts against the
    /// task's budget: a unit of many yields to the other tasks of its thread now and then.
    pub(crate) async fn lite(&mut self) -> Result<&rusqlite::Connection, StoreError> {
        tokio::task::consume_budget().await;
        lite(self.batch()).await
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
        heard_from_batch(heard).await
    }

    /// Rolls the unit back; the batch goes on without it. A unit that rolls back may have
    /// read what units released before it wrote (a refusal from a batch-mate's hold), so it
    /// answers once their COMMIT is durable, and fails if it was not.
    pub(crate) async fn rollback(mut self) -> Result<(), StoreError> {
        let batch = self.batch.take().expect("a unit ends once");
        let (tell, heard) = oneshot::channel();
        end_abandoned(batch, self.writer.clone(), Some(tell)).await;
        heard_from_batch(heard).await
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
            runtime.spawn(async move { end_abandoned(batch, writer, None).await });
        }
    }
}

/// A unit's answer from its batch. A batch that did not commit kept nothing of the unit, and
/// one that ended without saying is safe to retry too (a retried request with its idempotency
/// key replays what did commit): the caller is told to retry (503), not that lendcore failed.
async fn heard_from_batch(heard: oneshot::Receiver<Outcome>) -> Result<(), StoreError> {
    match heard.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(StoreError::Unavailable(format!(
            "the write did not commit, nothing of it was kept; retry: {why}"
        ))),
        Err(_) => Err(StoreError::Unavailable(
            "the batch ended without saying whether it committed; retry".to_owned(),
        )),
    }
}

/// Rolls back a unit that ended without committing, and finishes the batch. `watch`, if given,
/// hears how the writes the unit could read ended: at once if there were none, else with the
/// units released before it.
async fn end_abandoned(
    mut batch: OwnedMutexGuard<Batch>,
    writer: Writer,
    watch: Option<oneshot::Sender<Outcome>>,
) {
    // Apart from the caller, which may be dropped while it waits.
    let ended = tokio::spawn(async move {
        let before = batch.ended;
        if batch.unit_open {
            close_abandoned(&mut batch).await;
        }
        if let Some(watch) = watch {
            if batch.ended != before {
                // Its savepoint could not be closed, and the batch was ended with an error.
                let _ = watch.send(Err(
                    "the batch this unit read from was rolled back".to_owned()
                ));
            } else if batch.released.is_empty() {
                let _ = watch.send(Ok(()));
            } else {
                batch.released.push(watch);
            }
        }
        finish(batch, &writer).await;
    });
    let _ = ended.await;
}

/// Ends the batch that ended `ended` batches after the first, `max_wait` after it began, if it
/// is still open then and no unit has ended it: whoever waits for the writer, the units in it
/// have waited long enough.
fn flush_later(writer: Writer, ended: u64) {
    tokio::spawn(async move {
        tokio::time::sleep(writer.max_wait).await;
        let mut batch = Arc::clone(&writer.batch).lock_owned().await;
        if batch.ended == ended && batch.open {
            if batch.unit_open {
                close_abandoned(&mut batch).await;
            }
            end_now(&mut batch, &writer).await;
        }
    });
}

/// Rolls back an open unit's savepoint. If that fails, or SQLite has rolled the whole
/// transaction back on its own, the batch is ended and its released units told.
async fn close_abandoned(batch: &mut Batch) {
    let closed = match execute(batch, "ROLLBACK TO unit").await {
        Ok(()) => execute(batch, "RELEASE unit").await,
        Err(e) => Err(e),
    };
    batch.unit_open = false;
    if let Err(e) = closed {
        let why = match in_transaction(batch).await {
            Ok(false) => LOST.to_owned(),
            Ok(true) | Err(_) => {
                format!("a unit could not be rolled back alone, so its batch was: {e}")
            }
        };
        tracing::error!("{why}");
        end_batch(batch, Err(why)).await;
    }
}

/// After a unit: COMMITs the batch when nothing waits for the writer, or it is full, or its
/// first unit has waited long enough; otherwise leaves the transaction open for the next unit,
/// which takes the writer as `batch` is dropped.
async fn finish(mut batch: OwnedMutexGuard<Batch>, writer: &Writer) {
    if !batch.open {
        return;
    }
    let due = writer.queued.load(Ordering::SeqCst) == 0
        || batch.released.len() >= MAX_UNITS
        || batch
            .first_released
            .is_some_and(|t| t.elapsed() >= writer.max_wait);
    if due {
        end_now(&mut batch, writer).await;
    }
}

/// COMMITs what the batch holds (or rolls back an empty one), and tells its units.
async fn end_now(batch: &mut Batch, writer: &Writer) {
    if batch.released.is_empty() {
        // Every unit rolled back: there is nothing to keep.
        let rolled_back = execute_apart(batch, "ROLLBACK").await;
        end_batch(batch, rolled_back.map_err(|e| e.to_string())).await;
        return;
    }
    // Off this thread: the COMMIT waits for the disk.
    let outcome = match execute_apart(batch, "COMMIT").await {
        Ok(()) => {
            writer.commits.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            // Every unit of the batch is told to retry; operators hear why.
            tracing::error!(
                "a group COMMIT failed, {} unit(s) to retry: {e}",
                batch.released.len()
            );
            match in_transaction(batch).await {
                Ok(false) => Err(format!("{LOST} ({e})")),
                Ok(true) | Err(_) => Err(e.to_string()),
            }
        }
    };
    end_batch(batch, outcome).await;
}

/// Tells every released unit how its batch ended, and keeps the connection for the next batch,
/// or closes it if it is still inside a transaction (it would hand the next batch a
/// transaction nobody began).
async fn end_batch(batch: &mut Batch, outcome: Outcome) {
    batch.open = false;
    batch.ended += 1;
    batch.first_released = None;
    for unit in batch.released.drain(..) {
        let _ = unit.send(outcome.clone());
    }
    // A COMMIT that succeeded leaves none open; anything else is asked of SQLite.
    let clean = outcome.is_ok()
        || match in_transaction(batch).await {
            Ok(false) => true,
            Ok(true) => {
                execute_apart(batch, "ROLLBACK").await.is_ok()
                    && matches!(in_transaction(batch).await, Ok(false))
            }
            Err(_) => false,
        };
    if !clean {
        tracing::error!("the SQLite writer connection was left inside a transaction; it is closed");
        close_writer(batch).await;
    }
}

/// Whether SQLite itself has a transaction open on the writer, whatever the batch believes.
async fn in_transaction(batch: &mut Batch) -> Result<bool, StoreError> {
    Ok(!lite(batch).await?.is_autocommit())
}

/// Runs `statements` on the writer, on this thread.
async fn execute(batch: &mut Batch, statements: &'static str) -> Result<(), StoreError> {
    lite(batch).await?.execute_batch(statements)?;
    Ok(())
}

/// The rusqlite connection back from the blocking pool, and how its statements went.
type Apart = (rusqlite::Connection, rusqlite::Result<()>);

/// Runs `statements` on the writer, on a thread of the blocking pool: a BEGIN that may wait
/// for another process's lock, or a COMMIT that waits for the disk, holds no task thread.
async fn execute_apart(batch: &mut Batch, statements: &'static str) -> Result<(), StoreError> {
    apart(batch, move |lite| lite.execute_batch(statements)).await
}

/// Runs `work` on the writer, on a thread of the blocking pool.
async fn apart(
    batch: &mut Batch,
    work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()> + Send + 'static,
) -> Result<(), StoreError> {
    lite(batch).await?;
    let lite = batch.lite.take().expect("opened just now");
    batch.apart = Some(tokio::task::spawn_blocking(move || {
        let done = work(&lite);
        (lite, done)
    }));
    back_from_apart(batch).await
}

/// Waits for the statements running apart, if any, and takes the connection back.
async fn back_from_apart(batch: &mut Batch) -> Result<(), StoreError> {
    let Some(running) = batch.apart.as_mut() else {
        return Ok(());
    };
    let finished = running.await;
    batch.apart = None;
    match finished {
        Ok((lite, done)) => {
            batch.lite = Some(lite);
            Ok(done?)
        }
        // The connection went with the thread's task; the next use opens another on the handle.
        Err(e) => Err(StoreError::Database(format!(
            "the SQLite writer's thread failed: {e}"
        ))),
    }
}

/// sqlx's lock on the writer connection's handle, kept across units and batches.
struct Locked(LockedSqliteHandle<'static>);

impl Locked {
    /// Locks the handle out of sqlx's worker thread, once the worker has done what it was sent.
    async fn take(conn: &mut SqliteConnection) -> Result<Locked, StoreError> {
        let handle = conn.lock_handle().await?;
        // SAFETY: the guard borrows the connection only to reach the lock inside the state it
        // shares with its worker thread, a heap allocation that lives as long as the
        // connection. A batch drops its `Locked` before it uses the connection through sqlx
        // (`Unit::conn`), closes it (`close_writer`) or drops it (the order of `Batch`'s
        // fields), so the borrow never outlives what it borrows nor overlaps another.
        let handle = unsafe {
            std::mem::transmute::<LockedSqliteHandle<'_>, LockedSqliteHandle<'static>>(handle)
        };
        Ok(Locked(handle))
    }
}

/// rusqlite on the writer connection's handle, locking it first if sqlx's worker has it.
async fn lite(batch: &mut Batch) -> Result<&rusqlite::Connection, StoreError> {
    // What a caller dropped meanwhile left running comes first; its outcome was that caller's.
    if batch.apart.is_some() {
        let _ = back_from_apart(batch).await;
    }
    if batch.locked.is_none() {
        let conn = batch.conn.as_mut().ok_or_else(|| {
            StoreError::Database("the SQLite writer has no connection".to_owned())
        })?;
        batch.locked = Some(Locked::take(conn).await?);
    }
    if batch.lite.is_none() {
        let locked = batch.locked.as_mut().expect("locked above");
        let handle = locked.0.as_raw_handle();
        // SAFETY: sqlx's open handle, locked for us. rusqlite does not own it (it never closes
        // it), and the batch drops this Connection, finalizing its statements, before the
        // connection is closed, while the handle is locked.
        let lite = unsafe { rusqlite::Connection::from_handle(handle.as_ptr()) }?;
        lite.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
        batch.lite = Some(lite);
    }
    Ok(batch.lite.as_ref().expect("opened above"))
}

/// Closes the writer connection: the kept statements finalized while its handle is locked,
/// the handle given back, the connection closed. The next unit takes another from the pool.
async fn close_writer(batch: &mut Batch) {
    let _ = back_from_apart(batch).await;
    if batch.lite.is_some()
        && batch.locked.is_none()
        && let Some(conn) = batch.conn.as_mut()
    {
        batch.locked = Locked::take(conn).await.ok();
    }
    batch.lite = None;
    batch.locked = None;
    if let Some(conn) = batch.conn.take() {
        let _ = conn.close().await;
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // A store dropped without closing: the kept statements must still be finalized while
        // the handle is locked, before the fields drop and the connection closes.
        if let Some(running) = self.apart.take()
            && let Ok((lite, _)) = futures::executor::block_on(running)
        {
            self.lite = Some(lite);
        }
        if self.lite.is_some()
            && self.locked.is_none()
            && let Some(conn) = self.conn.as_mut()
        {
            self.locked = futures::executor::block_on(Locked::take(conn)).ok();
        }
        self.lite = None;
        self.locked = None;
    }
}

#[cfg(test)]
mod tests {
    //! The batch's edges, on a bare writer where a test controls who waits: a statement that
    //! fails, a COMMIT that fails, a full disk, the unit bound.

    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    use super::*;

    /// A writer whose batches end only when nothing waits or they are full, and its directory.
    async fn writer() -> (Arc<GroupCommit>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.sqlite3").display());
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                SqliteConnectOptions::from_str(&url)
                    .unwrap()
                    .create_if_missing(true)
                    .foreign_keys(true)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE t (x INTEGER PRIMARY KEY, body BLOB);
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .execute(&pool)
        .await
        .unwrap();
        let writer = GroupCommit::new(pool, Duration::from_secs(30), Duration::from_secs(30));
        (Arc::new(writer), dir)
    }

    /// A unit that has run `sql` and holds the writer.
    async fn holding(writer: &GroupCommit, sql: &str) -> Unit {
        let mut unit = writer.begin().await.unwrap();
        run(&mut unit, sql).await.unwrap();
        unit
    }

    type Boxed<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

    // Boxed as Send futures, as the store's are: spawned, the bare futures trip the compiler's
    // higher-ranked lifetime checks.
    fn run<'a>(unit: &'a mut Unit, sql: &'a str) -> Boxed<'a, Result<(), sqlx::Error>> {
        Box::pin(async move { sqlx::Executor::execute(unit.conn(), sql).await.map(drop) })
    }

    fn begin(writer: &GroupCommit) -> Boxed<'_, Result<Unit, StoreError>> {
        Box::pin(writer.begin())
    }

    async fn rows(writer: &GroupCommit) -> Vec<i64> {
        sqlx::query_scalar("SELECT x FROM t ORDER BY x")
            .fetch_all(&writer.pool)
            .await
            .unwrap()
    }

    /// Until `n` callers wait for the writer.
    async fn queued(writer: &GroupCommit, n: usize) {
        while writer.writer.queued.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
    }

    /// Units queued behind a held one, each running `sql` and committing if it succeeded;
    /// answers whether each committed, the held one first.
    async fn behind(
        writer: &Arc<GroupCommit>,
        held: Unit,
        sqls: Vec<String>,
    ) -> Vec<Result<(), String>> {
        let mut tasks = Vec::new();
        for (i, sql) in sqls.into_iter().enumerate() {
            let unit_writer = Arc::clone(writer);
            tasks.push(tokio::spawn(async move {
                let mut unit = begin(&unit_writer).await.map_err(|e| e.to_string())?;
                match run(&mut unit, &sql).await {
                    Ok(()) => unit.commit().await.map_err(|e| e.to_string()),
                    Err(e) => {
                        // Fails too if the batch is lost: the statement's error is the news.
                        let _ = unit.rollback().await;
                        Err(e.to_string())
                    }
                }
            }));
            queued(writer, i + 1).await;
        }
        let mut outcomes = vec![held.commit().await.map_err(|e| e.to_string())];
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_statement_that_fails_undoes_only_its_own_unit() {
        let (writer, _dir) = writer().await;
        let first = holding(&writer, "INSERT INTO t (x) VALUES (1)").await;
        // The second unit's second statement fails on the first unit's row: its first
        // statement is undone with it, and nothing else is.
        let outcomes = behind(
            &writer,
            first,
            vec![
                "INSERT INTO t (x) VALUES (2)".to_owned(),
                "INSERT INTO t (x) VALUES (3); INSERT INTO t (x) VALUES (1)".to_owned(),
                "INSERT INTO t (x) VALUES (4)".to_owned(),
            ],
        )
        .await;
        let committed: Vec<bool> = outcomes.iter().map(Result::is_ok).collect();
        assert_eq!(committed, [true, true, false, true], "{outcomes:?}");
        assert_eq!(rows(&writer).await, [1, 2, 4]);
        assert_eq!(writer.commits(), 1, "one COMMIT for the four");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_that_fails_fails_every_unit_of_its_batch() {
        let (writer, _dir) = writer().await;
        let first = holding(&writer, "INSERT INTO t (x) VALUES (1)").await;
        // A deferred foreign key is checked only at COMMIT: the batch's COMMIT fails.
        let outcomes = behind(
            &writer,
            first,
            vec![
                "INSERT INTO child (p) VALUES (99)".to_owned(),
                "INSERT INTO t (x) VALUES (2)".to_owned(),
            ],
        )
        .await;
        assert!(outcomes.iter().all(Result::is_err), "{outcomes:?}");
        assert!(
            rows(&writer).await.is_empty(),
            "nothing of the batch was kept"
        );
        assert_eq!(writer.commits(), 0);
        let mut next = writer.begin().await.unwrap();
        run(&mut next, "INSERT INTO t (x) VALUES (3)")
            .await
            .unwrap();
        next.commit().await.unwrap();
        assert_eq!(
            rows(&writer).await,
            [3],
            "the writer goes on after a failed COMMIT"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_unit_rolled_back_answers_only_once_what_it_read_is_durable() {
        let (writer, _dir) = writer().await;
        for fails in [false, true] {
            let mut first = writer.begin().await.unwrap();
            run(
                &mut first,
                "INSERT INTO t (x) VALUES (1) ON CONFLICT DO NOTHING",
            )
            .await
            .unwrap();
            if fails {
                run(&mut first, "INSERT INTO child (p) VALUES (99)")
                    .await
                    .unwrap();
            }
            let reader = tokio::spawn({
                let writer = Arc::clone(&writer);
                async move {
                    let mut unit = begin(&writer).await.unwrap();
                    run(&mut unit, "SELECT x FROM t").await.unwrap();
                    unit.rollback().await
                }
            });
            queued(&writer, 1).await;
            assert_eq!(first.commit().await.is_ok(), !fails);
            let read = reader.await.unwrap();
            assert_eq!(read.is_ok(), !fails, "{read:?}");
            if fails {
                // Nothing was kept: the caller is told to retry (503), not that lendcore broke.
                assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_never_answers_a_unit_whose_writes_were_lost() {
        let (writer, _dir) = writer().await;
        let mut first = holding(&writer, "INSERT INTO t (x) VALUES (1)").await;
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(first.conn())
            .await
            .unwrap();
        // The database may not grow: the second unit's large row fills it. SQLite then rolls
        // back the statement or the whole transaction, as it sees fit; either way no unit may
        // hear it committed unless its row is there.
        run(
            &mut first,
            &format!("PRAGMA max_page_count = {}", pages + 2),
        )
        .await
        .unwrap();
        let outcomes = behind(
            &writer,
            first,
            vec![
                "INSERT INTO t (x, body) VALUES (2, zeroblob(1000000))".to_owned(),
                "INSERT INTO t (x) VALUES (3)".to_owned(),
            ],
        )
        .await;
        assert!(outcomes[1].is_err(), "{outcomes:?}");
        let kept = rows(&writer).await;
        for (x, outcome) in [(1, &outcomes[0]), (3, &outcomes[2])] {
            assert_eq!(outcome.is_ok(), kept.contains(&x), "{outcomes:?} {kept:?}");
        }
        assert!(!kept.contains(&2));
        let mut next = writer.begin().await.unwrap();
        run(
            &mut next,
            "PRAGMA max_page_count = 1000000; INSERT INTO t (x) VALUES (4)",
        )
        .await
        .unwrap();
        next.commit().await.unwrap();
        assert!(rows(&writer).await.contains(&4), "the writer goes on");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_holds_at_most_its_bound_of_units() {
        let (writer, _dir) = writer().await;
        let first = writer.begin().await.unwrap();
        let sqls = (1..=300)
            .map(|x| format!("INSERT INTO t (x) VALUES ({x})"))
            .collect();
        let outcomes = behind(&writer, first, sqls).await;
        assert!(outcomes.iter().all(Result::is_ok));
        assert_eq!(rows(&writer).await.len(), 300);
        // 301 units, every one waiting: a full batch of 256, then the rest.
        assert_eq!(writer.commits(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_commits_what_the_open_batch_holds() {
        let (writer, _dir) = writer().await;
        let held = holding(&writer, "INSERT INTO t (x) VALUES (1)").await;
        // A caller counted as waiting as the unit commits leaves the batch open for them (its
        // timer is 30 s away); they never take the writer.
        writer.writer.queued.fetch_add(1, Ordering::SeqCst);
        let committed = tokio::spawn(held.commit());
        while writer.writer.batch.lock().await.released.is_empty() {
            tokio::task::yield_now().await;
        }
        writer.writer.queued.fetch_sub(1, Ordering::SeqCst);
        assert!(
            !committed.is_finished(),
            "released into the open batch, not committed"
        );
        writer.close().await;
        let answer = tokio::time::timeout(Duration::from_secs(5), committed)
            .await
            .expect("answered at close, not by the batch's timer");
        answer.unwrap().unwrap();
        assert_eq!(rows(&writer).await, [1]);
        assert_eq!(writer.commits(), 1);
    }
}
