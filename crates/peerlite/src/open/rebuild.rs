//! `rebuild_table`: SQLite's 12-step generalized ALTER TABLE, for the schema changes `ALTER
//! TABLE` cannot make (drop or retype a column, change a constraint), keeping every row.
//!
//! Create the new table under a temporary name, copy the rows (same-named columns, a
//! [`ColumnMapping`] for renamed or computed ones, defaults for new ones), drop the old table,
//! rename the new one, then recreate the old table's indexes and triggers and check that every
//! view still compiles. It must run with foreign keys off — a versioned open does that.
//!
//! ```
//! use peerlite::{ColumnMapping, Migration, Migrations, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let v1 = Migrations::new().step(Migration::sql("0001", "CREATE TABLE book(id INTEGER PRIMARY KEY, title TEXT, junk TEXT)"));
//! let store = RdbStore::open_with(StoreConfig::new(dir.path().join("b.db")).version(1), &mut v1.clone())?;
//! store.execute("INSERT INTO book(title, junk) VALUES ('Dune', 'x')", &[])?;
//! store.close()?;
//! let mut v2 = v1.step(Migration::closure("0002_rebuild_book", |tx| {
//!     tx.rebuild_table(
//!         "book",
//!         "CREATE TABLE book(id INTEGER PRIMARY KEY, name TEXT NOT NULL, pages INTEGER DEFAULT 0)",
//!         &ColumnMapping::new().rename("name", "title"),
//!     )?;
//!     Ok(())
//! }));
//! let store = RdbStore::open_with(StoreConfig::new(dir.path().join("b.db")).version(2), &mut v2)?;
//! let mut rs = store.query_sql("SELECT name, pages FROM book", &[])?;
//! assert!(rs.go_to_first_row()?);
//! assert_eq!((rs.get_string(0)?, rs.get_long(1)?), ("Dune".to_owned(), 0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::sql_name::create_table_name;
use crate::StoreKind;
use crate::error::{Error, Result};
use crate::store::Transaction;
use crate::store::schema::{TableInfo, load_table, quote_ident};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Column(String),
    Expr(String),
}

/// How the new table's columns are filled from the old one. Columns with the same name are
/// copied without being listed; new columns without a source get their DEFAULT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMapping {
    entries: Vec<(String, Source)>,
}

impl ColumnMapping {
    /// Same-named columns only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fills `new_column` from the old table's `old_column`.
    #[must_use]
    pub fn rename(mut self, new_column: &str, old_column: &str) -> Self {
        self.entries
            .push((new_column.to_owned(), Source::Column(old_column.to_owned())));
        self
    }

    /// Fills `new_column` with an SQL expression over the old row (trusted migration code,
    /// like any SQL in a migration), e.g. `"first || ' ' || last"`.
    #[must_use]
    pub fn expr(mut self, new_column: &str, sql_expression: &str) -> Self {
        self.entries.push((
            new_column.to_owned(),
            Source::Expr(sql_expression.to_owned()),
        ));
        self
    }

    fn source(&self, column: &str) -> Option<&Source> {
        self.entries
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(column))
            .map(|(_, s)| s)
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// Rows copied (always every row of the old table).
    pub rows: usize,
    /// Indexes and triggers recreated.
    pub recreated: Vec<String>,
}

fn invalid(message: String) -> Error {
    Error::invalid(StoreKind::Relational, message)
}

fn is_rowid_alias(info: &TableInfo) -> bool {
    let pk: Vec<_> = info.columns.iter().filter(|c| c.pk > 0).collect();
    !info.without_rowid && pk.len() == 1 && pk[0].decl_type.eq_ignore_ascii_case("INTEGER")
}

impl Transaction<'_> {
    /// Rebuilds `table` with the schema of `new_create_sql` (a `CREATE TABLE` of the same
    /// name), keeping every row, its rowid, and the table's indexes and triggers.
    ///
    /// # Errors
    /// 14800001 when foreign keys are on (run it inside a migration), the statement is not a
    /// `CREATE TABLE` of `table`, a mapping names an unknown column, a NOT NULL column would be
    /// left without a value, or a view stops compiling; SQLite's errors otherwise. Nothing is
    /// kept of a failed rebuild once the transaction rolls back.
    pub fn rebuild_table(
        &self,
        table: &str,
        new_create_sql: &str,
        mapping: &ColumnMapping,
    ) -> Result<RebuildReport> {
        if crate::store::writer::is_internal_table(table) {
            return Err(crate::Error::Protected {
                what: format!("rebuilding {table}"),
                reason: "it is peerlite's or SQLite's own table".into(),
            });
        }
        // A savepoint makes a failed rebuild leave no trace even if the caller swallows the
        // error and commits: no temporary table, no half-renamed schema. The rebuild is
        // peerlite's own work (its temporary `peerlite_rebuild_…` table, a distributed table
        // dropped and renamed back with its capture triggers): its statements are not judged
        // as the caller's, only the name checked above.
        self.as_own(|| self.rebuild_guarded(table, new_create_sql, mapping))
    }

    fn rebuild_guarded(
        &self,
        table: &str,
        new_create_sql: &str,
        mapping: &ColumnMapping,
    ) -> Result<RebuildReport> {
        let conn = self.conn()?;
        let path = self.inner().config.path().to_path_buf();
        conn.execute_batch("SAVEPOINT peerlite_rebuild")
            .map_err(|e| Error::from_sqlite(e, &path))?;
        match self.rebuild_in_savepoint(table, new_create_sql, mapping) {
            Ok(report) => {
                conn.execute_batch("RELEASE peerlite_rebuild")
                    .map_err(|e| Error::from_sqlite(e, &path))?;
                Ok(report)
            }
            Err(e) => {
                let _ =
                    conn.execute_batch("ROLLBACK TO peerlite_rebuild; RELEASE peerlite_rebuild");
                self.inner().schema.invalidate();
                Err(e)
            }
        }
    }

    fn rebuild_in_savepoint(
        &self,
        table: &str,
        new_create_sql: &str,
        mapping: &ColumnMapping,
    ) -> Result<RebuildReport> {
        let conn = self.conn()?;
        let path = self.inner().config.path().to_path_buf();
        let sql_err = |e| Error::from_sqlite(e, &path);
        let fk_on: bool = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .map_err(sql_err)?;
        if fk_on {
            return Err(invalid(
                "rebuild_table needs foreign keys off (dropping the old table would fire ON DELETE actions); \
                 call it from a migration, which switches them off"
                    .into(),
            ));
        }
        let old = load_table(conn, table, &path)?
            .filter(|t| !t.is_view)
            .ok_or_else(|| Error::UnknownTable {
                table: table.to_owned(),
                kind: StoreKind::Relational,
            })?;
        let span = create_table_name(new_create_sql)
            .filter(|s| s.name.eq_ignore_ascii_case(&old.name))
            .ok_or_else(|| {
                invalid(format!(
                    "new_create_sql must be `CREATE TABLE {} (...)`",
                    old.name
                ))
            })?;

        // Step 3: remember what hangs off the old table (auto-indexes come back with constraints).
        let attached: Vec<(String, String)> = conn
            .prepare("SELECT name, sql FROM sqlite_schema WHERE tbl_name = ?1 AND type IN ('index','trigger') AND sql IS NOT NULL ORDER BY type, name")
            .and_then(|mut st| st.query_map([&old.name], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(sql_err)?;

        // Step 4: the new table under a temporary name.
        let temp = format!("peerlite_rebuild_{}", old.name);
        let create = format!(
            "{}{}{}",
            &new_create_sql[..span.start],
            quote_ident(&temp),
            &new_create_sql[span.end..]
        );
        self.execute(&format!("DROP TABLE IF EXISTS {}", quote_ident(&temp)), &[])?;
        self.execute(&create, &[])?;
        let new = load_table(conn, &temp, &path)?
            .ok_or_else(|| invalid("the new table was not created".into()))?;

        // Step 5: copy.
        let (targets, sources) = plan_copy(&old, &new, mapping)?;
        let old_rows = conn
            .query_row(&format!("SELECT count(*) FROM {}", old.quoted()), [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(sql_err)? as usize;
        let copied = if targets.is_empty() {
            0
        } else {
            self.execute(
                &format!(
                    "INSERT INTO {} ({}) SELECT {} FROM {}",
                    quote_ident(&temp),
                    targets.join(", "),
                    sources.join(", "),
                    old.quoted()
                ),
                &[],
            )?
        };
        if copied != old_rows {
            return Err(invalid(format!(
                "rebuilding {} copied {copied} of {old_rows} rows",
                old.name
            )));
        }

        // Steps 6–7: drop the old table, give the new one its name. legacy_alter_table keeps the
        // rename from rewriting (or rejecting) views and triggers that name the table.
        // DROP deletes the table's sqlite_sequence row; keep its AUTOINCREMENT high-water mark
        // so the ids of deleted rows are never handed out again.
        let sequence = autoincrement_sequence(conn, &old.name, &path)?;
        self.execute(&format!("DROP TABLE {}", old.quoted()), &[])?;
        let legacy: bool = conn
            .query_row("PRAGMA legacy_alter_table", [], |r| r.get(0))
            .map_err(sql_err)?;
        conn.execute_batch("PRAGMA legacy_alter_table=ON")
            .map_err(sql_err)?;
        let renamed = self.execute(
            &format!(
                "ALTER TABLE {} RENAME TO {}",
                quote_ident(&temp),
                old.quoted()
            ),
            &[],
        );
        conn.pragma_update(None, "legacy_alter_table", legacy)
            .map_err(sql_err)?;
        renamed?;

        // Step 8: indexes and triggers again; then every view must still compile.
        let mut recreated = Vec::new();
        for (name, sql) in attached {
            self.execute(&sql, &[]).map_err(|e| {
                invalid(format!(
                    "recreating {name} after rebuilding {}: {e}",
                    old.name
                ))
            })?;
            recreated.push(name);
        }
        if let Some(seq) = sequence {
            let params = [seq.into(), old.name.as_str().into()];
            let updated = self.execute(
                "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = ?2",
                &params,
            )?;
            if updated == 0 {
                // No row was copied, so the new table has no counter yet.
                self.execute(
                    "INSERT INTO sqlite_sequence(name, seq) SELECT ?2, ?1 WHERE EXISTS \
                     (SELECT 1 FROM sqlite_schema WHERE name = ?2 AND sql LIKE '%AUTOINCREMENT%')",
                    &params,
                )?;
            }
        }
        check_views(self, &path)?;
        self.mark_changed(&old.name);
        Ok(RebuildReport {
            rows: copied,
            recreated,
        })
    }
}

/// The INSERT column list and the SELECT expressions that fill it.
fn plan_copy(
    old: &TableInfo,
    new: &TableInfo,
    mapping: &ColumnMapping,
) -> Result<(Vec<String>, Vec<String>)> {
    for (column, source) in &mapping.entries {
        if new.column(column).is_none() {
            return Err(invalid(format!(
                "mapping names column {column}, which the new {} does not have",
                old.name
            )));
        }
        if let Source::Column(from) = source
            && old.column(from).is_none()
        {
            return Err(invalid(format!(
                "mapping reads column {from}, which the old {} does not have",
                old.name
            )));
        }
    }
    let mut targets = Vec::new();
    let mut sources = Vec::new();
    if !old.without_rowid && !new.without_rowid && !is_rowid_alias(new) {
        targets.push("rowid".to_owned());
        sources.push("rowid".to_owned());
    }
    for col in &new.columns {
        let source = match mapping.source(&col.name) {
            Some(Source::Column(c)) => Some(quote_ident(c)),
            Some(Source::Expr(e)) => Some(format!("({e})")),
            None => old.column(&col.name).map(|c| quote_ident(&c.name)),
        };
        match source {
            Some(s) => {
                targets.push(quote_ident(&col.name));
                sources.push(s);
            }
            None if col.not_null
                && col.default.is_none()
                && !(col.pk > 0 && is_rowid_alias(new)) =>
            {
                return Err(invalid(format!(
                    "new column {}.{} is NOT NULL without a DEFAULT and the old table has no such column; \
                     give it a DEFAULT or a ColumnMapping",
                    old.name, col.name
                )));
            }
            None => {}
        }
    }
    Ok((targets, sources))
}

/// The table's AUTOINCREMENT counter, when it has one.
fn autoincrement_sequence(
    conn: &rusqlite::Connection,
    table: &str,
    path: &std::path::Path,
) -> Result<Option<i64>> {
    let has_sequence: bool = conn
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| Error::from_sqlite(e, path))?;
    if !has_sequence {
        return Ok(None);
    }
    let mut stmt = conn
        .prepare("SELECT seq FROM sqlite_sequence WHERE name = ?1")
        .map_err(|e| Error::from_sqlite(e, path))?;
    let mut rows = stmt
        .query([table])
        .map_err(|e| Error::from_sqlite(e, path))?;
    match rows.next().map_err(|e| Error::from_sqlite(e, path))? {
        Some(row) => Ok(Some(row.get(0).map_err(|e| Error::from_sqlite(e, path))?)),
        None => Ok(None),
    }
}

fn check_views(tx: &Transaction<'_>, path: &std::path::Path) -> Result<()> {
    let conn = tx.conn()?;
    let views: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'view'")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| Error::from_sqlite(e, path))?;
    for view in views {
        if let Err(e) = conn.prepare(&format!("SELECT * FROM {} LIMIT 0", quote_ident(&view))) {
            return Err(invalid(format!(
                "view {view} no longer compiles after the rebuild ({e}); drop or recreate it in the same migration"
            )));
        }
    }
    Ok(())
}
