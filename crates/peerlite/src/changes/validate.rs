//! Checking a sync schema against the database: every rule of seed 002 for every table the
//! schema describes, plus what only the data can tell (NULLs in the conflict column). One
//! path serves `set_distributed_tables` (which refuses on any error) and `peerlite
//! schema-check` (which lists them all and changes nothing).

use rusqlite::Connection;

use super::registry::{self, TableMeta};
use crate::error::{Error, Result};
use crate::schema::{
    Rule, SchemaProblem, Severity, SyncSchema, TableSchema, check_table, table_facts,
};
use crate::store::RdbStore;
use crate::store::schema::quote_ident;

/// The problems of one table's entry (`version` is its database entry's), checked against
/// the table and against what the store distributed before (`previous`).
pub(crate) fn table_problems(
    conn: &Connection,
    entry: &TableSchema,
    version: i64,
    previous: Option<&TableMeta>,
) -> rusqlite::Result<Vec<SchemaProblem>> {
    let table = entry.table_name.as_str();
    let facts = table_facts(conn, table)?;
    let prev = previous.and_then(|p| p.schema.as_ref().map(|s| (s, p.schema_version)));
    let mut problems = check_table(entry, version, &facts, prev);
    if let [conflict] = crate::schema::conflict_columns(entry, &facts).as_slice()
        && facts.columns.iter().any(|c| c.name == *conflict)
    {
        let nulls: i64 = conn.query_row(
            &format!(
                "SELECT count(*) FROM {} WHERE {} IS NULL",
                quote_ident(table),
                quote_ident(conflict)
            ),
            [],
            |r| r.get(0),
        )?;
        if nulls > 0 {
            problems.push(SchemaProblem::error(
                Rule::ConflictColumnNulls,
                table,
                Some(conflict),
                format!("{nulls} existing row(s) have NULL in the conflict column"),
            ));
        }
    }
    problems.sort_by_key(|p| p.severity == Severity::Warning);
    Ok(problems)
}

/// `table` as the database spells it (SQLite matches table names case-insensitively).
pub(crate) fn table_name(conn: &Connection, table: &str) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        [table],
        |r| r.get(0),
    )
    .optional()
}

/// The sync-schema problems of distributing `table` as `config` says (none for device
/// collaboration, which ignores the schema; the remaining checks happen as it is distributed).
pub(crate) fn problems_before_distributing(
    conn: &Connection,
    table: &str,
    config: &super::DistributedConfig,
    db_name: &str,
    previous: Option<&TableMeta>,
) -> rusqlite::Result<Vec<SchemaProblem>> {
    let Some(schema) = config
        .schema
        .as_ref()
        .filter(|_| config.table_type == super::DistributedTableType::SingleVersion)
    else {
        return Ok(Vec::new());
    };
    let Some(db) = schema.database(db_name) else {
        return Ok(Vec::new()); // reported with its own error as the table is distributed
    };
    match db.table(table) {
        Some(entry) => table_problems(conn, entry, db.version, previous),
        None => Ok(Vec::new()),
    }
}

/// True when any problem is an error (warnings alone do not stop a schema).
pub(crate) fn has_errors(problems: &[SchemaProblem]) -> bool {
    problems.iter().any(|p| p.severity == Severity::Error)
}

/// The name a sync schema knows this store by: its file name without the extension.
pub(crate) fn db_name(store: &RdbStore) -> String {
    store
        .path()
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned()
}

impl RdbStore {
    /// Checks `schema` against this database without changing anything: every problem of
    /// every table its entry for this database (`dbName` = the file name without `.db`)
    /// describes, errors first as they are found, warnings after. Empty when the schema can
    /// be used as it is.
    ///
    /// ```
    /// use peerlite::schema::{Rule, SyncSchema};
    /// use peerlite::{RdbStore, StoreConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = RdbStore::open(StoreConfig::new(dir.path().join("RdbTest.db")))?;
    /// store.execute("CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT UNIQUE, AGE INTEGER)", &[])?;
    /// let schema = SyncSchema::parse(r#"{"dbSchema": [{"version": 1, "bundleName": "com.example", "dbName": "RdbTest",
    ///   "tables": [{"tableName": "EMPLOYEE", "deviceSyncFields": ["NAME", "AGE"], "fields": [
    ///     {"columnName": "NAME", "type": "Text", "primaryKey": true},
    ///     {"columnName": "age", "type": "Integer"}]}]}]}"#)?;
    /// let problems = store.check_sync_schema(&schema)?;
    /// assert_eq!(problems.len(), 1);
    /// assert_eq!(problems[0].rule, Rule::FieldNotInFields); // "AGE" is not described (case-sensitive)
    /// assert_eq!(problems[0].to_string(), "warning: EMPLOYEE.AGE: AGE is in deviceSyncFields but not in fields, so it does not sync");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_sync_schema(&self, schema: &SyncSchema) -> Result<Vec<SchemaProblem>> {
        let name = db_name(self);
        let Some(db) = schema.database(&name) else {
            return Ok(vec![SchemaProblem::error(
                Rule::DatabaseMissing,
                "",
                None,
                format!("the sync schema has no dbSchema entry with dbName {name:?}"),
            )]);
        };
        let path = self.path();
        self.inner.read(|conn| {
            let sql_err = |e| Error::from_sqlite(e, path);
            let known = registry::load_all(conn).map_err(sql_err)?;
            let mut problems = Vec::new();
            for entry in &db.tables {
                let previous = known
                    .iter()
                    .find(|m| m.base.is_none() && m.name == entry.table_name);
                problems
                    .extend(table_problems(conn, entry, db.version, previous).map_err(sql_err)?);
            }
            problems.sort_by_key(|p| p.severity == Severity::Warning);
            Ok(problems)
        })
    }
}
