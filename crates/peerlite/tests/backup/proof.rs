//! What proves a backup intact before a restore changes anything.
//!
//! Restore used to run the full `integrity_check` of every backup, although the backup's
//! BLAKE3 checksum already proved it was byte for byte the file that passed `quick_check`
//! when it was taken: seconds of CPU per gigabyte, most of a restore's time. Now the checksum
//! against a manifest that says the backup was checked is the proof; the full check runs when
//! asked for and whenever the manifest does not say so (an older peerlite's, or one written by
//! hand) — there the checksum proves the bytes, not that they were ever sound.
//!
//! The backups here pass `quick_check` but not `integrity_check`: their index disagrees with
//! its table (the one kind of damage `quick_check` does not look for), so which check ran is
//! visible in whether the restore goes through.

use std::path::Path;

use peerlite::backup::CHECKED;
use peerlite::{RdbStore, RestoreRequest, StoreConfig};
use peerlite_testkit::temp_store_path;

use crate::common::{CREATE_ITEM, add_items, backup_dir, items, manifest_of, store_with_items};

/// A database whose index `k_a` holds other values than its table's column: `quick_check`
/// passes, `integrity_check` does not.
fn index_disagrees_with_table(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; {CREATE_ITEM};
         CREATE TABLE k(a TEXT, b TEXT); CREATE INDEX k_a ON k(a);
         INSERT INTO k VALUES ('x1', 'y1'), ('x2', 'y2'), ('x3', 'y3');
         PRAGMA writable_schema=ON;
         UPDATE sqlite_schema SET sql = 'CREATE INDEX k_a ON k(b)' WHERE name = 'k_a';"
    ))
    .unwrap();
}

/// Rewrites a backup's manifest without the record of the check it passed.
fn forget_the_check(backup: &Path) {
    let path = manifest_of(backup);
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(manifest["checked"], CHECKED, "peerlite records the check");
    manifest.as_object_mut().unwrap().remove("checked");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

#[test]
fn a_checked_manifest_and_its_checksum_are_the_proof_and_the_full_check_runs_when_asked() {
    let (_dir, store) = store_with_items(&["a", "b"]);
    store.backup("bk").unwrap();
    add_items(&store, &["c"]);

    let report = store.restore("bk").unwrap();
    assert!(!report.full_check, "the checksum proved it");
    assert_eq!(items(&store), ["a", "b"]);

    add_items(&store, &["c"]);
    let report = store
        .restore_with(RestoreRequest::new("bk").full_check())
        .unwrap();
    assert!(report.full_check, "asked for");
    assert_eq!(items(&store), ["a", "b"]);

    add_items(&store, &["c"]);
    forget_the_check(&backup_dir(&store).join("bk"));
    let report = store.restore("bk").unwrap();
    assert!(
        report.full_check,
        "the manifest does not say the backup was checked"
    );
    assert_eq!(items(&store), ["a", "b"]);
}

#[test]
fn a_backup_whose_manifest_does_not_say_it_was_checked_gets_the_full_check() {
    let (_dir, path) = temp_store_path();
    index_disagrees_with_table(&path);
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    let backup = store.backup("bk").unwrap().path;
    add_items(&store, &["after the backup"]);

    // Asked for: the damage quick_check missed is found, and nothing changes.
    let err = store
        .restore_with(RestoreRequest::new("bk").full_check())
        .unwrap_err();
    assert_eq!(err.code(), 17020002, "{err}");
    assert!(err.to_string().contains("integrity_check"), "{err}");
    assert_eq!(items(&store), ["after the backup"]);

    // Not asked for, but the manifest does not say the backup was checked: the same.
    forget_the_check(&backup);
    let err = store.restore("bk").unwrap_err();
    assert_eq!(err.code(), 17020002, "{err}");
    assert!(err.to_string().contains("integrity_check"), "{err}");
    assert_eq!(items(&store), ["after the backup"]);
    assert!(
        !backup_dir(&store).join("pre-restore").exists(),
        "refused before anything was made"
    );
}
