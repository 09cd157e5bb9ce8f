//! Change capture under every statement form a capture mechanism can get wrong (issue 12).
//!
//! Story: issue 12 asks for capture at the cost of the data write, which means replacing the
//! per-row triggers with something that collects changes during the transaction and writes the
//! clock once, before `COMMIT`. Such a mechanism sees rows, not statements: it can stamp a
//! column that was set to the value it had, miss the row an `INSERT OR REPLACE` removed, miss
//! the rows an app's own trigger wrote, or keep what a savepoint rolled back. These tests pin
//! what capture guarantees today for each of those forms, so that any mechanism that replaces
//! the triggers is held to the same contract: only columns a statement really changed get new
//! stamps, every row a statement writes (directly, through an upsert, or through a trigger of
//! the app's) is captured once, and what a savepoint rolled back leaves no trace — and the
//! peer ends with exactly the local rows.

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::sync::SyncMode;
use peerlite::{RdbPredicates, Value, bucket};

use crate::common::*;

fn note(id: i64) -> RdbPredicates {
    RdbPredicates::new("note").equal_to("id", id)
}

/// The columns with a register of their own in `key`'s clock row.
fn stamped(store: &peerlite::RdbStore, table: &str, key: i64) -> Vec<String> {
    let change = store
        .change_of(table, &Value::Integer(key))
        .unwrap()
        .unwrap_or_else(|| panic!("{table} {key} has no clock row"));
    change.columns.into_iter().map(|(c, _, _)| c).collect()
}

/// The keys of the changes after `since`.
fn keys_since(store: &peerlite::RdbStore, table: &str, since: i64) -> Vec<Value> {
    store
        .changes(Some(table), since)
        .unwrap()
        .into_iter()
        .map(|c| c.key)
        .collect()
}

fn last_seq(store: &peerlite::RdbStore) -> i64 {
    store.changes(None, 0).unwrap().last().map_or(0, |c| c.seq)
}

#[test]
fn a_column_set_to_the_value_it_had_gets_no_stamp_while_its_neighbour_does() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone
        .insert("note", &bucket! { "text" => "a", "n" => 1 })
        .unwrap();
    clock.advance(10);
    // Through the API and through raw SQL: both name both columns, only `n` changes.
    phone
        .update(&bucket! { "text" => "a", "n" => 2 }, &note(1))
        .unwrap();
    assert_eq!(stamped(&phone, "note", 1), vec!["n".to_owned()]);
    phone
        .execute("UPDATE note SET text = 'a', n = 3 WHERE id = 1", &[])
        .unwrap();
    assert_eq!(stamped(&phone, "note", 1), vec!["n".to_owned()]);
}

#[test]
fn a_multi_row_statement_captures_each_row_it_changed_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone
        .execute(
            "INSERT INTO note(id, text, n) VALUES (1, 'a', 0), (2, 'b', 1), (3, 'c', 2), (4, 'd', 3)",
            &[],
        )
        .unwrap();
    assert_eq!(
        keys_since(&phone, "note", 0),
        (1..=4).map(Value::Integer).collect::<Vec<_>>()
    );
    let since = last_seq(&phone);
    clock.advance(10);
    // Rows 1 and 2 keep their value: SQLite counts them, capture must not.
    assert_eq!(
        phone.execute("UPDATE note SET n = min(n, 1)", &[]).unwrap(),
        4
    );
    assert_eq!(
        keys_since(&phone, "note", since),
        vec![Value::Integer(3), Value::Integer(4)]
    );
    for id in [1, 2] {
        assert!(stamped(&phone, "note", id).is_empty(), "row {id}");
    }
    for id in [3, 4] {
        assert_eq!(
            stamped(&phone, "note", id),
            vec!["n".to_owned()],
            "row {id}"
        );
    }
    let since = last_seq(&phone);
    phone
        .execute(
            "INSERT INTO note(text, n) SELECT text || '2', n FROM note",
            &[],
        )
        .unwrap();
    assert_eq!(
        keys_since(&phone, "note", since),
        (5..=8).map(Value::Integer).collect::<Vec<_>>()
    );
    let laptop = note_device(dir.path(), "laptop", &clock);
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        notes(&laptop, &device_table(&laptop, "phone")),
        notes(&phone, "note")
    );
}

#[test]
fn an_upsert_stamps_what_its_update_changed_and_do_nothing_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone
        .insert("note", &bucket! { "id" => 1, "text" => "a", "n" => 1 })
        .unwrap();
    let inserted = phone.changes(Some("note"), 0).unwrap()[0].clone();
    clock.advance(10);
    phone
        .execute(
            "INSERT INTO note(id, text, n) VALUES (1, 'a', 5), (2, 'b', 6) \
             ON CONFLICT(id) DO UPDATE SET text = excluded.text, n = excluded.n",
            &[],
        )
        .unwrap();
    let row = phone
        .change_of("note", &Value::Integer(1))
        .unwrap()
        .unwrap();
    assert_eq!(
        row.hlc, inserted.hlc,
        "the update half is no existence event"
    );
    assert_eq!(stamped(&phone, "note", 1), vec!["n".to_owned()]);
    assert!(stamped(&phone, "note", 2).is_empty(), "the insert half");
    let since = last_seq(&phone);
    phone
        .execute(
            "INSERT INTO note(id, text, n) VALUES (1, 'z', 9) ON CONFLICT(id) DO NOTHING",
            &[],
        )
        .unwrap();
    phone
        .execute(
            "INSERT INTO note(id, text, n) VALUES (2, 'b', 6) ON CONFLICT(id) DO UPDATE SET n = excluded.n",
            &[],
        )
        .unwrap();
    assert!(keys_since(&phone, "note", since).is_empty());
}

#[test]
fn insert_or_replace_of_a_row_is_one_live_reinsert_stamped_after_the_old_row() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone
        .insert("note", &bucket! { "id" => 1, "text" => "a", "n" => 1 })
        .unwrap();
    phone.update(&bucket! { "n" => 2 }, &note(1)).unwrap();
    let before = phone
        .change_of("note", &Value::Integer(1))
        .unwrap()
        .unwrap();
    clock.advance(10);
    phone
        .execute(
            "INSERT OR REPLACE INTO note(id, text, n) VALUES (1, 'b', 2)",
            &[],
        )
        .unwrap();
    let after = phone
        .change_of("note", &Value::Integer(1))
        .unwrap()
        .unwrap();
    assert!(!after.tombstone);
    assert!(after.hlc > before.hlc);
    assert!(after.seq > before.seq);
    assert!(after.columns.is_empty(), "a re-insert writes every column");
    assert_eq!(phone.changes(Some("note"), 0).unwrap().len(), 1);
    let laptop = note_device(dir.path(), "laptop", &clock);
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        notes(&laptop, &device_table(&laptop, "phone")),
        vec![vec![
            Value::Integer(1),
            Value::Text("b".into()),
            Value::Integer(2)
        ]]
    );
}

#[test]
fn rows_an_app_trigger_writes_in_another_distributed_table_are_captured() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let make = |name: &str| {
        let store = note_device(dir.path(), name, &clock);
        store
            .execute(
                "CREATE TABLE log(id INTEGER PRIMARY KEY, note_id INTEGER, what TEXT)",
                &[],
            )
            .unwrap();
        store
            .set_distributed_tables(
                &["note", "log"],
                DistributedType::Device,
                &DistributedConfig::default(),
            )
            .unwrap();
        store
    };
    let phone = make("phone");
    phone
        .execute_script(
            "CREATE TRIGGER note_log_i AFTER INSERT ON note BEGIN INSERT INTO log(note_id, what) VALUES (NEW.id, 'insert'); END;
             CREATE TRIGGER note_log_u AFTER UPDATE OF n ON note BEGIN UPDATE log SET what = 'n=' || NEW.n WHERE note_id = NEW.id; END;",
        )
        .unwrap();
    phone
        .execute(
            "INSERT INTO note(id, text, n) VALUES (1, 'a', 1), (2, 'b', 2)",
            &[],
        )
        .unwrap();
    assert_eq!(
        keys_since(&phone, "log", 0),
        vec![Value::Integer(1), Value::Integer(2)]
    );
    let since = last_seq(&phone);
    clock.advance(10);
    phone
        .execute("UPDATE note SET n = 7 WHERE id = 2", &[])
        .unwrap();
    assert_eq!(keys_since(&phone, "note", since), vec![Value::Integer(2)]);
    assert_eq!(keys_since(&phone, "log", since), vec![Value::Integer(2)]);
    assert_eq!(stamped(&phone, "log", 2), vec!["what".to_owned()]);
    let laptop = make("laptop");
    sync(&phone, &laptop, SyncMode::Push);
    let log = laptop
        .obtain_distributed_table_name("phone", "log")
        .unwrap();
    assert_eq!(
        rows(
            &laptop,
            &format!(
                "SELECT note_id, what FROM {} ORDER BY id",
                peerlite_testkit::quote(&log)
            )
        ),
        vec![
            vec![Value::Integer(1), Value::Text("insert".into())],
            vec![Value::Integer(2), Value::Text("n=7".into())],
        ]
    );
}

#[test]
fn what_a_savepoint_rolled_back_inside_a_committed_transaction_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone
        .execute(
            "INSERT INTO note(id, text, n) VALUES (1, 'a', 1), (2, 'b', 2)",
            &[],
        )
        .unwrap();
    let since = last_seq(&phone);
    let row2 = phone
        .change_of("note", &Value::Integer(2))
        .unwrap()
        .unwrap();
    clock.advance(10);
    phone
        .transaction(|tx| {
            tx.execute("UPDATE note SET n = 10 WHERE id = 1", &[])?;
            tx.execute("SAVEPOINT s", &[])?;
            tx.execute("UPDATE note SET text = 'rolled back' WHERE id = 1", &[])?;
            tx.execute("INSERT INTO note(id, text, n) VALUES (3, 'gone', 3)", &[])?;
            tx.execute("DELETE FROM note WHERE id = 2", &[])?;
            tx.execute(
                "INSERT OR REPLACE INTO note(id, text, n) VALUES (1, 'r', 0)",
                &[],
            )?;
            tx.execute("ROLLBACK TO s", &[])?;
            tx.execute("RELEASE s", &[])?;
            Ok(())
        })
        .unwrap();
    assert_eq!(keys_since(&phone, "note", since), vec![Value::Integer(1)]);
    assert_eq!(stamped(&phone, "note", 1), vec!["n".to_owned()]);
    assert_eq!(
        phone
            .change_of("note", &Value::Integer(2))
            .unwrap()
            .unwrap(),
        row2,
        "the rolled-back delete left row 2's clock as it was"
    );
    assert!(
        phone
            .change_of("note", &Value::Integer(3))
            .unwrap()
            .is_none()
    );
    let laptop = note_device(dir.path(), "laptop", &clock);
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        notes(&laptop, &device_table(&laptop, "phone")),
        vec![
            vec![
                Value::Integer(1),
                Value::Text("a".into()),
                Value::Integer(10)
            ],
            vec![
                Value::Integer(2),
                Value::Text("b".into()),
                Value::Integer(2)
            ],
        ]
    );
}

#[test]
fn a_without_rowid_table_is_captured_like_any_other() {
    // SQLite's update hook never fires for WITHOUT ROWID tables (and the key-value store's own
    // table is one), so this pins that such a table stays captured whatever the mechanism.
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let make = |name: &str| {
        let store = open_store(dir.path(), name, &clock);
        store
            .execute(
                "CREATE TABLE tag(k TEXT PRIMARY KEY, a INTEGER, b TEXT) WITHOUT ROWID",
                &[],
            )
            .unwrap();
        store
            .set_distributed_tables(
                &["tag"],
                DistributedType::Device,
                &DistributedConfig::default(),
            )
            .unwrap();
        store
    };
    let phone = make("phone");
    phone
        .execute(
            "INSERT INTO tag VALUES ('x', 1, 'p'), ('y', 2, 'q'), ('z', 3, 'r')",
            &[],
        )
        .unwrap();
    let text = |k: &str| Value::Text(k.into());
    let inserted = phone.change_of("tag", &text("x")).unwrap().unwrap();
    clock.advance(10);
    phone
        .execute("UPDATE tag SET a = 10, b = 'p' WHERE k = 'x'", &[])
        .unwrap();
    let updated = phone.change_of("tag", &text("x")).unwrap().unwrap();
    assert_eq!(updated.hlc, inserted.hlc);
    assert_eq!(
        updated
            .columns
            .iter()
            .map(|c| c.0.as_str())
            .collect::<Vec<_>>(),
        vec!["a"]
    );
    phone
        .execute("UPDATE tag SET k = 'w' WHERE k = 'y'", &[])
        .unwrap();
    assert!(
        phone
            .change_of("tag", &text("y"))
            .unwrap()
            .unwrap()
            .tombstone
    );
    assert!(
        !phone
            .change_of("tag", &text("w"))
            .unwrap()
            .unwrap()
            .tombstone
    );
    phone.execute("DELETE FROM tag WHERE k = 'z'", &[]).unwrap();
    assert!(
        phone
            .change_of("tag", &text("z"))
            .unwrap()
            .unwrap()
            .tombstone
    );
    let laptop = make("laptop");
    sync(&phone, &laptop, SyncMode::Push);
    let theirs = laptop
        .obtain_distributed_table_name("phone", "tag")
        .unwrap();
    let all = |store: &peerlite::RdbStore, table: &str| {
        rows(
            store,
            &format!(
                "SELECT k, a, b FROM {} ORDER BY k",
                peerlite_testkit::quote(table)
            ),
        )
    };
    assert_eq!(all(&laptop, &theirs), all(&phone, "tag"));
    assert_eq!(all(&phone, "tag").len(), 2);
}
