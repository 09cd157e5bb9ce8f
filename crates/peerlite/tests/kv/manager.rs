//! KvManager: listing, opening, closing and deleting stores; options that must not change;
//! encrypted stores.

use std::path::{Path, PathBuf};

use peerlite::{Error, KvManager, KvStoreType, KvValue, Options, SubscribeType};
use peerlite_testkit::file_contains;

use crate::common::{keys, manager};

fn files(dir: &Path, id: &str) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|s| dir.join(format!("{id}.db{s}")))
        .filter(|p| p.exists())
        .collect()
}

#[test]
fn store_ids_are_listed_sorted() {
    let (_dir, m) = manager();
    assert!(m.get_all_kv_store_ids().unwrap().is_empty());
    for id in ["zeta", "alpha", "mid_1"] {
        m.get_kv_store(id, Options::default()).unwrap();
    }
    // Files that are not stores are not listed.
    std::fs::write(m.dir().join("notes.txt"), "x").unwrap();
    std::fs::write(m.dir().join("not.a.store.db"), "x").unwrap();
    assert_eq!(
        m.get_all_kv_store_ids().unwrap(),
        ["alpha", "mid_1", "zeta"]
    );
}

#[test]
fn opening_an_open_store_returns_the_same_store() {
    let (_dir, m) = manager();
    let a = m.get_kv_store("s", Options::default()).unwrap();
    let b = m.get_kv_store("s", Options::default()).unwrap();
    a.put("k", 1).unwrap();
    assert_eq!(b.get("k").unwrap(), KvValue::Integer(1));
    assert_eq!(a.path(), b.path());
    assert_eq!(a.path(), m.dir().join("s.db"));
}

#[test]
fn close_invalidates_every_handle_and_reopen_keeps_the_data() {
    let (_dir, m) = manager();
    let s = m.get_kv_store("s", Options::default()).unwrap();
    let clone = s.clone();
    s.put("k", "v").unwrap();
    let mut rs = s.get_result_set("").unwrap();
    m.close_kv_store("s").unwrap();
    assert!(s.is_closed());
    let codes = [
        s.put("k", 1).unwrap_err().code(),
        s.get("k").unwrap_err().code(),
        s.delete("k").unwrap_err().code(),
        s.get_entries("").unwrap_err().code(),
        s.get_result_size("").unwrap_err().code(),
        s.get_result_set("").map(|_| ()).unwrap_err().code(),
        s.begin_transaction().map(|_| ()).unwrap_err().code(),
        s.on_data_change(SubscribeType::Local, |_| {})
            .map(|_| ())
            .unwrap_err()
            .code(),
        clone.get("k").unwrap_err().code(),
        s.checkpoint().unwrap_err().code(),
        rs.get_count().unwrap_err().code(),
        rs.move_to_first().unwrap_err().code(),
    ];
    assert!(codes.iter().all(|c| *c == 15100005), "{codes:?}");
    assert!(matches!(s.get("k").unwrap_err(), Error::Closed { .. }));
    // Closing again, or closing a store that is not open, is fine.
    m.close_kv_store("s").unwrap();
    m.close_kv_store("never_opened").unwrap();

    let s = m.get_kv_store("s", Options::default()).unwrap();
    assert_eq!(s.get("k").unwrap(), KvValue::String("v".into()));
    // KvStore::close does the same as the manager's close.
    s.close().unwrap();
    assert_eq!(s.get("k").unwrap_err().code(), 15100005);
    let s = m.get_kv_store("s", Options::default()).unwrap();
    assert_eq!(keys(&s, ""), ["k"]);
}

#[test]
fn delete_removes_the_files_and_only_once() {
    let (_dir, m) = manager();
    let s = m.get_kv_store("gone", Options::default()).unwrap();
    let other = m.get_kv_store("kept", Options::default()).unwrap();
    s.put("k", 1).unwrap();
    other.put("k", 2).unwrap();
    assert!(!files(m.dir(), "gone").is_empty());
    m.delete_kv_store("gone").unwrap();
    assert!(
        files(m.dir(), "gone").is_empty(),
        "{:?}",
        files(m.dir(), "gone")
    );
    assert_eq!(s.get("k").unwrap_err().code(), 15100005);
    assert_eq!(m.get_all_kv_store_ids().unwrap(), ["kept"]);
    assert_eq!(other.get("k").unwrap(), KvValue::Integer(2));

    let err = m.delete_kv_store("gone").unwrap_err();
    assert_eq!(err.code(), 15100004);
    assert!(matches!(err, Error::NotFound { .. }));
    let err = m
        .get_kv_store(
            "gone",
            Options {
                create_if_missing: false,
                ..Options::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), 15100004);
    // Created afresh, it is empty.
    let s = m.get_kv_store("gone", Options::default()).unwrap();
    assert!(keys(&s, "").is_empty());
}

#[test]
fn create_if_missing_false_creates_nothing() {
    let (_dir, m) = manager();
    let opts = Options {
        create_if_missing: false,
        ..Options::default()
    };
    let err = m.get_kv_store("absent", opts.clone()).unwrap_err();
    assert_eq!(err.code(), 15100004);
    assert!(files(m.dir(), "absent").is_empty());
    assert!(m.get_all_kv_store_ids().unwrap().is_empty());
    // An existing store opens with it.
    m.get_kv_store("present", Options::default())
        .unwrap()
        .put("k", 1)
        .unwrap();
    m.close_kv_store("present").unwrap();
    let s = m.get_kv_store("present", opts).unwrap();
    assert_eq!(s.get("k").unwrap(), KvValue::Integer(1));
}

#[test]
fn the_store_type_cannot_change() {
    let (_dir, m) = manager();
    let single = Options::default();
    let collab = Options {
        kv_store_type: KvStoreType::DeviceCollaboration,
        ..Options::default()
    };
    let s = m.get_kv_store("s", single.clone()).unwrap();
    s.put("k", 1).unwrap();
    // While open ...
    let err = m.get_kv_store("s", collab.clone()).unwrap_err();
    assert_eq!(err.code(), 15100002);
    assert!(matches!(err, Error::ConfigChanged { .. }));
    // ... and after a close.
    m.close_kv_store("s").unwrap();
    assert_eq!(
        m.get_kv_store("s", collab.clone()).unwrap_err().code(),
        15100002
    );
    let s = m.get_kv_store("s", single).unwrap();
    assert_eq!(s.get("k").unwrap(), KvValue::Integer(1));
    assert_eq!(s.options().kv_store_type, KvStoreType::SingleVersion);
    // A collaboration store stays one.
    let c = m.get_kv_store("c", collab.clone()).unwrap();
    assert_eq!(c.options().kv_store_type, KvStoreType::DeviceCollaboration);
    m.close_kv_store("c").unwrap();
    assert_eq!(
        m.get_kv_store("c", Options::default()).unwrap_err().code(),
        15100002
    );
    m.get_kv_store("c", collab).unwrap();
}

#[test]
fn bad_store_ids_are_401_and_touch_nothing() {
    let (dir, m) = manager();
    for bad in [
        "../x",
        "..",
        "a/b",
        "a\\b",
        "",
        "a.b",
        "with space",
        "semi;colon",
        "nul\0byte",
        "ünï",
        &"x".repeat(129),
    ] {
        for err in [
            m.get_kv_store(bad, Options::default())
                .map(|_| ())
                .unwrap_err(),
            m.close_kv_store(bad).unwrap_err(),
            m.delete_kv_store(bad).unwrap_err(),
        ] {
            assert_eq!(err.code(), 401, "{bad:?}: {err}");
        }
    }
    m.get_kv_store(&"x".repeat(128), Options::default())
        .unwrap();
    // Nothing was created next to the app directory.
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, ["com.example.app"]);
    assert_eq!(m.get_all_kv_store_ids().unwrap(), ["x".repeat(128)]);
}

#[test]
fn bad_app_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["../evil", "a/b", "..", ""] {
        assert_eq!(
            KvManager::new(dir.path(), bad).unwrap_err().code(),
            14800010,
            "{bad:?}"
        );
    }
    let m = KvManager::at(dir.path().join("nested").join("dir")).unwrap();
    assert!(m.dir().is_dir());
}

#[test]
fn encrypt_needs_a_key() {
    let (_dir, m) = manager();
    let opts = Options {
        encrypt: true,
        ..Options::default()
    };
    assert_eq!(m.get_kv_store("e", opts).unwrap_err().code(), 401);
}

const CANARY: &str = "KV-PLAINTEXT-CANARY-b4d2e1";

#[test]
fn encrypted_store_round_trip_and_wrong_key() {
    let (dir, m) = manager();
    let s = m
        .get_kv_store("secret", Options::default().encrypted("kv key"))
        .unwrap();
    for i in 0..20 {
        s.put(&format!("{CANARY}-key-{i}"), format!("{CANARY}-value-{i}"))
            .unwrap();
    }
    m.close_kv_store("secret").unwrap();
    let path = m.dir().join("secret.db");
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.starts_with(b"SQLite format 3\0"));
    for f in files(m.dir(), "secret") {
        assert!(
            !file_contains(&f, CANARY.as_bytes()).unwrap(),
            "{}",
            f.display()
        );
    }

    // A fresh manager (like a new process) with the right key.
    let m2 = KvManager::new(dir.path(), "com.example.app").unwrap();
    let s = m2
        .get_kv_store("secret", Options::default().encrypted("kv key"))
        .unwrap();
    assert_eq!(
        s.get(&format!("{CANARY}-key-7")).unwrap(),
        KvValue::String(format!("{CANARY}-value-7"))
    );
    m2.close_kv_store("secret").unwrap();

    let err = m2
        .get_kv_store("secret", Options::default().encrypted("wrong"))
        .unwrap_err();
    assert_eq!(err.code(), 14800020, "{err}");
    let err = m2.get_kv_store("secret", Options::default()).unwrap_err();
    assert_eq!(err.code(), 14800020, "{err}");

    // The control: a plain store shows its data.
    let p = m2.get_kv_store("plain", Options::default()).unwrap();
    p.put("k", CANARY).unwrap();
    m2.close_kv_store("plain").unwrap();
    let leaks = files(m2.dir(), "plain")
        .iter()
        .any(|f| file_contains(f, CANARY.as_bytes()).unwrap());
    assert!(leaks, "the unencrypted control store shows its data");
    // And a key on it is refused.
    assert_eq!(
        m2.get_kv_store("plain", Options::default().encrypted("k"))
            .unwrap_err()
            .code(),
        14800020
    );
}

#[test]
fn an_open_encrypted_store_is_not_handed_out_for_a_wrong_key() {
    let (_dir, m) = manager();
    let s = m
        .get_kv_store("secret", Options::default().encrypted("right"))
        .unwrap();
    s.put("k", "v").unwrap();
    let err = m
        .get_kv_store("secret", Options::default().encrypted("wrong"))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.code(), 14800020);
    let err = m
        .get_kv_store("secret", Options::default())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.code(), 14800020);
}
