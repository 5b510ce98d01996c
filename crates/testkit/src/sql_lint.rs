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

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use sqlparser::ast::{
    BinaryOperator, Expr, FromTable, JoinConstraint, JoinOperator, Query, SetExpr, Statement,
    TableFactor, TableWithJoins, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use tracing::field::{Field, Visit as RecordFields};
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
/// under way). The list only grows, table by table, until it holds every borrower table.
pub const KEYED: &[&str] = &[
    "borrower_changes",
    "bureau_reports",
    "credit_lines",
    "credit_line_events",
    "drawdowns",
    "drawdown_quotes",
    "drawdown_transitions",
    "payout_attempts",
    "support_case_messages",
];

/// The deliberate reads across borrowers, each marked in its SQL by a comment
/// `/* across borrowers: <name> */` naming one of these, with why it exists. Such a read may
/// not lock or write; every other statement names its borrower. On a distributed database
/// each runs on every node at once (docs/SCALING.md, "What stays cross-node").
pub const ACROSS_BORROWERS: &[(&str, &str)] = &[
    (
        "open lines",
        "the daily review of credit lines walks every open line, a page at a time \
         (engine/src/decisions/review.rs); each line is then reviewed in its borrower's unit",
    ),
    (
        "drawdowns by state",
        "the sweeps that find payouts left in flight, and the count of loans close of \
         business reports; each drawdown found is taken up in its borrower's unit",
    ),
    (
        "loans to close",
        "close of business walks the active book in batches (engine/src/cob.rs)",
    ),
    (
        "book check",
        "the daily integrity check of every line against its drawdowns and its ledger",
    ),
    (
        "borrowers paying out",
        "an incident on a channel tells every borrower with a payout in flight on it",
    ),
    (
        "borrowers by drawdown state",
        "a maintenance window's notice goes to every borrower with a payout it delays",
    ),
    (
        "queues",
        "the operators' queues on /metrics: how many wait, and the oldest",
    ),
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
    let across = across_borrowers(sql);
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
        let mut reading = Reading {
            checked: &checked,
            occurrences: Vec::new(),
            unwritten: Vec::new(),
            writes: false,
            locks: false,
            anchored: Anchored::default(),
        };
        let _ = statement.visit(&mut reading);
        if reading.occurrences.is_empty() && reading.unwritten.is_empty() {
            continue;
        }
        if let Some(name) = across {
            if !ACROSS_BORROWERS.iter().any(|(known, _)| *known == name) {
                found.push(format!(
                    "is marked `across borrowers: {name}`, which ACROSS_BORROWERS does not list"
                ));
            } else if reading.writes || reading.locks {
                found.push(format!(
                    "reads across borrowers (`{name}`) yet writes or locks: only a plain read may"
                ));
            }
            continue;
        }
        for table in &reading.unwritten {
            found.push(format!("inserts into {table} without writing borrower_id"));
        }
        let anchored = &reading.anchored;
        let loose: Vec<String> = reading
            .occurrences
            .iter()
            .filter(|o| !anchored.reaches(o))
            .map(Occurrence::describe)
            .collect();
        if !loose.is_empty() {
            found.push(format!(
                "reaches {} without naming the borrower (no `borrower_id = …` filter on it, nor \
                 a join on borrower_id to a table that has one)",
                loose.join(", ")
            ));
        }
    }
    found
}

/// The name in a `/* across borrowers: <name> */` comment, if the statement has one.
fn across_borrowers(sql: &str) -> Option<&str> {
    let (_, rest) = sql.split_once("/* across borrowers: ")?;
    let (name, _) = rest.split_once(" */")?;
    Some(name.trim())
}

/// A borrower table as a statement reads or changes it: `FROM drawdowns d` is `d`.
struct Occurrence {
    table: String,
    qualifier: String,
    aliased: bool,
}

impl Occurrence {
    fn describe(&self) -> String {
        if self.aliased {
            format!("{} {}", self.table, self.qualifier)
        } else {
            self.table.clone()
        }
    }
}

/// What one statement does with the checked tables.
struct Reading<'a, F: Fn(&str) -> bool> {
    checked: &'a F,
    occurrences: Vec<Occurrence>,
    /// Checked tables inserted into without their borrower_id.
    unwritten: Vec<String>,
    writes: bool,
    locks: bool,
    anchored: Anchored,
}

/// A table's name as PostgreSQL resolves it: without its schema or quotes, in lower case.
fn bare(name: &impl std::fmt::Display) -> String {
    let name = name.to_string();
    name.rsplit('.')
        .next()
        .unwrap_or(&name)
        .trim_matches('"')
        .to_lowercase()
}

impl<F: Fn(&str) -> bool> Reading<'_, F> {
    /// The qualifiers of the checked tables written without an alias in `from`: what a bare
    /// `borrower_id` beside it means.
    fn unaliased(&self, from: &[TableWithJoins]) -> Vec<String> {
        from.iter()
            .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
            .filter_map(|factor| match factor {
                TableFactor::Table {
                    name, alias: None, ..
                } => Some(bare(name)),
                _ => None,
            })
            .filter(|table| (self.checked)(table))
            .collect()
    }

    /// Reads the predicates of a SELECT (and of a set operation's SELECTs).
    fn read_select(&mut self, body: &SetExpr) {
        match body {
            SetExpr::Select(select) => {
                let scope = self.unaliased(&select.from);
                let joins = select
                    .from
                    .iter()
                    .flat_map(|t| t.joins.iter())
                    .filter_map(|j| join_condition(&j.join_operator));
                for predicate in select
                    .selection
                    .iter()
                    .chain(select.having.iter())
                    .chain(joins)
                {
                    self.anchored.read(predicate, &scope);
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.read_select(left);
                self.read_select(right);
            }
            // A nested query is visited on its own; an INSERT, UPDATE or VALUES has no
            // predicate of a SELECT.
            _ => {}
        }
    }
}

impl<F: Fn(&str) -> bool> Visitor for Reading<'_, F> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, .. } = factor {
            let table = bare(name);
            if (self.checked)(&table) {
                let (qualifier, aliased) = match alias {
                    Some(alias) => (alias.name.value.to_lowercase(), true),
                    None => (table.clone(), false),
                };
                self.occurrences.push(Occurrence {
                    table,
                    qualifier,
                    aliased,
                });
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        match statement {
            Statement::Insert(insert) => {
                self.writes = true;
                let table = bare(&insert.table);
                if (self.checked)(&table)
                    && !insert.columns.iter().any(|c| bare(c) == "borrower_id")
                {
                    self.unwritten.push(table);
                }
            }
            Statement::Update(update) => {
                self.writes = true;
                let scope = self.unaliased(std::slice::from_ref(&update.table));
                if let Some(predicate) = &update.selection {
                    self.anchored.read(predicate, &scope);
                }
            }
            Statement::Delete(delete) => {
                self.writes = true;
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) =
                    &delete.from;
                let scope = self.unaliased(from);
                if let Some(predicate) = &delete.selection {
                    self.anchored.read(predicate, &scope);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if !query.locks.is_empty() {
            self.locks = true;
        }
        self.read_select(&query.body);
        ControlFlow::Continue(())
    }
}

/// The qualifiers a statement names the borrower for: those a predicate filters on
/// `borrower_id` (`= …`, `IN (…)`, `= ANY (…)`), and those joined on `borrower_id` to one of
/// them. Only a predicate every row must meet counts: a conjunct of a WHERE, a join's ON or a
/// HAVING, not one under OR or NOT, in a CASE or in the columns selected. A bare `borrower_id`
/// stands for the tables written without an alias in the FROM of its own SELECT, UPDATE or
/// DELETE.
#[derive(Default)]
struct Anchored {
    parent: HashMap<String, String>,
    anchors: HashSet<String>,
}

impl Anchored {
    fn root(&self, node: &str) -> String {
        let mut node = node.to_owned();
        while let Some(up) = self.parent.get(&node) {
            node = up.clone();
        }
        node
    }

    fn join(&mut self, a: &str, b: &str) {
        let (a, b) = (self.root(a), self.root(b));
        if a != b {
            self.parent.insert(a, b);
        }
    }

    fn reaches(&self, occurrence: &Occurrence) -> bool {
        let root = self.root(&occurrence.qualifier);
        self.anchors.iter().any(|anchor| self.root(anchor) == root)
    }

    /// Reads `predicate`, whose bare `borrower_id` means the tables of `scope`.
    fn read(&mut self, predicate: &Expr, scope: &[String]) {
        match predicate {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                self.read(left, scope);
                self.read(right, scope);
            }
            Expr::Nested(inner) => self.read(inner, scope),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => match (borrower_column(left, scope), borrower_column(right, scope)) {
                (Some(a), Some(b)) => {
                    for (a, b) in a.iter().flat_map(|a| b.iter().map(move |b| (a, b))) {
                        self.join(a, b);
                    }
                }
                (Some(named), None) | (None, Some(named)) => self.anchors.extend(named),
                (None, None) => {}
            },
            Expr::InList {
                expr,
                negated: false,
                ..
            } => self
                .anchors
                .extend(borrower_column(expr, scope).unwrap_or_default()),
            Expr::AnyOp {
                left,
                compare_op: BinaryOperator::Eq,
                ..
            } => self
                .anchors
                .extend(borrower_column(left, scope).unwrap_or_default()),
            _ => {}
        }
    }
}

/// The qualifiers a `borrower_id` column stands for: `d.borrower_id` is `d`; a bare one is
/// each table of `scope`. `None` for anything else.
fn borrower_column(expr: &Expr, scope: &[String]) -> Option<Vec<String>> {
    match expr {
        Expr::Identifier(id) if id.value.eq_ignore_ascii_case("borrower_id") => {
            Some(scope.to_vec())
        }
        Expr::CompoundIdentifier(parts)
            if parts
                .last()
                .is_some_and(|id| id.value.eq_ignore_ascii_case("borrower_id")) =>
        {
            Some(match parts.len() {
                0 | 1 => scope.to_vec(),
                n => vec![parts[n - 2].value.to_lowercase()],
            })
        }
        Expr::Nested(inner) => borrower_column(inner, scope),
        _ => None,
    }
}

/// The ON condition of a join, if it has one.
fn join_condition(operator: &JoinOperator) -> Option<&Expr> {
    use JoinOperator as J;
    let constraint = match operator {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::CrossJoin(c)
        | J::Semi(c)
        | J::LeftSemi(c)
        | J::RightSemi(c)
        | J::Anti(c)
        | J::LeftAnti(c)
        | J::RightAnti(c)
        | J::StraightJoin(c) => c,
        J::AsOf { constraint, .. } => constraint,
        _ => return None,
    };
    match constraint {
        JoinConstraint::On(on) => Some(on),
        _ => None,
    }
}

/// The role the PostgreSQL test stores work as. Not a superuser: a superuser passes row-level
/// security whatever the policy, and [`guard_rows`] relies on it.
pub const ROLE: &str = "lendcore_test_borrowers";

/// Creates [`ROLE`] unless it exists (tests running at once may race to; the loser's error
/// is the winner's role).
pub async fn create_role(admin: &mut sqlx::PgConnection) {
    let _ = sqlx::raw_sql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN \
         CREATE ROLE {ROLE} NOLOGIN; END IF; END $$"
    ))
    .execute(&mut *admin)
    .await;
}

/// Row-level security as a tripwire (issue #16): in the test schema `conn` searches, each
/// keyed table lets a unit of work begun for a borrower (`lendcore.borrower`, set with the
/// store's BEGIN) see and write that borrower's rows alone; a unit that names no borrower
/// (reads across the book, the coordinator's work) is not limited. A borrower's unit that
/// reached another borrower's rows would miss them or fail, and the test with it. Forced, so
/// the tables' owner, the tests' role, is held to it too.
pub async fn guard_rows(conn: &mut sqlx::PgConnection) {
    for table in KEYED {
        sqlx::raw_sql(&format!(
            "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; \
             ALTER TABLE {table} FORCE ROW LEVEL SECURITY; \
             CREATE POLICY one_borrower ON {table} USING \
             (COALESCE(current_setting('lendcore.borrower', true), '') IN ('', borrower_id))"
        ))
        .execute(&mut *conn)
        .await
        .expect("guard a keyed table's rows");
    }
}

/// Records why the keys of the keyed tables, in the schema `conn` searches, would not let a
/// database distributed by borrower hold them: `borrower_id` missing or nullable, a unique
/// index (primary keys and unique constraints have one) or a foreign key that leaves it out.
/// Checked once per process, on the schema every migration built; what it finds fails the
/// PostgreSQL tests at their cleanup, as a broken statement does.
pub async fn check_keys(conn: &mut sqlx::PgConnection) {
    static CHECKED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CHECKED
        .get_or_init(|| async {
            for why in key_violations(conn, KEYED).await {
                eprintln!("sql_lint: {why}");
                BROKEN
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("  {why}"));
            }
        })
        .await;
}

/// Why the keys of `tables`, in the schema `conn` searches, leave out the borrower: what
/// [`check_keys`] records for the keyed tables.
pub async fn key_violations(conn: &mut sqlx::PgConnection, tables: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for table in tables {
        let not_null: Option<bool> = sqlx::query_scalar(
            "SELECT a.attnotnull FROM pg_attribute a WHERE a.attrelid = to_regclass($1) \
             AND a.attname = 'borrower_id' AND NOT a.attisdropped",
        )
        .bind(table)
        .fetch_optional(&mut *conn)
        .await
        .expect("read the catalog");
        match not_null {
            None => found.push(format!("{table} has no borrower_id column")),
            Some(false) => found.push(format!("{table}.borrower_id may be NULL")),
            Some(true) => {}
        }
        // Each unique index and each foreign key: its columns and, for a foreign key, what
        // each refers to (`column->table.column`).
        let keys: Vec<(String, Vec<String>, Vec<String>)> = sqlx::query_as(
            "SELECT i.indexrelid::regclass::text, \
                    ARRAY(SELECT a.attname::text FROM unnest(i.indkey) k \
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k), \
                    ARRAY[]::text[] \
             FROM pg_index i WHERE i.indrelid = to_regclass($1) AND i.indisunique \
             UNION ALL \
             SELECT c.conname::text, \
                    ARRAY(SELECT a.attname::text FROM unnest(c.conkey) k \
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k), \
                    ARRAY(SELECT a.attname::text || '->' || c.confrelid::regclass::text \
                                 || '.' || b.attname::text \
                          FROM unnest(c.conkey, c.confkey) AS k(mine, theirs) \
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.mine \
                          JOIN pg_attribute b ON b.attrelid = c.confrelid \
                           AND b.attnum = k.theirs) \
             FROM pg_constraint c WHERE c.conrelid = to_regclass($1) AND c.contype = 'f'",
        )
        .bind(table)
        .fetch_all(&mut *conn)
        .await
        .expect("read the catalog");
        for (name, columns, refers) in keys {
            if !columns.iter().any(|c| c == "borrower_id") {
                found.push(format!(
                    "{table}: key {name} ({}) leaves out borrower_id",
                    columns.join(", ")
                ));
            } else if !refers.is_empty()
                && !refers.iter().any(|r| {
                    // The borrower's own row is keyed by its id.
                    r == "borrower_id->borrowers.id"
                        || (r.starts_with("borrower_id->") && r.ends_with(".borrower_id"))
                })
            {
                found.push(format!(
                    "{table}: foreign key {name} ({}) does not tie borrower_id to the borrower \
                     of the row it refers to",
                    refers.join(", ")
                ));
            }
        }
    }
    found
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
        "statements and keys on borrower tables that leave out the borrower (issue #16, \
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

impl RecordFields for Logged {
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
            "UPDATE credit_lines SET held_minor = held_minor + $1 WHERE borrower_id = $2 AND id \
             = $3"
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
    fn every_table_a_statement_reaches_is_tied_to_the_borrower() {
        let broken = |sql: &str| !violations_for_all(sql).is_empty();
        // Joined by id alone, the quote may sit on another node.
        assert!(broken(
            "SELECT d.body, q.quote FROM drawdowns d LEFT JOIN drawdown_quotes q ON \
             q.drawdown_id = d.id WHERE d.borrower_id = $1 AND d.id = $2"
        ));
        // A filter on one table does not name the borrower of another.
        assert!(broken(
            "SELECT 1 FROM drawdowns d, payout_attempts p WHERE d.borrower_id = $1 AND \
             p.drawdown_id = d.id"
        ));
        // A correlated subquery joined on the borrower is tied to its outer row.
        assert!(!broken(
            "UPDATE drawdowns SET body = CASE WHEN EXISTS (SELECT 1 FROM drawdown_quotes q \
             WHERE q.borrower_id = drawdowns.borrower_id AND q.drawdown_id = drawdowns.id) THEN \
             $1 ELSE body END WHERE borrower_id = $2 AND id = $3"
        ));
        // The parts of a data-modifying WITH are each read: the INSERT must write the
        // borrower, and the subquery numbering the step must filter on it.
        let step = |insert_columns: &str, subquery_filter: &str| {
            format!(
                "WITH updated AS (UPDATE drawdowns SET state = $1 WHERE borrower_id = $2 AND id \
                 = $3 RETURNING id) INSERT INTO drawdown_transitions (drawdown_id, seq, \
                 {insert_columns}) SELECT u.id, COALESCE((SELECT MAX(t.seq) FROM \
                 drawdown_transitions t WHERE {subquery_filter} t.drawdown_id = u.id), 0) + 1, \
                 $2 FROM updated u"
            )
        };
        assert!(!broken(&step("borrower_id", "t.borrower_id = $2 AND")));
        assert!(broken(&step("to_state", "t.borrower_id = $2 AND")));
        assert!(broken(&step("borrower_id", "")));
        // A read marked across borrowers is allowed when listed, and only as a plain read.
        assert!(!broken(
            "/* across borrowers: loans to close */ SELECT body FROM drawdowns WHERE id > $1"
        ));
        assert!(broken(
            "/* across borrowers: anything */ SELECT body FROM drawdowns WHERE id > $1"
        ));
        assert!(broken(
            "/* across borrowers: loans to close */ SELECT body FROM drawdowns WHERE id > $1 \
             FOR UPDATE"
        ));
        assert!(broken(
            "/* across borrowers: loans to close */ UPDATE drawdowns SET state = $1"
        ));
        // Only a filter every row must meet names the borrower.
        assert!(broken(
            "SELECT body FROM drawdowns WHERE borrower_id = $1 OR state = 'active'"
        ));
        assert!(broken(
            "SELECT CASE WHEN borrower_id = $1 THEN body END FROM drawdowns WHERE id = $2"
        ));
        assert!(broken(
            "SELECT body FROM drawdowns WHERE NOT (borrower_id = $1) AND id = $2"
        ));
        assert!(!broken(
            "SELECT body FROM drawdowns WHERE (borrower_id = $1 AND id = $2) AND state = 'x'"
        ));
        assert!(!broken(
            "SELECT body FROM drawdowns WHERE borrower_id = ANY($1)"
        ));
        assert!(broken(
            "SELECT body FROM drawdowns WHERE borrower_id <> ANY($1)"
        ));
        // A bare borrower_id is the column of its own query's tables, not of a subquery's.
        assert!(broken(
            "SELECT body FROM drawdowns WHERE borrower_id = $1 AND line_id IN \
             (SELECT id FROM credit_lines WHERE state = 'closed')"
        ));
        assert!(!broken(
            "SELECT body FROM drawdowns WHERE borrower_id = $1 AND line_id IN \
             (SELECT id FROM credit_lines WHERE borrower_id = $1 AND state = 'closed')"
        ));
        // Names are read as PostgreSQL reads them.
        assert!(broken("SELECT body FROM DRAWDOWNS WHERE id = $1"));
        assert!(broken("SELECT body FROM public.drawdowns WHERE id = $1"));
        // A lock is a borrower's only with the borrower named.
        assert!(broken(
            "SELECT body FROM drawdowns WHERE id = $1 FOR UPDATE"
        ));
        assert!(!broken(
            "SELECT body FROM drawdowns WHERE borrower_id = $1 AND id = $2 FOR UPDATE"
        ));
    }

    #[test]
    fn every_read_across_borrowers_says_why() {
        for (name, why) in ACROSS_BORROWERS {
            assert!(!name.is_empty() && why.len() > 20, "{name}: {why}");
        }
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
