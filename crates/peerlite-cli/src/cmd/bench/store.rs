//! `peerlite bench store`: 1,000,000 inserts, KV puts and KV gets through peerlite vs raw
//! rusqlite (one prepared statement in one transaction), same pragmas on both sides. Input rows
//! are built before the clock starts on both sides, so the ratio is the library's overhead.
//! Writes are timed until their pages are checkpointed into the database file on both sides.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use peerlite::{Entry, KvManager, Options, RdbStore, StoreConfig, ValuesBucket, bucket};
use rusqlite::Connection;

use super::measure::{Comparison, median, print_table, shuffled, time};
use crate::Global;

/// Arguments of `peerlite bench store`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rows (and KV entries) per workload.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Runs per side; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

const CREATE: &str =
    "CREATE TABLE emp(id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER, salary REAL)";

fn raw_connection(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
    Ok(conn)
}

fn fresh(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

struct Data {
    rows: Vec<(i64, String, i64, f64)>,
    buckets: Vec<ValuesBucket>,
    keys: Vec<String>,
    entries: Vec<Entry>,
    get_order: Vec<usize>,
}

fn data(n: usize) -> Data {
    let rows: Vec<(i64, String, i64, f64)> = (0..n)
        .map(|i| {
            (
                i as i64 + 1,
                format!("employee-{i:07}"),
                20 + (i % 45) as i64,
                1000.0 + i as f64 * 0.5,
            )
        })
        .collect();
    let buckets = rows
        .iter()
        .map(|(id, name, age, salary)| bucket! { "id" => *id, "name" => name.clone(), "age" => *age, "salary" => *salary })
        .collect();
    let order = shuffled(n);
    let keys: Vec<String> = order
        .iter()
        .map(|i| format!("user:{i:08}:profile"))
        .collect();
    let entries = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Entry::new(k.clone(), format!("value-{i}-xxxxxxxx")))
        .collect();
    Data {
        rows,
        buckets,
        keys,
        entries,
        get_order: shuffled(n).into_iter().rev().collect(),
    }
}

fn raw_insert(path: &Path, d: &Data) -> anyhow::Result<Duration> {
    fresh(path);
    let mut conn = raw_connection(path)?;
    conn.execute_batch(CREATE)?;
    let (t, ()) = time(|| {
        let tx = conn.transaction()?;
        {
            let mut st =
                tx.prepare("INSERT INTO emp(id, name, age, salary) VALUES (?1, ?2, ?3, ?4)")?;
            for (id, name, age, salary) in &d.rows {
                st.execute(rusqlite::params![id, name, age, salary])?;
            }
        }
        tx.commit()?;
        Ok(())
    })?;
    Ok(t)
}

fn peerlite_insert(path: &Path, d: &Data) -> anyhow::Result<Duration> {
    fresh(path);
    let store = RdbStore::open(StoreConfig::new(path))?;
    store.execute(CREATE, &[])?;
    // Until the rows are in the database file: rusqlite's commit runs SQLite's automatic
    // checkpoint inline, peerlite's hands it to a thread, so the clock waits for it here.
    let (t, n) = time(|| {
        let n = store.batch_insert("emp", &d.buckets)?;
        store.checkpoint()?;
        Ok(n)
    })?;
    anyhow::ensure!(n == d.buckets.len(), "inserted {n} of {}", d.buckets.len());
    Ok(t)
}

fn raw_kv(path: &Path, d: &Data) -> anyhow::Result<(Duration, Duration)> {
    fresh(path);
    let mut conn = raw_connection(path)?;
    conn.execute_batch("CREATE TABLE kv(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID")?;
    let (put, ()) = time(|| {
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare(
                "INSERT INTO kv(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?;
            for e in &d.entries {
                st.execute(rusqlite::params![e.key, e.value.to_string()])?;
            }
        }
        tx.commit()?;
        Ok(())
    })?;
    let (get, found) = time(|| {
        let mut st = conn.prepare("SELECT value FROM kv WHERE key = ?1")?;
        let mut found = 0usize;
        for &i in &d.get_order {
            let v: String = st.query_row([&d.keys[i]], |r| r.get(0))?;
            found += usize::from(!v.is_empty());
        }
        Ok(found)
    })?;
    anyhow::ensure!(found == d.keys.len(), "raw get found {found}");
    Ok((put, get))
}

fn peerlite_kv(dir: &Path, d: &Data) -> anyhow::Result<(Duration, Duration)> {
    let manager = KvManager::at(dir)?;
    let _ = manager.delete_kv_store("bench");
    let store = manager.get_kv_store("bench", Options::default())?;
    // As for inserts: the put is done when its checkpoint is, and the gets start from the
    // same state as the raw side's (log checkpointed, no checkpoint running beside them).
    let (put, _) = time(|| {
        store.put_batch(&d.entries)?;
        Ok(store.checkpoint()?)
    })?;
    let (get, found) = time(|| {
        let mut found = 0usize;
        for &i in &d.get_order {
            let value = store.get(&d.keys[i])?;
            found += usize::from(matches!(value, peerlite::KvValue::String(s) if !s.is_empty()));
        }
        Ok(found)
    })?;
    anyhow::ensure!(found == d.keys.len(), "peerlite get found {found}");
    store.close()?;
    Ok((put, get))
}

/// Runs `peerlite bench store`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let n = args.rows;
    eprintln!("preparing {n} rows and entries…");
    let d = data(n);
    let (mut ri, mut pi, mut rp, mut pp, mut rg, mut pg) = Default::default();
    let push = |v: &mut Vec<Duration>, t| v.push(t);
    for run in 0..args.runs.max(1) {
        eprintln!("run {}/{}…", run + 1, args.runs.max(1));
        push(
            &mut ri,
            raw_insert(&dir.path().join("raw.db"), &d).context("raw insert")?,
        );
        push(
            &mut pi,
            peerlite_insert(&dir.path().join("peerlite.db"), &d).context("peerlite insert")?,
        );
        let (put, get) = raw_kv(&dir.path().join("raw_kv.db"), &d).context("raw kv")?;
        push(&mut rp, put);
        push(&mut rg, get);
        let (put, get) = peerlite_kv(&dir.path().join("kv"), &d).context("peerlite kv")?;
        push(&mut pp, put);
        push(&mut pg, get);
    }
    let rows = vec![
        Comparison::new(
            format!("insert {n} rows"),
            "rusqlite",
            median(ri),
            median(pi),
            1.10,
        ),
        Comparison::new(
            format!("kv put {n}"),
            "rusqlite",
            median(rp),
            median(pp),
            1.15,
        ),
        Comparison::new(
            format!("kv get {n}"),
            "rusqlite",
            median(rg),
            median(pg),
            1.15,
        ),
    ];
    if global.json {
        println!(
            "{}",
            serde_json::json!({ "bench": "store", "rows": n, "runs": args.runs, "results": rows })
        );
    } else {
        println!(
            "peerlite bench store: {n} rows, median of {} runs, same pragmas on both sides (WAL, synchronous=FULL)",
            args.runs
        );
        print_table(&rows);
    }
    Ok(())
}
