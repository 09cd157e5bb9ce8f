//! `restore` over a damaged store worked only when the damage sat in the middle of the file:
//! for every truncation, a damaged page 1 or header, a file of text, an emptied or lost file,
//! it refused with 14800011 and a hint proposing `peerlite restore DB NAME` — the very command
//! that had refused. And a backup taken at an older schema version could not be restored from
//! the command line at all: the message named a library function (`RestoreRequest::migrations`).
//!
//! Now `restore` mends every damage `repair` mends (the damaged files go to quarantine, what
//! is readable is salvaged, the chosen backup is put in place), and `--migrations DIR` upgrades
//! an older backup with the same `NNNN_name.sql` files `peerlite migrate` applies.

use super::*;

/// Each way a database file is found damaged or gone, applied to the closed file.
fn damage(db: &Path, pattern: &str) {
    let bytes = std::fs::read(db).unwrap();
    let len = bytes.len();
    let cut = |n: usize| std::fs::write(db, &bytes[..n]).unwrap();
    let patched = |at: usize, with: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + with.len()].copy_from_slice(with);
        std::fs::write(db, b).unwrap();
    };
    match pattern {
        "trunc50" => cut(50),
        "trunc100" => cut(100),
        "trunc4096" => cut(4096),
        "half" => cut(len / 2),
        "no-last-page" => cut(len - 4096),
        "zero-page1" => patched(0, &[0; 4096]),
        "zero-magic" => patched(0, &[0; 16]),
        "page-size" => patched(16, &[0x12, 0x34]),
        "schema-format" => patched(44, &[0, 0, 0, 9]),
        "page1-body" => patched(100, &[0xAB; 300]),
        "text" => std::fs::write(db, "hello world\n".repeat(400)).unwrap(),
        "empty" => std::fs::write(db, b"").unwrap(),
        "missing" => std::fs::remove_file(db).unwrap(),
        other => panic!("{other}"),
    }
}

const PATTERNS: [&str; 13] = [
    "trunc50",
    "trunc100",
    "trunc4096",
    "half",
    "no-last-page",
    "zero-page1",
    "zero-magic",
    "page-size",
    "schema-format",
    "page1-body",
    "text",
    "empty",
    "missing",
];

#[test]
fn restore_mends_every_damage_repair_mends() {
    for pattern in PATTERNS {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        make_db(&db, 2000, "backed-up");
        stdout_of(peerlite().arg("backup").arg(&db).arg("b1"));
        let backed_up = content_of(&db, None);
        make_db(&db, 5, "after");
        checkpoint(&db, None);
        let before = std::fs::read(&db).unwrap();
        damage(&db, pattern);
        let damaged = std::fs::read(&db).ok();
        let out = stdout_of(peerlite().arg("restore").arg(&db).arg("b1"));
        assert!(out.starts_with("restored "), "{pattern}: {out}");
        assert!(out.contains("b1 (version 0)"), "{pattern}: {out}");
        assert_eq!(content_of(&db, None), backed_up, "{pattern}");
        assert_eq!(
            stdout_of(peerlite().args(["check", "--full"]).arg(&db)),
            "ok\n",
            "{pattern}"
        );
        // The damaged file is kept as it was, wherever the restore put it.
        let quarantine = out
            .lines()
            .find_map(|l| {
                l.strip_prefix("the replaced database could not be opened; its files are kept in ")
                    .or_else(|| {
                        l.strip_prefix("the replaced database was damaged; its files are kept in ")
                    })
            })
            .map(PathBuf::from);
        match (damaged, quarantine) {
            (Some(bytes), Some(q)) => {
                let q = if q.is_absolute() {
                    q
                } else {
                    dir.path().join(q)
                };
                let kept = std::fs::read(q.join("a.db")).unwrap();
                assert!(kept == bytes, "{pattern}: the damaged bytes are kept");
            }
            (Some(_), None) => {
                // Damage SQLite reads past: the safety copy holds what was readable.
                assert!(out.contains("pre-restore"), "{pattern}: {out}");
            }
            (None, _) => {}
        }
        assert_ne!(std::fs::read(&db).unwrap(), before, "{pattern}");
    }
}

#[test]
fn a_refused_restore_over_a_damaged_store_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, 200, "x");
    stdout_of(peerlite().arg("backup").arg(&db).arg("b1"));
    checkpoint(&db, None);
    damage(&db, "trunc4096");
    let damaged = std::fs::read(&db).unwrap();
    // A backup that is not there, or fails verification: nothing is touched.
    error_code(peerlite().arg("restore").arg(&db).arg("nosuch"), 17_020_001);
    std::fs::write(backup_dir(&db).join("b1"), b"scribbled").unwrap();
    error_code(peerlite().arg("restore").arg(&db).arg("b1"), 17_020_002);
    assert!(std::fs::read(&db).unwrap() == damaged);
    let quarantined: Vec<String> = files_in(&dir.path().join("quarantine"))
        .into_iter()
        .filter(|n| dir.path().join("quarantine").join(n).is_dir())
        .collect();
    assert!(quarantined.is_empty(), "{quarantined:?}");
}

#[test]
fn restore_upgrades_an_older_backup_with_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let migrations = dir.path().join("m");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(migrations.join("0001_a.sql"), "CREATE TABLE a(b);").unwrap();
    std::fs::write(migrations.join("0002_c.sql"), "ALTER TABLE a ADD COLUMN c;").unwrap();
    std::fs::write(migrations.join("0003_z.sql"), "CREATE TABLE z(q);").unwrap();
    peerlite()
        .arg("sql")
        .arg(&db)
        .args([
            "CREATE TABLE a(b)",
            "PRAGMA user_version = 1",
            "INSERT INTO a VALUES ('old')",
        ])
        .assert()
        .success();
    stdout_of(peerlite().arg("backup").arg(&db).arg("v1"));
    stdout_of(peerlite().arg("migrate").arg(&db).arg(&migrations));
    // Without the migrations: refused, nothing changed, and the hint says how.
    let stderr = error_code(peerlite().arg("restore").arg(&db).arg("v1"), 14_800_001);
    assert!(stderr.contains("--migrations DIR"), "{stderr}");
    assert!(!stderr.contains("RestoreRequest"), "{stderr}");
    assert_eq!(stdout_of(peerlite().arg("version").arg(&db)), "3\n");
    // With them: restored and upgraded in one go.
    let out = stdout_of(
        peerlite()
            .arg("restore")
            .arg(&db)
            .arg("v1")
            .arg("--migrations")
            .arg(&migrations),
    );
    assert!(out.contains("upgraded 1 → 3"), "{out}");
    assert_eq!(stdout_of(peerlite().arg("version").arg(&db)), "3\n");
    let cols = stdout_of(
        peerlite()
            .args(["--json", "sql"])
            .arg(&db)
            .arg("SELECT b, c FROM a"),
    );
    assert!(cols.contains("\"old\""), "{cols}");
    // Over a damaged store too: the backup is put in place, then brought to DIR's version.
    checkpoint(&db, None);
    damage(&db, "zero-page1");
    let out = stdout_of(
        peerlite()
            .arg("restore")
            .arg(&db)
            .arg("v1")
            .arg("--migrations")
            .arg(&migrations),
    );
    assert!(out.contains("(version 3)"), "{out}");
    assert_eq!(stdout_of(peerlite().arg("version").arg(&db)), "3\n");
}
