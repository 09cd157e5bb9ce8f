//! The seams the network relies on (issue 10, §1): the identity a session works with is the
//! one the channel proved, and what may be sent follows the level this device recorded for
//! the peer; faults reach the peer as an `Abort` with a stable code; batches travel
//! compressed only when both sides listed the feature, and a packed message can never make
//! the receiver allocate without bound; one dispatcher routes, times out and lingers.

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::sync::{
    DeviceLevel, Dispatcher, MAX_UNPACKED, MessageV1, Packed, Peer, Session, SyncMessage, SyncMode,
    SyncStatus,
};
use peerlite::{RdbStore, SecurityLevel, StoreConfig};

use crate::common::*;

/// A notes device whose data is labelled `label`.
fn labelled(root: &std::path::Path, device: &str, label: SecurityLevel) -> RdbStore {
    std::fs::create_dir_all(root.join(device)).unwrap();
    let store = RdbStore::open(
        StoreConfig::new(root.join(device).join(STORE_FILE))
            .device_id(device)
            .clock(clock_at(T0))
            .security_level(label),
    )
    .unwrap();
    store.execute(CREATE_NOTE, &[]).unwrap();
    store
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    store
}

#[test]
fn a_hello_that_claims_another_device_than_the_channel_proved_is_refused() {
    // A trusted tablet opens a session whose Hello says it is the phone: if the laptop took
    // the Hello's word, the tablet could write rows under the phone's name.
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 2, 0);
    let (mut a, hello) = start(&phone, "laptop", SyncMode::Push, None);
    let tablet = Peer::new("tablet", DeviceLevel::Sl4);
    let (b, out) = Session::accept(&laptop, &tablet, &hello);
    assert_eq!(abort_code(&out), 17040007);
    assert_eq!(b.result().status, SyncStatus::IdentityMismatch);
    a.handle(&out[0]);
    assert_eq!(a.result().status, SyncStatus::IdentityMismatch);
    assert!(!table_exists(&laptop, &device_table(&laptop, "phone")));
}

#[test]
fn what_may_flow_follows_the_recorded_level_never_the_claimed_one() {
    // The laptop's data is S3. A phone recorded at SL2 whose Hello claims level 4 is still
    // refused a pull; one recorded at SL3 or SL5 is served. (The level in the Hello is the
    // label of the phone's store, which must be S3 or above to take S3 data: see
    // `data_never_enters_a_store_labelled_below_it`.)
    let dir = tempfile::tempdir().unwrap();
    let laptop = labelled(dir.path(), "laptop", SecurityLevel::S3);
    add_notes(&laptop, "l", 2);
    let phone = labelled(dir.path(), "phone", SecurityLevel::S4);
    for (recorded, claimed, served) in [
        (DeviceLevel::Sl2, 4u8, false),
        (DeviceLevel::Sl3, 3, true),
        (DeviceLevel::Sl5, 4, true),
    ] {
        let (_, hello) = start(&phone, "laptop", SyncMode::Pull, None);
        let SyncMessage::V1(MessageV1::Hello(mut h)) = hello else {
            unreachable!()
        };
        h.security_level = claimed;
        let hello = SyncMessage::V1(MessageV1::Hello(h));
        let (b, out) = Session::accept(&laptop, &Peer::new("phone", recorded), &hello);
        let batches = out.iter().filter(|m| is_batch(m)).count();
        assert_eq!(
            batches > 0,
            served,
            "{recorded} claiming {claimed}: {out:?}"
        );
        assert_eq!(
            b.result().status == SyncStatus::SecurityRefused,
            !served,
            "{recorded}"
        );
    }
    // The same rule on the pushing side: the laptop does not push S3 data to an SL2 device.
    let (mut a, hello) = Session::start(
        &laptop,
        &Peer::new("phone", DeviceLevel::Sl2),
        SyncMode::Push,
        None,
    )
    .unwrap();
    let (mut b, out) = accept(&phone, &hello);
    let sent = a.handle(&out[0]);
    assert!(sent.iter().all(|m| !is_batch(m)), "{sent:?}");
    assert_eq!(a.result().status, SyncStatus::SecurityRefused);
    // The refusing side ends the peer's incoming stream too (it waited for the connection to
    // close), and both sessions finish.
    for m in &sent {
        for back in b.handle(m) {
            a.handle(&back);
        }
    }
    assert!(b.is_finished() && a.is_finished(), "{sent:?}");
}

#[test]
fn data_never_enters_a_store_labelled_below_it() {
    // An S3 store pushed its rows into a copy of the store labelled S1 on a device trusted
    // at SL3, which then relayed them to an SL1 device: the label did not travel with the
    // data. Now data labelled S_k enters only a store labelled S_k or above, whatever the
    // devices' levels, in both directions, and a peer that sends anyway is aborted.
    let dir = tempfile::tempdir().unwrap();
    let secret = labelled(dir.path(), "secret", SecurityLevel::S3);
    add_notes(&secret, "s", 2);
    let low = labelled(dir.path(), "low", SecurityLevel::S1);
    let high = Peer::new("low", DeviceLevel::Sl5);
    // Push from the S3 store: refused before any batch.
    let (mut a, hello) = Session::start(&secret, &high, SyncMode::Push, None).unwrap();
    let (b, out) = Session::accept(&low, &Peer::new("secret", DeviceLevel::Sl5), &hello);
    assert_eq!(b.result().status, SyncStatus::SecurityRefused, "{out:?}");
    let sent = a.handle(&out[0]);
    assert!(sent.iter().all(|m| !is_batch(m)), "{sent:?}");
    assert_eq!(a.result().status, SyncStatus::SecurityRefused);
    // Pull by the S1 store from the S3 one: refused by the sender.
    let (mut c, hello) = Session::start(
        &low,
        &Peer::new("secret", DeviceLevel::Sl5),
        SyncMode::Pull,
        None,
    )
    .unwrap();
    let (d, out) = Session::accept(&secret, &high, &hello);
    assert!(out.iter().all(|m| !is_batch(m)), "{out:?}");
    assert_eq!(d.result().status, SyncStatus::SecurityRefused);
    for m in &out {
        c.handle(m);
    }
    assert_eq!(c.result().status, SyncStatus::SecurityRefused);
    assert!(!table_exists(&low, &device_table(&low, "secret")));
    // A sender that takes a lie about the receiving store's label is still refused by the
    // receiver, which applies nothing.
    let (mut e, hello) = Session::start(
        &low,
        &Peer::new("secret", DeviceLevel::Sl5),
        SyncMode::Pull,
        None,
    )
    .unwrap();
    let SyncMessage::V1(MessageV1::Hello(mut h)) = hello else {
        unreachable!()
    };
    h.security_level = 4;
    let (_, out) = Session::accept(&secret, &high, &SyncMessage::V1(MessageV1::Hello(h)));
    let batch = out
        .iter()
        .find(|m| is_batch(m))
        .expect("the liar is served")
        .clone();
    e.handle(&out[0]);
    let answer = e.handle(&batch);
    assert_eq!(abort_code(&answer), 17040006, "{answer:?}");
    assert!(!table_exists(&low, &device_table(&low, "secret")));
    // Upward is fine: S1 data into the S3 store.
    add_notes(&low, "l", 1);
    let (r, _) = peerlite::sync::sync_in_memory(&low, &secret, SyncMode::Push, None).unwrap();
    assert!(r.status.is_ok(), "{r:?}");
}

/// Runs a push from `phone` to `laptop` through two dispatchers with the given compression
/// settings; returns the batch messages sent and the bytes they took.
fn push_with(
    phone: &RdbStore,
    laptop: &RdbStore,
    a_zstd: bool,
    b_zstd: bool,
) -> (Vec<SyncMessage>, usize) {
    let mut a = Dispatcher::new().compression(a_zstd).batch_rows(50);
    let mut b = Dispatcher::new().compression(b_zstd);
    let (as_phone, as_laptop) = (peer_of(phone), peer_of(laptop));
    let mut to_b = vec![a.start(phone, &as_laptop, SyncMode::Push, None).unwrap()];
    let (mut batches, mut bytes) = (Vec::new(), 0);
    while !to_b.is_empty() {
        let mut to_a = Vec::new();
        for m in to_b.drain(..) {
            if is_batch(&m) {
                bytes += m.encode().unwrap().len();
                batches.push(m.clone());
            }
            to_a.extend(b.deliver(&as_phone, &m, |_| Some(laptop.into())));
        }
        for m in to_a {
            to_b.extend(a.deliver(&as_laptop, &m, |_| None));
        }
    }
    let done = a.take_finished();
    assert_eq!(done[0].result.status, SyncStatus::Ok, "{done:?}");
    (batches, bytes)
}

#[test]
fn batches_are_packed_only_when_both_sides_list_zstd() {
    for (a_zstd, b_zstd) in [(true, true), (true, false), (false, true), (false, false)] {
        let dir = tempfile::tempdir().unwrap();
        let (phone, laptop) = two(dir.path(), 200, 0);
        let (batches, _) = push_with(&phone, &laptop, a_zstd, b_zstd);
        let packed = batches
            .iter()
            .filter(|m| matches!(m, SyncMessage::V1(MessageV1::Packed(_))))
            .count();
        let want = if a_zstd && b_zstd { batches.len() } else { 0 };
        assert_eq!(packed, want, "zstd {a_zstd}/{b_zstd}");
        assert_eq!(has_from(&laptop, "phone"), expected_notes("p", 200));
    }
}

#[test]
fn packed_batches_are_smaller_for_repetitive_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 300, 0);
    let (_, packed) = push_with(&phone, &laptop, true, true);
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 300, 0);
    let (_, plain) = push_with(&phone, &laptop, false, false);
    assert!(packed < plain, "packed {packed} bytes, plain {plain}");
}

#[test]
fn a_packed_message_out_of_place_or_too_big_ends_the_session_as_a_protocol_fault() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 2, 0);
    // Not agreed: the session offered no features.
    let (mut a, hello) = start(&phone, "laptop", SyncMode::Pull, None);
    let (_b, out) = accept(&laptop, &hello);
    a.handle(&out[0]);
    let plain = SyncMessage::V1(MessageV1::Finish(peerlite::sync::Finish {
        session: a.id(),
    }));
    let bytes = zstd::bulk::compress(&plain.encode().unwrap(), 3).unwrap();
    let packed = SyncMessage::V1(MessageV1::Packed(Packed {
        session: a.id(),
        bytes,
    }));
    assert_eq!(abort_code(&a.handle(&packed)), 17040004);
    // Agreed, but a bomb: a few kilobytes that would unpack past the bound.
    let (mut a, hello) = Session::start(&phone, &peer_of(&laptop), SyncMode::Pull, None).unwrap();
    let (_b, out) = Session::accept(&laptop, &peer_of(&phone), &hello);
    a.handle(&out[0]);
    assert!(a.is_packed());
    let bomb = zstd::bulk::compress(&vec![0u8; MAX_UNPACKED + 1], 19).unwrap();
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    let out = a.handle(&SyncMessage::V1(MessageV1::Packed(Packed {
        session: a.id(),
        bytes: bomb,
    })));
    assert_eq!(abort_code(&out), 17040004);
    assert_eq!(a.result().status, SyncStatus::Protocol);
}

#[test]
fn a_dispatcher_answers_an_unknown_store_times_out_silence_and_lingers_for_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 1, 0);
    let (as_phone, as_laptop) = (peer_of(&phone), peer_of(&laptop));
    // No such store here: the peer hears it at once.
    let mut b = Dispatcher::new();
    let hello = Dispatcher::new()
        .start(&phone, &as_laptop, SyncMode::Push, None)
        .unwrap();
    let out = b.deliver(&as_phone, &hello, |_| None);
    assert_eq!(abort_code(&out), 17040005);
    // Nobody answers: after its silences the session ends as timed out.
    let mut a = Dispatcher::new().max_silences(3);
    a.start(&phone, &as_laptop, SyncMode::Push, None).unwrap();
    let mut resent = 0;
    for _ in 0..4 {
        resent += a.silence(|_, _| true).len();
    }
    assert_eq!(resent, 3, "one Hello per silence until it gives up");
    let done = a.take_finished();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].result.status, SyncStatus::TimedOut);
    assert_eq!(a.running(), 0);
    // A finished session lingers: a repeated Finish still gets its Done.
    let (mut a, mut b) = (Dispatcher::new(), Dispatcher::new());
    let mut to_b = vec![a.start(&phone, &as_laptop, SyncMode::Push, None).unwrap()];
    let mut last_finish = None;
    while !to_b.is_empty() {
        let mut to_a = Vec::new();
        for m in to_b.drain(..) {
            if kind(&m) == "Finish" {
                last_finish = Some(m.clone());
            }
            to_a.extend(b.deliver(&as_phone, &m, |_| Some((&laptop).into())));
        }
        for m in to_a {
            to_b.extend(a.deliver(&as_laptop, &m, |_| None));
        }
    }
    assert_eq!(b.take_finished()[0].result.status, SyncStatus::Ok);
    let again = b.deliver(&as_phone, &last_finish.unwrap(), |_| None);
    assert_eq!(again.iter().map(kind).collect::<Vec<_>>(), ["Done"]);
    assert!(b.take_finished().is_empty(), "reported once");
    for _ in 0..=peerlite::sync::DEFAULT_LINGER {
        b.silence(|_, _| true);
    }
    assert!(!b.holds(&as_phone.device, hello.session()));
}

#[test]
fn two_sessions_with_one_peer_are_routed_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 3, 2);
    let (as_phone, as_laptop) = (peer_of(&phone), peer_of(&laptop));
    let (mut a, mut b) = (Dispatcher::new(), Dispatcher::new());
    let mut to_b = vec![
        a.start(&phone, &as_laptop, SyncMode::Push, None).unwrap(),
        a.start(&phone, &as_laptop, SyncMode::Pull, None).unwrap(),
    ];
    while !to_b.is_empty() {
        let mut to_a = Vec::new();
        // Interleave the two sessions' messages.
        to_b.reverse();
        for m in to_b.drain(..) {
            to_a.extend(b.deliver(&as_phone, &m, |_| Some((&laptop).into())));
        }
        for m in to_a {
            to_b.extend(a.deliver(&as_laptop, &m, |_| None));
        }
    }
    let done = a.take_finished();
    assert_eq!(done.len(), 2);
    assert!(
        done.iter().all(|f| f.result.status == SyncStatus::Ok),
        "{done:?}"
    );
    assert_eq!(has_from(&laptop, "phone"), expected_notes("p", 3));
    assert_eq!(has_from(&phone, "laptop"), expected_notes("l", 2));
}

#[test]
fn a_packed_batch_before_the_welcome_is_ignored_not_a_fault() {
    // Reordering delivers the responder's first (packed) batch before its Welcome, which is
    // what says batches are packed: the initiator waits for the resend, as for a plain batch.
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 0, 3);
    let (mut a, hello) = Session::start(&phone, &peer_of(&laptop), SyncMode::Pull, None).unwrap();
    let (_b, out) = Session::accept(&laptop, &peer_of(&phone), &hello);
    assert_eq!(
        out.iter().map(kind).collect::<Vec<_>>(),
        ["Welcome", "Batch"]
    );
    assert!(matches!(out[1], SyncMessage::V1(MessageV1::Packed(_))));
    assert!(a.handle(&out[1]).is_empty());
    assert!(!a.is_finished(), "{:?}", a.result());
    assert_eq!(
        a.handle(&out[0]).iter().map(kind).collect::<Vec<_>>(),
        Vec::<&str>::new()
    );
    assert_eq!(
        a.handle(&out[1]).iter().map(kind).collect::<Vec<_>>(),
        ["Ack"]
    );
}

/// Session ids are unique whatever the clock does: a restarted device whose clock repeated a
/// tick once opened a session under an id its peer's dispatcher still held, and the older
/// session vanished without a result (the simulation waited for it forever).
#[test]
fn session_ids_do_not_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, _laptop) = two(dir.path(), 1, 0);
    let surface = phone.sync_surface();
    let ids: std::collections::BTreeSet<u64> =
        (0..1000).map(|_| surface.new_session_id()).collect();
    assert_eq!(ids.len(), 1000);
}
