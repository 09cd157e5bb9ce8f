//! Backups of an encrypted store stay encrypted with the store's key.

use peerlite::{RdbStore, StoreConfig, bucket};
use peerlite_testkit::{file_contains, query_column, run_sqlite3, temp_store_path};

use crate::common::{code, manifest_of};

const KEY: &str = "correct horse battery staple";
const CANARY: &str = "PEERLITE-BACKUP-CANARY-51c0e2";

fn secrets(store: &RdbStore) -> Vec<String> {
    query_column::<String>(store, "SELECT v FROM secret ORDER BY id", &[]).unwrap()
}

#[test]
fn an_encrypted_backup_has_no_header_no_plaintext_and_needs_the_key() {
    let (dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path).encryption_key(KEY)).unwrap();
    store
        .execute("CREATE TABLE secret(id INTEGER PRIMARY KEY, v TEXT)", &[])
        .unwrap();
    for i in 0..40 {
        store
            .insert("secret", &bucket! { "v" => format!("{CANARY}-{i}") })
            .unwrap();
    }
    let info = store.backup("enc").unwrap();
    assert!(info.encrypted);
    let bytes = std::fs::read(&info.path).unwrap();
    assert!(bytes.len() >= 4096);
    assert!(!bytes.starts_with(b"SQLite format 3\0"));
    assert!(!file_contains(&info.path, CANARY.as_bytes()).unwrap());
    assert!(!file_contains(manifest_of(&info.path), CANARY.as_bytes()).unwrap());
    assert!(!file_contains(manifest_of(&info.path), KEY.as_bytes()).unwrap());

    // The plain sqlite3 shell cannot read it.
    let shell = run_sqlite3(&info.path, "SELECT v FROM secret;");
    assert!(!shell.success, "{shell:?}");
    assert!(shell.stderr.contains("not a database"), "{shell:?}");
    assert!(!shell.stdout.contains(CANARY), "{shell:?}");

    // Restore with the store's key.
    store
        .execute("DELETE FROM secret WHERE id > 1", &[])
        .unwrap();
    assert_eq!(secrets(&store).len(), 1);
    store.restore("enc").unwrap();
    let restored = secrets(&store);
    assert_eq!(restored.len(), 40);
    assert_eq!(restored[39], format!("{CANARY}-39"));

    // The backup file opened as a store: wrong key, no key -> 14800020; right key reads it.
    let wrong = RdbStore::open(
        StoreConfig::new(&info.path)
            .encryption_key("wrong key")
            .read_only(true),
    );
    assert_eq!(code(wrong), 14800020);
    assert_eq!(
        code(RdbStore::open(StoreConfig::new(&info.path).read_only(true))),
        14800020
    );
    let right = RdbStore::open(
        StoreConfig::new(&info.path)
            .encryption_key(KEY)
            .read_only(true),
    )
    .unwrap();
    assert_eq!(secrets(&right).len(), 40);
    right.close().unwrap();

    // Another store with another key cannot restore it: 14800020, and nothing changes.
    let other_path = dir.path().join("other.db");
    let other =
        RdbStore::open(StoreConfig::new(&other_path).encryption_key("another key")).unwrap();
    other
        .execute("CREATE TABLE secret(id INTEGER PRIMARY KEY, v TEXT)", &[])
        .unwrap();
    other.insert("secret", &bucket! { "v" => "mine" }).unwrap();
    assert_eq!(code(other.restore(info.path.to_str().unwrap())), 14800020);
    assert_eq!(secrets(&other), ["mine"]);
}
