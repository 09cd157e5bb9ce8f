//! The compact row form of a [`Batch`], sent when both sides list the `compact-rows` feature.
//!
//! A `Batch` row carries one [`WireRegister`] per column written since the row's existence
//! event: column, full HLC (a 9-byte varint), origin and value option, ~12 bytes each, so a
//! rewrite of six columns adds ~72 bytes to ~110 bytes of values. Here a row carries its
//! registers as [`RegisterGroup`]s: one per run of registers with the same (HLC, origin) and
//! rising columns, the columns as a bitmask and the HLC as a difference to the row's. A
//! whole-row update is one group of ~8 bytes. Values of a deleted row's registers keep their
//! place in the group (in column order).
//!
//! The form is a pure conversion: sessions and merge work on `Batch`, a sender converts on the
//! way out ([`CompactBatch::from_batch`]) and a receiver on the way in
//! ([`CompactBatch::into_batch`]). Every batch whose registers name its columns and that
//! holds at most [`MAX_COMPACT_REGISTERS`] of them converts and comes back identical (order of
//! registers, duplicates and values included); any other batch travels as a classic `Batch`,
//! which a receiver always accepts.
//!
//! ```
//! use peerlite::sync::{Batch, CompactBatch, RowChange, WireRegister};
//! use peerlite::value::Value;
//!
//! let regs = (1..3)
//!     .map(|column| WireRegister { column, hlc: 5_000, origin: 0, value: None })
//!     .collect();
//! let batch = Batch {
//!     session: 1, table: "t".into(), filter: 0, prev: 0, last: 1,
//!     columns: vec!["id".into(), "a".into(), "b".into()],
//!     devices: vec!["phone".into()],
//!     rows: vec![RowChange {
//!         ident: Value::Integer(1), hlc: 4_000, origin: 0, tomb: false,
//!         values: vec![Value::Integer(1), Value::Integer(2), Value::Integer(3)],
//!         regs,
//!     }],
//!     epochs: vec![],
//! };
//! let compact = CompactBatch::from_batch(&batch).expect("its registers name its columns");
//! assert_eq!(compact.rows[0].groups.len(), 1); // one write of two columns: one group
//! assert_eq!(compact.rows[0].groups[0].mask, vec![0b110]);
//! assert_eq!(compact.into_batch()?, batch);
//! # Ok::<(), peerlite::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use super::message::{Batch, RowChange, WireRegister};
use crate::error::{Error, Result};
use crate::value::Value;

/// The most registers a compact batch may expand to. A mask bit costs an eighth of a byte,
/// so without a bound a small message could make the receiver allocate ~400 times its size;
/// a batch with more registers (far beyond 2,000 rows of 64 columns) travels classic.
pub const MAX_COMPACT_REGISTERS: usize = 1 << 20;

/// A [`Batch`] whose row registers travel grouped (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactBatch {
    /// The session's id.
    pub session: u64,
    /// The table.
    pub table: String,
    /// The predicate sync it belongs to (0: the whole table).
    pub filter: u64,
    /// The sequence number the batch continues from.
    pub prev: u64,
    /// The last sequence number it covers.
    pub last: u64,
    /// The column order of values and masks.
    pub columns: Vec<String>,
    /// Device ids the rows refer to.
    pub devices: Vec<String>,
    /// The rows.
    pub rows: Vec<CompactRow>,
    /// As [`Batch::epochs`].
    pub epochs: Vec<String>,
}

/// One row's full state with its registers grouped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactRow {
    /// The row's identity.
    pub ident: Value,
    /// When it was last inserted or deleted.
    pub hlc: u64,
    /// By which device (index into the batch's `devices`).
    pub origin: u32,
    /// True when deleted.
    pub tomb: bool,
    /// The row's values in the batch's column order (empty when deleted).
    pub values: Vec<Value>,
    /// The registers, run by run in their order in the `Batch`.
    pub groups: Vec<RegisterGroup>,
}

/// Registers written at the same HLC by the same device, for rising columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterGroup {
    /// The registers' HLC minus the row's, wrapping (small: they were written after the
    /// existence event; postcard sends it as a zigzag varint).
    pub hlc_delta: i64,
    /// Who wrote them (index into the batch's `devices`).
    pub origin: u32,
    /// Bit `i % 8` of byte `i / 8` set for column `i`; never empty, no bit past the batch's
    /// columns.
    pub mask: Vec<u8>,
    /// The registers' values in column order, or empty when none has one (a live row's).
    pub values: Vec<Option<Value>>,
}

impl CompactBatch {
    /// The compact form of `batch`, or `None` when a register names a column outside
    /// `batch.columns` or the batch holds more than [`MAX_COMPACT_REGISTERS`] registers (it
    /// travels classic then).
    pub fn from_batch(batch: &Batch) -> Option<CompactBatch> {
        let total: usize = batch.rows.iter().map(|r| r.regs.len()).sum();
        if total > MAX_COMPACT_REGISTERS {
            return None;
        }
        let rows = batch
            .rows
            .iter()
            .map(|r| compact_row(r, batch.columns.len()))
            .collect::<Option<Vec<_>>>()?;
        Some(CompactBatch {
            session: batch.session,
            table: batch.table.clone(),
            filter: batch.filter,
            prev: batch.prev,
            last: batch.last,
            columns: batch.columns.clone(),
            devices: batch.devices.clone(),
            rows,
            epochs: batch.epochs.clone(),
        })
    }

    /// The `Batch` this is the compact form of.
    ///
    /// # Errors
    /// 17040004 for a group that names no column, a mask longer than the columns or with a
    /// bit past them, values that do not match the mask, or more than
    /// [`MAX_COMPACT_REGISTERS`] registers in all (checked before they are allocated).
    pub fn into_batch(self) -> Result<Batch> {
        let width = self.columns.len();
        let mut total = 0usize;
        let mut rows = Vec::with_capacity(self.rows.len());
        for row in self.rows {
            let mut count = 0usize;
            for g in &row.groups {
                count += group_columns(g, width)?;
            }
            total += count;
            if total > MAX_COMPACT_REGISTERS {
                return Err(protocol(format!(
                    "a compact batch expands past {MAX_COMPACT_REGISTERS} registers"
                )));
            }
            let mut regs = Vec::with_capacity(count);
            for g in row.groups {
                let hlc = row.hlc.wrapping_add(g.hlc_delta as u64);
                let mut values = g.values.into_iter();
                for column in columns_of(&g.mask) {
                    regs.push(WireRegister {
                        column,
                        hlc,
                        origin: g.origin,
                        value: values.next().flatten(),
                    });
                }
            }
            rows.push(RowChange {
                ident: row.ident,
                hlc: row.hlc,
                origin: row.origin,
                tomb: row.tomb,
                values: row.values,
                regs,
            });
        }
        Ok(Batch {
            session: self.session,
            table: self.table,
            filter: self.filter,
            prev: self.prev,
            last: self.last,
            columns: self.columns,
            devices: self.devices,
            rows,
            epochs: self.epochs,
        })
    }
}

fn protocol(detail: String) -> Error {
    Error::Protocol { detail }
}

/// A row's registers as groups: a new group starts where the writer changes or the column
/// does not rise (so order and duplicates survive). `None` for a column past `width`.
fn compact_row(row: &RowChange, width: usize) -> Option<CompactRow> {
    let mut groups: Vec<RegisterGroup> = Vec::new();
    let mut last: Option<(u64, u32, u16)> = None;
    for reg in &row.regs {
        let column = usize::from(reg.column);
        if column >= width {
            return None;
        }
        let continues = last.is_some_and(|(hlc, origin, col)| {
            hlc == reg.hlc && origin == reg.origin && reg.column > col
        });
        if !continues {
            groups.push(RegisterGroup {
                hlc_delta: reg.hlc.wrapping_sub(row.hlc) as i64,
                origin: reg.origin,
                mask: Vec::new(),
                values: Vec::new(),
            });
        }
        let g = groups.last_mut()?;
        if g.mask.len() <= column / 8 {
            g.mask.resize(column / 8 + 1, 0);
        }
        g.mask[column / 8] |= 1 << (column % 8);
        g.values.push(reg.value.clone());
        last = Some((reg.hlc, reg.origin, reg.column));
    }
    for g in &mut groups {
        // A live row's registers hold no value: one byte for the group, not one a column.
        if g.values.iter().all(Option::is_none) {
            g.values.clear();
        }
    }
    Some(CompactRow {
        ident: row.ident.clone(),
        hlc: row.hlc,
        origin: row.origin,
        tomb: row.tomb,
        values: row.values.clone(),
        groups,
    })
}

/// How many columns a peer's group names, after checking it against a batch of `width`
/// columns.
fn group_columns(g: &RegisterGroup, width: usize) -> Result<usize> {
    if g.mask.len() > width.div_ceil(8) {
        return Err(protocol(format!(
            "a register mask of {} bytes for {width} columns",
            g.mask.len()
        )));
    }
    if let Some(last) = g.mask.last() {
        let used = width - (g.mask.len() - 1) * 8;
        if used < 8 && last >> used != 0 {
            return Err(protocol(format!(
                "a register mask names a column past the batch's {width}"
            )));
        }
    }
    let count: usize = g.mask.iter().map(|b| b.count_ones() as usize).sum();
    if count == 0 {
        return Err(protocol("a register group names no column".into()));
    }
    if !g.values.is_empty() && g.values.len() != count {
        return Err(protocol(format!(
            "a register group of {count} columns with {} values",
            g.values.len()
        )));
    }
    Ok(count)
}

/// The columns a (checked) mask names, rising.
fn columns_of(mask: &[u8]) -> impl Iterator<Item = u16> + '_ {
    mask.iter().enumerate().flat_map(|(byte, bits)| {
        (0..8u16)
            .filter(move |bit| bits & (1 << bit) != 0)
            .map(move |bit| byte as u16 * 8 + bit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(mask: Vec<u8>, values: Vec<Option<Value>>) -> RegisterGroup {
        RegisterGroup {
            hlc_delta: 1,
            origin: 0,
            mask,
            values,
        }
    }

    #[test]
    fn a_checked_mask_names_only_columns_of_the_batch() {
        assert_eq!(group_columns(&group(vec![0b101], vec![]), 3).unwrap(), 2);
        assert_eq!(
            group_columns(&group(vec![0xff, 0x01], vec![]), 9).unwrap(),
            9
        );
        let code = |g: RegisterGroup, width| group_columns(&g, width).unwrap_err().code();
        assert_eq!(code(group(vec![0b1000], vec![]), 3), 17040004);
        assert_eq!(code(group(vec![0xff, 0x02], vec![]), 9), 17040004);
        assert_eq!(code(group(vec![1, 0], vec![]), 3), 17040004);
        assert_eq!(code(group(vec![0], vec![]), 3), 17040004);
        assert_eq!(code(group(vec![], vec![]), 3), 17040004);
        assert_eq!(code(group(vec![0b11], vec![None]), 3), 17040004);
        assert_eq!(code(group(vec![1], vec![]), 0), 17040004);
        let cols: Vec<u16> = columns_of(&[0b1000_0001, 0b10]).collect();
        assert_eq!(cols, vec![0, 7, 9]);
    }
}
