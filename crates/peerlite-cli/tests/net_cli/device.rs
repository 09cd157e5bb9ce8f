//! `peerlite device init|id`.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::*;

#[test]
fn init_prints_only_the_id_and_id_prints_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let id = init(&home, &["--name", "laptop", "--level", "SL3"]);
    let again = stdout_of(peerlite().args(["device", "id", "--home"]).arg(&home));
    assert_eq!(again, format!("{id}\n"));
    // The same through PEERLITE_HOME.
    let by_env = stdout_of(
        peerlite()
            .args(["device", "id"])
            .env("PEERLITE_HOME", &home),
    );
    assert_eq!(by_env, format!("{id}\n"));
    let json: serde_json::Value = serde_json::from_str(&stdout_of(
        peerlite()
            .args(["--json", "device", "id", "--home"])
            .arg(&home),
    ))
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"id": id.to_string(), "name": "laptop", "level": "SL3"})
    );
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(&home.join("device.key")), 0o600);
    assert_eq!(mode(&home.join("device.json")), 0o600);
}

#[test]
fn init_on_a_home_with_an_identity_is_refused_and_keeps_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let id = init(dir.path(), &[]);
    let key = fs::read(dir.path().join("device.key")).unwrap();
    let stderr = fails_with(
        peerlite()
            .args(["device", "init", "--home"])
            .arg(dir.path())
            .args(["--name", "other"]),
        17060011,
    );
    assert!(stderr.contains(&id.to_string()));
    assert!(stderr.contains("peerlite device id"));
    assert_eq!(fs::read(dir.path().join("device.key")).unwrap(), key);
    let again = stdout_of(peerlite().args(["device", "id", "--home"]).arg(dir.path()));
    assert_eq!(again.trim(), id.to_string());
}

#[test]
fn id_without_an_identity_points_to_init() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = fails_with(
        peerlite().args(["device", "id", "--home"]).arg(dir.path()),
        17060012,
    );
    assert!(stderr.contains("peerlite device init"));
}

#[test]
fn bad_flags_are_usage_errors_and_bad_names_failures() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["device", "init", "--level", "SL6", "--home"],
        vec!["device", "init", "--level", "S1", "--home"],
        vec!["device", "frobnicate", "--home"],
    ] {
        peerlite()
            .args(&args)
            .arg(dir.path())
            .assert()
            .code(1)
            .stdout("");
    }
    peerlite().args(["device", "init"]).assert().code(1);
    fails_with(
        peerlite()
            .args(["device", "init", "--name", "", "--home"])
            .arg(dir.path()),
        17060016,
    );
    // Nothing was created by the refused calls.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}
