//! `peerlite conflicts DB [--json]` lists the remote rows sync could not apply;
//! `--resolve ID... --keep local|remote|earlier` settles them, a line per id with its result
//! (exit 2 when any failed).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use peerlite::changes::{DistributedConfig, DistributedType, ManualClock};
use peerlite::schema::SyncSchema;
use peerlite::sync::{SyncMode, sync_in_memory};
use peerlite::{RdbStore, StoreConfig, bucket};
use serde_json::{Value as Json, json};

use crate::common::*;

const T0: u64 = 1_700_000_000_000;

const SCHEMA: &str = r#"{"dbSchema":[{"version":1,"bundleName":"com.example.peerlite","dbName":"items","tables":[{"tableName":"item",
  "deviceSyncFields":["uuid","code"],
  "fields":[{"columnName":"uuid","type":"Text","primaryKey":true,"notNull":true},
            {"columnName":"code","type":"Text"}]}]}]}"#;

/// A device whose `item(uuid, code UNIQUE)` holds one row, created at `at`.
fn device(dir: &Path, name: &str, at: u64, uuid: &str) -> (RdbStore, PathBuf) {
    std::fs::create_dir_all(dir.join(name)).unwrap();
    let path = dir.join(name).join("items.db");
    let store = RdbStore::open(
        StoreConfig::new(&path)
            .device_id(name)
            .clock(Arc::new(ManualClock::new(at))),
    )
    .unwrap();
    store
        .execute(
            "CREATE TABLE item(id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE, code TEXT UNIQUE)",
            &[],
        )
        .unwrap();
    let config = DistributedConfig::single_version(SyncSchema::parse(SCHEMA).unwrap());
    store
        .set_distributed_tables(&["item"], DistributedType::Device, &config)
        .unwrap();
    store
        .insert("item", &bucket! { "uuid" => uuid, "code" => "X" })
        .unwrap();
    (store, path)
}

/// alpha (u1, earlier) and beta (u2) both claimed code X and synced: each records a conflict.
/// The stores are closed, so the commands below are the only ones with the files open.
fn clash(dir: &Path) -> (PathBuf, PathBuf) {
    let (a, pa) = device(dir, "alpha", T0, "u1");
    let (b, pb) = device(dir, "beta", T0 + 5, "u2");
    let (ra, rb) = sync_in_memory(&a, &b, SyncMode::PushPull, None).unwrap();
    assert_eq!((ra.conflicts, rb.conflicts), (1, 1));
    a.close().unwrap();
    b.close().unwrap();
    (pa, pb)
}

/// `peerlite --json conflicts DB`.
fn listed(db: &Path) -> Json {
    json_of(peerlite().arg("--json").arg("conflicts").arg(db))
}

/// The id of the first conflict listed for `db`.
fn first_id(db: &Path) -> String {
    listed(db)[0]["id"].as_i64().unwrap().to_string()
}

fn uuids(db: &Path) -> Json {
    query(db, "SELECT uuid FROM item ORDER BY uuid")
}

#[test]
fn lists_each_conflict_as_a_line_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pb) = clash(dir.path());
    let text = stdout_of(peerlite().arg("conflicts").arg(&pb));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("id") && lines[0].contains("device"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("item") && l.contains("u1") && l.contains("alpha")),
        "{text}"
    );
    let list = listed(&pb);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["table"], json!("item"));
    assert_eq!(list[0]["key"], json!("u1"));
    assert_eq!(list[0]["device"], json!("alpha"));
    assert!(list[0]["id"].as_i64().is_some() && list[0]["code"].as_u64().unwrap() > 0);
}

#[test]
fn keep_earlier_on_each_device_keeps_the_same_row() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = clash(dir.path());
    for db in [&pa, &pb] {
        let id = first_id(db);
        let out = stdout_of(peerlite().arg("conflicts").arg(db).args([
            "--resolve",
            &id,
            "--keep",
            "earlier",
        ]));
        assert_eq!(out, format!("{id}: resolved\n"));
        assert_eq!(listed(db), json!([]));
    }
    // alpha kept its earlier u1; beta took u1 and deleted its own u2.
    assert_eq!(uuids(&pa), json!([{"uuid": "u1"}]));
    assert_eq!(uuids(&pb), json!([{"uuid": "u1"}]));
}

#[test]
fn keep_local_and_remote_do_what_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = clash(dir.path());
    let (ia, ib) = (first_id(&pa), first_id(&pb));
    peerlite()
        .arg("conflicts")
        .arg(&pa)
        .args(["--resolve", &ia, "--keep", "remote"])
        .assert()
        .success();
    assert_eq!(uuids(&pa), json!([{"uuid": "u2"}]));
    peerlite()
        .arg("conflicts")
        .arg(&pb)
        .args(["--resolve", &ib, "--keep", "local"])
        .assert()
        .success();
    assert_eq!(uuids(&pb), json!([{"uuid": "u2"}]));
}

#[test]
fn an_unknown_id_gets_its_own_error_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pb) = clash(dir.path());
    let id = first_id(&pb);
    let (code, out, _) = run(peerlite().arg("conflicts").arg(&pb).args([
        "--resolve",
        "999",
        &id,
        "--keep",
        "earlier",
    ]));
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "999: error[14800001] invalid argument: no conflict 999".to_owned(),
            format!("{id}: resolved")
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        "the good id is still resolved"
    );
    let (code, out, _) = run(peerlite().arg("--json").arg("conflicts").arg(&pb).args([
        "--resolve",
        "999",
        "--keep",
        "local",
    ]));
    assert_eq!(code, 2);
    let list: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(list[0]["id"], json!(999));
    assert_eq!(list[0]["result"]["code"], json!(14800001));
}

#[test]
fn usage_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pb) = clash(dir.path());
    for args in [
        vec!["--resolve", "1"],
        vec!["--keep", "earlier"],
        vec!["--resolve", "1", "--keep", "first"],
        vec!["--resolve", "x", "--keep", "local"],
    ] {
        let (code, _, err) = run(peerlite().arg("conflicts").arg(&pb).args(&args));
        assert_eq!(code, 1, "{args:?}: {err}");
    }
}

#[test]
fn a_database_that_does_not_exist_is_an_error_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.db");
    let (code, _, err) = run(peerlite().arg("conflicts").arg(&missing));
    assert_eq!(code, 2);
    assert!(err.contains("error[14800010]"), "{err}");
    assert!(!missing.exists());
}

/// Adversary round 4, LOW-2: a conflict whose kept row the app's own trigger still refuses
/// (here `RAISE(ABORT)` while a row of the app's `app_rule` table exists) failed with
/// `error[14800001] invalid argument: conflict 1 still does not apply` — the wrong code (the
/// argument was valid) and no `hint:` line. Now it is the constraint error (14800032) with the
/// trigger's message, and a hint naming `peerlite sql` and the other `--keep`; the conflict
/// stays listed and nothing changed. Both kinds of conflict: a peer's row (`--keep remote`)
/// and this device's own change a reset replayed (`--keep local`).
#[test]
fn a_kept_row_the_apps_trigger_refuses_is_a_constraint_error_with_a_hint() {
    const RULE: &str = "CREATE TABLE app_rule(x); INSERT INTO app_rule VALUES (1);
        CREATE TRIGGER guard BEFORE INSERT ON item WHEN NEW.uuid = 'u1' AND EXISTS(SELECT 1 FROM app_rule)
        BEGIN SELECT RAISE(ABORT, 'blocked by app rule'); END";
    for replayed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (db, keep, other) = if replayed {
            // alpha's own u1, never synced, replayed by a reset from beta onto beta's u2.
            let (a, pa) = device(dir.path(), "alpha", T0, "u1");
            let (b, _) = device(dir.path(), "beta", T0 + 5, "u2");
            a.execute_script(RULE).unwrap();
            let reseed = a.begin_reset("beta").unwrap();
            let (on_seed, _) = sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
            assert!(on_seed.status.is_ok(), "{on_seed:?}");
            let report = reseed
                .finish(peerlite::reset::ResetMode::RecoverUnsynced)
                .unwrap();
            assert_eq!(report.conflicts, 1, "{report:?}");
            a.close().unwrap();
            b.close().unwrap();
            (pa, "local", "--keep remote")
        } else {
            let (_, pb) = clash(dir.path());
            let (code, _, err) = run(peerlite().arg("sql").arg(&pb).arg(RULE));
            assert_eq!(code, 0, "{err}");
            (pb, "remote", "--keep local")
        };
        let case = format!("replayed by a reset: {replayed}");
        let id = first_id(&db);
        let before = uuids(&db);
        let (code, out, err) =
            run(peerlite()
                .arg("conflicts")
                .arg(&db)
                .args(["--resolve", &id, "--keep", keep]));
        assert_eq!(code, 2, "{case}: {out} {err}");
        assert!(
            out.starts_with(&format!("{id}: error[14800032] "))
                && out.contains("blocked by app rule"),
            "{case}: {out}"
        );
        let hint = err
            .lines()
            .find_map(|l| l.strip_prefix("hint: "))
            .unwrap_or_else(|| panic!("{case}: no hint in {err:?}"));
        assert!(
            hint.contains("`peerlite sql DB") && hint.contains(other),
            "{case}: {hint}"
        );
        assert_eq!(uuids(&db), before, "{case}: nothing changed");
        assert_eq!(first_id(&db), id, "{case}: still listed");
        // The hint's other way settles it.
        let (flag, value) = other.split_once(' ').unwrap();
        let out =
            stdout_of(
                peerlite()
                    .arg("conflicts")
                    .arg(&db)
                    .args(["--resolve", &id, flag, value]),
            );
        assert_eq!(out, format!("{id}: resolved\n"), "{case}");
        assert_eq!(listed(&db), json!([]), "{case}");
    }
}
