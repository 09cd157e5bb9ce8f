//! Damaged, incomplete, missing and badly named backups are refused, and the store is left
//! exactly as it was.

use peerlite::{BackupInfo, RdbStore};
use peerlite_testkit::{TempDir, dir_entries, flip_byte};

use crate::common::{
    add_items, add_padding, backup_dir, code, items, listed, manifest_of, store_with_items,
};

/// A store with a multi-page backup `bk`, changed after it.
fn changed_after_backup() -> (TempDir, RdbStore, BackupInfo) {
    let (dir, store) = store_with_items(&["a", "b"]);
    add_padding(&store, 100, 1000);
    let info = store.backup("bk").unwrap();
    add_items(&store, &["after"]);
    (dir, store, info)
}

fn assert_unchanged(store: &RdbStore) {
    assert_eq!(items(store), ["a", "b", "after"]);
    assert!(
        !listed(store).iter().any(|n| n == "pre-restore"),
        "a refused restore took a safety copy"
    );
}

#[test]
fn a_truncated_backup_is_refused_with_17020002() {
    let (_dir, store, info) = changed_after_backup();
    let half = info.size_bytes / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&info.path)
        .unwrap()
        .set_len(half)
        .unwrap();
    let listed_info = store
        .backups()
        .unwrap()
        .into_iter()
        .find(|b| b.name == "bk")
        .unwrap();
    assert!(
        !listed_info.verified,
        "the size no longer matches the manifest"
    );
    assert_eq!(listed_info.size_bytes, half);

    let err = store.restore("bk").unwrap_err();
    assert_eq!(err.code(), 17020002, "{err}");
    assert_unchanged(&store);
}

#[test]
fn a_bit_flipped_backup_is_refused_with_17020002() {
    let (_dir, store, info) = changed_after_backup();
    flip_byte(&info.path, info.size_bytes / 2).unwrap();
    assert_eq!(
        std::fs::metadata(&info.path).unwrap().len(),
        info.size_bytes
    );
    let err = store.restore("bk").unwrap_err();
    assert_eq!(err.code(), 17020002, "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_unchanged(&store);

    // Flipped back, it restores.
    flip_byte(&info.path, info.size_bytes / 2).unwrap();
    store.restore("bk").unwrap();
    assert_eq!(items(&store), ["a", "b"]);
}

/// A backup whose manifest was lost was hidden by the listing although `restore` knew the file
/// (and said it had no manifest): what is in the backup folder must be visible. It is listed,
/// not verified, with why; restore still refuses it.
#[test]
fn a_backup_without_its_manifest_is_listed_as_not_verified_and_not_restored() {
    let (_dir, store, info) = changed_after_backup();
    std::fs::remove_file(manifest_of(&info.path)).unwrap();
    assert!(info.path.is_file());
    let list = store.backups().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "bk");
    assert_eq!(list[0].path, info.path);
    assert!(!list[0].verified);
    assert_eq!(
        list[0].problem.as_deref(),
        Some("there is no manifest beside it")
    );
    assert_eq!(list[0].size_bytes, info.size_bytes);
    assert_eq!(list[0].page_count, info.page_count, "read from its header");
    // An unreadable manifest: listed too, with why.
    std::fs::write(manifest_of(&info.path), "{ not json").unwrap();
    let list = store.backups().unwrap();
    assert!(
        list[0].problem.as_deref().unwrap().contains("unreadable"),
        "{list:?}"
    );
    std::fs::remove_file(manifest_of(&info.path)).unwrap();
    let err = store.restore("bk").unwrap_err();
    assert_eq!(err.code(), 17020002, "{err}");
    assert!(err.to_string().contains("manifest"), "{err}");
    // By path too.
    assert_eq!(code(store.restore(info.path.to_str().unwrap())), 17020002);
    assert_unchanged(&store);
}

#[test]
fn a_manifest_that_does_not_parse_is_refused_with_17020002() {
    let (_dir, store, info) = changed_after_backup();
    std::fs::write(manifest_of(&info.path), "{ \"format\": 1, ").unwrap();
    assert_eq!(code(store.restore("bk")), 17020002);
    assert_unchanged(&store);
}

#[test]
fn a_missing_backup_is_17020001() {
    let (dir, store, _) = changed_after_backup();
    assert_eq!(code(store.restore("no-such-backup")), 17020001);
    let nowhere = dir.path().join("nowhere").join("x.db");
    assert_eq!(code(store.restore(nowhere.to_str().unwrap())), 17020001);
    assert_unchanged(&store);
}

#[test]
fn names_that_are_paths_are_14800010_for_backup_and_delete() {
    let (dir, store, _) = changed_after_backup();
    let before = dir_entries(dir.path());
    let backups_before = dir_entries(backup_dir(&store));
    for bad in [
        "../escape",
        "a/b",
        "/tmp/absolute",
        "..",
        "",
        "x.tmp",
        "x.manifest.json",
    ] {
        assert_eq!(code(store.backup(bad)), 14800010, "backup({bad:?})");
        let results = store.delete_backup(&[bad]);
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].name, bad);
        assert_eq!(
            results[0].result.as_ref().unwrap_err().code(),
            14800010,
            "delete_backup({bad:?})"
        );
    }
    assert_eq!(
        dir_entries(dir.path()),
        before,
        "a file escaped the backup directory"
    );
    assert_eq!(dir_entries(backup_dir(&store)), backups_before);
    assert!(!std::path::Path::new("/tmp/absolute").exists());
}
