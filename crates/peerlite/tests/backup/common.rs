//! Fixtures shared by the backup tests.

use std::path::{Path, PathBuf};

use peerlite::{RdbStore, Result, StoreConfig, Value, bucket};
use peerlite_testkit::{TempDir, query_column, temp_store_path};

/// SQLite's (and SQLCipher's) default page size, which peerlite keeps.
pub const PAGE_SIZE: usize = 4096;

/// The table most tests use.
pub const CREATE_ITEM: &str = "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT NOT NULL)";

/// A fresh store at `test.db` in a new directory, with `item` holding `names` (ids 1..).
pub fn store_with_items(names: &[&str]) -> (TempDir, RdbStore) {
    let (dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(path)).unwrap();
    store.execute(CREATE_ITEM, &[]).unwrap();
    add_items(&store, names);
    (dir, store)
}

/// Inserts `names` into `item`.
pub fn add_items(store: &RdbStore, names: &[&str]) {
    for name in names {
        store.insert("item", &bucket! { "name" => *name }).unwrap();
    }
}

/// The names in `item`, by id.
pub fn items(store: &RdbStore) -> Vec<String> {
    query_column::<String>(store, "SELECT name FROM item ORDER BY id", &[]).unwrap()
}

/// Adds `rows` rows of `bytes`-byte padding to a `pad` table (created if needed), so the
/// database spans many pages.
pub fn add_padding(store: &RdbStore, rows: i64, bytes: i64) {
    store
        .execute(
            "CREATE TABLE IF NOT EXISTS pad(id INTEGER PRIMARY KEY, v BLOB NOT NULL)",
            &[],
        )
        .unwrap();
    store
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             INSERT INTO pad(v) SELECT zeroblob(?2) FROM n",
            &[Value::from(rows), Value::from(bytes)],
        )
        .unwrap();
}

/// Opens a backup (or any database file) read-only, so looking at it never changes it.
pub fn open_read_only(path: &Path) -> RdbStore {
    RdbStore::open(StoreConfig::new(path).read_only(true)).unwrap()
}

/// The names in `item` of the database file at `path` (opened read-only).
pub fn items_in(path: &Path) -> Vec<String> {
    let store = open_read_only(path);
    let names = items(&store);
    store.close().unwrap();
    names
}

/// The default backup directory of a store: `backup/<file name>/` beside the database.
pub fn backup_dir(store: &RdbStore) -> PathBuf {
    let path = store.path();
    path.parent()
        .unwrap()
        .join("backup")
        .join(path.file_name().unwrap())
}

/// `NAME.manifest.json` beside a backup.
pub fn manifest_of(backup: &Path) -> PathBuf {
    PathBuf::from(format!("{}.manifest.json", backup.display()))
}

/// The names `backups()` lists, newest first.
pub fn listed(store: &RdbStore) -> Vec<String> {
    store
        .backups()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect()
}

/// The code of the error a call returned; fails the test when it succeeded.
pub fn code<T: std::fmt::Debug>(result: Result<T>) -> u32 {
    match result {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.code(),
    }
}

/// The path as the `&str` that `restore` takes.
pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}
