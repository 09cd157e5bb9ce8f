//! `ResultSet`: the rows of a query, with ArkData's cursor API.
//!
//! Rows are read completely when the query runs (so `row_count` is exact and no connection or
//! lock is held while the caller walks them). Closing the store, or restoring it from a backup,
//! invalidates every result set taken before: using one then fails with 14800014.
//!
//! ```
//! use peerlite::{bucket, RdbPredicates, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let store = RdbStore::open(StoreConfig::new(dir.path().join("a.db")))?;
//! store.execute("CREATE TABLE EMP(ID INTEGER PRIMARY KEY, NAME TEXT, AGE INTEGER)", &[])?;
//! store.insert("EMP", &bucket! { "NAME" => "Lisa", "AGE" => 18 })?;
//! let mut rs = store.query(&RdbPredicates::new("EMP"), &["NAME", "AGE"])?;
//! assert_eq!(rs.row_count()?, 1);
//! while rs.go_to_next_row()? {
//!     assert_eq!(rs.get_string("NAME")?, "Lisa");
//!     assert_eq!(rs.get_long(1)?, 18);
//! }
//! rs.close();
//! assert_eq!(rs.row_count().unwrap_err().code(), 14800014);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use super::cursor::{Cursor, Liveness};
use crate::error::{Error, Result};
use crate::value::{FromValue, Value, ValuesBucket};

/// A column given by position or by name.
pub trait ColumnIndex {
    /// The position of this column among `columns`, or 14800013.
    fn index_in(&self, columns: &[String]) -> Result<usize>;
}

impl ColumnIndex for usize {
    fn index_in(&self, columns: &[String]) -> Result<usize> {
        if *self < columns.len() {
            Ok(*self)
        } else {
            Err(Error::ColumnOutOfRange {
                column: format!("#{self} of {}", columns.len()),
            })
        }
    }
}

impl ColumnIndex for &str {
    fn index_in(&self, columns: &[String]) -> Result<usize> {
        columns
            .iter()
            .position(|c| c == self)
            .or_else(|| columns.iter().position(|c| c.eq_ignore_ascii_case(self)))
            .ok_or_else(|| Error::ColumnOutOfRange {
                column: (*self).to_owned(),
            })
    }
}

impl ColumnIndex for String {
    fn index_in(&self, columns: &[String]) -> Result<usize> {
        self.as_str().index_in(columns)
    }
}

/// The rows of one query and a cursor over them.
#[derive(Debug)]
pub struct ResultSet {
    columns: Arc<[String]>,
    values: Vec<Value>,
    cursor: Cursor,
    live: Liveness,
}

impl ResultSet {
    pub(crate) fn new(
        columns: Vec<String>,
        values: Vec<Value>,
        rows: usize,
        live: Liveness,
    ) -> Self {
        ResultSet {
            columns: columns.into(),
            values,
            cursor: Cursor::new(rows),
            live,
        }
    }

    fn checked(&self) -> Result<&Self> {
        self.live.check()?;
        Ok(self)
    }

    /// Number of rows.
    pub fn row_count(&self) -> Result<usize> {
        Ok(self.checked()?.cursor.len())
    }

    /// Number of columns.
    pub fn column_count(&self) -> Result<usize> {
        Ok(self.checked()?.columns.len())
    }

    /// Column names in order.
    pub fn column_names(&self) -> Result<&[String]> {
        Ok(&self.checked()?.columns)
    }

    /// The position of the column `name`, or 14800013.
    pub fn get_column_index(&self, name: &str) -> Result<usize> {
        name.index_in(&self.checked()?.columns)
    }

    /// The name of the column at `index`, or 14800013.
    pub fn get_column_name(&self, index: usize) -> Result<&str> {
        let i = index.index_in(&self.checked()?.columns)?;
        Ok(&self.columns[i])
    }

    /// Current position: -1 before the first row, `row_count` after the last.
    pub fn row_index(&self) -> Result<isize> {
        Ok(self.checked()?.cursor.index())
    }

    /// Moves to the first row; false when there are no rows.
    pub fn go_to_first_row(&mut self) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.first())
    }

    /// Moves to the last row; false when there are no rows.
    pub fn go_to_last_row(&mut self) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.last())
    }

    /// Moves to the next row; false (and past the end) after the last.
    pub fn go_to_next_row(&mut self) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.next())
    }

    /// Moves to the previous row; false (and before the start) before the first.
    pub fn go_to_previous_row(&mut self) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.previous())
    }

    /// Moves to row `position` (0-based); false and unchanged when out of range.
    pub fn go_to_row(&mut self, position: usize) -> Result<bool> {
        self.live.check()?;
        Ok(isize::try_from(position).is_ok_and(|p| self.cursor.move_to(p)))
    }

    /// Moves by `offset` rows from the current one; false and unchanged when out of range.
    pub fn go_to(&mut self, offset: isize) -> Result<bool> {
        self.live.check()?;
        Ok(self.cursor.offset(offset))
    }

    /// True on the first row.
    pub fn is_at_first_row(&self) -> Result<bool> {
        Ok(self.checked()?.cursor.is_first())
    }

    /// True on the last row.
    pub fn is_at_last_row(&self) -> Result<bool> {
        Ok(self.checked()?.cursor.is_last())
    }

    /// True once the cursor has moved onto or past the first row.
    pub fn is_started(&self) -> Result<bool> {
        Ok(self.checked()?.cursor.is_started())
    }

    /// True after the last row.
    pub fn is_ended(&self) -> Result<bool> {
        Ok(self.checked()?.cursor.is_ended())
    }

    fn cell(&self, column: impl ColumnIndex) -> Result<(&Value, usize)> {
        self.live.check()?;
        let row = self.cursor.current()?;
        let col = column.index_in(&self.columns)?;
        Ok((&self.values[row * self.columns.len() + col], col))
    }

    /// The current row's value in `column`, converted to `T` (`Option<T>` for nullable columns).
    pub fn get<T: FromValue>(&self, column: impl ColumnIndex) -> Result<T> {
        let (value, col) = self.cell(column)?;
        T::from_value(value).ok_or_else(|| Error::TypeMismatch {
            column: self.columns[col].clone(),
            expected: T::EXPECTED,
            found: value.type_name(),
        })
    }

    /// Text (integers and reals are formatted; NULL is an error).
    pub fn get_string(&self, column: impl ColumnIndex) -> Result<String> {
        self.get(column)
    }

    /// A 64-bit integer.
    pub fn get_long(&self, column: impl ColumnIndex) -> Result<i64> {
        self.get(column)
    }

    /// A float.
    pub fn get_double(&self, column: impl ColumnIndex) -> Result<f64> {
        self.get(column)
    }

    /// Bytes.
    pub fn get_blob(&self, column: impl ColumnIndex) -> Result<Vec<u8>> {
        self.get(column)
    }

    /// A boolean (non-zero integer).
    pub fn get_bool(&self, column: impl ColumnIndex) -> Result<bool> {
        self.get(column)
    }

    /// The stored value as is.
    pub fn get_value(&self, column: impl ColumnIndex) -> Result<Value> {
        Ok(self.cell(column)?.0.clone())
    }

    /// True when the current row's `column` is NULL.
    pub fn is_column_null(&self, column: impl ColumnIndex) -> Result<bool> {
        Ok(self.cell(column)?.0.is_null())
    }

    /// The current row as a bucket of named values.
    pub fn get_row(&self) -> Result<ValuesBucket> {
        self.live.check()?;
        let row = self.cursor.current()?;
        let n = self.columns.len();
        Ok(self
            .columns
            .iter()
            .zip(&self.values[row * n..(row + 1) * n])
            .map(|(c, v)| (Cow::Owned(c.clone()), v.clone()))
            .collect())
    }

    /// Every row as a slice of values, in order, independent of the cursor.
    pub fn rows(&self) -> Result<impl Iterator<Item = &[Value]>> {
        self.live.check()?;
        let n = self.columns.len().max(1);
        let rows = self.cursor.len();
        Ok(self.values.chunks(n).take(rows))
    }

    /// Closes the result set; every later call fails with 14800014.
    pub fn close(&mut self) {
        self.live.close();
        self.values = Vec::new();
    }

    /// True after `close`, after the store closed, or after a restore.
    pub fn is_closed(&self) -> bool {
        self.live.is_closed()
    }
}
