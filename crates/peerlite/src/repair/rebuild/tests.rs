//! Every kill point of a rebuild, with hard links and without: the story is issue 9's first
//! defect. Repair used to move the damaged file into quarantine, then salvage, then install
//! the backup; a kill -9 (or a full disk) after the move left nothing at the path, the next
//! open silently created an empty store, and `repair` said "nothing to repair" while the
//! verified backup was never put back. Here the repair stops dead at each of its kill points
//! (no clean-up runs, as with a real kill); after each, the path holds the damaged store
//! (refused with 14800011 while the repair is pending, nothing created over it) or the
//! repaired one, the quarantine holds the damaged bytes, and the next open with
//! `allow_rebuild` finishes the repair from the backup, with the rows written after it
//! salvaged.

use std::path::{Path, PathBuf};

use peerlite_testkit::copy_dir;

use super::{KILL_AT, NO_LINKS};
use crate::backup::naming::with_suffix;
use crate::repair::{journal, repair_pending};
use crate::{RdbStore, RebuiltType, StoreConfig, Value};

const BACKED_UP: i64 = 400;
const AFTER: i64 = 100;
const LAST_KILL_POINT: u32 = 9;

fn add_rows(store: &RdbStore, from: i64, to: i64) {
    store
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2) \
             INSERT INTO t(id, note, pad) SELECT i, 'row-' || i, zeroblob(300) FROM n",
            &[Value::from(from), Value::from(to)],
        )
        .unwrap();
}

fn count(store: &RdbStore, sql: &str) -> i64 {
    let rs = store.query_sql(sql, &[]).unwrap();
    let mut rs = rs;
    assert!(rs.go_to_first_row().unwrap());
    rs.get_long(0).unwrap()
}

/// A damaged store at `dir/a.db` with a backup `good` of rows 1..=400 and rows 401..=500
/// after it; with `wal`, the rows after the backup are still in the WAL (as after a crash)
/// and the damage is in the database file. Returns the damaged files' bytes (db, wal).
fn damaged_store(dir: &Path, wal: bool) -> (Vec<u8>, Option<Vec<u8>>) {
    let db = dir.join("a.db");
    let build = dir.join("build");
    std::fs::create_dir_all(&build).unwrap();
    let src = build.join("a.db");
    let store = RdbStore::open(StoreConfig::new(&src)).unwrap();
    store
        .execute(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, note TEXT, pad BLOB)",
            &[],
        )
        .unwrap();
    add_rows(&store, 1, BACKED_UP);
    store.backup("good").unwrap();
    assert!(store.checkpoint().unwrap());
    if wal {
        // Copy the files while the store has them open: the image a crash leaves.
        add_rows(&store, BACKED_UP + 1, BACKED_UP + AFTER);
        std::fs::copy(&src, &db).unwrap();
        std::fs::copy(with_suffix(&src, "-wal"), with_suffix(&db, "-wal")).unwrap();
        store.close().unwrap();
    } else {
        add_rows(&store, BACKED_UP + 1, BACKED_UP + AFTER);
        store.close().unwrap();
        std::fs::copy(&src, &db).unwrap();
    }
    let backups = dir.join("backup");
    std::fs::create_dir_all(&backups).unwrap();
    std::fs::rename(build.join("backup/a.db"), backups.join("a.db")).unwrap();
    std::fs::remove_dir_all(&build).unwrap();
    // Damage two pages in the middle of the database file (never page 1).
    let mut bytes = std::fs::read(&db).unwrap();
    let pages = bytes.len() / 4096;
    assert!(pages > 20, "{pages} pages");
    for (i, victim) in [pages / 3, pages / 2].into_iter().enumerate() {
        for (j, b) in bytes[victim * 4096..(victim + 1) * 4096]
            .iter_mut()
            .enumerate()
        {
            *b = (j as u8).wrapping_mul(31).wrapping_add(i as u8 * 7 + 1);
        }
    }
    std::fs::write(&db, &bytes).unwrap();
    // The corruption is found and flagged (an open would checkpoint the WAL into the file:
    // the WAL case flags it as the open that found it would).
    let flagged = wal
        || match RdbStore::open(StoreConfig::new(&db)) {
            Err(e) => e.is_corruption(),
            Ok(store) => {
                let found = store.check(crate::CheckMode::Quick).is_err();
                store.close().unwrap();
                found
            }
        };
    assert!(flagged, "the damage is found");
    if wal {
        let err = crate::Error::Corrupted {
            path: db.clone(),
            detail: "found by a read".into(),
            sqlite: None,
            kind: crate::StoreKind::Relational,
        };
        crate::repair::set_flag(&db, &err);
    }
    assert!(with_suffix(&db, ".corrupt").exists());
    let bytes = std::fs::read(&db).unwrap();
    let wal_bytes = std::fs::read(with_suffix(&db, "-wal")).ok();
    (bytes, wal_bytes)
}

/// Asserts two files' bytes are the same (without printing them).
fn same(actual: &[u8], expected: &[u8], what: &str) {
    assert!(
        actual == expected,
        "{what}: {} bytes, expected {} bytes, first difference at {:?}",
        actual.len(),
        expected.len(),
        actual.iter().zip(expected).position(|(a, b)| a != b)
    );
}

/// The quarantine folder holding the damaged database, if any.
fn quarantined(db: &Path) -> Option<PathBuf> {
    let root = db.parent().unwrap().join("quarantine");
    let mut found = std::fs::read_dir(root)
        .ok()?
        .map(|e| e.unwrap().path())
        .filter(|d| d.join("a.db").exists());
    let dir = found.next();
    assert!(
        found.next().is_none(),
        "one quarantine folder holds the files"
    );
    dir
}

fn assert_repaired(store: &RdbStore) {
    assert_eq!(count(store, "SELECT count(*) FROM t"), BACKED_UP);
    assert_eq!(count(store, "SELECT max(id) FROM t"), BACKED_UP);
    store.check(crate::CheckMode::Full).unwrap();
}

fn trial(
    base: &Path,
    root: &Path,
    label: &str,
    kill: u32,
    links: bool,
    damaged: &[u8],
    wal: Option<&[u8]>,
) {
    let dir = root.join(label);
    copy_dir(base, &dir).unwrap();
    let db = dir.join("a.db");
    KILL_AT.with(|k| k.set(Some(kill)));
    NO_LINKS.with(|n| n.set(!links));
    let first = RdbStore::open(StoreConfig::new(&db).allow_rebuild(true));
    KILL_AT.with(|k| k.set(None));
    let killed = first.is_err();
    if let Err(e) = &first {
        assert!(e.to_string().contains("simulated kill"), "{label}: {e}");
    }
    drop(first);

    // What the kill left.
    let pending = repair_pending(&db);
    if killed && kill >= 2 {
        assert!(
            pending,
            "{label}: the journal is written before anything is touched"
        );
    }
    if !db.exists() {
        assert!(
            !links && pending,
            "{label}: the path is empty only inside a journaled move"
        );
    }
    let q = quarantined(&db);
    if let Some(q) = &q {
        same(
            &std::fs::read(q.join("a.db")).unwrap(),
            damaged,
            &format!("{label}: quarantined db"),
        );
        if let (Some(wal), true) = (wal, q.join("a.db-wal").exists()) {
            same(
                &std::fs::read(q.join("a.db-wal")).unwrap(),
                wal,
                &format!("{label}: quarantined WAL"),
            );
        }
    } else {
        assert!(
            !pending || kill <= 2 || !links,
            "{label}: links are made first"
        );
    }
    if !pending && killed {
        // Killed before the journal: the damaged store is still at the path, flagged.
        same(&std::fs::read(&db).unwrap(), damaged, label);
        assert!(with_suffix(&db, ".corrupt").exists(), "{label}");
    }
    // Every open without allow_rebuild: refused while pending, never a new store. (Before
    // the journal the store is only flagged: an open for recovery may look at it.)
    for (config, recovery) in [
        (StoreConfig::new(&db), false),
        (StoreConfig::new(&db).read_only(true), false),
        (StoreConfig::new(&db).for_recovery(true), true),
    ] {
        match RdbStore::open(config) {
            Ok(store) if recovery && killed && !pending => store.close().unwrap(),
            Err(e) => {
                assert_eq!(e.code(), 14800011, "{label}: {e}");
                if pending {
                    assert!(e.to_string().contains("peerlite repair"), "{label}: {e}");
                }
            }
            Ok(store) => {
                assert!(!pending, "{label}: a pending repair was opened");
                assert!(!killed, "{label}: opened after a kill");
                assert_repaired(&store);
                store.close().unwrap();
            }
        }
    }
    assert_eq!(
        db.exists(),
        !(pending && !links && kill == 6),
        "{label}: an open created a file"
    );

    // The next open with allow_rebuild finishes it. (Killed before the journal, the store
    // was only flagged: the open for recovery above checkpointed its WAL into the file, as
    // `peerlite check` does. The repair then quarantines the files as they are now.)
    let (damaged, wal) = if pending || !killed {
        (damaged.to_vec(), wal.map(<[u8]>::to_vec))
    } else {
        (
            std::fs::read(&db).unwrap(),
            std::fs::read(with_suffix(&db, "-wal")).ok(),
        )
    };
    let store = RdbStore::open(StoreConfig::new(&db).allow_rebuild(true)).unwrap();
    if killed {
        assert_eq!(store.rebuilt(), RebuiltType::Repaired, "{label}");
        let report = store.repair_report().unwrap().clone();
        assert_eq!(report.backup.as_deref(), Some("good"), "{label}");
        assert_eq!(report.salvage.error, None, "{label}");
        let after: i64 = report.salvage.rows as i64 - BACKED_UP;
        assert!(
            after > 0,
            "{label}: rows after the backup salvaged: {:?}",
            report.salvage
        );
        let merged = store
            .merge_salvage(report.salvage.path.as_ref().unwrap())
            .unwrap();
        assert!(
            merged.iter().any(|(t, n)| t == "t" && *n > 0),
            "{label}: {merged:?}"
        );
    }
    assert!(!repair_pending(&db), "{label}");
    assert!(!with_suffix(&db, ".corrupt").exists(), "{label}");
    assert!(!journal::path(&db).exists(), "{label}");
    let q = quarantined(&db).expect("quarantine");
    same(&std::fs::read(q.join("a.db")).unwrap(), &damaged, label);
    assert!(q.join("a.db.corrupt").exists(), "{label}");
    if let Some(wal) = &wal {
        same(
            &std::fs::read(q.join("a.db-wal")).unwrap(),
            wal,
            &format!("{label}: the WAL is kept"),
        );
    }
    store.close().unwrap();
    let store = RdbStore::open(StoreConfig::new(&db)).unwrap();
    assert_eq!(store.rebuilt(), RebuiltType::None);
    assert!(count(&store, "SELECT count(*) FROM t") >= BACKED_UP);
    store.close().unwrap();
}

fn every_kill_point(links: bool, wal: bool) {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("base");
    std::fs::create_dir_all(&base).unwrap();
    let (damaged, wal_bytes) = damaged_store(&base, wal);
    assert_eq!(wal_bytes.is_some(), wal);
    for kill in 1..=LAST_KILL_POINT {
        let label = format!("links {links}, wal {wal}, kill point {kill}");
        trial(
            &base,
            root.path(),
            &label,
            kill,
            links,
            &damaged,
            wal_bytes.as_deref(),
        );
    }
}

#[test]
fn every_kill_point_with_links_leaves_the_damaged_store_or_the_repaired_one() {
    every_kill_point(true, false);
}

#[test]
fn every_kill_point_without_links_leaves_the_damaged_store_or_the_repaired_one() {
    every_kill_point(false, false);
}

/// The damaged store's WAL holds the rows written after the backup. It goes into quarantine
/// with the file, is taken off the path before the backup replaces the file (a stale WAL
/// applied to another database would corrupt it), and salvage reads it.
#[test]
fn a_damaged_wal_is_kept_in_quarantine_never_applied_to_the_repaired_store_and_salvaged() {
    every_kill_point(true, true);
    every_kill_point(false, true);
}
