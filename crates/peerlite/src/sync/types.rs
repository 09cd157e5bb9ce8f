//! The declared types of the synced columns, compared in the handshake.
//!
//! Two devices whose tables have the same column names but other types (or another identity)
//! would otherwise sync: SQLite converts a pushed value by the receiver's column affinity
//! (an INTEGER key becomes TEXT) and refuses what it cannot store ("datatype mismatch" on an
//! INTEGER PRIMARY KEY), so the copy changes silently or a pull fails on every session. Each
//! side therefore declares, per distributed table, its identity and its synced columns'
//! declared types, and the responder refuses a table whose declaration differs (17040005,
//! naming the column and both types).
//!
//! The declarations travel in the `Hello`'s `features` list as `types:` entries (JSON), so
//! the bytes of every V1 message stay as they were: a build that predates them ignores
//! unknown features, and one that receives no declarations compares nothing (a row it cannot
//! store is then recorded as a conflict, see `merge`).
//!
//! Types compare by SQLite's affinity (`VARCHAR(20)` and `TEXT` store every value alike), and
//! an identity that is the rowid (`INTEGER PRIMARY KEY`) differs from any other key: only it
//! refuses non-integers.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::changes::registry::TableMeta;

/// The prefix of a declaration in a `Hello`'s features.
const PREFIX: &str = "types:";

/// One distributed table as a device declares it in the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableTypes {
    /// The table.
    pub table: String,
    /// The column identifying a row on every device (`rowid` for a table without a key).
    pub identity: String,
    /// True when the identity is the table's rowid (an `INTEGER PRIMARY KEY`, or no key).
    pub rowid_key: bool,
    /// Each synced column with its declared type, in the order values travel.
    pub columns: Vec<(String, String)>,
}

/// The declarations of `metas` (local distributed tables) as the database declares them.
pub(crate) fn of_tables(
    conn: &Connection,
    metas: &[TableMeta],
) -> rusqlite::Result<Vec<TableTypes>> {
    let mut out = Vec::new();
    for meta in metas.iter().filter(|m| m.base.is_none()) {
        let info: Vec<(String, String, i64)> = conn
            .prepare("SELECT name, type, pk FROM pragma_table_info(?1)")?
            .query_map([&meta.name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let declared = |c: &str| {
            info.iter()
                .find(|(n, _, _)| n.eq_ignore_ascii_case(c))
                .map(|(_, t, _)| t.clone())
        };
        let keys: Vec<&(String, String, i64)> = info.iter().filter(|c| c.2 > 0).collect();
        let rowid_key = meta.identity.eq_ignore_ascii_case("rowid")
            || matches!(keys.as_slice(), [(n, t, _)] if n.eq_ignore_ascii_case(&meta.identity) && t.eq_ignore_ascii_case("INTEGER"));
        out.push(TableTypes {
            table: meta.name.clone(),
            identity: meta.identity.clone(),
            rowid_key,
            columns: meta
                .columns
                .iter()
                .map(|c| (c.clone(), declared(c).unwrap_or_default()))
                .collect(),
        });
    }
    Ok(out)
}

/// `features` with a declaration for each of `tables` appended.
pub(crate) fn declare(mut features: Vec<String>, tables: &[TableTypes]) -> Vec<String> {
    features.extend(
        tables
            .iter()
            .filter_map(|t| serde_json::to_string(t).ok())
            .map(|json| format!("{PREFIX}{json}")),
    );
    features
}

/// The declarations among a peer's `features` (unreadable ones are none: nothing compared).
pub(crate) fn declared(features: &[String]) -> Vec<TableTypes> {
    features
        .iter()
        .filter_map(|f| f.strip_prefix(PREFIX))
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect()
}

/// SQLite's affinity of a declared type (the rules of "Determination Of Column Affinity").
fn affinity(declared: &str) -> &'static str {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        "INTEGER"
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        "TEXT"
    } else if t.contains("BLOB") || t.trim().is_empty() {
        "BLOB"
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        "REAL"
    } else {
        "NUMERIC"
    }
}

/// How a declared type reads in a reason (an empty one is "no type").
fn shown(declared: &str) -> &str {
    if declared.trim().is_empty() {
        "untyped"
    } else {
        declared
    }
}

/// Why `table` cannot sync between `mine` (on device `me`) and `theirs` (on `them`): its
/// identity, or a synced column's type, differs. `None` when they agree, or when the peer
/// declared nothing for it (a build that predates declarations).
pub(crate) fn differ(
    table: &str,
    mine: &[TableTypes],
    theirs: &[TableTypes],
    me: &str,
    them: &str,
) -> Option<String> {
    let theirs = theirs.iter().find(|t| t.table == table)?;
    let mine = mine.iter().find(|t| t.table == table)?;
    let key = |t: &TableTypes| {
        if t.rowid_key {
            format!("{} (the rowid)", t.identity)
        } else {
            t.identity.clone()
        }
    };
    let identity = || {
        format!(
            "{table}'s rows are identified by {} on {me}, by {} on {them}",
            key(mine),
            key(theirs)
        )
    };
    if !mine.identity.eq_ignore_ascii_case(&theirs.identity) {
        return Some(identity());
    }
    let differences: Vec<String> = mine
        .columns
        .iter()
        .filter_map(|(column, here)| {
            let (_, there) = theirs.columns.iter().find(|(c, _)| c == column)?;
            (affinity(here) != affinity(there)).then(|| {
                format!(
                    "{table}.{column} is {} on {me}, {} on {them}",
                    shown(here),
                    shown(there)
                )
            })
        })
        .collect();
    if !differences.is_empty() {
        return Some(differences.join("; "));
    }
    // Same types, but only one key is the rowid (`INT PRIMARY KEY` is not): only the rowid
    // refuses a key that is not an integer.
    (mine.rowid_key != theirs.rowid_key).then(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_follows_sqlite_rules() {
        for (t, a) in [
            ("INTEGER", "INTEGER"),
            ("BIGINT", "INTEGER"),
            ("VARCHAR(20)", "TEXT"),
            ("text", "TEXT"),
            ("", "BLOB"),
            ("BLOB", "BLOB"),
            ("DOUBLE PRECISION", "REAL"),
            ("DECIMAL(10,5)", "NUMERIC"),
            ("FLOATING POINT", "INTEGER"),
        ] {
            assert_eq!(affinity(t), a, "{t}");
        }
    }

    #[test]
    fn declarations_survive_the_features_list_and_others_are_ignored() {
        let t = TableTypes {
            table: "note".into(),
            identity: "id".into(),
            rowid_key: true,
            columns: vec![("id".into(), "INTEGER".into())],
        };
        let features = declare(vec!["zstd".into()], std::slice::from_ref(&t));
        assert_eq!(features[0], "zstd");
        let mut with_junk = features.clone();
        with_junk.push("types:{not json".into());
        assert_eq!(declared(&with_junk), vec![t]);
    }
}
