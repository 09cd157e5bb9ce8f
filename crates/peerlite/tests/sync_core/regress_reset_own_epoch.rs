//! A device's own rows of the database a client reset replaced came back after it deleted
//! them: found by the simulation with purges (`peerlite sim --purges`, seed 59), where the
//! device-collaboration store stopped converging.
//!
//! a resets against b (RecoverUnsynced): its new database holds every row of its own, and has
//! a new epoch. a then deletes a row and purges the tombstone (retention). c still holds a's
//! rows under a's old epoch and relays them to a — a peer's writes of an earlier database of
//! a are sent to it, for a restored database may have lost them. a had no trace of the row
//! left and took it back as its own, with its old stamp: alive on a, deleted on every peer,
//! for good. A reset that recovers accounts for every row of the replaced database (it
//! replays them all: only a writes its rows), so rows of that epoch relayed back can only be
//! stale — and it must replay them all, rows only another peer acknowledged included, or
//! ignoring those relays would lose them.

use std::time::Duration;

use peerlite::reset::ResetMode;
use peerlite::sync::{SyncMode, sync_in_memory};

use crate::common::*;

fn own_ids(store: &peerlite::RdbStore) -> Vec<i64> {
    notes(store, "note")
        .into_iter()
        .filter_map(|r| match r.first() {
            Some(peerlite::Value::Integer(i)) => Some(*i),
            _ => None,
        })
        .collect()
}

#[test]
fn a_relay_of_the_replaced_databases_rows_does_not_undo_a_later_delete() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    let b = note_device(dir.path(), "b", &clock);
    let c = note_device(dir.path(), "c", &clock);
    add_notes(&a, "a", 3);
    for peer in [&b, &c] {
        sync_in_memory(peer, &a, SyncMode::Pull, None).unwrap();
    }
    clock.set(T0 + 10);
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert_eq!(own_ids(&a), [1, 2, 3]);
    clock.set(T0 + 20);
    a.execute("DELETE FROM note WHERE id = 1", &[]).unwrap();
    sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
    clock.set(T0 + 30);
    a.purge_tombstones(Some(Duration::ZERO)).unwrap();
    // c holds a's rows of its replaced database, and relays them to a.
    let (on_c, _) = sync_in_memory(&c, &a, SyncMode::Push, None).unwrap();
    assert!(on_c.status.is_ok(), "{on_c:?}");
    assert_eq!(
        own_ids(&a),
        [2, 3],
        "a's deleted row came back to a through c"
    );
    assert_eq!(ids_from(&b, "a"), [2, 3]);
    // a answered with a fresh delete: c's stale copy goes too, and every device agrees.
    sync_in_memory(&c, &a, SyncMode::Pull, None).unwrap();
    assert_eq!(ids_from(&c, "a"), [2, 3], "c kept a's deleted row");
    sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
    assert_eq!(ids_from(&b, "a"), [2, 3]);
}

/// The seed of a second reset pulls the peer's copies of a's rows, some of them still tagged
/// with the database the first reset settled: they are the seed's to take (it starts empty),
/// not stale relays to answer with deletes that would beat the replay of a's own rows.
#[test]
fn a_second_reset_keeps_the_rows_the_first_one_settled() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    let b = note_device(dir.path(), "b", &clock);
    add_notes(&a, "a", 3);
    sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
    for step in 1..=2u64 {
        clock.set(T0 + 10 * step);
        let reseed = a.begin_reset("b").unwrap();
        sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
        let report = reseed.finish(ResetMode::RecoverUnsynced).unwrap();
        assert_eq!(own_ids(&a), [1, 2, 3], "reset {step}: {report:?}");
    }
    sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
    assert_eq!(ids_from(&b, "a"), [1, 2, 3]);
}

#[test]
fn a_reset_keeps_its_own_rows_that_only_another_peer_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    let b = note_device(dir.path(), "b", &clock);
    let c = note_device(dir.path(), "c", &clock);
    add_notes(&a, "a", 3);
    // Only c has them (and acknowledged them); b has none.
    sync_in_memory(&c, &a, SyncMode::Pull, None).unwrap();
    clock.set(T0 + 10);
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    let report = reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert_eq!(own_ids(&a), [1, 2, 3], "{report:?}");
    assert_eq!(report.left_to_peers, 0, "{report:?}");
    // c's copy (of the replaced database) neither adds nor removes anything.
    sync_in_memory(&c, &a, SyncMode::Push, None).unwrap();
    assert_eq!(own_ids(&a), [1, 2, 3]);
    sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
    assert_eq!(ids_from(&b, "a"), [1, 2, 3]);
}

fn ids_from(store: &peerlite::RdbStore, device: &str) -> Vec<i64> {
    has_from(store, device)
        .into_iter()
        .filter_map(|r| match r.first() {
            Some(peerlite::Value::Integer(i)) => Some(*i),
            _ => None,
        })
        .collect()
}

/// Sim seed 113: b received a's delete (a's new database), purged the tombstone, and then
/// took c's relay of the row from a's replaced database (its `heard` of a is for the new one).
/// a still holds the tombstone, so it wrote nothing new, and b's stream from a had passed it:
/// b kept the row for good. a renumbers what it holds when a relay of the replaced database
/// differs from it, so the state streams to b again.
#[test]
fn a_stale_relay_is_answered_with_the_state_held_when_the_peer_passed_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    let b = note_device(dir.path(), "b", &clock);
    let c = note_device(dir.path(), "c", &clock);
    add_notes(&a, "a", 3);
    for peer in [&b, &c] {
        sync_in_memory(peer, &a, SyncMode::Pull, None).unwrap();
    }
    clock.set(T0 + 10);
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    clock.set(T0 + 20);
    a.execute("DELETE FROM note WHERE id = 1", &[]).unwrap();
    sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
    assert_eq!(ids_from(&b, "a"), [2, 3]);
    // a holds all of b's changes past the delete: b's purge does not stand between them.
    add_notes(&b, "b", 1);
    sync_in_memory(&a, &b, SyncMode::Pull, None).unwrap();
    clock.set(T0 + 30);
    b.purge_tombstones(Some(Duration::ZERO)).unwrap();
    // c relays a's row of the replaced database to b, which has nothing left to refuse it.
    sync_in_memory(&c, &b, SyncMode::Push, None).unwrap();
    // b relays it to a, which answers with the delete it holds (b already had it).
    assert_eq!(ids_from(&b, "a"), [1, 2, 3], "the stale relay");
    for mode in [SyncMode::Push, SyncMode::Pull] {
        let (on_b, _) = sync_in_memory(&b, &a, mode, None).unwrap();
        assert!(on_b.status.is_ok(), "{on_b:?}");
    }
    assert_eq!(ids_from(&b, "a"), [2, 3], "b kept a's deleted row");
    assert_eq!(own_ids(&a), [2, 3]);
}
