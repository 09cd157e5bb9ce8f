//! Encryption at rest (SQLCipher) and security levels.

use std::path::Path;

use peerlite::{Error, RdbStore, SecurityLevel, StoreConfig, bucket};
use peerlite_testkit::{file_contains, query_column, temp_store_path};

const CANARY: &str = "PEERLITE-PLAINTEXT-CANARY-7f3a9c";
const HEADER: &[u8] = b"SQLite format 3\0";

fn write_canary(config: StoreConfig) {
    let store = RdbStore::open(config).unwrap();
    store
        .execute("CREATE TABLE secret(id INTEGER PRIMARY KEY, v TEXT)", &[])
        .unwrap();
    for i in 0..50 {
        store
            .insert("secret", &bucket! { "v" => format!("{CANARY}-{i}") })
            .unwrap();
    }
    store.close().unwrap();
}

fn read_canaries(store: &RdbStore) -> Vec<String> {
    query_column::<String>(store, "SELECT v FROM secret ORDER BY id", &[]).unwrap()
}

/// Every file of the database (main file, and WAL and SHM if they exist).
fn files_of(path: &Path) -> Vec<std::path::PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|s| std::path::PathBuf::from(format!("{}{s}", path.display())))
        .filter(|p| p.exists())
        .collect()
}

#[test]
fn plain_store_shows_its_data_on_disk() {
    // The control experiment: without a key the canary is visible, so the encrypted checks
    // below can fail.
    let (_dir, path) = temp_store_path();
    write_canary(StoreConfig::new(&path));
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.starts_with(HEADER));
    assert!(file_contains(&path, CANARY.as_bytes()).unwrap());
}

#[test]
fn encrypted_store_has_no_header_and_no_plaintext() {
    let (_dir, path) = temp_store_path();
    write_canary(StoreConfig::new(&path).encryption_key("correct horse battery staple"));
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() >= 4096, "the data reached the main file");
    assert!(!bytes.starts_with(HEADER));
    for file in files_of(&path) {
        assert!(
            !file_contains(&file, CANARY.as_bytes()).unwrap(),
            "{} leaks plaintext",
            file.display()
        );
        assert!(!file_contains(&file, b"CREATE TABLE secret").unwrap());
    }

    // The right key reads everything back.
    let store =
        RdbStore::open(StoreConfig::new(&path).encryption_key("correct horse battery staple"))
            .unwrap();
    let values = read_canaries(&store);
    assert_eq!(values.len(), 50);
    assert_eq!(values[49], format!("{CANARY}-49"));
    assert!(store.config().is_encrypted());
}

#[test]
fn wrong_missing_and_superfluous_keys_are_14800020() {
    let (dir, path) = temp_store_path();
    write_canary(StoreConfig::new(&path).encryption_key("right"));

    let err = RdbStore::open(StoreConfig::new(&path).encryption_key("wrong")).unwrap_err();
    assert_eq!(err.code(), 14800020, "{err}");
    assert!(matches!(err, Error::WrongKey { .. }));
    assert!(
        !err.is_corruption(),
        "a wrong key must never look like corruption"
    );

    let err = RdbStore::open(StoreConfig::new(&path)).unwrap_err();
    assert_eq!(err.code(), 14800020, "{err}");
    assert!(!err.is_corruption());

    // Failed opens changed nothing.
    let store = RdbStore::open(StoreConfig::new(&path).encryption_key("right")).unwrap();
    assert_eq!(read_canaries(&store).len(), 50);
    store.close().unwrap();

    // A key on a plain store.
    let plain = dir.path().join("plain.db");
    write_canary(StoreConfig::new(&plain));
    let err = RdbStore::open(StoreConfig::new(&plain).encryption_key("any")).unwrap_err();
    assert_eq!(err.code(), 14800020, "{err}");
    let store = RdbStore::open(StoreConfig::new(&plain)).unwrap();
    assert_eq!(read_canaries(&store).len(), 50);
}

#[test]
fn key_is_not_printed() {
    let config = StoreConfig::new("x.db").encryption_key("hunter2-secret");
    assert!(!format!("{config:?}").contains("hunter2-secret"));
}

#[test]
fn security_level_can_be_raised_but_never_lowered() {
    let (_dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path).security_level(SecurityLevel::S2)).unwrap();
    store.execute("CREATE TABLE t(x)", &[]).unwrap();
    store.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    store.close().unwrap();

    let err =
        RdbStore::open(StoreConfig::new(&path).security_level(SecurityLevel::S1)).unwrap_err();
    assert_eq!(err.code(), 14800017);
    assert!(matches!(err, Error::ConfigChanged { .. }));
    // The default level is S1: lowering too.
    assert_eq!(
        RdbStore::open(StoreConfig::new(&path)).unwrap_err().code(),
        14800017
    );

    // The same level and a higher one work; the higher one sticks.
    RdbStore::open(StoreConfig::new(&path).security_level(SecurityLevel::S2))
        .unwrap()
        .close()
        .unwrap();
    let store = RdbStore::open(StoreConfig::new(&path).security_level(SecurityLevel::S4)).unwrap();
    assert_eq!(
        query_column::<i64>(&store, "SELECT x FROM t", &[]).unwrap(),
        [1]
    );
    store.close().unwrap();
    assert_eq!(
        RdbStore::open(StoreConfig::new(&path).security_level(SecurityLevel::S3))
            .unwrap_err()
            .code(),
        14800017
    );
    // A read-only open is held to the same rule.
    assert_eq!(
        RdbStore::open(
            StoreConfig::new(&path)
                .read_only(true)
                .security_level(SecurityLevel::S2)
        )
        .unwrap_err()
        .code(),
        14800017
    );
    RdbStore::open(StoreConfig::new(&path).security_level(SecurityLevel::S4)).unwrap();
}

#[cfg(unix)]
#[test]
fn high_security_store_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path).security_level(SecurityLevel::S3)).unwrap();
    store.execute("CREATE TABLE t(x)", &[]).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

#[cfg(unix)]
#[test]
fn high_security_store_wal_and_shm_are_private_too() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path).security_level(SecurityLevel::S3)).unwrap();
    store.execute("CREATE TABLE t(x)", &[]).unwrap();
    store
        .execute("INSERT INTO t VALUES ('personal data')", &[])
        .unwrap();
    let side_files: Vec<_> = files_of(&path).into_iter().skip(1).collect();
    assert!(
        !side_files.is_empty(),
        "WAL mode keeps -wal/-shm while open"
    );
    for file in side_files {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", file.display());
    }
}

#[cfg(unix)]
#[test]
fn raising_a_store_to_s3_makes_its_files_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    store.execute("CREATE TABLE t(x)", &[]).unwrap();
    store.close().unwrap();
    let store = RdbStore::open(StoreConfig::new(&path).security_level(SecurityLevel::S3)).unwrap();
    store
        .execute("INSERT INTO t VALUES ('personal data')", &[])
        .unwrap();
    for file in files_of(&path) {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", file.display());
    }
}
