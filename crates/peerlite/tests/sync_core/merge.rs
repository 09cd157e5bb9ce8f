//! Single-version merge: per-column last-writer-wins by (HLC, device id), deletes that beat
//! concurrent updates, identity by the conflict column, and convergence whatever the order.

use std::sync::Arc;

use peerlite::changes::{Clock, ManualClock};
use peerlite::sync::{MessageV1, SyncMessage, SyncMode};
use peerlite::{RdbStore, Value, bucket};

use crate::common::*;

struct Dev {
    store: RdbStore,
    clock: Arc<ManualClock>,
}

fn dev(root: &std::path::Path, name: &str) -> Dev {
    let clock = clock_at(T0);
    Dev {
        store: item_device(root, name, &clock),
        clock,
    }
}

fn set_qty(store: &RdbStore, uuid: &str, qty: i64) {
    assert_eq!(
        store
            .update(&bucket! { "qty" => qty }, &by_uuid(uuid))
            .unwrap(),
        1
    );
}

fn delete(store: &RdbStore, uuid: &str) {
    assert_eq!(store.delete(&by_uuid(uuid)).unwrap(), 1);
}

/// Two devices that both have item u1 ("start", 1).
fn pair(root: &std::path::Path) -> (Dev, Dev) {
    let a = dev(root, "alpha");
    let b = dev(root, "beta");
    add_item(&a.store, "u1", "start", 1);
    sync(&a.store, &b.store, SyncMode::Push);
    assert_eq!(items(&b.store), items(&a.store));
    (a, b)
}

#[test]
fn concurrent_edits_to_different_columns_both_survive() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    a.clock.advance(10);
    b.clock.advance(20);
    set_title(&a.store, "u1", "alpha's title");
    set_qty(&b.store, "u1", 42);
    let (ra, rb) = sync(&a.store, &b.store, SyncMode::PushPull);
    assert_eq!((ra.received, rb.received), (1, 1));
    let expected = vec![item("u1", Some("alpha's title"), Some(42), None)];
    assert_eq!(items(&a.store), expected);
    assert_eq!(items(&b.store), expected);
}

#[test]
fn same_column_later_hlc_wins_whatever_the_sync_order() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    // beta writes first, alpha later (by its clock): alpha wins, although beta's write is the
    // one that arrives last on alpha.
    b.clock.advance(10);
    set_title(&b.store, "u1", "beta, earlier");
    a.clock.advance(20);
    set_title(&a.store, "u1", "alpha, later");
    let (_, on_b) = sync(&a.store, &b.store, SyncMode::Push);
    assert_eq!(on_b.received, 1);
    let (_, on_a) = sync(&b.store, &a.store, SyncMode::Push);
    assert_eq!(
        on_a.received, 0,
        "beta's older write changes nothing on alpha"
    );
    let expected = vec![item("u1", Some("alpha, later"), Some(1), None)];
    assert_eq!(items(&a.store), expected);
    assert_eq!(items(&b.store), expected);
}

#[test]
fn equal_timestamps_are_ordered_by_device_id_the_same_way_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    // Both clocks jump to the same millisecond, past everything issued so far: both updates
    // get exactly the same HLC.
    a.clock.set(T0 + 10_000);
    b.clock.set(T0 + 10_000);
    set_title(&a.store, "u1", "alpha");
    set_title(&b.store, "u1", "beta");
    let ha = a.store.changes(Some("item"), 0).unwrap()[0].columns[0].1;
    let hb = b.store.changes(Some("item"), 0).unwrap()[0].columns[0].1;
    assert_eq!(ha, hb, "the test needs a real tie");
    both_ways(&a.store, &b.store);
    assert_eq!(items(&a.store), items(&b.store));
    assert_eq!(
        items(&a.store)[0].title.as_deref(),
        Some("beta"),
        "the greater device id wins a tie"
    );
}

#[test]
fn concurrent_inserts_of_one_uuid_merge_into_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let a = dev(dir.path(), "alpha");
    let b = dev(dir.path(), "beta");
    add_item(&a.store, "same", "alpha's", 1);
    b.clock.advance(5);
    add_item(&b.store, "same", "beta's", 2);
    both_ways(&a.store, &b.store);
    let expected = vec![item("same", Some("beta's"), Some(2), None)];
    assert_eq!(items(&a.store), expected);
    assert_eq!(items(&b.store), expected);
    assert_eq!(count(&a.store, "item"), 1);
}

#[test]
fn concurrent_inserts_with_the_same_timestamp_tie_break_by_device() {
    let dir = tempfile::tempdir().unwrap();
    let a = dev(dir.path(), "alpha");
    let b = dev(dir.path(), "beta");
    add_item(&a.store, "same", "alpha's", 1);
    add_item(&b.store, "same", "beta's", 2);
    assert_eq!(
        a.store.changes(None, 0).unwrap()[0].hlc,
        b.store.changes(None, 0).unwrap()[0].hlc
    );
    sync(&b.store, &a.store, SyncMode::PushPull);
    let expected = vec![item("same", Some("beta's"), Some(2), None)];
    assert_eq!(items(&a.store), expected);
    assert_eq!(items(&b.store), expected);
}

#[test]
fn delete_wins_over_a_concurrent_later_update() {
    for alpha_first in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = pair(dir.path());
        a.clock.advance(10);
        delete(&a.store, "u1");
        b.clock.advance(20); // the update is later than the delete, but did not see it
        set_title(&b.store, "u1", "edited after the delete");
        set_qty(&b.store, "u1", 7);
        if alpha_first {
            sync(&a.store, &b.store, SyncMode::Push);
            sync(&b.store, &a.store, SyncMode::Push);
        } else {
            sync(&b.store, &a.store, SyncMode::Push);
            sync(&a.store, &b.store, SyncMode::Push);
        }
        both_ways(&a.store, &b.store);
        assert_eq!(items(&a.store), vec![], "alpha_first={alpha_first}");
        assert_eq!(items(&b.store), vec![], "alpha_first={alpha_first}");
        let tomb = &b.store.changes(Some("item"), 0).unwrap()[0];
        assert!(tomb.tombstone);
        assert_eq!(tomb.origin, "alpha");
    }
}

#[test]
fn an_update_from_a_third_device_never_resurrects_a_deleted_row() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    let c = dev(dir.path(), "gamma");
    sync(&a.store, &c.store, SyncMode::Push);
    a.clock.advance(10);
    delete(&a.store, "u1");
    sync(&a.store, &b.store, SyncMode::Push);
    assert_eq!(items(&b.store), vec![]);
    c.clock.advance(1_000);
    set_title(&c.store, "u1", "gamma's late edit");
    // The late update reaches beta (where the row is deleted) and alpha.
    let (_, on_b) = sync(&c.store, &b.store, SyncMode::Push);
    assert_eq!(items(&b.store), vec![], "{on_b:?}");
    sync(&c.store, &a.store, SyncMode::Push);
    assert_eq!(items(&a.store), vec![]);
    // And gamma learns of the delete.
    sync(&b.store, &c.store, SyncMode::Push);
    assert_eq!(items(&c.store), vec![]);
}

#[test]
fn reinsert_after_delete_with_a_newer_timestamp_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    a.clock.advance(10);
    delete(&a.store, "u1");
    sync(&a.store, &b.store, SyncMode::Push);
    assert_eq!(items(&b.store), vec![]);
    b.clock.advance(20);
    add_item(&b.store, "u1", "back again", 2);
    let (_, on_a) = sync(&b.store, &a.store, SyncMode::Push);
    assert_eq!(on_a.received, 1);
    let expected = vec![item("u1", Some("back again"), Some(2), None)];
    assert_eq!(items(&a.store), expected);
    assert_eq!(items(&b.store), expected);
    both_ways(&a.store, &b.store);
    assert_eq!(items(&a.store), expected);
    assert_eq!(items(&b.store), expected);
}

#[test]
fn a_stale_delete_does_not_remove_a_newer_reinsert() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    a.clock.advance(10);
    delete(&a.store, "u1");
    b.clock.advance(5);
    delete(&b.store, "u1");
    b.clock.advance(100);
    add_item(&b.store, "u1", "reborn", 3);
    both_ways(&a.store, &b.store);
    let expected = vec![item("u1", Some("reborn"), Some(3), None)];
    assert_eq!(items(&a.store), expected);
    assert_eq!(items(&b.store), expected);
}

#[test]
fn a_column_written_after_a_delete_survives_a_reinsert_that_is_older_than_it() {
    // alpha deletes (t+10) and re-inserts (t+20); beta, unaware, edits the title at t+30.
    // The row lives (the re-insert beats the delete), the title is beta's (t+30 beats the
    // re-insert), the quantity is the re-insert's — in every delivery order.
    for order in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = pair(dir.path());
        let c = dev(dir.path(), "gamma");
        a.clock.advance(10);
        delete(&a.store, "u1");
        // gamma sees only the delete.
        sync(&a.store, &c.store, SyncMode::Push);
        a.clock.advance(10);
        add_item(&a.store, "u1", "reinserted", 5);
        b.clock.advance(30);
        set_title(&b.store, "u1", "beta's title");
        match order {
            0 => {
                sync(&b.store, &c.store, SyncMode::Push); // the title arrives at a deleted row
                sync(&a.store, &c.store, SyncMode::Push); // then the re-insert
            }
            1 => {
                sync(&a.store, &c.store, SyncMode::Push);
                sync(&b.store, &c.store, SyncMode::Push);
            }
            _ => {
                sync(&a.store, &b.store, SyncMode::Push);
                sync(&b.store, &c.store, SyncMode::Push);
            }
        }
        both_ways(&a.store, &b.store);
        both_ways(&b.store, &c.store);
        both_ways(&a.store, &c.store);
        let expected = vec![item("u1", Some("beta's title"), Some(5), None)];
        assert_eq!(items(&a.store), expected, "order {order}");
        assert_eq!(items(&b.store), expected, "order {order}");
        assert_eq!(items(&c.store), expected, "order {order}");
    }
}

#[test]
fn a_row_inserted_and_deleted_before_sync_arrives_as_a_tombstone_only() {
    let dir = tempfile::tempdir().unwrap();
    let a = dev(dir.path(), "alpha");
    let b = dev(dir.path(), "beta");
    add_item(&a.store, "short-lived", "x", 1);
    delete(&a.store, "short-lived");
    let (ra, _) = sync(&a.store, &b.store, SyncMode::Push);
    assert_eq!(ra.sent, 1);
    assert_eq!(items(&b.store), vec![]);
    let on_b = b.store.changes(Some("item"), 0).unwrap();
    assert_eq!(on_b.len(), 1);
    assert!(on_b[0].tombstone);
}

#[test]
fn order_independence_across_three_devices() {
    // alpha and gamma edit shared rows concurrently; beta1 hears alpha then gamma, beta2 hears
    // gamma then alpha; both end with the same table.
    let dir = tempfile::tempdir().unwrap();
    let a = dev(dir.path(), "alpha");
    let c = dev(dir.path(), "gamma");
    let b1 = dev(dir.path(), "beta1");
    let b2 = dev(dir.path(), "beta2");
    for (u, t, q) in [
        ("u1", "one", 1),
        ("u2", "two", 2),
        ("u3", "three", 3),
        ("u4", "four", 4),
    ] {
        add_item(&a.store, u, t, q);
    }
    sync(&a.store, &c.store, SyncMode::Push);
    a.clock.advance(100);
    c.clock.advance(200);
    set_title(&a.store, "u1", "alpha u1");
    set_qty(&c.store, "u1", 100);
    set_title(&a.store, "u2", "alpha u2 (older)");
    set_title(&c.store, "u2", "gamma u2 (newer)");
    delete(&a.store, "u3");
    set_title(&c.store, "u3", "gamma edits a deleted row");
    delete(&c.store, "u4");
    set_qty(&a.store, "u4", 44);
    add_item(&a.store, "a-new", "from alpha", 9);
    add_item(&c.store, "c-new", "from gamma", 8);

    sync(&a.store, &b1.store, SyncMode::Push);
    sync(&c.store, &b1.store, SyncMode::Push);
    sync(&c.store, &b2.store, SyncMode::Push);
    sync(&a.store, &b2.store, SyncMode::Push);
    let expected = vec![
        item("a-new", Some("from alpha"), Some(9), None),
        item("c-new", Some("from gamma"), Some(8), None),
        item("u1", Some("alpha u1"), Some(100), None),
        item("u2", Some("gamma u2 (newer)"), Some(2), None),
    ];
    assert_eq!(items(&b1.store), expected);
    assert_eq!(items(&b2.store), expected);
    // Everyone converges on it.
    both_ways(&a.store, &b1.store);
    both_ways(&c.store, &b2.store);
    for d in [&a, &b1, &b2, &c] {
        assert_eq!(items(&d.store), expected, "{}", d.store.device_id());
    }
}

#[test]
fn syncing_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    a.clock.advance(10);
    b.clock.advance(10);
    set_title(&a.store, "u1", "a");
    add_item(&b.store, "u2", "b", 2);
    let (first, _) = sync(&a.store, &b.store, SyncMode::PushPull);
    assert_eq!((first.sent, first.received), (1, 1));
    let before = (items(&a.store), items(&b.store));
    let (x, y) = sync(&a.store, &b.store, SyncMode::PushPull);
    assert_eq!((x.sent, x.received, y.sent, y.received), (0, 0, 0, 0));
    let (x, y) = sync(&b.store, &a.store, SyncMode::PushPull);
    assert_eq!((x.received, y.received), (0, 0));
    assert_eq!((items(&a.store), items(&b.store)), before);
}

#[test]
fn the_same_changes_from_two_relays_apply_once() {
    // gamma gets alpha's rows from alpha and again through beta: nothing changes the second
    // time (merge is idempotent), and the table holds one row per uuid.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    let c = dev(dir.path(), "gamma");
    add_item(&a.store, "u2", "two", 2);
    sync(&a.store, &b.store, SyncMode::Push);
    let (_, first) = sync(&a.store, &c.store, SyncMode::Push);
    assert_eq!(first.received, 2);
    let (relay, second) = sync(&b.store, &c.store, SyncMode::Push);
    assert_eq!(relay.sent, 2, "beta relays alpha's rows");
    assert_eq!(second.received, 0);
    assert_eq!(items(&c.store), items(&a.store));
    assert_eq!(count(&c.store, "item"), 2);
}

#[test]
fn identity_is_the_conflict_column_and_local_ids_are_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let a = dev(dir.path(), "alpha");
    let b = dev(dir.path(), "beta");
    for i in 0..3 {
        add_item(&b.store, &format!("b{i}"), "beta's", i);
    }
    add_item(&a.store, "a0", "alpha's", 7);
    let pumped = pump(&a.store, &b.store, SyncMode::Push, None, 100, lossless);
    let batch = pumped
        .seen
        .iter()
        .find_map(|(_, m)| match m {
            SyncMessage::V1(MessageV1::Batch(b)) => Some(b.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(batch.columns, ["uuid", "title", "qty", "code"]);
    assert_eq!(batch.rows[0].ident, Value::Text("a0".into()));
    let ids = rows(&b.store, "SELECT id FROM item WHERE uuid = 'a0'");
    assert_eq!(ids, vec![vec![Value::Integer(4)]], "beta numbers it itself");
    let ids = rows(&a.store, "SELECT id FROM item WHERE uuid = 'a0'");
    assert_eq!(ids, vec![vec![Value::Integer(1)]]);
    // Changing the local id is not a change of the row.
    let since = a.store.changes(None, 0).unwrap()[0].seq;
    a.store
        .execute("UPDATE item SET id = 50 WHERE uuid = 'a0'", &[])
        .unwrap();
    assert!(a.store.changes(None, since).unwrap().is_empty());
}

#[test]
fn columns_that_do_not_sync_stay_local() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    b.store
        .update(&bucket! { "local" => "beta only" }, &by_uuid("u1"))
        .unwrap();
    a.store
        .update(&bucket! { "local" => "alpha only" }, &by_uuid("u1"))
        .unwrap();
    a.clock.advance(10);
    set_title(&a.store, "u1", "changed");
    sync(&a.store, &b.store, SyncMode::PushPull);
    assert_eq!(
        rows(&b.store, "SELECT title, local FROM item"),
        vec![vec![Value::from("changed"), Value::from("beta only")]]
    );
    assert_eq!(
        rows(&a.store, "SELECT title, local FROM item"),
        vec![vec![Value::from("changed"), Value::from("alpha only")]]
    );
}

#[test]
fn received_rows_can_be_edited_and_the_edit_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    b.clock.advance(10);
    set_qty(&b.store, "u1", 99);
    let (rb, on_a) = sync(&b.store, &a.store, SyncMode::Push);
    assert_eq!((rb.sent, on_a.received), (1, 1));
    assert_eq!(
        items(&a.store),
        vec![item("u1", Some("start"), Some(99), None)]
    );
}

#[test]
fn rows_relay_in_single_version_mode_without_echo() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    let c = dev(dir.path(), "gamma");
    let (rb, on_c) = sync(&b.store, &c.store, SyncMode::Push);
    assert_eq!((rb.sent, on_c.received), (1, 1));
    assert_eq!(items(&c.store), items(&a.store));
    assert_eq!(c.store.changes(None, 0).unwrap()[0].origin, "alpha");
    // Back to alpha: nothing of alpha's own goes back.
    let (rb, on_a) = sync(&b.store, &a.store, SyncMode::Push);
    assert_eq!((rb.sent, on_a.received), (0, 0));
    let (rc, on_a) = sync(&c.store, &a.store, SyncMode::Push);
    assert_eq!((rc.sent, on_a.received), (0, 0));
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_edits_and_random_syncs_converge() {
    for seed in 1..=6u64 {
        let dir = tempfile::tempdir().unwrap();
        let devs: Vec<Dev> = ["d0", "d1", "d2"]
            .iter()
            .map(|n| dev(dir.path(), n))
            .collect();
        let mut rng = Rng(seed);
        let mut uuids: Vec<String> = Vec::new();
        for step in 0..60 {
            let d = &devs[rng.below(3) as usize];
            // Clocks wander: sometimes together (ties), sometimes apart.
            match rng.below(4) {
                0 => {}
                1 => d.clock.advance(1 + rng.below(50)),
                _ => {
                    let t = T0 + 1_000 * (step as u64 + 1);
                    d.clock.set(t.max(d.clock.now_ms()));
                }
            }
            let present: Vec<String> = items(&d.store).into_iter().map(|i| i.uuid).collect();
            match rng.below(10) {
                0..=2 => {
                    let u = format!("{}-{step}", d.store.device_id());
                    add_item(&d.store, &u, &format!("t{step}"), step);
                    uuids.push(u);
                }
                3..=4 if !present.is_empty() => {
                    let u = &present[rng.below(present.len() as u64) as usize];
                    set_title(&d.store, u, &format!("{} @{step}", d.store.device_id()));
                }
                5..=6 if !present.is_empty() => {
                    let u = &present[rng.below(present.len() as u64) as usize];
                    set_qty(&d.store, u, step);
                }
                7 if !present.is_empty() => {
                    let u = &present[rng.below(present.len() as u64) as usize];
                    delete(&d.store, u);
                }
                8 if !uuids.is_empty() => {
                    let u = &uuids[rng.below(uuids.len() as u64) as usize];
                    if !present.contains(u) {
                        add_item(&d.store, u, &format!("re {step}"), -step);
                    }
                }
                _ => {
                    let other = &devs[rng.below(3) as usize];
                    if other.store.device_id() != d.store.device_id() {
                        let mode = [SyncMode::Push, SyncMode::Pull, SyncMode::PushPull]
                            [rng.below(3) as usize];
                        sync(&d.store, &other.store, mode);
                    }
                }
            }
        }
        for _ in 0..2 {
            for i in 0..3 {
                for j in 0..3 {
                    if i != j {
                        sync(&devs[i].store, &devs[j].store, SyncMode::PushPull);
                    }
                }
            }
        }
        let reference = items(&devs[0].store);
        for d in &devs[1..] {
            assert_eq!(
                items(&d.store),
                reference,
                "seed {seed}: {} differs",
                d.store.device_id()
            );
        }
        // Quiescent: one more round changes nothing.
        for i in 0..3 {
            for j in 0..3 {
                if i != j {
                    let (x, y) = sync(&devs[i].store, &devs[j].store, SyncMode::PushPull);
                    assert_eq!((x.received, y.received), (0, 0), "seed {seed}");
                }
            }
        }
    }
}

#[test]
fn changing_the_conflict_column_moves_the_row_on_every_device() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    a.clock.advance(10);
    a.store
        .execute(
            "UPDATE item SET uuid = 'u9', qty = 9 WHERE uuid = 'u1'",
            &[],
        )
        .unwrap();
    let changes = a.store.changes(Some("item"), 0).unwrap();
    assert_eq!(changes.len(), 2);
    sync(&a.store, &b.store, SyncMode::Push);
    let expected = vec![item("u9", Some("start"), Some(9), None)];
    assert_eq!(items(&a.store), expected);
    assert_eq!(items(&b.store), expected);
}

#[test]
fn a_text_primary_key_can_be_the_conflict_column() {
    const SCHEMA: &str = r#"{"dbSchema":[{"version":1,"bundleName":"b","dbName":"notes","tables":[{"tableName":"doc",
      "deviceSyncFields":["key","body"],
      "fields":[{"columnName":"key","type":"Text","primaryKey":true,"notNull":true},{"columnName":"body","type":"Text"}]}]}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let mk = |name: &str, clock: &Arc<ManualClock>| {
        let s = open_store(dir.path(), name, clock);
        s.execute(
            "CREATE TABLE doc(key TEXT PRIMARY KEY NOT NULL, body TEXT)",
            &[],
        )
        .unwrap();
        s.set_distributed_tables(
            &["doc"],
            peerlite::changes::DistributedType::Device,
            &peerlite::changes::DistributedConfig::single_version(
                peerlite::schema::SyncSchema::parse(SCHEMA).unwrap(),
            ),
        )
        .unwrap();
        s
    };
    let (ca, cb) = (clock_at(T0), clock_at(T0 + 1));
    let a = mk("alpha", &ca);
    let b = mk("beta", &cb);
    a.insert("doc", &bucket! { "key" => "readme", "body" => "a" })
        .unwrap();
    b.insert("doc", &bucket! { "key" => "todo", "body" => "b" })
        .unwrap();
    sync(&a, &b, SyncMode::PushPull);
    cb.advance(10);
    b.update(
        &bucket! { "body" => "b edits a's readme" },
        &peerlite::RdbPredicates::new("doc").equal_to("key", "readme"),
    )
    .unwrap();
    sync(&b, &a, SyncMode::Push);
    let all = |s: &RdbStore| rows(s, "SELECT key, body FROM doc ORDER BY key");
    assert_eq!(all(&a), all(&b));
    assert_eq!(
        all(&a),
        vec![
            vec![Value::from("readme"), Value::from("b edits a's readme")],
            vec![Value::from("todo"), Value::from("b")]
        ]
    );
}

#[test]
fn rows_that_existed_before_distribution_merge_with_the_peers_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cb) = (clock_at(T0), clock_at(T0 + 100));
    let a = open_store(dir.path(), "alpha", &ca);
    let b = open_store(dir.path(), "beta", &cb);
    for (s, title) in [(&a, "alpha's old"), (&b, "beta's old")] {
        s.execute(CREATE_ITEM, &[]).unwrap();
        add_item(s, "shared", title, 1);
        add_item(s, &format!("{}-only", s.device_id()), title, 2);
    }
    for s in [&a, &b] {
        s.set_distributed_tables(
            &["item"],
            peerlite::changes::DistributedType::Device,
            &item_config(),
        )
        .unwrap();
    }
    sync(&a, &b, SyncMode::PushPull);
    assert_eq!(items(&a), items(&b));
    assert_eq!(items(&a).len(), 3);
    let shared = items(&a).into_iter().find(|i| i.uuid == "shared").unwrap();
    assert_eq!(
        shared.title.as_deref(),
        Some("beta's old"),
        "beta captured it later"
    );
}

#[test]
fn values_kept_aside_for_a_deleted_row_relay_to_a_fourth_device() {
    // gamma holds alpha's delete and beta's later title (kept aside, the row stays deleted);
    // delta hears only gamma, then alpha's re-insert: it must end like everyone else.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    let c = dev(dir.path(), "gamma");
    let d = dev(dir.path(), "delta");
    sync(&a.store, &d.store, SyncMode::Push);
    a.clock.advance(10);
    delete(&a.store, "u1");
    sync(&a.store, &c.store, SyncMode::Push);
    a.clock.advance(10);
    add_item(&a.store, "u1", "reinserted", 5);
    b.clock.advance(30);
    set_title(&b.store, "u1", "beta's title");
    sync(&b.store, &c.store, SyncMode::Push);
    assert_eq!(items(&c.store), vec![]);
    sync(&c.store, &d.store, SyncMode::Push);
    assert_eq!(items(&d.store), vec![]);
    sync(&a.store, &d.store, SyncMode::Push);
    let expected = vec![item("u1", Some("beta's title"), Some(5), None)];
    assert_eq!(items(&d.store), expected);
    for x in [&a, &b, &c] {
        both_ways(&x.store, &d.store);
    }
    for x in [&a, &b, &c, &d] {
        assert_eq!(items(&x.store), expected, "{}", x.store.device_id());
    }
}
