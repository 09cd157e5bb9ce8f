//! Typed values on the wire: every `KvValue` variant arrives as the same variant with the same
//! value, in both kinds of store, and type changes travel too.

use peerlite::sync::SyncMode;
use peerlite::{Entry, KvValue};

use crate::common::*;

fn every_type() -> Vec<(String, KvValue)> {
    pairs(&[
        ("bool.false", KvValue::Bool(false)),
        ("bool.true", KvValue::Bool(true)),
        ("bytes.empty", KvValue::Bytes(Vec::new())),
        ("bytes.text_like", KvValue::Bytes(b"hello".to_vec())),
        ("bytes.zeros", KvValue::Bytes(vec![0, 0, 255, 1])),
        ("float.integral", KvValue::Float(3.0)),
        ("float.max", KvValue::Float(f64::MAX)),
        ("float.neg", KvValue::Float(-0.125)),
        ("float.tiny", KvValue::Float(f64::MIN_POSITIVE)),
        ("float.zero", KvValue::Float(0.0)),
        ("int.max", KvValue::Integer(i64::MAX)),
        ("int.min", KvValue::Integer(i64::MIN)),
        ("int.one", KvValue::Integer(1)),
        ("int.zero", KvValue::Integer(0)),
        ("str.digits", s("42")),
        ("str.empty", s("")),
        ("str.unicode", s("héllo ✓ 😀")),
    ])
}

fn put_all(d: &Device, list: &[(String, KvValue)]) {
    let batch: Vec<Entry> = list
        .iter()
        .map(|(k, v)| Entry::new(k.clone(), v.clone()))
        .collect();
    d.store.put_batch(&batch).unwrap();
}

#[test]
fn every_type_survives_single_version_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    put_all(&phone, &every_type());
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(entries(&laptop.store), every_type());
    for (k, v) in every_type() {
        assert_eq!(laptop.store.get(&k).unwrap(), v, "{k}");
    }
    // And on through a third device, by pull.
    let tablet = sv(dir.path(), "tablet");
    sync(&tablet, &laptop, SyncMode::Pull);
    assert_eq!(entries(&tablet.store), every_type());
}

#[test]
fn every_type_survives_device_collaboration_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
    put_all(&phone, &every_type());
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(device_entries(&laptop.store, "phone"), every_type());
    for (k, v) in every_type() {
        assert_eq!(laptop.store.get_from_device("phone", &k).unwrap(), v, "{k}");
    }
    let tablet = dc(dir.path(), "tablet");
    sync(&laptop, &tablet, SyncMode::Push);
    assert_eq!(device_entries(&tablet.store, "phone"), every_type());
}

#[test]
fn a_large_value_syncs_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    phone.store.put("big", big.clone()).unwrap();
    phone.store.put("long", "x".repeat(100_000)).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(laptop.store.get("big").unwrap(), KvValue::Bytes(big));
    assert_eq!(laptop.store.get("long").unwrap(), s(&"x".repeat(100_000)));
}

/// A value whose stored form stays the same while its type changes (1 → true, "ab" → b"ab",
/// 3 → 3.0) still arrives with the new type.
#[test]
fn a_type_change_alone_propagates() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("n", 1).unwrap();
    phone.store.put("t", "ab").unwrap();
    phone.store.put("f", 3).unwrap();
    phone.store.put("b", false).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    phone.at(1_000);
    phone.store.put("n", true).unwrap();
    phone.store.put("t", b"ab".to_vec()).unwrap();
    phone.store.put("f", 3.0).unwrap();
    phone.store.put("b", 0).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(laptop.store.get("n").unwrap(), KvValue::Bool(true));
    assert_eq!(
        laptop.store.get("t").unwrap(),
        KvValue::Bytes(b"ab".to_vec())
    );
    assert_eq!(laptop.store.get("f").unwrap(), KvValue::Float(3.0));
    assert_eq!(laptop.store.get("b").unwrap(), KvValue::Integer(0));
}

#[test]
fn type_changes_propagate_to_a_device_view() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (dc(dir.path(), "phone"), dc(dir.path(), "laptop"));
    phone.store.put("k", 1).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    phone.at(1_000).store.put("k", true).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        laptop.store.get_from_device("phone", "k").unwrap(),
        KvValue::Bool(true)
    );
    phone.at(2_000).store.put("k", "one").unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        laptop.store.get_from_device("phone", "k").unwrap(),
        s("one")
    );
}

/// Concurrent puts of values of different types: the later put wins as a whole — value and
/// type together. (The entry table merges column by column, and a put that leaves the type
/// unchanged writes only the value column, so the earlier put's type can win against it.)
#[test]
fn concurrent_puts_of_different_types_keep_value_and_type_together() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = (sv(dir.path(), "phone"), sv(dir.path(), "laptop"));
    phone.store.put("flag", true).unwrap();
    phone.store.put("count", 5).unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    // The phone changes the types (earlier); the laptop changes only the values (later).
    phone.at(1_000);
    phone.store.put("flag", 1).unwrap();
    phone.store.put("count", "five").unwrap();
    laptop.at(2_000);
    laptop.store.put("flag", false).unwrap();
    laptop.store.put("count", 7).unwrap();
    sync_both_ways(&phone, &laptop);
    for d in [&phone, &laptop] {
        let got: Vec<(String, Result<KvValue, u32>)> = ["count", "flag"]
            .iter()
            .map(|k| ((*k).to_owned(), d.store.get(k).map_err(|e| e.code())))
            .collect();
        assert_eq!(
            got,
            vec![
                ("count".to_owned(), Ok(KvValue::Integer(7))),
                ("flag".to_owned(), Ok(KvValue::Bool(false))),
            ],
            "on {}",
            d.store.device_id()
        );
    }
}

/// Keys that look like numbers, SQL, or are long or non-ASCII stay distinct and intact.
#[test]
fn unusual_keys_sync_intact() {
    let long = "k".repeat(1024);
    let keys = [
        "1",
        "01",
        "1.0",
        "1e0",
        " 1",
        "-0",
        "a'b\"c",
        "x; DROP TABLE peerlite_kv; --",
        "ключ",
        "😀",
        long.as_str(),
    ];
    for make in [sv as fn(&std::path::Path, &str) -> Device, dc] {
        let dir = tempfile::tempdir().unwrap();
        let (phone, laptop) = (make(dir.path(), "phone"), make(dir.path(), "laptop"));
        for (i, k) in keys.iter().enumerate() {
            phone.store.put(k, i as i64).unwrap();
        }
        sync(&phone, &laptop, SyncMode::Push);
        let got = match phone.store.options().kv_store_type {
            peerlite::KvStoreType::SingleVersion => entries(&laptop.store),
            peerlite::KvStoreType::DeviceCollaboration => device_entries(&laptop.store, "phone"),
        };
        assert_eq!(got, entries(&phone.store));
        assert_eq!(got.len(), keys.len());
        // Deleting one numeric-looking key leaves its look-alikes alone.
        phone.at(1_000).store.delete("1").unwrap();
        sync(&phone, &laptop, SyncMode::Push);
        let got = match phone.store.options().kv_store_type {
            peerlite::KvStoreType::SingleVersion => entries(&laptop.store),
            peerlite::KvStoreType::DeviceCollaboration => device_entries(&laptop.store, "phone"),
        };
        assert_eq!(got, entries(&phone.store));
        assert_eq!(got.len(), keys.len() - 1);
    }
}
