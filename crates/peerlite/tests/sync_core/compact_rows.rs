//! The compact row form (`compact-rows`, issue 10's wire target). `peerlite bench sync`
//! measured a delta of 1,000 whole-row updates at 1.74× the raw bytes without compression:
//! a classic `Batch` row carries one register (column, full HLC, origin, value option) per
//! column written since the insert, ~72 bytes for a six-column rewrite. Batches now travel
//! as `Compact` messages, registers grouped by writer with a column bitmask, when both sides
//! list the feature; the conversion must lose nothing, devices without the feature must keep
//! exchanging classic batches, and a hostile compact message must end the session with a
//! protocol fault, never a panic or an unbounded allocation.

use peerlite::sync::{
    Batch, CompactBatch, CompactRow, Dispatcher, FEATURE_COMPACT_ROWS, FEATURES,
    MAX_COMPACT_REGISTERS, MessageV1, RegisterGroup, RowChange, Session, SyncMessage, SyncMode,
    SyncStatus, WireRegister,
};
use peerlite::value::Value;
use peerlite::{RdbPredicates, RdbStore, bucket};
use proptest::prelude::*;

use crate::common::*;

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        (-1e9f64..1e9).prop_map(Value::Real),
        "[a-z]{0,6}".prop_map(Value::Text),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(Value::Blob),
    ]
}

/// Registers as the extractor makes them (rising columns, one writer) and as it does not
/// (repeated columns, falling ones, several writers, HLCs below the row's, values on live rows).
fn register(width: u16, row_hlc: u64) -> impl Strategy<Value = WireRegister> {
    (
        0..width,
        prop_oneof![
            Just(row_hlc.wrapping_add(7)),
            Just(row_hlc),
            Just(row_hlc.wrapping_sub(3)),
            any::<u64>(),
        ],
        0u32..3,
        prop::option::of(value()),
    )
        .prop_map(|(column, hlc, origin, value)| WireRegister {
            column,
            hlc,
            origin,
            value,
        })
}

fn row(width: u16) -> impl Strategy<Value = RowChange> {
    (
        value(),
        prop_oneof![any::<u64>(), Just(u64::MAX), Just(0)],
        0u32..3,
        any::<bool>(),
        prop::collection::vec(value(), 0..=usize::from(width)),
    )
        .prop_flat_map(move |(ident, hlc, origin, tomb, values)| {
            prop::collection::vec(register(width, hlc), 0..12).prop_map(move |regs| RowChange {
                ident: ident.clone(),
                hlc,
                origin,
                tomb,
                values: values.clone(),
                regs,
            })
        })
}

fn batch() -> impl Strategy<Value = Batch> {
    (1u16..20).prop_flat_map(|width| {
        (
            any::<u64>(),
            "[a-z]{1,5}",
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec("[a-z]{1,4}", usize::from(width)),
            prop::collection::vec("[a-z]{1,4}", 0..4),
            prop::collection::vec(row(width), 0..8),
            prop::collection::vec("[a-z0-9]{0,4}", 0..4),
        )
            .prop_map(
                |(session, table, filter, prev, last, columns, devices, rows, epochs)| Batch {
                    session,
                    table,
                    filter,
                    prev,
                    last,
                    columns,
                    devices,
                    rows,
                    epochs,
                },
            )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every batch whose registers name its columns comes back identical, through the
    /// message bytes too.
    #[test]
    fn the_compact_form_of_a_batch_loses_nothing(b in batch()) {
        let compact = CompactBatch::from_batch(&b).expect("every register names a column");
        let msg = SyncMessage::V1(MessageV1::Compact(compact));
        let back = SyncMessage::decode(&msg.encode().unwrap()).unwrap();
        prop_assert_eq!(&back, &msg);
        let SyncMessage::V1(MessageV1::Compact(c)) = back else { unreachable!() };
        prop_assert_eq!(c.into_batch().unwrap(), b);
    }

    /// A register past the batch's columns cannot be a mask bit: such a batch goes classic.
    #[test]
    fn a_batch_the_compact_form_cannot_hold_is_left_classic(mut b in batch(), extra in 0u16..100) {
        let width = b.columns.len() as u16;
        prop_assume!(!b.rows.is_empty());
        b.rows[0].regs.push(WireRegister { column: width + extra, hlc: 1, origin: 0, value: None });
        prop_assert_eq!(CompactBatch::from_batch(&b), None);
    }

    /// Bytes of a compact message, mutated: decoding and expanding them never panics.
    #[test]
    fn mutated_compact_messages_never_panic(
        b in batch(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let compact = CompactBatch::from_batch(&b).expect("every register names a column");
        let mut bytes = SyncMessage::V1(MessageV1::Compact(compact)).encode().unwrap();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(SyncMessage::V1(MessageV1::Compact(c))) = SyncMessage::decode(&bytes) {
            let _ = c.into_batch();
        }
    }
}

/// A whole-row update (one writer, every column) and a deleted row whose later write keeps
/// its value.
fn golden_batch() -> Batch {
    let reg = |column, hlc, value| WireRegister {
        column,
        hlc,
        origin: 0,
        value,
    };
    Batch {
        session: 9,
        table: "item".into(),
        filter: 0,
        prev: 10,
        last: 12,
        columns: vec!["uuid".into(), "qty".into(), "title".into()],
        devices: vec!["phone".into()],
        rows: vec![
            RowChange {
                ident: Value::Text("u1".into()),
                hlc: 1 << 20,
                origin: 0,
                tomb: false,
                values: vec![
                    Value::Text("u1".into()),
                    Value::Integer(-3),
                    Value::Text("x".into()),
                ],
                regs: vec![reg(1, (1 << 20) + 5, None), reg(2, (1 << 20) + 5, None)],
            },
            RowChange {
                ident: Value::Text("u2".into()),
                hlc: 1 << 21,
                origin: 0,
                tomb: true,
                values: vec![],
                regs: vec![reg(2, (1 << 21) + 1, Some(Value::Integer(4)))],
            },
        ],
        epochs: vec!["e9".into()],
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Compact` message is variant 10 of V1, after every earlier message (whose golden bytes
/// `wire_golden` pins unchanged); these are its bytes.
#[test]
fn the_compact_message_encodes_to_its_golden_bytes() {
    let compact = CompactBatch::from_batch(&golden_batch()).unwrap();
    assert_eq!(
        compact.rows[0].groups,
        vec![RegisterGroup {
            hlc_delta: 5,
            origin: 0,
            mask: vec![0b110],
            values: vec![],
        }]
    );
    assert_eq!(
        compact.rows[1].groups[0].values,
        vec![Some(Value::Integer(4))]
    );
    let msg = SyncMessage::V1(MessageV1::Compact(compact));
    let bytes = msg.encode().unwrap();
    assert_eq!(
        hex(&bytes),
        "000a09046974656d000a0c03047575696403717479057469746c65010570686f6e650203027531808040000003030275310105030178010a00010600030275328080800100010001020001040101010801026539"
    );
    assert_eq!(SyncMessage::decode(&bytes).unwrap(), msg);
}

/// Two note devices; the phone's notes all rewritten (text and n) after a first push.
fn rewritten(root: &std::path::Path, n: i64) -> (RdbStore, RdbStore) {
    let (phone, laptop) = two(root, n, 0);
    push_with(&phone, &laptop, &FEATURES, &FEATURES);
    for i in 1..=n {
        phone
            .update(
                &bucket! { "text" => format!("q{i}"), "n" => i * 10 },
                &RdbPredicates::new("note").equal_to("id", i),
            )
            .unwrap();
    }
    (phone, laptop)
}

/// Pushes the phone's notes to the laptop through dispatchers offering `a` and `b`; returns
/// the batches as they travelled.
fn push_with(phone: &RdbStore, laptop: &RdbStore, a: &[&str], b: &[&str]) -> Vec<SyncMessage> {
    let offer = |f: &[&str]| {
        Dispatcher::new()
            .compression(f.contains(&"zstd"))
            .compact_rows(f.contains(&FEATURE_COMPACT_ROWS))
            .batch_rows(20)
    };
    push_between(phone, laptop, offer(a), offer(b))
}

/// Pushes the phone's notes to the laptop through dispatchers `a` (the phone's) and `b`.
fn push_between(
    phone: &RdbStore,
    laptop: &RdbStore,
    mut a: Dispatcher,
    mut b: Dispatcher,
) -> Vec<SyncMessage> {
    let (as_phone, as_laptop) = (peer_of(phone), peer_of(laptop));
    let mut to_b = vec![a.start(phone, &as_laptop, SyncMode::Push, None).unwrap()];
    let mut batches = Vec::new();
    while !to_b.is_empty() {
        let mut to_a = Vec::new();
        for m in to_b.drain(..) {
            if is_batch(&m) {
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
    batches
}

fn rewritten_notes(n: i64) -> Vec<Vec<Value>> {
    (1..=n)
        .map(|i| {
            vec![
                Value::Integer(i),
                Value::Text(format!("q{i}")),
                Value::Integer(i * 10),
            ]
        })
        .collect()
}

#[test]
fn devices_without_the_feature_still_exchange_classic_batches() {
    // Every pairing of a device of this release with one that predates compact rows (or
    // turned them off), with and without zstd: the form is used only when both list it, and
    // the rewritten rows arrive either way.
    let old: &[&str] = &["zstd"];
    let plain_old: &[&str] = &[];
    let new: &[&str] = &["zstd", FEATURE_COMPACT_ROWS];
    let plain_new: &[&str] = &[FEATURE_COMPACT_ROWS];
    for (a, b, compact) in [
        (new, new, true),
        (plain_new, plain_new, true),
        (plain_new, new, true),
        (new, old, false),
        (old, new, false),
        (plain_new, plain_old, false),
        (plain_old, plain_new, false),
        (old, old, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (phone, laptop) = rewritten(dir.path(), 50);
        let batches = push_with(&phone, &laptop, a, b);
        assert!(!batches.is_empty());
        for m in &batches {
            let inner = m.clone().unpack().unwrap();
            let SyncMessage::V1(inner) = inner;
            match inner {
                MessageV1::Compact(c) => {
                    assert!(compact, "{a:?}/{b:?} sent a compact batch");
                    assert!(
                        c.rows.iter().all(|r| r.groups.len() == 1),
                        "one group a row"
                    );
                }
                MessageV1::Batch(_) => assert!(!compact, "{a:?}/{b:?} sent a classic batch"),
                other => panic!("not a batch: {other:?}"),
            }
        }
        assert_eq!(
            has_from(&laptop, "phone"),
            rewritten_notes(50),
            "{a:?}/{b:?}"
        );
    }
}

/// `--no-compression` (`NodeConfig::compression(false)`, the bench's plain run) turns off zstd
/// only: batches still travel compact, which is what meets the wire target without zstd.
#[test]
fn turning_compression_off_keeps_compact_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = rewritten(dir.path(), 30);
    let off = || Dispatcher::new().compression(false);
    let batches = push_between(&phone, &laptop, off(), off());
    assert!(!batches.is_empty());
    assert!(
        batches
            .iter()
            .all(|m| matches!(m, SyncMessage::V1(MessageV1::Compact(_)))),
        "{batches:?}"
    );
    assert_eq!(has_from(&laptop, "phone"), rewritten_notes(30));
}

#[test]
fn a_whole_row_update_takes_far_fewer_bytes_compact() {
    // The bench's case: every synced column rewritten. Classic: one register of ~12 bytes
    // per column; compact: one group of a few bytes per row.
    let size = |features: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let (phone, laptop) = rewritten(dir.path(), 40);
        let bytes: usize = push_with(&phone, &laptop, features, features)
            .iter()
            .map(|m| m.encode().unwrap().len())
            .sum();
        assert_eq!(has_from(&laptop, "phone"), rewritten_notes(40));
        bytes
    };
    let (classic, compact) = (size(&[]), size(&[FEATURE_COMPACT_ROWS]));
    // Two registers a row of ~12 bytes each, against one group of ~8.
    assert!(
        compact + 40 * 12 <= classic,
        "compact {compact} bytes, classic {classic}"
    );
}

/// A session of the phone pulling from the laptop with compact rows agreed, ready for a batch.
fn agreed(phone: &RdbStore, laptop: &RdbStore, features: &[&str]) -> Session {
    let (mut a, hello) =
        Session::start_with_features(phone, &peer_of(laptop), SyncMode::Pull, None, features)
            .unwrap();
    let (_b, out) = Session::accept_with_features(laptop, &peer_of(phone), &hello, &FEATURES);
    a.handle(&out[0]);
    assert_eq!(a.result().status, SyncStatus::Ok);
    a
}

fn hostile(session: u64, columns: usize, groups: Vec<RegisterGroup>) -> SyncMessage {
    SyncMessage::V1(MessageV1::Compact(CompactBatch {
        session,
        table: "note".into(),
        filter: 0,
        prev: 0,
        last: 1,
        columns: (0..columns).map(|c| format!("c{c}")).collect(),
        devices: vec!["laptop".into()],
        rows: vec![CompactRow {
            ident: Value::Integer(1),
            hlc: 1 << 40,
            origin: 0,
            tomb: false,
            values: vec![],
            groups,
        }],
        epochs: vec![],
    }))
}

fn group(mask: Vec<u8>, values: Vec<Option<Value>>) -> RegisterGroup {
    RegisterGroup {
        hlc_delta: 1,
        origin: 0,
        mask,
        values,
    }
}

#[test]
fn a_hostile_compact_batch_ends_the_session_as_a_protocol_fault() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 0, 0);
    let huge: Vec<RegisterGroup> = (0..=MAX_COMPACT_REGISTERS / 64)
        .map(|_| group(vec![0xff; 8], vec![]))
        .collect();
    for (what, columns, groups) in [
        (
            "a bit past the columns",
            3,
            vec![group(vec![0b1000], vec![])],
        ),
        (
            "a byte past the columns",
            3,
            vec![group(vec![1, 1], vec![])],
        ),
        ("a group naming nothing", 3, vec![group(vec![0], vec![])]),
        ("an empty mask", 3, vec![group(vec![], vec![])]),
        (
            "values not matching the mask",
            3,
            vec![group(vec![0b11], vec![None; 3])],
        ),
        ("registers past the bound", 64, huge),
    ] {
        let mut a = agreed(&phone, &laptop, &FEATURES);
        assert!(a.is_compact());
        let out = a.handle(&hostile(a.id(), columns, groups));
        assert_eq!(abort_code(&out), 17040004, "{what}");
        assert_eq!(a.result().status, SyncStatus::Protocol, "{what}");
    }
    // Not agreed: a compact batch, however well formed, is a fault too.
    let mut a = agreed(&phone, &laptop, &["zstd"]);
    assert!(!a.is_compact());
    let out = a.handle(&hostile(a.id(), 3, vec![group(vec![1], vec![])]));
    assert_eq!(abort_code(&out), 17040004);
    assert!(
        has_from(&phone, "laptop").is_empty(),
        "nothing of a refused batch is applied"
    );
}

#[test]
fn a_huge_count_in_a_compact_message_is_an_error_not_an_allocation() {
    // The rows count of a compact message says 2^62 and nothing follows: decoding stops at
    // the end of the bytes.
    let mut bytes = hex_bytes("000a09046974656d000a0c010475756964010570686f6e65");
    bytes.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    assert_eq!(SyncMessage::decode(&bytes).unwrap_err().code(), 17040004);
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Before compact rows, the initiator checked the Welcome's features against those this
/// build knows, not those its Hello offered: a responder agreeing to `compact-rows` that
/// the initiator had turned off would have made it send and accept compact batches.
#[test]
fn a_welcome_may_agree_only_to_features_the_hello_offered() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 2, 0);
    let (mut a, hello) =
        Session::start_with_features(&phone, &peer_of(&laptop), SyncMode::Push, None, &["zstd"])
            .unwrap();
    let (_b, mut out) = Session::accept_with_features(&laptop, &peer_of(&phone), &hello, &FEATURES);
    let SyncMessage::V1(MessageV1::Welcome(w)) = &mut out[0] else {
        panic!("no Welcome: {out:?}");
    };
    w.features.push(FEATURE_COMPACT_ROWS.into());
    assert_eq!(abort_code(&a.handle(&out[0])), 17040004);
    assert!(!a.is_compact());
}
