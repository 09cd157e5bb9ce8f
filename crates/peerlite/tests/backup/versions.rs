//! Version and identity rules of restore: newer backups, older backups (upgraded on the way
//! in), backups of another database, and backups of the other kind of store.

use peerlite::{
    KvManager, Migration, MigrationReport, Migrations, Options, RdbStore, RestoreRequest,
    StoreConfig,
};
use peerlite_testkit::{create_at_version, migrate_to, temp_store_path};

use crate::common::{CREATE_ITEM, add_items, code, items, listed, path_str, store_with_items};

fn migrations() -> Migrations {
    Migrations::new()
        .step(Migration::sql("0001_init", CREATE_ITEM))
        .step(
            Migration::sql(
                "0002_color",
                "ALTER TABLE item ADD COLUMN color TEXT NOT NULL DEFAULT 'red'",
            )
            .with_down_sql("ALTER TABLE item DROP COLUMN color"),
        )
}

fn colors(store: &RdbStore) -> Vec<(String, String)> {
    let mut rs = store
        .query_sql("SELECT name, color FROM item ORDER BY id", &[])
        .unwrap();
    let mut out = Vec::new();
    while rs.go_to_next_row().unwrap() {
        out.push((rs.get_string(0).unwrap(), rs.get_string(1).unwrap()));
    }
    out
}

#[test]
fn a_backup_newer_than_the_store_is_17020003_and_changes_nothing() {
    let (_dir, path) = temp_store_path();
    let m = migrations();
    let store = migrate_to(&path, &m, 2).unwrap();
    add_items(&store, &["x"]);
    let info = store.backup("at-v2").unwrap();
    assert_eq!(info.version, 2);
    store.close().unwrap();

    // The same database, taken back down to v1.
    let store = migrate_to(&path, &m, 1).unwrap();
    assert_eq!(store.version().unwrap(), 1);
    add_items(&store, &["y"]);
    let err = store.restore("at-v2").unwrap_err();
    assert_eq!(err.code(), 17020003, "{err}");
    assert_eq!(store.version().unwrap(), 1);
    assert_eq!(items(&store), ["x", "y"]);
    assert!(!listed(&store).iter().any(|n| n == "pre-restore"));
    // allow_other_store does not override the version rule.
    assert_eq!(
        code(store.restore_with(RestoreRequest::new("at-v2").allow_other_store())),
        17020003
    );
    assert_eq!(items(&store), ["x", "y"]);
}

#[test]
fn an_older_backup_is_upgraded_with_the_stores_migrations() {
    let (_dir, path) = temp_store_path();
    let m = migrations();
    create_at_version(&path, &m, 1).unwrap();
    {
        let s = RdbStore::open(StoreConfig::new(&path)).unwrap();
        add_items(&s, &["old1", "old2"]);
        assert_eq!(s.backup("v1").unwrap().version, 1);
        s.close().unwrap();
    }
    let store = migrate_to(&path, &m, 2).unwrap();
    store
        .execute("INSERT INTO item(name, color) VALUES ('new', 'blue')", &[])
        .unwrap();

    let report = store.restore("v1").unwrap();
    assert_eq!(report.backup_version, 1);
    assert_eq!(
        report.migration,
        Some(MigrationReport {
            from: 1,
            to: 2,
            steps: vec!["0002_color".to_owned()],
            dry_run: false,
        })
    );
    assert_eq!(report.version, 2);
    assert_eq!(store.version().unwrap(), 2);
    assert_eq!(
        colors(&store),
        [("old1".into(), "red".into()), ("old2".into(), "red".into())]
    );
    // The migrations stay with the store: a second restore upgrades again.
    store.restore("v1").unwrap();
    assert_eq!(store.version().unwrap(), 2);
    assert_eq!(colors(&store).len(), 2);
}

#[test]
fn an_older_backup_into_a_store_opened_without_migrations_needs_them_passed() {
    let (_dir, path) = temp_store_path();
    let m = migrations();
    create_at_version(&path, &m, 1).unwrap();
    {
        let s = RdbStore::open(StoreConfig::new(&path)).unwrap();
        add_items(&s, &["old"]);
        s.backup("v1").unwrap();
        s.close().unwrap();
    }
    migrate_to(&path, &m, 2).unwrap().close().unwrap();
    // A plain open: the store is at v2 but knows no migrations.
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    add_items(&store, &["new"]);
    assert_eq!(code(store.restore("v1")), 14800001);
    assert_eq!(store.version().unwrap(), 2);
    assert_eq!(items(&store), ["old", "new"]);

    let mut given = migrations();
    let report = store
        .restore_with(RestoreRequest::new("v1").migrations(&mut given))
        .unwrap();
    assert_eq!(report.migration.unwrap().to, 2);
    assert_eq!(store.version().unwrap(), 2);
    assert_eq!(colors(&store), [("old".into(), "red".into())]);
}

#[test]
fn a_backup_of_another_database_is_17020004_unless_allowed() {
    let (_dir_a, a) = store_with_items(&["a1"]);
    let (_dir_b, b) = store_with_items(&["b1", "b2"]);
    assert_ne!(a.store_id().unwrap(), b.store_id().unwrap());
    let theirs = b.backup("theirs").unwrap();

    let err = a.restore(path_str(&theirs.path)).unwrap_err();
    assert_eq!(err.code(), 17020004, "{err}");
    assert_eq!(items(&a), ["a1"]);
    assert!(!listed(&a).iter().any(|n| n == "pre-restore"));

    let report = a
        .restore_with(RestoreRequest::new(path_str(&theirs.path)).allow_other_store())
        .unwrap();
    assert_eq!(items(&a), ["b1", "b2"]);
    // The replaced data was kept.
    assert_eq!(
        crate::common::items_in(&report.pre_restore_backup.unwrap()),
        ["a1"]
    );

    // A store without user tables takes another database's backup without being asked.
    let (_dir_c, path_c) = temp_store_path();
    let c = RdbStore::open(StoreConfig::new(&path_c)).unwrap();
    c.restore(path_str(&theirs.path)).unwrap();
    assert_eq!(items(&c), ["b1", "b2"]);
}

/// Adversary round 5, finding 3: a key-value store took another key-value store's backup
/// without being asked — its data is peerlite's own entry table, so it counted as a store
/// without data. A store with entries is one whose data a foreign backup would replace.
#[test]
fn a_key_value_store_refuses_another_stores_backup_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let manager = KvManager::new(dir.path(), "app").unwrap();
    let mine = manager.get_kv_store("s1", Options::default()).unwrap();
    mine.put("k1", "mine").unwrap();
    let theirs = manager.get_kv_store("s2", Options::default()).unwrap();
    theirs.put("z", "theirs").unwrap();
    let backup = theirs.backup("zb").unwrap();
    let err = mine.restore(path_str(&backup.path)).unwrap_err();
    assert_eq!(err.code(), 17020004, "{err}");
    assert_eq!(mine.get("k1").unwrap().to_string(), "mine");
    mine.restore_with(RestoreRequest::new(path_str(&backup.path)).allow_other_store())
        .unwrap();
    assert_eq!(mine.get("z").unwrap().to_string(), "theirs");
    // An empty key-value store takes it without being asked.
    let empty = manager.get_kv_store("s3", Options::default()).unwrap();
    empty.restore(path_str(&backup.path)).unwrap();
    assert_eq!(empty.get("z").unwrap().to_string(), "theirs");
}

#[test]
fn a_key_value_backup_is_not_restored_into_a_relational_store() {
    let dir = tempfile::tempdir().unwrap();
    let manager = KvManager::new(dir.path(), "app").unwrap();
    let kv = manager.get_kv_store("prefs", Options::default()).unwrap();
    kv.put("theme", "dark").unwrap();
    let kv_backup = kv.backup("kv-bk").unwrap();

    let (_dir, store) = store_with_items(&["keep"]);
    let err = store.restore(path_str(&kv_backup.path)).unwrap_err();
    assert_eq!(err.code(), 17020002, "{err}");
    assert_eq!(items(&store), ["keep"]);

    // And the other way round.
    let rdb_backup = store.backup("rdb-bk").unwrap();
    let err = kv.restore(path_str(&rdb_backup.path)).unwrap_err();
    assert_eq!(err.code(), 17020002, "{err}");
    assert_eq!(kv.get("theme").unwrap().to_string(), "dark");
    let keys: Vec<String> = kv
        .get_entries("")
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["theme"]);
}

/// v1 and a v2 step that fails while `item` holds a row named `poison`.
fn picky_migrations() -> Migrations {
    Migrations::new()
        .step(Migration::sql("0001_init", CREATE_ITEM))
        .step(Migration::closure("0002_picky", |tx| {
            tx.execute(
                "ALTER TABLE item ADD COLUMN color TEXT NOT NULL DEFAULT 'red'",
                &[],
            )?;
            let poisoned =
                tx.execute("UPDATE item SET color = color WHERE name = 'poison'", &[])?;
            if poisoned > 0 {
                return Err(peerlite::Error::InvalidArgument {
                    message: "poison".into(),
                    kind: peerlite::StoreKind::Relational,
                });
            }
            Ok(())
        }))
}

#[test]
fn a_restore_whose_upgrade_fails_keeps_the_stores_migrations() {
    let (_dir, path) = temp_store_path();
    let m = picky_migrations();
    create_at_version(&path, &m, 1).unwrap();
    {
        let s = RdbStore::open(StoreConfig::new(&path)).unwrap();
        add_items(&s, &["fine"]);
        s.backup("clean-v1").unwrap();
        add_items(&s, &["poison"]);
        s.backup("poisoned-v1").unwrap();
        s.execute("DELETE FROM item WHERE name = 'poison'", &[])
            .unwrap();
        s.close().unwrap();
    }
    let store = migrate_to(&path, &m, 2).unwrap();
    let err = store.restore("poisoned-v1").unwrap_err();
    assert_eq!(err.code(), 17010001, "{err}");

    // The store was opened with its migrations; a restore of a good v1 backup must still be
    // upgraded with them.
    let report = store.restore("clean-v1").unwrap();
    assert_eq!(report.migration.map(|r| r.to), Some(2));
    assert_eq!(store.version().unwrap(), 2);
    assert_eq!(colors(&store), [("fine".into(), "red".into())]);
}

/// Adversary round 5, findings 2 and 6: the restore decided by the manifest's store id and
/// version, which its checksum does not cover — a manifest edited to name this store let
/// another store's backup in without `allow_other_store` (the store then carried the other's
/// identity), and one edited to a newer version skipped the migrations. The file itself is
/// asked now; a manifest that disagrees with it is refused (17020002), nothing changed.
#[test]
fn a_manifest_that_disagrees_with_its_file_is_refused() {
    let (_dir_a, a) = store_with_items(&["a1"]);
    let (_dir_b, b) = store_with_items(&["b1"]);
    let theirs = b.backup("theirs").unwrap();
    let mine = a.backup("mine").unwrap();
    let edit = |backup: &std::path::Path, field: &str, value: serde_json::Value| {
        let manifest = crate::common::manifest_of(backup);
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        json[field] = value;
        std::fs::write(&manifest, serde_json::to_vec(&json).unwrap()).unwrap();
    };
    edit(&theirs.path, "store_id", a.store_id().unwrap().into());
    let err = a.restore(path_str(&theirs.path)).unwrap_err();
    assert_eq!(err.code(), 17020002, "{err}");
    edit(&mine.path, "user_version", 7.into());
    let err = a.restore("mine").unwrap_err();
    assert_eq!(err.code(), 17020002, "{err}");
    assert_eq!(items(&a), ["a1"]);
    assert_ne!(a.store_id().unwrap(), b.store_id().unwrap());
}
