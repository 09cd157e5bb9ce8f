//! Helpers: error codes, a snapshot of everything peerlite keeps in a database (read with a
//! plain connection), and the rows of a table.

use std::path::Path;

use peerlite::{RdbStore, Value};

/// The code of a failed call (0 when it succeeded).
pub fn code<T: std::fmt::Debug>(r: peerlite::Result<T>) -> u32 {
    r.map_or_else(|e| e.code(), |_| 0)
}

/// The schema and the content of every `peerlite_*` / `sqlite_*` table, as text.
pub fn snapshot(db: &Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut out: Vec<String> = Vec::new();
    let objects: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for (kind, name, sql) in objects {
        out.push(format!("{kind} {name}: {sql:?}"));
        let own = name.starts_with("peerlite_") || name.starts_with("sqlite_");
        if kind == "table" && own {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
            let width = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                let cells: Vec<String> = (0..width)
                    .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                    .collect();
                out.push(format!("  {name}: {}", cells.join(", ")));
            }
        }
    }
    out
}

/// Every row of `table`, ordered by its first column.
pub fn rows(store: &RdbStore, table: &str) -> Vec<Vec<Value>> {
    let mut rs = store
        .query_sql(&format!("SELECT * FROM \"{table}\" ORDER BY 1"), &[])
        .unwrap();
    let mut out = Vec::new();
    while rs.go_to_next_row().unwrap() {
        out.push(
            (0..rs.column_count().unwrap())
                .map(|i| rs.get_value(i).unwrap())
                .collect(),
        );
    }
    out
}
