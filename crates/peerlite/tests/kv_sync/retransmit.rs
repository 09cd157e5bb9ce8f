//! Sessions driven by hand: small batches, a lost batch (and a lost acknowledgement, a lost
//! finish) recovered by retransmission, duplicated deliveries, one remote notification per
//! applied batch.

use std::collections::VecDeque;

use peerlite::sync::{DeviceLevel, MessageV1, Peer, Session, SyncMessage, SyncMode};
use peerlite::{Entry, KvValue, SubscribeType};

use crate::common::*;

/// What the network does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Deliver,
    Drop,
    Duplicate,
}

fn kind(m: &SyncMessage) -> &'static str {
    let SyncMessage::V1(m) = m;
    match m {
        MessageV1::Hello(_) => "hello",
        MessageV1::Welcome(_) => "welcome",
        MessageV1::Batch(_) | MessageV1::Packed(_) | MessageV1::Compact(_) => "batch",
        MessageV1::Ack(_) => "ack",
        MessageV1::Finish(_) => "finish",
        MessageV1::Done(_) => "done",
        MessageV1::Abort(_) => "abort",
        MessageV1::Query(_) => "query",
        MessageV1::QueryReply(_) => "query_reply",
        MessageV1::Notice(_) => "notice",
    }
}

/// Runs a Push session from `from` to `to` with `rows` per batch; `fate` decides each
/// message's delivery from its kind and how many of that kind came before. After a silence
/// both sides retransmit. Returns the results and the kinds of the messages delivered.
fn drive(
    from: &Device,
    to: &Device,
    rows: usize,
    mut fate: impl FnMut(&str, usize) -> Fate,
) -> (
    peerlite::sync::DeviceResult,
    peerlite::sync::DeviceResult,
    Vec<&'static str>,
) {
    let (mut a, hello) = Session::start(
        from.store.sync_store().unwrap(),
        &Peer::new(to.store.device_id(), DeviceLevel::Sl4),
        SyncMode::Push,
        None,
    )
    .unwrap();
    a.set_batch_rows(rows);
    let (mut b, replies) = Session::accept(
        to.store.sync_store().unwrap(),
        &Peer::new(from.store.device_id(), DeviceLevel::Sl4),
        &hello,
    );
    // (to the initiator?, message)
    let mut queue: VecDeque<(bool, SyncMessage)> = replies.into_iter().map(|m| (true, m)).collect();
    let mut seen: std::collections::HashMap<&'static str, usize> = Default::default();
    let mut delivered = Vec::new();
    let mut silences = 0;
    while !(a.is_finished() && b.is_finished()) {
        let Some((to_a, msg)) = queue.pop_front() else {
            silences += 1;
            assert!(silences < 50, "the session never finished");
            queue.extend(a.retransmit().into_iter().map(|m| (false, m)));
            queue.extend(b.retransmit().into_iter().map(|m| (true, m)));
            continue;
        };
        let k = kind(&msg);
        let n = seen.entry(k).or_default();
        let f = fate(k, *n);
        *n += 1;
        let times = match f {
            Fate::Drop => 0,
            Fate::Deliver => 1,
            Fate::Duplicate => 2,
        };
        for _ in 0..times {
            let msg = SyncMessage::decode(&msg.encode().unwrap()).unwrap();
            delivered.push(k);
            let out = if to_a { a.handle(&msg) } else { b.handle(&msg) };
            queue.extend(out.into_iter().map(|m| (!to_a, m)));
        }
    }
    (a.result(), b.result(), delivered)
}

fn five_entries(phone: &Device) -> Vec<(String, KvValue)> {
    let list = pairs(&[
        ("a", s("1")),
        ("b", KvValue::Integer(2)),
        ("c", KvValue::Float(3.5)),
        ("d", KvValue::Bool(true)),
        ("e", KvValue::Bytes(vec![5])),
    ]);
    for (k, v) in &list {
        phone.store.put(k, v.clone()).unwrap();
    }
    list
}

#[test]
fn small_batches_deliver_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    let want = five_entries(&phone);
    let heard = record(&laptop.store, SubscribeType::Remote);
    let (ra, rb, delivered) = drive(&phone, &laptop, 2, |_, _| Fate::Deliver);
    assert_eq!((ra.status.code(), rb.status.code()), (0, 0));
    assert_eq!((ra.sent, rb.received), (5, 5));
    assert_eq!(delivered.iter().filter(|k| **k == "batch").count(), 3);
    assert_eq!(entries(&laptop.store), want);
    let got = take(&heard);
    assert_eq!(got.len(), 3, "one notification per applied batch: {got:?}");
    let inserted: Vec<Entry> = got.into_iter().flat_map(|n| n.insert_entries).collect();
    assert_eq!(inserted.len(), 5);
}

#[test]
fn a_lost_batch_is_retransmitted() {
    for lost in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
        let want = five_entries(&phone);
        let heard = record(&laptop.store, SubscribeType::Remote);
        let (ra, rb, _) = drive(&phone, &laptop, 2, |k, n| {
            if k == "batch" && n == lost {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        });
        assert_eq!(
            (ra.status.code(), rb.status.code()),
            (0, 0),
            "lost batch {lost}"
        );
        assert_eq!(rb.received, 5, "lost batch {lost}");
        assert_eq!(entries(&laptop.store), want, "lost batch {lost}");
        let inserted: Vec<Entry> = take(&heard)
            .into_iter()
            .flat_map(|n| n.insert_entries)
            .collect();
        assert_eq!(inserted.len(), 5, "each entry notified once: {inserted:?}");
    }
}

#[test]
fn lost_acks_hellos_and_finishes_are_recovered() {
    for lost in ["ack", "finish", "done", "welcome"] {
        let dir = tempfile::tempdir().unwrap();
        let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
        let want = five_entries(&phone);
        let (ra, rb, _) = drive(&phone, &laptop, 2, |k, n| {
            if k == lost && n == 0 {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        });
        assert_eq!((ra.status.code(), rb.status.code()), (0, 0), "lost {lost}");
        assert_eq!(device_entries(&laptop.store, "phone"), want, "lost {lost}");
    }
}

#[test]
fn duplicated_messages_change_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    let want = five_entries(&phone);
    let heard = record(&laptop.store, SubscribeType::Remote);
    let (ra, rb, delivered) = drive(&phone, &laptop, 2, |_, _| Fate::Duplicate);
    assert_eq!((ra.status.code(), rb.status.code()), (0, 0));
    assert!(delivered.iter().filter(|k| **k == "batch").count() >= 6);
    assert_eq!(rb.received, 5);
    assert_eq!(entries(&laptop.store), want);
    let inserted: Vec<Entry> = take(&heard)
        .into_iter()
        .flat_map(|n| n.insert_entries)
        .collect();
    assert_eq!(inserted.len(), 5, "{inserted:?}");
}

#[test]
fn a_lost_delete_batch_is_retransmitted() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    five_entries(&phone);
    sync(&phone, &laptop, SyncMode::Push);
    phone
        .at(1_000)
        .store
        .delete_batch(&["a", "c", "e"])
        .unwrap();
    let heard = record(&laptop.store, SubscribeType::Remote);
    let (_, rb, _) = drive(&phone, &laptop, 1, |k, n| {
        if k == "batch" && n == 1 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    assert_eq!(rb.received, 3);
    assert_eq!(
        entries(&laptop.store),
        pairs(&[("b", KvValue::Integer(2)), ("d", KvValue::Bool(true))])
    );
    let deleted: Vec<String> = take(&heard)
        .into_iter()
        .flat_map(|n| n.delete_entries)
        .map(|e| e.key)
        .collect();
    assert_eq!(deleted.len(), 3, "{deleted:?}");
}

#[test]
fn a_session_with_nothing_to_send_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    let (ra, rb, delivered) = drive(&phone, &laptop, 2, |_, _| Fate::Deliver);
    assert_eq!(
        (ra.status.code(), rb.status.code(), ra.sent, rb.received),
        (0, 0, 0, 0)
    );
    assert!(!delivered.contains(&"batch"), "{delivered:?}");
}
