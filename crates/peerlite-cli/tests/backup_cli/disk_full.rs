//! Write failures like a full disk: the binary runs under `ulimit -f` (with SIGXFSZ ignored,
//! so a write past the limit fails with EFBIG instead of killing the process). A failed backup
//! or restore must leave no file behind and the database as it was.

use super::*;

/// The limit: 256 blocks of 1024 bytes, far below the size of the database.
const LIMIT_BLOCKS: u32 = 256;

/// `peerlite ARGS` under the file-size limit.
fn limited(args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::new("bash");
    cmd.env_remove("PEERLITE_KEY")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {LIMIT_BLOCKS}; exec \"$@\""
        ))
        .arg("bash")
        .arg(env!("CARGO_BIN_EXE_peerlite"))
        .args(args);
    cmd
}

/// A failed operation with one of the codes a write failure may surface as; returns the code.
fn write_failure(cmd: &mut Command) -> u32 {
    let (stdout, stderr) = fails_with(cmd, 2);
    assert_eq!(stdout, "");
    let code: u32 = stderr
        .strip_prefix("error[")
        .and_then(|s| s.split_once(']'))
        .map(|(c, _)| c.parse().unwrap())
        .unwrap_or_else(|| panic!("an error[CODE] line: {stderr}"));
    assert!(
        [14_800_028, 14_800_029, 17_000_002].contains(&code),
        "a write failure: {stderr}"
    );
    assert_error_shape(&stderr, code);
    eprintln!(
        "write failure under ulimit -f {LIMIT_BLOCKS}: {}",
        stderr.lines().next().unwrap()
    );
    code
}

fn big_db(dir: &Path) -> PathBuf {
    let db = dir.join("a.db");
    make_db(&db, 20_000, "a");
    assert!(std::fs::metadata(&db).unwrap().len() > 4 * 1024 * u64::from(LIMIT_BLOCKS));
    db
}

fn no_leftovers(db: &Path, expected: &[&str]) {
    let files = files_in(&backup_dir(db));
    assert_eq!(files, expected, "nothing of the failed operation remains");
    let beside = files_in(db.parent().unwrap());
    assert!(
        beside.iter().all(|f| !f.contains(".tmp")),
        "no temporary file beside the database: {beside:?}"
    );
}

#[test]
fn a_backup_that_cannot_write_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = big_db(dir.path());
    stdout_of(peerlite().arg("backup").arg(&db).arg("GOOD"));
    let before = content_of(&db, None);

    write_failure(&mut limited(&[
        "backup".as_ref(),
        db.as_os_str(),
        "FULL".as_ref(),
    ]));
    write_failure(&mut limited(&[
        "--json".as_ref(),
        "backup".as_ref(),
        db.as_os_str(),
        "FULL".as_ref(),
        "--step-pages".as_ref(),
        "16".as_ref(),
    ]));
    no_leftovers(&db, &["GOOD", "GOOD.manifest.json"]);
    assert_eq!(listed(&[db.as_os_str()]), ["GOOD"]);
    assert_eq!(
        stdout_of(peerlite().args(["check", "--full"]).arg(&db)),
        "ok\n"
    );
    assert_eq!(content_of(&db, None), before);

    // Without the limit the same backup works.
    stdout_of(peerlite().arg("backup").arg(&db).arg("FULL"));
    assert_eq!(listed(&[db.as_os_str()]), ["FULL", "GOOD"]);
}

#[test]
fn a_backup_into_another_directory_that_cannot_write_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = big_db(dir.path());
    let other = dir.path().join("other");
    write_failure(&mut limited(&[
        "backup".as_ref(),
        db.as_os_str(),
        "FULL".as_ref(),
        "--dir".as_ref(),
        other.as_os_str(),
    ]));
    assert_eq!(files_in(&other), Vec::<String>::new());
    assert_eq!(
        stdout_of(peerlite().args(["check", "--full"]).arg(&db)),
        "ok\n"
    );
}

#[test]
fn a_restore_that_cannot_write_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = big_db(dir.path());
    stdout_of(peerlite().arg("backup").arg(&db).arg("BK"));
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("DELETE FROM t WHERE id % 3 = 0")
        .assert()
        .success();
    let before = content_of(&db, None);

    write_failure(&mut limited(&[
        "restore".as_ref(),
        db.as_os_str(),
        "BK".as_ref(),
    ]));
    no_leftovers(&db, &["BK", "BK.manifest.json"]);
    assert_eq!(listed(&[db.as_os_str()]), ["BK"]);
    assert_eq!(
        stdout_of(peerlite().args(["check", "--full"]).arg(&db)),
        "ok\n"
    );
    assert_eq!(content_of(&db, None), before, "the database is unchanged");
}

/// Makes a file impossible to delete or replace until dropped: `chattr +i` where that works
/// (root), otherwise a read-only parent directory (which root would ignore).
enum Immutable {
    Attribute(PathBuf),
    ReadOnlyDir(PathBuf, std::fs::Permissions),
}

impl Immutable {
    fn new(path: &Path) -> Immutable {
        let chattr = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status();
        if chattr.is_ok_and(|s| s.success()) {
            return Immutable::Attribute(path.to_path_buf());
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = path.parent().unwrap().to_path_buf();
        let before = std::fs::metadata(&dir).unwrap().permissions();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        assert!(
            std::fs::write(dir.join("probe"), b"x").is_err(),
            "neither chattr +i nor a read-only directory can protect the manifest here"
        );
        Immutable::ReadOnlyDir(dir, before)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        match self {
            Immutable::Attribute(path) => {
                let _ = std::process::Command::new("chattr")
                    .arg("-i")
                    .arg(path)
                    .status();
            }
            Immutable::ReadOnlyDir(dir, before) => {
                let _ = std::fs::set_permissions(dir, before.clone());
            }
        }
    }
}

/// Regression: a backup under an existing name used to rename the data file over the old one
/// and then the manifest; when the second rename failed (or a crash fell between them) the old
/// backup was gone and its name listed as `verified` over other data. Now the old manifest is
/// removed first: when that cannot happen, the old backup is untouched.
#[test]
fn a_failed_backup_over_an_existing_name_keeps_the_old_backup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, 100, "first");
    stdout_of(peerlite().arg("backup").arg(&db).arg("BK"));
    let first = content_of(&db, None);
    // Same size, other bytes.
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("UPDATE t SET marker = 'other'")
        .assert()
        .success();
    {
        let _guard = Immutable::new(&backup_dir(&db).join("BK.manifest.json"));
        fails_with(peerlite().arg("backup").arg(&db).arg("BK"), 2);
    }
    let list = json_of(peerlite().args(["--json", "backups"]).arg(&db));
    assert_eq!(list[0]["name"], "BK");
    assert_eq!(list[0]["verified"], true, "listed as verified…");
    assert_eq!(
        content_of(&backup_dir(&db).join("BK"), None),
        first,
        "…but the failed backup replaced the old one's data"
    );
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("DELETE FROM t")
        .assert()
        .success();
    stdout_of(peerlite().arg("restore").arg(&db).arg("BK"));
    assert_eq!(content_of(&db, None), first);
}

/// A damaged database (flagged by `check`) with a backup GOOD of `backed_up` rows and
/// `after` rows written since. Returns its damaged bytes.
fn damaged_with_backup(db: &Path, backed_up: u32, after: u32) -> Vec<u8> {
    make_db(db, backed_up, "backed-up");
    stdout_of(peerlite().arg("backup").arg(db).arg("GOOD"));
    make_db(db, after, "after");
    checkpoint(db, None);
    corrupt_pages(db, &[0.3, 0.55], 0xF11E);
    fails_with(peerlite().arg("check").arg(db), 3);
    std::fs::read(db).unwrap()
}

/// Issue 9, defect 1, with a full disk: a repair that cannot write the backup's copy stops
/// with the write error, leaving the damaged store at its path and the repair pending:
/// every command reports 14800011 naming `peerlite repair` (none creates a store over it),
/// and the next `peerlite repair`, with room to write, finishes it.
#[test]
fn a_repair_that_cannot_write_stays_pending_and_the_next_repair_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let damaged = damaged_with_backup(&db, 20_000, 500);
    assert!(
        std::fs::metadata(backup_dir(&db).join("GOOD"))
            .unwrap()
            .len()
            > 1024 * u64::from(LIMIT_BLOCKS)
    );

    write_failure(&mut limited(&["repair".as_ref(), db.as_os_str()]));
    assert!(peerlite::repair::repair_pending(&db));
    assert!(
        std::fs::read(&db).unwrap() == damaged,
        "the damaged file is at its path"
    );
    // Its backups are listed (nothing is opened for that), …
    assert_eq!(listed(&[db.as_os_str()]), ["GOOD"]);
    // … and everything that opens the store refuses it.
    for args in [
        &["sql", "SELECT count(*) FROM t"][..],
        &["version"],
        &["changes"],
    ] {
        let mut cmd = peerlite();
        cmd.arg(args[0]).arg(&db).args(&args[1..]);
        let stderr = error_code(&mut cmd, 14_800_011);
        assert!(stderr.contains("peerlite repair"), "{args:?}: {stderr}");
    }
    let (_, stderr) = fails_with(peerlite().arg("check").arg(&db), 3);
    assert!(stderr.contains("pending"), "{stderr}");
    assert!(
        std::fs::read(&db).unwrap() == damaged,
        "a command wrote over it"
    );
    let beside = files_in(dir.path());
    assert!(beside.iter().all(|f| !f.contains(".tmp")), "{beside:?}");

    let out = stdout_of(peerlite().arg("repair").arg(&db));
    assert!(out.starts_with("repaired from GOOD\nsalvaged "), "{out}");
    assert_eq!(rows_of(&db, None), (20_000, "backed-up".into()));
    assert!(!peerlite::repair::repair_pending(&db));
}

/// A full disk while salvaging does not stop the rebuild: the repair ends repaired, says
/// salvage failed and why, and leaves no half-written salvage file.
#[test]
fn a_salvage_that_cannot_write_is_reported_and_the_repair_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    // The backup fits under the limit; everything readable (twice as many rows) does not.
    let blocks = 1_800;
    damaged_with_backup(&db, 4_000, 6_000);
    let backup_size = std::fs::metadata(backup_dir(&db).join("GOOD"))
        .unwrap()
        .len();
    assert!(backup_size < 1024 * blocks, "{backup_size}");
    let mut cmd = Command::new("bash");
    cmd.env_remove("PEERLITE_KEY")
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$@\""))
        .arg("bash")
        .arg(env!("CARGO_BIN_EXE_peerlite"))
        .arg("repair")
        .arg(&db);
    let out = stdout_of(&mut cmd);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "repaired from GOOD");
    assert!(
        lines[1].starts_with("salvage failed (the rebuild went on without it): "),
        "{out}"
    );
    assert_eq!(rows_of(&db, None), (4_000, "backed-up".into()));
    let beside = files_in(dir.path());
    assert!(
        beside
            .iter()
            .all(|f| !f.contains(".tmp") && !f.contains("salvage")),
        "no half-written salvage file: {beside:?}"
    );
    assert!(!peerlite::repair::repair_pending(&db));
}
