//! Values stored in the relational store: null, integer, real, text, blob — SQLite's five
//! storage classes — and [`ValuesBucket`], a row of named values.
//!
//! ```
//! use peerlite::{bucket, Value, ValuesBucket};
//!
//! let row: ValuesBucket = bucket! { "NAME" => "Lisa", "AGE" => 18, "SALARY" => 100.5 };
//! assert_eq!(row.get("AGE"), Some(&Value::Integer(18)));
//! assert_eq!(row.len(), 3);
//! ```

use std::borrow::Cow;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// One SQLite value.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum Value {
    /// SQL NULL.
    #[default]
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Value {
    /// Borrowed as SQLite's value type.
    pub(crate) fn as_value_ref(&self) -> rusqlite::types::ValueRef<'_> {
        use rusqlite::types::ValueRef;
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }

    /// The storage class's name, as SQLite's `typeof()` returns it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }

    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub(crate) fn from_ref(value: ValueRef<'_>) -> Value {
        match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl FromSql for Value {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(Value::from_ref(value))
    }
}

macro_rules! value_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Integer(i64::from(v)) }
        }
    )*};
}
value_from_int!(i8, i16, i32, i64, u8, u16, u32, bool);

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Real(f64::from(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Reads a [`Value`] as a Rust type, with SQLite's usual coercions between integer, real and
/// text. `Option<T>` reads NULL as `None`; the plain types refuse NULL.
pub trait FromValue: Sized {
    /// The name used in type-mismatch errors.
    const EXPECTED: &'static str;
    /// Converts, or returns `None` when the value cannot be read as `Self`.
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    const EXPECTED: &'static str = "integer";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Integer(i) => Some(*i),
            Value::Real(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(*f as i64),
            Value::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    }
}

impl FromValue for i32 {
    const EXPECTED: &'static str = "32-bit integer";
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).and_then(|i| i32::try_from(i).ok())
    }
}

impl FromValue for f64 {
    const EXPECTED: &'static str = "real";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Real(f) => Some(*f),
            Value::Integer(i) => Some(*i as f64),
            Value::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    }
}

impl FromValue for bool {
    const EXPECTED: &'static str = "boolean";
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).map(|i| i != 0)
    }
}

impl FromValue for String {
    const EXPECTED: &'static str = "text";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(t) => Some(t.clone()),
            Value::Integer(i) => Some(i.to_string()),
            Value::Real(f) => Some(f.to_string()),
            Value::Blob(b) => String::from_utf8(b.clone()).ok(),
            Value::Null => None,
        }
    }
}

impl FromValue for Vec<u8> {
    const EXPECTED: &'static str = "blob";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Blob(b) => Some(b.clone()),
            Value::Text(t) => Some(t.as_bytes().to_vec()),
            _ => None,
        }
    }
}

impl FromValue for Value {
    const EXPECTED: &'static str = "any value";
    fn from_value(value: &Value) -> Option<Self> {
        Some(value.clone())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A row of named values, in insertion order: what `insert` and `update` take and
/// `ResultSet::get_row` returns. Putting a name again replaces its value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValuesBucket {
    entries: Vec<(Cow<'static, str>, Value)>,
}

impl ValuesBucket {
    /// An empty bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty bucket with room for `n` columns.
    pub fn with_capacity(n: usize) -> Self {
        ValuesBucket {
            entries: Vec::with_capacity(n),
        }
    }

    /// Sets `column` to `value` and returns the bucket, for chaining.
    #[must_use]
    pub fn put(mut self, column: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        self.set(column, value);
        self
    }

    /// Sets `column` to `value` in place.
    pub fn set(&mut self, column: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        let column = column.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(c, _)| *c == column) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((column, value)),
        }
    }

    /// The value of `column`, if present (exact name).
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, v)| v)
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no column is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Column names in order.
    pub fn columns(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        self.entries.iter().map(|(c, _)| c.as_ref())
    }

    /// Values in column order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &Value> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// `(column, value)` pairs in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(c, v)| (c.as_ref(), v))
    }

    /// True when `other` names the same columns in the same order.
    pub(crate) fn same_columns(&self, other: &ValuesBucket) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|((a, _), (b, _))| a == b)
    }
}

impl<K: Into<Cow<'static, str>>, V: Into<Value>> FromIterator<(K, V)> for ValuesBucket {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut bucket = ValuesBucket::new();
        for (k, v) in iter {
            bucket.set(k, v);
        }
        bucket
    }
}

/// Builds a [`ValuesBucket`]: `bucket! { "NAME" => "Lisa", "AGE" => 18 }`.
#[macro_export]
macro_rules! bucket {
    () => { $crate::ValuesBucket::new() };
    ($($column:expr => $value:expr),+ $(,)?) => {{
        let mut b = $crate::ValuesBucket::with_capacity([$($column),+].len());
        $( b.set($column, $value); )+
        b
    }};
}

/// Builds a parameter list for `execute` and `query_sql`: `&values![1, "Lisa", None::<i64>]`.
#[macro_export]
macro_rules! values {
    () => { [$crate::Value::Null; 0] };
    ($($value:expr),+ $(,)?) => { [$($crate::Value::from($value)),+] };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_replaces_existing_column() {
        let b = ValuesBucket::new().put("a", 1).put("b", "x").put("a", 2);
        assert_eq!(b.len(), 2);
        assert_eq!(b.get("a"), Some(&Value::Integer(2)));
        assert_eq!(b.columns().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn coercions_follow_sqlite() {
        assert_eq!(i64::from_value(&Value::Text(" 42 ".into())), Some(42));
        assert_eq!(f64::from_value(&Value::Integer(3)), Some(3.0));
        assert_eq!(String::from_value(&Value::Integer(7)), Some("7".into()));
        assert_eq!(i64::from_value(&Value::Null), None);
        assert_eq!(Option::<i64>::from_value(&Value::Null), Some(None));
        assert_eq!(i32::from_value(&Value::Integer(i64::MAX)), None);
    }

    #[test]
    fn macros_build_rows_and_params() {
        let b = bucket! { "x" => 1, "y" => None::<String> };
        assert_eq!(b.get("y"), Some(&Value::Null));
        let p = values![1, "a", 2.5];
        assert_eq!(p[1], Value::Text("a".into()));
        assert_eq!(values![].len(), 0);
    }
}
