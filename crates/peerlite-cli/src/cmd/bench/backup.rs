//! `peerlite bench backup --size-mb 1024`: on one generated database, peerlite's verified
//! online backup against the `sqlite3` shell's `.backup`, `VACUUM INTO`, a plain `cp` and a
//! naive stepped backup (100 pages per step, a fresh read lock per step). Every method runs
//! twice: quiet, for the time ratios, and while a second process commits every 10 ms, for
//! restarts and the writer's commit latency (p50/p99) against the same writer with no backup
//! running. Then peerlite's verified restore against `.restore` (see `restore.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use peerlite::{BackupRequest, RdbStore, StoreConfig};
use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

use super::measure::sync_all;
use super::restore::{RestoreResult, compare};
use super::writer::{read_log, unix_ms};
use crate::Global;

/// Arguments of `peerlite bench backup`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Size of the generated database, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mb: u64,
    /// Work here instead of a temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Milliseconds between the second process's commits.
    #[arg(long, default_value_t = 10)]
    interval_ms: u64,
    /// Give up on a method that has not finished under load after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout_s: u64,
    /// The sqlite3 shell to compare with.
    #[arg(long, default_value = "sqlite3")]
    sqlite3: String,
    /// Quiet runs per method (round robin), and rounds of restores; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Compare restores only (skip the backup methods).
    #[arg(long)]
    restore_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Peerlite,
    ShellBackup,
    VacuumInto,
    Cp,
    Naive,
}

const METHODS: [Method; 5] = [
    Method::Peerlite,
    Method::ShellBackup,
    Method::VacuumInto,
    Method::Cp,
    Method::Naive,
];

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::Peerlite => "peerlite backup (verified)",
            Method::ShellBackup => "sqlite3 .backup",
            Method::VacuumInto => "VACUUM INTO",
            Method::Cp => "cp",
            Method::Naive => "naive stepped (100 pages/step)",
        }
    }
}

/// One run of one method.
#[derive(Debug, Clone, serde::Serialize)]
struct Run {
    seconds: f64,
    finished: bool,
    /// Restarts, where the method can report them.
    restarts: Option<u32>,
    /// When it ran (unix ms), to cut the writer's commits out of its log.
    window: (u64, u64),
}

struct Bench<'a> {
    db: PathBuf,
    out: PathBuf,
    store: RdbStore,
    args: &'a Args,
}

impl Bench<'_> {
    fn run(&self, method: Method, loaded: bool) -> anyhow::Result<Run> {
        // A method killed at its timeout leaves a hot journal that SQLite would roll back into
        // the next run's fresh file: clear everything that belongs to the output.
        for suffix in ["", ".manifest.json", "-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.out.display()));
        }
        let timeout = loaded.then(|| Duration::from_secs(self.args.timeout_s));
        // Every run starts with nothing left to write back from the one before, and ends when
        // its copy is durable: `.backup` and peerlite fsync their output, `cp` and VACUUM INTO
        // leave it to the kernel, so a final `sync` is part of every method's time.
        sync_all()?;
        let start_ms = unix_ms();
        let started = Instant::now();
        let (finished, restarts) = match method {
            Method::Peerlite => {
                let name = self
                    .out
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("peerlite.bak");
                let dir = self.out.parent().unwrap_or(Path::new("."));
                let info = self
                    .store
                    .backup_with(BackupRequest::named(name).dir(dir))?;
                (true, Some(info.restarts))
            }
            Method::ShellBackup => {
                let child = Command::new(&self.args.sqlite3)
                    .arg(&self.db)
                    .arg(format!(".backup '{}'", self.out.display()))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .with_context(|| format!("starting {}", self.args.sqlite3))?;
                (wait(child, timeout)?, None)
            }
            Method::VacuumInto => {
                let conn = Connection::open(&self.db)?;
                conn.execute("VACUUM INTO ?1", [self.out.display().to_string()])?;
                (true, None)
            }
            Method::Cp => {
                let child = Command::new("cp").arg(&self.db).arg(&self.out).spawn()?;
                (wait(child, timeout)?, None)
            }
            Method::Naive => {
                let (finished, restarts) = naive_backup(&self.db, &self.out, timeout)?;
                (finished, Some(restarts))
            }
        };
        if finished {
            sync_all()?;
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok(Run {
            seconds,
            finished,
            restarts,
            window: (start_ms, unix_ms()),
        })
    }
}

/// The second process; stopped (or killed) however the benchmark ends.
struct WriterGuard {
    child: std::process::Child,
    stop: PathBuf,
}

impl WriterGuard {
    fn stop(&mut self) -> anyhow::Result<()> {
        std::fs::write(&self.stop, b"stop")?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = std::fs::write(&self.stop, b"stop");
            std::thread::sleep(Duration::from_millis(200));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for a child, killing it at the timeout; true when it finished successfully.
fn wait(mut child: std::process::Child, timeout: Option<Duration>) -> anyhow::Result<bool> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{status}");
            }
            return Ok(true);
        }
        if timeout.is_some_and(|t| start.elapsed() > t) {
            child.kill()?;
            child.wait()?;
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a naive user writes: the backup API, 100 pages per step, no snapshot held between
/// steps. Every outside commit sends it back to page 1.
fn naive_backup(db: &Path, out: &Path, timeout: Option<Duration>) -> anyhow::Result<(bool, u32)> {
    let src = Connection::open(db)?;
    let mut dst = Connection::open(out)?;
    let backup = Backup::new(&src, &mut dst)?;
    let start = Instant::now();
    let (mut restarts, mut last) = (0u32, None);
    loop {
        let step = backup.step(100)?;
        let remaining = backup.progress().remaining;
        if matches!(step, StepResult::More) && last.is_some_and(|prev| remaining >= prev) {
            restarts += 1;
        }
        last = Some(remaining);
        match step {
            StepResult::Done => return Ok((true, restarts)),
            StepResult::More => {}
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
        if timeout.is_some_and(|t| start.elapsed() > t) {
            return Ok((false, restarts));
        }
    }
}

/// Builds a database of about `size_mb` MiB: rows of ~1 KB with an indexed key.
fn generate(db: &Path, size_mb: u64) -> anyhow::Result<u64> {
    let rows = size_mb * 1024 * 1024 / 1150;
    let conn = Connection::open(db)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.execute_batch(
        "CREATE TABLE data(id INTEGER PRIMARY KEY, k TEXT NOT NULL, payload BLOB NOT NULL);
         CREATE INDEX data_k ON data(k);",
    )?;
    let batch = 100_000u64;
    let mut done = 0;
    while done < rows {
        let n = batch.min(rows - done);
        conn.execute(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?1) \
             INSERT INTO data(k, payload) SELECT hex(randomblob(8)), randomblob(1000) FROM s",
            [n as i64],
        )?;
        done += n;
        eprint!(
            "\rgenerating: {} / {} MiB",
            done * 1150 / (1024 * 1024),
            size_mb
        );
    }
    eprintln!();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(rows)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// p50 and p99 (ms) of the commits that started inside `window`, and how many there were.
fn latency(log: &[(u64, u64)], window: (u64, u64)) -> (f64, f64, usize) {
    let mut inside: Vec<u64> = log
        .iter()
        .filter(|(at, _)| *at >= window.0 && *at <= window.1)
        .map(|(_, us)| *us)
        .collect();
    inside.sort_unstable();
    (
        percentile(&inside, 0.50),
        percentile(&inside, 0.99),
        inside.len(),
    )
}

/// Runs `peerlite bench backup`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let db = dir.join("bench.db");
    let _ = std::fs::remove_file(&db);
    let rows = generate(&db, args.size_mb)?;
    let store = RdbStore::open(StoreConfig::new(&db))?;
    // Warm the page cache from ANOTHER process: opening and closing the database file here
    // would drop every POSIX lock this process's SQLite connections hold on it.
    Command::new("cat")
        .arg(&db)
        .stdout(Stdio::null())
        .status()
        .context("warming the page cache")?;
    let source_path = dir.join("restore-source");
    let source = store.backup_with(BackupRequest::at_path(&source_path)?)?;
    if args.restore_only {
        drop(store);
        let restore = compare(&db, &source.path, &args.sqlite3, args.runs)?;
        if global.json {
            println!(
                "{}",
                serde_json::json!({ "bench": "backup", "size_mb": args.size_mb, "rows": rows, "restore": restore })
            );
        } else {
            println!(
                "peerlite bench backup --restore-only: {} MiB database ({rows} rows of ~1 KB, one index)",
                args.size_mb
            );
            restore.print();
        }
        return Ok(());
    }
    let bench = Bench {
        out: dir.join("out.bak"),
        db: db.clone(),
        store,
        args: &args,
    };

    // Quiet runs, round robin so that a noisy moment hits every method alike; the median.
    let mut samples: Vec<Vec<Run>> = vec![Vec::new(); METHODS.len()];
    for round in 0..args.runs.max(1) {
        for (i, m) in METHODS.iter().enumerate() {
            eprintln!("quiet {}/{}: {}", round + 1, args.runs.max(1), m.label());
            samples[i].push(bench.run(*m, false)?);
        }
    }
    let quiet: Vec<Run> = samples
        .into_iter()
        .map(|mut runs| {
            runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
            runs.swap_remove(runs.len() / 2)
        })
        .collect();

    let log_path = dir.join("writer.log");
    let stop = dir.join("writer.stop");
    let _ = std::fs::remove_file(&stop);
    let writer = Command::new(std::env::current_exe()?)
        .args(["bench", "writer"])
        .arg(&db)
        .args(["--interval-ms", &args.interval_ms.to_string(), "--out"])
        .arg(&log_path)
        .arg("--stop")
        .arg(&stop)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let mut writer = WriterGuard {
        child: writer,
        stop: stop.clone(),
    };
    std::thread::sleep(Duration::from_millis(500));
    eprintln!("baseline: the writer alone");
    let base_start = unix_ms();
    std::thread::sleep(Duration::from_secs(3));
    let baseline = (base_start, unix_ms());
    let mut loaded = Vec::new();
    for m in METHODS {
        eprintln!("under load: {}", m.label());
        loaded.push(bench.run(m, true)?);
        std::thread::sleep(Duration::from_millis(300));
    }
    writer.stop()?;
    let log = read_log(&log_path)?;

    // The restores run as processes, with nothing else holding the database.
    drop(bench);
    let restore = compare(&db, &source.path, &args.sqlite3, args.runs)?;
    report(
        global, &args, rows, &quiet, &loaded, &log, baseline, &restore,
    )
}

#[allow(clippy::too_many_arguments)]
fn report(
    global: &Global,
    args: &Args,
    rows: u64,
    quiet: &[Run],
    loaded: &[Run],
    log: &[(u64, u64)],
    baseline: (u64, u64),
    restore: &RestoreResult,
) -> anyhow::Result<()> {
    let shell = quiet[1].seconds.max(1e-9);
    let (b50, b99, bn) = latency(log, baseline);
    let ours = &quiet[0];
    let vacuum = &quiet[2];
    let ours_loaded = &loaded[0];
    let (_, o99, _) = latency(log, ours_loaded.window);
    let targets = [
        (
            "verified backup vs .backup (quiet)",
            ours.seconds / shell,
            "<= 1.5x",
            ours.seconds / shell <= 1.5,
        ),
        (
            "VACUUM INTO vs verified backup (quiet)",
            vacuum.seconds / ours.seconds.max(1e-9),
            ">= 2x",
            vacuum.seconds / ours.seconds.max(1e-9) >= 2.0,
        ),
        (
            "restarts of peerlite under load",
            f64::from(ours_loaded.restarts.unwrap_or(0)),
            "0",
            ours_loaded.restarts == Some(0),
        ),
        (
            "writer p99 during peerlite backup vs none",
            o99 / b99.max(1e-9),
            "<= 2x",
            o99 / b99.max(1e-9) <= 2.0,
        ),
        (
            "verified restore vs .restore (median ratio)",
            restore.ratio,
            "<= 1.5x",
            restore.ratio <= 1.5,
        ),
    ];
    if global.json {
        let methods: Vec<serde_json::Value> = METHODS
            .iter()
            .zip(quiet.iter().zip(loaded))
            .map(|(m, (q, l))| {
                let (p50, p99, n) = latency(log, l.window);
                serde_json::json!({ "method": m.label(), "quiet": q, "ratio_vs_shell_backup": q.seconds / shell,
                    "loaded": l, "writer_p50_ms": p50, "writer_p99_ms": p99, "writer_commits": n })
            })
            .collect();
        let t: Vec<serde_json::Value> =
            targets.iter().map(|(w, v, t, met)| serde_json::json!({"what": w, "value": v, "target": t, "met": met})).collect();
        println!(
            "{}",
            serde_json::json!({ "bench": "backup", "size_mb": args.size_mb, "rows": rows, "interval_ms": args.interval_ms,
                "baseline": {"writer_p50_ms": b50, "writer_p99_ms": b99, "writer_commits": bn},
                "methods": methods, "restore": restore, "targets": t })
        );
        return Ok(());
    }
    println!(
        "peerlite bench backup: {} MiB database ({rows} rows of ~1 KB, one index); every time is to a durable copy (sync before and after);\nquiet: median of {} runs; under load: a second process commits every {} ms",
        args.size_mb,
        args.runs.max(1),
        args.interval_ms
    );
    let header = [
        "method",
        "quiet",
        "vs .backup",
        "under load",
        "restarts",
        "writer p50",
        "writer p99",
        "commits",
    ]
    .map(String::from);
    let mut cells: Vec<Vec<String>> = vec![vec![
        "no backup (writer alone)".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        format!("{b50:.2} ms"),
        format!("{b99:.2} ms"),
        bn.to_string(),
    ]];
    for (m, (q, l)) in METHODS.iter().zip(quiet.iter().zip(loaded)) {
        let (p50, p99, n) = latency(log, l.window);
        cells.push(vec![
            m.label().into(),
            format!("{:.2} s", q.seconds),
            format!("{:.2}x", q.seconds / shell),
            if l.finished {
                format!("{:.2} s", l.seconds)
            } else {
                format!("gave up after {:.0} s", l.seconds)
            },
            l.restarts.map_or("n/a".into(), |r| r.to_string()),
            format!("{p50:.2} ms"),
            format!("{p99:.2} ms"),
            n.to_string(),
        ]);
    }
    println!("{}", crate::output::table(&header, &cells));
    restore.print();
    println!();
    let header = ["target", "value", "goal", "verdict"].map(String::from);
    let cells: Vec<Vec<String>> = targets
        .iter()
        .map(|(w, v, t, met)| {
            vec![
                (*w).into(),
                format!("{v:.2}"),
                (*t).into(),
                (if *met { "met" } else { "MISSED" }).into(),
            ]
        })
        .collect();
    println!("{}", crate::output::table(&header, &cells));
    Ok(())
}
