//! A store file put back from an ordinary copy (a VM snapshot, a `cp` backup, a cloned
//! device) numbered its new changes with sequence numbers its peers had already passed: the
//! peer's watermark for it stood at 3, the copy resumed at 1, so its next two rows were never
//! sent — while every sync said ok. A peer that holds more of a database's epoch than the
//! database ever committed now gives it away: the database takes a new epoch (17040012 for
//! that session), and the next sync sends its rows again, every one.
//!
//! A copy that committed as many changes as it lost, or more, before it synced was not caught
//! (adversary round 2, finding 8): its numbers passed the peer's watermark again, so the peer
//! took the new changes numbered below it for the ones it held, and they never arrived. Two
//! checks catch it now: an open that finds the database's clock more than a lease behind its
//! clock file (only the database was put back) gives it a new epoch; and every watermark
//! carries a stamp, the latest write time received up to it, so a sender that finds a change
//! numbered below the watermark but written after the stamp (the clock file was put back
//! too: a whole-directory copy, a cloned device) renews its epoch (17040012).

use peerlite::sync::{
    FEATURE_COMPACT_ROWS, FEATURE_STAMPS, FEATURE_ZSTD, FEATURES, MessageV1, Session, SyncMessage,
    SyncMode, SyncStatus, sync_in_memory,
};

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

/// How a copy is put back: the database file alone (its clock file stays the current one), or
/// the whole directory as it was (database, WAL and clock file: a VM snapshot, a cloned device).
#[derive(Debug, Clone, Copy, PartialEq)]
enum PutBack {
    DatabaseOnly,
    WholeDirectory,
}

/// The files of a store, as a snapshot copies them.
fn store_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    ["", "-wal", "-shm", ".clock"]
        .iter()
        .map(|suffix| dir.join(format!("{STORE_FILE}{suffix}")))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Table {
    Collaboration,
    SingleVersion,
}

/// The keys of `writer`'s rows as `holder` has them.
fn keys_from(holder: &peerlite::RdbStore, table: Table, writer: &str) -> Vec<String> {
    let sql = match table {
        Table::Collaboration => format!(
            "SELECT CAST(id AS TEXT) FROM \"{}\" ORDER BY id",
            device_table(holder, writer)
        ),
        Table::SingleVersion => "SELECT uuid FROM item ORDER BY uuid".to_owned(),
    };
    rows(holder, &sql)
        .into_iter()
        .map(|r| match &r[0] {
            peerlite::Value::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn write(store: &peerlite::RdbStore, table: Table, keys: &[i64]) {
    for k in keys {
        match table {
            Table::Collaboration => store
                .execute(
                    "INSERT INTO note(id, text, n) VALUES (?1, 'x', 0)",
                    &[peerlite::Value::Integer(*k)],
                )
                .map(drop)
                .unwrap(),
            Table::SingleVersion => add_item(store, &k.to_string(), "x", 0),
        }
    }
}

#[test]
fn a_copy_that_commits_more_than_it_lost_before_syncing_still_delivers_every_row() {
    for table in [Table::Collaboration, Table::SingleVersion] {
        for mode in [SyncMode::Push, SyncMode::Pull] {
            for put_back in [PutBack::DatabaseOnly, PutBack::WholeDirectory] {
                let case = format!("{table:?} {mode:?} {put_back:?}");
                let dir = tempfile::tempdir().unwrap();
                let clock = clock_at(T0);
                let device = |name: &str| match table {
                    Table::Collaboration => note_device(dir.path(), name, &clock),
                    Table::SingleVersion => item_device(dir.path(), name, &clock),
                };
                let a = device("a");
                let b = device("b");
                let sync = |a: &peerlite::RdbStore| match mode {
                    SyncMode::Pull => {
                        let (on_b, on_a) = sync_in_memory(&b, a, SyncMode::Pull, None).unwrap();
                        (on_a, on_b)
                    }
                    _ => sync_in_memory(a, &b, SyncMode::Push, None).unwrap(),
                };
                write(&a, table, &[1]);
                assert!(sync(&a).0.status.is_ok(), "{case}");
                a.close().unwrap();
                drop(a);
                let home = dir.path().join("a");
                let snapshot: Vec<Option<Vec<u8>>> = store_files(&home)
                    .iter()
                    .map(|f| std::fs::read(f).ok())
                    .collect();
                clock.advance(5_000);
                let a = open_store(dir.path(), "a", &clock);
                write(&a, table, &[2, 3]);
                assert!(sync(&a).0.status.is_ok(), "{case}");
                a.close().unwrap();
                drop(a);
                // Put back; the copy then commits more changes than it lost.
                for (file, bytes) in store_files(&home).iter().zip(&snapshot) {
                    let keep_current = put_back == PutBack::DatabaseOnly
                        && file.to_string_lossy().ends_with(".clock");
                    if keep_current {
                        continue;
                    }
                    match bytes {
                        Some(b) => std::fs::write(file, b).unwrap(),
                        None => drop(std::fs::remove_file(file)),
                    }
                }
                clock.advance(5_000);
                let a = open_store(dir.path(), "a", &clock);
                write(&a, table, &[10, 11, 12, 13]);
                let (first, on_b) = sync(&a);
                match put_back {
                    // The open saw the clock file ahead of the database: already a new epoch.
                    PutBack::DatabaseOnly => assert!(first.status.is_ok(), "{case}: {first:?}"),
                    // Only the stamp of b's watermark tells.
                    PutBack::WholeDirectory => {
                        assert_eq!(first.status, SyncStatus::RolledBack, "{case}: {first:?}");
                        assert_eq!(on_b.status.code(), 17040012, "{case}: {on_b:?}");
                        assert!(sync(&a).0.status.is_ok(), "{case}");
                    }
                }
                let held = keys_from(&b, table, "a");
                for k in ["1", "10", "11", "12", "13"] {
                    assert!(
                        held.contains(&k.to_owned()),
                        "{case}: {k} missing from {held:?}"
                    );
                }
                // Once renewed, later syncs go on as usual: no epoch renewed again.
                let epoch = a.epoch().unwrap();
                write(&a, table, &[20]);
                assert!(sync(&a).0.status.is_ok(), "{case}");
                assert!(sync(&a).0.status.is_ok(), "{case}");
                assert_eq!(a.epoch().unwrap(), epoch, "{case}");
                assert!(
                    keys_from(&b, table, "a").contains(&"20".to_owned()),
                    "{case}"
                );
            }
        }
    }
}

/// Runs one session between `a` (offering `a_features`) and `b` (offering `b_features`),
/// returning both results and every message that travelled.
fn session_between(
    a: &peerlite::RdbStore,
    b: &peerlite::RdbStore,
    mode: SyncMode,
    a_features: &[&str],
    b_features: &[&str],
) -> (
    peerlite::sync::DeviceResult,
    peerlite::sync::DeviceResult,
    Vec<SyncMessage>,
) {
    let (mut sa, hello) =
        Session::start_with_features(a, &peer_of(b), mode, None, a_features).unwrap();
    let (mut sb, mut to_a) = Session::accept_with_features(b, &peer_of(a), &hello, b_features);
    let mut seen = vec![hello];
    for _ in 0..10_000 {
        if sa.is_finished() && sb.is_finished() {
            break;
        }
        seen.extend(to_a.iter().cloned());
        let to_b: Vec<SyncMessage> = to_a.iter().flat_map(|m| sa.handle(m)).collect();
        seen.extend(to_b.iter().cloned());
        to_a = to_b.iter().flat_map(|m| sb.handle(m)).collect();
    }
    (sa.result(), sb.result(), seen)
}

/// Stamps travel as `features` entries, so a build that predates them (it neither offers
/// `watermark-stamps` nor knows the entries) syncs with this one as before, both ways, and
/// is never sent a stamp in a `Welcome` (it would refuse a feature it did not offer).
#[test]
fn a_build_without_stamps_still_syncs_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    let b = note_device(dir.path(), "b", &clock);
    let old = [FEATURE_ZSTD, FEATURE_COMPACT_ROWS];
    for round in 0..3i64 {
        a.execute(
            "INSERT INTO note(id, text, n) VALUES (?1, 'a', 0)",
            &[peerlite::Value::Integer(round)],
        )
        .unwrap();
        b.execute(
            "INSERT INTO note(id, text, n) VALUES (?1, 'b', 0)",
            &[peerlite::Value::Integer(round)],
        )
        .unwrap();
        for (x, y) in [(&old[..], &FEATURES[..]), (&FEATURES[..], &old[..])] {
            let (ra, rb, seen) = session_between(&a, &b, SyncMode::PushPull, x, y);
            assert!(ra.status.is_ok() && rb.status.is_ok(), "{ra:?} {rb:?}");
            for m in &seen {
                if let SyncMessage::V1(MessageV1::Welcome(w)) = m
                    && !x.contains(&FEATURE_STAMPS)
                {
                    assert!(
                        w.features.iter().all(|f| !f.starts_with("stamps:")),
                        "{w:?}"
                    );
                }
            }
        }
    }
    assert_eq!(count(&b, &device_table(&b, "a")), 3);
    assert_eq!(count(&a, &device_table(&a, "b")), 3);
}
