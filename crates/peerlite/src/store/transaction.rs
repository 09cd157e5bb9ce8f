//! `Transaction`: the one path every write takes. The store's own `insert`, `update`, … run a
//! one-statement transaction; migrations and the key-value store use the same type. It holds the
//! writer for its whole life (`BEGIN IMMEDIATE`), rolls back when dropped without `commit`
//! (including during a panic), and reports the tables it changed only after it commits.
//!
//! ```
//! use peerlite::{bucket, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let store = RdbStore::open(StoreConfig::new(dir.path().join("a.db")))?;
//! store.execute("CREATE TABLE t(x INTEGER)", &[])?;
//! let result: peerlite::Result<()> = store.transaction(|tx| {
//!     tx.insert("t", &bucket! { "x" => 1 })?;
//!     tx.execute("INSERT INTO t(x) VALUES ('not', 'one value')", &[]) // fails
//!         .map(|_| ())
//! });
//! assert!(result.is_err());
//! let count = store.query_sql("SELECT count(*) FROM t", &[])?;
//! # let mut count = count; count.go_to_first_row()?;
//! assert_eq!(count.get_long(0)?, 0); // the first insert was rolled back too
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::{Cell, RefCell};
use std::sync::MutexGuard;

use rusqlite::Connection;

use super::predicates::RdbPredicates;
use super::rdb::Inner;
use super::read::{self, bind};
use super::result_set::ResultSet;
use super::schema::{TableInfo, quote_ident};
use super::writer::{Refusal, Writer, is_internal_table};
use crate::StoreKind;
use crate::error::{Error, Result};
use crate::value::{Value, ValuesBucket};

/// What to do when an insert or update violates a constraint (SQLite's `OR …` clause).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictResolution {
    /// Fail the statement (SQLite's default, ABORT).
    #[default]
    None,
    /// Roll back the whole transaction.
    Rollback,
    /// Undo this statement.
    Abort,
    /// Stop, keeping the statement's earlier rows.
    Fail,
    /// Skip the row.
    Ignore,
    /// Delete the conflicting row, then write.
    Replace,
}

impl ConflictResolution {
    fn sql(self) -> &'static str {
        match self {
            ConflictResolution::None => "",
            ConflictResolution::Rollback => " OR ROLLBACK",
            ConflictResolution::Abort => " OR ABORT",
            ConflictResolution::Fail => " OR FAIL",
            ConflictResolution::Ignore => " OR IGNORE",
            ConflictResolution::Replace => " OR REPLACE",
        }
    }
}

thread_local! {
    static THREAD_TOKEN: u64 = {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    };
}

pub(crate) fn thread_token() -> u64 {
    THREAD_TOKEN.with(|t| *t)
}

/// An open write transaction. Methods take `&self`, so a closure can use the handle freely.
pub struct Transaction<'s> {
    inner: &'s Inner,
    guard: Option<MutexGuard<'s, Option<Writer>>>,
    changed: RefCell<Vec<String>>,
    restore_foreign_keys: Cell<Option<bool>>,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("path", &self.inner.config.path())
            .finish()
    }
}

impl<'s> Transaction<'s> {
    /// Takes the writer and starts `BEGIN IMMEDIATE`. With `foreign_keys_off`, foreign keys are
    /// switched off first (they cannot change inside a transaction) and back on at the end.
    pub(crate) fn begin(inner: &'s Inner, foreign_keys_off: bool) -> Result<Self> {
        inner.ensure_open()?;
        let me = thread_token();
        if inner
            .writer_owner
            .load(std::sync::atomic::Ordering::Acquire)
            == me
        {
            return Err(Error::invalid(
                StoreKind::Relational,
                "a transaction is already open on this thread; use its handle (tx.insert, tx.execute, …) inside it",
            ));
        }
        let guard = inner
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.ensure_open()?;
        let Some(writer) = guard.as_ref() else {
            return Err(Error::ReadOnly {
                detail: "this store has no writer".into(),
            });
        };
        let path = inner.config.path();
        let mut restore = None;
        if foreign_keys_off {
            let on: bool = writer
                .conn
                .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                .map_err(|e| Error::from_sqlite(e, path))?;
            writer
                .conn
                .execute_batch("PRAGMA foreign_keys=OFF")
                .map_err(|e| Error::from_sqlite(e, path))?;
            restore = Some(on);
        }
        if let Err(e) = writer.control("BEGIN IMMEDIATE") {
            if let Some(on) = restore {
                let _ = writer.conn.pragma_update(None, "foreign_keys", on);
            }
            return Err(inner.observe_error(Error::from_sqlite(e, path)));
        }
        if let Err(e) = writer
            .refresh_schema()
            .and_then(|()| inner.layers.began(&writer.conn))
        {
            let _ = writer.control("ROLLBACK");
            if let Some(on) = restore {
                let _ = writer.conn.pragma_update(None, "foreign_keys", on);
            }
            return Err(inner.observe_error(Error::from_sqlite(e, path)));
        }
        inner
            .writer_owner
            .store(me, std::sync::atomic::Ordering::Release);
        Ok(Transaction {
            inner,
            guard: Some(guard),
            changed: RefCell::new(Vec::new()),
            restore_foreign_keys: Cell::new(restore),
        })
    }

    pub(crate) fn writer(&self) -> Result<&Writer> {
        self.guard
            .as_ref()
            .and_then(|g| g.as_ref())
            .ok_or(Error::Closed {
                what: "transaction",
                kind: StoreKind::Relational,
            })
    }

    /// The writer connection (crate-internal: the key-value store and migrations use it).
    pub(crate) fn conn(&self) -> Result<&Connection> {
        Ok(&self.writer()?.conn)
    }

    pub(crate) fn inner(&self) -> &Inner {
        self.inner
    }

    fn path(&self) -> &std::path::Path {
        self.inner.config.path()
    }

    fn sql_err(&self, e: rusqlite::Error) -> Error {
        self.inner.observe_error(Error::from_sqlite(e, self.path()))
    }

    /// Records that `table` changed, for the observers notified at commit.
    pub(crate) fn mark_changed(&self, table: &str) {
        if is_internal_table(table) {
            return;
        }
        let mut changed = self.changed.borrow_mut();
        if !changed.iter().any(|t| t == table) {
            changed.push(table.to_owned());
        }
    }

    /// Runs one SQL statement with `?` parameters; returns the number of rows it changed.
    /// Transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, `END`) is refused however it is
    /// spelled (the authorizer checks it): use the API. `SAVEPOINT` and `RELEASE` work.
    ///
    /// # Errors
    /// 14800001 for transaction control or a wrong parameter count; SQLite's errors otherwise.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<usize> {
        Ok(self.run(sql, params, false)?.0)
    }

    /// Runs one statement, attributing its changes to the tables the authorizer saw it write;
    /// with `collect_rows`, also returns its rows (`INSERT … RETURNING`).
    pub(crate) fn run(
        &self,
        sql: &str,
        params: &[Value],
        collect_rows: bool,
    ) -> Result<(usize, Option<ResultSet>)> {
        self.tracked(sql, |stmt, conn| {
            bind(stmt, params, self.path())?;
            let before = conn.total_changes();
            let readonly = stmt.readonly();
            let rows = if collect_rows {
                Some(read::collect(stmt, self.inner.watch(), self.path())?)
            } else {
                let mut rows = stmt.raw_query();
                while rows.next().map_err(|e| self.sql_err(e))?.is_some() {}
                None
            };
            let changed = if readonly || conn.total_changes() == before {
                0
            } else {
                conn.changes() as usize
            };
            Ok((changed, rows))
        })
    }

    /// Prepares `sql` on the writer (from the cache when it can) and runs `f` on it. Every
    /// statement the writer runs goes through here, so the tables it changes — its own and any
    /// that its triggers or foreign-key actions write — are what the observers hear about.
    ///
    /// The statement is the caller's (judged by `store::guard`'s rules) unless peerlite's own
    /// code runs it ([`Writer::as_own`]); see [`Writer::with_prepared`] for the cache.
    fn tracked<R>(
        &self,
        sql: &str,
        f: impl FnOnce(&mut rusqlite::Statement<'_>, &Connection) -> Result<R>,
    ) -> Result<R> {
        let writer = self.writer()?;
        writer.as_caller(|| {
            writer.begin_statement();
            let before = writer.conn.total_changes();
            let outcome = writer
                .with_prepared(sql, |stmt| {
                    if let Some(refusal) = writer.vet(sql).map_err(|e| self.sql_err(e))? {
                        return Err(refusal_error(refusal));
                    }
                    f(stmt, &writer.conn)
                })
                .map_err(|e| self.sql_err(e))
                .and_then(|out| out);
            let changed = writer.conn.total_changes() != before;
            let outcome = outcome.map_err(|e| refused(writer, e));
            let written = writer.finish_statement(sql);
            if written.schema_changed {
                self.inner.schema.invalidate();
            }
            let out = outcome?;
            if changed {
                for table in written.tables.iter() {
                    self.mark_changed(table);
                }
            }
            Ok(out)
        })
    }

    /// Runs peerlite's own statement (its SQL, not the caller's) through the statement API,
    /// so its changes are tracked like any other.
    pub(crate) fn execute_own(&self, sql: &str, params: &[Value]) -> Result<usize> {
        self.writer()?.as_own(|| self.execute(sql, params))
    }

    /// Runs peerlite's own script (see [`execute_own`](Transaction::execute_own)).
    pub(crate) fn execute_script_own(
        &self,
        sql: &str,
    ) -> Result<Vec<super::script::StatementOutput>> {
        self.writer()?.as_own(|| self.execute_script(sql))
    }

    /// Runs `f` as peerlite's own work (see [`Writer::as_own`]).
    pub(crate) fn as_own<R>(&self, f: impl FnOnce() -> Result<R>) -> Result<R> {
        self.writer()?.as_own(f)
    }

    /// Runs a read-only SQL query; sees this transaction's own writes.
    ///
    /// # Errors
    /// 14800019 when the statement writes; 17050001 for a pragma peerlite refuses.
    pub fn query_sql(&self, sql: &str, params: &[Value]) -> Result<ResultSet> {
        let writer = self.writer()?;
        writer.as_caller(|| {
            writer.begin_statement();
            // A refused pragma fails while it is prepared (where a setting takes effect).
            let prepared = writer.with_prepared(sql, |stmt| {
                if !stmt.readonly() {
                    return Err(Error::NotAQuery {
                        sql: sql.to_owned(),
                    });
                }
                bind(stmt, params, self.path())?;
                read::collect(stmt, self.inner.watch(), self.path())
            });
            prepared.map_err(|e| refused(writer, read::refused_on_reader(self.sql_err(e), sql)))?
        })
    }

    /// Runs predicates as a query of `columns` (all when empty); sees this transaction's writes.
    pub fn query(&self, predicates: &RdbPredicates, columns: &[&str]) -> Result<ResultSet> {
        read::query(
            self.conn()?,
            &self.inner.schema,
            predicates,
            columns,
            self.inner.watch(),
            self.path(),
        )
    }

    fn resolve(
        &self,
        table: &str,
        columns: &ValuesBucket,
    ) -> Result<(std::sync::Arc<TableInfo>, Vec<String>)> {
        self.inner
            .schema
            .resolve_columns(self.conn()?, table, columns.columns(), self.path())
    }

    /// Inserts one row; returns its rowid.
    pub fn insert(&self, table: &str, values: &ValuesBucket) -> Result<i64> {
        self.insert_with_conflict(table, values, ConflictResolution::None)
    }

    /// Inserts one row with a conflict clause; returns its rowid, or -1 when `Ignore` skipped it.
    pub fn insert_with_conflict(
        &self,
        table: &str,
        values: &ValuesBucket,
        conflict: ConflictResolution,
    ) -> Result<i64> {
        let (info, columns) = self.resolve(table, values)?;
        self.tracked(&insert_sql(&info, &columns, conflict), |stmt, conn| {
            bind(stmt, values.values(), self.path())?;
            let n = stmt.raw_execute().map_err(|e| self.sql_err(e))?;
            Ok(if n == 0 { -1 } else { conn.last_insert_rowid() })
        })
    }

    /// Inserts many rows with one prepared statement per run of rows that name the same
    /// columns; returns how many were inserted.
    pub fn batch_insert(&self, table: &str, rows: &[ValuesBucket]) -> Result<usize> {
        let mut inserted = 0usize;
        let mut start = 0usize;
        while start < rows.len() {
            let first = &rows[start];
            let (info, columns) = self.resolve(table, first)?;
            let run = rows[start..]
                .iter()
                .take_while(|r| r.same_columns(first))
                .count();
            // Many rows per statement: a statement's fixed costs (and, on a distributed
            // table, its statement journal) are paid once per chunk instead of once per row.
            let per_statement = if columns.is_empty() {
                1
            } else {
                (MAX_PARAMETERS / columns.len()).clamp(1, MAX_ROWS_PER_INSERT)
            };
            for chunk in rows[start..start + run].chunks(per_statement) {
                inserted +=
                    self.tracked(&insert_rows_sql(&info, &columns, chunk.len()), |stmt, _| {
                        let mut index = 1;
                        for row in chunk {
                            for v in row.values() {
                                read::check_storable(v)?;
                                stmt.raw_bind_parameter(index, v)
                                    .map_err(|e| self.sql_err(e))?;
                                index += 1;
                            }
                        }
                        stmt.raw_execute().map_err(|e| self.sql_err(e))
                    })?;
            }
            start += run;
        }
        Ok(inserted)
    }

    /// Sets `values` on the rows the predicates select; returns how many changed.
    pub fn update(&self, values: &ValuesBucket, predicates: &RdbPredicates) -> Result<usize> {
        self.update_with_conflict(values, predicates, ConflictResolution::None)
    }

    /// `update` with a conflict clause.
    pub fn update_with_conflict(
        &self,
        values: &ValuesBucket,
        predicates: &RdbPredicates,
        conflict: ConflictResolution,
    ) -> Result<usize> {
        if values.is_empty() {
            return Err(Error::invalid(
                StoreKind::Relational,
                "update needs at least one column to set",
            ));
        }
        let names = values.columns().chain(predicates.referenced_columns());
        let (info, _) = self.inner.schema.resolve_columns(
            self.conn()?,
            predicates.table(),
            names,
            self.path(),
        )?;
        let mut sets = Vec::with_capacity(values.len());
        for c in values.columns() {
            let name = info
                .resolve(c)
                .map(quote_ident)
                .ok_or_else(|| Error::UnknownColumn {
                    table: info.name.clone(),
                    column: c.to_owned(),
                    kind: StoreKind::Relational,
                })?;
            sets.push(format!("{name} = ?"));
        }
        let filter = predicates.compile_mutation_filter(&info)?;
        let sql = format!(
            "UPDATE{} {} SET {}{}",
            conflict.sql(),
            info.quoted(),
            sets.join(", "),
            filter.sql
        );
        let mut params: Vec<Value> = values.values().cloned().collect();
        params.extend(filter.params);
        self.run_mutation(&sql, &params)
    }

    /// Deletes the rows the predicates select; returns how many.
    pub fn delete(&self, predicates: &RdbPredicates) -> Result<usize> {
        let (info, _) = self.inner.schema.resolve_columns(
            self.conn()?,
            predicates.table(),
            predicates.referenced_columns(),
            self.path(),
        )?;
        let filter = predicates.compile_mutation_filter(&info)?;
        let sql = format!("DELETE FROM {}{}", info.quoted(), filter.sql);
        self.run_mutation(&sql, &filter.params)
    }

    fn run_mutation(&self, sql: &str, params: &[Value]) -> Result<usize> {
        self.tracked(sql, |stmt, _| {
            bind(stmt, params, self.path())?;
            stmt.raw_execute().map_err(|e| self.sql_err(e))
        })
    }

    /// Commits, then tells the observers which tables changed.
    pub fn commit(mut self) -> Result<()> {
        // What the layers above commit with the changes (change capture: the clock's
        // high-water mark, so the clock never issues a timestamp twice, even after a crash).
        let prepared = self.writer().and_then(|w| {
            self.inner
                .layers
                .before_commit(&w.conn, self.path())
                .map_err(|e| self.sql_err(e))
        });
        if let Err(e) = prepared {
            self.finish(true);
            return Err(e);
        }
        let result = self
            .writer()
            .and_then(|w| w.control("COMMIT").map_err(|e| self.sql_err(e)));
        if result.is_err() {
            self.finish(true);
            return result;
        }
        self.finish(false);
        let changed = self.changed.take();
        if !changed.is_empty() {
            self.inner
                .observers
                .notify(crate::SubscribeType::Local, &changed[..]);
        }
        self.inner.layers.after_commit(self.inner);
        Ok(())
    }

    /// Rolls back everything this transaction did.
    pub fn rollback(mut self) -> Result<()> {
        let result = self
            .writer()
            .and_then(|w| w.control("ROLLBACK").map_err(|e| self.sql_err(e)));
        self.finish(true);
        result
    }

    /// Ends the transaction: rolls back what is still open when `rolled_back`, restores
    /// foreign keys, releases the writer. After a rollback the schema cache may describe tables
    /// that no longer exist, so it is dropped.
    fn finish(&mut self, rolled_back: bool) {
        if let Some(guard) = self.guard.take() {
            if let Some(writer) = guard.as_ref() {
                if rolled_back && !writer.conn.is_autocommit() {
                    let _ = writer.control("ROLLBACK");
                }
                if rolled_back {
                    self.inner.schema.invalidate();
                }
                if let Some(on) = self.restore_foreign_keys.take() {
                    let _ = writer.conn.pragma_update(None, "foreign_keys", on);
                }
            }
            self.inner
                .writer_owner
                .store(0, std::sync::atomic::Ordering::Release);
            drop(guard);
        }
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        self.finish(true);
    }
}

/// Turns the authorizer's refusals (transaction control, writes to device tables, peerlite's
/// own objects) into clear errors.
pub(crate) fn refused(writer: &Writer, err: Error) -> Error {
    match writer.take_refusal() {
        Some(refusal) => refusal_error(refusal),
        None => err,
    }
}

fn refusal_error(refusal: Refusal) -> Error {
    match refusal {
        Refusal::Control => Error::invalid(
            StoreKind::Relational,
            "transaction control (BEGIN / COMMIT / ROLLBACK / END) inside peerlite's transaction: \
             every call, and every script, runs in one transaction of its own — SAVEPOINT and \
             RELEASE are allowed",
        ),
        Refusal::DeviceTable(table) => Error::ReadOnlyDeviceTable { table },
        Refusal::Protected { what, reason } => Error::Protected { what, reason },
    }
}

/// Parameters one statement may bind (SQLite's default `SQLITE_MAX_VARIABLE_NUMBER`).
const MAX_PARAMETERS: usize = 32_766;
/// Rows per `batch_insert` statement: enough to amortise a statement, few enough that the
/// statement cache holds one shape per table.
const MAX_ROWS_PER_INSERT: usize = 256;

/// `INSERT INTO t (columns) VALUES (…), (…)` for `rows` rows (`DEFAULT VALUES` without columns).
fn insert_rows_sql(info: &TableInfo, columns: &[String], rows: usize) -> String {
    if columns.is_empty() || rows <= 1 {
        return insert_sql(info, columns, ConflictResolution::None);
    }
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let one = format!("({})", vec!["?"; cols.len()].join(", "));
    format!(
        "INSERT INTO {} ({}) VALUES {}",
        info.quoted(),
        cols.join(", "),
        vec![one.as_str(); rows].join(", ")
    )
}

fn insert_sql(info: &TableInfo, columns: &[String], conflict: ConflictResolution) -> String {
    if columns.is_empty() {
        return format!(
            "INSERT{} INTO {} DEFAULT VALUES",
            conflict.sql(),
            info.quoted()
        );
    }
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let marks = vec!["?"; cols.len()].join(", ");
    format!(
        "INSERT{} INTO {} ({}) VALUES ({marks})",
        conflict.sql(),
        info.quoted(),
        cols.join(", ")
    )
}
