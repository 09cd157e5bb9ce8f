//! Deletes forgotten past the retention came back through other devices: found by the
//! simulation with purges (`peerlite sim --purges`), where devices stopped converging.
//!
//! - **Stale relays (device collaboration).** Only a device writes its own rows; once b has
//!   heard a's rows from a itself, a row of a's that c relays, stamped no later, is one b has
//!   (or a deleted). c missed a's delete and b forgot it: the relay put the row back on b.
//! - **A first stream from the device itself.** d knew a's rows only through c, which missed
//!   a's delete; a's full state has no tombstone left to tell d. The rows of a's that a's
//!   first stream does not bring are no longer a's.
//! - **A peer that never heard of this store (single version).** p only ever pushed to q;
//!   q deleted one of p's rows and forgot the delete; p's next push put it back. It must be
//!   reset first (17040011), as a peer whose watermark lies below the purge is.
//! - **Stale relays (single version).** The same rule for a row state only one device wrote:
//!   b, re-seeded from a, had heard a past the state c relayed (sim seed 90).
//! - **A purge while a peer streams in.** The check at the session's start passed; the purge
//!   came after it, and the rows that followed could include some the purged deletes removed.

use std::time::Duration;

use peerlite::sync::{SyncMode, SyncStatus, sync_in_memory};

use crate::common::*;

fn ids(store: &peerlite::RdbStore, device: &str) -> Vec<i64> {
    has_from(store, device)
        .into_iter()
        .filter_map(|r| match r.first() {
            Some(peerlite::Value::Integer(i)) => Some(*i),
            _ => None,
        })
        .collect()
}

#[test]
fn a_stale_relay_of_a_devices_row_does_not_undo_its_delete() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    let b = note_device(dir.path(), "b", &clock);
    let c = note_device(dir.path(), "c", &clock);
    add_notes(&a, "a", 2);
    for peer in [&b, &c] {
        sync_in_memory(peer, &a, SyncMode::Pull, None).unwrap();
    }
    clock.set(T0 + 10);
    a.execute("DELETE FROM note WHERE id = 1", &[]).unwrap();
    sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
    assert_eq!(ids(&b, "a"), [2]);
    clock.set(T0 + 20);
    b.purge_tombstones(Some(Duration::ZERO)).unwrap();
    // c never heard of the delete, and relays a's rows to b.
    let (on_c, _) = sync_in_memory(&c, &b, SyncMode::Push, None).unwrap();
    assert!(on_c.status.is_ok(), "{on_c:?}");
    assert_eq!(
        ids(&b, "a"),
        [2],
        "a's deleted row came back to b through c"
    );
}

#[test]
fn a_first_stream_from_a_device_drops_its_rows_relayed_here_that_it_no_longer_has() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    let c = note_device(dir.path(), "c", &clock);
    let d = note_device(dir.path(), "d", &clock);
    add_notes(&a, "a", 3);
    sync_in_memory(&c, &a, SyncMode::Pull, None).unwrap();
    clock.set(T0 + 10);
    a.execute("DELETE FROM note WHERE id = 1", &[]).unwrap();
    a.purge_tombstones(Some(Duration::ZERO)).unwrap();
    // d knows a's rows only through c, which missed the delete.
    sync_in_memory(&d, &c, SyncMode::Pull, None).unwrap();
    assert_eq!(ids(&d, "a"), [1, 2, 3]);
    let (on_d, _) = sync_in_memory(&d, &a, SyncMode::Pull, None).unwrap();
    assert!(on_d.status.is_ok(), "{on_d:?}");
    assert_eq!(ids(&d, "a"), [2, 3], "a's deleted row stayed on d");
    // And c's stale copy does not bring it back.
    sync_in_memory(&d, &c, SyncMode::Pull, None).unwrap();
    assert_eq!(ids(&d, "a"), [2, 3]);
}

#[test]
fn a_peer_that_only_ever_pushed_is_reset_before_it_brings_back_a_forgotten_delete() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let p = item_device(dir.path(), "p", &clock);
    let q = item_device(dir.path(), "q", &clock);
    add_item(&p, "u1", "p's", 1);
    add_item(&p, "u2", "p's", 2);
    sync_in_memory(&p, &q, SyncMode::Push, None).unwrap();
    clock.set(T0 + 10);
    q.delete(&by_uuid("u1")).unwrap();
    clock.set(T0 + 20);
    q.purge_tombstones(Some(Duration::ZERO)).unwrap();
    clock.set(T0 + 30);
    set_title(&p, "u2", "edited");
    let (on_p, on_q) = sync_in_memory(&p, &q, SyncMode::Push, None).unwrap();
    assert_eq!(on_p.status, SyncStatus::ResetRequired, "{on_p:?}");
    assert_eq!(on_q.status, SyncStatus::ResetRequired, "{on_q:?}");
    assert!(
        items(&q).iter().all(|i| i.uuid != "u1"),
        "q's delete was undone"
    );
}

#[test]
fn a_purge_while_a_peer_streams_in_refuses_the_rest_of_its_stream() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    add_item(&b, "gone", "b's", 0);
    b.delete(&by_uuid("gone")).unwrap();
    for i in 0..40 {
        add_item(&a, &format!("u{i}"), "a's", i);
    }
    clock.set(T0 + 10);
    let mut purged = false;
    let pumped = pump(&a, &b, SyncMode::Push, None, 2, |dir, msg| {
        if !purged && dir == Dir::ToResponder && is_batch(msg) {
            b.purge_tombstones(Some(Duration::ZERO)).unwrap();
            purged = true;
        }
        vec![msg.clone()]
    });
    assert!(purged);
    assert_eq!(
        pumped.responder.status,
        SyncStatus::ResetRequired,
        "{:?}",
        pumped.responder
    );
    assert!(items(&b).len() < 40, "the stream went on past the purge");
}

/// Adversary round 3, finding 2: c held a's rows only through b and had never synced with a;
/// a deleted one and purged the tombstone. c's first pull from a said ok — a's full state has
/// no tombstone left — and c kept the deleted row (and later pushed it back to a). A receiver
/// now names the single-version tables where it holds rows but nothing of the sender; a first
/// stream to it after a purge should be refused with 17040011 (a reset), as a delta from below
/// the purge is. A store holding nothing there (a reset's seed, a new device) takes the full
/// state.
#[test]
fn a_first_pull_into_rows_from_elsewhere_after_a_purge_is_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    let c = item_device(dir.path(), "c", &clock);
    add_item(&a, "u1", "a's", 1);
    add_item(&a, "u2", "a's", 2);
    sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
    sync_in_memory(&c, &b, SyncMode::Pull, None).unwrap();
    clock.set(T0 + 10);
    a.delete(&by_uuid("u1")).unwrap();
    sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
    clock.set(T0 + 20);
    a.purge_tombstones(Some(Duration::ZERO)).unwrap();
    let (on_c, _) = sync_in_memory(&c, &a, SyncMode::Pull, None).unwrap();
    assert_eq!(on_c.status, SyncStatus::ResetRequired, "{on_c:?}");
    // A device that holds nothing of the table takes the whole state.
    let d = item_device(dir.path(), "d", &clock);
    let (on_d, _) = sync_in_memory(&d, &a, SyncMode::Pull, None).unwrap();
    assert!(on_d.status.is_ok(), "{on_d:?}");
    assert_eq!(items(&d).len(), 1);
    // And the reset c needs brings it to a's state.
    let reseed = c.begin_reset("a").unwrap();
    let (pulled, _) = sync_in_memory(reseed.seed(), &a, SyncMode::Pull, None).unwrap();
    assert!(pulled.status.is_ok(), "{pulled:?}");
    reseed
        .finish(peerlite::reset::ResetMode::RecoverUnsynced)
        .unwrap();
    assert!(items(&c).iter().all(|i| i.uuid != "u1"));
    let (on_c, _) = sync_in_memory(&c, &a, SyncMode::Pull, None).unwrap();
    assert!(on_c.status.is_ok(), "{on_c:?}");
}

/// Found by the simulation with purges (seed 61) once a reset's seed took its peer's
/// watermarks of third devices (`relayed-watermarks`): a's insert had reached b in a stream
/// that did not count as acknowledged (here a filtered one); c deleted the row, b heard of it
/// and purged the tombstone. a reset against b: the seed lacked the row and counted c's
/// changes as received through b; the replay brought a's insert back (unacknowledged, it may
/// be unsynced) — and c, whose newer delete still stood, was never asked again. A replayed
/// insert of a row the peer lacks now makes the seed forget what it took of third devices,
/// so their streams come again, deletes included.
#[test]
fn a_replayed_insert_does_not_hide_a_third_devices_delete_behind_a_relayed_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    let c = item_device(dir.path(), "c", &clock);
    add_item(&a, "u1", "a's", 1);
    sync_in_memory(&b, &a, SyncMode::Pull, Some(&by_uuid("u1"))).unwrap();
    sync_in_memory(&c, &b, SyncMode::Pull, None).unwrap();
    clock.set(T0 + 10);
    c.delete(&by_uuid("u1")).unwrap();
    sync_in_memory(&b, &c, SyncMode::Pull, None).unwrap();
    assert!(items(&b).is_empty());
    clock.set(T0 + 20);
    b.purge_tombstones(Some(Duration::ZERO)).unwrap();
    let reseed = a.begin_reset("b").unwrap();
    let (pulled, _) = sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    assert!(pulled.status.is_ok(), "{pulled:?}");
    reseed
        .finish(peerlite::reset::ResetMode::RecoverUnsynced)
        .unwrap();
    let (on_a, _) = sync_in_memory(&a, &c, SyncMode::PushPull, None).unwrap();
    assert!(on_a.status.is_ok(), "{on_a:?}");
    assert!(
        items(&a).iter().all(|i| i.uuid != "u1"),
        "c's delete never reached a: {:?}",
        items(&a)
    );
    assert!(items(&c).iter().all(|i| i.uuid != "u1"));
}

/// Adversary round 4, HIGH-3: c held b's rows (`gone` among them) and missed b's delete; b
/// purged the tombstone. a, reset against b, held b's state, and c's first pull from a — c
/// held rows, but nothing of a's new epoch — took a's knowledge of b as its own: c's
/// watermark of b passed the purge, c's next pull from b said ok, and c kept `gone` for good.
/// Only a store that held nothing of the table before a stream from scratch takes the
/// sender's knowledge of third devices.
#[test]
fn a_store_holding_rows_does_not_take_a_peers_knowledge_of_third_devices() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    let c = item_device(dir.path(), "c", &clock);
    add_item(&b, "gone", "b's", 0);
    add_item(&b, "keep", "b's", 1);
    sync_in_memory(&a, &b, SyncMode::Pull, None).unwrap();
    sync_in_memory(&c, &b, SyncMode::Pull, None).unwrap();
    clock.set(T0 + 10);
    b.delete(&by_uuid("gone")).unwrap();
    sync_in_memory(&a, &b, SyncMode::Pull, None).unwrap();
    clock.set(T0 + 20);
    b.purge_tombstones(Some(Duration::ZERO)).unwrap();
    let reseed = a.begin_reset("b").unwrap();
    let (pulled, _) = sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    assert!(pulled.status.is_ok(), "{pulled:?}");
    reseed
        .finish(peerlite::reset::ResetMode::RecoverUnsynced)
        .unwrap();
    let (on_c, _) = sync_in_memory(&c, &a, SyncMode::Pull, None).unwrap();
    assert!(on_c.status.is_ok(), "{on_c:?}");
    let (on_c, _) = sync_in_memory(&c, &b, SyncMode::Pull, None).unwrap();
    assert_eq!(
        on_c.status,
        SyncStatus::ResetRequired,
        "c's pull from b passed b's purge: {on_c:?}, c holds {:?}",
        items(&c)
    );
}

/// Single version, the same stale relay from a third device (sim seed 90): a deleted x and
/// purged the delete; b, re-seeded from a (a reset, nothing unsynced), holds a's state with
/// no trace of x. c still holds x as a last wrote it, and pushed it to b — which took it:
/// alive on b (and from b on to every device whose tombstone is purged), deleted by the
/// rules. b had heard a itself past x's timestamp: a state only a wrote, stamped no later,
/// is one b has or one a replaced, so a relay of it is ignored.
#[test]
fn a_stale_relay_of_a_single_version_row_does_not_undo_a_purged_delete() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    let c = item_device(dir.path(), "c", &clock);
    add_item(&a, "x", "deleted later", 1);
    for peer in [&b, &c] {
        sync_in_memory(peer, &a, SyncMode::Pull, None).unwrap();
    }
    clock.set(T0 + 10);
    a.delete(&by_uuid("x")).unwrap();
    add_item(&a, "y", "after the delete", 2);
    clock.set(T0 + 20);
    a.purge_tombstones(Some(Duration::ZERO)).unwrap();
    let reseed = b.begin_reset("a").unwrap();
    sync_in_memory(reseed.seed(), &a, SyncMode::Pull, None).unwrap();
    reseed
        .finish(peerlite::reset::ResetMode::RecoverUnsynced)
        .unwrap();
    let uuids =
        |s: &peerlite::RdbStore| -> Vec<String> { items(s).into_iter().map(|i| i.uuid).collect() };
    assert_eq!(uuids(&b), ["y"]);
    let (on_c, _) = sync_in_memory(&c, &b, SyncMode::Push, None).unwrap();
    assert!(on_c.status.is_ok(), "{on_c:?}");
    assert_eq!(uuids(&b), ["y"], "a's deleted row came back to b through c");
}
