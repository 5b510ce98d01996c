//! The SQLite and PostgreSQL migration sets describe one schema. Normalised — comments, case
//! and spacing aside, and the few ways the two databases must be written differently — they
//! are the same statements, file by file; a migration added or changed on one store only fails
//! here.

use std::collections::BTreeMap;
use std::path::Path;

/// PostgreSQL spellings that differ from SQLite's only because the databases do, each with
/// why, rewritten on the PostgreSQL side before the sets are compared.
const SAME_THING: &[(&str, &str, &str)] = &[
    (
        "bigint",
        "integer",
        "SQLite's INTEGER is 64 bits: PostgreSQL's BIGINT",
    ),
    (
        " collate \"c\"",
        "",
        "PostgreSQL compares these codes bytewise, as SQLite does by default",
    ),
];

/// Migrations that rewrite stored JSON, which each database does with its own functions: their
/// statements may differ, their number may not.
const DATA_MIGRATIONS: &[(&str, &str)] = &[
    (
        "0005_close_of_business.sql",
        "backfills closed_through from the loan's JSON",
    ),
    (
        "0007_line_timers.sql",
        "creates the timers of existing lines from their JSON",
    ),
    (
        "0008_drawdown_quotes.sql",
        "moves quotes out of the drawdowns' JSON",
    ),
];

/// Migrations for a database distributed by borrower (issue #16): on PostgreSQL they key tables
/// by borrower, which SQLite, one file on one machine, has no use for, and each database writes
/// its triggers its own way. Their tables must be the same; their other statements may differ.
const DISTRIBUTION_MIGRATIONS: &[(&str, &str)] = &[(
    "0035_borrower_routes.sql",
    "keys credit lines and drawdowns by borrower; routes ids from before through triggers",
)];

fn statements(sql: &str, store: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    let mut text = without_comments
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("( ", "(")
        .replace(" )", ")");
    if store == "postgres" {
        // A 32-bit INTEGER on PostgreSQL would pass for SQLite's 64-bit one below.
        assert!(
            !text.contains(" integer"),
            "PostgreSQL columns are BIGINT, never INTEGER: {text}"
        );
        for (theirs, ours, _why) in SAME_THING {
            text = text.replace(theirs, ours);
        }
    }
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn migrations(store: &str) -> BTreeMap<String, Vec<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(store);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                statements(&std::fs::read_to_string(&path).unwrap(), store),
            )
        })
        .collect()
}

#[test]
fn the_sqlite_and_postgresql_migrations_are_one_schema() {
    let sqlite = migrations("sqlite");
    let postgres = migrations("postgres");
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "the same migrations, by name, on both stores"
    );
    for (name, ours) in &sqlite {
        let theirs = &postgres[name];
        if DISTRIBUTION_MIGRATIONS
            .iter()
            .any(|(file, _why)| file == name)
        {
            let tables = |all: &[String]| -> Vec<String> {
                all.iter()
                    .filter(|s| s.starts_with("create table"))
                    .cloned()
                    .collect()
            };
            assert_eq!(tables(ours), tables(theirs), "{name}: the stores disagree");
            continue;
        }
        let data = DATA_MIGRATIONS.iter().any(|(file, _why)| file == name);
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{name}: the same number of statements"
        );
        for (a, b) in ours.iter().zip(theirs) {
            let schema_statement = !(a.starts_with("insert") || a.starts_with("update"));
            if !data || schema_statement {
                assert_eq!(a, b, "{name}: the stores disagree");
            }
        }
    }
}

#[test]
fn a_difference_is_caught() {
    let a = statements(
        "CREATE TABLE t (n BIGINT NOT NULL); -- a comment",
        "postgres",
    );
    let b = statements("create table t (\n  n INTEGER not null\n);", "sqlite");
    assert_eq!(a, b, "spelling, spacing and comments aside");
    let c = statements("CREATE TABLE t (n BIGINT);", "postgres");
    assert_ne!(a, c, "a dropped constraint is a difference");
}
