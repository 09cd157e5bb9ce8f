//! A client reset of a key-value store. Adversary round 3, finding 5: in manual mode the
//! unsynced entries were listed with their stored columns — the value's type as its internal
//! number (`type=0`, `type=4`) and bytes as stored. They are listed as the user wrote them:
//! the value in its own type and the type's name.

use peerlite::reset::ResetMode;
use peerlite::sync::{SyncMode, sync_in_memory};
use peerlite::{KvValue, Value};

use crate::common::*;

#[test]
fn manual_mode_lists_unsynced_entries_with_their_types_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let a = single(dir.path(), "a");
    let b = single(dir.path(), "b");
    a.store.put("shared", s("kept")).unwrap();
    sync(&b, &a, SyncMode::Pull);
    b.at(10);
    b.store.put("name", s("offline")).unwrap();
    b.store.put("blob", KvValue::Bytes(vec![1, 2, 3])).unwrap();
    b.store.put("on", KvValue::Bool(true)).unwrap();
    let rdb = b.store.sync_store().unwrap();
    let reseed = rdb.begin_reset("a").unwrap();
    let (pulled, _) = sync_in_memory(
        reseed.seed(),
        a.store.sync_store().unwrap(),
        SyncMode::Pull,
        None,
    )
    .unwrap();
    assert!(pulled.status.is_ok(), "{pulled:?}");
    let report = reseed.finish(ResetMode::Manual).unwrap();
    let listed: Vec<(Value, Vec<(String, Value)>)> = report
        .unsynced
        .iter()
        .map(|u| (u.change.key.clone(), u.values.clone()))
        .collect();
    let entry = |key: &str, value: Value, ty: &str| {
        (
            Value::Text(key.to_owned()),
            vec![
                ("value".to_owned(), value),
                ("type".to_owned(), Value::Text(ty.to_owned())),
            ],
        )
    };
    for expected in [
        entry("name", Value::Text("offline".into()), "string"),
        entry("blob", Value::Blob(vec![1, 2, 3]), "bytes"),
        entry("on", Value::Integer(1), "bool"),
    ] {
        assert!(listed.contains(&expected), "{expected:?} not in {listed:?}");
    }
    // Manual mode leaves them out of the store (the backup keeps them).
    assert_eq!(entries(&b.store), pairs(&[("shared", s("kept"))]));
}
