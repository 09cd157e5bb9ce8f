//! `peerlite sync --home H (DB | --kv STORE_DIR STORE_ID) (--push | --pull) [--device ID]...
//! [--table T]... [--eq COL=VALUE]... [--json]`: syncs the store now, as this device (the
//! home's id), with every trusted device or the `--device` ones, whether or not a
//! `peerlite serve` runs for it. One line per device: `DEVICE_ID ok` or
//! `DEVICE_ID error[CODE] reason`; exit 0 only when every device succeeded, 2 otherwise.
//! `--json` prints one array of `{device, status, code, message, sent, received, conflicts}`
//! (`conflicts`: rows recorded as conflicts, here for those received and on the peer for those
//! sent; a note on stderr says where to list them).
//!
//! `--table T` limits the tables (each its own session); `--eq COL=VALUE` (ANDed, an integer
//! when VALUE is written as one, `42` or `-7`, text otherwise: `007`, `+5`, `-0`) limits the
//! rows of those tables — a filtered sync with a watermark of its own. `--reidentify` lets a store that synced under another device
//! id take this home's (a new epoch). `--timeout SECS` bounds the whole sync per device.
//! `--on-reset MODE`: a pull that finds this device must be reset (17040011) resets it
//! against that device (as `peerlite reset --mode MODE`) and pulls again; without it the
//! device's line says error[17040011] and nothing changes.

use std::time::Duration;

use peerlite::RdbPredicates;
use peerlite::sync::{DeviceResult, SyncMode, SyncStatus};
use peerlite_net::DeviceId;

use super::net::{
    HomeArg, NodeArgs, net_error, node, open_for_node, parse_device, parse_eq, refuse_own_id,
    runtime, serve,
};
use super::print_json;
use super::target::{KvTarget, Opened};
use crate::{Exit, Global, UsageError};

/// Arguments of `peerlite sync`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("direction").required(true).args(["push", "pull"])))]
pub struct Args {
    #[command(flatten)]
    home: HomeArg,
    /// The database file (or --kv STORE_DIR STORE_ID).
    #[arg(value_name = "DB")]
    db: Vec<String>,
    #[command(flatten)]
    kv: KvTarget,
    /// Send this device's changes.
    #[arg(long)]
    push: bool,
    /// Fetch the peers' changes.
    #[arg(long)]
    pull: bool,
    /// Only with this device (repeatable; default: every trusted device).
    #[arg(long = "device", value_name = "ID")]
    devices: Vec<String>,
    /// Only this table (repeatable; default: every distributed table).
    #[arg(long = "table", value_name = "T")]
    tables: Vec<String>,
    /// Only rows whose COL equals VALUE (repeatable, ANDed; VALUE is an integer when written
    /// as one, `42` or `-7`, text otherwise: `007`, `+5` and `-0` are text). Needs --table.
    #[arg(long = "eq", value_name = "COL=VALUE", value_parser = parse_eq)]
    eqs: Vec<(String, peerlite::Value)>,
    /// Let a store that synced under another device id take this home's (a new epoch).
    #[arg(long)]
    reidentify: bool,
    /// Give up on a device after this many seconds.
    /// (1 to 604800: a week; a larger value would overflow the clock's deadline).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    timeout: u64,
    /// When a pull finds this device must be reset (17040011: it was away longer than the
    /// peer keeps deletes), reset it against that device in this mode (manual, discard,
    /// recover, recover-or-discard; see `peerlite reset`) and pull again. Without it the
    /// device's line reports error[17040011] and nothing is changed.
    #[arg(long = "on-reset", value_name = "MODE", value_parser = super::reset::parse_mode)]
    on_reset: Option<peerlite::reset::ResetMode>,
    #[command(flatten)]
    node: NodeArgs,
}

/// Runs `peerlite sync`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let location = args.kv.locate_only(args.db.clone())?;
    if args.on_reset.is_some() && args.push {
        return Err(UsageError(
            "--on-reset resets this device when a pull finds it behind a purge: use it with --pull"
                .into(),
        )
        .into());
    }
    if !args.eqs.is_empty() && args.tables.is_empty() {
        return Err(
            UsageError("--eq limits the rows of tables named with --table T".into()).into(),
        );
    }
    let devices = args
        .devices
        .iter()
        .map(|d| parse_device(d))
        .collect::<anyhow::Result<Vec<DeviceId>>>()?;
    let mode = if args.push {
        SyncMode::Push
    } else {
        SyncMode::Pull
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let home = args.home.open()?;
    refuse_own_id(&home, &devices)?;
    let mut results = sync_once(global, &args, &location, &home, &devices, mode, timeout)?;
    if let (Some(reset_mode), SyncMode::Pull) = (args.on_reset, mode) {
        // Each device that found this one needing a client reset: reset against it, then
        // pull from it again.
        let needing: Vec<DeviceId> = results
            .iter()
            .filter(|(_, r)| r.status == SyncStatus::ResetRequired)
            .map(|(d, _)| *d)
            .collect();
        for device in needing {
            let report = super::reset::reset_with(
                global, &location, &home, &args.node, device, reset_mode, timeout,
            )?;
            eprintln!(
                "note: client reset from {device}: recovered {}, discarded {}, conflicts {}; backup {}",
                report.recovered,
                report.discarded,
                report.conflicts,
                report.backup.display()
            );
            let again = sync_once(global, &args, &location, &home, &[device], mode, timeout)?;
            for (d, r) in again {
                if let Some(slot) = results.iter_mut().find(|(x, _)| *x == d) {
                    slot.1 = r;
                }
            }
        }
    }
    report(global, &results)
}

/// Syncs with `devices` (every trusted device when empty) once, over a node of its own; the
/// store is closed afterwards.
fn sync_once(
    global: &Global,
    args: &Args,
    location: &super::target::Location,
    home: &peerlite_net::Home,
    devices: &[DeviceId],
    mode: SyncMode,
    timeout: Duration,
) -> anyhow::Result<Vec<(DeviceId, DeviceResult)>> {
    let (trust, node) = node(home, &args.node)?;
    let store = open_for_node(global, location, home, args.reidentify)?;
    let name = serve(&node, &store)?;
    let tables = distributed_names(&store, &args.tables)?;
    let targets: Vec<DeviceId> = if devices.is_empty() {
        trust.devices().into_iter().map(|d| d.id).collect()
    } else {
        devices.to_vec()
    };
    if targets.is_empty() {
        eprintln!(
            "note: no trusted device to sync with (pair with one: `peerlite trust add --home H DEVICE_ID --addr HOST:PORT`)"
        );
    }
    let rt = runtime()?;
    let results = rt.block_on(async {
        let mut merged: Vec<(DeviceId, DeviceResult)> = Vec::new();
        if tables.is_empty() {
            merged = node
                .sync_devices(&targets, &name, mode, None, timeout)
                .await
                .map_err(net_error)?;
        }
        for table in &tables {
            let mut p = RdbPredicates::new(table.clone());
            for (i, (column, value)) in args.eqs.iter().enumerate() {
                if i > 0 {
                    p = p.and();
                }
                p = p.equal_to(column, value.clone());
            }
            let p = p.in_devices(targets.iter().map(ToString::to_string));
            let results = node
                .sync_devices(&targets, &name, mode, Some(&p), timeout)
                .await
                .map_err(net_error)?;
            merge(&mut merged, results);
        }
        node.shutdown().await;
        anyhow::Ok(merged)
    })?;
    drop(store);
    Ok(results)
}

/// The `--table` names as the store spells its distributed tables (SQLite's names are
/// case-insensitive: `--table NOTE` is `note`), each once; a name no distributed table has
/// stays as given, for the sync to refuse (17040001).
fn distributed_names(store: &Opened, given: &[String]) -> anyhow::Result<Vec<String>> {
    let known = match store {
        Opened::Rdb(s) => s.distributed_tables()?,
        Opened::Kv(_) => Vec::new(),
    };
    let mut names: Vec<String> = Vec::with_capacity(given.len());
    for table in given {
        let name = known
            .iter()
            .find(|m| m.base.is_none() && m.name.eq_ignore_ascii_case(table))
            .map_or_else(|| table.clone(), |m| m.name.clone());
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// Adds one table's results to the others': totals add up, the first failure stays.
fn merge(into: &mut Vec<(DeviceId, DeviceResult)>, results: Vec<(DeviceId, DeviceResult)>) {
    for (device, r) in results {
        match into.iter_mut().find(|(d, _)| *d == device) {
            None => into.push((device, r)),
            Some((_, m)) => {
                m.sent += r.sent;
                m.received += r.received;
                m.conflicts += r.conflicts;
                m.peer_conflicts += r.peer_conflicts;
                if m.status.is_ok() && !r.status.is_ok() {
                    m.status = r.status;
                    m.message = r.message;
                }
            }
        }
    }
}

/// Prints one line (or JSON object) per device; exit 2 unless all succeeded.
fn report(global: &Global, results: &[(DeviceId, DeviceResult)]) -> anyhow::Result<()> {
    if global.json {
        let list: Vec<serde_json::Value> = results
            .iter()
            .map(|(device, r)| {
                serde_json::json!({
                    "device": device.to_string(),
                    "status": r.status.to_string(),
                    "code": r.status.code(),
                    "message": r.message,
                    "sent": r.sent,
                    "received": r.received,
                    "conflicts": conflicts(r),
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(list));
    } else {
        for (device, r) in results {
            println!("{}", status_line(device, r));
        }
    }
    for (device, r) in results {
        if r.peer_conflicts > 0 {
            eprintln!(
                "note: {device} recorded {} of the rows sent as conflicts: there, `peerlite conflicts DB` lists them",
                r.peer_conflicts
            );
        }
        if r.conflicts > 0 {
            eprintln!(
                "note: {} rows from {device} were recorded as conflicts here: `peerlite conflicts DB` lists them",
                r.conflicts
            );
        }
    }
    let mut codes: Vec<u32> = results
        .iter()
        .filter(|(_, r)| !r.status.is_ok())
        .map(|(_, r)| r.status.code())
        .collect();
    if codes.is_empty() {
        return Ok(());
    }
    codes.sort_unstable();
    codes.dedup();
    for code in codes {
        eprintln!("hint: {}", hint(code));
    }
    Err(Exit(2).into())
}

/// The session's conflicts wherever they were recorded: here for the rows received, on the
/// peer for the rows sent (a push reported 0 while the peer recorded one).
fn conflicts(r: &DeviceResult) -> u64 {
    r.conflicts + r.peer_conflicts
}

/// A device's line: `DEVICE_ID ok` or `DEVICE_ID error[CODE] status: reason` (the demo
/// prints it too).
pub(crate) fn status_line(device: &DeviceId, r: &DeviceResult) -> String {
    if r.status.is_ok() {
        format!("{device} ok")
    } else {
        let why = r.message.as_deref().unwrap_or_default();
        format!("{device} error[{}] {}: {why}", r.status.code(), r.status)
    }
}

/// What to do about a device that failed with `code`.
pub(super) fn hint(code: u32) -> &'static str {
    match code {
        17060001 | 17060015 => {
            "pair with the device first: `peerlite trust add --home H DEVICE_ID --addr HOST:PORT`"
        }
        17060002 => {
            "the device does not trust this one: there, run `peerlite trust add` with the id `peerlite device id --home H` prints here"
        }
        17060019 => {
            "another device answers at that address: update it with `peerlite trust remove` and `peerlite trust add --addr`"
        }
        17060021 => {
            "give the device an address: `peerlite trust remove`, then `peerlite trust add --addr HOST:PORT`"
        }
        17060024 => {
            "the device is shutting down (its `peerlite serve` was stopped, or this sync was interrupted); nothing received so far is lost: run the same `peerlite sync` again when the device is back"
        }
        17060004 | 17060007 | 17060008 | 17060009 | 17060025 | 17040008 => {
            "the device did not answer in time or went away: check that `peerlite serve` runs there and retry (`--timeout SECS` gives the whole sync longer; a connection that does not complete its TLS handshake is given up after 10 s)"
        }
        17040006 => {
            "either the device that refused records the other at a level below the data's label (there: `peerlite trust remove` and `peerlite trust add --level SLn` with a higher level, if it may hold this data), or the receiving copy of the store is labelled below the data (raise it there: `peerlite --level Sk sql DB \"SELECT 1\"`)"
        }
        17040001 => "make the tables distributed on both devices: `peerlite distribute DB TABLE`",
        17040005 | 14800051 => {
            "both devices must serve the same store (same file name) with the same distributed tables (columns, their types and key), mode and schema version: check with `peerlite distribute` and `peerlite serve --db DB`"
        }
        17040007 => "the device is not who it claims to be: check `peerlite trust list --home H`",
        17040012 => {
            "a store was put back from a copy of an earlier state and took a new epoch: run the same `peerlite sync` again to send its rows"
        }
        14800024 => {
            "an app on that device (or this one) held the store's write lock longer than a sync waits for it; nothing was lost: run the same `peerlite sync` again once it is done"
        }
        14800011 | 15100003 => {
            "a copy of the store is damaged: when the reason says it is the other device's copy, run `peerlite repair DB` (or `peerlite repair --kv STORE_DIR STORE_ID`) on that device; when it names a file here, run it here; then sync again"
        }
        17040013 => {
            "the row stays on the device that holds it (the others were sent): there, make its values smaller than 8 MiB (`peerlite sql DB \"UPDATE …\"`), or move it out of the distributed table; the next `peerlite sync` sends it"
        }
        17040011 => {
            "the device the reason names first has not heard of deletes the other no longer keeps: on that device, pull with `--on-reset recover` (or run `peerlite reset --device ID --mode recover`) to re-seed it and keep its unsynced changes; a push from it is refused until then"
        }
        _ => "see the reason; `peerlite sync -v` and `peerlite serve -v` log what happened",
    }
}
