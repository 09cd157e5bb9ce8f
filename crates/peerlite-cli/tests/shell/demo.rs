//! Item 11. `peerlite demo --rows N` panicked for N from 2 to 20 ("the damage must be found",
//! exit 101) and failed for 0 and 1: its corruption step overwrote bytes in the middle of two
//! pages, which in a small file is free space that no check reads, and later steps assumed
//! rows that were not there. It also printed the path of a temporary directory removed when it
//! ended. Now every --rows the demo accepts runs it through, other values are usage errors, no
//! input makes it panic, --dir keeps the files where the user says, and --json prints JSON.

use super::{dir_entries, json_lines, peerlite, stdout_of};

#[test]
fn every_small_row_count_runs_the_whole_story() {
    for rows in 0..=20 {
        let out = peerlite()
            .args(["demo", "--rows", &rows.to_string()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "--rows {rows}: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("quick_check: error[14800011]"),
            "--rows {rows}: the damage is found"
        );
        assert!(
            stdout.contains("now removed (run with --dir DIR to keep them)"),
            "--rows {rows}"
        );
    }
}

#[test]
fn hostile_values_are_usage_errors_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("mine.txt"), "keep me").unwrap();
    for args in [
        vec!["--rows", "100001"],
        vec!["--rows", "18446744073709551616"],
        vec!["--rows", "-1"],
        vec!["--rows", "many"],
        vec!["--dir", file.to_str().unwrap()],
        vec!["--dir", full.to_str().unwrap()],
        vec!["--dir"],
        vec!["--nope"],
    ] {
        peerlite().arg("demo").args(&args).assert().code(1);
    }
    assert_eq!(
        std::fs::read_to_string(full.join("mine.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(
        dir_entries(&full),
        ["mine.txt"],
        "nothing added to a directory that was refused"
    );
    // A directory that cannot be made is an operation that failed, with its code.
    peerlite()
        .args(["demo", "--dir", &format!("{}/sub", file.display())])
        .assert()
        .code(2)
        .stderr(predicates::str::starts_with("error[17000002]"));
}

#[test]
fn dir_keeps_the_files_where_the_user_says() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("demo");
    let out = stdout_of(peerlite().args(["demo", "--rows", "5", "--dir"]).arg(&kept));
    assert!(
        out.contains(&format!("kept in {}", kept.display())),
        "{out}"
    );
    let names = dir_entries(&kept);
    for expected in [
        "RdbTest.db",
        "secret.db",
        "devices",
        "backup",
        "com.example.demo",
    ] {
        assert!(
            names.contains(&expected.to_owned()),
            "{expected} in {names:?}"
        );
    }
    let version = stdout_of(peerlite().arg("version").arg(kept.join("RdbTest.db")));
    assert_eq!(version, "3\n", "a real store, kept");
}

#[test]
fn json_prints_one_object_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let steps = json_lines(
        peerlite()
            .args(["--json", "demo", "--rows", "3", "--dir"])
            .arg(dir.path().join("d")),
    );
    let (last, steps) = steps.split_last().unwrap();
    assert_eq!(last["done"], true);
    assert!(steps.len() > 10, "{} steps", steps.len());
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step["step"], i + 1);
        assert!(
            step["title"].is_string() && step["lines"].is_array(),
            "{step}"
        );
    }
}
