//! A database must never number a new change below a number it has already issued: peers
//! whose watermark passed that number would never be sent the change. Two ways the counter
//! fell behind what the database had issued, both found by the simulation with purges
//! (`peerlite sim --purges`), where a device's new writes never reached a peer and every sync
//! said ok:
//!
//! - **reopen after a purge**: the counter resumed from the clock tables' largest number, but
//!   the highest numbers belonged to tombstones a purge had removed (their numbers live on only
//!   as the table's purged sequence, which peers' watermarks pass);
//! - **a client reset**: the seed numbers every row it pulls from the peer, so the installed
//!   database holds numbers far above the running counter of the store it replaces, and the
//!   restore that installs it left the counter where it was.

use std::time::Duration;

use peerlite::reset::ResetMode;
use peerlite::sync::{SyncMode, sync_in_memory};

use crate::common::*;

fn holds(store: &peerlite::RdbStore, uuid: &str) -> bool {
    items(store).iter().any(|i| i.uuid == uuid)
}

#[test]
fn a_reopened_store_numbers_past_its_purged_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    for (i, u) in ["u1", "u2", "u3"].iter().enumerate() {
        add_item(&a, u, "t", i as i64);
    }
    // The deletes carry the highest numbers; the purge forgets them.
    a.delete(&by_uuid("u2")).unwrap();
    a.delete(&by_uuid("u3")).unwrap();
    let (on_a, _) = sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert!(on_a.status.is_ok(), "{on_a:?}");
    clock.set(T0 + 10);
    a.purge_tombstones(Some(Duration::ZERO)).unwrap();
    a.close().unwrap();
    drop(a);

    let a = open_store(dir.path(), "a", &clock);
    add_item(&a, "u4", "after the reopen", 4);
    let (on_a, _) = sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert!(on_a.status.is_ok(), "{on_a:?}");
    assert!(
        holds(&b, "u4"),
        "the write after the reopen never reached b"
    );
}

#[test]
fn a_reset_store_numbers_past_the_rows_its_seed_pulled() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    add_item(&a, "u1", "a's own", 1);
    for i in 0..10 {
        add_item(&b, &format!("b{i}"), "b's", i);
    }
    clock.set(T0 + 10);
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    // b learns the reset store's state, and passes every number it issued.
    let (on_a, _) = sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert!(on_a.status.is_ok(), "{on_a:?}");
    assert!(holds(&b, "u1"));

    clock.set(T0 + 20);
    add_item(&a, "u2", "after the reset", 2);
    let (on_a, _) = sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert!(on_a.status.is_ok(), "{on_a:?}");
    assert!(holds(&b, "u2"), "the write after the reset never reached b");
}
