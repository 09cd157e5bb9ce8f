//! `peerlite version DB`: prints the schema version (`PRAGMA user_version`, as SQLite keeps
//! it: negative when another tool set it so).

use std::path::PathBuf;

use super::{open_existing_read_only, print_json};
use crate::Global;

/// Arguments of `peerlite version`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database file.
    db: PathBuf,
}

/// Runs `peerlite version`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let store = open_existing_read_only(global, &args.db)?;
    let version = store.user_version()?;
    if global.json {
        print_json(&serde_json::json!({ "version": version }));
    } else {
        println!("{version}");
    }
    Ok(())
}
