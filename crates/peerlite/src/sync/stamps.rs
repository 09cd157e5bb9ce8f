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
//! That alone misses a copy whose re-issued changes are *older* than the stamp: two live
//! copies of one device (a cloned phone, two VMs from one snapshot) that each numbered their
//! next change N, the clone first. The receiver got the original's N, newer than the clone's,
//! so no row of the clone is newer than the stamp, and the clone's N is hidden for good. So the
//! stamp also keeps `at` and `key`: the write time and a fingerprint of the row key of the
//! change numbered exactly N, as it travelled (the last row of the batch that took the
//! watermark to N). In one history the sender's row numbered N, if it still has one (a row
//! written since has a higher number), is that change, unchanged; one of another row or
//! written at another time was numbered N twice (the key tells rows apart whose write time is
//! not known: rows written before their table was distributed). The last row of a batch is
//! numbered N unless the rows at N were left out (the receiver's own writes, a row too large
//! to travel), and those the check skips, so a row it compares is always the one that
//! travelled (a duplicate batch that moves nothing keeps the stamp as it was). Older peers
//! neither send nor read `at` and `key` (optional fields: the entries they send still parse,
//! and those they get still parse for them), and a stamp without them is checked as before.
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
#[cfg(test)]
use super::message::FEATURE_STAMPS;
use super::message::{Batch, RowChange};
use crate::changes::registers;
use crate::changes::registry::TableMeta;
use crate::store::schema::table_exists;
use crate::value::Value;

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
    /// The write time of the change numbered exactly `seq`, when the last row received was
    /// that change (`None`: not known — a stamp of an earlier build, or a batch whose rows at
    /// the end were all left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    /// A fingerprint of the row key of that change (see `at`): the first 8 bytes of the
    /// BLAKE3 hash of the key's postcard encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<u64>,
}

const DDL: &str = "CREATE TABLE IF NOT EXISTS peerlite_stamps(
  device TEXT NOT NULL,
  tbl TEXT NOT NULL,
  filter INTEGER NOT NULL,
  epoch TEXT NOT NULL,
  seq INTEGER NOT NULL,
  hlc INTEGER NOT NULL,
  at INTEGER,
  at_key INTEGER,
  PRIMARY KEY(device, tbl, filter)
) WITHOUT ROWID;";

/// Creates the stamps table, or gives one of an earlier build the `at` and `at_key` columns
/// (its stamps keep none: not known).
fn ensure_table(conn: &Connection) -> rusqlite::Result<()> {
    if !table_exists(conn, "peerlite_stamps")? {
        return conn.execute_batch(DDL);
    }
    if !has_at(conn)? {
        conn.execute_batch(
            "ALTER TABLE peerlite_stamps ADD COLUMN at INTEGER;
             ALTER TABLE peerlite_stamps ADD COLUMN at_key INTEGER;",
        )?;
    }
    Ok(())
}

/// True when the stamps table has the `at` column (and `at_key`: both came at once).
fn has_at(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM pragma_table_info('peerlite_stamps') WHERE name = 'at')",
    )?
    .query_row([], |r| r.get(0))
}

/// The stamps of `device`'s watermarks: only those taken at the watermark as it stands (a
/// watermark moved without its stamp, by a build that keeps none, has no stamp).
pub(crate) fn all(conn: &Connection, device: &str) -> rusqlite::Result<Vec<Stamp>> {
    if !table_exists(conn, "peerlite_stamps")? || !table_exists(conn, "peerlite_watermarks")? {
        return Ok(Vec::new());
    }
    // A table of an earlier build (read-only here: migrated by the next batch applied).
    let at = if has_at(conn)? {
        "s.at, s.at_key"
    } else {
        "NULL, NULL"
    };
    conn.prepare_cached(&format!(
        "SELECT s.tbl, s.filter, s.epoch, s.seq, s.hlc, {at} FROM peerlite_stamps s
         JOIN peerlite_watermarks w ON w.device = s.device AND w.tbl = s.tbl AND w.filter = s.filter
         WHERE s.device = ?1 AND w.epoch = s.epoch AND w.seq = s.seq"
    ))?
    .query_map([device], |r| {
        Ok(Stamp {
            table: r.get(0)?,
            filter: r.get::<_, i64>(1)? as u64,
            epoch: r.get(2)?,
            seq: r.get::<_, i64>(3)? as u64,
            hlc: r.get::<_, i64>(4)? as u64,
            at: r.get::<_, Option<i64>>(5)?.map(|h| h as u64),
            key: r.get::<_, Option<i64>>(6)?.map(|h| h as u64),
        })
    })?
    .collect()
}

/// The write time of a row: its existence event's or a later column write's, the latest.
fn written(row: &RowChange) -> u64 {
    row.regs.iter().map(|g| g.hlc).fold(row.hlc, u64::max)
}

/// A fingerprint of a row key, the same on every device and build.
fn fingerprint(ident: &Value) -> u64 {
    // Writing into a Vec cannot fail.
    let bytes = postcard::to_stdvec(ident).unwrap_or_default();
    let mut first = [0u8; 8];
    first.copy_from_slice(&blake3::hash(&bytes).as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// The latest write time in `batch`.
fn newest(batch: &Batch) -> u64 {
    batch.rows.iter().map(written).max().unwrap_or(0)
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
    ensure_table(conn)?;
    let base = if had == 0 {
        Some((0, (None, None)))
    } else {
        conn.prepare_cached(
            "SELECT hlc, at, at_key FROM peerlite_stamps WHERE device = ?1 AND tbl = ?2 AND filter = ?3 AND epoch = ?4 AND seq = ?5",
        )?
        .query_row(
            rusqlite::params![device, batch.table, batch.filter as i64, epoch, had as i64],
            |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    (r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?),
                ))
            },
        )
        .optional()?
    };
    let Some((base, at_had)) = base else {
        return Ok(());
    };
    // The last row is the change numbered `last` unless the rows at the end were left out
    // (see the module doc: those the sender's check skips). A batch that moves nothing keeps
    // the stamp's; one that moves the watermark over rows left out knows none.
    let (at, key) = if last == had {
        at_had
    } else {
        match batch.rows.last() {
            Some(r) => (Some(written(r) as i64), Some(fingerprint(&r.ident) as i64)),
            None => (None, None),
        }
    };
    conn.prepare_cached(
        "INSERT INTO peerlite_stamps(device, tbl, filter, epoch, seq, hlc, at, at_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(device, tbl, filter) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq, hlc = excluded.hlc, at = excluded.at, at_key = excluded.at_key",
    )?
    .execute(rusqlite::params![
        device,
        batch.table,
        batch.filter as i64,
        epoch,
        last as i64,
        base.max(newest(batch)) as i64,
        at,
        key
    ])?;
    Ok(())
}

/// A change the sender numbered at or below `stamp.seq` that is newer than the stamp, or the
/// change it numbered exactly `stamp.seq` when it is of another row or written at another time
/// than the one the receiver got as that number (`stamp.key`, `stamp.at`): one the receiver
/// cannot have had when its watermark passed that number. `sources` are the clocks of the
/// stamp's table; rows `peer` wrote itself (in any of its databases) and rows recorded as
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
            "SELECT seq, hlc, origin, cols, ident FROM {clock} WHERE seq <= ?1 ORDER BY seq DESC LIMIT {CHECKED}"
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
            let reissued = seq as u64 == stamp.seq && {
                let ident = Value::from_ref(r.get_ref(4)?);
                stamp.at.is_some_and(|at| at != written)
                    || stamp.key.is_some_and(|key| key != fingerprint(&ident))
            };
            if written > stamp.hlc || reissued {
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
            at: Some(u64::MAX - 2),
            key: Some(7),
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

    /// The entries of a build that keeps no `at` still parse (nothing known), and a stamp
    /// without one travels as such a build sent it.
    #[test]
    fn a_stamp_without_at_reads_as_unknown_and_travels_as_before() {
        let old = r#"stamps:[{"table":"note","filter":0,"epoch":"e1","seq":3,"hlc":7}]"#;
        let read = entries::read::<Stamp>(&[old.to_owned()], entries::STAMPS);
        assert_eq!(read.len(), 1);
        assert_eq!((read[0].at, read[0].key), (None, None));
        assert_eq!(entries::add(Vec::new(), entries::STAMPS, &read), vec![old]);
    }

    /// A stamps table of an earlier build (no `at` column) is read as it is and gains the
    /// column with the next batch, its stamp carried on.
    #[test]
    fn a_stamps_table_of_an_earlier_build_gains_at() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE peerlite_stamps(device TEXT NOT NULL, tbl TEXT NOT NULL, filter INTEGER NOT NULL,
               epoch TEXT NOT NULL, seq INTEGER NOT NULL, hlc INTEGER NOT NULL,
               PRIMARY KEY(device, tbl, filter)) WITHOUT ROWID;
             CREATE TABLE peerlite_watermarks(device TEXT, tbl TEXT, filter INTEGER, epoch TEXT, seq INTEGER);
             INSERT INTO peerlite_stamps VALUES ('b', 'note', 0, 'e1', 3, 50);
             INSERT INTO peerlite_watermarks VALUES ('b', 'note', 0, 'e1', 3);",
        )
        .unwrap();
        assert_eq!(all(&conn, "b").unwrap()[0].key, None);
        let row = |hlc| RowChange {
            ident: Value::Integer(1),
            hlc,
            origin: 0,
            tomb: false,
            values: Vec::new(),
            regs: Vec::new(),
        };
        let batch = Batch {
            session: 0,
            table: "note".into(),
            filter: 0,
            prev: 3,
            last: 9,
            columns: Vec::new(),
            devices: Vec::new(),
            rows: vec![row(60), row(40)],
            epochs: Vec::new(),
        };
        advance(&conn, "b", &batch, "e1", 3, 9).unwrap();
        conn.execute("UPDATE peerlite_watermarks SET seq = 9", [])
            .unwrap();
        let stamp = &all(&conn, "b").unwrap()[0];
        assert_eq!((stamp.seq, stamp.hlc, stamp.at), (9, 60, Some(40)));
        assert_eq!(stamp.key, Some(fingerprint(&Value::Integer(1))));
        assert_ne!(stamp.key, Some(fingerprint(&Value::Text("1".into()))));
    }
}
