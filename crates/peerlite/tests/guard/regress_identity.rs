//! `check --full` missed damaged identity rows: with `peerlite_meta` dropped, or its
//! `device_id` deleted or garbled by another tool, it said ok — because the open before the
//! check had silently minted a new device id, store id and epoch for a store that had synced
//! (its peers would take it for a device they never met, and its clock rows kept the old
//! origin). A dropped clock table failed the open itself with "no such table".
//!
//! Now the identity rows of a store that syncs are trusted, never remade: a writable open
//! refuses them damaged with 17050002 naming each problem (unless asked to re-identify), a
//! read-only open still reads the data, `check --full` reports them (and a missing clock) as
//! 17050002, and a restore of a backup mends them.

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::{CheckMode, RdbStore, StoreConfig, bucket};
use peerlite_testkit::temp_store_path;

use crate::common::code;

/// A distributed store that stamped a row and has a backup `good`; closed.
fn synced_store(db: &std::path::Path) {
    let store = RdbStore::open(StoreConfig::new(db)).unwrap();
    store
        .execute("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT)", &[])
        .unwrap();
    store
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    store.insert("note", &bucket! { "body" => "a" }).unwrap();
    store.backup("good").unwrap();
    store.close().unwrap();
}

/// Damage another tool can do to the identity rows, as SQL run outside peerlite.
const DAMAGE: [(&str, &str); 7] = [
    ("dropped meta", "DROP TABLE peerlite_meta"),
    (
        "no device_id",
        "DELETE FROM peerlite_meta WHERE key = 'device_id'",
    ),
    (
        "garbled device_id",
        "UPDATE peerlite_meta SET value = 'zzz' WHERE key = 'device_id'",
    ),
    (
        "no store_id",
        "DELETE FROM peerlite_meta WHERE key = 'store_id'",
    ),
    (
        "garbled store_id",
        "UPDATE peerlite_meta SET value = 'x' WHERE key = 'store_id'",
    ),
    ("no epoch", "DELETE FROM peerlite_meta WHERE key = 'epoch'"),
    (
        "garbled epoch",
        "UPDATE peerlite_meta SET value = 'e!' WHERE key = 'epoch'",
    ),
];

fn meta(db: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let Ok(mut st) = conn.prepare("SELECT key, value FROM peerlite_meta ORDER BY key") else {
        return Vec::new();
    };
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn damaged_identity_rows_are_reported_never_remade() {
    for (what, sql) in DAMAGE {
        let (_dir, db) = temp_store_path();
        synced_store(&db);
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let damaged = meta(&db);
        for config in [
            StoreConfig::new(&db),
            StoreConfig::new(&db).for_recovery(true),
        ] {
            let err = RdbStore::open(config).map(|_| ()).unwrap_err();
            assert_eq!(err.code(), 17050002, "{what}: {err}");
            assert!(err.to_string().contains("peerlite_meta"), "{what}: {err}");
        }
        assert_eq!(meta(&db), damaged, "{what}: nothing was minted");
        // The data can still be read.
        let reader = RdbStore::open(StoreConfig::new(&db).read_only(true)).unwrap();
        assert_eq!(
            reader
                .query_sql("SELECT body FROM note", &[])
                .unwrap()
                .row_count()
                .unwrap(),
            1
        );
        reader.close().unwrap();
        // A restore of the backup mends it (through the repair machinery: the store cannot
        // be opened), and the identity is the backup's.
        let store = RdbStore::open(
            StoreConfig::new(&db)
                .allow_rebuild(true)
                .rebuild_from("good"),
        )
        .unwrap();
        assert!(store.check(CheckMode::Full).is_ok(), "{what}");
        store.close().unwrap();
    }
}

#[test]
fn check_full_reports_a_missing_clock_table_without_failing_the_open() {
    let (_dir, db) = temp_store_path();
    synced_store(&db);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TABLE peerlite_clock_1")
        .unwrap();
    let store = RdbStore::open(StoreConfig::new(&db).for_recovery(true)).unwrap();
    let err = store.check(CheckMode::Full).unwrap_err();
    assert_eq!(err.code(), 17050002, "{err}");
    assert!(
        err.to_string()
            .contains("clock peerlite_clock_1 of note is missing"),
        "{err}"
    );
    // Distributing the table again recreates it.
    store
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    assert!(store.check(CheckMode::Full).is_ok());
}

#[test]
fn a_store_asked_to_reidentify_gets_a_new_identity() {
    let (_dir, db) = temp_store_path();
    synced_store(&db);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DELETE FROM peerlite_meta WHERE key = 'device_id'")
        .unwrap();
    assert_eq!(code(RdbStore::open(StoreConfig::new(&db))), 17050002);
    let store = RdbStore::open(StoreConfig::new(&db).device_id("phone").reidentify(true)).unwrap();
    assert_eq!(store.device_id(), "phone");
}
