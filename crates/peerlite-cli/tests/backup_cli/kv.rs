//! The same commands on a key-value store: `--kv STORE_DIR STORE_ID` in place of DB.

use super::*;

/// `peerlite kv DIR s ARGS`.
fn kv(dir: &Path, args: &[&str]) -> Command {
    let mut c = peerlite();
    c.arg("kv").arg(dir).arg("s").args(args);
    c
}

/// `peerlite [--json] CMD --kv DIR s ARGS`.
fn on_kv(json: bool, cmd: &str, dir: &Path, args: &[&str]) -> Command {
    let mut c = peerlite();
    if json {
        c.arg("--json");
    }
    c.arg(cmd).arg("--kv").arg(dir).arg("s").args(args);
    c
}

fn get(dir: &Path, key: &str) -> String {
    stdout_of(&mut kv(dir, &["get", key]))
}

#[test]
fn kv_backup_backups_restore_delete_check_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stores");
    kv(&dir, &["put", "ui.theme", "dark"]).assert().success();
    kv(&dir, &["put", "ui.size", "14", "--type", "integer"])
        .assert()
        .success();
    let bdir = dir.join("backup").join("s.db");

    let out = stdout_of(&mut on_kv(false, "backup", &dir, &["BK"]));
    assert_eq!(out, format!("{}\n", bdir.join("BK").display()));
    assert_eq!(files_in(&bdir), ["BK", "BK.manifest.json"]);
    let info = json_of(&mut on_kv(true, "backup", &dir, &["BK2"]));
    assert_eq!(info["name"], "BK2");
    assert_eq!(
        info["path"].as_str().unwrap(),
        bdir.join("BK2").to_str().unwrap()
    );
    assert_eq!(
        info["bytes"].as_u64().unwrap(),
        std::fs::metadata(bdir.join("BK2")).unwrap().len()
    );
    assert_eq!(
        info["version"], 1,
        "a key-value store is at schema version 1"
    );
    assert_eq!(info["restarts"], 0);
    assert_checksum(info["checksum"].as_str().unwrap());
    assert_rfc3339(info["created"].as_str().unwrap());

    let table = stdout_of(&mut on_kv(false, "backups", &dir, &[]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("name"), "{table}");
    assert!(lines[2].starts_with("BK2 "), "newest first: {table}");
    assert!(lines[3].starts_with("BK "), "{table}");
    let list = json_of(&mut on_kv(true, "backups", &dir, &[]));
    assert_eq!(list[0]["name"], "BK2");
    assert_eq!(list[0]["checksum"], info["checksum"]);
    assert_eq!(list[0]["verified"], true);
    assert_eq!(list[1]["name"], "BK");
    assert_eq!(list.as_array().unwrap().len(), 2);

    kv(&dir, &["put", "ui.theme", "light"]).assert().success();
    kv(&dir, &["delete", "ui.size"]).assert().success();
    let out = stdout_of(&mut on_kv(false, "restore", &dir, &["BK"]));
    assert_eq!(
        out,
        format!(
            "restored {} (version 1)\nthe replaced data is kept in {}\n",
            bdir.join("BK").display(),
            bdir.join("pre-restore").display()
        )
    );
    assert_eq!(get(&dir, "ui.theme"), "dark\n");
    assert_eq!(get(&dir, "ui.size"), "14\n");
    kv(&dir, &["put", "ui.theme", "blue"]).assert().success();
    let report = json_of(&mut on_kv(
        true,
        "restore",
        &dir,
        &["BK2", "--step-pages", "1"],
    ));
    assert_eq!(
        report["restored_from"].as_str().unwrap(),
        bdir.join("BK2").to_str().unwrap()
    );
    assert_eq!(report["version"], 1);
    assert_eq!(get(&dir, "ui.theme"), "dark\n");

    let (stdout, stderr) = fails_with(
        &mut on_kv(
            false,
            "delete-backup",
            &dir,
            &["BK", "nope", "auto-x", "../x"],
        ),
        2,
    );
    assert_eq!(stderr, "");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[0], "BK: deleted");
    assert!(lines[1].starts_with("nope: error[17020001] "), "{stdout}");
    assert!(lines[2].starts_with("auto-x: error[17020006] "), "{stdout}");
    assert!(lines[3].starts_with("../x: error[14800010] "), "{stdout}");
    let results = {
        let (stdout, _) = fails_with(&mut on_kv(true, "delete-backup", &dir, &["BK2", "BK"]), 2);
        serde_json::from_str::<Json>(stdout.trim()).unwrap()
    };
    assert_eq!(
        results[0],
        serde_json::json!({"name": "BK2", "result": "deleted"})
    );
    assert_eq!(results[1]["result"]["code"], 17020001);
    // The second restore kept the first one's safety copy under a name of its own.
    let kept: Vec<String> = files_in(&bdir)
        .into_iter()
        .filter(|f| f.starts_with("pre-restore-") && !f.ends_with(".manifest.json"))
        .collect();
    assert_eq!(kept.len(), 1, "{:?}", files_in(&bdir));
    assert_eq!(
        stdout_of(&mut on_kv(
            false,
            "delete-backup",
            &dir,
            &["pre-restore", &kept[0]]
        )),
        format!("pre-restore: deleted\n{}: deleted\n", kept[0])
    );
    assert!(files_in(&bdir).is_empty());

    assert_eq!(stdout_of(&mut on_kv(false, "check", &dir, &[])), "ok\n");
    assert_eq!(
        stdout_of(&mut on_kv(false, "check", &dir, &["--full"])),
        "ok\n"
    );
    assert_eq!(
        stdout_of(&mut on_kv(false, "repair", &dir, &[])),
        "ok: nothing to repair\n"
    );
    assert_eq!(
        json_of(&mut on_kv(true, "repair", &dir, &[])),
        serde_json::json!({"status": "ok"})
    );

    // A store that does not exist is not created by any of these commands.
    for cmd in ["backup", "backups", "check", "repair"] {
        let mut c = peerlite();
        c.arg(cmd).arg("--kv").arg(&dir).arg("missing");
        error_code(&mut c, 15_100_004);
    }
    assert!(!dir.join("missing.db").exists());
}

#[test]
fn kv_corruption_is_15100003_and_repair_brings_the_backup_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stores");
    // Large values: a store of a few MB, most of it overflow pages.
    let mut rng = Rng(7);
    let mut values = Vec::new();
    for i in 0..24 {
        let value: String = (0..100_000)
            .map(|_| char::from(b'a' + (rng.next_u64() % 26) as u8))
            .collect();
        kv(&dir, &["put", &format!("k{i:02}"), &value])
            .assert()
            .success();
        values.push(value);
    }
    kv(&dir, &["put", "small", "kept"]).assert().success();
    stdout_of(&mut on_kv(false, "backup", &dir, &["BK"]));
    let db = dir.join("s.db");
    checkpoint(&db, None);
    let len = std::fs::metadata(&db).unwrap().len();
    assert!(len > 2_000_000, "{len}");
    corrupt_pages(&db, &[0.31, 0.32, 0.55, 0.77], 99);

    let (stdout, stderr) = fails_with(&mut on_kv(false, "check", &dir, &["--full"]), 3);
    assert_eq!(stdout, "");
    assert_error_shape(&stderr, 15_100_003);
    let stderr = error_code(&mut kv(&dir, &["get", "small"]), 15_100_003);
    assert!(stderr.contains("peerlite repair"), "{stderr}");

    let out = stdout_of(&mut on_kv(false, "repair", &dir, &[]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "repaired from BK", "{out}");
    assert!(lines.iter().any(|l| l.starts_with("salvaged ")), "{out}");
    let quarantine = lines
        .last()
        .unwrap()
        .strip_prefix("the damaged files are kept in ")
        .unwrap();
    assert!(Path::new(quarantine).join("s.db").is_file(), "{out}");
    assert!(
        Path::new(quarantine).starts_with(dir.join("quarantine")),
        "{out}"
    );

    assert_eq!(get(&dir, "small"), "kept\n");
    let listing = stdout_of(&mut kv(&dir, &["list", "--prefix", "k"]));
    let expected: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("k{i:02}\t{v}\n"))
        .collect();
    assert!(listing == expected, "every large value is back, intact");
    assert_eq!(
        stdout_of(&mut on_kv(false, "check", &dir, &["--full"])),
        "ok\n"
    );
}
