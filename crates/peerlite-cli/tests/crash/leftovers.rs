//! What a killed backup leaves in the backup directory, and what the next open removes. The
//! names are those the kills in this binary leave: `NAME.<pid>-<n>.tmp`, and, for a backup
//! killed after the copy but before it switched the file back from WAL (the copy carries the
//! source's WAL header), `NAME.<pid>-<n>.tmp-wal` and `-shm`.

use super::*;

/// A pid no process can have (above Linux's PID_MAX_LIMIT).
const DEAD: &str = "BK.4000000000-1";

fn store_with_leftovers(dir: &Path, suffixes: &[&str]) -> PathBuf {
    let db = dir.join("a.db");
    ok(&mut peerlite([
        "sql".as_ref(),
        db.as_os_str(),
        "CREATE TABLE t(x)".as_ref(),
    ]));
    let bdir = backup_dir(&db);
    std::fs::create_dir_all(&bdir).unwrap();
    for suffix in suffixes {
        std::fs::write(bdir.join(format!("{DEAD}{suffix}")), b"left behind").unwrap();
    }
    db
}

#[test]
fn the_next_open_removes_the_tmp_file_of_a_dead_backup() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_leftovers(dir.path(), &[".tmp", ".tmp-journal"]);
    let list = ok(&mut peerlite(["backups".as_ref(), db.as_os_str()]));
    assert_eq!(list.lines().count(), 2, "nothing listed: {list}");
    assert_eq!(files_in(&backup_dir(&db)), Vec::<String>::new());
}

#[test]
fn the_next_open_removes_the_wal_and_shm_of_a_dead_backup() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_leftovers(dir.path(), &[".tmp", ".tmp-wal", ".tmp-shm"]);
    ok(&mut peerlite(["check".as_ref(), db.as_os_str()]));
    assert_eq!(
        files_in(&backup_dir(&db)),
        Vec::<String>::new(),
        "nothing of the dead backup is left"
    );
}
