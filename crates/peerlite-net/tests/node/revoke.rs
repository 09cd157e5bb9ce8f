//! `peerlite trust remove` while a device was connected changed nothing for that connection:
//! the revoked device went on receiving a whole table, eight seconds after `serve` had read
//! the new trust store. A node now closes the connections of devices its trust set no longer
//! holds as they connected (removed, or recorded at another level), and nothing more is sent.

use peerlite::sync::SyncMode;
use peerlite_net::{DeviceLevel, NodeEvent};

use crate::common::*;

/// `a` pulls `b`'s notes.
async fn pull(a: &Dev, b: &Dev) -> Vec<(peerlite_net::DeviceId, peerlite::sync::DeviceResult)> {
    let patience = std::time::Duration::from_secs(20);
    bounded(
        a.node
            .sync_devices(&[b.id()], "notes", SyncMode::Pull, None, patience),
    )
    .await
    .unwrap()
}

async fn disconnected(events: &mut tokio::sync::broadcast::Receiver<NodeEvent>) -> String {
    loop {
        if let Ok(NodeEvent::Disconnected { reason, .. }) = events.recv().await {
            return reason;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_or_relevelling_a_device_closes_its_open_connection() {
    for relevel in [false, true] {
        let (a, b) = (Dev::plain("a"), Dev::plain("b"));
        pair(&a, &b).await;
        b.add_notes(&["one"]);
        let results = pull(&a, &b).await;
        assert!(results[0].1.status.is_ok(), "{results:?}");
        assert!(a.node.connected().contains(&b.id()));
        let mut events = b.node.events();
        if relevel {
            b.trusts(a.id(), DeviceLevel::Sl1, None);
        } else {
            b.trust.remove(&a.id());
        }
        b.node.enforce_trust();
        let reason = bounded(disconnected(&mut events)).await;
        assert!(!reason.is_empty());
        bounded(async {
            while a.node.connected().contains(&b.id()) {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
        // Nothing more reaches a without trust: a new sync is refused in the handshake.
        b.add_notes(&["two"]);
        let results = pull(&a, &b).await;
        if relevel {
            // Reconnected at the new level: S1 notes still flow to an SL1 device.
            assert!(results[0].1.status.is_ok(), "{results:?}");
        } else {
            assert!(!results[0].1.status.is_ok(), "{results:?}");
            assert_eq!(a.notes_from(b.id()), vec!["one".to_string()]);
        }
        a.node.shutdown().await;
        b.node.shutdown().await;
    }
}
