//! Device-collaboration stores: each device's entries kept apart, read with
//! `get_from_device` / `get_entries_from_device`.

use peerlite::sync::SyncMode;
use peerlite::{Entry, KvValue, SubscribeType};

use crate::common::*;

#[test]
fn each_device_keeps_its_own_value_of_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
    phone.at(20).store.put("k", "phone's").unwrap();
    laptop.at(10).store.put("k", "laptop's").unwrap();
    sync_both_ways(&phone, &laptop);
    // Local reads see only the device's own entries, whatever the timestamps.
    assert_eq!(laptop.store.get("k").unwrap(), s("laptop's"));
    assert_eq!(phone.store.get("k").unwrap(), s("phone's"));
    assert_eq!(
        laptop.store.get_from_device("phone", "k").unwrap(),
        s("phone's")
    );
    assert_eq!(
        phone.store.get_from_device("laptop", "k").unwrap(),
        s("laptop's")
    );
    assert_eq!(entries(&laptop.store), pairs(&[("k", s("laptop's"))]));
    assert_eq!(entries(&phone.store), pairs(&[("k", s("phone's"))]));
}

#[test]
fn a_key_only_the_peer_has_is_missing_locally() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
    phone.store.put("k", "v").unwrap();
    phone.store.put("n", 7).unwrap();
    let (on_phone, on_laptop) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((on_phone.sent, on_laptop.received), (2, 2));
    assert_eq!(code_of(laptop.store.get("k")), 15100004);
    assert!(entries(&laptop.store).is_empty());
    assert_eq!(laptop.store.get_from_device("phone", "k").unwrap(), s("v"));
    assert_eq!(
        laptop.store.get_from_device("phone", "n").unwrap(),
        KvValue::Integer(7)
    );
    assert_eq!(
        laptop.store.get_entries_from_device("phone", "").unwrap(),
        vec![Entry::new("k", "v"), Entry::new("n", 7)]
    );
}

#[test]
fn the_own_device_id_reads_the_local_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
    laptop.store.put("mine", true).unwrap();
    phone.store.put("mine", false).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(laptop.store.device_id(), "laptop");
    assert_eq!(
        laptop.store.get_from_device("laptop", "mine").unwrap(),
        KvValue::Bool(true)
    );
    assert_eq!(
        device_entries(&laptop.store, "laptop"),
        entries(&laptop.store)
    );
    assert_eq!(
        code_of(laptop.store.get_from_device("laptop", "nope")),
        15100004
    );
}

#[test]
fn missing_keys_and_unknown_devices() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
    phone.store.put("k", "v").unwrap();
    // Before anything arrived from the phone.
    assert_eq!(
        code_of(laptop.store.get_from_device("phone", "k")),
        15100004
    );
    assert!(
        laptop
            .store
            .get_entries_from_device("phone", "")
            .unwrap()
            .is_empty()
    );
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        code_of(laptop.store.get_from_device("phone", "other")),
        15100004
    );
    assert_eq!(
        code_of(laptop.store.get_from_device("tablet", "k")),
        15100004
    );
    assert!(
        laptop
            .store
            .get_entries_from_device("tablet", "")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn prefix_reads_of_a_device_view() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
    phone
        .store
        .put_batch(&[
            Entry::new("ui.theme", "dark"),
            Entry::new("ui.size", 12),
            Entry::new("net.proxy", "none"),
        ])
        .unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        laptop
            .store
            .get_entries_from_device("phone", "ui.")
            .unwrap(),
        vec![Entry::new("ui.size", 12), Entry::new("ui.theme", "dark")]
    );
    assert_eq!(
        laptop.store.get_entries_from_device("phone", "zz").unwrap(),
        vec![]
    );
}

#[test]
fn updates_and_deletes_propagate_to_the_device_view() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
    laptop.store.put("k", "laptop's").unwrap();
    phone.store.put("k", 1).unwrap();
    phone.store.put("stay", 2).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    phone.at(1_000).store.put("k", 10).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        laptop.store.get_from_device("phone", "k").unwrap(),
        KvValue::Integer(10)
    );
    phone.at(2_000).store.delete("k").unwrap();
    let (_, on_laptop) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(on_laptop.received, 1);
    assert_eq!(
        code_of(laptop.store.get_from_device("phone", "k")),
        15100004
    );
    assert_eq!(
        device_entries(&laptop.store, "phone"),
        pairs(&[("stay", KvValue::Integer(2))])
    );
    assert_eq!(
        laptop.store.get("k").unwrap(),
        s("laptop's"),
        "the phone's delete does not touch the laptop's own entry"
    );
}

#[test]
fn a_device_delete_does_not_reach_the_peer_local_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
    phone.store.put("k", "phone's").unwrap();
    laptop.store.put("k", "laptop's").unwrap();
    sync_both_ways(&phone, &laptop);
    laptop.at(1_000).store.delete("k").unwrap();
    sync_both_ways(&phone, &laptop);
    assert_eq!(phone.store.get("k").unwrap(), s("phone's"));
    assert_eq!(
        code_of(phone.store.get_from_device("laptop", "k")),
        15100004
    );
    assert_eq!(
        laptop.store.get_from_device("phone", "k").unwrap(),
        s("phone's")
    );
}

#[test]
fn entries_relay_through_a_third_device_under_their_origin() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop, tablet) = (
        dc(dir.path(), "phone"),
        dc(dir.path(), "laptop"),
        dc(dir.path(), "tablet"),
    );
    phone.store.put("k", "phone's").unwrap();
    phone.store.put("p", 1).unwrap();
    laptop.store.put("k", "laptop's").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    sync(&laptop, &tablet, SyncMode::Push);
    assert!(
        entries(&tablet.store).is_empty(),
        "nothing lands in the tablet's own entries"
    );
    assert_eq!(
        device_entries(&tablet.store, "phone"),
        pairs(&[("k", s("phone's")), ("p", KvValue::Integer(1))])
    );
    assert_eq!(
        device_entries(&tablet.store, "laptop"),
        pairs(&[("k", s("laptop's"))])
    );
    // A later delete on the phone relays too.
    phone.at(1_000).store.delete("p").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    sync(&laptop, &tablet, SyncMode::Push);
    assert_eq!(
        code_of(tablet.store.get_from_device("phone", "p")),
        15100004
    );
    assert_eq!(
        tablet.store.get_from_device("phone", "k").unwrap(),
        s("phone's")
    );
}

#[test]
fn own_entries_relayed_back_are_not_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
    phone.store.put("k", "phone's").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let (_, on_phone) = sync(&laptop, &phone, SyncMode::Push);
    assert_eq!(on_phone.received, 0);
    assert_eq!(entries(&phone.store), pairs(&[("k", s("phone's"))]));
    assert_eq!(
        device_entries(&phone.store, "phone"),
        entries(&phone.store),
        "the phone's own id still reads its local entries"
    );
    assert!(device_entries(&phone.store, "laptop").is_empty());
}

#[test]
fn entries_written_before_enable_sync_are_synced() {
    let dir = tempfile::tempdir().unwrap();
    let phone = collab(dir.path(), "phone");
    phone.store.put("early", "bird").unwrap();
    phone.store.enable_sync().unwrap();
    phone.store.enable_sync().unwrap();
    phone.store.put("late", 2).unwrap();
    let laptop = collab(dir.path(), "laptop");
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        device_entries(&laptop.store, "phone"),
        pairs(&[("early", s("bird")), ("late", KvValue::Integer(2))])
    );
}

#[test]
fn a_second_sync_receives_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
    phone.store.put("a", 1).unwrap();
    laptop.store.put("b", 2).unwrap();
    sync(&phone, &laptop, SyncMode::PushPull);
    let (a, b) = sync(&phone, &laptop, SyncMode::PushPull);
    assert_eq!((a.received, b.received), (0, 0));
    let (a, b) = sync(&laptop, &phone, SyncMode::PushPull);
    assert_eq!((a.received, b.received), (0, 0));
}

#[test]
fn the_remote_notification_names_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
    let heard = record(&laptop.store, SubscribeType::Remote);
    phone.store.put("k", "v").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let got = take(&heard);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].device_id, "phone");
    assert_eq!(got[0].insert_entries, vec![Entry::new("k", "v")]);
    assert!(got[0].update_entries.is_empty() && got[0].delete_entries.is_empty());

    phone.at(1_000).store.put("k", "w").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let got = take(&heard);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].device_id, "phone");
    assert_eq!(got[0].update_entries, vec![Entry::new("k", "w")]);

    phone.at(2_000).store.delete("k").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let got = take(&heard);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].device_id, "phone");
    assert_eq!(got[0].delete_entries, vec![Entry::new("k", "w")]);
}

#[test]
fn device_views_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let phone = dc(dir.path(), "phone");
    phone.store.put("k", "v").unwrap();
    {
        let laptop = dc(dir.path(), "laptop");
        sync(&phone, &laptop, SyncMode::Push);
        laptop.manager.close_kv_store(STORE).unwrap();
    }
    let laptop = collab(dir.path(), "laptop");
    assert_eq!(laptop.store.get_from_device("phone", "k").unwrap(), s("v"));
    let (_, on_laptop) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(on_laptop.received, 0);
}

/// Relayed entries are notified under the device they belong to: a listener reading
/// `get_from_device(n.device_id, key)` finds exactly the notified value, and one notification
/// never names the same key twice.
#[test]
fn relayed_entries_are_notified_under_their_own_device() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop, tablet) = (
        dc(dir.path(), "phone"),
        dc(dir.path(), "laptop"),
        dc(dir.path(), "tablet"),
    );
    phone.store.put("k", "phone's").unwrap();
    laptop.store.put("k", "laptop's").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let heard = record(&tablet.store, SubscribeType::Remote);
    sync(&laptop, &tablet, SyncMode::Push);
    let got = take(&heard);
    let mut seen: Vec<(String, String, KvValue)> = Vec::new();
    for n in &got {
        let mut keys: Vec<&str> = n.insert_entries.iter().map(|e| e.key.as_str()).collect();
        keys.dedup();
        assert_eq!(
            keys.len(),
            n.insert_entries.len(),
            "a key twice in one notification: {n:?}"
        );
        for e in &n.insert_entries {
            assert_eq!(
                tablet.store.get_from_device(&n.device_id, &e.key).unwrap(),
                e.value,
                "notified under {:?}: {e:?}",
                n.device_id
            );
            seen.push((n.device_id.clone(), e.key.clone(), e.value.clone()));
        }
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            ("laptop".to_owned(), "k".to_owned(), s("laptop's")),
            ("phone".to_owned(), "k".to_owned(), s("phone's")),
        ]
    );
}
