//! `peerlite bench changes`: what change capture costs and how fast sync moves rows.
//! 1,000,000 inserts and 1,000,000 updates into a plain table vs the same table made
//! distributed (ratios); a full in-memory sync of those rows between two devices (rows/s);
//! a delta sync of 1,000 changed rows into the synced million (ms, median of 9 after an idle
//! checkpoint; the first one right after the bulk sync is shown too); and the clock's size as
//! a share of the data's.

use std::path::Path;
use std::time::Duration;

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::sync::{SyncMode, sync_in_memory};
use peerlite::{RdbStore, StoreConfig, Value, ValuesBucket, bucket};

use super::measure::{median, sync_all, time};
use crate::Global;

/// Arguments of `peerlite bench changes`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rows per workload.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Runs of the insert and update workloads; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Rows changed for the delta sync.
    #[arg(long, default_value_t = 1000)]
    delta: usize,
}

/// Settled delta syncs measured (the median is reported).
const DELTA_ROUNDS: usize = 9;

const CREATE: &str =
    "CREATE TABLE emp(id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER, salary REAL)";

fn fresh(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn open(path: &Path, device: &str, distributed: bool) -> anyhow::Result<RdbStore> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    fresh(path);
    let store = RdbStore::open(StoreConfig::new(path).device_id(device))?;
    store.execute(CREATE, &[])?;
    if distributed {
        store.set_distributed_tables(
            &["emp"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )?;
    }
    Ok(store)
}

fn rows(n: usize) -> Vec<ValuesBucket> {
    (0..n)
        .map(|i| bucket! { "id" => i as i64 + 1, "name" => format!("employee-{i:07}"), "age" => 20 + (i % 45) as i64, "salary" => 1000.0 + i as f64 * 0.5 })
        .collect()
}

fn update_all(store: &RdbStore, n: usize) -> anyhow::Result<Duration> {
    let (t, ()) = time(|| {
        store.transaction(|tx| {
            for i in 0..n {
                tx.execute(
                    "UPDATE emp SET age = ?1, salary = ?2 WHERE id = ?3",
                    &[
                        Value::Integer(30 + (i % 7) as i64),
                        Value::Real(2000.0 + i as f64),
                        Value::Integer(i as i64 + 1),
                    ],
                )?;
            }
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(t)
}

fn pages(store: &RdbStore) -> anyhow::Result<i64> {
    let rs = store.query_sql("PRAGMA page_count", &[])?;
    let count = rs
        .rows()?
        .next()
        .and_then(|r| {
            if let Value::Integer(n) = r[0] {
                Some(n)
            } else {
                None
            }
        })
        .unwrap_or(0);
    Ok(count)
}

/// Runs `peerlite bench changes`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let n = args.rows;
    let data = rows(n);
    let (mut plain_ins, mut dist_ins, mut plain_upd, mut dist_upd) =
        (vec![], vec![], vec![], vec![]);
    for run in 0..args.runs.max(1) {
        eprintln!("run {}/{}: inserts and updates…", run + 1, args.runs.max(1));
        for distributed in [false, true] {
            let store = open(&dir.path().join("w.db"), "bench", distributed)?;
            sync_all()?;
            let (ins, inserted) = time(|| Ok(store.batch_insert("emp", &data)?))?;
            anyhow::ensure!(inserted == n, "inserted {inserted} of {n}");
            store.checkpoint()?;
            sync_all()?;
            let upd = update_all(&store, n)?;
            eprintln!(
                "  {}: insert {:.3} s, update {:.3} s",
                if distributed { "distributed" } else { "plain" },
                ins.as_secs_f64(),
                upd.as_secs_f64()
            );
            if distributed {
                dist_ins.push(ins);
                dist_upd.push(upd);
            } else {
                plain_ins.push(ins);
                plain_upd.push(upd);
            }
            store.close()?;
        }
    }

    eprintln!("full sync of {n} rows between two devices…");
    let phone = open(&dir.path().join("phone/emp.db"), "phone", true)?;
    phone.batch_insert("emp", &data)?;
    let laptop = open(&dir.path().join("laptop/emp.db"), "laptop", true)?;
    phone.checkpoint()?;
    sync_all()?;
    let (full, (sent, got)) = time(|| Ok(sync_in_memory(&phone, &laptop, SyncMode::Push, None)?))?;
    anyhow::ensure!(
        sent.status == 0 && got.received == n as u64,
        "full sync moved {} of {n} rows ({sent:?})",
        got.received
    );

    // Deltas: 1000 rows spread over the table, different ones each round. The first right
    // after the bulk sync also pays for checkpointing the bulk's write-ahead log; then both
    // stores checkpoint (as an app does when idle) and the median of the next rounds is the
    // settled figure.
    let delta_round = |round: usize| -> anyhow::Result<Duration> {
        let changed = args.delta.min(n);
        let stride = (n / changed.max(1)).max(1);
        phone.transaction(|tx| {
            for i in 0..changed {
                let id = ((i * stride + round) % n) as i64 + 1;
                tx.execute(
                    "UPDATE emp SET salary = salary + 1 WHERE id = ?1",
                    &[Value::Integer(id)],
                )?;
            }
            Ok(())
        })?;
        let (t, (_, got)) = time(|| Ok(sync_in_memory(&phone, &laptop, SyncMode::Push, None)?))?;
        anyhow::ensure!(
            got.received == changed as u64,
            "delta sync moved {} of {changed} rows",
            got.received
        );
        Ok(t)
    };
    eprintln!("delta sync of {} changed rows…", args.delta);
    let first_delta = delta_round(0)?;
    phone.checkpoint()?;
    laptop.checkpoint()?;
    sync_all()?;
    let deltas = (1..=DELTA_ROUNDS)
        .map(delta_round)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let delta = median(deltas);

    eprintln!("clock size…");
    let plain = open(&dir.path().join("size.db"), "size", false)?;
    plain.batch_insert("emp", &data)?;
    let before = pages(&plain)?;
    plain.set_distributed_tables(
        &["emp"],
        DistributedType::Device,
        &DistributedConfig::default(),
    )?;
    let after = pages(&plain)?;
    let share = (after - before) as f64 / before.max(1) as f64;

    let ins_ratio =
        median(dist_ins.clone()).as_secs_f64() / median(plain_ins.clone()).as_secs_f64().max(1e-9);
    let upd_ratio =
        median(dist_upd.clone()).as_secs_f64() / median(plain_upd.clone()).as_secs_f64().max(1e-9);
    let rate = n as f64 / full.as_secs_f64().max(1e-9);
    let delta_ms = delta.as_secs_f64() * 1000.0;
    let first_delta_ms = first_delta.as_secs_f64() * 1000.0;
    if global.json {
        println!(
            "{}",
            serde_json::json!({
                "bench": "changes", "rows": n, "runs": args.runs,
                "insert": {"plain_s": median(plain_ins).as_secs_f64(), "distributed_s": median(dist_ins).as_secs_f64(), "ratio": ins_ratio},
                "update": {"plain_s": median(plain_upd).as_secs_f64(), "distributed_s": median(dist_upd).as_secs_f64(), "ratio": upd_ratio},
                "full_sync": {"seconds": full.as_secs_f64(), "rows_per_s": rate},
                "delta_sync": {"rows": args.delta, "ms": delta_ms, "first_after_bulk_ms": first_delta_ms},
                "clock_share_of_data": share,
            })
        );
        return Ok(());
    }
    println!(
        "peerlite bench changes: {n} rows (emp: integer key, text, integer, real), device-collaboration table, median of {} runs",
        args.runs.max(1)
    );
    let header = [
        "workload",
        "plain",
        "distributed",
        "result",
        "target",
        "verdict",
    ]
    .map(String::from);
    let verdict = |ok: bool| (if ok { "met" } else { "MISSED" }).to_owned();
    let cells = vec![
        vec![
            format!("insert {n} rows"),
            format!("{:.3} s", median(plain_ins).as_secs_f64()),
            format!("{:.3} s", median(dist_ins).as_secs_f64()),
            format!("{ins_ratio:.2}x"),
            "<= 1.5x".into(),
            verdict(ins_ratio <= 1.5),
        ],
        vec![
            format!("update {n} rows"),
            format!("{:.3} s", median(plain_upd).as_secs_f64()),
            format!("{:.3} s", median(dist_upd).as_secs_f64()),
            format!("{upd_ratio:.2}x"),
            "<= 2.0x".into(),
            verdict(upd_ratio <= 2.0),
        ],
        vec![
            format!("full sync {n} rows"),
            "-".into(),
            format!("{:.3} s", full.as_secs_f64()),
            format!("{rate:.0} rows/s"),
            ">= 250000 rows/s".into(),
            verdict(rate >= 250_000.0),
        ],
        vec![
            format!("delta sync {} rows", args.delta),
            "-".into(),
            "-".into(),
            format!("{delta_ms:.1} ms"),
            "<= 50 ms".into(),
            verdict(delta_ms <= 50.0),
        ],
        vec![
            "  the first, before checkpoint".into(),
            "-".into(),
            "-".into(),
            format!("{first_delta_ms:.1} ms"),
            "-".into(),
            "-".into(),
        ],
        vec![
            "clock size / data size".into(),
            format!("{before} pages"),
            format!("+{} pages", after - before),
            format!("{:.0}%", share * 100.0),
            "<= 60%".into(),
            verdict(share <= 0.6),
        ],
    ];
    println!("{}", crate::output::table(&header, &cells));
    Ok(())
}
