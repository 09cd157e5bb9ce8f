//! Remote data-change notifications fire on the receiving side when a sync over the network
//! applies a batch: `on_data_change(Remote)` with the sending device, `on_remote_change` with
//! the rows, and a key-value store's observers with the entries.

use std::sync::{Arc, Mutex};

use peerlite::sync::SyncMode;
use peerlite::{KvManager, KvValue, Options, SubscribeType};
use peerlite_net::NodeEvent;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_on_the_receiving_store_hear_what_arrived() {
    let (a, b) = (Dev::plain("a"), Dev::plain("b"));
    pair(&a, &b).await;
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    b.store
        .on_data_change(SubscribeType::Remote, move |devices| {
            sink.lock().unwrap().push(devices.to_vec());
        })
        .unwrap();
    let rows = Arc::new(Mutex::new(Vec::new()));
    let sink = rows.clone();
    b.store
        .on_remote_change(move |change| {
            sink.lock()
                .unwrap()
                .push((change.device.clone(), change.keys.len()));
        })
        .unwrap();
    let mut events = b.node.events();
    a.add_notes(&["one", "two"]);
    let results = bounded(a.node.sync("notes", SyncMode::Push, None, BOUND))
        .await
        .unwrap();
    assert_eq!(results[0].1.status.code(), 0);
    assert_eq!(*heard.lock().unwrap(), vec![vec![a.id().to_string()]]);
    assert_eq!(*rows.lock().unwrap(), vec![(a.id().to_string(), 2)]);
    // The node reports the finished session too (the responder's view).
    let finished = bounded(async {
        loop {
            if let NodeEvent::SyncFinished {
                device,
                result,
                initiator,
                ..
            } = events.recv().await.unwrap()
            {
                return (device, result.received, initiator);
            }
        }
    })
    .await;
    assert_eq!(finished, (a.id(), 2, false));
    a.node.shutdown().await;
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_value_store_hears_entries_from_the_network() {
    let (a, b) = (Dev::plain("a"), Dev::plain("b"));
    let kv = |d: &Dev| {
        KvManager::at(d.dir.path().join("kv"))
            .unwrap()
            .device_id(d.id().to_string())
            .get_kv_store("settings", Options::default())
            .unwrap()
    };
    let (a_kv, b_kv) = (kv(&a), kv(&b));
    a.node.serve_kv_store(&a_kv).unwrap();
    b.node.serve_kv_store(&b_kv).unwrap();
    pair(&a, &b).await;
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    b_kv.on_data_change(SubscribeType::Remote, move |n| {
        sink.lock()
            .unwrap()
            .push((n.device_id.clone(), n.insert_entries.len()));
    })
    .unwrap();
    a_kv.put("theme", "dark").unwrap();
    let results = bounded(a.node.sync("settings", SyncMode::Push, None, BOUND))
        .await
        .unwrap();
    assert_eq!(results[0].1.status.code(), 0, "{:?}", results[0].1);
    assert_eq!(b_kv.get("theme").unwrap(), KvValue::from("dark"));
    assert_eq!(*heard.lock().unwrap(), vec![(a.id().to_string(), 1)]);
    a.node.shutdown().await;
    b.node.shutdown().await;
}
