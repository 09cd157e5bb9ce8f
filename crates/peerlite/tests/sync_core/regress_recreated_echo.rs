//! Issue 9, item 14: a re-created device never got back the rows it wrote while its hybrid
//! logical clock ran ahead of its wall clock.
//!
//! The story: beta's clock runs legally ahead — it received rows stamped minutes ahead of its
//! wall clock (within the 5-minute clamp), or its wall clock stepped back — and beta writes a
//! row, stamped ahead, and pushes it. Then beta's database is lost and re-created with the same
//! device id. Peers decided "beta already has this row" from timestamps: a row of beta's
//! stamped at or after the time its current epoch began was taken for one beta's current
//! database holds — and a new database's epoch began at the wall clock, which lay *before* the
//! row's stamp. So the row was never sent back, and the devices never converged. The rule now
//! reads no clock: each clock row knows which database of a device held it (device and epoch),
//! and only what the peer's current database holds is withheld. Each test below is one way the
//! clock can run ahead, in either mode, directly or through a relay, across re-creation,
//! restore and restart, and the old format of the writer table migrated on open.

use std::path::Path;
use std::sync::Arc;

use peerlite::changes::{MAX_DRIFT_MS, ManualClock};
use peerlite::sync::SyncMode;
use peerlite::{RdbStore, Value, bucket};

use crate::common::*;

/// Four minutes: legal skew, under the 5-minute clamp.
const AHEAD_MS: u64 = 4 * 60 * 1000;

/// Closes `store` and deletes its database files: the app reinstalled, the phone wiped.
fn lose(store: RdbStore) {
    let path = store.path().to_path_buf();
    store.close().unwrap();
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// beta's clock runs ahead of its wall clock: it received alpha's row stamped `AHEAD_MS` in
/// the future, then wrote `u_b`, stamped past that, and pushed it to alpha.
fn beta_wrote_ahead(root: &Path) -> (RdbStore, RdbStore, Arc<ManualClock>) {
    const { assert!(AHEAD_MS < MAX_DRIFT_MS) };
    let (ca, cb) = (clock_at(T0 + AHEAD_MS), clock_at(T0));
    let a = item_device(root, "alpha", &ca);
    let b = item_device(root, "beta", &cb);
    add_item(&a, "u_a", "from alpha, ahead", 1);
    sync(&a, &b, SyncMode::Push);
    add_item(&b, "u_b", "written by beta", 2);
    let stamp = b
        .change_of("item", &Value::from("u_b"))
        .unwrap()
        .unwrap()
        .hlc;
    assert!(
        stamp >> 16 >= T0 + AHEAD_MS,
        "beta's stamp runs ahead of its wall clock"
    );
    sync(&b, &a, SyncMode::Push);
    (a, b, cb)
}

#[test]
fn a_recreated_device_gets_back_the_rows_it_wrote_while_its_clock_ran_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, cb) = beta_wrote_ahead(dir.path());
    lose(b);
    cb.advance(1_000); // re-created a second later: its wall clock is still behind the stamp
    let b = item_device(dir.path(), "beta", &cb);
    let (_, on_b) = sync(&a, &b, SyncMode::Push);
    assert_eq!(on_b.received, 2, "both rows, beta's own included: {on_b:?}");
    assert_eq!(items(&b), items(&a));
    assert!(items(&b).iter().any(|i| i.uuid == "u_b"));
}

#[test]
fn a_recreated_device_gets_back_its_rows_after_its_wall_clock_stepped_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0 + AHEAD_MS);
    let a = item_device(dir.path(), "alpha", &clock_at(T0));
    let b = item_device(dir.path(), "beta", &clock);
    add_item(&b, "u_b", "written before the step", 2);
    sync(&b, &a, SyncMode::Push);
    clock.set(T0); // NTP corrects beta's wall clock four minutes back
    lose(b);
    let b = item_device(dir.path(), "beta", &clock);
    sync(&a, &b, SyncMode::Push);
    assert_eq!(
        items(&b),
        vec![item("u_b", Some("written before the step"), Some(2), None)]
    );
}

#[test]
fn a_recreated_device_gets_back_its_rows_relayed_by_a_third_device() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, cb) = beta_wrote_ahead(dir.path());
    let c = item_device(dir.path(), "gamma", &clock_at(T0));
    sync(&a, &c, SyncMode::Push); // gamma holds beta's row, relayed by alpha
    lose(b);
    let b = item_device(dir.path(), "beta", &cb);
    sync(&c, &b, SyncMode::Push);
    assert!(items(&b).iter().any(|i| i.uuid == "u_b"), "{:?}", items(&b));
    assert_eq!(items(&b), items(&c));
}

#[test]
fn a_recreated_device_gets_back_its_own_rows_in_device_collaboration() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cb) = (clock_at(T0 + AHEAD_MS), clock_at(T0));
    let a = note_device(dir.path(), "alpha", &ca);
    let b = note_device(dir.path(), "beta", &cb);
    add_notes(&a, "a", 1);
    sync(&a, &b, SyncMode::Push); // beta's clock moves four minutes ahead
    add_notes(&b, "b", 2);
    sync(&b, &a, SyncMode::Push);
    assert_eq!(has_from(&a, "beta"), expected_notes("b", 2));
    lose(b);
    let b = note_device(dir.path(), "beta", &cb);
    let (_, on_b) = sync(&a, &b, SyncMode::Push);
    assert_eq!(on_b.received, 3, "{on_b:?}");
    assert_eq!(
        notes(&b, "note"),
        expected_notes("b", 2),
        "beta's own notes are back"
    );
    assert_eq!(has_from(&b, "alpha"), expected_notes("a", 1));
}

/// A guard (restore already began its epoch past the running clock): the same principle
/// across restore and restart.
#[test]
fn a_restored_and_restarted_device_gets_back_the_rows_it_wrote_ahead_after_its_backup() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cb) = (clock_at(T0 + AHEAD_MS), clock_at(T0));
    let a = item_device(dir.path(), "alpha", &ca);
    let b = item_device(dir.path(), "beta", &cb);
    add_item(&b, "u1", "before the backup", 1);
    sync(&b, &a, SyncMode::PushPull);
    b.backup("before.db").unwrap();
    add_item(&a, "u_a", "from alpha, ahead", 1);
    sync(&a, &b, SyncMode::Push);
    add_item(&b, "u2", "after the backup, ahead", 2);
    sync(&b, &a, SyncMode::Push);
    b.restore("before.db").unwrap();
    b.close().unwrap();
    drop(b);
    let b = open_store(dir.path(), "beta", &cb);
    sync(&a, &b, SyncMode::Push);
    assert_eq!(items(&b), items(&a));
    assert!(items(&b).iter().any(|i| i.uuid == "u2"));
}

#[test]
fn what_a_recreated_device_writes_in_its_new_database_is_still_not_echoed_back() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, cb) = beta_wrote_ahead(dir.path());
    let c = item_device(dir.path(), "gamma", &clock_at(T0));
    lose(b);
    let b = item_device(dir.path(), "beta", &cb);
    sync(&a, &b, SyncMode::PushPull);
    add_item(&b, "u_new", "in the new database", 3);
    sync(&b, &a, SyncMode::Push);
    sync(&a, &c, SyncMode::Push);
    let (from_a, _) = sync(&a, &b, SyncMode::Push);
    assert_eq!(from_a.sent, 0, "directly: {from_a:?}");
    // Relayed: gamma withholds the row beta's new database wrote (alpha tagged it with that
    // database's epoch), and sends what it cannot know beta holds: alpha's row and beta's row
    // of its old database.
    let pumped = pump(&c, &b, SyncMode::Push, None, 10, lossless);
    let sent: Vec<Value> = pumped
        .seen
        .iter()
        .filter_map(|(_, m)| match m {
            peerlite::sync::SyncMessage::V1(peerlite::sync::MessageV1::Batch(batch)) => Some(
                batch
                    .rows
                    .iter()
                    .map(|r| r.ident.clone())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        sent,
        vec![Value::from("u_a"), Value::from("u_b")],
        "relayed"
    );
    assert_eq!(pumped.responder.received, 0);
    assert_eq!(items(&b), items(&a));
    assert_eq!(items(&c), items(&a));
}

/// The writer table as the previous release made it: one row per device id, no epoch.
fn to_previous_format(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "CREATE TABLE old_devices(idx INTEGER PRIMARY KEY, device TEXT NOT NULL UNIQUE);
         INSERT INTO old_devices SELECT idx, device FROM peerlite_devices;
         DROP TABLE peerlite_devices;
         ALTER TABLE old_devices RENAME TO peerlite_devices;",
    )
    .unwrap();
}

#[test]
fn a_writer_table_of_the_previous_format_migrates_on_open_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cb) = (clock_at(T0 + AHEAD_MS), clock_at(T0));
    let a = item_device(dir.path(), "alpha", &ca);
    let b = item_device(dir.path(), "beta", &cb);
    add_item(&a, "u_a", "from alpha", 1);
    sync(&a, &b, SyncMode::Push);
    add_item(&b, "u_b", "from beta", 2);
    sync(&b, &a, SyncMode::Push);
    let (path_a, path_b) = (a.path().to_path_buf(), b.path().to_path_buf());
    for store in [a, b] {
        store.close().unwrap();
    }
    to_previous_format(&path_a);
    to_previous_format(&path_b);
    let a = open_store(dir.path(), "alpha", &ca);
    let b = open_store(dir.path(), "beta", &cb);
    for path in [&path_a, &path_b] {
        let conn = rusqlite::Connection::open(path).unwrap();
        let migrated: bool = conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM pragma_table_info('peerlite_devices') WHERE name = 'epoch')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(migrated, "the open migrated {}", path.display());
    }
    assert_eq!(
        a.change_of("item", &Value::from("u_b"))
            .unwrap()
            .unwrap()
            .origin,
        "beta",
        "origins read the same after the migration"
    );
    // Syncing works on the migrated table, and rows of an unknown epoch are never taken for
    // what a re-created device holds.
    b.update(&bucket! { "qty" => 20 }, &by_uuid("u_b")).unwrap();
    sync(&b, &a, SyncMode::PushPull);
    lose(b);
    let b = item_device(dir.path(), "beta", &cb);
    sync(&a, &b, SyncMode::PushPull);
    assert_eq!(items(&b), items(&a));
    assert_eq!(
        items(&b),
        vec![
            item("u_a", Some("from alpha"), Some(1), None),
            item("u_b", Some("from beta"), Some(20), None)
        ]
    );
    add_item(&b, "u_c", "new", 3);
    sync(&b, &a, SyncMode::Push);
    let (back, _) = sync(&a, &b, SyncMode::Push);
    assert_eq!(back.sent, 0, "echo suppression works after the migration");
}

#[test]
fn a_repaired_device_starts_a_new_epoch_and_gets_back_what_it_wrote_after_its_backup() {
    // The repair puts a backup taken in the same epoch in place: without a new epoch the
    // peers would take the rows written after that backup for ones it still holds.
    let dir = tempfile::tempdir().unwrap();
    let (ca, cb) = (clock_at(T0), clock_at(T0));
    let a = item_device(dir.path(), "alpha", &ca);
    let b = item_device(dir.path(), "beta", &cb);
    add_item(&b, "u1", "before the backup", 1);
    sync(&b, &a, SyncMode::PushPull);
    b.backup("before.db").unwrap();
    add_item(&b, "u2", "after the backup", 2);
    sync(&b, &a, SyncMode::PushPull);
    let (path, epoch) = (b.path().to_path_buf(), b.epoch().unwrap());
    b.close().unwrap();
    drop(b);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(&[0xA5; 100]).unwrap();
    }
    let b = RdbStore::open(
        peerlite::StoreConfig::new(&path)
            .device_id("beta")
            .clock(cb.clone())
            .allow_rebuild(true),
    )
    .unwrap();
    assert_eq!(b.rebuilt(), peerlite::RebuiltType::Repaired);
    assert_ne!(
        b.epoch().unwrap(),
        epoch,
        "a repaired database is another database"
    );
    sync(&b, &a, SyncMode::PushPull);
    assert_eq!(items(&b), items(&a));
    assert!(items(&b).iter().any(|i| i.uuid == "u2"));
    // And a reopen keeps the new epoch.
    let renewed = b.epoch().unwrap();
    b.close().unwrap();
    drop(b);
    let b = open_store(dir.path(), "beta", &cb);
    assert_eq!(b.epoch().unwrap(), renewed);
}
