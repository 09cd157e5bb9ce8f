//! An encrypted database (`--key` / PEERLITE_KEY): its backups are encrypted with the same key,
//! restore with it, and nothing about them is readable without it.

use super::*;

const KEY: &str = "s3cret key";

#[test]
fn an_encrypted_database_backs_up_encrypted_and_restores_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("secret.db");
    peerlite()
        .args(["--key", KEY, "sql"])
        .arg(&db)
        .arg("CREATE TABLE t(id INTEGER PRIMARY KEY, marker TEXT, pad BLOB)")
        .arg(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
             INSERT INTO t(marker, pad) SELECT 'hidden words', zeroblob(100) FROM n",
        )
        .assert()
        .success();
    let original = content_of(&db, Some(KEY));
    assert_eq!(original.0, 2000);

    let out = stdout_of(peerlite().args(["--key", KEY, "backup"]).arg(&db).arg("BK"));
    let bk = backup_dir(&db).join("BK");
    assert_eq!(out, format!("{}\n", bk.display()));
    let bytes = std::fs::read(&bk).unwrap();
    assert!(bytes.len() > 100_000);
    assert!(
        !bytes.starts_with(b"SQLite format 3\0"),
        "no plaintext header"
    );
    assert!(
        !bytes.windows(12).any(|w| w == b"hidden words"),
        "no plaintext rows"
    );
    assert!(
        !bytes.windows(16).any(|w| w == [0u8; 16]),
        "the zero blobs are encrypted too"
    );
    let plain = rusqlite::Connection::open(&bk).unwrap();
    assert!(
        plain
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r
                .get::<_, i64>(0))
            .is_err(),
        "unreadable without the key"
    );
    drop(plain);
    assert_eq!(content_of(&bk, Some(KEY)), original, "readable with it");

    let list = json_of(
        peerlite()
            .args(["--key", KEY, "--json", "backups"])
            .arg(&db),
    );
    assert_eq!(list[0]["name"], "BK");
    assert_eq!(list[0]["encrypted"], true);
    assert_eq!(list[0]["verified"], true);

    // The listing reads only the manifests (never the store or a backup's data): it needs
    // no key, so the backups of a store whose key or file is damaged can still be listed.
    for key in [None, Some("wrong")] {
        let mut cmd = peerlite();
        if let Some(key) = key {
            cmd.args(["--key", key]);
        }
        let listed = json_of(cmd.args(["--json", "backups"]).arg(&db));
        assert_eq!(listed, list, "the same listing with {key:?}");
    }
    // Without the key, or with another, nothing is restored or checked.
    error_code(peerlite().arg("restore").arg(&db).arg("BK"), 14_800_020);
    error_code(peerlite().arg("backup").arg(&db).arg("BK2"), 14_800_020);
    error_code(peerlite().arg("check").arg(&db), 14_800_020);
    assert!(!backup_dir(&db).join("BK2").exists());

    peerlite()
        .args(["--key", KEY, "sql"])
        .arg(&db)
        .arg("DELETE FROM t WHERE id > 5")
        .assert()
        .success();
    let out = stdout_of(
        peerlite()
            .env("PEERLITE_KEY", KEY)
            .arg("restore")
            .arg(&db)
            .arg("BK"),
    );
    assert!(
        out.starts_with(&format!("restored {} (version 0)\n", bk.display())),
        "{out}"
    );
    assert_eq!(content_of(&db, Some(KEY)), original);
    let safety = std::fs::read(backup_dir(&db).join("pre-restore")).unwrap();
    assert!(
        !safety.starts_with(b"SQLite format 3\0"),
        "the safety copy is encrypted too"
    );
    assert_eq!(
        stdout_of(peerlite().args(["--key", KEY, "check", "--full"]).arg(&db)),
        "ok\n"
    );
}

#[test]
fn a_backup_and_a_store_with_different_keys_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.db");
    peerlite()
        .args(["--key", KEY, "sql"])
        .arg(&secret)
        .arg("CREATE TABLE t(id INTEGER PRIMARY KEY, marker TEXT, pad BLOB)")
        .arg("INSERT INTO t(marker) VALUES ('s')")
        .assert()
        .success();
    let secret_backup = stdout_of(
        peerlite()
            .args(["--key", KEY, "backup"])
            .arg(&secret)
            .arg("S"),
    );
    let plain = dir.path().join("plain.db");
    make_db(&plain, 10, "plain");
    let plain_backup = stdout_of(peerlite().arg("backup").arg(&plain).arg("P"));
    let (secret_before, plain_before) = (content_of(&secret, Some(KEY)), content_of(&plain, None));

    // A plain backup into the encrypted store: opened with the store's key, it does not decrypt.
    error_code(
        peerlite()
            .args(["--key", KEY, "restore"])
            .arg(&secret)
            .arg(plain_backup.trim_end())
            .arg("--force"),
        14_800_020,
    );
    // An encrypted backup into the plain store.
    error_code(
        peerlite()
            .arg("restore")
            .arg(&plain)
            .arg(secret_backup.trim_end())
            .arg("--force"),
        14_800_020,
    );
    assert_eq!(content_of(&secret, Some(KEY)), secret_before);
    assert_eq!(content_of(&plain, None), plain_before);
}

/// Issue 9, defect 8, at the command line: a truncated encrypted store, cut at a page
/// boundary or inside a page. Without its key, every command — `repair` included — says a
/// key is missing (14800020, hint naming --key / PEERLITE_KEY) and the file is left alone:
/// `repair` once replaced it with an empty plaintext store. With its key, it is corrupted
/// (14800011), and `repair` puts the backup back and salvages the readable rows.
#[test]
fn a_truncated_encrypted_store_is_a_missing_key_without_it_and_repairs_with_it() {
    for cut_inside_page in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("secret.db");
        make_keyed_db(&db, Some(KEY), 3000, "kept");
        stdout_of(
            peerlite()
                .args(["--key", KEY, "backup"])
                .arg(&db)
                .arg("GOOD"),
        );
        checkpoint(&db, Some(KEY));
        let bytes = std::fs::read(&db).unwrap();
        let cut = bytes.len() / 2 / 4096 * 4096 + if cut_inside_page { 1000 } else { 0 };
        std::fs::write(&db, &bytes[..cut]).unwrap();

        for args in [&["repair"][..], &["check"], &["sql", "SELECT 1"]] {
            let mut cmd = peerlite();
            cmd.arg(args[0]).arg(&db).args(&args[1..]);
            let stderr = error_code(&mut cmd, 14_800_020);
            assert!(
                stderr.contains("--key") && stderr.contains("PEERLITE_KEY"),
                "{stderr}"
            );
        }
        assert_eq!(
            std::fs::read(&db).unwrap(),
            &bytes[..cut],
            "the file was touched"
        );
        assert!(!dir.path().join("quarantine").exists());

        let (_, stderr) = fails_with(peerlite().args(["--key", KEY, "check"]).arg(&db), 3);
        assert_error_shape(&stderr, 14_800_011);
        let out = stdout_of(peerlite().args(["--key", KEY, "repair"]).arg(&db));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "repaired from GOOD", "{out}");
        let rows: u64 = lines[1]
            .strip_prefix("salvaged ")
            .and_then(|l| l.split_once(' '))
            .map(|(n, _)| n.parse().unwrap())
            .unwrap_or_else(|| panic!("{out}"));
        assert!(rows > 1000, "half the file's rows: {out}");
        assert_eq!(rows_of(&db, Some(KEY)), (3000, "kept".into()));
        assert!(
            !std::fs::read(&db)
                .unwrap()
                .starts_with(b"SQLite format 3\0"),
            "still encrypted"
        );
    }
}
