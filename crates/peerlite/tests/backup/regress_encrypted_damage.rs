//! Encrypted stores with a damaged header were stuck or emptied:
//!
//! - with the salt in the first 16 bytes damaged, or the file cut shorter than a page, the
//!   right key was reported as a wrong one (14800020) by every command, so neither repair nor
//!   restore could put the verified backup back;
//! - with page 1 damaged, salvage gave up on the whole file ("page 1 cannot be decrypted")
//!   although every other page carries its own HMAC and decrypts — rows written after the
//!   backup were lost;
//! - a repair without a key of an encrypted store whose file had become garbage rebuilt an
//!   empty *plaintext* store (and mirrored: a key given for a lost plaintext store made an
//!   encrypted one).
//!
//! Now the store's backups speak for it: their manifests record the store's salt (a backup has
//! a salt of its own) and whether it is encrypted. A right key is proven on the pages with the
//! recorded salt (or, for a file too short to hold a page, by opening the store's backup), so
//! the damage is reported as damage (14800011) and mended; salvage reads every page that
//! decrypts, with the schema from the backup; a wrong key stays a key problem and leads to no
//! quarantine; a repair never changes whether the store is encrypted.

use std::path::Path;

use peerlite::{RdbStore, RebuiltType, StoreConfig};
use peerlite_testkit::{count_rows, temp_store_path};

use crate::common::code;

const KEY: &str = "right key";

/// An encrypted store with 3000 rows of `t`, a backup `b1` of them, then one more row; closed.
fn encrypted_store(db: &Path) {
    let store = RdbStore::open(StoreConfig::new(db).encryption_key(KEY)).unwrap();
    store
        .execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)", &[])
        .unwrap();
    store
        .execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) \
             INSERT INTO t SELECT x, hex(randomblob(60)) FROM c",
            &[],
        )
        .unwrap();
    store.backup("b1").unwrap();
    store
        .execute("INSERT INTO t VALUES (10001, 'late')", &[])
        .unwrap();
    store.close().unwrap();
}

fn keyed(db: &Path, key: &str) -> StoreConfig {
    StoreConfig::new(db).encryption_key(key)
}

/// Damage to the header of an encrypted file.
fn damage(db: &Path, how: &str) {
    let mut bytes = std::fs::read(db).unwrap();
    match how {
        "salt" => bytes[..16].fill(0),
        "salt+page1" => bytes[..300].fill(0xA5),
        "page1-body" => bytes[100..300].fill(0xA5),
        "cut50" => bytes.truncate(50),
        "cut100" => bytes.truncate(100),
        other => panic!("{other}"),
    }
    std::fs::write(db, bytes).unwrap();
}

#[test]
fn a_right_key_is_recognised_on_a_damaged_header_and_the_store_is_mended() {
    for how in ["salt", "salt+page1", "page1-body", "cut50", "cut100"] {
        let (dir, db) = temp_store_path();
        encrypted_store(&db);
        damage(&db, how);
        // A wrong key is still a key problem, and leads to nothing.
        assert_eq!(code(RdbStore::open(keyed(&db, "wrong"))), 14800020, "{how}");
        assert_eq!(
            code(RdbStore::open(keyed(&db, "wrong").allow_rebuild(true))),
            14800020,
            "{how}"
        );
        assert!(!dir.path().join("quarantine").exists(), "{how}");
        // The right key: damage, reported as such, for every kind of open.
        for config in [keyed(&db, KEY), keyed(&db, KEY).for_recovery(true)] {
            assert_eq!(code(RdbStore::open(config)), 14800011, "{how}");
        }
        let listed = RdbStore::backups_of(&keyed(&db, KEY)).unwrap();
        assert_eq!(listed.len(), 1, "{how}: its backups are listed");
        let store = RdbStore::open(keyed(&db, KEY).allow_rebuild(true)).unwrap();
        assert_eq!(store.rebuilt(), RebuiltType::Repaired, "{how}");
        assert_eq!(count_rows(&store, "t").unwrap(), 3000);
        let salvage = store.repair_report().unwrap().salvage.clone();
        if how.starts_with("cut") {
            assert_eq!(salvage.rows, 0, "{how}: nothing was left to read");
        } else {
            assert_eq!(salvage.error, None, "{how}");
            assert_eq!(salvage.rows, 3001, "{how}: every row, the late one too");
            let late = RdbStore::open(keyed(salvage.path.as_ref().unwrap(), KEY).read_only(true))
                .unwrap()
                .query_sql("SELECT v FROM t WHERE id = 10001", &[])
                .unwrap()
                .row_count()
                .unwrap();
            assert_eq!(late, 1, "{how}");
        }
    }
}

#[test]
fn a_restore_over_a_damaged_encrypted_header_puts_the_backup_back() {
    let (_dir, db) = temp_store_path();
    encrypted_store(&db);
    damage(&db, "salt");
    let store = RdbStore::open(keyed(&db, KEY).allow_rebuild(true).rebuild_from("b1")).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::Repaired);
    assert_eq!(count_rows(&store, "t").unwrap(), 3000);
}

#[test]
fn a_repair_never_changes_whether_the_store_is_encrypted() {
    // Without a key, an encrypted store whose file became text is not rebuilt in plaintext.
    let (dir, db) = temp_store_path();
    encrypted_store(&db);
    std::fs::write(&db, "hello world\n".repeat(400)).unwrap();
    let before = std::fs::read(&db).unwrap();
    let err = RdbStore::open(StoreConfig::new(&db).allow_rebuild(true))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.code(), 14800020, "{err}");
    assert!(err.to_string().contains("encrypted"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing changed");
    assert!(!peerlite::repair::repair_pending(&db));
    assert!(!dir.path().join("quarantine").exists(), "nothing made");
    // With its key it is repaired, encrypted.
    let store = RdbStore::open(keyed(&db, KEY).allow_rebuild(true)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::Repaired);
    store.close().unwrap();
    assert!(
        !std::fs::read(&db)
            .unwrap()
            .starts_with(b"SQLite format 3\0")
    );
    drop(dir);

    // A key given for a lost plaintext store does not make it an encrypted one.
    let (_dir, db) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&db)).unwrap();
    store.execute("CREATE TABLE t(x)", &[]).unwrap();
    store.backup("b1").unwrap();
    store.close().unwrap();
    std::fs::write(&db, b"").unwrap();
    assert_eq!(
        code(RdbStore::open(keyed(&db, KEY).allow_rebuild(true))),
        14800020
    );
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
    let store = RdbStore::open(StoreConfig::new(&db).allow_rebuild(true)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::Repaired);
}

/// Adversary round 5, finding 4: a restore over a store that a key cannot open, from a backup
/// that opens with that key, took the store for damaged: a healthy store under another key (or
/// a plaintext one given a key) went to quarantine and the store silently changed key. Nothing
/// proved the key was the store's. Now only a proof does (the chosen backup's or the store's
/// backups' recorded salt verifying a page of the file); otherwise 14800020, nothing changed.
#[test]
fn a_restore_with_another_stores_key_never_quarantines_a_healthy_store() {
    for encrypted in [true, false] {
        let (dir, other) = temp_store_path();
        encrypted_store(&other);
        let other_backup = other
            .parent()
            .unwrap()
            .join("backup")
            .join(other.file_name().unwrap())
            .join("b1");
        assert!(other_backup.is_file());
        let db = dir.path().join("mine.db");
        let config = if encrypted {
            StoreConfig::new(&db).encryption_key("my own key")
        } else {
            StoreConfig::new(&db)
        };
        let store = RdbStore::open(config.clone()).unwrap();
        store
            .execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)", &[])
            .unwrap();
        store
            .execute("INSERT INTO t VALUES (1, 'precious')", &[])
            .unwrap();
        store.close().unwrap();
        let attempt = RdbStore::open(
            keyed(&db, KEY)
                .allow_rebuild(true)
                .rebuild_from(other_backup.to_str().unwrap()),
        );
        assert_eq!(code(attempt), 14800020, "encrypted {encrypted}");
        assert!(
            !dir.path().join("quarantine").exists(),
            "encrypted {encrypted}"
        );
        let store = RdbStore::open(config).unwrap();
        assert_eq!(count_rows(&store, "t").unwrap(), 1, "encrypted {encrypted}");
    }
}
