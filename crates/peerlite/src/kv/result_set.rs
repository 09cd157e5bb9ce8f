//! `KvResultSet`: entries under a prefix with ArkData's KV cursor API; the same cursor and
//! liveness mechanism as the relational `ResultSet`.

use super::value::KvValue;
use crate::error::Result;
use crate::store::cursor::{Cursor, Liveness};

/// A key and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: KvValue,
}

impl Entry {
    /// An entry.
    pub fn new(key: impl Into<String>, value: impl Into<KvValue>) -> Self {
        Entry {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Entries in key order and a cursor over them.
#[derive(Debug)]
pub struct KvResultSet {
    entries: Vec<Entry>,
    cursor: Cursor,
    live: Liveness,
}

impl KvResultSet {
    pub(crate) fn new(entries: Vec<Entry>, live: Liveness) -> Self {
        KvResultSet {
            cursor: Cursor::new(entries.len()),
            entries,
            live,
        }
    }

    /// Number of entries.
    pub fn get_count(&self) -> Result<usize> {
        self.live.check()?;
        Ok(self.cursor.len())
    }

    /// Current position: -1 before the first entry, `get_count` after the last.
    pub fn get_position(&self) -> Result<isize> {
        self.live.check()?;
        Ok(self.cursor.index())
    }

    /// Moves to the first entry; false when empty.
    pub fn move_to_first(&mut self) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.first())
    }

    /// Moves to the last entry; false when empty.
    pub fn move_to_last(&mut self) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.last())
    }

    /// Moves to the next entry; false after the last.
    pub fn move_to_next(&mut self) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.next())
    }

    /// Moves to the previous entry; false before the first.
    pub fn move_to_previous(&mut self) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.previous())
    }

    /// Moves by `offset`; false and unchanged when out of range.
    pub fn move_by(&mut self, offset: isize) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.offset(offset))
    }

    /// Moves to `position`; false and unchanged when out of range.
    pub fn move_to_position(&mut self, position: usize) -> Result<bool> {
        self.live.check()?;
        Ok(isize::try_from(position).is_ok_and(|p| self.cursor.move_to(p)))
    }

    /// True on the first entry.
    pub fn is_first(&self) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.is_first())
    }

    /// True on the last entry.
    pub fn is_last(&self) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.is_last())
    }

    /// True before the first entry.
    pub fn is_before_first(&self) -> Result<bool> {
        self.live.check()?;
        Ok(!self.cursor.is_started())
    }

    /// True after the last entry.
    pub fn is_after_last(&self) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.is_ended())
    }

    /// The entry under the cursor.
    pub fn get_entry(&self) -> Result<Entry> {
        self.live.check()?;
        Ok(self.entries[self.cursor.current()?].clone())
    }

    /// Closes it; every later call fails with 15100005.
    pub fn close(&mut self) {
        self.live.close();
        self.entries = Vec::new();
    }
}
