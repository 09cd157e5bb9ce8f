//! The global `--level S1..S4`: a store a command creates gets that data label, and an
//! existing store opens at the label it holds without the flag. Before, every command opened
//! stores at S1, and a store above S1 could not be opened from the command line at all
//! (14800017: "opening it at S1 would lower it").

use serde_json::json;

use crate::common::*;

#[test]
fn a_store_created_at_a_label_opens_at_it_without_the_flag() {
    let root = tempfile::tempdir().unwrap();
    let db = root.path().join("vault.db");
    peerlite()
        .args(["--level", "S3", "sql"])
        .arg(&db)
        .arg("CREATE TABLE t(x)")
        .assert()
        .success();
    // Every command opens it as it is.
    sql(&db, &["INSERT INTO t VALUES (1)"]);
    let out = json_of(peerlite().args(["sql", "--json"]).arg(&db).arg(
        "SELECT level FROM (SELECT value AS level FROM peerlite_meta WHERE key = 'security_level')",
    ));
    assert_eq!(out["rows"], json!([["3"]]));
    stdout_of(peerlite().arg("version").arg(&db));
    stdout_of(peerlite().arg("distribute").arg(&db).arg("t"));
    // Raising works; lowering is refused with its code.
    stdout_of(
        peerlite()
            .args(["--level", "S4", "sql"])
            .arg(&db)
            .arg("SELECT 1"),
    );
    let (code, _, err) = run(peerlite()
        .args(["sql", "--level", "S2"])
        .arg(&db)
        .arg("SELECT 1"));
    assert_eq!(code, 2);
    assert!(err.starts_with("error[14800017]"), "{err}");
    // A key-value store too.
    let kv = root.path().join("kv");
    peerlite()
        .args(["--level", "S2", "kv"])
        .arg(&kv)
        .args(["prefs", "put", "k", "v"])
        .assert()
        .success();
    assert_eq!(
        stdout_of(peerlite().arg("kv").arg(&kv).args(["prefs", "get", "k"])),
        "v\n"
    );
    // A level of the other kind is a usage error.
    let (code, _, _) = run(peerlite()
        .args(["--level", "SL3", "sql"])
        .arg(&db)
        .arg("SELECT 1"));
    assert_eq!(code, 1);
}
