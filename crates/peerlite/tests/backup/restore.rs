//! Restore: the round trip, the safety copy, invalidated result sets, and readers that see the
//! old state or the new one while a restore runs.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlite::{RdbStore, RestoreRequest, StoreConfig, Value};
use peerlite_testkit::{scalar, temp_store_path, wait_for};

use crate::common::{add_items, backup_dir, code, items, items_in, listed, store_with_items};

#[test]
fn restore_brings_back_the_backup_and_keeps_what_it_replaced() {
    let (_dir, store) = store_with_items(&["a", "b", "c"]);
    let info = store.backup("bk").unwrap();
    assert_eq!(info.name, "bk");
    assert_eq!(info.path, backup_dir(&store).join("bk"));
    assert!(!info.automatic && !info.encrypted && info.verified);
    assert_eq!(info.version, 0);
    assert!(info.checksum.starts_with("blake3:"), "{}", info.checksum);
    assert_eq!(listed(&store), ["bk"]);

    // Changes after the backup.
    store
        .execute("DELETE FROM item WHERE name = 'b'", &[])
        .unwrap();
    store
        .execute("UPDATE item SET name = 'A' WHERE name = 'a'", &[])
        .unwrap();
    add_items(&store, &["d"]);
    assert_eq!(items(&store), ["A", "c", "d"]);
    let mut before = store.query_sql("SELECT name FROM item", &[]).unwrap();
    assert_eq!(before.row_count().unwrap(), 3);

    let report = store.restore("bk").unwrap();
    assert_eq!(items(&store), ["a", "b", "c"]);
    assert_eq!(report.restored_from, info.path);
    assert_eq!(report.backup_version, 0);
    assert_eq!(report.version, 0);
    assert_eq!(report.migration, None);
    assert_eq!(report.pages, info.page_count);

    // The safety copy holds exactly the data that was replaced.
    let pre = report.pre_restore_backup.clone().unwrap();
    assert_eq!(pre, backup_dir(&store).join("pre-restore"));
    assert_eq!(items_in(&pre), ["A", "c", "d"]);
    let pre_info = store
        .backups()
        .unwrap()
        .into_iter()
        .find(|b| b.name == "pre-restore")
        .unwrap();
    assert!(pre_info.verified);

    // Result sets taken before the restore are closed.
    assert_eq!(code(before.go_to_first_row()), 14800014);
    assert_eq!(code(before.row_count()), 14800014);
    assert!(before.is_closed());

    // The store goes on normally, and the restored state is what is on disk.
    add_items(&store, &["e"]);
    assert_eq!(items(&store), ["a", "b", "c", "e"]);
    let path = store.path().to_path_buf();
    store.close().unwrap();
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    assert_eq!(items(&store), ["a", "b", "c", "e"]);

    // A second restore replaces the safety copy with the newer replaced data; it can itself be
    // restored (by path), undoing the restore.
    store.restore("bk").unwrap();
    assert_eq!(items(&store), ["a", "b", "c"]);
    assert_eq!(items_in(&pre), ["a", "b", "c", "e"]);
    let undo = tempfile::tempdir().unwrap();
    let undo_path = undo.path().join("undo.db");
    std::fs::copy(&pre, &undo_path).unwrap();
    std::fs::copy(
        crate::common::manifest_of(&pre),
        crate::common::manifest_of(&undo_path),
    )
    .unwrap();
    store.restore(undo_path.to_str().unwrap()).unwrap();
    assert_eq!(items(&store), ["a", "b", "c", "e"]);
}

#[test]
fn restore_inside_a_transaction_is_refused_and_closed_stores_say_14800014() {
    let (_dir, store) = store_with_items(&["a"]);
    store.backup("bk").unwrap();
    let tx = store.begin_transaction().unwrap();
    tx.execute("INSERT INTO item(name) VALUES ('in-tx')", &[])
        .unwrap();
    assert_eq!(code(store.restore("bk")), 14800001);
    tx.commit().unwrap();
    assert_eq!(items(&store), ["a", "in-tx"]);

    store.close().unwrap();
    assert_eq!(code(store.restore("bk")), 14800014);
    assert_eq!(code(store.backup("later")), 14800014);
    assert_eq!(code(store.backups()), 14800014);
}

/// Readers on other threads query in a loop while restores swap two states back and forth:
/// state 1 is 400 rows of generation 1, state 2 is 500 rows of generation 2. Every read must
/// see one whole state.
#[test]
fn readers_during_a_restore_see_the_old_state_or_the_new_one() {
    let (_dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    store
        .execute(
            "CREATE TABLE gen(id INTEGER PRIMARY KEY, g INTEGER NOT NULL, pad BLOB NOT NULL)",
            &[],
        )
        .unwrap();
    let fill = |n: i64, g: i64| {
        store
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                 INSERT INTO gen(g, pad) SELECT ?2, zeroblob(700) FROM n",
                &[Value::from(n), Value::from(g)],
            )
            .unwrap();
    };
    fill(400, 1);
    store.backup("gen1").unwrap();
    store.execute("UPDATE gen SET g = 2", &[]).unwrap();
    fill(100, 2);
    store.backup("gen2").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, stop, reads, seen) = (
                store.clone(),
                Arc::clone(&stop),
                Arc::clone(&reads),
                Arc::clone(&seen),
            );
            std::thread::spawn(move || -> Result<(), String> {
                while !stop.load(Ordering::Acquire) {
                    let rs = store
                        .query_sql("SELECT count(*), min(g), max(g) FROM gen", &[])
                        .map_err(|e| format!("a read failed during a restore: {e}"))?;
                    // A result set taken just before a restore finished is closed by it
                    // (14800014): that read is simply taken again.
                    let row = match rs.rows() {
                        Ok(mut rows) => rows.next().map(<[Value]>::to_vec),
                        Err(e) if e.code() == 14800014 => continue,
                        Err(e) => return Err(e.to_string()),
                    };
                    let state = match row.as_deref() {
                        Some([Value::Integer(n), Value::Integer(lo), Value::Integer(hi)]) => {
                            (*n, *lo, *hi)
                        }
                        other => return Err(format!("unexpected row {other:?}")),
                    };
                    if state != (400, 1, 1) && state != (500, 2, 2) {
                        let (n, lo, hi) = state;
                        return Err(format!(
                            "a mixed state: {n} rows of generations {lo}..={hi}"
                        ));
                    }
                    seen.lock().unwrap().insert(state.1);
                    reads.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            })
        })
        .collect();

    for (round, (name, want)) in [("gen1", 1i64), ("gen2", 2), ("gen1", 1), ("gen2", 2)]
        .into_iter()
        .enumerate()
    {
        store
            .restore_with(RestoreRequest::new(name).pages_per_step(2))
            .unwrap();
        assert_eq!(
            scalar::<i64>(&store, "SELECT max(g) FROM gen").unwrap(),
            want,
            "round {round}"
        );
        // Let both readers read the new state a few times.
        let at = reads.load(Ordering::SeqCst);
        assert!(
            wait_for(Duration::from_secs(10), || {
                reads.load(Ordering::SeqCst) >= at + 6
            }),
            "the readers stopped reading"
        );
    }
    stop.store(true, Ordering::Release);
    for reader in readers {
        reader.join().unwrap().unwrap();
    }
    assert_eq!(
        seen.lock().unwrap().iter().copied().collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn a_key_value_store_backs_up_restores_and_deletes_backups() {
    use peerlite::{KvManager, KvValue, Options};
    let dir = tempfile::tempdir().unwrap();
    let manager = KvManager::new(dir.path(), "app").unwrap();
    let kv = manager.get_kv_store("prefs", Options::default()).unwrap();
    kv.put("theme", "dark").unwrap();
    kv.put("volume", 7).unwrap();
    let info = kv.backup("kv-bk").unwrap();
    assert_eq!(
        info.path,
        dir.path()
            .join("app")
            .join("backup")
            .join("prefs.db")
            .join("kv-bk")
    );
    assert_eq!(
        kv.backups()
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect::<Vec<_>>(),
        ["kv-bk"]
    );

    kv.put("theme", "light").unwrap();
    kv.delete("volume").unwrap();
    kv.put("new", true).unwrap();
    let mut before = kv.get_result_set("").unwrap();
    assert_eq!(before.get_count().unwrap(), 2);
    let report = kv.restore("kv-bk").unwrap();
    assert!(report.pre_restore_backup.is_some());
    assert_eq!(kv.get("theme").unwrap(), KvValue::String("dark".into()));
    assert_eq!(kv.get("volume").unwrap(), KvValue::Integer(7));
    assert_eq!(code(kv.get("new")), 15100004);
    assert_eq!(code(before.move_to_first()), 15100005);

    assert_eq!(code(kv.backup("auto-1")), 17020006);
    assert_eq!(code(kv.backup("../x")), 14800010);
    assert_eq!(code(kv.restore("missing")), 17020001);
    let results = kv.delete_backup(&["kv-bk", "kv-bk", "auto-1"]);
    let codes: Vec<Option<u32>> = results
        .iter()
        .map(|r| r.result.as_ref().err().map(peerlite::Error::code))
        .collect();
    assert_eq!(codes, [None, Some(17020001), Some(17020006)]);
    assert!(
        kv.backups()
            .unwrap()
            .iter()
            .all(|b| b.name == "pre-restore")
    );
    manager.close_kv_store("prefs").unwrap();
    assert_eq!(code(kv.backup("later")), 15100005);
    assert_eq!(code(kv.restore("kv-bk")), 15100005);
}

/// Issue 9, defect 7: a restore over a corrupted store took no pre-restore copy (its pages do
/// not all read) and kept nothing else, so the rows written after the backup were gone. Now
/// the damaged files are kept in a quarantine folder, the report says where, and salvage
/// finds those rows there.
#[test]
fn a_restore_over_a_corrupted_store_keeps_its_files_and_the_rows_after_the_backup() {
    let (dir, store) = store_with_items(&["a", "b"]);
    crate::common::add_padding(&store, 400, 1000);
    store.backup("bk").unwrap();
    add_items(&store, &["after-1", "after-2"]);
    assert!(store.checkpoint().unwrap());
    let path = store.path().to_path_buf();
    store.close().unwrap();
    let pages = std::fs::metadata(&path).unwrap().len() / 4096;
    peerlite_testkit::corrupt_pages(&path, 4096, &[pages / 3, pages / 2], 5).unwrap();
    let damaged = std::fs::read(&path).unwrap();

    let store = RdbStore::open(StoreConfig::new(&path).for_recovery(true)).unwrap();
    let report = store.restore("bk").unwrap();
    assert_eq!(
        report.pre_restore_backup, None,
        "the damaged data cannot be backed up"
    );
    let kept = report
        .quarantine
        .clone()
        .expect("the damaged files are kept");
    assert_eq!(kept.parent().unwrap(), dir.path().join("quarantine"));
    assert!(std::fs::read(kept.join("test.db")).unwrap() == damaged);
    assert_eq!(items(&store), ["a", "b"]);
    store.close().unwrap();

    let salvaged = dir.path().join("kept.salvage.db");
    let salvage = peerlite::repair::salvage(&kept.join("test.db"), None, &salvaged).unwrap();
    assert!(salvage.rows > 0, "{salvage:?}");
    assert_eq!(items_in(&salvaged), ["a", "b", "after-1", "after-2"]);
}
