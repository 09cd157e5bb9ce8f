//! `peerlite bench sync`: sync between two processes over loopback TLS. One device holds N
//! rows of ~100 bytes in a distributed table; a fresh device receives them (rows/s, and the
//! ratio to a local `INSERT … SELECT` copy of the same rows into a fresh file, the practical
//! ceiling, measured in the same run), with the receiving process's peak memory; then deltas
//! of updated rows (ms beside the same updates on the local copy, their floor; and the bytes
//! on the wire against the raw bytes of the changed rows, with and without compression). A
//! delta rewrites every non-key column of the rows it changes, so "the changed values" and
//! "the changed rows" are the same bytes.
//!
//! The receiver is a `peerlite serve` child of this executable; homes, trust and stores are
//! made by `peerlite device init`, `trust add`, `sql` and `distribute` children, the code
//! paths a user's commands take. The sender is a node in this process, built by the same
//! functions `peerlite sync` uses (`cmd::net`): that way a delta is timed on a live connection
//! (what auto-sync does), not with a process start, a store open and a TLS handshake in it,
//! and the wire bytes are read from the node's endpoint counters (`Endpoint::traffic`, TCP
//! payload bytes in both directions, TLS records included).

use std::path::{Path, PathBuf};
use std::time::Duration;

use peerlite::{RdbStore, Value, ValuesBucket};
use peerlite_net::Home;

use super::measure::{median, sync_all, time};
use crate::Global;
use crate::cmd::net::{self, NodeArgs};
use crate::cmd::target::{Location, Opened};

/// Arguments of `peerlite bench sync`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rows of the initial sync.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Rows updated by each delta.
    #[arg(long, default_value_t = 1000)]
    delta: usize,
    /// Deltas measured per setting (with and without compression); the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Rows per sync batch, on both sides.
    #[arg(long, value_name = "ROWS", default_value_t = peerlite::sync::DEFAULT_BATCH_ROWS)]
    batch_rows: usize,
    /// Work in DIR (created; must be empty) and keep it, instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

const TABLE: &str = "account";
const CREATE: &str = "CREATE TABLE account(id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, city TEXT, age INTEGER, balance INTEGER, note TEXT)";
/// The store's file name: its logical name on both devices.
const DB: &str = "bench.db";
/// Rows inserted per `batch_insert` while loading the sender (bounds the loader's memory).
const LOAD_CHUNK: usize = 50_000;
/// Generous bound on any one sync (a guard, not a measure).
const SYNC_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long the receiver may take to start or stop before the bench gives up on it.
const CHILD_PATIENCE: Duration = Duration::from_secs(60);

const FIRST: [&str; 8] = [
    "Lisa", "Wang", "Aiko", "Pedro", "Fatima", "Olaf", "Chen", "Maria",
];
const LAST: [&str; 8] = [
    "Zhang", "Moreau", "Tanaka", "Silva", "Haddad", "Berg", "Li", "Rossi",
];
const CITIES: [&str; 8] = [
    "Hangzhou", "Lyon", "Osaka", "Porto", "Rabat", "Bergen", "Chengdu", "Milan",
];

/// Row `i` of generation `generation` (0 is the loaded row; a delta writes generation
/// `round + 1` over every non-key column, values of the same shape): ~100 bytes of values.
fn row(i: usize, generation: usize) -> Vec<(&'static str, Value)> {
    let k = i + generation * 7;
    let (first, last, city) = (FIRST[k % 8], LAST[(k / 8) % 8], CITIES[(k / 64) % 8]);
    vec![
        ("id", Value::Integer(i as i64 + 1)),
        ("name", Value::Text(format!("{first} {last}"))),
        (
            "email",
            Value::Text(format!(
                "{}.{}{i}@example.com",
                first.to_lowercase(),
                last.to_lowercase()
            )),
        ),
        ("city", Value::Text(city.to_owned())),
        ("age", Value::Integer(18 + (k % 60) as i64)),
        (
            "balance",
            Value::Integer(((i * 7919 + generation * 104_729) % 10_000_000) as i64),
        ),
        (
            "note",
            Value::Text(format!(
                "order {:08} shipped to {city}, revision {generation}",
                (i * 31 + generation) % 100_000_000
            )),
        ),
    ]
}

/// The raw size of a value: text and blob bytes, 8 for numbers, 0 for NULL.
fn value_size(v: &Value) -> u64 {
    match v {
        Value::Null => 0,
        Value::Text(t) => t.len() as u64,
        Value::Blob(b) => b.len() as u64,
        _ => 8,
    }
}

fn bucket_of(values: Vec<(&'static str, Value)>) -> ValuesBucket {
    let mut bucket = ValuesBucket::with_capacity(values.len());
    for (column, value) in values {
        bucket.set(column, value);
    }
    bucket
}

macro_rules! os {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($a)),*] };
}

mod processes;
mod report;

use processes::{Device, Receiver, Sender, cli};
use report::{Delta, Report};
/// Loads `n` rows into the sender's store (in chunks, each its own transaction).
fn load(global: &Global, device: &Device, n: usize) -> anyhow::Result<()> {
    let home = Home::open(&device.home).map_err(net::fail)?;
    let opened = net::open_for_node(global, &Location::Db(device.db.clone()), &home, false)?;
    let Opened::Rdb(store) = opened else {
        anyhow::bail!("the sender's store is not relational");
    };
    let mut start = 0;
    while start < n {
        let end = (start + LOAD_CHUNK).min(n);
        let rows: Vec<ValuesBucket> = (start..end).map(|i| bucket_of(row(i, 0))).collect();
        let inserted = store.batch_insert(TABLE, &rows)?;
        anyhow::ensure!(
            inserted == end - start,
            "inserted {inserted} of {}",
            end - start
        );
        start = end;
    }
    store.checkpoint()?;
    store.close()?;
    Ok(())
}

/// The ceiling: the same rows copied by `INSERT … SELECT` from the sender's file (attached)
/// into a fresh database file with the same table, in one transaction, with the pragmas
/// peerlite uses (WAL, synchronous=FULL).
fn local_copy(
    root: &Path,
    source: &Path,
    n: usize,
) -> anyhow::Result<(Duration, rusqlite::Connection)> {
    let path = root.join("copy.db");
    let conn = rusqlite::Connection::open(&path)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous=FULL;")?;
    conn.execute_batch(CREATE)?;
    conn.execute(
        "ATTACH DATABASE ?1 AS src",
        [source.to_string_lossy().as_ref()],
    )?;
    sync_all()?;
    let (t, copied) = time(|| {
        let tx = conn.unchecked_transaction()?;
        let copied = tx.execute(
            &format!("INSERT INTO main.{TABLE} SELECT * FROM src.{TABLE}"),
            [],
        )?;
        tx.commit()?;
        Ok(copied)
    })?;
    anyhow::ensure!(copied == n, "the local copy moved {copied} of {n} rows");
    conn.execute_batch("DETACH DATABASE src")?;
    Ok((t, conn))
}

fn update_sql() -> String {
    format!(
        "UPDATE {TABLE} SET name = ?1, email = ?2, city = ?3, age = ?4, balance = ?5, note = ?6 WHERE id = ?7"
    )
}

/// The floor of a delta: the same updates applied to the local copy (no sync metadata), in
/// one transaction.
fn local_update(conn: &rusqlite::Connection, updates: &[Vec<Value>]) -> anyhow::Result<Duration> {
    let plain = |v: &Value| match v {
        Value::Integer(i) => rusqlite::types::Value::Integer(*i),
        Value::Text(t) => rusqlite::types::Value::Text(t.clone()),
        _ => rusqlite::types::Value::Null,
    };
    let (t, ()) = time(|| {
        let tx = conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(&update_sql())?;
            for params in updates {
                let params: Vec<rusqlite::types::Value> = params.iter().map(plain).collect();
                stmt.execute(rusqlite::params_from_iter(params))?;
            }
        }
        tx.commit()?;
        Ok(())
    })?;
    Ok(t)
}

/// What a table holds, to compare two devices: rows, and sums over every column.
fn digest(path: &Path, table: &str) -> anyhow::Result<(i64, String)> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let q = format!(
        "SELECT count(*), sum(id), sum(length(name)), sum(length(email)), sum(length(city)), sum(age), sum(balance), sum(length(note)), max(note) FROM \"{}\"",
        table.replace('"', "\"\"")
    );
    let row = conn.query_row(&q, [], |r| {
        let mut parts = Vec::new();
        for i in 1..9 {
            let v: rusqlite::types::Value = r.get(i)?;
            parts.push(format!("{v:?}"));
        }
        Ok((r.get::<_, i64>(0)?, parts.join(",")))
    })?;
    Ok(row)
}

/// Updates `changed` rows spread over the table (every non-key column, generation
/// `generation`) in one transaction; returns the raw bytes of the changed rows and the
/// statements' parameters.
fn change(
    store: &RdbStore,
    n: usize,
    changed: usize,
    generation: usize,
) -> anyhow::Result<(u64, Vec<Vec<Value>>)> {
    let stride = (n / changed.max(1)).max(1);
    let sql = update_sql();
    let mut raw = 0;
    let mut updates = Vec::with_capacity(changed);
    store.transaction(|tx| {
        for k in 0..changed {
            let i = (k * stride + generation) % n;
            let values: Vec<Value> = row(i, generation).into_iter().map(|(_, v)| v).collect();
            raw += values.iter().map(value_size).sum::<u64>();
            let mut params = values[1..].to_vec();
            params.push(values[0].clone());
            tx.execute(&sql, &params)?;
            updates.push(params);
        }
        Ok(())
    })?;
    Ok((raw, updates))
}

/// Runs `runs` deltas; `generation` counts the deltas made so far (each writes new values).
fn deltas(
    sender: &Sender,
    copy: &rusqlite::Connection,
    n: usize,
    changed: usize,
    runs: usize,
    generation: &mut usize,
    compressed: bool,
) -> anyhow::Result<Delta> {
    let mut samples = Vec::new();
    let mut wires = Vec::new();
    let mut raws = Vec::new();
    let mut floors = Vec::new();
    for _ in 0..runs.max(1) {
        *generation += 1;
        let (raw, updates) = change(&sender.store, n, changed, *generation)?;
        let (t, wire, result) = sender.push()?;
        anyhow::ensure!(
            result.sent == changed as u64,
            "the delta sent {} of {changed} rows",
            result.sent
        );
        floors.push(local_update(copy, &updates)?);
        samples.push(t);
        wires.push(wire);
        raws.push(raw);
    }
    // The wire and raw bytes of the median run.
    let mid = median(samples.clone());
    let at = samples.iter().position(|s| *s == mid).unwrap_or(0);
    let (wire, raw) = (wires[at], raws[at]);
    Ok(Delta {
        compressed,
        ms: mid.as_secs_f64() * 1000.0,
        samples_ms: samples.iter().map(|s| s.as_secs_f64() * 1000.0).collect(),
        local_update_ms: median(floors).as_secs_f64() * 1000.0,
        wire_bytes: wire.total(),
        wire_sent: wire.sent,
        wire_received: wire.received,
        raw_bytes: raw,
        wire_over_raw: wire.total() as f64 / raw.max(1) as f64,
    })
}

/// Runs `peerlite bench sync`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let n = args.rows.max(1);
    let changed = args.delta.clamp(1, n);
    let temp;
    let root = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            anyhow::ensure!(
                std::fs::read_dir(dir)?.next().is_none(),
                "{} is not empty: give --dir an empty or new directory",
                dir.display()
            );
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };

    eprintln!("devices, trust and stores (peerlite device init, trust add, sql, distribute)…");
    let sender_dev = Device::new(&root, "sender")?;
    let receiver_dev = Device::new(&root, "receiver")?;
    receiver_dev.trusts(&sender_dev, None)?;
    eprintln!("loading {n} rows into the sender…");
    load(global, &sender_dev, n)?;
    eprintln!("local INSERT … SELECT copy of {n} rows (the ceiling)…");
    let (copy, copy_db) = local_copy(&root, &sender_dev.db, n)?;

    let receiver = Receiver::start(&receiver_dev, &root, args.batch_rows)?;
    sender_dev.trusts(&receiver_dev, Some(&receiver.addr))?;
    let compressed_args = NodeArgs {
        batch_rows: args.batch_rows,
        no_compression: false,
    };
    let sender = Sender::start(global, &sender_dev, &receiver_dev.id, &compressed_args)?;

    eprintln!(
        "initial sync of {n} rows to {} (pid {})…",
        receiver.addr,
        receiver.pid().unwrap_or(0)
    );
    sync_all()?;
    let (initial, initial_wire, result) = sender.push()?;
    anyhow::ensure!(
        result.sent == n as u64,
        "the initial sync sent {} of {n} rows",
        result.sent
    );
    let rss_after_initial = receiver.peak_rss();

    eprintln!("deltas of {changed} rows, zstd…");
    let mut generation = 0;
    // The first delta meets what the bulk left behind (the receiver's log to checkpoint): shown
    // apart, as in `bench changes`.
    let first = deltas(&sender, &copy_db, n, changed, 1, &mut generation, true)?;
    let zstd = deltas(
        &sender,
        &copy_db,
        n,
        changed,
        args.runs,
        &mut generation,
        true,
    )?;
    sender.stop();

    eprintln!("deltas of {changed} rows, no compression…");
    let plain_args = NodeArgs {
        batch_rows: args.batch_rows,
        no_compression: true,
    };
    let sender = Sender::start(global, &sender_dev, &receiver_dev.id, &plain_args)?;
    let plain = deltas(
        &sender,
        &copy_db,
        n,
        changed,
        args.runs,
        &mut generation,
        false,
    )?;
    sender.stop();

    let peak = receiver.peak_rss();
    receiver.stop()?;
    // A device-collaboration table keeps each peer's rows in a table of their own.
    let received = cli(os![
        "table-name",
        &receiver_dev.db,
        "--device",
        &sender_dev.id,
        "--table",
        TABLE
    ])?;
    let (sent_rows, sent_digest) = digest(&sender_dev.db, TABLE)?;
    let (got_rows, got_digest) = digest(&receiver_dev.db, received.trim())?;
    anyhow::ensure!(
        got_rows == n as i64 && sent_rows == got_rows && sent_digest == got_digest,
        "the receiver holds {got_rows} rows ({got_digest}), the sender {sent_rows} ({sent_digest})"
    );

    let report = Report {
        n,
        changed,
        runs: args.runs.max(1),
        initial,
        initial_wire,
        copy,
        rss_after_initial,
        peak,
        receiver_rows: got_rows,
        first,
        zstd,
        plain,
    };
    if global.json {
        report.print_json();
    } else {
        report.print_table();
    }
    Ok(())
}
