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
pub mod reset;
pub mod restore;
pub mod schema_check;
pub mod serve;
pub mod sim;
pub mod sql;
pub mod status;
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

/// A database a command may create. When the command fails, the files it created are removed
/// again: a failed command leaves nothing behind. Only files that were not there before are
/// ever removed: a WAL beside a missing database is a lost store's data, never this command's.
pub struct NewStore {
    path: PathBuf,
    /// Which of the database file and its side files existed before the command.
    existed: [bool; 4],
}

/// The database file and the side files SQLite makes beside it.
const STORE_FILES: [&str; 4] = ["", "-wal", "-shm", "-journal"];

impl NewStore {
    /// Notes which of the store's files exist now, before anything opens it.
    pub fn at(path: &Path) -> NewStore {
        NewStore {
            path: path.to_path_buf(),
            existed: STORE_FILES.map(|suffix| side(path, suffix).symlink_metadata().is_ok()),
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
        // A command that creates stores never creates one over a lost store's traces.
        peerlite::repair::refuse_lost_store(&self.path)?;
        let store = match open() {
            Ok(store) => store,
            Err(e) => {
                self.discard();
                return Err(e);
            }
        };
        let result = work(&store);
        if result.is_err() && !self.existed[0] {
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

    /// Removes the files of a database this command created (it must be closed): only those
    /// that were not there before, and nothing when the database file was.
    pub fn discard(&self) {
        if self.existed[0] {
            return;
        }
        for (suffix, existed) in STORE_FILES.iter().zip(self.existed) {
            if !existed {
                let _ = std::fs::remove_file(side(&self.path, suffix));
            }
        }
    }
}

fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut file = path.as_os_str().to_owned();
    file.push(suffix);
    PathBuf::from(file)
}

/// Opens an existing database: a missing file is an error, not a new database, and a missing
/// or empty file beside the traces of a store is a lost store (14800011), never a new one.
pub fn open_existing(global: &Global, path: &Path) -> peerlite::Result<RdbStore> {
    peerlite::repair::require_store(path, None)?;
    RdbStore::open(store_config(global, path))
}

/// Opens an existing database read-only: the command cannot change it.
pub fn open_existing_read_only(global: &Global, path: &Path) -> peerlite::Result<RdbStore> {
    peerlite::repair::require_store(path, None)?;
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
