#![allow(clippy::unwrap_used)]
//! `peerlite sql` against peerlite's own objects, and `peerlite check --full` finding them
//! damaged (issue 9, items 4 and 5), end to end through the binary.

use std::path::Path;

use peerlite::sync::{SyncMode, sync_in_memory};
use peerlite_testkit::hostile;

#[path = "../support/mod.rs"]
mod support;

use support::{peerlite, run};

fn sql(db: &Path, statement: &str) -> (i32, String, String) {
    run(peerlite().arg("sql").arg(db).arg(statement))
}

/// Story: `peerlite sql DB "DROP TABLE peerlite_meta"` bricked the store for every later
/// command, `check` and `repair` included. Every statement of the hostile-SQL table (those
/// without parameters) now fails with exit 2, `error[CODE]` and a hint — naming a CLI command
/// for peerlite's own objects — and afterwards the store passes `check --full`, captures and
/// syncs.
#[test]
fn every_hostile_statement_fails_with_its_code_and_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let store = hostile::fixture(dir.path()).unwrap();
    let table = hostile::statements(&store).unwrap();
    store.close().unwrap();
    let db = hostile::fixture_path(dir.path());
    let mut wrong = Vec::new();
    let mut ran = 0;
    for h in table.iter().filter(|h| h.params.is_empty()) {
        ran += 1;
        let (status, _, stderr) = sql(&db, &h.sql);
        let first = stderr.lines().next().unwrap_or_default();
        let hint = stderr
            .lines()
            .find_map(|l| l.strip_prefix("hint: "))
            .unwrap_or_default();
        let ok = status == 2
            && first.starts_with(&format!("error[{}]", h.code))
            && !hint.is_empty()
            && (h.code != hostile::PROTECTED || hint.contains("`peerlite "));
        if !ok {
            wrong.push(format!("`{}`: exit {status}, {stderr:?}", h.sql));
        }
    }
    assert!(ran > 70);
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    let (status, out, err) = run(peerlite().arg("check").arg("--full").arg(&db));
    assert_eq!((status, out.as_str()), (0, "ok\n"), "{err}");
    let (status, _, err) = sql(
        &db,
        "INSERT INTO note(id, body) VALUES (3, 'after the attack')",
    );
    assert_eq!(status, 0, "{err}");
    let (status, out, _) = run(peerlite().arg("changes").arg(&db).args(["--table", "note"]));
    assert_eq!(status, 0);
    assert!(out.lines().count() >= 2, "{out}");
    let phone = peerlite::RdbStore::open(peerlite::StoreConfig::new(&db)).unwrap();
    let laptop = hostile::open_peer(dir.path()).unwrap();
    sync_in_memory(&phone, &laptop, SyncMode::PushPull, None).unwrap();
    let mirror = laptop
        .obtain_distributed_table_name("phone", "note")
        .unwrap();
    let count = peerlite_testkit::count_rows(&laptop, &mirror).unwrap();
    assert_eq!(count, peerlite_testkit::count_rows(&phone, "note").unwrap());
}

/// Story: a key-value store is a relational store underneath, and `peerlite sql` on its file
/// could rewrite `peerlite_kv` behind the KV API (types, limits, notifications). Its table is
/// written through `peerlite kv` only; reading it stays allowed.
#[test]
fn the_key_value_table_is_written_through_kv_only() {
    let dir = tempfile::tempdir().unwrap();
    let kv_dir = dir.path().join("kv");
    let (status, _, err) = run(peerlite()
        .arg("kv")
        .arg(&kv_dir)
        .args(["prefs", "put", "theme", "dark"]));
    assert_eq!(status, 0, "{err}");
    let db = kv_dir.join("prefs.db");
    assert!(db.exists());
    for statement in [
        "DELETE FROM peerlite_kv",
        "UPDATE peerlite_kv SET value = 'x'",
        "INSERT INTO peerlite_kv(key, value, type) VALUES ('k', 'v', 0)",
        "DROP TABLE peerlite_kv",
    ] {
        let (status, _, stderr) = sql(&db, statement);
        assert_eq!(status, 2, "{statement}");
        assert!(
            stderr.starts_with("error[17050001]"),
            "{statement}: {stderr}"
        );
        assert!(
            stderr.contains("hint: ") && stderr.contains("`peerlite kv`"),
            "{stderr}"
        );
    }
    let (status, out, _) = sql(&db, "SELECT key FROM peerlite_kv");
    assert_eq!(status, 0);
    assert!(out.contains("theme"));
    let (status, out, _) = run(peerlite()
        .arg("kv")
        .arg(&kv_dir)
        .args(["prefs", "get", "theme"]));
    assert_eq!((status, out.trim()), (0, "dark"));
}

/// Story: a capture trigger dropped by another tool stopped capture while `check` said ok.
/// `check --full` now exits 3 with `error[17050002]` naming the trigger and a hint naming
/// `peerlite distribute`, which recreates it; the check then passes again.
#[test]
fn check_full_reports_damaged_objects_and_distribute_repairs_the_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    let (status, _, err) = sql(&db, "CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT)");
    assert_eq!(status, 0, "{err}");
    let (status, _, err) = run(peerlite().arg("distribute").arg(&db).arg("note"));
    assert_eq!(status, 0, "{err}");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TRIGGER peerlite_1_ad; DROP INDEX peerlite_clock_1_seq")
        .unwrap();
    let (status, _, stderr) = run(peerlite().arg("check").arg("--full").arg(&db));
    assert_eq!(status, 3, "{stderr}");
    assert!(stderr.starts_with("error[17050002]"), "{stderr}");
    assert!(
        stderr.contains("peerlite_1_ad") && stderr.contains("peerlite_clock_1_seq"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: ") && stderr.contains("`peerlite distribute"),
        "{stderr}"
    );
    let (status, out, _) = run(peerlite().arg("--json").arg("check").arg("--full").arg(&db));
    assert_eq!(status, 3, "{out}");
    let (status, _, err) = run(peerlite().arg("distribute").arg(&db).arg("note"));
    assert_eq!(status, 0, "{err}");
    let (status, out, err) = run(peerlite().arg("check").arg("--full").arg(&db));
    assert_eq!((status, out.as_str()), (0, "ok\n"), "{err}");
}

/// Story: `check --full` said ok for a store whose `peerlite_meta` another tool had dropped
/// (the open before the check minted a new identity), and failed with exit 2 and "no such
/// table" when a clock table was dropped. Now both are reported as 17050002 with exit 3, no
/// command remakes the identity (the hint names `peerlite restore`, which mends it), and a
/// dropped clock is recreated by `peerlite distribute`.
#[test]
fn check_full_reports_damaged_identity_and_missing_clocks_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    support::sql(
        &db,
        &[
            "CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT)",
            "INSERT INTO note VALUES (1, 'a')",
        ],
    );
    assert_eq!(run(peerlite().arg("distribute").arg(&db).arg("note")).0, 0);
    support::sql(&db, &["INSERT INTO note VALUES (2, 'b')"]);
    assert_eq!(run(peerlite().arg("backup").arg(&db).arg("good")).0, 0);
    let outside = |sql: &str| {
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(sql)
            .unwrap()
    };

    outside("DROP TABLE peerlite_meta");
    let (status, out, err) = run(peerlite().args(["check", "--full"]).arg(&db));
    assert_eq!((status, out.as_str()), (3, ""), "{err}");
    assert!(
        err.starts_with("error[17050002]: ") && err.contains("peerlite_meta"),
        "{err}"
    );
    assert!(err.contains("peerlite restore"), "{err}");
    let (status, _, err) = sql(&db, "INSERT INTO note VALUES (3, 'c')");
    assert_eq!(status, 2, "{err}");
    assert!(err.starts_with("error[17050002]"), "{err}");
    let (status, out, err) = run(peerlite().arg("restore").arg(&db).arg("good"));
    assert_eq!(status, 0, "{out}{err}");
    let (status, out, err) = run(peerlite().args(["check", "--full"]).arg(&db));
    assert_eq!((status, out.as_str()), (0, "ok\n"), "{err}");

    outside("DROP TABLE peerlite_clock_1");
    let (status, out, err) = run(peerlite().args(["check", "--full"]).arg(&db));
    assert_eq!((status, out.as_str()), (3, ""), "{err}");
    assert!(
        err.contains("clock peerlite_clock_1 of note is missing"),
        "{err}"
    );
    assert_eq!(run(peerlite().arg("distribute").arg(&db).arg("note")).0, 0);
    let (status, _, err) = run(peerlite().args(["check", "--full"]).arg(&db));
    assert_eq!(status, 0, "{err}");
}
