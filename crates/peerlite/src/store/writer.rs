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

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use super::checkpointer::Checkpointer;
use super::config::StoreConfig;
use super::connection::{self, Role};
use crate::error::Result;

/// Tables whose changes are peerlite's own bookkeeping and never reported.
pub(crate) fn is_internal_table(name: &str) -> bool {
    let has_prefix = |p: &[u8]| {
        name.as_bytes()
            .get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    has_prefix(b"peerlite_") || has_prefix(b"sqlite_")
}

/// What the authorizer saw while statements were being prepared.
#[derive(Debug, Default)]
struct Seen {
    written: Vec<String>,
    schema_changed: bool,
    /// A caller's statement tried to control the transaction and was refused.
    denied_control: bool,
    /// A caller's statement tried to write this device table and was refused.
    denied_device_table: Option<String>,
}

/// Why the authorizer refused a caller's statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `BEGIN` / `COMMIT` / `ROLLBACK` inside peerlite's transaction.
    Control,
    /// A write to another device's rows.
    DeviceTable(String),
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

impl Writer {
    pub fn open(
        config: &StoreConfig,
        sync: &Arc<crate::changes::state::SyncState>,
        checkpoints: &Checkpointer,
    ) -> Result<Writer> {
        let mut conn = connection::open(config, Role::Writer)?;
        checkpoints
            .attach(&mut conn)
            .map_err(|e| crate::Error::from_sqlite(e, config.path()))?;
        crate::changes::state::register_functions(&conn, sync)
            .map_err(|e| crate::Error::from_sqlite(e, config.path()))?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let control = Arc::new(AtomicBool::new(false));
        let (sink, allowed, state) = (Arc::clone(&seen), Arc::clone(&control), Arc::clone(sync));
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if matches!(ctx.action, AuthAction::Transaction { .. })
                && !allowed.load(Ordering::Acquire)
            {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .denied_control = true;
                return Authorization::Deny;
            }
            if let Some(table) = written_device_table(&ctx)
                && state.capturing()
            {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .denied_device_table = Some(table.to_owned());
                return Authorization::Deny;
            }
            record(&sink, &ctx);
            Authorization::Allow
        }))
        .map_err(|e| crate::Error::from_sqlite(e, config.path()))?;
        Ok(Writer {
            conn,
            seen,
            own_control: control,
            by_sql: RefCell::new(HashMap::new()),
        })
    }

    /// Runs peerlite's own transaction control (`BEGIN IMMEDIATE`, `COMMIT`, `ROLLBACK`).
    pub fn control(&self, sql: &str) -> rusqlite::Result<()> {
        self.own_control.store(true, Ordering::Release);
        let result = self.conn.execute_batch(sql);
        self.own_control.store(false, Ordering::Release);
        result
    }

    /// What the authorizer refused since the last statement began (once).
    pub fn take_refusal(&self) -> Option<Refusal> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let table = seen.denied_device_table.take();
        if std::mem::take(&mut seen.denied_control) {
            return Some(Refusal::Control);
        }
        table.map(Refusal::DeviceTable)
    }

    /// Call before preparing `sql` for a raw execution.
    pub fn begin_statement(&self) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.written.clear();
        seen.schema_changed = false;
        seen.denied_control = false;
        seen.denied_device_table = None;
    }

    /// Call after running `sql`: the tables it may have written, learned now (the statement was
    /// prepared) or remembered from an earlier preparation (it came from the cache).
    pub fn finish_statement(&self, sql: &str) -> Written {
        let (written, schema_changed) = {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
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

fn record(seen: &Mutex<Seen>, ctx: &AuthContext<'_>) {
    if ctx.database_name.is_some_and(|db| db != "main") {
        return;
    }
    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    match ctx.action {
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. }
            if !is_internal_table(table_name) && !seen.written.iter().any(|t| t == table_name) =>
        {
            seen.written.push(table_name.to_owned());
        }
        AuthAction::CreateTable { .. }
        | AuthAction::CreateIndex { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::CreateView { .. }
        | AuthAction::DropTable { .. }
        | AuthAction::DropIndex { .. }
        | AuthAction::DropTrigger { .. }
        | AuthAction::DropView { .. }
        | AuthAction::AlterTable { .. } => seen.schema_changed = true,
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
