//! A store file put back from an ordinary copy (a VM snapshot, a `cp` backup, a cloned
//! device) numbered its new changes with sequence numbers its peers had already passed: the
//! peer's watermark for it stood at 3, the copy resumed at 1, so its next two rows were never
//! sent — while every sync said ok. A peer that holds more of a database's epoch than the
//! database ever committed now gives it away: the database takes a new epoch (17040012 for
//! that session), and the next sync sends its rows again, every one.
//!
//! What this catches: a copy that syncs before it has committed as many changes as it lost.
//! One that committed more first is not caught yet (its numbers pass the peer's watermark
//! again); that needs the watermark to carry the timestamp of the change it stands at.

use peerlite::sync::{SyncMode, SyncStatus, sync_in_memory};

use crate::common::*;

fn put_back(root: &std::path::Path, device: &str, snapshot: &std::path::Path) {
    let db = root.join(device).join(STORE_FILE);
    std::fs::copy(snapshot, &db).unwrap();
}

#[test]
fn a_store_put_back_from_a_copy_resends_everything_under_a_new_epoch() {
    for (mode, whole_dir) in [
        (SyncMode::Push, false),
        (SyncMode::Pull, false),
        (SyncMode::Push, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock_at(T0);
        let a = note_device(dir.path(), "a", &clock);
        let b = note_device(dir.path(), "b", &clock);
        let sync = |a: &peerlite::RdbStore| match mode {
            SyncMode::Pull => {
                let (on_b, on_a) = sync_in_memory(&b, a, SyncMode::Pull, None).unwrap();
                (on_a, on_b)
            }
            _ => sync_in_memory(a, &b, SyncMode::Push, None).unwrap(),
        };
        a.execute("INSERT INTO note(id, text, n) VALUES (1, 'one', 0)", &[])
            .unwrap();
        assert!(sync(&a).0.status.is_ok());
        a.close().unwrap();
        drop(a);
        let snapshot = dir.path().join("snapshot.db");
        std::fs::copy(dir.path().join("a").join(STORE_FILE), &snapshot).unwrap();
        let clock_file = dir.path().join("a").join(format!("{STORE_FILE}.clock"));
        let clock_snapshot = std::fs::read(&clock_file).ok();
        let a = open_store(dir.path(), "a", &clock);
        a.execute(
            "INSERT INTO note(id, text, n) VALUES (2, 'two', 0), (3, 'three', 0)",
            &[],
        )
        .unwrap();
        assert!(sync(&a).0.status.is_ok());
        a.close().unwrap();
        drop(a);
        put_back(dir.path(), "a", &snapshot);
        if whole_dir && let Some(bytes) = &clock_snapshot {
            std::fs::write(&clock_file, bytes).unwrap();
        }
        let a = open_store(dir.path(), "a", &clock);
        a.execute("INSERT INTO note(id, text, n) VALUES (10, 'after', 0)", &[])
            .unwrap();
        let epoch_before = a.epoch().unwrap();
        let (on_a, on_b) = sync(&a);
        assert_eq!(on_a.status, SyncStatus::RolledBack, "{mode:?}: {on_a:?}");
        assert_eq!(on_b.status.code(), 17040012, "{mode:?}: {on_b:?}");
        assert_ne!(a.epoch().unwrap(), epoch_before, "a new epoch");
        let (on_a, _) = sync(&a);
        assert!(on_a.status.is_ok(), "{mode:?}: {on_a:?}");
        let table = device_table(&b, "a");
        let ids: Vec<i64> = rows(&b, &format!("SELECT id FROM \"{table}\" ORDER BY id"))
            .into_iter()
            .map(|r| match r[0] {
                peerlite::Value::Integer(i) => i,
                _ => unreachable!(),
            })
            .collect();
        for id in [1, 10] {
            assert!(ids.contains(&id), "{mode:?}: {id} missing from {ids:?}");
        }
        // Once renewed, later syncs go on as usual.
        a.execute("INSERT INTO note(id, text, n) VALUES (13, 'later', 0)", &[])
            .unwrap();
        assert!(sync(&a).0.status.is_ok());
        assert_eq!(
            count(&b, &table) as usize,
            ids.len() + 1,
            "{mode:?}: exactly the new row"
        );
    }
}

#[test]
fn purging_the_newest_change_is_not_mistaken_for_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    let b = note_device(dir.path(), "b", &clock);
    a.execute("INSERT INTO note(id, text, n) VALUES (1, 'one', 0)", &[])
        .unwrap();
    a.execute("DELETE FROM note WHERE id = 1", &[]).unwrap();
    assert!(
        sync_in_memory(&a, &b, SyncMode::Push, None)
            .unwrap()
            .0
            .status
            .is_ok()
    );
    // The newest change, a tombstone, is purged: the clock tables hold less than b has.
    a.purge_tombstones(Some(std::time::Duration::ZERO)).unwrap();
    let epoch = a.epoch().unwrap();
    let (on_a, _) = sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert!(on_a.status.is_ok(), "{on_a:?}");
    assert_eq!(a.epoch().unwrap(), epoch);
}
