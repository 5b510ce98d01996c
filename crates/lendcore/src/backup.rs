//! `lendcore backup`, `restore` and `verify`. A SQLite database is copied while it serves
//! through SQLite's online backup API, in one step: the copy is the database as one read
//! transaction saw it, every committed unit of work whole and none half-written, and writers
//! carry on meanwhile (WAL). A restore writes a copy back through the same API, then verifies
//! it. PostgreSQL is backed up with its own tools (docs/OPERATIONS.md); `verify` checks either.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::config::Config;
use crate::serve;

/// How long a backup or restore waits for a lock another connection holds.
const BUSY_FOR: Duration = Duration::from_secs(30);

/// Copies the configured SQLite database to `out` (which must not exist yet).
pub fn backup(config: &Config, out: &Path) -> anyhow::Result<()> {
    let source = sqlite_file(config, "backup")?;
    anyhow::ensure!(
        source.exists(),
        "there is no database at {}",
        source.display()
    );
    anyhow::ensure!(
        !out.exists(),
        "{} exists already; a backup never overwrites one",
        out.display()
    );
    let started = Instant::now();
    let partial = partial_path(out);
    let _ = std::fs::remove_file(&partial);
    let copied = copy_to(&source, &partial).and_then(|pages| {
        check_copy(&partial)?;
        std::fs::File::open(&partial)?.sync_all()?;
        Ok(pages)
    });
    let pages = match copied {
        Ok(pages) => pages,
        Err(err) => {
            // A copy that failed is not left where it could be taken for a backup.
            let _ = std::fs::remove_file(&partial);
            return Err(err);
        }
    };
    std::fs::rename(&partial, out)
        .with_context(|| format!("moving the copy to {}", out.display()))?;
    sync_directory(out)?;
    let bytes = std::fs::metadata(out)?.len();
    println!(
        "backed up {} to {}: {pages} pages, {bytes} bytes, in {:.1} s; checked intact",
        source.display(),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Copies `source` into a new database at `partial`, as one self-contained file (no
/// write-ahead log beside it). The number of pages copied.
fn copy_to(source: &Path, partial: &Path) -> anyhow::Result<i32> {
    let from = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", source.display()))?;
    from.busy_timeout(BUSY_FOR)?;
    let mut to =
        Connection::open(partial).with_context(|| format!("creating {}", partial.display()))?;
    let pages = copy(&from, &mut to)?;
    let _: String = to.query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))?;
    Ok(pages)
}

/// Puts the backup `from` in place of the configured SQLite database (with the service
/// stopped), then verifies the result. An existing database is replaced only if `replace`.
/// `Ok(false)` when the restored database fails verification.
pub async fn restore(config: &Config, from: &Path, replace: bool) -> anyhow::Result<bool> {
    let target = sqlite_file(config, "restore")?;
    anyhow::ensure!(from.exists(), "there is no backup at {}", from.display());
    check_copy(from).with_context(|| format!("the backup {} is unusable", from.display()))?;
    if target.exists() && !replace {
        bail!(
            "{} exists; stop lendcore and pass --replace to put the backup in its place",
            target.display()
        );
    }
    {
        let backup = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut database =
            Connection::open(&target).with_context(|| format!("opening {}", target.display()))?;
        database.busy_timeout(BUSY_FOR)?;
        let pages = copy(&backup, &mut database)?;
        println!(
            "restored {} into {}: {pages} pages",
            from.display(),
            target.display()
        );
    }
    verify(config).await
}

/// Checks the configured database (either store) and prints what it found. `Ok(false)` when
/// anything is broken.
pub async fn verify(config: &Config) -> anyhow::Result<bool> {
    let store = serve::open_existing_store(config).await?;
    let report = lendcore_engine::integrity::verify(store.as_ref()).await;
    store.close().await;
    let report = report?;
    match &report.audit.broken {
        None => println!(
            "ok      audit_chain: {} record(s) chained, head {}:{}; {} entr(ies) not yet sealed",
            report.audit.records, report.audit.records, report.audit.head, report.audit.pending
        ),
        Some(broken) => println!(
            "BROKEN  audit_chain: after {} good record(s): {broken}",
            report.audit.records
        ),
    }
    for check in &report.checks {
        if check.broken_by.is_empty() {
            println!("ok      {}: {}", check.name, check.rule);
        } else {
            println!(
                "BROKEN  {}: {} — not so for {}",
                check.name,
                check.rule,
                check.broken_by.join(", ")
            );
        }
    }
    let sound = report.sound();
    println!(
        "{}",
        if sound {
            "the database is sound"
        } else {
            "THE DATABASE IS NOT SOUND: see docs/OPERATIONS.md"
        }
    );
    Ok(sound)
}

fn sqlite_file(config: &Config, what: &str) -> anyhow::Result<PathBuf> {
    lendcore_store::sqlite_file(config.database_url()).with_context(|| {
        format!(
            "{what} copies SQLite databases; back up PostgreSQL with its own tools (base backup \
             and WAL archiving, or pg_dump) as docs/OPERATIONS.md describes, then run \
             `lendcore verify`"
        )
    })
}

/// Copies every page of `from` into `to` in one step (one read transaction on `from`), waiting
/// while another connection holds a lock that stops it. The number of pages copied.
fn copy(from: &Connection, to: &mut Connection) -> anyhow::Result<i32> {
    let backup = Backup::new(from, to)?;
    let waiting_since = Instant::now();
    loop {
        match backup.step(-1)? {
            StepResult::Done => break,
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => {
                anyhow::ensure!(
                    waiting_since.elapsed() < BUSY_FOR,
                    "the database stayed locked for {} s",
                    BUSY_FOR.as_secs()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            // The enum is non-exhaustive; any other answer is not one this loop knows to wait on.
            other => bail!("the copy stopped: {other:?}"),
        }
    }
    Ok(backup.progress().pagecount)
}

/// A copy is usable if SQLite finds its structure intact and it is a lendcore database.
fn check_copy(path: &Path) -> anyhow::Result<()> {
    let copy = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let verdict: String = copy.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    anyhow::ensure!(verdict == "ok", "SQLite's integrity check says: {verdict}");
    let migrations: i64 = copy
        .query_row("SELECT COUNT(*) FROM _sqlx_migrations", [], |row| {
            row.get(0)
        })
        .context("it has no lendcore schema")?;
    anyhow::ensure!(migrations > 0, "it has no lendcore schema");
    Ok(())
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Makes the rename that put the copy in place durable.
fn sync_directory(file: &Path) -> anyhow::Result<()> {
    let directory = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(directory)?.sync_all()?;
    Ok(())
}
