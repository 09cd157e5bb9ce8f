//! Helpers shared by the versioned-open tests.

use std::path::Path;

use peerlite::{Error, RdbStore, StoreConfig};
use peerlite_testkit::query_column;

/// Opens the database without a version (so nothing migrates) to look at it.
pub fn inspect(path: &Path) -> RdbStore {
    RdbStore::open(StoreConfig::new(path)).unwrap()
}

/// The column names of `table`, in order.
pub fn columns(store: &RdbStore, table: &str) -> Vec<String> {
    query_column::<String>(
        store,
        "SELECT name FROM pragma_table_info(?1)",
        &[peerlite::Value::from(table)],
    )
    .unwrap()
}

/// The `sql` of every schema object, sorted by name, without internal ones.
pub fn schema_sql(store: &RdbStore) -> Vec<(String, Option<String>)> {
    let mut rs = store
        .query_sql(
            "SELECT name, sql FROM sqlite_schema WHERE name NOT LIKE 'peerlite%' ORDER BY name",
            &[],
        )
        .unwrap();
    let mut out = Vec::new();
    while rs.go_to_next_row().unwrap() {
        out.push((rs.get(0).unwrap(), rs.get(1).unwrap()));
    }
    out
}

/// Unpacks a migration error into (step, from, to, source code).
pub fn migration_parts(err: &Error) -> (String, u32, u32, u32) {
    match err {
        Error::Migration {
            step,
            from,
            to,
            source,
        } => (step.clone(), *from, *to, source.code()),
        other => panic!("expected a migration error, got {other:?}"),
    }
}
