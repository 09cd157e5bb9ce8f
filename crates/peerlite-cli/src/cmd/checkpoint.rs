//! `peerlite checkpoint DB`: moves every committed page of the write-ahead log into the
//! database file and empties the log (what `PRAGMA wal_checkpoint(TRUNCATE)` does, which
//! `peerlite sql` cannot run inside its transaction). Prints `ok`, or `partial` when readers
//! of other processes still use part of the log (run it again later).

use std::path::PathBuf;

use super::{open_existing, print_json};
use crate::Global;

/// Arguments of `peerlite checkpoint`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database file.
    db: PathBuf,
}

/// Runs `peerlite checkpoint`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let store = open_existing(global, &args.db)?;
    let complete = store.checkpoint()?;
    store.close()?;
    if global.json {
        print_json(&serde_json::json!({ "complete": complete }));
    } else {
        println!("{}", if complete { "ok" } else { "partial" });
    }
    Ok(())
}
