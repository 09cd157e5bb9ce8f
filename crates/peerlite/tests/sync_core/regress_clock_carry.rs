//! Issue 9, item 15: after a restore and a restart, the clock reissued timestamps it had
//! already used, so the newest edit could lose to an older, discarded one.
//!
//! The story: alpha edits a row, takes a backup, edits it again (a newer timestamp) and syncs
//! that edit to beta; then it restores the backup and restarts. The restore had put the
//! backup's older high-water mark in place, so after the restart the clock resumed from there:
//! alpha's next edit of the row got a timestamp no newer than the discarded one beta still
//! held, and the discarded edit won everywhere (on a tie, the larger value). The clock must
//! never go back — across restore, reopen, repair and rebuild a store stamps past everything
//! it ever issued: a restore keeps the larger mark, an open never resumes below the clock
//! tables when it cannot trust the database's own mark, a repair learns what the damaged
//! file's salvage still shows, and a small file beside the database (`NAME.clock`) carries a
//! reserved ceiling for the case where the damaged file is unreadable. The wall clock stands
//! still in every test, so only the hybrid logical clock can order the edits.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use peerlite::changes::ManualClock;
use peerlite::sync::SyncMode;
use peerlite::{RdbStore, RebuiltType, StoreConfig, Value, bucket};

use crate::common::*;

/// Sorts after every newer value: on a timestamp tie it would win.
const DISCARDED: &str = "zzz: the edit the restore discarded";
const NEWEST: &str = "aaa: the newest edit";

fn title_on(store: &RdbStore) -> Option<String> {
    items(store)
        .into_iter()
        .find(|i| i.uuid == "u1")
        .and_then(|i| i.title)
}

/// alpha wrote u1, took a backup, then edited u1 (`DISCARDED`) and synced that to beta.
/// alpha's wall clock never moves.
fn edited_after_backup(root: &Path) -> (RdbStore, RdbStore, Arc<ManualClock>) {
    let clock = clock_at(T0);
    let a = item_device(root, "alpha", &clock);
    let b = item_device(root, "beta", &clock_at(T0));
    a.execute("CREATE TABLE pad(id INTEGER PRIMARY KEY, blob BLOB)", &[])
        .unwrap();
    for i in 0..8 {
        a.execute(
            "INSERT INTO pad(id, blob) VALUES (?1, zeroblob(3000))",
            &[Value::from(i)],
        )
        .unwrap();
    }
    add_item(&a, "u1", "first", 1);
    sync(&a, &b, SyncMode::Push);
    a.backup("before.db").unwrap();
    set_title(&a, "u1", DISCARDED);
    sync(&a, &b, SyncMode::Push);
    assert_eq!(title_on(&b).as_deref(), Some(DISCARDED));
    (a, b, clock)
}

/// alpha edits u1 once more and both sync: the newest edit must win on both.
fn newest_wins(a: &RdbStore, b: &RdbStore) {
    set_title(a, "u1", NEWEST);
    sync(a, b, SyncMode::PushPull);
    sync(b, a, SyncMode::PushPull);
    assert_eq!(title_on(b).as_deref(), Some(NEWEST), "beta");
    assert_eq!(title_on(a).as_deref(), Some(NEWEST), "alpha");
}

fn reopen(store: RdbStore, clock: &Arc<ManualClock>) -> RdbStore {
    let root = store
        .path()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    store.close().unwrap();
    drop(store);
    open_store(&root, "alpha", clock)
}

fn rebuilding(path: &Path, clock: &Arc<ManualClock>) -> RdbStore {
    RdbStore::open(
        StoreConfig::new(path)
            .device_id("alpha")
            .clock(clock.clone())
            .allow_rebuild(true),
    )
    .unwrap()
}

#[test]
fn after_a_restore_and_a_restart_the_newest_edit_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, clock) = edited_after_backup(dir.path());
    a.restore("before.db").unwrap();
    let a = reopen(a, &clock);
    newest_wins(&a, &b);
}

/// A guard (the running clock already covered this): without the restart.
#[test]
fn after_a_restore_without_a_restart_the_newest_edit_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _) = edited_after_backup(dir.path());
    a.restore("before.db").unwrap();
    newest_wins(&a, &b);
}

#[test]
fn after_a_restore_a_restart_and_a_lost_clock_file_the_newest_edit_wins() {
    // The restore itself wrote the larger mark into the restored database.
    let dir = tempfile::tempdir().unwrap();
    let (a, b, clock) = edited_after_backup(dir.path());
    a.restore("before.db").unwrap();
    let path = a.path().to_path_buf();
    a.close().unwrap();
    drop(a);
    let _ = std::fs::remove_file(format!("{}.clock", path.display()));
    let a = open_store(dir.path(), "alpha", &clock);
    newest_wins(&a, &b);
}

/// Overwrites the root page of `pad` with garbage: the rest of the file stays readable.
fn damage_pad(path: &Path, store: &RdbStore) {
    let root: i64 = peerlite_testkit::scalar(
        store,
        "SELECT rootpage FROM sqlite_schema WHERE name = 'pad'",
    )
    .unwrap();
    let page: i64 = peerlite_testkit::scalar(store, "PRAGMA page_size").unwrap();
    store.close().unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(((root - 1) * page) as u64)).unwrap();
    f.write_all(&peerlite_testkit::pseudo_random_bytes(7, page as usize))
        .unwrap();
}

#[test]
fn after_a_repair_from_a_backup_the_newest_edit_wins_learning_from_the_salvage() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, clock) = edited_after_backup(dir.path());
    let path = a.path().to_path_buf();
    a.checkpoint().unwrap();
    damage_pad(&path, &a);
    drop(a);
    // Only the damaged file itself (through its salvage) can tell how far the clock went.
    let _ = std::fs::remove_file(format!("{}.clock", path.display()));
    {
        let s = open_store(dir.path(), "alpha", &clock);
        assert_eq!(code(s.check(peerlite::CheckMode::Full)), 14800011);
        s.close().unwrap();
    }
    let a = rebuilding(&path, &clock);
    assert_eq!(a.rebuilt(), RebuiltType::Repaired);
    newest_wins(&a, &b);
}

/// Makes the file unreadable: its header is gone, so salvage finds nothing.
fn destroy_header(path: &Path) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all(&[0xA5; 100]).unwrap();
}

#[test]
fn after_a_repair_of_an_unreadable_file_the_newest_edit_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, clock) = edited_after_backup(dir.path());
    let path = a.path().to_path_buf();
    a.close().unwrap();
    drop(a);
    destroy_header(&path);
    let a = rebuilding(&path, &clock);
    assert_eq!(a.rebuilt(), RebuiltType::Repaired);
    newest_wins(&a, &b);
}

#[test]
fn after_a_rebuild_from_nothing_a_new_insert_of_the_row_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, clock) = edited_after_backup(dir.path());
    let path = a.path().to_path_buf();
    a.close().unwrap();
    drop(a);
    std::fs::remove_dir_all(dir.path().join("alpha").join("backup")).unwrap();
    destroy_header(&path);
    let a = rebuilding(&path, &clock);
    assert_eq!(a.rebuilt(), RebuiltType::Rebuilt);
    a.execute(CREATE_ITEM, &[]).unwrap();
    a.set_distributed_tables(
        &["item"],
        peerlite::changes::DistributedType::Device,
        &item_config(),
    )
    .unwrap();
    a.insert(
        "item",
        &bucket! { "uuid" => "u1", "title" => NEWEST, "qty" => 3 },
    )
    .unwrap();
    sync(&a, &b, SyncMode::PushPull);
    sync(&b, &a, SyncMode::PushPull);
    assert_eq!(title_on(&b).as_deref(), Some(NEWEST), "beta");
    assert_eq!(title_on(&a).as_deref(), Some(NEWEST), "alpha");
}

#[test]
fn an_open_never_resumes_below_the_clock_tables() {
    // A database whose own mark went missing (and no clock file beside it): the next stamp
    // still lies past every timestamp its clock tables hold.
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "alpha", &clock);
    for i in 0..5 {
        add_item(&a, &format!("u{i}"), "x", i);
    }
    a.update(&bucket! { "qty" => 9 }, &by_uuid("u0")).unwrap();
    let newest = a
        .changes(None, 0)
        .unwrap()
        .iter()
        .flat_map(|c| std::iter::once(c.hlc).chain(c.columns.iter().map(|col| col.1)))
        .max()
        .unwrap();
    let path = a.path().to_path_buf();
    a.close().unwrap();
    drop(a);
    let _ = std::fs::remove_file(format!("{}.clock", path.display()));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("DELETE FROM peerlite_meta WHERE key = 'hlc'", [])
        .unwrap();
    drop(conn);
    let a = open_store(dir.path(), "alpha", &clock);
    add_item(&a, "u9", "after the reopen", 9);
    let stamp = a
        .change_of("item", &Value::from("u9"))
        .unwrap()
        .unwrap()
        .hlc;
    assert!(stamp > newest, "{stamp} <= {newest}");
}
