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

/// A SQL value for a table cell. Characters that would act on the terminal instead of being
/// shown — control characters (newlines, carriage returns, escape sequences, tabs), DEL, the
/// C1 range and bidirectional overrides — are written as escapes (`\n`, `\x1b`, `\u{202e}`),
/// so a stored value can neither forge rows nor recolour the screen (`--json` gives the text
/// as it is).
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) if f.is_finite() => f.to_string(),
        Value::Real(f) => non_finite(*f).to_owned(),
        Value::Text(t) => shown(t),
        Value::Blob(b) if b.len() <= 32 => format!("x'{}'", hex(b)),
        Value::Blob(b) => format!("x'{}…' ({} bytes)", hex(&b[..32]), b.len()),
    }
}

/// `text` with whatever would act on a terminal escaped.
pub fn shown(text: &str) -> String {
    if !text.chars().any(acts_on_terminal) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if acts_on_terminal(c) && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if acts_on_terminal(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Control characters, DEL, C1 controls and the bidirectional embeddings, overrides and
/// isolates.
fn acts_on_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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
            value_text(&Value::Text(
                "a\nb\rc\td\u{1b}[2J\u{7f}\u{9b}\u{202e}é漢".into()
            )),
            "a\\nb\\rc\\td\\x1b[2J\\x7f\\x9b\\u{202e}é漢"
        );
        assert_eq!(
            value_json(&Value::Text("a\nb".into())),
            serde_json::json!("a\nb")
        );
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
