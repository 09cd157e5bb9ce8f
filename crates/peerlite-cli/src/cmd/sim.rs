//! `peerlite sim --devices N --ops N --seed S [--drop P] [--dup P] [--reorder]
//! [--partitions] [--clock-steps-ms MS] [--recreate] [--restores] [--resolve] [--purges] [--json]`: the
//! deterministic sync simulation (peerlite-testkit's `sim`). Prints whether every device
//! converged, each device's content hashes, the healing rounds needed and the conflicts
//! recorded (and, with any of the last four options, what happened to the devices); exits 0
//! only when the devices converged and the end state keeps every write the merge rules keep.

use peerlite_testkit::sim::{Faults, SimConfig, SimProgress, run_with_progress};

use super::print_json;
use crate::signals::TempDir;
use crate::{Exit, Global, UsageError};

/// Runs of at least this many writes report progress on stderr (stdout stays the report):
/// a line at every tenth of the writes and after every healing round that did not converge.
const PROGRESS_FROM_OPS: usize = 1000;
/// The longest a long run stays silent.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Arguments of `peerlite sim`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Devices (2 to 64: each holds open databases).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..=64))]
    devices: u16,
    /// Random writes before the network heals (at most 10,000,000).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    ops: u32,
    /// Seed (the same seed replays the same run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Probability that a message is lost.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    drop: f64,
    /// Probability that a message is duplicated.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    dup: f64,
    /// Deliver messages out of order.
    #[arg(long)]
    reorder: bool,
    /// Split the network into partitions while writing.
    #[arg(long)]
    partitions: bool,
    /// Rows per sync batch (1 to 100,000).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_rows: u32,
    /// Healing rounds allowed (at most 1,000).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    max_rounds: u32,
    /// How far apart the devices' clocks may be, in ms (over 300000, some run "far ahead";
    /// at most a year).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(0..=31_536_000_000))]
    skew_ms: u64,
    /// Now and then a device's wall clock jumps up to MS ahead for a write and is set back
    /// (at most 300000, the clamp): its clock runs ahead of its wall clock.
    #[arg(long, default_value_t = 0, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=300_000))]
    clock_steps_ms: u64,
    /// Now and then a device's databases are deleted and made again (same device id).
    #[arg(long)]
    recreate: bool,
    /// Now and then a device backs up its stores, and restores one and restarts.
    #[arg(long)]
    restores: bool,
    /// Rows clash on a second UNIQUE column; devices fix clashes and resolve the conflicts.
    #[arg(long)]
    resolve: bool,
    /// Now and then a device forgets every delete it keeps (purges its tombstones); devices
    /// found behind such a purge are reset, recovering their unsynced writes.
    #[arg(long)]
    purges: bool,
}

/// Runs `peerlite sim`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    for (name, p) in [("--drop", args.drop), ("--dup", args.dup)] {
        if !(0.0..1.0).contains(&p) {
            return Err(UsageError(format!("{name} must be in [0, 1)")).into());
        }
    }
    // The devices' files live in a directory removed at the end, on Ctrl-C, on SIGTERM and
    // at a closed pipe.
    let scratch = TempDir::new("peerlite-sim-").map_err(|e| peerlite::Error::Io {
        op: "creating a temporary directory in",
        path: std::env::temp_dir(),
        source: e,
    })?;
    scratch.hold_all_temporary_files();
    let loud = args.ops as usize >= PROGRESS_FROM_OPS;
    // A line every tenth of the writes, and at least every few seconds on a long run.
    let mut last = std::time::Instant::now();
    let mut progress = |p: SimProgress| match p {
        SimProgress::Writes { done, total }
            if loud
                && done > 0
                && (done % (total / 10).max(1) == 0 || last.elapsed() >= PROGRESS_EVERY) =>
        {
            last = std::time::Instant::now();
            eprintln!("sim: {done} of {total} writes");
        }
        SimProgress::Healing { round, max } if loud => {
            eprintln!("sim: healing round {round} of {max} done, not converged yet");
        }
        _ => {}
    };
    let report = run_with_progress(
        &SimConfig {
            devices: usize::from(args.devices),
            ops: args.ops as usize,
            seed: args.seed,
            faults: Faults {
                drop: args.drop,
                dup: args.dup,
                reorder: args.reorder,
            },
            partitions: args.partitions,
            batch_rows: args.batch_rows as usize,
            max_rounds: args.max_rounds as usize,
            max_skew_ms: args.skew_ms,
            clock_steps_ms: args.clock_steps_ms,
            recreate: args.recreate,
            restores: args.restores,
            resolve: args.resolve,
            purges: args.purges,
        },
        &mut progress,
    )?;
    if global.json {
        print_json(&serde_json::to_value(&report)?);
    } else {
        if report.converged {
            println!(
                "converged after {} healing round(s): {} devices, {} ops, seed {}",
                report.rounds, args.devices, args.ops, report.seed
            );
        } else {
            println!(
                "NOT converged after {} healing round(s): {} devices, {} ops, seed {}",
                report.rounds, args.devices, args.ops, report.seed
            );
        }
        let header = ["device", "items", "items hash", "notes", "notes hash"].map(String::from);
        let rows: Vec<Vec<String>> = report
            .devices
            .iter()
            .map(|d| {
                vec![
                    d.device.clone(),
                    d.items.to_string(),
                    d.items_hash.clone(),
                    d.notes.to_string(),
                    d.notes_hash.clone(),
                ]
            })
            .collect();
        println!("{}", crate::output::table(&header, &rows));
        let (s, n) = (report.sessions, report.network);
        println!(
            "sessions: {} started, {} completed, {} failed, {} abandoned",
            s.started, s.completed, s.failed, s.abandoned
        );
        println!(
            "messages: {} sent, {} delivered, {} dropped, {} duplicated, {} cut by partitions",
            n.sent, n.delivered, n.dropped, n.duplicated, n.cut
        );
        println!(
            "writes checked against the merge rules: {}; conflicts: {} reported, {} recorded",
            report.writes, report.conflicts_reported, report.conflicts_recorded
        );
        if args.clock_steps_ms > 0 || args.recreate || args.restores || args.resolve || args.purges
        {
            let l = report.lifecycle;
            println!(
                "devices: {} clock steps, {} databases re-created, {} backups, {} restored, {} clashes fixed, {} conflicts resolved ({} lost with a database), {} writes lost before they reached anyone ({} brought back by a restore), {} purges, {} client resets",
                l.clock_steps,
                l.recreated,
                l.backups,
                l.restored,
                l.clashes_fixed,
                l.conflicts_resolved,
                l.conflicts_wiped,
                l.writes_lost,
                l.writes_back,
                l.purges,
                l.resets
            );
        }
        for v in &report.violations {
            println!("violation: {v}");
        }
    }
    if !report.ok() {
        eprintln!(
            "error: the devices {} (replay with --seed {})",
            if report.converged {
                "converged, but not to what the merge rules give"
            } else {
                "did not converge"
            },
            report.seed
        );
        return Err(Exit(2).into());
    }
    Ok(())
}
