//! Where a store stands with its peers — what `peerlite status` prints: its epoch, per peer
//! what it has received and what the peer has acknowledged, the changes a peer has not
//! acknowledged yet, the tombstones kept and the retention horizon.
//!
//! ```
//! use peerlite::changes::{DistributedConfig, DistributedType};
//! use peerlite::sync::{sync_in_memory, SyncMode};
//! use peerlite::{bucket, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let open = |name: &str| -> peerlite::Result<RdbStore> {
//!     std::fs::create_dir_all(dir.path().join(name)).ok();
//!     let store = RdbStore::open(StoreConfig::new(dir.path().join(name).join("notes.db")).device_id(name))?;
//!     store.execute("CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY, text TEXT)", &[])?;
//!     store.set_distributed_tables(&["note"], DistributedType::Device, &DistributedConfig::default())?;
//!     Ok(store)
//! };
//! let (phone, laptop) = (open("phone")?, open("laptop")?);
//! phone.insert("note", &bucket! { "text" => "buy milk" })?;
//! sync_in_memory(&phone, &laptop, SyncMode::Push, None)?;
//! phone.insert("note", &bucket! { "text" => "call mum" })?;
//! let overview = phone.sync_overview()?;
//! let peer = &overview.peers[0];
//! assert_eq!(peer.device, "laptop");
//! assert_eq!(peer.unsynced, 1); // the second note has not reached the laptop
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::Serialize;

use super::message::Watermark;
use super::watermark::{self, Ledger};
use crate::changes::{registry, retention};
use crate::error::{Error, Result};
use crate::store::RdbStore;
use crate::store::schema::table_exists;

/// Where a store stands with its peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncOverview {
    /// This device.
    pub device: String,
    /// The database's epoch.
    pub epoch: String,
    /// The highest sequence number of a change here.
    pub seq: u64,
    /// How long tombstones are kept (ms).
    pub retention_ms: u64,
    /// Deletes stamped before this time (ms since the Unix epoch) may be forgotten (0: none).
    pub horizon_ms: u64,
    /// Tombstones kept now.
    pub tombstones: u64,
    /// Per table: the highest sequence number whose tombstone was purged.
    pub purged_seq: BTreeMap<String, u64>,
    /// Every peer this store has synced with.
    pub peers: Vec<PeerOverview>,
}

/// Where a store stands with one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerOverview {
    /// The peer.
    pub device: String,
    /// What this store has received from it (in its epochs).
    pub received: Vec<Watermark>,
    /// What it has acknowledged of this store's changes (in this store's epoch).
    pub acknowledged: Vec<Watermark>,
    /// Rows changed here (by this device or relayed from another) that it has not
    /// acknowledged, counted over the whole tables (a filtered sync covers part of a table).
    pub unsynced: u64,
}

/// Rows of the distributed tables changed after what `device` acknowledged, leaving out rows
/// whose last insert or delete came from that device's current database.
fn unsynced(
    conn: &Connection,
    device: &str,
    epoch: &str,
    peer_epoch: Option<&str>,
) -> rusqlite::Result<u64> {
    let writers = registry::writers(conn, epoch)?;
    let theirs: Vec<i64> = writers
        .iter()
        .filter(|(_, (d, e))| d == device && Some(e.as_str()) == peer_epoch)
        .map(|(i, _)| *i)
        .collect();
    let metas = registry::load_all(conn)?;
    let mut n = 0u64;
    for logical in metas.iter().filter(|m| m.base.is_none()) {
        let acked = watermark::get(conn, Ledger::Acknowledged, device, &logical.name, 0, epoch)?;
        for source in metas.iter().filter(|m| m.logical() == logical.name) {
            if !table_exists(conn, &source.clock())? {
                continue;
            }
            let sql = format!(
                "SELECT count(*) FROM {} WHERE seq > ?1 AND origin NOT IN (SELECT value FROM json_each(?2))",
                source.clock()
            );
            let json = serde_json::to_string(&theirs).unwrap_or_else(|_| "[]".into());
            let c: i64 =
                conn.query_row(&sql, rusqlite::params![acked as i64, json], |r| r.get(0))?;
            n += c.max(0) as u64;
        }
    }
    Ok(n)
}

impl RdbStore {
    /// Where this store stands with its peers (`peerlite status`).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn sync_overview(&self) -> Result<SyncOverview> {
        let path = self.path();
        let device = self.device_id().to_owned();
        self.inner.read(|conn| {
            let sql_err = |e| Error::from_sqlite(e, path);
            let epoch = crate::store::meta::get(conn, "epoch")
                .map_err(sql_err)?
                .unwrap_or_default();
            let mut purged_seq = BTreeMap::new();
            for t in registry::load_all(conn).map_err(sql_err)? {
                if t.base.is_none() {
                    let s = retention::purged_seq(conn, &t.name).map_err(sql_err)?;
                    purged_seq.insert(t.name.clone(), s);
                }
            }
            let mut peers = Vec::new();
            for d in watermark::devices(conn).map_err(sql_err)? {
                let received = watermark::all(conn, Ledger::Received, &d).map_err(sql_err)?;
                let acknowledged =
                    watermark::all(conn, Ledger::Acknowledged, &d).map_err(sql_err)?;
                // The peer's current database: the epoch of what was last received from it.
                let peer_epoch = received.first().map(|w| w.epoch.as_str());
                let unsynced = unsynced(conn, &d, &epoch, peer_epoch).map_err(sql_err)?;
                peers.push(PeerOverview {
                    device: d,
                    received,
                    acknowledged,
                    unsynced,
                });
            }
            Ok(SyncOverview {
                device: device.clone(),
                epoch,
                seq: crate::changes::layer::max_seq(conn)
                    .map_err(sql_err)?
                    .max(0) as u64,
                retention_ms: u64::try_from(
                    retention::retention(conn).map_err(sql_err)?.as_millis(),
                )
                .unwrap_or(u64::MAX),
                horizon_ms: retention::horizon_ms(conn).map_err(sql_err)?,
                tombstones: retention::tombstones(conn).map_err(sql_err)?,
                purged_seq,
                peers,
            })
        })
    }
}
