//! A connection of another program that opened the database before a restore and first used
//! it after (issue 13).
//!
//! A restore alone with the store renames the backup's copy over the database. That it is
//! alone was proved by SQLite's locks, but a connection that has opened the file and not read
//! it yet holds no lock: it kept the old file's descriptor, and its first statement after the
//! rename read the old file through the new database's `-wal` and `-shm` (found by path). With
//! the store's later writes in that WAL, both shells here failed with "database disk image is
//! malformed"; a write could land in the new database built on old pages. The restore now
//! looks for other processes holding the file (`/proc/<pid>/fd`) and copies instead when one
//! does: the shells see the restored state, wholly, and their rows land whole.

use peerlite_testkit::scalar;
use peerlite_testkit::unread::UnreadShell;

use crate::common::{add_items, add_padding, backup_dir, items, store_with_items};
use crate::pre_restore::whole_database;

/// The names in `item` as the shell prints them.
const NAMES: &str =
    "SELECT 'names:' || group_concat(name, ',') FROM (SELECT name FROM item ORDER BY id);";

/// The names a shell printed (`names:` lines), in order.
fn names_printed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("names:"))
        .map(str::to_owned)
        .collect()
}

/// Two shells, opened before the restore: one first reads, the other first writes, after the
/// store wrote to the restored database. Each sees the old state or the new one wholly, every row they add is in the store afterwards next
/// to the state they saw, the restore copied, and `pre-restore` is whole.
#[test]
fn a_program_that_opened_the_store_before_a_restore_never_mixes_old_and_new() {
    let (_dir, store) = store_with_items(&["a", "b"]);
    add_padding(&store, 100, 3000);
    store.backup("bk").unwrap();
    add_items(&store, &["c"]);
    add_padding(&store, 100, 3000);
    let (old, new) = ("a,b,c", "a,b,after");

    let reads_first = UnreadShell::open(store.path());
    let writes_first = UnreadShell::open(store.path());
    let report = store.restore("bk").unwrap();
    assert!(
        !report.swapped,
        "a program holds the file: the restore copies instead of renaming over it"
    );
    let why = report.copied_because.unwrap();
    assert!(
        [reads_first.pid(), writes_first.pid()]
            .iter()
            .any(|pid| why == format!("another process (pid {pid}) has the database file open")),
        "{why}"
    );
    // The store writes on: in its WAL now are pages the old file never had.
    add_items(&store, &["after"]);
    assert_eq!(items(&store), ["a", "b", "after"]);

    let read = reads_first.run(&format!(
        "{NAMES}\nINSERT INTO item(name) VALUES ('read-first');\n{NAMES}"
    ));
    assert!(read.success && read.stderr.is_empty(), "{read:?}");

    let wrote = writes_first.run(&format!(
        "INSERT INTO item(name) VALUES ('wrote-first');\n{NAMES}"
    ));
    assert!(wrote.success && wrote.stderr.is_empty(), "{wrote:?}");

    let seen = names_printed(&read.stdout);
    assert!(
        seen[0] == old || seen[0] == new,
        "the first read saw a mix: {seen:?}"
    );
    assert_eq!(seen[1], format!("{},read-first", seen[0]));
    assert_eq!(
        names_printed(&wrote.stdout),
        [format!("{},read-first,wrote-first", seen[0])]
    );
    // The store holds what the shells saw and wrote, and nothing half.
    assert_eq!(
        items(&store).join(","),
        format!("{},read-first,wrote-first", seen[0])
    );
    assert_eq!(
        scalar::<String>(&store, "PRAGMA integrity_check").unwrap(),
        "ok"
    );
    assert_eq!(
        scalar::<i64>(&store, "SELECT count(*) FROM pad").unwrap(),
        100
    );
    let pre = report.pre_restore_backup.unwrap();
    assert_eq!(pre, backup_dir(&store).join("pre-restore"));
    assert_eq!(
        whole_database(&pre),
        (vec!["a".into(), "b".into(), "c".into()], 200, 600_000)
    );

    // With nobody else on the file, the restore moves files again.
    add_items(&store, &["d"]);
    let report = store.restore("bk").unwrap();
    assert!(report.swapped, "nobody else holds the file");
    assert_eq!(report.copied_because, None);
    assert_eq!(items(&store), ["a", "b"]);
}
