//! Change capture: what the triggers record for each kind of local write.

use peerlite::changes::hlc::physical_ms;
use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::sync::SyncMode;
use peerlite::{RdbPredicates, Value, bucket, values};

use crate::common::*;

fn note(id: i64) -> RdbPredicates {
    RdbPredicates::new("note").equal_to("id", id)
}

#[test]
fn insert_records_one_live_change_from_this_device() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    assert!(phone.changes(None, 0).unwrap().is_empty());
    let id = phone
        .insert("note", &bucket! { "text" => "a", "n" => 1 })
        .unwrap();
    let changes = phone.changes(Some("note"), 0).unwrap();
    assert_eq!(changes.len(), 1);
    let c = &changes[0];
    assert_eq!(c.table, "note");
    assert_eq!(c.key, Value::Integer(id));
    assert_eq!(c.origin, "phone");
    assert!(!c.tombstone);
    assert!(
        c.columns.is_empty(),
        "an insert writes every column at once"
    );
    assert_eq!(physical_ms(c.hlc), T0);
    assert!(c.seq > 0);
}

#[test]
fn each_inserted_row_gets_its_own_change_in_sequence_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone
        .execute("INSERT INTO note(text) VALUES ('a'), ('b'), ('c')", &[])
        .unwrap();
    phone
        .batch_insert(
            "note",
            &[bucket! { "text" => "d" }, bucket! { "text" => "e" }],
        )
        .unwrap();
    let changes = phone.changes(Some("note"), 0).unwrap();
    let keys: Vec<Value> = changes.iter().map(|c| c.key.clone()).collect();
    assert_eq!(keys, (1..=5).map(Value::Integer).collect::<Vec<_>>());
    assert!(changes.windows(2).all(|w| w[1].seq > w[0].seq));
    assert!(changes.windows(2).all(|w| w[1].hlc > w[0].hlc));
}

#[test]
fn update_registers_only_the_columns_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone
        .insert("note", &bucket! { "text" => "a", "n" => 1 })
        .unwrap();
    let inserted = phone.changes(Some("note"), 0).unwrap()[0].clone();
    clock.advance(100);
    assert_eq!(phone.update(&bucket! { "n" => 2 }, &note(1)).unwrap(), 1);
    let changes = phone.changes(Some("note"), 0).unwrap();
    assert_eq!(changes.len(), 1, "still one clock row per data row");
    let c = &changes[0];
    assert!(c.seq > inserted.seq);
    assert_eq!(
        c.hlc, inserted.hlc,
        "the existence event is still the insert"
    );
    assert!(!c.tombstone);
    assert_eq!(c.columns.len(), 1, "{:?}", c.columns);
    let (column, hlc, device) = &c.columns[0];
    assert_eq!(column, "n");
    assert_eq!(physical_ms(*hlc), T0 + 100);
    assert_eq!(device, "phone");

    // A later update of the other column adds its register and keeps the first.
    clock.advance(100);
    phone.update(&bucket! { "text" => "b" }, &note(1)).unwrap();
    let c = &phone.changes(Some("note"), 0).unwrap()[0];
    let mut cols: Vec<&str> = c.columns.iter().map(|(n, _, _)| n.as_str()).collect();
    cols.sort();
    assert_eq!(cols, ["n", "text"]);
    let text = c.columns.iter().find(|x| x.0 == "text").unwrap();
    let n = c.columns.iter().find(|x| x.0 == "n").unwrap();
    assert!(text.1 > n.1);
}

#[test]
fn update_through_raw_sql_is_captured_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    for i in 0..3 {
        phone.insert("note", &bucket! { "n" => i }).unwrap();
    }
    let since = phone.changes(None, 0).unwrap().last().unwrap().seq;
    assert_eq!(phone.execute("UPDATE note SET n = n + 10", &[]).unwrap(), 3);
    let changes = phone.changes(Some("note"), since).unwrap();
    assert_eq!(changes.len(), 3);
    for c in &changes {
        assert_eq!(c.columns.len(), 1);
        assert_eq!(c.columns[0].0, "n");
    }
}

#[test]
fn update_that_changes_nothing_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone
        .insert("note", &bucket! { "text" => "a", "n" => 1 })
        .unwrap();
    let since = phone.changes(None, 0).unwrap()[0].seq;
    assert_eq!(
        phone
            .update(&bucket! { "text" => "a", "n" => 1 }, &note(1))
            .unwrap(),
        1,
        "SQLite counts the row as updated"
    );
    phone.execute("UPDATE note SET text = text", &[]).unwrap();
    assert!(phone.changes(None, since).unwrap().is_empty());
    assert!(phone.changes(None, 0).unwrap()[0].columns.is_empty());
}

#[test]
fn delete_records_a_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone.insert("note", &bucket! { "text" => "a" }).unwrap();
    phone.update(&bucket! { "n" => 5 }, &note(1)).unwrap();
    let before = phone.changes(None, 0).unwrap()[0].clone();
    clock.advance(10);
    assert_eq!(phone.delete(&note(1)).unwrap(), 1);
    let changes = phone.changes(Some("note"), 0).unwrap();
    assert_eq!(changes.len(), 1);
    let c = &changes[0];
    assert!(c.tombstone);
    assert_eq!(c.key, Value::Integer(1));
    assert_eq!(c.origin, "phone");
    assert!(c.seq > before.seq);
    assert!(c.hlc > before.hlc);
    assert_eq!(physical_ms(c.hlc), T0 + 10);
    assert!(c.columns.is_empty(), "a delete clears the column registers");
}

#[test]
fn delete_without_where_records_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    for i in 0..4 {
        phone.insert("note", &bucket! { "n" => i }).unwrap();
    }
    phone.execute("DELETE FROM note", &[]).unwrap();
    let changes = phone.changes(Some("note"), 0).unwrap();
    assert_eq!(changes.len(), 4);
    assert!(changes.iter().all(|c| c.tombstone));
}

#[test]
fn reinsert_after_delete_is_alive_again() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone
        .insert("note", &bucket! { "id" => 1, "text" => "a" })
        .unwrap();
    phone.delete(&note(1)).unwrap();
    let deleted = phone.changes(None, 0).unwrap()[0].clone();
    phone
        .insert("note", &bucket! { "id" => 1, "text" => "b" })
        .unwrap();
    let changes = phone.changes(None, 0).unwrap();
    assert_eq!(changes.len(), 1);
    assert!(!changes[0].tombstone);
    assert!(changes[0].hlc > deleted.hlc);
}

#[test]
fn primary_key_change_tombstones_the_old_key_and_inserts_the_new() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone
        .insert("note", &bucket! { "text" => "a", "n" => 1 })
        .unwrap();
    let since = phone.changes(None, 0).unwrap()[0].seq;
    phone
        .execute("UPDATE note SET id = 10 WHERE id = 1", &[])
        .unwrap();
    let changes = phone.changes(Some("note"), since).unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    let old = changes.iter().find(|c| c.key == Value::Integer(1)).unwrap();
    let new = changes
        .iter()
        .find(|c| c.key == Value::Integer(10))
        .unwrap();
    assert!(old.tombstone);
    assert!(!new.tombstone);
    assert_eq!(new.origin, "phone");
}

#[test]
fn primary_key_change_syncs_as_delete_plus_insert() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    phone
        .insert("note", &bucket! { "text" => "a", "n" => 1 })
        .unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    phone
        .update(&bucket! { "id" => 10, "text" => "b" }, &note(1))
        .unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let table = device_table(&laptop, "phone");
    assert_eq!(notes(&laptop, &table), vec![values![10, "b", 1].to_vec()]);
}

#[test]
fn a_rolled_back_transaction_leaves_no_change() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    phone.insert("note", &bucket! { "text" => "kept" }).unwrap();
    let before = phone.changes(None, 0).unwrap();
    let result: peerlite::Result<()> = phone.transaction(|tx| {
        tx.insert("note", &bucket! { "text" => "gone" })?;
        tx.execute("UPDATE note SET n = 7", &[])?;
        tx.delete(&note(1))?;
        Err(peerlite::Error::Protocol {
            detail: "the caller gives up".into(),
        })
    });
    assert!(result.is_err());
    assert_eq!(phone.changes(None, 0).unwrap(), before);
    assert_eq!(
        notes(&phone, "note"),
        vec![values![1, "kept", None::<i64>].to_vec()]
    );
    let (sent, received) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((sent.sent, received.received), (1, 1));
    assert_eq!(
        notes(&laptop, &device_table(&laptop, "phone")),
        vec![values![1, "kept", None::<i64>].to_vec()]
    );
    // The next committed change still orders after everything before it.
    phone.insert("note", &bucket! { "text" => "next" }).unwrap();
    let after = phone.changes(None, before[0].seq).unwrap();
    assert_eq!(after.len(), 1);
    assert!(after[0].hlc > before[0].hlc);
}

#[test]
fn rows_that_existed_before_distribution_are_captured_and_sync() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = open_store(dir.path(), "phone", &clock);
    phone.execute(CREATE_NOTE, &[]).unwrap();
    for i in 0..3 {
        phone.insert("note", &bucket! { "n" => i }).unwrap();
    }
    assert!(phone.changes(None, 0).unwrap().is_empty());
    phone
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    let changes = phone.changes(Some("note"), 0).unwrap();
    assert_eq!(changes.len(), 3);
    assert!(changes.iter().all(|c| c.origin == "phone" && !c.tombstone));
    let laptop = note_device(dir.path(), "laptop", &clock);
    let (a, b) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((a.sent, b.received), (3, 3));
    assert_eq!(count(&laptop, &device_table(&laptop, "phone")), 3);
}

#[test]
fn distributing_again_does_not_recapture_rows() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone.insert("note", &bucket! { "n" => 1 }).unwrap();
    let before = phone.changes(None, 0).unwrap();
    phone
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    assert_eq!(phone.changes(None, 0).unwrap(), before);
}

#[test]
fn changes_filter_by_table_and_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone
        .execute("CREATE TABLE tag(id INTEGER PRIMARY KEY, name TEXT)", &[])
        .unwrap();
    phone
        .set_distributed_tables(
            &["tag"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    phone.insert("note", &bucket! { "n" => 1 }).unwrap();
    phone.insert("tag", &bucket! { "name" => "x" }).unwrap();
    phone.insert("note", &bucket! { "n" => 2 }).unwrap();
    let all = phone.changes(None, 0).unwrap();
    assert_eq!(
        all.iter().map(|c| c.table.as_str()).collect::<Vec<_>>(),
        ["note", "tag", "note"]
    );
    assert_eq!(phone.changes(Some("tag"), 0).unwrap().len(), 1);
    assert_eq!(phone.changes(Some("note"), 0).unwrap().len(), 2);
    assert_eq!(phone.changes(None, all[1].seq).unwrap().len(), 1);
    assert!(phone.changes(Some("note"), all[2].seq).unwrap().is_empty());
}

#[test]
fn tables_that_are_not_distributed_are_not_captured() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone
        .execute("CREATE TABLE scratch(id INTEGER PRIMARY KEY, v TEXT)", &[])
        .unwrap();
    phone.insert("scratch", &bucket! { "v" => "x" }).unwrap();
    assert!(phone.changes(None, 0).unwrap().is_empty());
    assert_eq!(
        code(phone.obtain_distributed_table_name("laptop", "scratch")),
        17040001
    );
}

#[test]
fn single_version_captures_by_conflict_column_and_only_synced_columns() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = item_device(dir.path(), "phone", &clock);
    add_item(&phone, "u1", "t", 1);
    let changes = phone.changes(Some("item"), 0).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].key, Value::Text("u1".into()));
    let since = changes[0].seq;
    // `local` does not sync: writing it records nothing.
    phone
        .update(&bucket! { "local" => "device only" }, &by_uuid("u1"))
        .unwrap();
    assert!(phone.changes(None, since).unwrap().is_empty());
    phone
        .update(&bucket! { "qty" => 2 }, &by_uuid("u1"))
        .unwrap();
    let c = &phone.changes(None, since).unwrap()[0];
    assert_eq!(
        c.columns.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        ["qty"]
    );
}

#[test]
fn single_version_refuses_a_null_conflict_column() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = open_store(dir.path(), "phone", &clock);
    // Nullable uuid: only the sync triggers stand between it and a NULL.
    phone
        .execute(
            "CREATE TABLE item(id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT UNIQUE, title TEXT, qty INTEGER, code TEXT UNIQUE, local TEXT)",
            &[],
        )
        .unwrap();
    phone
        .set_distributed_tables(&["item"], DistributedType::Device, &item_config())
        .unwrap();
    assert!(
        phone
            .insert("item", &bucket! { "title" => "no uuid" })
            .is_err()
    );
    add_item(&phone, "u1", "t", 1);
    assert!(
        phone
            .execute("UPDATE item SET uuid = NULL WHERE uuid = 'u1'", &[])
            .is_err()
    );
    assert_eq!(items(&phone), vec![item("u1", Some("t"), Some(1), None)]);
    assert_eq!(phone.changes(None, 0).unwrap().len(), 1);
}

/// The SQLite shell, when it is installed.
fn sqlite3() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("sqlite3"))
        .find(|c| c.is_file())
}

#[test]
fn a_connection_without_peerlite_fails_loudly_when_it_writes_a_distributed_table() {
    let Some(shell) = sqlite3() else {
        eprintln!("skipped: no sqlite3 shell on PATH");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone.execute("CREATE TABLE scratch(v TEXT)", &[]).unwrap();
    phone.insert("note", &bucket! { "text" => "a" }).unwrap();
    let path = phone.path().to_path_buf();
    phone.close().unwrap();
    drop(phone);
    for sql in [
        "INSERT INTO note(text) VALUES ('sneaky');",
        "UPDATE note SET text = 'sneaky';",
        "DELETE FROM note;",
    ] {
        let out = std::process::Command::new(&shell)
            .arg("-bail")
            .arg(&path)
            .arg(sql)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sql} succeeded without capture");
        assert!(stderr.contains("no such function"), "{sql}: {stderr}");
    }
    // Other tables stay writable by other programs.
    let out = std::process::Command::new(&shell)
        .arg(&path)
        .arg("INSERT INTO scratch VALUES ('fine');")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let phone = open_store(dir.path(), "phone", &clock);
    assert_eq!(
        notes(&phone, "note"),
        vec![values![1, "a", None::<i64>].to_vec()]
    );
    assert_eq!(phone.changes(None, 0).unwrap().len(), 1);
}
