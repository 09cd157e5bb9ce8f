//! Cursor position and liveness, shared by the relational `ResultSet` and the key-value
//! `KvResultSet`: one mechanism for "where am I" and "am I still valid".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::StoreKind;
use crate::error::{Error, Result};

/// Per-store state that result sets watch: closing the store or restoring it (which bumps the
/// generation) invalidates every result set taken before.
#[derive(Debug, Default)]
pub(crate) struct LiveState {
    closed: AtomicBool,
    generation: AtomicU64,
}

impl LiveState {
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Invalidates every result set taken so far (a restore does this).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn bump_generation(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn watch(self: &Arc<Self>, kind: StoreKind) -> Liveness {
        Liveness {
            state: Arc::clone(self),
            generation: self.generation.load(Ordering::Acquire),
            closed: false,
            kind,
        }
    }
}

/// A result set's view of its store.
#[derive(Debug)]
pub(crate) struct Liveness {
    state: Arc<LiveState>,
    generation: u64,
    closed: bool,
    kind: StoreKind,
}

impl Liveness {
    pub fn check(&self) -> Result<()> {
        let stale = self.closed
            || self.state.is_closed()
            || self.state.generation.load(Ordering::Acquire) != self.generation;
        if stale {
            return Err(Error::Closed {
                what: "result set",
                kind: self.kind,
            });
        }
        Ok(())
    }

    pub fn close(&mut self) {
        self.closed = true;
    }

    pub fn is_closed(&self) -> bool {
        self.check().is_err()
    }
}

/// A position in `0..len`, or just before the first row (-1), or just after the last (`len`).
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    len: usize,
    pos: isize,
}

impl Cursor {
    pub fn new(len: usize) -> Self {
        Cursor { len, pos: -1 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// -1 before the first row, `len` after the last.
    pub fn index(&self) -> isize {
        self.pos
    }

    pub fn first(&mut self) -> bool {
        self.move_to(0)
    }

    pub fn last(&mut self) -> bool {
        self.len > 0 && self.move_to(self.len as isize - 1)
    }

    pub fn next(&mut self) -> bool {
        if self.pos + 1 < self.len as isize {
            self.pos += 1;
            true
        } else {
            self.pos = self.len as isize;
            false
        }
    }

    pub fn previous(&mut self) -> bool {
        if self.pos > 0 {
            self.pos -= 1;
            true
        } else {
            self.pos = -1;
            false
        }
    }

    /// Moves to `row`; out of range leaves the position unchanged and returns false.
    pub fn move_to(&mut self, row: isize) -> bool {
        if row >= 0 && row < self.len as isize {
            self.pos = row;
            true
        } else {
            false
        }
    }

    pub fn offset(&mut self, by: isize) -> bool {
        self.move_to(self.pos.saturating_add(by))
    }

    pub fn is_started(&self) -> bool {
        self.pos >= 0
    }

    pub fn is_ended(&self) -> bool {
        self.pos >= self.len as isize
    }

    pub fn is_first(&self) -> bool {
        self.len > 0 && self.pos == 0
    }

    pub fn is_last(&self) -> bool {
        self.len > 0 && self.pos == self.len as isize - 1
    }

    /// The current row, or 14800012 when before the first or after the last.
    pub fn current(&self) -> Result<usize> {
        if self.pos >= 0 && self.pos < self.len as isize {
            Ok(self.pos as usize)
        } else {
            Err(Error::RowOutOfRange {
                detail: format!(
                    "cursor at {} of {} row(s); move onto a row first",
                    self.pos, self.len
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_forward_and_back() {
        let mut c = Cursor::new(2);
        assert!(c.current().is_err());
        assert!(c.next());
        assert!(c.is_first());
        assert!(c.next());
        assert!(c.is_last());
        assert!(!c.next());
        assert!(c.is_ended());
        assert!(c.current().is_err());
        assert!(c.previous());
        assert_eq!(c.current().unwrap(), 1);
        assert!(!c.move_to(5));
        assert_eq!(c.index(), 1);
        assert!(c.offset(-1));
        assert_eq!(c.index(), 0);
    }

    #[test]
    fn empty_cursor_never_has_a_row() {
        let mut c = Cursor::new(0);
        assert!(!c.first());
        assert!(!c.last());
        assert!(!c.next());
        assert!(c.is_ended());
    }

    #[test]
    fn closing_or_restoring_invalidates() {
        let state = Arc::new(LiveState::default());
        let a = state.watch(StoreKind::Relational);
        state.bump_generation();
        assert_eq!(a.check().unwrap_err().code(), 14800014);
        let b = state.watch(StoreKind::KeyValue);
        assert!(b.check().is_ok());
        state.close();
        assert_eq!(b.check().unwrap_err().code(), 15100005);
    }
}
