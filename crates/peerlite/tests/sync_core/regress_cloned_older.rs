//! Adversary round 4, HIGH-5: a cloned device's change was hidden for good when it was older
//! than the change the peer had received under the same sequence number. A device's files were
//! copied to a clone (same identity); the clone wrote first (change 2, an older write time),
//! the original a moment later (its own change 2). The peer synced with the original — its
//! watermark 2, stamped with the original's newer write time — then with the clone: no row of
//! the clone numbered at or below 2 was newer than the stamp, so the check passed, every sync
//! said ok, and the clone's change 2 (an insert, an update, a delete alike) never arrived.
//!
//! The stamp now also keeps the write time (and a fingerprint of the row key) of the change
//! numbered exactly at the watermark; the clone holds another change under that number, so it renews its epoch (17040012) and the
//! next sync delivers everything it has. In one history (rows changed since, the peer's own
//! rows at the watermark, relays) nothing is taken for a clone.

use std::path::Path;
use std::sync::Arc;

use peerlite::changes::ManualClock;
use peerlite::sync::{DeviceResult, SyncMode, SyncStatus, sync_in_memory};
use peerlite::{RdbStore, StoreConfig, Value};

use crate::common::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Table {
    Collaboration,
    SingleVersion,
}

/// What the clone does under the re-used number.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Change {
    Insert,
    Update,
    Delete,
}

fn device(root: &Path, name: &str, table: Table, clock: &Arc<ManualClock>) -> RdbStore {
    match table {
        Table::Collaboration => note_device(root, name, clock),
        Table::SingleVersion => item_device(root, name, clock),
    }
}

fn insert(store: &RdbStore, table: Table, key: i64, text: &str) {
    match table {
        Table::Collaboration => drop(
            store
                .execute(
                    "INSERT INTO note(id, text, n) VALUES (?1, ?2, 0)",
                    &[Value::Integer(key), Value::Text(text.into())],
                )
                .unwrap(),
        ),
        Table::SingleVersion => add_item(store, &key.to_string(), text, 0),
    }
}

fn update(store: &RdbStore, table: Table, key: i64, text: &str) {
    match table {
        Table::Collaboration => drop(
            store
                .execute(
                    "UPDATE note SET text = ?2 WHERE id = ?1",
                    &[Value::Integer(key), Value::Text(text.into())],
                )
                .unwrap(),
        ),
        Table::SingleVersion => set_title(store, &key.to_string(), text),
    }
}

fn delete(store: &RdbStore, table: Table, key: i64) {
    let (sql, k) = match table {
        Table::Collaboration => ("DELETE FROM note WHERE id = ?1", Value::Integer(key)),
        Table::SingleVersion => (
            "DELETE FROM item WHERE uuid = ?1",
            Value::Text(key.to_string()),
        ),
    };
    store.execute(sql, &[k]).unwrap();
}

/// `(key, text)` of the rows `holder` has of device `a`.
fn held(holder: &RdbStore, table: Table) -> Vec<(String, String)> {
    let sql = match table {
        Table::Collaboration => format!(
            "SELECT CAST(id AS TEXT), text FROM \"{}\" ORDER BY id",
            device_table(holder, "a")
        ),
        Table::SingleVersion => "SELECT uuid, title FROM item ORDER BY uuid".to_owned(),
    };
    rows(holder, &sql)
        .into_iter()
        .map(|r| match (&r[0], &r[1]) {
            (Value::Text(k), Value::Text(t)) => (k.clone(), t.clone()),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// One session between `a` (a device "a", original or clone) and `b`, started by `b` for a
/// pull; returns (a's result, b's result).
fn session(a: &RdbStore, b: &RdbStore, mode: SyncMode) -> (DeviceResult, DeviceResult) {
    match mode {
        SyncMode::Pull => {
            let (on_b, on_a) = sync_in_memory(b, a, SyncMode::Pull, None).unwrap();
            (on_a, on_b)
        }
        _ => sync_in_memory(a, b, SyncMode::Push, None).unwrap(),
    }
}

/// The store files a clone copies: database, WAL, shared memory and clock file.
fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for suffix in ["", "-wal", "-shm", ".clock"] {
        let name = format!("{STORE_FILE}{suffix}");
        if from.join(&name).exists() {
            std::fs::copy(from.join(&name), to.join(&name)).unwrap();
        }
    }
}

#[test]
fn a_clones_change_older_than_the_one_received_under_its_number_still_arrives() {
    for table in [Table::Collaboration, Table::SingleVersion] {
        for mode in [SyncMode::Pull, SyncMode::Push] {
            for change in [Change::Insert, Change::Update, Change::Delete] {
                let case = format!("{table:?} {mode:?} {change:?}");
                let dir = tempfile::tempdir().unwrap();
                let clock = clock_at(T0);
                let a = device(dir.path(), "a", table, &clock);
                let b = device(dir.path(), "b", table, &clock);
                insert(&a, table, 1, "one");
                a.close().unwrap();
                drop(a);
                // The clone: the same identity, the same files, somewhere else.
                let clone_dir = dir.path().join("clone");
                copy_store(&dir.path().join("a"), &clone_dir);
                let a = open_store(dir.path(), "a", &clock);
                let clone = RdbStore::open(
                    StoreConfig::new(clone_dir.join(STORE_FILE))
                        .device_id("a")
                        .clock(clock.clone()),
                )
                .unwrap();
                // The clone writes first, the original a moment later, both as change 2.
                clock.advance(10);
                match change {
                    Change::Insert => insert(&clone, table, 2, "from the clone"),
                    Change::Update => update(&clone, table, 1, "from the clone"),
                    Change::Delete => delete(&clone, table, 1),
                }
                clock.advance(10);
                insert(&a, table, 3, "from a");
                let (on_a, _) = session(&a, &b, mode);
                assert!(on_a.status.is_ok(), "{case}: {on_a:?}");
                // The clone comes up under the same identity.
                let epoch = clone.epoch().unwrap();
                let (first, on_b) = session(&clone, &b, mode);
                assert_eq!(first.status, SyncStatus::RolledBack, "{case}: {first:?}");
                assert_eq!(on_b.status.code(), 17040012, "{case}: {on_b:?}");
                assert_ne!(clone.epoch().unwrap(), epoch, "{case}: a new epoch");
                let (next, _) = session(&clone, &b, mode);
                assert!(next.status.is_ok(), "{case}: {next:?}");
                let on_b = held(&b, table);
                let expected: Vec<(String, String)> = match change {
                    Change::Insert => vec![
                        ("1".into(), "one".into()),
                        ("2".into(), "from the clone".into()),
                        ("3".into(), "from a".into()),
                    ],
                    Change::Update => vec![
                        ("1".into(), "from the clone".into()),
                        ("3".into(), "from a".into()),
                    ],
                    Change::Delete => vec![("3".into(), "from a".into())],
                };
                assert_eq!(on_b, expected, "{case}");
                // Once renewed, later syncs go on as usual.
                let epoch = clone.epoch().unwrap();
                clock.advance(10);
                insert(&clone, table, 4, "later");
                for _ in 0..2 {
                    let (r, _) = session(&clone, &b, mode);
                    assert!(r.status.is_ok(), "{case}: {r:?}");
                }
                assert_eq!(clone.epoch().unwrap(), epoch, "{case}");
                assert!(
                    held(&b, table).contains(&("4".into(), "later".into())),
                    "{case}"
                );
            }
        }
    }
}

/// The other side of the check: in one history, whatever stands at a watermark — a row
/// changed since (moved past it), the peer's own row relayed back, a delete — is never taken
/// for a number issued twice, in either direction.
#[test]
fn one_history_never_looks_like_a_clone() {
    for table in [Table::Collaboration, Table::SingleVersion] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock_at(T0);
        let a = device(dir.path(), "a", table, &clock);
        let b = device(dir.path(), "b", table, &clock);
        let epochs = (a.epoch().unwrap(), b.epoch().unwrap());
        for round in 0..6i64 {
            clock.advance(10);
            insert(&a, table, 10 * round + 1, "a");
            insert(&a, table, 10 * round + 2, "a");
            // The row at a's watermark changes after b got it.
            sync(&a, &b, SyncMode::Push);
            clock.advance(10);
            update(&a, table, 10 * round + 2, "a again");
            if round % 2 == 1 {
                delete(&a, table, 10 * round + 1);
            }
            // b's own rows end a's stream to b (skipped as echoes) in single-version mode.
            if table == Table::SingleVersion {
                add_item(&b, &format!("b{round}"), "b", 0);
                sync(&b, &a, SyncMode::Push);
            }
            sync(&a, &b, SyncMode::PushPull);
            sync(&b, &a, SyncMode::PushPull);
        }
        assert_eq!(
            (a.epoch().unwrap(), b.epoch().unwrap()),
            epochs,
            "{table:?}"
        );
    }
}
