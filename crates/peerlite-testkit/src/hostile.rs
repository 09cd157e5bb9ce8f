//! The hostile-SQL table: every form of statement the app could use to damage peerlite's own
//! objects, with the code it must be refused with. The library test and the CLI test run the
//! same table against the same fixture, so the two cannot drift apart.
//!
//! The fixture (`hostile.db`, device `phone`) holds a device-collaboration table `note` that
//! has synced with a peer (`laptop`), so it has a clock, capture triggers and a device table
//! of the peer's rows; an app table `plain`; an AUTOINCREMENT table (so `sqlite_sequence`
//! exists), statistics (`ANALYZE`: `sqlite_stat1`) and a view over `peerlite_meta` (reading
//! peerlite's tables is allowed).

use std::path::{Path, PathBuf};

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::sync::{SyncMode, sync_in_memory};
use peerlite::{RdbStore, Result, StoreConfig, Value};

/// Refused: peerlite's own objects (`Error::Protected`).
pub const PROTECTED: u32 = 17050001;
/// Refused: another device's rows are read-only.
pub const DEVICE_TABLE: u32 = 17040002;
/// Refused: transaction control inside peerlite's transaction.
pub const INVALID: u32 = 14800001;
/// SQLite's own refusal.
pub const SQLITE_ERROR: u32 = 14800021;

/// One hostile statement.
#[derive(Debug, Clone)]
pub struct Hostile {
    /// The SQL.
    pub sql: String,
    /// Its `?` parameters (the CLI runs only rows without any).
    pub params: Vec<Value>,
    /// The code it must fail with.
    pub code: u32,
}

/// The fixture's database file under `dir`.
pub fn fixture_path(dir: &Path) -> PathBuf {
    dir.join("phone").join("hostile.db")
}

fn open(dir: &Path, device: &str) -> Result<RdbStore> {
    let home = dir.join(device);
    std::fs::create_dir_all(&home).map_err(|source| peerlite::Error::Io {
        op: "creating a device directory",
        path: home.clone(),
        source,
    })?;
    RdbStore::open(StoreConfig::new(home.join("hostile.db")).device_id(device))
}

/// The peer of the fixture, at `dir/laptop/hostile.db`, with `note` distributed.
pub fn open_peer(dir: &Path) -> Result<RdbStore> {
    let laptop = open(dir, "laptop")?;
    laptop.execute(
        "CREATE TABLE IF NOT EXISTS note(id INTEGER PRIMARY KEY, body TEXT)",
        &[],
    )?;
    laptop.set_distributed_tables(
        &["note"],
        DistributedType::Device,
        &DistributedConfig::default(),
    )?;
    Ok(laptop)
}

/// Builds the fixture under `dir` and returns the store (see the module documentation).
///
/// # Errors
/// Whatever peerlite reports while building it.
pub fn fixture(dir: &Path) -> Result<RdbStore> {
    let phone = open(dir, "phone")?;
    phone.execute_script(
        "CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT);
         CREATE TABLE plain(a, b);
         CREATE TABLE counter(id INTEGER PRIMARY KEY AUTOINCREMENT, x);
         INSERT INTO counter(x) VALUES (1);
         CREATE VIEW meta_view AS SELECT key, value FROM peerlite_meta;
         ANALYZE;",
    )?;
    phone.set_distributed_tables(
        &["note"],
        DistributedType::Device,
        &DistributedConfig::default(),
    )?;
    let laptop = open_peer(dir)?;
    laptop.execute(
        "INSERT INTO note(id, body) VALUES (1, 'from the laptop')",
        &[],
    )?;
    phone.execute(
        "INSERT INTO note(id, body) VALUES (1, 'from the phone')",
        &[],
    )?;
    sync_in_memory(&phone, &laptop, SyncMode::PushPull, None)?;
    laptop.close()?;
    Ok(phone)
}

/// The hostile statements against the fixture `store`.
///
/// # Errors
/// When the fixture lacks its distributed table.
pub fn statements(store: &RdbStore) -> Result<Vec<Hostile>> {
    let note = store
        .distributed_tables()?
        .into_iter()
        .find(|m| m.name == "note")
        .ok_or_else(|| peerlite::Error::NotDistributed {
            table: "note".into(),
        })?;
    let clock = note.clock();
    let tid = note.tid;
    let dev = store.obtain_distributed_table_name("laptop", "note")?;
    let db = store.path().display().to_string();
    let p = |sql: &str| Hostile {
        sql: sql.to_owned(),
        params: Vec::new(),
        code: PROTECTED,
    };
    let with = |sql: &str, code: u32| Hostile {
        sql: sql.to_owned(),
        params: Vec::new(),
        code,
    };
    let rows = vec![
        // Writes to peerlite's tables, in every statement form and spelling.
        p("INSERT INTO peerlite_meta(key, value) VALUES ('x', 'y')"),
        p("DELETE FROM peerlite_meta WHERE key = 'store_id'"),
        p("UPDATE peerlite_meta SET value = 'new identity' WHERE key = 'epoch'"),
        p("REPLACE INTO peerlite_meta(key, value) VALUES ('device_id', 'evil')"),
        p("INSERT OR REPLACE INTO \"PEERLITE_META\"(key, value) VALUES ('epoch', 'x')"),
        p("INSERT INTO peerlite_meta(key, value) VALUES ('store_id', 'x') ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
        p("/* a comment */ delete -- and another\n from main.\"peerlite_meta\""),
        p("WITH gone AS (SELECT 1) DELETE FROM [peerlite_meta] WHERE EXISTS (SELECT * FROM gone)"),
        p("UPDATE `peerlite_distributed` SET mode = 'single_version'"),
        p("DELETE FROM peerlite_devices"),
        p(&format!("DELETE FROM {clock}")),
        p(&format!("UPDATE main.{clock} SET tomb = 1")),
        p(&format!("INSERT INTO {clock}(ident, seq, hlc, origin, tomb) VALUES (99, 1, 1, 0, 1)")),
        p(&format!("DELETE FROM peerlite_pending_{tid}")),
        p("DELETE FROM sqlite_sequence"),
        p("UPDATE sqlite_sequence SET seq = 0"),
        with(&format!("DELETE FROM {dev}"), DEVICE_TABLE),
        with(&format!("INSERT INTO \"{dev}\"(id, body) VALUES (7, 'forged')"), DEVICE_TABLE),
        // The statement peerlite itself runs at every commit, with the same text: the shared
        // statement cache must not hand the caller peerlite's prepared copy.
        Hostile {
            sql: "INSERT INTO peerlite_meta(key, value) VALUES ('hlc', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value".into(),
            params: vec![Value::from("0")],
            code: PROTECTED,
        },
        // Dropping, altering and indexing them.
        p("DROP TABLE peerlite_meta"),
        p("DROP TABLE IF EXISTS main.peerlite_distributed"),
        p(&format!("DROP TABLE {clock}")),
        p(&format!("DROP TABLE \"{dev}\"")),
        p("DROP TABLE sqlite_stat1"),
        p(&format!("DROP TRIGGER peerlite_{tid}_ai")),
        p(&format!("DROP TRIGGER IF EXISTS main.[peerlite_{tid}_ad]")),
        p(&format!("DROP INDEX {clock}_seq")),
        p("ALTER TABLE peerlite_meta RENAME TO meta"),
        p("ALTER TABLE peerlite_meta RENAME COLUMN value TO v"),
        p("ALTER TABLE peerlite_meta ADD COLUMN extra"),
        p(&format!("ALTER TABLE {clock} DROP COLUMN cols")),
        // A device table's rows forged by renaming it away and back (issue 9, item 5).
        p(&format!("ALTER TABLE {dev} RENAME TO forged")),
        p(&format!("ALTER TABLE {dev} DROP COLUMN body")),
        p(&format!("ALTER TABLE {dev} RENAME COLUMN body TO b")),
        // Creating objects on them or in their namespace.
        p("CREATE INDEX snoop ON peerlite_meta(value)"),
        p(&format!("CREATE UNIQUE INDEX snoop ON {clock}(seq)")),
        p("CREATE INDEX peerlite_mine ON plain(a)"),
        p("CREATE TRIGGER watch AFTER INSERT ON peerlite_meta BEGIN SELECT 1; END"),
        p(&format!("CREATE TRIGGER peerlite_{}_ai AFTER INSERT ON plain BEGIN SELECT 1; END", tid + 1)),
        p("CREATE TABLE peerlite_mine(a)"),
        p("CREATE TEMP TABLE peerlite_meta(key, value)"),
        p("CREATE VIEW peerlite_view AS SELECT 1"),
        p("CREATE TEMP VIEW Peerlite_Kv AS SELECT 1 AS key"),
        // Triggers whose bodies write peerlite's tables, through an app table or a view.
        p("CREATE TRIGGER sneaky AFTER INSERT ON plain BEGIN DELETE FROM peerlite_meta; END"),
        p(&format!("CREATE TEMP TRIGGER sneaky AFTER UPDATE ON main.note BEGIN UPDATE main.{clock} SET tomb = 1; END")),
        p("CREATE TRIGGER sneaky INSTEAD OF INSERT ON meta_view BEGIN INSERT OR REPLACE INTO peerlite_meta VALUES (NEW.key, NEW.value); END"),
        p("CREATE TRIGGER sneaky AFTER DELETE ON plain BEGIN DELETE FROM sqlite_sequence; END"),
        // A distributed table keeps its name and columns; nothing takes or shadows its name.
        p("DROP TABLE note"),
        p("DROP TABLE IF EXISTS \"NOTE\""),
        p("ALTER TABLE note RENAME TO note_old"),
        p("ALTER TABLE main.note RENAME COLUMN body TO text"),
        p("ALTER TABLE note RENAME body TO text"),
        p("ALTER TABLE note DROP COLUMN body"),
        p("ALTER TABLE [Note] DROP body"),
        // (SQLite itself refuses renaming onto an existing table; `guard` tests a distributed
        // table that is missing.)
        with("ALTER TABLE plain RENAME TO note", SQLITE_ERROR),
        p("ALTER TABLE plain RENAME TO peerlite_plain"),
        p("CREATE TEMP TABLE note(id INTEGER PRIMARY KEY, body TEXT)"),
        p("CREATE TEMP VIEW note AS SELECT 1 AS id, 'shadow' AS body"),
        // Pragmas that would break what peerlite relies on.
        p("PRAGMA writable_schema = ON"),
        p("PRAGMA main.writable_schema = 1"),
        p("pragma \"WRITABLE_SCHEMA\" = 'yes'"),
        p("PRAGMA writable_schema"),
        p("PRAGMA journal_mode = DELETE"),
        p("PRAGMA main.journal_mode = memory"),
        p("PRAGMA schema_version = 1"),
        p("PRAGMA recursive_triggers = OFF"),
        p("PRAGMA trusted_schema = 0"),
        p("PRAGMA locking_mode = EXCLUSIVE"),
        p("PRAGMA wal_autocheckpoint = 0"),
        p("PRAGMA query_only = 1"),
        p("PRAGMA synchronous = OFF"),
        p("PRAGMA count_changes = 1"),
        p("PRAGMA rekey = 'another key'"),
        p("PRAGMA cipher_page_size = 1024"),
        // Transaction control, and the store's own file under a second schema name (or any
        // other: an attachment would outlive the statement on peerlite's writer).
        with("COMMIT", INVALID),
        with("ROLLBACK", INVALID),
        p(&format!("ATTACH DATABASE '{}' AS again", db.replace('\'', "''"))),
        p("ATTACH DATABASE ':memory:' AS scratch"),
    ];
    Ok(rows)
}
