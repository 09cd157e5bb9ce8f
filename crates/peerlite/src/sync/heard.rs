//! What this device has heard from each device in person: the newest timestamp among the
//! row states of a device's own (every register of the row written by it) that came from that
//! device itself (not relayed), in its epoch.
//!
//! A device's clock never goes back, and it streams its changes in the order it numbered
//! them. Once this device has received from the writer itself a row state of its own stamped
//! `H`, it holds every state the writer alone wrote up to `H` — or a newer one of that row,
//! or none because the row is deleted. A third device relaying such a state stamped at or
//! before `H` can therefore tell nothing new, but it can be stale: a relay that missed the
//! delete (and the delete's tombstone may be purged by now) would bring the row back here,
//! and from here to every device, for good. Such relayed rows are ignored. In device
//! collaboration only the owner writes its rows, so this covers all of them; in a
//! single-version table, the rows whose last writes were all one device's.

use rusqlite::Connection;

use crate::store::meta;

fn key(device: &str, table: &str) -> String {
    format!("heard:{table}:{device}")
}

/// The newest timestamp of `device`'s own rows of `table` received from it directly, in its
/// `epoch` (0 when none, or when that was another epoch of its database).
pub(crate) fn get(
    conn: &Connection,
    device: &str,
    table: &str,
    epoch: &str,
) -> rusqlite::Result<u64> {
    Ok(meta::get(conn, &key(device, table))?
        .as_deref()
        .and_then(|v| v.split_once(' '))
        .filter(|(e, _)| *e == epoch)
        .and_then(|(_, hlc)| hlc.parse().ok())
        .unwrap_or(0))
}

/// Raises it to `hlc` (a different epoch starts over).
pub(crate) fn raise(
    conn: &Connection,
    device: &str,
    table: &str,
    epoch: &str,
    hlc: u64,
) -> rusqlite::Result<()> {
    if hlc > get(conn, device, table, epoch)? {
        meta::set(conn, &key(device, table), &format!("{epoch} {hlc}"))?;
    }
    Ok(())
}

/// Forgets everything heard, every refresh under way, and every settled database (a reset's
/// seed, whose tables start empty: the peer's copies of this device's own rows are what it
/// pulls, whatever database they come from; the reset settles again when it finishes).
pub(crate) fn forget_all(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM peerlite_meta WHERE key LIKE 'heard:%' OR key LIKE 'refresh:%' OR key LIKE 'settled:%'",
        [],
    )
    .map(drop)
}

fn refresh_key(device: &str, table: &str) -> String {
    format!("refresh:{table}:{device}")
}

/// A first stream of `device`'s rows of `table` from the device itself, under way in its
/// `epoch`: this device's change number when it began (`None` when none is under way, or it
/// was another epoch). The device's rows here came through relays, and a relay may have missed
/// deletes whose tombstones are purged by now; the stream sends every row the device has, so
/// when it ends, a row of the device here that it did not bring is one the device no longer
/// has ([`super::merge::drop_unrefreshed`]).
pub(crate) fn refreshing(
    conn: &Connection,
    device: &str,
    table: &str,
    epoch: &str,
) -> rusqlite::Result<Option<u64>> {
    Ok(meta::get(conn, &refresh_key(device, table))?
        .as_deref()
        .and_then(|v| v.split_once(' '))
        .filter(|(e, _)| *e == epoch)
        .and_then(|(_, seq)| seq.parse().ok()))
}

/// Notes that a first stream from `device` begins at change number `from` here.
pub(crate) fn begin_refresh(
    conn: &Connection,
    device: &str,
    table: &str,
    epoch: &str,
    from: u64,
) -> rusqlite::Result<()> {
    meta::set(
        conn,
        &refresh_key(device, table),
        &format!("{epoch} {from}"),
    )
}

/// The first stream from `device` ended.
pub(crate) fn end_refresh(conn: &Connection, device: &str, table: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM peerlite_meta WHERE key = ?1",
        [refresh_key(device, table)],
    )
    .map(drop)
}

fn settled_key(epoch: &str) -> String {
    format!("settled:{epoch}")
}

/// Notes that this device's own rows of its database of `epoch` are all accounted for here: a
/// client reset that recovered replaced that database and replayed every row of its own of
/// each device-collaboration table. Peers still holding that database's rows relay them back
/// (a restored database may have lost them), but here they can only be stale — a row this
/// device has deleted since, its tombstone purged, would come back.
pub(crate) fn settle_own(conn: &Connection, epoch: &str) -> rusqlite::Result<()> {
    if epoch.is_empty() {
        return Ok(());
    }
    meta::set(conn, &settled_key(epoch), "")
}

/// The epochs whose own rows are settled here ([`settle_own`]).
pub(crate) fn settled(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st =
        conn.prepare("SELECT substr(key, 9) FROM peerlite_meta WHERE key LIKE 'settled:%'")?;
    st.query_map([], |r| r.get(0))?.collect()
}

/// Whether this device's own rows of its database of `epoch` are settled ([`settle_own`]).
pub(crate) fn own_settled(conn: &Connection, epoch: &str) -> rusqlite::Result<bool> {
    Ok(!epoch.is_empty() && meta::get(conn, &settled_key(epoch))?.is_some())
}

/// Notes that the database of `epoch` holds every row of its own as this device last wrote
/// it: none was put back from an earlier copy (a restore, a repair, a file copied back) —
/// a database created here, or installed by a client reset that recovered from a whole one.
/// Only such a database's own rows can be taken as newer than any copy a peer holds.
pub(crate) fn mark_whole(conn: &Connection, epoch: &str) -> rusqlite::Result<()> {
    meta::set(conn, "whole", epoch)
}

/// Whether the database (of `epoch`) is whole ([`mark_whole`]): a restore gives it another
/// epoch, so the mark no longer matches.
pub(crate) fn is_whole(conn: &Connection, epoch: &str) -> rusqlite::Result<bool> {
    Ok(!epoch.is_empty() && meta::get(conn, "whole")?.as_deref() == Some(epoch))
}
