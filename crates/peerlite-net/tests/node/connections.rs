//! Adversary F14: a trusted device could open connection after connection and park a frame
//! header announcing 16 MiB, then 15 MiB of it, on each: the node kept every one open (the
//! link table held only the newest, the older ones ran on) and buffered each partial frame —
//! 40 connections, 600 MB. A device now holds at most `MAX_CONNECTIONS_PER_DEVICE`
//! connections: opening another closes the oldest, so what a device can make the node buffer
//! is bounded by that many frames.

use peerlite_net::MAX_CONNECTIONS_PER_DEVICE;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_holds_at_most_a_few_connections() {
    let (a, b) = (Dev::plain("a"), Dev::plain("b"));
    let addr = pair(&a, &b).await;
    let opened = MAX_CONNECTIONS_PER_DEVICE + 4;
    let mut conns = Vec::new();
    for _ in 0..opened {
        conns.push(bounded(a.endpoint().connect(&addr, &b.id())).await.unwrap());
        // The node attaches each before the next opens: the order of ages is the order here.
        let want = conns.len().min(MAX_CONNECTIONS_PER_DEVICE);
        bounded(async {
            while b.node.connections(&a.id()) != want {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
    }
    // The oldest were closed by the node (their reads end); the newest still work.
    let newest = conns.split_off(opened - MAX_CONNECTIONS_PER_DEVICE);
    for mut old in conns {
        assert!(
            bounded(old.recv()).await.is_err(),
            "an old connection stayed open"
        );
    }
    assert_eq!(b.node.connections(&a.id()), MAX_CONNECTIONS_PER_DEVICE);
    for conn in newest {
        conn.close().await;
    }
    // And the device still syncs.
    a.add_notes(&["after"]);
    let results = bounded(
        a.node
            .sync("notes", peerlite::sync::SyncMode::Push, None, BOUND),
    )
    .await
    .unwrap();
    assert_eq!(results[0].1.status.code(), 0, "{:?}", results[0].1);
    assert_eq!(b.notes_from(a.id()), vec!["after".to_string()]);
    a.node.shutdown().await;
    b.node.shutdown().await;
}
