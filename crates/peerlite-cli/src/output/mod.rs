//! Rendering rows and values for people (aligned tables) and for scripts (JSON).
//!
//! JSON values are lossless: NULL is `null`, integers are JSON integers printed exactly,
//! finite reals are JSON numbers that always carry a `.` or an exponent, text is a string,
//! and what JSON has no literal for is a tagged object — a blob `{"blob": "<hex>"}`, an
//! infinite real `{"real": "Infinity"}` / `{"real": "-Infinity"}` (NaN, which SQLite stores
//! as NULL, `{"real": "NaN"}`).

mod rows;
mod table;

pub use rows::{JsonRows, TextRows};
pub use table::table;

use peerlite::{KvValue, Value};
use serde_json::{Number, Value as Json};

/// Hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The name JSON output gives a real that is not a finite number.
fn non_finite(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// A SQL value as JSON, losslessly (see the module documentation).
pub fn value_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Integer(i) => Json::from(*i),
        Value::Real(f) => Number::from_f64(*f).map_or_else(
            || serde_json::json!({ "real": non_finite(*f) }),
            Json::Number,
        ),
        Value::Text(t) => Json::String(t.clone()),
        Value::Blob(b) => serde_json::json!({ "blob": hex(b) }),
    }
}

/// A SQL value for a table cell.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) if f.is_finite() => f.to_string(),
        Value::Real(f) => non_finite(*f).to_owned(),
        Value::Text(t) => t.clone(),
        Value::Blob(b) if b.len() <= 32 => format!("x'{}'", hex(b)),
        Value::Blob(b) => format!("x'{}…' ({} bytes)", hex(&b[..32]), b.len()),
    }
}

/// A key-value value as JSON (bytes as hex text, a non-finite float by name: the type is
/// reported beside it).
pub fn kv_json(value: &KvValue) -> Json {
    match value {
        KvValue::String(s) => Json::String(s.clone()),
        KvValue::Integer(i) => Json::from(*i),
        KvValue::Float(f) => Number::from_f64(*f)
            .map_or_else(|| Json::String(non_finite(*f).to_owned()), Json::Number),
        KvValue::Bool(b) => Json::Bool(*b),
        KvValue::Bytes(b) => Json::String(hex(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_losslessly() {
        assert_eq!(value_text(&Value::Blob(vec![1, 255])), "x'01ff'");
        assert_eq!(
            value_json(&Value::Blob(vec![1])),
            serde_json::json!({"blob": "01"})
        );
        assert_eq!(
            value_json(&Value::Real(f64::INFINITY)),
            serde_json::json!({"real": "Infinity"})
        );
        assert_eq!(
            value_json(&Value::Real(f64::NEG_INFINITY)),
            serde_json::json!({"real": "-Infinity"})
        );
        assert_eq!(
            value_json(&Value::Real(f64::NAN)),
            serde_json::json!({"real": "NaN"})
        );
        assert_eq!(value_json(&Value::Real(1.0)).to_string(), "1.0");
        assert_eq!(
            value_json(&Value::Integer(i64::MAX)).to_string(),
            "9223372036854775807"
        );
    }
}
