//! One module per subcommand.

pub mod backup;
pub mod backups;
pub mod bench;
pub mod changes;
pub mod check;
pub mod checkpoint;
pub mod conflicts;
pub mod delete_backup;
pub mod demo;
pub mod device;
pub mod distribute;
pub mod kv;
pub mod level;
pub mod migrate;
pub mod net;
pub mod remote_query;
pub mod repair;
pub mod restore;
pub mod schema_check;
pub mod serve;
pub mod sim;
pub mod sql;
pub mod sync;
pub mod table_name;
pub mod target;
pub mod trust;
pub mod version;

use std::path::{Path, PathBuf};

use peerlite::{RdbStore, StoreConfig};

use crate::Global;

/// The store config for `path` with the global `--key`, at the global `--level` or the label
/// the store holds.
pub fn store_config(global: &Global, path: &Path) -> StoreConfig {
    let level = level::for_store(global.level, path, global.key.as_deref());
    let config = StoreConfig::new(path).security_level(level);
    match &global.key {
        Some(key) => config.encryption_key(key.as_str()),
        None => config,
    }
}

/// A database a command may create. When the command fails and the file was not there
/// before, its files are removed again: a failed command leaves nothing behind.
pub struct NewStore {
    path: PathBuf,
    existed: bool,
}

impl NewStore {
    /// Notes whether `path` exists now, before anything opens it.
    pub fn at(path: &Path) -> NewStore {
        NewStore {
            path: path.to_path_buf(),
            existed: path.symlink_metadata().is_ok(),
        }
    }

    /// Opens the database with `open` and runs `work` on it; on failure a database this
    /// command created is closed and removed — unless it holds tables of its own by then
    /// (another process wrote them meanwhile): data is never removed.
    pub fn run<T>(
        &self,
        open: impl FnOnce() -> peerlite::Result<RdbStore>,
        work: impl FnOnce(&RdbStore) -> peerlite::Result<T>,
    ) -> peerlite::Result<T> {
        let store = match open() {
            Ok(store) => store,
            Err(e) => {
                self.discard();
                return Err(e);
            }
        };
        let result = work(&store);
        if result.is_err() && !self.existed {
            let empty = store
                .query_sql(
                    "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'peerlite\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                    &[],
                )
                .and_then(|mut rs| {
                    rs.go_to_first_row()?;
                    rs.get_long(0)
                })
                .is_ok_and(|n| n == 0);
            let _ = store.close();
            drop(store);
            if empty {
                self.discard();
            }
        }
        result
    }

    /// Removes the files of a database this command created (it must be closed).
    pub fn discard(&self) {
        if self.existed {
            return;
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = self.path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Opens an existing database (a missing file is an error, not a new database).
pub fn open_existing(global: &Global, path: &Path) -> peerlite::Result<RdbStore> {
    if !path.exists() && !peerlite::repair::repair_pending(path) {
        return Err(peerlite::Error::InvalidPath {
            path: path.to_path_buf(),
            reason: "no database there".into(),
        });
    }
    RdbStore::open(store_config(global, path))
}

/// Opens an existing database read-only: the command cannot change it.
pub fn open_existing_read_only(global: &Global, path: &Path) -> peerlite::Result<RdbStore> {
    if !path.exists() && !peerlite::repair::repair_pending(path) {
        return Err(peerlite::Error::InvalidPath {
            path: path.to_path_buf(),
            reason: "no database there".into(),
        });
    }
    RdbStore::open(store_config(global, path).read_only(true))
}

/// The manager of an existing key-value store directory: `KvManager::at` makes a missing one,
/// and only `kv put` may create anything.
pub fn existing_kv_manager(dir: &Path, id: &str) -> peerlite::Result<peerlite::KvManager> {
    if !dir.is_dir() {
        return Err(peerlite::Error::NotFound {
            what: format!(
                "key-value store {id:?} in {} (no such directory)",
                dir.display()
            ),
        });
    }
    peerlite::KvManager::at(dir)
}

/// Prints JSON on one line.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}
