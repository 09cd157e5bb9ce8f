//! Fixtures shared by the key-value tests.

use peerlite::{KvManager, KvStore, Options};
use peerlite_testkit::TempDir;

/// A manager in a fresh directory.
pub fn manager() -> (TempDir, KvManager) {
    let dir = tempfile::tempdir().unwrap();
    let manager = KvManager::new(dir.path(), "com.example.app").unwrap();
    (dir, manager)
}

/// A fresh store `store` with default options.
pub fn kv() -> (TempDir, KvManager, KvStore) {
    let (dir, manager) = manager();
    let store = manager.get_kv_store("store", Options::default()).unwrap();
    (dir, manager, store)
}

/// The keys of every entry, in order.
pub fn keys(store: &KvStore, prefix: &str) -> Vec<String> {
    store
        .get_entries(prefix)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect()
}
