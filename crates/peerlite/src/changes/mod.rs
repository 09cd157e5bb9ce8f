//! Distributed tables and change capture (seed 002).
//!
//! `set_distributed_tables` makes tables distributed — new ones or existing ones with their
//! data — in ArkData's two modes: device collaboration (each device's rows in a table of their
//! own, no conflicts by construction) and single version (every device's rows merged into the
//! one table by a conflict column, configured by a `sync_schema.json`). From then on, triggers
//! record every change in the table's clock, which is what sync sends.
//!
//! ```
//! use peerlite::changes::{DistributedConfig, DistributedType};
//! use peerlite::{bucket, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let store = RdbStore::open(StoreConfig::new(dir.path().join("RdbTest.db")).device_id("phone"))?;
//! store.execute("CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER)", &[])?;
//! store.insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 18 })?;
//! store.set_distributed_tables(&["EMPLOYEE"], DistributedType::Device, &DistributedConfig::default())?;
//! store.insert("EMPLOYEE", &bucket! { "NAME" => "Bo", "AGE" => 30 })?;
//! let changes = store.changes(Some("EMPLOYEE"), 0)?;
//! assert_eq!(changes.len(), 2); // the existing row and the new one
//! assert_eq!(changes[1].origin, "phone");
//! assert!(store.obtain_distributed_table_name("laptop", "EMPLOYEE")?.ends_with("_EMPLOYEE"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod hlc;
pub(crate) mod identity;
pub(crate) mod layer;
pub(crate) mod mark;
pub(crate) mod registers;
pub(crate) mod registry;
pub mod retention;
pub(crate) mod state;
pub(crate) mod triggers;
mod validate;
pub(crate) mod verify;

pub use hlc::{Clock, Hlc, MAX_DRIFT_MS, ManualClock, SystemClock};
pub use registers::ColumnRegister;
pub use registry::{DistributedTableType, TableMeta};
pub use retention::{DEFAULT_RETENTION, PurgeReport};

use crate::StoreKind;
use crate::error::{Error, Result};
use crate::schema::{Rule, SchemaProblem, SyncSchema, table_facts};
use crate::store::schema::quote_ident;
use crate::store::{RdbStore, Transaction};
use crate::value::Value;

/// ArkData's `DistributedType`: peerlite syncs device to device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DistributedType {
    /// Between the devices of one user.
    #[default]
    Device,
}

/// How tables are distributed (ArkData's `DistributedConfig`).
#[derive(Debug, Clone, Default)]
pub struct DistributedConfig {
    /// Device collaboration (the default) or single version.
    pub table_type: DistributedTableType,
    /// Push local commits to connected peers shortly after commit, when a node serves the
    /// store (kept per table in the store; calling `set_distributed_tables` again sets it
    /// anew for the tables named).
    pub auto_sync: bool,
    /// The sync schema: required for single-version tables, ignored otherwise.
    pub schema: Option<SyncSchema>,
}

impl DistributedConfig {
    /// Single-version tables configured by `schema`.
    pub fn single_version(schema: SyncSchema) -> Self {
        DistributedConfig {
            table_type: DistributedTableType::SingleVersion,
            auto_sync: false,
            schema: Some(schema),
        }
    }
}

/// The timestamp of rows that existed before their table was distributed: the oldest there
/// is, so every write whose time is known beats them (equal ones resolve as ties do).
pub const UNKNOWN_TIME: u64 = 1;

/// One captured change, as `peerlite changes` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// The table (a device table for rows of another device).
    pub table: String,
    /// The row's identity.
    pub key: Value,
    /// The device of its last insert or delete.
    pub origin: String,
    /// That event's timestamp.
    pub hlc: u64,
    /// The local sequence number of the row's latest change.
    pub seq: i64,
    /// True when the row is deleted.
    pub tombstone: bool,
    /// Columns written after the insert: (column, timestamp, device).
    pub columns: Vec<(String, u64, String)>,
}

/// `peerlite_dev_<hash of the device id>_<table>`: where device collaboration keeps `device`'s
/// rows of `table`.
pub fn device_table_name(device: &str, table: &str) -> String {
    let hash = blake3::hash(device.as_bytes()).to_hex();
    format!(
        "{}{}_{table}",
        crate::store::writer::DEVICE_TABLE_PREFIX,
        &hash[..16]
    )
}

fn schema_error(rule: Rule, table: &str, column: Option<&str>, message: String) -> Error {
    Error::SyncSchema {
        problems: vec![SchemaProblem::error(rule, table, column, message)],
    }
}

impl RdbStore {
    /// This device's id (from the config, or made when the store was created).
    pub fn device_id(&self) -> &str {
        self.inner.device_id()
    }

    /// Makes `tables` distributed (ArkData's `setDistributedTables`). Existing rows are
    /// captured and will sync. Calling it again with a newer schema adds sync columns (their
    /// rows sync again).
    ///
    /// # Errors
    /// 14800051 when the mode differs from the database's other distributed tables; 1703xxxx
    /// for each sync schema rule broken (composite key, missing conflict column, NULLs in it…).
    pub fn set_distributed_tables(
        &self,
        tables: &[&str],
        _kind: DistributedType,
        config: &DistributedConfig,
    ) -> Result<()> {
        if let Some(own) = tables
            .iter()
            .find(|t| crate::store::writer::is_internal_table(t))
        {
            return Err(Error::invalid(
                StoreKind::Relational,
                format!("{own} is peerlite's own table"),
            ));
        }
        self.distribute_tables(tables, config)
    }

    /// `set_distributed_tables` without the guard on peerlite's own tables (the key-value
    /// store distributes its entry table).
    pub(crate) fn distribute_tables(
        &self,
        tables: &[&str],
        config: &DistributedConfig,
    ) -> Result<()> {
        let db_name = validate::db_name(self);
        self.transaction(|tx| {
            let conn = tx.conn()?;
            let path = self.path();
            let sql_err = |e| Error::from_sqlite(e, path);
            registry::set_local_device(conn, self.device_id()).map_err(sql_err)?;
            let existing = registry::load_all(conn).map_err(sql_err)?;
            if let Some(other) = existing.iter().find(|m| m.base.is_none() && m.mode != config.table_type) {
                return Err(Error::DistributedTypeMismatch {
                    detail: format!(
                        "{} is {}; all distributed tables of a database use one mode, and it cannot be switched to {}",
                        other.name,
                        other.mode.as_str(),
                        config.table_type.as_str()
                    ),
                });
            }
            // Table names match as SQLite matches them (case-insensitively); from here on the
            // name is the table's own spelling.
            let mut names = Vec::with_capacity(tables.len());
            for table in tables {
                names.push(validate::table_name(conn, table).map_err(sql_err)?.unwrap_or_else(|| (*table).to_owned()));
            }
            // Every problem of every table, not only the first table's.
            let mut problems = Vec::new();
            for table in &names {
                problems.extend(validate::problems_before_distributing(conn, table, config, &db_name, existing.iter().find(|m| m.name == *table)).map_err(sql_err)?);
            }
            if validate::has_errors(&problems) {
                problems.sort_by_key(|p| p.severity == crate::schema::Severity::Warning);
                return Err(Error::SyncSchema { problems });
            }
            for table in &names {
                distribute(tx, table, config, &db_name, existing.iter().find(|m| m.name == *table))?;
            }
            Ok(())
        })
    }

    /// SQLite's `PRAGMA data_version` on this store's writer connection: it moves when another
    /// connection — in practice another process (`peerlite sql` beside `peerlite serve`) —
    /// commits to the database, and never for this store's own commits (which its observers
    /// report). `None` when the writer is busy in a transaction right now (ask again later:
    /// the number is cumulative, nothing is missed).
    ///
    /// ```
    /// use peerlite::{RdbStore, StoreConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = RdbStore::open(StoreConfig::new(dir.path().join("a.db")))?;
    /// let before = store.data_version()?;
    /// store.execute("CREATE TABLE t(x)", &[])?; // this store's own commit
    /// assert_eq!(store.data_version()?, before);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The store's error when it is closed; 14800027 for a read-only store (it has no writer).
    pub fn data_version(&self) -> Result<Option<i64>> {
        self.inner.ensure_open()?;
        let guard = match self.inner.writer.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
        };
        let Some(writer) = guard.as_ref() else {
            return Err(Error::ReadOnly {
                detail: "this store has no writer".into(),
            });
        };
        writer
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map(Some)
            .map_err(|e| Error::from_sqlite(e, self.path()))
    }

    /// The distributed tables (and device tables holding other devices' rows).
    pub fn distributed_tables(&self) -> Result<Vec<TableMeta>> {
        let path = self.path();
        self.inner
            .read(|c| registry::load_all(c).map_err(|e| Error::from_sqlite(e, path)))
    }

    /// The table holding `device`'s rows of `table` (ArkData's `obtainDistributedTableName`);
    /// it exists once rows from that device have arrived.
    ///
    /// # Errors
    /// 17040001 when `table` is not a device-collaboration distributed table.
    pub fn obtain_distributed_table_name(&self, device: &str, table: &str) -> Result<String> {
        let meta = self
            .distributed_tables()?
            .into_iter()
            .find(|m| m.base.is_none() && m.name == table);
        match meta {
            Some(m) if m.mode == DistributedTableType::DeviceCollaboration => {
                Ok(device_table_name(device, table))
            }
            Some(_) => Err(Error::invalid(
                StoreKind::Relational,
                format!("{table} is single-version: other devices' rows are merged into it"),
            )),
            None => Err(Error::NotDistributed {
                table: table.to_owned(),
            }),
        }
    }

    /// The captured changes with a sequence number above `since`, of one table or all.
    pub fn changes(&self, table: Option<&str>, since: i64) -> Result<Vec<ChangeRecord>> {
        let path = self.path();
        self.inner.read(|conn| {
            let sql_err = |e| Error::from_sqlite(e, path);
            let devices = registry::devices(conn)
                .map_err(sql_err)?
                .into_iter()
                .collect();
            let mut out = Vec::new();
            for meta in registry::load_all(conn).map_err(sql_err)? {
                if table.is_some_and(|t| t != meta.name && t != meta.logical()) {
                    continue;
                }
                let sql = format!("{} WHERE seq > ?1 ORDER BY seq", clock_select(&meta));
                let mut stmt = conn.prepare(&sql).map_err(sql_err)?;
                let mut rows = stmt.query([since]).map_err(sql_err)?;
                while let Some(r) = rows.next().map_err(sql_err)? {
                    out.push(change_record(&meta, &devices, r).map_err(sql_err)?);
                }
            }
            out.sort_by_key(|c| c.seq);
            Ok(out)
        })
    }

    /// The clock of one row of `table` (a distributed table or a device table): its latest
    /// change, or `None` when the row never existed here.
    ///
    /// # Errors
    /// 17040001 when `table` is not distributed.
    pub fn change_of(&self, table: &str, key: &Value) -> Result<Option<ChangeRecord>> {
        let path = self.path();
        self.inner.read(|conn| {
            let sql_err = |e| Error::from_sqlite(e, path);
            let meta = registry::load_all(conn)
                .map_err(sql_err)?
                .into_iter()
                .find(|m| m.name == table)
                .ok_or_else(|| Error::NotDistributed {
                    table: table.to_owned(),
                })?;
            let devices = registry::devices(conn)
                .map_err(sql_err)?
                .into_iter()
                .collect();
            let sql = format!("{} WHERE ident = ?1", clock_select(&meta));
            let mut stmt = conn.prepare(&sql).map_err(sql_err)?;
            let mut rows = stmt.query([key]).map_err(sql_err)?;
            match rows.next().map_err(sql_err)? {
                Some(r) => Ok(Some(change_record(&meta, &devices, r).map_err(sql_err)?)),
                None => Ok(None),
            }
        })
    }
}

fn clock_select(meta: &TableMeta) -> String {
    format!(
        "SELECT ident, seq, hlc, origin, tomb, cols FROM {}",
        meta.clock()
    )
}

/// One clock row as a [`ChangeRecord`], device indexes turned into device ids.
fn change_record(
    meta: &TableMeta,
    devices: &std::collections::HashMap<i64, String>,
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<ChangeRecord> {
    let name = |idx: i64| {
        devices
            .get(&idx)
            .cloned()
            .unwrap_or_else(|| format!("#{idx}"))
    };
    let cols: Option<Vec<u8>> = r.get(5)?;
    let columns = registers::decode(cols.as_deref().unwrap_or_default())
        .into_iter()
        .map(|reg| {
            (
                meta.columns
                    .get(reg.column as usize)
                    .cloned()
                    .unwrap_or_default(),
                reg.hlc,
                name(reg.origin),
            )
        })
        .collect();
    Ok(ChangeRecord {
        table: meta.name.clone(),
        key: Value::from_ref(r.get_ref(0)?),
        seq: r.get(1)?,
        hlc: r.get::<_, i64>(2)? as u64,
        origin: name(r.get(3)?),
        tombstone: r.get(4)?,
        columns,
    })
}

/// Makes one table distributed (or updates it), inside the caller's transaction.
fn distribute(
    tx: &Transaction<'_>,
    table: &str,
    config: &DistributedConfig,
    db_name: &str,
    previous: Option<&TableMeta>,
) -> Result<()> {
    let conn = tx.conn()?;
    let path = tx.inner().config.path();
    let sql_err = |e| Error::from_sqlite(e, path);
    let facts = table_facts(conn, table).map_err(sql_err)?;
    if !facts.exists {
        return Err(Error::UnknownTable {
            table: table.to_owned(),
            kind: StoreKind::Relational,
        });
    }
    if facts.pk_columns.len() > 1 {
        return Err(schema_error(
            Rule::CompositeKey,
            table,
            None,
            format!(
                "composite primary key ({}) cannot be distributed",
                facts.pk_columns.join(", ")
            ),
        ));
    }
    let (identity, columns, schema, version) = match config.table_type {
        DistributedTableType::DeviceCollaboration => {
            let identity = facts
                .pk_columns
                .first()
                .cloned()
                .unwrap_or_else(|| "rowid".to_owned());
            let columns: Vec<String> = facts.columns.iter().map(|c| c.name.clone()).collect();
            (identity, columns, None, 0)
        }
        DistributedTableType::SingleVersion => {
            let schema = config.schema.as_ref().ok_or_else(|| {
                Error::invalid(
                    StoreKind::Relational,
                    "single-version tables need a sync schema (DistributedConfig::single_version)",
                )
            })?;
            let db = schema.database(db_name).ok_or_else(|| {
                schema_error(
                    Rule::DatabaseMissing,
                    table,
                    None,
                    format!("the sync schema has no dbSchema entry with dbName {db_name:?}"),
                )
            })?;
            let entry = db.table(table).ok_or_else(|| {
                schema_error(
                    Rule::TableMissing,
                    table,
                    None,
                    format!("the sync schema for {db_name} does not describe {table}"),
                )
            })?;
            let problems =
                validate::table_problems(conn, entry, db.version, previous).map_err(sql_err)?;
            if validate::has_errors(&problems) {
                return Err(Error::SyncSchema { problems });
            }
            let identity = crate::schema::conflict_columns(entry, &facts)
                .first()
                .map(|c| (*c).to_owned())
                .unwrap_or_default();
            let mut columns: Vec<String> = entry
                .synced_columns()
                .into_iter()
                .map(str::to_owned)
                .collect();
            if !columns.contains(&identity) {
                columns.insert(0, identity.clone());
            }
            (identity, columns, Some(entry.clone()), db.version)
        }
    };
    // Registers refer to columns by position: keep the positions of columns already synced
    // and append new ones.
    let columns = match previous {
        Some(prev) => {
            let mut kept = prev.columns.clone();
            kept.extend(columns.into_iter().filter(|c| !prev.columns.contains(c)));
            kept
        }
        None => columns,
    };
    if columns.len() > 63 {
        return Err(Error::invalid(
            StoreKind::Relational,
            format!("{table} has {} synced columns; at most 63", columns.len()),
        ));
    }
    let tid = match previous {
        Some(p) => p.tid,
        None => registry::next_tid(conn).map_err(sql_err)?,
    };
    let meta = TableMeta {
        name: table.to_owned(),
        tid,
        mode: config.table_type,
        identity,
        columns,
        base: None,
        origin: None,
        schema_version: version,
        schema,
        auto_sync: config.auto_sync,
    };
    let mut ddl = triggers::drop_triggers(&meta);
    ddl.push_str(&triggers::clock_ddl(&meta));
    ddl.push_str(&crate::sync::extract::pending_ddl(&meta));
    ddl.push_str(&triggers::capture_triggers(&meta));
    if meta.mode == DistributedTableType::SingleVersion {
        ddl.push_str(&triggers::not_null_triggers(&meta));
    }
    tx.execute_script_own(&ddl)?;
    // With distributed tables the writer fires DELETE triggers for the rows REPLACE removes
    // (see `store::writer`), so those deletions are captured too.
    tx.writer()?.enable_recursive_triggers().map_err(sql_err)?;
    // Existing rows are captured (they sync like new ones); rows already captured sync again
    // when columns are added. When they were written is unknown, so they carry the oldest
    // timestamp there is ([`UNKNOWN_TIME`]): every write whose time is known beats them —
    // stamping them "now" would let a row written long ago on one device overwrite one
    // written later on another that was captured from the start.
    let capture = format!(
        "INSERT INTO {clock}(ident, seq, hlc, origin, tomb, cols) SELECT {id}, peerlite_seq(), {UNKNOWN_TIME}, 0, 0, NULL FROM {table} WHERE true ON CONFLICT(ident) DO NOTHING",
        clock = meta.clock(),
        id = meta.identity_sql(),
        table = quote_ident(table),
    );
    tx.execute_own(&capture, &[])?;
    if let Some(prev) = previous {
        let added: u64 = meta
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !prev.columns.contains(c))
            .fold(0, |mask, (i, _)| mask | (1 << i));
        if added != 0 {
            // Queue the rows to sync again, but do not stamp the new columns: "now" would
            // beat values another device wrote in them after it upgraded first. Their values
            // carry the row's insert timestamp, and equal timestamps resolve by value.
            tx.execute_own(
                &format!(
                    "UPDATE {} SET seq = peerlite_seq() WHERE tomb = 0",
                    meta.clock()
                ),
                &[],
            )?;
        }
    }
    registry::save(conn, &meta).map_err(sql_err)?;
    // The tables holding other devices' rows of it gain its new columns too (and those of a
    // store left misaligned by an earlier build are repaired by distributing again).
    crate::sync::merge::align_device_tables(tx, &meta)?;
    Ok(())
}
