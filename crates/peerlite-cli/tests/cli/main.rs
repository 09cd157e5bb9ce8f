//! End-to-end tests of the `peerlite` binary: real processes, real files, the documented
//! output shapes and exit codes (0 ok, 1 usage, 2 failed operation).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use predicates::prelude::*;

#[path = "../support/mod.rs"]
mod support;

use support::{json_of, peerlite, stdout_of};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn sql_prints_a_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("CREATE TABLE emp(id INTEGER PRIMARY KEY, name TEXT, pic BLOB)")
        .arg("INSERT INTO emp(name, pic) VALUES ('Lisa', x'01ff'), ('Bo', NULL)")
        .assert()
        .success()
        .stdout("");
    let table = stdout_of(
        peerlite()
            .arg("sql")
            .arg(&db)
            .arg("SELECT id, name, pic FROM emp ORDER BY id"),
    );
    assert_eq!(
        table,
        "id | name | pic\n---+------+--------\n1  | Lisa | x'01ff'\n2  | Bo   | NULL\n"
    );
    let rows = json_of(
        peerlite()
            .arg("--json")
            .arg("sql")
            .arg(&db)
            .arg("SELECT id, name, pic FROM emp ORDER BY id"),
    );
    assert_eq!(
        rows,
        serde_json::json!({"columns": ["id", "name", "pic"], "rows": [[1, "Lisa", {"blob": "01ff"}], [2, "Bo", null]]})
    );
}

#[test]
fn sql_runs_all_statements_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("CREATE TABLE t(x)")
        .assert()
        .success();
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("INSERT INTO t VALUES (1)")
        .arg("INSERT INTO nope VALUES (2)")
        .assert()
        .code(2)
        .stderr(
            predicate::str::starts_with("error[14800021]")
                .and(predicate::str::contains("no such table: nope")),
        )
        .stderr(predicate::str::contains("\nhint: "));
    let rows = json_of(
        peerlite()
            .arg("--json")
            .arg("sql")
            .arg(&db)
            .arg("SELECT count(*) AS n FROM t"),
    );
    assert_eq!(
        rows,
        serde_json::json!({"columns": ["n"], "rows": [[0]]}),
        "the first insert was rolled back with the failing one"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_reported_as_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    std::fs::write(&db, "these are my notes, not a database\n").unwrap();
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("SELECT 1")
        .assert()
        .code(2)
        .stderr(
            predicate::str::starts_with("error[14800011]")
                .and(predicate::str::contains("not a database")),
        );
    assert_eq!(
        std::fs::read_to_string(&db).unwrap(),
        "these are my notes, not a database\n",
        "the file is untouched"
    );
}

#[test]
fn usage_errors_exit_1() {
    peerlite()
        .arg("sql")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("Usage"));
    peerlite().arg("no-such-command").assert().code(1);
    let dir = tempfile::tempdir().unwrap();
    peerlite()
        .args(["kv"])
        .arg(dir.path())
        .args(["s", "put", "k", "not-a-number", "--type", "integer"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a valid integer"));
    peerlite().arg("--help").assert().success();
}

#[test]
fn kv_put_get_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let kv = |args: &[&str]| {
        let mut c = peerlite();
        c.arg("kv").arg(dir.path()).arg("prefs").args(args);
        c
    };
    kv(&["put", "ui.theme", "dark"]).assert().success();
    kv(&["put", "ui.size", "14", "--type", "integer"])
        .assert()
        .success();
    kv(&["put", "ui.on", "true", "--type", "bool"])
        .assert()
        .success();
    kv(&["put", "other", "00ff", "--type", "bytes"])
        .assert()
        .success();
    assert_eq!(stdout_of(&mut kv(&["get", "ui.theme"])), "dark\n");
    assert_eq!(
        stdout_of(&mut kv(&["list", "--prefix", "ui."])),
        "ui.on\ttrue\nui.size\t14\nui.theme\tdark\n"
    );
    let mut json = kv(&["get", "ui.size"]);
    json.arg("--json");
    assert_eq!(
        json_of(&mut json),
        serde_json::json!({"key": "ui.size", "value": 14, "type": "integer"})
    );
    let mut list = kv(&["list"]);
    list.arg("--json");
    let all = json_of(&mut list);
    assert_eq!(all.as_array().unwrap().len(), 4);
    assert_eq!(
        all[0],
        serde_json::json!({"key": "other", "value": "00ff", "type": "bytes"})
    );
    kv(&["delete", "ui.theme"]).assert().success();
    kv(&["get", "ui.theme"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[15100004]"));
    kv(&["delete", "ui.theme"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[15100004]"));
}

#[test]
fn kv_bad_input_is_refused_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    peerlite()
        .arg("kv")
        .arg(dir.path())
        .args(["../escape", "put", "k", "v"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[401]"));
    let long_key = "k".repeat(1025);
    peerlite()
        .arg("kv")
        .arg(dir.path())
        .args(["s", "put", &long_key, "v"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[401]").and(predicate::str::contains("1024")));
    peerlite()
        .arg("kv")
        .arg(dir.path())
        .args(["missing_store", "get", "k"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[15100004]"));
}

#[test]
fn migrate_applies_pending_files_and_version_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    write(
        &migrations,
        "0001_init.sql",
        "CREATE TABLE book(id INTEGER PRIMARY KEY, name TEXT);",
    );
    write(
        &migrations,
        "0002_pages.sql",
        "ALTER TABLE book ADD COLUMN pages INTEGER DEFAULT 0;",
    );
    assert_eq!(
        stdout_of(peerlite().arg("migrate").arg(&db).arg(&migrations)),
        "0 → 2\n  0001_init\n  0002_pages\n"
    );
    assert_eq!(stdout_of(peerlite().arg("version").arg(&db)), "2\n");
    assert_eq!(
        json_of(peerlite().arg("--json").arg("version").arg(&db)),
        serde_json::json!({"version": 2})
    );
    assert_eq!(
        stdout_of(peerlite().arg("migrate").arg(&db).arg(&migrations)),
        "2 → 2 (up to date)\n"
    );

    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("INSERT INTO book(name) VALUES ('Dune')")
        .assert()
        .success();
    write(
        &migrations,
        "0003_author.sql",
        "ALTER TABLE book ADD COLUMN author TEXT;",
    );
    let dry = stdout_of(
        peerlite()
            .arg("migrate")
            .arg(&db)
            .arg(&migrations)
            .arg("--dry-run"),
    );
    assert!(dry.starts_with("2 → 3 (dry run"), "{dry}");
    assert_eq!(
        stdout_of(peerlite().arg("version").arg(&db)),
        "2\n",
        "a dry run changes nothing"
    );
    let report = json_of(
        peerlite()
            .arg("--json")
            .arg("migrate")
            .arg(&db)
            .arg(&migrations),
    );
    assert_eq!(
        report,
        serde_json::json!({"from": 2, "to": 3, "steps": ["0003_author"], "dry_run": false})
    );
}

#[test]
fn a_failing_migration_keeps_the_old_version_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let migrations = dir.path().join("m");
    std::fs::create_dir(&migrations).unwrap();
    write(
        &migrations,
        "0001_init.sql",
        "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);",
    );
    peerlite()
        .arg("migrate")
        .arg(&db)
        .arg(&migrations)
        .assert()
        .success();
    write(
        &migrations,
        "0002_broken.sql",
        "ALTER TABLE t ADD COLUMN y; DELETE FROM t; SELECT * FROM nothing_here;",
    );
    peerlite()
        .arg("migrate")
        .arg(&db)
        .arg(&migrations)
        .assert()
        .code(2)
        .stderr(
            predicate::str::starts_with("error[17010001]")
                .and(predicate::str::contains("0002_broken")),
        );
    assert_eq!(stdout_of(peerlite().arg("version").arg(&db)), "1\n");
    let rows = json_of(
        peerlite()
            .arg("--json")
            .arg("sql")
            .arg(&db)
            .arg("SELECT * FROM t ORDER BY x"),
    );
    assert_eq!(
        rows,
        serde_json::json!({"columns": ["x"], "rows": [[1], [2]]}),
        "no column y, no rows deleted"
    );
    write(&migrations, "0004_gap.sql", "SELECT 1;");
    peerlite()
        .arg("migrate")
        .arg(&db)
        .arg(&migrations)
        .assert()
        .code(2)
        .stderr(
            predicate::str::starts_with("error[14800001]")
                .and(predicate::str::contains("version 3")),
        );
}

#[test]
fn encrypted_stores_need_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("secret.db");
    peerlite()
        .args(["--key", "s3cret", "sql"])
        .arg(&db)
        .arg("CREATE TABLE t(x); INSERT INTO t VALUES ('hidden words')")
        .assert()
        .success();
    let bytes = std::fs::read(&db).unwrap();
    assert!(!bytes.starts_with(b"SQLite format 3\0"));
    peerlite()
        .arg("version")
        .arg(&db)
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[14800020]"));
    peerlite()
        .args(["--key", "wrong", "version"])
        .arg(&db)
        .assert()
        .code(2)
        .stderr(
            predicate::str::starts_with("error[14800020]")
                .and(predicate::str::contains("hint: give the key")),
        );
    let rows = json_of(
        peerlite()
            .env("PEERLITE_KEY", "s3cret")
            .arg("--json")
            .arg("sql")
            .arg(&db)
            .arg("SELECT x FROM t"),
    );
    assert_eq!(
        rows,
        serde_json::json!({"columns": ["x"], "rows": [["hidden words"]]})
    );
}

/// The whole story, the network chapter included: three devices as real nodes on loopback
/// over TLS pair, converge on a single-version table, settle a concurrent edit the same way
/// everywhere, hold each other's collaboration rows in device tables, answer a remote query,
/// and refuse a device nobody trusts and a device below the data's level with their codes.
#[test]
fn demo_tells_the_story() {
    let (code, out, err) = support::run(peerlite().args(["demo", "--rows", "200"]));
    assert_eq!(code, 0, "{out}\n{err}");
    for expected in [
        "[1] Versioned open",
        "rows kept: 200 of 200",
        "error[17010001]",
        "still version 2, 200 rows",
        "version 3, 200 rows with a PHONE",
        "observer heard",
        "error[15100004]",
        "the wrong key is error[14800020]",
        "the right key reads",
        "Sync conflicts: two devices hand out the same coupon code",
        "1 conflict(s) recorded on the phone, 1 on the laptop",
        "phone keeps c-phone, laptop keeps c-phone",
        "] On the network: three devices, real nodes on loopback, paired, over TLS",
        "TLS 1.3, mutual: every device is connected to both others",
        "     phone: jam-1 jam x1, pen-1 pen x2, tea-1 sencha x1\n",
        "    laptop: jam-1 jam x1, pen-1 pen x2, tea-1 sencha x1\n",
        "    tablet: jam-1 jam x1, pen-1 pen x2, tea-1 sencha x1\n",
        "every device: tea-1 qty = 3 (phone 3, laptop 3, tablet 3) — the laptop's write",
        "the merge keeps the greater (stamp, device id)",
        "--table note` prints peerlite_dev_",
        "2  | fix the bike",
        "the phone's own copy of the tablet's notes still has 1 row",
        "the laptop holds the phone's pulse; the tablet holds nothing of it",
        "the 4 nodes shut down: no connection left open, every store closed",
        "Client reset: a device away past the retention keeps its offline edits",
        "the phone comes back and pulls: error[17040011] client reset required",
        " phone: pen x1, sencha x1, cake x2\n",
        "laptop: pen x1, sencha x1, cake x2\n",
        "the offline edits survive, the delete the phone missed stands, and both devices agree",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // The network chapter comes after every chapter before it, and the reset chapter last.
    let network = out.find("] On the network").unwrap();
    assert!(out.find("Convergence over a bad network").unwrap() < network);
    assert!(network < out.find("] Client reset").unwrap());
    // Status lines as `peerlite sync` prints them, each naming the device by its full id.
    let id_of = |name: &str| {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name}: id ")))
            .unwrap_or_else(|| panic!("no id line for {name} in:\n{out}"));
        line.split_whitespace()
            .nth(2)
            .unwrap()
            .trim_end_matches('…')
            .to_owned()
    };
    let phone = id_of("phone");
    let stranger = out
        .split("a fourth device, stranger ")
        .nth(1)
        .and_then(|rest| rest.split('…').next())
        .unwrap_or_else(|| panic!("no stranger in:\n{out}"))
        .to_owned();
    let status = |code: &str| {
        out.lines()
            .map(str::trim)
            .find(|l| l.contains(&format!(" error[{code}] ")))
            .unwrap_or_else(|| panic!("no error[{code}] line in:\n{out}"))
            .to_owned()
    };
    assert!(
        status("17060002").starts_with(&phone),
        "the stranger is refused by the phone"
    );
    assert!(status("17060002").contains(" untrusted: "));
    assert!(
        status("17060015").starts_with(&stranger) && status("17060015").contains(" untrusted: "),
        "the phone will not dial it"
    );
    let level = status("17040006");
    assert!(level.starts_with(&phone), "{level}");
    assert!(level.contains(" refused by security level: "), "{level}");
    assert!(
        out.lines()
            .map(str::trim)
            .any(|l| l.starts_with(&phone) && l.ends_with(" ok") && l.matches(' ').count() == 1),
        "the laptop's pull of the S3 data is ok:\n{out}"
    );
    // The refused attempt is logged, naming the stranger.
    assert!(
        err.lines().any(
            |l| l.contains("refused untrusted device during the handshake")
                && l.contains(&stranger)
        ),
        "{err}"
    );
}

#[test]
fn bench_store_prints_three_ratios() {
    let out =
        json_of(peerlite().args(["--json", "bench", "store", "--rows", "2000", "--runs", "1"]));
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        assert!(r["ratio"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["baseline_s"].as_f64().unwrap() > 0.0, "{r}");
    }
}

/// `bench sync` runs its two processes end to end on a tiny table: the JSON has every
/// figure, the table every line, and the receiving device really holds every row (counted
/// here, in the device table its sessions filled, not taken from the bench's word).
#[test]
fn bench_sync_moves_every_row_between_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let out = json_of(
        peerlite()
            .args(["--json", "bench", "sync", "--rows", "2000", "--delta", "50"])
            .arg("--dir")
            .arg(&work),
    );
    assert_eq!(out["bench"], "sync");
    assert_eq!(out["rows"], 2000);
    assert_eq!(out["receiver_rows"], 2000);
    assert!(
        out["initial"]["rows_per_s"].as_f64().unwrap() > 0.0,
        "{out}"
    );
    assert!(
        out["initial"]["local_copy_seconds"].as_f64().unwrap() > 0.0,
        "{out}"
    );
    assert!(out["initial"]["wire_bytes"].as_u64().unwrap() > 0, "{out}");
    if cfg!(target_os = "linux") {
        assert!(
            out["receiver_peak_rss_bytes"].as_u64().unwrap() > 0,
            "{out}"
        );
    }
    for setting in ["zstd", "none", "first_after_initial"] {
        let d = &out["delta"][setting];
        assert!(d["ms"].as_f64().unwrap() > 0.0, "{setting}: {out}");
        assert!(
            d["raw_bytes"].as_u64().unwrap() > 50 * 50,
            "{setting}: {out}"
        );
        // Measured, so each direction carried something: the batch one way, the acks back.
        assert!(d["wire_sent"].as_u64().unwrap() > 0, "{setting}: {out}");
        assert!(d["wire_received"].as_u64().unwrap() > 0, "{setting}: {out}");
    }
    assert_eq!(
        out["delta"]["zstd"]["samples_ms"].as_array().unwrap().len(),
        3
    );

    let sender = stdout_of(
        peerlite()
            .args(["device", "id", "--home"])
            .arg(work.join("sender/home")),
    );
    let db = work.join("receiver/bench.db");
    let table = stdout_of(peerlite().arg("table-name").arg(&db).args([
        "--device",
        sender.trim(),
        "--table",
        "account",
    ]));
    let count = json_of(peerlite().args(["--json", "sql"]).arg(&db).arg(format!(
        "SELECT count(*), count(DISTINCT id) FROM \"{}\"",
        table.trim()
    )));
    assert_eq!(count["rows"][0], serde_json::json!([2000, 2000]));

    let table = stdout_of(peerlite().args(["bench", "sync", "--rows", "2000", "--delta", "50"]));
    for line in [
        "initial sync 2000 rows",
        "local INSERT … SELECT copy",
        "receiver peak RSS (VmHWM)",
        "delta 50 rows, zstd",
        "delta 50 rows, no compression",
        "wire vs raw, no compression",
    ] {
        assert!(table.contains(line), "missing {line:?} in:\n{table}");
    }
}

/// Regression: the global `--key` option and `kv put KEY` shared clap's argument id, so the
/// entry's key silently became the encryption key and the store could not be opened again.
#[test]
fn regress_kv_entry_key_is_not_the_encryption_key() {
    let dir = tempfile::tempdir().unwrap();
    peerlite()
        .arg("kv")
        .arg(dir.path())
        .args(["s", "put", "k", "v"])
        .assert()
        .success();
    let bytes = std::fs::read(dir.path().join("s.db")).unwrap();
    assert!(
        bytes.starts_with(b"SQLite format 3\0"),
        "a store opened without --key is not encrypted"
    );
    assert_eq!(
        stdout_of(peerlite().arg("kv").arg(dir.path()).args(["s", "get", "k"])),
        "v\n"
    );
}
