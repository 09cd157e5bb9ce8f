//! Single-version stores: one value per key, merged across devices, last writer wins by
//! (hybrid logical clock, device id).

use peerlite::sync::SyncMode;
use peerlite::{Entry, KvValue, Value};

use crate::common::*;

#[test]
fn push_moves_entries_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("theme", "dark").unwrap();
    phone.store.put("volume", 7).unwrap();
    let (on_phone, on_laptop) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(on_phone.device, "laptop");
    assert_eq!(on_laptop.device, "phone");
    assert_eq!((on_phone.sent, on_laptop.received), (2, 2));
    assert_eq!(on_phone.received, 0);
    assert_eq!((on_phone.conflicts, on_laptop.conflicts), (0, 0));
    assert_eq!(laptop.store.get("theme").unwrap(), s("dark"));
    assert_eq!(laptop.store.get("volume").unwrap(), KvValue::Integer(7));
    assert_eq!(entries(&laptop.store), entries(&phone.store));
}

#[test]
fn push_does_not_pull_and_pull_does_not_push() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("p", 1).unwrap();
    laptop.store.put("l", 2).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        entries(&phone.store),
        pairs(&[("p", KvValue::Integer(1))]),
        "a push brings nothing back"
    );
    assert_eq!(
        entries(&laptop.store),
        pairs(&[("l", KvValue::Integer(2)), ("p", KvValue::Integer(1))])
    );

    let (tablet, watch) = (sv(dir.path(), "tablet"), sv(dir.path(), "watch"));
    tablet.store.put("t", 3).unwrap();
    watch.store.put("w", 4).unwrap();
    let (on_tablet, on_watch) = sync(&tablet, &watch, SyncMode::Pull);
    assert_eq!((on_tablet.received, on_watch.sent), (1, 1));
    assert_eq!(
        entries(&tablet.store),
        pairs(&[("t", KvValue::Integer(3)), ("w", KvValue::Integer(4))])
    );
    assert_eq!(
        entries(&watch.store),
        pairs(&[("w", KvValue::Integer(4))]),
        "a pull sends nothing"
    );
}

#[test]
fn push_pull_exchanges_both_ways_in_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("p", "from phone").unwrap();
    laptop.store.put("l", "from laptop").unwrap();
    let (on_phone, on_laptop) = sync(&phone, &laptop, SyncMode::PushPull);
    assert_eq!((on_phone.received, on_laptop.received), (1, 1));
    let want = pairs(&[("l", s("from laptop")), ("p", s("from phone"))]);
    assert_eq!(entries(&phone.store), want);
    assert_eq!(entries(&laptop.store), want);
}

#[test]
fn entries_written_before_enable_sync_are_synced() {
    let dir = tempfile::tempdir().unwrap();
    let phone = single(dir.path(), "phone");
    phone.store.put("early", "bird").unwrap();
    phone
        .store
        .put_batch(&[Entry::new("a", 1), Entry::new("b", true)])
        .unwrap();
    phone.store.delete("a").unwrap();
    // enable_sync captures what is there; calling it twice changes nothing.
    phone.store.enable_sync().unwrap();
    phone.store.enable_sync().unwrap();
    phone.store.put("late", 2.5).unwrap();
    let laptop = single(dir.path(), "laptop");
    let (on_phone, on_laptop) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((on_phone.sent, on_laptop.received), (3, 3));
    assert_eq!(
        entries(&laptop.store),
        pairs(&[
            ("b", KvValue::Bool(true)),
            ("early", s("bird")),
            ("late", KvValue::Float(2.5)),
        ])
    );
}

#[test]
fn sync_store_enables_sync_itself() {
    let dir = tempfile::tempdir().unwrap();
    let phone = single(dir.path(), "phone");
    phone.store.put("k", "v").unwrap();
    let laptop = single(dir.path(), "laptop");
    // No enable_sync anywhere: sync_store does it.
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(laptop.store.get("k").unwrap(), s("v"));
}

#[test]
fn updates_after_a_sync_propagate() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("k", 1).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    phone.at(1_000).store.put("k", 2).unwrap();
    phone.store.put("other", "new").unwrap();
    let (on_phone, on_laptop) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        on_phone.sent, 2,
        "only what changed since the last sync is sent"
    );
    assert_eq!(on_laptop.received, 2);
    assert_eq!(
        entries(&laptop.store),
        pairs(&[("k", KvValue::Integer(2)), ("other", s("new"))])
    );
}

/// Concurrent puts of one key on two devices converge to the later one, whichever device
/// starts the sessions.
#[test]
fn concurrent_puts_converge_to_the_later_write() {
    for (later, initiator_is_phone) in [
        ("laptop", true),
        ("laptop", false),
        ("phone", true),
        ("phone", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
        let (phone_ms, laptop_ms) = if later == "laptop" {
            (10, 20)
        } else {
            (20, 10)
        };
        phone.at(phone_ms).store.put("k", "phone's").unwrap();
        laptop.at(laptop_ms).store.put("k", "laptop's").unwrap();
        if initiator_is_phone {
            sync_both_ways(&phone, &laptop);
        } else {
            sync_both_ways(&laptop, &phone);
        }
        let want = s(&format!("{later}'s"));
        assert_eq!(phone.store.get("k").unwrap(), want, "later={later}");
        assert_eq!(laptop.store.get("k").unwrap(), want, "later={later}");
    }
}

/// A later overwrite of a synced key wins over an earlier concurrent overwrite.
#[test]
fn concurrent_overwrites_of_a_synced_key_converge_to_the_later_one() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("k", "base").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    laptop.at(5_000).store.put("k", "laptop late").unwrap();
    phone.at(3_000).store.put("k", "phone early").unwrap();
    sync(&phone, &laptop, SyncMode::PushPull);
    assert_eq!(phone.store.get("k").unwrap(), s("laptop late"));
    assert_eq!(laptop.store.get("k").unwrap(), s("laptop late"));
    // And nothing flips back on another round.
    sync_both_ways(&laptop, &phone);
    assert_eq!(phone.store.get("k").unwrap(), s("laptop late"));
    assert_eq!(laptop.store.get("k").unwrap(), s("laptop late"));
}

/// Writes with the same wall clock: the greater (hybrid clock, device id) wins, the same on
/// both devices.
#[test]
fn equal_wall_clocks_break_the_tie_the_same_way_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("k", "phone's").unwrap();
    laptop.store.put("k", "laptop's").unwrap();
    let stamp = |d: &Device| {
        d.store
            .sync_store()
            .unwrap()
            .change_of("peerlite_kv", &Value::Text("k".into()))
            .unwrap()
            .unwrap()
            .hlc
    };
    let (p, l) = (stamp(&phone), stamp(&laptop));
    let winner = if (p, "phone") > (l, "laptop") {
        "phone's"
    } else {
        "laptop's"
    };
    sync_both_ways(&phone, &laptop);
    assert_eq!(phone.store.get("k").unwrap(), s(winner), "hlc {p} vs {l}");
    assert_eq!(laptop.store.get("k").unwrap(), s(winner), "hlc {p} vs {l}");
}

#[test]
fn deletes_propagate() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("a", 1).unwrap();
    phone.store.put("b", 2).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert!(phone.at(1_000).store.delete("a").unwrap());
    let (_, on_laptop) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(on_laptop.received, 1);
    assert_eq!(code_of(laptop.store.get("a")), 15100004);
    assert_eq!(entries(&laptop.store), pairs(&[("b", KvValue::Integer(2))]));
    // The deletion also travels on from the laptop, and back to the phone changes nothing.
    let (_, on_phone) = sync(&laptop, &phone, SyncMode::Push);
    assert_eq!(on_phone.received, 0);
    assert_eq!(entries(&phone.store), pairs(&[("b", KvValue::Integer(2))]));
}

#[test]
fn a_delete_on_the_receiving_side_of_a_pull_propagates() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    laptop.store.put("gone", "soon").unwrap();
    sync(&phone, &laptop, SyncMode::Pull);
    assert_eq!(phone.store.get("gone").unwrap(), s("soon"));
    laptop.at(1_000).store.delete("gone").unwrap();
    sync(&phone, &laptop, SyncMode::Pull);
    assert_eq!(code_of(phone.store.get("gone")), 15100004);
}

#[test]
fn a_delete_newer_than_a_put_wins_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("k", "base").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    laptop.at(1_000).store.put("k", "edited").unwrap();
    phone.at(2_000).store.delete("k").unwrap();
    sync_both_ways(&phone, &laptop);
    assert_eq!(code_of(phone.store.get("k")), 15100004);
    assert_eq!(code_of(laptop.store.get("k")), 15100004);
    assert!(entries(&phone.store).is_empty());
    assert!(entries(&laptop.store).is_empty());
}

#[test]
fn a_newer_delete_of_a_key_first_written_concurrently_wins_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    // Both create the key without having heard of each other; the phone then deletes it.
    laptop.at(1_000).store.put("k", "laptop's").unwrap();
    phone.at(500).store.put("k", "phone's").unwrap();
    phone.at(2_000).store.delete("k").unwrap();
    sync_both_ways(&laptop, &phone);
    assert_eq!(code_of(phone.store.get("k")), 15100004);
    assert_eq!(code_of(laptop.store.get("k")), 15100004);
}

/// A key put again after its deletion was seen is back on every device.
#[test]
fn a_put_after_a_seen_delete_brings_the_key_back_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("k", "first").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    phone.at(1_000).store.delete("k").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(code_of(laptop.store.get("k")), 15100004);
    laptop.at(2_000).store.put("k", "second").unwrap();
    sync_both_ways(&laptop, &phone);
    assert_eq!(phone.store.get("k").unwrap(), s("second"));
    assert_eq!(laptop.store.get("k").unwrap(), s("second"));
}

/// Last writer wins by key: a put later than a concurrent delete of the key survives.
#[test]
fn a_put_newer_than_a_concurrent_delete_wins_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("k", "base").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    phone.at(1_000).store.delete("k").unwrap();
    laptop.at(2_000).store.put("k", "edited later").unwrap();
    sync_both_ways(&phone, &laptop);
    assert_eq!(laptop.store.get("k").unwrap(), s("edited later"));
    assert_eq!(phone.store.get("k").unwrap(), s("edited later"));
}

#[test]
fn a_second_sync_receives_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    for i in 0..10 {
        phone.store.put(&format!("p{i}"), i).unwrap();
        laptop.store.put(&format!("l{i}"), i).unwrap();
    }
    laptop.store.delete("l3").unwrap();
    let (a, b) = sync(&phone, &laptop, SyncMode::PushPull);
    // The phone also records the tombstone of l3 (a row state it did not have).
    assert_eq!((a.received, b.received), (10, 10));
    for mode in [SyncMode::PushPull, SyncMode::Push, SyncMode::Pull] {
        let (a, b) = sync(&phone, &laptop, mode);
        assert_eq!((a.received, b.received), (0, 0), "{mode:?}");
        let (a, b) = sync(&laptop, &phone, mode);
        assert_eq!((a.received, b.received), (0, 0), "{mode:?} reversed");
    }
    assert_eq!(entries(&phone.store), entries(&laptop.store));
    assert_eq!(entries(&phone.store).len(), 19);
}

#[test]
fn three_devices_relay_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        sv(dir.path(), "a"),
        sv(dir.path(), "b"),
        sv(dir.path(), "c"),
    );
    a.store.put("from_a", "A").unwrap();
    a.store.put("shared", "A's").unwrap();
    b.at(10).store.put("from_b", "B").unwrap();
    sync(&a, &b, SyncMode::Push);
    sync(&b, &c, SyncMode::Push);
    assert_eq!(
        entries(&c.store),
        pairs(&[("from_a", s("A")), ("from_b", s("B")), ("shared", s("A's"))])
    );
    // A delete on A relays the same way.
    a.at(1_000).store.delete("shared").unwrap();
    sync(&a, &b, SyncMode::Push);
    sync(&b, &c, SyncMode::Push);
    assert_eq!(code_of(c.store.get("shared")), 15100004);
    // And C's own write reaches A through B.
    c.at(2_000).store.put("from_c", "C").unwrap();
    sync(&c, &b, SyncMode::Push);
    sync(&b, &a, SyncMode::Push);
    assert_eq!(a.store.get("from_c").unwrap(), s("C"));
    assert_eq!(entries(&a.store), entries(&c.store));
}

#[test]
fn many_entries_sync_and_prefix_reads_see_them() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    let batch: Vec<Entry> = (0..500)
        .map(|i| Entry::new(format!("item.{i:04}"), i))
        .collect();
    phone.store.put_batch(&batch).unwrap();
    phone.store.put("other", "x").unwrap();
    let (on_phone, on_laptop) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((on_phone.sent, on_laptop.received), (501, 501));
    assert_eq!(laptop.store.get_entries("item.").unwrap(), batch);
    assert_eq!(laptop.store.get_result_size("item.01").unwrap(), 100);
    assert_eq!(laptop.store.get_result_size("").unwrap(), 501);
}

#[test]
fn single_version_stores_have_no_device_views() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("k", "v").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(code_of(laptop.store.get_from_device("phone", "k")), 401);
    assert_eq!(code_of(laptop.store.get_from_device("laptop", "k")), 401);
    assert_eq!(
        code_of(laptop.store.get_entries_from_device("phone", "")),
        401
    );
}

#[test]
fn synced_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let phone = sv(dir.path(), "phone");
    phone.store.put("k", "v").unwrap();
    {
        let laptop = sv(dir.path(), "laptop");
        sync(&phone, &laptop, SyncMode::Push);
        laptop.manager.close_kv_store(STORE).unwrap();
    }
    let laptop = single(dir.path(), "laptop");
    assert_eq!(laptop.store.get("k").unwrap(), s("v"));
    // The watermark survived too: nothing is received again.
    let (_, on_laptop) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(on_laptop.received, 0);
    phone.at(1_000).store.put("k", "w").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(laptop.store.get("k").unwrap(), s("w"));
}
