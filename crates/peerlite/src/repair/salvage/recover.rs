//! The walk that finds every readable row, modelled on SQLite's `.recover`: the schema is read
//! from page 1's b-tree, each table's b-tree is walked from the root page the schema names,
//! the free list is set aside, and whatever b-tree pages no walk reached (their parent was
//! damaged, or the file was cut before it) are read last as orphans.
//!
//! Every page has a state, and a page is fetched only in the states that allow it: unseen
//! pages once, and pages a walk of the other b-tree kind (or the orphan pass) looked at
//! without taking them once more. So no page is read more than twice, and neither looping
//! child pointers nor rowids out of order can make the walk repeat itself.

use super::btree::{
    self, BtreePage, Field, INDEX_INTERIOR, TABLE_INTERIOR, TABLE_LEAF, is_index, u32_at,
};
use super::pages::{Page, PageSource};
use crate::error::Result;

/// One row as found: the rowid of a table b-tree cell and the record's fields.
#[derive(Debug)]
pub(super) struct Row {
    pub page: u32,
    pub rowid: Option<i64>,
    pub fields: Vec<Field>,
}

/// Where rows came from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin {
    /// The b-tree whose root the schema names.
    Tree(u32),
    /// A page no walk reached; `index` when it is a page of an index b-tree.
    Orphan { index: bool },
}

/// Takes the rows the walk finds.
pub(super) trait Sink {
    fn rows(&mut self, origin: Origin, rows: Vec<Row>) -> Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unseen,
    /// Read once and not taken; the page type byte it had.
    Seen(u8),
    /// Part of a b-tree, an overflow chain or the free list.
    Claimed,
    /// Read twice and taken by nothing.
    Junk,
    /// Could not be read.
    Unreadable,
}

/// Counts of the work done.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Work {
    pub pages_read: u64,
    pub bad_records: u64,
    pub cut_cells: u64,
}

pub(super) struct Walker<'a> {
    src: &'a mut dyn PageSource,
    usable: usize,
    page_count: u32,
    /// Pointers up to here are plausible: a cut file's header still counts its lost pages.
    max_pgno: u32,
    state: Vec<State>,
    header: Option<Vec<u8>>,
    pub work: Work,
}

impl<'a> Walker<'a> {
    pub fn new(src: &'a mut dyn PageSource) -> Walker<'a> {
        let layout = src.layout();
        let usable = layout.page_size.saturating_sub(layout.reserved);
        let page_count = layout.page_count;
        Walker {
            src,
            usable,
            page_count,
            max_pgno: page_count,
            state: vec![State::Unseen; page_count as usize + 1],
            header: None,
            work: Work::default(),
        }
    }

    /// The first 100 bytes of page 1, once the schema walk has read it.
    pub fn header(&self) -> Option<&[u8]> {
        self.header.as_deref()
    }

    fn state(&self, pgno: u32) -> State {
        self.state
            .get(pgno as usize)
            .copied()
            .unwrap_or(State::Unreadable)
    }

    fn set(&mut self, pgno: u32, state: State) {
        if let Some(s) = self.state.get_mut(pgno as usize) {
            *s = state;
        }
    }

    /// Reads a page (counted). The caller has checked its state allows it.
    fn fetch(&mut self, pgno: u32) -> Option<Page> {
        self.work.pages_read += 1;
        let page = self.src.read(pgno);
        match &page {
            None => self.set(pgno, State::Unreadable),
            Some(p) if pgno == 1 && p.valid >= 100 => {
                let header = p.bytes[..100].to_vec();
                let claimed = btree::u32_at(&header, 28).unwrap_or(0);
                self.max_pgno = self.max_pgno.max(claimed);
                self.header = Some(header);
            }
            Some(_) => {}
        }
        page
    }

    /// A page that was looked at and not taken: once more is allowed, then it is junk.
    fn reject(&mut self, pgno: u32, before: State, kind: u8) {
        let next = if before == State::Unseen {
            State::Seen(kind)
        } else {
            State::Junk
        };
        self.set(pgno, next);
    }

    fn parse(&self, page: &Page, pgno: u32) -> Option<BtreePage> {
        btree::parse_page(&page.bytes, page.valid, pgno, self.usable)
    }

    /// Walks the b-tree rooted at `root`, handing its rows to `sink`. The root page decides
    /// whether it is a table or an index b-tree; every page below must be of the same kind.
    pub fn walk_tree(&mut self, root: u32, sink: &mut dyn Sink) -> Result<()> {
        let mut kind: Option<bool> = None;
        let mut stack = vec![root];
        while let Some(pgno) = stack.pop() {
            let before = self.state(pgno);
            let allowed = match before {
                State::Unseen => true,
                State::Seen(k) => kind.is_none_or(|index| btree_kind(k) == Some(index)),
                _ => false,
            };
            if pgno == 0 || pgno > self.page_count || !allowed {
                continue;
            }
            let Some(page) = self.fetch(pgno) else {
                continue;
            };
            let parsed = self.parse(&page, pgno);
            let fits = |p: &BtreePage| kind.is_none_or(|index| is_index(p.kind) == index);
            match parsed {
                Some(p) if fits(&p) => {
                    kind = Some(is_index(p.kind));
                    self.set(pgno, State::Claimed);
                    // Children in reverse, so the walk goes left to right.
                    stack.extend(p.right_child);
                    stack.extend(p.cells.iter().rev().filter_map(|c| c.left_child));
                    let rows = self.rows_of(&page, &p, pgno);
                    if !rows.is_empty() {
                        sink.rows(Origin::Tree(root), rows)?;
                    }
                }
                other => {
                    let kind = other.map_or(page.bytes.first().copied().unwrap_or(0), |p| p.kind);
                    self.reject(pgno, before, kind);
                }
            }
        }
        Ok(())
    }

    /// Sets the free list's pages aside, so the orphan pass does not bring back rows of
    /// pages that were freed (deleted data).
    pub fn walk_freelist(&mut self) {
        let Some(mut next) = self.header.as_deref().and_then(|h| u32_at(h, 32)) else {
            return;
        };
        let max_leaves = self.usable / 4 - 2;
        while next != 0 && next <= self.page_count {
            let before = self.state(next);
            if !matches!(before, State::Unseen | State::Seen(_)) {
                break;
            }
            let Some(trunk) = self.fetch(next) else { break };
            let count = u32_at(&trunk.bytes, 4).map_or(usize::MAX, |n| n as usize);
            if count > max_leaves || trunk.valid < 8 + 4 * count {
                self.reject(next, before, 0);
                break;
            }
            self.set(next, State::Claimed);
            for i in 0..count {
                let leaf = u32_at(&trunk.bytes, 8 + 4 * i).unwrap_or(0);
                if matches!(self.state(leaf), State::Unseen | State::Seen(_)) {
                    self.set(leaf, State::Claimed);
                }
            }
            next = u32_at(&trunk.bytes, 0).unwrap_or(0);
        }
    }

    /// Reads every page no walk took and hands the rows of b-tree pages among them to `sink`.
    pub fn orphans(&mut self, sink: &mut dyn Sink) -> Result<()> {
        for pgno in 1..=self.page_count {
            let before = self.state(pgno);
            let allowed = match before {
                State::Unseen => true,
                State::Seen(k) => btree_kind(k).is_some(),
                _ => false,
            };
            if !allowed {
                continue;
            }
            let Some(page) = self.fetch(pgno) else {
                continue;
            };
            match self.parse(&page, pgno) {
                Some(p) => {
                    self.set(pgno, State::Claimed);
                    if p.kind != TABLE_INTERIOR {
                        let rows = self.rows_of(&page, &p, pgno);
                        if !rows.is_empty() {
                            let origin = Origin::Orphan {
                                index: is_index(p.kind),
                            };
                            sink.rows(origin, rows)?;
                        }
                    }
                }
                None => {
                    let kind = page.bytes.first().copied().unwrap_or(0);
                    self.reject(pgno, before, kind);
                }
            }
        }
        Ok(())
    }

    /// Pages read or found unreadable that no b-tree, overflow chain or free list took.
    pub fn unclaimed(&self) -> u64 {
        self.state
            .iter()
            .skip(1)
            .filter(|s| matches!(s, State::Junk | State::Unreadable | State::Seen(_)))
            .count() as u64
    }

    /// The rows in the cells of a page (table leaves and every index page carry records).
    fn rows_of(&mut self, page: &Page, p: &BtreePage, pgno: u32) -> Vec<Row> {
        if p.kind == TABLE_INTERIOR {
            return Vec::new();
        }
        let mut rows = Vec::with_capacity(p.cells.len());
        for cell in &p.cells {
            let Some(payload) = cell.payload.as_ref().filter(|_| cell.available) else {
                self.work.cut_cells += 1;
                continue;
            };
            let local = &page.bytes[payload.local.clone()];
            let bytes = self.payload_bytes(local, payload.total, payload.overflow);
            match btree::decode_record(&bytes, payload.total) {
                Some(fields) => rows.push(Row {
                    page: pgno,
                    rowid: (p.kind == TABLE_LEAF).then_some(cell.rowid).flatten(),
                    fields,
                }),
                None => self.work.bad_records += 1,
            }
        }
        rows
    }

    /// The local part of a payload and as much of its overflow chain as can be trusted: the
    /// chain is followed page by page (each taken once); bytes from it are kept only when it
    /// ends where the payload says, or runs into a page that cannot be read (a cut file, a
    /// page failing its HMAC). A pointer that makes no sense shows the chain was damaged, and
    /// then none of its bytes are trusted: fields there come back missing, never wrong.
    fn payload_bytes(&mut self, local: &[u8], total: u64, overflow: Option<u32>) -> Vec<u8> {
        let mut bytes = local.to_vec();
        let Some(mut next) = overflow else {
            return bytes;
        };
        let per_page = (self.usable - 4) as u64;
        let mut remaining = total.saturating_sub(local.len() as u64);
        loop {
            if remaining == 0 {
                if next != 0 {
                    bytes.truncate(local.len());
                }
                break;
            }
            if next == 0 || next > self.max_pgno {
                bytes.truncate(local.len());
                break;
            }
            if next > self.page_count {
                break;
            }
            let before = self.state(next);
            if !matches!(before, State::Unseen | State::Seen(_)) {
                if before != State::Unreadable {
                    bytes.truncate(local.len());
                }
                break;
            }
            let Some(page) = self.fetch(next) else { break };
            self.set(next, State::Claimed);
            let take = remaining.min(per_page) as usize;
            let end = (4 + take).min(page.valid);
            bytes.extend_from_slice(page.bytes.get(4..end).unwrap_or(&[]));
            if end < 4 + take {
                break;
            }
            remaining -= take as u64;
            next = u32_at(&page.bytes, 0).unwrap_or(0);
        }
        bytes
    }
}

/// Whether a page type is of an index b-tree (`Some(true)`), a table b-tree, or neither.
fn btree_kind(kind: u8) -> Option<bool> {
    match kind {
        TABLE_INTERIOR | TABLE_LEAF => Some(false),
        INDEX_INTERIOR | btree::INDEX_LEAF => Some(true),
        _ => None,
    }
}
