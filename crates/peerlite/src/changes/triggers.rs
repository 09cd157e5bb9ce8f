//! The clock table and triggers of a distributed table.
//!
//! Every data row has one clock row, keyed by the row's identity (its conflict column or
//! primary key, stored exactly): the local sequence number of its latest change, the hybrid
//! logical clock and origin device of its existence event (insert or delete), a tombstone
//! flag, and registers for the columns written since. `AFTER` triggers keep it current; they
//! call peerlite's SQL functions, and stand aside (`peerlite_capture()` is false) while
//! remote changes are applied, which write the clock themselves.

use super::registry::TableMeta;
use crate::store::schema::quote_ident;

/// `CREATE TABLE` + index of a table's clock.
pub(crate) fn clock_ddl(meta: &TableMeta) -> String {
    let clock = meta.clock();
    format!(
        "CREATE TABLE IF NOT EXISTS {clock}(
           ident NOT NULL PRIMARY KEY,
           seq INTEGER NOT NULL,
           hlc INTEGER NOT NULL,
           origin INTEGER NOT NULL,
           tomb INTEGER NOT NULL DEFAULT 0,
           cols BLOB
         ) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS {clock}_seq ON {clock}(seq);"
    )
}

/// The name of one of a table's triggers, unquoted.
pub(crate) fn plain_trigger_name(meta: &TableMeta, what: &str) -> String {
    format!("peerlite_{}_{what}", meta.tid)
}

/// The quoted name of one of a table's triggers (`ai`, `au`, `ak`, `ad`, `nn_i`, `nn_u`).
pub(crate) fn trigger_name(meta: &TableMeta, what: &str) -> String {
    quote_ident(&plain_trigger_name(meta, what))
}

/// Drops a table's capture or protection triggers (before they are made again).
pub(crate) fn drop_triggers(meta: &TableMeta) -> String {
    ["ai", "au", "ak", "ad", "nn_i", "nn_u"]
        .iter()
        .map(|w| format!("DROP TRIGGER IF EXISTS {};", trigger_name(meta, w)))
        .collect()
}

/// The capture triggers of a local distributed table, as one script.
pub(crate) fn capture_triggers(meta: &TableMeta) -> String {
    script(&capture_trigger_list(meta))
}

/// `CREATE TRIGGER` statements joined into a script.
fn script(triggers: &[(String, String)]) -> String {
    triggers
        .iter()
        .map(|(_, sql)| format!("{sql};\n"))
        .collect()
}

/// The capture triggers of a local distributed table: (name, `CREATE TRIGGER` statement). The
/// update triggers name their columns (`UPDATE OF`), so SQLite leaves them out of statements
/// that write none of them; and they find the clock row by `+NEW.id` — a value without
/// affinity, because the clock's `ident` column has none and a comparison with numeric
/// affinity could not use its key.
pub(crate) fn capture_trigger_list(meta: &TableMeta) -> Vec<(String, String)> {
    let table = quote_ident(&meta.name);
    let clock = meta.clock();
    let id = meta.identity_sql();
    let upsert = |ident: &str, tomb: u8| {
        format!(
            "INSERT INTO {clock}(ident, seq, hlc, origin, tomb, cols) VALUES ({ident}, peerlite_seq(), peerlite_hlc(), 0, {tomb}, NULL)
             ON CONFLICT(ident) DO UPDATE SET seq = excluded.seq, hlc = peerlite_after(hlc, cols, excluded.hlc), origin = 0, tomb = {tomb}, cols = NULL;"
        )
    };
    let changed: Vec<String> = meta
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let q = quote_ident(c);
            format!("((OLD.{q} IS NOT NEW.{q}) << {i})")
        })
        .collect();
    let any_changed: Vec<String> = meta
        .columns
        .iter()
        .map(|c| format!("OLD.{0} IS NOT NEW.{0}", quote_ident(c)))
        .collect();
    let mut out = vec![
        (
            plain_trigger_name(meta, "ai"),
            format!(
                "CREATE TRIGGER {} AFTER INSERT ON {table} WHEN peerlite_capture() BEGIN {} END",
                trigger_name(meta, "ai"),
                upsert(&format!("NEW.{id}"), 0),
            ),
        ),
        // With `recursive_triggers` on (see `store::writer`), this also records the rows a
        // REPLACE removes. A REPLACE that removes the row it writes (the same identity) runs
        // this, then the insert trigger: the row ends alive, stamped after its tombstone.
        (
            plain_trigger_name(meta, "ad"),
            format!(
                "CREATE TRIGGER {} AFTER DELETE ON {table} WHEN peerlite_capture() BEGIN {} END",
                trigger_name(meta, "ad"),
                upsert(&format!("OLD.{id}"), 1),
            ),
        ),
        (
            plain_trigger_name(meta, "ak"),
            format!(
                "CREATE TRIGGER {} AFTER UPDATE OF {id} ON {table} WHEN peerlite_capture() AND OLD.{id} IS NOT NEW.{id} BEGIN {} {} END",
                trigger_name(meta, "ak"),
                upsert(&format!("OLD.{id}"), 1),
                upsert(&format!("NEW.{id}"), 0),
            ),
        ),
    ];
    // A key-value entry is one value: a put replaces it whole, as a new existence event, so
    // value and type never merge apart and a later put beats an earlier delete.
    let update = if writes_whole_rows(meta) {
        upsert(&format!("NEW.{id}"), 0)
    } else {
        format!(
            "UPDATE {clock} SET seq = peerlite_seq(), cols = peerlite_stamp(hlc, cols, {mask}) WHERE ident = +NEW.{id};",
            mask = changed.join(" | "),
        )
    };
    if !changed.is_empty() {
        out.push((
            plain_trigger_name(meta, "au"),
            format!(
                "CREATE TRIGGER {au} AFTER UPDATE OF {of} ON {table} WHEN peerlite_capture() AND OLD.{id} IS NEW.{id} AND ({any}) BEGIN
               {update}
             END",
                au = trigger_name(meta, "au"),
                of = meta.columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", "),
                any = any_changed.join(" OR "),
            ),
        ));
    }
    out
}

/// Tables whose updates replace the whole row (the key-value store's entries): every write is
/// an existence event, merged last-writer-wins by key.
fn writes_whole_rows(meta: &TableMeta) -> bool {
    meta.name == crate::kv::KV_TABLE
}

/// Single-version tables refuse a NULL conflict column (seed 002: new NULL writes fail).
pub(crate) fn not_null_triggers(meta: &TableMeta) -> String {
    script(&not_null_trigger_list(meta))
}

/// The triggers of [`not_null_triggers`]: (name, `CREATE TRIGGER` statement).
pub(crate) fn not_null_trigger_list(meta: &TableMeta) -> Vec<(String, String)> {
    let table = quote_ident(&meta.name);
    let id = meta.identity_sql();
    let message =
        crate::error::null_conflict_message(&meta.name, &meta.identity).replace('\'', "''");
    ["i", "u"]
        .iter()
        .map(|w| {
            let what = format!("nn_{w}");
            let event = if *w == "i" { "INSERT" } else { "UPDATE" };
            let sql = format!(
                "CREATE TRIGGER {} BEFORE {event} ON {table} WHEN NEW.{id} IS NULL BEGIN SELECT RAISE(ABORT, '{message}'); END",
                trigger_name(meta, &what)
            );
            (plain_trigger_name(meta, &what), sql)
        })
        .collect()
}
