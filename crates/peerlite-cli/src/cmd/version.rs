//! `peerlite version DB`: prints the schema version (`PRAGMA user_version`).

use std::path::PathBuf;

use peerlite::RdbStore;

use super::{print_json, store_config};
use crate::Global;

/// Arguments of `peerlite version`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database file.
    db: PathBuf,
}

/// Runs `peerlite version`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let store = RdbStore::open(store_config(global, &args.db).read_only(true))?;
    let version = store.version()?;
    if global.json {
        print_json(&serde_json::json!({ "version": version }));
    } else {
        println!("{version}");
    }
    Ok(())
}
