//! Typed key-value values. Each value is stored in its natural SQLite type plus a type tag, so
//! a bool comes back a bool and an integer an integer.

use std::fmt;

use rusqlite::types::ValueRef;

use crate::value::Value;

/// ArkData's limit on key length, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// ArkData's limit on value size, in bytes (4 MiB).
pub const MAX_VALUE_BYTES: usize = 4 * 1024 * 1024;

/// A value in the key-value store.
#[derive(Debug, Clone, PartialEq)]
pub enum KvValue {
    /// UTF-8 text.
    String(String),
    /// A 64-bit integer.
    Integer(i64),
    /// A 64-bit float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl KvValue {
    /// The type's name: string, integer, float, bool or bytes.
    pub fn type_name(&self) -> &'static str {
        match self {
            KvValue::String(_) => "string",
            KvValue::Integer(_) => "integer",
            KvValue::Float(_) => "float",
            KvValue::Bool(_) => "bool",
            KvValue::Bytes(_) => "bytes",
        }
    }

    /// Size counted against the 4 MiB limit.
    pub fn byte_len(&self) -> usize {
        match self {
            KvValue::String(s) => s.len(),
            KvValue::Bytes(b) => b.len(),
            KvValue::Integer(_) | KvValue::Float(_) => 8,
            KvValue::Bool(_) => 1,
        }
    }

    pub(crate) fn tag(&self) -> i64 {
        match self {
            KvValue::String(_) => 0,
            KvValue::Integer(_) => 1,
            KvValue::Float(_) => 2,
            KvValue::Bool(_) => 3,
            KvValue::Bytes(_) => 4,
        }
    }

    pub(crate) fn sql_ref(&self) -> ValueRef<'_> {
        match self {
            KvValue::String(s) => ValueRef::Text(s.as_bytes()),
            KvValue::Integer(i) => ValueRef::Integer(*i),
            KvValue::Float(f) => ValueRef::Real(*f),
            KvValue::Bool(b) => ValueRef::Integer(i64::from(*b)),
            KvValue::Bytes(b) => ValueRef::Blob(b),
        }
    }

    /// Decodes a stored value; `None` when tag and value disagree.
    pub(crate) fn from_sql(value: ValueRef<'_>, tag: i64) -> Option<KvValue> {
        Some(match (tag, value) {
            (0, ValueRef::Text(t)) => KvValue::String(String::from_utf8_lossy(t).into_owned()),
            (1, ValueRef::Integer(i)) => KvValue::Integer(i),
            (2, ValueRef::Real(f)) => KvValue::Float(f),
            (2, ValueRef::Integer(i)) => KvValue::Float(i as f64),
            (3, ValueRef::Integer(i)) => KvValue::Bool(i != 0),
            (4, ValueRef::Blob(b)) => KvValue::Bytes(b.to_vec()),
            (4, ValueRef::Text(t)) => KvValue::Bytes(t.to_vec()),
            _ => return None,
        })
    }

    /// The value as a relational [`Value`] (bools become 0/1).
    pub fn to_value(&self) -> Value {
        Value::from_ref(self.sql_ref())
    }

    /// Parses `text` as a value of type `ty` (string, integer, float, bool or bytes as hex).
    pub fn parse(ty: &str, text: &str) -> Option<KvValue> {
        Some(match ty {
            "string" => KvValue::String(text.to_owned()),
            "integer" | "int" => KvValue::Integer(text.trim().parse().ok()?),
            "float" | "double" => KvValue::Float(text.trim().parse().ok()?),
            "bool" | "boolean" => KvValue::Bool(match text.trim() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return None,
            }),
            "bytes" => KvValue::Bytes(decode_hex(text.trim())?),
            _ => return None,
        })
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl fmt::Display for KvValue {
    /// Strings as they are, numbers and bools in their usual form, bytes as hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvValue::String(s) => f.write_str(s),
            KvValue::Integer(i) => write!(f, "{i}"),
            KvValue::Float(x) => write!(f, "{x}"),
            KvValue::Bool(b) => write!(f, "{b}"),
            KvValue::Bytes(b) => b.iter().try_for_each(|byte| write!(f, "{byte:02x}")),
        }
    }
}

impl From<&str> for KvValue {
    fn from(v: &str) -> Self {
        KvValue::String(v.to_owned())
    }
}
impl From<String> for KvValue {
    fn from(v: String) -> Self {
        KvValue::String(v)
    }
}
impl From<i64> for KvValue {
    fn from(v: i64) -> Self {
        KvValue::Integer(v)
    }
}
impl From<i32> for KvValue {
    fn from(v: i32) -> Self {
        KvValue::Integer(i64::from(v))
    }
}
impl From<f64> for KvValue {
    fn from(v: f64) -> Self {
        KvValue::Float(v)
    }
}
impl From<bool> for KvValue {
    fn from(v: bool) -> Self {
        KvValue::Bool(v)
    }
}
impl From<Vec<u8>> for KvValue {
    fn from(v: Vec<u8>) -> Self {
        KvValue::Bytes(v)
    }
}
impl From<&[u8]> for KvValue {
    fn from(v: &[u8]) -> Self {
        KvValue::Bytes(v.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_sql() {
        for v in [
            KvValue::String("s".into()),
            KvValue::Integer(-7),
            KvValue::Float(1.5),
            KvValue::Bool(true),
            KvValue::Bytes(vec![0, 255]),
        ] {
            assert_eq!(KvValue::from_sql(v.sql_ref(), v.tag()), Some(v));
        }
        assert_eq!(KvValue::from_sql(ValueRef::Text(b"x"), 1), None);
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(
            KvValue::parse("bytes", "00ff"),
            Some(KvValue::Bytes(vec![0, 255]))
        );
        assert_eq!(KvValue::parse("bytes", "0"), None);
        assert_eq!(KvValue::parse("bool", "true"), Some(KvValue::Bool(true)));
        assert_eq!(KvValue::parse("integer", "x"), None);
        assert_eq!(KvValue::Bytes(vec![1, 2]).to_string(), "0102");
    }
}
