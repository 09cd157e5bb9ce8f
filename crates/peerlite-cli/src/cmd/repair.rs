//! `peerlite repair DB` (or `--kv STORE_DIR STORE_ID`): rebuilds a corrupted store — prints
//! `repaired from NAME` or `rebuilt empty`, then `salvaged N rows into PATH` (or why salvage
//! failed, or that nothing could be read), then where the damaged files are kept, then the
//! salvage files of earlier repairs, which a new one never replaces; a healthy
//! store is left alone (`ok: nothing to repair`). A repair a kill or a full disk interrupted
//! is finished by the next `peerlite repair`.

use peerlite::{CheckMode, RebuiltType};

use super::print_json;
use super::target::{KvTarget, Mode};
use crate::Global;

/// Arguments of `peerlite repair`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// DB (omit with --kv).
    #[arg(value_name = "DB")]
    positionals: Vec<String>,
    #[command(flatten)]
    target: KvTarget,
    /// Sleeps this long between the steps of the rebuild (crash tests).
    #[arg(long, hide = true, value_name = "MS")]
    step_pause_ms: Option<u64>,
}

/// Runs `peerlite repair`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let location = args.target.locate_only(args.positionals)?;
    // A full check marks the store corrupted when it is; the open that follows then rebuilds.
    // A pending repair, a lost store or an empty file fails this open (14800011) and the next
    // repairs it. The check's open never creates a store.
    let healthy = match location.open(global, Mode::Recovery) {
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
    let pause = args.step_pause_ms.map(std::time::Duration::from_millis);
    let store = location.open_pausing(global, Mode::Rebuild, pause)?;
    let (status, report) = store.rebuilt();
    let backup = report.as_ref().and_then(|r| r.backup.clone());
    let salvage = report
        .as_ref()
        .map(|r| r.salvage.clone())
        .unwrap_or_default();
    let quarantine = report.as_ref().map(|r| r.quarantine.clone());
    // The check found damage; a rebuild that reports none found the store repaired by another
    // `peerlite repair`, which it waited for (repairs of one store are serialised).
    let meanwhile = status == RebuiltType::None;
    if global.json {
        print_json(&serde_json::json!({
            "status": match status { RebuiltType::Repaired => "repaired", RebuiltType::Rebuilt => "rebuilt", RebuiltType::None => "ok" },
            "repaired_meanwhile": meanwhile,
            "backup": backup,
            "salvage": salvage.path,
            "salvaged_rows": salvage.rows,
            "lost_and_found": salvage.lost_and_found,
            "partial_rows": salvage.partial_rows,
            "salvage_error": salvage.error,
            "earlier_salvage": salvage.earlier,
            "quarantine": quarantine,
        }));
        return Ok(());
    }
    match (status, &backup) {
        (RebuiltType::Repaired, Some(name)) => println!("repaired from {name}"),
        (RebuiltType::None, _) => {
            println!("ok: another `peerlite repair` of this store finished it meanwhile")
        }
        _ => println!("rebuilt empty"),
    }
    match (&salvage.error, &salvage.path) {
        (Some(why), _) => println!("salvage failed (the rebuild went on without it): {why}"),
        (None, Some(path)) => println!("salvaged {} rows into {}", salvage.rows, path.display()),
        (None, None) if status != RebuiltType::None => println!("nothing could be salvaged"),
        (None, None) => {}
    }
    if salvage.lost_and_found > 0 {
        println!(
            "{} more rows no table could be named for are in its table peerlite_lost_and_found",
            salvage.lost_and_found
        );
    }
    if let Some(q) = quarantine.filter(|q| q.is_dir()) {
        println!("the damaged files are kept in {}", q.display());
    }
    if !salvage.earlier.is_empty() {
        let earlier: Vec<String> = salvage
            .earlier
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        println!(
            "earlier salvage files are kept as they were: {}",
            earlier.join(", ")
        );
    }
    Ok(())
}
