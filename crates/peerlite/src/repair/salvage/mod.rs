//! Salvaging every readable row of a damaged database into `NAME.salvage.db`, the way SQLite's
//! `.recover` does it: pages are read and parsed directly (b-tree pages, cells, records,
//! overflow chains), never through SQL over the damaged b-trees, so a damaged page costs the
//! rows on it and nothing more, and a file cut short — anywhere, page-aligned or not — gives
//! up every row on the pages it still has.
//!
//! # The bound
//!
//! Let N be the pages of the damaged database: its file's size divided by the page size
//! (rounded up), or the size its WAL's last commit gives. Then:
//!
//! - every page is fetched at most twice, so [`SalvageReport::pages_read`] ≤ 2·N: once by the
//!   walk that reaches it first, and a second time only when that walk could not take it
//!   (a damaged pointer led a walk of the other b-tree kind to it, or it was read as an
//!   orphan before the cell whose overflow page it is). A page's state only moves forward
//!   (unseen → seen → taken or junk), so child pointers that loop and rowids out of order
//!   never make a walk repeat itself; walks use an explicit stack, not recursion;
//! - every record is decoded once, in time linear in its size, and no payload is assembled
//!   beyond the bytes the file holds;
//! - a plaintext database is read with plain file reads: no SQLite connection is opened on
//!   it ([`SalvageReport::connections`] = 0). An encrypted one opens one connection with the
//!   key (one key derivation) that first runs SQLCipher's HMAC check over the file (N more
//!   page reads inside SQLCipher) so damaged pages are never asked for, plus one re-attach
//!   — no key derivation — for each page whose newer copy in the WAL fails to decrypt.
//!
//! The quarantined files are only read, never written, and never copied: salvage needs no
//! disk space beyond the salvage database it writes, which is written under a temporary name
//! and renamed only when complete (removed on any failure).
//!
//! # What is salvaged
//!
//! The rows of every table named in the schema (page 1's b-tree), rowid and WITHOUT ROWID,
//! with overflow chains followed while they hold together. Pages no walk reached — the
//! subtree under a damaged interior page, or the pages of a table whose schema entry was lost
//! — are read as orphans: their rows go to the one table whose records have as many fields,
//! or to `peerlite_lost_and_found` (page, rowid, table, fields) when no single table fits.
//! Pages on the free list (deleted data) are left out. A field whose bytes could not be read
//! comes back NULL (counted in [`SalvageReport::partial_rows`]), never guessed: every row
//! returned was written, possibly minus columns. (A plaintext page overwritten with content
//! that is itself valid — all zeros at the end of an overflow chain, say — cannot be told
//! from the real one: SQLite keeps no page checksums. Encrypted stores have them.)

mod btree;
mod output;
mod pages;
mod recover;
mod wal;

use std::path::{Path, PathBuf};

use crate::backup::naming::with_suffix;
use crate::backup::{naming, sync_dir};
use crate::error::{Error, Result};
use crate::store::EncryptionKey;
use crate::store::schema::quote_ident;
use crate::store::writer::is_internal_table;
use output::{Encoding, Output, SchemaEntry};
use pages::{CipherPages, FilePages, PageSource};
use recover::{Origin, Row, Sink, Walker};

/// What was salvaged, and the work it took.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SalvageReport {
    /// The salvage database, when anything could be read.
    pub path: Option<PathBuf>,
    /// Rows salvaged into the application's tables (peerlite's own tables not counted).
    pub rows: u64,
    /// Rows salvaged per table (peerlite's own tables included).
    pub tables: Vec<(String, u64)>,
    /// Rows kept in `peerlite_lost_and_found` (no table could be named for them).
    pub lost_and_found: u64,
    /// Salvaged rows with fields that could not be read (left NULL).
    pub partial_rows: u64,
    /// Pages of the damaged database (N in the bound).
    pub pages: u64,
    /// Pages fetched to be parsed (at most 2·N).
    pub pages_read: u64,
    /// Pages that could not be read or were not part of any b-tree, overflow chain or free list.
    pub unreadable_pages: u64,
    /// SQLite connections (and re-attachments) opened on the damaged file.
    pub connections: u64,
    /// Why salvage failed, when it did (the rebuild goes on without it).
    pub error: Option<String>,
    /// Salvage files of earlier repairs beside the database: kept as they were, never
    /// replaced by this one.
    #[serde(default)]
    pub earlier: Vec<PathBuf>,
}

/// Where a new salvage of `db` goes: `<stem>.salvage.db` beside the database, or
/// `<stem>.salvage-2.db`, `-3`, … when earlier salvages are there. A salvage file may be the
/// only copy of rows written after the last backup, so none is ever replaced; returns the
/// new path and the earlier files.
pub(crate) fn salvage_path(db: &Path) -> (PathBuf, Vec<PathBuf>) {
    let stem = db
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("database");
    let mut earlier = Vec::new();
    for n in 1..=10_000u32 {
        let name = match n {
            1 => format!("{stem}.salvage.db"),
            n => format!("{stem}.salvage-{n}.db"),
        };
        let path = db.with_file_name(name);
        if path.symlink_metadata().is_err() {
            return (path, earlier);
        }
        earlier.push(path);
    }
    // Ten thousand salvages beside one database: a name of its own time.
    let stamped = naming::stamped(&format!("{stem}.salvage-"), naming::now_ms());
    (db.with_file_name(format!("{stamped}.db")), earlier)
}

/// Salvages the readable rows of the damaged database `damaged` (and its `-wal`, when there
/// is one) into a new database at `dest`, encrypted with `key` when the damaged one is. The
/// damaged files are only read. `dest` appears complete or not at all.
///
/// ```
/// use peerlite::{RdbStore, StoreConfig};
///
/// let dir = tempfile::tempdir()?;
/// let db = dir.path().join("a.db");
/// let store = RdbStore::open(StoreConfig::new(&db))?;
/// store.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)", &[])?;
/// store.execute(
///     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
///      INSERT INTO t(v) SELECT printf('row %d of a thousand', i) FROM n",
///     &[],
/// )?;
/// store.close()?;
/// // Cut the file in half, as a copy interrupted half-way would.
/// let bytes = std::fs::read(&db)?;
/// std::fs::write(&db, &bytes[..bytes.len() / 2])?;
///
/// let report = peerlite::repair::salvage(&db, None, &dir.path().join("a.salvage.db"))?;
/// assert!(report.rows > 300, "the rows on the half that is left");
/// assert!(report.pages_read <= 2 * report.pages);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// 14800011 when an encrypted database's first page does not decrypt and no other page does
/// under its own salt either (see `CipherPages::open`: a repair also tries the salts the
/// store's backups recorded);
/// 14800001 when the file is open by a store of this process; I/O and SQLite errors of
/// writing `dest` (nothing is left behind then).
pub fn salvage(damaged: &Path, key: Option<&EncryptionKey>, dest: &Path) -> Result<SalvageReport> {
    salvage_with(damaged, key, dest, &Hints::default())
}

/// What a repair knows about the damaged store beyond its files, from its backups.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hints {
    /// The store's key-derivation salts its backups' manifests recorded (encrypted stores): a
    /// page 1 that does not decrypt no longer hides the other pages (see `CipherPages::open`).
    pub salts: Vec<String>,
    /// A verified backup of the same store, to take the schema from when page 1 is lost: a
    /// backup is a page-for-page copy, so its tables' root pages are the store's (tables made
    /// after it have their rows kept by field count or in `peerlite_lost_and_found`).
    pub schema_from: Option<PathBuf>,
}

/// [`salvage`] with what a repair knows from the store's backups.
pub(crate) fn salvage_with(
    damaged: &Path,
    key: Option<&EncryptionKey>,
    dest: &Path,
    hints: &Hints,
) -> Result<SalvageReport> {
    if crate::store::connection::is_open_in_this_process(damaged) {
        return Err(Error::invalid(
            crate::StoreKind::Relational,
            "the database is open by a store in this process; close it before salvaging",
        ));
    }
    let wal = with_suffix(damaged, "-wal");
    let scratch = naming::unique_tmp_path(dest);
    let mut source: Box<dyn PageSource> = match key {
        None => Box::new(FilePages::open(damaged, &wal)?),
        Some(key) => Box::new(CipherPages::open(
            damaged,
            &wal,
            key,
            &hints.salts,
            &scratch,
        )?),
    };
    let tmp = naming::unique_tmp_path(dest);
    let result = write_salvage(&mut *source, key, &tmp, dest, hints);
    if result.as_ref().map_or(true, |r| r.path.is_none()) {
        remove_tmp(&tmp);
    }
    result
}

fn remove_tmp(tmp: &Path) {
    for suffix in ["", "-journal"] {
        let _ = std::fs::remove_file(with_suffix(tmp, suffix));
    }
}

/// Collects the schema's rows.
#[derive(Default)]
struct SchemaRows(Vec<Row>);

impl Sink for SchemaRows {
    fn rows(&mut self, _: Origin, rows: Vec<Row>) -> Result<()> {
        self.0.extend(rows);
        Ok(())
    }
}

fn write_salvage(
    source: &mut dyn PageSource,
    key: Option<&EncryptionKey>,
    tmp: &Path,
    dest: &Path,
    hints: &Hints,
) -> Result<SalvageReport> {
    let layout = source.layout();
    let mut report = SalvageReport {
        pages: u64::from(layout.page_count),
        ..SalvageReport::default()
    };
    if layout.page_size - layout.reserved < btree::MIN_USABLE {
        return Ok(report);
    }
    let lost_schema = source.schema_lost();
    let mut out = Output::create(tmp, key)?;
    let mut walker = Walker::new(source);
    let mut schema = SchemaRows::default();
    walker.walk_tree(1, &mut schema)?;
    let encoding = match walker.header().and_then(|h| btree::u32_at(h, 56)) {
        Some(2) => Encoding::Utf16Le,
        Some(3) => Encoding::Utf16Be,
        _ => Encoding::Utf8,
    };
    let mut entries: Vec<SchemaEntry> = schema
        .0
        .iter()
        .filter_map(|row| {
            let f = &row.fields;
            let root = match f.get(3) {
                Some(btree::Field::Integer(r)) => u32::try_from(*r).ok()?,
                _ => return None,
            };
            Some(SchemaEntry {
                kind: output::text(f.first(), encoding)?,
                name: output::text(f.get(1), encoding)?,
                root,
                sql: output::text(f.get(4), encoding),
            })
        })
        .collect();
    if lost_schema {
        entries = hints
            .schema_from
            .as_deref()
            .map(|backup| schema_of(backup, key))
            .unwrap_or_default();
    }
    out.add_schema(&entries, encoding)?;
    let mut roots: Vec<u32> = entries.iter().map(|e| e.root).filter(|r| *r > 1).collect();
    roots.sort_unstable();
    roots.dedup();
    for root in roots {
        walker.walk_tree(root, &mut out)?;
    }
    walker.walk_freelist();
    walker.orphans(&mut out)?;
    report.pages_read = walker.work.pages_read;
    report.unreadable_pages = walker.unclaimed();
    drop(walker);
    report.connections = source.connections();
    let keep = !out.is_empty();
    let written = out.finish()?;
    report.rows = written
        .tables
        .iter()
        .filter(|(t, _)| !is_internal_table(t))
        .map(|(_, n)| n)
        .sum();
    report.tables = written.tables;
    report.lost_and_found = written.lost_and_found;
    report.partial_rows = written.partial_rows;
    if keep {
        std::fs::File::open(tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io("syncing the salvage file", tmp, e))?;
        std::fs::rename(tmp, dest).map_err(|e| Error::io("naming the salvage file", dest, e))?;
        if let Some(dir) = dest.parent() {
            sync_dir(dir)?;
        }
        report.path = Some(dest.to_path_buf());
    }
    Ok(report)
}

/// The schema of a (verified) backup: its tables, indexes and their root pages. Empty when
/// it cannot be read.
fn schema_of(backup: &Path, key: Option<&EncryptionKey>) -> Vec<SchemaEntry> {
    let Ok(conn) = crate::store::connection::open_file(backup, key) else {
        return Vec::new();
    };
    conn.prepare("SELECT type, name, rootpage, sql FROM sqlite_schema")
        .and_then(|mut st| {
            st.query_map([], |r| {
                Ok(SchemaEntry {
                    kind: r.get(0)?,
                    name: r.get(1)?,
                    root: r.get::<_, Option<u32>>(2)?.unwrap_or(0),
                    sql: r.get(3)?,
                })
            })?
            .collect()
        })
        .unwrap_or_default()
}

/// Salvages the quarantined database `damaged` into a new salvage file beside `db` (see
/// [`salvage_path`]: earlier ones are kept as they are and named in the report), after
/// removing leftovers of an interrupted salvage. A failure is reported, not returned: the
/// rebuild goes on without the salvage.
pub(crate) fn salvage_quarantined(
    damaged: &Path,
    db: &Path,
    key: Option<&EncryptionKey>,
    hints: &Hints,
) -> SalvageReport {
    let (dest, earlier) = salvage_path(db);
    for file in std::iter::once(&dest).chain(&earlier) {
        remove_leftovers(file);
    }
    let mut report = match salvage_with(damaged, key, &dest, hints) {
        Ok(report) => report,
        Err(e) => failed(e),
    };
    report.earlier = earlier;
    report
}

fn failed(e: Error) -> SalvageReport {
    // Reported to the caller too (the report's `error`).
    tracing::info!(%e, "salvage failed; the rebuild goes on without it");
    SalvageReport {
        error: Some(e.to_string()),
        ..SalvageReport::default()
    }
}

/// Removes `DEST.<pid>-<n>.tmp` files a killed salvage left.
fn remove_leftovers(dest: &Path) {
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        if file.starts_with(&prefix) && (file.ends_with(".tmp") || file.ends_with(".tmp-journal")) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl crate::RdbStore {
    /// Adds the rows of a salvage file that this database lacks (same rowid or primary key is
    /// kept as it is here), in one transaction. Returns the rows added per table. peerlite's
    /// own tables (and `peerlite_lost_and_found`) are left out: their rows describe the
    /// damaged store, not this one.
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
            for table in tables.into_iter().filter(|t| !is_internal_table(t)) {
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
