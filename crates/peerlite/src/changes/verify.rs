//! Verifies peerlite's own objects, for `check --full`: the identity rows of `peerlite_meta`,
//! the registry of distributed tables, and for each distributed table its clock, pending-values
//! table and capture triggers, compared with what this build makes. Caller SQL cannot damage
//! them (`store::guard`); the sqlite3 shell, another program or an old build can.
//!
//! Every problem is a line naming the object, so the report says what to fix. Reading only:
//! a damaged set is reported, never repaired behind the user's back (re-running `distribute`
//! recreates a table's clock and triggers; a backup brings back the rest).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use super::registry::{DistributedTableType, TableMeta};
use super::triggers;
use crate::sync::extract::pending_table;

/// The damaged objects of the database (empty when all is well).
pub(crate) fn problems(conn: &Connection, path: &std::path::Path) -> rusqlite::Result<Vec<String>> {
    let schema = Schema::read(conn)?;
    let mut out = Vec::new();
    let metas = registry(conn, &schema, &mut out)?;
    identity(conn, &schema, path, &mut out)?;
    for meta in &metas {
        table_objects(conn, &schema, meta, &mut out)?;
    }
    device_columns(&metas, &mut out);
    orphan_triggers(&schema, &metas, &mut out);
    Ok(out)
}

/// Device tables whose synced columns are not their table's: rows travel by the table's
/// column list, so such a device table fails every session (distributing the table again
/// gives it the missing columns).
fn device_columns(metas: &[TableMeta], out: &mut Vec<String>) {
    for device in metas.iter().filter(|m| m.base.is_some()) {
        let Some(base) = metas
            .iter()
            .find(|m| m.base.is_none() && Some(m.name.as_str()) == device.base.as_deref())
        else {
            continue; // the table's own registry row is what is damaged: reported as such
        };
        // (An unreadable column list of the table itself is reported as such.)
        if base.columns.iter().any(|c| !device.columns.contains(c)) {
            out.push(format!(
                "device table {} has the synced columns {:?}, its table {} has {:?} (distribute {} again to add them)",
                device.name, device.columns, base.name, base.columns, base.name
            ));
        }
    }
}

/// `sqlite_schema`, by name.
struct Schema {
    objects: HashMap<String, (String, String, Option<String>)>,
}

impl Schema {
    fn read(conn: &Connection) -> rusqlite::Result<Schema> {
        let mut stmt = conn.prepare("SELECT name, type, tbl_name, sql FROM main.sqlite_schema")?;
        let objects = stmt
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Schema { objects })
    }

    fn has(&self, kind: &str, name: &str) -> bool {
        self.objects.get(name).is_some_and(|(k, _, _)| k == kind)
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The identity rows: `store_id` of every store, and of a store that syncs everything
/// [`super::identity::damage`] checks (the rows an open refuses to remake).
fn identity(
    conn: &Connection,
    schema: &Schema,
    path: &std::path::Path,
    out: &mut Vec<String>,
) -> rusqlite::Result<()> {
    let damaged = super::identity::damage(conn, path)?;
    if damaged.is_empty() && schema.has("table", "peerlite_meta") {
        let store_id: Option<String> = conn
            .query_row(
                "SELECT CAST(value AS TEXT) FROM peerlite_meta WHERE key = 'store_id'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match store_id {
            None => out.push("peerlite_meta has no store_id".into()),
            Some(v) if !(v.len() == 32 && is_hex(&v)) => {
                out.push(format!("peerlite_meta's store_id {v:?} is malformed"));
            }
            Some(_) => {}
        }
    }
    out.extend(damaged);
    Ok(())
}

/// The registry's rows, each checked field by field (the loader would default what it cannot
/// parse, hiding the damage).
fn registry(
    conn: &Connection,
    schema: &Schema,
    out: &mut Vec<String>,
) -> rusqlite::Result<Vec<TableMeta>> {
    if !schema.has("table", "peerlite_distributed") {
        if schema
            .objects
            .keys()
            .any(|n| n.starts_with("peerlite_clock_"))
        {
            out.push("peerlite_distributed (the registry of distributed tables) is missing".into());
        }
        return Ok(Vec::new());
    }
    if !schema.has("table", "peerlite_devices") {
        out.push("peerlite_devices (the device numbers of the clocks) is missing".into());
    }
    let mut stmt = conn.prepare(
        "SELECT name, CAST(mode AS TEXT), CAST(identity AS TEXT), CAST(columns AS TEXT), base, schema FROM peerlite_distributed ORDER BY tid",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let name: String = r.get(0)?;
        let text = |i: usize| r.get::<_, Option<String>>(i);
        let mode = text(1)?.as_deref().and_then(DistributedTableType::parse);
        if mode.is_none() {
            out.push(format!("peerlite_distributed: {name} has no valid mode"));
        }
        if text(2)?.as_deref().is_none_or(|i| i.trim().is_empty()) {
            out.push(format!(
                "peerlite_distributed: {name} has no identity column"
            ));
        }
        let columns: Option<Vec<String>> = text(3)?.and_then(|c| serde_json::from_str(&c).ok());
        if columns.as_ref().is_none_or(Vec::is_empty) {
            out.push(format!(
                "peerlite_distributed: {name} has no readable list of synced columns"
            ));
        }
        let needs_schema = mode == Some(DistributedTableType::SingleVersion) && text(4)?.is_none();
        let schema_ok = text(5)?
            .as_deref()
            .is_some_and(|s| serde_json::from_str::<crate::schema::TableSchema>(s).is_ok());
        if needs_schema && !schema_ok {
            out.push(format!(
                "peerlite_distributed: single-version table {name} has no readable sync schema"
            ));
        }
    }
    drop(rows);
    super::registry::load_all(conn)
}

/// The table itself, its clock (with its index), its pending-values table and its triggers.
fn table_objects(
    conn: &Connection,
    schema: &Schema,
    meta: &TableMeta,
    out: &mut Vec<String>,
) -> rusqlite::Result<()> {
    let name = &meta.name;
    if !schema.has("table", name) {
        out.push(format!("distributed table {name} is missing"));
    } else {
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")?
            .query_map([name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let has = |c: &str| columns.iter().any(|x| x.eq_ignore_ascii_case(c));
        if !meta.identity.eq_ignore_ascii_case("rowid") && !has(&meta.identity) {
            out.push(format!(
                "{name} lacks its identity column {}",
                meta.identity
            ));
        }
        for c in meta.columns.iter().filter(|c| !has(c)) {
            out.push(format!("{name} lacks its synced column {c}"));
        }
    }
    let clock = meta.clock();
    if schema.has("table", &clock) {
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")?
            .query_map([&clock], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if columns != ["ident", "seq", "hlc", "origin", "tomb", "cols"] {
            out.push(format!("clock {clock} of {name} has columns {columns:?}"));
        }
        if !schema.has("index", &format!("{clock}_seq")) {
            out.push(format!("index {clock}_seq of {name}'s clock is missing"));
        }
    } else {
        out.push(format!("clock {clock} of {name} is missing"));
    }
    let pending = pending_table(meta);
    if !schema.has("table", &pending) {
        out.push(format!(
            "{pending} (values kept for deleted rows of {name}) is missing"
        ));
    }
    if meta.base.is_some() {
        return Ok(()); // device tables are written by sync itself, with no triggers
    }
    let mut expected = triggers::capture_trigger_list(meta);
    if meta.mode == DistributedTableType::SingleVersion {
        expected.extend(triggers::not_null_trigger_list(meta));
    }
    for (trigger, sql) in expected {
        match schema.objects.get(&trigger) {
            Some((kind, table, Some(found)))
                if kind == "trigger" && table == name && squash(found) == squash(&sql) => {}
            Some((kind, table, _)) if kind == "trigger" && table == name => out.push(format!(
                "capture trigger {trigger} of {name} differs from the one peerlite makes (altered, or made by another build)"
            )),
            Some(_) => out.push(format!("{trigger} is not the capture trigger of {name}")),
            None => out.push(format!("capture trigger {trigger} of {name} is missing")),
        }
    }
    Ok(())
}

/// Triggers in peerlite's namespace that belong to no distributed table.
fn orphan_triggers(schema: &Schema, metas: &[TableMeta], out: &mut Vec<String>) {
    let mut names: Vec<&String> = schema
        .objects
        .iter()
        .filter(|(n, (kind, _, _))| kind == "trigger" && crate::store::guard::is_peerlite_name(n))
        .map(|(n, _)| n)
        .filter(|n| {
            !metas
                .iter()
                .any(|m| n.starts_with(&format!("peerlite_{}_", m.tid)))
        })
        .collect();
    names.sort();
    for n in names {
        out.push(format!("trigger {n} belongs to no distributed table"));
    }
}

/// SQL with every run of whitespace made one space: the text SQLite keeps for a trigger is the
/// statement as written.
fn squash(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The hook of `RdbStore::check`: with [`crate::CheckMode::Full`], peerlite's own objects too.
///
/// # Errors
/// 17050002 naming every damaged object.
pub(crate) fn check_full(store: &crate::RdbStore, mode: crate::CheckMode) -> crate::Result<()> {
    if mode != crate::CheckMode::Full {
        return Ok(());
    }
    let path = store.path();
    let found = store
        .inner
        .read(|conn| problems(conn, path).map_err(|e| crate::Error::from_sqlite(e, path)))?;
    if found.is_empty() {
        Ok(())
    } else {
        Err(crate::Error::OwnObjectsDamaged { problems: found })
    }
}
