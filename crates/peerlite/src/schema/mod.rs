//! The sync schema file, in ArkData's `sync_schema.json` format: which columns of a
//! single-version table sync, and which column resolves conflicts (seed 002).
//!
//! ```
//! use peerlite::schema::SyncSchema;
//!
//! let schema = SyncSchema::parse(r#"{"dbSchema": [{"version": 0, "bundleName": "com.example",
//!   "dbName": "RdbTest", "tables": [{"tableName": "EMPLOYEE2", "deviceSyncFields": ["NAME"],
//!   "fields": [{"columnName": "NAME", "type": "Text", "primaryKey": true, "notNull": true}]}]}]}"#)?;
//! let db = schema.database("RdbTest").expect("present");
//! assert_eq!(db.table("EMPLOYEE2").unwrap().conflict_columns(), ["NAME"]);
//! # Ok::<(), peerlite::Error>(())
//! ```

mod rules;

use serde::{Deserialize, Serialize};

pub use rules::{
    ColumnFact, Rule, SchemaProblem, Severity, TableFacts, check_table, conflict_columns,
    table_facts,
};

use crate::error::{Error, Result};

/// The first error among `problems`, else the first warning.
pub(crate) fn first_error(problems: &[SchemaProblem]) -> Option<&SchemaProblem> {
    problems
        .iter()
        .find(|p| p.severity == Severity::Error)
        .or(problems.first())
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncSchema {
    /// One entry per database.
    pub db_schema: Vec<DbSchema>,
}

/// The schema of one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DbSchema {
    /// Schema version; any change needs a higher one.
    pub version: i64,
    /// The application's bundle name.
    pub bundle_name: String,
    /// The database's name without `.db` (`RdbTest` for `RdbTest.db`).
    pub db_name: String,
    /// Its distributed tables.
    #[serde(default)]
    pub tables: Vec<TableSchema>,
}

/// One table's sync settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSchema {
    /// The table.
    pub table_name: String,
    /// Columns that sync between devices (must also be in `fields` and in the table).
    #[serde(default)]
    pub device_sync_fields: Vec<String>,
    /// Column descriptions.
    #[serde(default)]
    pub fields: Vec<FieldSchema>,
}

/// One column's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldSchema {
    /// The column.
    pub column_name: String,
    /// One of Text, Integer, Long, Float, Double, Blob.
    #[serde(rename = "type")]
    pub ty: String,
    /// True for the conflict-resolution column (not necessarily the table's primary key).
    #[serde(default)]
    pub primary_key: bool,
    /// True for an auto-increment key; must match the table.
    #[serde(default)]
    pub auto_increment: bool,
    /// True when the column is NOT NULL.
    #[serde(default)]
    pub not_null: bool,
}

impl SyncSchema {
    /// Parses the JSON text.
    ///
    /// # Errors
    /// 17030022 when the text is not a valid sync schema.
    pub fn parse(text: &str) -> Result<SyncSchema> {
        serde_json::from_str(text).map_err(|e| Error::SyncSchema {
            problems: vec![SchemaProblem::error(
                rules::Rule::Unparsable,
                "",
                None,
                format!("not a valid sync_schema.json: {e}"),
            )],
        })
    }

    /// Reads and parses a file.
    pub fn read(path: &std::path::Path) -> Result<SyncSchema> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io("reading sync schema", path, e))?;
        SyncSchema::parse(&text)
    }

    /// The entry for the database named `db_name`.
    pub fn database(&self, db_name: &str) -> Option<&DbSchema> {
        self.db_schema.iter().find(|d| d.db_name == db_name)
    }
}

impl DbSchema {
    /// The entry for `table` (exact name).
    pub fn table(&self, table: &str) -> Option<&TableSchema> {
        self.tables.iter().find(|t| t.table_name == table)
    }
}

impl TableSchema {
    /// Columns marked `primaryKey: true` (there must be exactly one).
    pub fn conflict_columns(&self) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|f| f.primary_key)
            .map(|f| f.column_name.as_str())
            .collect()
    }

    /// The field named `column` (case-sensitive, as ArkData matches).
    pub fn field(&self, column: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.column_name == column)
    }

    /// The columns that actually sync: in `deviceSyncFields` and in `fields`, in that order,
    /// each once.
    pub fn synced_columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for c in &self.device_sync_fields {
            if self.field(c).is_some() && !out.contains(&c.as_str()) {
                out.push(c);
            }
        }
        out
    }
}
