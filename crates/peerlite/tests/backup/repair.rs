//! Corruption: detection (14800011 / 15100003 and the `NAME.corrupt` flag), the refusal to
//! open a flagged store, and the rebuild with `allow_rebuild`: quarantine, salvage, the newest
//! verified backup (Repaired) or an empty store (Rebuilt), and `merge_salvage`.

use std::path::{Path, PathBuf};

use peerlite::{CheckMode, KvManager, KvValue, Options, RdbStore, RebuiltType, StoreConfig, Value};
use peerlite_testkit::{
    TempDir, corrupt_pages, count_rows, pseudo_random_bytes, pseudo_random_pages, query_column,
    scalar, schema_objects, temp_store_path,
};

use crate::common::{PAGE_SIZE, code, items, open_read_only, store_with_items};

const BEFORE_BACKUP: i64 = 3000;
const AFTER_BACKUP: i64 = 500;
/// Reads every row of `big`.
const BIG_SCAN: &str = "SELECT sum(length(pad)) FROM big";

fn flag(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.corrupt", db.display()))
}

/// Inserts rows `from..=to` into `big`: note `row-<id>`, 1000 bytes of padding.
fn add_rows(store: &RdbStore, from: i64, to: i64) {
    store
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2) \
             INSERT INTO big(id, note, pad) SELECT i, 'row-' || i, zeroblob(1000) FROM n",
            &[Value::from(from), Value::from(to)],
        )
        .unwrap();
}

/// A closed store of a few MB: rows 1..=3000, optionally a backup `good` of them, then rows
/// 3001..=3500.
fn filled(with_backup: bool) -> (TempDir, PathBuf) {
    let (dir, path) = temp_store_path();
    fill(&path, None, with_backup);
    (dir, path)
}

/// The store at `path`, encrypted with `key` when one is given.
fn config_of(path: &Path, key: Option<&str>) -> StoreConfig {
    match key {
        Some(k) => StoreConfig::new(path).encryption_key(k),
        None => StoreConfig::new(path),
    }
}

/// Creates the store at `path` as [`filled`] describes, and closes it.
fn fill(path: &Path, key: Option<&str>, with_backup: bool) {
    let store = RdbStore::open(config_of(path, key)).unwrap();
    store
        .execute(
            "CREATE TABLE big(id INTEGER PRIMARY KEY, note TEXT NOT NULL, pad BLOB NOT NULL)",
            &[],
        )
        .unwrap();
    add_rows(&store, 1, BEFORE_BACKUP);
    if with_backup {
        store.backup("good").unwrap();
    }
    add_rows(&store, BEFORE_BACKUP + 1, BEFORE_BACKUP + AFTER_BACKUP);
    store.close().unwrap();
}

/// Overwrites six pseudo-random pages in the middle fifth of the file (never page 1) with
/// pseudo-random bytes; returns the damaged file's bytes.
fn corrupt_middle(path: &Path, seed: u64) -> Vec<u8> {
    let len = std::fs::metadata(path).unwrap().len();
    let pages = len / PAGE_SIZE as u64;
    assert!(pages > 500, "only {pages} pages: not a few MB");
    let victims = pseudo_random_pages(seed, pages * 2 / 5, pages * 3 / 5, 6);
    assert!(victims.iter().all(|&p| p > 1));
    corrupt_pages(path, PAGE_SIZE, &victims, seed).unwrap();
    std::fs::read(path).unwrap()
}

/// The next open or a check finds the damage: 14800011 and the flag. `scan` reads every row
/// of the damaged table.
fn detect(path: &Path, scan: &str) {
    match RdbStore::open(StoreConfig::new(path)) {
        Err(e) => assert_eq!(e.code(), 14800011, "{e}"),
        Ok(store) => {
            let err = store.check(CheckMode::Quick).unwrap_err();
            assert_eq!(err.code(), 14800011, "{err}");
            assert!(err.is_corruption());
            // A full scan of the damaged table reports it too.
            assert_eq!(code(store.query_sql(scan, &[])), 14800011);
            store.close().unwrap();
        }
    }
    assert!(
        flag(path).is_file(),
        "no corruption flag beside the database"
    );
}

#[test]
fn a_corrupted_store_is_flagged_refused_and_repaired_from_its_backup_with_salvage() {
    let (dir, path) = filled(true);
    let damaged = corrupt_middle(&path, 7);
    detect(&path, BIG_SCAN);

    // Flagged: an open without allow_rebuild fails at once and says how to repair.
    let err = RdbStore::open(StoreConfig::new(&path)).unwrap_err();
    assert_eq!(err.code(), 14800011, "{err}");
    assert!(err.to_string().contains("peerlite repair"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        damaged,
        "looking at the damaged file changed it"
    );

    let store = RdbStore::open(StoreConfig::new(&path).allow_rebuild(true)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::Repaired);
    let report = store.repair_report().unwrap().clone();
    assert_eq!(report.status, RebuiltType::Repaired);
    assert_eq!(report.backup.as_deref(), Some("good"));
    assert!(!flag(&path).exists(), "the flag outlived the repair");

    // The damaged file was moved aside, byte for byte.
    assert!(report.quarantine.starts_with(dir.path().join("quarantine")));
    let quarantined = report.quarantine.join("test.db");
    assert_eq!(std::fs::read(&quarantined).unwrap(), damaged);

    // The store is the backup: rows 1..=3000, intact.
    assert_eq!(count_rows(&store, "big").unwrap(), BEFORE_BACKUP);
    assert_eq!(
        scalar::<i64>(&store, "SELECT max(id) FROM big").unwrap(),
        BEFORE_BACKUP
    );
    store.check(CheckMode::Full).unwrap();

    // The salvage file holds the readable rows, including the ones newer than the backup.
    let salvage = report.salvage.path.clone().unwrap();
    assert_eq!(salvage, dir.path().join("test.salvage.db"));
    assert!(salvage.is_file());
    let salvaged = open_read_only(&salvage);
    let newer = query_column::<i64>(
        &salvaged,
        "SELECT id FROM big WHERE id > ?1 AND note = 'row-' || id ORDER BY id",
        &[Value::from(BEFORE_BACKUP)],
    )
    .unwrap();
    let salvaged_big = count_rows(&salvaged, "big").unwrap();
    salvaged.close().unwrap();
    assert_eq!(
        newer,
        (BEFORE_BACKUP + 1..=BEFORE_BACKUP + AFTER_BACKUP).collect::<Vec<_>>(),
        "the rows after the damaged pages were not all salvaged"
    );
    assert!(
        salvaged_big < BEFORE_BACKUP + AFTER_BACKUP,
        "the damaged pages lost no rows"
    );
    assert_eq!(report.salvage.rows, salvaged_big as u64);
    assert!(
        report
            .salvage
            .tables
            .contains(&("big".to_owned(), salvaged_big as u64)),
        "{:?}",
        report.salvage.tables
    );

    // merge_salvage adds exactly the rows the backup lacks.
    let merged = store.merge_salvage(&salvage).unwrap();
    let big = merged.iter().find(|(t, _)| t == "big").unwrap().1;
    assert_eq!(big, AFTER_BACKUP as usize, "{merged:?}");
    assert_eq!(
        count_rows(&store, "big").unwrap(),
        BEFORE_BACKUP + AFTER_BACKUP
    );
    assert_eq!(
        scalar::<i64>(
            &store,
            "SELECT count(*) FROM big WHERE note = 'row-' || id AND length(pad) = 1000"
        )
        .unwrap(),
        BEFORE_BACKUP + AFTER_BACKUP
    );
    // Merging again adds nothing.
    let again = store.merge_salvage(&salvage).unwrap();
    assert!(again.iter().all(|(_, n)| *n == 0), "{again:?}");
    store.close().unwrap();

    // The next plain open is an ordinary one.
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::None);
    assert!(store.repair_report().is_none());
    assert_eq!(
        count_rows(&store, "big").unwrap(),
        BEFORE_BACKUP + AFTER_BACKUP
    );
}

fn open_read_only_keyed(path: &Path, key: Option<&str>) -> RdbStore {
    let config = StoreConfig::new(path).read_only(true);
    RdbStore::open(match key {
        Some(k) => config.encryption_key(k),
        None => config,
    })
    .unwrap()
}

#[test]
fn without_backups_a_rebuild_starts_empty() {
    let (dir, path) = filled(false);
    let damaged = corrupt_middle(&path, 11);
    detect(&path, BIG_SCAN);
    let store = RdbStore::open(StoreConfig::new(&path).allow_rebuild(true)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::Rebuilt);
    let report = store.repair_report().unwrap();
    assert_eq!(report.backup, None);
    assert!(
        schema_objects(&store).unwrap().is_empty(),
        "the rebuilt store is not empty"
    );
    assert_eq!(
        std::fs::read(report.quarantine.join("test.db")).unwrap(),
        damaged
    );
    assert!(report.salvage.rows > 0);
    assert_eq!(
        report.salvage.path.as_deref(),
        Some(dir.path().join("test.salvage.db").as_path())
    );
    // The empty store is usable.
    store
        .execute("CREATE TABLE fresh(id INTEGER PRIMARY KEY)", &[])
        .unwrap();
    store.check(CheckMode::Full).unwrap();
}

#[test]
fn damage_to_page_one_behind_the_magic_is_14800011_and_an_allow_rebuild_open_repairs_it() {
    let (dir, store) = store_with_items(&["a", "b"]);
    let path = store.path().to_path_buf();
    store.backup("good").unwrap();
    crate::common::add_items(&store, &["c"]);
    store.close().unwrap();

    let mut bytes = std::fs::read(&path).unwrap();
    let noise = pseudo_random_bytes(3, PAGE_SIZE - 16);
    bytes[16..PAGE_SIZE].copy_from_slice(&noise);
    std::fs::write(&path, &bytes).unwrap();

    let err = RdbStore::open(StoreConfig::new(&path)).unwrap_err();
    assert_eq!(err.code(), 14800011, "{err}");
    assert!(flag(&path).is_file());

    // An open with allow_rebuild detects it itself and repairs from the backup.
    let store = RdbStore::open(StoreConfig::new(&path).allow_rebuild(true)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::Repaired);
    assert_eq!(
        store.repair_report().unwrap().backup.as_deref(),
        Some("good")
    );
    assert_eq!(items(&store), ["a", "b"]);
    assert!(dir.path().join("quarantine").is_dir());
}

#[test]
fn garbage_over_all_of_page_one_is_14800011() {
    let (_dir, store) = store_with_items(&["a", "b"]);
    crate::common::add_padding(&store, 50, 1000);
    let path = store.path().to_path_buf();
    store.backup("good").unwrap();
    store.close().unwrap();
    corrupt_pages(&path, PAGE_SIZE, &[1], 5).unwrap();

    let err = RdbStore::open(StoreConfig::new(&path)).unwrap_err();
    assert_eq!(err.code(), 14800011, "{err}");
    assert!(flag(&path).is_file());
    let store = RdbStore::open(StoreConfig::new(&path).allow_rebuild(true)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::Repaired);
    assert_eq!(items(&store), ["a", "b"]);
}

#[test]
fn a_stale_flag_over_a_healthy_file_is_cleared_without_quarantine() {
    let (dir, store) = store_with_items(&["a", "b"]);
    crate::common::add_padding(&store, 2500, 1000);
    let path = store.path().to_path_buf();
    store.close().unwrap();
    let good = std::fs::read(&path).unwrap();
    corrupt_middle(&path, 23);
    detect(&path, "SELECT sum(length(v)) FROM pad");

    // The file is put back in good shape (say, by hand from a copy); the flag stays.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::write(&path, &good).unwrap();
    let err = RdbStore::open(StoreConfig::new(&path)).unwrap_err();
    assert_eq!(err.code(), 14800011, "the flag is persistent: {err}");

    let store = RdbStore::open(StoreConfig::new(&path).allow_rebuild(true)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::None);
    assert!(store.repair_report().is_none());
    assert!(!flag(&path).exists());
    assert!(
        !dir.path().join("quarantine").exists(),
        "a healthy file was quarantined"
    );
    assert!(!dir.path().join("test.salvage.db").exists());
    assert_eq!(items(&store), ["a", "b"]);
    assert_eq!(count_rows(&store, "pad").unwrap(), 2500);
    store.close().unwrap();
    // And the next plain open works.
    RdbStore::open(StoreConfig::new(&path)).unwrap();
}

#[test]
fn a_check_that_passes_clears_a_flag_left_by_a_passing_problem() {
    let (_dir, store) = store_with_items(&["a"]);
    let path = store.path().to_path_buf();
    std::fs::write(flag(&path), b"{ not json").unwrap();
    store.check(CheckMode::Full).unwrap();
    assert!(!flag(&path).exists());
}

#[test]
fn a_corrupted_key_value_store_reports_15100003_and_repairs_with_allow_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let manager = KvManager::new(dir.path(), "app").unwrap();
    let kv = manager.get_kv_store("big", Options::default()).unwrap();
    let entries = |from: usize, to: usize| -> Vec<peerlite::Entry> {
        (from..to)
            .map(|i| peerlite::Entry {
                key: format!("k{i:05}"),
                value: KvValue::Bytes(vec![(i % 251) as u8; 1000]),
            })
            .collect()
    };
    kv.put_batch(&entries(0, 3000)).unwrap();
    kv.backup("kv-good").unwrap();
    kv.put_batch(&entries(3000, 3200)).unwrap();
    let path = kv.path().to_path_buf();
    manager.close_kv_store("big").unwrap();

    let damaged = corrupt_middle(&path, 31);
    match manager.get_kv_store("big", Options::default()) {
        Err(e) => assert_eq!(e.code(), 15100003, "{e}"),
        Ok(kv) => {
            let err = kv.check(CheckMode::Quick).unwrap_err();
            assert_eq!(err.code(), 15100003, "{err}");
            manager.close_kv_store("big").unwrap();
        }
    }
    assert!(flag(&path).is_file());
    let err = manager.get_kv_store("big", Options::default()).unwrap_err();
    assert_eq!(err.code(), 15100003, "{err}");
    assert!(err.to_string().contains("peerlite repair"), "{err}");

    let kv = manager
        .get_kv_store(
            "big",
            Options {
                allow_rebuild: true,
                ..Options::default()
            },
        )
        .unwrap();
    assert_eq!(kv.rebuilt(), RebuiltType::Repaired);
    let report = kv.repair_report().unwrap().clone();
    assert_eq!(report.backup.as_deref(), Some("kv-good"));
    assert_eq!(
        std::fs::read(report.quarantine.join("big.db")).unwrap(),
        damaged
    );
    assert_eq!(kv.get_result_size("").unwrap(), 3000);
    assert_eq!(
        kv.get("k02999").unwrap(),
        KvValue::Bytes(vec![(2999 % 251) as u8; 1000])
    );
    assert_eq!(code(kv.get("k03000")), 15100004);
    kv.check(CheckMode::Full).unwrap();
    let salvage = report.salvage.path.unwrap();
    let added = kv.merge_salvage(&salvage).unwrap();
    assert_eq!(kv.get_result_size("").unwrap(), 3000 + added);
}

#[test]
fn the_newest_backup_that_verifies_is_used_and_never_the_pre_restore_copy() {
    let (dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    store
        .execute(
            "CREATE TABLE big(id INTEGER PRIMARY KEY, note TEXT NOT NULL, pad BLOB NOT NULL)",
            &[],
        )
        .unwrap();
    add_rows(&store, 1, BEFORE_BACKUP);
    store.backup("older").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3));
    add_rows(&store, BEFORE_BACKUP + 1, BEFORE_BACKUP + 100);
    let newer = store.backup("newer").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3));
    // The newest backup goes bad; the newest file of all is the safety copy of a restore.
    peerlite_testkit::flip_byte(&newer.path, newer.size_bytes / 2).unwrap();
    store.restore("older").unwrap();
    let names: Vec<String> = crate::common::listed(&store);
    assert_eq!(names, ["pre-restore", "newer", "older"]);
    store.close().unwrap();

    corrupt_middle(&path, 41);
    detect(&path, BIG_SCAN);
    let store = RdbStore::open(StoreConfig::new(&path).allow_rebuild(true)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::Repaired);
    assert_eq!(
        store.repair_report().unwrap().backup.as_deref(),
        Some("older")
    );
    assert_eq!(count_rows(&store, "big").unwrap(), BEFORE_BACKUP);
    // The skipped backups are left where they were.
    assert!(newer.path.is_file());
    assert!(dir.path().join("backup/test.db/pre-restore").is_file());
}

#[test]
fn an_encrypted_store_is_repaired_from_its_encrypted_backup() {
    const KEY: &str = "repair key";
    let (dir, path) = temp_store_path();
    let config = || StoreConfig::new(&path).encryption_key(KEY);
    fill(&path, Some(KEY), true);

    let damaged = corrupt_middle(&path, 53);
    let store = RdbStore::open(config()).unwrap();
    let err = store.check(CheckMode::Quick).unwrap_err();
    assert_eq!(err.code(), 14800011, "{err}");
    store.close().unwrap();
    assert!(flag(&path).is_file());
    assert_eq!(std::fs::read(&path).unwrap(), damaged);

    let store = RdbStore::open(config().allow_rebuild(true)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::Repaired);
    let report = store.repair_report().unwrap().clone();
    assert_eq!(report.backup.as_deref(), Some("good"));
    assert_eq!(count_rows(&store, "big").unwrap(), BEFORE_BACKUP);
    store.check(CheckMode::Full).unwrap();
    let salvage = report.salvage.path.unwrap();
    assert_eq!(salvage, dir.path().join("test.salvage.db"));
    assert!(report.salvage.rows > 0);
    assert!(
        !peerlite_testkit::file_contains(&salvage, b"row-100").unwrap(),
        "the salvage file of an encrypted store is plaintext"
    );
    // The salvage file is encrypted with the store's key: without it, it does not open.
    assert_eq!(
        code(RdbStore::open(StoreConfig::new(&salvage).read_only(true))),
        14800020
    );
    let merged = store.merge_salvage(&salvage).unwrap();
    let big = merged.iter().find(|(t, _)| t == "big").unwrap().1;
    assert_eq!(
        count_rows(&store, "big").unwrap(),
        BEFORE_BACKUP + big as i64
    );
}

#[test]
fn a_wrong_key_never_triggers_a_rebuild_of_a_flagged_store() {
    const KEY: &str = "the right key";
    let (dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path).encryption_key(KEY)).unwrap();
    store.execute(crate::common::CREATE_ITEM, &[]).unwrap();
    crate::common::add_items(&store, &["precious"]);
    store.backup("good").unwrap();
    crate::common::add_items(&store, &["newer"]);
    // A passing problem flagged the store (as any SQLITE_CORRUPT on a read would).
    std::fs::write(flag(&path), b"{}").unwrap();
    store.close().unwrap();
    let before = std::fs::read(&path).unwrap();

    let err = RdbStore::open(
        StoreConfig::new(&path)
            .encryption_key("a wrong key")
            .allow_rebuild(true),
    )
    .map(|s| (s.rebuilt(), s.repair_report().cloned()))
    .unwrap_err();
    assert_eq!(err.code(), 14800020, "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the database was replaced"
    );
    assert!(!dir.path().join("quarantine").exists());

    // With the right key the flag turns out stale and all the data is there.
    let store = RdbStore::open(
        StoreConfig::new(&path)
            .encryption_key(KEY)
            .allow_rebuild(true),
    )
    .unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::None);
    assert_eq!(items(&store), ["precious", "newer"]);
}

#[test]
fn salvage_of_an_encrypted_store_recovers_the_rows_after_a_damaged_page() {
    const KEY: &str = "salvage key";
    let (_dir, path) = temp_store_path();
    let config = || StoreConfig::new(&path).encryption_key(KEY);
    fill(&path, Some(KEY), true);
    corrupt_middle(&path, 53);

    // The rows after the backup are readable: a fresh connection seeks straight to them.
    let look = RdbStore::open(config().read_only(true)).unwrap();
    assert_eq!(
        scalar::<i64>(&look, "SELECT count(*) FROM big WHERE id > 3000").unwrap(),
        AFTER_BACKUP
    );
    assert_eq!(code(look.check(CheckMode::Quick)), 14800011);
    look.close().unwrap();

    let store = RdbStore::open(config().allow_rebuild(true)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::Repaired);
    let salvage = store.repair_report().unwrap().salvage.path.clone().unwrap();
    let merged = store.merge_salvage(&salvage).unwrap();
    let big = merged.iter().find(|(t, _)| t == "big").unwrap().1;
    assert_eq!(big, AFTER_BACKUP as usize, "{merged:?}");
}

/// Issue 9, defect 3, through a rebuild: a store whose file was cut in half (a half-written
/// copy, a full disk) is repaired from its backup, and salvage gives up the rows on the half
/// that is left, where it used to find none (SQLite refuses a header counting more pages
/// than the file has).
#[test]
fn a_store_cut_in_half_is_repaired_and_its_remaining_rows_salvaged() {
    for key in [None, Some("cut key")] {
        let (_dir, path) = temp_store_path();
        let config = || config_of(&path, key);
        fill(&path, key, true);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2 + 777]).unwrap();

        let err = RdbStore::open(config()).unwrap_err();
        assert_eq!(err.code(), 14800011, "{key:?}: {err}");
        let store = RdbStore::open(config().allow_rebuild(true)).unwrap();
        assert_eq!(store.rebuilt(), RebuiltType::Repaired);
        let report = store.repair_report().unwrap().clone();
        // Rows are ~1 KB: about half of the 3500 are on the half of the file that is left.
        assert!(report.salvage.rows > 1200, "{key:?}: {:?}", report.salvage);
        assert_eq!(report.salvage.error, None);
        assert!(report.salvage.pages_read <= 2 * report.salvage.pages);
        let salvaged = open_read_only_keyed(report.salvage.path.as_ref().unwrap(), key);
        let intact = scalar::<i64>(
            &salvaged,
            "SELECT count(*) FROM big WHERE note = 'row-' || id AND length(pad) = 1000",
        )
        .unwrap();
        assert_eq!(
            intact as u64, report.salvage.rows,
            "{key:?}: every salvaged row whole"
        );
        salvaged.close().unwrap();
        assert_eq!(count_rows(&store, "big").unwrap(), BEFORE_BACKUP, "{key:?}");
    }
}
