//! The hybrid logical clock: on its own, and as the stores use it (persisted across restarts,
//! moved by what arrives from peers, clamped against peers far in the future).

use std::collections::HashSet;
use std::sync::Arc;

use peerlite::bucket;
use peerlite::changes::hlc::physical_ms;
use peerlite::changes::{Hlc, MAX_DRIFT_MS, ManualClock};
use peerlite::sync::SyncMode;

use crate::common::*;

fn ts(ms: u64) -> u64 {
    ms << 16
}

#[test]
fn ticks_are_strictly_increasing_within_one_millisecond() {
    let clock = clock_at(T0);
    let hlc = Hlc::new(clock.clone(), 0);
    let first = hlc.tick();
    assert_eq!(
        first,
        ts(T0),
        "the first tick is the wall clock with counter 0"
    );
    let mut last = first;
    for _ in 0..1000 {
        let t = hlc.tick();
        assert!(t > last);
        last = t;
    }
    assert_eq!(physical_ms(last), T0, "1000 ticks fit in the counter");
    assert_eq!(last - first, 1000);
    assert_eq!(hlc.high_water(), last);
}

#[test]
fn the_wall_clock_moving_on_resets_the_counter() {
    let clock = clock_at(T0);
    let hlc = Hlc::new(clock.clone(), 0);
    hlc.tick();
    hlc.tick();
    clock.advance(5);
    assert_eq!(hlc.tick(), ts(T0 + 5));
}

#[test]
fn counter_overflow_stays_monotonic() {
    let clock = clock_at(T0);
    let hlc = Hlc::new(clock.clone(), 0);
    let mut last = 0;
    for _ in 0..70_000 {
        let t = hlc.tick();
        assert!(t > last);
        last = t;
    }
    assert_eq!(
        physical_ms(last),
        T0 + 1,
        "past 65536 ticks in one ms the clock runs 1 ms ahead"
    );
    clock.advance(10);
    assert_eq!(hlc.tick(), ts(T0 + 10));
}

#[test]
fn stepping_the_wall_clock_back_never_reorders() {
    let clock = clock_at(T0);
    let hlc = Hlc::new(clock.clone(), 0);
    let a = hlc.tick();
    clock.set(T0 - 60 * 60 * 1000); // an hour back (NTP correction, manual change)
    let b = hlc.tick();
    let c = hlc.tick();
    assert!(b > a && c > b);
    assert_eq!(
        physical_ms(c),
        T0,
        "the clock holds until the wall clock catches up"
    );
    clock.set(T0 + 1);
    assert_eq!(hlc.tick(), ts(T0 + 1));
}

#[test]
fn a_new_clock_continues_after_its_high_water_mark() {
    let clock = clock_at(T0);
    let high = ts(T0 + 1_000) + 7;
    let hlc = Hlc::new(clock.clone(), high);
    assert_eq!(hlc.high_water(), high);
    assert_eq!(hlc.tick(), high + 1);
}

#[test]
fn receive_moves_past_a_remote_timestamp() {
    let clock = clock_at(T0);
    let hlc = Hlc::new(clock.clone(), 0);
    let remote = ts(T0 + 2_000) + 3; // a peer 2 s ahead
    hlc.receive(remote);
    assert_eq!(hlc.high_water(), remote);
    let t = hlc.tick();
    assert!(t > remote);
    assert_eq!(t, remote + 1);
}

#[test]
fn receive_of_an_older_timestamp_changes_nothing() {
    let clock = clock_at(T0);
    let hlc = Hlc::new(clock.clone(), 0);
    let a = hlc.tick();
    hlc.receive(ts(T0 - 10_000));
    assert_eq!(hlc.high_water(), a);
    assert_eq!(hlc.tick(), a + 1);
}

#[test]
fn far_future_remote_timestamps_are_clamped_to_max_drift() {
    let clock = clock_at(T0);
    let hlc = Hlc::new(clock.clone(), 0);
    let far = ts(T0 + 24 * 60 * 60 * 1000); // a peer a day ahead
    hlc.receive(far);
    assert_eq!(hlc.high_water(), ts(T0 + MAX_DRIFT_MS));
    let t = hlc.tick();
    assert!(t < far, "a far-future peer cannot drag the clock along");
    assert!(physical_ms(t) <= T0 + MAX_DRIFT_MS);
    // Exactly at the limit is still accepted as it is.
    let hlc = Hlc::new(clock.clone(), 0);
    let edge = ts(T0 + MAX_DRIFT_MS);
    hlc.receive(edge);
    assert!(hlc.tick() > edge);
}

#[test]
fn concurrent_ticks_are_unique() {
    let clock = clock_at(T0);
    let hlc = Arc::new(Hlc::new(clock, 0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let hlc = Arc::clone(&hlc);
            std::thread::spawn(move || (0..2_000).map(|_| hlc.tick()).collect::<Vec<u64>>())
        })
        .collect();
    let mut all = HashSet::new();
    for h in handles {
        let ticks = h.join().unwrap();
        assert!(
            ticks.windows(2).all(|w| w[1] > w[0]),
            "each thread sees increasing ticks"
        );
        all.extend(ticks);
    }
    assert_eq!(all.len(), 8_000);
}

// ---- through stores ----------------------------------------------------------------------

fn last_hlc(store: &peerlite::RdbStore) -> u64 {
    store
        .changes(None, 0)
        .unwrap()
        .iter()
        .flat_map(|c| std::iter::once(c.hlc).chain(c.columns.iter().map(|col| col.1)))
        .max()
        .unwrap()
}

#[test]
fn store_changes_are_stamped_with_the_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone.insert("note", &bucket! { "text" => "a" }).unwrap();
    let c = phone.changes(Some("note"), 0).unwrap();
    assert_eq!(physical_ms(c[0].hlc), T0);
    clock.advance(1_234);
    phone.insert("note", &bucket! { "text" => "b" }).unwrap();
    let c = phone.changes(Some("note"), 0).unwrap();
    assert_eq!(physical_ms(c[1].hlc), T0 + 1_234);
}

#[test]
fn store_clock_stepping_back_still_orders_new_changes_later() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone.insert("note", &bucket! { "text" => "a" }).unwrap();
    let before = last_hlc(&phone);
    clock.set(T0 - 60 * 60 * 1000);
    phone.insert("note", &bucket! { "text" => "b" }).unwrap();
    let changes = phone.changes(Some("note"), 0).unwrap();
    assert!(changes[1].hlc > before, "{changes:?}");
}

#[test]
fn store_high_water_mark_survives_a_restart_with_the_clock_a_little_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    for i in 0..3 {
        phone.insert("note", &bucket! { "n" => i }).unwrap();
    }
    let before = last_hlc(&phone);
    phone.close().unwrap();
    drop(phone);
    let earlier = clock_at(T0 - 10_000); // 10 s back: within MAX_DRIFT
    let phone = open_store(dir.path(), "phone", &earlier);
    phone.insert("note", &bucket! { "n" => 9 }).unwrap();
    let after = phone.changes(Some("note"), 0).unwrap().last().unwrap().hlc;
    assert!(after > before, "after restart: {after} <= {before}");
}

#[test]
fn store_high_water_mark_survives_a_restart_with_the_clock_an_hour_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone.insert("note", &bucket! { "text" => "a" }).unwrap();
    let before = last_hlc(&phone);
    phone.close().unwrap();
    drop(phone);
    let earlier = clock_at(T0 - 60 * 60 * 1000);
    let phone = open_store(dir.path(), "phone", &earlier);
    phone.insert("note", &bucket! { "text" => "b" }).unwrap();
    let after = phone.changes(Some("note"), 0).unwrap().last().unwrap().hlc;
    assert!(
        after > before,
        "after a restart with the clock an hour back: {} ms <= {} ms",
        physical_ms(after),
        physical_ms(before)
    );
}

#[test]
fn store_sequence_numbers_continue_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    phone.insert("note", &bucket! { "text" => "a" }).unwrap();
    phone.insert("note", &bucket! { "text" => "b" }).unwrap();
    let before = phone.changes(None, 0).unwrap().last().unwrap().seq;
    phone.close().unwrap();
    drop(phone);
    let phone = open_store(dir.path(), "phone", &clock);
    phone.insert("note", &bucket! { "text" => "c" }).unwrap();
    let changes = phone.changes(None, before).unwrap();
    assert_eq!(changes.len(), 1);
    assert!(changes[0].seq > before);
}

#[test]
fn a_received_change_moves_the_receivers_clock_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let (pc, lc) = (clock_at(T0), clock_at(T0 + 60_000)); // the laptop is a minute ahead
    let phone = item_device(dir.path(), "phone", &pc);
    let laptop = item_device(dir.path(), "laptop", &lc);
    add_item(&laptop, "u1", "from laptop", 1);
    let remote = last_hlc(&laptop);
    sync(&laptop, &phone, SyncMode::Push);
    phone
        .update(&bucket! { "title" => "edited on phone" }, &by_uuid("u1"))
        .unwrap();
    let edit = phone.changes(Some("item"), 0).unwrap()[0].columns[0].1;
    assert!(
        edit > remote,
        "the phone's later edit is ordered after what it saw"
    );
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(items(&laptop), items(&phone));
    assert_eq!(items(&laptop)[0].title.as_deref(), Some("edited on phone"));
}

#[test]
fn a_received_change_still_orders_before_local_edits_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (pc, lc) = (clock_at(T0), clock_at(T0 + 60_000)); // the laptop is a minute ahead
    let phone = item_device(dir.path(), "phone", &pc);
    let laptop = item_device(dir.path(), "laptop", &lc);
    add_item(&laptop, "u1", "from laptop", 1);
    let remote = last_hlc(&laptop);
    sync(&laptop, &phone, SyncMode::Push); // the phone only receives
    phone.close().unwrap();
    drop(phone);
    let phone = open_store(dir.path(), "phone", &pc);
    phone
        .update(&bucket! { "title" => "edited on phone" }, &by_uuid("u1"))
        .unwrap();
    let edit = phone.changes(Some("item"), 0).unwrap()[0].columns[0].1;
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        items(&laptop),
        items(&phone),
        "the devices diverge (edit {edit} vs remote {remote})"
    );
    assert!(edit > remote, "edit {edit} <= remote {remote}");
}

#[test]
fn a_far_future_peer_cannot_drag_the_clock_but_its_change_merges_by_its_own_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let day = 24 * 60 * 60 * 1000;
    let (pc, lc) = (clock_at(T0), clock_at(T0 + day)); // the laptop's clock is a day ahead
    let phone = item_device(dir.path(), "phone", &pc);
    let laptop = item_device(dir.path(), "laptop", &lc);
    add_item(&laptop, "u1", "from the future", 1);
    let future = last_hlc(&laptop);
    assert_eq!(physical_ms(future), T0 + day);
    sync(&laptop, &phone, SyncMode::Push);
    let arrived = phone.changes(Some("item"), 0).unwrap();
    assert_eq!(arrived[0].hlc, future, "the change keeps its own timestamp");
    assert_eq!(arrived[0].origin, "laptop");

    // The phone's own next change is stamped no further than now + MAX_DRIFT.
    add_item(&phone, "u2", "phone now", 2);
    let own = phone.changes(Some("item"), 0).unwrap().last().unwrap().hlc;
    assert!(
        physical_ms(own) <= T0 + MAX_DRIFT_MS,
        "{}",
        physical_ms(own)
    );
    assert!(physical_ms(own) >= T0);
}

#[test]
fn a_local_edit_of_a_far_future_row_converges() {
    let dir = tempfile::tempdir().unwrap();
    let day = 24 * 60 * 60 * 1000;
    let (pc, lc) = (clock_at(T0), clock_at(T0 + day));
    let phone = item_device(dir.path(), "phone", &pc);
    let laptop = item_device(dir.path(), "laptop", &lc);
    add_item(&laptop, "u1", "from the future", 1);
    sync(&laptop, &phone, SyncMode::Push);
    phone
        .update(&bucket! { "title" => "phone edit" }, &by_uuid("u1"))
        .unwrap();
    sync(&phone, &laptop, SyncMode::PushPull);
    sync(&laptop, &phone, SyncMode::PushPull);
    assert_eq!(items(&phone), items(&laptop), "the devices diverge");
}

#[test]
fn manual_clock_is_shared_by_reference() {
    let clock = Arc::new(ManualClock::new(5));
    let hlc = Hlc::new(clock.clone(), 0);
    clock.set(10);
    assert_eq!(hlc.now_ms(), 10);
    assert_eq!(physical_ms(hlc.tick()), 10);
}
