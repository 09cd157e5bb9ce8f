//! `peerlite table-name DB --device ID --table T`: prints the name of the table that holds
//! `ID`'s rows of the device-collaboration table `T` (ArkData's
//! `obtainDistributedTableName`), to query them with `peerlite sql`.

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
    if global.json {
        print_json(&serde_json::json!({ "device": device, "table": args.table, "name": name }));
    } else {
        println!("{name}");
    }
    Ok(())
}
