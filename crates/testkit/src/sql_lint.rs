//! Issue #16's lint over the SQL the store runs: every statement a PostgreSQL test sends
//! through sqlx is read as PostgreSQL parses it, and one on a borrower's table must name the
//! borrower (docs/SCALING.md): a SELECT, UPDATE or DELETE filters on `borrower_id`, an INSERT
//! writes it. Statements are seen as they run, so those the store composes at run time are
//! read as sent: the test stores' PostgreSQL connections log each statement at TRACE (sqlx's
//! statement log; SQLite's stay at DEBUG, and the tests' own raw SQL is not logged), and a
//! tracing layer this module installs reads them.
//!
//! Tables are keyed one at a time: only those listed in [`KEYED`] are checked, each joins the
//! list once every statement on it names the borrower, and a PostgreSQL test that ran a
//! statement breaking the rule on one of them fails at its cleanup.
//! `LENDCORE_SQL_LINT=all` checks every borrower table and only reports (`sql_lint:` lines on
//! stderr): the survey of what is left to key.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use sqlparser::ast::{BinaryOperator, Expr, Statement, visit_expressions, visit_relations};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The tables distributed by borrower (docs/SCALING.md, "Tables by kind").
pub const BORROWER_TABLES: &[&str] = &[
    "borrowers",
    "applications",
    "application_documents",
    "borrower_changes",
    "bureau_reports",
    "credit_decisions",
    "challenge_decisions",
    "credit_lines",
    "credit_line_events",
    "drawdowns",
    "drawdown_quotes",
    "drawdown_transitions",
    "payout_attempts",
    "ledger_entries",
    "ledger_postings",
    "idempotency_keys",
    "jobs",
    "outbox",
    "deliveries",
    "delivery_attempts",
    "audit_log",
    "audit_pending",
    "links",
    "sessions",
    "support_cases",
    "support_case_messages",
    "incident_notices",
];

/// The borrower tables the lint checks: those whose statements all name the borrower (#16,
/// under way). The list only grows, table by table, until it holds every borrower table. The
/// survey of 2026-12-06 found 167 statements to key, on every table but these.
pub const KEYED: &[&str] = &[
    "borrower_changes",
    "bureau_reports",
    "support_case_messages",
];

/// Why `sql` breaks the rule, one line per reason; empty when it keeps it. Statements that are
/// not one of SELECT, INSERT, UPDATE or DELETE (BEGIN, COMMIT, DDL, SET) are not checked.
pub fn violations(sql: &str) -> Vec<String> {
    violations_among(sql, |table| {
        BORROWER_TABLES.contains(&table) && (surveying() || KEYED.contains(&table))
    })
}

/// Whether `LENDCORE_SQL_LINT=all` asks for the survey.
fn surveying() -> bool {
    static ALL: OnceLock<bool> = OnceLock::new();
    *ALL.get_or_init(|| std::env::var("LENDCORE_SQL_LINT").is_ok_and(|v| v == "all"))
}

/// [`violations`], checking the tables `checked` answers for.
fn violations_among(sql: &str, checked: impl Fn(&str) -> bool) -> Vec<String> {
    let statements = match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(statements) => statements,
        Err(e) => return vec![format!("does not parse as PostgreSQL: {e}")],
    };
    let mut found = Vec::new();
    for statement in &statements {
        if !matches!(
            statement,
            Statement::Query(_)
                | Statement::Insert(_)
                | Statement::Update { .. }
                | Statement::Delete(_)
        ) {
            continue;
        }
        let mut tables = Vec::new();
        let _ = visit_relations(statement, |relation| {
            let name = relation.to_string();
            let bare = name.rsplit('.').next().unwrap_or(&name).to_owned();
            if checked(&bare) && !tables.contains(&bare) {
                tables.push(bare);
            }
            ControlFlow::<()>::Continue(())
        });
        if tables.is_empty() {
            continue;
        }
        if !names_borrower(statement) {
            found.push(format!(
                "touches {} without naming the borrower (no `borrower_id = …` filter, no \
                 `borrower_id` written)",
                tables.join(", ")
            ));
        }
    }
    found
}

/// A `borrower_id = …` (or `IN (…)`, `= ANY (…)`) anywhere in the statement's predicates, or
/// an INSERT that writes the column.
fn names_borrower(statement: &Statement) -> bool {
    if let Statement::Insert(insert) = statement
        && insert
            .columns
            .iter()
            .any(|c| c.to_string() == "borrower_id")
    {
        return true;
    }
    visit_expressions(statement, |expr| match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } if is_borrower_column(left) || is_borrower_column(right) => ControlFlow::Break(()),
        Expr::InList { expr, negated, .. } if !negated && is_borrower_column(expr) => {
            ControlFlow::Break(())
        }
        Expr::AnyOp { left, .. } if is_borrower_column(left) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn is_borrower_column(expr: &Expr) -> bool {
    match expr {
        Expr::Identifier(id) => id.value == "borrower_id",
        Expr::CompoundIdentifier(parts) => parts.last().is_some_and(|id| id.value == "borrower_id"),
        Expr::Nested(inner) => is_borrower_column(inner),
        _ => false,
    }
}

/// Statements found breaking the rule in this process, with why.
static BROKEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Watches what sqlx sends (its statement log) from now on in this process, and counts the
/// store's warnings ([`store_warnings`]). Once per process: a test binary must not install a
/// subscriber of its own (the one it would replace is this).
pub fn watch() {
    static WATCHING: OnceLock<()> = OnceLock::new();
    WATCHING.get_or_init(|| {
        let subscriber = tracing_subscriber::registry()
            .with(
                Watcher::default()
                    .with_filter(Targets::new().with_target("sqlx::query", tracing::Level::TRACE)),
            )
            .with(
                CountWarnings.with_filter(
                    Targets::new().with_target("lendcore_store", tracing::Level::WARN),
                ),
            );
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            eprintln!(
                "sql_lint: this test binary has a tracing subscriber of its own; its statements \
                 are not linted (#16)"
            );
        }
    });
}

/// Warnings the store logged in this process since [`watch`] was first called.
pub fn store_warnings() -> usize {
    WARNINGS.load(Ordering::SeqCst)
}

static WARNINGS: AtomicUsize = AtomicUsize::new(0);

struct CountWarnings;

impl<S: tracing::Subscriber> Layer<S> for CountWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::WARN {
            WARNINGS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Fails with every statement this process ran that broke the rule so far.
pub fn assert_clean() {
    let broken = BROKEN.lock().unwrap_or_else(|e| e.into_inner());
    if surveying() {
        return;
    }
    assert!(
        broken.is_empty(),
        "statements on borrower tables that do not name the borrower (issue #16, \
         testkit/src/sql_lint.rs):\n{}",
        broken.join("\n")
    );
}

#[derive(Default)]
struct Watcher {
    /// Statement texts already read, so each is parsed once per process.
    seen: Mutex<HashSet<String>>,
}

impl<S: tracing::Subscriber> Layer<S> for Watcher {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        // The test stores' PostgreSQL statements; SQLite's come at DEBUG.
        if *event.metadata().level() != tracing::Level::TRACE {
            return;
        }
        let mut fields = Logged::default();
        event.record(&mut fields);
        // sqlx gives a short statement whole in its summary, and a long one in `db.statement`.
        let sql = if fields.statement.is_empty() {
            fields.summary
        } else {
            fields.statement
        };
        if sql.is_empty() || migration(&sql) {
            return;
        }
        let fresh = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sql.clone());
        if !fresh {
            return;
        }
        for why in violations(&sql) {
            let line = format!(
                "  {why}:\n    {}",
                sql.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            eprintln!("sql_lint:{line}");
            BROKEN.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    }
}

/// The fields of sqlx's statement log that carry the statement.
#[derive(Default)]
struct Logged {
    summary: String,
    statement: String,
}

impl Visit for Logged {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.statement = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .map(|t| t.replace("\\n", "\n").replace("\\\"", "\""))
            .unwrap_or(text);
        self.record_str(field, &text);
    }
}

/// Whether `sql` is one of the PostgreSQL migrations, run whole by the migrator: they are
/// checked as files, not as statements.
fn migration(sql: &str) -> bool {
    static FILES: OnceLock<HashSet<String>> = OnceLock::new();
    FILES
        .get_or_init(|| {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../store/migrations/postgres");
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                        .map(|text| text.trim().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        })
        .contains(sql.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_reads_filters_inserts_and_joins() {
        // Checked as if every borrower table were keyed: the rule itself, whatever the list.
        let broken = |sql: &str| !violations_for_all(sql).is_empty();
        assert!(!broken(
            "SELECT body FROM drawdowns WHERE borrower_id = $1 AND id = $2"
        ));
        assert!(broken("SELECT body FROM drawdowns WHERE id = $1"));
        assert!(!broken(
            "INSERT INTO jobs (id, borrower_id, kind) VALUES ($1, $2, $3)"
        ));
        assert!(broken("INSERT INTO jobs (id, kind) VALUES ($1, $2)"));
        assert!(!broken(
            "UPDATE credit_lines SET held_minor = held_minor + $1 WHERE borrower_id = $2 AND id = $3"
        ));
        assert!(broken("DELETE FROM audit_pending WHERE id IN ($1, $2)"));
        assert!(!broken(
            "SELECT d.body FROM drawdowns d JOIN drawdown_quotes q ON q.borrower_id = d.borrower_id \
             AND q.drawdown_id = d.id WHERE d.borrower_id = $1"
        ));
        assert!(
            !broken("SELECT id FROM products WHERE code = $1"),
            "not a borrower table"
        );
        assert!(!broken("BEGIN"), "not a statement the rule reads");
    }

    #[test]
    fn only_borrower_tables_are_keyed() {
        for table in KEYED {
            assert!(
                BORROWER_TABLES.contains(table),
                "{table} is no borrower table"
            );
        }
    }

    /// [`violations`] with no table left unkeyed.
    fn violations_for_all(sql: &str) -> Vec<String> {
        violations_among(sql, |table| BORROWER_TABLES.contains(&table))
    }
}
