//! `check --full` verifies peerlite's own objects: one damage pattern per object kind, made
//! with a plain connection (the sqlite3 shell, another program, an old build), each reported
//! with 17050002 naming the object.

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::{CheckMode, RdbStore};
use peerlite_testkit::hostile;

/// Story: a dropped capture trigger silently stopped capture while `check` said ok, and a
/// deleted meta row went unnoticed. Each damage below used to pass `check(Full)`; now it fails
/// with 17050002 and a line naming the damaged object, while the quick check (the file's
/// structure) still passes.
#[test]
fn each_damaged_object_is_reported_by_the_full_check() {
    let cases: &[(&str, &str)] = &[
        (
            "DROP TRIGGER peerlite_1_ai",
            "capture trigger peerlite_1_ai of note is missing",
        ),
        (
            "DROP TRIGGER peerlite_1_ad",
            "capture trigger peerlite_1_ad of note is missing",
        ),
        (
            "DROP TRIGGER peerlite_1_au; CREATE TRIGGER peerlite_1_au AFTER UPDATE ON note BEGIN SELECT 1; END",
            "capture trigger peerlite_1_au of note differs",
        ),
        (
            "DROP TABLE peerlite_clock_1",
            "clock peerlite_clock_1 of note is missing",
        ),
        (
            "DROP INDEX peerlite_clock_1_seq",
            "index peerlite_clock_1_seq",
        ),
        ("DROP TABLE peerlite_pending_1", "peerlite_pending_1"),
        ("DROP TABLE note", "distributed table note is missing"),
        (
            "ALTER TABLE note RENAME COLUMN body TO text",
            "note lacks its synced column body",
        ),
        (
            "DELETE FROM peerlite_distributed WHERE name = 'note'",
            "trigger peerlite_1_ad belongs to no distributed table",
        ),
        (
            "UPDATE peerlite_distributed SET mode = 'bogus' WHERE name = 'note'",
            "note has no valid mode",
        ),
        (
            "UPDATE peerlite_distributed SET columns = 'not json' WHERE name = 'note'",
            "note has no readable list of synced columns",
        ),
        (
            "DROP TABLE peerlite_distributed",
            "peerlite_distributed (the registry of distributed tables) is missing",
        ),
        ("DROP TABLE peerlite_devices", "peerlite_devices"),
        (
            "DELETE FROM peerlite_meta WHERE key = 'store_id'",
            "peerlite_meta has no store_id",
        ),
        (
            "DELETE FROM peerlite_meta WHERE key = 'device_id'",
            "peerlite_meta has no device_id",
        ),
        (
            "UPDATE peerlite_meta SET value = 'not an epoch' WHERE key = 'epoch'",
            "peerlite_meta's epoch \"not an epoch\" is malformed",
        ),
        (
            "DROP TABLE peerlite_meta",
            "peerlite_meta (the store's identity) is missing",
        ),
        (
            "CREATE TRIGGER peerlite_7_ai AFTER INSERT ON plain BEGIN SELECT 1; END",
            "trigger peerlite_7_ai belongs to no distributed table",
        ),
    ];
    for (damage, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = hostile::fixture(dir.path()).unwrap();
        store.check(CheckMode::Full).unwrap();
        let device_table = store
            .obtain_distributed_table_name("laptop", "note")
            .unwrap();
        rusqlite::Connection::open(store.path())
            .unwrap()
            .execute_batch(damage)
            .unwrap();
        let err = store.check(CheckMode::Full).unwrap_err();
        assert_eq!(err.code(), 17050002, "{damage}: {err}");
        assert!(err.to_string().contains(expected), "{damage}: {err}");
        assert!(
            !err.is_corruption(),
            "damaged objects are not a corrupted file"
        );
        store.check(CheckMode::Quick).unwrap();
        assert!(!err.to_string().contains(&device_table), "{err}");
    }
}

/// Story: a device table dropped by another tool left sync writing into a table that was not
/// there; the full check names it.
#[test]
fn a_missing_device_table_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = hostile::fixture(dir.path()).unwrap();
    let device_table = store
        .obtain_distributed_table_name("laptop", "note")
        .unwrap();
    rusqlite::Connection::open(store.path())
        .unwrap()
        .execute_batch(&format!("DROP TABLE \"{device_table}\""))
        .unwrap();
    let err = store.check(CheckMode::Full).unwrap_err();
    assert_eq!(err.code(), 17050002);
    assert!(
        err.to_string()
            .contains(&format!("distributed table {device_table} is missing")),
        "{err}"
    );
}

/// Story: the hint of 17050002 says to distribute the table again; doing so must recreate what
/// was dropped (same table id, so the clock's history stays) and capture must work again.
#[test]
fn distributing_again_recreates_a_tables_clock_index_and_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let store = hostile::fixture(dir.path()).unwrap();
    rusqlite::Connection::open(store.path())
        .unwrap()
        .execute_batch(
            "DROP TRIGGER peerlite_1_ai; DROP TRIGGER peerlite_1_au; DROP INDEX peerlite_clock_1_seq",
        )
        .unwrap();
    assert_eq!(store.check(CheckMode::Full).unwrap_err().code(), 17050002);
    store
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    store.check(CheckMode::Full).unwrap();
    assert_eq!(store.distributed_tables().unwrap()[0].tid, 1);
    store
        .execute(
            "INSERT INTO note(id, body) VALUES (3, 'captured again')",
            &[],
        )
        .unwrap();
    assert!(store.change_of("note", &3.into()).unwrap().is_some());
}

/// Story: a store's check must not call a healthy store damaged: fresh stores, stores without
/// distributed tables, single-version tables with their NOT NULL triggers, key-value stores.
#[test]
fn healthy_stores_pass_the_full_check() {
    let dir = tempfile::tempdir().unwrap();
    let plain = RdbStore::open(peerlite::StoreConfig::new(dir.path().join("plain.db"))).unwrap();
    plain.check(CheckMode::Full).unwrap();
    plain.execute("CREATE TABLE t(x)", &[]).unwrap();
    plain.check(CheckMode::Full).unwrap();
    let single = RdbStore::open(peerlite::StoreConfig::new(dir.path().join("items.db"))).unwrap();
    single
        .execute(
            "CREATE TABLE item(uuid TEXT PRIMARY KEY NOT NULL, title TEXT)",
            &[],
        )
        .unwrap();
    let schema = peerlite::schema::SyncSchema::parse(
        r#"{"dbSchema":[{"version":1,"bundleName":"b","dbName":"items","tables":[{"tableName":"item",
        "deviceSyncFields":["uuid","title"],"fields":[{"columnName":"uuid","type":"Text","primaryKey":true,"notNull":true},
        {"columnName":"title","type":"Text"}]}]}]}"#,
    )
    .unwrap();
    single
        .set_distributed_tables(
            &["item"],
            DistributedType::Device,
            &DistributedConfig::single_version(schema),
        )
        .unwrap();
    single.check(CheckMode::Full).unwrap();
    let kv = peerlite::KvManager::new(dir.path().join("kv"), "app")
        .unwrap()
        .get_kv_store("prefs", peerlite::Options::default())
        .unwrap();
    kv.put("k", "v").unwrap();
    kv.check(CheckMode::Full).unwrap();
}
