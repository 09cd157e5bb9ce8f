//! Tombstone retention (issue 11): tombstones are kept for the store's retention, purged
//! after it, and a peer whose watermark lies before a purge is refused a delta with
//! 17040011 (client reset required) — never sent one that silently misses the deletes.
//! Every peer's acknowledgements are recorded, so `sync_overview` (`peerlite status`)
//! counts the changes a peer has not acknowledged.

use std::time::Duration;

use peerlite::sync::{SyncMode, SyncStatus, sync_in_memory};

use crate::common::*;

const DAY: u64 = 24 * 60 * 60 * 1000;

fn tombstones(store: &peerlite::RdbStore) -> usize {
    store
        .changes(None, 0)
        .unwrap()
        .iter()
        .filter(|c| c.tombstone)
        .count()
}

#[test]
fn tombstones_stay_for_the_retention_and_go_after_it() {
    for make in [note_device, item_device] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock_at(T0);
        let a = make(dir.path(), "a", &clock);
        let table = if count_table(&a, "note") {
            "note"
        } else {
            "item"
        };
        insert_three(&a, table);
        a.execute(&format!("DELETE FROM {table} WHERE rowid = 1"), &[])
            .unwrap();
        assert_eq!(tombstones(&a), 1);

        clock.set(T0 + 29 * DAY);
        assert_eq!(
            a.purge_tombstones(None).unwrap().purged,
            0,
            "{table}: inside the retention"
        );
        assert_eq!(tombstones(&a), 1);

        clock.set(T0 + 31 * DAY);
        let report = a.purge_tombstones(None).unwrap();
        assert_eq!(report.purged, 1, "{table}");
        assert_eq!(report.horizon_ms, T0 + DAY);
        assert_eq!(tombstones(&a), 0);
        // Live rows keep their clock rows.
        assert_eq!(a.changes(None, 0).unwrap().len(), 2, "{table}");
        assert!(report.purged_seq[table] > 0);

        // The horizon and the purged sequence numbers never go back.
        let again = a
            .purge_tombstones(Some(Duration::from_secs(40 * 86_400)))
            .unwrap();
        assert_eq!(again.horizon_ms, T0 + DAY);
        assert_eq!(again.purged_seq[table], report.purged_seq[table]);
    }
}

fn count_table(store: &peerlite::RdbStore, table: &str) -> bool {
    table_exists(store, table)
}

fn insert_three(store: &peerlite::RdbStore, table: &str) {
    for i in 1..=3 {
        if table == "note" {
            store
                .execute(
                    "INSERT INTO note(id, text, n) VALUES (?1, 'x', 0)",
                    &[i.into()],
                )
                .unwrap();
        } else {
            add_item(store, &format!("u{i}"), "x", i);
        }
    }
}

#[test]
fn a_row_deleted_and_inserted_again_is_not_purged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    a.execute("INSERT INTO note(id, text, n) VALUES (1, 'x', 0)", &[])
        .unwrap();
    a.execute("DELETE FROM note WHERE id = 1", &[]).unwrap();
    a.execute("INSERT INTO note(id, text, n) VALUES (1, 'back', 0)", &[])
        .unwrap();
    clock.set(T0 + 40 * DAY);
    assert_eq!(a.purge_tombstones(None).unwrap().purged, 0);
    assert_eq!(a.changes(None, 0).unwrap().len(), 1);
}

#[test]
fn a_peer_behind_a_purge_needs_a_reset_and_one_past_it_syncs_on() {
    for mode in [SyncMode::Push, SyncMode::Pull] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock_at(T0);
        let a = note_device(dir.path(), "a", &clock);
        let b = note_device(dir.path(), "b", &clock);
        let c = note_device(dir.path(), "c", &clock);
        insert_three(&a, "note");
        // b and c both hold a's three rows.
        for peer in [&b, &c] {
            let (ra, _) = sync_in_memory(&a, peer, SyncMode::Push, None).unwrap();
            assert!(ra.status.is_ok());
        }
        a.execute("DELETE FROM note WHERE id = 1", &[]).unwrap();
        // c hears of the delete; b is away.
        sync_in_memory(&a, &c, SyncMode::Push, None).unwrap();
        a.execute("INSERT INTO note(id, text, n) VALUES (4, 'new', 0)", &[])
            .unwrap();
        clock.set(T0 + 31 * DAY);
        assert_eq!(a.purge_tombstones(None).unwrap().purged, 1);

        let (on_a, on_b) = match mode {
            SyncMode::Push => sync_in_memory(&a, &b, SyncMode::Push, None).unwrap(),
            _ => {
                let (on_b, on_a) = sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
                (on_a, on_b)
            }
        };
        assert_eq!(on_a.status, SyncStatus::ResetRequired, "{mode:?}: {on_a:?}");
        assert_eq!(on_b.status, SyncStatus::ResetRequired, "{mode:?}: {on_b:?}");
        assert_eq!(on_b.status.code(), 17040011);
        // Nothing half-applied: b still has the row it cannot learn was deleted, and not
        // the newer one either — the reset decides, not a partial delta.
        let table = device_table(&b, "a");
        assert_eq!(count(&b, &table), 3, "{mode:?}");

        // c saw the delete before the purge: it syncs on.
        let (on_a, on_c) = sync_in_memory(&a, &c, SyncMode::Push, None).unwrap();
        assert!(on_a.status.is_ok() && on_c.status.is_ok(), "{on_a:?}");
        assert_eq!(count(&c, &device_table(&c, "a")), 3);

        // A device that never synced with a takes its whole state.
        let d = note_device(dir.path(), "d", &clock);
        let (on_a, _) = sync_in_memory(&a, &d, SyncMode::Push, None).unwrap();
        assert!(on_a.status.is_ok());
        assert_eq!(count(&d, &device_table(&d, "a")), 3);
    }
}

#[test]
fn purging_everything_now_moves_the_horizon_to_now() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    insert_three(&a, "note");
    a.execute("DELETE FROM note", &[]).unwrap();
    clock.set(T0 + 5);
    let report = a.purge_tombstones(Some(Duration::ZERO)).unwrap();
    assert_eq!((report.purged, report.horizon_ms), (3, T0 + 5));
    assert_eq!(a.sync_overview().unwrap().tombstones, 0);
}

#[test]
fn the_retention_is_kept_in_the_database_and_must_be_sensible() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    assert_eq!(
        a.tombstone_retention().unwrap(),
        peerlite::changes::DEFAULT_RETENTION
    );
    a.set_tombstone_retention(Duration::from_secs(7 * 86_400))
        .unwrap();
    let err = a
        .set_tombstone_retention(Duration::from_millis(10))
        .unwrap_err();
    assert_eq!(err.code(), 14800001);
    drop(a);
    let a = open_store(dir.path(), "a", &clock);
    assert_eq!(
        a.tombstone_retention().unwrap(),
        Duration::from_secs(7 * 86_400)
    );
    a.execute("INSERT INTO note(id, text, n) VALUES (1, 'x', 0)", &[])
        .unwrap();
    a.execute("DELETE FROM note", &[]).unwrap();
    clock.set(T0 + 8 * DAY);
    assert_eq!(a.purge_tombstones(None).unwrap().purged, 1);
}

#[test]
fn a_sync_purges_once_a_day_what_lies_past_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    let b = note_device(dir.path(), "b", &clock);
    insert_three(&a, "note");
    a.execute("DELETE FROM note WHERE id = 1", &[]).unwrap();
    sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert_eq!(tombstones(&a), 1, "inside the retention");
    clock.set(T0 + 31 * DAY);
    sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert_eq!(tombstones(&a), 0, "the sync purged it");
    assert_eq!(tombstones(&b), 0, "and so did the peer's side of it");
}

#[test]
fn the_overview_counts_what_each_peer_has_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    let b = note_device(dir.path(), "b", &clock);
    let c = note_device(dir.path(), "c", &clock);
    insert_three(&a, "note");
    sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    // c pulls: its Hello says what it holds, and the stream's acks move a's ledger too.
    sync_in_memory(&c, &a, SyncMode::Pull, None).unwrap();
    a.execute("UPDATE note SET n = 1 WHERE id = 2", &[])
        .unwrap();
    sync_in_memory(&a, &c, SyncMode::Push, None).unwrap();

    let o = a.sync_overview().unwrap();
    let peer = |d: &str| o.peers.iter().find(|p| p.device == d).unwrap().clone();
    assert_eq!(peer("b").unsynced, 1);
    assert_eq!(peer("c").unsynced, 0);
    assert!(!peer("b").acknowledged.is_empty());
    assert_eq!(o.device, "a");
    assert_eq!(o.epoch, a.epoch().unwrap());
    // b's rows relayed back to a would not count: b holds them.
    let ob = b.sync_overview().unwrap();
    assert_eq!(ob.peers.len(), 1);
    assert!(ob.peers[0].received[0].seq > 0);
}

#[test]
fn an_age_of_zero_purges_a_delete_of_this_very_millisecond() {
    // The demo's reset chapter failed now and then: the delete and `purge --older-than 0s`
    // fell in one millisecond, the tombstone was stamped at the cutoff, and it stayed.
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    insert_three(&a, "note");
    a.execute("DELETE FROM note WHERE id = 1", &[]).unwrap();
    // The clock does not move: same millisecond.
    assert_eq!(a.purge_tombstones(Some(Duration::ZERO)).unwrap().purged, 1);
}

#[test]
fn a_device_behind_a_purge_may_not_push_what_the_deletes_removed() {
    // b was away while a deleted row 1 and forgot the delete; b edits row 1 and pushes (or a
    // pulls from b): a, which no longer remembers the delete, would take the row back. The
    // receiver refuses (17040011) until b is reset.
    for a_pulls in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock_at(T0);
        let a = item_device(dir.path(), "a", &clock);
        let b = item_device(dir.path(), "b", &clock);
        add_item(&a, "u1", "one", 1);
        add_item(&a, "u2", "two", 2);
        sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
        clock.set(T0 + 10);
        a.delete(&by_uuid("u1")).unwrap();
        a.purge_tombstones(Some(Duration::ZERO)).unwrap();
        clock.set(T0 + 20);
        set_title(&b, "u1", "edited while away");
        let (on_a, on_b) = if a_pulls {
            sync_in_memory(&a, &b, SyncMode::Pull, None).unwrap()
        } else {
            let (on_b, on_a) = sync_in_memory(&b, &a, SyncMode::Push, None).unwrap();
            (on_a, on_b)
        };
        assert_eq!(
            on_a.status,
            SyncStatus::ResetRequired,
            "a pulls {a_pulls}: {on_a:?}"
        );
        assert_eq!(
            on_b.status,
            SyncStatus::ResetRequired,
            "a pulls {a_pulls}: {on_b:?}"
        );
        assert!(
            items(&a).iter().all(|i| i.uuid != "u1"),
            "the delete stands on a"
        );
    }
}

/// Adversary round 2, finding 6: a purge while a stream runs. The stream had not yet sent the
/// deletes when the purge removed their tombstones; it carried on, and the receiver's
/// watermark passed them at the end — 10,000 deleted rows stayed alive on the puller for good,
/// every sync "ok". A stream that meets a purge it began before ends with 17040011 (the
/// receiver must be reset), never ok with deletes missing. (b streams as the initiator here,
/// so the test sets its batch size; a pull streams through the same code.)
#[test]
fn a_purge_while_a_stream_runs_ends_it_with_a_reset_required() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    for i in 0..6 {
        add_item(&b, &format!("u{i}"), "t", i);
    }
    both_ways(&a, &b);
    clock.set(T0 + 10);
    // Enough rows that the deletes are extracted long after the first batch left.
    for i in 10..200 {
        add_item(&b, &format!("u{i}"), "later", i);
    }
    for i in 0..3 {
        b.delete(&by_uuid(&format!("u{i}"))).unwrap();
    }
    clock.set(T0 + 20);
    let mut purged = false;
    let pumped = pump(&b, &a, SyncMode::Push, None, 2, |dir, msg| {
        if !purged && dir == Dir::ToResponder && is_batch(msg) {
            // The first batch is on its way; the deletes are further down the stream.
            b.purge_tombstones(Some(std::time::Duration::ZERO)).unwrap();
            purged = true;
        }
        vec![msg.clone()]
    });
    assert!(purged);
    let alive: Vec<String> = items(&a)
        .into_iter()
        .map(|i| i.uuid)
        .filter(|u| ["u0", "u1", "u2"].contains(&u.as_str()))
        .collect();
    assert_eq!(
        alive.len(),
        3,
        "the deletes were purged before they were sent"
    );
    for side in [&pumped.initiator, &pumped.responder] {
        assert_eq!(side.status, SyncStatus::ResetRequired, "{side:?}");
    }
    // And so does every later sync, until a reset.
    let (on_a, _) = sync_in_memory(&a, &b, SyncMode::Pull, None).unwrap();
    assert_eq!(on_a.status, SyncStatus::ResetRequired, "{on_a:?}");
}

/// Found by the simulation with purges (seeds 7 and 9): a device deleted a row it had from a
/// peer, and purged the tombstone past the retention before any peer heard of the delete —
/// the only record of it was gone, and the row came back from the peer. Past the retention,
/// a delete of this device's own that no peer acknowledged is kept until one does (a store no
/// peer ever synced with, or a purge of everything, `0s`, still forgets it).
#[test]
fn an_unsynced_delete_outlives_the_retention_until_a_peer_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    add_item(&b, "u1", "b's", 1);
    add_item(&a, "u2", "a's", 2);
    both_ways(&a, &b);
    clock.set(T0 + 10);
    a.delete(&by_uuid("u1")).unwrap();
    clock.set(T0 + 31 * DAY);
    assert_eq!(
        a.purge_tombstones(None).unwrap().purged,
        0,
        "the delete is unsynced"
    );
    let (on_a, _) = sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert!(on_a.status.is_ok(), "{on_a:?}");
    assert!(
        items(&b).iter().all(|i| i.uuid != "u1"),
        "b never heard of the delete"
    );
    // Acknowledged now: past the retention it goes.
    assert_eq!(a.purge_tombstones(None).unwrap().purged, 1);
}
