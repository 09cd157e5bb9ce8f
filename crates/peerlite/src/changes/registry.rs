//! Which tables are distributed, how, and the writers this store knows.
//!
//! `peerlite_distributed` has one row per local distributed table and one per *device table*
//! (device-collaboration mode keeps each other device's rows in a table of their own).
//! `peerlite_devices` numbers *writers* compactly for the clock tables: a device id together
//! with the epoch of that device's database in which it held the writes numbered so (`''`
//! when not known: rows that arrived before this was recorded). So a clock row says exactly
//! which database of a device had it — echo suppression sends a peer nothing it already holds
//! in the database it has now, and everything an earlier database of it held, whatever the
//! clocks did. Index 0 is this device, whatever its epoch.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::state::LOCAL;
use crate::schema::TableSchema;
use crate::store::schema::{quote_ident, table_exists};

pub(crate) const DDL: &str = "
CREATE TABLE IF NOT EXISTS peerlite_distributed(
  name TEXT PRIMARY KEY NOT NULL,
  tid INTEGER NOT NULL UNIQUE,
  mode TEXT NOT NULL,
  identity TEXT NOT NULL,
  columns TEXT NOT NULL,
  base TEXT,
  origin TEXT,
  schema_version INTEGER NOT NULL DEFAULT 0,
  schema TEXT,
  auto_sync INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS peerlite_devices(idx INTEGER PRIMARY KEY, device TEXT NOT NULL, epoch TEXT NOT NULL DEFAULT '', UNIQUE(device, epoch));";

/// Brings a `peerlite_devices` of an earlier format (one row per device id, no epoch) to the
/// current one, keeping every index (the clock tables refer to them). Its rows become writers
/// of an unknown epoch, which echo suppression never takes for the peer's current database.
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(DDL)?;
    add_auto_sync(conn)?;
    let has_epoch: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM pragma_table_info('peerlite_devices') WHERE name = 'epoch')",
        [],
        |r| r.get(0),
    )?;
    if has_epoch {
        return Ok(());
    }
    // All or nothing (a savepoint also nests in the caller's transaction).
    conn.execute_batch("SAVEPOINT peerlite_devices_format")?;
    let rebuilt = conn.execute_batch(
        "DROP TABLE IF EXISTS peerlite_devices_new;
         CREATE TABLE peerlite_devices_new(idx INTEGER PRIMARY KEY, device TEXT NOT NULL, epoch TEXT NOT NULL DEFAULT '', UNIQUE(device, epoch));
         INSERT INTO peerlite_devices_new(idx, device, epoch) SELECT idx, device, '' FROM peerlite_devices;
         DROP TABLE peerlite_devices;
         ALTER TABLE peerlite_devices_new RENAME TO peerlite_devices;",
    );
    let end = if rebuilt.is_ok() {
        "RELEASE peerlite_devices_format"
    } else {
        "ROLLBACK TO peerlite_devices_format; RELEASE peerlite_devices_format"
    };
    conn.execute_batch(end)?;
    rebuilt
}

/// True when `peerlite_distributed` has the `auto_sync` column (a registry made before it
/// existed has not, until the first writable open migrates it).
fn has_auto_sync(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM pragma_table_info('peerlite_distributed') WHERE name = 'auto_sync')",
        [],
        |r| r.get(0),
    )
}

/// Gives a registry of an earlier format the `auto_sync` column (every table off, as it was:
/// the flag was never kept before).
fn add_auto_sync(conn: &Connection) -> rusqlite::Result<()> {
    if has_auto_sync(conn)? {
        return Ok(());
    }
    conn.execute_batch(
        "ALTER TABLE peerlite_distributed ADD COLUMN auto_sync INTEGER NOT NULL DEFAULT 0",
    )
}

/// How a distributed table stores other devices' rows (ArkData's `DistributedTableType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DistributedTableType {
    /// Each device's rows live in a table of their own; no conflicts by construction.
    #[default]
    DeviceCollaboration,
    /// Every device's rows merge into the one local table, by a conflict column.
    SingleVersion,
}

impl DistributedTableType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DistributedTableType::DeviceCollaboration => "device_collaboration",
            DistributedTableType::SingleVersion => "single_version",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "device_collaboration" => Some(DistributedTableType::DeviceCollaboration),
            "single_version" => Some(DistributedTableType::SingleVersion),
            _ => None,
        }
    }
}

/// One distributed table (local, or holding another device's rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    /// The table's name.
    pub name: String,
    /// Its number; its clock table is `peerlite_clock_<tid>`.
    pub tid: i64,
    /// Its mode.
    pub mode: DistributedTableType,
    /// The column whose value identifies a row on every device.
    pub identity: String,
    /// The synced columns, in the order values travel.
    pub columns: Vec<String>,
    /// For a device table: the local table it mirrors.
    pub base: Option<String>,
    /// For a device table: the device whose rows it holds.
    pub origin: Option<String>,
    /// The sync schema's version (single-version mode).
    pub schema_version: i64,
    /// The sync schema's entry for the table (single-version mode).
    pub schema: Option<TableSchema>,
    /// Local commits to it are pushed to connected peers shortly after commit by a serving
    /// node (`DistributedConfig::auto_sync`); always false for a device table.
    pub auto_sync: bool,
}

impl TableMeta {
    /// The clock table's name.
    pub fn clock(&self) -> String {
        format!("peerlite_clock_{}", self.tid)
    }

    /// The identity column, quoted for SQL.
    pub fn identity_sql(&self) -> String {
        if self.identity.eq_ignore_ascii_case("rowid") {
            "rowid".to_owned()
        } else {
            quote_ident(&self.identity)
        }
    }

    /// The local table whose rows this table's rows are (itself unless it is a device table).
    pub fn logical(&self) -> &str {
        self.base.as_deref().unwrap_or(&self.name)
    }
}

/// True when the database has distributed tables (or had).
pub(crate) fn exists(conn: &Connection) -> rusqlite::Result<bool> {
    registry_exists(conn)
}

fn registry_exists(conn: &Connection) -> rusqlite::Result<bool> {
    table_exists(conn, "peerlite_distributed")
}

/// Every distributed table, local ones first.
pub(crate) fn load_all(conn: &Connection) -> rusqlite::Result<Vec<TableMeta>> {
    if !registry_exists(conn)? {
        return Ok(Vec::new());
    }
    // A read-only open of a registry not yet migrated reads the flag as off.
    let auto_sync = if has_auto_sync(conn)? {
        "auto_sync"
    } else {
        "0"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT name, tid, mode, identity, columns, base, origin, schema_version, schema, {auto_sync} FROM peerlite_distributed ORDER BY base IS NOT NULL, tid",
    ))?;
    let rows = stmt.query_map([], |r| {
        let columns: String = r.get(4)?;
        let schema: Option<String> = r.get(8)?;
        Ok(TableMeta {
            name: r.get(0)?,
            tid: r.get(1)?,
            mode: DistributedTableType::parse(&r.get::<_, String>(2)?).unwrap_or_default(),
            identity: r.get(3)?,
            columns: serde_json::from_str(&columns).unwrap_or_default(),
            base: r.get(5)?,
            origin: r.get(6)?,
            schema_version: r.get(7)?,
            schema: schema.and_then(|s| serde_json::from_str(&s).ok()),
            auto_sync: r.get::<_, Option<i64>>(9)?.unwrap_or(0) != 0,
        })
    })?;
    rows.collect()
}

/// Inserts or replaces a table's entry.
pub(crate) fn save(conn: &Connection, meta: &TableMeta) -> rusqlite::Result<()> {
    conn.execute_batch(DDL)?;
    add_auto_sync(conn)?;
    let columns = serde_json::to_string(&meta.columns).unwrap_or_else(|_| "[]".into());
    let schema = meta
        .schema
        .as_ref()
        .and_then(|s| serde_json::to_string(s).ok());
    conn.execute(
        "INSERT OR REPLACE INTO peerlite_distributed(name, tid, mode, identity, columns, base, origin, schema_version, schema, auto_sync)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        rusqlite::params![meta.name, meta.tid, meta.mode.as_str(), meta.identity, columns, meta.base, meta.origin, meta.schema_version, schema, meta.auto_sync],
    )?;
    Ok(())
}

/// A number for a new distributed table.
pub(crate) fn next_tid(conn: &Connection) -> rusqlite::Result<i64> {
    conn.execute_batch(DDL)?;
    conn.query_row(
        "SELECT coalesce(max(tid), 0) + 1 FROM peerlite_distributed",
        [],
        |r| r.get(0),
    )
}

/// The index of writer (`device`, `epoch`), numbering it on first sight; this device's id is
/// index 0 whatever the epoch (its own rows, relayed back, are its own).
pub(crate) fn writer_index(conn: &Connection, device: &str, epoch: &str) -> rusqlite::Result<i64> {
    if let Some(idx) = conn
        .prepare_cached(
            "SELECT idx FROM peerlite_devices WHERE device = ?1 AND (idx = 0 OR epoch = ?2) ORDER BY idx LIMIT 1",
        )?
        .query_row([device, epoch], |r| r.get(0))
        .optional()?
    {
        return Ok(idx);
    }
    conn.prepare_cached("INSERT INTO peerlite_devices(idx, device, epoch) VALUES ((SELECT max(1, coalesce(max(idx), 0) + 1) FROM peerlite_devices), ?1, ?2)")?
        .execute([device, epoch])?;
    Ok(conn.last_insert_rowid())
}

/// Records this device's id as index 0.
pub(crate) fn set_local_device(conn: &Connection, device: &str) -> rusqlite::Result<()> {
    migrate(conn)?;
    conn.execute(
        "DELETE FROM peerlite_devices WHERE device = ?1 AND idx <> ?2 AND epoch = ''",
        rusqlite::params![device, LOCAL],
    )?;
    conn.execute(
        "INSERT OR REPLACE INTO peerlite_devices(idx, device, epoch) VALUES (?1, ?2, '')",
        rusqlite::params![LOCAL, device],
    )?;
    Ok(())
}

/// Every device id by index.
pub(crate) fn devices(conn: &Connection) -> rusqlite::Result<Vec<(i64, String)>> {
    if !registry_exists(conn)? {
        return Ok(Vec::new());
    }
    conn.prepare("SELECT idx, device FROM peerlite_devices ORDER BY idx")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Every writer by index: (device id, epoch), this device's with `own_epoch`.
pub(crate) fn writers(
    conn: &Connection,
    own_epoch: &str,
) -> rusqlite::Result<HashMap<i64, (String, String)>> {
    if !registry_exists(conn)? {
        return Ok(HashMap::new());
    }
    let has_epoch: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM pragma_table_info('peerlite_devices') WHERE name = 'epoch')",
        [],
        |r| r.get(0),
    )?;
    let sql = if has_epoch {
        "SELECT idx, device, epoch FROM peerlite_devices"
    } else {
        "SELECT idx, device, '' FROM peerlite_devices"
    };
    conn.prepare(sql)?
        .query_map([], |r| {
            let idx: i64 = r.get(0)?;
            let epoch: String = r.get(2)?;
            let epoch = if idx == LOCAL {
                own_epoch.to_owned()
            } else {
                epoch
            };
            Ok((idx, (r.get(1)?, epoch)))
        })?
        .collect()
}
