//! `peerlite reset --home H (DB | --kv STORE_DIR STORE_ID) --device ID --mode
//! manual|discard|recover|recover-or-discard`: a client reset against one trusted device. A
//! verified backup of the store is taken first; the store's distributed tables are re-seeded
//! from the device's full state (a pull into a copy beside the store); the local changes the
//! device never acknowledged are then replayed with their original timestamps (`recover`),
//! dropped (`discard`), replayed or else dropped (`recover-or-discard`), or listed for the user
//! to re-apply by hand (`manual`); the copy then replaces the store through a verified
//! restore. Until that restore the store is untouched: a kill at any point leaves it as it was
//! or reset. Prints `reset from ID: recovered N, discarded M, conflicts K (MODE)` and
//! `backup: PATH` (with `manual`, the unsynced changes after them, as `peerlite changes`
//! shows them); `--json` prints one object.

use std::time::Duration;

use peerlite::RdbStore;
use peerlite::reset::{ResetMode, ResetReport};
use peerlite::sync::SyncMode;
use peerlite_net::{DeviceId, Home};

use super::changes::{change_json, changes_table};
use super::net::{
    HomeArg, NodeArgs, net_error, node, open_for_node, parse_device, refuse_own_id, runtime,
};
use super::print_json;
use super::target::{KvTarget, Location, Opened};
use crate::output::{value_json, value_text};
use crate::{Exit, Global};

/// Arguments of `peerlite reset`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    home: HomeArg,
    /// The database file (or --kv STORE_DIR STORE_ID).
    #[arg(value_name = "DB")]
    db: Vec<String>,
    #[command(flatten)]
    kv: KvTarget,
    /// The trusted device whose state re-seeds the store.
    #[arg(long, value_name = "ID")]
    device: String,
    /// What happens to the local changes the device never acknowledged.
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    mode: ResetMode,
    /// Give up on the pull after this many seconds (1 to 604800).
    #[arg(long, value_name = "SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    timeout: u64,
    #[command(flatten)]
    node: NodeArgs,
}

/// Parses `manual`, `discard`, `recover`, `recover-or-discard`.
pub fn parse_mode(s: &str) -> Result<ResetMode, String> {
    ResetMode::parse(s).ok_or_else(|| {
        format!("{s:?} is not a mode: manual, discard, recover or recover-or-discard")
    })
}

/// Runs `peerlite reset`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let location = args.kv.locate_only(args.db.clone())?;
    let device = parse_device(&args.device)?;
    let home = args.home.open()?;
    refuse_own_id(&home, &[device])?;
    let timeout = Duration::from_secs(args.timeout);
    let report = reset_with(
        global, &location, &home, &args.node, device, args.mode, timeout,
    )?;
    print(global, &device, &location, &report);
    Ok(())
}

/// The store's relational side (a key-value store's entry table syncs through it).
fn rdb(opened: &Opened) -> anyhow::Result<&RdbStore> {
    Ok(match opened {
        Opened::Rdb(s) => s,
        Opened::Kv(s) => s.sync_store()?,
    })
}

/// Resets the store at `location` against `device`: opens it, pulls the device's full state
/// into the seed over a node of its own, finishes in `mode`. The store is closed afterwards.
pub fn reset_with(
    global: &Global,
    location: &Location,
    home: &Home,
    node_args: &NodeArgs,
    device: DeviceId,
    mode: ResetMode,
    timeout: Duration,
) -> anyhow::Result<ResetReport> {
    let opened = open_for_node(global, location, home, false)?;
    let store = rdb(&opened)?;
    let reseed = store.begin_reset(&device.to_string())?;
    let (_trust, node) = node(home, node_args)?;
    let name = node.serve_store(reseed.seed()).map_err(net_error)?;
    let rt = runtime()?;
    let pulled = rt.block_on(node.sync_with(device, &name, SyncMode::Pull, None, timeout));
    if !pulled.status.is_ok() {
        rt.block_on(node.shutdown());
        // The store was never touched: not a failed reset, and no backup of it to keep.
        reseed.abandon()?;
        eprintln!("{}", super::sync::status_line(&device, &pulled));
        if pulled.status.is_retryable() {
            eprintln!(
                "hint: the store is unchanged; run `peerlite reset` again once the device answers"
            );
        } else {
            // Refused (levels, trust, schema): retrying changes nothing until that is fixed;
            // what to fix is what a sync refused the same way is told.
            eprintln!(
                "hint: the store is unchanged; the device answered but refused: {}; then run `peerlite reset` again",
                super::sync::hint(pulled.status.code())
            );
        }
        return Err(Exit(2).into());
    }
    // Finished while the node still holds the seed (its shutdown closes what it serves).
    let report = reseed.finish(mode)?;
    rt.block_on(node.shutdown());
    Ok(report)
}

fn mode_name(mode: ResetMode) -> &'static str {
    match mode {
        ResetMode::Manual => "manual",
        ResetMode::DiscardUnsynced => "discard",
        ResetMode::RecoverUnsynced => "recover",
        ResetMode::RecoverOrDiscard => "recover-or-discard",
    }
}

/// Prints the report.
pub fn print(global: &Global, device: &DeviceId, location: &Location, r: &ResetReport) {
    if global.json {
        print_json(&serde_json::json!({
            "device": device.to_string(),
            "mode": mode_name(r.mode),
            "recovered": r.recovered,
            "discarded": r.discarded,
            "conflicts": r.conflicts,
            "left_to_peers": r.left_to_peers,
            "backup": r.backup,
            "unsynced": r.unsynced.iter().map(|u| {
                let mut json = change_json(&u.change);
                json["values"] = u
                    .values
                    .iter()
                    .map(|(c, v)| (c.clone(), value_json(v)))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
                json
            }).collect::<Vec<_>>(),
        }));
        return;
    }
    println!(
        "reset from {device}: recovered {}, discarded {}, conflicts {} ({})",
        r.recovered,
        r.discarded,
        r.conflicts,
        mode_name(r.mode)
    );
    println!("backup: {}", r.backup.display());
    if r.left_to_peers > 0 {
        println!(
            "left to peers: {} of this device's rows that a peer acknowledged are not on {device} (deleted there, or held only by another device, whose next sync brings them back; the backup keeps them)",
            r.left_to_peers
        );
    }
    if r.mode == ResetMode::Manual && !r.unsynced.is_empty() {
        let changes: Vec<_> = r.unsynced.iter().map(|u| u.change.clone()).collect();
        println!("{}", changes_table(&changes));
        for u in r.unsynced.iter().filter(|u| !u.values.is_empty()) {
            let values: Vec<String> = u
                .values
                .iter()
                .map(|(c, v)| format!("{c}={}", value_text(v)))
                .collect();
            println!(
                "{} {}: {}",
                u.change.table,
                value_text(&u.change.key),
                values.join(", ")
            );
        }
        let store = match location {
            Location::Db(db) => db.display().to_string(),
            Location::Kv { dir, id } => format!("--kv {} {id}", dir.display()),
        };
        println!(
            "these changes are no longer in the store; the backup above (a plain SQLite database) holds them, and `peerlite restore {store} {}` would bring the whole store back as it was before the reset",
            r.backup.display()
        );
    }
}
