//! Client reset (issue 11): the store is re-seeded from a peer's full state, and its own
//! changes the peer never acknowledged are dropped or replayed with their original
//! timestamps — Realm's recovery rules as the merge decides them, per column: a local insert
//! is kept, a local delete is applied, a remote delete beats an older local edit, a newer
//! remote edit of a column is kept and an older one is overwritten.

use peerlite::reset::{MAX_ATTEMPTS, ResetMode};
use peerlite::sync::{SyncMode, sync_in_memory};

use crate::common::*;

fn item_at(store: &peerlite::RdbStore, uuid: &str) -> Option<Item> {
    items(store).into_iter().find(|i| i.uuid == uuid)
}

fn set_qty(store: &peerlite::RdbStore, uuid: &str, qty: i64) {
    store
        .update(&peerlite::bucket! { "qty" => qty }, &by_uuid(uuid))
        .unwrap();
}

/// a and b share u1..u3; then, apart, each edits.
fn apart() -> (
    tempfile::TempDir,
    std::sync::Arc<peerlite::changes::ManualClock>,
    peerlite::RdbStore,
    peerlite::RdbStore,
) {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    for (i, u) in ["u1", "u2", "u3"].iter().enumerate() {
        add_item(&a, u, "shared", i as i64);
    }
    let (on_a, _) = sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert!(on_a.status.is_ok());
    // Apart: a's edits at +10, b's at +5 (older) and +20 (newer).
    clock.set(T0 + 5);
    set_qty(&b, "u3", 5);
    clock.set(T0 + 10);
    add_item(&a, "u9", "offline insert", 9);
    a.delete(&by_uuid("u1")).unwrap();
    set_title(&a, "u2", "local edit");
    set_title(&a, "u3", "local title");
    set_qty(&a, "u3", 9);
    clock.set(T0 + 20);
    b.delete(&by_uuid("u2")).unwrap();
    set_title(&b, "u3", "remote title");
    clock.set(T0 + 30);
    (dir, clock, a, b)
}

#[test]
fn recover_keeps_realms_rules_per_column() {
    let (_dir, _clock, a, b) = apart();
    let epoch = a.epoch().unwrap();
    let reseed = a.begin_reset("b").unwrap();
    assert!(a.reset_pending());
    let backup = reseed.backup().to_path_buf();
    let (on_seed, _) = sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    assert!(on_seed.status.is_ok(), "{on_seed:?}");
    let report = reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert_eq!(report.mode, ResetMode::RecoverUnsynced);
    assert!(report.recovered >= 3, "{report:?}");
    assert!(backup.exists(), "the pre-reset backup is kept");
    assert!(!a.reset_pending());
    assert_ne!(a.epoch().unwrap(), epoch, "a reset store is a new epoch");

    // A local insert is kept.
    assert_eq!(
        item_at(&a, "u9").unwrap().title.as_deref(),
        Some("offline insert")
    );
    // A local delete is applied.
    assert!(item_at(&a, "u1").is_none());
    // A remote delete beats an older local edit.
    assert!(item_at(&a, "u2").is_none());
    // Per column: the newer remote title is kept, the older remote qty is overwritten.
    let u3 = item_at(&a, "u3").unwrap();
    assert_eq!(
        (u3.title.as_deref(), u3.qty),
        (Some("remote title"), Some(9))
    );

    // And the store syncs on: b converges to the same rows.
    let (on_a, _) = sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert!(on_a.status.is_ok(), "{on_a:?}");
    assert_eq!(items(&a), items(&b));
}

#[test]
fn discard_leaves_exactly_the_peers_state() {
    let (_dir, _clock, a, b) = apart();
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    let report = reseed.finish(ResetMode::DiscardUnsynced).unwrap();
    assert!(report.discarded >= 4, "{report:?}");
    assert_eq!(report.recovered, 0);
    assert_eq!(items(&a), items(&b));
    assert!(item_at(&a, "u9").is_none());
}

#[test]
fn recover_or_discard_recovers_when_it_can() {
    let (_dir, _clock, a, b) = apart();
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    let report = reseed.finish(ResetMode::RecoverOrDiscard).unwrap();
    assert_eq!(report.mode, ResetMode::RecoverUnsynced);
    assert!(item_at(&a, "u9").is_some());
}

#[test]
fn acknowledged_changes_are_not_replayed_and_cannot_resurrect_rows() {
    // a's u1 reached b; b deleted it and forgot the delete (tombstone purged). Replaying
    // every change of a would bring u1 back; only what b never acknowledged is replayed.
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    add_item(&a, "u1", "acked", 1);
    sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    clock.set(T0 + 10);
    b.delete(&by_uuid("u1")).unwrap();
    b.purge_tombstones(Some(std::time::Duration::ZERO)).unwrap();
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    let report = reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert_eq!(report.recovered, 0, "{report:?}");
    assert!(item_at(&a, "u1").is_none(), "the delete stands");
}

#[test]
fn an_unfinished_reset_leaves_the_store_as_it_was_and_repeated_failures_stop() {
    let (_dir, _clock, a, b) = apart();
    let before = items(&a);
    for attempt in 1..=MAX_ATTEMPTS {
        let reseed = a.begin_reset("b").unwrap();
        sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
        // Abandoned before finishing (a crash, a failed sync): nothing changed.
        drop(reseed);
        assert_eq!(items(&a), before, "attempt {attempt}");
        assert!(a.reset_pending());
    }
    let err = a.begin_reset("b").unwrap_err();
    assert_eq!(err.code(), 17040014);
    assert!(err.hint().contains("peerlite restore"), "{}", err.hint());
    a.abandon_reset().unwrap();
    assert!(!a.reset_pending());
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert!(!a.reset_pending());
}

#[test]
fn rows_another_device_wrote_are_not_brought_back_by_the_replay() {
    // b holds a's u1 (received, never acknowledged back); a deletes u1 and forgets the
    // delete. b's reset must not replay a's row: only b's own changes are b's to recover.
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    add_item(&a, "u1", "a's row", 1);
    sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
    clock.set(T0 + 10);
    add_item(&b, "u9", "b's offline row", 9);
    a.delete(&by_uuid("u1")).unwrap();
    a.purge_tombstones(Some(std::time::Duration::ZERO)).unwrap();
    let reseed = b.begin_reset("a").unwrap();
    assert_eq!(
        reseed.unsynced_changes().unwrap().len(),
        1,
        "only u9 is b's"
    );
    sync_in_memory(reseed.seed(), &a, SyncMode::Pull, None).unwrap();
    reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert!(item_at(&b, "u1").is_none());
    assert!(item_at(&b, "u9").is_some());
    // The full pull passed the purge: the next pull is an ordinary delta.
    let (on_b, _) = sync_in_memory(&b, &a, SyncMode::Pull, None).unwrap();
    assert!(on_b.status.is_ok(), "{on_b:?}");
}

#[test]
fn a_collaboration_table_gets_its_own_rows_back_from_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    let b = note_device(dir.path(), "b", &clock);
    a.execute("INSERT INTO note(id, text, n) VALUES (1, 'synced', 0)", &[])
        .unwrap();
    b.execute("INSERT INTO note(id, text, n) VALUES (7, 'b''s', 0)", &[])
        .unwrap();
    sync_in_memory(&a, &b, SyncMode::PushPull, None).unwrap();
    a.execute(
        "INSERT INTO note(id, text, n) VALUES (2, 'offline', 0)",
        &[],
    )
    .unwrap();
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert_eq!(count(&a, "note"), 2, "{:?}", rows(&a, "SELECT * FROM note"));
    assert_eq!(count(&a, &device_table(&a, "b")), 1);
}

#[test]
fn a_store_put_back_from_a_backup_gets_its_later_rows_back_from_peers() {
    // Repair from peers (issue 11): what this device wrote after the backup it was rebuilt
    // from, and synced, comes back from the peer that holds it — in both table modes.
    for collaboration in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock_at(T0);
        let make = if collaboration {
            note_device
        } else {
            item_device
        };
        let a = make(dir.path(), "a", &clock);
        let b = make(dir.path(), "b", &clock);
        let write = |s: &peerlite::RdbStore, i: i64| {
            if collaboration {
                s.execute(
                    "INSERT INTO note(id, text, n) VALUES (?1, 'x', 0)",
                    &[i.into()],
                )
                .unwrap();
            } else {
                add_item(s, &format!("u{i}"), "x", i);
            }
        };
        let table = if collaboration { "note" } else { "item" };
        write(&a, 1);
        sync_in_memory(&a, &b, SyncMode::PushPull, None).unwrap();
        a.backup("before").unwrap();
        clock.set(T0 + 10);
        write(&a, 2);
        sync_in_memory(&a, &b, SyncMode::PushPull, None).unwrap();
        a.restore("before").unwrap();
        assert_eq!(count(&a, table), 1, "the backup's state");
        let (on_a, _) = sync_in_memory(&a, &b, SyncMode::PushPull, None).unwrap();
        assert!(on_a.status.is_ok(), "{on_a:?}");
        assert_eq!(
            count(&a, table),
            2,
            "collaboration {collaboration}: row 2 is back"
        );
        // And nothing is duplicated on b.
        let on_b = if collaboration {
            count(&b, &device_table(&b, "a"))
        } else {
            count(&b, "item")
        };
        assert_eq!(on_b, 2, "collaboration {collaboration}");
    }
}

#[test]
fn an_insert_another_peer_acknowledged_and_deleted_is_not_brought_back() {
    // w's u1 reached y (acknowledged there); y deleted it; x learned the delete from y and
    // forgot it (purge). w, reset against x, must not replay its insert: it left w when y
    // acknowledged it, and its fate — deleted — is the peers' to tell.
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let w = item_device(dir.path(), "w", &clock);
    let x = item_device(dir.path(), "x", &clock);
    let y = item_device(dir.path(), "y", &clock);
    add_item(&w, "u1", "w's", 1);
    sync_in_memory(&w, &y, SyncMode::Push, None).unwrap();
    clock.set(T0 + 10);
    y.delete(&by_uuid("u1")).unwrap();
    sync_in_memory(&y, &x, SyncMode::Push, None).unwrap();
    x.purge_tombstones(Some(std::time::Duration::ZERO)).unwrap();
    let reseed = w.begin_reset("x").unwrap();
    assert!(reseed.unsynced_changes().unwrap().is_empty());
    sync_in_memory(reseed.seed(), &x, SyncMode::Pull, None).unwrap();
    reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert!(item_at(&w, "u1").is_none());
}

#[test]
fn a_second_reset_while_one_runs_is_refused() {
    // Two resets of one store at once shared one seed, and one installed a half-pulled copy.
    let (_dir, _clock, a, b) = apart();
    let first = a.begin_reset("b").unwrap();
    let err = a.begin_reset("b").unwrap_err();
    assert_eq!(err.code(), 17040015);
    sync_in_memory(first.seed(), &b, SyncMode::Pull, None).unwrap();
    first.finish(ResetMode::RecoverUnsynced).unwrap();
    // Once it ended, the next one may run.
    let again = a.begin_reset("b").unwrap();
    drop(again);
}

/// Adversary round 4, MEDIUM-2: `peerlite restore` while a reset of the store ran printed
/// `restored` and exited 0, then the reset installed its seed over the restored data: the
/// restore was silently undone. A restore while a reset runs is refused like a second reset
/// (17040015, nothing changed); once the reset ended, it runs.
#[test]
fn a_restore_while_a_reset_runs_is_refused() {
    let (_dir, _clock, a, b) = apart();
    a.backup("mine").unwrap();
    add_item(&a, "after-backup", "kept by the refused restore", 1);
    let reseed = a.begin_reset("b").unwrap();
    let err = a.restore("mine").unwrap_err();
    assert_eq!(err.code(), 17040015, "{err}");
    assert!(
        item_at(&a, "after-backup").is_some(),
        "the refused restore changed nothing"
    );
    // A store opened apart (another process would do the same) is refused too.
    let other = peerlite::RdbStore::open(a.config().clone()).unwrap();
    assert_eq!(other.restore("mine").unwrap_err().code(), 17040015);
    drop(other);
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert!(
        item_at(&a, "after-backup").is_some(),
        "replayed by the reset"
    );
    // Once the reset ended, the restore runs: what it restores stays.
    a.restore("mine").unwrap();
    assert!(item_at(&a, "after-backup").is_none());
    assert!(item_at(&a, "u9").is_some());
}

#[test]
fn a_second_reset_against_another_peer_does_not_take_back_what_the_first_pulled() {
    // a inserted u1, everyone had it; a was reset against b (its rows came back from b and
    // looked unacknowledged under a's new epoch). c then deleted u1 and forgot the delete; a
    // reset against c replayed u1 as its own unsynced insert and brought it back.
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    let c = item_device(dir.path(), "c", &clock);
    add_item(&a, "u1", "a's", 1);
    for peer in [&b, &c] {
        sync_in_memory(&a, peer, SyncMode::PushPull, None).unwrap();
    }
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert!(item_at(&a, "u1").is_some());
    clock.set(T0 + 10);
    c.delete(&by_uuid("u1")).unwrap();
    c.purge_tombstones(Some(std::time::Duration::ZERO)).unwrap();
    let reseed = a.begin_reset("c").unwrap();
    assert!(
        reseed.unsynced_changes().unwrap().is_empty(),
        "nothing of a's is unsynced"
    );
    sync_in_memory(reseed.seed(), &c, SyncMode::Pull, None).unwrap();
    reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert!(item_at(&a, "u1").is_none(), "c's delete stands");
}

/// Adversary round 2, finding 3: a's u3 reached b (acknowledged); a edited it offline; b
/// deleted it later and purged the tombstone. The replay took the edit for an unsynced row of
/// a's and inserted it again: an acknowledged insert has left the device, so a row the peer
/// no longer has only gets a's edit when it still exists — it does not.
#[test]
fn an_edited_row_the_peer_deleted_later_stays_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    add_item(&a, "u1", "kept", 1);
    add_item(&a, "u3", "to be deleted", 3);
    sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    clock.set(T0 + 10);
    set_title(&a, "u3", "a's edit");
    add_item(&a, "u4", "offline insert", 4);
    clock.set(T0 + 20);
    b.delete(&by_uuid("u3")).unwrap();
    b.purge_tombstones(Some(std::time::Duration::ZERO)).unwrap();
    clock.set(T0 + 30);
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    let report = reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert!(
        item_at(&a, "u3").is_none(),
        "b's later delete stands: {report:?}"
    );
    assert!(
        item_at(&a, "u4").is_some(),
        "the offline insert is recovered"
    );
    assert!(item_at(&a, "u1").is_some());
}

/// Adversary round 2, finding 17: a change of a's own that the replay could not apply (a row
/// of b's held its UNIQUE code) was recorded with a's own id as its device, and the
/// resolutions read it as a remote change: `--keep remote` — meant as "keep the other device's
/// row" — deleted b's row and kept a's, and the delete reached b. For a replayed change the
/// recorded row is the local one: `KeepLocal` keeps a's change, `TakeRemote` b's row.
#[test]
fn a_replayed_change_that_clashes_resolves_with_local_and_remote_as_meant() {
    for (resolution, survivor) in [
        (peerlite::sync::Resolution::TakeRemote, "b-coupon"),
        (peerlite::sync::Resolution::KeepLocal, "a-coupon"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock_at(T0);
        let a = item_device(dir.path(), "a", &clock);
        let b = item_device(dir.path(), "b", &clock);
        add_item(&a, "u1", "shared", 1);
        both_ways(&a, &b);
        clock.set(T0 + 10);
        add_coded(&a, "a-coupon", "SAVE10");
        add_coded(&b, "b-coupon", "SAVE10");
        b.delete(&by_uuid("u1")).unwrap();
        b.purge_tombstones(Some(std::time::Duration::ZERO)).unwrap();
        clock.set(T0 + 20);
        let reseed = a.begin_reset("b").unwrap();
        let (pulled, _) = sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
        assert!(pulled.status.is_ok(), "{pulled:?}");
        let report = reseed.finish(ResetMode::RecoverUnsynced).unwrap();
        assert_eq!(report.conflicts, 1, "{report:?}");
        let conflicts = a.conflicts().unwrap();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].device, "a", "recorded as a's own change");
        a.resolve_conflict(conflicts[0].id, resolution).unwrap();
        both_ways(&a, &b);
        for store in [&a, &b] {
            let coupons: Vec<String> = items(store)
                .into_iter()
                .filter(|i| i.code.as_deref() == Some("SAVE10"))
                .map(|i| i.uuid)
                .collect();
            assert_eq!(coupons, [survivor], "{resolution:?}");
        }
    }
}

/// Records what the callbacks saw; in manual mode re-applies one unsynced insert by hand.
#[derive(Default)]
struct Hooks {
    calls: Vec<&'static str>,
    unsynced: Vec<peerlite::reset::UnsyncedChange>,
    refuse_before: bool,
}

impl peerlite::reset::ResetCallbacks for Hooks {
    fn before(
        &mut self,
        store: &peerlite::RdbStore,
        backup: &std::path::Path,
    ) -> peerlite::Result<()> {
        self.calls.push("before");
        assert!(backup.exists());
        assert!(
            item_at(store, "u9").is_some(),
            "the store is untouched before"
        );
        if self.refuse_before {
            return Err(peerlite::Error::Cancelled { what: "the reset" });
        }
        Ok(())
    }

    fn manual(
        &mut self,
        seed: &peerlite::RdbStore,
        _backup: &std::path::Path,
        unsynced: &[peerlite::reset::UnsyncedChange],
    ) -> peerlite::Result<()> {
        self.calls.push("manual");
        self.unsynced = unsynced.to_vec();
        add_item(seed, "u9", "re-applied by hand", 9);
        Ok(())
    }

    fn after(&mut self, store: &peerlite::RdbStore, report: &peerlite::reset::ResetReport) {
        self.calls.push("after");
        assert_eq!(report.mode, ResetMode::Manual);
        assert!(item_at(store, "u9").is_some());
    }
}

/// Manual mode (issue 11): the callbacks run in order — before (the store untouched), manual
/// (the seed, the backup and the unsynced changes: an insert with its values, an update with
/// the columns it wrote, a delete), after — and what the manual callback writes in the seed is
/// the store's after the reset, and syncs. A `before` that fails leaves the store as it was.
#[test]
fn manual_mode_hands_the_unsynced_changes_to_its_callbacks() {
    let (_dir, _clock, a, b) = apart();
    let before = items(&a);
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    let mut refusing = Hooks {
        refuse_before: true,
        ..Hooks::default()
    };
    assert!(
        reseed
            .finish_with(ResetMode::Manual, &mut refusing)
            .is_err()
    );
    assert_eq!(refusing.calls, ["before"]);
    assert_eq!(items(&a), before, "a refused reset changes nothing");

    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    let mut hooks = Hooks::default();
    let report = reseed.finish_with(ResetMode::Manual, &mut hooks).unwrap();
    assert_eq!(hooks.calls, ["before", "manual", "after"]);
    assert_eq!(report.unsynced, hooks.unsynced);
    let by_key = |k: &str| {
        hooks
            .unsynced
            .iter()
            .find(|u| u.change.key == peerlite::Value::from(k))
            .unwrap_or_else(|| panic!("{k} not listed: {:?}", hooks.unsynced))
    };
    let insert = by_key("u9");
    assert!(!insert.change.tombstone);
    assert!(
        insert
            .values
            .contains(&("title".to_owned(), "offline insert".into()))
    );
    assert!(by_key("u1").change.tombstone, "the local delete");
    assert!(by_key("u1").values.is_empty());
    let edit = by_key("u3");
    assert!(
        edit.change
            .columns
            .iter()
            .any(|(c, _, d)| c == "title" && d == "a")
    );
    assert_eq!(
        item_at(&a, "u9").unwrap().title.as_deref(),
        Some("re-applied by hand")
    );
    // What the callback wrote is a's own change: it reaches b.
    sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert_eq!(
        item_at(&b, "u9").unwrap().title.as_deref(),
        Some("re-applied by hand")
    );
}

/// Found by the simulation with purges (seed 9): a deleted b's u1 and pushed the delete to c,
/// which acknowledged it and later purged it. Reset against b (which never heard of the
/// delete), a replayed only changes no peer had acknowledged — the delete was not among them
/// — and b's state brought u1 back, to every device. A reset replays this device's own
/// deletes and its edits of rows the seed holds whether or not a peer acknowledged them (the
/// merge decides by their timestamps); only inserts of rows the seed lacks must be
/// unacknowledged.
#[test]
fn a_delete_another_peer_acknowledged_is_replayed_on_a_peer_that_missed_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    let c = item_device(dir.path(), "c", &clock);
    add_item(&b, "u1", "b's", 1);
    add_item(&b, "u2", "b's", 2);
    both_ways(&a, &b);
    both_ways(&a, &c);
    clock.set(T0 + 10);
    a.delete(&by_uuid("u1")).unwrap();
    set_title(&a, "u2", "a's edit");
    sync_in_memory(&a, &c, SyncMode::Push, None).unwrap();
    c.purge_tombstones(Some(std::time::Duration::ZERO)).unwrap();
    clock.set(T0 + 20);
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert!(item_at(&a, "u1").is_none(), "a's delete stands");
    assert_eq!(
        item_at(&a, "u2").unwrap().title.as_deref(),
        Some("a's edit")
    );
}

/// Adversary round 3, finding 1 (and round 2, 13): a write another process committed while a
/// reset ran — after the reset read the store's changes, before the seed replaced the store —
/// was lost although it had succeeded. The restore that installs the seed keeps the replaced
/// data (`pre-restore`); the commits numbered past what the reset read are replayed from it.
/// (The manual callback runs in exactly that window; it writes to the live store here.)
#[test]
fn a_write_committed_while_the_reset_runs_survives_it() {
    struct WritesMeanwhile(peerlite::RdbStore);
    impl peerlite::reset::ResetCallbacks for WritesMeanwhile {
        fn manual(
            &mut self,
            _seed: &peerlite::RdbStore,
            _backup: &std::path::Path,
            _unsynced: &[peerlite::reset::UnsyncedChange],
        ) -> peerlite::Result<()> {
            add_item(&self.0, "late", "written while the reset ran", 7);
            Ok(())
        }
    }
    let (_dir, _clock, a, b) = apart();
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    let mut hooks = WritesMeanwhile(a.clone());
    reseed.finish_with(ResetMode::Manual, &mut hooks).unwrap();
    assert_eq!(
        item_at(&a, "late").and_then(|i| i.title),
        Some("written while the reset ran".to_owned())
    );
    // It syncs as any write of a's.
    sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert!(item_at(&b, "late").is_some());
}

/// Adversary round 3, finding 5: every reset left two whole copies of the store in its backup
/// folder — its `pre-reset` backup and the install's `pre-restore` copy — and nothing pruned
/// them (52 files after 25 resets). The install's copy goes once its late commits are
/// replayed, and only the newest `pre-reset` backups stay, the one each report names among
/// them.
#[test]
fn resets_keep_only_their_newest_copies() {
    let (_dir, clock, a, b) = apart();
    let mut last = None;
    for i in 0..5u64 {
        clock.set(T0 + 100 + i * 10);
        let reseed = a.begin_reset("b").unwrap();
        sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
        last = Some(reseed.finish(ResetMode::RecoverUnsynced).unwrap().backup);
    }
    let names: Vec<String> = a.backups().unwrap().into_iter().map(|b| b.name).collect();
    let resets = names.iter().filter(|n| n.starts_with("pre-reset-")).count();
    assert!(resets <= peerlite::reset::KEPT_RESET_BACKUPS, "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("pre-restore")),
        "{names:?}"
    );
    assert!(last.unwrap().exists(), "the report's backup is kept");
}

/// Adversary round 3, finding 3: a pushed its rows to c only, then reset against b, which
/// never had them. They are not replayed (a peer acknowledged them, and b's state cannot tell
/// "deleted" from "never had"), so they left a — and the report said nothing. It counts them
/// now; c gives them back at the next sync with it.
#[test]
fn own_rows_only_another_peer_holds_are_reported_and_come_back_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    let c = item_device(dir.path(), "c", &clock);
    for i in 1..=5 {
        add_item(&a, &format!("r{i}"), "to c", i);
    }
    sync_in_memory(&a, &c, SyncMode::Push, None).unwrap();
    clock.set(T0 + 10);
    add_item(&a, "r6", "unsynced", 6);
    let reseed = a.begin_reset("b").unwrap();
    sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
    let report = reseed.finish(ResetMode::RecoverUnsynced).unwrap();
    assert_eq!(report.left_to_peers, 5, "{report:?}");
    assert!(item_at(&a, "r6").is_some());
    sync_in_memory(&a, &c, SyncMode::Pull, None).unwrap();
    assert_eq!(items(&a).len(), 6, "c gives a's rows back");
}
