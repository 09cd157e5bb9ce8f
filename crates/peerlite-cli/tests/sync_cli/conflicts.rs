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
