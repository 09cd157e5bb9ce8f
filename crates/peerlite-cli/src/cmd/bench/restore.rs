//! The restore part of `peerlite bench backup`: peerlite's verified restore against the
//! `sqlite3` shell's `.restore`, from the same backup file into the same database: the shell as
//! a process, peerlite as `peerlite restore` runs it (open the store, restore, close).
//!
//! Fair by construction: `runs` rounds (3 by default) of one restore of each kind, the order
//! alternating from round to round (writeback and cache effects favour whoever runs second);
//! before each restore every dirty page on the machine is written back (`sync`) and the backup
//! and the database are read into the page cache from another process, so each starts with
//! the same cache; each ends when its result is durable (a `sync` after it is part of its
//! time). Medians are reported, with the ratio's median over the rounds and the parts of
//! peerlite's time its report gives (verification, keeping the replaced data, copy,
//! checkpoint).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use peerlite::{RdbStore, StoreConfig};

use super::measure::{median, sync_all};

/// One peerlite restore: its time and the parts it reported.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Parts {
    pub total_s: f64,
    pub verify_s: f64,
    pub keep_s: f64,
    pub copy_s: f64,
    pub checkpoint_s: f64,
    /// What is left: opening and closing the store, the final `sync`.
    pub other_s: f64,
}

/// The medians of the rounds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreResult {
    pub rounds: usize,
    pub peerlite: Parts,
    pub sqlite3_restore_s: f64,
    /// The median over the rounds of peerlite's time over the shell's.
    pub ratio: f64,
    /// Each round's (peerlite, shell) seconds, in the order run.
    pub samples: Vec<(f64, f64, bool)>,
    /// How each of peerlite's restores went: `moved files`, or `copied: <why>`.
    pub paths: Vec<String>,
}

/// Reads both files into the page cache from another process (a descriptor opened and closed
/// here on the database would drop this process's POSIX locks on it).
fn warm(files: &[&Path]) -> anyhow::Result<()> {
    for f in files {
        Command::new("cat")
            .arg(f)
            .stdout(Stdio::null())
            .status()
            .context("warming the page cache")?;
    }
    Ok(())
}

/// A restore as `peerlite restore DB PATH` runs it: open the store, restore, close.
fn peerlite_restore(db: &Path, backup: &Path) -> anyhow::Result<(Parts, String)> {
    let start = Instant::now();
    let store = RdbStore::open(StoreConfig::new(db))?;
    let report = store.restore(&backup.display().to_string())?;
    store.close()?;
    sync_all()?;
    let total_s = start.elapsed().as_secs_f64();
    let t = report.timings;
    let (verify_s, keep_s, copy_s, checkpoint_s) = (
        t.verify.as_secs_f64(),
        t.keep.as_secs_f64(),
        t.copy.as_secs_f64(),
        t.checkpoint.as_secs_f64(),
    );
    let path = match report.copied_because {
        None => "moved files".to_owned(),
        Some(why) => format!("copied: {why}"),
    };
    let parts = Parts {
        total_s,
        verify_s,
        keep_s,
        copy_s,
        checkpoint_s,
        other_s: (total_s - verify_s - keep_s - copy_s - checkpoint_s).max(0.0),
    };
    Ok((parts, path))
}

fn shell_restore(sqlite3: &str, db: &Path, backup: &Path) -> anyhow::Result<f64> {
    let start = Instant::now();
    let status = Command::new(sqlite3)
        .arg(db)
        .arg(format!(".restore '{}'", backup.display()))
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("starting {sqlite3}"))?;
    if !status.success() {
        bail!("sqlite3 .restore: {status}");
    }
    sync_all()?;
    Ok(start.elapsed().as_secs_f64())
}

/// Runs `rounds` rounds of both restores of `backup` into `db` (no store may hold it open).
pub fn compare(
    db: &Path,
    backup: &Path,
    sqlite3: &str,
    rounds: usize,
) -> anyhow::Result<RestoreResult> {
    let rounds = rounds.max(1);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut samples = Vec::new();
    let mut paths = Vec::new();
    for round in 0..rounds {
        let peerlite_first = round % 2 == 0;
        let (mut p, mut s) = (None, None);
        for turn in 0..2 {
            sync_all()?;
            warm(&[backup, db])?;
            if (turn == 0) == peerlite_first {
                eprintln!("restore {}/{rounds}: peerlite", round + 1);
                let (parts, path) = peerlite_restore(db, backup)?;
                p = Some(parts);
                paths.push(path);
            } else {
                eprintln!("restore {}/{rounds}: sqlite3 .restore", round + 1);
                s = Some(shell_restore(sqlite3, db, backup)?);
            }
        }
        let (Some(p), Some(s)) = (p, s) else {
            bail!("a restore of round {round} did not run");
        };
        samples.push((p.total_s, s, peerlite_first));
        ours.push(p);
        theirs.push(s);
    }
    let med = |f: &dyn Fn(&Parts) -> f64| {
        median(ours.iter().map(|p| Duration::from_secs_f64(f(p))).collect()).as_secs_f64()
    };
    let peerlite = Parts {
        total_s: med(&|p| p.total_s),
        verify_s: med(&|p| p.verify_s),
        keep_s: med(&|p| p.keep_s),
        copy_s: med(&|p| p.copy_s),
        checkpoint_s: med(&|p| p.checkpoint_s),
        other_s: med(&|p| p.other_s),
    };
    let shell = median(theirs.iter().map(|s| Duration::from_secs_f64(*s)).collect());
    let mut ratios: Vec<f64> = samples.iter().map(|(p, s, _)| p / s.max(1e-9)).collect();
    ratios.sort_by(f64::total_cmp);
    Ok(RestoreResult {
        rounds,
        peerlite,
        sqlite3_restore_s: shell.as_secs_f64(),
        ratio: ratios[ratios.len() / 2],
        samples,
        paths,
    })
}

impl RestoreResult {
    /// The lines `peerlite bench backup` prints.
    pub fn print(&self) {
        let p = &self.peerlite;
        println!(
            "\nrestore (median of {} rounds, order alternating; each from the same backup, caches warmed, sync before and after):",
            self.rounds
        );
        println!(
            "  peerlite restore {:.2} s = verify {:.2} s + keep pre-restore {:.2} s + copy {:.2} s + checkpoint {:.2} s + open/close/sync {:.2} s",
            p.total_s, p.verify_s, p.keep_s, p.copy_s, p.checkpoint_s, p.other_s
        );
        println!(
            "  sqlite3 .restore {:.2} s; ratio (median over rounds) {:.2}x",
            self.sqlite3_restore_s, self.ratio
        );
        let rounds: Vec<String> = self
            .samples
            .iter()
            .map(|(p, s, first)| {
                format!(
                    "{:.2}/{:.2} s{}",
                    p,
                    s,
                    if *first { " (peerlite first)" } else { "" }
                )
            })
            .collect();
        println!("  rounds (peerlite/.restore): {}", rounds.join(", "));
        let mut paths = self.paths.clone();
        paths.dedup();
        println!("  peerlite's restores {}", paths.join("; then "));
    }
}
