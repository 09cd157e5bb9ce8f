//! SQLite's b-tree page, cell and record formats (<https://sqlite.org/fileformat2.html>),
//! parsed without trusting a byte: every offset, size and count is checked against the page
//! before it is used, and a page that breaks any rule of the format is rejected whole.

use std::ops::Range;

/// Page types (the first byte of a b-tree page's header).
pub(super) const INDEX_INTERIOR: u8 = 2;
pub(super) const TABLE_INTERIOR: u8 = 5;
pub(super) const INDEX_LEAF: u8 = 10;
pub(super) const TABLE_LEAF: u8 = 13;

/// SQLite refuses pages whose usable size is below 480 bytes.
pub(super) const MIN_USABLE: usize = 480;
/// SQLite's limit on the columns of a table (SQLITE_MAX_COLUMN's default).
pub(super) const MAX_FIELDS: usize = 2000;

/// Reads a varint (1 to 9 bytes, big-endian, 7 bits a byte and 8 in the ninth).
pub(super) fn varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..8 {
        let byte = *buf.get(i)?;
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    Some(((value << 8) | u64::from(*buf.get(8)?), 9))
}

pub(super) fn u16_at(buf: &[u8], at: usize) -> Option<usize> {
    let b = buf.get(at..at + 2)?;
    Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
}

pub(super) fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Whether a page type belongs to an index b-tree (WITHOUT ROWID tables are index b-trees).
pub(super) fn is_index(kind: u8) -> bool {
    kind == INDEX_INTERIOR || kind == INDEX_LEAF
}

/// One b-tree page that passed every structural check.
#[derive(Debug)]
pub(super) struct BtreePage {
    pub kind: u8,
    pub cells: Vec<Cell>,
    /// The right-most child of an interior page.
    pub right_child: Option<u32>,
}

/// One cell. Cells that lie (partly) beyond the bytes that could be read are `available: false`.
#[derive(Debug)]
pub(super) struct Cell {
    pub left_child: Option<u32>,
    pub rowid: Option<i64>,
    pub payload: Option<Payload>,
    pub available: bool,
}

/// Where a cell's payload is: its local part on the page and the first overflow page.
#[derive(Debug, Clone)]
pub(super) struct Payload {
    pub total: u64,
    pub local: Range<usize>,
    pub overflow: Option<u32>,
}

/// How many payload bytes of a cell are stored on the page itself (SQLite's formula).
pub(super) fn local_size(total: u64, usable: usize, table_leaf: bool) -> usize {
    let u = usable as u64;
    let max_local = if table_leaf {
        u - 35
    } else {
        (u - 12) * 64 / 255 - 23
    };
    let min_local = (u - 12) * 32 / 255 - 23;
    if total <= max_local {
        return total as usize;
    }
    let surplus = min_local + (total - min_local) % (u - 4);
    if surplus <= max_local {
        surplus as usize
    } else {
        min_local as usize
    }
}

/// Parses page `pgno` (`page` holds the whole page; only `valid` bytes of it were read).
/// `None` when it is not a well-formed b-tree page.
pub(super) fn parse_page(page: &[u8], valid: usize, pgno: u32, usable: usize) -> Option<BtreePage> {
    if usable < MIN_USABLE || page.len() < usable {
        return None;
    }
    let valid = valid.min(usable);
    let hdr = if pgno == 1 { 100 } else { 0 };
    let kind = *page.get(hdr)?;
    let interior = match kind {
        INDEX_INTERIOR | TABLE_INTERIOR => true,
        INDEX_LEAF | TABLE_LEAF => false,
        _ => return None,
    };
    let header_len = if interior { 12 } else { 8 };
    let ncell = u16_at(page, hdr + 3)?;
    let content = match u16_at(page, hdr + 5)? {
        0 => 65536,
        n => n,
    };
    if page[hdr + 7] > 60 {
        return None;
    }
    let pointers = hdr + header_len;
    let pointers_end = pointers + 2 * ncell;
    if pointers_end > content || content > usable || pointers_end > valid {
        return None;
    }
    let right_child = if interior {
        match u32_at(page, hdr + 8)? {
            0 => return None,
            n => Some(n),
        }
    } else {
        None
    };
    let mut cells = Vec::with_capacity(ncell);
    let mut extents = Vec::with_capacity(ncell);
    for i in 0..ncell {
        let at = u16_at(page, pointers + 2 * i)?;
        if at < content || at >= usable {
            return None;
        }
        match parse_cell(page, at, usable, valid, kind) {
            Some((cell, end)) => {
                extents.push((at, end.max(at + 4)));
                cells.push(cell);
            }
            // The cell's own header lies beyond what was read: the page is cut there.
            None if at >= valid => cells.push(Cell {
                left_child: None,
                rowid: None,
                payload: None,
                available: false,
            }),
            None => return None,
        }
    }
    // Cells never overlap and never run past the usable area.
    extents.sort_unstable();
    if extents.windows(2).any(|w| w[0].1 > w[1].0) || extents.last().is_some_and(|e| e.1 > usable) {
        return None;
    }
    // Keys of a table b-tree page are strictly increasing.
    let mut last: Option<i64> = None;
    for rowid in cells.iter().filter(|c| c.available).filter_map(|c| c.rowid) {
        if last.is_some_and(|l| rowid <= l) {
            return None;
        }
        last = Some(rowid);
    }
    Some(BtreePage {
        kind,
        cells,
        right_child,
    })
}

/// Parses the cell at `at`; returns it and where it ends.
fn parse_cell(
    page: &[u8],
    at: usize,
    usable: usize,
    valid: usize,
    kind: u8,
) -> Option<(Cell, usize)> {
    let area = page.get(..valid)?;
    let mut pos = at;
    let left_child = if kind == TABLE_INTERIOR || kind == INDEX_INTERIOR {
        let child = u32_at(area, pos)?;
        if child == 0 {
            return None;
        }
        pos += 4;
        Some(child)
    } else {
        None
    };
    if kind == TABLE_INTERIOR {
        let (key, n) = varint(area.get(pos..)?)?;
        let cell = Cell {
            left_child,
            rowid: Some(key as i64),
            payload: None,
            available: true,
        };
        return Some((cell, pos + n));
    }
    let (total, n) = varint(area.get(pos..)?)?;
    pos += n;
    let rowid = if kind == TABLE_LEAF {
        let (r, n) = varint(area.get(pos..)?)?;
        pos += n;
        Some(r as i64)
    } else {
        None
    };
    let local = local_size(total, usable, kind == TABLE_LEAF);
    let local_end = pos.checked_add(local)?;
    let (overflow, end) = if (local as u64) < total {
        // The overflow page number follows the local part; it must be on the page.
        let first = u32_at(page.get(..usable)?, local_end)?;
        (Some(first), local_end + 4)
    } else {
        (None, local_end)
    };
    if end > usable {
        return None;
    }
    let cell = Cell {
        left_child,
        rowid,
        payload: Some(Payload {
            total,
            local: pos..local_end,
            overflow,
        }),
        // Bytes of the cell past what could be read (a cut file) make it unusable.
        available: end <= valid,
    };
    Some((cell, end))
}

/// One decoded field of a record. `Missing` when its bytes could not be read.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Field {
    Null,
    Integer(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
    Missing,
}

/// The byte length of a field with this serial type; `None` for the reserved types 10, 11.
fn content_size(serial: u64) -> Option<u64> {
    Some(match serial {
        0 | 8 | 9 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4 => 4,
        5 => 6,
        6 | 7 => 8,
        10 | 11 => return None,
        n if n % 2 == 0 => (n - 12) / 2,
        n => (n - 13) / 2,
    })
}

/// Decodes a record of `total` bytes of which `bytes` (a prefix) could be read. The header
/// must be complete and describe exactly `total` bytes; fields past the readable prefix come
/// back `Missing`, so a record is never completed with guesses.
pub(super) fn decode_record(bytes: &[u8], total: u64) -> Option<Vec<Field>> {
    let (header_len, n) = varint(bytes)?;
    if header_len < n as u64 || header_len > total || header_len > bytes.len() as u64 {
        return None;
    }
    let header = &bytes[n..header_len as usize];
    let mut serials = Vec::new();
    let mut pos = 0;
    let mut body = 0u64;
    while pos < header.len() {
        let (serial, n) = varint(&header[pos..])?;
        pos += n;
        body = body.checked_add(content_size(serial)?)?;
        serials.push(serial);
        if serials.len() > MAX_FIELDS {
            return None;
        }
    }
    if header_len.checked_add(body)? != total {
        return None;
    }
    let mut at = header_len as usize;
    let mut fields = Vec::with_capacity(serials.len());
    for serial in serials {
        let size = content_size(serial)? as usize;
        let Some(raw) = at.checked_add(size).and_then(|end| bytes.get(at..end)) else {
            fields.push(Field::Missing);
            at = at.saturating_add(size);
            continue;
        };
        at += size;
        fields.push(match serial {
            0 => Field::Null,
            8 => Field::Integer(0),
            9 => Field::Integer(1),
            1..=6 => Field::Integer(be_int(raw)),
            7 => Field::Real(f64::from_bits(be_int(raw) as u64)),
            n if n % 2 == 0 => Field::Blob(raw.to_vec()),
            _ => Field::Text(raw.to_vec()),
        });
    }
    Some(fields)
}

/// A big-endian two's-complement integer of 1 to 8 bytes.
fn be_int(raw: &[u8]) -> i64 {
    let mut value: i64 = if raw.first().is_some_and(|b| b & 0x80 != 0) {
        -1
    } else {
        0
    };
    for b in raw {
        value = (value << 8) | i64::from(*b);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_of_every_length() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81]), None, "cut short");
        assert_eq!(varint(&[]), None);
    }

    #[test]
    fn integers_are_signed_big_endian() {
        assert_eq!(be_int(&[0xff]), -1);
        assert_eq!(be_int(&[0x01, 0x00]), 256);
        assert_eq!(be_int(&[0x80, 0, 0, 0, 0, 0]), -(1 << 47));
    }

    #[test]
    fn a_record_must_describe_exactly_its_bytes() {
        // header: len 3, serial 1 (1-byte int), serial 15 (1-byte text)
        let rec = [3u8, 1, 15, 42, b'x'];
        assert_eq!(
            decode_record(&rec, 5),
            Some(vec![Field::Integer(42), Field::Text(b"x".to_vec())])
        );
        assert_eq!(decode_record(&rec, 6), None, "one byte too many");
        assert_eq!(decode_record(&[3u8, 10, 1, 0], 4), None, "reserved type");
        // The text lies past the readable prefix: it is missing, never made up.
        assert_eq!(
            decode_record(&rec[..4], 5),
            Some(vec![Field::Integer(42), Field::Missing])
        );
        assert_eq!(decode_record(&rec[..2], 5), None, "header cut");
    }

    #[test]
    fn garbage_pages_are_rejected() {
        let mut page = vec![0u8; 4096];
        assert!(parse_page(&page, 4096, 2, 4096).is_none(), "zeros");
        page[0] = TABLE_LEAF;
        page[3..5].copy_from_slice(&3000u16.to_be_bytes());
        assert!(parse_page(&page, 4096, 2, 4096).is_none(), "too many cells");
        // An empty leaf is well formed.
        page[3..5].copy_from_slice(&0u16.to_be_bytes());
        page[5..7].copy_from_slice(&4096u16.to_be_bytes());
        let parsed = parse_page(&page, 4096, 2, 4096).unwrap();
        assert!(parsed.cells.is_empty());
    }

    #[test]
    fn local_payload_sizes_match_sqlite() {
        // 4096-byte pages: table leaves keep up to 4061 bytes locally.
        assert_eq!(local_size(4061, 4096, true), 4061);
        assert_eq!(
            local_size(4062, 4096, true),
            489,
            "the surplus would not fit"
        );
        assert_eq!(local_size(100_000, 4096, true), 1792);
        assert_eq!(local_size(1002, 4096, false), 1002);
        assert_eq!(local_size(1003, 4096, false), 489);
    }
}
