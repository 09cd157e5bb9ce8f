//! The narrow surface through which a session reaches a store: its identity, its distributed
//! tables, watermarks, the next batch to send and applying a batch received. The protocol logic
//! ([`Session`](super::Session)) knows nothing else of a store, so it can be tested on its own
//! and the network crate depends on this surface, not on store internals.
//!
//! [`RdbStore`] implements it, and so serves the key-value store too (its entries are a
//! distributed table: [`KvStore::sync_store`](crate::KvStore::sync_store)).

use std::collections::HashMap;
use std::sync::Arc;

use super::extract;
use super::heard;
use super::merge;
use super::message::{Batch, TableSummary, Watermark};
use super::query::QueryRows;
use super::stamps::{self, Stamp};
use super::types::TableTypes;
use super::unsent::{self, Unsendable};
use super::watermark::{self, Ledger};
use super::wire::WireFilter;
use crate::changes::registry::{self, TableMeta};
use crate::changes::retention;
use crate::error::{Error, Result};
use crate::store::{RdbStore, SecurityLevel, SubscribeType};

/// What a session asks for when it sends: the rows of `table` changed after `since`.
#[derive(Debug, Clone, Copy)]
pub struct BatchRequest<'a> {
    /// The receiving device.
    pub peer: &'a str,
    /// Its database's epoch (what that database already holds is not sent back to it).
    pub peer_epoch: &'a str,
    /// The table.
    pub table: &'a str,
    /// A filtered sync's filter.
    pub filter: Option<&'a WireFilter>,
    /// The sequence number to continue after.
    pub since: u64,
    /// Rows at most.
    pub limit: usize,
}

/// What applying a received batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Rows whose state changed here.
    pub changed: u64,
    /// Rows newly recorded as conflicts.
    pub conflicts: u64,
}

/// What a sync session needs of a store.
pub trait SyncStore: Send + Sync + std::fmt::Debug {
    /// This device's id.
    fn device_id(&self) -> String;
    /// The logical store name, the same on every device.
    fn store_name(&self) -> String;
    /// The database's epoch.
    fn epoch(&self) -> Result<String>;
    /// The security label of the store's data.
    fn data_label(&self) -> SecurityLevel;
    /// The distributed tables this store syncs.
    fn tables(&self) -> Result<Vec<TableSummary>>;
    /// True when `table` holds any row.
    fn holds_rows(&self, table: &str) -> Result<bool> {
        let _ = table;
        Ok(false)
    }
    /// How far this store has received each device's changes but `except`'s (whole tables,
    /// in the epoch each watermark names).
    fn received_from_others(&self, except: &str) -> Result<Vec<Relayed>> {
        let _ = except;
        Ok(Vec::new())
    }
    /// The whole stream from `from` was applied, and `from` had received `relayed` of other
    /// devices when it began: this store holds those changes too, and counts them received.
    fn adopt_relayed(&self, from: &str, relayed: &[Relayed]) -> Result<()> {
        let _ = (from, relayed);
        Ok(())
    }
    /// The identity and declared column types of each distributed table, compared with the
    /// peer's in the handshake (none: nothing is compared).
    fn column_types(&self) -> Result<Vec<TableTypes>> {
        Ok(Vec::new())
    }
    /// A session id no other session of this device has used.
    fn new_session_id(&self) -> u64;
    /// Called as a session starts: the store now has an identity peers know.
    fn begin_session(&self) -> Result<()>;
    /// The highest sequence number this database ever committed in its epoch (its clock
    /// tables, and the tombstones it purged).
    fn max_seq(&self) -> Result<u64>;
    /// Gives the database a new epoch: it was put back from a copy of an earlier state (a
    /// peer holds changes of this epoch it never issued). Returns the new epoch.
    fn renew_epoch(&self) -> Result<String>;
    /// The rows of `tables` left out of sync because they are too large to travel, and not
    /// changed since ([`MAX_ROW_BYTES`](super::MAX_ROW_BYTES)).
    fn unsendable(&self, tables: &[String]) -> Result<Vec<Unsendable>> {
        let _ = tables;
        Ok(Vec::new())
    }
    /// Every watermark this store holds for `peer`.
    fn watermarks(&self, peer: &str) -> Result<Vec<Watermark>>;
    /// The watermark for `peer`'s `table` under `filter` in the peer's `epoch` (0 when none).
    fn watermark(&self, peer: &str, table: &str, filter: u64, epoch: &str) -> Result<u64>;
    /// The stamps of `peer`'s watermarks that this store keeps: each watermark's latest write
    /// time received up to it (none: nothing is checked).
    fn stamps(&self, peer: &str) -> Result<Vec<Stamp>> {
        let _ = peer;
        Ok(Vec::new())
    }
    /// A change of `stamp`'s table that this store numbered at or below the stamp's watermark
    /// and wrote after the stamp's time, as (seq, write time): proof that the numbers were
    /// issued twice (the database was put back from a copy). `None` when there is none.
    fn newer_below(&self, peer: &str, stamp: &Stamp) -> Result<Option<(u64, u64)>> {
        let _ = (peer, stamp);
        Ok(None)
    }
    /// The next batch to send.
    fn next_batch(&self, request: BatchRequest<'_>) -> Result<Batch>;
    /// The highest sequence number of `table` whose tombstone was purged (0: none): a peer
    /// that resumes a stream below it would never learn of those deletes.
    fn purged_seq(&self, table: &str) -> Result<u64>;
    /// What `peer` acknowledged of this store's changes of `table` (0: nothing known).
    fn acknowledged(&self, peer: &str, table: &str) -> Result<u64>;
    /// `peer` holds this store's changes of `table` under `filter` up to `seq`, in this
    /// store's current epoch (it acknowledged them, or said so as a session began).
    fn note_acknowledged(&self, peer: &str, table: &str, filter: u64, seq: u64) -> Result<()>;
    /// The whole stream from `peer` (in its epoch `peer_epoch`) has been applied.
    fn incoming_finished(&self, peer: &str, peer_epoch: &str) -> Result<()> {
        let _ = (peer, peer_epoch);
        Ok(())
    }
    /// Applies a batch from `peer` and moves its watermark to `watermark`, in one transaction;
    /// tells the store's observers what changed.
    ///
    /// `sender_knows`: how far the peer has heard of this store's changes of the table; a
    /// purge past it (made while the stream runs) refuses the batch with 17040011, in the same
    /// transaction, as the rows may include some the purged deletes removed.
    fn apply_batch(
        &self,
        peer: &str,
        peer_epoch: &str,
        batch: &Batch,
        watermark: u64,
        sender_knows: u64,
    ) -> Result<Applied>;
    /// The rows of `filter`'s table that it selects, `columns` in that order, stopping with
    /// 17040010 past `max_bytes` of values: a remote query that
    /// [`answer_query`](super::answer_query) has checked (table, columns, security level).
    fn query_rows(
        &self,
        filter: &WireFilter,
        columns: &[String],
        max_bytes: usize,
    ) -> Result<QueryRows>;
}

/// How far a store has received one device's changes of one table: what a sender tells with
/// [`super::FEATURE_RELAYED`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Relayed {
    /// The device.
    pub device: String,
    /// The table.
    pub table: String,
    /// The device's epoch the watermark counts in.
    pub epoch: String,
    /// The watermark.
    pub seq: u64,
}

impl RdbStore {
    /// This store as a session's surface.
    pub fn sync_surface(&self) -> Arc<dyn SyncStore> {
        Arc::new(self.clone())
    }
}

fn summary(m: &TableMeta) -> TableSummary {
    TableSummary {
        name: m.name.clone(),
        mode: m.mode,
        columns: m.columns.clone(),
        schema_version: m.schema_version,
    }
}

impl SyncStore for RdbStore {
    fn device_id(&self) -> String {
        RdbStore::device_id(self).to_owned()
    }

    fn store_name(&self) -> String {
        self.path()
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned()
    }

    fn epoch(&self) -> Result<String> {
        RdbStore::epoch(self)
    }

    fn data_label(&self) -> SecurityLevel {
        self.config().level()
    }

    fn holds_rows(&self, table: &str) -> Result<bool> {
        let path = self.path();
        self.inner.read(|c| {
            let sql = format!(
                "SELECT EXISTS(SELECT 1 FROM {})",
                crate::store::schema::quote_ident(table)
            );
            c.query_row(&sql, [], |r| r.get(0))
                .map_err(|e| Error::from_sqlite(e, path))
        })
    }

    fn received_from_others(&self, except: &str) -> Result<Vec<Relayed>> {
        let path = self.path();
        let me = RdbStore::device_id(self).to_owned();
        self.inner.read(|c| {
            let sql_err = |e| Error::from_sqlite(e, path);
            let mut out = Vec::new();
            for device in watermark::devices(c).map_err(sql_err)? {
                if device == except || device == me {
                    continue;
                }
                for w in watermark::all(c, Ledger::Received, &device).map_err(sql_err)? {
                    if w.filter == 0 && w.seq > 0 {
                        out.push(Relayed {
                            device: device.clone(),
                            table: w.table,
                            epoch: w.epoch,
                            seq: w.seq,
                        });
                    }
                }
            }
            Ok(out)
        })
    }

    fn adopt_relayed(&self, from: &str, relayed: &[Relayed]) -> Result<()> {
        if self.config().read_only || relayed.is_empty() {
            return Ok(());
        }
        let path = self.path();
        let me = RdbStore::device_id(self).to_owned();
        // Single-version tables only: a collaboration table keeps each device's rows apart,
        // and learns them from the device itself (`heard`, the first stream's refresh).
        let tables: Vec<String> = self
            .tables()?
            .into_iter()
            .filter(|t| t.mode == crate::changes::DistributedTableType::SingleVersion)
            .map(|t| t.name)
            .collect();
        self.transaction(|tx| {
            let conn = tx.conn()?;
            let sql_err = |e| Error::from_sqlite(e, path);
            for r in relayed {
                if r.device == me || r.device == from || !tables.contains(&r.table) {
                    continue;
                }
                // Only forward in the epoch this store knows the device by (or where it knows
                // nothing of it): another epoch may be older.
                let known = watermark::all(conn, Ledger::Received, &r.device)
                    .map_err(sql_err)?
                    .into_iter()
                    .find(|w| w.table == r.table && w.filter == 0);
                let behind = match known {
                    None => true,
                    Some(w) => w.epoch == r.epoch && w.seq < r.seq,
                };
                if behind {
                    watermark::set(
                        conn,
                        Ledger::Received,
                        &r.device,
                        &r.table,
                        0,
                        &r.epoch,
                        r.seq,
                    )
                    .map_err(sql_err)?;
                }
            }
            Ok(())
        })
    }

    fn tables(&self) -> Result<Vec<TableSummary>> {
        Ok(self
            .distributed_tables()?
            .iter()
            .filter(|m| m.base.is_none())
            .map(summary)
            .collect())
    }

    fn column_types(&self) -> Result<Vec<TableTypes>> {
        let path = self.path();
        self.inner.read(|conn| {
            let metas = registry::load_all(conn).map_err(|e| Error::from_sqlite(e, path))?;
            super::types::of_tables(conn, &metas).map_err(|e| Error::from_sqlite(e, path))
        })
    }

    fn new_session_id(&self) -> u64 {
        // Unique whatever the clock did: a restarted or restored store may issue a clock
        // tick again, never this process-wide count with the time.
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut h = blake3::Hasher::new();
        h.update(RdbStore::device_id(self).as_bytes());
        h.update(&self.inner.sync().map_or(0, |s| s.hlc.tick()).to_le_bytes());
        h.update(&count.to_le_bytes());
        h.update(&nanos.to_le_bytes());
        let mut first = [7u8; 8];
        first.copy_from_slice(&h.finalize().as_bytes()[..8]);
        u64::from_le_bytes(first)
    }

    fn begin_session(&self) -> Result<()> {
        let path = self.path();
        if !self.config().read_only {
            let now = self.config().clock.now_ms();
            let due = self
                .inner
                .read(|c| retention::purge_due(c, now).map_err(|e| Error::from_sqlite(e, path)))?;
            if due {
                let report = self.transaction(|tx| {
                    retention::purge_if_due(tx.conn()?, now)
                        .map_err(|e| Error::from_sqlite(e, path))
                })?;
                if let Some(r) = report.filter(|r| r.purged > 0) {
                    tracing::info!(path = ?path, purged = r.purged, horizon_ms = r.horizon_ms, "purged tombstones past the retention");
                }
            }
        }
        let device = RdbStore::device_id(self).to_owned();
        let (known, stored) = self.inner.read(|c| {
            let get = |k| crate::store::meta::get(c, k).map_err(|e| Error::from_sqlite(e, path));
            Ok((get(crate::changes::identity::SYNCED_AS)?, get("device_id")?))
        })?;
        let settled = stored.as_deref() == Some(device.as_str());
        if (known.is_some() && settled) || self.config().read_only {
            return Ok(());
        }
        // A file replaced under this open (a restore by another process) may name another
        // device: it goes on syncing as the one this open settled on, never as a stranger.
        self.transaction(|tx| {
            let conn = tx.conn()?;
            crate::changes::identity::reassert(conn, &device, path)?;
            crate::changes::identity::note_synced(conn, &device)
                .map_err(|e| Error::from_sqlite(e, path))
        })
    }

    fn max_seq(&self) -> Result<u64> {
        let path = self.path();
        self.inner.read(|conn| {
            let sql_err = |e| Error::from_sqlite(e, path);
            // A purged tombstone's number was committed too, though no clock row holds it.
            Ok(crate::changes::layer::max_seq(conn)
                .map_err(sql_err)?
                .max(0) as u64)
        })
    }

    fn renew_epoch(&self) -> Result<String> {
        let path = self.path().to_path_buf();
        let fresh = self.transaction(|tx| {
            let conn = tx.conn()?;
            let sync = self.inner.sync()?;
            crate::changes::mark::renew_epoch(conn, &path, sync)
        })?;
        tracing::warn!(?path, epoch = %fresh, "a peer holds changes this database never issued: it was put back from a copy; it starts a new epoch");
        Ok(fresh)
    }

    fn watermarks(&self, peer: &str) -> Result<Vec<Watermark>> {
        let path = self.path();
        self.inner.read(|c| {
            watermark::all(c, Ledger::Received, peer).map_err(|e| Error::from_sqlite(e, path))
        })
    }

    fn watermark(&self, peer: &str, table: &str, filter: u64, epoch: &str) -> Result<u64> {
        let path = self.path();
        self.inner.read(|c| {
            watermark::get(c, Ledger::Received, peer, table, filter, epoch)
                .map_err(|e| Error::from_sqlite(e, path))
        })
    }

    fn stamps(&self, peer: &str) -> Result<Vec<Stamp>> {
        let path = self.path();
        self.inner
            .read(|c| stamps::all(c, peer).map_err(|e| Error::from_sqlite(e, path)))
    }

    fn newer_below(&self, peer: &str, stamp: &Stamp) -> Result<Option<(u64, u64)>> {
        let path = self.path();
        self.inner.read(|conn| {
            let sql_err = |e| Error::from_sqlite(e, path);
            let metas = registry::load_all(conn).map_err(sql_err)?;
            let sources: Vec<&TableMeta> = metas
                .iter()
                .filter(|m| m.name == stamp.table || m.base.as_deref() == Some(&stamp.table))
                .collect();
            let own_epoch = crate::store::meta::get(conn, "epoch")
                .map_err(sql_err)?
                .unwrap_or_default();
            let writers = registry::writers(conn, &own_epoch).map_err(sql_err)?;
            stamps::newer_below(conn, &sources, stamp, peer, &writers).map_err(sql_err)
        })
    }

    fn next_batch(&self, r: BatchRequest<'_>) -> Result<Batch> {
        let path = self.path();
        let predicates = r.filter.map(WireFilter::to_predicates);
        let (batch, too_large) = self.inner.read(|conn| {
            let sql_err = |e| Error::from_sqlite(e, path);
            let metas = registry::load_all(conn).map_err(sql_err)?;
            let Some(logical) = metas.iter().find(|m| m.name == r.table && m.base.is_none()) else {
                return Err(Error::NotDistributed {
                    table: r.table.to_owned(),
                });
            };
            if let Some(column) = r.filter.and_then(|f| f.unsynced_column(&logical.columns)) {
                return Err(Error::UnknownColumn {
                    table: r.table.to_owned(),
                    column: column.clone(),
                    kind: crate::StoreKind::Relational,
                });
            }
            let sources: Vec<&TableMeta> = metas
                .iter()
                .filter(|m| m.name == r.table || m.base.as_deref() == Some(r.table))
                .collect();
            let own_epoch = crate::store::meta::get(conn, "epoch")
                .map_err(sql_err)?
                .unwrap_or_default();
            let writers: HashMap<i64, (String, String)> =
                registry::writers(conn, &own_epoch).map_err(sql_err)?;
            // What the peer's current database already holds is not sent back to it.
            let echo = writers
                .iter()
                .find(|(_, (d, e))| d == r.peer && e == r.peer_epoch && !e.is_empty())
                .map(|(i, _)| *i);
            let (mut batch, too_large) = extract::next_batch(
                conn,
                &self.inner.schema,
                path,
                logical,
                &sources,
                predicates.as_ref(),
                r.since,
                echo,
                &writers,
                r.limit,
            )?;
            // At the end of the stream the peer has everything there is, purged deletes
            // included: its watermark passes them, so its next sync resumes past the purge
            // instead of being sent to a client reset. (A stream that resumed below a purge
            // was refused when the session began.)
            // Only at the true end (nothing scanned): a batch whose rows were all left out
            // (echoes, rows too large) is not the end, and jumping to the purge from there
            // would skip every row between.
            if batch.rows.is_empty() && batch.last == r.since {
                let purged = retention::purged_seq(conn, r.table).map_err(sql_err)?;
                batch.last = batch.last.max(purged);
            }
            Ok((batch, too_large))
        })?;
        if !too_large.is_empty() {
            for u in &too_large {
                tracing::warn!(path = ?path, peer = r.peer, "{}", u.describe());
            }
            self.transaction(|tx| {
                unsent::record(tx.conn()?, &too_large).map_err(|e| Error::from_sqlite(e, path))
            })?;
        }
        Ok(batch)
    }

    fn unsendable(&self, tables: &[String]) -> Result<Vec<Unsendable>> {
        let path = self.path();
        self.inner
            .read(|c| unsent::current(c, tables).map_err(|e| Error::from_sqlite(e, path)))
    }

    fn purged_seq(&self, table: &str) -> Result<u64> {
        let path = self.path();
        self.inner
            .read(|c| retention::purged_seq(c, table).map_err(|e| Error::from_sqlite(e, path)))
    }

    fn acknowledged(&self, peer: &str, table: &str) -> Result<u64> {
        let path = self.path();
        let epoch = RdbStore::epoch(self)?;
        self.inner.read(|c| {
            watermark::get(c, Ledger::Acknowledged, peer, table, 0, &epoch)
                .map_err(|e| Error::from_sqlite(e, path))
        })
    }

    fn incoming_finished(&self, peer: &str, peer_epoch: &str) -> Result<()> {
        if self.config().read_only {
            return Ok(());
        }
        RdbStore::incoming_finished(self, peer, peer_epoch)
    }

    fn note_acknowledged(&self, peer: &str, table: &str, filter: u64, seq: u64) -> Result<()> {
        if self.config().read_only {
            return Ok(());
        }
        let path = self.path();
        let epoch = RdbStore::epoch(self)?;
        let known = self.inner.read(|c| {
            watermark::get(c, Ledger::Acknowledged, peer, table, filter, &epoch)
                .map_err(|e| Error::from_sqlite(e, path))
        })?;
        if seq <= known {
            return Ok(());
        }
        self.transaction(|tx| {
            let conn = tx.conn()?;
            let sql_err = |e| Error::from_sqlite(e, path);
            watermark::set(conn, Ledger::Acknowledged, peer, table, filter, &epoch, seq)
                .map_err(sql_err)?;
            // A filtered stream acknowledges only the rows its filter selects.
            let logical = registry::load_all(conn)
                .map_err(sql_err)?
                .into_iter()
                .find(|m| m.name == table && m.base.is_none());
            if let Some(m) = logical.filter(|_| filter == 0) {
                watermark::note_acked_stamp(conn, &m.clock(), table, &epoch, known, seq)
                    .map_err(sql_err)?;
            }
            Ok(())
        })
    }

    fn apply_batch(
        &self,
        peer: &str,
        peer_epoch: &str,
        b: &Batch,
        last: u64,
        sender_knows: u64,
    ) -> Result<Applied> {
        self.apply_received(peer, b, Some((peer_epoch, last, sender_knows)))
    }

    fn query_rows(
        &self,
        filter: &WireFilter,
        columns: &[String],
        max_bytes: usize,
    ) -> Result<QueryRows> {
        super::query::query_rows(self, filter, columns, max_bytes)
    }
}

impl RdbStore {
    /// Applies `b` from `peer`; `mark`: the peer's epoch, the watermark to record, and how far
    /// the peer has heard of this store (see [`SyncStore::apply_batch`]); `None` for this
    /// store's own replay.
    fn apply_received(
        &self,
        peer: &str,
        b: &Batch,
        mark: Option<(&str, u64, u64)>,
    ) -> Result<Applied> {
        let path = self.path();
        let applied = self.transaction(|tx| {
            let conn = tx.conn()?;
            if let Some((_, _, knows)) = mark {
                let purged = retention::purged_seq(conn, &b.table)
                    .map_err(|e| Error::from_sqlite(e, path))?;
                if purged > knows {
                    return Err(Error::ResetRequired {
                        device: peer.to_owned(),
                        table: b.table.clone(),
                        watermark: knows,
                        purged,
                    });
                }
            }
            let metas = registry::load_all(conn).map_err(|e| Error::from_sqlite(e, path))?;
            let logical = metas
                .into_iter()
                .find(|m| m.name == b.table && m.base.is_none())
                .ok_or_else(|| Error::NotDistributed {
                    table: b.table.clone(),
                })?;
            let applied = {
                let sync = self.inner.sync()?;
                // A store's own replay (`peer` is itself) comes from no sender.
                let source = match mark {
                    Some((peer_epoch, _, _)) if peer != RdbStore::device_id(self) => {
                        let refresh = self
                            .refresh(conn, peer, peer_epoch, &logical, b)
                            .map_err(|e| Error::from_sqlite(e, path))?;
                        Some(merge::Source {
                            device: peer,
                            refresh,
                        })
                    }
                    _ => None,
                };
                let _paused = sync.pause_capture();
                merge::apply_batch(tx, sync, &logical, b, source)?
            };
            if let Some((peer_epoch, last, _)) = mark {
                let had =
                    watermark::get(conn, Ledger::Received, peer, &b.table, b.filter, peer_epoch)
                        .map_err(|e| Error::from_sqlite(e, path))?;
                stamps::advance(conn, peer, b, peer_epoch, had, last)
                    .map_err(|e| Error::from_sqlite(e, path))?;
                watermark::set(
                    conn,
                    Ledger::Received,
                    peer,
                    &b.table,
                    b.filter,
                    peer_epoch,
                    last,
                )
                .map_err(|e| Error::from_sqlite(e, path))?;
            }
            Ok(applied)
        })?;
        if !applied.keys.is_empty() {
            self.inner
                .observers
                .notify(SubscribeType::Remote, &[peer.to_owned()]);
            let change = super::RemoteChange {
                device: peer.to_owned(),
                keys: applied.keys,
                kinds: applied.kinds,
            };
            if let Ok(remote) = self.inner.remote_changes() {
                remote.notify(SubscribeType::Remote, &change);
            }
        }
        Ok(Applied {
            changed: applied.changed,
            conflicts: applied.conflicts,
        })
    }

    /// Whether `b` belongs to a first stream of `peer`'s own rows of a device-collaboration
    /// table (see [`heard::refreshing`]); one begins with the first batch of an unfiltered
    /// stream from the start, when this store never received the table from the peer in any
    /// epoch. (A peer whose epoch changed — restored, repaired — is not refreshed: its rows
    /// here are what gives it back what it lost.)
    fn refresh(
        &self,
        conn: &rusqlite::Connection,
        peer: &str,
        peer_epoch: &str,
        logical: &crate::changes::TableMeta,
        b: &Batch,
    ) -> rusqlite::Result<bool> {
        if logical.mode != crate::changes::DistributedTableType::DeviceCollaboration
            || b.filter != 0
        {
            return Ok(false);
        }
        if heard::refreshing(conn, peer, &logical.name, peer_epoch)?.is_some() {
            return Ok(true);
        }
        // Only a stream's first batch can begin one: later batches cost no ledger read.
        if b.prev != 0 {
            return Ok(false);
        }
        let known = watermark::all(conn, Ledger::Received, peer)?
            .iter()
            .any(|w| w.table == logical.name);
        if known {
            return Ok(false);
        }
        let from = crate::changes::layer::max_seq(conn)?.max(0) as u64;
        heard::begin_refresh(conn, peer, &logical.name, peer_epoch, from)?;
        Ok(true)
    }

    /// The stream from `peer` ended (all of it applied): a first stream of its rows drops
    /// the rows of its that it did not bring (see [`merge::drop_unrefreshed`]).
    pub(crate) fn incoming_finished(&self, peer: &str, peer_epoch: &str) -> Result<()> {
        let path = self.path();
        self.transaction(|tx| {
            let conn = tx.conn()?;
            let sql_err = |e| Error::from_sqlite(e, path);
            let sync = self.inner.sync()?;
            let _paused = sync.pause_capture();
            for logical in registry::load_all(conn).map_err(sql_err)? {
                if logical.base.is_some() {
                    continue;
                }
                let Some(from) =
                    heard::refreshing(conn, peer, &logical.name, peer_epoch).map_err(sql_err)?
                else {
                    continue;
                };
                let gone = merge::drop_unrefreshed(tx, &logical, peer, from)?;
                heard::end_refresh(conn, peer, &logical.name).map_err(sql_err)?;
                if gone > 0 {
                    tracing::info!(?path, peer, table = %logical.name, gone, "rows relayed for a device that no longer has them were dropped");
                }
            }
            Ok(())
        })
    }

    /// Applies a batch of this store's own earlier changes (a client reset's replay): merged
    /// as any peer's rows are, by their own timestamps and writers, with no watermark moved.
    /// Forgets what this store received of `table` from devices other than `peer`
    /// ([`watermark::forget_received`]).
    pub(crate) fn forget_relayed_watermarks(&self, table: &str, peer: &str) -> Result<()> {
        let path = self.path();
        self.transaction(|tx| {
            watermark::forget_received(tx.conn()?, table, peer)
                .map_err(|e| Error::from_sqlite(e, path))
        })
    }

    pub(crate) fn apply_replayed(&self, b: &Batch) -> Result<Applied> {
        let me = RdbStore::device_id(self).to_owned();
        self.apply_received(&me, b, None)
    }
}
