//! The seams discovery and auto-sync build on: addresses learned at run time are dialled
//! (before the trust store's, which may have none), `connect` opens a connection that later
//! syncs reuse, and `local_commits` ticks after each local commit of a served store.

use peerlite::sync::SyncMode;
use peerlite_net::{DeviceLevel, NodeEvent};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learned_addresses_connections_and_commit_ticks() {
    let (a, b) = (Dev::plain("a"), Dev::plain("b"));
    b.trusts(a.id(), DeviceLevel::Sl4, None);
    let addr = b.node.listen("127.0.0.1:0").await.unwrap();
    // a trusts b but knows no address for it: unreachable until one is learned.
    a.trusts(b.id(), DeviceLevel::Sl4, None);
    let r = bounded(
        a.node
            .sync_with(b.id(), "notes", SyncMode::Push, None, BOUND),
    )
    .await;
    assert_eq!(r.status.code(), 17060021, "{r:?}");
    a.node
        .learn_addresses(b.id(), vec!["127.0.0.1:1".into(), addr.to_string()]);
    let mut events = a.node.events();
    bounded(a.node.connect(b.id())).await.unwrap();
    assert_eq!(a.node.connected(), vec![b.id()]);
    let connected = bounded(async {
        loop {
            if let NodeEvent::Connected { device, .. } = events.recv().await.unwrap() {
                return device;
            }
        }
    })
    .await;
    assert_eq!(connected, b.id());

    let mut commits = a.node.local_commits("notes").unwrap();
    let before = *commits.borrow_and_update();
    a.add_notes(&["one"]);
    bounded(commits.changed()).await.unwrap();
    assert!(*commits.borrow() > before);
    let r = bounded(
        a.node
            .sync_with(b.id(), "notes", SyncMode::Push, None, BOUND),
    )
    .await;
    assert_eq!((r.status.code(), r.sent), (0, 1));
    // The sync used the open connection: still one, and b has the note.
    assert_eq!(a.node.connected(), vec![b.id()]);
    assert_eq!(b.notes_from(a.id()), vec!["one".to_string()]);
    // Forgetting the learned address does not close the connection.
    a.node.learn_addresses(b.id(), Vec::new());
    assert_eq!(a.node.connected(), vec![b.id()]);
    a.node.shutdown().await;
    b.node.shutdown().await;
    assert!(a.node.connected().is_empty());
}
