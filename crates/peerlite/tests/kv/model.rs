//! Model-based property test: random operations applied to a KvStore and to a BTreeMap must
//! leave both with the same entries after every step.

use std::collections::BTreeMap;

use peerlite::{Entry, KvManager, KvValue, Options};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Put(String, KvValue),
    Delete(String),
    PutBatch(Vec<(String, KvValue)>),
    DeleteBatch(Vec<String>),
    /// Writes inside a transaction that is then rolled back (explicitly, by error, or by drop).
    RolledBack(Vec<(String, KvValue)>, Vec<String>, u8),
    /// Writes inside a transaction that commits.
    Committed(Vec<(String, KvValue)>, Vec<String>),
}

fn key() -> impl Strategy<Value = String> {
    // A small alphabet (with multi-byte characters) so that keys collide and prefixes overlap.
    "[abé日]{1,3}"
}

fn value() -> impl Strategy<Value = KvValue> {
    prop_oneof![
        "[a-z日\u{0}]{0,6}".prop_map(KvValue::String),
        any::<i64>().prop_map(KvValue::Integer),
        (prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL)
            .prop_map(KvValue::Float),
        any::<bool>().prop_map(KvValue::Bool),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(KvValue::Bytes),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let entries = || prop::collection::vec((key(), value()), 0..5);
    let keys = || prop::collection::vec(key(), 0..5);
    prop_oneof![
        4 => (key(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => key().prop_map(Op::Delete),
        2 => entries().prop_map(Op::PutBatch),
        1 => keys().prop_map(Op::DeleteBatch),
        1 => (entries(), keys(), 0u8..3).prop_map(|(e, k, how)| Op::RolledBack(e, k, how)),
        1 => (entries(), keys()).prop_map(|(e, k)| Op::Committed(e, k)),
    ]
}

fn to_entries(pairs: &[(String, KvValue)]) -> Vec<Entry> {
    pairs
        .iter()
        .map(|(k, v)| Entry {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

fn same_value(a: &KvValue, b: &KvValue) -> bool {
    match (a, b) {
        (KvValue::Float(x), KvValue::Float(y)) => x.to_bits() == y.to_bits() || x == y,
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn store_matches_a_btreemap_model(ops in prop::collection::vec(op(), 1..24)) {
        let dir = tempfile::tempdir().unwrap();
        let manager = KvManager::at(dir.path()).unwrap();
        let store = manager.get_kv_store("model", Options::default()).unwrap();
        let mut model: BTreeMap<String, KvValue> = BTreeMap::new();

        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Put(k, v) => {
                    store.put(k, v.clone()).unwrap();
                    model.insert(k.clone(), v.clone());
                }
                Op::Delete(k) => {
                    let existed = store.delete(k).unwrap();
                    prop_assert_eq!(existed, model.remove(k).is_some(), "step {}: delete {:?}", step, k);
                }
                Op::PutBatch(pairs) => {
                    store.put_batch(&to_entries(pairs)).unwrap();
                    for (k, v) in pairs {
                        model.insert(k.clone(), v.clone());
                    }
                }
                Op::DeleteBatch(keys) => {
                    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                    let n = store.delete_batch(&refs).unwrap();
                    let expected = keys.iter().filter(|k| model.remove(*k).is_some()).count();
                    prop_assert_eq!(n, expected, "step {}: delete_batch {:?}", step, keys);
                }
                Op::RolledBack(pairs, keys, how) => {
                    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                    match how {
                        0 => {
                            let tx = store.begin_transaction().unwrap();
                            tx.put_batch(&to_entries(pairs)).unwrap();
                            tx.delete_batch(&refs).unwrap();
                            tx.rollback().unwrap();
                        }
                        1 => {
                            let r = store.transaction(|tx| {
                                tx.put_batch(&to_entries(pairs))?;
                                tx.delete_batch(&refs)?;
                                Err::<(), _>(peerlite::Error::NotFound { what: "abort".into() })
                            });
                            prop_assert_eq!(r.unwrap_err().code(), 15100004);
                        }
                        _ => {
                            let tx = store.begin_transaction().unwrap();
                            tx.put_batch(&to_entries(pairs)).unwrap();
                            tx.delete_batch(&refs).unwrap();
                            drop(tx);
                        }
                    }
                }
                Op::Committed(pairs, keys) => {
                    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                    let n = store
                        .transaction(|tx| {
                            tx.put_batch(&to_entries(pairs))?;
                            tx.delete_batch(&refs)
                        })
                        .unwrap();
                    for (k, v) in pairs {
                        model.insert(k.clone(), v.clone());
                    }
                    let expected = keys.iter().filter(|k| model.remove(*k).is_some()).count();
                    prop_assert_eq!(n, expected, "step {}: committed delete count", step);
                }
            }

            let got = store.get_entries("").unwrap();
            prop_assert_eq!(got.len(), model.len(), "step {}: {:?}", step, op);
            for (entry, (k, v)) in got.iter().zip(&model) {
                prop_assert_eq!(&entry.key, k, "step {}", step);
                prop_assert!(same_value(&entry.value, v), "step {}: {:?} vs {:?}", step, entry.value, v);
            }
            prop_assert_eq!(store.get_result_size("").unwrap(), model.len());
        }

        // Prefix queries agree with the model too.
        for prefix in ["a", "b", "é", "日", "ab", "é日", "日a"] {
            let got: Vec<String> = store.get_entries(prefix).unwrap().into_iter().map(|e| e.key).collect();
            let want: Vec<String> = model.keys().filter(|k| k.starts_with(prefix)).cloned().collect();
            prop_assert_eq!(got, want, "prefix {:?}", prefix);
        }
        store.close().unwrap();
    }
}
