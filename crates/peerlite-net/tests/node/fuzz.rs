//! Hostile messages from a trusted peer, fed to the NODE (not only to the frame decoder):
//! random payloads and valid messages of every kind with bytes overwritten, cut or inserted,
//! on a genuine authenticated connection. Nothing panics, a payload that is no message closes
//! that connection (after whatever decoded was answered or ignored), and the node keeps
//! serving: a real sync from another device succeeds after every case.

use peerlite::sync::{
    Abort, Ack, Batch, DeviceLevel as PeerLevel, Dispatcher, Done, Finish, MessageV1, Peer, Query,
    SyncMessage, SyncMode,
};
use peerlite::{RdbPredicates, Value};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::common::*;

/// Valid messages of every kind, as a peer could send them.
fn valid(hello: &SyncMessage) -> Vec<Vec<u8>> {
    let batch = Batch {
        session: hello.session(),
        table: "note".into(),
        filter: 0,
        prev: 0,
        last: 3,
        columns: vec!["id".into(), "text".into()],
        devices: vec!["x".into()],
        rows: vec![],
        epochs: vec![],
    };
    let s = hello.session();
    [
        hello.clone(),
        SyncMessage::V1(MessageV1::Batch(batch)),
        SyncMessage::V1(MessageV1::Ack(Ack {
            session: s,
            table: "note".into(),
            filter: 0,
            last: 9,
        })),
        SyncMessage::V1(MessageV1::Finish(Finish { session: s })),
        SyncMessage::V1(MessageV1::Done(Done {
            session: s,
            applied: 1,
            conflicts: 0,
        })),
        SyncMessage::V1(MessageV1::Abort(Abort {
            session: s,
            code: 1,
            message: "m".into(),
        })),
        SyncMessage::V1(MessageV1::Query(Query::new(
            1,
            "notes",
            &RdbPredicates::new("note").equal_to("text", Value::from("a")),
            &["text"],
        ))),
    ]
    .iter()
    .map(|m| m.encode().unwrap())
    .collect()
}

fn hostile(valid: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<Vec<u8>>> {
    let n = valid.len();
    let mutated = (
        0..n,
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        any::<usize>(),
        proptest::collection::vec(any::<u8>(), 0..6),
    )
        .prop_map(move |(i, flips, cut, insert)| {
            let mut bytes = valid[i].clone();
            for (at, byte) in flips {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            let at = cut % (bytes.len() + 1);
            bytes.splice(at..at, insert);
            bytes
        });
    let payload = prop_oneof![proptest::collection::vec(any::<u8>(), 0..300), mutated];
    proptest::collection::vec(payload, 1..8)
}

#[test]
fn hostile_messages_close_that_connection_and_the_node_keeps_serving() {
    count_panics();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (fuzzer, b, honest) = (Dev::plain("fuzzer"), Dev::plain("b"), Dev::plain("honest"));
    let addr = rt.block_on(pair(&fuzzer, &b));
    b.trusts(honest.id(), peerlite_net::DeviceLevel::Sl4, None);
    honest.trusts(b.id(), peerlite_net::DeviceLevel::Sl4, Some(addr.clone()));
    let hello = Dispatcher::new()
        .start(
            &fuzzer.store,
            &Peer::new(b.id().to_string(), PeerLevel::Sl4),
            SyncMode::PushPull,
            None,
        )
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 32,
        ..Config::default()
    });
    let round = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&hostile(valid(&hello)), |payloads| {
            rt.block_on(async {
                let mut conn = bounded(fuzzer.endpoint().connect(&addr, &b.id()))
                    .await
                    .unwrap();
                for p in &payloads {
                    if conn.send(p).await.is_err() {
                        break;
                    }
                }
                // Never a message: the node must close the connection.
                let _ = conn.send(&[0xff, 0xff, 0xff]).await;
                bounded(async { while conn.recv().await.is_ok() {} }).await;
                let round = round.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                honest.add_notes(&[&format!("round {round}")]);
                let results = bounded(honest.node.sync("notes", SyncMode::Push, None, BOUND))
                    .await
                    .unwrap();
                assert_eq!(results[0].1.status.code(), 0, "{:?}", results[0].1);
                assert_eq!(b.notes_from(honest.id()).len(), round);
            });
            Ok(())
        })
        .unwrap();
    assert_eq!(panics(), 0);
    rt.block_on(async {
        honest.node.shutdown().await;
        b.node.shutdown().await;
    });
}
