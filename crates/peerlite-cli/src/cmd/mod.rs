//! One module per subcommand.

pub mod backup;
pub mod backups;
pub mod bench;
pub mod changes;
pub mod check;
pub mod conflicts;
pub mod delete_backup;
pub mod demo;
pub mod distribute;
pub mod kv;
pub mod migrate;
pub mod repair;
pub mod restore;
pub mod schema_check;
pub mod sim;
pub mod sql;
pub mod target;
pub mod version;

use std::path::Path;

use peerlite::{RdbStore, StoreConfig};

use crate::Global;

/// The store config for `path` with the global `--key`.
pub fn store_config(global: &Global, path: &Path) -> StoreConfig {
    let config = StoreConfig::new(path);
    match &global.key {
        Some(key) => config.encryption_key(key.as_str()),
        None => config,
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

/// Prints JSON on one line.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}
