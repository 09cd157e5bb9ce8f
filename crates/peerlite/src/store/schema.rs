//! What the database says its tables look like, cached, so that table and column names from
//! callers are checked against the schema and only ever reach SQL as quoted identifiers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rusqlite::Connection;

use crate::StoreKind;
use crate::error::{Error, Result};

/// One column, as `PRAGMA table_info` reports it.
#[derive(Debug, Clone)]
pub(crate) struct ColumnInfo {
    pub name: String,
    pub decl_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    /// 1-based position in the primary key, 0 when not part of it.
    pub pk: u32,
}

/// One table or view.
#[derive(Debug, Clone)]
pub(crate) struct TableInfo {
    /// The name as the schema spells it.
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub without_rowid: bool,
    pub is_view: bool,
}

impl TableInfo {
    /// The column named `name` (SQLite matches names case-insensitively).
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The schema's spelling of `name`, also accepting `rowid` on rowid tables.
    pub fn resolve(&self, name: &str) -> Option<&str> {
        if let Some(c) = self.column(name) {
            return Some(&c.name);
        }
        let rowid_alias = ["rowid", "_rowid_", "oid"]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(name));
        (rowid_alias && !self.without_rowid && !self.is_view).then_some("rowid")
    }

    /// The quoted table name for SQL.
    pub fn quoted(&self) -> String {
        quote_ident(&self.name)
    }
}

/// True when the main database has a table named `name` (exactly: peerlite's own tables are
/// looked up by the name peerlite gives them).
pub(crate) fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
}

/// Quotes an identifier for SQL: `a"b` becomes `"a""b"`.
pub(crate) fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for ch in name.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

/// Reads one table's description from the database.
pub(crate) fn load_table(conn: &Connection, name: &str, path: &Path) -> Result<Option<TableInfo>> {
    let sql_err = |e| Error::from_sqlite(e, path);
    let found: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT name, type FROM sqlite_schema WHERE name = ?1 COLLATE NOCASE AND type IN ('table','view')",
        )
        .and_then(|mut st| {
            let mut rows = st.query([name])?;
            match rows.next()? {
                Some(r) => Ok(Some((r.get(0)?, r.get(1)?))),
                None => Ok(None),
            }
        })
        .map_err(sql_err)?;
    let Some((name, kind)) = found else {
        return Ok(None);
    };
    let columns = conn
        .prepare_cached(
            r#"SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?1)"#,
        )
        .and_then(|mut st| {
            st.query_map([&name], |r| {
                Ok(ColumnInfo {
                    name: r.get(0)?,
                    decl_type: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    not_null: r.get(2)?,
                    default: r.get(3)?,
                    pk: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql_err)?;
    let without_rowid = kind == "table"
        && conn
            .query_row(
                "SELECT wr FROM pragma_table_list WHERE name = ?1 AND schema = 'main'",
                [&name],
                |r| r.get::<_, bool>(0),
            )
            .map_err(sql_err)?;
    Ok(Some(TableInfo {
        name,
        columns,
        without_rowid,
        is_view: kind == "view",
    }))
}

/// Table descriptions keyed by lower-cased name. A miss (unknown table or column) reloads once
/// before failing, so tables and columns created by other connections are found.
#[derive(Debug, Default)]
pub(crate) struct SchemaCache {
    tables: RwLock<HashMap<String, Arc<TableInfo>>>,
}

impl SchemaCache {
    /// Forgets everything (after DDL).
    pub fn invalidate(&self) {
        if let Ok(mut t) = self.tables.write() {
            t.clear();
        }
    }

    /// The table `name`, or 14800001 "no such table".
    pub fn table(&self, conn: &Connection, name: &str, path: &Path) -> Result<Arc<TableInfo>> {
        let key = name.to_ascii_lowercase();
        if let Some(t) = self.tables.read().ok().and_then(|t| t.get(&key).cloned()) {
            return Ok(t);
        }
        self.reload(conn, name, path)
    }

    fn reload(&self, conn: &Connection, name: &str, path: &Path) -> Result<Arc<TableInfo>> {
        let key = name.to_ascii_lowercase();
        let info = load_table(conn, name, path)?.ok_or_else(|| Error::UnknownTable {
            table: name.to_owned(),
            kind: StoreKind::Relational,
        })?;
        let info = Arc::new(info);
        if let Ok(mut t) = self.tables.write() {
            t.insert(key, Arc::clone(&info));
        }
        Ok(info)
    }

    /// The table `name` with every column in `columns` resolved to its schema spelling; reloads
    /// once when a column is missing from the cached description.
    pub fn resolve_columns<'c>(
        &self,
        conn: &Connection,
        table: &str,
        columns: impl Iterator<Item = &'c str> + Clone,
        path: &Path,
    ) -> Result<(Arc<TableInfo>, Vec<String>)> {
        let info = self.table(conn, table, path)?;
        match resolve_all(&info, columns.clone()) {
            Ok(names) => Ok((info, names)),
            Err(_) => {
                let info = self.reload(conn, table, path)?;
                let names = resolve_all(&info, columns)?;
                Ok((info, names))
            }
        }
    }
}

fn resolve_all<'c>(
    info: &TableInfo,
    columns: impl Iterator<Item = &'c str>,
) -> Result<Vec<String>> {
    columns
        .map(|c| {
            info.resolve(c)
                .map(str::to_owned)
                .ok_or_else(|| Error::UnknownColumn {
                    table: info.name.clone(),
                    column: c.to_owned(),
                    kind: StoreKind::Relational,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(
            quote_ident("x\"; DROP TABLE t; --"),
            "\"x\"\"; DROP TABLE t; --\""
        );
    }

    #[test]
    fn loads_columns_and_rowid_kind() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE Emp(ID INTEGER PRIMARY KEY, NAME TEXT NOT NULL DEFAULT 'x');
             CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;",
        )
        .unwrap();
        let cache = SchemaCache::default();
        let (info, cols) = cache
            .resolve_columns(
                &conn,
                "emp",
                ["name", "ROWID"].into_iter(),
                Path::new(":memory:"),
            )
            .unwrap();
        assert_eq!(info.name, "Emp");
        assert_eq!(cols, ["NAME", "rowid"]);
        assert_eq!(info.column("NAME").unwrap().default.as_deref(), Some("'x'"));
        let kv = cache.table(&conn, "kv", Path::new(":memory:")).unwrap();
        assert!(kv.without_rowid);
        assert!(kv.resolve("rowid").is_none());
        let err = cache
            .table(&conn, "nope", Path::new(":memory:"))
            .unwrap_err();
        assert_eq!(err.code(), 14800001);
    }

    #[test]
    fn a_column_added_elsewhere_is_found_after_reload() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(a)").unwrap();
        let cache = SchemaCache::default();
        cache.table(&conn, "t", Path::new("m")).unwrap();
        conn.execute_batch("ALTER TABLE t ADD COLUMN b").unwrap();
        let (_, cols) = cache
            .resolve_columns(&conn, "t", ["b"].into_iter(), Path::new("m"))
            .unwrap();
        assert_eq!(cols, ["b"]);
    }
}
