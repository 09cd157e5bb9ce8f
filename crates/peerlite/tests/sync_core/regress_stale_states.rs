//! Issue 9, item 17: a remote state that loses the merge changes nothing and is not counted.
//!
//! The story: alpha writes u1 and it reaches beta and gamma; beta deletes it. Then gamma, which
//! still holds the old live u1, syncs with beta (or an old batch of alpha's is replayed in a
//! new session). The merge rightly keeps beta's tombstone — but it still took the stale live
//! state for a change: `received` went up, the tombstone was written again with a new sequence
//! number (so beta sent its delete to every peer once more), and observers heard of it. A state
//! that loses the merge must leave no trace: no count, no new sequence number, no notification.
//! Each test below is one form of staleness (a deleted row, one with column registers older
//! than its delete, a live row that is newer here, a duplicate, an old batch replayed, device
//! collaboration's device tables).

use std::sync::{Arc, Mutex};

use peerlite::sync::{MessageV1, RemoteChange, SyncMessage, SyncMode};
use peerlite::{RdbStore, SubscribeType, Value, bucket};

use crate::common::*;

/// What a store heard from sync: remote-change details and table-level notifications.
struct Heard {
    details: Arc<Mutex<Vec<RemoteChange>>>,
    tables: Arc<Mutex<usize>>,
}

fn listen(store: &RdbStore) -> Heard {
    let details = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&details);
    store
        .on_remote_change(move |c| sink.lock().unwrap().push(c.clone()))
        .unwrap();
    let tables = Arc::new(Mutex::new(0));
    let count = Arc::clone(&tables);
    store
        .on_data_change(SubscribeType::Remote, move |_| *count.lock().unwrap() += 1)
        .unwrap();
    Heard { details, tables }
}

impl Heard {
    fn nothing(&self) -> bool {
        self.details.lock().unwrap().is_empty() && *self.tables.lock().unwrap() == 0
    }
}

/// The sequence number of `key`'s clock row in `table`.
fn seq_of(store: &RdbStore, table: &str, key: impl Into<Value>) -> i64 {
    store.change_of(table, &key.into()).unwrap().unwrap().seq
}

/// alpha, beta and gamma all hold u1 ("start", 1), from alpha.
fn three(root: &std::path::Path) -> [RdbStore; 3] {
    let clock = clock_at(T0);
    let a = item_device(root, "alpha", &clock);
    let b = item_device(root, "beta", &clock);
    let c = item_device(root, "gamma", &clock);
    add_item(&a, "u1", "start", 1);
    sync(&a, &b, SyncMode::Push);
    sync(&a, &c, SyncMode::Push);
    clock.advance(10);
    [a, b, c]
}

#[test]
fn a_stale_live_state_for_a_row_deleted_here_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let [_a, b, c] = three(dir.path());
    b.delete(&by_uuid("u1")).unwrap();
    let seq = seq_of(&b, "item", "u1");
    let heard = listen(&b);
    let (sent, on_b) = sync(&c, &b, SyncMode::Push);
    assert_eq!(sent.sent, 1, "gamma does send its (older) u1");
    assert_eq!(on_b.received, 0, "a losing state is not a change: {on_b:?}");
    assert_eq!(
        seq_of(&b, "item", "u1"),
        seq,
        "the tombstone is not re-stamped"
    );
    assert!(
        b.change_of("item", &"u1".into())
            .unwrap()
            .unwrap()
            .tombstone
    );
    assert!(heard.nothing(), "no notification for a state that lost");
    assert!(items(&b).is_empty());
    // And so the delete is not sent again to a peer that already has it.
    let (to_a, _) = sync(&b, &_a, SyncMode::Push);
    let (again, _) = sync(&b, &_a, SyncMode::Push);
    assert_eq!((to_a.sent, again.sent), (1, 0));
}

#[test]
fn a_stale_state_with_column_writes_older_than_the_delete_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "alpha", &clock);
    let b = item_device(dir.path(), "beta", &clock);
    let c = item_device(dir.path(), "gamma", &clock);
    add_item(&a, "u1", "start", 1);
    sync(&a, &b, SyncMode::Push);
    sync(&a, &c, SyncMode::Push);
    // gamma's u1 carries column registers (written before beta's delete, which it never got).
    clock.advance(10);
    c.update(&bucket! { "title" => "gamma's title" }, &by_uuid("u1"))
        .unwrap();
    a.update(&bucket! { "qty" => 7 }, &by_uuid("u1")).unwrap();
    sync(&a, &c, SyncMode::Push);
    clock.advance(10);
    b.delete(&by_uuid("u1")).unwrap();
    let seq = seq_of(&b, "item", "u1");
    let heard = listen(&b);
    let (_, on_b) = sync(&c, &b, SyncMode::Push);
    assert_eq!(on_b.received, 0, "{on_b:?}");
    assert_eq!(seq_of(&b, "item", "u1"), seq);
    assert!(heard.nothing());
    assert!(items(&b).is_empty());
}

/// This form already held before the fix; it stays so that every form of staleness is covered.
#[test]
fn an_older_live_state_of_a_row_newer_here_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let [_a, b, c] = three(dir.path());
    b.update(
        &bucket! { "title" => "newer on beta", "qty" => 2 },
        &by_uuid("u1"),
    )
    .unwrap();
    let seq = seq_of(&b, "item", "u1");
    let heard = listen(&b);
    let (_, on_b) = sync(&c, &b, SyncMode::Push);
    assert_eq!(on_b.received, 0, "{on_b:?}");
    assert_eq!(seq_of(&b, "item", "u1"), seq);
    assert!(heard.nothing());
    assert_eq!(
        items(&b),
        vec![item("u1", Some("newer on beta"), Some(2), None)]
    );
}

/// Runs a session alpha → beta in which every batch is delivered twice, and the first batch
/// (or the `Finish` of a session with nothing to send) is preceded by `old`, a batch of an
/// earlier session re-addressed to this one.
fn replay(a: &RdbStore, b: &RdbStore, old: Option<&SyncMessage>) -> Pumped {
    let mut injected = false;
    pump(a, b, SyncMode::Push, None, 1, |_, msg| {
        let SyncMessage::V1(m) = msg;
        let (session, duplicate) = match m {
            MessageV1::Batch(batch) => (batch.session, true),
            MessageV1::Finish(f) => (f.session, false),
            _ => return vec![msg.clone()],
        };
        let mut out = Vec::new();
        if let (Some(SyncMessage::V1(MessageV1::Batch(stale))), false) = (old, injected) {
            let mut stale = stale.clone();
            stale.session = session;
            stale.prev = 0;
            out.push(SyncMessage::V1(MessageV1::Batch(stale)));
            injected = true;
        }
        out.push(msg.clone());
        if duplicate {
            out.push(msg.clone());
        }
        out
    })
}

#[test]
fn an_old_batch_replayed_in_a_new_session_and_duplicates_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "alpha", &clock);
    let b = item_device(dir.path(), "beta", &clock);
    add_item(&a, "u1", "start", 1);
    add_item(&a, "u2", "other", 2);
    let first = replay(&a, &b, None);
    assert_eq!(
        first.responder.received, 2,
        "each row counted once, duplicates not"
    );
    let old = first
        .seen
        .iter()
        .map(|(_, m)| m)
        .find(|m| is_batch(m))
        .cloned()
        .unwrap();
    clock.advance(10);
    // alpha deletes u1 and edits u2; beta gets both, and the old batch (u1 alive) with them.
    a.delete(&by_uuid("u1")).unwrap();
    a.update(&bucket! { "title" => "edited" }, &by_uuid("u2"))
        .unwrap();
    let heard = listen(&b);
    let second = replay(&a, &b, Some(&old));
    assert_eq!(second.responder.received, 2, "{:?}", second.responder);
    assert_eq!(items(&b), vec![item("u2", Some("edited"), Some(2), None)]);
    let keys: Vec<Value> = heard
        .details
        .lock()
        .unwrap()
        .iter()
        .flat_map(|c| c.keys.iter().map(|(_, k)| k.clone()))
        .collect();
    assert_eq!(keys.len(), 2, "one notification per real change: {keys:?}");
    // Replay once more, after the fact: nothing at all.
    let (seq1, seq2) = (seq_of(&b, "item", "u1"), seq_of(&b, "item", "u2"));
    let heard = listen(&b);
    let third = replay(&a, &b, Some(&old));
    assert_eq!(third.responder.received, 0, "{:?}", third.responder);
    assert_eq!(
        (seq_of(&b, "item", "u1"), seq_of(&b, "item", "u2")),
        (seq1, seq2)
    );
    assert!(heard.nothing());
}

#[test]
fn a_stale_row_of_another_device_in_a_device_table_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = note_device(dir.path(), "alpha", &clock);
    let b = note_device(dir.path(), "beta", &clock);
    let c = note_device(dir.path(), "gamma", &clock);
    a.insert("note", &bucket! { "id" => 1, "text" => "a1", "n" => 1 })
        .unwrap();
    sync(&a, &b, SyncMode::Push);
    sync(&a, &c, SyncMode::Push);
    clock.advance(10);
    a.delete(&peerlite::RdbPredicates::new("note").equal_to("id", 1))
        .unwrap();
    sync(&a, &b, SyncMode::Push);
    let table = device_table(&b, "alpha");
    assert!(notes(&b, &table).is_empty());
    let seq = seq_of(&b, &table, 1);
    let heard = listen(&b);
    let (sent, on_b) = sync(&c, &b, SyncMode::Push);
    assert_eq!(sent.sent, 1, "gamma relays alpha's old note");
    assert_eq!(on_b.received, 0, "{on_b:?}");
    assert_eq!(seq_of(&b, &table, 1), seq);
    assert!(heard.nothing());
    assert!(notes(&b, &table).is_empty());
}
