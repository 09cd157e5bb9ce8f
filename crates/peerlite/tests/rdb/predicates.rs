//! Every predicate operator against known rows, and attempts to inject SQL through names and
//! values.

use peerlite::{Error, RdbPredicates, RdbStore, Value, bucket};
use peerlite_testkit::{count_rows, query_column};

use crate::common::{all_names, employees, names, store};

fn emp() -> RdbPredicates {
    RdbPredicates::new("EMPLOYEE")
}

/// Names selected by `p`, in ID order.
fn matching(store: &RdbStore, p: RdbPredicates) -> Vec<String> {
    names(store, &p.order_by_asc("ID"))
}

const ALL: [&str; 7] = ["Lisa", "Tom", "Rose", "Jack", "50% off", "a_b", "axb"];

#[test]
fn comparisons() {
    let (_dir, s) = employees();
    assert_eq!(matching(&s, emp().equal_to("NAME", "Tom")), ["Tom"]);
    assert_eq!(matching(&s, emp().equal_to("AGE", 25)), ["Tom"]);
    // equal_to(NULL) means IS NULL, not `= NULL` (which matches nothing).
    assert_eq!(matching(&s, emp().equal_to("AGE", Value::Null)), ["Jack"]);
    assert_eq!(
        matching(&s, emp().not_equal_to("DEPT", "eng")),
        ["Rose", "Jack", "50% off", "axb"]
    );
    assert_eq!(
        matching(&s, emp().not_equal_to("AGE", Value::Null)),
        ["Lisa", "Tom", "Rose", "50% off", "a_b", "axb"]
    );
    assert_eq!(
        matching(&s, emp().greater_than("AGE", 30)),
        ["50% off", "axb"]
    );
    assert_eq!(
        matching(&s, emp().greater_than_or_equal_to("AGE", 30)),
        ["Rose", "50% off", "axb"]
    );
    assert_eq!(matching(&s, emp().less_than("AGE", 22)), ["Lisa"]);
    assert_eq!(
        matching(&s, emp().less_than_or_equal_to("AGE", 22)),
        ["Lisa", "a_b"]
    );
    assert_eq!(
        matching(&s, emp().greater_than("SALARY", 150.0)),
        ["Tom", "50% off"]
    );
    assert_eq!(
        matching(&s, emp().between("AGE", 22, 30)),
        ["Tom", "Rose", "a_b"]
    );
    assert_eq!(
        matching(&s, emp().not_between("AGE", 22, 30)),
        ["Lisa", "50% off", "axb"]
    );
    assert_eq!(
        matching(&s, emp().between("SALARY", 100.0, 150.0)),
        ["Lisa", "Jack", "a_b"]
    );
}

#[test]
fn patterns() {
    let (_dir, s) = employees();
    // LIKE is case-insensitive for ASCII; % and _ are wildcards.
    assert_eq!(
        matching(&s, emp().like("NAME", "%O%")),
        ["Tom", "Rose", "50% off"]
    );
    assert_eq!(matching(&s, emp().like("NAME", "l%")), ["Lisa"]);
    assert_eq!(matching(&s, emp().like("NAME", "a_b")), ["a_b", "axb"]);
    assert_eq!(
        matching(&s, emp().not_like("NAME", "%o%")),
        ["Lisa", "Jack", "a_b", "axb"]
    );
    // GLOB is case-sensitive; * and ? and classes.
    assert_eq!(
        matching(&s, emp().glob("NAME", "[A-Z]*")),
        ["Lisa", "Tom", "Rose", "Jack"]
    );
    assert!(matching(&s, emp().glob("NAME", "l*")).is_empty());
    assert_eq!(matching(&s, emp().glob("NAME", "a?b")), ["a_b", "axb"]);
    assert_eq!(
        matching(&s, emp().not_glob("NAME", "[A-Z]*")),
        ["50% off", "a_b", "axb"]
    );
}

#[test]
fn contains_begins_and_ends_with_match_wildcards_literally() {
    let (_dir, s) = employees();
    s.insert("EMPLOYEE", &bucket! { "NAME" => r"back\slash" })
        .unwrap();
    assert_eq!(matching(&s, emp().contains("NAME", "%")), ["50% off"]);
    assert_eq!(matching(&s, emp().contains("NAME", "_")), ["a_b"]);
    assert_eq!(matching(&s, emp().contains("NAME", "0% o")), ["50% off"]);
    assert_eq!(matching(&s, emp().contains("NAME", r"\")), [r"back\slash"]);
    assert_eq!(matching(&s, emp().begins_with("NAME", "a_")), ["a_b"]);
    assert_eq!(matching(&s, emp().begins_with("NAME", "50%")), ["50% off"]);
    assert!(matching(&s, emp().begins_with("NAME", "%")).is_empty());
    assert_eq!(matching(&s, emp().ends_with("NAME", "_b")), ["a_b"]);
    assert_eq!(matching(&s, emp().ends_with("NAME", "% off")), ["50% off"]);
    assert!(matching(&s, emp().ends_with("NAME", "%")).is_empty());
    // Case-insensitive like LIKE.
    assert_eq!(matching(&s, emp().contains("NAME", "OS")), ["Rose"]);
    // The empty text matches everything.
    assert_eq!(matching(&s, emp().contains("NAME", "")).len(), 8);
}

#[test]
fn in_not_in_and_nulls() {
    let (_dir, s) = employees();
    assert_eq!(
        matching(&s, emp().in_("AGE", [18, 40, 99])),
        ["Lisa", "50% off"]
    );
    assert_eq!(
        matching(&s, emp().in_("NAME", ["Tom", "Jack", "Nobody"])),
        ["Tom", "Jack"]
    );
    assert!(matching(&s, emp().in_("AGE", Vec::<i64>::new())).is_empty());
    assert_eq!(
        matching(&s, emp().not_in("AGE", [18, 40])),
        ["Tom", "Rose", "a_b", "axb"]
    );
    // An empty NOT IN list matches every row, even those with NULL.
    assert_eq!(matching(&s, emp().not_in("AGE", Vec::<i64>::new())), ALL);
    assert_eq!(matching(&s, emp().is_null("SALARY")), ["Rose"]);
    assert_eq!(matching(&s, emp().is_null("DEPT")), ["a_b"]);
    assert_eq!(
        matching(&s, emp().is_not_null("DEPT")),
        ["Lisa", "Tom", "Rose", "Jack", "50% off", "axb"]
    );
    assert_eq!(matching(&s, emp().is_not_null("CODES")), ["Lisa"]);
}

#[test]
fn and_or_and_wraps() {
    let (_dir, s) = employees();
    assert_eq!(
        matching(
            &s,
            emp().equal_to("DEPT", "eng").or().equal_to("DEPT", "ops")
        ),
        ["Lisa", "Tom", "Rose", "Jack"]
    );
    // Conditions without a connector are ANDed.
    assert_eq!(
        matching(&s, emp().equal_to("DEPT", "eng").greater_than("AGE", 20)),
        ["Tom"]
    );
    // AND binds tighter than OR: (eng AND age > 20) OR Jack ...
    assert_eq!(
        matching(
            &s,
            emp()
                .equal_to("DEPT", "eng")
                .and()
                .greater_than("AGE", 20)
                .or()
                .equal_to("NAME", "Jack")
        ),
        ["Tom", "Jack"]
    );
    // ... and a wrap changes that: eng AND (age > 20 OR Jack).
    assert_eq!(
        matching(
            &s,
            emp()
                .equal_to("DEPT", "eng")
                .begin_wrap()
                .greater_than("AGE", 20)
                .or()
                .equal_to("NAME", "Jack")
                .end_wrap()
        ),
        ["Tom"]
    );
    // Nested wraps.
    assert_eq!(
        matching(
            &s,
            emp()
                .begin_wrap()
                .begin_wrap()
                .equal_to("DEPT", "sales")
                .and()
                .less_than("SALARY", 100.0)
                .end_wrap()
                .or()
                .is_null("DEPT")
                .end_wrap()
                .or()
                .equal_to("NAME", "Lisa")
        ),
        ["Lisa", "a_b", "axb"]
    );
}

#[test]
fn malformed_chains_are_refused() {
    let (_dir, s) = employees();
    let bad = [
        emp().or().equal_to("ID", 1),
        emp().equal_to("ID", 1).and(),
        emp().begin_wrap().end_wrap(),
        emp().begin_wrap().equal_to("ID", 1),
        emp().equal_to("ID", 1).end_wrap(),
        emp().equal_to("ID", 1).or().and().equal_to("ID", 2),
    ];
    for p in bad {
        let err = s.query(&p, &[]).unwrap_err();
        assert_eq!(err.code(), 14800001, "{p:?}");
        assert_eq!(s.delete(&p).unwrap_err().code(), 14800001, "{p:?}");
    }
    assert_eq!(count_rows(&s, "EMPLOYEE").unwrap(), 7);
}

#[test]
fn ordering_limit_offset_distinct_group_by() {
    let (_dir, s) = employees();
    assert_eq!(
        names(&s, &emp().is_not_null("AGE").order_by_desc("AGE")),
        ["50% off", "axb", "Rose", "Tom", "a_b", "Lisa"]
    );
    assert_eq!(
        names(&s, &emp().is_not_null("AGE").order_by_asc("AGE")),
        ["Lisa", "a_b", "Tom", "Rose", "axb", "50% off"]
    );
    // Several keys: DEPT ascending (NULL first), then SALARY descending (NULL last).
    assert_eq!(
        names(&s, &emp().order_by_asc("DEPT").order_by_desc("SALARY")),
        ["a_b", "Tom", "Lisa", "Jack", "Rose", "50% off", "axb"]
    );
    assert_eq!(
        names(&s, &emp().order_by_asc("ID").limit(2).offset(3)),
        ["Jack", "50% off"]
    );
    assert_eq!(
        names(&s, &emp().order_by_asc("ID").limit(2)),
        ["Lisa", "Tom"]
    );
    assert_eq!(
        names(&s, &emp().order_by_asc("ID").offset(5)),
        ["a_b", "axb"]
    );
    assert!(names(&s, &emp().limit(0)).is_empty());
    assert_eq!(
        s.query(&emp().offset(-1), &[]).unwrap_err().code(),
        14800001
    );

    let depts = |p: RdbPredicates| -> Vec<Option<String>> {
        let mut rs = s.query(&p, &["DEPT"]).unwrap();
        let mut out = Vec::new();
        while rs.go_to_next_row().unwrap() {
            out.push(rs.get::<Option<String>>("DEPT").unwrap());
        }
        out
    };
    let expected = vec![
        None,
        Some("eng".to_owned()),
        Some("ops".to_owned()),
        Some("sales".to_owned()),
    ];
    assert_eq!(depts(emp().distinct().order_by_asc("DEPT")), expected);
    assert_eq!(
        depts(emp().group_by(&["DEPT"]).order_by_asc("DEPT")),
        expected
    );
    assert_eq!(depts(emp().order_by_asc("DEPT")).len(), 7);
    // Group by two columns.
    let mut rs = s
        .query(&emp().group_by(&["DEPT", "AGE"]), &["DEPT", "AGE"])
        .unwrap();
    assert_eq!(rs.row_count().unwrap(), 7);
    rs.close();
}

#[test]
fn column_and_table_names_resolve_case_insensitively() {
    let (_dir, s) = employees();
    assert_eq!(
        names(&s, &RdbPredicates::new("employee").equal_to("name", "Tom")),
        ["Tom"]
    );
    let mut rs = s.query(&emp().equal_to("ID", 1), &["name", "Age"]).unwrap();
    assert_eq!(rs.column_names().unwrap(), ["NAME", "AGE"]);
    assert!(rs.go_to_first_row().unwrap());
    // rowid is accepted on rowid tables.
    assert_eq!(names(&s, &emp().equal_to("rowid", 2)), ["Tom"]);
}

fn assert_unknown_column(err: &Error, hostile: &str) {
    assert_eq!(err.code(), 14800001, "{err}");
    match err {
        Error::UnknownColumn { column, .. } => assert_eq!(column, hostile),
        other => panic!("expected UnknownColumn, got {other:?}"),
    }
}

#[test]
fn hostile_column_names_are_rejected_not_spliced() {
    let (_dir, s) = employees();
    for hostile in [
        "NAME; DROP TABLE EMPLOYEE; --",
        r#"x" OR "1"="1"#,
        "NAME) OR (1=1",
        "1=1 --",
        "*",
    ] {
        assert_unknown_column(
            &s.query(&emp().equal_to(hostile, 1), &[]).unwrap_err(),
            hostile,
        );
        assert_unknown_column(&s.query(&emp(), &[hostile]).unwrap_err(), hostile);
        assert_unknown_column(
            &s.query(&emp().order_by_asc(hostile), &[]).unwrap_err(),
            hostile,
        );
        assert_unknown_column(
            &s.query(&emp().group_by(&[hostile]), &[]).unwrap_err(),
            hostile,
        );
        assert_unknown_column(
            &s.query(&emp().like(hostile, "%"), &[]).unwrap_err(),
            hostile,
        );
        assert_unknown_column(&s.delete(&emp().equal_to(hostile, 1)).unwrap_err(), hostile);
        assert_unknown_column(
            &s.update(&bucket! { "AGE" => 1 }, &emp().is_null(hostile))
                .unwrap_err(),
            hostile,
        );
        assert_unknown_column(
            &s.update(&ValuesBucketExt::one(hostile, 1), &emp().equal_to("ID", 1))
                .unwrap_err(),
            hostile,
        );
        assert_unknown_column(
            &s.insert("EMPLOYEE", &ValuesBucketExt::one(hostile, 1))
                .unwrap_err(),
            hostile,
        );
    }
    // The table is intact.
    assert_eq!(all_names(&s), ALL);
    assert_eq!(
        query_column::<i64>(&s, "SELECT AGE FROM EMPLOYEE WHERE ID = 1", &[]).unwrap(),
        [18]
    );
}

/// A bucket with one (possibly hostile) column name.
struct ValuesBucketExt;
impl ValuesBucketExt {
    fn one(column: &str, value: i64) -> peerlite::ValuesBucket {
        peerlite::ValuesBucket::new().put(column.to_owned(), value)
    }
}

#[test]
fn hostile_table_names_are_rejected() {
    let (_dir, s) = employees();
    for hostile in [
        "EMPLOYEE; DROP TABLE EMPLOYEE; --",
        r#"EMPLOYEE" WHERE 1=1; --"#,
        "EMPLOYEE --",
        "sqlite_schema; DELETE FROM EMPLOYEE",
    ] {
        let p = RdbPredicates::new(hostile);
        for err in [
            s.query(&p, &[]).unwrap_err(),
            s.delete(&p).unwrap_err(),
            s.update(&bucket! { "AGE" => 1 }, &p).unwrap_err(),
            s.insert(hostile, &bucket! { "NAME" => "x" }).unwrap_err(),
        ] {
            assert_eq!(err.code(), 14800001, "{hostile}: {err}");
            assert!(
                matches!(&err, Error::UnknownTable { table, .. } if table == hostile),
                "{err:?}"
            );
        }
    }
    assert_eq!(all_names(&s), ALL);
}

#[test]
fn hostile_values_are_bound_and_match_nothing() {
    let (_dir, s) = employees();
    for value in [
        "' OR '1'='1",
        "Tom' OR 'a'='a",
        "\" OR \"1\"=\"1",
        "1; DROP TABLE EMPLOYEE; --",
        "') OR 1=1 --",
    ] {
        assert!(
            matching(&s, emp().equal_to("NAME", value)).is_empty(),
            "{value}"
        );
        assert!(
            matching(&s, emp().like("NAME", value)).is_empty(),
            "{value}"
        );
        assert!(
            matching(&s, emp().contains("NAME", value)).is_empty(),
            "{value}"
        );
        assert!(
            matching(&s, emp().in_("NAME", [value])).is_empty(),
            "{value}"
        );
        assert!(
            matching(&s, emp().equal_to("AGE", value)).is_empty(),
            "{value}"
        );
        assert_eq!(
            s.update(&bucket! { "AGE" => 0 }, &emp().equal_to("NAME", value))
                .unwrap(),
            0
        );
        assert_eq!(s.delete(&emp().equal_to("NAME", value)).unwrap(), 0);
    }
    // A hostile value is stored verbatim.
    let hostile = "Robert'); DROP TABLE EMPLOYEE;--";
    s.insert("EMPLOYEE", &bucket! { "NAME" => hostile })
        .unwrap();
    assert_eq!(matching(&s, emp().equal_to("NAME", hostile)), [hostile]);
    assert_eq!(count_rows(&s, "EMPLOYEE").unwrap(), 8);
}

#[test]
fn update_and_delete_with_predicates() {
    let (_dir, s) = employees();
    // Update the top earner only (50% off, ID 5, earns 300).
    let n = s
        .update(
            &bucket! { "NAME" => "Top" },
            &emp().is_not_null("SALARY").order_by_desc("SALARY").limit(1),
        )
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        query_column::<i64>(&s, "SELECT ID FROM EMPLOYEE WHERE NAME = 'Top'", &[]).unwrap(),
        [5]
    );
    let n = s
        .update(
            &bucket! { "SALARY" => 999.0 },
            &emp().equal_to("DEPT", "ops"),
        )
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        query_column::<f64>(
            &s,
            "SELECT SALARY FROM EMPLOYEE WHERE DEPT = 'ops' ORDER BY ID",
            &[]
        )
        .unwrap(),
        [999.0, 999.0]
    );
    // Nothing else changed.
    assert_eq!(
        query_column::<Option<f64>>(
            &s,
            "SELECT SALARY FROM EMPLOYEE WHERE DEPT IS NOT 'ops' ORDER BY ID",
            &[]
        )
        .unwrap(),
        [
            Some(100.5),
            Some(200.0),
            Some(300.0),
            Some(120.0),
            Some(90.0)
        ]
    );
    let n = s.delete(&emp().is_null("DEPT")).unwrap();
    assert_eq!(n, 1);
    let n = s
        .delete(&emp().equal_to("DEPT", "sales").or().equal_to("DEPT", "eng"))
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(count_rows(&s, "EMPLOYEE").unwrap(), 2);
    // distinct / group_by make no sense for writes.
    assert_eq!(s.delete(&emp().distinct()).unwrap_err().code(), 14800001);
    assert_eq!(
        s.update(&bucket! { "AGE" => 1 }, &emp().group_by(&["DEPT"]))
            .unwrap_err()
            .code(),
        14800001
    );
    // An update must set something.
    assert_eq!(s.update(&bucket! {}, &emp()).unwrap_err().code(), 14800001);
    assert_eq!(count_rows(&s, "EMPLOYEE").unwrap(), 2);
}

#[test]
fn delete_oldest_n_with_order_by_and_limit() {
    let (_dir, s) = store();
    s.execute(
        "CREATE TABLE log(id INTEGER PRIMARY KEY, created INTEGER NOT NULL, msg TEXT)",
        &[],
    )
    .unwrap();
    // Inserted out of time order, so rowid order differs from age order.
    let created = [50, 10, 70, 30, 20, 60, 40];
    for (i, c) in created.iter().enumerate() {
        s.insert(
            "log",
            &bucket! { "created" => *c, "msg" => format!("m{i}") },
        )
        .unwrap();
    }
    let n = s
        .delete(&RdbPredicates::new("log").order_by_asc("created").limit(3))
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        query_column::<i64>(&s, "SELECT created FROM log ORDER BY created", &[]).unwrap(),
        [40, 50, 60, 70]
    );
    // With a filter and an offset: of the rows created after 45, skip the oldest and delete
    // the next one.
    let n = s
        .delete(
            &RdbPredicates::new("log")
                .greater_than("created", 45)
                .order_by_asc("created")
                .limit(1)
                .offset(1),
        )
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        query_column::<i64>(&s, "SELECT created FROM log ORDER BY created", &[]).unwrap(),
        [40, 50, 70]
    );

    // WITHOUT ROWID tables cannot take order/limit in a write.
    s.execute("CREATE TABLE w(k TEXT PRIMARY KEY, v) WITHOUT ROWID", &[])
        .unwrap();
    s.insert("w", &bucket! { "k" => "a", "v" => 1 }).unwrap();
    let err = s
        .delete(&RdbPredicates::new("w").order_by_asc("k").limit(1))
        .unwrap_err();
    assert_eq!(err.code(), 14800001);
    assert_eq!(count_rows(&s, "w").unwrap(), 1);
}
