//! Bad input of every kind: each gives its code, and nothing is lost.

use peerlite::{Error, RdbPredicates, RdbStore, StoreConfig, bucket, values};
use peerlite_testkit::{count_rows, query_column, temp_store_path};

use crate::common::{all_names, employees};

const ALL: [&str; 7] = ["Lisa", "Tom", "Rose", "Jack", "50% off", "a_b", "axb"];

#[test]
fn invalid_sql_is_14800021_and_the_store_keeps_working() {
    let (_dir, s) = employees();
    for sql in [
        "SELEKT * FROM EMPLOYEE",
        "DELETE FROM",
        "INSERT INTO nope VALUES (1)",
        "UPDATE EMPLOYEE SET NOPE = 1",
        "CREATE TABLE EMPLOYEE(x)", // exists already
    ] {
        let err = s.execute(sql, &[]).unwrap_err();
        assert_eq!(err.code(), 14800021, "{sql}: {err}");
        assert_eq!(err.sqlite_code(), Some(1), "{sql}");
        assert!(!err.hint().is_empty());
    }
    let err = s.query_sql("SELECT nope FROM EMPLOYEE", &[]).unwrap_err();
    assert_eq!(err.code(), 14800021);
    assert_eq!(all_names(&s), ALL);
    s.insert("EMPLOYEE", &bucket! { "NAME" => "after" })
        .unwrap();
    assert_eq!(count_rows(&s, "EMPLOYEE").unwrap(), 8);
}

#[test]
fn several_statements_in_execute_are_refused_and_none_runs() {
    let (_dir, s) = employees();
    let err = s
        .execute(
            "INSERT INTO EMPLOYEE(NAME) VALUES ('x'); DROP TABLE EMPLOYEE",
            &[],
        )
        .unwrap_err();
    assert_eq!(err.code(), 14800001, "{err}");
    let err = s
        .query_sql("SELECT 1; DELETE FROM EMPLOYEE", &[])
        .unwrap_err();
    assert_eq!(err.code(), 14800001, "{err}");
    assert_eq!(all_names(&s), ALL);
}

#[test]
fn unknown_table_or_column_is_14800001() {
    let (_dir, s) = employees();
    let err = s.query(&RdbPredicates::new("NOPE"), &[]).unwrap_err();
    assert_eq!(err.code(), 14800001);
    assert!(matches!(&err, Error::UnknownTable { table, .. } if table == "NOPE"));
    assert_eq!(
        s.insert("NOPE", &bucket! { "x" => 1 }).unwrap_err().code(),
        14800001
    );
    assert_eq!(
        s.delete(&RdbPredicates::new("NOPE")).unwrap_err().code(),
        14800001
    );
    let err = s
        .query(&RdbPredicates::new("EMPLOYEE").equal_to("NOPE", 1), &[])
        .unwrap_err();
    assert_eq!(err.code(), 14800001);
    assert!(matches!(
        &err,
        Error::UnknownColumn { table, column, .. } if table == "EMPLOYEE" && column == "NOPE"
    ));
    assert_eq!(
        s.insert("EMPLOYEE", &bucket! { "NAME" => "x", "NOPE" => 1 })
            .unwrap_err()
            .code(),
        14800001
    );
    assert_eq!(
        s.update(&bucket! { "NOPE" => 1 }, &RdbPredicates::new("EMPLOYEE"))
            .unwrap_err()
            .code(),
        14800001
    );
    // rowid exists on rowid tables only; views have none.
    s.execute("CREATE VIEW v AS SELECT NAME FROM EMPLOYEE", &[])
        .unwrap();
    assert_eq!(
        s.query(&RdbPredicates::new("v").equal_to("rowid", 1), &[])
            .unwrap_err()
            .code(),
        14800001
    );
    let rs = s.query(&RdbPredicates::new("v"), &["NAME"]).unwrap();
    assert_eq!(rs.row_count().unwrap(), 7);
    assert_eq!(count_rows(&s, "EMPLOYEE").unwrap(), 7);
}

#[test]
fn a_table_created_elsewhere_is_found() {
    // The schema cache must not hide tables and columns created after it was filled.
    let (_dir, s) = employees();
    assert_eq!(
        s.query(&RdbPredicates::new("later"), &[])
            .unwrap_err()
            .code(),
        14800001
    );
    s.execute("CREATE TABLE later(a)", &[]).unwrap();
    s.insert("later", &bucket! { "a" => 1 }).unwrap();
    s.query(&RdbPredicates::new("EMPLOYEE").equal_to("NAME", "x"), &[])
        .unwrap();
    s.execute(
        "ALTER TABLE EMPLOYEE ADD COLUMN EXTRA TEXT DEFAULT 'e'",
        &[],
    )
    .unwrap();
    let rs = s
        .query(
            &RdbPredicates::new("EMPLOYEE").equal_to("EXTRA", "e"),
            &["EXTRA"],
        )
        .unwrap();
    assert_eq!(rs.row_count().unwrap(), 7);
    s.execute("DROP TABLE later", &[]).unwrap();
    assert_eq!(
        s.insert("later", &bucket! { "a" => 1 }).unwrap_err().code(),
        14800001
    );
}

#[test]
fn a_file_that_is_not_a_database_is_14800011_and_left_alone() {
    let (dir, _) = temp_store_path();
    let path = dir.path().join("x.db");
    let text = b"this is a shopping list, not a database\nmilk\neggs\n";
    std::fs::write(&path, text).unwrap();
    let err = RdbStore::open(StoreConfig::new(&path)).unwrap_err();
    assert_eq!(err.code(), 14800011, "{err}");
    assert!(err.is_corruption());
    assert!(matches!(err, Error::Corrupted { .. }));
    // The file was not overwritten or "repaired".
    assert_eq!(std::fs::read(&path).unwrap(), text);

    // A damaged header with the SQLite magic still in place.
    let damaged = dir.path().join("damaged.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xA5u8, 4096 - bytes.len()));
    std::fs::write(&damaged, &bytes).unwrap();
    let err = RdbStore::open(StoreConfig::new(&damaged)).unwrap_err();
    assert_eq!(err.code(), 14800011, "{err}");
    assert_eq!(std::fs::read(&damaged).unwrap(), bytes);
}

#[test]
fn unusable_paths_are_14800010() {
    let (dir, _) = temp_store_path();
    // A directory.
    let err = RdbStore::open(StoreConfig::new(dir.path())).unwrap_err();
    assert_eq!(err.code(), 14800010, "{err}");
    assert!(matches!(err, Error::InvalidPath { .. }));
    // A missing parent directory, which is not created.
    let missing = dir.path().join("no").join("such").join("dir").join("x.db");
    let err = RdbStore::open(StoreConfig::new(&missing)).unwrap_err();
    assert_eq!(err.code(), 14800010, "{err}");
    assert!(!dir.path().join("no").exists());
    // Empty path.
    assert_eq!(
        RdbStore::open(StoreConfig::new("")).unwrap_err().code(),
        14800010
    );
    // ArkData-style names may not escape their directory.
    for bad in ["../x.db", "a/b.db", "..", "", "a\\b.db"] {
        assert_eq!(
            StoreConfig::named(bad, dir.path()).unwrap_err().code(),
            14800010,
            "{bad}"
        );
    }
}

#[test]
fn version_zero_is_refused_before_anything_is_created() {
    let (_dir, path) = temp_store_path();
    let err = RdbStore::open(StoreConfig::new(&path).version(0)).unwrap_err();
    assert_eq!(err.code(), 14800001);
    assert!(!path.exists());
}

#[test]
fn wrong_parameter_count_is_14800001() {
    let (_dir, s) = employees();
    for (sql, params) in [
        (
            "INSERT INTO EMPLOYEE(NAME, AGE) VALUES (?, ?)",
            values!["x"].to_vec(),
        ),
        (
            "INSERT INTO EMPLOYEE(NAME) VALUES (?)",
            values!["x", 1].to_vec(),
        ),
        ("DELETE FROM EMPLOYEE WHERE ID = ?", Vec::new()),
        ("DELETE FROM EMPLOYEE", values![1].to_vec()),
    ] {
        let err = s.execute(sql, &params).unwrap_err();
        assert_eq!(err.code(), 14800001, "{sql}: {err}");
    }
    assert_eq!(
        s.query_sql("SELECT * FROM EMPLOYEE WHERE ID = ?", &[])
            .unwrap_err()
            .code(),
        14800001
    );
    assert_eq!(
        s.query_sql("SELECT 1", &values![1]).unwrap_err().code(),
        14800001
    );
    assert_eq!(all_names(&s), ALL);
}

#[test]
fn query_sql_refuses_writes() {
    let (_dir, s) = employees();
    for sql in [
        "INSERT INTO EMPLOYEE(NAME) VALUES ('x')",
        "DELETE FROM EMPLOYEE",
        "UPDATE EMPLOYEE SET AGE = 0",
        "DROP TABLE EMPLOYEE",
        "CREATE TABLE y(a)",
        "INSERT INTO EMPLOYEE(NAME) VALUES ('x') RETURNING ID",
    ] {
        let err = s.query_sql(sql, &[]).unwrap_err();
        assert_eq!(err.code(), 14800019, "{sql}: {err}");
        assert!(matches!(err, Error::NotAQuery { .. }));
    }
    assert_eq!(all_names(&s), ALL);
    assert_eq!(
        query_column::<i64>(
            &s,
            "SELECT count(*) FROM sqlite_schema WHERE name = 'y'",
            &[]
        )
        .unwrap(),
        [0]
    );
}

#[test]
fn query_sql_refuses_transaction_control_and_reads_stay_fresh() {
    let (dir, _) = temp_store_path();
    let s = RdbStore::open(StoreConfig::new(dir.path().join("one_reader.db")).readers(1)).unwrap();
    s.execute("CREATE TABLE t(x)", &[]).unwrap();
    let begin = s.query_sql("BEGIN", &[]);
    // Take a snapshot on the (single) reader, then write.
    assert_eq!(
        query_column::<i64>(&s, "SELECT count(*) FROM t", &[]).unwrap(),
        [0]
    );
    s.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    assert_eq!(
        query_column::<i64>(&s, "SELECT count(*) FROM t", &[]).unwrap(),
        [1],
        "a read after a committed write must see it"
    );
    assert_eq!(begin.unwrap_err().code(), 14800019);
}

#[test]
fn execute_script_refuses_transaction_control() {
    let (_dir, s) = employees();
    let err = s
        .execute_script(
            "INSERT INTO EMPLOYEE(NAME) VALUES ('one'); COMMIT; INSERT INTO EMPLOYEE(NAME) VALUES ('two');",
        )
        .unwrap_err();
    assert_eq!(err.code(), 14800001, "{err}");
    assert_eq!(all_names(&s), ALL, "nothing of a refused script is kept");
    let err = s
        .execute_script("DELETE FROM EMPLOYEE; ROLLBACK; DELETE FROM EMPLOYEE WHERE ID = 1;")
        .unwrap_err();
    assert_eq!(err.code(), 14800001, "{err}");
    assert_eq!(all_names(&s), ALL);
}

#[test]
fn rollback_hidden_behind_a_comment_cannot_end_the_transaction() {
    let (_dir, s) = employees();
    let result = s.transaction(|tx| {
        tx.execute("DELETE FROM EMPLOYEE WHERE ID = 1", &[])?;
        let err = tx.execute("ROLLBACK /* TO */", &[]).unwrap_err();
        assert_eq!(err.code(), 14800001, "{err}");
        tx.execute("DELETE FROM EMPLOYEE WHERE ID = 2", &[])?;
        Err::<(), _>(Error::NotFound {
            what: "caller gives up".into(),
        })
    });
    assert_eq!(result.unwrap_err().code(), 15100004);
    assert_eq!(all_names(&s), ALL, "the transaction rolled back as a whole");
}

#[test]
fn commit_inside_a_transaction_is_refused_and_harmless() {
    let (_dir, s) = employees();
    let tx = s.begin_transaction().unwrap();
    tx.execute("DELETE FROM EMPLOYEE WHERE ID = 1", &[])
        .unwrap();
    assert_eq!(tx.execute("COMMIT", &[]).unwrap_err().code(), 14800001);
    tx.rollback().unwrap();
    assert_eq!(all_names(&s), ALL);
}

#[test]
fn use_after_close_is_14800014() {
    let (_dir, s) = employees();
    s.close().unwrap();
    assert_eq!(s.execute("SELECT 1", &[]).unwrap_err().code(), 14800014);
    assert_eq!(
        s.insert("EMPLOYEE", &bucket! { "NAME" => "x" })
            .unwrap_err()
            .code(),
        14800014
    );
    // Reopening the file gives a working store with the data.
    let s = RdbStore::open(StoreConfig::new(s.path())).unwrap();
    assert_eq!(all_names(&s), ALL);
}

#[test]
fn constraint_violations_keep_sqlite_codes() {
    let (_dir, s) = employees();
    let err = s.insert("EMPLOYEE", &bucket! { "AGE" => 1 }).unwrap_err();
    assert_eq!(err.code(), 14800032);
    assert_eq!(err.sqlite_code(), Some(1299)); // SQLITE_CONSTRAINT_NOTNULL
    let err = s
        .insert("EMPLOYEE", &bucket! { "ID" => 1, "NAME" => "dup" })
        .unwrap_err();
    assert_eq!(err.code(), 14800032);
    assert_eq!(err.sqlite_code(), Some(1555)); // SQLITE_CONSTRAINT_PRIMARYKEY
    assert!(!err.is_retryable());
    assert_eq!(all_names(&s), ALL);
}
