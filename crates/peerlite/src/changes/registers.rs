//! Per-column last-writer-wins registers, stored compactly in a clock row's `cols` blob: only
//! the columns written after the row's existence event (its insert) have one; every other
//! column shares the existence event's timestamp. 14 bytes each: column index (u16), HLC
//! (u64), origin device index (u32), big-endian.

/// One column's register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnRegister {
    /// The column's position among the table's synced columns.
    pub column: u16,
    /// When it was last written.
    pub hlc: u64,
    /// The device index (local numbering) that wrote it.
    pub origin: i64,
}

const ENTRY: usize = 14;

/// Decodes a `cols` blob; malformed tails are ignored.
pub fn decode(bytes: &[u8]) -> Vec<ColumnRegister> {
    bytes
        .chunks_exact(ENTRY)
        .map(|e| ColumnRegister {
            column: u16::from_be_bytes([e[0], e[1]]),
            hlc: u64::from_be_bytes([e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9]]),
            origin: i64::from(u32::from_be_bytes([e[10], e[11], e[12], e[13]])),
        })
        .collect()
}

/// Encodes registers sorted by column; `None` (SQL NULL) when there are none.
pub fn encode(regs: &[ColumnRegister]) -> Option<Vec<u8>> {
    if regs.is_empty() {
        return None;
    }
    let mut sorted = regs.to_vec();
    sorted.sort_by_key(|r| r.column);
    let mut out = Vec::with_capacity(sorted.len() * ENTRY);
    for r in sorted {
        out.extend_from_slice(&r.column.to_be_bytes());
        out.extend_from_slice(&r.hlc.to_be_bytes());
        out.extend_from_slice(&(r.origin as u32).to_be_bytes());
    }
    Some(out)
}

/// Sets the register of every column whose bit is set in `mask` to `(hlc, origin)`.
pub fn touch(regs: &mut Vec<ColumnRegister>, hlc: u64, origin: i64, mask: u64) {
    for column in 0..64u16 {
        if mask & (1 << column) == 0 {
            continue;
        }
        match regs.iter_mut().find(|r| r.column == column) {
            Some(r) => {
                r.hlc = hlc;
                r.origin = origin;
            }
            None => regs.push(ColumnRegister {
                column,
                hlc,
                origin,
            }),
        }
    }
}

/// The register of `column`, if it has its own.
pub fn get(regs: &[ColumnRegister], column: u16) -> Option<&ColumnRegister> {
    regs.iter().find(|r| r.column == column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_touch() {
        let mut regs = decode(&[]);
        touch(&mut regs, 7, 0, 0b101);
        touch(&mut regs, 9, 3, 0b100);
        let bytes = encode(&regs).unwrap();
        assert_eq!(bytes.len(), 2 * ENTRY);
        let back = decode(&bytes);
        assert_eq!(
            get(&back, 0),
            Some(&ColumnRegister {
                column: 0,
                hlc: 7,
                origin: 0
            })
        );
        assert_eq!(
            get(&back, 2),
            Some(&ColumnRegister {
                column: 2,
                hlc: 9,
                origin: 3
            })
        );
        assert_eq!(get(&back, 1), None);
        assert_eq!(encode(&[]), None);
    }
}
