//! Running SQL scripts: statements that only read run on a reader, so they answer at once
//! while another connection (or process) holds the write lock; a script with any statement
//! that writes runs whole in one transaction on the writer. Rows go to a [`ScriptSink`] one at
//! a time as SQLite produces them, so a huge `SELECT` prints its first row at once and never
//! holds its result in memory.
//!
//! ```
//! use peerlite::{RdbStore, ScriptSink, StoreConfig, Value};
//!
//! /// Counts rows and remembers the column names.
//! #[derive(Default)]
//! struct Count { columns: Vec<String>, rows: usize }
//!
//! impl ScriptSink for Count {
//!     fn columns(&mut self, names: &[String]) -> std::io::Result<()> {
//!         self.columns = names.to_vec();
//!         Ok(())
//!     }
//!     fn row(&mut self, _values: &[Value]) -> std::io::Result<()> {
//!         self.rows += 1;
//!         Ok(())
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let store = RdbStore::open(StoreConfig::new(dir.path().join("a.db")))?;
//! store.run_script(&["CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)"], &mut Count::default())?;
//! let mut count = Count::default();
//! store.run_script(&["SELECT x, x AS x FROM t"], &mut count)?; // reads only: on a reader
//! assert_eq!((count.columns.as_slice(), count.rows), (&["x".to_owned(), "x".to_owned()][..], 2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use rusqlite::Connection;
use rusqlite::fallible_iterator::FallibleIterator;

use super::rdb::{Inner, RdbStore};
use super::read;
use super::result_set::ResultSet;
use super::transaction::Transaction;
use crate::error::{Error, Result};
use crate::value::Value;

/// Output of one statement of a script run by [`RdbStore::execute_script`].
#[derive(Debug)]
pub enum StatementOutput {
    /// A statement that returns rows.
    Rows(ResultSet),
    /// A statement that changed this many rows.
    Changed(usize),
}

/// Where the results of [`RdbStore::run_script`] go, statement by statement, row by row.
/// An error from the sink stops the script (and rolls back a script that writes); it comes
/// back as [`Error::Io`] (17000002), its kind kept (`BrokenPipe` for a closed pipe).
pub trait ScriptSink {
    /// A statement that returns rows begins: its column names in order, duplicates kept.
    fn columns(&mut self, names: &[String]) -> std::io::Result<()>;
    /// One row, values in column order.
    fn row(&mut self, values: &[Value]) -> std::io::Result<()>;
    /// The rows of the statement begun by the last `columns` are complete.
    fn end(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    /// A statement that returns no rows changed this many rows.
    fn changed(&mut self, rows: usize) -> std::io::Result<()> {
        let _ = rows;
        Ok(())
    }
}

/// Where a script runs.
enum Route {
    /// Every statement only reads.
    Reader,
    /// Some statement writes (or cannot be judged before the ones before it ran).
    Writer,
}

impl RdbStore {
    /// Runs the statements of `scripts` in order, sending every result to `sink` as it is
    /// produced. When every statement only reads, they run on a reader and never wait for the
    /// writer; otherwise all of them run in one transaction (all take effect or none).
    ///
    /// # Errors
    /// 14800021 and the other SQLite codes for a failing statement (the transaction is rolled
    /// back); 17000002 when the sink fails; 14800027 a write on a read-only store.
    pub fn run_script(&self, scripts: &[&str], sink: &mut dyn ScriptSink) -> Result<()> {
        scripts.iter().try_for_each(|sql| no_nul(sql))?;
        let inner = &self.inner;
        let route = if inner.config.read_only {
            Route::Reader
        } else {
            inner.read(|conn| route(conn, scripts, inner))?
        };
        match route {
            Route::Reader => inner.read(|conn| {
                scripts
                    .iter()
                    .try_for_each(|sql| run_statements(conn, sql, None, inner, sink))
            }),
            Route::Writer => {
                let tx = self.begin_transaction()?;
                for sql in scripts {
                    tx.run_script(sql, sink)?;
                }
                tx.commit()
            }
        }
    }

    /// Runs every statement of `sql` and collects their outputs: on a reader when all of them
    /// only read, else in one transaction (all of them take effect or none).
    pub fn execute_script(&self, sql: &str) -> Result<Vec<StatementOutput>> {
        let mut collect = Collect::new(&self.inner);
        self.run_script(&[sql], &mut collect)?;
        Ok(collect.outputs)
    }
}

impl Transaction<'_> {
    /// Runs every statement of `sql` (several allowed) inside this transaction, sending the
    /// results to `sink` as they are produced; reads see this transaction's own writes.
    pub fn run_script(&self, sql: &str, sink: &mut dyn ScriptSink) -> Result<()> {
        no_nul(sql)?;
        let writer = self.writer()?;
        writer.as_caller(|| run_statements(&writer.conn, sql, Some(self), self.inner(), sink))
    }

    /// Runs every statement of `sql` (several allowed) inside this transaction.
    pub fn execute_script(&self, sql: &str) -> Result<Vec<StatementOutput>> {
        let mut collect = Collect::new(self.inner());
        self.run_script(sql, &mut collect)?;
        Ok(collect.outputs)
    }
}

/// Prepares the statements on a reader, in order, without running them: a script goes to the
/// reader only when every statement prepares and only reads. A statement the reader cannot
/// prepare goes to the writer, which judges it: it may need what an earlier write creates, a
/// TEMP table of the writer's, or a function only the writer has (the capture triggers call
/// peerlite's), and transaction control, which readers refuse, gets the writer's refusal that
/// explains itself. Only a statement that no connection could parse (a syntax error) after
/// statements that only read is reported from here, without waiting for the writer.
fn route(conn: &Connection, scripts: &[&str], inner: &Inner) -> Result<Route> {
    for sql in scripts {
        let mut batch = rusqlite::Batch::new(conn, sql);
        loop {
            match batch.next() {
                Ok(Some(stmt)) if reads_only(&stmt) => {}
                Ok(Some(_)) => return Ok(Route::Writer),
                Ok(None) => break,
                Err(e) => {
                    let err = inner.observe_error(Error::from_sqlite(e, inner.config.path()));
                    return match &err {
                        Error::Sqlite { message, .. } if !unparsable(message) => Ok(Route::Writer),
                        _ => Err(err),
                    };
                }
            }
        }
    }
    Ok(Route::Reader)
}

/// True for a statement that only reads. SQLite calls `PRAGMA journal_mode` (the query, no
/// value) a write because the same pragma can set the mode; asking is a read, so it runs on a
/// reader instead of waiting for another process's write lock. A pooled reader refuses every
/// pragma that sets something, so treating pragma queries as reads cannot let one through.
fn reads_only(stmt: &rusqlite::Statement<'_>) -> bool {
    stmt.readonly() || stmt.expanded_sql().is_some_and(|sql| pragma_query(&sql))
}

/// `PRAGMA name` with no `= value` and no `(argument)`.
fn pragma_query(sql: &str) -> bool {
    let sql = sql.trim_start();
    sql.get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("pragma"))
        && !sql.contains(['=', '('])
}

/// SQLite reads a statement up to its first NUL byte and takes the rest for nothing: the
/// statements after one would be dropped without a word, so a script with one is refused.
fn no_nul(sql: &str) -> Result<()> {
    match sql.find('\0') {
        Some(at) => Err(Error::invalid(
            crate::StoreKind::Relational,
            format!(
                "the script has a NUL byte at offset {at}; SQLite would stop reading there and drop what follows"
            ),
        )),
        None => Ok(()),
    }
}

/// SQLite's messages for text that is not SQL, whatever the connection.
fn unparsable(message: &str) -> bool {
    ["syntax error", "incomplete input", "unrecognized token"]
        .iter()
        .any(|m| message.contains(m))
}

/// Runs the statements of `sql` on `conn` one by one. Statements that only read run right
/// there, rows streamed; the others run through the transaction (so the tables they write are
/// tracked), and without one they are refused.
fn run_statements(
    conn: &Connection,
    sql: &str,
    tx: Option<&Transaction<'_>>,
    inner: &Inner,
    sink: &mut dyn ScriptSink,
) -> Result<()> {
    let path = inner.config.path();
    let prepare_err = |e| {
        let err = inner.observe_error(Error::from_sqlite(e, path));
        match tx.map(Transaction::writer) {
            Some(Ok(writer)) => super::transaction::refused(writer, err),
            _ => read::refused_on_reader(err, sql),
        }
    };
    let sink_err = |e| Error::io("writing the results of a query on", path, e);
    let mut batch = rusqlite::Batch::new(conn, sql);
    loop {
        if let Some(tx) = tx {
            tx.writer()?.begin_statement();
        }
        let Some(mut stmt) = batch.next().map_err(prepare_err)? else {
            break;
        };
        if reads_only(&stmt) {
            let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
            sink.columns(&columns).map_err(sink_err)?;
            let mut values = Vec::with_capacity(columns.len());
            let mut rows = stmt.raw_query();
            while let Some(row) = rows
                .next()
                .map_err(|e| inner.observe_error(Error::from_sqlite(e, path)))?
            {
                values.clear();
                for c in 0..columns.len() {
                    let value = row
                        .get_ref(c)
                        .map_err(|e| inner.observe_error(Error::from_sqlite(e, path)))?;
                    values.push(Value::from_ref(value));
                }
                sink.row(&values).map_err(sink_err)?;
            }
            sink.end().map_err(sink_err)?;
            continue;
        }
        let text = stmt.expanded_sql().unwrap_or_default();
        let returns_rows = stmt.column_count() > 0;
        drop(stmt);
        let Some(tx) = tx else {
            return Err(Error::ReadOnly {
                detail: format!("`{text}` writes"),
            });
        };
        match tx.run(&text, &[], returns_rows)? {
            (_, Some(rows)) => {
                sink.columns(rows.column_names()?).map_err(sink_err)?;
                for row in rows.rows()? {
                    sink.row(row).map_err(sink_err)?;
                }
                sink.end().map_err(sink_err)?;
            }
            (changed, None) => sink.changed(changed).map_err(sink_err)?,
        }
    }
    Ok(())
}

/// The sink behind `execute_script`: every output kept, rows as result sets.
struct Collect<'a> {
    inner: &'a Inner,
    outputs: Vec<StatementOutput>,
    columns: Vec<String>,
    values: Vec<Value>,
    rows: usize,
}

impl<'a> Collect<'a> {
    fn new(inner: &'a Inner) -> Self {
        Collect {
            inner,
            outputs: Vec::new(),
            columns: Vec::new(),
            values: Vec::new(),
            rows: 0,
        }
    }
}

impl ScriptSink for Collect<'_> {
    fn columns(&mut self, names: &[String]) -> std::io::Result<()> {
        self.columns = names.to_vec();
        self.values.clear();
        self.rows = 0;
        Ok(())
    }

    fn row(&mut self, values: &[Value]) -> std::io::Result<()> {
        self.values.extend_from_slice(values);
        self.rows += 1;
        Ok(())
    }

    fn end(&mut self) -> std::io::Result<()> {
        self.outputs.push(StatementOutput::Rows(ResultSet::new(
            std::mem::take(&mut self.columns),
            std::mem::take(&mut self.values),
            self.rows,
            self.inner.watch(),
        )));
        Ok(())
    }

    fn changed(&mut self, rows: usize) -> std::io::Result<()> {
        self.outputs.push(StatementOutput::Changed(rows));
        Ok(())
    }
}
