//! Rendering rows and values for people (aligned tables) and for scripts (JSON).

use peerlite::{KvValue, ResultSet, Value};
use serde_json::{Map, Number, Value as Json};

/// Hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A SQL value as JSON: numbers, strings, null, and blobs as `{"blob": "<hex>"}`.
pub fn value_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Integer(i) => Json::from(*i),
        Value::Real(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Text(t) => Json::String(t.clone()),
        Value::Blob(b) => serde_json::json!({ "blob": hex(b) }),
    }
}

/// A SQL value for a table cell.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(t) => t.clone(),
        Value::Blob(b) if b.len() <= 32 => format!("x'{}'", hex(b)),
        Value::Blob(b) => format!("x'{}…' ({} bytes)", hex(&b[..32]), b.len()),
    }
}

/// A key-value value as JSON (bytes as hex text; the type is reported beside it).
pub fn kv_json(value: &KvValue) -> Json {
    match value {
        KvValue::String(s) => Json::String(s.clone()),
        KvValue::Integer(i) => Json::from(*i),
        KvValue::Float(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        KvValue::Bool(b) => Json::Bool(*b),
        KvValue::Bytes(b) => Json::String(hex(b)),
    }
}

/// The rows as a JSON array of objects keyed by column name.
pub fn rows_json(rs: &ResultSet) -> peerlite::Result<Json> {
    let columns = rs.column_names()?;
    let rows = rs
        .rows()?
        .map(|row| {
            let object: Map<String, Json> = columns
                .iter()
                .cloned()
                .zip(row.iter().map(value_json))
                .collect();
            Json::Object(object)
        })
        .collect();
    Ok(Json::Array(rows))
}

/// The rows as an aligned text table with a header.
pub fn rows_table(rs: &ResultSet) -> peerlite::Result<String> {
    let header: Vec<String> = rs.column_names()?.to_vec();
    let cells: Vec<Vec<String>> = rs
        .rows()?
        .map(|row| row.iter().map(value_text).collect())
        .collect();
    Ok(table(&header, &cells))
}

/// Aligns `rows` under `header`.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - width(c))))
            .collect();
        padded.join(" | ").trim_end().to_owned()
    };
    let mut out = line(header);
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-"),
    );
    for row in rows {
        out.push('\n');
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["id".into(), "name".into()],
            &[
                vec!["1".into(), "Lisa".into()],
                vec!["10".into(), "Bo".into()],
            ],
        );
        assert_eq!(t, "id | name\n---+-----\n1  | Lisa\n10 | Bo");
    }

    #[test]
    fn blobs_render_as_hex() {
        assert_eq!(value_text(&Value::Blob(vec![1, 255])), "x'01ff'");
        assert_eq!(
            value_json(&Value::Blob(vec![1])),
            serde_json::json!({"blob": "01"})
        );
        assert_eq!(value_json(&Value::Real(f64::NAN)), Json::Null);
    }
}
