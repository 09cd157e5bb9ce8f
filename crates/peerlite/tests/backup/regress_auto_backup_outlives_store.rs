//! A store dropped right after the commit that started its scheduled automatic backup went
//! away at once, while the backup went on in its own thread. That thread held the store, so
//! the store stayed open behind the app's back — its writer and readers, the backup's pinned
//! snapshot, the backup's `.tmp` file — and when the backup ended the thread closed the store
//! itself: checkpointed, removed the `-wal`, renamed the backup into place. Files beside the
//! database changed after the app had let go of the store, and a directory removed after the
//! drop could fail (NotFound, "directory not empty"). `close()` waited for a backup it knew
//! of, but one that a commit on another thread was just starting could slip past it. Now the
//! last handle's drop and `close()` both wait for the backup, and no backup starts on a
//! store being closed: when either returns, nothing of the store has a file open.

use std::path::{Path, PathBuf};

use peerlite::{AutoBackup, RdbStore, StoreConfig};

/// Files under `dir` that this process has open.
fn open_files_under(dir: &Path) -> Vec<PathBuf> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(&dir))
        .collect()
}

/// A store whose second commit is due for an automatic backup; that commit writes a few MB,
/// so the backup it starts is still copying when the caller ends the store.
fn store_with_a_backup_running(path: &Path) -> RdbStore {
    let store =
        RdbStore::open(StoreConfig::new(path).auto_backup(AutoBackup::EveryCommits(2))).unwrap();
    store.execute("CREATE TABLE t(x BLOB)", &[]).unwrap();
    store
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             INSERT INTO t SELECT randomblob(500) FROM n",
            &[],
        )
        .unwrap();
    store
}

#[test]
fn nothing_of_a_store_is_open_once_it_is_dropped_or_closed_during_an_automatic_backup() {
    for how in ["drop", "close", "drop of the last clone on another thread"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let store = store_with_a_backup_running(&path);
        match how {
            "drop" => drop(store),
            "close" => {
                store.close().unwrap();
                drop(store);
            }
            _ => {
                let clone = store.clone();
                drop(store);
                std::thread::spawn(move || drop(clone)).join().unwrap();
            }
        }
        assert_eq!(
            open_files_under(dir.path()),
            Vec::<PathBuf>::new(),
            "{how}: files of the store still open after it ended"
        );
        // The backup the commit started finished before the store ended: reopened, the store
        // lists it complete and verified, and nothing temporary is left.
        let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
        let backups = store.backups().unwrap();
        assert!(
            backups.len() == 1 && backups[0].automatic && backups[0].verified,
            "{how}: {backups:?}"
        );
        store.close().unwrap();
        let leftovers: Vec<String> = std::fs::read_dir(dir.path().join("backup").join("a.db"))
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(".tmp"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "{how}: {leftovers:?}");
    }
}
