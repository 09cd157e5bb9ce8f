//! Every rule seed 002 lists for a single-version table's sync schema, each with its own code,
//! checked against the real table (and against the previous version of the schema).

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::TableSchema;

/// A rule of the sync schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rule {
    /// No field has `primaryKey: true`.
    NoConflictColumn,
    /// More than one field has `primaryKey: true` ("解冲突列只能有一个").
    MultipleConflictColumns,
    /// The conflict column differs from the previous version ("不支持解冲突列变化").
    ConflictColumnChanged,
    /// The conflict column has no UNIQUE constraint.
    ConflictColumnNotUnique,
    /// The conflict column holds NULLs.
    ConflictColumnNulls,
    /// A sync column is not a column of the table (names are case-sensitive).
    SyncColumnMissing,
    /// `deviceSyncFields` is missing or empty.
    NoSyncColumns,
    /// A column synced by the previous version is not synced any more.
    SyncColumnsRemoved,
    /// The schema changed but its version did not increase.
    VersionNotIncreased,
    /// A UNIQUE column is not synced.
    UniqueColumnNotSynced,
    /// A NOT NULL column without a default is not synced.
    NotNullColumnNotSynced,
    /// The table has no primary key.
    NoPrimaryKey,
    /// The auto-increment key is synced.
    AutoIncrementSynced,
    /// The auto-increment key is the conflict column.
    AutoIncrementConflictColumn,
    /// A non-auto-increment primary key is not synced.
    KeyNotSynced,
    /// A non-auto-increment primary key is not the conflict column.
    KeyNotConflictColumn,
    /// A sync field is not described in `fields`, so it does not sync (a warning).
    FieldNotInFields,
    /// A field's type is not one of Text, Integer, Long, Float, Double, Blob.
    UnknownType,
    /// `autoIncrement` does not match the table.
    AutoIncrementMismatch,
    /// The table has a composite primary key.
    CompositeKey,
    /// The table does not exist.
    TableMissing,
    /// The file is not valid JSON of this format.
    Unparsable,
    /// The file has no entry for this database.
    DatabaseMissing,
    /// A column is described more than once in `fields` (names are case-sensitive here, as in
    /// every other rule of the file). An error, not a warning: the descriptions may disagree (type,
    /// `primaryKey`), and whichever one were read, the other would be ignored silently.
    DuplicateField,
}

impl Rule {
    /// The stable code.
    pub fn code(self) -> u32 {
        17030001
            + match self {
                Rule::NoConflictColumn => 0,
                Rule::MultipleConflictColumns => 1,
                Rule::ConflictColumnChanged => 2,
                Rule::ConflictColumnNotUnique => 3,
                Rule::ConflictColumnNulls => 4,
                Rule::SyncColumnMissing => 5,
                Rule::NoSyncColumns => 6,
                Rule::SyncColumnsRemoved => 7,
                Rule::VersionNotIncreased => 8,
                Rule::UniqueColumnNotSynced => 9,
                Rule::NotNullColumnNotSynced => 10,
                Rule::NoPrimaryKey => 11,
                Rule::AutoIncrementSynced => 12,
                Rule::AutoIncrementConflictColumn => 13,
                Rule::KeyNotSynced => 14,
                Rule::KeyNotConflictColumn => 15,
                Rule::FieldNotInFields => 16,
                Rule::UnknownType => 17,
                Rule::AutoIncrementMismatch => 18,
                Rule::CompositeKey => 19,
                Rule::TableMissing => 20,
                Rule::Unparsable => 21,
                Rule::DatabaseMissing => 22,
                Rule::DuplicateField => 23,
            }
    }
}

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    /// The schema cannot be used.
    Error,
    /// The schema works, but not as it may look (a field that does not sync).
    Warning,
}

/// One problem found, naming the table, the column and the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaProblem {
    /// Which rule.
    pub rule: Rule,
    /// Error or warning.
    pub severity: Severity,
    /// The table.
    pub table: String,
    /// The column, when the rule is about one.
    pub column: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl SchemaProblem {
    pub(crate) fn error(
        rule: Rule,
        table: &str,
        column: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        SchemaProblem {
            rule,
            severity: Severity::Error,
            table: table.to_owned(),
            column: column.map(str::to_owned),
            message: message.into(),
        }
    }

    fn warning(rule: Rule, table: &str, column: Option<&str>, message: impl Into<String>) -> Self {
        SchemaProblem {
            rule,
            severity: Severity::Warning,
            table: table.to_owned(),
            column: column.map(str::to_owned),
            message: message.into(),
        }
    }

    /// The stable code of its rule.
    pub fn code(&self) -> u32 {
        self.rule.code()
    }
}

impl std::fmt::Display for SchemaProblem {
    /// `error[CODE] TABLE.COLUMN: rule` or `warning: TABLE.COLUMN: rule`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = match &self.column {
            Some(c) => format!(" {}.{c}", self.table),
            None if self.table.is_empty() => String::new(),
            None => format!(" {}", self.table),
        };
        match self.severity {
            Severity::Error => write!(f, "error[{}]{place}: {}", self.code(), self.message),
            Severity::Warning => write!(f, "warning:{place}: {}", self.message),
        }
    }
}

/// One column as the database describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnFact {
    /// Its name.
    pub name: String,
    /// NOT NULL.
    pub not_null: bool,
    /// Has a DEFAULT.
    pub has_default: bool,
}

/// What the database says about a table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableFacts {
    /// The table's name.
    pub name: String,
    /// False when there is no such table.
    pub exists: bool,
    /// Its columns.
    pub columns: Vec<ColumnFact>,
    /// Primary-key columns.
    pub pk_columns: Vec<String>,
    /// Columns with a single-column UNIQUE constraint or index (a single-column key counts).
    pub unique_columns: Vec<String>,
    /// The `INTEGER PRIMARY KEY AUTOINCREMENT` column, if any.
    pub auto_increment: Option<String>,
}

impl TableFacts {
    fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c.name == name)
    }
}

/// Reads the facts of `table` from the database.
pub fn table_facts(conn: &Connection, table: &str) -> rusqlite::Result<TableFacts> {
    let sql: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .or_else(|e| {
            if matches!(e, rusqlite::Error::QueryReturnedNoRows) {
                Ok(None)
            } else {
                Err(e)
            }
        })?;
    let Some(sql) = sql else {
        return Ok(TableFacts {
            name: table.to_owned(),
            ..TableFacts::default()
        });
    };
    let mut columns = Vec::new();
    let mut pk: Vec<(i64, String)> = Vec::new();
    let mut stmt = conn.prepare(
        r#"SELECT name, "notnull", dflt_value IS NOT NULL, pk FROM pragma_table_info(?1)"#,
    )?;
    let mut rows = stmt.query([table])?;
    while let Some(r) = rows.next()? {
        let name: String = r.get(0)?;
        let pk_pos: i64 = r.get(3)?;
        if pk_pos > 0 {
            pk.push((pk_pos, name.clone()));
        }
        columns.push(ColumnFact {
            name,
            not_null: r.get(1)?,
            has_default: r.get(2)?,
        });
    }
    pk.sort();
    let pk_columns: Vec<String> = pk.into_iter().map(|(_, n)| n).collect();
    let mut unique_columns: Vec<String> = if pk_columns.len() == 1 {
        pk_columns.clone()
    } else {
        Vec::new()
    };
    // Only a whole-table UNIQUE on the column itself makes it unique: a partial index allows
    // duplicates outside its WHERE, and an index on an expression (its column name is NULL)
    // constrains the expression, not the column.
    let indexes: Vec<String> = conn
        .prepare(r#"SELECT name FROM pragma_index_list(?1) WHERE "unique" AND NOT partial"#)?
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for index in indexes {
        let cols: Vec<Option<String>> = conn
            .prepare("SELECT name FROM pragma_index_info(?1)")?
            .query_map([&index], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if let [Some(single)] = cols.as_slice()
            && !unique_columns.contains(single)
        {
            unique_columns.push(single.clone());
        }
    }
    let auto_increment = (pk_columns.len() == 1 && has_keyword(&sql, "AUTOINCREMENT"))
        .then(|| pk_columns[0].clone());
    Ok(TableFacts {
        name: table.to_owned(),
        exists: true,
        columns,
        pk_columns,
        unique_columns,
        auto_increment,
    })
}

/// True when `sql` contains `keyword` as a word of its own — not inside a comment, a string
/// or a quoted name.
fn has_keyword(sql: &str, keyword: &str) -> bool {
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut word = String::new();
    let mut found = false;
    let mut end_word = |word: &mut String| {
        found |= word.eq_ignore_ascii_case(keyword);
        word.clear();
    };
    while i < bytes.len() {
        let c = bytes[i];
        let close = match c {
            b'\'' => Some(b'\''),
            b'"' => Some(b'"'),
            b'`' => Some(b'`'),
            b'[' => Some(b']'),
            _ => None,
        };
        if let Some(close) = close {
            end_word(&mut word);
            i += 1;
            while i < bytes.len() && bytes[i] != close {
                i += 1;
            }
        } else if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
            end_word(&mut word);
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            end_word(&mut word);
            i += 2;
            while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            word.push(c as char);
        } else {
            end_word(&mut word);
        }
        i += 1;
    }
    end_word(&mut word);
    found
}

/// The conflict column(s) a table entry names: the fields marked `primaryKey: true`, or —
/// when none is marked — the table's own primary key if it is not auto-increment (the
/// marking is required only for auto-increment tables, seed 002).
pub fn conflict_columns<'s>(schema: &'s TableSchema, facts: &'s TableFacts) -> Vec<&'s str> {
    let marked = schema.conflict_columns();
    if !marked.is_empty() {
        return marked;
    }
    match facts.pk_columns.as_slice() {
        [key] if facts.auto_increment.as_deref() != Some(key.as_str()) => vec![key.as_str()],
        _ => Vec::new(),
    }
}

const TYPES: [&str; 6] = ["Text", "Integer", "Long", "Float", "Double", "Blob"];

/// Checks one table's schema against the table, and against the previous version of the
/// schema (its table entry and version) when there is one.
pub fn check_table(
    schema: &TableSchema,
    version: i64,
    facts: &TableFacts,
    previous: Option<(&TableSchema, i64)>,
) -> Vec<SchemaProblem> {
    use Rule::*;
    let t = schema.table_name.as_str();
    let mut found = Vec::new();
    let mut error = |rule, column: Option<&str>, message: String| {
        found.push(SchemaProblem::error(rule, t, column, message))
    };
    if !facts.exists {
        error(TableMissing, None, format!("the database has no table {t}"));
        return found;
    }
    if facts.pk_columns.len() > 1 {
        error(
            CompositeKey,
            None,
            format!(
                "composite primary key ({}) cannot be distributed",
                facts.pk_columns.join(", ")
            ),
        );
    }
    if facts.pk_columns.is_empty() {
        error(
            NoPrimaryKey,
            None,
            "a table without a primary key cannot sync selected columns (single-version mode)"
                .into(),
        );
    }
    for f in &schema.fields {
        let c = Some(f.column_name.as_str());
        if !TYPES.contains(&f.ty.as_str()) {
            error(
                UnknownType,
                c,
                format!("type {:?} is not one of {}", f.ty, TYPES.join(", ")),
            );
        }
        let table_says = facts.auto_increment.as_deref() == Some(f.column_name.as_str());
        if facts.has_column(&f.column_name) && f.auto_increment != table_says {
            error(
                AutoIncrementMismatch,
                c,
                format!(
                    "autoIncrement is {} but the table says {table_says}",
                    f.auto_increment
                ),
            );
        }
    }
    if schema.device_sync_fields.is_empty() {
        error(
            NoSyncColumns,
            None,
            "deviceSyncFields is missing or empty: at least one column must sync".into(),
        );
    }
    let mut warnings = Vec::new();
    for s in &schema.device_sync_fields {
        if !facts.has_column(s) {
            error(
                SyncColumnMissing,
                Some(s),
                format!("sync column {s} is not a column of {t} (names are case-sensitive)"),
            );
        } else if schema.field(s).is_none() {
            warnings.push(SchemaProblem::warning(
                FieldNotInFields,
                t,
                Some(s),
                format!("{s} is in deviceSyncFields but not in fields, so it does not sync"),
            ));
        }
    }
    for (i, f) in schema.fields.iter().enumerate() {
        let name = &f.column_name;
        if schema.fields[..i].iter().any(|g| g.column_name == *name) {
            error(
                DuplicateField,
                Some(name),
                format!("{name} is described more than once in fields; describe each column once"),
            );
        }
    }
    let synced = schema.synced_columns();
    let conflicts = conflict_columns(schema, facts);
    match conflicts.as_slice() {
        [] => error(
            NoConflictColumn,
            None,
            "no field has primaryKey: true; exactly one conflict column is needed".into(),
        ),
        [c] => {
            let c = *c;
            if facts.auto_increment.as_deref() == Some(c) {
                error(AutoIncrementConflictColumn, Some(c), "an auto-increment key differs per device; resolve conflicts on a globally unique non-key column".into());
            }
            if !facts.unique_columns.iter().any(|u| u == c) {
                error(
                    ConflictColumnNotUnique,
                    Some(c),
                    "the conflict column must be UNIQUE and globally unique (a uuid, say)".into(),
                );
            }
        }
        many => error(
            MultipleConflictColumns,
            None,
            format!(
                "{} fields have primaryKey: true ({}); exactly one is allowed",
                many.len(),
                many.join(", ")
            ),
        ),
    }
    if let Some(ai) = &facts.auto_increment
        && synced.contains(&ai.as_str())
    {
        error(
            AutoIncrementSynced,
            Some(ai),
            "an auto-increment key differs per device and never syncs".into(),
        );
    }
    if let [key] = facts.pk_columns.as_slice()
        && facts.auto_increment.as_deref() != Some(key.as_str())
    {
        if !synced.contains(&key.as_str()) {
            error(
                KeyNotSynced,
                Some(key),
                "a primary key that is not auto-increment must sync".into(),
            );
        }
        if conflicts.len() == 1 && conflicts[0] != key {
            error(
                KeyNotConflictColumn,
                Some(key),
                format!(
                    "a primary key that is not auto-increment must be the conflict column (not {})",
                    conflicts[0]
                ),
            );
        }
    }
    for u in &facts.unique_columns {
        let is_ai = facts.auto_increment.as_deref() == Some(u.as_str());
        if !is_ai && !synced.contains(&u.as_str()) {
            error(
                UniqueColumnNotSynced,
                Some(u),
                "every UNIQUE column must sync".into(),
            );
        }
    }
    for col in &facts.columns {
        let is_ai = facts.auto_increment.as_deref() == Some(col.name.as_str());
        let is_rowid_key = facts.pk_columns.len() == 1 && facts.pk_columns[0] == col.name && is_ai;
        if col.not_null && !col.has_default && !is_rowid_key && !synced.contains(&col.name.as_str())
        {
            error(
                NotNullColumnNotSynced,
                Some(&col.name),
                "a NOT NULL column without a DEFAULT must sync".into(),
            );
        }
    }
    if let Some((prev, prev_version)) = previous {
        let (before, after) = (
            conflict_columns(prev, facts),
            conflict_columns(schema, facts),
        );
        if !before.is_empty() && before != after {
            error(
                ConflictColumnChanged,
                after.first().copied(),
                format!(
                    "the conflict column was {} and cannot change",
                    before.join(", ")
                ),
            );
        }
        let now_synced = schema.synced_columns();
        for gone in prev
            .synced_columns()
            .into_iter()
            .filter(|c| !now_synced.contains(c))
        {
            error(
                SyncColumnsRemoved,
                Some(gone),
                "sync columns can only be added in a new version, never removed".into(),
            );
        }
        if version < prev_version {
            error(
                VersionNotIncreased,
                None,
                format!("the schema version went back to {version} from {prev_version}"),
            );
        } else if prev != schema && version == prev_version {
            error(
                VersionNotIncreased,
                None,
                format!(
                    "the schema changed but its version stayed at {version} (was {prev_version})"
                ),
            );
        }
    }
    found.extend(warnings);
    found
}
