//! `RdbStore`: the relational store. One writer connection and a pool of readers over one
//! SQLite file in WAL mode; `Send + Sync` and cheap to clone (clones share the connections).
//!
//! ```
//! use peerlite::{bucket, RdbPredicates, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let store = RdbStore::open(StoreConfig::new(dir.path().join("RdbTest.db")))?;
//! store.execute(
//!     "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER, SALARY REAL, CODES BLOB)",
//!     &[],
//! )?;
//! let id = store.insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 18, "SALARY" => 100.5 })?;
//! let changed = store.update(
//!     &bucket! { "AGE" => 19 },
//!     &RdbPredicates::new("EMPLOYEE").equal_to("ID", id),
//! )?;
//! assert_eq!(changed, 1);
//! let mut rs = store.query(&RdbPredicates::new("EMPLOYEE").equal_to("NAME", "Lisa"), &[])?;
//! assert!(rs.go_to_first_row()?);
//! assert_eq!(rs.get_long("AGE")?, 19);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::checkpointer::Checkpointer;
use super::config::{SecurityLevel, StoreConfig};
use super::connection::{self, Role};
use super::cursor::{LiveState, Liveness};
use super::layers::{Layer, Layers};
use super::meta;
use super::observer::{DEFAULT_MAX_OBSERVERS, ObserverId, ObserverRegistry, SubscribeType};
use super::pool::ReaderPool;
use super::predicates::RdbPredicates;
use super::read;
use super::result_set::ResultSet;
use super::schema::SchemaCache;
use super::transaction::{ConflictResolution, Transaction, thread_token};
use super::writer::Writer;
use crate::StoreKind;
use crate::error::{Error, Result};
use crate::value::{Value, ValuesBucket};

/// State shared by every clone of a store.
pub(crate) struct Inner {
    pub config: StoreConfig,
    pub writer: Mutex<Option<Writer>>,
    /// The background checkpoint of a writable store.
    pub checkpoints: Option<Checkpointer>,
    /// The thread token of the transaction holding the writer (0 when free), so that a nested
    /// write on the same thread fails instead of deadlocking.
    pub writer_owner: AtomicU64,
    pub readers: ReaderPool,
    pub live: Arc<LiveState>,
    pub schema: SchemaCache,
    pub observers: ObserverRegistry<[String]>,
    /// What the layers above the store (change capture, sync, backup, repair, versioned open)
    /// attached to it: their state and their hooks.
    pub layers: Arc<Layers>,
    /// This store, for background work of the layers above (automatic backups).
    pub this: std::sync::Weak<Inner>,
    /// Keeps peerlite from opening this file with a plain descriptor while the store is open;
    /// released by `close`.
    pub open_file: Mutex<Option<connection::OpenFile>>,
    /// The app's handles on the store (every clone; not a layer's background thread's).
    app_handles: AtomicU64,
}

impl Drop for Inner {
    /// A store dropped without `close()` closes like `close()`: readers first, so the writer
    /// is the last connection and leaves a checkpointed database without a WAL beside it.
    fn drop(&mut self) {
        if let Some(c) = &self.checkpoints {
            c.stop();
        }
        self.readers.clear();
        let writer = self
            .writer
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(w) = writer {
            let _ = checkpoint_at_close(&w.conn);
        }
    }
}

/// The last connection folds the WAL into the database file — when it can at once: another
/// process writing (or reading an old snapshot) keeps its WAL, and a reader that closed its
/// store must not wait for that writer (`peerlite sql DB "SELECT …"` answers at once).
fn checkpoint_at_close(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::ZERO)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("path", &self.config.path())
            .field("closed", &self.live.is_closed())
            .finish()
    }
}

impl Inner {
    pub fn ensure_open(&self) -> Result<()> {
        if self.live.is_closed() {
            return Err(Error::Closed {
                what: "store",
                kind: StoreKind::Relational,
            });
        }
        Ok(())
    }

    pub fn watch(&self) -> Liveness {
        self.live.watch(StoreKind::Relational)
    }

    /// Every SQLite failure passes through here on its way to the caller: corruption leaves
    /// the persistent flag that makes the next open repair (or refuse).
    pub fn observe_error(&self, err: Error) -> Error {
        if err.is_corruption() {
            // The caller gets the error; the log line is for `-v` (a command line prints the
            // error itself, and its first stderr line must be that error).
            tracing::info!(path = ?self.config.path(), %err, "database corruption detected");
            self.layers.corruption(self.config.path(), &err);
        }
        err.for_store(self.config.kind)
    }

    /// The attached layer of type `T` (see [`Layers`]).
    pub fn layer<T: Layer>(&self) -> Option<&T> {
        self.layers.get()
    }

    /// Runs `f` on a reader connection.
    pub fn read<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        self.ensure_open()?;
        self.readers.with(f).map_err(|e| self.observe_error(e))
    }
}

/// The relational store.
#[derive(Debug)]
pub struct RdbStore {
    pub(crate) inner: Arc<Inner>,
    /// An app's handle (every clone of an opened store), not one a background thread of a
    /// layer holds (an automatic backup): the drop of the app's last handle ends the store.
    app: bool,
}

impl Clone for RdbStore {
    fn clone(&self) -> Self {
        if self.app {
            self.inner.app_handles.fetch_add(1, Ordering::AcqRel);
        }
        RdbStore {
            inner: Arc::clone(&self.inner),
            app: self.app,
        }
    }
}

impl Drop for RdbStore {
    /// The app's last handle tells the layers the store is closing (an automatic backup still
    /// running holds the store too, and is waited for), so the store closes here, not on a
    /// background thread after this returns.
    fn drop(&mut self) {
        if self.app && self.inner.app_handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.layers.closing();
        }
    }
}

impl RdbStore {
    /// Opens the file as it is, with `layers` attached. `prepare` runs on the first connection
    /// (the writer; a reader when read-only), with whether it may write, before the store is
    /// built: the layers read and settle what they keep in the database there.
    pub(crate) fn open_layered(
        config: StoreConfig,
        layers: Layers,
        prepare: impl FnOnce(&Connection, &StoreConfig, bool) -> Result<()>,
    ) -> Result<RdbStore> {
        let layers = Arc::new(layers);
        let (writer, probe, checkpoints) = if config.read_only {
            (None, Some(connection::open(&config, Role::Reader)?), None)
        } else {
            let checkpoints = Checkpointer::start(&config);
            let writer = Writer::open(&config, &layers, &checkpoints)?;
            (Some(writer), None, Some(checkpoints))
        };
        if !config.read_only && config.security_level >= SecurityLevel::S3 {
            restrict_permissions(config.path())?;
        }
        if let Some(first) = writer.as_ref().map(|w| &w.conn).or(probe.as_ref()) {
            prepare(first, &config, writer.is_some())?;
        }
        let inner = Arc::new_cyclic(|this| Inner {
            readers: ReaderPool::new(&config),
            writer: Mutex::new(writer),
            checkpoints,
            writer_owner: AtomicU64::new(0),
            live: Arc::new(LiveState::default()),
            schema: SchemaCache::default(),
            observers: ObserverRegistry::new(StoreKind::Relational, DEFAULT_MAX_OBSERVERS),
            layers,
            this: this.clone(),
            open_file: Mutex::new(Some(connection::OpenFile::register(config.path()))),
            app_handles: AtomicU64::new(1),
            config,
        });
        if let Some(conn) = probe {
            inner.readers.seed(conn);
        }
        let store = RdbStore { inner, app: true };
        store.check_security_level()?;
        Ok(store)
    }

    /// A handle for a background thread of a layer (an automatic backup): its drop does not
    /// end the store.
    pub(crate) fn internal(inner: Arc<Inner>) -> RdbStore {
        RdbStore { inner, app: false }
    }

    /// Records the level a store is created at; a later open may raise it but never lower it.
    fn check_security_level(&self) -> Result<()> {
        let wanted = self.inner.config.security_level;
        let path = self.inner.config.path();
        let guard = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stored = match guard.as_ref() {
            Some(w) => {
                meta::get(&w.conn, "security_level").map_err(|e| Error::from_sqlite(e, path))?
            }
            None => self.inner.read(|c| {
                meta::get(c, "security_level").map_err(|e| Error::from_sqlite(e, path))
            })?,
        };
        let stored = stored
            .and_then(|s| s.parse::<u8>().ok())
            .and_then(SecurityLevel::from_u8);
        if let Some(stored) = stored.filter(|s| wanted < *s) {
            return Err(Error::ConfigChanged {
                detail: format!(
                    "the store was created at security level {stored}; opening it at {wanted} would lower it"
                ),
                kind: StoreKind::Relational,
            });
        }
        if let Some(w) = guard
            .as_ref()
            .filter(|_| stored != Some(wanted) && stored.is_none_or(|s| wanted > s))
        {
            meta::set(&w.conn, "security_level", &wanted.as_u8().to_string())
                .map_err(|e| Error::from_sqlite(e, path))?;
        }
        // Every store has an identity: backups record it, so a restore can tell a backup of
        // this database from one of another.
        if let Some(w) = guard.as_ref()
            && meta::get(&w.conn, "store_id")
                .map_err(|e| Error::from_sqlite(e, path))?
                .is_none()
        {
            meta::set(&w.conn, "store_id", &meta::new_store_id(path))
                .map_err(|e| Error::from_sqlite(e, path))?;
        }
        Ok(())
    }

    /// Moves every committed page from the write-ahead log into the database file and empties
    /// the log (`wal_checkpoint(TRUNCATE)`) — the maintenance an app runs when it is idle, so
    /// that the next commit does not pay for a large automatic checkpoint. Returns whether it
    /// completed: readers still using older pages keep part of the log until they finish.
    ///
    /// ```
    /// use peerlite::{RdbStore, StoreConfig};
    /// let dir = tempfile::tempdir()?;
    /// let store = RdbStore::open(StoreConfig::new(dir.path().join("a.db")))?;
    /// store.execute("CREATE TABLE t(x)", &[])?;
    /// assert!(store.checkpoint()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// 14800001 inside a transaction on this thread (the checkpoint waits for it to end).
    pub fn checkpoint(&self) -> Result<bool> {
        self.inner.ensure_open()?;
        if self
            .inner
            .writer_owner
            .load(std::sync::atomic::Ordering::Acquire)
            == super::transaction::thread_token()
        {
            return Err(Error::invalid(
                StoreKind::Relational,
                "checkpoint inside a transaction: commit it first",
            ));
        }
        let guard = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(writer) = guard.as_ref() else {
            return Err(Error::ReadOnly {
                detail: "this store has no writer".into(),
            });
        };
        let busy: i64 = writer
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(|e| self.inner.observe_error(Error::from_sqlite(e, self.path())))?;
        Ok(busy == 0)
    }

    /// The database's epoch: a random id replaced when the database is restored or re-created,
    /// so peers never mistake its new changes for ones they have already seen.
    pub fn epoch(&self) -> Result<String> {
        let path = self.path();
        self.inner
            .read(|c| meta::get(c, "epoch").map_err(|e| Error::from_sqlite(e, path)))
            .map(Option::unwrap_or_default)
    }

    /// This database's identity (a random id made when peerlite first opened it writable).
    pub fn store_id(&self) -> Result<String> {
        let path = self.path();
        self.inner
            .read(|c| meta::get(c, "store_id").map_err(|e| Error::from_sqlite(e, path)))
            .map(Option::unwrap_or_default)
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        self.inner.config.path()
    }

    /// The schema version (`PRAGMA user_version`); 0 for a store never versioned.
    ///
    /// # Errors
    /// 14800001 when `user_version` is negative (another tool set it): that is no schema version
    /// a migration can start from; [`user_version`](RdbStore::user_version) reads it as it is.
    pub fn version(&self) -> Result<u32> {
        let raw = self.user_version()?;
        u32::try_from(raw).map_err(|_| {
            Error::invalid(
                StoreKind::Relational,
                format!(
                    "the database's user_version is {raw}, which is no schema version (versions are 0 and up); set one with PRAGMA user_version = N"
                ),
            )
        })
    }

    /// `PRAGMA user_version` as SQLite keeps it: a signed 32-bit number, which tools other than
    /// peerlite may have set negative.
    pub fn user_version(&self) -> Result<i32> {
        let path = self.path();
        self.inner.read(|c| {
            c.query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(|e| Error::from_sqlite(e, path))
        })
    }

    /// Starts a write transaction, waiting for the writer. Commit it with
    /// [`Transaction::commit`]; dropping it rolls back.
    ///
    /// # Errors
    /// 14800014 closed store; 14800027 read-only store; 14800001 when this thread already holds
    /// a transaction on this store.
    pub fn begin_transaction(&self) -> Result<Transaction<'_>> {
        Transaction::begin(&self.inner, false)
    }

    /// Runs `f` in a transaction: commits when it returns `Ok`, rolls back on `Err` or panic.
    pub fn transaction<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self.begin_transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs one SQL statement with `?` parameters in its own transaction; returns rows changed.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<usize> {
        self.transaction(|tx| tx.execute(sql, params))
    }

    /// Runs a read-only SQL query.
    ///
    /// # Errors
    /// 14800019 when the statement writes.
    pub fn query_sql(&self, sql: &str, params: &[Value]) -> Result<ResultSet> {
        self.inner
            .read(|c| read::query_sql(c, sql, params, self.inner.watch(), self.path()))
    }

    /// Runs predicates as a query of `columns` (all when empty).
    pub fn query(&self, predicates: &RdbPredicates, columns: &[&str]) -> Result<ResultSet> {
        self.inner.read(|c| {
            read::query(
                c,
                &self.inner.schema,
                predicates,
                columns,
                self.inner.watch(),
                self.path(),
            )
        })
    }

    /// Inserts one row; returns its rowid.
    pub fn insert(&self, table: &str, values: &ValuesBucket) -> Result<i64> {
        self.transaction(|tx| tx.insert(table, values))
    }

    /// Inserts one row with a conflict clause; returns its rowid, or -1 when skipped.
    pub fn insert_with_conflict(
        &self,
        table: &str,
        values: &ValuesBucket,
        conflict: ConflictResolution,
    ) -> Result<i64> {
        self.transaction(|tx| tx.insert_with_conflict(table, values, conflict))
    }

    /// Inserts all rows in one transaction (all or none); returns how many.
    pub fn batch_insert(&self, table: &str, rows: &[ValuesBucket]) -> Result<usize> {
        self.transaction(|tx| tx.batch_insert(table, rows))
    }

    /// Sets `values` on the selected rows; returns how many changed.
    pub fn update(&self, values: &ValuesBucket, predicates: &RdbPredicates) -> Result<usize> {
        self.transaction(|tx| tx.update(values, predicates))
    }

    /// `update` with a conflict clause.
    pub fn update_with_conflict(
        &self,
        values: &ValuesBucket,
        predicates: &RdbPredicates,
        conflict: ConflictResolution,
    ) -> Result<usize> {
        self.transaction(|tx| tx.update_with_conflict(values, predicates, conflict))
    }

    /// Deletes the selected rows; returns how many.
    pub fn delete(&self, predicates: &RdbPredicates) -> Result<usize> {
        self.transaction(|tx| tx.delete(predicates))
    }

    /// Subscribes to data changes; a local observer gets the names of the tables each
    /// committed transaction changed. At most 8 observers per store.
    ///
    /// # Errors
    /// 17000001 past the cap; 14800014 closed store.
    pub fn on_data_change(
        &self,
        kind: SubscribeType,
        observer: impl Fn(&[String]) + Send + Sync + 'static,
    ) -> Result<ObserverId> {
        self.inner.ensure_open()?;
        self.inner.observers.add(kind, Arc::new(observer))
    }

    /// Unsubscribes one observer, or all of `kind` when `id` is `None`; returns how many.
    pub fn off_data_change(&self, kind: SubscribeType, id: Option<ObserverId>) -> usize {
        self.inner.observers.remove(kind, id)
    }

    /// Closes the store: every later call on it, its clones and its result sets fails with
    /// 14800014. Waits for a transaction running on another thread.
    pub fn close(&self) -> Result<()> {
        if self
            .inner
            .writer_owner
            .load(std::sync::atomic::Ordering::Acquire)
            == thread_token()
        {
            return Err(Error::invalid(
                StoreKind::Relational,
                "close() inside a transaction on this store; commit or roll back first",
            ));
        }
        self.inner.layers.closing();
        self.inner.live.close();
        if let Some(c) = &self.inner.checkpoints {
            c.stop();
        }
        // Readers first, so the writer is the last connection: it checkpoints the WAL into the
        // database file, which is then complete on its own (a file copy of it is a backup).
        self.inner.readers.clear();
        let mut writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = writer.take()
            && let Err(e) = checkpoint_at_close(&w.conn)
        {
            tracing::debug!(path = ?self.path(), %e, "checkpoint at close did not complete");
        }
        drop(writer);
        self.inner.observers.clear();
        *self
            .inner
            .open_file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        Ok(())
    }

    /// True after [`close`](RdbStore::close).
    pub fn is_closed(&self) -> bool {
        self.inner.live.is_closed()
    }
}

/// S3 and S4 data is readable by its owner only: the database and its WAL files.
#[cfg(unix)]
fn restrict_permissions(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(e) if suffix.is_empty() || e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("restricting permissions of", file, e));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &std::path::Path) -> Result<()> {
    Ok(())
}
