//! Change notifications around sync: remote observers hear what arrived (classified as
//! inserts, updates and deletes, naming the sending device), local observers hear only local
//! commits.

use peerlite::sync::SyncMode;
use peerlite::{ChangeNotification, Entry, KvValue, SubscribeType};

use crate::common::*;

fn sorted(mut v: Vec<Entry>) -> Vec<Entry> {
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

#[test]
fn new_keys_are_inserts_from_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    let heard = record(&laptop.store, SubscribeType::Remote);
    phone.store.put("a", "x").unwrap();
    phone.store.put("b", 2).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let got = take(&heard);
    assert_eq!(got.len(), 1, "one notification per applied batch: {got:?}");
    let n = &got[0];
    assert_eq!(n.device_id, "phone");
    assert_eq!(
        sorted(n.insert_entries.clone()),
        vec![Entry::new("a", "x"), Entry::new("b", 2)]
    );
    assert!(n.update_entries.is_empty());
    assert!(n.delete_entries.is_empty());
}

#[test]
fn changed_keys_are_updates_with_the_new_value() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("k", 1).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let heard = record(&laptop.store, SubscribeType::Remote);
    phone.at(1_000).store.put("k", 2).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let got = take(&heard);
    assert_eq!(
        got,
        vec![ChangeNotification {
            update_entries: vec![Entry::new("k", 2)],
            device_id: "phone".into(),
            ..Default::default()
        }]
    );
}

#[test]
fn a_key_the_receiver_already_had_is_an_update() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    laptop.at(10).store.put("k", "old").unwrap();
    phone.at(20).store.put("k", "new").unwrap();
    let heard = record(&laptop.store, SubscribeType::Remote);
    sync(&phone, &laptop, SyncMode::Push);
    let got = take(&heard);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].insert_entries.is_empty(), "{got:?}");
    assert_eq!(got[0].update_entries, vec![Entry::new("k", "new")]);
}

#[test]
fn deleted_keys_carry_the_value_they_had() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("s", "text").unwrap();
    phone.store.put("f", 1.5).unwrap();
    phone.store.put("b", true).unwrap();
    phone.store.put("y", vec![0u8, 255]).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let heard = record(&laptop.store, SubscribeType::Remote);
    phone
        .at(1_000)
        .store
        .delete_batch(&["s", "f", "b", "y"])
        .unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let got = take(&heard);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].device_id, "phone");
    assert!(got[0].insert_entries.is_empty() && got[0].update_entries.is_empty());
    assert_eq!(
        sorted(got[0].delete_entries.clone()),
        vec![
            Entry::new("b", true),
            Entry::new("f", 1.5),
            Entry::new("s", "text"),
            Entry::new("y", KvValue::Bytes(vec![0, 255])),
        ]
    );
}

#[test]
fn one_batch_with_inserts_updates_and_deletes_is_one_notification() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("upd", 1).unwrap();
    phone.store.put("del", "bye").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let heard = record(&laptop.store, SubscribeType::Remote);
    phone.at(1_000);
    phone.store.put("new", "hi").unwrap();
    phone.store.put("upd", 2).unwrap();
    phone.store.delete("del").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let got = take(&heard);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].device_id, "phone");
    assert_eq!(got[0].insert_entries, vec![Entry::new("new", "hi")]);
    assert_eq!(got[0].update_entries, vec![Entry::new("upd", 2)]);
    assert_eq!(got[0].delete_entries, vec![Entry::new("del", "bye")]);
}

#[test]
fn the_sender_in_a_pull_is_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    let heard = record(&phone.store, SubscribeType::Remote);
    laptop.store.put("k", "v").unwrap();
    sync(&phone, &laptop, SyncMode::Pull);
    let got = take(&heard);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].device_id, "laptop");
    assert_eq!(got[0].insert_entries, vec![Entry::new("k", "v")]);
}

#[test]
fn nothing_is_notified_when_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("k", "v").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let heard = record(&laptop.store, SubscribeType::Remote);
    let on_phone = record(&phone.store, SubscribeType::Remote);
    sync(&phone, &laptop, SyncMode::PushPull);
    sync(&laptop, &phone, SyncMode::PushPull);
    assert!(take(&heard).is_empty());
    assert!(take(&on_phone).is_empty());
}

#[test]
fn a_losing_remote_write_is_not_notified() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.at(10).store.put("k", "phone old").unwrap();
    laptop.at(20).store.put("k", "laptop new").unwrap();
    let heard = record(&laptop.store, SubscribeType::Remote);
    sync(&phone, &laptop, SyncMode::Push);
    let got = take(&heard);
    assert!(
        got.iter().all(|n| n.insert_entries.is_empty()
            && n.update_entries.is_empty()
            && n.delete_entries.is_empty()),
        "the laptop's value stood, so nothing changed there: {got:?}"
    );
    assert_eq!(laptop.store.get("k").unwrap(), s("laptop new"));
}

#[test]
fn remote_changes_are_not_local_and_local_ones_are_not_remote() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    let laptop_local = record(&laptop.store, SubscribeType::Local);
    let laptop_remote = record(&laptop.store, SubscribeType::Remote);
    let phone_local = record(&phone.store, SubscribeType::Local);
    phone.store.put("k", "v").unwrap();
    let got = take(&phone_local);
    assert_eq!(
        got,
        vec![ChangeNotification {
            insert_entries: vec![Entry::new("k", "v")],
            device_id: "local".into(),
            ..Default::default()
        }],
        "local notifications work on a syncing store"
    );
    sync(&phone, &laptop, SyncMode::Push);
    assert!(
        take(&laptop_local).is_empty(),
        "a remote change is not local"
    );
    assert_eq!(take(&laptop_remote).len(), 1);
    laptop.at(1_000).store.put("k", "w").unwrap();
    assert_eq!(
        take(&laptop_local),
        vec![ChangeNotification {
            update_entries: vec![Entry::new("k", "w")],
            device_id: "local".into(),
            ..Default::default()
        }]
    );
    assert!(
        take(&laptop_remote).is_empty(),
        "a local change is not remote"
    );
    // Syncing the laptop's change back is not local on the phone either.
    sync(&laptop, &phone, SyncMode::Push);
    assert!(take(&phone_local).is_empty());
    assert_eq!(phone.store.get("k").unwrap(), s("w"));
}

#[test]
fn unsubscribed_remote_observers_hear_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    let heard = record(&laptop.store, SubscribeType::Remote);
    assert_eq!(laptop.store.off_data_change(SubscribeType::Remote, None), 1);
    phone.store.put("k", "v").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert!(take(&heard).is_empty());
    assert_eq!(laptop.store.get("k").unwrap(), s("v"));
}

#[test]
fn several_remote_observers_each_hear_once() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    let first = record(&laptop.store, SubscribeType::Remote);
    let second = record(&laptop.store, SubscribeType::Remote);
    phone.store.put("k", "v").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(take(&first).len(), 1);
    assert_eq!(take(&second).len(), 1);
}

#[test]
fn an_observer_on_a_second_handle_of_the_store_hears_remote_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    let again = laptop
        .manager
        .get_kv_store(STORE, options(peerlite::KvStoreType::SingleVersion))
        .unwrap();
    let heard = record(&again, SubscribeType::Remote);
    phone.store.put("k", "v").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let got = take(&heard);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].insert_entries, vec![Entry::new("k", "v")]);
}

#[test]
fn a_type_change_alone_is_an_update_with_the_new_type() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("k", 1).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let heard = record(&laptop.store, SubscribeType::Remote);
    phone.at(1_000).store.put("k", true).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let got = take(&heard);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].update_entries, vec![Entry::new("k", true)]);
}

/// An observer may read and write the store from inside the notification (the batch is
/// committed by then): no deadlock, and its own write is a local change that syncs on.
#[test]
fn an_observer_can_use_the_store_from_inside_the_notification() {
    use std::sync::mpsc;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    let inside = laptop.store.clone();
    let (seen_tx, seen_rx) = mpsc::channel();
    let seen_tx = std::sync::Mutex::new(seen_tx);
    laptop
        .store
        .on_data_change(SubscribeType::Remote, move |n: &ChangeNotification| {
            let read = inside.get("k").ok();
            inside.put("ack", n.device_id.as_str()).unwrap();
            seen_tx.lock().unwrap().send(read).unwrap();
        })
        .unwrap();
    phone.store.put("k", "v").unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let (p, l) = (phone.store.clone(), laptop.store.clone());
    std::thread::spawn(move || {
        let r = peerlite::sync::sync_in_memory(
            p.sync_store().unwrap(),
            l.sync_store().unwrap(),
            SyncMode::Push,
            None,
        )
        .map(|(a, b)| (a.status.code(), b.status.code()));
        done_tx.send(r).unwrap();
    });
    let finished = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the sync deadlocked with an observer using the store");
    assert_eq!(finished.unwrap(), (0, 0));
    assert_eq!(seen_rx.try_recv().unwrap(), Some(s("v")));
    assert_eq!(laptop.store.get("ack").unwrap(), s("phone"));
    sync(&laptop, &phone, SyncMode::Push);
    assert_eq!(phone.store.get("ack").unwrap(), s("phone"));
}
