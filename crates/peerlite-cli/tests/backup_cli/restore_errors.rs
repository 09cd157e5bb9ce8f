//! Restore refuses bad input with its code and changes nothing.

use super::*;

/// A database of `rows` rows with a backup `BK` of it; returns (db, its content).
fn db_with_backup(dir: &Path, file: &str, rows: u32) -> (PathBuf, (i64, u64)) {
    let db = dir.join(file);
    make_db(&db, rows, "a");
    stdout_of(peerlite().arg("backup").arg(&db).arg("BK"));
    let content = content_of(&db, None);
    (db, content)
}

fn no_safety_copy(db: &Path) {
    assert!(
        files_in(&backup_dir(db))
            .iter()
            .all(|f| !f.starts_with("pre-restore")),
        "a refused restore takes no safety copy: {:?}",
        files_in(&backup_dir(db))
    );
}

#[test]
fn a_missing_backup_is_17020001() {
    let dir = tempfile::tempdir().unwrap();
    let (db, before) = db_with_backup(dir.path(), "a.db", 300);
    let stderr = error_code(peerlite().arg("restore").arg(&db).arg("nope"), 17020001);
    assert!(stderr.contains("nope"), "{stderr}");
    error_code(
        peerlite()
            .arg("restore")
            .arg(&db)
            .arg(dir.path().join("no").join("such-file")),
        17020001,
    );
    error_code(
        peerlite().args(["--json", "restore"]).arg(&db).arg("nope"),
        17020001,
    );
    assert_eq!(content_of(&db, None), before);
    no_safety_copy(&db);
}

#[test]
fn a_truncated_backup_fails_verification_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, before) = db_with_backup(dir.path(), "a.db", 3000);
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("DELETE FROM t WHERE id % 2 = 0")
        .assert()
        .success();
    let before_restore = content_of(&db, None);
    assert_ne!(before_restore, before);
    let bk = backup_dir(&db).join("BK");
    let len = std::fs::metadata(&bk).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&bk)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let list = json_of(peerlite().args(["--json", "backups"]).arg(&db));
    assert_eq!(
        list[0]["verified"], false,
        "the listing sees the size does not match the manifest"
    );
    assert_eq!(list[0]["bytes"].as_u64().unwrap(), len / 2);

    let stderr = error_code(peerlite().arg("restore").arg(&db).arg("BK"), 17020002);
    assert!(stderr.contains("truncated"), "{stderr}");
    assert_eq!(
        content_of(&db, None),
        before_restore,
        "the database is unchanged"
    );
    no_safety_copy(&db);
    assert_eq!(
        stdout_of(peerlite().args(["check", "--full"]).arg(&db)),
        "ok\n"
    );
}

#[test]
fn a_bit_flipped_backup_fails_verification_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = db_with_backup(dir.path(), "a.db", 3000);
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("UPDATE t SET marker = 'changed' WHERE id < 10")
        .assert()
        .success();
    let before_restore = content_of(&db, None);
    let bk = backup_dir(&db).join("BK");
    let mut bytes = std::fs::read(&bk).unwrap();
    let middle = bytes.len() / 2 + 123;
    bytes[middle] ^= 0x10;
    std::fs::write(&bk, &bytes).unwrap();

    let list = json_of(peerlite().args(["--json", "backups"]).arg(&db));
    assert_eq!(
        list[0]["verified"], false,
        "a file changed since the backup is not listed as verified (issue 9, item 12)"
    );

    let stderr = error_code(peerlite().arg("restore").arg(&db).arg("BK"), 17020002);
    assert!(stderr.contains("checksum"), "{stderr}");
    assert_eq!(
        content_of(&db, None),
        before_restore,
        "the database is unchanged"
    );
    no_safety_copy(&db);
}

#[test]
fn a_file_without_manifest_is_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let (db, before) = db_with_backup(dir.path(), "a.db", 100);
    let plain = dir.path().join("plain").join("copy.db");
    std::fs::create_dir(plain.parent().unwrap()).unwrap();
    std::fs::copy(backup_dir(&db).join("BK"), &plain).unwrap();
    let stderr = error_code(peerlite().arg("restore").arg(&db).arg(&plain), 17020002);
    assert!(stderr.contains("manifest"), "{stderr}");
    assert_eq!(content_of(&db, None), before);
}

#[test]
fn a_backup_of_another_database_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let (a, a_before) = db_with_backup(dir.path(), "a.db", 200);
    let (b, b_content) = db_with_backup(dir.path(), "b.db", 300);
    assert_ne!(a_before, b_content);
    let b_backup = backup_dir(&b).join("BK");

    let stderr = error_code(peerlite().arg("restore").arg(&a).arg(&b_backup), 17020004);
    assert!(
        stderr.contains("--force"),
        "the hint names --force: {stderr}"
    );
    assert_eq!(content_of(&a, None), a_before, "a is unchanged");
    no_safety_copy(&a);

    let out = stdout_of(
        peerlite()
            .arg("restore")
            .arg(&a)
            .arg(&b_backup)
            .arg("--force"),
    );
    assert_eq!(
        out,
        format!(
            "restored {} (version 0)\nthe replaced data is kept in {}\n",
            b_backup.display(),
            backup_dir(&a).join("pre-restore").display()
        )
    );
    assert_eq!(content_of(&a, None), b_content, "a now holds b's rows");
    assert_eq!(
        content_of(&backup_dir(&a).join("pre-restore"), None),
        a_before,
        "a's own rows are kept in the safety copy"
    );
}

#[test]
fn a_backup_into_a_database_without_tables_needs_no_force() {
    let dir = tempfile::tempdir().unwrap();
    let (b, b_content) = db_with_backup(dir.path(), "b.db", 300);
    let empty = dir.path().join("empty.db");
    peerlite()
        .arg("sql")
        .arg(&empty)
        .arg("SELECT 1")
        .assert()
        .success();
    stdout_of(
        peerlite()
            .arg("restore")
            .arg(&empty)
            .arg(backup_dir(&b).join("BK")),
    );
    assert_eq!(content_of(&empty, None), b_content);
}

#[test]
fn a_backup_newer_than_the_database_is_17020003() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let migrations = dir.path().join("m");
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
    make_db(&db, 100, "v1");
    // The same database, still at version 1.
    let older = dir.path().join("older.db");
    std::fs::copy(&db, &older).unwrap();
    let before = content_of(&older, None);
    std::fs::write(
        migrations.join("0002_more.sql"),
        "ALTER TABLE t ADD COLUMN extra TEXT;",
    )
    .unwrap();
    peerlite()
        .arg("migrate")
        .arg(&db)
        .arg(&migrations)
        .assert()
        .success();
    let info = json_of(peerlite().args(["--json", "backup"]).arg(&db).arg("V2"));
    assert_eq!(info["version"], 2);
    let stderr = error_code(
        peerlite()
            .arg("restore")
            .arg(&older)
            .arg(info["path"].as_str().unwrap()),
        17020003,
    );
    assert!(stderr.contains("version 2"), "{stderr}");
    assert_eq!(content_of(&older, None), before);
    assert_eq!(stdout_of(peerlite().arg("version").arg(&older)), "1\n");
}

#[test]
fn a_key_value_backup_is_not_restored_into_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let (db, before) = db_with_backup(dir.path(), "a.db", 100);
    let kv = dir.path().join("kv");
    peerlite()
        .arg("kv")
        .arg(&kv)
        .args(["s", "put", "k", "v"])
        .assert()
        .success();
    let out = stdout_of(
        peerlite()
            .arg("backup")
            .arg("--kv")
            .arg(&kv)
            .args(["s", "KB"]),
    );
    let stderr = error_code(
        peerlite()
            .arg("restore")
            .arg(&db)
            .arg(out.trim_end())
            .arg("--force"),
        17020002,
    );
    assert!(stderr.contains("key_value"), "{stderr}");
    assert_eq!(content_of(&db, None), before);
}

/// Restoring the safety copy is how a restore is undone: `pre-restore` must bring back the
/// data the last restore replaced.
#[test]
fn restoring_the_safety_copy_undoes_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let (db, full) = db_with_backup(dir.path(), "a.db", 300);
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("DELETE FROM t WHERE id > 10")
        .assert()
        .success();
    let edited = content_of(&db, None);
    stdout_of(peerlite().arg("restore").arg(&db).arg("BK"));
    assert_eq!(content_of(&db, None), full);
    assert_eq!(
        content_of(&backup_dir(&db).join("pre-restore"), None),
        edited,
        "the safety copy holds the edited rows"
    );

    stdout_of(peerlite().arg("restore").arg(&db).arg("pre-restore"));
    assert_eq!(
        content_of(&db, None),
        edited,
        "restoring the safety copy brings the edited rows (10) back"
    );
}

/// `restore --full-check` runs `integrity_check` on a backup that its checksum alone would
/// pass: one whose index disagrees with its table (damage `quick_check` does not look for),
/// taken by peerlite as it is. Without the flag the checksum against its checked manifest is
/// the proof, and the restore goes through; with it the restore is refused (exit 2, 17020002,
/// a hint) and nothing changes.
#[test]
fn full_check_runs_integrity_check_and_refuses_what_the_checksum_passes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE k(a TEXT, b TEXT); CREATE INDEX k_a ON k(a);
         INSERT INTO k VALUES ('x1', 'y1'), ('x2', 'y2');
         PRAGMA writable_schema=ON;
         UPDATE sqlite_schema SET sql = 'CREATE INDEX k_a ON k(b)' WHERE name = 'k_a';",
    )
    .unwrap();
    drop(conn);
    stdout_of(peerlite().arg("backup").arg(&db).arg("BK"));
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("INSERT INTO k VALUES ('x3', 'y3')")
        .assert()
        .success();
    let rows = |db: &Path| {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("SELECT count(*) FROM k", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    assert_eq!(rows(&db), 3);

    let stderr = error_code(
        peerlite()
            .arg("restore")
            .arg(&db)
            .arg("BK")
            .arg("--full-check"),
        17020002,
    );
    assert!(stderr.contains("integrity_check"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert_eq!(rows(&db), 3, "nothing changed");
    no_safety_copy(&db);

    stdout_of(peerlite().arg("restore").arg(&db).arg("BK"));
    assert_eq!(rows(&db), 2, "the checksum was the proof");
    assert!(backup_dir(&db).join("pre-restore").is_file());
}
