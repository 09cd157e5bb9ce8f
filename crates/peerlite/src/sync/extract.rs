//! Reading what a peer has not seen yet: the rows of one (logical) table whose clock changed
//! after the peer's watermark, in sequence order, as full row states. In device-collaboration
//! mode that includes the device tables, so rows relay: a device forwards rows it got from a
//! third device. Rows whose every write the peer's *current* database already held (they came
//! from it, or were relayed from it, tagged with its epoch) are not sent back (echo
//! suppression) — but they still advance the watermark. Writes an earlier database of the
//! peer held are sent: a peer re-created or restored since may have lost them. The rule reads
//! no clock, so it holds however far a device's clock ran ahead of its wall clock.

use std::collections::HashMap;

use rusqlite::Connection;

use super::message::{Batch, RowChange, WireRegister};
use super::unsent::{MAX_ROW_BYTES, Unsendable};
use crate::changes::registers;
use crate::changes::registry::TableMeta;
use crate::error::{Error, Result};
use crate::store::RdbPredicates;
use crate::store::schema::{SchemaCache, quote_ident};
use crate::value::Value;

/// The pending-values table of a clock: column values written after a row's delete.
pub(crate) fn pending_table(meta: &TableMeta) -> String {
    format!("peerlite_pending_{}", meta.tid)
}

/// `CREATE TABLE` of the pending-values table.
pub(crate) fn pending_ddl(meta: &TableMeta) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {}(ident NOT NULL, col INTEGER NOT NULL, value, PRIMARY KEY(ident, col)) WITHOUT ROWID;",
        pending_table(meta)
    )
}

/// Writers (device id, epoch) by local index, and the batch's own numbering of them.
pub(crate) struct DeviceNumbers<'a> {
    writers: &'a HashMap<i64, (String, String)>,
    in_batch: HashMap<i64, u32>,
    list: Vec<String>,
    epochs: Vec<String>,
}

impl<'a> DeviceNumbers<'a> {
    pub fn new(writers: &'a HashMap<i64, (String, String)>) -> Self {
        DeviceNumbers {
            writers,
            in_batch: HashMap::new(),
            list: Vec::new(),
            epochs: Vec::new(),
        }
    }

    fn number(&mut self, idx: i64) -> u32 {
        if let Some(n) = self.in_batch.get(&idx) {
            return *n;
        }
        let n = self.list.len() as u32;
        let (device, epoch) = self.writers.get(&idx).cloned().unwrap_or_default();
        self.list.push(device);
        self.epochs.push(epoch);
        self.in_batch.insert(idx, n);
        n
    }
}

/// Bytes of row values a batch carries at most (past one row): a batch of large rows (4 MiB
/// key-value entries, say) stays far below the channel's frame limit and the receiver's
/// memory, whatever the batch's row count.
pub(crate) const MAX_BATCH_BYTES: usize = 4 << 20;

/// About how many bytes a value takes on the wire.
pub(crate) fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Text(t) => t.len() + 5,
        Value::Blob(b) => b.len() + 5,
        Value::Null => 1,
        Value::Integer(_) | Value::Real(_) => 9,
    }
}

struct Found {
    seq: u64,
    bytes: usize,
    row: Option<RowChange>,
}

/// The next batch of `logical` for `peer`: at most `limit` rows changed after `since`, and
/// the rows in its range left out because they are too large to travel.
/// `sources` are the clock-bearing tables of the logical table (itself, and its device tables);
/// `echo` is the writer index here of the peer's current database, if it has one.
#[allow(clippy::too_many_arguments)]
pub(crate) fn next_batch(
    conn: &Connection,
    schema: &SchemaCache,
    path: &std::path::Path,
    logical: &TableMeta,
    sources: &[&TableMeta],
    predicates: Option<&RdbPredicates>,
    since: u64,
    echo: Option<i64>,
    writers: &HashMap<i64, (String, String)>,
    limit: usize,
) -> Result<(Batch, Vec<Unsendable>)> {
    let sql_err = |e| Error::from_sqlite(e, path);
    let mut devices = DeviceNumbers::new(writers);
    let mut too_large: Vec<Unsendable> = Vec::new();
    let mut found: Vec<Found> = Vec::new();
    // A source cut short by MAX_BATCH_BYTES: rows of other sources past where it stopped wait
    // for the next batch, so none is skipped.
    let mut cut: Option<u64> = None;
    for source in sources {
        let mut bytes = 0usize;
        let data = quote_ident(&source.name);
        let id = source.identity_sql();
        let cols: Vec<String> = logical
            .columns
            .iter()
            .map(|c| format!("t.{}", quote_ident(c)))
            .collect();
        // A filtered batch: the rows the filter selects now, every delete, and — once this
        // filter has synced before (`since` > 0) — rows that no longer match but whose
        // filtered columns were written since they were inserted: their last state goes too,
        // so a row that left the filter's set is updated on the receiver (where the filter no
        // longer selects it either), never left there with values it no longer has.
        let (matched_sql, where_sql, mut params, filter_mask) = match predicates {
            Some(p) => {
                let p = p.clone().with_table(source.name.clone());
                let referenced = p.referenced_columns();
                let mask = source
                    .columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| referenced.clone().any(|r| r.eq_ignore_ascii_case(c)))
                    .fold(0u64, |m, (i, _)| m | (1 << i));
                let (info, _) = schema.resolve_columns(conn, &source.name, referenced, path)?;
                let w = p.compile_where(&info)?;
                (
                    format!(
                        ", c.ident IN (SELECT {id} FROM {data}{}) AS peerlite_matched",
                        w.sql
                    ),
                    " AND (c.tomb = 1 OR peerlite_matched OR (? AND c.cols IS NOT NULL))",
                    w.params,
                    Some(mask),
                )
            }
            None => (", 1 AS peerlite_matched".to_owned(), "", Vec::new(), None),
        };
        let sql = format!(
            "SELECT c.ident, c.seq, c.hlc, c.origin, c.tomb, c.cols{matched_sql}{sep}{cols} FROM {clock} c LEFT JOIN {data} t ON t.{id} = c.ident \
             WHERE c.seq > ?{where_sql} ORDER BY c.seq LIMIT ?",
            sep = if cols.is_empty() { "" } else { ", " },
            cols = cols.join(", "),
            clock = source.clock(),
        );
        params.push(Value::Integer(since as i64));
        if filter_mask.is_some() {
            params.push(Value::Integer(i64::from(since > 0)));
        }
        params.push(Value::Integer(limit as i64));
        let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
        crate::store::read::bind(&mut stmt, &params, path)?;
        let mut rows = stmt.raw_query();
        while let Some(r) = rows.next().map_err(sql_err)? {
            let seq = r.get::<_, i64>(1).map_err(sql_err)? as u64;
            let origin: i64 = r.get(3).map_err(sql_err)?;
            let tomb: bool = r.get(4).map_err(sql_err)?;
            let cols_blob: Option<Vec<u8>> = r.get(5).map_err(sql_err)?;
            let regs = registers::decode(cols_blob.as_deref().unwrap_or_default());
            let hlc = r.get::<_, i64>(2).map_err(sql_err)? as u64;
            let echo =
                echo.is_some_and(|peer| origin == peer && regs.iter().all(|g| g.origin == peer));
            // Not selected, and none of its filtered columns written since its insert: it
            // never left the set, because it was never in it.
            let matched: bool = r.get(6).map_err(sql_err)?;
            let outside = !tomb
                && !matched
                && filter_mask.is_some_and(|mask| {
                    !regs
                        .iter()
                        .any(|g| g.column < 64 && mask & (1 << g.column) != 0)
                });
            if echo || outside {
                found.push(Found {
                    seq,
                    bytes: 0,
                    row: None,
                });
                continue;
            }
            let ident = Value::from_ref(r.get_ref(0).map_err(sql_err)?);
            let values = if tomb {
                Vec::new()
            } else {
                (0..logical.columns.len())
                    .map(|i| r.get_ref(7 + i).map(Value::from_ref))
                    .collect::<rusqlite::Result<_>>()
                    .map_err(sql_err)?
            };
            let size = values.iter().map(value_bytes).sum::<usize>() + 32;
            if size > MAX_ROW_BYTES {
                // It could never travel: left out (the watermark still passes it, so the
                // rows after it do travel) and reported by the caller.
                too_large.push(Unsendable {
                    table: logical.name.clone(),
                    clock: source.clock(),
                    key: ident,
                    seq,
                    bytes: size,
                });
                found.push(Found {
                    seq,
                    bytes: 0,
                    row: None,
                });
                continue;
            }
            let wire_regs = regs
                .iter()
                .map(|g| WireRegister {
                    column: g.column,
                    hlc: g.hlc,
                    origin: devices.number(g.origin),
                    value: None,
                })
                .collect();
            let origin = devices.number(origin);
            bytes += size;
            found.push(Found {
                seq,
                bytes: size,
                row: Some(RowChange {
                    ident,
                    hlc,
                    origin,
                    tomb,
                    values,
                    regs: wire_regs,
                }),
            });
            if bytes > MAX_BATCH_BYTES {
                cut = Some(cut.map_or(seq, |c| c.min(seq)));
                break;
            }
        }
    }
    if let Some(cut) = cut {
        found.retain(|f| f.seq <= cut);
    }
    found.sort_by_key(|f| f.seq);
    found.truncate(limit);
    let mut total = 0usize;
    if let Some(end) = found.iter().position(|f| {
        total += f.bytes;
        total > MAX_BATCH_BYTES
    }) {
        found.truncate(end + 1);
    }
    let last = found.last().map_or(since, |f| f.seq);
    too_large.retain(|u| u.seq <= last);
    let mut rows: Vec<RowChange> = found.into_iter().filter_map(|f| f.row).collect();
    attach_pending(conn, path, sources, &mut rows)?;
    let batch = Batch {
        session: 0,
        table: logical.name.clone(),
        filter: 0,
        prev: since,
        last,
        columns: logical.columns.clone(),
        devices: devices.list,
        rows,
        epochs: devices.epochs,
    };
    Ok((batch, too_large))
}

/// Deleted rows carry the values of columns written after their delete.
fn attach_pending(
    conn: &Connection,
    path: &std::path::Path,
    sources: &[&TableMeta],
    rows: &mut [RowChange],
) -> Result<()> {
    if !rows.iter().any(|r| r.tomb && !r.regs.is_empty()) {
        return Ok(());
    }
    for source in sources {
        let sql = format!(
            "SELECT value FROM {} WHERE ident = ?1 AND col = ?2",
            pending_table(source)
        );
        let Ok(mut stmt) = conn.prepare_cached(&sql) else {
            continue;
        };
        for row in rows.iter_mut().filter(|r| r.tomb) {
            for reg in &mut row.regs {
                let mut found = stmt
                    .query(rusqlite::params![row.ident, reg.column])
                    .map_err(|e| Error::from_sqlite(e, path))?;
                if let Some(r) = found.next().map_err(|e| Error::from_sqlite(e, path))? {
                    reg.value = Some(Value::from_ref(
                        r.get_ref(0).map_err(|e| Error::from_sqlite(e, path))?,
                    ));
                }
            }
        }
    }
    Ok(())
}
