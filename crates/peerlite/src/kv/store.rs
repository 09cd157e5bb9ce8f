//! `KvStore`: typed key-value entries in one table of a relational store, so backup, repair
//! and sync serve both stores with one mechanism. Every write goes through
//! [`KvTransaction`], which wraps the relational [`Transaction`].
//!
//! ```
//! use peerlite::{KvManager, KvValue, Options};
//!
//! let dir = tempfile::tempdir()?;
//! let manager = KvManager::new(dir.path(), "com.example.app")?;
//! let store = manager.get_kv_store("settings", Options::default())?;
//! store.put("theme", "dark")?;
//! store.put("volume", 7)?;
//! store.put("muted", false)?;
//! assert_eq!(store.get("volume")?, KvValue::Integer(7));
//! assert_eq!(store.get("muted")?, KvValue::Bool(false));
//! assert_eq!(store.get("missing").unwrap_err().code(), 15100004);
//! assert_eq!(store.get_entries("")?.len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::RefCell;
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::types::ToSqlOutput;

use super::manager::Options;
use super::result_set::{Entry, KvResultSet};
use super::value::{KvValue, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::StoreKind;
use crate::error::{Error, Result};
use crate::store::observer::{DEFAULT_MAX_OBSERVERS, ObserverId, ObserverRegistry, SubscribeType};
use crate::store::{RdbStore, Transaction};

/// The table holding a key-value store's entries.
pub(crate) const KV_TABLE: &str = "peerlite_kv";
const GET_LOCAL: &str = "SELECT value, type FROM peerlite_kv WHERE key = ?1";
pub(crate) const KV_SCHEMA: &str = "CREATE TABLE peerlite_kv(key TEXT PRIMARY KEY NOT NULL, value, type INTEGER NOT NULL) WITHOUT ROWID";
const UPSERT: &str = "INSERT INTO peerlite_kv(key, value, type) VALUES (?1, ?2, ?3) ON CONFLICT(key) DO UPDATE SET value = excluded.value, type = excluded.type";
const DELETE: &str = "DELETE FROM peerlite_kv WHERE key = ?1";

/// Device id reported in local change notifications.
pub const LOCAL_DEVICE: &str = "local";

/// What one committed transaction changed, as ArkData reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeNotification {
    /// Keys that did not exist before.
    pub insert_entries: Vec<Entry>,
    /// Keys whose value was replaced (the new value).
    pub update_entries: Vec<Entry>,
    /// Keys removed (with the value they had).
    pub delete_entries: Vec<Entry>,
    /// The device the change comes from.
    pub device_id: String,
}

impl ChangeNotification {
    pub(crate) fn is_empty(&self) -> bool {
        self.insert_entries.is_empty()
            && self.update_entries.is_empty()
            && self.delete_entries.is_empty()
    }
}

pub(crate) struct KvInner {
    pub id: String,
    pub rdb: RdbStore,
    pub options: Options,
    pub(crate) observers: ObserverRegistry<ChangeNotification>,
}

/// A key-value store. `Send + Sync`; clones share the store.
#[derive(Clone)]
pub struct KvStore {
    pub(crate) inner: Arc<KvInner>,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("id", &self.inner.id)
            .field("path", &self.inner.rdb.path())
            .finish()
    }
}

pub(crate) fn kv<T>(r: Result<T>) -> Result<T> {
    r.map_err(|e| e.for_store(StoreKind::KeyValue))
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid(StoreKind::KeyValue, "the key is empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::invalid(
            StoreKind::KeyValue,
            format!(
                "the key is {} bytes; keys are at most {MAX_KEY_BYTES} bytes",
                key.len()
            ),
        ));
    }
    Ok(())
}

fn check_value(key: &str, value: &KvValue) -> Result<()> {
    if matches!(value, KvValue::Float(f) if f.is_nan()) {
        return Err(Error::invalid(
            StoreKind::KeyValue,
            format!(
                "the value of {key:?} is NaN, which SQLite cannot store (it would read back as NULL)"
            ),
        ));
    }
    if value.byte_len() > MAX_VALUE_BYTES {
        return Err(Error::invalid(
            StoreKind::KeyValue,
            format!(
                "the value of {key:?} is {} bytes; values are at most {MAX_VALUE_BYTES} bytes (4 MiB)",
                value.byte_len()
            ),
        ));
    }
    Ok(())
}

/// The smallest string greater than every string starting with `prefix`, if there is one.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn sql_err(conn_path: &std::path::Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::from_sqlite(e, conn_path)
}

/// The value under `key` in `table` (`peerlite_kv`, or a device's table of it).
pub(crate) fn read_value(
    conn: &Connection,
    table: &str,
    key: &str,
    path: &std::path::Path,
) -> Result<Option<KvValue>> {
    // The local table's statement is a constant: a get should not format and allocate it.
    let sql: std::borrow::Cow<'static, str> = if table == KV_TABLE {
        GET_LOCAL.into()
    } else {
        format!(
            "SELECT value, type FROM {} WHERE key = ?1",
            crate::store::schema::quote_ident(table)
        )
        .into()
    };
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err(path))?;
    stmt.raw_bind_parameter(1, key).map_err(sql_err(path))?;
    let mut rows = stmt.raw_query();
    let Some(row) = rows.next().map_err(sql_err(path))? else {
        return Ok(None);
    };
    let tag: i64 = row.get(1).map_err(sql_err(path))?;
    let value = row.get_ref(0).map_err(sql_err(path))?;
    KvValue::from_sql(value, tag)
        .map(Some)
        .ok_or_else(|| Error::TypeMismatch {
            column: key.to_owned(),
            expected: "a value matching its type tag",
            found: tag_name(tag),
        })
}

pub(crate) fn tag_name(tag: i64) -> &'static str {
    match tag {
        0 => "string tag",
        1 => "integer tag",
        2 => "float tag",
        3 => "bool tag",
        4 => "bytes tag",
        _ => "unknown tag",
    }
}

/// The entries of `table` under `prefix`, in key order.
pub(crate) fn read_entries(
    conn: &Connection,
    table: &str,
    prefix: &str,
    path: &std::path::Path,
) -> Result<Vec<Entry>> {
    let end = prefix_end(prefix);
    let table = crate::store::schema::quote_ident(table);
    let sql = match end {
        Some(_) => format!(
            "SELECT key, value, type FROM {table} WHERE key >= ?1 AND key < ?2 ORDER BY key"
        ),
        None => format!("SELECT key, value, type FROM {table} WHERE key >= ?1 ORDER BY key"),
    };
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err(path))?;
    stmt.raw_bind_parameter(1, prefix).map_err(sql_err(path))?;
    if let Some(end) = &end {
        stmt.raw_bind_parameter(2, end.as_str())
            .map_err(sql_err(path))?;
    }
    let mut rows = stmt.raw_query();
    let mut entries = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err(path))? {
        let key: String = row.get(0).map_err(sql_err(path))?;
        let tag: i64 = row.get(2).map_err(sql_err(path))?;
        let value =
            KvValue::from_sql(row.get_ref(1).map_err(sql_err(path))?, tag).ok_or_else(|| {
                Error::TypeMismatch {
                    column: key.clone(),
                    expected: "a value matching its type tag",
                    found: tag_name(tag),
                }
            })?;
        entries.push(Entry { key, value });
    }
    Ok(entries)
}

fn count_entries(conn: &Connection, prefix: &str, path: &std::path::Path) -> Result<usize> {
    let count: rusqlite::Result<i64> = match prefix_end(prefix) {
        Some(end) => conn.query_row(
            "SELECT count(*) FROM peerlite_kv WHERE key >= ?1 AND key < ?2",
            [prefix, end.as_str()],
            |r| r.get(0),
        ),
        None => conn.query_row(
            "SELECT count(*) FROM peerlite_kv WHERE key >= ?1",
            [prefix],
            |r| r.get(0),
        ),
    };
    count.map(|n| n as usize).map_err(sql_err(path))
}

impl KvStore {
    pub(crate) fn new(id: String, rdb: RdbStore, options: Options) -> Result<Self> {
        let store = KvStore {
            inner: Arc::new(KvInner {
                id,
                rdb,
                options,
                observers: ObserverRegistry::new(StoreKind::KeyValue, DEFAULT_MAX_OBSERVERS),
            }),
        };
        super::sync::forward_remote_changes(&store.inner)?;
        Ok(store)
    }

    /// The store's id.
    pub fn store_id(&self) -> &str {
        &self.inner.id
    }

    /// The options it was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        self.inner.rdb.path()
    }

    /// Starts a write transaction; commit it with [`KvTransaction::commit`], dropping rolls back.
    pub fn begin_transaction(&self) -> Result<KvTransaction<'_>> {
        let tx = kv(self.inner.rdb.begin_transaction())?;
        let tracking = self.inner.observers.has(SubscribeType::Local);
        Ok(KvTransaction {
            tx,
            store: self,
            changes: tracking.then(|| RefCell::new(NetChanges::default())),
        })
    }

    /// Runs `f` in a transaction: commits on `Ok`, rolls back on `Err` or panic.
    pub fn transaction<T>(&self, f: impl FnOnce(&KvTransaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self.begin_transaction()?;
        let out = kv(f(&tx))?;
        tx.commit()?;
        Ok(out)
    }

    /// Stores `value` under `key`, replacing any earlier value.
    ///
    /// # Errors
    /// 401 for an empty key, a key over 1024 bytes or a value over 4 MiB (nothing is written).
    pub fn put(&self, key: &str, value: impl Into<KvValue>) -> Result<()> {
        let value = value.into();
        self.transaction(|tx| tx.put(key, value))
    }

    /// Stores every entry in one transaction (all or none).
    pub fn put_batch(&self, entries: &[Entry]) -> Result<()> {
        self.transaction(|tx| tx.put_batch(entries))
    }

    /// The value under `key`.
    ///
    /// # Errors
    /// 15100004 when there is none.
    pub fn get(&self, key: &str) -> Result<KvValue> {
        kv(check_key(key))?;
        let path = self.path();
        kv(self
            .inner
            .rdb
            .inner
            .read(|c| read_value(c, KV_TABLE, key, path)))?
        .ok_or_else(|| Error::NotFound {
            what: format!("key {key:?}"),
        })
    }

    /// Removes `key`; returns whether it existed.
    pub fn delete(&self, key: &str) -> Result<bool> {
        self.transaction(|tx| tx.delete(key))
    }

    /// Removes every key in one transaction; returns how many existed.
    pub fn delete_batch(&self, keys: &[&str]) -> Result<usize> {
        self.transaction(|tx| tx.delete_batch(keys))
    }

    /// Every entry whose key starts with `prefix` (all for ""), in key order.
    pub fn get_entries(&self, prefix: &str) -> Result<Vec<Entry>> {
        let path = self.path();
        kv(self
            .inner
            .rdb
            .inner
            .read(|c| read_entries(c, KV_TABLE, prefix, path)))
    }

    /// The entries under `prefix` as a result set.
    pub fn get_result_set(&self, prefix: &str) -> Result<KvResultSet> {
        let entries = self.get_entries(prefix)?;
        Ok(KvResultSet::new(
            entries,
            self.inner.rdb.inner.live.watch(StoreKind::KeyValue),
        ))
    }

    /// How many keys start with `prefix`.
    pub fn get_result_size(&self, prefix: &str) -> Result<usize> {
        let path = self.path();
        kv(self
            .inner
            .rdb
            .inner
            .read(|c| count_entries(c, prefix, path)))
    }

    /// Subscribes to changes; a local observer gets each committed transaction's inserted,
    /// updated and deleted entries. At most 8 observers.
    ///
    /// # Errors
    /// 15100001 past the cap; 15100005 closed store.
    pub fn on_data_change(
        &self,
        kind: SubscribeType,
        observer: impl Fn(&ChangeNotification) + Send + Sync + 'static,
    ) -> Result<ObserverId> {
        kv(self.inner.rdb.inner.ensure_open())?;
        self.inner.observers.add(kind, Arc::new(observer))
    }

    /// Unsubscribes one observer, or all of `kind` when `id` is `None`; returns how many.
    pub fn off_data_change(&self, kind: SubscribeType, id: Option<ObserverId>) -> usize {
        self.inner.observers.remove(kind, id)
    }

    /// Backs the store up to `name` in its backup directory (see [`RdbStore::backup`]).
    pub fn backup(&self, name: &str) -> Result<crate::BackupInfo> {
        kv(self.inner.rdb.backup(name))
    }

    /// Backs the store up as the request says.
    pub fn backup_with(&self, request: crate::BackupRequest<'_>) -> Result<crate::BackupInfo> {
        kv(self.inner.rdb.backup_with(request))
    }

    /// Restores a backup by name or path (see [`RdbStore::restore`]); result sets taken before
    /// are closed (15100005 on use).
    pub fn restore(&self, name_or_path: &str) -> Result<crate::RestoreReport> {
        kv(self.inner.rdb.restore(name_or_path))
    }

    /// Restores as the request says.
    pub fn restore_with(&self, request: crate::RestoreRequest<'_>) -> Result<crate::RestoreReport> {
        kv(self.inner.rdb.restore_with(request))
    }

    /// The store's backups, newest first.
    pub fn backups(&self) -> Result<Vec<crate::BackupInfo>> {
        kv(self.inner.rdb.backups())
    }

    /// Deletes backups by name: one result per name.
    pub fn delete_backup(&self, names: &[&str]) -> Vec<crate::DeleteResult> {
        let mut results = self.inner.rdb.delete_backup(names);
        for r in &mut results {
            if let Err(e) = std::mem::replace(&mut r.result, Ok(())) {
                r.result = Err(e.for_store(StoreKind::KeyValue));
            }
        }
        results
    }

    /// Checks the store's file; 15100003 when it is corrupted.
    pub fn check(&self, mode: crate::CheckMode) -> Result<()> {
        kv(self.inner.rdb.check(mode))
    }

    /// Moves the write-ahead log into the database file and empties it; see
    /// [`RdbStore::checkpoint`]. Returns whether it completed.
    ///
    /// ```
    /// use peerlite::{KvManager, Options};
    /// let dir = tempfile::tempdir()?;
    /// let store = KvManager::at(dir.path())?.get_kv_store("s", Options::default())?;
    /// store.put("k", "v")?;
    /// assert!(store.checkpoint()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// 401 inside a transaction on this thread, 15100005 after close.
    pub fn checkpoint(&self) -> Result<bool> {
        kv(self.inner.rdb.checkpoint())
    }

    /// How this open dealt with corruption.
    pub fn rebuilt(&self) -> crate::RebuiltType {
        self.inner.rdb.rebuilt()
    }

    /// The details of the rebuild this open did, if any.
    pub fn repair_report(&self) -> Option<&crate::RepairReport> {
        self.inner.rdb.repair_report()
    }

    /// Adds the salvaged entries this store lacks (see [`RdbStore::merge_salvage`]).
    pub fn merge_salvage(&self, salvage: &std::path::Path) -> Result<usize> {
        kv(self.inner.rdb.merge_salvage(salvage)).map(|tables| tables.iter().map(|(_, n)| n).sum())
    }

    /// Closes the store; later calls fail with 15100005.
    pub fn close(&self) -> Result<()> {
        self.inner.observers.clear();
        kv(self.inner.rdb.close())
    }

    /// True after `close` (here or through the manager).
    pub fn is_closed(&self) -> bool {
        self.inner.rdb.is_closed()
    }
}

/// A write transaction on a key-value store.
pub struct KvTransaction<'s> {
    tx: Transaction<'s>,
    store: &'s KvStore,
    /// Each touched key's value before the transaction and now; collected only while someone
    /// listens, so unobserved writes pay nothing for it. The notification is built from the
    /// net change at commit (delete then put of a key is one update).
    changes: Option<RefCell<NetChanges>>,
}

/// Touched keys in the order first touched, each with its value before and now.
#[derive(Default)]
struct NetChanges {
    order: Vec<(String, Option<KvValue>, Option<KvValue>)>,
    index: std::collections::HashMap<String, usize>,
}

fn notification(changes: NetChanges) -> ChangeNotification {
    let mut n = ChangeNotification {
        device_id: LOCAL_DEVICE.to_owned(),
        ..Default::default()
    };
    for (key, before, now) in changes.order {
        match (before, now) {
            (None, Some(value)) => n.insert_entries.push(Entry { key, value }),
            (Some(_), Some(value)) => n.update_entries.push(Entry { key, value }),
            (Some(value), None) => n.delete_entries.push(Entry { key, value }),
            (None, None) => {}
        }
    }
    n
}

impl std::fmt::Debug for KvTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvTransaction")
            .field("store", &self.store.inner.id)
            .finish()
    }
}

impl KvTransaction<'_> {
    fn path(&self) -> &std::path::Path {
        self.store.path()
    }

    /// Stores `value` under `key` inside this transaction.
    pub fn put(&self, key: &str, value: impl Into<KvValue>) -> Result<()> {
        let value = value.into();
        kv(self.put_ref(key, &value))
    }

    /// Remembers `key`'s value from before the transaction the first time it is touched.
    fn track(&self, conn: &Connection, key: &str, now: Option<&KvValue>) -> Result<()> {
        let Some(changes) = &self.changes else {
            return Ok(());
        };
        let mut changes = changes.borrow_mut();
        let slot = match changes.index.get(key) {
            Some(&i) => i,
            None => {
                let before = read_value(conn, KV_TABLE, key, self.path())?;
                changes.order.push((key.to_owned(), before.clone(), before));
                let i = changes.order.len() - 1;
                changes.index.insert(key.to_owned(), i);
                i
            }
        };
        changes.order[slot].2 = now.cloned();
        Ok(())
    }

    fn put_ref(&self, key: &str, value: &KvValue) -> Result<()> {
        check_key(key)?;
        check_value(key, value)?;
        let conn = self.tx.conn()?;
        self.track(conn, key, Some(value))?;
        let mut stmt = conn.prepare_cached(UPSERT).map_err(sql_err(self.path()))?;
        stmt.raw_bind_parameter(1, key)
            .map_err(sql_err(self.path()))?;
        stmt.raw_bind_parameter(2, ToSqlOutput::Borrowed(value.sql_ref()))
            .map_err(sql_err(self.path()))?;
        stmt.raw_bind_parameter(3, value.tag())
            .map_err(sql_err(self.path()))?;
        stmt.raw_execute().map_err(sql_err(self.path()))?;
        Ok(())
    }

    /// Stores every entry; a bad entry fails the call and, through the transaction, all of them.
    pub fn put_batch(&self, entries: &[Entry]) -> Result<()> {
        kv(entries
            .iter()
            .try_for_each(|e| self.put_ref(&e.key, &e.value)))
    }

    /// The value under `key`, seeing this transaction's writes.
    pub fn get(&self, key: &str) -> Result<KvValue> {
        kv(check_key(key))?;
        kv(read_value(self.tx.conn()?, KV_TABLE, key, self.path()))?.ok_or_else(|| {
            Error::NotFound {
                what: format!("key {key:?}"),
            }
        })
    }

    /// Removes `key`; returns whether it existed.
    pub fn delete(&self, key: &str) -> Result<bool> {
        kv(self.delete_ref(key))
    }

    fn delete_ref(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        let conn = self.tx.conn()?;
        self.track(conn, key, None)?;
        let n = conn
            .prepare_cached(DELETE)
            .and_then(|mut st| st.execute([key]))
            .map_err(sql_err(self.path()))?;
        Ok(n > 0)
    }

    /// Removes every key; returns how many existed.
    pub fn delete_batch(&self, keys: &[&str]) -> Result<usize> {
        kv(keys
            .iter()
            .try_fold(0, |n, k| Ok(n + usize::from(self.delete_ref(k)?))))
    }

    /// Entries under `prefix`, seeing this transaction's writes.
    pub fn get_entries(&self, prefix: &str) -> Result<Vec<Entry>> {
        kv(read_entries(self.tx.conn()?, KV_TABLE, prefix, self.path()))
    }

    /// Commits, then notifies local observers of what changed.
    pub fn commit(self) -> Result<()> {
        let KvTransaction { tx, store, changes } = self;
        kv(tx.commit())?;
        if let Some(changes) = changes {
            let changes = notification(changes.into_inner());
            if !changes.is_empty() {
                store.inner.observers.notify(SubscribeType::Local, &changes);
            }
        }
        Ok(())
    }

    /// Rolls back everything this transaction did.
    pub fn rollback(self) -> Result<()> {
        kv(self.tx.rollback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_string() {
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }

    #[test]
    fn key_and_value_limits() {
        assert_eq!(check_key("").unwrap_err().code(), 401);
        assert!(check_key(&"k".repeat(1024)).is_ok());
        assert_eq!(check_key(&"k".repeat(1025)).unwrap_err().code(), 401);
        assert!(check_value("k", &KvValue::Bytes(vec![0; MAX_VALUE_BYTES])).is_ok());
        assert_eq!(
            check_value("k", &KvValue::Bytes(vec![0; MAX_VALUE_BYTES + 1]))
                .unwrap_err()
                .code(),
            401
        );
    }
}
