//! Fixtures shared by the relational-store tests.

use peerlite::{RdbPredicates, RdbStore, StoreConfig, Value, bucket};
use peerlite_testkit::{TempDir, temp_store_path};

/// ArkData's sample table, plus a department column for grouping.
pub const CREATE_EMPLOYEE: &str = "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER, SALARY REAL, CODES BLOB, DEPT TEXT)";

/// A fresh empty store.
pub fn store() -> (TempDir, RdbStore) {
    let (dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(path)).unwrap();
    (dir, store)
}

/// A store with EMPLOYEE holding these rows (IDs 1..=7):
///
/// | ID | NAME    | AGE  | SALARY | CODES   | DEPT  |
/// |----|---------|------|--------|---------|-------|
/// | 1  | Lisa    | 18   | 100.5  | [1,2,3] | eng   |
/// | 2  | Tom     | 25   | 200.0  | NULL    | eng   |
/// | 3  | Rose    | 30   | NULL   | NULL    | ops   |
/// | 4  | Jack    | NULL | 150.0  | NULL    | ops   |
/// | 5  | 50% off | 40   | 300.0  | NULL    | sales |
/// | 6  | a_b     | 22   | 120.0  | NULL    | NULL  |
/// | 7  | axb     | 35   | 90.0   | NULL    | sales |
pub fn employees() -> (TempDir, RdbStore) {
    let (dir, store) = store();
    store.execute(CREATE_EMPLOYEE, &[]).unwrap();
    let rows = [
        bucket! { "NAME" => "Lisa", "AGE" => 18, "SALARY" => 100.5, "CODES" => vec![1u8, 2, 3], "DEPT" => "eng" },
        bucket! { "NAME" => "Tom", "AGE" => 25, "SALARY" => 200.0, "DEPT" => "eng" },
        bucket! { "NAME" => "Rose", "AGE" => 30, "DEPT" => "ops" },
        bucket! { "NAME" => "Jack", "SALARY" => 150.0, "DEPT" => "ops" },
        bucket! { "NAME" => "50% off", "AGE" => 40, "SALARY" => 300.0, "DEPT" => "sales" },
        bucket! { "NAME" => "a_b", "AGE" => 22, "SALARY" => 120.0 },
        bucket! { "NAME" => "axb", "AGE" => 35, "SALARY" => 90.0, "DEPT" => "sales" },
    ];
    assert_eq!(store.batch_insert("EMPLOYEE", &rows).unwrap(), 7);
    (dir, store)
}

/// The NAME column of every row the predicates select, in result order.
pub fn names(store: &RdbStore, predicates: &RdbPredicates) -> Vec<String> {
    let mut rs = store.query(predicates, &["NAME"]).unwrap();
    let mut out = Vec::new();
    while rs.go_to_next_row().unwrap() {
        out.push(rs.get_string(0).unwrap());
    }
    out
}

/// All NAMEs of EMPLOYEE in ID order.
pub fn all_names(store: &RdbStore) -> Vec<String> {
    names(store, &RdbPredicates::new("EMPLOYEE").order_by_asc("ID"))
}

/// Rows of a query as plain values.
pub fn rows(store: &RdbStore, sql: &str) -> Vec<Vec<Value>> {
    peerlite_testkit::all_rows(store, sql, &[]).unwrap()
}
