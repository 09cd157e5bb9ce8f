//! A session's peer that vanishes, goes silent or outlasts the caller's patience: each ends
//! the session with its own status (unreachable with the network's code, timed out), the
//! silent peer hears the session's last message again on every silence, and a session the
//! caller gave up on is aborted at the peer. Requests the node cannot serve fail with codes.

use std::time::Duration;

use peerlite::RdbPredicates;
use peerlite::sync::{MessageV1, SyncMessage, SyncMode, SyncStatus};
use peerlite_net::{Connection, DeviceLevel, NodeConfig};

use crate::common::*;

/// `a` with `config`, and `b`, a bare endpoint that accepts `a` and lets the test play it.
async fn with_fake_peer(config: NodeConfig) -> (Dev, Dev, peerlite_net::Listener) {
    let a = Dev::new("a", peerlite::SecurityLevel::S1, config);
    let b = Dev::plain("b");
    b.trusts(a.id(), DeviceLevel::Sl4, None);
    let listener = b.endpoint().bind("127.0.0.1:0").await.unwrap();
    a.trusts(
        b.id(),
        DeviceLevel::Sl4,
        Some(listener.local_addr().to_string()),
    );
    a.add_notes(&["x"]);
    (a, b, listener)
}

/// Reads messages until the connection ends; returns their kinds.
async fn drain(mut conn: Connection, until: impl Fn(&SyncMessage) -> bool) -> Vec<SyncMessage> {
    let mut seen = Vec::new();
    while let Ok(bytes) = conn.recv().await {
        let msg = SyncMessage::decode(&bytes).unwrap();
        let stop = until(&msg);
        seen.push(msg);
        if stop {
            break;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_vanishes_ends_the_session_as_unreachable() {
    let (a, b, mut listener) = with_fake_peer(NodeConfig::default()).await;
    let node = a.node.clone();
    let b_id = b.id();
    let sync = tokio::spawn(async move {
        node.sync_with(b_id, "notes", SyncMode::Push, None, BOUND)
            .await
    });
    let mut conn = bounded(listener.accept()).await.unwrap();
    let hello = SyncMessage::decode(&bounded(conn.recv()).await.unwrap()).unwrap();
    assert!(matches!(hello, SyncMessage::V1(MessageV1::Hello(_))));
    conn.close().await;
    let result = bounded(sync).await.unwrap();
    assert_eq!(
        result.status,
        SyncStatus::Unreachable(17060008),
        "{result:?}"
    );
    assert!(result.status.is_retryable());
    a.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_hears_the_hello_again_then_the_session_times_out() {
    let config = NodeConfig::default()
        .silence(Duration::from_millis(50))
        .max_silences(3);
    let (a, b, mut listener) = with_fake_peer(config).await;
    let node = a.node.clone();
    let b_id = b.id();
    let sync = tokio::spawn(async move {
        node.sync_with(b_id, "notes", SyncMode::Push, None, BOUND)
            .await
    });
    let conn = bounded(listener.accept()).await.unwrap();
    let reader = tokio::spawn(drain(conn, |_| false));
    let result = bounded(sync).await.unwrap();
    assert_eq!(result.status, SyncStatus::TimedOut, "{result:?}");
    a.node.shutdown().await;
    let seen = bounded(reader).await.unwrap();
    let hellos = seen
        .iter()
        .filter(|m| matches!(m, SyncMessage::V1(MessageV1::Hello(_))))
        .count();
    assert_eq!(hellos, 4, "the first Hello and one per silence: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_caller_gave_up_on_is_aborted_at_the_peer() {
    let config = NodeConfig::default()
        .silence(Duration::from_millis(50))
        .max_silences(10_000);
    let (a, b, mut listener) = with_fake_peer(config).await;
    let node = a.node.clone();
    let b_id = b.id();
    let sync = tokio::spawn(async move {
        node.sync_with(
            b_id,
            "notes",
            SyncMode::Push,
            None,
            Duration::from_millis(500),
        )
        .await
    });
    let conn = bounded(listener.accept()).await.unwrap();
    let reader = tokio::spawn(drain(conn, |m| {
        matches!(m, SyncMessage::V1(MessageV1::Abort(_)))
    }));
    let result = bounded(sync).await.unwrap();
    assert_eq!(result.status, SyncStatus::TimedOut, "{result:?}");
    let seen = bounded(reader).await.unwrap();
    match seen.last() {
        Some(SyncMessage::V1(MessageV1::Abort(abort))) => assert_eq!(abort.code, 17040008),
        other => panic!("no Abort reached the peer: {other:?}"),
    }
    a.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_node_cannot_serve_fail_with_their_codes() {
    let (a, b) = (Dev::plain("a"), Dev::plain("b"));
    pair(&a, &b).await;
    let err = a
        .node
        .sync("elsewhere", SyncMode::Push, None, BOUND)
        .await
        .unwrap_err();
    assert_eq!(err.code(), 17060023);
    let err =
        bounded(
            a.node
                .remote_query(b.id(), "elsewhere", &RdbPredicates::new("note"), &[], BOUND),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), 17040005, "{err}");
    let stranger = Dev::plain("stranger");
    let err = bounded(a.node.remote_query(
        stranger.id(),
        "notes",
        &RdbPredicates::new("note"),
        &[],
        BOUND,
    ))
    .await
    .unwrap_err();
    assert_eq!(err.code(), 17060015);
    // The connection that carried the refused query still syncs.
    a.add_notes(&["still"]);
    let results = bounded(a.node.sync("notes", SyncMode::Push, None, BOUND))
        .await
        .unwrap();
    assert_eq!(results[0].1.status.code(), 0);
    assert_eq!(a.node.connected(), vec![b.id()]);
    a.node.shutdown().await;
    b.node.shutdown().await;
    assert_eq!(
        a.node
            .sync("notes", SyncMode::Push, None, BOUND)
            .await
            .unwrap_err()
            .code(),
        17060023
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_runs_a_bounded_number_of_sessions() {
    use peerlite::sync::{DeviceLevel as PeerLevel, Dispatcher, Peer};
    let (a, b) = (Dev::plain("a"), Dev::plain("b"));
    let addr = pair(&a, &b).await;
    let mut at_a = Dispatcher::new();
    let as_b = Peer::new(b.id().to_string(), PeerLevel::Sl4);
    let conn = bounded(a.endpoint().connect(&addr, &b.id())).await.unwrap();
    // Sessions that push and then never send a batch: each stays running at b.
    for _ in 0..65 {
        let hello = at_a.start(&a.store, &as_b, SyncMode::Push, None).unwrap();
        conn.send(&hello.encode().unwrap()).await.unwrap();
    }
    let mut answers = Vec::new();
    let mut conn = conn;
    while answers.len() < 65 {
        let msg = SyncMessage::decode(&bounded(conn.recv()).await.unwrap()).unwrap();
        answers.push(msg);
    }
    let welcomes = answers
        .iter()
        .filter(|m| matches!(m, SyncMessage::V1(MessageV1::Welcome(_))))
        .count();
    let refused: Vec<u32> = answers
        .iter()
        .filter_map(|m| match m {
            SyncMessage::V1(MessageV1::Abort(a)) => Some(a.code),
            _ => None,
        })
        .collect();
    assert_eq!((welcomes, refused), (64, vec![17060025]));
    conn.close().await;
    a.node.shutdown().await;
    b.node.shutdown().await;
}
