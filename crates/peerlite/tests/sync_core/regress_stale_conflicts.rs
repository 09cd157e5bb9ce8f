//! Issue 9, item 16: resolving a stale conflict deleted a row that no longer clashed, and the
//! delete spread to every device.
//!
//! The story: alpha holds u1 with code X, beta holds u2 with code X (UNIQUE); a sync makes
//! both record the other's row as a conflict. Then alpha changes u1's code to Y and syncs: u1
//! applies cleanly on beta. The clash is over — but each side still had its record, and
//! resolving it (`KeepEarlier` on both sides, or `TakeRemote` on beta alone) judged the
//! recorded row, not the rows as they are now: beta deleted u2 because the *recorded* u1 held
//! X, and the delete synced everywhere. Resolution must judge the conflict against the current
//! rows: a conflict that no longer clashes is settled by the merge alone, by every resolution
//! on either side, deleting nothing; conflicts are never dropped; and no resolution deletes a
//! row that breaks no constraint. The tests below run the story, then every form of
//! staleness (the local row changed or was deleted, the remote row changed or was deleted)
//! with every resolution on either side.

use std::sync::Arc;

use peerlite::changes::ManualClock;
use peerlite::sync::{Resolution, SyncMode};
use peerlite::{RdbStore, bucket};

use crate::common::*;

fn coded(uuid: &str, code: &str) -> Item {
    item(uuid, Some(&format!("{uuid} title")), Some(1), Some(code))
}

/// Tombstones `store` wrote itself (deletes made on it, by a user or a resolution).
fn own_deletes(store: &RdbStore) -> Vec<peerlite::Value> {
    store
        .changes(Some("item"), 0)
        .unwrap()
        .into_iter()
        .filter(|c| c.tombstone && c.origin == store.device_id())
        .map(|c| c.key)
        .collect()
}

/// alpha (u1, X) and beta (u2, X), each with the other's row recorded as a conflict.
fn recorded_clash(root: &std::path::Path) -> (RdbStore, RdbStore, Arc<ManualClock>) {
    let clock = clock_at(T0);
    let a = item_device(root, "alpha", &clock);
    let b = item_device(root, "beta", &clock);
    add_coded(&a, "u1", "X");
    clock.advance(5);
    add_coded(&b, "u2", "X");
    let (ra, rb) = sync(&a, &b, SyncMode::PushPull);
    assert_eq!((ra.conflicts, rb.conflicts), (1, 1));
    clock.advance(5);
    (a, b, clock)
}

fn resolve_all(store: &RdbStore, resolution: Resolution) {
    for c in store.conflicts().unwrap() {
        store.resolve_conflict(c.id, resolution).unwrap();
    }
    assert!(store.conflicts().unwrap().is_empty());
}

#[test]
fn the_story_keep_earlier_on_both_sides_after_the_clash_was_fixed_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _) = recorded_clash(dir.path());
    set_code(&a, "u1", "Y");
    let (_, on_b) = sync(&a, &b, SyncMode::PushPull);
    assert_eq!(on_b.conflicts, 0, "u1 applies cleanly on beta now");
    assert_eq!(items(&b), vec![coded("u1", "Y"), coded("u2", "X")]);
    resolve_all(&a, Resolution::KeepEarlier);
    resolve_all(&b, Resolution::KeepEarlier);
    both_ways(&a, &b);
    let expected = vec![coded("u1", "Y"), coded("u2", "X")];
    assert_eq!(items(&a), expected, "alpha");
    assert_eq!(items(&b), expected, "beta");
    assert!(own_deletes(&a).is_empty() && own_deletes(&b).is_empty());
}

#[test]
fn the_story_take_remote_on_beta_alone_deletes_nothing_and_alphas_record_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _) = recorded_clash(dir.path());
    set_code(&a, "u1", "Y");
    sync(&a, &b, SyncMode::PushPull);
    resolve_all(&b, Resolution::TakeRemote);
    both_ways(&a, &b);
    assert_eq!(items(&b), vec![coded("u1", "Y"), coded("u2", "X")]);
    assert!(own_deletes(&a).is_empty() && own_deletes(&b).is_empty());
    // alpha never resolved: its record of u2 is still listed, never dropped; settling it
    // brings u2, which no longer clashes with anything.
    assert_eq!(a.conflicts().unwrap().len(), 1);
    assert_eq!(items(&a), vec![coded("u1", "Y")]);
    resolve_all(&a, Resolution::TakeRemote);
    assert_eq!(items(&a), vec![coded("u1", "Y"), coded("u2", "X")]);
    assert!(own_deletes(&a).is_empty());
}

/// How the clash stopped standing before the conflict is resolved on one side.
#[derive(Debug, Clone, Copy)]
enum Fix {
    /// The resolving side changed its own row's code.
    LocalChangedCode,
    /// The resolving side deleted its own row.
    LocalDeleted,
    /// The other side changed its row's code, and that reached the resolving side.
    RemoteChangedCode,
    /// The other side deleted its row, and that reached the resolving side.
    RemoteDeleted,
}

#[test]
fn a_conflict_that_no_longer_clashes_is_settled_without_deleting_anything() {
    let resolutions = [
        Resolution::KeepLocal,
        Resolution::TakeRemote,
        Resolution::KeepEarlier,
    ];
    let fixes = [
        Fix::LocalChangedCode,
        Fix::LocalDeleted,
        Fix::RemoteChangedCode,
        Fix::RemoteDeleted,
    ];
    for fix in fixes {
        for resolution in resolutions {
            for beta_resolves in [false, true] {
                let case = format!("{fix:?}, {resolution:?}, beta resolves: {beta_resolves}");
                let dir = tempfile::tempdir().unwrap();
                let (a, b, clock) = recorded_clash(dir.path());
                let (me, other) = if beta_resolves { (&b, &a) } else { (&a, &b) };
                let (mine, theirs) = if beta_resolves {
                    ("u2", "u1")
                } else {
                    ("u1", "u2")
                };
                let mut expected = vec![coded(mine, "X"), coded(theirs, "X")];
                let mut user_deleted = None;
                match fix {
                    Fix::LocalChangedCode => {
                        set_code(me, mine, "Z");
                        expected[0] = coded(mine, "Z");
                    }
                    Fix::LocalDeleted => {
                        me.delete(&by_uuid(mine)).unwrap();
                        expected.remove(0);
                        user_deleted = Some(mine);
                    }
                    Fix::RemoteChangedCode => {
                        set_code(other, theirs, "Z");
                        expected[1] = coded(theirs, "Z");
                        sync(other, me, SyncMode::Push);
                    }
                    Fix::RemoteDeleted => {
                        other.delete(&by_uuid(theirs)).unwrap();
                        expected.remove(1);
                        user_deleted = Some(theirs);
                        sync(other, me, SyncMode::Push);
                    }
                }
                clock.advance(5);
                resolve_all(me, resolution);
                expected.sort();
                assert_eq!(items(me), expected, "right after resolving: {case}");
                // The other side settles its own record alike; then they agree.
                both_ways(&a, &b);
                resolve_all(other, Resolution::KeepEarlier);
                both_ways(&a, &b);
                assert_eq!(items(&a), expected, "alpha: {case}");
                assert_eq!(items(&b), expected, "beta: {case}");
                for store in [&a, &b] {
                    let deleted = own_deletes(store);
                    let allowed: Vec<peerlite::Value> = user_deleted
                        .filter(|k| (store.device_id() == "beta") == (*k == "u2"))
                        .map(|k| k.into())
                        .into_iter()
                        .collect();
                    assert_eq!(
                        deleted,
                        allowed,
                        "{}: no resolution deletes: {case}",
                        store.device_id()
                    );
                }
            }
        }
    }
}

/// The other side of the principle (it held before the fix too): a clash that still stands
/// is decided, deleting exactly the rows in the way.
#[test]
fn a_clash_that_still_stands_deletes_only_the_row_in_the_way() {
    // The recorded u1 is stale (alpha changed its title since) but still needs code X: the
    // resolution judges the current u1 and deletes u2, which holds X — and nothing else, not
    // the row whose code u1 held before either.
    let dir = tempfile::tempdir().unwrap();
    let (a, b, clock) = recorded_clash(dir.path());
    add_coded(&b, "u3", "W");
    a.update(&bucket! { "title" => "new title" }, &by_uuid("u1"))
        .unwrap();
    sync(&a, &b, SyncMode::Push); // the newer u1 clashes again: recorded too
    assert_eq!(b.conflicts().unwrap().len(), 2);
    clock.advance(5);
    resolve_all(&b, Resolution::KeepEarlier);
    let u1 = item("u1", Some("new title"), Some(1), Some("X"));
    assert_eq!(items(&b), vec![u1.clone(), coded("u3", "W")]);
    assert_eq!(own_deletes(&b), vec![peerlite::Value::from("u2")]);
    both_ways(&a, &b);
    resolve_all(&a, Resolution::KeepEarlier);
    both_ways(&a, &b);
    assert_eq!(items(&a), items(&b));
    assert_eq!(items(&a), vec![u1, coded("u3", "W")]);
}

#[test]
fn a_composite_unique_index_clash_is_judged_on_all_its_columns() {
    // A UNIQUE(title, qty) index: rows that share only the title are not in the way.
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let open = |name: &str| {
        let store = open_store(dir.path(), name, &clock);
        store.execute(CREATE_ITEM, &[]).unwrap();
        store
            .execute(
                "CREATE UNIQUE INDEX item_title_qty ON item(title, qty)",
                &[],
            )
            .unwrap();
        store
            .set_distributed_tables(
                &["item"],
                peerlite::changes::DistributedType::Device,
                &item_config(),
            )
            .unwrap();
        store
    };
    let (a, b) = (open("alpha"), open("beta"));
    add_item(&a, "u1", "same", 1);
    clock.advance(5);
    add_item(&b, "u2", "same", 1);
    add_item(&b, "u3", "same", 2);
    sync(&a, &b, SyncMode::Push);
    assert_eq!(b.conflicts().unwrap().len(), 1);
    resolve_all(&b, Resolution::KeepEarlier);
    assert_eq!(own_deletes(&b), vec![peerlite::Value::from("u2")]);
    let titles: Vec<(String, Option<i64>)> =
        items(&b).into_iter().map(|i| (i.uuid, i.qty)).collect();
    assert_eq!(
        titles,
        vec![("u1".to_owned(), Some(1)), ("u3".to_owned(), Some(2))]
    );
}
