//! The same run's reference for `lendcore loadtest drawdowns --report` on SQLite (#15): what
//! this machine does for a drawdown confirmation's writes alone, with nothing of lendcore
//! around them. The units are `bench/sqlite/unit.sql` on the tables of `bench/sqlite/schema.sql`
//! (shaped as lendcore's), run by one writer on one thread from cached prepared statements, a
//! savepoint each, in WAL mode with `synchronous=FULL` as lendcore runs: once group-committed,
//! once with a COMMIT each. Figures beside it are read as ratios, which a busy machine moves
//! far less than either figure.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use rand::{Rng, SeedableRng};

const SCHEMA: &str = include_str!("../../../bench/sqlite/schema.sql");
const UNIT: &str = include_str!("../../../bench/sqlite/unit.sql");
/// Units per COMMIT when group-committed: the middle of what a busy batch holds.
pub const PER_COMMIT: usize = 200;

pub struct SqliteReference {
    /// Units a second, [`PER_COMMIT`] to a COMMIT.
    pub grouped: f64,
    /// Units a second, a COMMIT each.
    pub single: f64,
}

/// Runs `units` group-committed and a tenth of them (at least 500) committed one by one, in
/// database files of their own under `dir`, removed afterwards.
pub fn sqlite(dir: &Path, units: usize) -> anyhow::Result<SqliteReference> {
    Ok(SqliteReference {
        grouped: run(dir, "grouped", units, PER_COMMIT)?,
        single: run(dir, "single", (units / 10).max(500), 1)?,
    })
}

/// The statements of one unit, in order.
fn statements() -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in UNIT.lines().filter(|l| !l.starts_with("--")) {
        if line.trim() == ";" {
            statements.push(std::mem::take(&mut current));
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    statements
}

fn run(dir: &Path, name: &str, units: usize, per_commit: usize) -> anyhow::Result<f64> {
    let path = dir.join(format!("reference-{name}.sqlite3"));
    let result = run_on(&path, units, per_commit);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    result.with_context(|| format!("the SQLite reference in {}", path.display()))
}

fn run_on(path: &Path, units: usize, per_commit: usize) -> anyhow::Result<f64> {
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // The page cache lendcore gives its connections (store/src/sqlite.rs).
    conn.pragma_update(None, "cache_size", -32768)?;
    conn.execute_batch(SCHEMA)?;
    let statements = statements();
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let started = Instant::now();
    let mut done = 0;
    while done < units {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for _ in 0..per_commit.min(units - done) {
            conn.execute_batch("SAVEPOINT unit")?;
            // Each line once, in order, as the load test confirms them.
            let line = i64::try_from(done + 1)?;
            let amount: i64 = rng.random_range(100..=100_000);
            let key = format!("unit-{done}");
            for sql in &statements {
                let mut statement = conn.prepare_cached(sql)?;
                if let Some(i) = statement.parameter_index(":key")? {
                    statement.raw_bind_parameter(i, &key)?;
                }
                if let Some(i) = statement.parameter_index(":line")? {
                    statement.raw_bind_parameter(i, line)?;
                }
                if let Some(i) = statement.parameter_index(":amount")? {
                    statement.raw_bind_parameter(i, amount)?;
                }
                statement.raw_execute()?;
            }
            conn.execute_batch("RELEASE unit")?;
            done += 1;
        }
        conn.execute_batch("COMMIT")?;
    }
    Ok(units as f64 / started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reference_units_run_and_write_what_a_confirmation_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite3");
        assert!(super::run_on(&path, 30, 7).unwrap() > 0.0);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let count = |table: &str| -> i64 {
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(super::statements().len(), 10);
        for table in [
            "bench_idempotency",
            "bench_transitions",
            "bench_entries",
            "bench_jobs",
            "bench_outbox",
            "bench_audit_pending",
        ] {
            assert_eq!(count(table), 30, "{table}");
        }
        assert_eq!(count("bench_postings"), 60);
        let held: i64 = conn
            .query_row("SELECT sum(held_minor) FROM bench_lines", [], |r| r.get(0))
            .unwrap();
        let posted: i64 = conn
            .query_row(
                "SELECT sum(amount_minor) FROM bench_postings WHERE n = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(held, posted, "every unit held what it posted");
    }
}
