//! Fixtures shared by the sync schema tests: a store named like the seed's (`RdbTest.db`), the
//! seed's table definitions, a small JSON builder for schemas, and the assertions every
//! rejected schema must pass.

use peerlite::changes::{ChangeRecord, DistributedConfig, DistributedType, TableMeta};
use peerlite::schema::{Rule, SchemaProblem, Severity, SyncSchema};
use peerlite::{Error, RdbStore, StoreConfig, Value, ValuesBucket};
use peerlite_testkit::{TempDir, all_rows, scalar};

/// The seed's bundle name.
pub const BUNDLE: &str = "com.example.rdbDataSync";

/// The seed's database name (`RdbTest.db` ↔ `"dbName": "RdbTest"`).
pub const DB_NAME: &str = "RdbTest";

/// The seed's single-version EMPLOYEE table: auto-increment key, NAME as the conflict column.
pub const EMPLOYEE_SV: &str = "CREATE TABLE IF NOT EXISTS EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL UNIQUE, AGE INTEGER, SALARY REAL, CODES BLOB)";

/// The seed's EMPLOYEE2 table: NAME is the (non-auto-increment) primary key.
pub const EMPLOYEE2_SV: &str = "CREATE TABLE IF NOT EXISTS EMPLOYEE2 (NAME TEXT NOT NULL UNIQUE, AGE INTEGER, SALARY REAL, CODES BLOB, PRIMARY KEY (NAME))";

/// The seed's device-collaboration EMPLOYEE table (NAME is not UNIQUE there).
pub const EMPLOYEE_DC: &str = "CREATE TABLE IF NOT EXISTS EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER, SALARY REAL, CODES BLOB)";

/// A fresh store at `<tmp>/RdbTest.db`, device id `phone`.
pub fn store() -> (TempDir, RdbStore) {
    store_named("RdbTest.db")
}

/// A fresh store at `<tmp>/<file>`, device id `phone`.
pub fn store_named(file: &str) -> (TempDir, RdbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RdbStore::open(StoreConfig::new(dir.path().join(file)).device_id("phone")).unwrap();
    (dir, store)
}

/// A fresh `RdbTest` store with the given tables created.
pub fn store_with(ddl: &[&str]) -> (TempDir, RdbStore) {
    let (dir, store) = store();
    for sql in ddl {
        store.execute(sql, &[]).unwrap();
    }
    (dir, store)
}

/// Parses schema text that must be valid JSON of the format.
pub fn parse(json: &str) -> SyncSchema {
    SyncSchema::parse(json).unwrap_or_else(|e| panic!("schema should parse: {e}\n{json}"))
}

/// One field of a table entry: `(columnName, type, primaryKey, autoIncrement, notNull)`.
pub type F<'a> = (&'a str, &'a str, bool, bool, bool);

/// The JSON of one table entry. `sync: None` leaves `deviceSyncFields` out.
pub fn table_json(name: &str, sync: Option<&[&str]>, fields: &[F<'_>]) -> String {
    let fields: Vec<String> = fields
        .iter()
        .map(|(c, t, pk, ai, nn)| {
            format!(
                r#"{{"columnName": "{c}", "type": "{t}", "primaryKey": {pk}, "notNull": {nn}, "autoIncrement": {ai}}}"#
            )
        })
        .collect();
    let sync = match sync {
        Some(cols) => {
            let cols: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
            format!(r#""deviceSyncFields": [{}], "#, cols.join(", "))
        }
        None => String::new(),
    };
    format!(
        r#"{{"tableName": "{name}", {sync}"fields": [{}]}}"#,
        fields.join(", ")
    )
}

/// A whole schema file with one database entry named `db` holding `tables` (JSON of entries).
pub fn schema_json_for(db: &str, version: i64, tables: &[String]) -> String {
    format!(
        r#"{{"dbSchema": [{{"version": {version}, "bundleName": "{BUNDLE}", "dbName": "{db}", "tables": [{}]}}]}}"#,
        tables.join(", ")
    )
}

/// A parsed schema for `RdbTest` holding `tables`.
pub fn schema(version: i64, tables: &[String]) -> SyncSchema {
    parse(&schema_json_for(DB_NAME, version, tables))
}

/// The schema of a single table of `RdbTest`.
pub fn one_table(version: i64, name: &str, sync: Option<&[&str]>, fields: &[F<'_>]) -> SyncSchema {
    schema(version, &[table_json(name, sync, fields)])
}

/// Makes `tables` single-version distributed with `schema`.
pub fn set_single(store: &RdbStore, tables: &[&str], schema: &SyncSchema) -> peerlite::Result<()> {
    store.set_distributed_tables(
        tables,
        DistributedType::Device,
        &DistributedConfig::single_version(schema.clone()),
    )
}

/// Makes `tables` device-collaboration distributed (no schema).
pub fn set_collab(store: &RdbStore, tables: &[&str]) -> peerlite::Result<()> {
    store.set_distributed_tables(
        tables,
        DistributedType::Device,
        &DistributedConfig::default(),
    )
}

/// The rules of `problems`, in order.
pub fn rules(problems: &[SchemaProblem]) -> Vec<Rule> {
    problems.iter().map(|p| p.rule).collect()
}

/// The rules of the errors among `problems`, in order.
pub fn error_rules(problems: &[SchemaProblem]) -> Vec<Rule> {
    problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| p.rule)
        .collect()
}

/// The problems of an `Error::SyncSchema`; panics on any other error.
pub fn schema_problems(err: &Error) -> &[SchemaProblem] {
    match err {
        Error::SyncSchema { problems } => problems,
        other => panic!(
            "expected Error::SyncSchema, got {other:?} (code {})",
            other.code()
        ),
    }
}

/// The one problem about `rule` (an error) among `problems`.
pub fn problem(problems: &[SchemaProblem], rule: Rule) -> &SchemaProblem {
    let found: Vec<&SchemaProblem> = problems.iter().filter(|p| p.rule == rule).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {rule:?} problem in {problems:#?}"
    );
    found[0]
}

/// Everything a store shows about distribution, to prove a failed call changed none of it.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub tables: Vec<TableMeta>,
    pub changes: Vec<ChangeRecord>,
    pub triggers: Vec<Vec<Value>>,
}

/// The store's distributed tables, captured changes and triggers.
pub fn snapshot(store: &RdbStore) -> Snapshot {
    Snapshot {
        tables: store.distributed_tables().unwrap(),
        changes: store.changes(None, 0).unwrap(),
        triggers: triggers(store),
    }
}

/// Names and SQL of every trigger in the database.
pub fn triggers(store: &RdbStore) -> Vec<Vec<Value>> {
    all_rows(
        store,
        "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name",
        &[],
    )
    .unwrap()
}

/// Asserts that `schema` is refused for `tables` because of `rule` (an error with that code,
/// reported both by `check_sync_schema` and by `set_distributed_tables`), and that the failed
/// call changed nothing. Returns the problems `set_distributed_tables` reported.
pub fn assert_rejected(
    store: &RdbStore,
    tables: &[&str],
    schema: &SyncSchema,
    rule: Rule,
) -> Vec<SchemaProblem> {
    let checked = store.check_sync_schema(schema).unwrap();
    let p = problem(&checked, rule);
    assert_eq!(p.severity, Severity::Error, "{p}");
    assert_eq!(p.code(), rule.code());
    let before = snapshot(store);
    let err = set_single(store, tables, schema).expect_err("the schema must be refused");
    let problems = schema_problems(&err).to_vec();
    let p = problem(&problems, rule);
    assert_eq!(p.severity, Severity::Error, "{p}");
    assert_eq!(p.code(), rule.code());
    assert!(
        (17030001..=17030023).contains(&err.code()),
        "code {}",
        err.code()
    );
    assert_eq!(
        snapshot(store),
        before,
        "a refused schema must change nothing"
    );
    problems
}

/// Asserts that no table is distributed: no registry entries, no triggers, and a write to
/// `table` is not captured.
pub fn assert_nothing_distributed(store: &RdbStore, table: &str, row: &ValuesBucket) {
    assert!(store.distributed_tables().unwrap().is_empty());
    assert!(triggers(store).is_empty(), "{:?}", triggers(store));
    store.insert(table, row).unwrap();
    assert!(store.changes(Some(table), 0).unwrap().is_empty());
    assert!(store.changes(None, 0).unwrap().is_empty());
}

/// The registry entry of `table`.
pub fn meta(store: &RdbStore, table: &str) -> TableMeta {
    store
        .distributed_tables()
        .unwrap()
        .into_iter()
        .find(|m| m.name == table)
        .unwrap_or_else(|| panic!("{table} is not distributed"))
}

/// The change record of the row whose identity is `key`.
pub fn change_of(store: &RdbStore, table: &str, key: impl Into<Value>) -> ChangeRecord {
    let key = key.into();
    let found: Vec<ChangeRecord> = store
        .changes(Some(table), 0)
        .unwrap()
        .into_iter()
        .filter(|c| c.key == key)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// `SELECT count(*) FROM table`.
pub fn count(store: &RdbStore, table: &str) -> i64 {
    scalar(store, &format!("SELECT count(*) FROM \"{table}\"")).unwrap()
}
