//! A trusted device that lies about its id in the Hello: its channel is genuine (its own
//! certificate, in the node's trust store), but the Hello claims another device — one the
//! node trusts too, at a higher level. The node answers with an Abort 17040007 and applies
//! nothing; the same device telling the truth syncs.

use peerlite::sync::{
    DeviceLevel as PeerLevel, Dispatcher, MessageV1, Peer, SyncMessage, SyncMode,
};
use peerlite_net::DeviceLevel;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_claiming_another_device_is_refused() {
    let (liar, b, victim) = (Dev::plain("liar"), Dev::plain("b"), Dev::plain("victim"));
    let addr = pair(&liar, &b).await;
    b.trusts(victim.id(), DeviceLevel::Sl4, None);
    liar.add_notes(&["forged"]);
    // The liar's genuine Hello, with the victim's id put in.
    let mut at_liar = Dispatcher::new();
    let hello = at_liar
        .start(
            &liar.store,
            &Peer::new(b.id().to_string(), PeerLevel::Sl4),
            SyncMode::Push,
            None,
        )
        .unwrap();
    let SyncMessage::V1(MessageV1::Hello(mut h)) = hello else {
        panic!("not a Hello")
    };
    h.device = victim.id().to_string();
    let forged = SyncMessage::V1(MessageV1::Hello(h.clone()));

    let mut conn = bounded(liar.endpoint().connect(&addr, &b.id()))
        .await
        .unwrap();
    conn.send(&forged.encode().unwrap()).await.unwrap();
    let answer = SyncMessage::decode(&bounded(conn.recv()).await.unwrap()).unwrap();
    match answer {
        SyncMessage::V1(MessageV1::Abort(a)) => {
            assert_eq!((a.session, a.code), (h.session, 17040007), "{}", a.message);
            assert!(a.message.contains(&liar.id().to_string()), "{}", a.message);
        }
        other => panic!("expected an Abort, got {other:?}"),
    }
    assert!(b.notes_from(victim.id()).is_empty());
    assert!(b.notes_from(liar.id()).is_empty());
    conn.close().await;

    // Telling the truth works.
    let results = bounded(liar.node.sync("notes", SyncMode::Push, None, BOUND))
        .await
        .unwrap();
    assert_eq!(results[0].1.status.code(), 0, "{:?}", results[0].1);
    assert_eq!(b.notes_from(liar.id()), vec!["forged".to_string()]);
    liar.node.shutdown().await;
    b.node.shutdown().await;
}
