//! Delivery faults: lost, duplicated, delayed and reordered messages, interrupted sessions —
//! healed by retransmission and watermarks, with every row applied exactly once.

use peerlite::sync::{MessageV1, SyncMessage, SyncMode};
use peerlite::{RdbPredicates, bucket, values};

use crate::common::*;

#[test]
fn a_lost_batch_is_resent_and_everything_arrives_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 7, 0);
    let mut batches = 0;
    let pumped = pump(&phone, &laptop, SyncMode::Push, None, 2, |dir, msg| {
        if dir == Dir::ToResponder && is_batch(msg) {
            batches += 1;
            if batches == 2 {
                return vec![]; // lost
            }
        }
        vec![msg.clone()]
    });
    assert_eq!(pumped.initiator.status, 0);
    assert_eq!(pumped.responder.status, 0);
    assert!(pumped.silences >= 1);
    assert_eq!(batches, 5, "4 batches of at most 2 rows, one of them twice");
    assert_eq!(pumped.responder.received, 7);
    assert_eq!(has_from(&laptop, "phone"), expected_notes("p", 7));
    // Nothing is left to send.
    let (p, l) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((p.sent, l.received), (0, 0));
}

#[test]
fn duplicated_messages_do_not_duplicate_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 7, 5);
    let pumped = pump(&phone, &laptop, SyncMode::PushPull, None, 2, |_, msg| {
        vec![msg.clone(), msg.clone()]
    });
    assert_eq!(
        (
            pumped.initiator.status.code(),
            pumped.responder.status.code()
        ),
        (0, 0)
    );
    assert_eq!(pumped.responder.received, 7);
    assert_eq!(pumped.initiator.received, 5);
    assert_eq!(has_from(&laptop, "phone"), expected_notes("p", 7));
    assert_eq!(has_from(&phone, "laptop"), expected_notes("l", 5));
}

#[test]
fn duplicated_messages_do_not_multiply() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 20, 0);
    let pumped = pump(&phone, &laptop, SyncMode::Push, None, 2, |_, msg| {
        vec![msg.clone(), msg.clone()]
    });
    let batches = pumped.seen.iter().filter(|(_, m)| is_batch(m)).count();
    assert_eq!(pumped.responder.received, 20);
    assert!(batches <= 40, "10 batches were sent {batches} times");
}

#[test]
fn a_stale_batch_arriving_late_does_not_duplicate_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 7, 0);
    let mut batches = 0;
    let mut held: Option<SyncMessage> = None;
    let pumped = pump(&phone, &laptop, SyncMode::Push, None, 2, |dir, msg| {
        if dir == Dir::ToResponder && is_batch(msg) {
            batches += 1;
            match batches {
                2 => {
                    held = Some(msg.clone()); // delayed: the sender resends it meanwhile
                    return vec![];
                }
                4 => return vec![held.take().unwrap(), msg.clone()], // the old copy overtakes
                _ => {}
            }
        }
        vec![msg.clone()]
    });
    assert!(held.is_none());
    assert_eq!(
        (
            pumped.initiator.status.code(),
            pumped.responder.status.code()
        ),
        (0, 0)
    );
    assert_eq!(pumped.responder.received, 7);
    assert_eq!(has_from(&laptop, "phone"), expected_notes("p", 7));
}

#[test]
fn an_old_batch_replayed_after_later_changes_does_not_undo_them() {
    // A batch holding an old state of row 1 arrives after a newer state was applied: merge
    // keeps the newer one (state-based, by timestamps).
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    add_notes(&phone, "p", 1);
    let first = pump(&phone, &laptop, SyncMode::Push, None, 10, lossless);
    let old_batch = first
        .seen
        .iter()
        .find(|(_, m)| is_batch(m))
        .map(|(_, m)| m.clone())
        .unwrap();
    clock.advance(10);
    phone
        .update(
            &bucket! { "text" => "newer" },
            &RdbPredicates::new("note").equal_to("id", 1),
        )
        .unwrap();
    // A new session; the old batch is re-addressed to it and delivered after the new one.
    let mut replayed = false;
    let pumped = pump(&phone, &laptop, SyncMode::Push, None, 10, |dir, msg| {
        if dir == Dir::ToResponder && is_batch(msg) && !replayed {
            replayed = true;
            let SyncMessage::V1(MessageV1::Batch(mut b)) = old_batch.clone() else {
                unreachable!()
            };
            let SyncMessage::V1(MessageV1::Batch(cur)) = msg else {
                unreachable!()
            };
            b.session = cur.session;
            b.prev = cur.prev;
            b.last = cur.last;
            return vec![msg.clone(), SyncMessage::V1(MessageV1::Batch(b))];
        }
        vec![msg.clone()]
    });
    assert!(replayed);
    assert_eq!(pumped.responder.status, 0);
    assert_eq!(
        has_from(&laptop, "phone"),
        vec![values![1, "newer", 1].to_vec()]
    );
}

#[test]
fn losing_any_single_message_still_completes() {
    // Push-pull, 7 rows each way, two rows per batch. Each run loses a different message.
    let mut k = 0;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let (phone, laptop) = two(dir.path(), 7, 7);
        let mut n = 0;
        let mut lost = None;
        let pumped = pump(&phone, &laptop, SyncMode::PushPull, None, 2, |_, msg| {
            n += 1;
            if n == k + 1 {
                lost = Some(kind(msg));
                return vec![];
            }
            vec![msg.clone()]
        });
        assert_eq!(
            (
                pumped.initiator.status.code(),
                pumped.responder.status.code()
            ),
            (0, 0),
            "losing message {k} ({lost:?})"
        );
        assert_eq!(has_from(&laptop, "phone"), expected_notes("p", 7), "k={k}");
        assert_eq!(has_from(&phone, "laptop"), expected_notes("l", 7), "k={k}");
        assert_eq!(pumped.responder.received, 7, "k={k}");
        assert_eq!(pumped.initiator.received, 7, "k={k}");
        if k >= pumped.seen.len() {
            break;
        }
        k += 1;
    }
    assert!(k > 15, "the session has many messages to lose ({k})");
}

#[test]
fn a_lost_done_is_healed_by_retransmission() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 3, 0);
    let mut dropped = false;
    let pumped = pump(&phone, &laptop, SyncMode::Push, None, 2, |_, msg| {
        if kind(msg) == "Done" && !dropped {
            dropped = true;
            return vec![];
        }
        vec![msg.clone()]
    });
    assert!(dropped);
    assert_eq!(
        (
            pumped.initiator.status.code(),
            pumped.responder.status.code()
        ),
        (0, 0)
    );
}

#[test]
fn a_lost_done_leaves_the_data_applied_and_acknowledged() {
    // Whatever becomes of the session after its last Done is lost, the data is all there and
    // acknowledged: the initiator keeps asking with Finish, and a new session sends nothing.
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 3, 0);
    let (mut a, hello) = start(&phone, "laptop", SyncMode::Push, None);
    let (mut b, mut to_a) = accept(&laptop, &hello);
    let mut rounds = 0;
    while !to_a.is_empty() {
        rounds += 1;
        assert!(rounds < 50);
        let mut to_b = Vec::new();
        for m in &to_a {
            to_b.extend(a.handle(m));
        }
        to_a.clear();
        for m in &to_b {
            to_a.extend(b.handle(m).into_iter().filter(|m| kind(m) != "Done"));
        }
    }
    assert!(b.is_finished());
    assert_eq!(has_from(&laptop, "phone"), expected_notes("p", 3));
    let resent = a.retransmit();
    assert_eq!(resent.iter().map(kind).collect::<Vec<_>>(), ["Finish"]);
    let (p, l) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((p.sent, l.received), (0, 0));
}

#[test]
fn a_batch_before_the_welcome_is_ignored_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 0, 3);
    let (mut a, hello) = start(&phone, "laptop", SyncMode::Pull, None);
    let (_b, out) = accept(&laptop, &hello);
    let kinds: Vec<&str> = out.iter().map(kind).collect();
    assert_eq!(kinds, ["Welcome", "Batch"]);
    // The Welcome is lost: the batch arrives first.
    let handled = a.handle(&out[1]);
    assert!(handled.is_empty(), "{handled:?}");
    assert!(!a.is_finished(), "the session goes on: {:?}", a.result());
}

#[test]
fn chaos_drops_duplicates_and_delays_still_converge() {
    for seed in 1..=8u64 {
        let dir = tempfile::tempdir().unwrap();
        let (phone, laptop) = two(dir.path(), 9, 6);
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 100
        };
        let mut delayed: Vec<(Dir, SyncMessage)> = Vec::new();
        let pumped = pump(&phone, &laptop, SyncMode::PushPull, None, 2, |dir, msg| {
            let mut out: Vec<SyncMessage> = Vec::new();
            match rand() {
                0..=14 => {}                                       // lost
                15..=29 => out.extend([msg.clone(), msg.clone()]), // duplicated
                30..=39 => delayed.push((dir, msg.clone())),       // delayed
                _ => out.push(msg.clone()),
            }
            // A delayed message of the same direction arrives late, after newer ones.
            if rand() < 30
                && let Some(i) = delayed.iter().position(|(d, _)| *d == dir)
            {
                out.push(delayed.remove(i).1);
            }
            out
        });
        assert_eq!(
            (
                pumped.initiator.status.code(),
                pumped.responder.status.code()
            ),
            (0, 0),
            "seed {seed}"
        );
        assert_eq!(
            has_from(&laptop, "phone"),
            expected_notes("p", 9),
            "seed {seed}"
        );
        assert_eq!(
            has_from(&phone, "laptop"),
            expected_notes("l", 6),
            "seed {seed}"
        );
        assert_eq!(pumped.responder.received, 9, "seed {seed}");
        assert_eq!(pumped.initiator.received, 6, "seed {seed}");
    }
}

#[test]
fn an_interrupted_session_resumes_from_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 7, 0);
    let (mut a, hello) = start(&phone, "laptop", SyncMode::Push, None);
    a.set_batch_rows(2);
    let (mut b, welcome) = accept(&laptop, &hello);
    let mut to_b = a.handle(&welcome[0]);
    for _ in 0..2 {
        assert!(is_batch(&to_b[0]));
        let acks = b.handle(&to_b[0]);
        to_b = a.handle(&acks[0]);
    }
    // The connection drops here: two batches applied, the third never delivered.
    drop((a, b));
    assert_eq!(count(&laptop, &device_table(&laptop, "phone")), 4);
    let (p, l) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        (p.sent, l.received),
        (3, 3),
        "only what the laptop does not have"
    );
    assert_eq!(has_from(&laptop, "phone"), expected_notes("p", 7));
}

#[test]
fn every_message_survives_the_wire_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 3, 3);
    phone
        .delete(&RdbPredicates::new("note").equal_to("id", 2))
        .unwrap();
    let pumped = pump(&phone, &laptop, SyncMode::PushPull, None, 1, lossless);
    let mut kinds: Vec<&str> = pumped.seen.iter().map(|(_, m)| kind(m)).collect();
    for (_, m) in &pumped.seen {
        assert_eq!(&SyncMessage::decode(&m.encode().unwrap()).unwrap(), m);
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        ["Ack", "Batch", "Done", "Finish", "Hello", "Welcome"]
    );
}
