//! ArkData's limits: keys of 1..=1024 bytes, values of at most 4 MiB. Anything outside is
//! refused with 401 and nothing is written.

use peerlite::kv::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use peerlite::{Entry, Error, KvValue};

use crate::common::{keys, kv};

fn assert_401(err: &Error) {
    assert_eq!(err.code(), 401, "{err}");
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
}

#[test]
fn limits_are_arkdatas() {
    assert_eq!(MAX_KEY_BYTES, 1024);
    assert_eq!(MAX_VALUE_BYTES, 4 * 1024 * 1024);
}

#[test]
fn empty_key_is_refused_everywhere() {
    let (_dir, _m, s) = kv();
    assert_401(&s.put("", 1).unwrap_err());
    assert_401(&s.get("").unwrap_err());
    assert_401(&s.delete("").unwrap_err());
    assert_401(
        &s.put_batch(&[Entry::new("ok", 1), Entry::new("", 2)])
            .unwrap_err(),
    );
    assert!(
        keys(&s, "").is_empty(),
        "the good entry of the batch was not kept"
    );
    s.put("keep", 1).unwrap();
    assert_401(&s.delete_batch(&["keep", ""]).unwrap_err());
    assert_eq!(
        keys(&s, ""),
        ["keep"],
        "the good key of the batch was not deleted"
    );
}

#[test]
fn key_length_is_counted_in_bytes() {
    let (_dir, _m, s) = kv();
    let exact = "k".repeat(1024);
    s.put(&exact, 1).unwrap();
    assert_eq!(s.get(&exact).unwrap(), KvValue::Integer(1));

    let long = "k".repeat(1025);
    assert_401(&s.put(&long, 1).unwrap_err());
    assert_401(&s.get(&long).unwrap_err());
    assert_401(&s.delete(&long).unwrap_err());

    // 512 two-byte characters are exactly 1024 bytes; one more byte is too many.
    let wide = "é".repeat(512);
    assert_eq!(wide.len(), 1024);
    s.put(&wide, 2).unwrap();
    let too_wide = format!("{wide}x");
    assert_401(&s.put(&too_wide, 3).unwrap_err());
    // 342 three-byte characters: 1026 bytes, only 342 characters.
    assert_401(&s.put(&"日".repeat(342), 4).unwrap_err());

    assert_eq!(keys(&s, ""), [exact, wide]);
}

#[test]
fn value_size_limit() {
    let (_dir, _m, s) = kv();
    let exact = vec![0xA5u8; MAX_VALUE_BYTES];
    s.put("big", exact.clone()).unwrap();
    match s.get("big").unwrap() {
        KvValue::Bytes(b) => {
            assert_eq!(b.len(), MAX_VALUE_BYTES);
            assert!(b == exact);
        }
        other => panic!("expected bytes, got {}", other.type_name()),
    }

    s.put("small", "old").unwrap();
    let over = vec![0u8; MAX_VALUE_BYTES + 1];
    assert_401(&s.put("small", over.clone()).unwrap_err());
    assert_401(&s.put("new", over).unwrap_err());
    assert_401(&s.put("text", "x".repeat(MAX_VALUE_BYTES + 1)).unwrap_err());
    assert_401(
        &s.put_batch(&[
            Entry::new("batch_ok", 1),
            Entry::new("batch_big", vec![1u8; MAX_VALUE_BYTES + 1]),
        ])
        .unwrap_err(),
    );
    // Nothing was written, nothing was replaced.
    assert_eq!(s.get("small").unwrap(), KvValue::String("old".into()));
    assert_eq!(keys(&s, ""), ["big", "small"]);

    // A 4 MiB string is accepted too.
    s.put("text", "y".repeat(MAX_VALUE_BYTES)).unwrap();
    assert_eq!(s.get("text").unwrap().byte_len(), MAX_VALUE_BYTES);
}
