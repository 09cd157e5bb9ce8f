//! The commands on a database file: every output shape, the JSON values, the exit codes.

use std::collections::BTreeSet;

use super::*;

fn keys(v: &Json) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// A database at schema version 1 (through `peerlite migrate`) holding `rows` rows.
fn versioned_db(dir: &Path, rows: u32) -> PathBuf {
    let db = dir.join("app.db");
    let migrations = dir.join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(
        migrations.join("0001_init.sql"),
        "CREATE TABLE t(id INTEGER PRIMARY KEY, marker TEXT, pad BLOB);",
    )
    .unwrap();
    peerlite()
        .arg("migrate")
        .arg(&db)
        .arg(&migrations)
        .assert()
        .success();
    make_db(&db, rows, "a");
    db
}

#[test]
fn backup_prints_its_path_and_json_describes_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = versioned_db(dir.path(), 3000);
    let bdir = backup_dir(&db);

    let out = stdout_of(peerlite().arg("backup").arg(&db).arg("BK1"));
    assert_eq!(out, format!("{}\n", bdir.join("BK1").display()));
    assert_eq!(files_in(&bdir), ["BK1", "BK1.manifest.json"]);

    let info =
        json_of(
            peerlite()
                .args(["--json", "backup"])
                .arg(&db)
                .args(["BK2", "--step-pages", "7"]),
        );
    assert_eq!(
        keys(&info),
        set(&[
            "name", "path", "pages", "bytes", "checksum", "version", "created", "restarts"
        ])
    );
    let path = bdir.join("BK2");
    assert_eq!(info["name"], "BK2");
    assert_eq!(info["path"].as_str().unwrap(), path.to_str().unwrap());
    let bytes = std::fs::metadata(&path).unwrap().len();
    assert_eq!(info["bytes"].as_u64().unwrap(), bytes);
    let conn = open(&path, None);
    let (pages, page_size): (i64, i64) = (
        conn.query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap(),
        conn.query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap(),
    );
    drop(conn);
    assert_eq!(info["pages"].as_i64().unwrap(), pages);
    assert_eq!((pages * page_size) as u64, bytes);
    assert!(pages > 100, "3000 rows of 200 bytes: {pages} pages");
    assert_eq!(info["version"], 1, "the schema version of the backup");
    assert_eq!(info["restarts"], 0);
    assert_checksum(info["checksum"].as_str().unwrap());
    assert_rfc3339(info["created"].as_str().unwrap());
    assert_eq!(
        content_of(&path, None),
        content_of(&db, None),
        "the backup holds exactly the database's rows"
    );

    // Without a name: backup-<UTC time>.
    let out = stdout_of(peerlite().arg("backup").arg(&db));
    let default = PathBuf::from(out.trim_end());
    assert_eq!(default.parent().unwrap(), bdir);
    let name = default.file_name().unwrap().to_str().unwrap().to_owned();
    let stamp = name.strip_prefix("backup-").unwrap();
    assert_eq!(stamp.len(), "20261121T080102.123Z".len(), "{name}");
    assert!(default.is_file());
    assert!(with_suffix(&default, ".manifest.json").is_file());

    // The list, newest first, as a table…
    let table = stdout_of(peerlite().arg("backups").arg(&db));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    let cells =
        |line: &str| -> Vec<String> { line.split('|').map(|c| c.trim().to_owned()).collect() };
    assert_eq!(
        cells(lines[0]),
        [
            "name",
            "created",
            "bytes",
            "version",
            "verified",
            "automatic",
            "problem"
        ]
    );
    assert!(lines[1].chars().all(|c| c == '-' || c == '+'), "{table}");
    let names: Vec<String> = lines[2..].iter().map(|l| cells(l)[0].clone()).collect();
    assert_eq!(names, [name.as_str(), "BK2", "BK1"]);
    for line in &lines[2..] {
        let c = cells(line);
        assert_rfc3339(&c[1]);
        assert_eq!(c[2], bytes.to_string(), "{line}");
        assert_eq!(c[3..], ["1", "true", "false", ""], "{line}");
    }

    // …and as JSON.
    let list = json_of(peerlite().args(["--json", "backups"]).arg(&db));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    for b in list {
        assert_eq!(
            keys(b),
            set(&[
                "name",
                "path",
                "created",
                "bytes",
                "version",
                "verified",
                "automatic",
                "encrypted",
                "checksum",
                "problem"
            ])
        );
        assert_eq!(b["problem"], Json::Null);
        assert_eq!(b["verified"], true);
        assert_eq!(b["automatic"], false);
        assert_eq!(b["encrypted"], false);
        assert_eq!(b["version"], 1);
        assert_eq!(b["bytes"].as_u64().unwrap(), bytes);
        assert_checksum(b["checksum"].as_str().unwrap());
    }
    let bk2 = &list[1];
    assert_eq!(bk2["name"], "BK2");
    assert_eq!(bk2["path"], info["path"]);
    assert_eq!(bk2["checksum"], info["checksum"]);
    assert_eq!(bk2["created"], info["created"]);
    assert_eq!(bk2["bytes"], info["bytes"]);
}

#[test]
fn restore_prints_what_it_restored_and_keeps_the_replaced_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = versioned_db(dir.path(), 3000);
    let bdir = backup_dir(&db);
    let original = content_of(&db, None);
    stdout_of(peerlite().arg("backup").arg(&db).arg("BK"));

    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("DELETE FROM t WHERE id > 100")
        .assert()
        .success();
    let damaged = content_of(&db, None);
    assert_eq!(damaged.0, 100);

    let out = stdout_of(peerlite().arg("restore").arg(&db).arg("BK"));
    assert_eq!(
        out,
        format!(
            "restored {} (version 1)\nthe replaced data is kept in {}\n",
            bdir.join("BK").display(),
            bdir.join("pre-restore").display()
        )
    );
    assert_eq!(
        content_of(&db, None),
        original,
        "the backup's rows are back"
    );
    assert_eq!(stdout_of(peerlite().arg("version").arg(&db)), "1\n");
    assert_eq!(
        content_of(&bdir.join("pre-restore"), None),
        damaged,
        "the safety copy holds exactly the replaced data"
    );
    let list = json_of(peerlite().args(["--json", "backups"]).arg(&db));
    let safety = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "pre-restore")
        .unwrap();
    assert_eq!(safety["automatic"], true);
    assert_eq!(safety["verified"], true);

    // JSON, by path, in small steps.
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("DELETE FROM t")
        .assert()
        .success();
    let path = bdir.join("BK");
    let report = json_of(
        peerlite()
            .args(["--json", "restore"])
            .arg(&db)
            .arg(&path)
            .args(["--step-pages", "3"]),
    );
    let pages = open(&path, None)
        .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
        .unwrap();
    let earlier = PathBuf::from(report["earlier_pre_restore"].as_str().unwrap());
    assert_eq!(
        report,
        serde_json::json!({
            "restored_from": path,
            "backup_version": 1,
            "version": 1,
            "pages": pages,
            "pre_restore_backup": bdir.join("pre-restore"),
            "earlier_pre_restore": earlier,
            "salvage": null,
            "quarantine": null,
            "migrated": null,
        })
    );
    assert_eq!(content_of(&db, None), original);
    assert_eq!(
        content_of(&bdir.join("pre-restore"), None).0,
        0,
        "the newest safety copy holds what this restore replaced"
    );
    assert_eq!(earlier.parent().unwrap(), bdir);
    assert!(
        earlier
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("pre-restore-"),
        "{earlier:?}"
    );
    assert_eq!(
        content_of(&earlier, None),
        damaged,
        "the earlier safety copy is kept, under a name of its own"
    );
    assert_eq!(
        stdout_of(peerlite().args(["check", "--full"]).arg(&db)),
        "ok\n"
    );
}

#[test]
fn delete_backup_reports_each_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, 50, "a");
    let bdir = backup_dir(&db);
    for name in ["BK1", "BK2", "BK3"] {
        stdout_of(peerlite().arg("backup").arg(&db).arg(name));
    }

    let (stdout, stderr) = fails_with(
        peerlite()
            .arg("delete-backup")
            .arg(&db)
            .args(["BK1", "nope", "auto-x", "../x"]),
        2,
    );
    assert_eq!(stderr, "", "the results are on stdout, one line per name");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[0], "BK1: deleted");
    assert!(
        lines[1].starts_with("nope: error[17020001] backup not found: nope"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("auto-x: error[17020006] ") && lines[2].contains("reserved"),
        "{stdout}"
    );
    assert!(lines[3].starts_with("../x: error[14800010] "), "{stdout}");
    assert_eq!(
        files_in(&bdir),
        ["BK2", "BK2.manifest.json", "BK3", "BK3.manifest.json"]
    );
    assert!(
        files_in(dir.path()).iter().all(|f| f != "x"),
        "nothing outside the backup directory is touched"
    );

    let (stdout, stderr) = fails_with(
        peerlite()
            .args(["--json", "delete-backup"])
            .arg(&db)
            .args(["BK2", "BK1"]),
        2,
    );
    assert_eq!(stderr, "");
    let results: Json = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        results[0],
        serde_json::json!({"name": "BK2", "result": "deleted"})
    );
    assert_eq!(results[1]["name"], "BK1");
    assert_eq!(results[1]["result"]["code"], 17020001);
    assert!(
        results[1]["result"]["message"]
            .as_str()
            .unwrap()
            .starts_with("backup not found: BK1"),
        "{results}"
    );
    assert_eq!(results.as_array().unwrap().len(), 2);

    assert_eq!(
        stdout_of(peerlite().arg("delete-backup").arg(&db).arg("BK3")),
        "BK3: deleted\n"
    );
    assert!(files_in(&bdir).is_empty());
    assert_eq!(listed(&[db.as_os_str()]), Vec::<String>::new());
    let (stdout, _) = fails_with(
        peerlite()
            .args(["--json", "delete-backup"])
            .arg(&db)
            .arg("BK3"),
        2,
    );
    let results: Json = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(results[0]["result"]["code"], 17020001, "deleted already");
}

#[test]
fn backup_with_dir_writes_elsewhere_and_restores_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, 500, "a");
    let original = content_of(&db, None);
    let other = dir.path().join("elsewhere").join("deeper");

    let out = stdout_of(
        peerlite()
            .arg("backup")
            .arg(&db)
            .arg("OUT")
            .arg("--dir")
            .arg(&other),
    );
    assert_eq!(out, format!("{}\n", other.join("OUT").display()));
    assert_eq!(files_in(&other), ["OUT", "OUT.manifest.json"]);
    assert!(
        files_in(&backup_dir(&db)).is_empty(),
        "nothing in the default directory"
    );
    assert_eq!(
        listed(&[db.as_os_str()]),
        Vec::<String>::new(),
        "`backups` lists the default directory"
    );
    let info = json_of(
        peerlite()
            .args(["--json", "backup"])
            .arg(&db)
            .arg("OUT2")
            .arg("--dir")
            .arg(&other),
    );
    assert_eq!(
        info["path"].as_str().unwrap(),
        other.join("OUT2").to_str().unwrap()
    );
    assert_eq!(content_of(&other.join("OUT2"), None), original);

    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("DELETE FROM t")
        .assert()
        .success();
    let out = stdout_of(peerlite().arg("restore").arg(&db).arg(other.join("OUT")));
    assert!(
        out.starts_with(&format!(
            "restored {} (version 0)\n",
            other.join("OUT").display()
        )),
        "{out}"
    );
    assert_eq!(content_of(&db, None), original);
}

#[test]
fn check_and_repair_on_a_healthy_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, 500, "a");
    let before = content_of(&db, None);
    assert_eq!(stdout_of(peerlite().arg("check").arg(&db)), "ok\n");
    assert_eq!(
        stdout_of(peerlite().arg("check").arg(&db).arg("--full")),
        "ok\n"
    );
    assert_eq!(
        json_of(peerlite().args(["--json", "check"]).arg(&db)),
        serde_json::json!({"ok": true})
    );
    assert_eq!(
        stdout_of(peerlite().arg("repair").arg(&db)),
        "ok: nothing to repair\n"
    );
    assert_eq!(
        json_of(peerlite().args(["--json", "repair"]).arg(&db)),
        serde_json::json!({"status": "ok"})
    );
    assert_eq!(content_of(&db, None), before);
    assert!(!dir.path().join("quarantine").exists());
}

#[test]
fn bad_names_and_usage_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, 10, "a");
    for (name, code) in [
        ("auto-x", 17020006),
        ("pre-restore", 17020006),
        ("../x", 14800010),
        ("x.tmp", 14800010),
        ("x.manifest.json", 14800010),
    ] {
        error_code(peerlite().arg("backup").arg(&db).arg(name), code);
    }
    assert!(files_in(&backup_dir(&db)).is_empty());
    assert!(!dir.path().join("x").exists());

    let missing = dir.path().join("missing.db");
    for cmd in ["backup", "backups", "check", "repair"] {
        error_code(peerlite().arg(cmd).arg(&missing), 14800010);
    }
    assert!(!missing.exists(), "no command creates a missing database");

    for args in [
        vec!["backup"],
        vec!["backups"],
        vec!["check"],
        vec!["repair"],
        vec!["restore"],
        vec!["delete-backup"],
    ] {
        let (_, stderr) = fails_with(peerlite().args(&args), 1);
        assert!(stderr.starts_with("error: give DB"), "{args:?}: {stderr}");
    }
    let db = db.to_str().unwrap();
    for args in [
        vec!["backup", db, "A", "B"],
        vec!["backups", db, "extra"],
        vec!["check", db, "extra"],
        vec!["repair", db, "extra"],
        vec!["restore", db],
        vec!["restore", db, "A", "B"],
        vec!["delete-backup", db],
    ] {
        let (stdout, stderr) = fails_with(peerlite().args(&args), 1);
        assert_eq!(stdout, "");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}
