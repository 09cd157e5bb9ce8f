//! Change capture attached to a store (see `store::layers`): the SQL functions its triggers
//! call are registered on the writer as it opens, the clock's high-water mark commits with
//! every transaction that stamped, and the device id and the clock and sequence numbers
//! resume from the database when it opens.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use rusqlite::Connection;

use super::hlc::Clock;
use super::state::SyncState;
use super::{identity, mark, registry};
use crate::StoreKind;
use crate::error::{Error, Result};
use crate::store::StoreConfig;
use crate::store::layers::Layer;
use crate::store::rdb::Inner;

/// A store's change capture.
#[derive(Debug)]
pub(crate) struct Capture {
    /// Clock, sequence and capture switch, shared with the writer's SQL functions.
    pub sync: Arc<SyncState>,
    /// This device's id, settled by [`resume`](Capture::resume) as the store opens.
    device: OnceLock<String>,
    /// `PRAGMA data_version` when this writer last caught up with the database (0: never).
    seen_version: AtomicI64,
}

impl Capture {
    pub fn new(clock: Arc<dyn Clock>) -> Capture {
        Capture {
            sync: Arc::new(SyncState::new(clock)),
            device: OnceLock::new(),
            seen_version: AtomicI64::new(0),
        }
    }

    /// Settles this device's id and where the clock and sequence resume: the device id comes
    /// from the config, else from the database, else is made (and kept); the epoch and the
    /// high-water mark are decided by [`mark::on_open`] (a new or replaced database gets a new
    /// epoch; the mark never goes back). `replaced`: a rebuild just put this file in place;
    /// `learned`: a mark its damaged predecessor's salvaged copy still shows.
    pub fn resume(
        &self,
        conn: &Connection,
        config: &StoreConfig,
        writable: bool,
        replaced: bool,
        learned: u64,
    ) -> Result<()> {
        let path = config.path();
        let sql_err = |e| Error::from_sqlite(e, path);
        let device = identity::settle(conn, config, writable)?;
        let resume = mark::on_open(
            conn,
            path,
            config.clock.now_ms(),
            writable,
            replaced,
            learned,
        )?;
        let max_seq = max_seq(conn).map_err(sql_err)?;
        self.sync.resume(max_seq, resume.high_water);
        self.sync
            .reserved
            .store(resume.reserved, std::sync::atomic::Ordering::Release);
        // Settled once per open: the store is built only after this returns.
        let _ = self.device.set(device);
        Ok(())
    }
}

/// The largest sequence number the database has issued: what its clock tables hold, and the
/// numbers of purged tombstones (committed too, and passed by peers' watermarks: numbering
/// from below them again would hide the new changes from those peers).
pub(crate) fn max_seq(conn: &Connection) -> rusqlite::Result<i64> {
    let mut max = 0i64;
    for t in registry::load_all(conn)? {
        if t.base.is_none() {
            let purged = super::retention::purged_seq(conn, &t.name)?;
            max = max.max(i64::try_from(purged).unwrap_or(i64::MAX));
        }
        // A clock dropped by another tool is damage `check --full` reports (and `distribute`
        // recreates); the open does not fail on it.
        if !crate::store::schema::table_exists(conn, &t.clock())? {
            continue;
        }
        let seq: Option<i64> = conn
            .prepare_cached(&format!("SELECT max(seq) FROM {}", t.clock()))?
            .query_row([], |r| r.get(0))?;
        max = max.max(seq.unwrap_or(0));
    }
    Ok(max)
}

impl Layer for Capture {
    fn writer_opened(&self, conn: &Connection) -> rusqlite::Result<()> {
        super::state::register_functions(conn, &self.sync)
    }

    /// Another process may write the same database (a `peerlite serve` beside an app, a
    /// `peerlite sync` beside either): its commits numbered changes, and stamped times, this
    /// process has not seen. Numbering again from a counter kept in memory would give two
    /// changes one sequence number, and a peer whose watermark passed it would never get the
    /// second. So when the database changed under this writer (SQLite's `data_version`,
    /// which this connection's own commits do not move), the counter and the clock catch up
    /// with what the database holds — inside the write lock, so nothing changes meanwhile.
    fn began(&self, conn: &Connection) -> rusqlite::Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.seen_version.swap(version, Ordering::AcqRel) == version {
            return Ok(());
        }
        let high_water = crate::store::meta::get(conn, "hlc")?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        self.sync.resume(max_seq(conn)?, high_water);
        Ok(())
    }

    fn applying_remote(&self) -> bool {
        !self.sync.capturing()
    }

    /// The clock's high-water mark commits with the changes it stamped: after a crash or a
    /// restart the clock never issues a timestamp it has issued before.
    fn before_commit(&self, conn: &Connection, db: &Path) -> rusqlite::Result<()> {
        if !self.sync.take_stamped() {
            return Ok(());
        }
        let hwm = self.sync.hlc.high_water().to_string();
        mark::reserve(conn, db, &self.sync);
        conn.prepare_cached("INSERT INTO peerlite_meta(key, value) VALUES ('hlc', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .and_then(|mut st| st.execute([&hwm]))
            .map(drop)
    }
}

impl Inner {
    /// The store's change-capture state.
    ///
    /// # Errors
    /// 14800001 for a store opened without change capture (every open attaches it).
    pub(crate) fn sync(&self) -> Result<&Arc<SyncState>> {
        self.layer::<Capture>().map(|c| &c.sync).ok_or_else(|| {
            Error::invalid(
                StoreKind::Relational,
                "this store was opened without change capture",
            )
        })
    }

    /// This device's id (empty only for a store opened without change capture).
    pub(crate) fn device_id(&self) -> &str {
        self.layer::<Capture>()
            .and_then(|c| c.device.get())
            .map_or("", String::as_str)
    }
}
