//! `peerlite changes DB [--table T] [--since SEQ] [--json]`: the captured changes, for
//! debugging sync — each row's identity, the device and timestamp of its last insert or
//! delete, its sequence number, whether it is deleted, and the columns written since.

use std::path::PathBuf;

use peerlite::changes::hlc::physical_ms;

use super::{open_existing_read_only, print_json};
use crate::Global;
use crate::output::{table, value_json, value_text};

/// Arguments of `peerlite changes`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database file.
    db: PathBuf,
    /// Only this table (a distributed table, with its device tables).
    #[arg(long, value_name = "T")]
    table: Option<String>,
    /// Only changes with a sequence number above SEQ.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    since: i64,
}

/// Runs `peerlite changes`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let store = open_existing_read_only(global, &args.db)?;
    if let Some(table) = &args.table {
        check_distributed(&store, table)?;
    }
    let changes = store.changes(args.table.as_deref(), args.since)?;
    if global.json {
        print_json(&serde_json::Value::Array(
            changes.iter().map(change_json).collect(),
        ));
    } else {
        println!("{}", changes_table(&changes));
    }
    Ok(())
}

/// One change as `--json` shows it.
pub fn change_json(c: &peerlite::changes::ChangeRecord) -> serde_json::Value {
    let columns: Vec<serde_json::Value> = c
        .columns
        .iter()
        .map(|(col, hlc, device)| serde_json::json!({"column": col, "hlc": hlc, "device": device}))
        .collect();
    serde_json::json!({
        "seq": c.seq, "table": c.table, "key": value_json(&c.key), "origin": c.origin,
        "hlc": c.hlc, "tombstone": c.tombstone, "columns": columns,
    })
}

/// Changes as a text table.
pub fn changes_table(changes: &[peerlite::changes::ChangeRecord]) -> String {
    let header = [
        "seq",
        "table",
        "key",
        "origin",
        "hlc",
        "deleted",
        "columns written since",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|c| {
            vec![
                c.seq.to_string(),
                c.table.clone(),
                value_text(&c.key),
                c.origin.clone(),
                hlc_text(c.hlc),
                if c.tombstone { "yes" } else { "no" }.into(),
                c.columns
                    .iter()
                    .map(|(col, hlc, device)| format!("{col}@{}/{device}", hlc_text(*hlc)))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    table(&header, &rows)
}

/// `--table T` names a distributed table or one of its device tables: anything else is an
/// error (17040001 a table that is not distributed, 14800001 no such table), never an empty
/// listing that looks like "no changes".
fn check_distributed(store: &peerlite::RdbStore, table: &str) -> peerlite::Result<()> {
    let known = store
        .distributed_tables()?
        .iter()
        .any(|m| m.name == table || m.base.as_deref() == Some(table));
    if known {
        return Ok(());
    }
    let mut exists = store.query_sql(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        &[peerlite::Value::from(table)],
    )?;
    if exists.go_to_first_row()? && exists.get_long(0)? > 0 {
        return Err(peerlite::Error::NotDistributed {
            table: table.to_owned(),
        });
    }
    Err(peerlite::Error::UnknownTable {
        table: table.to_owned(),
        kind: peerlite::StoreKind::Relational,
    })
}

/// A timestamp as `milliseconds.counter`.
fn hlc_text(hlc: u64) -> String {
    format!("{}.{}", physical_ms(hlc), hlc & 0xffff)
}
