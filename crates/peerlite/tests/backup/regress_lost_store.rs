//! A store whose file was cut to 0 bytes (the commonest damage: a copy interrupted at once) or
//! lost, while its backups, clock file, WAL or corruption flag were still beside it, was taken
//! for "no store yet": even `check` (an open for recovery) made a fresh empty store there with
//! a new identity — plaintext where the store had been encrypted — and `repair` answered
//! "nothing to repair", never putting the verified backup back. Beside a hot WAL, SQLite
//! deleted the WAL of the 0-byte file, with every transaction it held.
//!
//! Now a missing or empty file beside any trace of a store is a lost store: every open
//! refuses it with 14800011 and changes nothing (no file written, none deleted); only a
//! rebuild acts on it, salvaging what the WAL holds and putting the newest verified backup
//! back. An empty file without traces is still no store for an open that only looks.

use std::path::Path;

use peerlite::{KvManager, Options, RdbStore, RebuiltType, StoreConfig};
use peerlite_testkit::{count_rows, dir_entries, temp_store_path};

use crate::common::{CREATE_ITEM, add_items, code, items};

/// Every file in the store's directory, recursively, with its size.
fn snapshot(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::metadata(&p).unwrap().len()));
            }
        }
    }
    out.sort();
    out
}

/// Every way to open the store without rebuilding it.
fn configs(db: &Path) -> Vec<(&'static str, StoreConfig)> {
    vec![
        ("open", StoreConfig::new(db)),
        ("read-only", StoreConfig::new(db).read_only(true)),
        ("recovery", StoreConfig::new(db).for_recovery(true)),
        ("versioned", StoreConfig::new(db).version(1)),
    ]
}

/// Each trace, made beside a store whose file is then emptied or removed ("clock": a
/// distributed store that stamped, so its clock file is there).
const TRACES: [&str; 4] = ["backup", "clock", "flag", "wal"];

/// A store with two items and the one trace asked for; returns the items' names.
fn store_with_trace(db: &Path, trace: &str) {
    let store = RdbStore::open(StoreConfig::new(db)).unwrap();
    store.execute(CREATE_ITEM, &[]).unwrap();
    add_items(&store, &["a", "b"]);
    match trace {
        "backup" => drop(store.backup("b1").unwrap()),
        "clock" => store
            .set_distributed_tables(
                &["item"],
                peerlite::changes::DistributedType::Device,
                &peerlite::changes::DistributedConfig::default(),
            )
            .unwrap(),
        "flag" => std::fs::write(format!("{}.corrupt", db.display()), b"{}").unwrap(),
        _ => {}
    }
    if trace == "clock" {
        add_items(&store, &["c"]);
    }
    store.close().unwrap();
    if trace == "wal" {
        // A writer killed with committed transactions in its WAL.
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint = 0; INSERT INTO item(name) VALUES ('w1'), ('w2')",
        )
        .unwrap();
        std::mem::forget(conn);
    }
}

#[test]
fn no_open_takes_a_lost_store_for_a_new_one() {
    for trace in TRACES {
        for emptied in [true, false] {
            let (dir, db) = temp_store_path();
            store_with_trace(&db, trace);
            if emptied {
                std::fs::write(&db, b"").unwrap();
            } else {
                std::fs::remove_file(&db).unwrap();
            }
            let before = snapshot(dir.path());
            for (how, config) in configs(&db) {
                // A deleted file beside only its clock file or backups (nothing a crash or a
                // damage leaves) is how an application re-creates its database: its creating
                // open may; opens that only look refuse it, and so does the command line.
                if matches!(trace, "clock" | "backup")
                    && !emptied
                    && matches!(how, "open" | "versioned")
                {
                    continue;
                }
                let err = RdbStore::open(config).map(|_| ()).unwrap_err();
                assert_eq!(err.code(), 14800011, "{trace} {emptied} {how}: {err}");
                assert!(err.to_string().contains("peerlite repair"), "{err}");
                assert_eq!(
                    snapshot(dir.path()),
                    before,
                    "{trace} {emptied} {how}: nothing changed"
                );
            }
        }
    }
}

#[test]
fn a_repair_puts_the_backup_back_and_salvages_the_wal_of_a_lost_file() {
    // The backup is put back.
    let (_dir, db) = temp_store_path();
    store_with_trace(&db, "backup");
    std::fs::write(&db, b"").unwrap();
    let store = RdbStore::open(StoreConfig::new(&db).allow_rebuild(true)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::Repaired);
    assert_eq!(items(&store), ["a", "b"]);
    store.close().unwrap();

    // A hot WAL beside a missing file: its committed rows are salvaged, and the WAL itself
    // is kept in quarantine.
    let (dir, db) = temp_store_path();
    store_with_trace(&db, "wal");
    std::fs::remove_file(&db).unwrap();
    let wal = std::fs::read(format!("{}-wal", db.display())).unwrap();
    assert!(!wal.is_empty());
    let store = RdbStore::open(StoreConfig::new(&db).allow_rebuild(true)).unwrap();
    let report = store.repair_report().unwrap().clone();
    assert_eq!(report.status, RebuiltType::Rebuilt);
    let kept = report
        .quarantine
        .join(format!("{}-wal", db.file_name().unwrap().to_str().unwrap()));
    assert_eq!(
        std::fs::read(kept).unwrap(),
        wal,
        "the WAL is kept as it was"
    );
    let salvaged = report.salvage.rows + report.salvage.lost_and_found;
    assert!(salvaged >= 2, "the WAL's rows are salvaged: {report:?}");
    store.close().unwrap();
    assert!(
        dir_entries(dir.path())
            .iter()
            .any(|n| n.contains("salvage"))
    );
}

#[test]
fn an_empty_file_without_traces_is_created_only_by_an_open_that_creates() {
    let (_dir, db) = temp_store_path();
    std::fs::write(&db, b"").unwrap();
    for config in [
        StoreConfig::new(&db).read_only(true),
        StoreConfig::new(&db).for_recovery(true),
    ] {
        assert_eq!(code(RdbStore::open(config)), 14800011);
        assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "nothing written");
    }
    let store = RdbStore::open(StoreConfig::new(&db)).unwrap();
    store.execute(CREATE_ITEM, &[]).unwrap();
    assert_eq!(count_rows(&store, "item").unwrap(), 0);
}

#[test]
fn a_key_value_store_read_without_create_if_missing_never_initialises_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    std::fs::write(&db, b"").unwrap();
    let manager = KvManager::at(dir.path()).unwrap();
    let options = Options {
        create_if_missing: false,
        ..Options::default()
    };
    assert_eq!(code(manager.get_kv_store("s", options)), 15100003);
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "nothing written");
}

#[test]
fn a_lost_key_value_store_is_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let manager = KvManager::at(dir.path()).unwrap();
    let kv = manager.get_kv_store("s", Options::default()).unwrap();
    kv.put("a", "1").unwrap();
    kv.backup("b1").unwrap();
    manager.close_kv_store("s").unwrap();
    drop(kv);
    let db = dir.path().join("s.db");
    std::fs::write(&db, b"").unwrap();
    for options in [
        Options::default(),
        Options {
            create_if_missing: false,
            ..Options::default()
        },
        Options {
            for_recovery: true,
            ..Options::default()
        },
    ] {
        let manager = KvManager::at(dir.path()).unwrap();
        assert_eq!(code(manager.get_kv_store("s", options)), 15100003);
        assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
    }
    std::fs::remove_file(&db).unwrap();
    let manager = KvManager::at(dir.path()).unwrap();
    let options = Options {
        create_if_missing: false,
        ..Options::default()
    };
    assert_eq!(code(manager.get_kv_store("s", options.clone())), 15100003);
    let rebuilt = manager
        .get_kv_store(
            "s",
            Options {
                allow_rebuild: true,
                ..options
            },
        )
        .unwrap();
    assert_eq!(rebuilt.rebuilt(), RebuiltType::Repaired);
    assert_eq!(rebuilt.get("a").unwrap(), peerlite::KvValue::from("1"));
}
