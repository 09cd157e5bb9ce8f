//! Fixtures shared by the sync command tests: the binary, output helpers, databases set up
//! through `peerlite sql` or the library, and sync schemas after seed 002's examples.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

pub use crate::support::{json_of, peerlite, run, sql, stdout_of};

/// Writes `text` to `dir/name`, returning the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `SELECT` rows through `peerlite --json sql`, as objects keyed by column name (these
/// queries name each column once).
pub fn query(db: &Path, select: &str) -> Json {
    let out = json_of(peerlite().arg("--json").arg("sql").arg(db).arg(select));
    let columns = out["columns"].as_array().unwrap();
    let rows = out["rows"].as_array().unwrap().iter().map(|row| {
        let cells = columns.iter().zip(row.as_array().unwrap());
        let object: serde_json::Map<String, Json> = cells
            .map(|(c, v)| (c.as_str().unwrap().to_owned(), v.clone()))
            .collect();
        Json::Object(object)
    });
    Json::Array(rows.collect())
}

/// The names of the distributed tables of `db` (not device tables), sorted.
pub fn distributed(db: &Path) -> Vec<String> {
    let store = peerlite::RdbStore::open(peerlite::StoreConfig::new(db)).unwrap();
    let mut names: Vec<String> = store
        .distributed_tables()
        .unwrap()
        .into_iter()
        .filter(|m| m.base.is_none())
        .map(|m| m.name)
        .collect();
    names.sort();
    names
}

/// A fingerprint of the database file and its WAL (an absent or empty WAL alike), for
/// "changed nothing" checks: (length, hash) of each.
pub fn file_bytes(db: &Path) -> ((usize, u64), (usize, u64)) {
    use std::hash::{Hash, Hasher};
    let print = |bytes: Vec<u8>| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        (bytes.len(), h.finish())
    };
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    (
        print(std::fs::read(db).unwrap()),
        print(std::fs::read(wal).unwrap_or_default()),
    )
}

/// `sqlite_schema` of `db`, read with plain SQLite.
pub fn schema_rows(db: &Path) -> Vec<(String, String, Option<String>)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// The seed's first table: auto-increment key, NAME the UNIQUE conflict column.
pub const CREATE_EMPLOYEE: &str = "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL UNIQUE, AGE INTEGER, SALARY REAL, CODES BLOB)";

/// The seed's second table: NAME the (text) primary key.
pub const CREATE_EMPLOYEE2: &str = "CREATE TABLE EMPLOYEE2 (NAME TEXT NOT NULL UNIQUE, AGE INTEGER, SALARY REAL, CODES BLOB, PRIMARY KEY (NAME))";

/// One field of a sync schema.
pub fn field(name: &str, ty: &str, pk: bool, not_null: bool, auto: bool) -> Json {
    serde_json::json!({
        "columnName": name, "type": ty, "primaryKey": pk, "notNull": not_null, "autoIncrement": auto,
    })
}

/// One table entry of a sync schema.
pub fn table(name: &str, sync_fields: &[&str], fields: Vec<Json>) -> Json {
    serde_json::json!({ "tableName": name, "deviceSyncFields": sync_fields, "fields": fields })
}

/// A whole sync_schema.json for database `db_name` at `version`.
pub fn schema(db_name: &str, version: i64, tables: Vec<Json>) -> String {
    serde_json::json!({
        "dbSchema": [{
            "version": version,
            "bundleName": "com.example.rdbDataSync",
            "dbName": db_name,
            "tables": tables,
        }]
    })
    .to_string()
}

/// The seed's valid EMPLOYEE entry.
pub fn employee_table() -> Json {
    table(
        "EMPLOYEE",
        &["NAME", "AGE", "SALARY", "CODES"],
        vec![
            field("ID", "Integer", false, false, true),
            field("NAME", "Text", true, true, false),
            field("AGE", "Integer", false, false, false),
            field("SALARY", "Float", false, false, false),
            field("CODES", "Blob", false, false, false),
        ],
    )
}

/// The seed's valid EMPLOYEE2 entry.
pub fn employee2_table() -> Json {
    table(
        "EMPLOYEE2",
        &["NAME", "AGE", "SALARY", "CODES"],
        vec![
            field("NAME", "Text", true, true, false),
            field("AGE", "Integer", false, false, false),
            field("SALARY", "Float", false, false, false),
            field("CODES", "Blob", false, false, false),
        ],
    )
}

/// `RdbTest.db` in `dir` with both of the seed's tables, and the seed's valid schema for it.
pub fn seed_db(dir: &Path) -> (PathBuf, PathBuf) {
    let db = dir.join("RdbTest.db");
    sql(&db, &[CREATE_EMPLOYEE, CREATE_EMPLOYEE2]);
    let file = write(
        dir,
        "sync_schema.json",
        &schema("RdbTest", 0, vec![employee_table(), employee2_table()]),
    );
    (db, file)
}
