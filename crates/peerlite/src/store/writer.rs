//! The store's single writer connection, and how it learns which tables raw SQL writes.
//!
//! `sqlite3_update_hook` misses WITHOUT ROWID tables and `DELETE` without `WHERE` (the truncate
//! optimisation), so it cannot drive change notifications. Instead the authorizer, which SQLite
//! calls while it prepares a statement (including the bodies of the triggers it will fire),
//! records the tables the statement may write. Prepared statements are cached, so the
//! recording is kept per SQL text; a statement that then changes rows reports those tables.
//!
//! The authorizer also refuses `BEGIN`, `COMMIT` and `ROLLBACK` unless peerlite itself issues
//! them ([`Writer::control`]): a statement from the caller must never end peerlite's
//! transaction, however it is spelled (comments included). And it refuses writes to device
//! tables (other devices' rows) unless sync is applying them: a refusal at prepare time costs
//! nothing per row, where a trigger would make every applied row run a sub-program and open a
//! statement journal. Statements that sync prepares for device tables never enter the shared
//! statement cache, so a caller can never reuse one.
//!
//! The caller's statements are told apart from peerlite's own: the transaction runs them
//! [`as_caller`](Writer::as_caller), and the authorizer then applies `store::guard`'s rules
//! to them — and, always, to the bodies of the app's triggers (SQLite names the innermost
//! trigger as the accessor; peerlite's own triggers are named `peerlite_…`, a name the
//! caller cannot take).
//!
//! `PRAGMA recursive_triggers` is ON on the writer of a database with distributed tables.
//! SQLite fires DELETE triggers for the rows a REPLACE conflict resolution removes (`INSERT
//! OR REPLACE`, `REPLACE INTO`, `UPDATE OR REPLACE`, an `ON CONFLICT REPLACE` constraint, in
//! a statement or in a trigger body) only then; with it, the capture trigger of a deletion
//! records a tombstone for every such row, so peers delete it too. SQLite's update hook
//! misses these deletions as well, so a capture built on it needs the same switch plus a
//! DELETE trigger. The cost: an app trigger that writes its own table fires itself again, so
//! it needs a guard (`AFTER UPDATE OF col`, or a `WHEN` clause) — documented in the README.
//! Databases without distributed tables keep SQLite's default (off).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use super::checkpointer::Checkpointer;
use super::config::StoreConfig;
use super::connection::{self, Role};
use super::guard::{self, Pending, Verdict};
use super::layers::Layers;
use crate::error::Result;

pub(crate) use super::guard::Refusal;

/// Tables whose changes are peerlite's own bookkeeping and never reported.
pub(crate) fn is_internal_table(name: &str) -> bool {
    guard::is_protected(name)
}

/// What the authorizer saw while statements were being prepared.
#[derive(Debug, Default)]
struct Seen {
    written: Vec<String>,
    schema_changed: bool,
    /// The statement is DDL or ANALYZE: its writes to `sqlite_*` tables are SQLite's own.
    schema_work: bool,
    /// Top-level statements are the caller's and judged (see [`Writer::as_caller`]).
    caller: bool,
    /// The first refusal of the statement being prepared.
    refusal: Option<Refusal>,
    /// Decisions left for [`Writer::vet`].
    pending: Vec<Pending>,
    /// The statement fires one of peerlite's triggers (so the table is distributed).
    fires_capture: bool,
}

/// The prefix of device tables (see `changes::device_table_name`).
pub(crate) const DEVICE_TABLE_PREFIX: &str = "peerlite_dev_";

const MAX_REMEMBERED_STATEMENTS: usize = 512;

/// The writer connection plus its write tracking.
pub(crate) struct Writer {
    pub conn: Connection,
    seen: Arc<Mutex<Seen>>,
    /// Set while peerlite itself runs BEGIN / COMMIT / ROLLBACK.
    own_control: Arc<AtomicBool>,
    by_sql: RefCell<HashMap<String, Arc<[String]>>>,
    /// Depth of [`Writer::as_own`] scopes: inside one, nothing is judged as the caller's.
    own_depth: Cell<u32>,
    /// `PRAGMA recursive_triggers` is on.
    recursive: Cell<bool>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("remembered", &self.by_sql.borrow().len())
            .finish()
    }
}

/// What running one raw statement wrote.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub tables: Arc<[String]>,
    pub schema_changed: bool,
}

/// Restores the caller flag (and the own depth) when a scope ends, panics included.
struct Scope<'w> {
    writer: &'w Writer,
    caller: bool,
    own: bool,
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        self.writer.seen().caller = self.caller;
        if self.own {
            self.writer
                .own_depth
                .set(self.writer.own_depth.get().saturating_sub(1));
        }
    }
}

impl Writer {
    pub fn open(
        config: &StoreConfig,
        layers: &Arc<Layers>,
        checkpoints: &Checkpointer,
    ) -> Result<Writer> {
        let sql_err = |e| crate::Error::from_sqlite(e, config.path());
        let mut conn = connection::open(config, Role::Writer)?;
        checkpoints.attach(&mut conn).map_err(sql_err)?;
        layers.writer_opened(&conn).map_err(sql_err)?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let control = Arc::new(AtomicBool::new(false));
        let (sink, allowed, layers) = (Arc::clone(&seen), Arc::clone(&control), Arc::clone(layers));
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            let mut seen = sink.lock().unwrap_or_else(PoisonError::into_inner);
            if matches!(ctx.action, AuthAction::Transaction { .. })
                && !allowed.load(Ordering::Acquire)
            {
                seen.refusal.get_or_insert(Refusal::Control);
                return Authorization::Deny;
            }
            if let Some(table) = written_device_table(&ctx)
                && !layers.applying_remote()
            {
                seen.refusal
                    .get_or_insert_with(|| Refusal::DeviceTable(table.to_owned()));
                return Authorization::Deny;
            }
            // The app's triggers are judged whoever fires them; peerlite's never; top-level
            // SQL when it is the caller's (and not sync applying rows, capture paused).
            let judged = match ctx.accessor {
                Some(trigger) if guard::is_peerlite_name(trigger) => {
                    seen.fires_capture = true;
                    false
                }
                Some(_) => true,
                None => seen.caller && !layers.applying_remote(),
            };
            if judged {
                match guard::judge(&ctx, ctx.accessor.is_some()) {
                    Verdict::Allow => {}
                    Verdict::Defer(pending) => seen.pending.push(pending),
                    Verdict::Deny(refusal) => {
                        seen.refusal.get_or_insert(refusal);
                        return Authorization::Deny;
                    }
                }
            }
            record(&mut seen, &ctx);
            Authorization::Allow
        }))
        .map_err(sql_err)?;
        let writer = Writer {
            conn,
            seen,
            own_control: control,
            by_sql: RefCell::new(HashMap::new()),
            own_depth: Cell::new(0),
            recursive: Cell::new(false),
        };
        if has_capture_triggers(&writer.conn).map_err(sql_err)? {
            writer.enable_recursive_triggers().map_err(sql_err)?;
        }
        Ok(writer)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs peerlite's own transaction control (`BEGIN IMMEDIATE`, `COMMIT`, `ROLLBACK`).
    pub fn control(&self, sql: &str) -> rusqlite::Result<()> {
        self.own_control.store(true, Ordering::Release);
        let result = self.conn.execute_batch(sql);
        self.own_control.store(false, Ordering::Release);
        result
    }

    /// Runs `f` with top-level statements judged as the caller's — unless peerlite's own code
    /// is running it ([`as_own`](Writer::as_own)).
    pub fn as_caller<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.own_depth.get() > 0 {
            return f();
        }
        let _scope = Scope {
            writer: self,
            caller: std::mem::replace(&mut self.seen().caller, true),
            own: false,
        };
        f()
    }

    /// Runs `f` as peerlite's own work: statements prepared inside, even through the public
    /// statement API, are not judged (their SQL is peerlite's, not the caller's).
    pub fn as_own<R>(&self, f: impl FnOnce() -> R) -> R {
        self.own_depth.set(self.own_depth.get() + 1);
        let _scope = Scope {
            writer: self,
            caller: std::mem::replace(&mut self.seen().caller, false),
            own: true,
        };
        f()
    }

    /// Prepares `sql` and runs `f` on it. A caller's statement that names a protected object
    /// or is a pragma is prepared afresh rather than taken from the statement cache, which
    /// peerlite's own statements share: the authorizer judges it every time.
    pub fn with_prepared<R>(
        &self,
        sql: &str,
        f: impl FnOnce(&mut rusqlite::Statement<'_>) -> R,
    ) -> rusqlite::Result<R> {
        if self.seen().caller && guard::needs_fresh_prepare(sql) {
            Ok(f(&mut self.conn.prepare(sql)?))
        } else {
            let mut cached = self.conn.prepare_cached(sql)?;
            Ok(f(&mut cached))
        }
    }

    /// What the authorizer refused since the last statement began (once).
    pub fn take_refusal(&self) -> Option<Refusal> {
        self.seen().refusal.take()
    }

    /// Call before preparing `sql` for a raw execution.
    pub fn begin_statement(&self) {
        let mut seen = self.seen();
        seen.written.clear();
        seen.schema_changed = false;
        seen.schema_work = false;
        seen.refusal = None;
        seen.pending.clear();
        seen.fires_capture = false;
    }

    /// Call after preparing the caller's statement `sql` and before running it: settles what
    /// the authorizer left pending (which needs the text and the registry), and switches
    /// recursive triggers on the first time a statement fires capture triggers (a database
    /// that became distributed through a restore or another process).
    pub fn vet(&self, sql: &str) -> rusqlite::Result<Option<Refusal>> {
        let (pending, schema_work, fires_capture) = {
            let mut seen = self.seen();
            (
                std::mem::take(&mut seen.pending),
                seen.schema_work,
                std::mem::take(&mut seen.fires_capture),
            )
        };
        if fires_capture && !self.recursive.get() {
            // The flag changes how statements compile: SQLite expires every prepared
            // statement, and this one recompiles with it when it first steps.
            self.as_own(|| self.enable_recursive_triggers())?;
        }
        if pending.is_empty() {
            return Ok(None);
        }
        self.as_own(|| guard::settle(&self.conn, sql, &pending, schema_work))
    }

    /// Makes SQLite compare its in-memory schema with the file's at the start of a transaction
    /// (a statement with a schema check does; another program may have changed the schema
    /// since): the authorizer must judge statements against the schema as it is, or a
    /// trigger dropped elsewhere could still get a write refused.
    pub fn refresh_schema(&self) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached("SELECT 1 FROM main.sqlite_schema WHERE 0")?
            .query([])?
            .next()
            .map(|_| ())
    }

    /// Switches `PRAGMA recursive_triggers` on (see the module documentation for why).
    pub fn enable_recursive_triggers(&self) -> rusqlite::Result<()> {
        if !self.recursive.get() {
            self.conn.execute_batch("PRAGMA recursive_triggers = ON")?;
            self.recursive.set(true);
        }
        Ok(())
    }

    /// Call after running `sql`: the tables it may have written, learned now (the statement was
    /// prepared) or remembered from an earlier preparation (it came from the cache).
    pub fn finish_statement(&self, sql: &str) -> Written {
        let (written, schema_changed) = {
            let mut seen = self.seen();
            (
                std::mem::take(&mut seen.written),
                std::mem::replace(&mut seen.schema_changed, false),
            )
        };
        if schema_changed {
            // Cached statements may now write other tables (new triggers): forget both caches
            // together so that every statement is prepared, and so recorded, again.
            self.forget_statements();
        }
        let tables: Arc<[String]> = if written.is_empty() {
            self.by_sql
                .borrow()
                .get(sql)
                .cloned()
                .unwrap_or_else(|| Arc::from(Vec::new()))
        } else {
            let mut written = written;
            written.sort();
            written.dedup();
            let tables: Arc<[String]> = written.into();
            if self.by_sql.borrow().len() >= MAX_REMEMBERED_STATEMENTS {
                self.forget_statements();
            }
            if !schema_changed {
                self.by_sql
                    .borrow_mut()
                    .insert(sql.to_owned(), Arc::clone(&tables));
            }
            tables
        };
        Written {
            tables,
            schema_changed,
        }
    }

    /// Forgets remembered statements and flushes the statement cache with them, so the two
    /// never disagree.
    pub fn forget_statements(&self) {
        self.by_sql.borrow_mut().clear();
        self.conn.flush_prepared_statement_cache();
    }
}

/// True when the database has peerlite's capture triggers, i.e. distributed tables.
fn has_capture_triggers(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        r"SELECT EXISTS(SELECT 1 FROM main.sqlite_schema WHERE type = 'trigger' AND name LIKE 'peerlite\_%' ESCAPE '\')",
        [],
        |r| r.get(0),
    )
}

/// The device table a statement would write, if any.
fn written_device_table<'c>(ctx: &AuthContext<'c>) -> Option<&'c str> {
    match ctx.action {
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. }
            if table_name
                .get(..DEVICE_TABLE_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(DEVICE_TABLE_PREFIX)) =>
        {
            Some(table_name)
        }
        _ => None,
    }
}

fn record(seen: &mut Seen, ctx: &AuthContext<'_>) {
    use AuthAction as A;
    match ctx.action {
        A::CreateIndex { .. }
        | A::CreateTable { .. }
        | A::CreateTrigger { .. }
        | A::CreateView { .. }
        | A::CreateTempIndex { .. }
        | A::CreateTempTable { .. }
        | A::CreateTempTrigger { .. }
        | A::CreateTempView { .. }
        | A::DropIndex { .. }
        | A::DropTable { .. }
        | A::DropTrigger { .. }
        | A::DropView { .. }
        | A::DropTempIndex { .. }
        | A::DropTempTable { .. }
        | A::DropTempTrigger { .. }
        | A::DropTempView { .. }
        | A::AlterTable { .. }
        | A::CreateVtable { .. }
        | A::DropVtable { .. } => {
            seen.schema_changed = true;
            seen.schema_work = true;
        }
        A::Analyze { .. } | A::Reindex { .. } => seen.schema_work = true,
        A::Insert { table_name } | A::Delete { table_name } | A::Update { table_name, .. }
            if ctx.database_name.is_none_or(|db| db == "main")
                && !is_internal_table(table_name)
                && !seen.written.iter().any(|t| t == table_name) =>
        {
            seen.written.push(table_name.to_owned());
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_tables_are_recognised() {
        assert!(is_internal_table("peerlite_meta"));
        assert!(is_internal_table("PEERLITE_kv"));
        assert!(is_internal_table("sqlite_sequence"));
        assert!(!is_internal_table("peer"));
        assert!(!is_internal_table("EMPLOYEE"));
    }
}
