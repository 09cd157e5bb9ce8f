//! Retention of named backups, and automatic backups: before migrations and on a schedule.

use std::time::Duration;

use peerlite::{AutoBackup, BackupInfo, Migration, Migrations, RdbStore, StoreConfig};
use peerlite_testkit::{count_rows, create_at_version, migrate_to_with, temp_store_path, wait_for};

use crate::common::{CREATE_ITEM, add_items, items, items_in, listed, manifest_of};

fn migrations() -> Migrations {
    Migrations::new()
        .step(Migration::sql("0001_init", CREATE_ITEM))
        .step(Migration::sql(
            "0002_color",
            "ALTER TABLE item ADD COLUMN color TEXT NOT NULL DEFAULT 'red'",
        ))
        .step(Migration::sql(
            "0003_idx",
            "CREATE INDEX item_color ON item(color)",
        ))
        .step(Migration::sql(
            "0004_note",
            "ALTER TABLE item ADD COLUMN note TEXT",
        ))
}

fn automatic(store: &RdbStore) -> Vec<BackupInfo> {
    store
        .backups()
        .unwrap()
        .into_iter()
        .filter(|b| b.automatic)
        .collect()
}

#[test]
fn max_backups_keeps_the_newest_named_backups() {
    let (_dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path).max_backups(2)).unwrap();
    store.execute(CREATE_ITEM, &[]).unwrap();
    let mut taken = Vec::new();
    for name in ["b1", "b2", "b3", "b4"] {
        add_items(&store, &[name]);
        taken.push(store.backup(name).unwrap());
        // Distinct creation times, so "newest" is well defined.
        std::thread::sleep(Duration::from_millis(3));
    }
    assert_eq!(listed(&store), ["b4", "b3"]);
    for old in &taken[..2] {
        assert!(!old.path.exists(), "{} was kept", old.name);
        assert!(!manifest_of(&old.path).exists());
    }
    assert_eq!(items_in(&taken[3].path), ["b1", "b2", "b3", "b4"]);
    assert_eq!(items_in(&taken[2].path), ["b1", "b2", "b3"]);
}

#[test]
fn a_migration_leaves_an_automatic_backup_of_the_old_version_that_restores() {
    let (_dir, path) = temp_store_path();
    let m = migrations();
    create_at_version(&path, &m, 1).unwrap();
    {
        let s = RdbStore::open(StoreConfig::new(&path)).unwrap();
        add_items(&s, &["old1", "old2"]);
        s.close().unwrap();
    }
    let store = migrate_to_with(StoreConfig::new(&path), &m, 2).unwrap();
    let auto = automatic(&store);
    assert_eq!(auto.len(), 1, "{auto:?}");
    let before_v2 = &auto[0];
    assert!(before_v2.name.starts_with("auto-"), "{}", before_v2.name);
    assert!(before_v2.name.ends_with("-before-v2"), "{}", before_v2.name);
    assert_eq!(before_v2.version, 1);
    assert!(before_v2.verified);
    assert_eq!(items_in(&before_v2.path), ["old1", "old2"]);

    // Lose data at v2, then restore the automatic backup: same database, so no
    // allow_other_store; it is at v1, so the store's migrations bring it to v2 again.
    store.execute("DELETE FROM item", &[]).unwrap();
    let report = store.restore(&before_v2.name).unwrap();
    assert_eq!(report.backup_version, 1);
    assert_eq!(report.version, 2);
    assert_eq!(store.version().unwrap(), 2);
    assert_eq!(items(&store), ["old1", "old2"]);
    assert_eq!(
        count_rows(&store, "item").unwrap(),
        2,
        "the restored rows have the v2 column"
    );
    assert_eq!(
        peerlite_testkit::query_column::<String>(&store, "SELECT color FROM item", &[]).unwrap(),
        ["red", "red"]
    );
}

#[test]
fn automatic_backups_respect_max_auto_backups_and_leave_named_ones_alone() {
    let (_dir, path) = temp_store_path();
    let m = migrations();
    create_at_version(&path, &m, 1).unwrap();
    let config = || StoreConfig::new(&path).max_auto_backups(2).max_backups(1);
    {
        let s = RdbStore::open(config()).unwrap();
        s.backup("mine").unwrap();
        s.close().unwrap();
    }
    for version in 2..=4 {
        let s = migrate_to_with(config(), &m, version).unwrap();
        s.close().unwrap();
        std::thread::sleep(Duration::from_millis(3));
    }
    let store = RdbStore::open(config()).unwrap();
    assert_eq!(store.version().unwrap(), 4);
    let auto = automatic(&store);
    let names: Vec<&str> = auto.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].ends_with("-before-v4"), "{names:?}");
    assert!(names[1].ends_with("-before-v3"), "{names:?}");
    assert_eq!(auto.iter().map(|b| b.version).collect::<Vec<_>>(), [3, 2]);
    let named: Vec<String> = store
        .backups()
        .unwrap()
        .into_iter()
        .filter(|b| !b.automatic)
        .map(|b| b.name)
        .collect();
    assert_eq!(
        named,
        ["mine"],
        "max_backups(1) never prunes automatic backups and vice versa"
    );
}

#[test]
fn backup_before_migration_false_takes_none() {
    let (_dir, path) = temp_store_path();
    let m = migrations();
    create_at_version(&path, &m, 1).unwrap();
    let store = migrate_to_with(
        StoreConfig::new(&path).backup_before_migration(false),
        &m,
        2,
    )
    .unwrap();
    assert_eq!(store.version().unwrap(), 2);
    assert!(store.backups().unwrap().is_empty());
    // A new database is created, not migrated: no backup either, with the default setting.
    let (_dir2, fresh) = temp_store_path();
    let store = migrate_to_with(StoreConfig::new(&fresh), &m, 2).unwrap();
    assert!(store.backups().unwrap().is_empty());
}

#[test]
fn every_commits_takes_an_automatic_backup_in_the_background() {
    let (_dir, path) = temp_store_path();
    let store =
        RdbStore::open(StoreConfig::new(&path).auto_backup(AutoBackup::EveryCommits(5))).unwrap();
    store.execute(CREATE_ITEM, &[]).unwrap(); // commit 1
    add_items(&store, &["a", "b", "c"]); // commits 2..=4
    assert!(
        store.backups().unwrap().is_empty(),
        "no backup is due before the fifth commit"
    );
    add_items(&store, &["d"]); // commit 5
    assert!(
        wait_for(Duration::from_secs(10), || !automatic(&store).is_empty()),
        "no automatic backup within 10 s of the fifth commit"
    );
    let auto = automatic(&store);
    assert_eq!(auto.len(), 1);
    assert!(auto[0].name.starts_with("auto-"), "{}", auto[0].name);
    assert!(auto[0].verified);
    // No commit after the fifth: the backup holds exactly the four rows.
    assert_eq!(items_in(&auto[0].path), ["a", "b", "c", "d"]);
    store.close().unwrap();
}
