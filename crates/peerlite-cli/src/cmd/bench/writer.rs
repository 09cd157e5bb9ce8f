//! `peerlite bench writer DB --interval-ms 10 --out FILE --stop FILE` (hidden): the second
//! process of `bench backup`. It commits one small transaction every interval through a
//! peerlite store until the stop file appears, and writes one line per commit,
//! `<unix ms when it started> <latency in µs>`, so the benchmark can cut the commits of each
//! phase out of one run.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peerlite::{RdbStore, StoreConfig, bucket};

/// Arguments of `peerlite bench writer`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database to write to.
    db: PathBuf,
    /// Milliseconds between the starts of two commits.
    #[arg(long, default_value_t = 10)]
    interval_ms: u64,
    /// Where to write `<unix ms> <latency µs>` lines.
    #[arg(long)]
    out: PathBuf,
    /// Stop when this file exists.
    #[arg(long)]
    stop: PathBuf,
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs the writer.
pub fn run(args: Args) -> anyhow::Result<()> {
    let store = RdbStore::open(StoreConfig::new(&args.db))?;
    store.execute(
        "CREATE TABLE IF NOT EXISTS heartbeat(id INTEGER PRIMARY KEY, at INTEGER, note TEXT)",
        &[],
    )?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args.out)?);
    let interval = Duration::from_millis(args.interval_ms.max(1));
    let mut next = Instant::now();
    while !args.stop.exists() {
        let at = unix_ms();
        let start = Instant::now();
        store.insert(
            "heartbeat",
            &bucket! { "at" => at as i64, "note" => "commit from a second process" },
        )?;
        writeln!(out, "{at} {}", start.elapsed().as_micros())?;
        next += interval;
        match next.checked_duration_since(Instant::now()) {
            Some(wait) => std::thread::sleep(wait),
            None => next = Instant::now(),
        }
    }
    out.flush()?;
    store.close()?;
    Ok(())
}

/// Reads a writer's output: `(unix ms, latency µs)` per commit.
pub fn read_log(path: &std::path::Path) -> anyhow::Result<Vec<(u64, u64)>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (at, us) = l.split_once(' ')?;
            Some((at.parse().ok()?, us.parse().ok()?))
        })
        .collect())
}
