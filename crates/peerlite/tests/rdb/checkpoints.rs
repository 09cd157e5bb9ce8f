//! The WAL is checkpointed by the store's background thread, not by the commit that grew it,
//! and the log stays bounded; encrypted stores too.

use std::path::Path;
use std::time::{Duration, Instant};

use peerlite::{EncryptionKey, RdbStore, StoreConfig, Value, bucket};
use peerlite_testkit::query_column;

/// Pages of the database file itself (what a checkpoint has copied out of the log).
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// ~12 MiB of rows in one transaction: about 3000 pages of log.
fn write_a_lot(store: &RdbStore) {
    store
        .execute("CREATE TABLE blob(id INTEGER PRIMARY KEY, v BLOB)", &[])
        .unwrap();
    let rows: Vec<_> = (0..3000)
        .map(|i| bucket! { "id" => i, "v" => Value::Blob(vec![(i % 251) as u8; 4000]) })
        .collect();
    store.batch_insert("blob", &rows).unwrap();
}

/// Waits (generously: this is about whether it happens, not how fast) for the database file
/// to hold the data.
fn wait_for_file_to_reach(path: &Path, bytes: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if file_len(path) >= bytes {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn checkpointed_in_the_background(config: StoreConfig) {
    let path = config.path().to_path_buf();
    let store = RdbStore::open(config).unwrap();
    write_a_lot(&store);
    // The store stays open: only the background checkpoint can move the pages into the file.
    assert!(
        wait_for_file_to_reach(&path, 10 << 20),
        "database file still {} bytes",
        file_len(&path)
    );
    let sum = query_column::<i64>(&store, "SELECT sum(length(v)) FROM blob", &[]).unwrap();
    assert_eq!(sum, vec![3000 * 4000]);
    store.close().unwrap();
}

#[test]
fn a_large_commit_is_checkpointed_while_the_store_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    checkpointed_in_the_background(StoreConfig::new(dir.path().join("big.db")));
}

#[test]
fn an_encrypted_store_is_checkpointed_in_the_background_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path().join("secret.db"))
        .encryption_key(EncryptionKey::passphrase("checkpoint me"));
    checkpointed_in_the_background(config.clone());
    // And it reopens with the key, whole.
    let store = RdbStore::open(config).unwrap();
    let n = query_column::<i64>(&store, "SELECT count(*) FROM blob", &[]).unwrap();
    assert_eq!(n, vec![3000]);
}

#[test]
fn many_small_commits_keep_the_log_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.db");
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    store
        .execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)", &[])
        .unwrap();
    // 6000 commits of a page or two each: without checkpoints the log would pass 40 MiB.
    for i in 0..6000_i64 {
        store
            .insert(
                "t",
                &bucket! { "id" => i, "v" => Value::Blob(vec![7; 3000]) },
            )
            .unwrap();
    }
    let wal = std::fs::metadata(format!("{}-wal", path.display()))
        .map(|m| m.len())
        .unwrap_or(0);
    // The writer checkpoints itself past 16000 pages at the latest (~64 MiB).
    assert!(wal < 70 << 20, "log grew to {wal} bytes");
    store.close().unwrap();
    assert!(!Path::new(&format!("{}-wal", path.display())).exists());
}

#[test]
fn closing_right_after_a_large_commit_leaves_a_complete_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("close.db");
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    write_a_lot(&store);
    // The background checkpoint may be running: close waits for it, then truncates the log.
    store.close().unwrap();
    assert!(!Path::new(&format!("{}-wal", path.display())).exists());
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    let n = query_column::<i64>(&store, "SELECT count(*) FROM blob", &[]).unwrap();
    assert_eq!(n, vec![3000]);
}
