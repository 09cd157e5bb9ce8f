//! Auto-sync in one process: a store whose table has `auto_sync` pushes each local commit to
//! the connected device by itself, and a burst of a thousand commits — each its own
//! transaction — travels in a handful of pushes, one at a time, not one per commit.

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite_net::{AutoSync, DeviceLevel, NodeEvent};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_commits_is_pushed_in_a_few_coalesced_pushes() {
    let (a, b) = (Dev::plain("a"), Dev::plain("b"));
    let auto = DistributedConfig {
        auto_sync: true,
        ..DistributedConfig::default()
    };
    a.store
        .set_distributed_tables(&["note"], DistributedType::Device, &auto)
        .unwrap();
    b.trusts(a.id(), DeviceLevel::Sl4, None);
    let addr = b.node.listen("127.0.0.1:0").await.unwrap();
    a.trusts(b.id(), DeviceLevel::Sl4, Some(addr.to_string()));
    // Every session a starts, counted as it ends.
    let mut events = a.node.events();
    let sessions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&sessions);
    let counter = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(NodeEvent::SyncFinished {
                    initiator: true,
                    result,
                    ..
                }) => {
                    assert!(result.status.is_ok(), "{result:?}");
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    panic!("{n} events missed")
                }
                Err(_) => return,
            }
        }
    });
    a.node.keep_in_sync(AutoSync::default()).unwrap();
    // Reaching b syncs what is pending (everything, at start): one session.
    assert!(bounded(a.node.reach(b.id())).await.unwrap());
    // That session ends before the burst, so what follows is auto-sync's alone.
    bounded(async {
        while sessions.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    let commits = 1000;
    let store = a.store.clone();
    tokio::task::spawn_blocking(move || {
        for i in 0..commits {
            store
                .insert("note", &peerlite::bucket! { "text" => format!("n{i}") })
                .unwrap();
        }
    })
    .await
    .unwrap();
    bounded(async {
        while b.notes_from(a.id()).len() < commits {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    a.node.shutdown().await;
    b.node.shutdown().await;
    counter.abort();
    let sessions = sessions.load(std::sync::atomic::Ordering::SeqCst);
    // The pending sync on reaching b, then the pushes: far fewer than the commits.
    assert!(sessions >= 2, "{sessions}");
    assert!(
        sessions * 10 <= commits,
        "{commits} commits took {sessions} sessions"
    );
}
