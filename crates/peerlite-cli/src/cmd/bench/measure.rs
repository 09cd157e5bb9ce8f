//! Timing helpers shared by the benchmarks.

use std::time::{Duration, Instant};

/// Times `f`.
pub fn time<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let start = Instant::now();
    let out = f()?;
    Ok((start.elapsed(), out))
}

/// Flushes every dirty page on the machine (`sync`, from another process), so that a timed
/// run does not compete with the writeback of the one before it.
pub fn sync_all() -> anyhow::Result<()> {
    let status = std::process::Command::new("sync")
        .status()
        .map_err(|e| anyhow::anyhow!("running sync: {e}"))?;
    anyhow::ensure!(status.success(), "sync: {status}");
    Ok(())
}

/// The median of some durations.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// One line of a comparison: a baseline and peerlite, and the target ratio.
#[derive(Debug, serde::Serialize)]
pub struct Comparison {
    pub workload: String,
    pub baseline: String,
    pub baseline_s: f64,
    pub peerlite_s: f64,
    pub ratio: f64,
    pub target: f64,
    pub met: bool,
}

impl Comparison {
    pub fn new(
        workload: String,
        baseline: &str,
        base: Duration,
        ours: Duration,
        target: f64,
    ) -> Self {
        let ratio = ours.as_secs_f64() / base.as_secs_f64().max(1e-9);
        Comparison {
            workload,
            baseline: baseline.to_owned(),
            baseline_s: base.as_secs_f64(),
            peerlite_s: ours.as_secs_f64(),
            ratio,
            target,
            met: ratio <= target,
        }
    }
}

/// Prints comparisons as a table.
pub fn print_table(rows: &[Comparison]) {
    let header = [
        "workload",
        "baseline",
        "baseline time",
        "peerlite time",
        "ratio",
        "target",
        "verdict",
    ]
    .map(String::from);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            vec![
                c.workload.clone(),
                c.baseline.clone(),
                format!("{:.3} s", c.baseline_s),
                format!("{:.3} s", c.peerlite_s),
                format!("{:.3}x", c.ratio),
                format!("<= {:.2}x", c.target),
                (if c.met { "met" } else { "MISSED" }).to_owned(),
            ]
        })
        .collect();
    println!("{}", crate::output::table(&header, &cells));
}

/// A deterministic permutation of 0..n (an LCG walk), so both sides see the same "random" order.
pub fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..n).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (state >> 33) as usize % (i + 1));
    }
    order
}
