//! Scripts route by what they do (issue 9, item 9): a script whose statements all only read
//! ran in a write transaction all the same, so it waited for any other writer and failed with
//! 14800024 after the busy timeout; opening an existing key-value store took the write lock to
//! check its type; and closing a store waited for the lock to fold the WAL in. Reads now run
//! on a reader and stream to a `ScriptSink`; a script with a write runs whole in one
//! transaction.

use peerlite::{KvManager, Options, RdbStore, ScriptSink, StoreConfig, Value};

/// Keeps every output: `("columns", names)`, `("row", values)`, `("changed", n)`.
#[derive(Default)]
struct Record(Vec<String>);

impl ScriptSink for Record {
    fn columns(&mut self, names: &[String]) -> std::io::Result<()> {
        self.0.push(format!("columns {names:?}"));
        Ok(())
    }
    fn row(&mut self, values: &[Value]) -> std::io::Result<()> {
        self.0.push(format!("row {values:?}"));
        Ok(())
    }
    fn end(&mut self) -> std::io::Result<()> {
        self.0.push("end".into());
        Ok(())
    }
    fn changed(&mut self, rows: usize) -> std::io::Result<()> {
        self.0.push(format!("changed {rows}"));
        Ok(())
    }
}

/// Another connection in a write transaction, with a row it has not committed.
fn lock(path: &std::path::Path) -> rusqlite::Connection {
    let other = rusqlite::Connection::open(path).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (99)")
        .unwrap();
    other
}

#[test]
fn read_only_scripts_run_on_a_reader_while_another_connection_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let config = || StoreConfig::new(&path).busy_timeout(std::time::Duration::from_millis(100));
    let store = RdbStore::open(config()).unwrap();
    store
        .execute_script("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .unwrap();
    let other = lock(&path);
    let mut out = Record::default();
    store
        .run_script(
            &["SELECT x, x AS x FROM t", "PRAGMA user_version"],
            &mut out,
        )
        .unwrap();
    assert_eq!(
        out.0,
        [
            r#"columns ["x", "x"]"#,
            "row [Integer(1), Integer(1)]",
            "end",
            r#"columns ["user_version"]"#,
            "row [Integer(0)]",
            "end"
        ]
    );
    assert_eq!(
        store
            .execute_script("SELECT count(*) FROM t")
            .unwrap()
            .len(),
        1
    );
    // A script that writes needs the lock, and says so.
    let busy = store
        .execute_script("SELECT 1; INSERT INTO t VALUES (2)")
        .unwrap_err();
    assert_eq!(busy.code(), 14800024);
    // Text that is not SQL is reported as such, not as a busy database.
    assert_eq!(
        store.execute_script("SELEC x FROM t").unwrap_err().code(),
        14800021
    );
    // Closing waits for nobody; the other connection still commits.
    store.close().unwrap();
    let reopened = RdbStore::open(config()).unwrap();
    drop(reopened);
    other.execute_batch("COMMIT").unwrap();
}

#[test]
fn what_a_reader_cannot_prepare_goes_to_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = RdbStore::open(StoreConfig::new(dir.path().join("a.db"))).unwrap();
    // A TEMP table lives on the writer's connection only.
    store
        .execute_script("CREATE TEMP TABLE scratch(x); INSERT INTO scratch VALUES (7)")
        .unwrap();
    let out = store.execute_script("SELECT x FROM scratch").unwrap();
    let [peerlite::StatementOutput::Rows(rs)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(rs.rows().unwrap().next().unwrap(), [Value::Integer(7)]);
    // A statement after a write may need what the write creates.
    store
        .execute_script("CREATE TABLE later(x); SELECT x FROM later")
        .unwrap();
}

#[test]
fn a_script_with_a_write_runs_in_one_transaction_and_streams_its_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = RdbStore::open(StoreConfig::new(dir.path().join("a.db"))).unwrap();
    let mut out = Record::default();
    store
        .run_script(
            &[
                "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)",
                "SELECT sum(x) FROM t",
            ],
            &mut out,
        )
        .unwrap();
    assert_eq!(
        out.0,
        [
            "changed 0",
            "changed 2",
            r#"columns ["sum(x)"]"#,
            "row [Integer(3)]",
            "end"
        ]
    );
    let failed = store.run_script(
        &["INSERT INTO t VALUES (3)", "SELECT * FROM nope"],
        &mut out,
    );
    assert_eq!(failed.unwrap_err().code(), 14800021);
    let rs = store.query_sql("SELECT count(*) FROM t", &[]).unwrap();
    assert_eq!(
        rs.rows().unwrap().next().unwrap(),
        [Value::Integer(2)],
        "all or nothing"
    );
}

#[test]
fn a_failing_sink_stops_the_script_and_rolls_back() {
    struct Refuse;
    impl ScriptSink for Refuse {
        fn columns(&mut self, _: &[String]) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn row(&mut self, _: &[Value]) -> std::io::Result<()> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = RdbStore::open(StoreConfig::new(dir.path().join("a.db"))).unwrap();
    store.execute_script("CREATE TABLE t(x)").unwrap();
    let err = store
        .run_script(&["INSERT INTO t VALUES (1); SELECT x FROM t"], &mut Refuse)
        .unwrap_err();
    assert!(
        matches!(&err, peerlite::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe),
        "{err:?}"
    );
    let rs = store.query_sql("SELECT count(*) FROM t", &[]).unwrap();
    assert_eq!(rs.rows().unwrap().next().unwrap(), [Value::Integer(0)]);
}

#[test]
fn an_existing_key_value_store_opens_without_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let manager = KvManager::at(dir.path()).unwrap();
    let kv = manager.get_kv_store("prefs", Options::default()).unwrap();
    kv.put("theme", "dark").unwrap();
    manager.close_kv_store("prefs").unwrap();
    let other = rusqlite::Connection::open(dir.path().join("prefs.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let kv = KvManager::at(dir.path())
        .unwrap()
        .get_kv_store("prefs", Options::default())
        .unwrap();
    assert_eq!(kv.get("theme").unwrap().to_string(), "dark");
    other.execute_batch("ROLLBACK").unwrap();
}

/// SQLite reads a statement only up to a NUL byte, so `INSERT …;\0 INSERT …` ran the first
/// insert and silently dropped the second (and `SELECT 1\0; DROP TABLE t` never dropped),
/// with success. A script with a NUL is refused whole, wherever the NUL is.
#[test]
fn a_script_with_a_nul_byte_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = RdbStore::open(StoreConfig::new(dir.path().join("a.db"))).unwrap();
    store.execute_script("CREATE TABLE t(x)").unwrap();
    for script in [
        "INSERT INTO t VALUES (1);\0\nINSERT INTO t VALUES (2);",
        "\0INSERT INTO t VALUES (1)",
        "INSERT INTO t VALUES (1)\0",
        "SELECT 1\0; DROP TABLE t;",
        "INSERT INTO t VALUES ('a\0b')",
    ] {
        let err = store.execute_script(script).unwrap_err();
        assert_eq!(err.code(), 14800001, "{script:?}: {err}");
        assert!(err.to_string().contains("NUL"), "{err}");
        let tx = store.begin_transaction().unwrap();
        assert_eq!(tx.execute_script(script).unwrap_err().code(), 14800001);
        tx.rollback().unwrap();
    }
    let rs = store.query_sql("SELECT count(*) FROM t", &[]).unwrap();
    assert_eq!(rs.rows().unwrap().next().unwrap(), [Value::Integer(0)]);
}
