//! The handshake and bad input: other stores, protocol versions, devices and security levels,
//! refused tables, garbage bytes and batches that do not belong.

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::sync::{MessageV1, SyncMessage, SyncMode, sync_in_memory};
use peerlite::{RdbStore, SecurityLevel, StoreConfig, bucket};

use crate::common::*;

#[test]
fn a_peer_with_another_store_name_is_refused_with_a_status() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    add_notes(&phone, "p", 2);
    std::fs::create_dir_all(dir.path().join("laptop")).unwrap();
    let other = RdbStore::open(
        StoreConfig::new(dir.path().join("laptop").join("other.db"))
            .device_id("laptop")
            .clock(clock.clone()),
    )
    .unwrap();
    other.execute(CREATE_NOTE, &[]).unwrap();
    other
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    let (p, o) = sync_in_memory(&phone, &other, SyncMode::PushPull, None).unwrap();
    assert_eq!(p.status, 17040005, "{p:?}");
    assert_eq!(o.status, 17040005, "{o:?}");
    assert!(p.message.is_some());
    assert_eq!((p.sent, o.received), (0, 0));
    assert!(!table_exists(&other, &device_table(&other, "phone")));
}

#[test]
fn another_protocol_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 1, 0);
    let (mut a, hello) = start(&phone, "laptop", SyncMode::Push, None);
    let SyncMessage::V1(MessageV1::Hello(mut h)) = hello else {
        unreachable!()
    };
    h.protocol = 99;
    let (b, out) = accept(&laptop, &SyncMessage::V1(MessageV1::Hello(h)));
    // Another protocol version is an incompatible peer (17040005), on both sides.
    assert!(b.is_finished());
    assert_eq!(b.result().status, 17040005);
    assert_eq!(out.iter().map(kind).collect::<Vec<_>>(), ["Abort"]);
    a.handle(&out[0]);
    assert!(a.is_finished());
    assert_eq!(a.result().status, 17040005);
}

#[test]
fn an_answer_from_another_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 1, 0);
    let (mut a, hello) = start(&phone, "tablet", SyncMode::Push, None);
    let (_b, out) = accept(&laptop, &hello);
    let back = a.handle(&out[0]);
    assert_eq!(back.iter().map(kind).collect::<Vec<_>>(), ["Abort"]);
    assert_eq!(a.result().status, 17040007, "an identity mismatch");
    assert_eq!(count(&laptop, "note"), 0);
    assert!(!table_exists(&laptop, &device_table(&laptop, "phone")));
}

#[test]
fn garbage_bytes_are_a_protocol_error() {
    let real = {
        let dir = tempfile::tempdir().unwrap();
        let (phone, _laptop) = two(dir.path(), 1, 0);
        let (_, hello) = start(&phone, "laptop", SyncMode::Push, None);
        hello.encode().unwrap()
    };
    let truncated = real[..real.len() / 2].to_vec();
    for bytes in [
        vec![],
        vec![0xff],
        vec![0xff, 0x00, 0x13],
        vec![0x07; 64],
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        truncated,
    ] {
        let err = SyncMessage::decode(&bytes).unwrap_err();
        assert_eq!(err.code(), 17040004, "{bytes:?}: {err}");
    }
    assert!(SyncMessage::decode(&real).is_ok());
}

#[test]
fn a_session_must_start_with_hello() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 1, 0);
    let (_, hello) = start(&phone, "laptop", SyncMode::Push, None);
    let finish = SyncMessage::V1(MessageV1::Finish(peerlite::sync::Finish {
        session: hello.session(),
    }));
    let (b, out) = accept(&laptop, &finish);
    assert!(b.is_finished());
    assert_eq!(b.result().status, 17040004);
    assert_eq!(abort_code(&out), 17040004);
}

#[test]
fn a_batch_of_a_table_outside_the_session_is_a_protocol_error() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 2, 0);
    let (mut a, hello) = start(&phone, "laptop", SyncMode::Push, None);
    let (mut b, out) = accept(&laptop, &hello);
    let batches = a.handle(&out[0]);
    let SyncMessage::V1(MessageV1::Batch(mut batch)) = batches[0].clone() else {
        panic!("expected a batch")
    };
    batch.table = "secrets".into();
    // The peer's fault ends the session, and the peer hears why.
    let out = b.handle(&SyncMessage::V1(MessageV1::Batch(batch)));
    assert_eq!(abort_code(&out), 17040004);
    assert_eq!(b.result().status, 17040004);
    assert_eq!(count(&laptop, "note"), 0);
}

#[test]
fn messages_of_another_session_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 2, 0);
    let (mut a, hello) = start(&phone, "laptop", SyncMode::Push, None);
    let (mut b, out) = accept(&laptop, &hello);
    let batches = a.handle(&out[0]);
    let SyncMessage::V1(MessageV1::Batch(mut batch)) = batches[0].clone() else {
        panic!("expected a batch")
    };
    batch.session ^= 1;
    let replies = b.handle(&SyncMessage::V1(MessageV1::Batch(batch)));
    assert!(replies.is_empty());
    assert!(!table_exists(&laptop, &device_table(&laptop, "phone")));
}

#[test]
fn a_table_the_peer_does_not_distribute_is_reported_and_the_rest_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 2, 0);
    phone
        .execute("CREATE TABLE tag(id INTEGER PRIMARY KEY, name TEXT)", &[])
        .unwrap();
    phone
        .set_distributed_tables(
            &["tag"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    phone.insert("tag", &bucket! { "name" => "red" }).unwrap();
    let (p, l) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((p.sent, l.received), (2, 2));
    assert!(
        p.message.as_deref().is_some_and(|m| m.contains("tag")),
        "{p:?}"
    );
}

#[test]
fn tables_with_different_synced_columns_do_not_sync() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = open_store(dir.path(), "laptop", &clock);
    laptop
        .execute(
            "CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT, n INTEGER, extra TEXT)",
            &[],
        )
        .unwrap();
    laptop
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    add_notes(&phone, "p", 2);
    let (p, l) = sync_in_memory(&phone, &laptop, SyncMode::Push, None).unwrap();
    assert_eq!((p.sent, l.received), (0, 0));
    assert!(p.message.is_some(), "the refusal is reported: {p:?}");
    assert!(!table_exists(&laptop, &device_table(&laptop, "phone")));
}

#[test]
fn a_higher_security_level_is_not_pushed_to_a_lower_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    std::fs::create_dir_all(dir.path().join("phone")).unwrap();
    let phone = RdbStore::open(
        StoreConfig::new(dir.path().join("phone").join(STORE_FILE))
            .device_id("phone")
            .clock(clock.clone())
            .security_level(SecurityLevel::S3),
    )
    .unwrap();
    phone.execute(CREATE_NOTE, &[]).unwrap();
    phone
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    add_notes(&phone, "p", 2);
    let laptop = note_device(dir.path(), "laptop", &clock); // S1
    let (p, l) = sync_in_memory(&phone, &laptop, SyncMode::Push, None).unwrap();
    assert_eq!(p.status, 17040006, "{p:?}");
    assert_eq!((p.sent, l.received), (0, 0));
    assert!(!table_exists(&laptop, &device_table(&laptop, "phone")));
    // The laptop may still push its S1 rows up to the S3 phone.
    add_notes(&laptop, "l", 1);
    let (l, p) = sync_in_memory(&laptop, &phone, SyncMode::Push, None).unwrap();
    assert_eq!((l.status.code(), p.status.code()), (0, 0));
    assert_eq!(p.received, 1);
    // And a pull from the phone is refused by the phone.
    let (l, p) = sync_in_memory(&laptop, &phone, SyncMode::Pull, None).unwrap();
    assert_eq!(p.status, 17040006, "{p:?}");
    assert_eq!(l.received, 0);
    assert!(!table_exists(&laptop, &device_table(&laptop, "phone")));
}

#[test]
fn a_refused_pull_is_reported_to_the_initiator() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    std::fs::create_dir_all(dir.path().join("phone")).unwrap();
    let phone = RdbStore::open(
        StoreConfig::new(dir.path().join("phone").join(STORE_FILE))
            .device_id("phone")
            .clock(clock.clone())
            .security_level(SecurityLevel::S3),
    )
    .unwrap();
    phone.execute(CREATE_NOTE, &[]).unwrap();
    phone
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    add_notes(&phone, "p", 2);
    let laptop = note_device(dir.path(), "laptop", &clock);
    let (l, _) = sync_in_memory(&laptop, &phone, SyncMode::Pull, None).unwrap();
    assert_eq!(l.status, 17040006, "{l:?}");
}

#[test]
fn a_batch_naming_an_unknown_device_is_refused_and_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 3, 0);
    let (mut a, hello) = start(&phone, "laptop", SyncMode::Push, None);
    let (mut b, out) = accept(&laptop, &hello);
    let batches = a.handle(&out[0]);
    let SyncMessage::V1(MessageV1::Batch(mut batch)) = batches[0].clone() else {
        panic!("expected a batch")
    };
    assert_eq!(batch.rows.len(), 3);
    batch.rows[2].origin = 99;
    // The peer's fault ends the session, and the peer hears why.
    let out = b.handle(&SyncMessage::V1(MessageV1::Batch(batch)));
    assert_eq!(abort_code(&out), 17040004);
    assert_eq!(b.result().status, 17040004);
    let table = device_table(&laptop, "phone");
    assert!(!table_exists(&laptop, &table) || count(&laptop, &table) == 0);
    // The session is over; the next one brings the honest rows.
    assert!(b.handle(&batches[0]).iter().all(|m| kind(m) == "Abort"));
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(has_from(&laptop, "phone"), expected_notes("p", 3));
}

#[test]
fn a_lost_abort_is_repeated_to_a_peer_that_asks_again() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    std::fs::create_dir_all(dir.path().join("laptop")).unwrap();
    let other = RdbStore::open(
        StoreConfig::new(dir.path().join("laptop").join("other.db"))
            .device_id("laptop")
            .clock(clock.clone()),
    )
    .unwrap();
    let mut aborts = 0;
    let pumped = pump(&phone, &other, SyncMode::Push, None, 10, |_, msg| {
        if kind(msg) == "Abort" {
            aborts += 1;
            if aborts == 1 {
                return vec![];
            }
        }
        vec![msg.clone()]
    });
    assert_eq!(aborts, 2);
    assert_eq!(pumped.initiator.status, 17040005);
    assert_eq!(pumped.responder.status, 17040005);
}

/// After a repair rebuilt a store empty, `sync --pull` answered ok with nothing received,
/// while a store whose tables were merely distributed on one side only got 17040001. A store
/// with no distributed table at all gets 17040001 on both sides too.
#[test]
fn a_store_with_no_distributed_table_is_not_an_ok_sync() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let bare = open_store(dir.path(), "bare", &clock);
    let b = note_device(dir.path(), "b", &clock);
    for mode in [SyncMode::Pull, SyncMode::Push, SyncMode::PushPull] {
        let (on_bare, on_b) = sync_in_memory(&bare, &b, mode, None).unwrap();
        assert_eq!(on_bare.status.code(), 17040001, "{mode:?}: {on_bare:?}");
        assert_eq!(on_b.status.code(), 17040001, "{mode:?}: {on_b:?}");
    }
}

/// A table synced with an extra column on one device was refused as "synced columns or
/// schema version differ (v0 on X, v0 on Y)": the versions printed equal and the column was
/// not named. The reason names the column and the device that syncs it.
#[test]
fn another_set_of_synced_columns_is_named_in_the_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "a", &clock);
    let b = open_store(dir.path(), "b", &clock);
    b.execute(
        "CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT, n INTEGER, extra TEXT)",
        &[],
    )
    .unwrap();
    b.set_distributed_tables(
        &["note"],
        DistributedType::Device,
        &DistributedConfig::default(),
    )
    .unwrap();
    let (on_a, _) = sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert_eq!(on_a.status.code(), 17040005, "{on_a:?}");
    let message = on_a.message.unwrap_or_default();
    assert!(message.contains("note.extra synced only on b"), "{message}");
    assert!(!message.contains("schema version"), "{message}");
}
