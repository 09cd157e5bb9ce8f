//! Two devices whose distributed table had the same column names but other types or another
//! key (`note(id INTEGER PRIMARY KEY, text TEXT)` here, `note(id TEXT PRIMARY KEY, text BLOB)`
//! there) passed the handshake, which compared names only: a push silently converted values
//! by the receiver's affinity (the INTEGER key 1 became the TEXT '1'), and every pull then
//! failed with SQLite's "datatype mismatch" (a text key cannot enter an INTEGER PRIMARY KEY),
//! forever. Now the handshake compares the identity and the declared types (by affinity) and
//! refuses the table with 17040005 naming the column and both types, in both directions; and
//! a remote row the receiver still cannot store (from a peer that declares no types) is a
//! recorded conflict, never a batch that fails on every session.

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::sync::{MessageV1, SyncMessage, SyncMode, sync_in_memory};
use peerlite::{RdbStore, Value, values};

use crate::common::*;

/// A device whose `note` table is made by `create` and distributed (device collaboration).
fn device_with(root: &std::path::Path, device: &str, create: &str) -> RdbStore {
    let store = open_store(root, device, &clock_at(T0));
    store.execute(create, &[]).unwrap();
    store
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    store
}

#[test]
fn another_type_or_key_is_refused_in_both_directions_naming_the_column() {
    let cases = [
        (
            "note(id INTEGER PRIMARY KEY, text TEXT)",
            "note(id TEXT PRIMARY KEY, text BLOB)",
            &["note.id is ", "INTEGER", "TEXT", "note.text is "][..],
        ),
        (
            "note(id INTEGER PRIMARY KEY, text TEXT)",
            "note(id INTEGER PRIMARY KEY, text REAL)",
            &["note.text is ", "TEXT", "REAL"],
        ),
        (
            "note(id INTEGER PRIMARY KEY, text TEXT)",
            "note(id INTEGER PRIMARY KEY, text)",
            &["note.text is ", "TEXT", "untyped"],
        ),
        (
            "note(id INTEGER PRIMARY KEY, text TEXT)",
            "note(id INT PRIMARY KEY, text TEXT)",
            &["identified by ", "id (the rowid)", "by id on"],
        ),
        (
            "note(id INTEGER PRIMARY KEY, text TEXT)",
            "note(id INTEGER, text TEXT PRIMARY KEY)",
            &["identified by ", "id (the rowid)", "by text on"],
        ),
    ];
    for (i, (here, there, reason)) in cases.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let phone = device_with(dir.path(), "phone", &format!("CREATE TABLE {here}"));
        let laptop = device_with(dir.path(), "laptop", &format!("CREATE TABLE {there}"));
        phone
            .execute("INSERT INTO note(id, text) VALUES (1, 'a')", &[])
            .unwrap();
        laptop
            .execute("INSERT INTO note(id, text) VALUES ('7', 'b')", &[])
            .unwrap();
        for (a, b) in [(&phone, &laptop), (&laptop, &phone)] {
            for mode in [SyncMode::Push, SyncMode::Pull, SyncMode::PushPull] {
                let (on_a, on_b) = sync_in_memory(a, b, mode, None).unwrap();
                assert_eq!(on_a.status.code(), 17040005, "case {i} {mode:?}: {on_a:?}");
                let message = on_a.message.clone().unwrap_or_default();
                for part in reason {
                    assert!(message.contains(part), "case {i} {mode:?}: {message}");
                }
                assert_eq!((on_a.sent, on_b.sent), (0, 0), "case {i} {mode:?}");
            }
        }
        assert!(!table_exists(&phone, &device_table(&phone, "laptop")));
        assert!(!table_exists(&laptop, &device_table(&laptop, "phone")));
    }
}

#[test]
fn types_of_the_same_affinity_sync() {
    let dir = tempfile::tempdir().unwrap();
    let phone = device_with(
        dir.path(),
        "phone",
        "CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT, n BIGINT)",
    );
    let laptop = device_with(
        dir.path(),
        "laptop",
        "CREATE TABLE note(id integer primary key, text VARCHAR(20), n INT)",
    );
    phone
        .execute("INSERT INTO note VALUES (1, 'a', 2)", &[])
        .unwrap();
    sync(&phone, &laptop, SyncMode::PushPull);
    assert_eq!(
        rows(
            &laptop,
            &format!(
                "SELECT id, text, n FROM {}",
                peerlite_testkit::quote(&device_table(&laptop, "phone"))
            )
        ),
        vec![values![1, "a", 2].to_vec()]
    );
}

/// Delivers every message, the `Hello` without its type declarations (as a build that
/// predates them sends it).
fn undeclared(_: Dir, msg: &SyncMessage) -> Vec<SyncMessage> {
    let mut msg = msg.clone();
    let SyncMessage::V1(MessageV1::Hello(h)) = &mut msg else {
        return vec![msg];
    };
    h.features.retain(|f| !f.starts_with("types:"));
    vec![msg]
}

#[test]
fn a_row_the_receiver_cannot_store_is_a_recorded_conflict_not_a_sync_failing_forever() {
    let dir = tempfile::tempdir().unwrap();
    let phone = device_with(
        dir.path(),
        "phone",
        "CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT)",
    );
    let laptop = device_with(
        dir.path(),
        "laptop",
        "CREATE TABLE note(id TEXT PRIMARY KEY, text BLOB)",
    );
    laptop
        .execute(
            "INSERT INTO note VALUES ('x', x'00ff'), ('2', 'two'), ('y', 'why')",
            &[],
        )
        .unwrap();
    // The phone pulls from a laptop that declares no types: 'x' and 'y' cannot be keys here.
    for round in 0..2 {
        let pumped = pump(&phone, &laptop, SyncMode::Pull, None, 100, undeclared);
        assert!(pumped.initiator.status.is_ok(), "round {round}: {pumped:?}");
        let expected = if round == 0 { 2 } else { 0 };
        assert_eq!(pumped.initiator.conflicts, expected, "round {round}");
    }
    let table = device_table(&phone, "laptop");
    assert_eq!(
        rows(
            &phone,
            &format!("SELECT id, text FROM {}", peerlite_testkit::quote(&table))
        ),
        vec![values![2, "two"].to_vec()],
        "the row it can store arrived"
    );
    let conflicts = phone.conflicts().unwrap();
    let keys: Vec<&Value> = conflicts.iter().map(|c| &c.key).collect();
    assert_eq!(keys, [&Value::from("x"), &Value::from("y")]);
    for c in &conflicts {
        assert_eq!(c.device, "laptop");
        assert!(c.message.contains("datatype mismatch"), "{c:?}");
        assert!(!c.values.is_empty(), "the remote row is kept: {c:?}");
    }
    // Later rows still arrive: the table is not stuck.
    laptop
        .execute("INSERT INTO note VALUES ('3', 'three')", &[])
        .unwrap();
    let pumped = pump(&phone, &laptop, SyncMode::Pull, None, 100, undeclared);
    assert!(pumped.initiator.status.is_ok(), "{pumped:?}");
    assert_eq!(count(&phone, &table), 2);
}
