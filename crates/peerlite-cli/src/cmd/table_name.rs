//! `peerlite table-name DB --device ID --table T`: prints the name of the table that holds
//! `ID`'s rows of the device-collaboration table `T` (ArkData's
//! `obtainDistributedTableName`), to query them with `peerlite sql`. This device's own rows
//! are in `T` itself; for a device none of whose rows have arrived yet, the name is printed
//! with a note on stderr (and `"exists": false` with `--json`).

use std::path::PathBuf;

use super::net::parse_device;
use super::{open_existing_read_only, print_json};
use crate::Global;

/// Arguments of `peerlite table-name`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database file.
    db: PathBuf,
    /// The device whose rows.
    #[arg(long, value_name = "ID")]
    device: String,
    /// The distributed table.
    #[arg(long, value_name = "T")]
    table: String,
}

/// Runs `peerlite table-name`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let device = parse_device(&args.device)?.to_string();
    let store = open_existing_read_only(global, &args.db)?;
    let name = store.obtain_distributed_table_name(&device, &args.table)?;
    // This device's own rows are the table itself.
    let name = if device == store.device_id() {
        args.table.clone()
    } else {
        name
    };
    let exists = store
        .query_sql(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?",
            &[name.clone().into()],
        )?
        .rows()?
        .next()
        .is_some_and(|row| row.first() == Some(&peerlite::Value::Integer(1)));
    if !exists {
        // ArkData names the table before it exists; a script selecting from it would fail.
        eprintln!(
            "note: no rows of that device are here yet; the first `peerlite sync --pull` that brings some creates {name}"
        );
    }
    if global.json {
        print_json(
            &serde_json::json!({ "device": device, "table": args.table, "name": name, "exists": exists }),
        );
    } else {
        println!("{name}");
    }
    Ok(())
}
