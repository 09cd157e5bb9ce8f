//! Two ledgers of sequence numbers per (peer, table, predicate filter), one mechanism:
//!
//! - [`Ledger::Received`]: what this device has received from each peer — the last sequence
//!   number applied, in the peer's epoch. It is written in the same transaction as the batch
//!   it covers, so an interrupted sync resumes exactly where it stopped; a peer whose epoch
//!   changed (restored or re-created) is read from the start again.
//! - [`Ledger::Acknowledged`]: what each peer has acknowledged of this device's changes — the
//!   last sequence number it confirmed, in this device's epoch. Changes past it are unsynced
//!   to that peer (`peerlite status`), and a client reset recovers exactly those.

use rusqlite::{Connection, OptionalExtension};

use super::message::Watermark;

/// Which ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ledger {
    /// Received from the peer, in the peer's epoch.
    Received,
    /// Acknowledged by the peer, in this device's epoch.
    Acknowledged,
}

impl Ledger {
    fn table(self) -> &'static str {
        match self {
            Ledger::Received => "peerlite_watermarks",
            Ledger::Acknowledged => "peerlite_acks",
        }
    }

    fn ddl(self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {}(
  device TEXT NOT NULL,
  tbl TEXT NOT NULL,
  filter INTEGER NOT NULL,
  epoch TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY(device, tbl, filter)
) WITHOUT ROWID;",
            self.table()
        )
    }
}

fn exists(conn: &Connection, ledger: Ledger) -> rusqlite::Result<bool> {
    crate::store::schema::table_exists(conn, ledger.table())
}

/// The last sequence number of `device`'s `table`/`filter` in `epoch` (0 when nothing, or
/// when it counted in another epoch).
pub(crate) fn get(
    conn: &Connection,
    ledger: Ledger,
    device: &str,
    table: &str,
    filter: u64,
    epoch: &str,
) -> rusqlite::Result<u64> {
    if !exists(conn, ledger)? {
        return Ok(0);
    }
    let found: Option<(String, i64)> = conn
        .prepare_cached(&format!(
            "SELECT epoch, seq FROM {} WHERE device = ?1 AND tbl = ?2 AND filter = ?3",
            ledger.table()
        ))?
        .query_row(rusqlite::params![device, table, filter as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(match found {
        Some((e, seq)) if e == epoch => seq as u64,
        _ => 0,
    })
}

/// Every entry of `device`.
pub(crate) fn all(
    conn: &Connection,
    ledger: Ledger,
    device: &str,
) -> rusqlite::Result<Vec<Watermark>> {
    if !exists(conn, ledger)? {
        return Ok(Vec::new());
    }
    conn.prepare(&format!(
        "SELECT tbl, filter, epoch, seq FROM {} WHERE device = ?1 ORDER BY tbl, filter",
        ledger.table()
    ))?
    .query_map([device], |r| {
        Ok(Watermark {
            table: r.get(0)?,
            filter: r.get::<_, i64>(1)? as u64,
            epoch: r.get(2)?,
            seq: r.get::<_, i64>(3)? as u64,
        })
    })?
    .collect()
}

/// Every device either ledger names.
pub(crate) fn devices(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for ledger in [Ledger::Received, Ledger::Acknowledged] {
        if exists(conn, ledger)? {
            let mut stmt =
                conn.prepare(&format!("SELECT DISTINCT device FROM {}", ledger.table()))?;
            for d in stmt.query_map([], |r| r.get::<_, String>(0))? {
                out.push(d?);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Records the entry.
pub(crate) fn set(
    conn: &Connection,
    ledger: Ledger,
    device: &str,
    table: &str,
    filter: u64,
    epoch: &str,
    seq: u64,
) -> rusqlite::Result<()> {
    conn.execute_batch(&ledger.ddl())?;
    conn.prepare_cached(&format!(
        "INSERT INTO {}(device, tbl, filter, epoch, seq) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(device, tbl, filter) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq",
        ledger.table()
    ))?
    .execute(rusqlite::params![
        device,
        table,
        filter as i64,
        epoch,
        seq as i64
    ])?;
    Ok(())
}

/// Forgets what was received of `table` from every device but `keep`.
pub(crate) fn forget_received(conn: &Connection, table: &str, keep: &str) -> rusqlite::Result<()> {
    if !exists(conn, Ledger::Received)? {
        return Ok(());
    }
    conn.execute(
        "DELETE FROM peerlite_watermarks WHERE tbl = ?1 AND device != ?2",
        rusqlite::params![table, keep],
    )?;
    Ok(())
}

/// The meta key of [`acked_stamp`].
fn stamp_key(table: &str) -> String {
    format!("acked_hlc:{table}")
}

/// The newest timestamp of this device's own inserts and deletes (existence events) of
/// `table` that a peer has acknowledged, in `epoch` (0 when none). A client reset uses it: a
/// row this device inserted at or before it has left the device, and a peer's state without
/// it means it was deleted there (its tombstone maybe purged since), not that it is unsynced.
pub(crate) fn acked_stamp(conn: &Connection, table: &str, epoch: &str) -> rusqlite::Result<u64> {
    let found = crate::store::meta::get(conn, &stamp_key(table))?;
    Ok(found
        .as_deref()
        .and_then(|v| v.split_once(' '))
        .filter(|(e, _)| *e == epoch)
        .and_then(|(_, hlc)| hlc.parse().ok())
        .unwrap_or(0))
}

/// A database put back from a backup (restored or repaired) takes a new epoch, but its rows
/// keep the timestamps they had: that a peer acknowledged this device's own inserts and
/// deletes up to a stamp is still true of them. Carries every table's [`acked_stamp`] from
/// the backup's epoch `from` to `to`; without it a client reset after the repair took each
/// row the backup held for an unsynced insert and replayed it, bringing back rows deleted
/// since the backup whose tombstones the peer had purged.
pub(crate) fn carry_acked_stamps(conn: &Connection, from: &str, to: &str) -> rusqlite::Result<()> {
    if from.is_empty() || from == to {
        return Ok(());
    }
    let mut stmt = conn.prepare(
        "SELECT key, value FROM peerlite_meta WHERE key >= 'acked_hlc:' AND key < 'acked_hlc;'",
    )?;
    let stamps = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (key, value) in stamps {
        if let Some((epoch, hlc)) = value.split_once(' ')
            && epoch == from
        {
            crate::store::meta::set(conn, &key, &format!("{to} {hlc}"))?;
        }
    }
    Ok(())
}

/// Raises [`acked_stamp`] with the own existence events a peer has just acknowledged, those
/// numbered `(from, to]` in `clock` (read through the sequence index: a few rows per ack).
pub(crate) fn note_acked_stamp(
    conn: &Connection,
    clock: &str,
    table: &str,
    epoch: &str,
    from: u64,
    to: u64,
) -> rusqlite::Result<()> {
    let newest: Option<i64> = conn
        .prepare_cached(&format!(
            "SELECT max(hlc) FROM {clock} WHERE seq > ?1 AND seq <= ?2 AND origin = ?3"
        ))?
        .query_row(
            rusqlite::params![from as i64, to as i64, crate::changes::state::LOCAL],
            |r| r.get(0),
        )?;
    let newest = newest.unwrap_or(0).max(0) as u64;
    if newest > acked_stamp(conn, table, epoch)? {
        crate::store::meta::set(conn, &stamp_key(table), &format!("{epoch} {newest}"))?;
    }
    Ok(())
}
