//! `peerlite serve` as a process: its first stdout line is `listening on HOST:PORT` with the
//! real port, SIGINT and SIGTERM stop it cleanly (exit 0) with its stores closed (the WAL
//! checkpointed into the database), and a `peerlite sync` of the same home beside it
//! corrupts nothing. Usage mistakes are exit 1.

use serde_json::json;

use crate::common::*;

#[test]
fn serve_prints_its_port_and_stops_cleanly_on_sigint_and_sigterm() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    for signal in ["-INT", "-TERM"] {
        let served = b.serve(&[]);
        let port: u16 = served.addr.rsplit(':').next().unwrap().parse().unwrap();
        assert_ne!(port, 0);
        assert!(served.stop_with(signal).success(), "{signal}");
        let wal = std::fs::metadata(b.db.with_extension("db-wal")).map_or(0, |m| m.len());
        assert_eq!(wal, 0, "the WAL was checkpointed at close ({signal})");
    }
    // Served and synced by the same home at once: both work, nothing is damaged.
    let served = serve_for(&a, &b, "SL1", "SL1");
    sql(&a.db, &["INSERT INTO note(text) VALUES ('one')"]);
    a.sync_ok(&["--push"]);
    sql(&b.db, &["INSERT INTO note(text) VALUES ('two')"]);
    // b syncs its own store while serving it: a does not serve and has no address, so that
    // device is unreachable; b's served store is untouched by the attempt.
    let (code, out, _) = b.sync(&["--push"]);
    assert_eq!(code, 2);
    assert!(
        out.starts_with(&format!("{} error[17060021] unreachable", a.id)),
        "{out}"
    );
    a.sync_ok(&["--pull"]);
    assert_eq!(
        a.rows(&format!("SELECT text FROM \"{}\"", a.table_of(&b))),
        vec![json!(["two"])]
    );
    assert!(served.stop().success());
    stdout_of(peerlite().args(["check", "--full"]).arg(&b.db));
}

#[test]
fn serve_usage_errors_exit_1() {
    let root = tempfile::tempdir().unwrap();
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    // No store to serve.
    let (code, _, err) = run(peerlite()
        .args(["serve", "--listen", "127.0.0.1:0", "--home"])
        .arg(&b.home));
    assert_eq!(code, 1, "{err}");
    // A missing database is an error with a code, not a new empty store.
    let (code, _, err) = run(peerlite()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            "/nonexistent/x.db",
            "--home",
        ])
        .arg(&b.home));
    assert_eq!(code, 2);
    assert!(err.starts_with("error[14800010]"), "{err}");
    // An address that cannot be bound.
    let (code, _, err) = run(peerlite()
        .args(["serve", "--listen", "256.0.0.1:0", "--home"])
        .arg(&b.home)
        .arg("--db")
        .arg(&b.db));
    assert_eq!(code, 2);
    assert!(err.starts_with("error[17060022]"), "{err}");
}

/// `remote-query --timeout 18446744073709551615` panicked (an Instant overflow, exit 101) and
/// `sync` with it reported a node "shutting down": a timeout past a week is a usage error.
#[test]
fn timeouts_past_a_week_are_usage_errors_never_a_panic() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1");
    for huge in ["18446744073709551615", "9223372036854775807", "604801", "0"] {
        let (code, _, err) = run(peerlite()
            .args(["sync", "--push", "--timeout", huge, "--home"])
            .arg(&a.home)
            .arg(&a.db));
        assert_eq!(code, 1, "sync {huge}: {err}");
        let (code, _, err) = run(peerlite()
            .args([
                "remote-query",
                "--table",
                "note",
                "--timeout",
                huge,
                "--device",
            ])
            .arg(&b.id)
            .arg("--home")
            .arg(&a.home)
            .arg(&a.db));
        assert_eq!(code, 1, "remote-query {huge}: {err}");
    }
    // A batch of no rows would stall a sync on empty batches.
    for rows in ["0", "100001", "x"] {
        let (code, _, err) = run(peerlite()
            .args(["sync", "--push", "--batch-rows", rows, "--home"])
            .arg(&a.home)
            .arg(&a.db));
        assert_eq!(code, 1, "--batch-rows {rows}: {err}");
    }
}

/// Adversary F12: while an app on the receiving device held a write transaction, a push
/// failed with the generic "failed", SQLite's raw "database is locked" and a hint that gave
/// no action, although nothing was lost and a later push goes on. It now ends with its own
/// retryable status (14800024, "store locked by another writer, retry") and a hint saying
/// to run the same sync again; once the writer is done, it does.
#[test]
fn a_push_to_a_store_locked_by_an_app_says_to_retry() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    let served = serve_for(&a, &b, "SL1", "SL1");
    a.sync_ok(&["--push"]);
    // The app's long write transaction on b.
    let app = rusqlite::Connection::open(&b.db).unwrap();
    app.execute_batch("BEGIN IMMEDIATE").unwrap();
    sql(&a.db, &["INSERT INTO note(text) VALUES ('while locked')"]);
    let (code, out, err) = a.sync(&["--push"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.starts_with(&format!(
            "{} error[14800024] store locked by another writer, retry: ",
            b.id
        )),
        "{out}"
    );
    assert!(
        err.contains("hint: ") && err.contains("run the same `peerlite sync` again"),
        "{err}"
    );
    app.execute_batch("ROLLBACK").unwrap();
    drop(app);
    a.sync_ok(&["--push"]);
    assert_eq!(
        b.rows(&format!("SELECT text FROM \"{}\"", b.table_of(&a))),
        vec![serde_json::json!(["while locked"])]
    );
    assert!(served.stop().success());
}

/// Adversary F16 j: SIGTERM to `serve` while a device pulled from it: serve logged the
/// session as `failed … 17060024 shutting down`, but the pulling device printed `error[17060008]
/// unreachable: connection closed` — the documented status of a device that is going away
/// never reached its user. Now the pulling device reports 17060024 with a hint to sync again
/// once the device is back.
#[test]
fn a_pull_cut_short_by_serve_stopping_is_told_it_is_shutting_down() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    // One row per batch: the pull runs far longer than serve's grace for running sessions.
    let served = slow_pull_from(&a, &b, 300_000);
    let pull = a.spawn_sync(&["--pull", "--timeout", "600"]);
    wait_for_rows_from(&a, &b);
    assert!(served.stop().success());
    let (code, out, err) = pull.finish();
    let log = std::fs::read_to_string(b.dir.join("serve.log")).unwrap_or_default();
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.starts_with(&format!("{} error[17060024]", b.id)),
        "{out}\n{err}\n{log}"
    );
    assert!(
        err.contains("hint: ") && err.contains("again when the device is back"),
        "{err}"
    );
}

/// Adversary F16 h: `serve` took one global `--key`, so an encrypted and a plain store (or
/// two stores with different keys) could not be served by one process (`error[14800020] … the
/// file is not encrypted, but a key was given`). `--store-key NAME=KEY` now gives one store
/// its own key (`NAME=`: none) while the others keep the global `--key`; a NAME that is not
/// served, a NAME given twice, or an option without `=` is a usage error (exit 1).
#[test]
fn serve_opens_each_store_with_its_own_key() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1");
    for step in [
        &["sql", CREATE_NOTE][..],
        &["distribute", "note"][..],
        &["sql", "INSERT INTO note(text) VALUES ('encrypted one')"][..],
    ] {
        peerlite()
            .args(["--key", "secret-notes", step[0]])
            .arg(&b.db)
            .args(&step[1..])
            .assert()
            .success();
    }
    let plain = b.dir.join("plain.db");
    sql(&plain, &["CREATE TABLE t(id INTEGER PRIMARY KEY)"]);
    let other = b.dir.join("other.db");
    peerlite()
        .args(["--key", "secret-other", "sql"])
        .arg(&other)
        .arg("CREATE TABLE t(id INTEGER PRIMARY KEY)")
        .assert()
        .success();
    let stores = |extra: &[&str]| {
        let mut v = vec![
            "--db".to_owned(),
            b.db.display().to_string(),
            "--db".to_owned(),
            plain.display().to_string(),
            "--db".to_owned(),
            other.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let serve = |extra: &[&str]| {
        let mut cmd = peerlite();
        cmd.env_remove("PEERLITE_KEY")
            .args(["serve", "--no-mdns", "--listen", "127.0.0.1:0", "--home"])
            .arg(&b.home)
            .args(stores(extra));
        run(&mut cmd)
    };
    // One global key for stores with different keys: refused, as before.
    let (code, _, err) = serve(&["--key", "secret-notes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("error[14800020]"), "{err}");
    for bad in [
        &["--store-key", "nothing=x"][..],
        &["--store-key", "plain"][..],
        &["--store-key", "plain=", "--store-key", "plain="][..],
    ] {
        let (code, _, err) = serve(bad);
        assert_eq!(code, 1, "{bad:?}: {err}");
    }
    b.trusts(&a, "SL1", None);
    let owned = stores(&[
        "--store-key",
        "notes=secret-notes",
        "--store-key",
        "plain=",
        "--store-key",
        "other=secret-other",
    ]);
    let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
    let served = b.serve(&refs);
    a.trusts(&b, "SL1", Some(&served.addr));
    a.sync_ok(&["--pull"]);
    assert_eq!(
        a.rows(&format!("SELECT text FROM \"{}\"", a.table_of(&b))),
        vec![serde_json::json!(["encrypted one"])]
    );
    assert!(served.stop().success());
}
