//! `peerlite repair DB` (or `--kv STORE_DIR STORE_ID`): rebuilds a corrupted store — prints
//! `repaired from NAME` or `rebuilt empty`, and the salvage file; a healthy store is left
//! alone (`ok: nothing to repair`).

use peerlite::{CheckMode, RebuiltType};

use super::print_json;
use super::target::{KvTarget, Mode};
use crate::{Global, UsageError};

/// Arguments of `peerlite repair`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// DB (omit with --kv).
    #[arg(value_name = "DB")]
    positionals: Vec<String>,
    #[command(flatten)]
    target: KvTarget,
}

/// Runs `peerlite repair`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let (location, rest) = args.target.locate(args.positionals)?;
    if !rest.is_empty() {
        return Err(UsageError(format!("unexpected arguments {rest:?}")).into());
    }
    // A full check marks the store corrupted when it is; the open that follows then rebuilds.
    let healthy = match location.open(global, Mode::Normal) {
        Ok(store) => {
            let verdict = store.check(CheckMode::Full);
            drop(store);
            match verdict {
                Ok(()) => true,
                Err(e) if e.is_corruption() => false,
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) if e.is_corruption() => false,
        Err(e) => return Err(e.into()),
    };
    if healthy {
        if global.json {
            print_json(&serde_json::json!({ "status": "ok" }));
        } else {
            println!("ok: nothing to repair");
        }
        return Ok(());
    }
    let store = location.open(global, Mode::Rebuild)?;
    let (status, report) = store.rebuilt();
    let backup = report.as_ref().and_then(|r| r.backup.clone());
    let salvage = report.as_ref().and_then(|r| r.salvage.path.clone());
    let rows = report.as_ref().map_or(0, |r| r.salvage.rows);
    let quarantine = report.as_ref().map(|r| r.quarantine.clone());
    if global.json {
        print_json(&serde_json::json!({
            "status": match status { RebuiltType::Repaired => "repaired", RebuiltType::Rebuilt => "rebuilt", RebuiltType::None => "ok" },
            "backup": backup,
            "salvage": salvage,
            "salvaged_rows": rows,
            "quarantine": quarantine,
        }));
        return Ok(());
    }
    match (status, &backup) {
        (RebuiltType::Repaired, Some(name)) => println!("repaired from {name}"),
        (RebuiltType::None, _) => println!("ok: nothing to repair"),
        _ => println!("rebuilt empty"),
    }
    if let Some(path) = salvage {
        println!("salvaged {rows} rows into {}", path.display());
    }
    if let Some(q) = quarantine {
        println!("the damaged files are kept in {}", q.display());
    }
    Ok(())
}
