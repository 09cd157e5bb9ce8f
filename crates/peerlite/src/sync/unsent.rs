//! Rows too large to travel. A batch frame holds at most the channel's frame limit (16 MiB
//! by default), and a single row is never split across batches; a row above the limit would
//! make every batch that carries it fail, and the table's sync would stop at it forever — the
//! rows after it never delivered. So the sender leaves such a row out (the batch still moves
//! the watermark past it, so the rows after it travel), records it here, and every sync of the
//! table reports it (17040013, naming the table and key) until the row is changed to a size
//! that travels — a later write gives it a new sequence number, and it is sent as usual.
//!
//! The bound, [`MAX_ROW_BYTES`], is 8 MiB: twice the key-value store's 4 MiB value limit,
//! and small enough that a batch (up to [`MAX_BATCH_BYTES`](super::extract::MAX_BATCH_BYTES)
//! of rows, then one more row) stays within the default frame.

use rusqlite::{Connection, OptionalExtension};

use crate::value::Value;

/// The most bytes of values a row may carry to a peer.
pub const MAX_ROW_BYTES: usize = 8 << 20;

/// A row left out of sync because it is larger than [`MAX_ROW_BYTES`].
#[derive(Debug, Clone, PartialEq)]
pub struct Unsendable {
    /// The logical (distributed) table.
    pub table: String,
    /// The clock table that numbered the change (the table's own, or a device table's).
    pub(crate) clock: String,
    /// The row's key (its primary key, or its sync key).
    pub key: Value,
    /// The change's sequence number.
    pub(crate) seq: u64,
    /// About how many bytes its values take.
    pub bytes: usize,
}

impl Unsendable {
    /// One line naming the row, its size and the limit.
    pub fn describe(&self) -> String {
        let key = match &self.key {
            Value::Text(t) => format!("{t:?}"),
            Value::Integer(i) => i.to_string(),
            Value::Real(r) => r.to_string(),
            Value::Blob(b) => format!("a {}-byte blob", b.len()),
            Value::Null => "NULL".into(),
        };
        format!(
            "the row of table {} with key {key} is {} bytes, over the {MAX_ROW_BYTES} bytes a row can carry: it is not sent (the rows after it are)",
            self.table, self.bytes
        )
    }
}

const DDL: &str = "CREATE TABLE IF NOT EXISTS peerlite_unsent(
  tbl TEXT NOT NULL,
  clock TEXT NOT NULL,
  ident NOT NULL,
  seq INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY(clock, ident)
) WITHOUT ROWID;";

/// Records rows left out of a batch.
pub(crate) fn record(conn: &Connection, rows: &[Unsendable]) -> rusqlite::Result<()> {
    conn.execute_batch(DDL)?;
    let mut st = conn.prepare_cached(
        "INSERT OR REPLACE INTO peerlite_unsent(tbl, clock, ident, seq, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for r in rows {
        st.execute(rusqlite::params![
            r.table,
            r.clock,
            r.key,
            r.seq as i64,
            r.bytes as i64
        ])?;
    }
    Ok(())
}

/// The rows of `tables` recorded as too large whose change is still the latest (a row
/// written since, or deleted, has another sequence number and travels as usual).
pub(crate) fn current(conn: &Connection, tables: &[String]) -> rusqlite::Result<Vec<Unsendable>> {
    if !crate::store::schema::table_exists(conn, "peerlite_unsent")? {
        return Ok(Vec::new());
    }
    let mut st = conn.prepare_cached(
        "SELECT tbl, clock, ident, seq, bytes FROM peerlite_unsent ORDER BY tbl, seq",
    )?;
    let recorded = st
        .query_map([], |r| {
            Ok(Unsendable {
                table: r.get(0)?,
                clock: r.get(1)?,
                key: Value::from_ref(r.get_ref(2)?),
                seq: r.get::<_, i64>(3)? as u64,
                bytes: r.get::<_, i64>(4)? as usize,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for u in recorded.into_iter().filter(|u| tables.contains(&u.table)) {
        if !crate::store::schema::table_exists(conn, &u.clock)? {
            continue;
        }
        let seq: Option<i64> = conn
            .prepare_cached(&format!(
                "SELECT seq FROM {} WHERE ident = ?1",
                crate::store::schema::quote_ident(&u.clock)
            ))?
            .query_row([&u.key], |r| r.get(0))
            .optional()?;
        if seq == Some(u.seq as i64) {
            out.push(u);
        }
    }
    Ok(out)
}
