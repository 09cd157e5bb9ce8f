//! Remote changes that broke a local constraint: recorded, reported, listed and resolved —
//! never dropped silently.
//!
//! A conflict is two rows with different identities that cannot both exist (another UNIQUE
//! column): which one should live is the application's decision. When two devices clash, each
//! records the other's row. `KeepEarlier` settles it the same way wherever it is used: the row
//! that came into existence first, by (hybrid logical clock, device id), lives — each device
//! decides alone, from the clocks both rows carry, and the devices converge. To choose by other
//! means, resolve on one side with `TakeRemote` and on the other with `KeepLocal` (the winner's
//! device keeps its row; the loser deletes its own and takes the winner's, and that delete
//! syncs) — or `TakeRemote` on one side only and let sync carry the result. `TakeRemote` on
//! both sides deletes both rows; `KeepLocal` on both leaves the devices different until one of
//! the rows changes.

use super::merge::CONFLICTS_DDL;
use super::message::{Batch, RowChange};
use crate::StoreKind;
use crate::changes::registry;
use crate::changes::registry::TableMeta;
use crate::error::{Error, Result};
use crate::schema::TableFacts;
use crate::store::RdbStore;
use crate::store::schema::quote_ident;
use crate::value::Value;

/// One recorded conflict.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// Its id.
    pub id: i64,
    /// The table.
    pub table: String,
    /// The row's identity.
    pub key: Value,
    /// The device the change came from.
    pub device: String,
    /// The error code of the constraint failure.
    pub code: u32,
    /// Its message.
    pub message: String,
    /// When it was recorded (ms since the Unix epoch).
    pub at_ms: u64,
}

/// How to settle a conflict here (see the module documentation for settling it everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Keep this device's rows; the remote change is discarded here.
    KeepLocal,
    /// Apply the remote change, deleting the local rows that block it (those deletes sync).
    TakeRemote,
    /// `TakeRemote` when the remote row came into existence before every local row that
    /// blocks it (by hybrid logical clock, then device id), `KeepLocal` otherwise: every
    /// device that resolves its side of a clash with it keeps the same row.
    KeepEarlier,
}

impl RdbStore {
    /// Every unresolved conflict, oldest first.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        let path = self.path();
        self.inner.read(|c| {
            let exists: bool = c
                .query_row("SELECT EXISTS(SELECT 1 FROM sqlite_schema WHERE name = 'peerlite_conflicts')", [], |r| r.get(0))
                .map_err(|e| Error::from_sqlite(e, path))?;
            if !exists {
                return Ok(Vec::new());
            }
            c.prepare("SELECT id, tbl, ident, device, code, message, at FROM peerlite_conflicts ORDER BY id")
                .and_then(|mut st| {
                    st.query_map([], |r| {
                        Ok(Conflict {
                            id: r.get(0)?,
                            table: r.get(1)?,
                            key: r.get(2)?,
                            device: r.get(3)?,
                            code: r.get(4)?,
                            message: r.get(5)?,
                            at_ms: r.get::<_, i64>(6)? as u64,
                        })
                    })?
                    .collect()
                })
                .map_err(|e| Error::from_sqlite(e, path))
        })
    }

    /// Settles conflict `id`.
    ///
    /// # Errors
    /// 14800001 for an unknown id; a constraint error when the remote change still cannot apply.
    pub fn resolve_conflict(&self, id: i64, resolution: Resolution) -> Result<()> {
        let path = self.path().to_path_buf();
        let sync = std::sync::Arc::clone(&self.inner.sync);
        self.transaction(|tx| {
            let conn = tx.conn()?;
            let sql_err = |e| Error::from_sqlite(e, &path);
            conn.execute_batch(CONFLICTS_DDL).map_err(sql_err)?;
            let change: Option<(String, Vec<u8>)> = conn
                .query_row(
                    "SELECT tbl, change FROM peerlite_conflicts WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map(Some)
                .or_else(|e| {
                    if matches!(e, rusqlite::Error::QueryReturnedNoRows) {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                })
                .map_err(sql_err)?;
            let Some((table, bytes)) = change else {
                return Err(Error::invalid(
                    StoreKind::Relational,
                    format!("no conflict {id}"),
                ));
            };
            if resolution != Resolution::KeepLocal {
                let batch: Batch = postcard::from_bytes(&bytes).map_err(|e| Error::Protocol {
                    detail: format!("a recorded conflict is unreadable: {e}"),
                })?;
                let metas = registry::load_all(conn).map_err(sql_err)?;
                let meta = metas.iter().find(|m| m.name == table).ok_or_else(|| {
                    Error::NotDistributed {
                        table: table.clone(),
                    }
                })?;
                let logical = metas
                    .iter()
                    .find(|m| m.name == meta.logical())
                    .unwrap_or(meta);
                let facts = crate::schema::table_facts(conn, &meta.name).map_err(sql_err)?;
                let take_remote = resolution == Resolution::TakeRemote
                    || remote_is_earlier(conn, meta, &facts, &batch).map_err(sql_err)?;
                if take_remote {
                    for (unique, value, row) in blockers(meta, &facts, &batch) {
                        tx.execute(
                            &format!(
                                "DELETE FROM {} WHERE {} = ? AND {} IS NOT ?",
                                quote_ident(&meta.name),
                                quote_ident(unique),
                                meta.identity_sql()
                            ),
                            &[value.clone(), row.ident.clone()],
                        )?;
                    }
                    let applied = {
                        let _paused = sync.pause_capture();
                        super::merge::apply_batch(tx, &sync, logical, &batch)?
                    };
                    if applied.conflicts > 0 {
                        return Err(Error::invalid(
                            StoreKind::Relational,
                            format!("conflict {id} still does not apply"),
                        ));
                    }
                }
            }
            conn.execute("DELETE FROM peerlite_conflicts WHERE id = ?1", [id])
                .map_err(sql_err)?;
            Ok(())
        })
    }
}

/// (UNIQUE column, the remote row's value in it, the remote row) for every column other than
/// the identity through which a local row may block one of the batch's rows.
fn blockers<'a>(
    meta: &'a TableMeta,
    facts: &'a TableFacts,
    batch: &'a Batch,
) -> impl Iterator<Item = (&'a str, &'a Value, &'a RowChange)> {
    batch.rows.iter().flat_map(move |row| {
        facts
            .unique_columns
            .iter()
            .filter(|u| !u.eq_ignore_ascii_case(&meta.identity))
            .filter_map(move |unique| {
                let pos = batch.columns.iter().position(|c| c == unique)?;
                Some((unique.as_str(), row.values.get(pos)?, row))
            })
    })
}

/// Whether every remote row of `batch` came into existence before each local row that blocks
/// it. Registers order by (hybrid logical clock, device id), as the merge orders them, so two
/// devices holding the same two rows decide alike.
fn remote_is_earlier(
    conn: &rusqlite::Connection,
    meta: &TableMeta,
    facts: &TableFacts,
    batch: &Batch,
) -> rusqlite::Result<bool> {
    let names: std::collections::HashMap<i64, String> =
        registry::devices(conn)?.into_iter().collect();
    let blocking_sql = |unique: &str| {
        format!(
            "SELECT c.hlc, c.origin FROM {table} AS t JOIN {clock} AS c ON c.ident = t.{id}
             WHERE t.{unique} = ?1 AND t.{id} IS NOT ?2",
            table = quote_ident(&meta.name),
            clock = meta.clock(),
            id = meta.identity_sql(),
            unique = quote_ident(unique),
        )
    };
    for (unique, value, row) in blockers(meta, facts, batch) {
        let device = batch
            .devices
            .get(row.origin as usize)
            .map_or("", String::as_str);
        let remote = (row.hlc, device);
        let mut st = conn.prepare(&blocking_sql(unique))?;
        let mut rows = st.query(rusqlite::params![value, row.ident])?;
        while let Some(r) = rows.next()? {
            let (hlc, origin): (i64, i64) = (r.get(0)?, r.get(1)?);
            let local = (hlc as u64, names.get(&origin).map_or("", String::as_str));
            if local <= remote {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
