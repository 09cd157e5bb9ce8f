//! Salvaging every readable row of a damaged database into `NAME.salvage.db`.
//!
//! Rowid tables are read in rowid order. When a damaged page stops the scan, the next readable
//! rowid is found by seeking from the root again — probing `rowid >= last + 2^k` for growing
//! `k` until a seek succeeds, then binary-searching back to the first start that reads — so
//! the rows after a bad page are recovered too. WITHOUT ROWID tables are read until the first
//! damaged page. Work happens on a copy; the quarantined files are never touched.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, Statement};

use super::quarantine::Quarantined;
use crate::backup::open_destination;
use crate::error::{Error, Result};
use crate::store::EncryptionKey;
use crate::store::schema::quote_ident;
use crate::value::Value;

/// What was salvaged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SalvageReport {
    /// The salvage database, when anything could be read.
    pub path: Option<PathBuf>,
    /// Rows salvaged from the application's tables (peerlite's own tables not counted).
    pub rows: u64,
    /// Rows salvaged per table.
    pub tables: Vec<(String, u64)>,
}

/// `<stem>.salvage.db` beside the database.
pub(crate) fn salvage_path(db: &Path) -> PathBuf {
    let stem = db
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("database");
    db.with_file_name(format!("{stem}.salvage.db"))
}

/// Salvages the quarantined database into `salvage_path(db)`.
pub(crate) fn salvage_quarantined(
    q: &Quarantined,
    db: &Path,
    key: Option<&EncryptionKey>,
) -> Result<SalvageReport> {
    let Some(damaged) = &q.db else {
        return Ok(SalvageReport::default());
    };
    let work = q.dir.join("salvage-work");
    std::fs::create_dir_all(&work).map_err(|e| Error::io("creating", &work, e))?;
    let file = damaged
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("db"));
    let copy = work.join(&file);
    std::fs::copy(damaged, &copy).map_err(|e| Error::io("copying for salvage", damaged, e))?;
    let wal = PathBuf::from(format!("{}-wal", damaged.display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", copy.display()))
            .map_err(|e| Error::io("copying for salvage", &wal, e))?;
    }
    let dest = salvage_path(db);
    if dest.exists() {
        // An earlier salvage is kept, with the files it came from.
        let keep = q.dir.join(
            dest.file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("earlier.salvage.db")),
        );
        std::fs::rename(&dest, &keep)
            .map_err(|e| Error::io("keeping the earlier salvage", &dest, e))?;
    }
    let report = salvage_file(&copy, key, &dest);
    let _ = std::fs::remove_dir_all(&work);
    report
}

fn open_damaged(path: &Path, key: Option<&EncryptionKey>) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE");
    if let Some(key) = key {
        conn.pragma_update(None, "key", key.secret())?;
    }
    Ok(conn)
}

/// The damaged database, reopened after every failed read: once SQLCipher has hit a damaged
/// page, later reads of sound pages fail on that connection too, but work on a fresh one.
struct Source<'a> {
    path: &'a Path,
    key: Option<&'a EncryptionKey>,
    conn: Connection,
}

impl Source<'_> {
    fn refresh(&mut self) -> bool {
        match open_damaged(self.path, self.key) {
            Ok(conn) => {
                self.conn = conn;
                true
            }
            Err(_) => false,
        }
    }
}

fn salvage_file(
    src_path: &Path,
    key: Option<&EncryptionKey>,
    dest: &Path,
) -> Result<SalvageReport> {
    let Ok(conn) = open_damaged(src_path, key) else {
        return Ok(SalvageReport::default());
    };
    let mut src = Source {
        path: src_path,
        key,
        conn,
    };
    let tables: Vec<(String, String)> = match src
        .conn
        .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
        .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
    {
        Ok(tables) => tables,
        Err(e) => {
            tracing::warn!(%e, "the schema of the damaged database is unreadable: nothing to salvage");
            return Ok(SalvageReport::default());
        }
    };
    let out = open_destination(dest, key)?;
    out.execute_batch("BEGIN")
        .map_err(|e| Error::from_sqlite(e, dest))?;
    let mut report = SalvageReport {
        path: Some(dest.to_path_buf()),
        ..Default::default()
    };
    for (name, sql) in tables {
        if let Err(e) = out.execute_batch(&sql) {
            tracing::warn!(table = %name, %e, "cannot recreate the table in the salvage file");
            continue;
        }
        let rows = copy_table(&mut src, &out, &name, dest)?;
        if !crate::store::writer::is_internal_table(&name) {
            report.rows += rows;
        }
        report.tables.push((name, rows));
    }
    out.execute_batch("COMMIT")
        .map_err(|e| Error::from_sqlite(e, dest))?;
    Ok(report)
}

enum Run {
    Done,
    /// The scan stopped; the last rowid copied before it did.
    Stopped(Option<i64>),
}

fn copy_table(src: &mut Source<'_>, out: &Connection, table: &str, dest: &Path) -> Result<u64> {
    let q = quote_ident(table);
    let columns: Vec<String> = match src.conn.prepare(&format!("SELECT * FROM {q} LIMIT 0")) {
        Ok(st) => st.column_names().map(str::to_owned).collect(),
        Err(_) => return Ok(0),
    };
    let has_rowid = src
        .conn
        .prepare(&format!("SELECT rowid FROM {q} LIMIT 0"))
        .is_ok();
    let mut targets: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    if has_rowid {
        targets.insert(0, "rowid".into());
    }
    let marks = vec!["?"; targets.len()].join(", ");
    let mut insert = out
        .prepare(&format!(
            "INSERT OR IGNORE INTO {q} ({}) VALUES ({marks})",
            targets.join(", ")
        ))
        .map_err(|e| Error::from_sqlite(e, dest))?;
    let mut copied = 0u64;
    if !has_rowid {
        let _ = scan(
            &src.conn,
            &format!("SELECT * FROM {q}"),
            None,
            &mut insert,
            &mut copied,
            false,
        );
        return Ok(copied);
    }
    let select = format!("SELECT rowid, * FROM {q} WHERE rowid >= ?1 ORDER BY rowid");
    let mut start = i64::MIN;
    loop {
        match scan(
            &src.conn,
            &select,
            Some(start),
            &mut insert,
            &mut copied,
            true,
        ) {
            Run::Done => break,
            Run::Stopped(last) => {
                if !src.refresh() {
                    break;
                }
                let from = match last {
                    Some(r) => r.checked_add(1),
                    None => start.checked_add(1),
                };
                match from.and_then(|f| next_readable(src, &q, f)) {
                    Some(next) => start = next,
                    None => break,
                }
            }
        }
    }
    Ok(copied)
}

/// Copies rows from `sql` (bound to `start`) until the end or the first unreadable page.
fn scan(
    src: &Connection,
    sql: &str,
    start: Option<i64>,
    insert: &mut Statement<'_>,
    copied: &mut u64,
    rowid_first: bool,
) -> Run {
    let Ok(mut stmt) = src.prepare(sql) else {
        return Run::Stopped(None);
    };
    let width = stmt.column_count();
    let rows = match start {
        Some(s) => stmt.query([s]),
        None => stmt.query([]),
    };
    let Ok(mut rows) = rows else {
        return Run::Stopped(None);
    };
    let mut last = None;
    loop {
        match rows.next() {
            Ok(Some(row)) => {
                let values: Option<Vec<Value>> = (0..width)
                    .map(|i| row.get_ref(i).ok().map(Value::from_ref))
                    .collect();
                let Some(values) = values else {
                    return Run::Stopped(last);
                };
                let bound = values
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, v)| insert.raw_bind_parameter(i + 1, v));
                if bound.is_ok() {
                    // INSERT OR IGNORE: count rows actually written, not rows seen twice.
                    *copied += insert.raw_execute().map_or(0, |n| n as u64);
                }
                if rowid_first {
                    if let Some(Value::Integer(r)) = values.first() {
                        last = Some(*r);
                    }
                }
            }
            Ok(None) => return Run::Done,
            Err(_) => return Run::Stopped(last),
        }
    }
}

/// The smallest start at or after `from` from which a seek reads without error, if any.
fn next_readable(src: &mut Source<'_>, table: &str, from: i64) -> Option<i64> {
    let sql = format!("SELECT rowid FROM {table} WHERE rowid >= ?1 ORDER BY rowid LIMIT 1");
    let mut probe = |s: i64| -> std::result::Result<bool, ()> {
        match src.conn.query_row(&sql, [s], |_| Ok(())) {
            Ok(()) => Ok(true),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(false),
            Err(_) => {
                src.refresh();
                Err(())
            }
        }
    };
    let mut failed = from.checked_sub(1);
    for k in 0..63u32 {
        let at = from.saturating_add((1i64 << k) - 1);
        match probe(at) {
            Err(()) => {
                failed = Some(at);
                if at == i64::MAX {
                    return None;
                }
            }
            Ok(false) => return None,
            Ok(true) => {
                // Narrow down between the last failing probe and this one.
                let (mut lo, mut hi) = (i128::from(failed.unwrap_or(i64::MIN)), i128::from(at));
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    let Ok(m) = i64::try_from(mid) else { break };
                    match probe(m) {
                        Ok(true) => hi = mid,
                        Ok(false) => break,
                        Err(()) => lo = mid,
                    }
                }
                return i64::try_from(hi).ok();
            }
        }
    }
    None
}

impl crate::RdbStore {
    /// Adds the rows of a salvage file that this database lacks (same rowid or primary key is
    /// kept as it is here), in one transaction. Returns the rows added per table.
    pub fn merge_salvage(&self, salvage: &Path) -> Result<Vec<(String, usize)>> {
        let inner = &self.inner;
        inner.ensure_open()?;
        let path = inner.config.path();
        let key = inner
            .config
            .key
            .as_ref()
            .map(|k| k.secret().to_owned())
            .unwrap_or_default();
        {
            let guard = inner
                .writer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let writer = guard.as_ref().ok_or(Error::ReadOnly {
                detail: "merging needs a writer".into(),
            })?;
            writer
                .conn
                .execute(
                    "ATTACH DATABASE ?1 AS peerlite_salvage KEY ?2",
                    [salvage.display().to_string(), key],
                )
                .map_err(|e| Error::from_sqlite(e, salvage))?;
        }
        let merged = self.transaction(|tx| {
            let tables: Vec<String> = tx
                .conn()?
                .prepare("SELECT name FROM peerlite_salvage.sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
                .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                .map_err(|e| Error::from_sqlite(e, path))?;
            let mut merged = Vec::new();
            for table in tables {
                let Ok(info) = inner.schema.table(tx.conn()?, &table, path) else { continue };
                let theirs: Vec<String> = tx
                    .conn()?
                    .prepare(&format!("SELECT * FROM peerlite_salvage.{} LIMIT 0", quote_ident(&table)))
                    .map(|st| st.column_names().map(str::to_owned).collect())
                    .map_err(|e| Error::from_sqlite(e, path))?;
                let mut shared: Vec<String> = theirs.iter().filter(|c| info.column(c).is_some()).map(|c| quote_ident(c)).collect();
                if !info.without_rowid {
                    shared.insert(0, "rowid".into());
                }
                let list = shared.join(", ");
                let n = tx.execute_own(
                    &format!(
                        "INSERT OR IGNORE INTO main.{q} ({list}) SELECT {list} FROM peerlite_salvage.{q}",
                        q = quote_ident(&info.name)
                    ),
                    &[],
                )?;
                merged.push((info.name.clone(), n));
            }
            Ok(merged)
        });
        if let Some(writer) = inner
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            let _ = writer
                .conn
                .execute_batch("DETACH DATABASE peerlite_salvage");
        }
        merged
    }
}
