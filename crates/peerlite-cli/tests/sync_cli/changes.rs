//! `peerlite changes DB [--table T] [--since SEQ] [--json]`: the captured changes — inserts,
//! updates (columns written since) and deletes (tombstones) — with their origin and hybrid
//! logical clock, filtered by table and sequence number.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use peerlite::changes::{DistributedConfig, DistributedType, ManualClock};
use peerlite::sync::{SyncMode, sync_in_memory};
use peerlite::{RdbStore, StoreConfig, bucket};
use serde_json::{Value as Json, json};

use crate::common::*;

/// The wall clock the stores start from (ms since the Unix epoch).
const T0: u64 = 1_700_000_000_000;

/// Opens `dir/<device>/notes.db` as `device` on a clock the test drives.
fn open(dir: &Path, device: &str) -> (RdbStore, Arc<ManualClock>, PathBuf) {
    let clock = Arc::new(ManualClock::new(T0));
    std::fs::create_dir_all(dir.join(device)).unwrap();
    let path = dir.join(device).join("notes.db");
    let store = RdbStore::open(
        StoreConfig::new(&path)
            .device_id(device)
            .clock(clock.clone()),
    )
    .unwrap();
    (store, clock, path)
}

/// A device with `note` (integer key) and `tag` (text key), both distributed.
fn device(dir: &Path, name: &str) -> (RdbStore, Arc<ManualClock>, PathBuf) {
    let (store, clock, path) = open(dir, name);
    store
        .execute(
            "CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT, n INTEGER)",
            &[],
        )
        .unwrap();
    store
        .execute("CREATE TABLE tag(name TEXT PRIMARY KEY, color TEXT)", &[])
        .unwrap();
    store
        .set_distributed_tables(
            &["note", "tag"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    (store, clock, path)
}

fn changes_json(db: &Path, extra: &[&str]) -> Vec<Json> {
    let out = json_of(peerlite().arg("--json").arg("changes").arg(db).args(extra));
    out.as_array().unwrap().clone()
}

fn by_key<'a>(list: &'a [Json], table: &str, key: &Json) -> &'a Json {
    list.iter()
        .find(|c| c["table"] == table && c["key"] == *key)
        .unwrap_or_else(|| panic!("no change of {table} {key} in {list:?}"))
}

/// The phone's story: two notes and a tag inserted at T0, note 1's text edited at T0+5,
/// note 2 deleted at T0+10.
fn story(dir: &Path) -> PathBuf {
    let (store, clock, path) = device(dir, "phone");
    store
        .insert("note", &bucket! { "id" => 1, "text" => "one", "n" => 1 })
        .unwrap();
    store
        .insert("note", &bucket! { "id" => 2, "text" => "two", "n" => 2 })
        .unwrap();
    store
        .insert("tag", &bucket! { "name" => "red", "color" => "#f00" })
        .unwrap();
    clock.set(T0 + 5);
    store
        .execute("UPDATE note SET text = 'ONE' WHERE id = 1", &[])
        .unwrap();
    clock.set(T0 + 10);
    store.execute("DELETE FROM note WHERE id = 2", &[]).unwrap();
    store.close().unwrap();
    path
}

#[test]
fn json_lists_inserts_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let db = story(dir.path());
    let list = changes_json(&db, &[]);
    assert_eq!(list.len(), 3, "{list:?}");
    for c in &list {
        let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "columns",
                "hlc",
                "key",
                "origin",
                "seq",
                "table",
                "tombstone"
            ]
        );
        assert_eq!(c["origin"], "phone");
    }
    let seqs: Vec<i64> = list.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "ordered by seq: {seqs:?}"
    );

    let one = by_key(&list, "note", &json!(1));
    assert_eq!(one["tombstone"], false);
    assert_eq!(one["hlc"].as_u64().unwrap() >> 16, T0, "inserted at T0");
    let cols = one["columns"].as_array().unwrap();
    assert_eq!(cols.len(), 1, "only text was written since: {one}");
    assert_eq!(cols[0]["column"], "text");
    assert_eq!(cols[0]["device"], "phone");
    assert_eq!(cols[0]["hlc"].as_u64().unwrap() >> 16, T0 + 5);

    let two = by_key(&list, "note", &json!(2));
    assert_eq!(two["tombstone"], true);
    assert_eq!(
        two["hlc"].as_u64().unwrap() >> 16,
        T0 + 10,
        "deleted at T0+10"
    );
    assert_eq!(two["columns"], json!([]));

    let red = by_key(&list, "tag", &json!("red"));
    assert_eq!(red["tombstone"], false);
    assert_eq!(red["columns"], json!([]));

    // The delete was the last change.
    assert_eq!(list.last().unwrap()["key"], json!(2));
}

#[test]
fn text_is_a_table_with_clock_times_and_written_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = story(dir.path());
    let list = changes_json(&db, &[]);
    let text = stdout_of(peerlite().arg("changes").arg(&db));
    let lines: Vec<&str> = text.lines().collect();
    let cells =
        |line: &str| -> Vec<String> { line.split('|').map(|c| c.trim().to_owned()).collect() };
    assert_eq!(
        cells(lines[0]),
        [
            "seq",
            "table",
            "key",
            "origin",
            "hlc",
            "deleted",
            "columns written since"
        ]
    );
    assert!(lines[1].chars().all(|c| c == '-' || c == '+'), "{text}");
    let rows: Vec<Vec<String>> = lines[2..]
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| cells(l))
        .collect();
    assert_eq!(rows.len(), list.len(), "{text}");
    let clock = |hlc: u64| format!("{}.{}", hlc >> 16, hlc & 0xffff);
    for (row, c) in rows.iter().zip(&list) {
        assert_eq!(row[0], c["seq"].to_string(), "{text}");
        assert_eq!(row[1], c["table"].as_str().unwrap());
        assert_eq!(row[3], "phone");
        assert_eq!(row[4], clock(c["hlc"].as_u64().unwrap()));
        assert_eq!(row[5], if c["tombstone"] == true { "yes" } else { "no" });
        let want_cols: Vec<String> = c["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|col| {
                format!(
                    "{}@{}/{}",
                    col["column"].as_str().unwrap(),
                    clock(col["hlc"].as_u64().unwrap()),
                    col["device"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(row.get(6).cloned().unwrap_or_default(), want_cols.join(" "));
    }
    let note1 = rows.iter().find(|r| r[1] == "note" && r[2] == "1").unwrap();
    assert!(note1[4].starts_with(&format!("{T0}.")), "{text}");
    assert!(
        note1[6].starts_with(&format!("text@{}.", T0 + 5)) && note1[6].ends_with("/phone"),
        "{text}"
    );
    let note2 = rows.iter().find(|r| r[1] == "note" && r[2] == "2").unwrap();
    assert_eq!(note2[5], "yes");
    assert!(
        rows.iter()
            .any(|r| r[1] == "tag" && r[2] == "red" && r[5] == "no")
    );
}

#[test]
fn since_keeps_only_later_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = story(dir.path());
    let all = changes_json(&db, &[]);
    let first = all[0]["seq"].as_i64().unwrap();
    let last = all.last().unwrap()["seq"].as_i64().unwrap();
    let later = changes_json(&db, &["--since", &first.to_string()]);
    assert_eq!(later, all[1..].to_vec());
    assert!(changes_json(&db, &["--since", &last.to_string()]).is_empty());
    assert_eq!(changes_json(&db, &["--since", "0"]), all);
    // A text listing with nothing to show is just the header.
    let text = stdout_of(
        peerlite()
            .arg("changes")
            .arg(&db)
            .args(["--since", &last.to_string()]),
    );
    assert_eq!(
        text.lines().filter(|l| !l.trim().is_empty()).count(),
        2,
        "{text}"
    );
}

#[test]
fn table_keeps_only_that_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = story(dir.path());
    let notes = changes_json(&db, &["--table", "note"]);
    assert_eq!(notes.len(), 2);
    assert!(notes.iter().all(|c| c["table"] == "note"));
    let tags = changes_json(&db, &["--table", "tag"]);
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0]["key"], "red");
    // A table that is not there is an error, not an empty listing (issue 9, item 12).
    peerlite()
        .arg("changes")
        .arg(&db)
        .args(["--table", "nope"])
        .assert()
        .code(2)
        .stderr(predicates::str::starts_with("error[14800001]"));
    let both = changes_json(
        &db,
        &["--table", "note", "--since", &notes[0]["seq"].to_string()],
    );
    assert_eq!(both, notes[1..].to_vec());
}

#[test]
fn a_later_insert_after_a_delete_clears_the_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let db = story(dir.path());
    sql(&db, &["INSERT INTO note(id, text) VALUES (2, 'again')"]);
    let list = changes_json(&db, &["--table", "note"]);
    let two = by_key(&list, "note", &json!(2));
    assert_eq!(two["tombstone"], false);
    assert_eq!(list.last().unwrap()["key"], json!(2), "the newest change");
}

#[test]
fn rows_from_another_device_show_their_origin() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, phone_clock, _) = device(dir.path(), "phone");
    let (laptop, _, laptop_db) = device(dir.path(), "laptop");
    phone
        .insert("note", &bucket! { "id" => 7, "text" => "from phone" })
        .unwrap();
    phone_clock.set(T0 + 3);
    phone
        .execute("UPDATE note SET n = 5 WHERE id = 7", &[])
        .unwrap();
    laptop
        .insert("note", &bucket! { "id" => 1, "text" => "mine" })
        .unwrap();
    let (a, b) = sync_in_memory(&phone, &laptop, SyncMode::Push, None).unwrap();
    assert_eq!((a.status.code(), b.received), (0, 1));
    let device_table = laptop
        .obtain_distributed_table_name("phone", "note")
        .unwrap();
    phone.close().unwrap();
    laptop.close().unwrap();

    let list = changes_json(&laptop_db, &["--table", "note"]);
    assert_eq!(list.len(), 2, "{list:?}");
    let own = by_key(&list, "note", &json!(1));
    assert_eq!(own["origin"], "laptop");
    let theirs = by_key(&list, &device_table, &json!(7));
    assert_eq!(theirs["origin"], "phone");
    assert_eq!(theirs["hlc"].as_u64().unwrap() >> 16, T0);
    assert_eq!(theirs["columns"][0]["column"], "n");
    assert_eq!(theirs["columns"][0]["device"], "phone");
    assert_eq!(theirs["columns"][0]["hlc"].as_u64().unwrap() >> 16, T0 + 3);
    // The device table can be asked for by its own name too.
    let only = changes_json(&laptop_db, &["--table", &device_table]);
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["key"], 7);
}

#[test]
fn single_version_keys_are_the_conflict_column() {
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = seed_db(dir.path());
    peerlite()
        .arg("distribute")
        .arg(&db)
        .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
        .arg(&file)
        .assert()
        .success();
    sql(
        &db,
        &[
            "INSERT INTO EMPLOYEE(NAME, AGE) VALUES ('Lisa', 18), ('Bo', 30)",
            "UPDATE EMPLOYEE SET AGE = 19 WHERE NAME = 'Lisa'",
            "DELETE FROM EMPLOYEE WHERE NAME = 'Bo'",
        ],
    );
    let list = changes_json(&db, &[]);
    assert_eq!(list.len(), 2, "{list:?}");
    let lisa = by_key(&list, "EMPLOYEE", &json!("Lisa"));
    assert_eq!(lisa["tombstone"], false);
    assert_eq!(lisa["columns"][0]["column"], "AGE");
    let bo = by_key(&list, "EMPLOYEE", &json!("Bo"));
    assert_eq!(bo["tombstone"], true);
    // The origin is the database's own device id, the same for both.
    assert_eq!(lisa["origin"], bo["origin"]);
    assert!(!lisa["origin"].as_str().unwrap().is_empty());
}

#[test]
fn a_database_without_distributed_tables_has_no_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("plain.db");
    sql(
        &db,
        &[
            "CREATE TABLE t(id INTEGER PRIMARY KEY, x)",
            "INSERT INTO t(x) VALUES (1)",
        ],
    );
    assert!(changes_json(&db, &[]).is_empty());
    let text = stdout_of(peerlite().arg("changes").arg(&db));
    assert!(
        text.starts_with("seq | table | key | origin | hlc | deleted | columns written since"),
        "{text}"
    );
}

#[test]
fn changes_reads_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let db = story(dir.path());
    let before = (file_bytes(&db), schema_rows(&db));
    stdout_of(peerlite().arg("changes").arg(&db));
    stdout_of(peerlite().arg("--json").arg("changes").arg(&db));
    assert_eq!((file_bytes(&db), schema_rows(&db)), before);
}

#[test]
fn a_missing_database_fails_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing.db");
    peerlite()
        .arg("changes")
        .arg(&db)
        .assert()
        .code(2)
        .stderr(predicates::str::starts_with("error["));
    assert!(!db.exists());
}

#[test]
fn a_bad_since_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = story(dir.path());
    peerlite()
        .arg("changes")
        .arg(&db)
        .args(["--since", "yesterday"])
        .assert()
        .code(1);
}
