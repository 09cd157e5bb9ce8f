//! Watermark stamps: proof that a watermark still stands in the history it was taken in.
//!
//! A receiver's watermark says "I hold the sender's changes up to sequence number N of its
//! epoch". A sender put back from a file copy (a `cp` of the database, a VM snapshot, a cloned
//! device) keeps its epoch but numbers new changes from where the copy stood: once it has
//! committed as many changes as it lost, its numbers pass N again, and the changes it numbered
//! at or below N — new ones the receiver never saw — would never be sent (the copy's own
//! `max_seq` no longer gives it away).
//!
//! So the receiver keeps, with each watermark, its **stamp**: the latest write time (the
//! largest HLC of an existence event or a column register) among all the rows it received of
//! that stream since the epoch began. In one history, every row the sender still numbers at or
//! below N is one it sent (or one it never sends: the receiver's own writes, rows too large to
//! travel), unchanged since — a row written since has a number above N — so none is newer than
//! the stamp. A row numbered at or below N that *is* newer was written after the receiver
//! passed N: the numbers were issued twice, and the sender renews its epoch (17040012), so
//! every peer reads it from the start again.
//!
//! Stamps travel as `stamps:` entries ([`super::entries`]) in the `features` of the `Hello` (the initiator's
//! pull watermarks) and — when the `Hello` offered [`FEATURE_STAMPS`](super::FEATURE_STAMPS) — of the `Welcome` (the
//! responder's push watermarks), so the bytes of every V1 message stay as they were and builds
//! that predate them ignore them. A watermark without a stamp (taken before stamps existed, or
//! by a build that does not keep them) is not checked. Filtered streams are not checked either
//! (rows the filter never selected stay below their watermark unsent).

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::entries;
use super::message::Batch;
#[cfg(test)]
use super::message::FEATURE_STAMPS;
use crate::changes::registers;
use crate::changes::registry::TableMeta;
use crate::store::schema::table_exists;

/// How many of the newest changes at or below a watermark the sender looks at: enough to
/// meet a re-issued number (they are the newest numbers there), bounded so the check costs
/// one index range per table however large the table.
const CHECKED: i64 = 64;

/// A watermark and its stamp, as it travels (see [`SyncStore::stamps`](super::SyncStore::stamps)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The table.
    pub table: String,
    /// The predicate sync (0: the whole table).
    pub filter: u64,
    /// The sender's epoch the watermark counts in.
    pub epoch: String,
    /// The watermark.
    pub seq: u64,
    /// The latest write time among the rows received up to it.
    pub hlc: u64,
}

const DDL: &str = "CREATE TABLE IF NOT EXISTS peerlite_stamps(
  device TEXT NOT NULL,
  tbl TEXT NOT NULL,
  filter INTEGER NOT NULL,
  epoch TEXT NOT NULL,
  seq INTEGER NOT NULL,
  hlc INTEGER NOT NULL,
  PRIMARY KEY(device, tbl, filter)
) WITHOUT ROWID;";

/// The stamps of `device`'s watermarks: only those taken at the watermark as it stands (a
/// watermark moved without its stamp, by a build that keeps none, has no stamp).
pub(crate) fn all(conn: &Connection, device: &str) -> rusqlite::Result<Vec<Stamp>> {
    if !table_exists(conn, "peerlite_stamps")? || !table_exists(conn, "peerlite_watermarks")? {
        return Ok(Vec::new());
    }
    conn.prepare_cached(
        "SELECT s.tbl, s.filter, s.epoch, s.seq, s.hlc FROM peerlite_stamps s
         JOIN peerlite_watermarks w ON w.device = s.device AND w.tbl = s.tbl AND w.filter = s.filter
         WHERE s.device = ?1 AND w.epoch = s.epoch AND w.seq = s.seq",
    )?
    .query_map([device], |r| {
        Ok(Stamp {
            table: r.get(0)?,
            filter: r.get::<_, i64>(1)? as u64,
            epoch: r.get(2)?,
            seq: r.get::<_, i64>(3)? as u64,
            hlc: r.get::<_, i64>(4)? as u64,
        })
    })?
    .collect()
}

/// The latest write time in `batch`.
fn newest(batch: &Batch) -> u64 {
    batch
        .rows
        .iter()
        .flat_map(|r| std::iter::once(r.hlc).chain(r.regs.iter().map(|g| g.hlc)))
        .max()
        .unwrap_or(0)
}

/// Moves the stamp of `device`'s stream of `batch` along with its watermark, from `had` (the
/// watermark before the batch, in `epoch`) to `last`. A stream that starts now (nothing held
/// in this epoch) starts a stamp; one whose stamp is not known (taken before stamps existed)
/// gets none — a stamp must cover every row received since the epoch began.
pub(crate) fn advance(
    conn: &Connection,
    device: &str,
    batch: &Batch,
    epoch: &str,
    had: u64,
    last: u64,
) -> rusqlite::Result<()> {
    let base = if had == 0 {
        Some(0)
    } else if table_exists(conn, "peerlite_stamps")? {
        conn.prepare_cached(
            "SELECT hlc FROM peerlite_stamps WHERE device = ?1 AND tbl = ?2 AND filter = ?3 AND epoch = ?4 AND seq = ?5",
        )?
        .query_row(
            rusqlite::params![device, batch.table, batch.filter as i64, epoch, had as i64],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map(|h| h as u64)
    } else {
        None
    };
    let Some(base) = base else {
        return Ok(());
    };
    conn.execute_batch(DDL)?;
    conn.prepare_cached(
        "INSERT INTO peerlite_stamps(device, tbl, filter, epoch, seq, hlc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(device, tbl, filter) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq, hlc = excluded.hlc",
    )?
    .execute(rusqlite::params![
        device,
        batch.table,
        batch.filter as i64,
        epoch,
        last as i64,
        base.max(newest(batch)) as i64
    ])?;
    Ok(())
}

/// A change the sender numbered at or below `stamp.seq` that is newer than the stamp: one the
/// receiver cannot have had when its watermark passed that number. `sources` are the clocks of
/// the stamp's table; rows `peer` wrote itself (in any of its databases) and rows recorded as
/// too large to travel are never sent, so they prove nothing. Returns (seq, write time).
pub(crate) fn newer_below(
    conn: &Connection,
    sources: &[&TableMeta],
    stamp: &Stamp,
    peer: &str,
    writers: &HashMap<i64, (String, String)>,
) -> rusqlite::Result<Option<(u64, u64)>> {
    let unsent: HashSet<(String, i64)> = if table_exists(conn, "peerlite_unsent")? {
        conn.prepare_cached("SELECT clock, seq FROM peerlite_unsent")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    } else {
        HashSet::new()
    };
    let by_peer = |idx: i64| writers.get(&idx).is_some_and(|(d, _)| d == peer);
    for source in sources {
        let clock = source.clock();
        if !table_exists(conn, &clock)? {
            continue;
        }
        let mut st = conn.prepare_cached(&format!(
            "SELECT seq, hlc, origin, cols FROM {clock} WHERE seq <= ?1 ORDER BY seq DESC LIMIT {CHECKED}"
        ))?;
        let mut rows = st.query([stamp.seq as i64])?;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let hlc = r.get::<_, i64>(1)? as u64;
            let origin: i64 = r.get(2)?;
            let cols: Option<Vec<u8>> = r.get(3)?;
            let regs = registers::decode(cols.as_deref().unwrap_or_default());
            if (by_peer(origin) && regs.iter().all(|g| by_peer(g.origin)))
                || unsent.contains(&(clock.clone(), seq))
            {
                continue;
            }
            let written = regs.iter().map(|g| g.hlc).fold(hlc, u64::max);
            if written > stamp.hlc {
                return Ok(Some((seq as u64, written)));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_survive_the_features_list_and_junk_is_ignored() {
        let s = Stamp {
            table: "note".into(),
            filter: 0,
            epoch: "e1".into(),
            seq: 3,
            hlc: u64::MAX - 1,
        };
        let features = entries::add(
            vec![FEATURE_STAMPS.into()],
            entries::STAMPS,
            std::slice::from_ref(&s),
        );
        assert_eq!(features[0], FEATURE_STAMPS);
        assert!(entries::is_entry(&features[1]));
        let mut with_junk = features.clone();
        with_junk.push("stamps:[{not json".into());
        assert_eq!(entries::read::<Stamp>(&with_junk, entries::STAMPS), vec![s]);
    }
}
