//! Remote query, answered by the device that holds the data: rows of a distributed table,
//! validated there — a table that is not distributed, a column that does not sync (or does not
//! exist, or is an injection attempt), a device below the data's label and a result over the
//! 4 MiB cap are each refused with their own code, never answered in part.

use peerlite::sync::{DeviceLevel, MAX_QUERY_BYTES, Peer, Query, QueryReply, answer_query};
use peerlite::{RdbPredicates, RdbStore, SecurityLevel, StoreConfig, Value, bucket};

use crate::common::*;

fn ask(store: &RdbStore, level: DeviceLevel, p: &RdbPredicates, columns: &[&str]) -> QueryReply {
    answer_query(
        store,
        &Peer::new("asker", level),
        &Query::new(7, "notes", p, columns),
    )
}

#[test]
fn rows_of_a_distributed_table_come_back_with_the_filter_applied() {
    let dir = tempfile::tempdir().unwrap();
    let phone = note_device(dir.path(), "phone", &clock_at(T0));
    add_notes(&phone, "n", 5);
    let reply = ask(
        &phone,
        DeviceLevel::Sl1,
        &RdbPredicates::new("note").greater_than("n", 3),
        &["text", "n"],
    );
    assert_eq!((reply.session, reply.code), (7, 0), "{}", reply.message);
    assert_eq!(reply.columns, vec!["text", "n"]);
    assert_eq!(
        reply.rows,
        vec![
            vec![Value::from("n4"), Value::Integer(4)],
            vec![Value::from("n5"), Value::Integer(5)]
        ]
    );
    // No column named: every synced column.
    let all = ask(&phone, DeviceLevel::Sl1, &RdbPredicates::new("note"), &[]);
    assert_eq!(all.columns, vec!["id", "text", "n"]);
    assert_eq!(all.rows.len(), 5);
}

#[test]
fn a_table_that_is_not_distributed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let phone = note_device(dir.path(), "phone", &clock_at(T0));
    phone
        .execute("CREATE TABLE secret(id INTEGER PRIMARY KEY, pin TEXT)", &[])
        .unwrap();
    phone
        .insert("secret", &bucket! { "pin" => "1234" })
        .unwrap();
    for table in ["secret", "nothing_here", "peerlite_meta", "sqlite_schema"] {
        let reply = ask(&phone, DeviceLevel::Sl4, &RdbPredicates::new(table), &[]);
        assert_eq!(reply.code, 17040001, "{table}: {}", reply.message);
        assert!(reply.rows.is_empty() && reply.columns.is_empty());
    }
    // Another device's rows held here are not this device's table to share either.
    let laptop = note_device(dir.path(), "laptop", &clock_at(T0));
    add_notes(&laptop, "l", 1);
    sync(&laptop, &phone, peerlite::sync::SyncMode::Push);
    let device_table = phone
        .obtain_distributed_table_name("laptop", "note")
        .unwrap();
    let reply = ask(
        &phone,
        DeviceLevel::Sl4,
        &RdbPredicates::new(device_table),
        &[],
    );
    assert_eq!(reply.code, 17040001);
}

#[test]
fn only_synced_existing_columns_may_be_read_or_filtered_on() {
    let dir = tempfile::tempdir().unwrap();
    let shop = item_device(dir.path(), "shop", &clock_at(T0));
    add_item(&shop, "u1", "pen", 2);
    shop.execute("UPDATE item SET local = 'kept here'", &[])
        .unwrap();
    let cases: Vec<(RdbPredicates, Vec<&str>)> = vec![
        (RdbPredicates::new("item"), vec!["local"]),
        (
            RdbPredicates::new("item").equal_to("local", "kept here"),
            vec!["uuid"],
        ),
        (RdbPredicates::new("item"), vec!["nope"]),
        (
            RdbPredicates::new("item"),
            vec!["uuid\" FROM peerlite_meta --"],
        ),
        (
            RdbPredicates::new("item").equal_to("1=1 OR uuid", "x"),
            vec![],
        ),
    ];
    for (p, columns) in cases {
        let reply = ask(&shop, DeviceLevel::Sl1, &p, &columns);
        assert_eq!(reply.code, 14800001, "{columns:?}: {}", reply.message);
        assert!(reply.rows.is_empty());
    }
    let ok = ask(&shop, DeviceLevel::Sl1, &by_uuid("u1"), &["title", "qty"]);
    assert_eq!(ok.rows, vec![vec![Value::from("pen"), Value::Integer(2)]]);
}

#[test]
fn a_device_below_the_data_label_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("vault")).unwrap();
    let store = RdbStore::open(
        StoreConfig::new(dir.path().join("vault/notes.db"))
            .device_id("vault")
            .security_level(SecurityLevel::S3),
    )
    .unwrap();
    store.execute(CREATE_NOTE, &[]).unwrap();
    store
        .set_distributed_tables(
            &["note"],
            peerlite::changes::DistributedType::Device,
            &peerlite::changes::DistributedConfig::default(),
        )
        .unwrap();
    add_notes(&store, "v", 2);
    for (level, code) in [
        (DeviceLevel::Sl1, 17040006),
        (DeviceLevel::Sl2, 17040006),
        (DeviceLevel::Sl3, 0),
        (DeviceLevel::Sl5, 0),
    ] {
        let reply = ask(&store, level, &RdbPredicates::new("note"), &[]);
        assert_eq!(reply.code, code, "{level}: {}", reply.message);
        assert_eq!(reply.rows.len(), if code == 0 { 2 } else { 0 });
    }
}

#[test]
fn a_result_over_the_cap_is_an_error_not_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let phone = note_device(dir.path(), "phone", &clock_at(T0));
    let big = "x".repeat(64 * 1024);
    let rows = MAX_QUERY_BYTES / big.len() + 2;
    phone
        .transaction(|tx| {
            for i in 0..rows {
                tx.insert("note", &bucket! { "text" => big.clone(), "n" => i as i64 })?;
            }
            Ok(())
        })
        .unwrap();
    let reply = ask(&phone, DeviceLevel::Sl1, &RdbPredicates::new("note"), &[]);
    assert_eq!(reply.code, 17040010, "{}", reply.message);
    assert!(reply.rows.is_empty());
    // Narrowed below the cap, it answers.
    let narrowed = ask(
        &phone,
        DeviceLevel::Sl1,
        &RdbPredicates::new("note").less_than("n", 10),
        &["text"],
    );
    assert_eq!((narrowed.code, narrowed.rows.len()), (0, 10));
    let err = narrowed.clone();
    assert!(err.into_rows("phone").is_ok());
    assert_eq!(reply.into_rows("phone").unwrap_err().code(), 17040010);
}
