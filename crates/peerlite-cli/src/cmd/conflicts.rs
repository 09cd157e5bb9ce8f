//! `peerlite conflicts DB`: the remote rows sync could not apply (another UNIQUE column, say),
//! one line each; `--resolve ID... --keep local|remote|earlier` settles them, a line per id
//! with its result, and exits 2 when any failed (a `hint:` line on stderr says what to do).
//! `earlier` keeps the row that came into existence first, the same choice on every device
//! that uses it. A conflict whose device is
//! this one (marked "replayed by a reset") is a change of this device's that a client reset
//! could not replay because a peer's row was in its way: `local` keeps the change, `remote`
//! the peer's row.

use std::path::PathBuf;

use peerlite::sync::Resolution;

use super::{open_existing, open_existing_read_only, print_json};
use crate::output::{table, value_json, value_text};
use crate::{Exit, Global, UsageError};

/// Which row lives.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Keep {
    /// This device's row; the remote change is discarded here.
    Local,
    /// The remote row; the local rows that block it are deleted (and that syncs).
    Remote,
    /// Whichever came into existence first (the same choice on every device).
    Earlier,
}

impl From<Keep> for Resolution {
    fn from(keep: Keep) -> Self {
        match keep {
            Keep::Local => Resolution::KeepLocal,
            Keep::Remote => Resolution::TakeRemote,
            Keep::Earlier => Resolution::KeepEarlier,
        }
    }
}

/// Arguments of `peerlite conflicts`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database file.
    db: PathBuf,
    /// Settle these conflicts (ids from the listing) instead of listing them.
    #[arg(long, value_name = "ID", num_args = 1.., requires = "keep")]
    resolve: Vec<i64>,
    /// How to settle them.
    #[arg(long, value_enum, requires = "resolve")]
    keep: Option<Keep>,
}

/// Runs `peerlite conflicts`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    match args.keep {
        Some(keep) => resolve(global, &args, keep),
        None if args.resolve.is_empty() => list(global, &args),
        None => Err(UsageError("--resolve needs --keep local|remote|earlier".into()).into()),
    }
}

fn list(global: &Global, args: &Args) -> anyhow::Result<()> {
    let store = open_existing_read_only(global, &args.db)?;
    let conflicts = store.conflicts()?;
    // A change of this device's own that a client reset replayed, blocked by a peer's row.
    let replayed = |c: &peerlite::sync::Conflict| c.device == store.device_id();
    if global.json {
        let list = conflicts
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.id, "table": c.table, "key": value_json(&c.key), "device": c.device,
                    "code": c.code, "message": c.message, "at_ms": c.at_ms,
                    "replayed": replayed(c),
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(list));
        return Ok(());
    }
    let header = ["id", "table", "key", "device", "code", "message"].map(String::from);
    let rows: Vec<Vec<String>> = conflicts
        .iter()
        .map(|c| {
            vec![
                c.id.to_string(),
                c.table.clone(),
                value_text(&c.key),
                if replayed(c) {
                    format!("{} (this device, replayed by a reset)", c.device)
                } else {
                    c.device.clone()
                },
                c.code.to_string(),
                c.message.clone(),
            ]
        })
        .collect();
    println!("{}", table(&header, &rows));
    Ok(())
}

fn resolve(global: &Global, args: &Args, keep: Keep) -> anyhow::Result<()> {
    let store = open_existing(global, &args.db)?;
    let results: Vec<(i64, peerlite::Result<()>)> = args
        .resolve
        .iter()
        .map(|&id| (id, store.resolve_conflict(id, keep.into())))
        .collect();
    if global.json {
        let list = results
            .iter()
            .map(|(id, r)| match r {
                Ok(()) => serde_json::json!({ "id": id, "result": "resolved" }),
                Err(e) => serde_json::json!({ "id": id, "result": { "code": e.code(), "message": e.to_string() } }),
            })
            .collect();
        print_json(&serde_json::Value::Array(list));
    } else {
        for (id, r) in &results {
            match r {
                Ok(()) => println!("{id}: resolved"),
                Err(e) => println!("{id}: error[{}] {e}", e.code()),
            }
        }
    }
    let mut hints: Vec<String> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .map(|e| hint(e, keep))
        .collect();
    if hints.is_empty() {
        return Ok(());
    }
    hints.sort();
    hints.dedup();
    for h in hints {
        eprintln!("hint: {h}");
    }
    Err(Exit(2).into())
}

/// The `hint:` line for a conflict `--keep` could not settle.
fn hint(err: &peerlite::Error, keep: Keep) -> String {
    match err.code() {
        // The kept row breaks a constraint or trigger of the app's own, not sync's.
        14800032 | 14800033 => {
            let other = match keep {
                Keep::Local => "`--keep remote`",
                Keep::Remote => "`--keep local`",
                Keep::Earlier => "`--keep local` or `--keep remote`",
            };
            format!(
                "a constraint or trigger of this database still refuses the row (the message names it): change the rows in its way, or the trigger, with `peerlite sql DB …` and resolve again, or settle it the other way with {other}; the conflict stays listed"
            )
        }
        14800001 => "`peerlite conflicts DB` lists the conflicts and their ids".into(),
        _ => crate::hint::for_error(err, "conflicts"),
    }
}
