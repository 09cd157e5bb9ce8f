//! `peerlite status --home H (DB | --kv STORE_DIR STORE_ID) [--json]`: where a store stands
//! with its peers — its epoch, per peer what it received and what the peer acknowledged, the
//! changes a peer has not acknowledged, the tombstones kept and the retention horizon.
//!
//! `peerlite purge --home H (DB | --kv …) [--older-than DURATION]`: purges now the tombstones
//! past the store's retention, or older than DURATION (`30d`, `12h`, `90m`, `45s`, `0s`);
//! `0s` purges every tombstone, acknowledged or not, and moves the horizon to now. Prints
//! `purged N tombstones; horizon TIME`.

use std::time::Duration;

use peerlite::RdbStore;
use peerlite::sync::SyncOverview;

use super::net::{HomeArg, open_for_node};
use super::print_json;
use super::target::{KvTarget, Opened};
use crate::Global;

/// The store `status` and `purge` work on, and the home it syncs with.
#[derive(clap::Args, Debug)]
pub struct Target {
    #[command(flatten)]
    home: HomeArg,
    /// The database file (or --kv STORE_DIR STORE_ID).
    #[arg(value_name = "DB")]
    db: Vec<String>,
    #[command(flatten)]
    kv: KvTarget,
}

/// Arguments of `peerlite status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    target: Target,
}

/// Arguments of `peerlite purge`.
#[derive(clap::Args, Debug)]
pub struct PurgeArgs {
    #[command(flatten)]
    target: Target,
    /// Purge tombstones older than this (`30d`, `12h`, `90m`, `45s`, `0s`: all); default: the
    /// store's retention (30 days unless set).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    older_than: Option<Duration>,
}

/// Parses `30d`, `12h`, `90m`, `45s`, `1500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} has no unit: write it like 30d, 12h, 90m, 45s or 0s"))?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} does not start with a number (30d, 12h, 90m, 45s, 0s)"))?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}: use ms, s, m, h or d"
            ));
        }
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// Opens the store; `status` only reads a database (no file is made, nothing is stamped),
/// `purge` writes.
fn open(global: &Global, target: Target, read_only: bool) -> anyhow::Result<Opened> {
    let location = target.kv.locate_only(target.db)?;
    let home = target.home.open()?;
    if let (true, super::target::Location::Db(path)) = (read_only, &location) {
        return Ok(Opened::Rdb(super::open_existing_read_only(global, path)?));
    }
    open_for_node(global, &location, &home, false)
}

fn rdb(opened: &Opened) -> anyhow::Result<&RdbStore> {
    Ok(match opened {
        Opened::Rdb(s) => s,
        Opened::Kv(s) => s.sync_store()?,
    })
}

/// A time as UTC text (`-` for none).
fn when(ms: u64) -> String {
    if ms == 0 {
        "-".into()
    } else {
        peerlite::backup::format_utc_ms(ms)
    }
}

/// Runs `peerlite status`.
pub fn status(global: &Global, args: StatusArgs) -> anyhow::Result<()> {
    let opened = open(global, args.target, true)?;
    let overview = rdb(&opened)?.sync_overview()?;
    if global.json {
        print_json(&serde_json::to_value(&overview)?);
    } else {
        print!("{}", text(&overview));
    }
    Ok(())
}

fn text(o: &SyncOverview) -> String {
    let mut out = format!(
        "device      {}\nepoch       {}\nchanges     {}\ntombstones  {}\nretention   {}\nhorizon     {}\n",
        o.device,
        o.epoch,
        o.seq,
        o.tombstones,
        human(o.retention_ms),
        when(o.horizon_ms)
    );
    for (table, seq) in o.purged_seq.iter().filter(|(_, s)| **s > 0) {
        out.push_str(&format!("purged      {table} through change {seq}\n"));
    }
    if o.peers.is_empty() {
        out.push_str("peers       none yet\n");
    }
    for p in &o.peers {
        out.push_str(&format!("peer {}  unsynced {}\n", p.device, p.unsynced));
        for w in &p.received {
            out.push_str(&format!(
                "  received      {}{} through {} (epoch {})\n",
                w.table,
                filter(w.filter),
                w.seq,
                short(&w.epoch)
            ));
        }
        for w in &p.acknowledged {
            out.push_str(&format!(
                "  acknowledged  {}{} through {}\n",
                w.table,
                filter(w.filter),
                w.seq
            ));
        }
    }
    out
}

fn filter(f: u64) -> String {
    if f == 0 {
        String::new()
    } else {
        format!(" (filter {f:016x})")
    }
}

fn short(epoch: &str) -> &str {
    epoch.get(..12).unwrap_or(epoch)
}

fn human(ms: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    UNITS
        .iter()
        .find(|(u, _)| ms >= *u && ms.is_multiple_of(*u))
        .map_or_else(
            || format!("{ms}ms"),
            |(u, name)| format!("{}{name}", ms / u),
        )
}

/// Runs `peerlite purge`.
pub fn purge(global: &Global, args: PurgeArgs) -> anyhow::Result<()> {
    let opened = open(global, args.target, false)?;
    let report = rdb(&opened)?.purge_tombstones(args.older_than)?;
    if global.json {
        print_json(&serde_json::json!({
            "purged": report.purged,
            "horizon_ms": report.horizon_ms,
            "purged_seq": report.purged_seq,
        }));
    } else {
        println!(
            "purged {} tombstones; horizon {}",
            report.purged,
            when(report.horizon_ms)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_units_and_refuse_the_rest() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        for bad in ["", "30", "d", "-1s", "1w", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(human(30 * 86_400_000), "30d");
        assert_eq!(human(1500), "1500ms");
    }
}
