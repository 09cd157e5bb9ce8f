//! Tombstone retention: how long a store remembers deletes for peers that have not heard of
//! them yet.
//!
//! A delete leaves a tombstone in the table's clock so every peer learns of it. Kept forever,
//! tombstones grow without bound; purged, they are gone for a peer that was away meanwhile —
//! it would keep the deleted row forever (the trap Couchbase Sync Gateway users fall into).
//! So tombstones are kept for a retention period (30 days by default, Realm's default
//! maximum offline time), purged after it, and the store remembers, per table, the highest
//! sequence number it purged: a peer whose watermark lies below it cannot be sent a delta —
//! [`Error::ResetRequired`](crate::Error::ResetRequired), never a silent gap.
//!
//! ```
//! use std::time::Duration;
//! use peerlite::changes::{DistributedConfig, DistributedType};
//! use peerlite::{bucket, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let store = RdbStore::open(StoreConfig::new(dir.path().join("a.db")).device_id("phone"))?;
//! store.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", &[])?;
//! store.set_distributed_tables(&["t"], DistributedType::Device, &DistributedConfig::default())?;
//! store.insert("t", &bucket! { "id" => 1, "v" => "x" })?;
//! store.execute("DELETE FROM t", &[])?;
//! // Kept for 30 days by default; purged now when asked to keep none.
//! assert_eq!(store.purge_tombstones(None)?.purged, 0);
//! let report = store.purge_tombstones(Some(Duration::ZERO))?;
//! assert_eq!(report.purged, 1);
//! assert_eq!(store.changes(Some("t"), 0)?.len(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use rusqlite::Connection;

use super::hlc::COUNTER_BITS;
use super::registry;
use crate::error::{Error, Result};
use crate::store::{RdbStore, meta, schema::table_exists};

/// How long tombstones are kept by default: 30 days (Realm's default maximum offline time).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How often a sync purges what lies past the retention (at most).
const PURGE_EVERY_MS: u64 = 24 * 60 * 60 * 1000;

const RETENTION_KEY: &str = "tombstone_retention_ms";
const HORIZON_KEY: &str = "purge_horizon_ms";
const LAST_PURGE_KEY: &str = "last_purge_ms";
const PURGED_PREFIX: &str = "purged_seq:";

/// What a purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Tombstones removed.
    pub purged: u64,
    /// Deletes stamped before this time (ms since the Unix epoch) may be forgotten now.
    pub horizon_ms: u64,
    /// Per table: the highest sequence number purged so far (a peer whose watermark is below
    /// it needs a client reset).
    pub purged_seq: BTreeMap<String, u64>,
}

fn parse(v: Option<String>) -> u64 {
    v.and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The store's retention.
pub(crate) fn retention(conn: &Connection) -> rusqlite::Result<Duration> {
    Ok(meta::get(conn, RETENTION_KEY)?
        .and_then(|s| s.parse().ok())
        .map_or(DEFAULT_RETENTION, Duration::from_millis))
}

/// The time before which deletes may have been forgotten (0: none ever were).
pub(crate) fn horizon_ms(conn: &Connection) -> rusqlite::Result<u64> {
    Ok(parse(meta::get(conn, HORIZON_KEY)?))
}

/// The highest sequence number of `table`'s tombstones purged so far (0: none).
pub(crate) fn purged_seq(conn: &Connection, table: &str) -> rusqlite::Result<u64> {
    Ok(parse(meta::get(conn, &format!("{PURGED_PREFIX}{table}"))?))
}

/// Tombstones currently kept, over every distributed table.
pub(crate) fn tombstones(conn: &Connection) -> rusqlite::Result<u64> {
    let mut n = 0u64;
    for t in registry::load_all(conn)? {
        if table_exists(conn, &t.clock())? {
            let c: i64 = conn.query_row(
                &format!("SELECT count(*) FROM {} WHERE tomb = 1", t.clock()),
                [],
                |r| r.get(0),
            )?;
            n += c.max(0) as u64;
        }
    }
    Ok(n)
}

/// Removes the tombstones stamped more than `keep` before `now_ms`, inside the caller's write
/// transaction (so a row deleted, then inserted again meanwhile, is judged as it is now), and
/// moves the horizon and each table's purged sequence number forward — never back.
pub(crate) fn purge(
    conn: &Connection,
    now_ms: u64,
    keep: Duration,
) -> rusqlite::Result<PurgeReport> {
    let keep_ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
    let cutoff_ms = now_ms.saturating_sub(keep_ms);
    // Timestamps of that millisecond and later stay: `hlc < cutoff_ms << COUNTER_BITS`. An
    // age of zero means every tombstone, even one stamped this millisecond or by a clock
    // running ahead of the wall clock.
    let cutoff = if keep.is_zero() {
        i64::MAX
    } else {
        i64::try_from(cutoff_ms.checked_shl(COUNTER_BITS).unwrap_or(u64::MAX)).unwrap_or(i64::MAX)
    };
    let mut report = PurgeReport::default();
    let epoch = meta::get(conn, "epoch")?.unwrap_or_default();
    for t in registry::load_all(conn)? {
        if !table_exists(conn, &t.clock())? {
            continue;
        }
        // Past the retention, a delete of this device's own that no peer acknowledged is still
        // the only record of that delete anywhere, and a peer may hold the row: it is kept
        // until a peer has it. A store no peer ever synced with has no one to tell (a first
        // sync sends the full state, which needs no tombstone), and a purge of everything (an
        // age of zero) forgets it too.
        let kept_from = match acknowledged(conn, t.logical(), &epoch)? {
            Some(acked) if !keep.is_zero() => acked,
            _ => i64::MAX,
        };
        let purgeable = "tomb = 1 AND hlc < ?1 AND NOT (origin = ?2 AND seq > ?3)";
        let params = rusqlite::params![cutoff, super::state::LOCAL, kept_from];
        let (count, max_seq): (i64, Option<i64>) = conn.query_row(
            &format!(
                "SELECT count(*), max(seq) FROM {} WHERE {purgeable}",
                t.clock()
            ),
            params,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if count > 0 {
            conn.execute(
                &format!("DELETE FROM {} WHERE {purgeable}", t.clock()),
                params,
            )?;
            report.purged += count as u64;
        }
        let logical = t.logical().to_owned();
        let key = format!("{PURGED_PREFIX}{logical}");
        let before = parse(meta::get(conn, &key)?);
        let after = before.max(max_seq.unwrap_or(0).max(0) as u64);
        if after > before {
            meta::set(conn, &key, &after.to_string())?;
        }
        let entry = report.purged_seq.entry(logical).or_default();
        *entry = (*entry).max(after);
    }
    let horizon = horizon_ms(conn)?.max(cutoff_ms);
    meta::set(conn, HORIZON_KEY, &horizon.to_string())?;
    meta::set(conn, LAST_PURGE_KEY, &now_ms.to_string())?;
    report.horizon_ms = horizon;
    Ok(report)
}

/// The highest change number of `table` that any peer acknowledged in this database's
/// `epoch`: 0 when none did yet, `None` when the table never synced with any peer (nothing
/// received, nothing acknowledged). The ledgers are kept by sync; they are read here by name
/// (importing sync would turn the layers around).
fn acknowledged(conn: &Connection, table: &str, epoch: &str) -> rusqlite::Result<Option<i64>> {
    let mut synced = false;
    let mut acked = 0i64;
    for ledger in ["peerlite_watermarks", "peerlite_acks"] {
        if !table_exists(conn, ledger)? {
            continue;
        }
        let (rows, max): (i64, Option<i64>) = conn.query_row(
            &format!(
                "SELECT count(*), max(CASE WHEN filter = 0 AND epoch = ?2 THEN seq END) FROM {ledger} WHERE tbl = ?1"
            ),
            rusqlite::params![table, epoch],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        synced |= rows > 0;
        if ledger == "peerlite_acks" {
            acked = max.unwrap_or(0);
        }
    }
    Ok(synced.then_some(acked))
}

/// True when the last purge is a day old or more (a cheap read before a write transaction).
pub(crate) fn purge_due(conn: &Connection, now_ms: u64) -> rusqlite::Result<bool> {
    let last = parse(meta::get(conn, LAST_PURGE_KEY)?);
    Ok(now_ms.saturating_sub(last) >= PURGE_EVERY_MS && registry::exists(conn)?)
}

/// Purges past the store's retention when the last purge is a day old or more (checked again
/// inside the caller's write transaction).
pub(crate) fn purge_if_due(
    conn: &Connection,
    now_ms: u64,
) -> rusqlite::Result<Option<PurgeReport>> {
    if !purge_due(conn, now_ms)? {
        return Ok(None);
    }
    let keep = retention(conn)?;
    purge(conn, now_ms, keep).map(Some)
}

impl RdbStore {
    /// Removes tombstones older than `older_than` (the store's retention when `None`, see
    /// [`set_tombstone_retention`](RdbStore::set_tombstone_retention)), in one transaction.
    /// `Some(Duration::ZERO)` removes every tombstone now, whether peers have heard of it or
    /// not, and moves the horizon to now: a peer that has not synced since then gets
    /// 17040011 (client reset required) instead of a delta that would miss the deletes.
    ///
    /// # Errors
    /// 14800015 read-only store, SQLite errors.
    pub fn purge_tombstones(&self, older_than: Option<Duration>) -> Result<PurgeReport> {
        let path = self.path().to_path_buf();
        let now = self.config().clock.now_ms();
        self.transaction(|tx| {
            let conn = tx.conn()?;
            let sql_err = |e| Error::from_sqlite(e, &path);
            let keep = match older_than {
                Some(d) => d,
                None => retention(conn).map_err(sql_err)?,
            };
            purge(conn, now, keep).map_err(sql_err)
        })
    }

    /// Keeps tombstones for `retention` from now on (recorded in the database, so every
    /// process that opens it — a `peerlite serve`, the app — purges alike).
    ///
    /// # Errors
    /// 14800001 for a retention under one second, 14800015 read-only store.
    pub fn set_tombstone_retention(&self, retention: Duration) -> Result<()> {
        if retention < Duration::from_secs(1) {
            return Err(Error::invalid(
                crate::StoreKind::Relational,
                "a tombstone retention under one second would forget deletes before peers can sync them (to forget every tombstone now, purge with an age of zero)",
            ));
        }
        let path = self.path().to_path_buf();
        let ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
        self.transaction(|tx| {
            meta::set(tx.conn()?, RETENTION_KEY, &ms.to_string())
                .map_err(|e| Error::from_sqlite(e, &path))
        })
    }

    /// The store's tombstone retention.
    pub fn tombstone_retention(&self) -> Result<Duration> {
        let path = self.path();
        self.inner
            .read(|c| retention(c).map_err(|e| Error::from_sqlite(e, path)))
    }
}
