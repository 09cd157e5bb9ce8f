//! Key-value stores sync through the relational machinery (seed 002, issue 4): their entry
//! table becomes a distributed table. A single-version store merges every device's entries
//! by key — the key is the conflict column, value and type merge last-writer-wins — and a
//! device-collaboration store keeps each device's entries apart, in that device's own table,
//! read with [`KvStore::get_from_device`] (ArkData's `DeviceKVStore`). Entries that arrive
//! reach `on_data_change(SubscribeType::Remote, …)` observers as a [`ChangeNotification`]
//! naming the sending device.
//!
//! ```
//! use peerlite::{KvManager, KvStoreType, KvValue, Options, SubscribeType};
//! use peerlite::sync::{sync_in_memory, SyncMode};
//! use std::sync::{Arc, Mutex};
//!
//! let dir = tempfile::tempdir()?;
//! let open = |device: &str| {
//!     let manager = KvManager::at(dir.path().join(device))?.device_id(device);
//!     manager.get_kv_store("settings", Options::default())
//! };
//! let (phone, laptop) = (open("phone")?, open("laptop")?);
//! let heard = Arc::new(Mutex::new(Vec::new()));
//! let sink = heard.clone();
//! laptop.on_data_change(SubscribeType::Remote, move |n| {
//!     sink.lock().unwrap().push((n.device_id.clone(), n.insert_entries.len()));
//! })?;
//! phone.put("theme", "dark")?;
//! sync_in_memory(phone.sync_store()?, laptop.sync_store()?, SyncMode::Push, None)?;
//! assert_eq!(laptop.get("theme")?, KvValue::from("dark"));
//! assert_eq!(*heard.lock().unwrap(), vec![("phone".to_string(), 1)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::{Arc, Weak};

use super::manager::KvStoreType;
use super::result_set::Entry;
use super::store::{
    ChangeNotification, KV_TABLE, KvInner, KvStore, kv, read_entries, read_value, tag_name,
};
use super::value::KvValue;
use crate::StoreKind;
use crate::changes::{DistributedConfig, device_table_name};
use crate::error::{Error, Result};
use crate::schema::{DbSchema, FieldSchema, SyncSchema, TableSchema};
use crate::store::{RdbStore, SubscribeType};
use crate::sync::{ChangeKind, RemoteChange};
use crate::value::Value;

/// The sync schema of a single-version store's entry table: the key resolves conflicts.
fn entry_schema(db_name: &str) -> SyncSchema {
    let field = |name: &str, ty: &str, key: bool| FieldSchema {
        column_name: name.to_owned(),
        ty: ty.to_owned(),
        primary_key: key,
        auto_increment: false,
        not_null: key,
    };
    SyncSchema {
        db_schema: vec![DbSchema {
            version: 1,
            bundle_name: "peerlite.kv".to_owned(),
            db_name: db_name.to_owned(),
            tables: vec![TableSchema {
                table_name: KV_TABLE.to_owned(),
                device_sync_fields: vec!["key".into(), "value".into(), "type".into()],
                fields: vec![
                    field("key", "Text", true),
                    field("value", "Blob", false),
                    field("type", "Integer", false),
                ],
            }],
        }],
    }
}

impl KvStore {
    /// Makes the store's entries sync — those written so far and every later change. Safe to
    /// call again; [`KvStore::sync_store`] calls it.
    pub fn enable_sync(&self) -> Result<()> {
        let rdb = &self.inner.rdb;
        let wanted_auto = self.inner.options.auto_sync;
        let done = kv(rdb.distributed_tables())?
            .iter()
            .find(|m| m.name == KV_TABLE && m.base.is_none())
            .map(|m| m.auto_sync);
        // Opened with `auto_sync` the store keeps it (a serving node reads it from the store);
        // an open without it leaves a kept flag alone (the option cannot say "off" apart from
        // "not given").
        if done.is_some_and(|kept| kept || !wanted_auto) {
            return Ok(());
        }
        let mut config = match self.inner.options.kv_store_type {
            KvStoreType::SingleVersion => {
                let db_name = rdb
                    .path()
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                DistributedConfig::single_version(entry_schema(&db_name))
            }
            KvStoreType::DeviceCollaboration => DistributedConfig::default(),
        };
        config.auto_sync = wanted_auto;
        kv(rdb.distribute_tables(&[KV_TABLE], &config))
    }

    /// The relational store that sync sessions run on (`Session::start`, `sync_in_memory`,
    /// the network node), made syncable first. Peers sync a store with the same store id.
    pub fn sync_store(&self) -> Result<&RdbStore> {
        self.enable_sync()?;
        Ok(&self.inner.rdb)
    }

    /// This device's id (see [`crate::KvManager::device_id`]).
    pub fn device_id(&self) -> &str {
        self.inner.rdb.device_id()
    }

    /// The table holding `device`'s entries here, if any have arrived.
    fn device_table(&self, device: &str) -> Result<Option<String>> {
        if self.inner.options.kv_store_type != KvStoreType::DeviceCollaboration {
            return Err(Error::invalid(
                StoreKind::KeyValue,
                "a single-version store merges every device's entries into one: use get / get_entries",
            ));
        }
        if device == self.device_id() {
            return Ok(Some(KV_TABLE.to_owned()));
        }
        let name = device_table_name(device, KV_TABLE);
        let exists = kv(self.inner.rdb.distributed_tables())?
            .iter()
            .any(|m| m.name == name);
        Ok(exists.then_some(name))
    }

    /// `device`'s value under `key` in a device-collaboration store (ArkData's
    /// `DeviceKVStore.get(deviceId, key)`); this device's own id reads the local entries.
    ///
    /// # Errors
    /// 15100004 when `device` has no such key here; 401 on a single-version store.
    pub fn get_from_device(&self, device: &str, key: &str) -> Result<KvValue> {
        let missing = || Error::NotFound {
            what: format!("key {key:?} of device {device:?}"),
        };
        let Some(table) = self.device_table(device)? else {
            return Err(missing());
        };
        let path = self.path();
        kv(self
            .inner
            .rdb
            .inner
            .read(|c| read_value(c, &table, key, path)))?
        .ok_or_else(missing)
    }

    /// `device`'s entries under `prefix` in a device-collaboration store, in key order.
    pub fn get_entries_from_device(&self, device: &str, prefix: &str) -> Result<Vec<Entry>> {
        let Some(table) = self.device_table(device)? else {
            return Ok(Vec::new());
        };
        let path = self.path();
        kv(self
            .inner
            .rdb
            .inner
            .read(|c| read_entries(c, &table, prefix, path)))
    }
}

/// Turns the relational store's remote changes into key-value notifications. Holds the
/// store weakly: the relational store outlives nothing it does not own.
pub(crate) fn forward_remote_changes(inner: &Arc<KvInner>) -> Result<()> {
    let weak: Weak<KvInner> = Arc::downgrade(inner);
    kv(inner.rdb.on_remote_change(move |change| {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        if !inner.observers.has(SubscribeType::Remote) {
            return;
        }
        match notifications(&inner, change) {
            Ok(list) => {
                for n in list.iter().filter(|n| !n.is_empty()) {
                    inner.observers.notify(SubscribeType::Remote, n);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the entries a peer changed"),
        }
    }))
    .map(|_| ())
}

/// True for the entry table and its device tables.
fn is_entry_table(table: &str) -> bool {
    table == KV_TABLE
        || (table.starts_with(crate::store::writer::DEVICE_TABLE_PREFIX)
            && table.ends_with(&format!("_{KV_TABLE}")))
}

/// One notification per device whose entries changed: the sender's for a single-version
/// store; for device collaboration, the device that wrote them (a relayed batch carries
/// several devices' entries).
fn notifications(inner: &KvInner, change: &RemoteChange) -> Result<Vec<ChangeNotification>> {
    let owners: std::collections::HashMap<String, String> = inner
        .rdb
        .distributed_tables()?
        .into_iter()
        .filter_map(|m| m.origin.map(|o| (m.name, o)))
        .collect();
    let mut out: Vec<ChangeNotification> = Vec::new();
    let path = inner.rdb.path();
    for ((table, key), kind) in change.keys.iter().zip(&change.kinds) {
        let Value::Text(key) = key else {
            continue;
        };
        if !is_entry_table(table) {
            continue;
        }
        let device = owners.get(table).unwrap_or(&change.device);
        let n = match out.iter().position(|n| n.device_id == *device) {
            Some(i) => &mut out[i],
            None => {
                out.push(ChangeNotification {
                    device_id: device.clone(),
                    ..Default::default()
                });
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        match kind {
            ChangeKind::Inserted | ChangeKind::Updated => {
                let value = inner.rdb.inner.read(|c| read_value(c, table, key, path))?;
                if let Some(value) = value {
                    let entry = Entry {
                        key: key.clone(),
                        value,
                    };
                    if *kind == ChangeKind::Inserted {
                        n.insert_entries.push(entry);
                    } else {
                        n.update_entries.push(entry);
                    }
                }
            }
            ChangeKind::Deleted { before } => {
                // The entry table's synced columns are (key, value, type).
                let tag = match before.get(2) {
                    Some(Value::Integer(t)) => *t,
                    _ => -1,
                };
                let raw = before.get(1).cloned().unwrap_or_default();
                let value = KvValue::from_sql(raw.as_value_ref(), tag).ok_or_else(|| {
                    Error::TypeMismatch {
                        column: key.clone(),
                        expected: "a value matching its type tag",
                        found: tag_name(tag),
                    }
                })?;
                n.delete_entries.push(Entry {
                    key: key.clone(),
                    value,
                });
            }
        }
    }
    Ok(out)
}
