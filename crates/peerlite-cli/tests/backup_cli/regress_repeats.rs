//! Doing a recovery twice lost what the first one kept. A second `repair` wrote its salvage
//! over the first one's `a.salvage.db` — the only copy the tools had made of rows written
//! after the backup and before the first damage. A second `restore` replaced the first one's
//! `pre-restore` copy, so "restore the wrong backup, then the right one" lost everything
//! written since the backup. And `backups` hid a backup whose manifest was missing, although
//! the file was in the folder and `restore` knew it.
//!
//! Now no tool output that may be the only copy of data is ever replaced: salvage files are
//! numbered, earlier safety copies are kept as `pre-restore-<time>`, and every file in the
//! backup folder is listed (one without a manifest as not verified, with why).

use super::*;

/// Scribbles over `pages` whole pages from page `first` of the closed database.
fn scribble(db: &Path, first: u64, pages: usize, seed: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut buf = vec![0u8; 4096 * pages];
    Rng(seed).fill(&mut buf);
    let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    f.seek(SeekFrom::Start(first * 4096)).unwrap();
    f.write_all(&buf).unwrap();
}

/// Rows of `t` marked `marker` in the salvage file at `path`.
fn marked(path: &Path, marker: &str) -> i64 {
    open(path, None)
        .query_row("SELECT count(*) FROM t WHERE marker = ?1", [marker], |r| {
            r.get(0)
        })
        .unwrap()
}

#[test]
fn a_second_repair_keeps_the_first_salvage_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, 3000, "base");
    stdout_of(peerlite().arg("backup").arg(&db).arg("b1"));
    make_db(&db, 2, "late1");
    checkpoint(&db, None);
    scribble(&db, 60, 1, 1);
    let first = stdout_of(peerlite().arg("repair").arg(&db));
    let salvage1 = dir.path().join("a.salvage.db");
    assert!(
        first.contains("into a.salvage.db") || first.contains(&salvage1.display().to_string()),
        "{first}"
    );
    assert_eq!(marked(&salvage1, "late1"), 2);
    let kept = std::fs::read(&salvage1).unwrap();

    make_db(&db, 1, "late2");
    checkpoint(&db, None);
    scribble(&db, 30, 5, 2);
    let second = stdout_of(peerlite().arg("repair").arg(&db));
    let salvage2 = dir.path().join("a.salvage-2.db");
    assert!(second.contains("a.salvage-2.db"), "{second}");
    assert!(
        second.contains("earlier salvage files are kept as they were: ")
            && second.contains("a.salvage.db"),
        "{second}"
    );
    assert_eq!(
        std::fs::read(&salvage1).unwrap(),
        kept,
        "the first salvage file is untouched"
    );
    assert_eq!(marked(&salvage1, "late1"), 2);
    assert_eq!(marked(&salvage2, "late2"), 1);
    let report = json_of(peerlite().args(["--json", "repair"]).arg(&db));
    assert_eq!(report["status"], "ok", "healthy now: {report}");
}

#[test]
fn a_second_restore_keeps_the_first_ones_safety_copy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, 10, "old");
    stdout_of(peerlite().arg("backup").arg(&db).arg("b1"));
    make_db(&db, 5, "precious");
    let precious = content_of(&db, None);
    stdout_of(peerlite().arg("restore").arg(&db).arg("b1"));
    let out = stdout_of(peerlite().arg("restore").arg(&db).arg("b1"));
    let earlier = out
        .lines()
        .find_map(|l| l.strip_prefix("the data an earlier restore replaced is kept in "))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        content_of(Path::new(earlier), None),
        precious,
        "nothing lost"
    );
    // Both safety copies are listed, verified, and the earlier one restores.
    let names = listed(&[db.as_os_str()]);
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "pre-restore");
    assert!(names[1].starts_with("pre-restore-"), "{names:?}");
    stdout_of(peerlite().arg("restore").arg(&db).arg(&names[1]));
    assert_eq!(content_of(&db, None), precious);
    // Three restores, three kept copies: none replaced another.
    let names = listed(&[db.as_os_str()]);
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("pre-restore"))
            .count(),
        3,
        "{names:?}"
    );
    // The names are peerlite's own.
    error_code(
        peerlite().arg("backup").arg(&db).arg("pre-restore-x"),
        17_020_006,
    );
}

#[test]
fn backups_lists_a_backup_whose_manifest_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, 10, "a");
    stdout_of(peerlite().arg("backup").arg(&db).arg("b1"));
    stdout_of(peerlite().arg("backup").arg(&db).arg("b2"));
    std::fs::remove_file(backup_dir(&db).join("b2.manifest.json")).unwrap();
    let list = json_of(peerlite().args(["--json", "backups"]).arg(&db));
    let list = list.as_array().unwrap();
    let b2 = list
        .iter()
        .find(|b| b["name"] == "b2")
        .expect("b2 is listed");
    assert_eq!(b2["verified"], false);
    assert_eq!(b2["problem"], "there is no manifest beside it");
    let b1 = list.iter().find(|b| b["name"] == "b1").unwrap();
    assert_eq!(b1["verified"], true);
    let table = stdout_of(peerlite().arg("backups").arg(&db));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("b2 ") && l.contains("there is no manifest")),
        "{table}"
    );
    error_code(peerlite().arg("restore").arg(&db).arg("b2"), 17_020_002);
}

/// Concurrent `repair`s of one damaged store (two app processes, or an app and an operator)
/// were not serialised: the losers failed on each other's temporary files or journal, or
/// reported a failed salvage, and left empty quarantine folders behind. Now a lock serialises
/// them: the others wait, then find the store repaired and say so; one quarantine folder, no
/// empty one, the backup's rows and every later one salvaged.
#[test]
fn concurrent_repairs_of_one_store_are_serialised() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, 3000, "base");
    stdout_of(peerlite().arg("backup").arg(&db).arg("b1"));
    make_db(&db, 3, "late");
    checkpoint(&db, None);
    scribble(&db, 40, 3, 7);
    // The first pauses between its steps, so the others start while it runs.
    let mut first = std::process::Command::new(assert_cmd::cargo::cargo_bin("peerlite"));
    first
        .env_remove("PEERLITE_KEY")
        .args(["repair", "--step-pause-ms", "200"])
        .arg(&db);
    let children: Vec<std::process::Child> = std::iter::once(first)
        .chain((0..3).map(|_| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("peerlite"));
            c.env_remove("PEERLITE_KEY").arg("repair").arg(&db);
            c
        }))
        .map(|mut c| {
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut repaired = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "{stdout}{stderr}");
        assert_eq!(stderr, "");
        if stdout.starts_with("repaired from b1") {
            repaired += 1;
        } else {
            assert!(
                stdout.starts_with("ok: another `peerlite repair` of this store finished it")
                    || stdout == "ok: nothing to repair\n",
                "{stdout}"
            );
        }
    }
    assert_eq!(repaired, 1, "one repair did the work");
    let quarantine = dir.path().join("quarantine");
    let folders: Vec<String> = files_in(&quarantine)
        .into_iter()
        .filter(|n| quarantine.join(n).is_dir())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert!(!files_in(&quarantine.join(&folders[0])).is_empty());
    assert_eq!(rows_of(&db, None), (3000, "base".to_owned()));
    assert_eq!(marked(&dir.path().join("a.salvage.db"), "late"), 3);
}
