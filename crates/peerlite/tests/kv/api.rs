//! The key-value API: put/get/delete, batches, prefixes, result sets, transactions.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use peerlite::{Entry, Error, KvValue};

use crate::common::{keys, kv};

#[test]
fn put_get_overwrite_delete() {
    let (_dir, _m, s) = kv();
    s.put("theme", "dark").unwrap();
    s.put("volume", 7).unwrap();
    assert_eq!(s.get("theme").unwrap(), KvValue::String("dark".into()));
    assert_eq!(s.get("volume").unwrap(), KvValue::Integer(7));
    // Overwriting replaces value and type.
    s.put("volume", "loud").unwrap();
    assert_eq!(s.get("volume").unwrap(), KvValue::String("loud".into()));
    assert_eq!(s.get_result_size("").unwrap(), 2);

    assert!(s.delete("volume").unwrap());
    assert!(!s.delete("volume").unwrap());
    let err = s.get("volume").unwrap_err();
    assert_eq!(err.code(), 15100004);
    assert!(matches!(err, Error::NotFound { .. }));
    assert_eq!(keys(&s, ""), ["theme"]);
    assert_eq!(s.store_id(), "store");
}

#[test]
fn missing_key_is_15100004() {
    let (_dir, _m, s) = kv();
    assert_eq!(s.get("nope").unwrap_err().code(), 15100004);
    s.put("nope2", 1).unwrap();
    assert_eq!(s.get("nope").unwrap_err().code(), 15100004);
    assert_eq!(
        s.get("Nope2").unwrap_err().code(),
        15100004,
        "keys are case-sensitive"
    );
}

#[test]
fn batches() {
    let (_dir, _m, s) = kv();
    s.put_batch(&[
        Entry::new("a", 1),
        Entry::new("b", "two"),
        Entry::new("c", true),
        Entry::new("a", 10), // later entries win
    ])
    .unwrap();
    assert_eq!(
        s.get_entries("").unwrap(),
        vec![
            Entry::new("a", 10),
            Entry::new("b", "two"),
            Entry::new("c", true),
        ]
    );
    assert_eq!(s.delete_batch(&["a", "zzz", "c", "a"]).unwrap(), 2);
    assert_eq!(keys(&s, ""), ["b"]);
    assert_eq!(s.delete_batch(&[]).unwrap(), 0);
    s.put_batch(&[]).unwrap();
    assert_eq!(keys(&s, ""), ["b"]);
}

#[test]
fn prefixes_select_exactly_the_keys_that_start_with_them() {
    let (_dir, _m, s) = kv();
    let all = [
        "", // not a valid key; skipped below
        "a",
        "ab",
        "abc",
        "abd",
        "ac",
        "a%b",
        "a_b",
        "axb",
        "b",
        "B",
        "é",
        "éa",
        "e",
        "日",
        "日本",
        "日本語",
        "日X",
        "a\u{10FFFF}",
        "a\u{10FFFF}z",
        "\u{D7FF}x",
        "\u{E000}x",
        "\u{1F600}smile",
    ];
    let mut model = BTreeMap::new();
    for (i, k) in all.iter().enumerate().skip(1) {
        s.put(k, i as i64).unwrap();
        model.insert((*k).to_owned(), i as i64);
    }
    let expect = |prefix: &str| -> Vec<String> {
        model
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    };
    for prefix in [
        "",
        "a",
        "ab",
        "abc",
        "abcd",
        "a%",
        "a_",
        "b",
        "B",
        "é",
        "e",
        "日",
        "日本",
        "日本語",
        "日X",
        "a\u{10FFFF}",
        "\u{D7FF}",
        "\u{E000}",
        "\u{1F600}",
        "z",
        "\u{10FFFF}",
    ] {
        let got = keys(&s, prefix);
        assert_eq!(got, expect(prefix), "prefix {prefix:?}");
        assert_eq!(
            s.get_result_size(prefix).unwrap(),
            got.len(),
            "prefix {prefix:?}"
        );
    }
    // Spot checks that do not rely on the model.
    assert_eq!(keys(&s, "日本"), ["日本", "日本語"]);
    assert_eq!(keys(&s, "a%"), ["a%b"]);
    assert_eq!(keys(&s, "a_"), ["a_b"]);
    assert_eq!(keys(&s, "ab"), ["ab", "abc", "abd"]);
    assert_eq!(keys(&s, "a\u{10FFFF}"), ["a\u{10FFFF}", "a\u{10FFFF}z"]);
    // Entries come in key (byte) order.
    assert_eq!(keys(&s, ""), model.keys().cloned().collect::<Vec<_>>());
}

#[test]
fn result_set_cursor() {
    let (_dir, _m, s) = kv();
    for (k, v) in [("k1", 1), ("k2", 2), ("k3", 3), ("other", 4)] {
        s.put(k, v).unwrap();
    }
    let mut rs = s.get_result_set("k").unwrap();
    assert_eq!(rs.get_count().unwrap(), 3);
    assert_eq!(rs.get_position().unwrap(), -1);
    assert!(rs.is_before_first().unwrap());
    assert!(!rs.is_after_last().unwrap());
    assert!(!rs.is_first().unwrap());
    assert_eq!(rs.get_entry().unwrap_err().code(), 14800012);

    assert!(rs.move_to_next().unwrap());
    assert!(rs.is_first().unwrap());
    assert!(!rs.is_before_first().unwrap());
    assert_eq!(rs.get_entry().unwrap(), Entry::new("k1", 1));
    assert!(rs.move_to_last().unwrap());
    assert!(rs.is_last().unwrap());
    assert_eq!(rs.get_entry().unwrap(), Entry::new("k3", 3));
    assert!(!rs.move_to_next().unwrap());
    assert!(rs.is_after_last().unwrap());
    assert_eq!(rs.get_position().unwrap(), 3);
    assert!(rs.move_to_previous().unwrap());
    assert_eq!(rs.get_entry().unwrap().key, "k3");
    assert!(rs.move_by(-2).unwrap());
    assert_eq!(rs.get_entry().unwrap().key, "k1");
    assert!(!rs.move_by(-1).unwrap());
    assert_eq!(rs.get_position().unwrap(), 0);
    assert!(rs.move_to_position(1).unwrap());
    assert_eq!(rs.get_entry().unwrap().key, "k2");
    assert!(!rs.move_to_position(3).unwrap());
    assert_eq!(rs.get_position().unwrap(), 1);
    assert!(rs.move_to_first().unwrap());
    assert!(!rs.move_to_previous().unwrap());
    assert!(rs.is_before_first().unwrap());

    // A snapshot: later writes do not change it.
    s.put("k4", 4).unwrap();
    assert_eq!(rs.get_count().unwrap(), 3);

    rs.close();
    assert_eq!(rs.get_count().unwrap_err().code(), 15100005);
    assert_eq!(rs.move_to_first().unwrap_err().code(), 15100005);
    assert_eq!(rs.get_entry().unwrap_err().code(), 15100005);

    let mut empty = s.get_result_set("nothing").unwrap();
    assert_eq!(empty.get_count().unwrap(), 0);
    assert!(!empty.move_to_first().unwrap());
    assert!(!empty.move_to_last().unwrap());
    assert!(!empty.move_to_next().unwrap());
    assert!(empty.is_after_last().unwrap());
}

#[test]
fn transactions_commit_or_leave_nothing() {
    let (_dir, _m, s) = kv();
    s.put("keep", 0).unwrap();
    // Closure form commits on Ok.
    s.transaction(|tx| {
        tx.put("a", 1)?;
        tx.put("b", 2)?;
        assert_eq!(tx.get("a")?, KvValue::Integer(1));
        assert_eq!(tx.get_entries("")?.len(), 3);
        // Readers outside see nothing yet.
        assert_eq!(s.get("a").unwrap_err().code(), 15100004);
        Ok(())
    })
    .unwrap();
    assert_eq!(keys(&s, ""), ["a", "b", "keep"]);

    // Err rolls back.
    let err = s
        .transaction(|tx| {
            tx.put("c", 3)?;
            tx.delete("a")?;
            tx.get("missing").map(|_| ())
        })
        .unwrap_err();
    assert_eq!(err.code(), 15100004);
    assert_eq!(keys(&s, ""), ["a", "b", "keep"]);

    // Explicit rollback, and drop without commit.
    let tx = s.begin_transaction().unwrap();
    tx.put("d", 4).unwrap();
    assert_eq!(tx.delete_batch(&["a", "b"]).unwrap(), 2);
    tx.rollback().unwrap();
    {
        let tx = s.begin_transaction().unwrap();
        tx.put_batch(&[Entry::new("e", 5)]).unwrap();
    }
    assert_eq!(keys(&s, ""), ["a", "b", "keep"]);

    // A panic rolls back and the store keeps working.
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = s.transaction(|tx| -> peerlite::Result<()> {
            tx.put("f", 6)?;
            panic!("boom");
        });
    }));
    assert!(r.is_err());
    assert_eq!(keys(&s, ""), ["a", "b", "keep"]);

    // Explicit commit.
    let tx = s.begin_transaction().unwrap();
    assert!(tx.delete("keep").unwrap());
    assert!(!tx.delete("keep").unwrap());
    tx.commit().unwrap();
    assert_eq!(keys(&s, ""), ["a", "b"]);
}

#[test]
fn a_nested_write_on_the_same_thread_fails_instead_of_deadlocking() {
    let (_dir, _m, s) = kv();
    let s2 = s.clone();
    let code = peerlite_testkit::run_with_timeout(std::time::Duration::from_secs(20), move || {
        s2.transaction(|tx| {
            tx.put("a", 1)?;
            Ok(s2.put("b", 2).unwrap_err().code())
        })
        .unwrap()
    });
    assert_eq!(code, 401);
    assert_eq!(keys(&s, ""), ["a"]);
}

#[test]
fn clones_and_threads_share_the_store() {
    let (_dir, _m, s) = kv();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    s.put(&format!("t{t}/{i:02}"), i).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(s.get_result_size("").unwrap(), 40);
    assert_eq!(s.get_result_size("t2/").unwrap(), 10);
    assert_eq!(s.get("t3/09").unwrap(), KvValue::Integer(9));
}

#[test]
fn checkpoint_empties_the_log_and_keeps_every_entry() {
    let (_dir, _m, s) = kv();
    let entries: Vec<Entry> = (0..2_000)
        .map(|i| Entry::new(format!("k{i:05}"), "v".repeat(200)))
        .collect();
    s.put_batch(&entries).unwrap();
    let wal = s.path().with_extension("db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    assert!(s.checkpoint().unwrap());
    assert_eq!(
        std::fs::metadata(&wal).unwrap().len(),
        0,
        "TRUNCATE empties the log"
    );
    assert_eq!(s.get_result_size("").unwrap(), 2_000);
    assert_eq!(s.get("k01999").unwrap(), KvValue::String("v".repeat(200)));
}

#[test]
fn checkpoint_inside_a_transaction_is_refused_not_deadlocked() {
    let (_dir, _m, s) = kv();
    let s2 = s.clone();
    let code = peerlite_testkit::run_with_timeout(std::time::Duration::from_secs(20), move || {
        s2.transaction(|tx| {
            tx.put("a", 1)?;
            Ok(s2.checkpoint().unwrap_err().code())
        })
        .unwrap()
    });
    assert_eq!(code, 401);
    assert_eq!(keys(&s, ""), ["a"], "the transaction still committed");
}
