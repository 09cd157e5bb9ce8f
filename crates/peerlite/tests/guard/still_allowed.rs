//! What the guard must leave alone: reading peerlite's tables, the app's own DDL (adding
//! columns to a distributed table included), harmless pragmas, savepoints, statistics.

use peerlite::CheckMode;
use peerlite::sync::{SyncMode, sync_in_memory};
use peerlite_testkit::hostile;

use super::common::{code, rows};

/// Story: refusing peerlite's objects must not refuse the app's work. Each of these ran before
/// the guard and still runs; `ALTER TABLE … ADD COLUMN` on a distributed table keeps capture
/// and sync working (the new column is simply not synced until the table is distributed
/// again).
#[test]
fn the_apps_own_sql_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = hostile::fixture(dir.path()).unwrap();
    let allowed = [
        "SELECT key, value FROM peerlite_meta",
        "SELECT * FROM peerlite_clock_1 JOIN note ON note.id = ident",
        "SELECT * FROM meta_view",
        "INSERT INTO plain(a, b) SELECT key, value FROM peerlite_meta",
        "PRAGMA journal_mode",
        "PRAGMA journal_mode = WAL",
        "PRAGMA table_info(peerlite_meta)",
        "PRAGMA user_version = 3",
        "PRAGMA foreign_keys = ON",
        "PRAGMA recursive_triggers",
        "PRAGMA cipher_version",
        "ANALYZE",
        "ANALYZE peerlite_meta",
        "CREATE TABLE IF NOT EXISTS note(id INTEGER PRIMARY KEY, body TEXT)",
        "CREATE INDEX note_body ON note(body)",
        "CREATE TRIGGER audit AFTER INSERT ON note BEGIN INSERT INTO plain(a, b) VALUES ('audit', NEW.id); END",
        "ALTER TABLE note ADD COLUMN extra TEXT",
        "ALTER TABLE plain ADD COLUMN c",
        "ALTER TABLE plain RENAME COLUMN c TO d",
        "ALTER TABLE plain DROP COLUMN d",
        "CREATE TABLE scratch(x); ALTER TABLE scratch RENAME TO scratch2; DROP TABLE scratch2",
        "CREATE TEMP TABLE scratch(x); DROP TABLE scratch",
        "SAVEPOINT s; INSERT INTO plain(a) VALUES ('in savepoint'); ROLLBACK TO s; RELEASE s",
        "UPDATE counter SET x = x + 1",
    ];
    for sql in allowed {
        assert_eq!(code(store.execute_script(sql)), 0, "{sql}");
    }
    store
        .execute(
            "INSERT INTO note(id, body, extra) VALUES (9, 'with extra', 'local')",
            &[],
        )
        .unwrap();
    assert!(store.change_of("note", &9.into()).unwrap().is_some());
    assert!(rows(&store, "plain").iter().any(|r| r[0] == "audit".into()));
    store.check(CheckMode::Full).unwrap();
    let laptop = hostile::open_peer(dir.path()).unwrap();
    sync_in_memory(&store, &laptop, SyncMode::PushPull, None).unwrap();
    let on_laptop = laptop
        .obtain_distributed_table_name("phone", "note")
        .unwrap();
    assert_eq!(rows(&laptop, &on_laptop).len(), 2);
}

/// Story: `recursive_triggers` is what makes REPLACE deletions reach the capture trigger, so
/// the writer of a database with distributed tables runs with it on — from the moment a table
/// is distributed and at every open after — while a database without them keeps SQLite's
/// default, and the app's self-updating triggers behave as SQLite documents.
#[test]
fn recursive_triggers_is_on_exactly_with_distributed_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let on = |store: &peerlite::RdbStore| -> bool {
        store
            .transaction(|tx| {
                let mut rs = tx.query_sql("PRAGMA recursive_triggers", &[])?;
                rs.go_to_first_row()?;
                rs.get_long(0)
            })
            .unwrap()
            == 1
    };
    let store = peerlite::RdbStore::open(peerlite::StoreConfig::new(&path)).unwrap();
    store
        .execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)", &[])
        .unwrap();
    assert!(!on(&store));
    store
        .set_distributed_tables(
            &["t"],
            peerlite::changes::DistributedType::Device,
            &peerlite::changes::DistributedConfig::default(),
        )
        .unwrap();
    assert!(on(&store));
    store.close().unwrap();
    let store = peerlite::RdbStore::open(peerlite::StoreConfig::new(&path)).unwrap();
    assert!(on(&store));
}
