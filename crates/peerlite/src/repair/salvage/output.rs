//! The salvage database: the damaged store's tables recreated from their `CREATE TABLE`
//! statements, filled with the rows found, plus `peerlite_lost_and_found` for rows no table
//! can be named for. The layout of each table's records (which column each field is, the
//! rowid alias, WITHOUT ROWID key order) is asked of SQLite itself, on an in-memory copy of
//! the schema that also holds the indexes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, ToSql};

use super::btree::Field;
use super::recover::{Origin, Row, Sink};
use crate::error::{Error, Result};
use crate::store::EncryptionKey;
use crate::store::schema::quote_ident;

/// The table that keeps rows no table can be named for.
pub(super) const LOST_AND_FOUND: &str = "peerlite_lost_and_found";
/// Columns of `peerlite_lost_and_found` before the fields.
const LOST_FIXED: usize = 4;
/// Fields kept of one lost row (SQLite allows 2000 columns in all).
const LOST_MAX_FIELDS: usize = 1990;

/// One entry of `sqlite_schema`.
#[derive(Debug, Clone)]
pub(super) struct SchemaEntry {
    pub kind: String,
    pub name: String,
    pub root: u32,
    pub sql: Option<String>,
}

/// What rows of one b-tree become.
#[derive(Debug, Clone)]
enum Target {
    /// A table of the salvage database.
    Table(usize),
    /// An index or one of SQLite's own tables: derived data, not salvaged.
    Derived,
    /// A table whose layout is unknown (its CREATE failed): rows go to lost-and-found.
    Unknown(String),
}

#[derive(Debug)]
struct TableOut {
    name: String,
    without_rowid: bool,
    /// Column of each stored field, in record order; `None` for generated columns.
    columns: Vec<Option<String>>,
    /// The field that is the rowid alias (stored as NULL).
    alias: Option<usize>,
    rows: u64,
}

/// Text encoding of the damaged database (header offset 56).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

/// What was written.
#[derive(Debug, Default)]
pub(super) struct Written {
    pub tables: Vec<(String, u64)>,
    pub lost_and_found: u64,
    pub partial_rows: u64,
    pub duplicates: u64,
}

pub(super) struct Output {
    conn: Connection,
    path: PathBuf,
    encoding: Encoding,
    targets: HashMap<u32, Target>,
    /// Attribution of orphan pages: (index b-tree?, fields per record, target).
    shapes: Vec<(bool, usize, Target)>,
    tables: Vec<TableOut>,
    lost_width: Option<usize>,
    written: Written,
}

struct Bind<'a>(&'a Field);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Field::Null | Field::Missing => ToSqlOutput::Owned(SqlValue::Null),
            Field::Integer(i) => ToSqlOutput::Owned(SqlValue::Integer(*i)),
            Field::Real(f) => ToSqlOutput::Owned(SqlValue::Real(*f)),
            Field::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t)),
            Field::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

enum Outcome {
    Inserted,
    Duplicate,
    Refused,
}

impl Output {
    /// Creates the salvage database at `path` (a temporary name), encrypted with `key`.
    pub fn create(path: &Path, key: Option<&EncryptionKey>) -> Result<Output> {
        let conn = crate::backup::open_destination(path, key)?;
        // A half-written salvage file is removed, never used: no journal needed. The file
        // is synced once, before it gets its name.
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF; BEGIN",
        )
        .map_err(|e| Error::from_sqlite(e, path))?;
        Ok(Output {
            conn,
            path: path.to_path_buf(),
            encoding: Encoding::Utf8,
            targets: HashMap::new(),
            shapes: Vec::new(),
            tables: Vec::new(),
            lost_width: None,
            written: Written::default(),
        })
    }

    fn sql_err(&self, e: rusqlite::Error) -> Error {
        Error::from_sqlite(e, &self.path)
    }

    /// Recreates the tables of `schema` and learns how their records are laid out.
    pub fn add_schema(&mut self, schema: &[SchemaEntry], encoding: Encoding) -> Result<()> {
        self.encoding = encoding;
        // sqlite_schema itself: five fields a record.
        self.targets.insert(1, Target::Derived);
        self.shapes.push((false, 5, Target::Derived));
        let layout = Connection::open_in_memory().map_err(|e| self.sql_err(e))?;
        let (tables, indexes): (Vec<&SchemaEntry>, Vec<&SchemaEntry>) = schema
            .iter()
            .filter(|e| e.root > 1)
            .partition(|e| e.kind == "table");
        for entry in tables {
            let target = self.add_table(&layout, entry)?;
            self.targets.insert(entry.root, target);
        }
        for entry in indexes.iter().filter(|e| e.kind == "index") {
            if let Some(sql) = entry
                .sql
                .as_deref()
                .filter(|s| creates(s, &["CREATE INDEX ", "CREATE UNIQUE INDEX "]))
            {
                let _ = layout.execute(sql, []);
            }
            let fields: rusqlite::Result<i64> = layout.query_row(
                "SELECT count(*) FROM pragma_index_xinfo(?1)",
                [&entry.name],
                |r| r.get(0),
            );
            if let Some(n) = fields.ok().map(|n| n as usize).filter(|n| *n > 0) {
                self.shapes.push((true, n, Target::Derived));
            }
            self.targets.insert(entry.root, Target::Derived);
        }
        Ok(())
    }

    fn add_table(&mut self, layout: &Connection, entry: &SchemaEntry) -> Result<Target> {
        let name = &entry.name;
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("sqlite_") || lower == LOST_AND_FOUND {
            return Ok(Target::Derived);
        }
        let Some(sql) = entry
            .sql
            .as_deref()
            .filter(|s| creates(s, &["CREATE TABLE "]))
        else {
            return Ok(Target::Unknown(name.clone()));
        };
        if let Err(e) = layout.execute(sql, []) {
            tracing::warn!(table = %name, %e, "salvage cannot recreate the table");
            return Ok(Target::Unknown(name.clone()));
        }
        let Some(table) = table_layout(layout, name) else {
            return Ok(Target::Unknown(name.clone()));
        };
        if let Err(e) = self.conn.execute(sql, []) {
            tracing::warn!(table = %name, %e, "salvage cannot recreate the table");
            return Ok(Target::Unknown(name.clone()));
        }
        let target = Target::Table(self.tables.len());
        self.shapes
            .push((table.without_rowid, table.columns.len(), target.clone()));
        self.tables.push(table);
        Ok(target)
    }

    /// Ends the transaction and says what was written.
    pub fn finish(mut self) -> Result<Written> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(|e| Error::from_sqlite(e, &self.path))?;
        self.written.tables = self
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.rows))
            .collect();
        Ok(self.written)
    }

    /// Whether the salvage database holds anything worth keeping.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.lost_width.is_none()
    }

    /// Which target an orphan page's rows belong to: the one b-tree of its kind whose records
    /// have that many fields, if exactly one does.
    fn attribute(&self, index: bool, fields: usize) -> Option<Target> {
        let mut matches = self
            .shapes
            .iter()
            .filter(|(i, n, _)| *i == index && *n == fields);
        match (matches.next(), matches.next()) {
            (Some((_, _, target)), None) => Some(target.clone()),
            _ => None,
        }
    }

    fn store(&mut self, target: Option<Target>, mut row: Row) -> Result<()> {
        if self.encoding != Encoding::Utf8 {
            for field in &mut row.fields {
                to_utf8(field, self.encoding);
            }
        }
        let table = match target {
            Some(Target::Derived) => return Ok(()),
            Some(Target::Table(t)) => t,
            Some(Target::Unknown(name)) => return self.lose(Some(&name), &row),
            None => return self.lose(None, &row),
        };
        match self.insert(table, &row)? {
            Outcome::Inserted => {
                self.tables[table].rows += 1;
                if row.fields.contains(&Field::Missing) {
                    self.written.partial_rows += 1;
                }
                Ok(())
            }
            Outcome::Duplicate => {
                self.written.duplicates += 1;
                Ok(())
            }
            Outcome::Refused => {
                let name = self.tables[table].name.clone();
                self.lose(Some(&name), &row)
            }
        }
    }

    fn insert(&mut self, table: usize, row: &Row) -> Result<Outcome> {
        let t = &self.tables[table];
        let n = row.fields.len();
        if n > t.columns.len() || (t.without_rowid == row.rowid.is_some()) {
            return Ok(Outcome::Refused);
        }
        let rowid_field = row.rowid.map(Field::Integer);
        let mut names: Vec<String> = Vec::with_capacity(n + 1);
        let mut values: Vec<&Field> = Vec::with_capacity(n + 1);
        if let Some(r) = &rowid_field {
            names.push("rowid".into());
            values.push(r);
        }
        for (i, field) in row.fields.iter().enumerate() {
            let Some(column) = &t.columns[i] else {
                continue;
            };
            names.push(quote_ident(column));
            match (t.alias == Some(i), field, &rowid_field) {
                (true, Field::Null, Some(r)) => values.push(r),
                _ => values.push(field),
            }
        }
        let sql = format!(
            "INSERT INTO main.{} ({}) VALUES ({})",
            quote_ident(&t.name),
            names.join(", "),
            vec!["?"; names.len()].join(", ")
        );
        let mut st = self
            .conn
            .prepare_cached(&sql)
            .map_err(|e| Error::from_sqlite(e, &self.path))?;
        match st.execute(rusqlite::params_from_iter(values.into_iter().map(Bind))) {
            Ok(_) => Ok(Outcome::Inserted),
            // The same row found twice (an orphan page of a tree already walked).
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.extended_code == 1555 || e.extended_code == 2579 =>
            {
                Ok(Outcome::Duplicate)
            }
            // NOT NULL over a missing field, CHECK, UNIQUE: kept aside instead.
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Ok(Outcome::Refused)
            }
            Err(e) => Err(Error::from_sqlite(e, &self.path)),
        }
    }

    /// Keeps a row in `peerlite_lost_and_found`: the page it was on, its rowid, the table it
    /// was found under (when known), and its fields as they are.
    fn lose(&mut self, tree: Option<&str>, row: &Row) -> Result<()> {
        let n = row.fields.len().min(LOST_MAX_FIELDS);
        let width = match self.lost_width {
            Some(w) => w,
            None => {
                self.conn
                    .execute_batch(&format!(
                        "CREATE TABLE {LOST_AND_FOUND}(page INTEGER, cell_rowid INTEGER, tree TEXT, nfield INTEGER)"
                    ))
                    .map_err(|e| Error::from_sqlite(e, &self.path))?;
                0
            }
        };
        for i in width..n {
            self.conn
                .execute_batch(&format!("ALTER TABLE {LOST_AND_FOUND} ADD COLUMN c{i}"))
                .map_err(|e| Error::from_sqlite(e, &self.path))?;
        }
        self.lost_width = Some(width.max(n));
        let columns: Vec<String> = (0..n).map(|i| format!(", c{i}")).collect();
        let sql = format!(
            "INSERT INTO {LOST_AND_FOUND}(page, cell_rowid, tree, nfield{}) VALUES ({})",
            columns.concat(),
            vec!["?"; n + LOST_FIXED].join(", ")
        );
        let mut st = self
            .conn
            .prepare_cached(&sql)
            .map_err(|e| Error::from_sqlite(e, &self.path))?;
        let fixed = [
            Field::Integer(i64::from(row.page)),
            row.rowid.map_or(Field::Null, Field::Integer),
            tree.map_or(Field::Null, |t| Field::Text(t.as_bytes().to_vec())),
            Field::Integer(row.fields.len() as i64),
        ];
        st.execute(rusqlite::params_from_iter(
            fixed.iter().chain(row.fields.iter().take(n)).map(Bind),
        ))
        .map_err(|e| Error::from_sqlite(e, &self.path))?;
        self.written.lost_and_found += 1;
        Ok(())
    }
}

impl Sink for Output {
    fn rows(&mut self, origin: Origin, rows: Vec<Row>) -> Result<()> {
        let target = match origin {
            Origin::Tree(root) => Some(
                self.targets
                    .get(&root)
                    .cloned()
                    .unwrap_or(Target::Unknown(format!("b-tree at page {root}"))),
            ),
            Origin::Orphan { index } => {
                let fields = rows.iter().map(|r| r.fields.len()).max().unwrap_or(0);
                self.attribute(index, fields)
            }
        };
        for row in rows {
            self.store(target.clone(), row)?;
        }
        Ok(())
    }
}

/// Whether `sql` is one of these statements. The schema's text comes from a damaged file:
/// only the statement kinds a schema holds are ever run (one statement each — `execute`
/// refuses a second), never whatever else the bytes may say. SQLite stores them with these
/// exact prefixes (upper case, one space).
fn creates(sql: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| sql.starts_with(p))
}

/// How the records of table `name` (created on `conn`) are laid out.
fn table_layout(conn: &Connection, name: &str) -> Option<TableOut> {
    let without_rowid: bool = conn
        .query_row(
            "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .ok()?;
    // (name, declared type, pk position, hidden: 2 virtual generated, 3 stored generated)
    let columns: Vec<(String, String, i64, i64)> = conn
        .prepare("SELECT name, type, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")
        .and_then(|mut st| {
            st.query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .ok()?;
    let stored = |column: &str| {
        columns
            .iter()
            .find(|c| c.0 == column)
            .map_or(Some(column.to_owned()), |c| (c.3 != 3).then(|| c.0.clone()))
    };
    let is_virtual = |column: &str| columns.iter().any(|c| c.0 == column && c.3 == 2);
    if without_rowid {
        let pk: String = conn
            .query_row(
                "SELECT name FROM pragma_index_list(?1) WHERE origin = 'pk'",
                [name],
                |r| r.get(0),
            )
            .ok()?;
        let order: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_xinfo(?1) WHERE cid >= 0 ORDER BY seqno")
            .and_then(|mut st| st.query_map([&pk], |r| r.get(0))?.collect())
            .ok()?;
        return Some(TableOut {
            name: name.to_owned(),
            without_rowid: true,
            columns: order
                .iter()
                .filter(|c| !is_virtual(c))
                .map(|c| stored(c))
                .collect(),
            alias: None,
            rows: 0,
        });
    }
    let kept: Vec<&(String, String, i64, i64)> = columns.iter().filter(|c| c.3 != 2).collect();
    let pk_columns = columns.iter().filter(|c| c.2 > 0).count();
    let alias = kept
        .iter()
        .position(|c| c.2 == 1 && pk_columns == 1 && c.1.eq_ignore_ascii_case("INTEGER"));
    Some(TableOut {
        name: name.to_owned(),
        without_rowid: false,
        columns: kept
            .iter()
            .map(|c| (c.3 != 3).then(|| c.0.clone()))
            .collect(),
        alias,
        rows: 0,
    })
}

/// Text of a UTF-16 database as UTF-8; text that does not decode is missing.
fn to_utf8(field: &mut Field, encoding: Encoding) {
    let Field::Text(bytes) = field else { return };
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| match encoding {
            Encoding::Utf16Be => u16::from_be_bytes([c[0], c[1]]),
            _ => u16::from_le_bytes([c[0], c[1]]),
        })
        .collect();
    *field = match String::from_utf16(&units) {
        Ok(s) if bytes.len() % 2 == 0 => Field::Text(s.into_bytes()),
        _ => Field::Missing,
    };
}

/// Decodes the text of a schema field.
pub(super) fn text(field: Option<&Field>, encoding: Encoding) -> Option<String> {
    let mut field = field?.clone();
    if encoding != Encoding::Utf8 {
        to_utf8(&mut field, encoding);
    }
    match field {
        Field::Text(bytes) => String::from_utf8(bytes).ok(),
        _ => None,
    }
}
