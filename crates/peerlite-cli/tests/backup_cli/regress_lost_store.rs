//! A database cut to 0 bytes (or lost) beside its backups, clock file or WAL was taken for
//! "no store yet" by the commands: `check` — a command that only reads — wrote a fresh store
//! with a new identity over it (a plaintext one where the store had been encrypted), `repair`
//! said "nothing to repair" and never put the verified backup back, and `sql` let SQLite delete
//! the WAL beside an empty or missing file, with every transaction in it (and its clean-up of
//! "the file it created" removed the WAL of a missing one).
//!
//! Now no command creates or writes a store over such traces: each reports 14800011 with a
//! hint naming `peerlite repair`, the files stay exactly as they were, `backups` still lists
//! the backups, and `repair` salvages what the WAL holds and puts the newest backup back.

use super::*;

/// Every file under `dir` with its size.
fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push((
                    e.path().strip_prefix(dir).unwrap().display().to_string(),
                    e.metadata().unwrap().len(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Every command that opens the store, as arguments after the binary (`DB` stands for it).
const COMMANDS: [&[&str]; 10] = [
    &["check", "DB"],
    &["check", "--full", "DB"],
    &["sql", "DB", "SELECT count(*) FROM t"],
    &["sql", "DB", "CREATE TABLE fresh(x)"],
    &["version", "DB"],
    &["changes", "DB"],
    &["distribute", "DB", "t"],
    &["backup", "DB", "b2"],
    &["conflicts", "DB"],
    &["migrate", "DB", "MIGRATIONS"],
];

fn run_all(db: &Path, migrations: &Path, key: Option<&str>) {
    for args in COMMANDS {
        let mut cmd = peerlite();
        if let Some(key) = key {
            cmd.args(["--key", key]);
        }
        for a in args {
            match *a {
                "DB" => cmd.arg(db),
                "MIGRATIONS" => cmd.arg(migrations),
                a => cmd.arg(a),
            };
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let expected = if args[0] == "check" { 3 } else { 2 };
        assert_eq!(out.status.code(), Some(expected), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error[14800011]: "),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("peerlite repair"), "{args:?}: {stderr}");
    }
}

#[test]
fn no_command_creates_a_store_over_a_lost_one() {
    for key in [None, Some("k")] {
        for emptied in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("a.db");
            let migrations = dir.path().join("m");
            std::fs::create_dir(&migrations).unwrap();
            std::fs::write(migrations.join("0001_a.sql"), "CREATE TABLE a(b);").unwrap();
            make_keyed_db(&db, key, 50, "x");
            let mut cmd = peerlite();
            if let Some(key) = key {
                cmd.args(["--key", key]);
            }
            stdout_of(cmd.arg("backup").arg(&db).arg("b1"));
            if emptied {
                std::fs::write(&db, b"").unwrap();
            } else {
                std::fs::remove_file(&db).unwrap();
            }
            let before = files(dir.path());
            // With its key, without, or with one it never had: nothing is created.
            run_all(&db, &migrations, key);
            run_all(&db, &migrations, None);
            run_all(&db, &migrations, Some("other"));
            assert_eq!(files(dir.path()), before, "{key:?} {emptied}");
            assert_eq!(listed(&[db.as_os_str()]), ["b1"]);
            let mut cmd = peerlite();
            if let Some(key) = key {
                cmd.args(["--key", key]);
            }
            let out = stdout_of(cmd.arg("repair").arg(&db));
            assert!(out.starts_with("repaired from b1\n"), "{out}");
            assert_eq!(rows_of(&db, key), (50, "x".to_owned()));
        }
    }
}

#[test]
fn a_hot_wal_beside_a_lost_file_is_kept_and_salvaged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, 10, "base");
    {
        // A writer killed with committed transactions in its WAL.
        let conn = open(&db, None);
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint = 0; \
             INSERT INTO t(marker, pad) SELECT 'in-wal', randomblob(200) FROM t",
        )
        .unwrap();
        std::mem::forget(conn);
    }
    let wal = std::fs::read(with_suffix(&db, "-wal")).unwrap();
    std::fs::remove_file(&db).unwrap();
    for args in [
        &["sql", "SELECT 1"][..],
        &["sql", "CREATE TABLE x(y)"],
        &["check"],
    ] {
        let out = peerlite()
            .arg(args[0])
            .arg(&db)
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(
            std::fs::read(with_suffix(&db, "-wal")).unwrap(),
            wal,
            "{args:?}: the WAL is kept"
        );
        assert!(!db.exists(), "{args:?}: no store made");
    }
    let out = stdout_of(peerlite().arg("repair").arg(&db));
    assert!(out.starts_with("rebuilt empty\n"), "{out}");
    assert!(!with_suffix(&db, "-wal").exists());
    let report = json_of(peerlite().args(["--json", "check"]).arg(&db));
    assert_eq!(report["ok"], true);
    let quarantine = out
        .lines()
        .find_map(|l| l.strip_prefix("the damaged files are kept in "))
        .unwrap();
    assert_eq!(
        std::fs::read(Path::new(quarantine).join("a.db-wal")).unwrap(),
        wal,
        "the WAL is kept in quarantine as it was"
    );
    assert!(
        out.contains("salvaged") || out.contains("peerlite_lost_and_found"),
        "{out}"
    );
}
