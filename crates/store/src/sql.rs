//! Statements written once for every connection a unit of work may hold (#15): PostgreSQL and
//! SQLite's read snapshots through sqlx, and the SQLite writer's batch through rusqlite on the
//! writer's own connection, run on the calling thread from cached prepared statements (no
//! hand-off to sqlx's worker thread per statement, which bounded the writer).
//!
//! A statement is built from the unit of work (`uow.sql(text).bind(…)`), so its parameters are
//! encoded once, for the connection that runs it; its rows are read by column name through
//! [`Row`], whichever driver produced them ([`FromRow`], and [`from_row!`] for a struct).

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArgumentValue, SqliteArguments, SqliteRow};
use sqlx::{Arguments, Encode, Postgres, Sqlite, Type};

use crate::StoreError;

/// Where a statement will run, which decides how its parameters are encoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Target {
    /// The SQLite writer's batch: rusqlite on the writer's connection.
    SqliteWriter,
    /// A SQLite read snapshot, through sqlx.
    SqliteReader,
    Postgres,
}

/// One SQL statement and its parameters (`$1`, `$2`… on both databases; `?` in order on
/// SQLite), encoded for where it will run.
pub(crate) struct Statement<'q> {
    pub(crate) text: &'q str,
    pub(crate) args: Args<'q>,
    /// The first parameter that could not be encoded: reported when the statement runs, as
    /// sqlx does.
    pub(crate) refused: Option<String>,
}

pub(crate) enum Args<'q> {
    Writer(Vec<SqliteArgumentValue<'q>>),
    Sqlite(SqliteArguments<'q>),
    Postgres(PgArguments),
}

impl<'q> Statement<'q> {
    pub(crate) fn new(target: Target, text: &'q str) -> Statement<'q> {
        let args = match target {
            Target::SqliteWriter => Args::Writer(Vec::new()),
            Target::SqliteReader => Args::Sqlite(SqliteArguments::default()),
            Target::Postgres => Args::Postgres(PgArguments::default()),
        };
        Statement {
            text,
            args,
            refused: None,
        }
    }

    /// Binds the next parameter.
    pub(crate) fn bind<T>(mut self, value: T) -> Statement<'q>
    where
        T: 'q + Send + Encode<'q, Sqlite> + Type<Sqlite> + Encode<'q, Postgres> + Type<Postgres>,
    {
        let encoded = match &mut self.args {
            Args::Writer(values) => {
                let before = values.len();
                match Encode::<Sqlite>::encode(value, values) {
                    Ok(sqlx::encode::IsNull::Yes) => {
                        values.truncate(before);
                        values.push(SqliteArgumentValue::Null);
                        Ok(())
                    }
                    Ok(sqlx::encode::IsNull::No) => Ok(()),
                    Err(e) => {
                        values.truncate(before);
                        Err(e)
                    }
                }
            }
            Args::Sqlite(args) => args.add(value),
            Args::Postgres(args) => args.add(value),
        };
        if let Err(e) = encoded
            && self.refused.is_none()
        {
            self.refused = Some(e.to_string());
        }
        self
    }

    pub(crate) fn check(&self) -> Result<(), StoreError> {
        match &self.refused {
            // A value of ours that will not encode is a fault of ours, as sqlx reports it.
            Some(why) => Err(StoreError::Database(format!(
                "a parameter did not encode: {why}"
            ))),
            None => Ok(()),
        }
    }
}

/// A value a column can be read as, from either driver.
pub(crate) trait Column:
    rusqlite::types::FromSql
    + for<'r> sqlx::Decode<'r, Sqlite>
    + Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + Type<Postgres>
{
}

impl<T> Column for T where
    T: rusqlite::types::FromSql
        + for<'r> sqlx::Decode<'r, Sqlite>
        + Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Postgres>
        + Type<Postgres>
{
}

/// A row of a result, whichever driver read it.
pub(crate) trait Row {
    fn get<T: Column>(&self, column: &str) -> Result<T, StoreError>;
    /// The value at `index` (from 0), for a result whose columns have no names worth using.
    fn at<T: Column>(&self, index: usize) -> Result<T, StoreError>;
}

impl Row for rusqlite::Row<'_> {
    fn get<T: Column>(&self, column: &str) -> Result<T, StoreError> {
        rusqlite::Row::get(self, column).map_err(|e| unreadable(column, e))
    }

    fn at<T: Column>(&self, index: usize) -> Result<T, StoreError> {
        rusqlite::Row::get(self, index).map_err(|e| unreadable(&index.to_string(), e))
    }
}

impl Row for SqliteRow {
    fn get<T: Column>(&self, column: &str) -> Result<T, StoreError> {
        sqlx::Row::try_get(self, column).map_err(StoreError::from)
    }

    fn at<T: Column>(&self, index: usize) -> Result<T, StoreError> {
        sqlx::Row::try_get(self, index).map_err(StoreError::from)
    }
}

impl Row for PgRow {
    fn get<T: Column>(&self, column: &str) -> Result<T, StoreError> {
        sqlx::Row::try_get(self, column).map_err(StoreError::from)
    }

    fn at<T: Column>(&self, index: usize) -> Result<T, StoreError> {
        sqlx::Row::try_get(self, index).map_err(StoreError::from)
    }
}

fn unreadable(column: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Database(format!("column {column}: {e}"))
}

/// A value made from one row of a result.
pub(crate) trait FromRow: Sized {
    fn from_row(row: &impl Row) -> Result<Self, StoreError>;
}

/// Columns by position, for a result of one, two or three.
impl<A: Column> FromRow for (A,) {
    fn from_row(row: &impl Row) -> Result<Self, StoreError> {
        Ok((row.at(0)?,))
    }
}

impl<A: Column, B: Column> FromRow for (A, B) {
    fn from_row(row: &impl Row) -> Result<Self, StoreError> {
        Ok((row.at(0)?, row.at(1)?))
    }
}

impl<A: Column, B: Column, C: Column> FromRow for (A, B, C) {
    fn from_row(row: &impl Row) -> Result<Self, StoreError> {
        Ok((row.at(0)?, row.at(1)?, row.at(2)?))
    }
}

/// Reads a struct from a row, each field from the column of its name.
macro_rules! from_row {
    ($name:ident { $($field:ident),* $(,)? }) => {
        impl $crate::sql::FromRow for $name {
            fn from_row(row: &impl $crate::sql::Row) -> Result<Self, $crate::StoreError> {
                Ok($name { $($field: $crate::sql::Row::get(row, stringify!($field))?),* })
            }
        }
    };
}
pub(crate) use from_row;

/// Runs `statement` on the SQLite writer's connection, giving rows of its result to `each`
/// until it answers `false`; answers the rows the statement changed. Prepared once per
/// connection and kept (the writer's cache).
pub(crate) fn run_on_writer(
    conn: &rusqlite::Connection,
    statement: &Statement<'_>,
    mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<bool, StoreError>,
) -> Result<u64, StoreError> {
    statement.check()?;
    let Args::Writer(values) = &statement.args else {
        return Err(StoreError::Database(
            "a statement encoded for another connection reached the SQLite writer".to_owned(),
        ));
    };
    if has_second_statement(statement.text) {
        return Err(StoreError::Database(format!(
            "the SQLite writer runs one statement at a time: {}",
            statement.text
        )));
    }
    let mut prepared = conn.prepare_cached(statement.text)?;
    let (mut bare, mut numbered) = (false, false);
    for index in 1..=prepared.parameter_count() {
        // `$3` (or `?3`) is the third value wherever it stands; a bare `?` takes its place in
        // order. Mixed, the two would count differently from sqlx, so they are refused, as
        // are names sqlx does not take.
        let number = match prepared.parameter_name(index) {
            None => {
                bare = true;
                index
            }
            Some(name) => {
                numbered = true;
                match (name.get(..1), name.get(1..).map(str::parse::<usize>)) {
                    (Some("$" | "?"), Some(Ok(n))) if n >= 1 => n,
                    _ => return Err(unbindable(name, statement)),
                }
            }
        };
        if bare && numbered {
            return Err(unbindable(
                "bare and numbered parameters together",
                statement,
            ));
        }
        let value = values.get(number - 1).ok_or_else(|| {
            StoreError::Database(format!(
                "parameter {number} has no value ({} bound): {}",
                values.len(),
                statement.text
            ))
        })?;
        prepared.raw_bind_parameter(index, Bound(value))?;
    }
    let mut rows = prepared.raw_query();
    while let Some(row) = rows.next()? {
        if !each(row)? {
            break;
        }
    }
    // Dropped, the rows reset the statement (a RETURNING's changes are all made by its first
    // step, so stopping early loses none).
    drop(rows);
    Ok(conn.changes())
}

fn unbindable(what: &str, statement: &Statement<'_>) -> StoreError {
    StoreError::Database(format!("cannot bind {what} in: {}", statement.text))
}

/// Whether `text` holds more than one statement: a `;` outside quotes with more than spaces
/// after it. rusqlite would prepare the first and leave the rest unrun.
fn has_second_statement(text: &str) -> bool {
    // Most statements have no `;` at all, found at memchr's speed; only the rest are walked.
    if !text.contains(';') {
        return false;
    }
    let mut quote = None;
    for (at, c) in text.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(open), _) if c == open => quote = None,
            (None, ';') => return !text[at + 1..].trim().is_empty(),
            _ => {}
        }
    }
    false
}

/// One encoded parameter, as rusqlite binds it.
struct Bound<'a>(&'a SqliteArgumentValue<'a>);

impl rusqlite::ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self.0 {
            SqliteArgumentValue::Null => ToSqlOutput::Owned(Value::Null),
            SqliteArgumentValue::Text(text) => {
                ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()))
            }
            SqliteArgumentValue::Blob(blob) => ToSqlOutput::Borrowed(ValueRef::Blob(blob)),
            SqliteArgumentValue::Double(x) => ToSqlOutput::Owned(Value::Real(*x)),
            SqliteArgumentValue::Int(n) => ToSqlOutput::Owned(Value::Integer(i64::from(*n))),
            SqliteArgumentValue::Int64(n) => ToSqlOutput::Owned(Value::Integer(*n)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(conn: &rusqlite::Connection, statement: Statement<'_>) -> Result<String, StoreError> {
        let mut found = None;
        run_on_writer(conn, &statement, |row| {
            found = Some(Row::at::<Option<String>>(row, 0)?.unwrap_or_else(|| "NULL".into()));
            Ok(false)
        })?;
        Ok(found.expect("a row"))
    }

    fn writer(text: &str) -> Statement<'_> {
        Statement::new(Target::SqliteWriter, text)
    }

    #[test]
    fn the_writer_binds_as_sqlx_does_and_refuses_what_sqlx_would_bind_otherwise() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let by_number = writer("SELECT $2 || '-' || $1 || '-' || $2")
            .bind("a")
            .bind("b");
        assert_eq!(one(&conn, by_number).unwrap(), "b-a-b");
        let in_order = writer("SELECT ? || ? || ?")
            .bind("x")
            .bind(7_i64)
            .bind(true);
        assert_eq!(one(&conn, in_order).unwrap(), "x71");
        let none = writer("SELECT $1").bind(None::<String>);
        assert_eq!(one(&conn, none).unwrap(), "NULL");
        let quoted = writer("SELECT ';' || $1; ").bind("kept");
        assert_eq!(one(&conn, quoted).unwrap(), ";kept");

        for refused in [
            writer("SELECT ? || $1").bind("a"),
            writer("SELECT :name").bind("a"),
            writer("SELECT $1; SELECT 2").bind("a"),
            writer("SELECT $2").bind("a"),
            Statement::new(Target::SqliteReader, "SELECT $1").bind("a"),
        ] {
            let text = refused.text;
            assert!(
                matches!(one(&conn, refused), Err(StoreError::Database(_))),
                "{text}"
            );
        }
    }
}
