//! Remote changes that broke a local constraint (or held a value the table here cannot
//! store): recorded, reported, listed and resolved — never dropped silently.
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
//!
//! A record can go stale: the local row changes its value, the remote row is deleted or
//! changed, or it simply applies now. Resolution therefore judges the rows as they are when it
//! runs: it first merges the recorded remote state as sync would, and a conflict that no longer
//! clashes is settled by that merge alone — whatever the resolution, on either side, nothing
//! is deleted or kept back for it. Only a clash that still stands is decided, and only rows
//! holding a UNIQUE value the merged remote row needs are ever deleted.

use rusqlite::OptionalExtension;

use super::merge::{CONFLICTS_DDL, Clash};
use crate::StoreKind;
use crate::changes::ChangeRecord;
use crate::changes::registry;
use crate::changes::registry::TableMeta;
use crate::error::{Error, Result};
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
    /// The device the change came from. This device's own id marks a change of its own
    /// that a client reset replayed on a peer's state, where a row of the peer's was in its
    /// way: the row in the table is the peer's, the recorded one is this device's, and the
    /// resolutions keep their meaning — `KeepLocal` keeps this device's change (the peer's
    /// row in its way is deleted), `TakeRemote` keeps the peer's row and drops the change.
    pub device: String,
    /// The error code of the failure (a constraint, or a value the table cannot store).
    pub code: u32,
    /// Its message.
    pub message: String,
    /// When it was recorded (ms since the Unix epoch).
    pub at_ms: u64,
    /// The remote row as recorded: its existence event, tombstone flag and column registers
    /// (`seq` is 0: it never took a place in this store's sequence).
    pub change: ChangeRecord,
    /// The remote row's synced values as recorded, by column (none for a deleted row).
    pub values: Vec<(String, Value)>,
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
            let rows: Vec<(Conflict, Vec<u8>)> = c
                .prepare("SELECT id, tbl, ident, device, code, message, at, change FROM peerlite_conflicts ORDER BY id")
                .and_then(|mut st| {
                    st.query_map([], |r| {
                        let table: String = r.get(1)?;
                        let key: Value = r.get(2)?;
                        let conflict = Conflict {
                            id: r.get(0)?,
                            change: ChangeRecord {
                                table: table.clone(),
                                key: key.clone(),
                                origin: String::new(),
                                hlc: 0,
                                seq: 0,
                                tombstone: false,
                                columns: Vec::new(),
                            },
                            values: Vec::new(),
                            table,
                            key,
                            device: r.get(3)?,
                            code: r.get(4)?,
                            message: r.get(5)?,
                            at_ms: r.get::<_, i64>(6)? as u64,
                        };
                        Ok((conflict, r.get(7)?))
                    })?
                    .collect()
                })
                .map_err(|e| Error::from_sqlite(e, path))?;
            rows.into_iter()
                .map(|(mut conflict, bytes)| {
                    conflict.values = recorded_change(&mut conflict.change, &bytes)?;
                    Ok(conflict)
                })
                .collect()
        })
    }

    /// Settles conflict `id`. The conflict is judged against the rows as they are now: the
    /// remote state is first merged as sync would merge it, and a conflict that no longer
    /// clashes (the local row changed its value, the remote row was deleted or changed since,
    /// or it simply applies now) is settled by that merge alone, whatever the resolution — no
    /// row is deleted or kept back for it. Only a clash that still stands is decided by
    /// `resolution`, and then only rows that hold a UNIQUE value the remote row needs are
    /// deleted.
    ///
    /// # Errors
    /// 14800001 for an unknown id; the constraint error (14800032, or 14800033 for a value
    /// the column cannot store) when the kept row still cannot apply — a constraint or
    /// trigger of the database refuses it (the conflict stays recorded).
    pub fn resolve_conflict(&self, id: i64, resolution: Resolution) -> Result<()> {
        let path = self.path().to_path_buf();
        let sync = std::sync::Arc::clone(self.inner.sync()?);
        self.transaction(|tx| {
            let conn = tx.conn()?;
            let sql_err = |e| Error::from_sqlite(e, &path);
            conn.execute_batch(CONFLICTS_DDL).map_err(sql_err)?;
            let change: Option<(String, Vec<u8>, String)> = conn
                .query_row(
                    "SELECT tbl, change, device FROM peerlite_conflicts WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(sql_err)?;
            let Some((table, bytes, device)) = change else {
                return Err(Error::invalid(
                    StoreKind::Relational,
                    format!("no conflict {id}"),
                ));
            };
            let batch = super::merge::decode_recorded(&bytes)?;
            let metas = registry::load_all(conn).map_err(sql_err)?;
            let meta =
                metas
                    .iter()
                    .find(|m| m.name == table)
                    .ok_or_else(|| Error::NotDistributed {
                        table: table.clone(),
                    })?;
            let logical = metas
                .iter()
                .find(|m| m.name == meta.logical())
                .unwrap_or(meta);
            let merge = |tx: &crate::store::Transaction<'_>| {
                let _paused = sync.pause_capture();
                super::merge::apply_batch(tx, &sync, logical, &batch, None)
            };
            // The trial: does the remote state still clash with the rows as they are now?
            conn.execute_batch("SAVEPOINT peerlite_resolve")
                .map_err(sql_err)?;
            let clash = merge(tx)?.clashes.into_iter().next();
            let end = if clash.is_some() {
                "ROLLBACK TO peerlite_resolve; RELEASE peerlite_resolve"
            } else {
                "RELEASE peerlite_resolve"
            };
            conn.execute_batch(end).map_err(sql_err)?;
            // A change of this device's own that a reset replayed: the recorded row is the
            // local one, the row in the table the remote one (see `Conflict::device`).
            let resolution = match resolution {
                Resolution::KeepLocal if device == self.device_id() => Resolution::TakeRemote,
                Resolution::TakeRemote if device == self.device_id() => Resolution::KeepLocal,
                other => other,
            };
            let (Some(clash), Some(row)) = (clash, batch.rows.first()) else {
                conn.execute("DELETE FROM peerlite_conflicts WHERE id = ?1", [id])
                    .map_err(sql_err)?;
                return Ok(());
            };
            if resolution != Resolution::KeepLocal {
                let blocking = blockers(conn, meta, &row.ident, &clash).map_err(sql_err)?;
                // KeepEarlier: the remote row lives when it came into existence before every
                // local row in its way, by (HLC, device id) — the order the merge uses.
                let take = resolution == Resolution::TakeRemote
                    || blocking
                        .iter()
                        .all(|(_, existence)| clash.existence < *existence);
                if take {
                    for (ident, _) in &blocking {
                        tx.execute(
                            &format!(
                                "DELETE FROM {} WHERE {} = ?",
                                quote_ident(&meta.name),
                                meta.identity_sql()
                            ),
                            std::slice::from_ref(ident),
                        )?;
                    }
                    // Refused by a constraint or trigger of the app itself (nothing of
                    // sync's in its way any more): the app's own error, the conflict kept.
                    if let Some(again) = merge(tx)?.clashes.into_iter().next() {
                        let (sqlite, message) = again.refused;
                        return Err(Error::Sqlite {
                            sqlite,
                            message: format!("conflict {id} still does not apply: {message}"),
                        });
                    }
                }
            }
            conn.execute("DELETE FROM peerlite_conflicts WHERE id = ?1", [id])
                .map_err(sql_err)?;
            Ok(())
        })
    }
}

/// Fills `record` with the remote row of a recorded conflict; returns its values.
fn recorded_change(record: &mut ChangeRecord, bytes: &[u8]) -> Result<Vec<(String, Value)>> {
    let batch = super::merge::decode_recorded(bytes)?;
    let name = |i: u32| batch.devices.get(i as usize).cloned().unwrap_or_default();
    let Some(row) = batch.rows.first() else {
        return Ok(Vec::new());
    };
    {
        record.origin = name(row.origin);
        record.hlc = row.hlc;
        record.tombstone = row.tomb;
        record.columns = row
            .regs
            .iter()
            .map(|g| {
                let column = batch
                    .columns
                    .get(usize::from(g.column))
                    .cloned()
                    .unwrap_or_default();
                (column, g.hlc, name(g.origin))
            })
            .collect();
    }
    Ok(batch
        .columns
        .iter()
        .cloned()
        .zip(row.values.iter().cloned())
        .collect())
}

/// The local rows in the way of the merged remote row `ident` (the state `clash` describes):
/// those holding, in every column of a whole-table UNIQUE index, the values the remote row
/// needs there — each with its existence event (HLC, device id). A row that holds no such
/// value breaks no constraint with it and is never among them.
fn blockers(
    conn: &rusqlite::Connection,
    meta: &TableMeta,
    ident: &Value,
    clash: &Clash,
) -> rusqlite::Result<Vec<(Value, (u64, String))>> {
    let names: std::collections::HashMap<i64, String> =
        registry::devices(conn)?.into_iter().collect();
    let mut found: Vec<(Value, (u64, String))> = Vec::new();
    for columns in unique_indexes(conn, &meta.name)? {
        if columns
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&meta.identity))
        {
            continue; // another identity is another row of that index by definition
        }
        let Some(values) = columns
            .iter()
            .map(|c| {
                let i = meta
                    .columns
                    .iter()
                    .position(|m| m.eq_ignore_ascii_case(c))?;
                clash
                    .values
                    .get(i)
                    .filter(|v| !matches!(v, Value::Null))
                    .cloned()
            })
            .collect::<Option<Vec<Value>>>()
        else {
            continue; // a NULL never collides; an unsynced column is not ours to judge
        };
        let filter: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("t.{} = ?{}", quote_ident(c), i + 1))
            .collect();
        let sql = format!(
            "SELECT t.{id}, c.hlc, c.origin FROM {table} AS t LEFT JOIN {clock} AS c ON c.ident = t.{id}
             WHERE {filter} AND t.{id} IS NOT ?{n}",
            table = quote_ident(&meta.name),
            clock = meta.clock(),
            id = meta.identity_sql(),
            filter = filter.join(" AND "),
            n = columns.len() + 1,
        );
        let mut params: Vec<&dyn rusqlite::ToSql> =
            values.iter().map(|v| v as &dyn rusqlite::ToSql).collect();
        params.push(ident);
        let mut st = conn.prepare(&sql)?;
        let mut rows = st.query(params.as_slice())?;
        while let Some(r) = rows.next()? {
            let key = Value::from_ref(r.get_ref(0)?);
            let hlc: Option<i64> = r.get(1)?;
            let origin: Option<i64> = r.get(2)?;
            let existence = (
                hlc.unwrap_or(0) as u64,
                origin
                    .and_then(|o| names.get(&o).cloned())
                    .unwrap_or_default(),
            );
            if !found.iter().any(|(k, _)| *k == key) {
                found.push((key, existence));
            }
        }
    }
    Ok(found)
}

/// The columns of each whole-table UNIQUE index of `table` (UNIQUE constraints included).
fn unique_indexes(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<Vec<Vec<String>>> {
    let names: Vec<String> = conn
        .prepare(r#"SELECT name FROM pragma_index_list(?1) WHERE "unique" AND NOT partial"#)?
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(names.len());
    for index in names {
        let columns: Vec<Option<String>> = conn
            .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?
            .query_map([&index], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        // An index on an expression has a column without a name: it cannot be judged here.
        if let Some(columns) = columns.into_iter().collect::<Option<Vec<String>>>() {
            out.push(columns);
        }
    }
    Ok(out)
}
