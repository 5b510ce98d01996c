//! Persistence behind one trait. A [`UnitOfWork`] is exactly one database transaction: a use case
//! begins one, reads and writes through the repositories it implements, and commits once.
//! Two stores implement [`Store`]: SQLite (embedded, one writer) and PostgreSQL (many processes).
//! They share the unit-of-work code, which branches on the backend only where SQL differs.

pub mod access;
mod alerts;
pub mod applications;
pub mod audit;
pub mod book;
pub mod borrowers;
mod cases;
mod challenges;
pub mod credit_lines;
pub mod decisions;
pub mod deliveries;
pub mod drawdowns;
mod error;
mod group_commit;
pub mod idempotency;
mod incidents;
mod integrity;
pub mod jobs;
pub mod ledger;
pub mod links;
pub mod maintenance;
mod migrations;
mod operations;
pub mod outbox;
mod pending;
mod postgres;
pub mod products;
mod routes;
mod sql;
mod sqlite;
mod time;
mod unit_of_work;

use std::sync::Arc;

use async_trait::async_trait;

pub use access::{
    AccessRepository, ChallengeKey, ChallengeStatus, PruneCutoffs, Pruned, SessionStage,
    SessionSubject, StoredApiKey, StoredChallenge, StoredOperator, StoredSecondFactor,
    StoredSession,
};
pub use alerts::{AlertRepository, SignalCount, StoredAlert, StoredAlertRule};
pub use applications::{ApplicationRepository, StoredDocument};
pub use audit::AuditRepository;
pub use book::BookRepository;
pub use borrowers::{BorrowerIndex, BorrowerRepository, StoredBorrower};
pub use cases::CaseRepository;
pub use challenges::{
    ChallengeDecision, ChallengeTallies, MAX_CHALLENGES, OutcomePair, PolicyChallengeRepository,
    SideFigures,
};
pub use credit_lines::CreditLineRepository;
pub use decisions::{
    DecisionRepository, PolicyRepository, RiskBorrower, RiskRecords, StoredDecision,
};
pub use deliveries::{
    AttemptOutcome, Delivery, DeliveryAttempt, DeliveryChannel, DeliveryRepository, DeliveryStatus,
};
pub use drawdowns::{DrawdownRepository, PayoutAttempt};
pub use error::StoreError;
pub use idempotency::{IdempotencyClaim, IdempotencyRepository};
pub use incidents::IncidentRepository;
pub use integrity::{DecisionDigest, IntegrityRepository};
pub use jobs::{Job, JobRepository, JobStatus, Lease, LeaseRequest, NewJob};
pub use ledger::LedgerRepository;
pub use links::{LinkRepository, StoredLink};
pub use maintenance::MaintenanceRepository;
pub use operations::{APPLICATION_STEPS, JobFigures, OperationsRepository, QueueFigures};
pub use outbox::{OutboxEvent, OutboxRepository};
pub use postgres::PgStore;
pub use products::ProductRepository;
pub use routes::RouteRepository;
pub use sqlite::SqliteStore;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Migrations a process of the previous build must not run beside: they re-key tables it
/// reads by their old keys (docs/OPERATIONS.md, "Upgrading"). `lendcore serve` does not apply
/// one to a database in use; `lendcore migrate` does, once the previous build is stopped.
pub const OFFLINE_MIGRATIONS: &[i64] = &[35];

/// What [`Store::migrate`] would do: the migrations the database has applied, and those of this
/// build it has not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationPlan {
    pub applied: usize,
    pub pending: Vec<i64>,
}

impl MigrationPlan {
    /// The first pending migration of [`OFFLINE_MIGRATIONS`] on a database already in use
    /// (one that applied migrations before): a fresh database takes them all at once.
    pub fn offline(&self) -> Option<i64> {
        if self.applied == 0 {
            return None;
        }
        self.pending
            .iter()
            .copied()
            .find(|v| OFFLINE_MIGRATIONS.contains(v))
    }
}

/// Migrations applied by one [`Store::migrate`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied_before: usize,
    pub applied_now: usize,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Write transactions committed so far through this store. On SQLite one COMMIT covers a
    /// batch of units of work (group commit); on PostgreSQL each unit commits on its own.
    fn commits(&self) -> u64;

    /// A read-write unit of work. On SQLite it holds the single writer until it ends, and its
    /// commit is shared with the units that ran beside it (`group_commit.rs`).
    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError>;

    /// A read-only unit of work: one consistent snapshot, never blocking writers.
    async fn begin_read(&self) -> Result<Box<dyn UnitOfWork>, StoreError>;

    /// A read-write unit of work on one borrower's rows: besides what [`Store::begin`] gives,
    /// that borrower's credit lines and drawdowns, every statement on them bound to the
    /// borrower (issue #16: on a database distributed by borrower, the unit runs on the one
    /// node that holds the borrower). A borrower's lines and drawdowns are read by id and
    /// written only this way.
    async fn begin_for(&self, borrower_id: &str) -> Result<Box<dyn BorrowerUnit>, StoreError>;

    /// [`Store::begin_read`] on one borrower's rows, as [`Store::begin_for`].
    async fn begin_read_for(&self, borrower_id: &str) -> Result<Box<dyn BorrowerUnit>, StoreError>;

    /// Applies the migrations this build carries that the database has not seen.
    async fn migrate(&self) -> Result<MigrationReport, StoreError>;

    /// What [`Store::migrate`] would apply, without applying it.
    async fn migration_plan(&self) -> Result<MigrationPlan, StoreError>;

    /// `Ok` when the database answers and its schema is exactly the one this build expects.
    async fn readiness(&self) -> Result<(), StoreError>;

    /// Closes every connection, waiting for those in use to be returned.
    async fn close(&self);
}

/// One database transaction with every repository on it. Dropping it without `commit` rolls
/// back, so a request that dies half-way leaves nothing behind.
#[async_trait]
pub trait UnitOfWork:
    ProductRepository
    + AccessRepository
    + AlertRepository
    + ApplicationRepository
    + AuditRepository
    + BorrowerRepository
    + CaseRepository
    + PolicyChallengeRepository
    + BookRepository
    + DecisionRepository
    + DeliveryRepository
    + IncidentRepository
    + LedgerRepository
    + LinkRepository
    + MaintenanceRepository
    + JobRepository
    + IdempotencyRepository
    + IntegrityRepository
    + OperationsRepository
    + OutboxRepository
    + PolicyRepository
    + RouteRepository
    + Send
{
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
    async fn rollback(self: Box<Self>) -> Result<(), StoreError>;
}

/// A [`UnitOfWork`] on one borrower's rows ([`Store::begin_for`]): the tables distributed by
/// borrower (docs/SCALING.md) are reached through it alone, and it reaches only the rows of
/// [`BorrowerUnit::borrower_id`]: a line or drawdown of anyone else is not found.
pub trait BorrowerUnit: UnitOfWork + CreditLineRepository + DrawdownRepository {
    fn borrower_id(&self) -> &str;
}

/// Pool hook: a connection that comes back still inside a transaction once its queued
/// rollback has run — its request was dropped at an unlucky moment (a client gone, a deadline
/// passed) — is closed, not reused: the next unit of work would otherwise nest inside the dead
/// one and never truly commit (on SQLite, it would fail to begin at all). A unit of work
/// dropped without commit is rolled back and its connection kept: reads end that way, and
/// closing their connections cost a reconnection each (`docs/PERFORMANCE.md`). Both stores'
/// pools use it.
pub(crate) fn only_idle_connections<C: sqlx::Connection>(
    conn: &mut C,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if !conn.is_in_transaction() {
            return Ok(true);
        }
        // A unit of work that ended without commit (a read, an early return, a dropped
        // request) had its rollback queued when it was dropped; SQLite runs it on the
        // connection's worker thread, so wait for it: a ping is queued behind it.
        conn.ping().await?;
        let idle = !conn.is_in_transaction();
        if !idle {
            tracing::warn!("a database connection came back inside a transaction; it is closed");
        }
        Ok(idle)
    })
}

/// The VALUES of a multi-row statement, `rows` rows of `columns`: `($1, $2, …), …` on
/// PostgreSQL, `(?, ?, …), …` on SQLite, where numbered parameters cost a lookup each that
/// grows with their count.
pub(crate) fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    placeholders_from(backend, 0, rows, columns)
}

/// [`placeholders`] for parameters that follow `before` others in the same statement.
pub(crate) fn placeholders_from(
    backend: Backend,
    before: usize,
    rows: usize,
    columns: usize,
) -> String {
    (0..rows)
        .map(|row| {
            let cells: Vec<String> = (1..=columns)
                .map(|col| match backend {
                    Backend::Sqlite => "?".to_owned(),
                    Backend::Postgres => format!("${}", before + row * columns + col),
                })
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The file a `sqlite:` URL names, as the store opens it; `None` for another database or an
/// in-memory one.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr;
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .ok()
        .map(|options| options.get_filename().to_path_buf())
}

/// Connects to the database a URL names: `sqlite://path` or `postgres://…`.
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url, options).await?))
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL {}: use sqlite://path or postgres://…",
            redact_url(url)
        )))
    }
}

/// Pool settings; defaults suit a 2-core machine.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// PostgreSQL connections, and SQLite reader connections (SQLite always has one writer).
    pub max_connections: u32,
    /// How long a caller waits for a connection before the store reports itself unavailable.
    pub acquire_timeout: std::time::Duration,
    /// Whether a SQLite file that does not exist is created. Commands that only read (an
    /// audit) say the database does not exist instead of creating an empty one.
    pub create_if_missing: bool,
    /// SQLite: how long a unit of work released into a batch waits for later ones before the
    /// batch commits (`group_commit.rs`).
    pub group_commit_wait: std::time::Duration,
    /// SQLite: the bytes the WAL may hold before it is started again from its beginning, and
    /// what its file is cut back to then, however steadily writes come.
    pub sqlite_wal_bound: u64,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: std::time::Duration::from_secs(10),
            create_if_missing: true,
            group_commit_wait: std::time::Duration::from_millis(5),
            sqlite_wal_bound: 64 * 1024 * 1024,
        }
    }
}

/// The URL with any password replaced, in the user info or in the query, fit for logs and
/// error messages.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((credentials, host)) => match credentials.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
                None => base.to_owned(),
            },
            None => base.to_owned(),
        },
        None => base.to_owned(),
    };
    let Some(query) = query else { return base };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact_url("postgres://app:s3cr:et@db:5432/lend"),
            "postgres://app:***@db:5432/lend"
        );
        assert_eq!(
            redact_url("postgres://app@db/lend"),
            "postgres://app@db/lend"
        );
        assert_eq!(redact_url("sqlite://data/lend.db"), "sqlite://data/lend.db");
        assert_eq!(
            redact_url("postgres://db/lend?user=app&password=s3cret&sslmode=require"),
            "postgres://db/lend?user=app&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://a:b@db/lend?sslpassword=k"),
            "postgres://a:***@db/lend?sslpassword=***"
        );
    }
}
