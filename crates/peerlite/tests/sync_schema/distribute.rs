//! `set_distributed_tables` beyond a single call: one mode per database, the schema ignored in
//! device-collaboration mode, all-or-nothing calls, schema versions (sync columns added and
//! re-synced, nothing else changed without a higher version), and NULL conflict values.

use peerlite::changes::{DistributedConfig, DistributedTableType, DistributedType};
use peerlite::schema::Rule;
use peerlite::{Error, RdbPredicates, RdbStore, StoreConfig, Value, bucket};
use peerlite_testkit::all_rows;

use crate::common::*;
use crate::seed_examples::{SEED_CORRECT, name_age_v, name_only_v};

const NOTES: &str = "CREATE TABLE NOTES (ID INTEGER PRIMARY KEY AUTOINCREMENT, BODY TEXT)";

fn name_conflict() -> F<'static> {
    ("NAME", "Text", true, false, true)
}

fn plain<'a>(name: &'a str, ty: &'a str) -> F<'a> {
    (name, ty, false, false, false)
}

/// EMPLOYEE syncing `sync` at `version`, every column described.
fn employee(version: i64, sync: &[&str]) -> peerlite::schema::SyncSchema {
    one_table(
        version,
        "EMPLOYEE",
        Some(sync),
        &[
            ("ID", "Integer", false, true, false),
            name_conflict(),
            plain("AGE", "Integer"),
            plain("SALARY", "Float"),
            plain("CODES", "Blob"),
        ],
    )
}

fn assert_mismatch(err: &Error) {
    assert_eq!(err.code(), 14800051, "{err:?}");
    assert!(
        matches!(err, Error::DistributedTypeMismatch { .. }),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// One mode per database ("同一数据库下所有端端分布式表必须为一种数据同步存储机制,且不支持切换").
// ---------------------------------------------------------------------------------------------

#[test]
fn single_version_then_device_collaboration_is_refused() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV, NOTES]);
    set_single(&store, &["EMPLOYEE"], &employee(0, &["NAME"])).unwrap();
    let before = snapshot(&store);
    let err = set_collab(&store, &["NOTES"]).unwrap_err();
    assert_mismatch(&err);
    assert_eq!(snapshot(&store), before);
    store
        .insert("NOTES", &bucket! { "BODY" => "local only" })
        .unwrap();
    assert!(store.changes(Some("NOTES"), 0).unwrap().is_empty());
    assert_eq!(store.distributed_tables().unwrap().len(), 1);
}

#[test]
fn device_collaboration_then_single_version_is_refused() {
    let (_dir, store) = store_with(&[NOTES, EMPLOYEE2_SV]);
    set_collab(&store, &["NOTES"]).unwrap();
    let schema = one_table(0, "EMPLOYEE2", Some(&["NAME"]), &[name_conflict()]);
    // The schema itself is fine.
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    let before = snapshot(&store);
    let err = set_single(&store, &["EMPLOYEE2"], &schema).unwrap_err();
    assert_mismatch(&err);
    assert_eq!(snapshot(&store), before);
    store
        .insert("EMPLOYEE2", &bucket! { "NAME" => "x" })
        .unwrap();
    assert!(store.changes(Some("EMPLOYEE2"), 0).unwrap().is_empty());
}

#[test]
fn a_table_cannot_switch_modes() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    set_collab(&store, &["EMPLOYEE"]).unwrap();
    let err = set_single(&store, &["EMPLOYEE"], &employee(0, &["NAME"])).unwrap_err();
    assert_mismatch(&err);
    assert_eq!(
        meta(&store, "EMPLOYEE").mode,
        DistributedTableType::DeviceCollaboration
    );

    let (_dir2, store) = store_with(&[EMPLOYEE_SV]);
    set_single(&store, &["EMPLOYEE"], &employee(0, &["NAME"])).unwrap();
    let err = set_collab(&store, &["EMPLOYEE"]).unwrap_err();
    assert_mismatch(&err);
    assert_eq!(
        meta(&store, "EMPLOYEE").mode,
        DistributedTableType::SingleVersion
    );
}

#[test]
fn tables_of_one_mode_can_be_added_one_at_a_time() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV, EMPLOYEE2_SV]);
    let schema = parse(SEED_CORRECT);
    set_single(&store, &["EMPLOYEE"], &schema).unwrap();
    set_single(&store, &["EMPLOYEE2"], &schema).unwrap();
    assert_eq!(store.distributed_tables().unwrap().len(), 2);

    let (_dir2, store) = store_with(&[EMPLOYEE_DC, NOTES]);
    set_collab(&store, &["EMPLOYEE"]).unwrap();
    set_collab(&store, &["NOTES"]).unwrap();
    assert_eq!(store.distributed_tables().unwrap().len(), 2);
}

#[test]
fn mode_mismatch_in_another_database_does_not_matter() {
    let (_dir, a) = store_with(&[EMPLOYEE_SV]);
    let (_dir2, b) = store_named("Other.db");
    b.execute(EMPLOYEE_SV, &[]).unwrap();
    set_single(&a, &["EMPLOYEE"], &employee(0, &["NAME"])).unwrap();
    set_collab(&b, &["EMPLOYEE"]).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The schema and the mode ("多设备协同表模式下不支持设置schema,默认不读取schema文件").
// ---------------------------------------------------------------------------------------------

#[test]
fn device_collaboration_ignores_a_schema() {
    // A schema that would be refused for a single-version table (two conflict columns, a
    // misspelt column) is not even read in device-collaboration mode.
    let (_dir, store) = store_with(&[EMPLOYEE_DC]);
    let bad = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAMe"]),
        &[name_conflict(), ("AGE", "Integer", true, false, false)],
    );
    assert!(!store.check_sync_schema(&bad).unwrap().is_empty());
    let config = DistributedConfig {
        table_type: DistributedTableType::DeviceCollaboration,
        auto_sync: false,
        schema: Some(bad),
    };
    store
        .set_distributed_tables(&["EMPLOYEE"], DistributedType::Device, &config)
        .unwrap();
    let m = meta(&store, "EMPLOYEE");
    assert_eq!(m.mode, DistributedTableType::DeviceCollaboration);
    assert_eq!(m.schema, None);
    assert_eq!(m.columns, ["ID", "NAME", "AGE", "SALARY", "CODES"]);
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa" })
        .unwrap();
    assert_eq!(store.changes(Some("EMPLOYEE"), 0).unwrap().len(), 1);
}

#[test]
fn single_version_needs_a_schema() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let config = DistributedConfig {
        table_type: DistributedTableType::SingleVersion,
        auto_sync: false,
        schema: None,
    };
    let err = store
        .set_distributed_tables(&["EMPLOYEE"], DistributedType::Device, &config)
        .unwrap_err();
    assert_ne!(err.code(), 0);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

#[test]
fn one_refused_table_refuses_the_whole_call() {
    let (_dir, store) = store_with(&[
        EMPLOYEE2_SV,
        "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER)",
    ]);
    store
        .insert("EMPLOYEE2", &bucket! { "NAME" => "kept local" })
        .unwrap();
    let schema = schema(
        0,
        &[
            table_json("EMPLOYEE2", Some(&["NAME"]), &[name_conflict()]),
            // NAME is not UNIQUE here.
            table_json("EMPLOYEE", Some(&["NAME"]), &[name_conflict()]),
        ],
    );
    let err = set_single(&store, &["EMPLOYEE2", "EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030004);
    assert_nothing_distributed(&store, "EMPLOYEE2", &bucket! { "NAME" => "x" });
}

// ---------------------------------------------------------------------------------------------
// Schema versions.
// ---------------------------------------------------------------------------------------------

/// A store with EMPLOYEE distributed at `employee(0, [NAME])` and rows Lisa, Tom and Gone
/// (deleted).
fn distributed_v0() -> (peerlite_testkit::TempDir, RdbStore) {
    let (dir, store) = store_with(&[EMPLOYEE_SV]);
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 18 })
        .unwrap();
    set_single(&store, &["EMPLOYEE"], &employee(0, &["NAME"])).unwrap();
    store
        .insert(
            "EMPLOYEE",
            &bucket! { "NAME" => "Tom", "AGE" => 25, "SALARY" => 1.5 },
        )
        .unwrap();
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Gone", "AGE" => 99 })
        .unwrap();
    store
        .delete(&RdbPredicates::new("EMPLOYEE").equal_to("NAME", "Gone"))
        .unwrap();
    (dir, store)
}

#[test]
fn adding_a_sync_column_syncs_existing_rows_again() {
    let (_dir, store) = distributed_v0();
    let before = store.changes(Some("EMPLOYEE"), 0).unwrap();
    let max_seq = before.iter().map(|c| c.seq).max().unwrap();
    // AGE is not synced yet: writing it is no change.
    store
        .update(
            &bucket! { "AGE" => 19 },
            &RdbPredicates::new("EMPLOYEE").equal_to("NAME", "Lisa"),
        )
        .unwrap();
    assert_eq!(store.changes(Some("EMPLOYEE"), 0).unwrap(), before);

    let v1 = employee(1, &["NAME", "AGE"]);
    assert_eq!(store.check_sync_schema(&v1).unwrap(), vec![]);
    set_single(&store, &["EMPLOYEE"], &v1).unwrap();
    let m = meta(&store, "EMPLOYEE");
    assert_eq!(m.columns, ["NAME", "AGE"]);
    assert_eq!(m.schema_version, 1);
    assert_eq!(m.identity, "NAME");

    for name in ["Lisa", "Tom"] {
        let c = change_of(&store, "EMPLOYEE", name);
        assert!(
            c.seq > max_seq,
            "{name} is queued to sync again: {c:?} (was at most {max_seq})"
        );
        // The new column is not stamped "now" (that would beat values another device wrote
        // after upgrading first): its value carries the row's insert timestamp.
        assert!(c.columns.iter().all(|r| r.0 != "AGE"), "{c:?}");
        assert!(!c.tombstone);
    }
    assert!(change_of(&store, "EMPLOYEE", "Gone").tombstone);

    // From now on AGE writes are changes.
    let seq = change_of(&store, "EMPLOYEE", "Tom").seq;
    store
        .update(
            &bucket! { "AGE" => 26 },
            &RdbPredicates::new("EMPLOYEE").equal_to("NAME", "Tom"),
        )
        .unwrap();
    assert!(change_of(&store, "EMPLOYEE", "Tom").seq > seq);
}

#[test]
fn sync_columns_grow_over_several_versions() {
    let (_dir, store) = distributed_v0();
    set_single(&store, &["EMPLOYEE"], &employee(1, &["NAME", "AGE"])).unwrap();
    // Listed in another order, with one more: the columns already synced keep their places.
    set_single(
        &store,
        &["EMPLOYEE"],
        &employee(5, &["SALARY", "AGE", "NAME"]),
    )
    .unwrap();
    let m = meta(&store, "EMPLOYEE");
    assert_eq!(m.columns, ["NAME", "AGE", "SALARY"]);
    assert_eq!(m.schema_version, 5);
    let tom = change_of(&store, "EMPLOYEE", "Tom");
    let cols: Vec<&str> = tom.columns.iter().map(|r| r.0.as_str()).collect();
    assert!(!cols.contains(&"SALARY"), "{tom:?}");
    // Written from now on, SALARY is a change of its own.
    store
        .execute("UPDATE EMPLOYEE SET SALARY = 10 WHERE NAME = 'Tom'", &[])
        .unwrap();
    let tom = change_of(&store, "EMPLOYEE", "Tom");
    assert!(tom.columns.iter().any(|r| r.0 == "SALARY"), "{tom:?}");
}

#[test]
fn identical_schema_at_the_same_version_is_accepted_and_changes_nothing() {
    let (_dir, store) = distributed_v0();
    let before = snapshot(&store);
    let schema = employee(0, &["NAME"]);
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    set_single(&store, &["EMPLOYEE"], &schema).unwrap();
    assert_eq!(snapshot(&store), before);
}

#[test]
fn unchanged_tables_at_a_higher_version_resync_nothing() {
    let (_dir, store) = distributed_v0();
    let before = store.changes(None, 0).unwrap();
    set_single(&store, &["EMPLOYEE"], &employee(3, &["NAME"])).unwrap();
    assert_eq!(meta(&store, "EMPLOYEE").schema_version, 3);
    assert_eq!(store.changes(None, 0).unwrap(), before);
}

#[test]
fn any_change_needs_a_higher_version() {
    let (_dir, store) = distributed_v0();
    // A field's type changes.
    let retyped = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME"]),
        &[
            ("ID", "Integer", false, true, false),
            name_conflict(),
            plain("AGE", "Long"),
            plain("SALARY", "Float"),
            plain("CODES", "Blob"),
        ],
    );
    let problems = assert_rejected(&store, &["EMPLOYEE"], &retyped, Rule::VersionNotIncreased);
    assert_eq!(error_rules(&problems), [Rule::VersionNotIncreased]);
    // A field is no longer described.
    let fewer = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME"]),
        &[("ID", "Integer", false, true, false), name_conflict()],
    );
    assert_rejected(&store, &["EMPLOYEE"], &fewer, Rule::VersionNotIncreased);
    // The same change is fine at a higher version.
    let mut higher = fewer;
    higher.db_schema[0].version = 1;
    set_single(&store, &["EMPLOYEE"], &higher).unwrap();
    assert_eq!(meta(&store, "EMPLOYEE").schema_version, 1);
}

#[test]
fn a_lower_version_cannot_carry_a_change() {
    let (_dir, store) = distributed_v0();
    set_single(&store, &["EMPLOYEE"], &employee(2, &["NAME", "AGE"])).unwrap();
    let lower = employee(1, &["NAME", "AGE", "SALARY"]);
    let problems = assert_rejected(&store, &["EMPLOYEE"], &lower, Rule::VersionNotIncreased);
    assert_eq!(error_rules(&problems), [Rule::VersionNotIncreased]);
    assert_eq!(meta(&store, "EMPLOYEE").columns, ["NAME", "AGE"]);
}

#[test]
fn versions_never_go_back() {
    let (_dir, store) = distributed_v0();
    set_single(&store, &["EMPLOYEE"], &employee(5, &["NAME"])).unwrap();
    // The same table entry, at an older version: refusing it or keeping version 5 are both
    // fine; what must not happen is that version 5 is forgotten.
    let _ = set_single(&store, &["EMPLOYEE"], &employee(0, &["NAME"]));
    assert_eq!(meta(&store, "EMPLOYEE").schema_version, 5);
    // A change at version 1 is not a change at a higher version than 5.
    let change = employee(1, &["NAME", "AGE"]);
    let problems = assert_rejected(&store, &["EMPLOYEE"], &change, Rule::VersionNotIncreased);
    assert_eq!(error_rules(&problems), [Rule::VersionNotIncreased]);
}

#[test]
fn dropping_the_conflict_column_on_upgrade_is_refused() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    set_single(&store, &["EMPLOYEE"], &parse(&name_age_v(0))).unwrap();
    let none = one_table(
        1,
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[plain("NAME", "Text"), plain("AGE", "Integer")],
    );
    let problems = assert_rejected(&store, &["EMPLOYEE"], &none, Rule::ConflictColumnChanged);
    assert!(error_rules(&problems).contains(&Rule::NoConflictColumn));
}

#[test]
fn replacing_a_sync_column_is_a_removal() {
    let (_dir, store) = distributed_v0();
    set_single(&store, &["EMPLOYEE"], &employee(1, &["NAME", "AGE"])).unwrap();
    let swapped = employee(2, &["NAME", "SALARY"]);
    let problems = assert_rejected(&store, &["EMPLOYEE"], &swapped, Rule::SyncColumnsRemoved);
    assert_eq!(error_rules(&problems), [Rule::SyncColumnsRemoved]);
    assert_eq!(problems[0].column.as_deref(), Some("AGE"));
    assert_eq!(meta(&store, "EMPLOYEE").columns, ["NAME", "AGE"]);
}

#[test]
fn the_previous_version_is_remembered_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("RdbTest.db");
    {
        let store = RdbStore::open(StoreConfig::new(&path).device_id("phone")).unwrap();
        store.execute(EMPLOYEE_SV, &[]).unwrap();
        set_single(&store, &["EMPLOYEE"], &parse(&name_age_v(0))).unwrap();
        store.close().unwrap();
    }
    let store = RdbStore::open(StoreConfig::new(&path).device_id("phone")).unwrap();
    let m = meta(&store, "EMPLOYEE");
    assert_eq!(m.columns, ["NAME", "AGE"]);
    assert_eq!(m.schema_version, 0);
    assert_rejected(
        &store,
        &["EMPLOYEE"],
        &parse(&name_only_v(1)),
        Rule::SyncColumnsRemoved,
    );
    assert_rejected(
        &store,
        &["EMPLOYEE"],
        &parse(&name_only_v(0)),
        Rule::VersionNotIncreased,
    );
    // The NULL guard is still in place.
    let err = store
        .insert("EMPLOYEE", &bucket! { "AGE" => 1 })
        .unwrap_err();
    assert_eq!(err.code(), 17030005);
}

// ---------------------------------------------------------------------------------------------
// NULL in the conflict column, beyond the seed's single insert.
// ---------------------------------------------------------------------------------------------

const NULLABLE: &str =
    "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT UNIQUE, AGE INTEGER)";

fn nullable_schema(version: i64, sync: &[&str]) -> peerlite::schema::SyncSchema {
    one_table(
        version,
        "EMPLOYEE",
        Some(sync),
        &[
            ("NAME", "Text", true, false, false),
            plain("AGE", "Integer"),
        ],
    )
}

#[test]
fn batch_with_one_null_conflict_value_writes_nothing() {
    let (_dir, store) = store_with(&[NULLABLE]);
    set_single(&store, &["EMPLOYEE"], &nullable_schema(0, &["NAME", "AGE"])).unwrap();
    let rows = [
        bucket! { "NAME" => "a", "AGE" => 1 },
        bucket! { "NAME" => Value::Null, "AGE" => 2 },
        bucket! { "NAME" => "c", "AGE" => 3 },
    ];
    let err = store.batch_insert("EMPLOYEE", &rows).unwrap_err();
    assert_eq!(err.code(), 17030005, "{err:?}");
    assert_eq!(count(&store, "EMPLOYEE"), 0);
    assert!(store.changes(None, 0).unwrap().is_empty());
}

#[test]
fn null_conflict_value_fails_in_a_transaction_too() {
    let (_dir, store) = store_with(&[NULLABLE]);
    set_single(&store, &["EMPLOYEE"], &nullable_schema(0, &["NAME", "AGE"])).unwrap();
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 1 })
        .unwrap();
    let result: peerlite::Result<()> = store.transaction(|tx| {
        tx.execute("UPDATE EMPLOYEE SET AGE = 2", &[])?;
        tx.execute("UPDATE EMPLOYEE SET NAME = NULL", &[])?;
        Ok(())
    });
    assert_eq!(result.unwrap_err().code(), 17030005);
    assert_eq!(
        all_rows(&store, "SELECT NAME, AGE FROM EMPLOYEE", &[]).unwrap(),
        vec![vec![Value::from("Lisa"), Value::from(1)]]
    );
}

#[test]
fn null_guard_survives_an_upgrade() {
    let (_dir, store) = store_with(&[NULLABLE]);
    set_single(&store, &["EMPLOYEE"], &nullable_schema(0, &["NAME"])).unwrap();
    set_single(&store, &["EMPLOYEE"], &nullable_schema(1, &["NAME", "AGE"])).unwrap();
    let err = store
        .insert("EMPLOYEE", &bucket! { "NAME" => Value::Null, "AGE" => 1 })
        .unwrap_err();
    assert_eq!(err.code(), 17030005);
    assert_eq!(count(&store, "EMPLOYEE"), 0);
}

#[test]
fn device_collaboration_tables_have_no_null_guard() {
    // NULL conflict values are a single-version rule: a device-collaboration table with a
    // nullable column takes NULLs as before.
    let (_dir, store) = store_with(&[NULLABLE]);
    set_collab(&store, &["EMPLOYEE"]).unwrap();
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => Value::Null, "AGE" => 1 })
        .unwrap();
    assert_eq!(count(&store, "EMPLOYEE"), 1);
}

#[test]
fn null_conflict_error_names_its_table_and_column() {
    let (_dir, store) = store_with(&[
        "CREATE TABLE \"Team:Members\" (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT UNIQUE, AGE INTEGER)",
    ]);
    let schema = one_table(
        0,
        "Team:Members",
        Some(&["NAME"]),
        &[("NAME", "Text", true, false, false)],
    );
    set_single(&store, &["Team:Members"], &schema).unwrap();
    let err = store
        .insert("Team:Members", &bucket! { "NAME" => Value::Null })
        .unwrap_err();
    assert_eq!(err.code(), 17030005);
    match err {
        Error::NullConflictColumn { table, column } => {
            assert_eq!(table, "Team:Members");
            assert_eq!(column, "NAME");
        }
        other => panic!("expected NullConflictColumn, got {other:?}"),
    }
}

/// `DistributedConfig::auto_sync` was accepted and never kept: a `peerlite serve` process,
/// opening the store later, could not know which tables push their commits by themselves.
/// It is kept per table, survives a reopen, is set anew by distributing again, and a registry
/// written before the flag existed gets the column (off) at the next open.
#[test]
fn auto_sync_is_kept_per_table_and_added_to_an_older_registry() {
    let (dir, store) = store_with(&[EMPLOYEE_DC]);
    let path = store.path().to_path_buf();
    let on = DistributedConfig {
        auto_sync: true,
        ..DistributedConfig::default()
    };
    store
        .set_distributed_tables(&["EMPLOYEE"], DistributedType::Device, &on)
        .unwrap();
    assert!(meta(&store, "EMPLOYEE").auto_sync);
    let device = store.device_id().to_owned();
    store.close().unwrap();
    let store = RdbStore::open(StoreConfig::new(&path).device_id(device.clone())).unwrap();
    assert!(meta(&store, "EMPLOYEE").auto_sync, "kept across a reopen");
    set_collab(&store, &["EMPLOYEE"]).unwrap();
    assert!(
        !meta(&store, "EMPLOYEE").auto_sync,
        "distributing again sets it anew"
    );
    store
        .set_distributed_tables(&["EMPLOYEE"], DistributedType::Device, &on)
        .unwrap();
    store.close().unwrap();
    // A registry of the earlier format: no auto_sync column.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("ALTER TABLE peerlite_distributed DROP COLUMN auto_sync")
        .unwrap();
    drop(conn);
    let store = RdbStore::open(StoreConfig::new(&path).device_id(device)).unwrap();
    assert!(
        !meta(&store, "EMPLOYEE").auto_sync,
        "an older registry reads as off"
    );
    store
        .set_distributed_tables(&["EMPLOYEE"], DistributedType::Device, &on)
        .unwrap();
    assert!(meta(&store, "EMPLOYEE").auto_sync);
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa" })
        .unwrap();
    assert_eq!(store.changes(Some("EMPLOYEE"), 0).unwrap().len(), 1);
    drop(dir);
}
