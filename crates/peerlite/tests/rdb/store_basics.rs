//! Opening, writing, reading and reopening a relational store.

use peerlite::{
    ConflictResolution, RdbPredicates, RdbStore, StatementOutput, StoreConfig, Value, bucket,
    values,
};
use peerlite_testkit::{count_rows, query_column, scalar, temp_store_path};

use crate::common::{CREATE_EMPLOYEE, all_names, employees, rows, store};

#[test]
fn insert_query_update_delete_round_trip() {
    let (_dir, store) = store();
    store.execute(CREATE_EMPLOYEE, &[]).unwrap();
    let id = store
        .insert(
            "EMPLOYEE",
            &bucket! { "NAME" => "Lisa", "AGE" => 18, "SALARY" => 100.5, "CODES" => vec![1u8, 2, 3] },
        )
        .unwrap();
    assert_eq!(id, 1);
    let id2 = store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Tom", "AGE" => 20 })
        .unwrap();
    assert_eq!(id2, 2);

    let changed = store
        .update(
            &bucket! { "AGE" => 19, "SALARY" => 111.25 },
            &RdbPredicates::new("EMPLOYEE").equal_to("ID", id),
        )
        .unwrap();
    assert_eq!(changed, 1);

    let mut rs = store
        .query(
            &RdbPredicates::new("EMPLOYEE").equal_to("NAME", "Lisa"),
            &["ID", "NAME", "AGE", "SALARY", "CODES"],
        )
        .unwrap();
    assert_eq!(rs.row_count().unwrap(), 1);
    assert!(rs.go_to_first_row().unwrap());
    assert_eq!(rs.get_long("ID").unwrap(), 1);
    assert_eq!(rs.get_long("AGE").unwrap(), 19);
    assert_eq!(rs.get_double("SALARY").unwrap(), 111.25);
    assert_eq!(rs.get_blob("CODES").unwrap(), vec![1, 2, 3]);

    let deleted = store
        .delete(&RdbPredicates::new("EMPLOYEE").equal_to("NAME", "Tom"))
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(all_names(&store), ["Lisa"]);
    // Deleting again deletes nothing.
    assert_eq!(
        store
            .delete(&RdbPredicates::new("EMPLOYEE").equal_to("NAME", "Tom"))
            .unwrap(),
        0
    );
}

#[test]
fn every_storage_class_round_trips() {
    let (_dir, store) = store();
    store
        .execute("CREATE TABLE v(id INTEGER PRIMARY KEY, x)", &[])
        .unwrap();
    let samples = vec![
        Value::Null,
        Value::Integer(i64::MIN),
        Value::Integer(i64::MAX),
        Value::Integer(0),
        Value::Real(-1.5e300),
        Value::Real(0.1),
        Value::Text(String::new()),
        Value::Text("日本語 ünïcødé \u{1F600}".into()),
        Value::Text("a\0b".into()),
        Value::Blob(Vec::new()),
        Value::Blob(vec![0, 255, 0, 128]),
    ];
    for v in &samples {
        store.insert("v", &bucket! { "x" => v.clone() }).unwrap();
    }
    let back: Vec<Value> = rows(&store, "SELECT x FROM v ORDER BY id")
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect();
    assert_eq!(back, samples);
    let types = query_column::<String>(&store, "SELECT typeof(x) FROM v ORDER BY id", &[]).unwrap();
    let expected: Vec<&str> = samples.iter().map(Value::type_name).collect();
    assert_eq!(types, expected);
}

#[test]
fn data_survives_close_and_reopen() {
    let (_dir, path) = temp_store_path();
    {
        let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
        store.execute(CREATE_EMPLOYEE, &[]).unwrap();
        store
            .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa" })
            .unwrap();
        store.close().unwrap();
        assert!(store.is_closed());
    }
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    assert_eq!(all_names(&store), ["Lisa"]);
    assert_eq!(store.version().unwrap(), 0);
    assert_eq!(store.path(), path.as_path());
    assert_eq!(store.config().path(), path.as_path());
}

#[test]
fn named_config_joins_directory_and_file_name() {
    let (dir, _) = temp_store_path();
    let config = StoreConfig::named("RdbTest.db", dir.path()).unwrap();
    let store = RdbStore::open(config).unwrap();
    assert_eq!(store.path(), dir.path().join("RdbTest.db"));
    assert!(dir.path().join("RdbTest.db").exists());
}

#[test]
fn clones_share_one_store() {
    let (_dir, store) = employees();
    let clone = store.clone();
    clone
        .insert("EMPLOYEE", &bucket! { "NAME" => "Clone" })
        .unwrap();
    assert_eq!(count_rows(&store, "EMPLOYEE").unwrap(), 8);
    store.close().unwrap();
    assert!(clone.is_closed());
    assert_eq!(clone.version().unwrap_err().code(), 14800014);
}

#[test]
fn insert_with_conflict_ignore_and_replace() {
    let (_dir, store) = store();
    store
        .execute(
            "CREATE TABLE u(id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)",
            &[],
        )
        .unwrap();
    let id = store
        .insert("u", &bucket! { "email" => "a@x", "name" => "first" })
        .unwrap();
    assert_eq!(id, 1);

    let err = store
        .insert("u", &bucket! { "email" => "a@x", "name" => "dup" })
        .unwrap_err();
    assert_eq!(err.code(), 14800032);
    assert_eq!(err.sqlite_code(), Some(2067)); // SQLITE_CONSTRAINT_UNIQUE

    let skipped = store
        .insert_with_conflict(
            "u",
            &bucket! { "email" => "a@x", "name" => "ignored" },
            ConflictResolution::Ignore,
        )
        .unwrap();
    assert_eq!(skipped, -1);
    assert_eq!(
        query_column::<String>(&store, "SELECT name FROM u", &[]).unwrap(),
        ["first"]
    );

    let replaced = store
        .insert_with_conflict(
            "u",
            &bucket! { "email" => "a@x", "name" => "replaced" },
            ConflictResolution::Replace,
        )
        .unwrap();
    assert_eq!(replaced, 2);
    assert_eq!(
        rows(&store, "SELECT id, name FROM u"),
        vec![vec![Value::Integer(2), Value::Text("replaced".into())]]
    );
}

#[test]
fn batch_insert_is_all_or_nothing() {
    let (_dir, store) = store();
    store.execute(CREATE_EMPLOYEE, &[]).unwrap();
    let rows = [
        bucket! { "NAME" => "a", "AGE" => 1 },
        bucket! { "NAME" => "b" },
        bucket! { "AGE" => 3 }, // NAME is NOT NULL
    ];
    let err = store.batch_insert("EMPLOYEE", &rows).unwrap_err();
    assert_eq!(err.code(), 14800032);
    assert_eq!(count_rows(&store, "EMPLOYEE").unwrap(), 0);

    // Rows naming different columns are all inserted, in order.
    let ok = [
        bucket! { "NAME" => "a", "AGE" => 1 },
        bucket! { "NAME" => "b" },
        bucket! { "NAME" => "c", "AGE" => 3 },
    ];
    assert_eq!(store.batch_insert("EMPLOYEE", &ok).unwrap(), 3);
    assert_eq!(all_names(&store), ["a", "b", "c"]);
    assert_eq!(store.batch_insert("EMPLOYEE", &[]).unwrap(), 0);
}

#[test]
fn execute_returns_changed_rows_and_binds_parameters() {
    let (_dir, store) = employees();
    let n = store
        .execute(
            "UPDATE EMPLOYEE SET SALARY = SALARY + ? WHERE DEPT = ?",
            &values![1, "eng"],
        )
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        query_column::<f64>(
            &store,
            "SELECT SALARY FROM EMPLOYEE WHERE DEPT = ?1 ORDER BY ID",
            &values!["eng"]
        )
        .unwrap(),
        [101.5, 201.0]
    );
    // DDL changes no rows.
    assert_eq!(store.execute("CREATE TABLE x(a)", &[]).unwrap(), 0);
    // A NULL parameter.
    store
        .execute(
            "INSERT INTO EMPLOYEE(NAME, AGE) VALUES (?, ?)",
            &values!["Null Age", None::<i64>],
        )
        .unwrap();
    assert_eq!(
        scalar::<i64>(&store, "SELECT count(*) FROM EMPLOYEE WHERE AGE IS NULL").unwrap(),
        2
    );
}

#[test]
fn execute_script_runs_everything_or_nothing() {
    let (_dir, store) = store();
    let out = store
        .execute_script(
            "CREATE TABLE s(a INTEGER); INSERT INTO s VALUES (1), (2); SELECT a FROM s ORDER BY a; DELETE FROM s WHERE a = 1;",
        )
        .unwrap();
    assert_eq!(out.len(), 4);
    assert!(matches!(out[0], StatementOutput::Changed(0)));
    assert!(matches!(out[1], StatementOutput::Changed(2)));
    match &out[2] {
        StatementOutput::Rows(rs) => assert_eq!(rs.row_count().unwrap(), 2),
        other => panic!("expected rows, got {other:?}"),
    }
    assert!(matches!(out[3], StatementOutput::Changed(1)));

    let err = store
        .execute_script("INSERT INTO s VALUES (10); INSERT INTO nope VALUES (1);")
        .unwrap_err();
    assert_eq!(err.code(), 14800021);
    assert_eq!(
        query_column::<i64>(&store, "SELECT a FROM s", &[]).unwrap(),
        [2]
    );
    assert_eq!(count_rows(&store, "s").unwrap(), 1);
}

#[test]
fn foreign_keys_are_enforced_by_default_and_can_be_switched_off() {
    let (dir, store) = store();
    store
        .execute_script(
            "CREATE TABLE parent(id INTEGER PRIMARY KEY); CREATE TABLE child(id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id));",
        )
        .unwrap();
    let err = store.insert("child", &bucket! { "p" => 42 }).unwrap_err();
    assert_eq!(err.code(), 14800032);
    assert_eq!(err.sqlite_code(), Some(787)); // SQLITE_CONSTRAINT_FOREIGNKEY
    store.close().unwrap();

    let store = RdbStore::open(
        StoreConfig::new(dir.path().join(peerlite_testkit::DEFAULT_DB_NAME)).foreign_keys(false),
    )
    .unwrap();
    store.insert("child", &bucket! { "p" => 42 }).unwrap();
    assert_eq!(count_rows(&store, "child").unwrap(), 1);
}

#[test]
fn read_only_store_reads_but_never_writes() {
    let (_dir, path) = temp_store_path();
    {
        let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
        store.execute(CREATE_EMPLOYEE, &[]).unwrap();
        store
            .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa" })
            .unwrap();
        store.close().unwrap();
    }
    let ro = RdbStore::open(StoreConfig::new(&path).read_only(true)).unwrap();
    assert_eq!(all_names(&ro), ["Lisa"]);
    let err = ro
        .insert("EMPLOYEE", &bucket! { "NAME" => "x" })
        .unwrap_err();
    assert_eq!(err.code(), 14800027);
    let err = ro.execute("DELETE FROM EMPLOYEE", &[]).unwrap_err();
    assert_eq!(err.code(), 14800027);
    let err = ro.execute_script("DELETE FROM EMPLOYEE").unwrap_err();
    assert_eq!(err.code(), 14800027);
    assert_eq!(all_names(&ro), ["Lisa"]);

    // A read-only open never creates a file.
    let missing = path.with_file_name("missing.db");
    let err = RdbStore::open(StoreConfig::new(&missing).read_only(true)).unwrap_err();
    assert_eq!(err.code(), 14800010);
    assert!(!missing.exists());
}

#[test]
fn versioned_plain_open_stamps_a_new_store() {
    let (_dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path).version(3)).unwrap();
    assert_eq!(store.version().unwrap(), 3);
    store.close().unwrap();
    let store = RdbStore::open(StoreConfig::new(&path).version(3)).unwrap();
    assert_eq!(store.version().unwrap(), 3);
    store.close().unwrap();
    // Moving it needs migrations.
    let err = RdbStore::open(StoreConfig::new(&path).version(4)).unwrap_err();
    assert_eq!(err.code(), 17010001);
    let err = RdbStore::open(StoreConfig::new(&path).version(2)).unwrap_err();
    assert_eq!(err.code(), 17010002);
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    assert_eq!(store.version().unwrap(), 3);
}

#[test]
fn close_leaves_a_complete_database_file() {
    let (_dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    store.execute("CREATE TABLE t(x TEXT)", &[]).unwrap();
    store
        .execute("INSERT INTO t VALUES ('CLOSE-CHECKPOINT-CANARY')", &[])
        .unwrap();
    // A read opens a pooled reader connection.
    assert_eq!(count_rows(&store, "t").unwrap(), 1);
    store.close().unwrap();
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    assert!(
        !wal.exists(),
        "the WAL was checkpointed and removed at close"
    );
    assert!(peerlite_testkit::file_contains(&path, b"CLOSE-CHECKPOINT-CANARY").unwrap());
}
