//! The ResultSet cursor API, typed getters and their errors, and invalidation by close.

use peerlite::{Error, RdbPredicates, Value, bucket};

use crate::common::employees;

const FIRST_THREE: &str =
    "SELECT ID, NAME, AGE, SALARY, CODES FROM EMPLOYEE WHERE ID <= 3 ORDER BY ID";

#[test]
fn shape_and_names() {
    let (_dir, s) = employees();
    let rs = s.query_sql(FIRST_THREE, &[]).unwrap();
    assert_eq!(rs.row_count().unwrap(), 3);
    assert_eq!(rs.column_count().unwrap(), 5);
    assert_eq!(
        rs.column_names().unwrap(),
        ["ID", "NAME", "AGE", "SALARY", "CODES"]
    );
    assert_eq!(rs.get_column_index("SALARY").unwrap(), 3);
    assert_eq!(rs.get_column_index("salary").unwrap(), 3);
    assert_eq!(rs.get_column_name(4).unwrap(), "CODES");
    assert_eq!(rs.get_column_name(5).unwrap_err().code(), 14800013);
    assert_eq!(rs.get_column_index("NOPE").unwrap_err().code(), 14800013);
    // Aliases are the names a query gives.
    let rs = s
        .query_sql("SELECT count(*) AS n, max(AGE) FROM EMPLOYEE", &[])
        .unwrap();
    assert_eq!(rs.column_names().unwrap(), ["n", "max(AGE)"]);
    assert_eq!(rs.row_count().unwrap(), 1);
    // query() with no columns selects all of them, in table order.
    let rs = s.query(&RdbPredicates::new("EMPLOYEE"), &[]).unwrap();
    assert_eq!(
        rs.column_names().unwrap(),
        ["ID", "NAME", "AGE", "SALARY", "CODES", "DEPT"]
    );
    assert_eq!(rs.row_count().unwrap(), 7);
}

#[test]
fn cursor_movement() {
    let (_dir, s) = employees();
    let mut rs = s.query_sql(FIRST_THREE, &[]).unwrap();
    // Before the first row.
    assert_eq!(rs.row_index().unwrap(), -1);
    assert!(!rs.is_started().unwrap());
    assert!(!rs.is_ended().unwrap());
    assert!(!rs.is_at_first_row().unwrap());
    assert!(!rs.is_at_last_row().unwrap());
    assert_eq!(rs.get_long(0).unwrap_err().code(), 14800012);

    assert!(rs.go_to_next_row().unwrap());
    assert!(rs.is_at_first_row().unwrap());
    assert!(rs.is_started().unwrap());
    assert_eq!(rs.get_string("NAME").unwrap(), "Lisa");

    assert!(rs.go_to_next_row().unwrap());
    assert_eq!(rs.get_string("NAME").unwrap(), "Tom");
    assert!(!rs.is_at_first_row().unwrap());
    assert!(!rs.is_at_last_row().unwrap());

    assert!(rs.go_to_last_row().unwrap());
    assert!(rs.is_at_last_row().unwrap());
    assert_eq!(rs.row_index().unwrap(), 2);
    assert_eq!(rs.get_string("NAME").unwrap(), "Rose");

    // Past the end.
    assert!(!rs.go_to_next_row().unwrap());
    assert!(rs.is_ended().unwrap());
    assert!(rs.is_started().unwrap());
    assert_eq!(rs.row_index().unwrap(), 3);
    assert_eq!(rs.get_string("NAME").unwrap_err().code(), 14800012);
    assert!(matches!(
        rs.get_row().unwrap_err(),
        Error::RowOutOfRange { .. }
    ));

    // And back.
    assert!(rs.go_to_previous_row().unwrap());
    assert_eq!(rs.get_string("NAME").unwrap(), "Rose");
    assert!(!rs.is_ended().unwrap());

    // Absolute and relative moves; out of range leaves the position unchanged.
    assert!(rs.go_to_row(0).unwrap());
    assert_eq!(rs.get_string(1).unwrap(), "Lisa");
    assert!(!rs.go_to_row(3).unwrap());
    assert_eq!(rs.row_index().unwrap(), 0);
    assert!(!rs.go_to_row(usize::MAX).unwrap());
    assert_eq!(rs.row_index().unwrap(), 0);
    assert!(rs.go_to(2).unwrap());
    assert_eq!(rs.get_string(1).unwrap(), "Rose");
    assert!(!rs.go_to(1).unwrap());
    assert_eq!(rs.row_index().unwrap(), 2);
    assert!(rs.go_to(-1).unwrap());
    assert_eq!(rs.get_string(1).unwrap(), "Tom");
    assert!(!rs.go_to(-5).unwrap());
    assert_eq!(rs.row_index().unwrap(), 1);
    assert!(rs.go_to_first_row().unwrap());
    assert!(rs.is_at_first_row().unwrap());

    // Before the start again.
    assert!(!rs.go_to_previous_row().unwrap());
    assert_eq!(rs.row_index().unwrap(), -1);
    assert!(!rs.is_started().unwrap());
    assert_eq!(rs.get_long(0).unwrap_err().code(), 14800012);

    // Walking the whole set forward visits every row once.
    let mut ids = Vec::new();
    while rs.go_to_next_row().unwrap() {
        ids.push(rs.get_long("ID").unwrap());
    }
    assert_eq!(ids, [1, 2, 3]);
}

#[test]
fn single_row_is_first_and_last() {
    let (_dir, s) = employees();
    let mut rs = s
        .query(&RdbPredicates::new("EMPLOYEE").equal_to("ID", 4), &["NAME"])
        .unwrap();
    assert!(rs.go_to_first_row().unwrap());
    assert!(rs.is_at_first_row().unwrap());
    assert!(rs.is_at_last_row().unwrap());
}

#[test]
fn empty_result_never_has_a_row() {
    let (_dir, s) = employees();
    let mut rs = s
        .query(
            &RdbPredicates::new("EMPLOYEE").equal_to("NAME", "nobody"),
            &[],
        )
        .unwrap();
    assert_eq!(rs.row_count().unwrap(), 0);
    assert_eq!(rs.column_count().unwrap(), 6);
    assert!(!rs.go_to_first_row().unwrap());
    assert!(!rs.go_to_last_row().unwrap());
    assert!(!rs.is_at_first_row().unwrap());
    assert!(!rs.is_at_last_row().unwrap());
    assert!(!rs.go_to_row(0).unwrap());
    assert!(!rs.go_to_next_row().unwrap());
    assert!(rs.is_ended().unwrap());
    assert_eq!(rs.get_long(0).unwrap_err().code(), 14800012);
    assert_eq!(rs.rows().unwrap().count(), 0);
}

#[test]
fn typed_getters_by_index_and_name() {
    let (_dir, s) = employees();
    let mut rs = s.query_sql(FIRST_THREE, &[]).unwrap();
    assert!(rs.go_to_first_row().unwrap());
    assert_eq!(rs.get_long(0).unwrap(), 1);
    assert_eq!(rs.get_long("ID").unwrap(), 1);
    assert_eq!(rs.get_long("id").unwrap(), 1);
    assert_eq!(rs.get_string(1).unwrap(), "Lisa");
    assert_eq!(rs.get_long("AGE").unwrap(), 18);
    assert!(rs.get_bool("AGE").unwrap());
    assert_eq!(rs.get_double(3).unwrap(), 100.5);
    assert_eq!(rs.get_blob("CODES").unwrap(), vec![1, 2, 3]);
    assert_eq!(rs.get_value("CODES").unwrap(), Value::Blob(vec![1, 2, 3]));
    assert_eq!(rs.get::<i32>("AGE").unwrap(), 18);
    assert_eq!(rs.get::<f64>("AGE").unwrap(), 18.0); // integer read as real
    assert_eq!(rs.get_string("AGE").unwrap(), "18"); // integer read as text
    assert_eq!(rs.get::<Option<i64>>("AGE").unwrap(), Some(18));
    assert!(!rs.is_column_null("CODES").unwrap());
    assert_eq!(
        rs.get_row().unwrap(),
        bucket! {
            "ID" => 1,
            "NAME" => "Lisa",
            "AGE" => 18,
            "SALARY" => 100.5,
            "CODES" => vec![1u8, 2, 3],
        }
    );

    assert!(rs.go_to_next_row().unwrap());
    assert!(rs.is_column_null("CODES").unwrap());
    assert!(rs.is_column_null(4).unwrap());
    assert_eq!(rs.get::<Option<Vec<u8>>>("CODES").unwrap(), None);
    assert_eq!(rs.get_value("CODES").unwrap(), Value::Null);
    assert_eq!(rs.get_row().unwrap().get("CODES"), Some(&Value::Null));

    assert!(rs.go_to_last_row().unwrap());
    assert_eq!(rs.get::<Option<f64>>("SALARY").unwrap(), None);
    let rows: Vec<Vec<Value>> = rs.rows().unwrap().map(<[Value]>::to_vec).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2][1], Value::Text("Rose".into()));
}

#[test]
fn getter_errors_have_their_codes() {
    let (_dir, s) = employees();
    s.insert(
        "EMPLOYEE",
        &bucket! { "NAME" => "Big", "AGE" => 1i64 << 40 },
    )
    .unwrap();
    let mut rs = s
        .query_sql(
            "SELECT ID, NAME, AGE, SALARY, CODES FROM EMPLOYEE WHERE ID IN (1, 3, 8) ORDER BY ID",
            &[],
        )
        .unwrap();
    assert!(rs.go_to_first_row().unwrap());
    // Text that is not a number.
    let err = rs.get_long("NAME").unwrap_err();
    assert_eq!(err.code(), 14800033);
    match err {
        Error::TypeMismatch {
            column,
            expected,
            found,
        } => {
            assert_eq!(column, "NAME");
            assert_eq!(expected, "integer");
            assert_eq!(found, "text");
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    assert_eq!(rs.get_double("NAME").unwrap_err().code(), 14800033);
    assert_eq!(rs.get_blob("ID").unwrap_err().code(), 14800033);
    assert_eq!(rs.get_long("SALARY").unwrap_err().code(), 14800033); // 100.5
    // Column out of range, by index and by name.
    assert_eq!(rs.get_long(5).unwrap_err().code(), 14800013);
    assert_eq!(rs.get_long("DEPT").unwrap_err().code(), 14800013);
    assert_eq!(rs.is_column_null(99).unwrap_err().code(), 14800013);
    assert!(matches!(
        rs.get_value("NOPE").unwrap_err(),
        Error::ColumnOutOfRange { .. }
    ));

    // NULL read as a plain type is a mismatch; as Option it is None.
    assert!(rs.go_to_next_row().unwrap());
    assert_eq!(rs.get_double("SALARY").unwrap_err().code(), 14800033);
    assert_eq!(rs.get_string("CODES").unwrap_err().code(), 14800033);
    assert_eq!(rs.get::<Option<String>>("CODES").unwrap(), None);

    // A value too big for i32.
    assert!(rs.go_to_next_row().unwrap());
    assert_eq!(rs.get_long("AGE").unwrap(), 1 << 40);
    assert_eq!(rs.get::<i32>("AGE").unwrap_err().code(), 14800033);
}

#[test]
fn closed_result_set_refuses_every_call() {
    let (_dir, s) = employees();
    let mut rs = s.query_sql(FIRST_THREE, &[]).unwrap();
    assert!(rs.go_to_first_row().unwrap());
    assert!(!rs.is_closed());
    rs.close();
    assert!(rs.is_closed());
    let codes = [
        rs.row_count().map(|_| ()).unwrap_err().code(),
        rs.column_count().map(|_| ()).unwrap_err().code(),
        rs.column_names().map(|_| ()).unwrap_err().code(),
        rs.get_column_index("ID").map(|_| ()).unwrap_err().code(),
        rs.row_index().map(|_| ()).unwrap_err().code(),
        rs.is_started().map(|_| ()).unwrap_err().code(),
        rs.is_ended().map(|_| ()).unwrap_err().code(),
        rs.is_at_first_row().map(|_| ()).unwrap_err().code(),
        rs.get_long(0).map(|_| ()).unwrap_err().code(),
        rs.get_row().map(|_| ()).unwrap_err().code(),
        rs.is_column_null(0).map(|_| ()).unwrap_err().code(),
        rs.rows().map(|_| ()).unwrap_err().code(),
        rs.go_to_first_row().map(|_| ()).unwrap_err().code(),
        rs.go_to_next_row().map(|_| ()).unwrap_err().code(),
        rs.go_to_row(0).map(|_| ()).unwrap_err().code(),
        rs.go_to(0).map(|_| ()).unwrap_err().code(),
    ];
    assert!(codes.iter().all(|c| *c == 14800014), "{codes:?}");
    // Other result sets and the store are unaffected.
    let mut other = s.query_sql(FIRST_THREE, &[]).unwrap();
    assert!(other.go_to_first_row().unwrap());
    assert_eq!(other.get_long(0).unwrap(), 1);
}

#[test]
fn closing_the_store_invalidates_result_sets_and_the_store() {
    let (_dir, s) = employees();
    let mut before = s.query_sql(FIRST_THREE, &[]).unwrap();
    assert!(before.go_to_first_row().unwrap());
    let clone = s.clone();
    s.close().unwrap();
    assert!(before.is_closed());
    assert_eq!(before.get_long(0).unwrap_err().code(), 14800014);
    assert_eq!(before.row_count().unwrap_err().code(), 14800014);
    assert_eq!(before.go_to_next_row().unwrap_err().code(), 14800014);
    assert!(matches!(
        before.get_long(0).unwrap_err(),
        Error::Closed { .. }
    ));

    let p = RdbPredicates::new("EMPLOYEE");
    let codes = [
        s.query(&p, &[]).map(|_| ()).unwrap_err().code(),
        s.query_sql("SELECT 1", &[]).map(|_| ()).unwrap_err().code(),
        s.insert("EMPLOYEE", &bucket! { "NAME" => "x" })
            .map(|_| ())
            .unwrap_err()
            .code(),
        s.update(&bucket! { "AGE" => 1 }, &p)
            .map(|_| ())
            .unwrap_err()
            .code(),
        s.delete(&p).map(|_| ()).unwrap_err().code(),
        s.execute("DELETE FROM EMPLOYEE", &[])
            .map(|_| ())
            .unwrap_err()
            .code(),
        s.execute_script("SELECT 1").map(|_| ()).unwrap_err().code(),
        s.version().map(|_| ()).unwrap_err().code(),
        s.begin_transaction().map(|_| ()).unwrap_err().code(),
        s.transaction(|_| Ok(())).unwrap_err().code(),
        s.on_data_change(peerlite::SubscribeType::Local, |_| {})
            .map(|_| ())
            .unwrap_err()
            .code(),
        clone.query(&p, &[]).map(|_| ()).unwrap_err().code(),
    ];
    assert!(codes.iter().all(|c| *c == 14800014), "{codes:?}");
    // Closing twice is harmless.
    s.close().unwrap();
}
