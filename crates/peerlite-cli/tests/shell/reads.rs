//! Item 9. While another process held a write transaction, `peerlite sql DB "SELECT …"` and
//! `peerlite kv DIR ID get K` waited for the lock and failed with 14800024 after the busy
//! timeout, where SQLite's WAL lets a reader answer at once: the CLI ran every script in a
//! write transaction, opening a key-value store took one to check its type, and closing a
//! store waited for the lock to fold the WAL in. Statements that only read now run on a
//! reader and answer with the committed data; a script that writes still runs whole in one
//! transaction.

use std::path::Path;

use super::{json_lines, json_of, peerlite, sql, stdout_of};

/// A second connection holding a write transaction with an uncommitted row, as another
/// process would.
fn hold_write_lock(db: &Path, uncommitted: &str) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!("BEGIN IMMEDIATE; {uncommitted}"))
        .unwrap();
    conn
}

#[test]
fn every_read_only_statement_form_answers_while_another_connection_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    sql(&db, &["CREATE TABLE t(x)", "INSERT INTO t VALUES (1)"]);
    let lock = hold_write_lock(&db, "INSERT INTO t VALUES (2)");
    for (select, committed) in [
        ("SELECT x FROM t", serde_json::json!([[1]])),
        ("SELECT count(*) FROM t", serde_json::json!([[1]])),
        (
            "WITH c AS (SELECT x FROM t) SELECT x FROM c",
            serde_json::json!([[1]]),
        ),
        (
            "SELECT x FROM t WHERE x IN (SELECT x FROM t)",
            serde_json::json!([[1]]),
        ),
        ("PRAGMA user_version", serde_json::json!([[0]])),
        ("VALUES (1)", serde_json::json!([[1]])),
    ] {
        let out = json_of(peerlite().arg("--json").arg("sql").arg(&db).arg(select));
        assert_eq!(out["rows"], committed, "{select}: the committed data");
    }
    // Several read-only statements, in one argument and across arguments and a file.
    let file = dir.path().join("q.sql");
    std::fs::write(&file, "SELECT 3; SELECT max(x) FROM t;").unwrap();
    let text = stdout_of(
        peerlite()
            .arg("sql")
            .arg(&db)
            .arg("SELECT 1; SELECT 2")
            .arg("SELECT x FROM t")
            .arg("--file")
            .arg(&file),
    );
    assert_eq!(text.matches("\n\n").count(), 4, "five tables: {text}");
    // Text that is not SQL is reported as such, not as a busy database.
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("SELEC x FROM t")
        .assert()
        .code(2)
        .stderr(predicates::str::starts_with("error[14800021]"));
    lock.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn kv_reads_answer_while_another_connection_writes() {
    let dir = tempfile::tempdir().unwrap();
    let stores = dir.path().join("kv");
    let kv = |args: &[&str]| {
        let mut cmd = peerlite();
        cmd.arg("kv").arg(&stores).arg("prefs").args(args);
        cmd
    };
    kv(&["put", "theme", "dark"]).assert().success();
    // The store captures its entries for sync, so a plain connection cannot write them (its
    // capture function is missing): it holds the write lock with a table of its own.
    let lock = hold_write_lock(
        &stores.join("prefs.db"),
        "CREATE TABLE other(x); INSERT INTO other VALUES (1)",
    );
    assert_eq!(stdout_of(&mut kv(&["get", "theme"])), "dark\n");
    assert_eq!(stdout_of(&mut kv(&["list"])), "theme\tdark\n");
    lock.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn a_script_that_writes_runs_whole_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    sql(&db, &["CREATE TABLE t(x)"]);
    // The read after the write sees it: both run in the same transaction.
    let out = json_lines(
        peerlite()
            .arg("--json")
            .arg("sql")
            .arg(&db)
            .arg("SELECT count(*) FROM t; INSERT INTO t VALUES (1); SELECT count(*) FROM t"),
    );
    assert_eq!(out.len(), 2, "one line per query: {out:?}");
    assert_eq!(out[0]["rows"], serde_json::json!([[0]]));
    assert_eq!(
        out[1]["rows"],
        serde_json::json!([[1]]),
        "sees the insert before it"
    );
    // A failure after reads and writes takes every write back.
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("SELECT 1")
        .arg("INSERT INTO t VALUES (2)")
        .arg("SELECT 2; INSERT INTO nope VALUES (3)")
        .assert()
        .code(2);
    let out = json_of(
        peerlite()
            .arg("--json")
            .arg("sql")
            .arg(&db)
            .arg("SELECT count(*) FROM t"),
    );
    assert_eq!(out["rows"], serde_json::json!([[1]]));
}
