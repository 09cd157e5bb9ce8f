//! One module per subcommand.

pub mod backup;
pub mod backups;
pub mod bench;
pub mod check;
pub mod delete_backup;
pub mod demo;
pub mod kv;
pub mod migrate;
pub mod repair;
pub mod restore;
pub mod sql;
pub mod target;
pub mod version;

use std::path::Path;

use peerlite::StoreConfig;

use crate::Global;

/// The store config for `path` with the global `--key`.
pub fn store_config(global: &Global, path: &Path) -> StoreConfig {
    let config = StoreConfig::new(path);
    match &global.key {
        Some(key) => config.encryption_key(key.as_str()),
        None => config,
    }
}

/// Prints JSON on one line.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}
