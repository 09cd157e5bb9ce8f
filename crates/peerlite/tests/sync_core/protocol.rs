//! The sync protocol core without I/O: modes, watermarks, several tables, observers, predicate
//! sync and sync schema upgrades.

use std::sync::{Arc, Mutex};

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::sync::{RemoteChange, SyncMode, sync_in_memory};
use peerlite::{RdbPredicates, RdbStore, Value, bucket, values};

use crate::common::*;

#[test]
fn push_pull_moves_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 2, 3);
    let (p, l) = sync(&phone, &laptop, SyncMode::PushPull);
    assert_eq!((p.sent, p.received), (2, 3));
    assert_eq!((l.sent, l.received), (3, 2));
    assert_eq!(has_from(&phone, "laptop"), expected_notes("l", 3));
    assert_eq!(has_from(&laptop, "phone"), expected_notes("p", 2));
}

#[test]
fn push_moves_only_the_initiators_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 2, 3);
    let (p, l) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((p.sent, p.received, l.sent, l.received), (2, 0, 0, 2));
    assert!(has_from(&phone, "laptop").is_empty());
}

#[test]
fn pull_moves_only_the_responders_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 2, 3);
    let (p, l) = sync(&phone, &laptop, SyncMode::Pull);
    assert_eq!((p.sent, p.received, l.sent, l.received), (0, 3, 3, 0));
    assert_eq!(has_from(&phone, "laptop"), expected_notes("l", 3));
    assert!(has_from(&laptop, "phone").is_empty());
    // A second pull starts from the pull watermark.
    let (p, l) = sync(&phone, &laptop, SyncMode::Pull);
    assert_eq!((p.received, l.sent), (0, 0));
}

#[test]
fn a_second_sync_sends_nothing_and_a_third_sends_only_the_new_change() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 5, 0);
    let (p, _) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(p.sent, 5);
    let (p, l) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((p.sent, l.received), (0, 0));
    phone
        .update(
            &bucket! { "text" => "changed" },
            &RdbPredicates::new("note").equal_to("id", 3),
        )
        .unwrap();
    let (p, l) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((p.sent, l.received), (1, 1));
    assert_eq!(
        has_from(&laptop, "phone")[2],
        values![3, "changed", 3].to_vec()
    );
}

#[test]
fn watermarks_are_kept_per_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 4, 0);
    let tablet = note_device(dir.path(), "tablet", &clock_at(T0));
    sync(&phone, &laptop, SyncMode::Push);
    let (p, t) = sync(&phone, &tablet, SyncMode::Push);
    assert_eq!((p.sent, t.received), (4, 4));
    // Pushes and pulls of the same pair share what the receiver has.
    let (t, p) = sync(&tablet, &phone, SyncMode::Pull);
    assert_eq!((t.received, p.sent), (0, 0));
}

#[test]
fn several_tables_sync_in_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let mk = |name: &str| {
        let s = note_device(dir.path(), name, &clock);
        s.execute("CREATE TABLE tag(id INTEGER PRIMARY KEY, name TEXT)", &[])
            .unwrap();
        s.set_distributed_tables(
            &["tag"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
        s
    };
    let phone = mk("phone");
    let laptop = mk("laptop");
    add_notes(&phone, "p", 3);
    for t in ["red", "blue"] {
        phone.insert("tag", &bucket! { "name" => t }).unwrap();
    }
    let pumped = pump(&phone, &laptop, SyncMode::Push, None, 2, lossless);
    assert_eq!((pumped.initiator.sent, pumped.responder.received), (5, 5));
    let tags = laptop
        .obtain_distributed_table_name("phone", "tag")
        .unwrap();
    assert_eq!(count(&laptop, &tags), 2);
    assert_eq!(has_from(&laptop, "phone"), expected_notes("p", 3));
}

#[test]
fn more_rows_than_one_default_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 0, 0);
    let rows: Vec<_> = (0..2_100i64).map(|i| bucket! { "n" => i }).collect();
    phone.batch_insert("note", &rows).unwrap();
    let seen: Arc<Mutex<usize>> = Arc::default();
    let sink = Arc::clone(&seen);
    laptop
        .on_remote_change(move |_| *sink.lock().unwrap() += 1)
        .unwrap();
    let (p, l) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((p.sent, l.received), (2_100, 2_100));
    assert_eq!(*seen.lock().unwrap(), 2, "two batches");
    assert_eq!(count(&laptop, &device_table(&laptop, "phone")), 2_100);
}

// ---- observers -----------------------------------------------------------------------------

#[test]
fn the_remote_change_observer_gets_the_device_and_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 0, 3);
    let seen: Arc<Mutex<Vec<RemoteChange>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let id = phone
        .on_remote_change(move |c| sink.lock().unwrap().push(c.clone()))
        .unwrap();
    let table = device_table(&phone, "laptop");
    let pumped = pump(&laptop, &phone, SyncMode::Push, None, 2, lossless);
    assert_eq!(pumped.responder.received, 3);
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "one call per applied batch");
    assert!(calls.iter().all(|c| c.device == "laptop"));
    let keys: Vec<(String, Value)> = calls.iter().flat_map(|c| c.keys.clone()).collect();
    assert_eq!(
        keys,
        (1..=3)
            .map(|i| (table.clone(), Value::Integer(i)))
            .collect::<Vec<_>>()
    );
    // A sync that changes nothing says nothing.
    sync(&laptop, &phone, SyncMode::Push);
    assert_eq!(seen.lock().unwrap().len(), 2);
    // A delete is reported too.
    laptop
        .delete(&RdbPredicates::new("note").equal_to("id", 2))
        .unwrap();
    sync(&laptop, &phone, SyncMode::Push);
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.keys, vec![(table.clone(), Value::Integer(2))]);
    // Unsubscribed: no more calls.
    assert_eq!(phone.off_remote_change(Some(id)), 1);
    laptop.insert("note", &bucket! { "text" => "x" }).unwrap();
    sync(&laptop, &phone, SyncMode::Push);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[test]
fn the_remote_change_observer_names_single_version_rows_by_their_conflict_column() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cb) = (clock_at(T0), clock_at(T0));
    let a = item_device(dir.path(), "alpha", &ca);
    let b = item_device(dir.path(), "beta", &cb);
    add_item(&a, "u1", "t", 1);
    add_item(&a, "u2", "t", 2);
    let seen: Arc<Mutex<Vec<RemoteChange>>> = Arc::default();
    let sink = Arc::clone(&seen);
    b.on_remote_change(move |c| sink.lock().unwrap().push(c.clone()))
        .unwrap();
    sync(&a, &b, SyncMode::Push);
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].device, "alpha");
    assert_eq!(
        calls[0].keys,
        vec![
            ("item".to_owned(), Value::from("u1")),
            ("item".to_owned(), Value::from("u2"))
        ]
    );
}

// ---- refusals and bad input ------------------------------------------------------------------

// ---- predicates --------------------------------------------------------------------------------

#[test]
fn predicates_sync_only_matching_rows_with_their_own_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 6, 0);
    let big = RdbPredicates::new("note").greater_than("n", 3);
    let (p, l) = sync_in_memory(&phone, &laptop, SyncMode::Push, Some(&big)).unwrap();
    assert_eq!((p.status.code(), l.status.code()), (0, 0));
    assert_eq!((p.sent, l.received), (3, 3));
    assert_eq!(
        has_from(&laptop, "phone"),
        expected_notes("p", 6)[3..].to_vec()
    );
    // The same predicates again: nothing new.
    let (p, _) = sync_in_memory(&phone, &laptop, SyncMode::Push, Some(&big)).unwrap();
    assert_eq!(p.sent, 0);
    // A deleted matching row travels as a tombstone.
    phone
        .delete(&RdbPredicates::new("note").equal_to("id", 5))
        .unwrap();
    let (p, l) = sync_in_memory(&phone, &laptop, SyncMode::Push, Some(&big)).unwrap();
    assert_eq!((p.sent, l.received), (1, 1));
    assert_eq!(count(&laptop, &device_table(&laptop, "phone")), 2);
    // A whole-table sync keeps its own watermark: everything goes, only the new rows change.
    let (p, l) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(p.sent, 6, "5 rows and a tombstone");
    assert_eq!(l.received, 3);
    let mut expected = expected_notes("p", 6);
    expected.remove(4);
    assert_eq!(has_from(&laptop, "phone"), expected);
}

#[test]
fn order_limit_and_devices_do_not_change_a_predicate_syncs_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 6, 0);
    let big = RdbPredicates::new("note").greater_than("n", 3);
    let (p, _) = sync_in_memory(&phone, &laptop, SyncMode::Push, Some(&big)).unwrap();
    assert_eq!(p.sent, 3);
    // The same rows, asked for with paging, order and the peer named: already sent.
    let dressed = big
        .clone()
        .order_by_desc("n")
        .limit(1)
        .offset(1)
        .in_devices(["laptop"]);
    let (p, l) = sync_in_memory(&phone, &laptop, SyncMode::Push, Some(&dressed)).unwrap();
    assert_eq!((p.status.code(), l.status.code()), (0, 0));
    assert_eq!(p.sent, 0, "{p:?}");
    // Paging does not restrict which rows sync: a new matching row goes whole.
    phone
        .insert(
            "note",
            &peerlite::bucket! { "id" => 7, "n" => 7, "text" => "p7" },
        )
        .unwrap();
    let (p, _) = sync_in_memory(&phone, &laptop, SyncMode::Push, Some(&dressed)).unwrap();
    assert_eq!(p.sent, 1);
}

#[test]
fn predicates_without_conditions_are_a_whole_table_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 4, 0);
    let (p, _) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(p.sent, 4);
    let whole = RdbPredicates::new("note").order_by_asc("n");
    let (p, l) = sync_in_memory(&phone, &laptop, SyncMode::Push, Some(&whole)).unwrap();
    assert_eq!((p.status.code(), l.status.code()), (0, 0));
    assert_eq!(p.sent, 0, "the whole-table watermark applies");
}

#[test]
fn predicates_naming_other_devices_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 2, 0);
    let elsewhere = RdbPredicates::new("note").in_devices(["tablet"]);
    assert_eq!(
        code(sync_in_memory(
            &phone,
            &laptop,
            SyncMode::Push,
            Some(&elsewhere)
        )),
        14800001
    );
    assert!(has_from(&laptop, "phone").is_empty());
    // Every device, or this one among others, is fine.
    for ok in [
        RdbPredicates::new("note").in_all_devices(),
        RdbPredicates::new("note").in_devices(["tablet", "laptop"]),
    ] {
        let (p, _) = sync_in_memory(&phone, &laptop, SyncMode::Push, Some(&ok)).unwrap();
        assert_eq!(p.status, 0);
    }
    assert_eq!(has_from(&laptop, "phone").len(), 2);
}

#[test]
fn predicate_pull_selects_rows_on_the_responder() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 0, 5);
    let some = RdbPredicates::new("note").in_("n", [1, 5]);
    let (p, l) = sync_in_memory(&phone, &laptop, SyncMode::Pull, Some(&some)).unwrap();
    assert_eq!((p.status.code(), l.status.code()), (0, 0));
    assert_eq!((l.sent, p.received), (2, 2));
    let ids: Vec<Value> = has_from(&phone, "laptop")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(ids, [Value::Integer(1), Value::Integer(5)]);
}

#[test]
fn predicates_on_a_table_that_is_not_distributed_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 1, 0);
    phone
        .execute("CREATE TABLE scratch(id INTEGER PRIMARY KEY)", &[])
        .unwrap();
    let p = RdbPredicates::new("scratch").equal_to("id", 1);
    assert_eq!(
        code(sync_in_memory(&phone, &laptop, SyncMode::Push, Some(&p))),
        17040001
    );
}

#[test]
fn a_newer_sync_schema_is_refused_until_the_peer_has_it_and_then_its_columns_sync() {
    let v2 = ITEM_SCHEMA
        .replace("\"version\":1", "\"version\":2")
        .replace("\"qty\",\"code\"]", "\"qty\",\"code\",\"memo\"]")
        .replace(
            "{\"columnName\":\"code\",\"type\":\"Text\"}",
            "{\"columnName\":\"code\",\"type\":\"Text\"},{\"columnName\":\"memo\",\"type\":\"Text\"}",
        );
    assert!(v2.contains("memo") && v2.contains("\"version\":2"));
    let upgrade = |s: &RdbStore| {
        s.execute("ALTER TABLE item ADD COLUMN memo TEXT", &[])
            .unwrap();
        s.set_distributed_tables(
            &["item"],
            DistributedType::Device,
            &DistributedConfig::single_version(peerlite::schema::SyncSchema::parse(&v2).unwrap()),
        )
        .unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    let (ca, cb) = (clock_at(T0), clock_at(T0));
    let a = item_device(dir.path(), "alpha", &ca);
    let b = item_device(dir.path(), "beta", &cb);
    add_item(&a, "u1", "t", 1);
    add_item(&a, "u2", "t", 2);
    sync(&a, &b, SyncMode::Push);
    upgrade(&a);
    ca.advance(10);
    a.update(&bucket! { "memo" => "new column" }, &by_uuid("u1"))
        .unwrap();
    let (ra, rb) = sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert_eq!((ra.sent, rb.received), (0, 0));
    assert!(ra.message.is_some(), "{ra:?}");
    upgrade(&b);
    let (ra, rb) = sync(&a, &b, SyncMode::Push);
    assert_eq!(ra.sent, 2, "the rows sync again with the new column");
    assert!(rb.received >= 1, "{rb:?}");
    sync(&b, &a, SyncMode::Push);
    let memo = |s: &RdbStore| rows(s, "SELECT uuid, memo FROM item ORDER BY uuid");
    assert_eq!(memo(&a), memo(&b));
    assert_eq!(
        memo(&b)[0],
        vec![Value::from("u1"), Value::from("new column")]
    );
    assert_eq!(items(&a), items(&b));
}

#[test]
fn a_later_schema_upgrade_does_not_overwrite_values_written_in_the_new_column() {
    let v2 = ITEM_SCHEMA
        .replace("\"version\":1", "\"version\":2")
        .replace("\"qty\",\"code\"]", "\"qty\",\"code\",\"memo\"]")
        .replace(
            "{\"columnName\":\"code\",\"type\":\"Text\"}",
            "{\"columnName\":\"code\",\"type\":\"Text\"},{\"columnName\":\"memo\",\"type\":\"Text\"}",
        );
    let upgrade = |s: &RdbStore| {
        s.execute("ALTER TABLE item ADD COLUMN memo TEXT", &[])
            .unwrap();
        s.set_distributed_tables(
            &["item"],
            DistributedType::Device,
            &DistributedConfig::single_version(peerlite::schema::SyncSchema::parse(&v2).unwrap()),
        )
        .unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    let (ca, cb) = (clock_at(T0), clock_at(T0));
    let a = item_device(dir.path(), "alpha", &ca);
    let b = item_device(dir.path(), "beta", &cb);
    add_item(&a, "u1", "t", 1);
    sync(&a, &b, SyncMode::Push);
    ca.advance(10);
    upgrade(&a);
    a.update(&bucket! { "memo" => "written on alpha" }, &by_uuid("u1"))
        .unwrap();
    cb.advance(60_000); // beta upgrades a minute later
    upgrade(&b);
    sync(&a, &b, SyncMode::PushPull);
    sync(&b, &a, SyncMode::PushPull);
    let memo = |s: &RdbStore| rows(s, "SELECT uuid, memo FROM item ORDER BY uuid");
    assert_eq!(memo(&a), memo(&b));
    assert_eq!(
        memo(&a)[0],
        vec![Value::from("u1"), Value::from("written on alpha")],
        "beta's upgrade wiped alpha's value"
    );
}

#[test]
fn values_written_before_their_column_synced_converge() {
    // `local` is not synced in v1, so each device fills it on its own; once v2 syncs it, both
    // devices hold the same register (the row's insert) with different values. Equal
    // registers resolve by value, the same way everywhere.
    let v2 = ITEM_SCHEMA
        .replace("\"version\":1", "\"version\":2")
        .replace("\"qty\",\"code\"]", "\"qty\",\"code\",\"local\"]")
        .replace(
            "{\"columnName\":\"code\",\"type\":\"Text\"}",
            "{\"columnName\":\"code\",\"type\":\"Text\"},{\"columnName\":\"local\",\"type\":\"Text\"}",
        );
    let upgrade = |s: &RdbStore| {
        s.set_distributed_tables(
            &["item"],
            DistributedType::Device,
            &DistributedConfig::single_version(peerlite::schema::SyncSchema::parse(&v2).unwrap()),
        )
        .unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    let (ca, cb) = (clock_at(T0), clock_at(T0));
    let a = item_device(dir.path(), "alpha", &ca);
    let b = item_device(dir.path(), "beta", &cb);
    add_item(&a, "u1", "t", 1);
    sync(&a, &b, SyncMode::Push);
    a.update(&bucket! { "local" => "alpha's" }, &by_uuid("u1"))
        .unwrap();
    b.update(&bucket! { "local" => "beta's" }, &by_uuid("u1"))
        .unwrap();
    upgrade(&a);
    upgrade(&b);
    sync(&a, &b, SyncMode::PushPull);
    sync(&b, &a, SyncMode::PushPull);
    let local = |s: &RdbStore| rows(s, "SELECT uuid, local FROM item ORDER BY uuid");
    assert_eq!(local(&a), local(&b));
    assert_eq!(
        local(&a)[0][1],
        Value::from("beta's"),
        "the greater value wins"
    );
}

#[test]
fn a_row_that_stops_matching_the_predicates_is_sent_with_its_last_state() {
    // Predicate sync sends the rows the predicates select now, and a row edited out of the
    // selection with its last state: the peer's copy is not left with values it no longer
    // has (adversary F17; see regress_filter_leavers).
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 4, 0);
    let big = RdbPredicates::new("note").greater_than("n", 2);
    sync_in_memory(&phone, &laptop, SyncMode::Push, Some(&big)).unwrap();
    phone
        .update(
            &bucket! { "n" => 0 },
            &RdbPredicates::new("note").equal_to("id", 4),
        )
        .unwrap();
    let (p, _) = sync_in_memory(&phone, &laptop, SyncMode::Push, Some(&big)).unwrap();
    assert_eq!(p.sent, 1);
    assert_eq!(
        has_from(&laptop, "phone"),
        vec![values![3, "p3", 3].to_vec(), values![4, "p4", 0].to_vec()]
    );
}

#[test]
fn a_restored_peer_gets_back_the_rows_it_wrote_after_its_backup() {
    // The laptop writes u2 after its backup and syncs it to the phone; restoring the backup
    // loses u2 there and starts a new epoch, so the phone sends u2 back even though the
    // laptop wrote it.
    let dir = tempfile::tempdir().unwrap();
    let (ca, cb) = (clock_at(T0), clock_at(T0));
    let phone = item_device(dir.path(), "phone", &ca);
    let laptop = item_device(dir.path(), "laptop", &cb);
    add_item(&laptop, "u1", "before the backup", 1);
    sync(&laptop, &phone, SyncMode::PushPull);
    laptop.backup("before-u2.db").unwrap();
    cb.advance(1_000);
    add_item(&laptop, "u2", "after the backup", 2);
    sync(&laptop, &phone, SyncMode::PushPull);
    cb.advance(1_000);
    laptop.restore("before-u2.db").unwrap();
    assert_eq!(items(&laptop).len(), 1, "the restore lost u2 here");
    let (on_laptop, _) = sync(&laptop, &phone, SyncMode::PushPull);
    assert_eq!(on_laptop.received, 1, "{on_laptop:?}");
    assert_eq!(items(&laptop), items(&phone));
    // Rows it wrote in its new epoch are not echoed back to it.
    cb.advance(1_000);
    add_item(&laptop, "u3", "after the restore", 3);
    sync(&laptop, &phone, SyncMode::Push);
    let (from_phone, _) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(from_phone.sent, 0, "{from_phone:?}");
}
