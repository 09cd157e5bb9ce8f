//! A backup of an unencrypted store is an ordinary SQLite file: the real `sqlite3` shell
//! checks it and reads it.

use peerlite_testkit::run_sqlite3;

use crate::common::{add_padding, items, store_with_items};

#[test]
fn the_sqlite3_shell_checks_and_reads_a_backup() {
    let (_dir, store) = store_with_items(&["Lisa", "Tom", "Rose"]);
    add_padding(&store, 50, 2000);
    let info = store.backup("for-the-shell").unwrap();

    // A standalone file in rollback-journal mode (header bytes 18 and 19 are 1, not WAL's 2):
    // the shell needs nothing beside it.
    let head = std::fs::read(&info.path).unwrap();
    assert!(head.starts_with(b"SQLite format 3\0"));
    assert_eq!((head[18], head[19]), (1, 1));

    let check = run_sqlite3(&info.path, "PRAGMA integrity_check;");
    assert!(check.success, "{check:?}");
    assert_eq!(check.stdout.trim(), "ok", "{check:?}");

    let rows = run_sqlite3(
        &info.path,
        "SELECT group_concat(name, ',') FROM (SELECT name FROM item ORDER BY id); SELECT count(*) FROM pad; PRAGMA user_version;",
    );
    assert!(rows.success, "{rows:?}");
    assert_eq!(
        rows.stdout.lines().collect::<Vec<_>>(),
        ["Lisa,Tom,Rose", "50", "0"],
        "{rows:?}"
    );

    // Reading it changed nothing: it still passes restore's verification.
    store.execute("DELETE FROM item", &[]).unwrap();
    store.restore("for-the-shell").unwrap();
    assert_eq!(items(&store), ["Lisa", "Tom", "Rose"]);
}
