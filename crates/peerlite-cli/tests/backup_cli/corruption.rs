//! `check` finds a damaged database (exit 3, 14800011), every other command then refuses it
//! with a hint naming `peerlite repair`, and `repair` puts the newest good backup in place (or
//! starts empty), salvages the readable rows and keeps the damaged files in quarantine.

use super::*;

const ROWS: u32 = 20_000;
/// Where in the file the damaged pages are.
const DAMAGE: [f64; 4] = [0.38, 0.39, 0.40, 0.61];

/// A multi-MB database with `ROWS` rows; `backup` names a backup taken of it. Returns (db,
/// its content).
fn big_db(dir: &Path, backup: Option<&str>) -> (PathBuf, (i64, u64)) {
    let db = dir.join("a.db");
    make_db(&db, ROWS, "a");
    if let Some(name) = backup {
        stdout_of(peerlite().arg("backup").arg(&db).arg(name));
    }
    let content = content_of(&db, None);
    checkpoint(&db, None);
    assert!(std::fs::metadata(&db).unwrap().len() > 3_000_000);
    (db, content)
}

/// Damages the (closed) database and returns its bytes as damaged.
fn damage(db: &Path) -> Vec<u8> {
    corrupt_pages(db, &DAMAGE, 0xDEAD_BEEF);
    std::fs::read(db).unwrap()
}

/// `check` exits 3 with 14800011 and a hint naming `peerlite repair`; then `sql` refuses the
/// database with the same code.
fn check_finds_it(db: &Path) {
    let (stdout, stderr) = fails_with(peerlite().arg("check").arg(db), 3);
    assert_eq!(stdout, "");
    assert_error_shape(&stderr, 14_800_011);
    assert!(stderr.contains("peerlite repair"), "{stderr}");
    let (stdout, stderr) = fails_with(peerlite().args(["check", "--full"]).arg(db), 3);
    assert_eq!(stdout, "");
    assert_error_shape(&stderr, 14_800_011);

    let stderr = error_code(
        peerlite().arg("sql").arg(db).arg("SELECT count(*) FROM t"),
        14_800_011,
    );
    assert!(
        stderr.lines().next().unwrap().contains("peerlite repair"),
        "the error itself says what to run: {stderr}"
    );
}

/// The repair's three lines: returns (first line, salvaged rows, salvage file, quarantine).
fn repair_lines(db: &Path) -> (String, u64, PathBuf, PathBuf) {
    let out = stdout_of(peerlite().arg("repair").arg(db));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let salvaged = lines[1].strip_prefix("salvaged ").unwrap();
    let (rows, path) = salvaged.split_once(" rows into ").unwrap();
    let quarantine = lines[2]
        .strip_prefix("the damaged files are kept in ")
        .unwrap();
    (
        lines[0].to_owned(),
        rows.parse().unwrap(),
        PathBuf::from(path),
        PathBuf::from(quarantine),
    )
}

/// The quarantine folder is `quarantine/a.db-<time>/` beside the database and holds the
/// damaged file exactly as it was, and the corruption flag.
fn quarantined(db: &Path, quarantine: &Path, damaged: &[u8]) {
    let dir = db.parent().unwrap().join("quarantine");
    assert_eq!(quarantine.parent().unwrap(), dir);
    let name = quarantine.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("a.db-"), "{name}");
    assert!(quarantine.is_dir());
    let files = files_in(quarantine);
    assert!(files.contains(&"a.db".to_owned()), "{files:?}");
    assert!(files.contains(&"a.db.corrupt".to_owned()), "{files:?}");
    assert!(
        std::fs::read(quarantine.join("a.db")).unwrap() == damaged,
        "the damaged file is kept as it was"
    );
}

/// The salvage file holds `rows` rows of `t`: most of them, not all.
fn salvage_holds(salvage: &Path, db: &Path, rows: u64) {
    assert_eq!(salvage, db.parent().unwrap().join("a.salvage.db"));
    let conn = open(salvage, None);
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n as u64, rows);
    assert!(
        rows > 0 && rows < u64::from(ROWS),
        "the readable rows, not the damaged ones: {rows}"
    );
}

#[test]
fn repair_puts_the_newest_backup_back() {
    let dir = tempfile::tempdir().unwrap();
    let (db, original) = big_db(dir.path(), Some("BK"));
    let damaged = damage(&db);
    check_finds_it(&db);

    let (first, rows, salvage, quarantine) = repair_lines(&db);
    assert_eq!(first, "repaired from BK");
    salvage_holds(&salvage, &db, rows);
    quarantined(&db, &quarantine, &damaged);

    assert_eq!(content_of(&db, None), original, "every row is back");
    assert_eq!(
        stdout_of(peerlite().args(["check", "--full"]).arg(&db)),
        "ok\n"
    );
    assert!(!with_suffix(&db, ".corrupt").exists());
    let count = stdout_of(
        peerlite()
            .arg("sql")
            .arg(&db)
            .arg("SELECT count(*) AS n FROM t"),
    );
    assert_eq!(count, format!("n\n-----\n{ROWS}\n"));
    assert_eq!(
        stdout_of(peerlite().arg("repair").arg(&db)),
        "ok: nothing to repair\n"
    );
}

#[test]
fn repair_without_a_backup_rebuilds_empty_and_salvages() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = big_db(dir.path(), None);
    let damaged = damage(&db);
    check_finds_it(&db);

    let (first, rows, salvage, quarantine) = repair_lines(&db);
    assert_eq!(first, "rebuilt empty");
    salvage_holds(&salvage, &db, rows);
    quarantined(&db, &quarantine, &damaged);

    assert_eq!(stdout_of(peerlite().arg("check").arg(&db)), "ok\n");
    let stderr = error_code(
        peerlite().arg("sql").arg(&db).arg("SELECT count(*) FROM t"),
        14_800_021,
    );
    assert!(stderr.contains("no such table: t"), "empty: {stderr}");
}

#[test]
fn repair_skips_a_damaged_backup_and_the_safety_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (db, old) = big_db(dir.path(), Some("BK_OLD"));
    make_db(&db, 100, "b");
    stdout_of(peerlite().arg("backup").arg(&db).arg("BK_NEW"));
    // A restore leaves a (newer still) safety copy, which repair must never pick by itself.
    stdout_of(peerlite().arg("restore").arg(&db).arg("BK_NEW"));
    let names = listed(&[db.as_os_str()]);
    assert_eq!(names, ["pre-restore", "BK_NEW", "BK_OLD"]);
    let bk_new = backup_dir(&db).join("BK_NEW");
    let mut bytes = std::fs::read(&bk_new).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 1;
    std::fs::write(&bk_new, bytes).unwrap();
    checkpoint(&db, None);
    damage(&db);

    let (out, warned) = stdout_warned(peerlite().args(["--json", "repair"]).arg(&db));
    let report: Json = serde_json::from_str(out.trim()).unwrap();
    let rows = report["salvaged_rows"].as_u64().unwrap();
    assert_eq!(report["status"], "repaired");
    assert_eq!(report["backup"], "BK_OLD", "{report}");
    // The user hears why the newer backup was passed over.
    assert!(
        warned.contains("skipping a backup that fails verification") && warned.contains("BK_NEW"),
        "{warned}"
    );
    assert_eq!(
        report["salvage"].as_str().unwrap(),
        dir.path().join("a.salvage.db").to_str().unwrap()
    );
    assert!(rows > 0 && rows <= u64::from(ROWS) + 100, "{report}");
    let quarantine = PathBuf::from(report["quarantine"].as_str().unwrap());
    assert!(quarantine.join("a.db").is_file(), "{report}");
    assert_eq!(content_of(&db, None), old);
}

#[test]
fn check_json_on_a_damaged_database_still_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = big_db(dir.path(), None);
    damage(&db);
    let (stdout, stderr) = fails_with(peerlite().args(["--json", "check"]).arg(&db), 3);
    assert_eq!(stdout, "");
    assert_error_shape(&stderr, 14_800_011);
    assert!(with_suffix(&db, ".corrupt").is_file(), "the flag is left");
}

/// The hint of 14800011 says "restore a backup with `peerlite restore`". Before anything has
/// flagged the damage, a restore of a good backup is refused because the safety copy of the
/// damaged data fails its quick_check, and the error blames a backup.
#[test]
fn restore_of_a_good_backup_over_a_damaged_database() {
    let dir = tempfile::tempdir().unwrap();
    let (db, original) = big_db(dir.path(), Some("BK"));
    damage(&db);
    let out = stdout_of(peerlite().arg("restore").arg(&db).arg("BK"));
    assert!(out.starts_with("restored "), "{out}");
    assert_eq!(content_of(&db, None), original);
}

/// Issue 9, defect 7: `restore` over a corrupted store threw the damaged file away — it
/// cannot be backed up as `pre-restore` (its pages do not all read), and nothing else kept
/// it — so the rows written after the backup were gone, against the README. Now its files
/// are copied into a quarantine folder first, and the output (text and JSON) says where.
#[test]
fn restore_over_a_damaged_database_keeps_its_files_in_quarantine() {
    for json in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (db, original) = big_db(dir.path(), Some("BK"));
        make_db(&db, 500, "after");
        checkpoint(&db, None);
        let damaged = damage(&db);
        let quarantine = if json {
            let report = json_of(peerlite().args(["--json", "restore"]).arg(&db).arg("BK"));
            assert_eq!(report["pre_restore_backup"], Json::Null, "{report}");
            PathBuf::from(report["quarantine"].as_str().unwrap())
        } else {
            let out = stdout_of(peerlite().arg("restore").arg(&db).arg("BK"));
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.len(), 2, "{out}");
            assert!(lines[0].starts_with("restored "), "{out}");
            PathBuf::from(
                lines[1]
                    .strip_prefix("the replaced database was damaged; its files are kept in ")
                    .unwrap_or_else(|| panic!("{out}")),
            )
        };
        assert_eq!(content_of(&db, None), original);
        assert_eq!(quarantine.parent().unwrap(), dir.path().join("quarantine"));
        assert!(
            std::fs::read(quarantine.join("a.db")).unwrap() == damaged,
            "the quarantined file is the damaged one, with the rows written after the backup"
        );
        assert_eq!(
            stdout_of(peerlite().args(["check", "--full"]).arg(&db)),
            "ok\n"
        );
    }
}

/// Once `check` has flagged the damage, `restore` — the first remedy the hint names — is
/// refused by the flag.
#[test]
fn restore_of_a_good_backup_over_a_flagged_database() {
    let dir = tempfile::tempdir().unwrap();
    let (db, original) = big_db(dir.path(), Some("BK"));
    damage(&db);
    fails_with(peerlite().arg("check").arg(&db), 3);
    let out = stdout_of(peerlite().arg("restore").arg(&db).arg("BK"));
    assert!(out.starts_with("restored "), "{out}");
    assert_eq!(content_of(&db, None), original);
}

/// A backup of a database whose damage nothing has seen yet fails — rightly — but reports the
/// database's damage as a damaged backup (17020002, "restore an older one") and leaves no
/// flag, so nothing tells the user the database itself needs `peerlite repair`.
#[test]
fn backup_of_a_damaged_database_reports_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = big_db(dir.path(), None);
    damage(&db);
    let (_, stderr) = fails_with(peerlite().arg("backup").arg(&db).arg("BK"), 2);
    assert!(
        files_in(&backup_dir(&db)).is_empty(),
        "no backup of damaged data"
    );
    assert_error_shape(&stderr, 14_800_011);
    assert!(
        with_suffix(&db, ".corrupt").is_file(),
        "the damage is flagged"
    );
}
