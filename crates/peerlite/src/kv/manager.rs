//! `KvManager`: ArkData's manager of an application's key-value stores. Stores live as
//! `STORE_ID.db` files in one directory; opening a store that is already open returns the same
//! store, so one process never has two writers on one file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::store::{KV_SCHEMA, KvInner, KvStore};
use crate::StoreKind;
use crate::error::{Error, Result};
use crate::open::{Migration, Migrations};
use crate::store::config::check_file_name;
use crate::store::meta;
use crate::store::{EncryptionKey, RdbStore, SecurityLevel, StoreConfig};

/// ArkData's two kinds of key-value store (they differ in how they sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvStoreType {
    /// One value per key, merged across devices.
    #[default]
    SingleVersion,
    /// Each device's entries kept apart.
    DeviceCollaboration,
}

impl KvStoreType {
    fn as_str(self) -> &'static str {
        match self {
            KvStoreType::SingleVersion => "single_version",
            KvStoreType::DeviceCollaboration => "device_collaboration",
        }
    }
}

/// How to open a key-value store.
#[derive(Debug, Clone)]
pub struct Options {
    /// Create the store when it does not exist (default true).
    pub create_if_missing: bool,
    /// Encrypt at rest; needs `encryption_key`.
    pub encrypt: bool,
    /// The SQLCipher passphrase when `encrypt` is set.
    pub encryption_key: Option<EncryptionKey>,
    /// Include the store in automatic backups (default true).
    pub backup: bool,
    /// Sync automatically when devices connect (default false).
    pub auto_sync: bool,
    /// Single-version or device-collaboration.
    pub kv_store_type: KvStoreType,
    /// The data's security label.
    pub security_level: SecurityLevel,
    /// Rebuild the store when it is found corrupted (from its newest verified backup).
    pub allow_rebuild: bool,
    /// Open even a store flagged as corrupted, to check, back up or restore it.
    pub for_recovery: bool,
    /// With `allow_rebuild`: a damaged store is rebuilt from this backup (a name or a path)
    /// instead of the newest verified one (see `StoreConfig::rebuild_from`).
    pub rebuild_from: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_if_missing: true,
            encrypt: false,
            encryption_key: None,
            backup: true,
            auto_sync: false,
            kv_store_type: KvStoreType::SingleVersion,
            security_level: SecurityLevel::S1,
            allow_rebuild: false,
            for_recovery: false,
            rebuild_from: None,
        }
    }
}

impl Options {
    /// Encrypted with `key`.
    #[must_use]
    pub fn encrypted(mut self, key: impl Into<EncryptionKey>) -> Self {
        self.encrypt = true;
        self.encryption_key = Some(key.into());
        self
    }
}

/// The internal schema of a key-value store; its version is the store format's version.
/// peerlite's own SQL: it creates `peerlite_kv`, which caller SQL may not.
fn kv_schema() -> Migrations {
    Migrations::new().step(Migration::closure("0001_kv_entries", |tx| {
        tx.execute_script_own(KV_SCHEMA).map(|_| ())
    }))
}

/// Manages the key-value stores in one directory.
#[derive(Debug)]
pub struct KvManager {
    dir: PathBuf,
    open: Mutex<HashMap<String, Weak<KvInner>>>,
    /// The device id its stores sync as (made per store when unset).
    device_id: Option<String>,
    /// Lets a store that synced under another id take `device_id` (a new epoch).
    reidentify: bool,
    /// The wall clock its stores' timestamps read (tests drive one by hand).
    clock: Option<Arc<dyn crate::changes::Clock>>,
}

fn check_store_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        return Err(Error::invalid(
            StoreKind::KeyValue,
            format!("store id {id:?}: 1 to 128 characters, letters, digits and underscores only"),
        ));
    }
    Ok(())
}

impl KvManager {
    /// The stores of `app_name` under `base_dir` (in `base_dir/app_name`, created if needed).
    ///
    /// # Errors
    /// 14800010 for an app name with path separators; 17000002 when the directory cannot be made.
    pub fn new(base_dir: impl AsRef<Path>, app_name: &str) -> Result<Self> {
        check_file_name(app_name)?;
        KvManager::at(base_dir.as_ref().join(app_name))
    }

    /// The stores directly in `dir` (created if needed).
    pub fn at(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("creating store directory", &dir, e))?;
        Ok(KvManager {
            dir,
            open: Mutex::new(HashMap::new()),
            device_id: None,
            reidentify: false,
            clock: None,
        })
    }

    /// The device id this manager's stores sync as (ArkData takes it from the device).
    #[must_use]
    pub fn device_id(mut self, id: impl Into<String>) -> Self {
        self.device_id = Some(id.into());
        self
    }

    /// Lets its stores that synced under another device id take this manager's
    /// [`device_id`](KvManager::device_id); each then starts a new epoch
    /// (`StoreConfig::reidentify`).
    #[must_use]
    pub fn reidentify(mut self, yes: bool) -> Self {
        self.reidentify = yes;
        self
    }

    /// The wall clock for its stores' change timestamps (the system clock by default).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn crate::changes::Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The directory holding the stores.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, store_id: &str) -> PathBuf {
        self.dir.join(format!("{store_id}.db"))
    }

    /// Opens (or creates) the store `store_id`.
    ///
    /// # Errors
    /// 401 bad id or `encrypt` without a key; 15100004 missing and `create_if_missing` off;
    /// 15100002 the store exists with another type; 14800020 wrong key.
    pub fn get_kv_store(&self, store_id: &str, options: Options) -> Result<KvStore> {
        check_store_id(store_id)?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(inner) = open
            .get(store_id)
            .and_then(Weak::upgrade)
            .filter(|i| !i.rdb.is_closed())
        {
            if inner.options.encrypt != options.encrypt
                || inner.options.encryption_key != options.encryption_key
            {
                return Err(Error::WrongKey {
                    path: inner.rdb.path().to_path_buf(),
                    detail: "the store is open with another key (or without one)".into(),
                });
            }
            if inner.options.security_level != options.security_level {
                return Err(Error::ConfigChanged {
                    detail: format!(
                        "store {store_id:?} is open at security level {}; close it to open it at {}",
                        inner.options.security_level, options.security_level
                    ),
                    kind: StoreKind::KeyValue,
                });
            }
            if inner.options.kv_store_type != options.kv_store_type {
                return Err(type_changed(
                    store_id,
                    inner.options.kv_store_type,
                    options.kv_store_type,
                ));
            }
            return Ok(KvStore { inner });
        }
        let store = self.open_store(store_id, options)?;
        open.insert(store_id.to_owned(), Arc::downgrade(&store.inner));
        Ok(store)
    }

    fn open_store(&self, store_id: &str, options: Options) -> Result<KvStore> {
        let path = self.path_of(store_id);
        // Without `create_if_missing` nothing is made: a missing or 0-byte file beside a lost
        // store's traces, or a 0-byte file, is reported (15100003), never initialised.
        if !options.create_if_missing
            && !options.allow_rebuild
            && let Err(e) = crate::repair::require_store(&path, None)
            && e.is_corruption()
        {
            return Err(e.for_store(StoreKind::KeyValue));
        }
        if !path.exists()
            && !options.create_if_missing
            && crate::repair::require_store(&path, None).is_err_and(|e| !e.is_corruption())
        {
            return Err(Error::NotFound {
                what: format!("key-value store {store_id:?} in {}", self.dir.display()),
            });
        }
        let mut config = StoreConfig::new(&path)
            .security_level(options.security_level)
            .version(1);
        config.kind = StoreKind::KeyValue;
        if let Some(id) = &self.device_id {
            config = config.device_id(id.clone()).reidentify(self.reidentify);
        }
        if let Some(clock) = &self.clock {
            config = config.clock(Arc::clone(clock));
        }
        config.allow_rebuild = options.allow_rebuild;
        config.for_recovery = options.for_recovery;
        if let Some(source) = &options.rebuild_from {
            config = config.rebuild_from(source.clone());
        }
        if options.encrypt {
            let key = options.encryption_key.clone().ok_or_else(|| {
                Error::invalid(
                    StoreKind::KeyValue,
                    "encrypt is set but no encryption_key was given",
                )
            })?;
            config = config.encryption_key(key);
        }
        let kv_err = |e: Error| e.for_store(StoreKind::KeyValue);
        let rdb = RdbStore::open_with(config, &mut kv_schema()).map_err(kv_err)?;
        let wanted = options.kv_store_type;
        // The stored type must match; `false` when none is stored yet.
        let matches = |stored: Option<String>| match stored {
            None => Ok(false),
            Some(s) if s == wanted.as_str() => Ok(true),
            Some(s) => Err(Error::ConfigChanged {
                detail: format!(
                    "store {store_id:?} is {s}; it was opened as {}",
                    wanted.as_str()
                ),
                kind: StoreKind::KeyValue,
            }),
        };
        let read_type = |conn: &rusqlite::Connection| {
            meta::get(conn, "kv_store_type").map_err(|e| Error::from_sqlite(e, &path))
        };
        // Read first, on a reader: opening an existing store takes no write lock, so a read
        // (`peerlite kv DIR ID get KEY`) answers while another process holds a write.
        if !matches(rdb.inner.read(read_type).map_err(kv_err)?).map_err(kv_err)? {
            rdb.transaction(|tx| {
                let conn = tx.conn()?;
                if matches(read_type(conn)?)? {
                    return Ok(());
                }
                meta::set(conn, "kv_store_type", wanted.as_str())
                    .map_err(|e| Error::from_sqlite(e, &path))
            })
            .map_err(kv_err)?;
        }
        KvStore::new(store_id.to_owned(), rdb, options)
    }

    /// Closes the store if it is open; every handle to it then fails with 15100005.
    pub fn close_kv_store(&self, store_id: &str) -> Result<()> {
        check_store_id(store_id)?;
        let inner = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(store_id)
            .and_then(|w| w.upgrade());
        if let Some(inner) = inner {
            KvStore { inner }.close()?;
        }
        Ok(())
    }

    /// Closes and deletes the store's files.
    ///
    /// # Errors
    /// 15100004 when it does not exist.
    pub fn delete_kv_store(&self, store_id: &str) -> Result<()> {
        self.close_kv_store(store_id)?;
        let path = self.path_of(store_id);
        if !path.exists() {
            return Err(Error::NotFound {
                what: format!("key-value store {store_id:?}"),
            });
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("deleting", file, e)),
            }
        }
        Ok(())
    }

    /// Ids of every store in the directory, sorted.
    pub fn get_all_kv_store_ids(&self) -> Result<Vec<String>> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| Error::io("listing", &self.dir, e))?;
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|f| f.strip_suffix(".db"))
                    .map(str::to_owned)
            })
            .filter(|id| check_store_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn type_changed(id: &str, was: KvStoreType, now: KvStoreType) -> Error {
    Error::ConfigChanged {
        detail: format!(
            "store {id:?} is open as {}; it was asked for as {}",
            was.as_str(),
            now.as_str()
        ),
        kind: StoreKind::KeyValue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_are_plain_names() {
        assert!(check_store_id("settings_1").is_ok());
        for bad in ["", "../x", "a/b", "a.b", &"x".repeat(129)] {
            assert_eq!(check_store_id(bad).unwrap_err().code(), 401, "{bad}");
        }
    }
}
