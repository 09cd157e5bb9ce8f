//! Item 12. Failed commands left files behind (`kv put --type foo` created the store first,
//! `kv get` on a missing directory created it, an empty `PEERLITE_KEY` made a plaintext
//! database, a failed `migrate` or a syntax error on a new path left an empty database);
//! temporary directories leaked when `sim` or `demo` were interrupted; a negative
//! `user_version` broke `version` and `backup`; `backups` showed a backup tampered with since
//! as verified; `changes --table nosuch` answered with nothing; SIGXFSZ killed the CLI without
//! a word; `sim` was silent on long runs; a field listed twice in a sync schema was accepted;
//! and hints named library functions a shell user cannot call, or misdirected.

use std::path::Path;
use std::process::Stdio;

use peerlite_testkit::names_no_library_function;

use super::{dir_entries, json_of, peerlite, process, sql, stdout_of};

#[test]
fn failed_commands_leave_no_files_behind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let stores = root.join("kv");
    let migrations = root.join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(migrations.join("0001_broken.sql"), "CREATE TABLE x(").unwrap();
    let fails = |args: &[&str], code: i32| {
        peerlite().current_dir(root).args(args).assert().code(code);
    };
    let long_key = "k".repeat(2000);
    fails(&["kv", "kv", "s", "put", "k", "v", "--type", "foo"], 1);
    fails(
        &["kv", "kv", "s", "put", "k", "abc", "--type", "integer"],
        1,
    );
    fails(&["kv", "kv", "s", "put", &long_key, "v"], 2);
    for op in [vec!["get", "k"], vec!["delete", "k"], vec!["list"]] {
        let mut args = vec!["kv", "kv", "s"];
        args.extend(op);
        fails(&args, 2);
    }
    for command in ["check", "backups", "repair", "backup"] {
        fails(&[command, "--kv", "kv", "s"], 2);
    }
    fails(&["sql", "new.db", "SELEC 1"], 2);
    fails(
        &[
            "sql",
            "new.db",
            "CREATE TABLE t(x); INSERT INTO nope VALUES (1)",
        ],
        2,
    );
    fails(&["migrate", "new.db", "migrations"], 2);
    assert!(
        !stores.exists(),
        "no key-value directory: {:?}",
        dir_entries(&stores)
    );
    assert_eq!(
        dir_entries(root),
        ["migrations"],
        "nothing but the migrations"
    );
    // A failing put in an existing directory removes only the store it created.
    std::fs::create_dir(&stores).unwrap();
    std::fs::write(stores.join("other.txt"), "mine").unwrap();
    fails(&["kv", "kv", "s", "put", &long_key, "v"], 2);
    assert_eq!(dir_entries(&stores), ["other.txt"]);
    // And an existing database is never removed by a failure.
    sql(&root.join("old.db"), &["CREATE TABLE t(x)"]);
    fails(&["sql", "old.db", "SELEC 1"], 2);
    std::fs::write(migrations.join("0001_broken.sql"), "CREATE TABLE y(").unwrap();
    fails(&["migrate", "old.db", "migrations"], 2);
    assert!(root.join("old.db").exists());
}

#[test]
fn an_empty_key_is_a_usage_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e.db");
    for key in [Some(""), None] {
        let mut cmd = peerlite();
        match key {
            Some(k) => cmd.args(["--key", k]),
            None => cmd.env("PEERLITE_KEY", ""),
        };
        cmd.arg("sql")
            .arg(&db)
            .arg("CREATE TABLE t(x)")
            .assert()
            .code(1)
            .stderr(predicates::str::contains("the encryption key is empty"));
    }
    assert!(!db.exists(), "no plaintext database");
}

/// Starts `peerlite ARGS` with its temporary files in `tmp`, and waits until it has made its
/// temporary directory there.
fn start_with_temp_dir(tmp: &Path, args: &[&str], stdout: Stdio) -> std::process::Child {
    let mut child = process()
        .args(args)
        .env("TMPDIR", tmp)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Bounded: a guard against a hang, not a measure of speed.
    for _ in 0..6000 {
        if !dir_entries(tmp).is_empty() {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{args:?} made no temporary directory in {}", tmp.display());
}

fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn interrupted_sim_and_demo_remove_their_temporary_directories() {
    for (args, sig) in [
        (&["sim", "--ops", "500000"][..], "INT"),
        (&["sim", "--ops", "500000"][..], "TERM"),
        (&["sim", "--ops", "500000"][..], "HUP"),
        (&["demo", "--rows", "100000"][..], "INT"),
        (&["demo", "--rows", "100000"][..], "TERM"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = start_with_temp_dir(tmp.path(), args, Stdio::null());
        signal(&child, sig);
        let status = child.wait().unwrap();
        assert!(!status.success(), "{args:?} SIG{sig}: {status:?}");
        assert_eq!(
            dir_entries(tmp.path()),
            Vec::<String>::new(),
            "{args:?} SIG{sig}: nothing left"
        );
    }
}

#[test]
fn a_closed_pipe_removes_the_temporary_directories_too() {
    use std::io::BufRead;
    // The demo writes as it goes: the reader leaves after the first line.
    let tmp = tempfile::tempdir().unwrap();
    let mut demo = start_with_temp_dir(tmp.path(), &["demo"], Stdio::piped());
    let mut first = String::new();
    std::io::BufReader::new(demo.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("peerlite demo"), "{first}");
    let status = demo.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(141),
        "stopped quietly at the closed pipe"
    );
    assert_eq!(dir_entries(tmp.path()), Vec::<String>::new());
    // The simulation writes at the end, to a reader gone long before.
    let tmp = tempfile::tempdir().unwrap();
    let mut sim = start_with_temp_dir(tmp.path(), &["sim", "--ops", "300"], Stdio::piped());
    drop(sim.stdout.take());
    assert_eq!(sim.wait().unwrap().code(), Some(141));
    assert_eq!(dir_entries(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_negative_user_version_works_in_version_backup_and_backups() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    sql(&db, &["CREATE TABLE t(x); PRAGMA user_version = -7"]);
    assert_eq!(stdout_of(peerlite().arg("version").arg(&db)), "-7\n");
    assert_eq!(
        json_of(peerlite().arg("--json").arg("version").arg(&db)),
        serde_json::json!({"version": -7})
    );
    let backup = json_of(peerlite().arg("--json").arg("backup").arg(&db).arg("b1"));
    assert_eq!(backup["version"], -7);
    let listed = json_of(peerlite().arg("--json").arg("backups").arg(&db));
    assert_eq!(listed[0]["version"], -7);
    assert_eq!(listed[0]["verified"], true);
    peerlite()
        .arg("restore")
        .arg(&db)
        .arg("b1")
        .assert()
        .success();
}

#[test]
fn a_backup_written_since_is_not_listed_as_verified() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    sql(
        &db,
        &["CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(20000))"],
    );
    for name in ["same-size", "kept"] {
        peerlite()
            .arg("backup")
            .arg(&db)
            .arg(name)
            .assert()
            .success();
    }
    let file = dir.path().join("backup").join("a.db").join("same-size");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::thread::sleep(std::time::Duration::from_millis(20)); // a later modification time
    std::fs::write(&file, &bytes).unwrap();
    let listed = json_of(peerlite().arg("--json").arg("backups").arg(&db));
    let verified = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .unwrap()["verified"]
            .clone()
    };
    assert_eq!(
        verified("same-size"),
        false,
        "tampered, same size: {listed}"
    );
    assert_eq!(verified("kept"), true);
    peerlite()
        .arg("restore")
        .arg(&db)
        .arg("same-size")
        .assert()
        .code(2)
        .stderr(predicates::str::starts_with("error[17020002]"));
}

#[test]
fn changes_of_a_table_that_is_not_distributed_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    sql(
        &db,
        &["CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT)"],
    );
    peerlite()
        .arg("changes")
        .arg(&db)
        .args(["--table", "nosuch"])
        .assert()
        .code(2)
        .stderr(predicates::str::starts_with(
            "error[14800001]: no such table: nosuch",
        ));
    peerlite()
        .arg("changes")
        .arg(&db)
        .args(["--table", "note"])
        .assert()
        .code(2)
        .stderr(predicates::str::starts_with("error[17040001]"));
    peerlite()
        .arg("distribute")
        .arg(&db)
        .arg("note")
        .assert()
        .success();
    peerlite()
        .arg("changes")
        .arg(&db)
        .args(["--table", "note"])
        .assert()
        .success();
}

/// `peerlite ARGS` under `ulimit -f` (SIGXFSZ left to the CLI).
fn under_file_size_limit(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 256; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_peerlite"))
        .args(args)
        .env_remove("PEERLITE_KEY")
        .output()
        .unwrap()
}

#[test]
fn a_file_size_limit_is_reported_as_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let grow = "CREATE TABLE IF NOT EXISTS t(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL \
                SELECT i + 1 FROM c WHERE i < 1000) INSERT INTO t SELECT randomblob(1000) FROM c";
    let big = dir.path().join("big.db");
    sql(&big, &[grow]);
    let migrations = dir.path().join("m");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(
        migrations.join("0001_grow.sql"),
        "CREATE TABLE u(x); INSERT INTO u SELECT x FROM t",
    )
    .unwrap();
    let cases: [Vec<&std::ffi::OsStr>; 3] = [
        vec!["sql".as_ref(), db.as_os_str(), grow.as_ref()],
        vec!["backup".as_ref(), big.as_os_str()],
        vec!["migrate".as_ref(), big.as_os_str(), migrations.as_os_str()],
    ];
    for args in &cases {
        let out = under_file_size_limit(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: reported, not killed: {stderr}"
        );
        assert!(stderr.starts_with("error["), "{args:?}: {stderr}");
        let hint = stderr
            .lines()
            .find(|l| l.starts_with("hint: "))
            .unwrap_or_default();
        assert!(!hint.contains("fix the failing step"), "{args:?}: {hint}");
    }
}

#[test]
fn long_simulations_report_progress_on_stderr_only() {
    let out = process()
        .args(["--json", "sim", "--ops", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["converged"], true, "stdout is the report alone");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sim: 500 of 1000 writes"), "{stderr}");
    // A short run stays quiet.
    let out = process().args(["sim", "--ops", "50"]).output().unwrap();
    assert!(out.stderr.is_empty());
}

#[test]
fn a_field_listed_twice_in_a_sync_schema_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    sql(
        &db,
        &[
            "CREATE TABLE item(id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE, title TEXT)",
        ],
    );
    let schema = dir.path().join("sync_schema.json");
    std::fs::write(
        &schema,
        r#"{"dbSchema": [{"version": 1, "bundleName": "b", "dbName": "shop", "tables": [{
            "tableName": "item", "deviceSyncFields": ["uuid", "title"], "fields": [
            {"columnName": "uuid", "type": "Text", "primaryKey": true, "notNull": true},
            {"columnName": "title", "type": "Text"},
            {"columnName": "title", "type": "Integer"}]}]}]}"#,
    )
    .unwrap();
    let out = peerlite()
        .args(["--json", "schema-check"])
        .arg(&schema)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = out["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["code"] == 17030024 && p["column"] == "title"),
        "{out}"
    );
    peerlite()
        .arg("distribute")
        .arg(&db)
        .arg("item")
        .args(["--mode", "single-version", "--schema"])
        .arg(&schema)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("error[17030024]"));
}

#[test]
fn every_hint_names_cli_commands_and_none_misdirects() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sql(&root.join("a.db"), &["CREATE TABLE t(x)"]);
    sql(&root.join("b.db"), &["CREATE TABLE t(x)"]);
    sql(&root.join("v3.db"), &["PRAGMA user_version = 3"]);
    std::fs::write(root.join("notes.db"), "not a database at all, just notes").unwrap();
    let m = root.join("m");
    std::fs::create_dir(&m).unwrap();
    std::fs::write(m.join("0001_a.sql"), "CREATE TABLE a(x)").unwrap();
    peerlite()
        .current_dir(root)
        .args(["backup", "a.db", "of-a"])
        .assert()
        .success();
    peerlite()
        .current_dir(root)
        .args(["kv", "kv", "s", "put", "k", "v"])
        .assert()
        .success();
    let of_a = root.join("backup/a.db/of-a");
    let cases: Vec<Vec<&str>> = vec![
        vec!["version", "missing.db"],
        vec!["check", "missing.db"],
        vec!["backup", "missing.db"],
        vec!["backups", "missing.db"],
        vec!["restore", "missing.db", "x"],
        vec!["repair", "missing.db"],
        vec!["changes", "missing.db"],
        vec!["conflicts", "missing.db"],
        vec!["distribute", "missing.db", "t"],
        vec!["delete-backup", "missing.db", "x"],
        vec!["kv", "nodir", "s", "get", "k"],
        vec!["kv", "kv", "nostore", "get", "k"],
        vec!["kv", "kv", "s", "get", "nokey"],
        vec!["kv", "kv", "s", "delete", "nokey"],
        vec!["sql", "a.db", "BEGIN"],
        vec!["sql", "a.db", "INSERT INTO t VALUES (1); COMMIT"],
        vec!["sql", "a.db", "SELECT nope FROM t"],
        vec!["sql", "notes.db", "SELECT 1"],
        vec!["restore", "b.db", of_a.to_str().unwrap()],
        vec!["restore", "a.db", "nosuch"],
        vec!["migrate", "v3.db", "m"],
        vec!["distribute", "a.db", "nosuch"],
    ];
    for args in cases {
        let out = peerlite().current_dir(root).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let hint = stderr
            .lines()
            .find_map(|l| l.strip_prefix("hint: "))
            .unwrap_or_else(|| panic!("{args:?}: a hint line: {stderr}"));
        assert!(names_no_library_function(hint), "{args:?}: {hint}");
        assert!(
            hint.contains('`') || hint.contains("--"),
            "{args:?} names a command or flag: {hint}"
        );
        if args[1] == "missing.db" {
            assert!(!hint.contains("plain file name"), "{args:?}: {hint}");
        }
    }
}

/// An interrupted demo used to go on working after its temporary directory was removed, then
/// fail with an error about a problem that did not exist ("disk I/O error — check the disk")
/// and exit 2. It now dies by the signal, at every point, with no error line.
#[test]
fn an_interrupted_demo_dies_by_its_signal_without_a_bogus_error() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    for after_lines in [1usize, 4, 9, 16, 25, 40] {
        let tmp = tempfile::tempdir().unwrap();
        let mut demo = process()
            .args(["demo", "--rows", "20000"])
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(demo.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < after_lines && lines.next().is_some() {
            seen += 1;
        }
        signal(&demo, "TERM");
        // Keep reading so a demo still writing never blocks on a full pipe.
        for _ in lines {}
        let out = demo.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            continue; // it finished before the signal came
        }
        assert!(
            out.status.signal() == Some(15) || out.status.code() == Some(143),
            "after {after_lines} lines: {:?}\n{stderr}",
            out.status
        );
        assert!(
            !stderr.contains("error["),
            "after {after_lines} lines: {stderr}"
        );
        assert_eq!(dir_entries(tmp.path()), Vec::<String>::new());
    }
}
