//! Golden bytes of every protocol-version-1 message. A device of this release and one of the
//! next must understand each other; these bytes are what they exchange, so a change to any
//! struct that travels (a field added, renamed, reordered, an enum variant moved) fails here
//! before it reaches a user. If a test fails, the wire format changed: that needs a new
//! protocol version, not new golden bytes.

use peerlite::RdbPredicates;
use peerlite::changes::DistributedTableType;
use peerlite::sync::{
    Abort, Ack, Batch, Done, Finish, Hello, MessageV1, Notice, Packed, Query, QueryReply, Refusal,
    RowChange, SyncMessage, SyncMode, TableSummary, Watermark, Welcome, WireFilter, WireRegister,
    filter_id,
};
use peerlite::value::Value;

fn watermark() -> Watermark {
    Watermark {
        table: "note".into(),
        filter: 7,
        epoch: "e1".into(),
        seq: 300,
    }
}

fn filter() -> WireFilter {
    WireFilter::from_predicates(
        &RdbPredicates::new("item")
            .equal_to("shop", "north")
            .begin_wrap()
            .greater_than("qty", 2)
            .or()
            .is_null("qty")
            .end_wrap(),
    )
    .expect("a condition")
}

fn batch() -> Batch {
    Batch {
        session: 9,
        table: "item".into(),
        filter: 0,
        prev: 10,
        last: 12,
        columns: vec!["uuid".into(), "qty".into()],
        devices: vec!["phone".into()],
        rows: vec![
            RowChange {
                ident: Value::Text("u1".into()),
                hlc: 1 << 20,
                origin: 0,
                tomb: false,
                values: vec![Value::Text("u1".into()), Value::Integer(-3)],
                regs: vec![WireRegister {
                    column: 1,
                    hlc: (1 << 20) + 1,
                    origin: 0,
                    value: None,
                }],
            },
            RowChange {
                ident: Value::Blob(vec![1, 2]),
                hlc: 5,
                origin: 0,
                tomb: true,
                values: vec![],
                regs: vec![WireRegister {
                    column: 0,
                    hlc: 6,
                    origin: 0,
                    value: Some(Value::Real(1.5)),
                }],
            },
        ],
        epochs: vec!["e9".into()],
    }
}

fn messages() -> Vec<(&'static str, MessageV1)> {
    vec![
        (
            "hello",
            MessageV1::Hello(Hello {
                session: 1,
                protocol: 1,
                device: "phone".into(),
                store: "notes".into(),
                epoch: "e1".into(),
                security_level: 2,
                mode: SyncMode::PushPull,
                tables: vec![TableSummary {
                    name: "note".into(),
                    mode: DistributedTableType::DeviceCollaboration,
                    columns: vec!["id".into(), "text".into()],
                    schema_version: 1,
                }],
                predicates: Some(filter()),
                pull_from: vec![watermark()],
                features: vec!["zstd".into()],
            }),
        ),
        (
            "welcome",
            MessageV1::Welcome(Welcome {
                session: 1,
                device: "laptop".into(),
                epoch: "e2".into(),
                security_level: 1,
                tables: vec!["note".into()],
                push_from: vec![watermark()],
                refused: vec![Refusal {
                    table: "x".into(),
                    code: 17040001,
                    reason: "not distributed here".into(),
                }],
                features: vec!["zstd".into()],
            }),
        ),
        ("batch", MessageV1::Batch(batch())),
        (
            "ack",
            MessageV1::Ack(Ack {
                session: 9,
                table: "item".into(),
                filter: 3,
                last: 12,
            }),
        ),
        ("finish", MessageV1::Finish(Finish { session: 9 })),
        (
            "done",
            MessageV1::Done(Done {
                session: 9,
                applied: 2,
                conflicts: 1,
            }),
        ),
        (
            "abort",
            MessageV1::Abort(Abort {
                session: 9,
                code: 17040007,
                message: "no".into(),
            }),
        ),
        (
            "packed",
            MessageV1::Packed(Packed {
                session: 9,
                bytes: vec![0x28, 0xb5, 0x2f, 0xfd],
            }),
        ),
        (
            "query",
            MessageV1::Query(Query {
                session: 4,
                store: "shop".into(),
                filter: filter(),
                columns: vec!["shop".into(), "qty".into()],
            }),
        ),
        (
            "query_reply",
            MessageV1::QueryReply(QueryReply {
                session: 4,
                code: 0,
                message: String::new(),
                columns: vec!["shop".into(), "qty".into()],
                rows: vec![
                    vec![Value::Text("north".into()), Value::Integer(3)],
                    vec![Value::Text("north".into()), Value::Null],
                ],
            }),
        ),
        (
            "query_refused",
            MessageV1::QueryReply(QueryReply {
                session: 5,
                code: 17040010,
                message: "too large".into(),
                columns: vec![],
                rows: vec![],
            }),
        ),
        (
            "notice",
            MessageV1::Notice(Notice {
                session: 6,
                code: 17040013,
                message: "big".into(),
            }),
        ),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const GOLDEN: [(&str, &str); 12] = [
    (
        "hello",
        "000001010570686f6e65056e6f746573026531020201046e6f7465000202696404746578740201046974656d06000473686f700003056e6f7274680300037174790201040200037174790e0401046e6f746507026531ac0201047a737464",
    ),
    (
        "welcome",
        "000101066c6170746f700265320101046e6f746501046e6f746507026531ac0201017881859008146e6f74206469737472696275746564206865726501047a737464",
    ),
    (
        "batch",
        "000209046974656d000a0c02047575696403717479010570686f6e650203027531808040000002030275310105010181804000000402010205000100010006000102000000000000f83f01026539",
    ),
    ("ack", "000309046974656d030c"),
    ("finish", "000409"),
    ("done", "0005090201"),
    ("abort", "00060987859008026e6f"),
    ("packed", "0007090428b52ffd"),
    (
        "query",
        "0008040473686f70046974656d06000473686f700003056e6f7274680300037174790201040200037174790e04020473686f7003717479",
    ),
    (
        "query_reply",
        "0009040000020473686f7003717479020203056e6f72746801060203056e6f72746800",
    ),
    ("query_refused", "0009058a85900809746f6f206c617267650000"),
    ("notice", "000b068d85900803626967"),
];

#[test]
fn every_v1_message_encodes_to_its_golden_bytes() {
    let mut wrong = Vec::new();
    for ((name, msg), (golden_name, golden)) in messages().into_iter().zip(GOLDEN) {
        assert_eq!(name, golden_name);
        let msg = SyncMessage::V1(msg);
        let bytes = msg.encode().unwrap();
        if hex(&bytes) != golden {
            wrong.push(format!("    (\"{name}\", \"{}\"),", hex(&bytes)));
        }
        assert_eq!(
            SyncMessage::decode(&bytes).unwrap(),
            msg,
            "{name} round-trips"
        );
    }
    assert!(
        wrong.is_empty(),
        "the wire format changed:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_filter_id_is_pinned() {
    // The watermark of a filtered sync is stored under this number on every device.
    assert_eq!(filter_id(Some(&filter())), 2763078737497505379);
    assert_eq!(filter_id(None), 0);
}
