//! A device put back from a backup (a repair, or a restore) holds the backup's rows under a
//! new epoch, so its next push sends them all — rows deleted since the backup among them. A
//! peer that still keeps those deletes' tombstones merges them away; one that purged the
//! tombstones took the rows back, and handed them to everyone (found by the end-to-end test
//! `node_cli::repair_from_peers`, with `peerlite repair` and real nodes). The receiver's purge
//! check had taken what the device acknowledged before it was put back (the receiver's ledger)
//! for what it knows now; a push did not even say what it holds. Now each side states what it
//! holds of the other in every session (a `Hello`'s `pull_from`, a `Welcome`'s `push_from`),
//! and that statement wins over the ledger: the receiver refuses the device (17040011) until
//! a client reset has re-seeded it — whichever side dials, in both table modes. And that
//! reset must not replay the backup's rows as unsynced inserts: the put-back database keeps
//! the stamp of what peers acknowledged of its own inserts (it was dropped with the old
//! epoch, and the reset brought the deleted row back itself).
//!
//! A backup that holds nothing received from the peer (the device only pushed before it)
//! states no watermark; the peer fell back on its ledger of what the device acknowledged —
//! acknowledged by the database that was replaced — and took the backup's deleted rows back
//! on the next push (adversary round 4, HIGH-4). In a single-version table an acknowledgement
//! now vouches only for the epoch the peer has received from the device.
//!
//! Not covered: such a backup whose device pulls the peer's full state first — the peer
//! cannot tell its extra rows from new ones.

use std::time::Duration;

use peerlite::reset::ResetMode;
use peerlite::sync::{SyncMode, SyncStatus, sync_in_memory};
use peerlite::{RdbStore, StoreConfig};

use crate::common::*;

/// How the device is put back.
#[derive(Debug, Clone, Copy)]
enum PutBack {
    /// `restore("nightly")`.
    Restore,
    /// The file damaged, and opened with `allow_rebuild` (repaired from the newest backup).
    Repair,
}

/// The keys of this device's rows as `peer` holds them.
/// (In a single-version table that is every row, b's own `b1` too.)
fn held(peer: &RdbStore, of: &str, collaboration: bool) -> Vec<String> {
    let sql = if collaboration {
        format!(
            "SELECT CAST(id AS TEXT) FROM {} ORDER BY id",
            peerlite_testkit::quote(&device_table(peer, of))
        )
    } else {
        "SELECT uuid FROM item ORDER BY uuid".to_owned()
    };
    rows(peer, &sql)
        .into_iter()
        .map(|r| match &r[0] {
            peerlite::Value::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn own(store: &RdbStore, collaboration: bool) -> Vec<String> {
    let sql = if collaboration {
        "SELECT CAST(id AS TEXT) FROM note ORDER BY id"
    } else {
        "SELECT uuid FROM item ORDER BY uuid"
    };
    rows(store, sql)
        .into_iter()
        .map(|r| match &r[0] {
            peerlite::Value::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn put_back(
    a: RdbStore,
    how: PutBack,
    clock: &std::sync::Arc<peerlite::changes::ManualClock>,
) -> RdbStore {
    match how {
        PutBack::Restore => {
            a.restore("nightly").unwrap();
            a
        }
        PutBack::Repair => {
            let path = a.path().to_path_buf();
            a.close().unwrap();
            drop(a);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[..100].fill(0xA5);
            std::fs::write(&path, bytes).unwrap();
            let a = RdbStore::open(
                StoreConfig::new(&path)
                    .device_id("a")
                    .clock(clock.clone())
                    .allow_rebuild(true),
            )
            .unwrap();
            assert_eq!(a.rebuilt(), peerlite::RebuiltType::Repaired);
            a
        }
    }
}

#[test]
fn a_device_put_back_from_a_backup_may_not_bring_back_what_its_peer_deleted_and_purged() {
    for collaboration in [false, true] {
        for how in [PutBack::Restore, PutBack::Repair] {
            for b_dials in [false, true] {
                let what = format!("collaboration {collaboration}, {how:?}, b dials {b_dials}");
                let dir = tempfile::tempdir().unwrap();
                let clock = clock_at(T0);
                let (a, b) = if collaboration {
                    (
                        note_device(dir.path(), "a", &clock),
                        note_device(dir.path(), "b", &clock),
                    )
                } else {
                    (
                        item_device(dir.path(), "a", &clock),
                        item_device(dir.path(), "b", &clock),
                    )
                };
                for i in 1..=3i64 {
                    if collaboration {
                        a.execute(
                            "INSERT INTO note(id, text, n) VALUES (?1, 'x', 0)",
                            &[i.into()],
                        )
                        .unwrap();
                    } else {
                        add_item(&a, &i.to_string(), "x", i);
                    }
                }
                // b has a row of its own, so a's backup records what it holds of b.
                if collaboration {
                    b.execute("INSERT INTO note(id, text, n) VALUES (100, 'b', 0)", &[])
                        .unwrap();
                } else {
                    add_item(&b, "b1", "b's", 1);
                }
                sync_in_memory(&a, &b, SyncMode::PushPull, None).unwrap();
                a.backup("nightly").unwrap();
                clock.set(T0 + 10);
                if collaboration {
                    a.execute("DELETE FROM note WHERE id = 2", &[]).unwrap();
                } else {
                    a.delete(&by_uuid("2")).unwrap();
                }
                // As `peerlite sync --push`, then `--pull`: a acknowledges all of b's
                // changes, its own delete among them.
                sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
                sync_in_memory(&a, &b, SyncMode::Pull, None).unwrap();
                let after_delete = if collaboration {
                    vec!["1", "3"]
                } else {
                    vec!["1", "3", "b1"]
                };
                assert_eq!(held(&b, "a", collaboration), after_delete, "{what}");
                b.purge_tombstones(Some(Duration::ZERO)).unwrap();

                let a = put_back(a, how, &clock);
                let at_backup = if collaboration {
                    vec!["1", "2", "3"]
                } else {
                    vec!["1", "2", "3", "b1"]
                };
                assert_eq!(own(&a, collaboration), at_backup, "{what}: the backup");
                let (on_a, on_b) = if b_dials {
                    let (on_b, on_a) = sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
                    (on_a, on_b)
                } else {
                    sync_in_memory(&a, &b, SyncMode::Push, None).unwrap()
                };
                assert_eq!(on_b.status, SyncStatus::ResetRequired, "{what}: {on_b:?}");
                assert_eq!(on_a.status, SyncStatus::ResetRequired, "{what}: {on_a:?}");
                assert_eq!(
                    held(&b, "a", collaboration),
                    after_delete,
                    "{what}: the purged delete stands on b"
                );

                // A client reset re-seeds a from b; then both agree, the row deleted.
                let reseed = a.begin_reset("b").unwrap();
                sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
                reseed.finish(ResetMode::RecoverUnsynced).unwrap();
                let (on_a, _) = sync_in_memory(&a, &b, SyncMode::PushPull, None).unwrap();
                assert!(on_a.status.is_ok(), "{what}: {on_a:?}");
                assert_eq!(own(&a, collaboration), after_delete, "{what}");
                assert_eq!(held(&b, "a", collaboration), after_delete, "{what}");
            }
        }
    }
}

#[test]
fn a_device_put_back_that_never_heard_of_its_peer_may_not_push_back_what_it_purged() {
    for how in [PutBack::Restore, PutBack::Repair] {
        for b_dials in [false, true] {
            let what = format!("{how:?}, b dials {b_dials}");
            let dir = tempfile::tempdir().unwrap();
            let clock = clock_at(T0);
            let a = item_device(dir.path(), "a", &clock);
            let b = item_device(dir.path(), "b", &clock);
            add_item(&a, "k0", "to be deleted", 0);
            add_item(&a, "k1", "kept", 1);
            // a only pushes: its backup holds nothing received from b.
            sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
            a.backup("nightly").unwrap();
            clock.set(T0 + 10);
            a.delete(&by_uuid("k0")).unwrap();
            sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
            sync_in_memory(&a, &b, SyncMode::Pull, None).unwrap();
            b.purge_tombstones(Some(Duration::ZERO)).unwrap();
            let a = put_back(a, how, &clock);
            assert_eq!(own(&a, false), ["k0", "k1"], "{what}: the backup");
            let (on_a, on_b) = if b_dials {
                let (on_b, on_a) = sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
                (on_a, on_b)
            } else {
                sync_in_memory(&a, &b, SyncMode::Push, None).unwrap()
            };
            assert_eq!(on_b.status, SyncStatus::ResetRequired, "{what}: {on_b:?}");
            assert_eq!(on_a.status, SyncStatus::ResetRequired, "{what}: {on_a:?}");
            assert_eq!(
                held(&b, "a", false),
                ["k1"],
                "{what}: the purged delete stands on b"
            );
        }
    }
}
