//! The data a restore replaces, kept as `pre-restore`: a whole database on its own (it opens,
//! passes `integrity_check` and holds every row the store held), and a cancelled restore that
//! changes nothing.

use std::sync::atomic::{AtomicBool, Ordering};

use peerlite::RestoreRequest;
use peerlite_testkit::scalar;

use crate::common::{add_items, add_padding, backup_dir, items, store_with_items};

/// Every row of `item` and `pad` of the database file at `path`, read with a plain SQLite
/// connection (no peerlite, no WAL beside it), after its `integrity_check`.
pub fn whole_database(path: &std::path::Path) -> (Vec<String>, i64, i64) {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "{}", path.display());
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_ne!(mode, "wal", "a standalone file needs no WAL beside it");
    let names = conn
        .prepare("SELECT name FROM item ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<Vec<String>>>()
        .unwrap();
    let (rows, bytes) = conn
        .query_row("SELECT count(*), sum(length(v)) FROM pad", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    (names, rows, bytes)
}

#[test]
fn pre_restore_is_a_whole_database_holding_every_row_replaced() {
    let (_dir, store) = store_with_items(&["a", "b"]);
    add_padding(&store, 50, 3000);
    store.backup("bk").unwrap();
    add_items(&store, &["c", "d"]);
    add_padding(&store, 300, 3000);
    store
        .execute("DELETE FROM item WHERE name = 'a'", &[])
        .unwrap();
    let before = (
        items(&store),
        scalar::<i64>(&store, "SELECT count(*) FROM pad").unwrap(),
        scalar::<i64>(&store, "SELECT sum(length(v)) FROM pad").unwrap(),
    );
    assert_eq!(
        before,
        (vec!["b".into(), "c".into(), "d".into()], 350, 1_050_000)
    );

    let report = store.restore("bk").unwrap();
    assert!(report.swapped);
    let pre = report.pre_restore_backup.unwrap();
    assert_eq!(items(&store), ["a", "b"]);
    assert_eq!(whole_database(&pre), before);
    for side in ["-wal", "-shm", "-journal"] {
        assert!(
            !pre.with_file_name(format!("pre-restore{side}")).exists(),
            "nothing beside it: {side}"
        );
    }
    // And it restores: undoing the restore brings every row back.
    store.restore("pre-restore").unwrap();
    assert_eq!(items(&store), before.0);
    assert_eq!(
        scalar::<i64>(&store, "SELECT count(*) FROM pad").unwrap(),
        350
    );
}

#[test]
fn a_cancelled_restore_changes_nothing() {
    let (_dir, store) = store_with_items(&["a"]);
    add_padding(&store, 200, 3000);
    store.backup("bk").unwrap();
    add_items(&store, &["after"]);
    let cancel = AtomicBool::new(false);
    let mut steps = 0;
    let mut progress = |_| {
        steps += 1;
        cancel.store(true, Ordering::Release);
    };
    let err = store
        .restore_with(
            RestoreRequest::new("bk")
                .pages_per_step(4)
                .on_progress(&mut progress)
                .cancel_when(&cancel),
        )
        .unwrap_err();
    assert_eq!(err.code(), 17020005, "{err}");
    assert_eq!(steps, 1, "stopped after the first step");
    assert_eq!(items(&store), ["a", "after"]);
    assert_eq!(
        scalar::<i64>(&store, "SELECT count(*) FROM pad").unwrap(),
        200
    );
    // Cancelled in its copy, before anything was kept or moved: nothing is left behind.
    assert!(!backup_dir(&store).join("pre-restore").exists());
    assert_eq!(beside(&store), ["test.db"]);
    store.restore("bk").unwrap();
    assert_eq!(items(&store), ["a"]);
}

/// Cancelled in its copy into the live database (another connection holds the store, so the
/// restore copies): the transaction is rolled back, the store holds what it held, and the
/// `pre-restore` copy it took first stays.
#[test]
fn a_restore_cancelled_while_copying_beside_another_connection_changes_nothing() {
    let (_dir, store) = store_with_items(&["a"]);
    add_padding(&store, 200, 3000);
    store.backup("bk").unwrap();
    add_items(&store, &["after"]);
    let other = rusqlite::Connection::open(store.path()).unwrap();
    let _: i64 = other
        .query_row("SELECT count(*) FROM item", [], |r| r.get(0))
        .unwrap();
    let cancel = AtomicBool::new(false);
    let mut progress = |_| cancel.store(true, Ordering::Release);
    let err = store
        .restore_with(
            RestoreRequest::new("bk")
                .pages_per_step(4)
                .on_progress(&mut progress)
                .cancel_when(&cancel),
        )
        .unwrap_err();
    assert_eq!(err.code(), 17020005, "{err}");
    assert_eq!(items(&store), ["a", "after"]);
    let pre = backup_dir(&store).join("pre-restore");
    assert_eq!(whole_database(&pre).0, ["a", "after"]);
    drop(other);
}

/// The files beside the store's database (its WAL files aside).
fn beside(store: &peerlite::RdbStore) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.path().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("test.db") && !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    names.sort();
    names
}

/// A connection of another program that has read the store holds it (a shared lock, for as
/// long as it is open in WAL mode): the restore cannot move the file under it, so it copies —
/// the held connection sees the old state or the new one, never the old file's pages with
/// the new file's WAL — and keeps `pre-restore` whole all the same. Once it closes, the
/// restore moves files.
#[test]
fn with_another_connection_on_the_store_the_restore_copies_instead_of_moving() {
    let (_dir, store) = store_with_items(&["a", "b"]);
    add_padding(&store, 100, 3000);
    store.backup("bk").unwrap();
    add_items(&store, &["c"]);
    let other = rusqlite::Connection::open(store.path()).unwrap();
    let count = |c: &rusqlite::Connection| {
        c.query_row("SELECT count(*) FROM item", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    assert_eq!(count(&other), 3);

    let report = store.restore("bk").unwrap();
    assert!(!report.swapped, "another connection holds the store");
    assert_eq!(items(&store), ["a", "b"]);
    assert_eq!(
        count(&other),
        2,
        "the other connection sees the restored state"
    );
    let pre = report.pre_restore_backup.unwrap();
    assert_eq!(whole_database(&pre).0, ["a", "b", "c"]);

    // The same with another store of this process open on the file.
    add_items(&store, &["d"]);
    drop(other);
    let second =
        peerlite::RdbStore::open(peerlite::StoreConfig::new(store.path()).read_only(true)).unwrap();
    assert_eq!(items(&second), ["a", "b", "d"]);
    let report = store.restore("bk").unwrap();
    assert!(
        !report.swapped,
        "another store of this process holds the file"
    );
    assert_eq!(items(&second), ["a", "b"]);
    second.close().unwrap();
    assert_eq!(
        whole_database(&report.pre_restore_backup.unwrap()).0,
        ["a", "b", "d"]
    );

    // Alone: the replaced file is moved, not copied, and is as whole.
    add_items(&store, &["e"]);
    let report = store.restore("bk").unwrap();
    assert!(report.swapped, "nobody else holds the store");
    assert_eq!(items(&store), ["a", "b"]);
    assert_eq!(
        whole_database(&report.pre_restore_backup.unwrap()).0,
        ["a", "b", "e"]
    );
    assert_eq!(
        beside(&store),
        ["test.db"],
        "nothing left beside the database"
    );
}

/// Adversary round 5, finding 5: through a symbolic link to the database, the restore that
/// moves files renamed the new file over the link (not the file it names), then failed to
/// keep `pre-restore` (it had linked the link) and exited with an error, the real database
/// untouched and the link gone. And a database with another hard link kept the old data under
/// that name. Both now restore by copying into the file itself.
#[cfg(unix)]
#[test]
fn a_database_reached_by_a_symlink_or_with_other_hard_links_is_restored_in_place() {
    use peerlite::{RdbStore, StoreConfig};
    for how in ["symlink", "hard link"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let real = dir.path().join("real/a.db");
        let other = dir.path().join("other.db");
        {
            let store = RdbStore::open(StoreConfig::new(&real)).unwrap();
            store.execute(crate::common::CREATE_ITEM, &[]).unwrap();
            add_items(&store, &["v1"]);
            store.close().unwrap();
        }
        let path = match how {
            "symlink" => {
                std::os::unix::fs::symlink(&real, &other).unwrap();
                other.clone()
            }
            _ => {
                std::fs::hard_link(&real, &other).unwrap();
                real.clone()
            }
        };
        let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
        store.backup("b1").unwrap();
        add_items(&store, &["v2"]);
        let report = store.restore("b1").unwrap();
        assert!(!report.swapped, "{how}");
        assert_eq!(items(&store), ["v1"], "{how}");
        assert_eq!(
            crate::common::items_in(&report.pre_restore_backup.unwrap()),
            ["v1", "v2"],
            "{how}"
        );
        store.close().unwrap();
        // Every name of the database shows the restored data.
        for name in [&real, &other] {
            assert_eq!(crate::common::items_in(name), ["v1"], "{how}: {name:?}");
        }
        if how == "symlink" {
            assert!(
                std::fs::symlink_metadata(&other)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
        }
    }
}
