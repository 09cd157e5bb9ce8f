//! `peerlite sql DB SQL...`: runs the statements in one transaction; each query prints its
//! rows as a table, or with `--json` as a JSON array of objects (one array per query, one per
//! line).

use std::path::PathBuf;

use peerlite::{RdbStore, StatementOutput};

use super::{print_json, store_config};
use crate::Global;
use crate::output::{rows_json, rows_table};

/// Arguments of `peerlite sql`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database file (created if missing).
    db: PathBuf,
    /// SQL statements; several per argument are allowed.
    #[arg(required = true)]
    sql: Vec<String>,
}

/// Runs `peerlite sql`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let store = RdbStore::open(store_config(global, &args.db))?;
    let outputs = store.transaction(|tx| {
        let mut all = Vec::new();
        for sql in &args.sql {
            all.extend(tx.execute_script(sql)?);
        }
        Ok(all)
    })?;
    let mut first = true;
    for output in outputs {
        let StatementOutput::Rows(rows) = output else {
            continue;
        };
        if global.json {
            print_json(&rows_json(&rows)?);
        } else {
            if !first {
                println!();
            }
            println!("{}", rows_table(&rows)?);
        }
        first = false;
    }
    Ok(())
}
