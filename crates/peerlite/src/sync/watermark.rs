//! What this device has received from each peer: per (peer, table, predicate filter), the last
//! sequence number applied, in the peer's epoch. It is written in the same transaction as the
//! batch it covers, so an interrupted sync resumes exactly where it stopped; a peer whose
//! epoch changed (restored or re-created) is read from the start again.

use rusqlite::{Connection, OptionalExtension};

const DDL: &str = "CREATE TABLE IF NOT EXISTS peerlite_watermarks(
  device TEXT NOT NULL,
  tbl TEXT NOT NULL,
  filter INTEGER NOT NULL,
  epoch TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY(device, tbl, filter)
) WITHOUT ROWID;";

fn exists(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'peerlite_watermarks')",
        [],
        |r| r.get(0),
    )
}

/// The last sequence number received from `device` for `table`/`filter` in `epoch` (0 when
/// nothing, or when it counted in another epoch).
pub(crate) fn get(
    conn: &Connection,
    device: &str,
    table: &str,
    filter: u64,
    epoch: &str,
) -> rusqlite::Result<u64> {
    if !exists(conn)? {
        return Ok(0);
    }
    let found: Option<(String, i64)> = conn
        .prepare_cached("SELECT epoch, seq FROM peerlite_watermarks WHERE device = ?1 AND tbl = ?2 AND filter = ?3")?
        .query_row(rusqlite::params![device, table, filter as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match found {
        Some((e, seq)) if e == epoch => seq as u64,
        _ => 0,
    })
}

/// Every watermark of `device` (table, filter, epoch, seq).
pub(crate) fn all(
    conn: &Connection,
    device: &str,
) -> rusqlite::Result<Vec<(String, u64, String, u64)>> {
    if !exists(conn)? {
        return Ok(Vec::new());
    }
    conn.prepare("SELECT tbl, filter, epoch, seq FROM peerlite_watermarks WHERE device = ?1")?
        .query_map([device], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get(2)?,
                r.get::<_, i64>(3)? as u64,
            ))
        })?
        .collect()
}

/// Records the watermark.
pub(crate) fn set(
    conn: &Connection,
    device: &str,
    table: &str,
    filter: u64,
    epoch: &str,
    seq: u64,
) -> rusqlite::Result<()> {
    conn.execute_batch(DDL)?;
    conn.prepare_cached(
        "INSERT INTO peerlite_watermarks(device, tbl, filter, epoch, seq) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(device, tbl, filter) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq",
    )?
    .execute(rusqlite::params![device, table, filter as i64, epoch, seq as i64])?;
    Ok(())
}
