//! Deleting backups (one result per name), reserved names, and the leftovers of interrupted
//! backups.

use peerlite::{Migration, Migrations, RdbStore, StoreConfig};
use peerlite_testkit::{create_at_version, dir_entries, migrate_to, temp_store_path};

use crate::common::{backup_dir, code, listed, manifest_of, store_with_items};

#[test]
fn delete_backup_returns_one_result_per_name() {
    let (_dir, store) = store_with_items(&["a"]);
    store.backup("keep").unwrap();
    let gone = store.backup("gone").unwrap();
    let names = ["gone", "missing", "auto-x", "../evil", "keep/.."];
    let results = store.delete_backup(&names);
    assert_eq!(
        results.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        names
    );
    let codes: Vec<Option<u32>> = results
        .iter()
        .map(|r| r.result.as_ref().err().map(peerlite::Error::code))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(17020001),
            Some(17020006),
            Some(14800010),
            Some(14800010)
        ]
    );
    assert!(!gone.path.exists());
    assert!(!manifest_of(&gone.path).exists());
    assert_eq!(listed(&store), ["keep"]);
    assert_eq!(
        dir_entries(backup_dir(&store)),
        ["keep", "keep.manifest.json"]
    );
    // Deleting it again: now missing.
    assert_eq!(
        store.delete_backup(&["gone"])[0]
            .result
            .as_ref()
            .unwrap_err()
            .code(),
        17020001
    );
    assert!(store.delete_backup(&[]).is_empty());
}

#[test]
fn reserved_names_are_17020006() {
    let (_dir, store) = store_with_items(&["a"]);
    for reserved in ["auto-x", "auto-20260101T000000.000Z", "pre-restore"] {
        assert_eq!(code(store.backup(reserved)), 17020006, "{reserved}");
    }
    assert!(listed(&store).is_empty());
    assert!(dir_entries(backup_dir(&store)).is_empty());
}

#[test]
fn an_automatic_backup_cannot_be_deleted_by_name() {
    let (_dir, path) = temp_store_path();
    let m = Migrations::new()
        .step(Migration::sql("0001_init", crate::common::CREATE_ITEM))
        .step(Migration::sql(
            "0002_idx",
            "CREATE INDEX item_name ON item(name)",
        ));
    create_at_version(&path, &m, 1).unwrap();
    let store = migrate_to(&path, &m, 2).unwrap();
    let auto = store.backups().unwrap();
    assert_eq!(auto.len(), 1);
    assert!(auto[0].automatic);
    let result = store.delete_backup(&[auto[0].name.as_str()]);
    assert_eq!(result[0].result.as_ref().unwrap_err().code(), 17020006);
    assert_eq!(listed(&store), [auto[0].name.clone()]);
    assert!(auto[0].path.is_file());
}

#[test]
fn leftovers_of_dead_backups_are_not_listed_and_are_removed_by_the_next_open() {
    let (_dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    store.execute(crate::common::CREATE_ITEM, &[]).unwrap();
    let real = store.backup("real").unwrap();
    let dir = backup_dir(&store);

    // An interrupted backup of a process that is gone (no pid is that large on Linux), and one
    // of this process, which may be running right now and must be kept.
    let dead = dir.join("X.4000000000-1.tmp");
    let dead_manifest = dir.join("X.manifest.json.4000000000-1.tmp");
    let dead_journal = dir.join("X.4000000000-1.tmp-journal");
    let mine = dir.join(format!("Y.{}-99.tmp", std::process::id()));
    let mine_manifest = dir.join(format!("Y.manifest.json.{}-99.tmp", std::process::id()));
    std::fs::copy(&real.path, &dead).unwrap();
    std::fs::copy(manifest_of(&real.path), &dead_manifest).unwrap();
    std::fs::write(&dead_journal, b"journal").unwrap();
    std::fs::copy(&real.path, &mine).unwrap();
    std::fs::copy(manifest_of(&real.path), &mine_manifest).unwrap();

    assert_eq!(listed(&store), ["real"]);
    assert_eq!(code(store.restore("X.4000000000-1.tmp")), 14800010);

    store.close().unwrap();
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    assert!(!dead.exists(), "a dead backup's file was kept");
    assert!(!dead_manifest.exists(), "a dead backup's manifest was kept");
    assert!(!dead_journal.exists(), "a dead backup's journal was kept");
    assert!(
        mine.exists(),
        "a file of a backup this process may be writing was removed"
    );
    assert!(mine_manifest.exists());
    assert_eq!(listed(&store), ["real"]);
    let mut expected = vec![
        "real".to_owned(),
        "real.manifest.json".to_owned(),
        mine.file_name().unwrap().to_string_lossy().into_owned(),
        mine_manifest
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
    ];
    expected.sort();
    assert_eq!(dir_entries(&dir), expected);
}

/// Adversary round 5, finding 8: `peerlite backups` read a manifest whatever it was — one
/// linked to /dev/zero grew the process past 11 GB. A manifest is read only when it is a
/// regular file of at most 1 MiB; any other is listed with its problem, and a restore of that
/// backup is refused with nothing changed.
#[cfg(unix)]
#[test]
fn a_manifest_that_is_a_device_or_huge_is_refused_unread() {
    let (_dir, store) = store_with_items(&["a1"]);
    let info = store.backup("good").unwrap();
    for (name, make) in [("zero", "device"), ("huge", "huge")] {
        let copy = info.path.with_file_name(name);
        std::fs::copy(&info.path, &copy).unwrap();
        let manifest = manifest_of(&copy);
        if make == "device" {
            std::os::unix::fs::symlink("/dev/zero", &manifest).unwrap();
        } else {
            std::fs::write(&manifest, vec![b' '; 2 << 20]).unwrap();
        }
        let listed = store.backups().unwrap();
        let entry = listed.iter().find(|b| b.name == name).unwrap();
        assert!(
            !entry.verified && entry.problem.is_some(),
            "{name}: {entry:?}"
        );
        assert_eq!(code(store.restore(name)), 17020002, "{name}");
        assert_eq!(crate::common::items(&store), ["a1"]);
    }
}
