//! Rows a unit of work appends and does not read back in the same unit (audit entries, decision
//! records), held until it commits and then written together: on PostgreSQL every table's rows
//! in one statement (data-modifying `WITH` parts), so what a confirmation records beside its own
//! change costs no round trip of its own; on SQLite a statement per table, which the writer
//! runs itself.

use crate::unit_of_work::SqlUnitOfWork;
use crate::{Backend, StoreError};

/// One value of a pending row.
pub(crate) enum Cell {
    Text(String),
    Number(i64),
}

/// The rows waiting for one table.
pub(crate) struct PendingRows {
    /// `table (column, …)`, as an INSERT names them.
    pub(crate) into: &'static str,
    pub(crate) columns: usize,
    pub(crate) rows: Vec<Vec<Cell>>,
}

impl PendingRows {
    pub(crate) const fn new(into: &'static str, columns: usize) -> Self {
        PendingRows {
            into,
            columns,
            rows: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns, "a row for {}", self.into);
        self.rows.push(row);
    }
}

/// Parameters per statement: well under PostgreSQL's 65,535 and SQLite's 32,766.
const MAX_PARAMETERS: usize = 30_000;

impl SqlUnitOfWork {
    /// Writes every pending row, and forgets them. Called at commit, and before a read of a
    /// table that has pending rows.
    pub(crate) async fn flush_pending(&mut self) -> Result<(), StoreError> {
        let tables: Vec<PendingRows> = self
            .pending
            .iter_mut()
            .map(|p| PendingRows {
                into: p.into,
                columns: p.columns,
                rows: std::mem::take(&mut p.rows),
            })
            .filter(|p| !p.rows.is_empty())
            .collect();
        // On PostgreSQL every table's rows in one statement, when they fit; on SQLite, where the
        // writer runs its statements itself, one statement per table costs nothing more.
        let parameters: usize = tables.iter().map(|t| t.rows.len() * t.columns).sum();
        if self.backend() == Backend::Postgres && tables.len() > 1 && parameters <= MAX_PARAMETERS {
            return self.insert_together(tables).await;
        }
        for table in tables {
            self.insert_rows(table).await?;
        }
        Ok(())
    }

    /// Inserts `table`'s rows now, as many to a statement as the databases allow.
    pub(crate) async fn insert_rows(&mut self, table: PendingRows) -> Result<(), StoreError> {
        let per_statement = (MAX_PARAMETERS / table.columns).max(1);
        let mut rows = table.rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Cell>> = rows.by_ref().take(per_statement).collect();
            let part = PendingRows {
                into: table.into,
                columns: table.columns,
                rows: chunk,
            };
            self.insert_together(vec![part]).await?;
        }
        Ok(())
    }

    /// One INSERT for one table; for several (PostgreSQL only), one statement, the first ones
    /// as `WITH` parts of the last: one round trip.
    async fn insert_together(&mut self, tables: Vec<PendingRows>) -> Result<(), StoreError> {
        let backend = self.backend();
        let mut parts = Vec::with_capacity(tables.len());
        let mut first = 1;
        for table in &tables {
            let values = values(backend, first, table.rows.len(), table.columns);
            first += table.rows.len() * table.columns;
            parts.push(format!("INSERT INTO {} VALUES {values}", table.into));
        }
        let last = parts.pop().unwrap_or_default();
        let sql = if parts.is_empty() {
            last
        } else {
            let with: Vec<String> = parts
                .iter()
                .enumerate()
                .map(|(i, part)| format!("w{i} AS ({part})"))
                .collect();
            format!("WITH {} {last}", with.join(", "))
        };
        let mut statement = self.sql(&sql);
        for cell in tables.into_iter().flat_map(|t| t.rows).flatten() {
            statement = match cell {
                Cell::Text(text) => statement.bind(text),
                Cell::Number(n) => statement.bind(n),
            };
        }
        self.execute(statement).await?;
        Ok(())
    }
}

/// `(…), (…)` for `rows` rows of `columns`, PostgreSQL's parameters numbered from `first`.
/// Written into one string: it is built at every commit that has pending rows.
fn values(backend: Backend, first: usize, rows: usize, columns: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..columns {
            if col > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                // Writing to a String cannot fail.
                Backend::Postgres => {
                    let _ = write!(sql, "${}", first + row * columns + col);
                }
            }
        }
        sql.push(')');
    }
    sql
}
