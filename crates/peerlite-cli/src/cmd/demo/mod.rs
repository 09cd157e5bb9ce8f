//! `peerlite demo`: the whole story, step by step, in a temporary directory.

mod network;
mod reset;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, ensure};
use peerlite::{
    ColumnMapping, Entry, KvManager, KvValue, Migration, Migrations, Options, RdbPredicates,
    RdbStore, StoreConfig, SubscribeType, Value, ValuesBucket, bucket,
};

use crate::signals::TempDir;
use crate::{Global, UsageError};

/// Arguments of `peerlite demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Work in this directory, which must be new or empty, and keep the files there (without
    /// it, a temporary directory removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rows to put in the demo table (0 to 100000).
    #[arg(long, default_value_t = 1000)]
    rows: usize,
}

/// The most rows the demo takes: enough to show every step on a sizeable table, few enough
/// that the demo ends in seconds.
const MAX_ROWS: usize = 100_000;

/// Prints numbered steps: as text, or with `--json` one JSON object per step on a line
/// (`{"step": N, "title": …, "lines": […]}`).
pub(super) struct Story {
    step: usize,
    json: bool,
    title: String,
    lines: Vec<String>,
}

impl Story {
    fn new(json: bool) -> Story {
        Story {
            step: 0,
            json,
            title: String::new(),
            lines: Vec::new(),
        }
    }

    pub(super) fn step(&mut self, title: &str) {
        self.flush();
        self.step += 1;
        if self.json {
            self.title = title.to_owned();
        } else {
            println!("\n[{}] {title}", self.step);
        }
    }

    pub(super) fn say(&mut self, line: impl AsRef<str>) {
        if self.json {
            self.lines.push(line.as_ref().to_owned());
        } else {
            println!("    {}", line.as_ref());
        }
    }

    /// Prints the step collected for `--json`.
    fn flush(&mut self) {
        if self.json && self.step > 0 {
            super::print_json(&serde_json::json!({
                "step": self.step,
                "title": std::mem::take(&mut self.title),
                "lines": std::mem::take(&mut self.lines),
            }));
        }
    }
}

/// Runs `peerlite demo`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    if args.rows > MAX_ROWS {
        return Err(UsageError(format!(
            "--rows must be at most {MAX_ROWS}, was {}",
            args.rows
        ))
        .into());
    }
    if let Some(dir) = &args.dir {
        check_dir(dir)?;
    }
    // Every temporary file of the demo (the simulation's too) lives in here, removed at the
    // end, on Ctrl-C, on SIGTERM and at a closed pipe.
    let scratch = TempDir::new("peerlite-demo-").map_err(|e| peerlite::Error::Io {
        op: "creating a temporary directory in",
        path: std::env::temp_dir(),
        source: e,
    })?;
    scratch.hold_all_temporary_files();
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| peerlite::Error::Io {
                op: "creating the demo directory",
                path: d.clone(),
                source: e,
            })?;
            d.clone()
        }
        None => scratch.path().to_path_buf(),
    };
    let mut story = Story::new(global.json);
    let place = match &args.dir {
        Some(d) => format!("{} (kept afterwards)", d.display()),
        None => {
            "a temporary directory, removed at the end (keep the files with --dir DIR)".to_owned()
        }
    };
    if !global.json {
        println!("peerlite demo — working in {place}");
    }
    let db = dir.join("RdbTest.db");
    versioned_open(&mut story, &db, args.rows)?;
    observers_and_predicates(&mut story, &db)?;
    backup_and_restore(&mut story, &db)?;
    corruption_and_repair(&mut story, &db)?;
    key_value(&mut story, &dir)?;
    encryption(&mut story, &dir)?;
    sync::story(&mut story, &dir.join("devices"))?;
    network::story(&mut story, &dir.join("network"))?;
    reset::story(&mut story, &dir.join("reset"))?;
    story.flush();
    let kept = args.dir.as_ref().map(|d| d.display().to_string());
    if global.json {
        super::print_json(&serde_json::json!({ "done": true, "dir": kept }));
    } else {
        match kept {
            Some(d) => {
                println!("\ndone: every step above ran against real SQLite files, kept in {d}")
            }
            None => println!(
                "\ndone: every step above ran against real SQLite files in a temporary directory, now removed (run with --dir DIR to keep them)"
            ),
        }
    }
    Ok(())
}

/// `--dir` must be a new or empty directory: the demo never mixes its files with others.
fn check_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_none()) {
        Ok(false) => Err(UsageError(format!(
            "--dir {} is not empty: give a new or empty directory for the demo's files",
            dir.display()
        ))
        .into()),
        Ok(true) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if dir.exists() && !dir.is_dir() => Err(UsageError(format!(
            "--dir {} is a file: give a new or empty directory",
            dir.display()
        ))
        .into()),
        Err(e) => Err(peerlite::Error::Io {
            op: "reading the demo directory",
            path: dir.to_path_buf(),
            source: e,
        }
        .into()),
    }
}

/// The error of a step that must fail; its success is the demo's failure, never a panic.
fn must_fail<T>(result: peerlite::Result<T>, what: &str) -> anyhow::Result<peerlite::Error> {
    match result {
        Ok(_) => Err(anyhow::anyhow!("demo: {what}, but it succeeded")),
        Err(e) => Ok(e),
    }
}

const V1: &str = "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER, SALARY REAL, CODES BLOB);
CREATE INDEX employee_name ON EMPLOYEE(NAME);
CREATE TABLE AUDIT (EMPLOYEE_ID INTEGER, AT TEXT);
CREATE TRIGGER employee_audit AFTER UPDATE ON EMPLOYEE BEGIN INSERT INTO AUDIT VALUES (new.ID, 'update'); END;";

const V2: &str = "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER, \
                  SALARY_CENTS INTEGER NOT NULL DEFAULT 0, EMAIL TEXT NOT NULL DEFAULT '')";

fn migrations_v2() -> Migrations {
    Migrations::new()
        .step(Migration::sql("0001_employee", V1))
        .step(Migration::closure("0002_salary_in_cents", |tx| {
            tx.rebuild_table(
                "EMPLOYEE",
                V2,
                &ColumnMapping::new().expr("SALARY_CENTS", "CAST(round(SALARY * 100) AS INTEGER)"),
            )?;
            Ok(())
        }))
}

fn count(store: &RdbStore, sql: &str) -> anyhow::Result<i64> {
    let mut rs = store.query_sql(sql, &[])?;
    ensure!(rs.go_to_first_row()?, "no row from {sql}");
    Ok(rs.get_long(0)?)
}

fn columns(store: &RdbStore, table: &str) -> anyhow::Result<String> {
    let rs = store.query_sql(
        "SELECT name FROM pragma_table_info(?1)",
        &[Value::from(table)],
    )?;
    let names: Vec<String> = rs
        .rows()?
        .map(|r| crate::output::value_text(&r[0]))
        .collect();
    Ok(names.join(", "))
}

fn versioned_open(story: &mut Story, db: &Path, rows: usize) -> anyhow::Result<()> {
    story.step("Versioned open: create the store at version 1 (SQLiteOpenHelper's onCreate)");
    let mut v1 = migrations_v2().up_to(1);
    let store = RdbStore::open_with(StoreConfig::new(db).version(1), &mut v1)?;
    let batch: Vec<ValuesBucket> = (0..rows)
        .map(|i| bucket! { "NAME" => format!("employee-{i:04}"), "AGE" => 20 + (i % 40) as i64, "SALARY" => 1000.0 + i as f64 * 0.25, "CODES" => vec![1u8, 2, 3] })
        .collect();
    store.batch_insert("EMPLOYEE", &batch)?;
    story.say(format!(
        "version {} with EMPLOYEE({})",
        store.version()?,
        columns(&store, "EMPLOYEE")?
    ));
    story.say(format!("inserted {rows} rows in one transaction"));
    store.close()?;

    story.step("Upgrade to version 2 with a table rebuild that keeps every row");
    let mut v2 = migrations_v2();
    let store = RdbStore::open_with(StoreConfig::new(db).version(2), &mut v2)?;
    story.say("0002_salary_in_cents: SALARY REAL -> SALARY_CENTS INTEGER, CODES dropped, EMAIL added with a default");
    story.say(format!(
        "version {} with EMPLOYEE({})",
        store.version()?,
        columns(&store, "EMPLOYEE")?
    ));
    let kept = count(&store, "SELECT count(*) FROM EMPLOYEE")?;
    ensure!(kept == rows as i64, "rebuild kept {kept} of {rows} rows");
    let first = store.query_sql(
        "SELECT NAME, SALARY_CENTS FROM EMPLOYEE ORDER BY ID LIMIT 1",
        &[],
    )?;
    let earns = first
        .rows()?
        .next()
        .map(|r| {
            format!(
                "; {} earns {} cents",
                crate::output::value_text(&r[0]),
                crate::output::value_text(&r[1])
            )
        })
        .unwrap_or_default();
    story.say(format!("rows kept: {kept} of {rows}{earns}"));
    let attached = count(
        &store,
        "SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'EMPLOYEE' AND name IN ('employee_name', 'employee_audit')",
    )?;
    story.say(format!(
        "index employee_name and trigger employee_audit recreated: {}",
        attached == 2
    ));
    store.close()?;

    story.step("A failing upgrade leaves version 2 and every row intact");
    let mut broken = migrations_v2().step(Migration::sql(
        "0003_phone",
        "ALTER TABLE EMPLOYEE ADD COLUMN PHONE TEXT; UPDATE EMPLOYEE SET PHONE = NAME; INSERT INTO MISSING_TABLE VALUES (1);",
    ));
    let err = must_fail(
        RdbStore::open_with(StoreConfig::new(db).version(3), &mut broken),
        "the broken migration must fail",
    )?;
    story.say(format!("error[{}]: {err}", err.code()));
    let store = RdbStore::open(StoreConfig::new(db))?;
    story.say(format!(
        "still version {}, {} rows, columns ({}) — the ALTER and UPDATE were rolled back with it",
        store.version()?,
        count(&store, "SELECT count(*) FROM EMPLOYEE")?,
        columns(&store, "EMPLOYEE")?
    ));
    store.close()?;

    story.step("The next open retries the upgrade cleanly");
    let mut fixed = migrations_v2().step(Migration::sql(
        "0003_phone",
        "ALTER TABLE EMPLOYEE ADD COLUMN PHONE TEXT; UPDATE EMPLOYEE SET PHONE = '+1-555-' || ID;",
    ));
    let store = RdbStore::open_with(StoreConfig::new(db).version(3), &mut fixed)?;
    story.say(format!(
        "version {}, {} rows with a PHONE",
        store.version()?,
        count(
            &store,
            "SELECT count(*) FROM EMPLOYEE WHERE PHONE IS NOT NULL"
        )?
    ));
    Ok(())
}

fn observers_and_predicates(story: &mut Story, db: &Path) -> anyhow::Result<()> {
    story.step("Predicates and local change notifications");
    let store = RdbStore::open(StoreConfig::new(db))?;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&seen);
    store.on_data_change(SubscribeType::Local, move |tables| {
        if let Ok(mut s) = sink.lock() {
            s.push(tables.join(","));
        }
    })?;
    let raised = store.update(
        &bucket! { "SALARY_CENTS" => 999_999 },
        &RdbPredicates::new("EMPLOYEE")
            .begin_wrap()
            .equal_to("AGE", 30)
            .or()
            .equal_to("AGE", 31)
            .end_wrap()
            .less_than("ID", 100),
    )?;
    story.say(format!(
        "update … WHERE (AGE = 30 OR AGE = 31) AND ID < 100 changed {raised} rows"
    ));
    story.say(format!(
        "observer heard: {:?} (the audit trigger wrote AUDIT in the same transaction)",
        seen.lock().map(|s| s.clone()).unwrap_or_default()
    ));
    let hostile = store.query(
        &RdbPredicates::new("EMPLOYEE").equal_to("NAME; DROP TABLE EMPLOYEE; --", 1),
        &[],
    );
    if let Err(e) = hostile {
        story.say(format!(
            "a hostile column name is refused: error[{}] {e}",
            e.code()
        ));
    }
    let mut top = store.query(
        &RdbPredicates::new("EMPLOYEE")
            .order_by_desc("SALARY_CENTS")
            .order_by_asc("ID")
            .limit(3),
        &["ID", "NAME", "SALARY_CENTS"],
    )?;
    while top.go_to_next_row()? {
        story.say(format!(
            "top earner: #{} {} {}",
            top.get_long("ID")?,
            top.get_string("NAME")?,
            top.get_long("SALARY_CENTS")?
        ));
    }
    let _ = store.off_data_change(SubscribeType::Local, None);
    store.close()?;
    Ok(())
}

fn backup_and_restore(story: &mut Story, db: &Path) -> anyhow::Result<()> {
    story.step("Online backup while another thread commits every 2 ms");
    let store = RdbStore::open(StoreConfig::new(db))?;
    let before = count(&store, "SELECT count(*) FROM EMPLOYEE")?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        std::thread::spawn(move || -> peerlite::Result<u64> {
            let mut commits = 0;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                store.insert(
                    "AUDIT",
                    &bucket! { "EMPLOYEE_ID" => 0, "AT" => "heartbeat" },
                )?;
                commits += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Ok(commits)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut steps = 0;
    let mut progress = |_: peerlite::Progress| steps += 1;
    let info = store.backup_with(
        peerlite::BackupRequest::named("nightly.db")
            .pages_per_step(4)
            .on_progress(&mut progress),
    )?;
    stop.store(true, std::sync::atomic::Ordering::Release);
    let commits = writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
    story.say(format!(
        "backup {} : {} pages in {steps} steps, {} restarts",
        info.path.display(),
        info.page_count,
        info.restarts
    ));
    story.say(format!(
        "the writer committed {commits} times meanwhile and was never blocked"
    ));
    story.say(format!(
        "manifest: version {}, {} bytes, {}",
        info.version,
        info.size_bytes,
        info.checksum.get(..20).unwrap_or(&info.checksum)
    ));

    story.step("An accident, then a verified restore");
    store.execute("DELETE FROM EMPLOYEE WHERE AGE > 25", &[])?;
    let left = count(&store, "SELECT count(*) FROM EMPLOYEE")?;
    story.say(format!(
        "oops: DELETE FROM EMPLOYEE WHERE AGE > 25 left {left} of {before} rows"
    ));
    let report = store.restore("nightly.db")?;
    story.say(format!("restored nightly.db: {} rows again (manifest, checksum and integrity_check verified first)", count(&store, "SELECT count(*) FROM EMPLOYEE")?));
    if let Some(safety) = &report.pre_restore_backup {
        story.say(format!("the replaced data is kept as {}", safety.display()));
    }
    store.close()?;
    Ok(())
}

fn corruption_and_repair(story: &mut Story, db: &Path) -> anyhow::Result<()> {
    story.step(
        "Corruption: the file is damaged, the store repairs itself from the newest good backup",
    );
    let store = RdbStore::open(StoreConfig::new(db))?;
    let latest: Vec<ValuesBucket> = (0..25)
        .map(|i| bucket! { "NAME" => format!("hired-after-backup-{i}"), "AGE" => 30 })
        .collect();
    store.batch_insert("EMPLOYEE", &latest)?;
    let total = count(&store, "SELECT count(*) FROM EMPLOYEE")?;
    story.say(format!("25 employees hired after the backup: {total} rows"));
    let root = count(
        &store,
        "SELECT rootpage FROM sqlite_schema WHERE name = 'EMPLOYEE'",
    )?;
    store.close()?;
    let pages = std::fs::metadata(db)?.len() / 4096;
    // Pages in the middle of the file first (rows the salvage can still read around them),
    // then the table's own root page: wiping a b-tree page's header is always found, so the
    // damage shows however few rows the table has.
    let mut damaged = Vec::new();
    let mut found = None;
    for page in [pages / 3, pages / 2, u64::try_from(root - 1)?] {
        if damaged.contains(&page) {
            continue;
        }
        damage_page(db, page)?;
        damaged.push(page + 1);
        let verdict = RdbStore::open(StoreConfig::new(db)).and_then(|store| {
            store.check(peerlite::CheckMode::Quick)?;
            store.close()
        });
        if let Err(e) = verdict {
            found = Some(e);
            break;
        }
    }
    let found =
        found.ok_or_else(|| anyhow::anyhow!("demo: the damaged file passed quick_check"))?;
    story.say(format!(
        "overwrote 2 KB at the start of page(s) {damaged:?} of {pages} (a bad disk, a stray write)"
    ));
    story.say(format!(
        "quick_check: error[{}] {}",
        found.code(),
        found.to_string().chars().take(90).collect::<String>()
    ));
    let refused = must_fail(
        RdbStore::open(StoreConfig::new(db)),
        "a flagged store must not open",
    )?;
    story.say(format!(
        "the next open without allow_rebuild: error[{}] (the flag persists)",
        refused.code()
    ));
    let mut migrations = migrations_v2().step(Migration::sql(
        "0003_phone",
        "ALTER TABLE EMPLOYEE ADD COLUMN PHONE TEXT; UPDATE EMPLOYEE SET PHONE = '+1-555-' || ID;",
    ));
    let store = RdbStore::open_with(
        StoreConfig::new(db).version(3).allow_rebuild(true),
        &mut migrations,
    )?;
    let report = store
        .repair_report()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no repair happened"))?;
    story.say(format!(
        "open with allow_rebuild: {:?} from {}",
        store.rebuilt(),
        report.backup.as_deref().unwrap_or("-")
    ));
    story.say(format!(
        "the damaged files are kept in {}",
        report.quarantine.display()
    ));
    story.say(format!(
        "rows from the backup: {}",
        count(&store, "SELECT count(*) FROM EMPLOYEE")?
    ));
    if let Some(salvage) = &report.salvage.path {
        story.say(format!(
            "{} readable rows salvaged into {}",
            report.salvage.rows,
            salvage.display()
        ));
        let merged = store.merge_salvage(salvage)?;
        let added: usize = merged
            .iter()
            .filter(|(t, _)| t == "EMPLOYEE")
            .map(|(_, n)| n)
            .sum();
        story.say(format!(
            "merge_salvage added the {added} employees the backup did not have: {} rows now",
            count(&store, "SELECT count(*) FROM EMPLOYEE")?
        ));
    }
    store.close()?;
    Ok(())
}

/// Overwrites 2 KB at the start of page `index` (0-based; past the file header on page 1).
fn damage_page(db: &Path, index: u64) -> anyhow::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new().write(true).open(db)?;
    let start = if index == 0 { 100 } else { index * 4096 };
    file.seek(SeekFrom::Start(start))?;
    file.write_all(&[0xAB; 2000])?;
    Ok(())
}

fn key_value(story: &mut Story, dir: &Path) -> anyhow::Result<()> {
    story.step("The key-value store: typed values, prefixes, transactions");
    let manager = KvManager::new(dir, "com.example.demo")?;
    let kv = manager.get_kv_store("settings", Options::default())?;
    kv.put_batch(&[
        Entry::new("ui.theme", "dark"),
        Entry::new("ui.font_size", 14),
        Entry::new("ui.animations", true),
        Entry::new("sync.interval_s", 30.5),
        Entry::new("avatar", vec![0x89u8, 0x50, 0x4e, 0x47]),
    ])?;
    for e in kv.get_entries("ui.")? {
        story.say(format!("{} = {} ({})", e.key, e.value, e.value.type_name()));
    }
    let rolled_back = kv.transaction(|tx| {
        tx.put("ui.theme", "light")?;
        tx.put("ui.font_size", "not a number at all")?;
        Err::<(), _>(peerlite::Error::NotFound {
            what: "demo: abort on purpose".into(),
        })
    });
    ensure!(rolled_back.is_err(), "the transaction must fail");
    story.say(format!(
        "a failed transaction leaves ui.theme = {}",
        kv.get("ui.theme")?
    ));
    let missing = must_fail(kv.get("nope"), "a missing key must be an error")?;
    story.say(format!("a missing key is error[{}]", missing.code()));
    let too_long = must_fail(
        kv.put(&"k".repeat(1025), KvValue::Integer(1)),
        "a key over the limit must be refused",
    )?;
    story.say(format!(
        "a 1025-byte key is error[{}]: {too_long}",
        too_long.code()
    ));
    story.say(format!(
        "stores in {}: {:?}",
        manager.dir().display(),
        manager.get_all_kv_store_ids()?
    ));
    kv.close()?;
    Ok(())
}

fn encryption(story: &mut Story, dir: &Path) -> anyhow::Result<()> {
    story.step("Encryption at rest (SQLCipher)");
    let path = dir.join("secret.db");
    let store =
        RdbStore::open(StoreConfig::new(&path).encryption_key("correct horse battery staple"))?;
    store.execute("CREATE TABLE diary(entry TEXT)", &[])?;
    store.insert(
        "diary",
        &bucket! { "entry" => "the treasure is under the oak" },
    )?;
    store.close()?;
    let bytes = std::fs::read(&path).context("reading the encrypted file")?;
    let plaintext_header = bytes.starts_with(b"SQLite format 3\0");
    let leaked = bytes.windows(8).any(|w| w == b"treasure");
    story.say(format!("file header is plaintext SQLite: {plaintext_header}; the secret appears in the file: {leaked}"));
    let wrong = must_fail(
        RdbStore::open(StoreConfig::new(&path).encryption_key("wrong")),
        "the wrong key must not open the store",
    )?;
    story.say(format!("the wrong key is error[{}]: {wrong}", wrong.code()));
    let store =
        RdbStore::open(StoreConfig::new(&path).encryption_key("correct horse battery staple"))?;
    let mut rs = store.query_sql("SELECT entry FROM diary", &[])?;
    ensure!(rs.go_to_first_row()?, "diary is empty");
    story.say(format!("the right key reads: {:?}", rs.get_string(0)?));
    Ok(())
}
