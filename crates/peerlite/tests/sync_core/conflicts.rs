//! Remote rows that break a local constraint: recorded, counted, listed and resolved — never
//! dropped silently.

use std::sync::Arc;

use peerlite::changes::{Clock, ManualClock};
use peerlite::sync::{Resolution, SyncMode, sync_in_memory};
use peerlite::{RdbStore, Value, bucket};

use crate::common::*;

/// alpha has u1 with code X, beta has u2 with code X: each is fine alone.
fn clash(root: &std::path::Path) -> (RdbStore, RdbStore, Arc<ManualClock>, Arc<ManualClock>) {
    let (ca, cb) = (clock_at(T0), clock_at(T0 + 5));
    let a = item_device(root, "alpha", &ca);
    let b = item_device(root, "beta", &cb);
    add_coded(&a, "u1", "X");
    add_coded(&b, "u2", "X");
    (a, b, ca, cb)
}

fn u1() -> Item {
    item("u1", Some("u1 title"), Some(1), Some("X"))
}

fn u2() -> Item {
    item("u2", Some("u2 title"), Some(1), Some("X"))
}

#[test]
fn a_row_breaking_a_unique_column_is_recorded_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, cb) = clash(dir.path());
    add_coded(&a, "u3", "Y"); // fine: goes through beside the conflict
    let (ra, rb) = sync(&a, &b, SyncMode::Push);
    assert_eq!(ra.sent, 2);
    assert_eq!((rb.received, rb.conflicts), (1, 1), "{rb:?}");
    assert_eq!(
        items(&b),
        vec![u2(), item("u3", Some("u3 title"), Some(1), Some("Y"))],
        "the local row stays, the other new row arrives"
    );
    let conflicts = b.conflicts().unwrap();
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(c.table, "item");
    assert_eq!(c.key, Value::Text("u1".into()));
    assert_eq!(c.device, "alpha");
    assert_ne!(c.code, 0);
    assert!(c.message.to_lowercase().contains("unique"), "{}", c.message);
    assert_eq!(c.at_ms, cb.now_ms());
    // The remote row as recorded: alpha's insert of u1, as alpha's clock stamped it.
    let at_alpha = a.change_of("item", &Value::from("u1")).unwrap().unwrap();
    assert_eq!(
        (c.change.origin.as_str(), c.change.hlc, c.change.tombstone),
        ("alpha", at_alpha.hlc, false)
    );
    assert_eq!(c.change.key, Value::Text("u1".into()));
    assert!(
        c.values.contains(&("code".to_owned(), Value::from("X"))),
        "{:?}",
        c.values
    );
    assert!(a.conflicts().unwrap().is_empty());
}

#[test]
fn conflicts_are_counted_for_the_side_that_pulls() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, _) = clash(dir.path());
    let (rb, ra) = sync(&b, &a, SyncMode::Pull);
    assert_eq!((rb.received, rb.conflicts), (0, 1));
    assert_eq!((ra.sent, ra.conflicts), (1, 0));
    assert_eq!(
        ra.peer_conflicts, 1,
        "the sender learns what its rows caused"
    );
    assert_eq!(b.conflicts().unwrap().len(), 1);
}

#[test]
fn both_sides_record_their_conflict_in_push_pull() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, _) = clash(dir.path());
    let (ra, rb) = sync(&a, &b, SyncMode::PushPull);
    assert_eq!((ra.conflicts, rb.conflicts), (1, 1));
    assert_eq!(a.conflicts().unwrap()[0].key, Value::Text("u2".into()));
    assert_eq!(b.conflicts().unwrap()[0].key, Value::Text("u1".into()));
    assert_eq!(items(&a), vec![u1()]);
    assert_eq!(items(&b), vec![u2()]);
}

#[test]
fn conflicts_survive_a_restart_and_are_not_duplicated_by_another_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, cb) = clash(dir.path());
    sync(&a, &b, SyncMode::Push);
    sync(&a, &b, SyncMode::Push);
    assert_eq!(b.conflicts().unwrap().len(), 1);
    b.close().unwrap();
    drop(b);
    let b = open_store(dir.path(), "beta", &cb);
    assert_eq!(b.conflicts().unwrap().len(), 1);
}

#[test]
fn keep_local_discards_the_remote_change_here() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, ca, _) = clash(dir.path());
    sync(&a, &b, SyncMode::Push);
    let id = b.conflicts().unwrap()[0].id;
    b.resolve_conflict(id, Resolution::KeepLocal).unwrap();
    assert!(b.conflicts().unwrap().is_empty());
    assert_eq!(items(&b), vec![u2()]);
    assert_eq!(
        code(b.resolve_conflict(id, Resolution::KeepLocal)),
        14800001
    );
    // A later change of the same row still cannot apply: it is recorded again, not dropped.
    ca.advance(100);
    a.update(&bucket! { "qty" => 2 }, &by_uuid("u1")).unwrap();
    let (_, rb) = sync(&a, &b, SyncMode::Push);
    assert_eq!(rb.conflicts, 1);
    assert_eq!(b.conflicts().unwrap().len(), 1);
    assert_eq!(items(&b), vec![u2()]);
}

#[test]
fn take_remote_applies_the_change_and_deletes_the_blocking_row_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, _) = clash(dir.path());
    let c = item_device(dir.path(), "gamma", &clock_at(T0));
    sync(&b, &c, SyncMode::Push); // gamma has beta's u2
    sync(&a, &b, SyncMode::Push);
    let id = b.conflicts().unwrap()[0].id;
    b.resolve_conflict(id, Resolution::TakeRemote).unwrap();
    assert!(b.conflicts().unwrap().is_empty());
    assert_eq!(items(&b), vec![u1()]);
    // The delete of u2 is a change like any other: it syncs.
    let tomb = b
        .changes(Some("item"), 0)
        .unwrap()
        .into_iter()
        .find(|ch| ch.key == Value::Text("u2".into()))
        .unwrap();
    assert!(tomb.tombstone);
    assert_eq!(tomb.origin, "beta");
    sync(&b, &a, SyncMode::Push);
    sync(&b, &c, SyncMode::Push);
    assert_eq!(items(&a), vec![u1()]);
    assert_eq!(
        items(&c),
        vec![u1()],
        "gamma drops u2 and gets u1 without a conflict"
    );
    assert!(c.conflicts().unwrap().is_empty());
    assert!(a.conflicts().unwrap().is_empty());
}

#[test]
fn resolving_each_side_consistently_converges_after_a_push_pull_clash() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, _) = clash(dir.path());
    sync(&a, &b, SyncMode::PushPull);
    // Both agree that alpha's u1 keeps code X.
    let on_a = a.conflicts().unwrap()[0].id;
    let on_b = b.conflicts().unwrap()[0].id;
    a.resolve_conflict(on_a, Resolution::KeepLocal).unwrap();
    b.resolve_conflict(on_b, Resolution::TakeRemote).unwrap();
    sync(&a, &b, SyncMode::PushPull);
    sync(&b, &a, SyncMode::PushPull);
    assert_eq!(items(&a), vec![u1()]);
    assert_eq!(items(&b), vec![u1()]);
    assert!(a.conflicts().unwrap().is_empty());
    assert!(b.conflicts().unwrap().is_empty());
}

/// Both devices resolve their side with `KeepEarlier`, each on its own, then sync.
fn keep_earlier_on_both_sides(a: &RdbStore, b: &RdbStore) {
    sync(a, b, SyncMode::PushPull);
    for store in [a, b] {
        let conflicts = store.conflicts().unwrap();
        assert_eq!(conflicts.len(), 1);
        store
            .resolve_conflict(conflicts[0].id, Resolution::KeepEarlier)
            .unwrap();
        assert!(store.conflicts().unwrap().is_empty());
    }
    sync(a, b, SyncMode::PushPull);
    sync(b, a, SyncMode::PushPull);
    assert!(a.conflicts().unwrap().is_empty());
    assert!(b.conflicts().unwrap().is_empty());
}

#[test]
fn keep_earlier_on_both_sides_keeps_the_first_row_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, _) = clash(dir.path()); // alpha's u1 at T0, beta's u2 at T0 + 5
    keep_earlier_on_both_sides(&a, &b);
    assert_eq!(items(&a), vec![u1()]);
    assert_eq!(items(&b), vec![u1()]);
}

#[test]
fn keep_earlier_follows_the_clocks_not_the_sides() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cb) = (clock_at(T0 + 5), clock_at(T0));
    let a = item_device(dir.path(), "alpha", &ca);
    let b = item_device(dir.path(), "beta", &cb);
    add_coded(&a, "u1", "X");
    add_coded(&b, "u2", "X"); // beta's row is the earlier one now
    keep_earlier_on_both_sides(&a, &b);
    assert_eq!(items(&a), vec![u2()]);
    assert_eq!(items(&b), vec![u2()]);
}

#[test]
fn keep_earlier_breaks_a_clock_tie_by_device_id_alike_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cb) = (clock_at(T0), clock_at(T0));
    let a = item_device(dir.path(), "alpha", &ca);
    let b = item_device(dir.path(), "beta", &cb);
    add_coded(&a, "u1", "X");
    add_coded(&b, "u2", "X");
    keep_earlier_on_both_sides(&a, &b);
    // Same timestamp: "alpha" < "beta", so alpha's row is the earlier register.
    assert_eq!(items(&a), vec![u1()]);
    assert_eq!(items(&b), vec![u1()]);
}

#[test]
fn keep_earlier_on_one_side_only_converges_after_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, _) = clash(dir.path());
    sync(&a, &b, SyncMode::PushPull);
    // Only beta, whose row is the later one, resolves: it takes alpha's u1 and deletes u2.
    let id = b.conflicts().unwrap()[0].id;
    b.resolve_conflict(id, Resolution::KeepEarlier).unwrap();
    assert_eq!(items(&b), vec![u1()]);
    sync(&b, &a, SyncMode::PushPull);
    assert_eq!(items(&a), vec![u1()]);
    // alpha's record of u2 is moot now (u2 is deleted everywhere); settling it changes nothing.
    let id = a.conflicts().unwrap()[0].id;
    a.resolve_conflict(id, Resolution::KeepEarlier).unwrap();
    sync(&a, &b, SyncMode::PushPull);
    assert_eq!(items(&a), vec![u1()]);
    assert_eq!(items(&b), vec![u1()]);
}

#[test]
fn take_remote_after_the_local_row_changed_its_code_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, cb) = clash(dir.path());
    sync(&a, &b, SyncMode::Push);
    cb.advance(10);
    b.update(&bucket! { "code" => "Z" }, &by_uuid("u2"))
        .unwrap();
    let id = b.conflicts().unwrap()[0].id;
    b.resolve_conflict(id, Resolution::TakeRemote).unwrap();
    assert_eq!(
        items(&b),
        vec![u1(), item("u2", Some("u2 title"), Some(1), Some("Z"))]
    );
}

#[test]
fn a_conflict_does_not_stop_the_session_or_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, _) = clash(dir.path());
    for i in 0..5 {
        add_coded(&a, &format!("ok{i}"), &format!("code{i}"));
    }
    let (ra, rb) = sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert_eq!((ra.status.code(), rb.status.code()), (0, 0));
    assert_eq!((rb.received, rb.conflicts), (5, 1));
    let (ra, rb) = sync(&a, &b, SyncMode::Push);
    assert_eq!((ra.sent, rb.received, rb.conflicts), (0, 0, 0));
    assert_eq!(count(&b, "item"), 6);
}

#[test]
fn a_conflict_delivered_twice_is_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, _) = clash(dir.path());
    let pumped = pump(&a, &b, SyncMode::Push, None, 10, |_, msg| {
        vec![msg.clone(), msg.clone()]
    });
    assert_eq!(pumped.responder.status, 0);
    assert_eq!(b.conflicts().unwrap().len(), 1);
    assert_eq!(items(&b), vec![u2()]);
}

#[test]
fn a_conflict_delivered_twice_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, _) = clash(dir.path());
    let pumped = pump(&a, &b, SyncMode::Push, None, 10, |_, msg| {
        vec![msg.clone(), msg.clone()]
    });
    assert_eq!(b.conflicts().unwrap().len(), 1);
    assert_eq!(pumped.responder.conflicts, 1, "{:?}", pumped.responder);
}
