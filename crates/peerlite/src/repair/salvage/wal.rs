//! Reading a write-ahead log the way SQLite's recovery does: frames count only while their
//! salts match the header and their running checksum holds, and only up to the last commit.
//! The newest committed copy of each page wins over the database file's.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;

const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// The committed content of a WAL: where the newest copy of each page is.
#[derive(Debug, Default)]
pub(super) struct WalIndex {
    pub page_size: usize,
    /// Page number → offset of its newest committed copy in the WAL file.
    pub frames: HashMap<u32, u64>,
    /// The database's size in pages after the last commit.
    pub db_pages: u32,
}

fn checksum(words: &[u8], big_endian: bool, s: (u32, u32)) -> (u32, u32) {
    let (mut s0, mut s1) = s;
    for pair in words.chunks_exact(8) {
        let word = |b: &[u8]| {
            let b = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        s0 = s0.wrapping_add(word(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the WAL at `path` once, front to back. `None` when there is none or it holds no
/// valid commit; an I/O error part-way keeps what was committed before it.
pub(super) fn read(path: &Path) -> Option<WalIndex> {
    let file = std::fs::File::open(path).ok()?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut header = [0u8; HEADER];
    reader.read_exact(&mut header).ok()?;
    let magic = be32(&header, 0);
    if magic & !1 != 0x377f_0682 {
        return None;
    }
    let big_endian = magic & 1 == 1;
    let page_size = be32(&header, 8) as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return None;
    }
    let salts = (be32(&header, 16), be32(&header, 20));
    let mut sum = checksum(&header[..24], big_endian, (0, 0));
    if sum != (be32(&header, 24), be32(&header, 28)) {
        return None;
    }
    let mut index = WalIndex {
        page_size,
        ..WalIndex::default()
    };
    let mut pending: Vec<(u32, u64)> = Vec::new();
    let mut frame = vec![0u8; FRAME_HEADER + page_size];
    let mut offset = HEADER as u64;
    while reader.read_exact(&mut frame).is_ok() {
        let pgno = be32(&frame, 0);
        let commit = be32(&frame, 4);
        if (be32(&frame, 8), be32(&frame, 12)) != salts || pgno == 0 {
            break;
        }
        sum = checksum(&frame[..8], big_endian, sum);
        sum = checksum(&frame[FRAME_HEADER..], big_endian, sum);
        if sum != (be32(&frame, 16), be32(&frame, 20)) {
            break;
        }
        pending.push((pgno, offset + FRAME_HEADER as u64));
        if commit != 0 {
            index.frames.extend(pending.drain(..));
            index.db_pages = commit;
        }
        offset += frame.len() as u64;
    }
    (index.db_pages > 0).then_some(index)
}
