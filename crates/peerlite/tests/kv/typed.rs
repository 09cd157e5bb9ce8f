//! Typed values keep their type through every path in and out of the store.

use peerlite::{Entry, KvValue, Value};

use crate::common::kv;

fn samples() -> Vec<(String, KvValue)> {
    let values = vec![
        KvValue::String(String::new()),
        KvValue::String("plain".into()),
        KvValue::String("日本語 ünïcødé \u{1F600}".into()),
        KvValue::String("a\0b".into()),
        KvValue::String("1".into()),
        KvValue::String("true".into()),
        KvValue::Integer(0),
        KvValue::Integer(1),
        KvValue::Integer(-1),
        KvValue::Integer(i64::MIN),
        KvValue::Integer(i64::MAX),
        KvValue::Float(0.0),
        KvValue::Float(1.0),
        KvValue::Float(-2.5),
        KvValue::Float(f64::MAX),
        KvValue::Float(f64::MIN_POSITIVE),
        KvValue::Float(f64::INFINITY),
        KvValue::Float(f64::NEG_INFINITY),
        KvValue::Float(0.1 + 0.2),
        KvValue::Bool(true),
        KvValue::Bool(false),
        KvValue::Bytes(Vec::new()),
        KvValue::Bytes(vec![0]),
        KvValue::Bytes(vec![0xff, 0xfe, 0x00, 0x80]),
        KvValue::Bytes(b"text-looking bytes".to_vec()),
    ];
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("k{i:02}"), v))
        .collect()
}

fn same(a: &KvValue, b: &KvValue) -> bool {
    // Bitwise float comparison: the type and the exact value must survive.
    match (a, b) {
        (KvValue::Float(x), KvValue::Float(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

#[test]
fn every_type_round_trips_through_put_and_get() {
    let (_dir, _m, s) = kv();
    for (k, v) in samples() {
        s.put(&k, v.clone()).unwrap();
        let back = s.get(&k).unwrap();
        assert!(same(&back, &v), "{k}: put {v:?}, got {back:?}");
        assert_eq!(back.type_name(), v.type_name());
    }
}

#[test]
fn every_type_round_trips_through_batches_entries_and_result_sets() {
    let (_dir, m, s) = kv();
    let entries: Vec<Entry> = samples()
        .into_iter()
        .map(|(k, v)| Entry { key: k, value: v })
        .collect();
    s.put_batch(&entries).unwrap();
    let back = s.get_entries("").unwrap();
    assert_eq!(back.len(), entries.len());
    for (a, b) in back.iter().zip(&entries) {
        assert_eq!(a.key, b.key);
        assert!(
            same(&a.value, &b.value),
            "{}: {:?} vs {:?}",
            a.key,
            a.value,
            b.value
        );
    }
    let mut rs = s.get_result_set("k").unwrap();
    let mut n = 0;
    while rs.move_to_next().unwrap() {
        let e = rs.get_entry().unwrap();
        assert!(same(&e.value, &entries[n].value));
        n += 1;
    }
    assert_eq!(n, entries.len());

    // And through a close and reopen.
    m.close_kv_store("store").unwrap();
    let s = m
        .get_kv_store("store", peerlite::Options::default())
        .unwrap();
    for e in &entries {
        assert!(same(&s.get(&e.key).unwrap(), &e.value), "{}", e.key);
    }
}

#[test]
fn bools_integers_and_floats_stay_distinct() {
    let (_dir, _m, s) = kv();
    s.put("bool", true).unwrap();
    s.put("int", 1).unwrap();
    s.put("float", 1.0).unwrap();
    s.put("string", "1").unwrap();
    s.put("bytes", vec![b'1']).unwrap();
    assert_eq!(s.get("bool").unwrap(), KvValue::Bool(true));
    assert_eq!(s.get("int").unwrap(), KvValue::Integer(1));
    assert_eq!(s.get("float").unwrap(), KvValue::Float(1.0));
    assert_eq!(s.get("string").unwrap(), KvValue::String("1".into()));
    assert_eq!(s.get("bytes").unwrap(), KvValue::Bytes(vec![b'1']));
    // Changing the type of a key.
    s.put("int", false).unwrap();
    assert_eq!(s.get("int").unwrap(), KvValue::Bool(false));
}

#[test]
fn value_helpers() {
    assert_eq!(KvValue::from("x").type_name(), "string");
    assert_eq!(KvValue::from(1i64).type_name(), "integer");
    assert_eq!(KvValue::from(1i32), KvValue::Integer(1));
    assert_eq!(KvValue::from(1.5).type_name(), "float");
    assert_eq!(KvValue::from(true).type_name(), "bool");
    assert_eq!(KvValue::from(&b"ab"[..]).type_name(), "bytes");
    assert_eq!(KvValue::Bytes(vec![0, 0xab]).to_string(), "00ab");
    assert_eq!(KvValue::Bool(false).to_string(), "false");
    assert_eq!(KvValue::String("s".into()).byte_len(), 1);
    assert_eq!(KvValue::Integer(5).byte_len(), 8);
    assert_eq!(KvValue::Bool(true).to_value(), Value::Integer(1));
    assert_eq!(KvValue::Bytes(vec![1]).to_value(), Value::Blob(vec![1]));
    for (ty, text, v) in [
        ("string", "hi", KvValue::String("hi".into())),
        ("integer", "-4", KvValue::Integer(-4)),
        ("float", "2.5", KvValue::Float(2.5)),
        ("bool", "true", KvValue::Bool(true)),
        ("bool", "0", KvValue::Bool(false)),
        ("bytes", "00ff", KvValue::Bytes(vec![0, 0xff])),
    ] {
        assert_eq!(KvValue::parse(ty, text), Some(v.clone()), "{ty} {text}");
        if ty != "bool" {
            assert_eq!(KvValue::parse(ty, &v.to_string()), Some(v));
        }
    }
    assert_eq!(KvValue::parse("bytes", "abc"), None);
    assert_eq!(KvValue::parse("bytes", "zz"), None);
    assert_eq!(KvValue::parse("integer", "1.5"), None);
    assert_eq!(KvValue::parse("bool", "yes"), None);
    assert_eq!(KvValue::parse("nope", "1"), None);
}

#[test]
fn nan_is_either_refused_or_read_back() {
    let (_dir, _m, s) = kv();
    s.put("ok", 1).unwrap();
    match s.put("nan", f64::NAN) {
        Err(e) => {
            assert_eq!(e.code(), 401);
            assert_eq!(s.get("nan").unwrap_err().code(), 15100004);
        }
        Ok(()) => {
            assert!(matches!(s.get("nan").unwrap(), KvValue::Float(f) if f.is_nan()));
        }
    }
    // One odd value never makes the rest of the store unreadable.
    assert!(s.get_entries("").is_ok());
    assert_eq!(s.get("ok").unwrap(), KvValue::Integer(1));
}
