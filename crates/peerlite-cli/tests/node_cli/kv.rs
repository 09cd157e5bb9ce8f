//! Key-value stores sync over the network in both of ArkData's kinds: a single-version store
//! merges entries by key, a device-collaboration one keeps each device's entries apart. The
//! stores are served and synced by `--kv STORE_DIR STORE_ID`, opened as the kind they are.

use peerlite::{KvManager, KvStoreType, KvValue, Options};

use crate::common::*;

fn kv(dir: &std::path::Path, args: &[&str]) -> String {
    stdout_of(peerlite().arg("kv").arg(dir).arg("settings").args(args))
}

#[test]
fn single_version_kv_stores_merge_by_key() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1");
    let b = Device::new(root.path(), "b", "SL1");
    let (a_kv, b_kv) = (a.dir.join("kv"), b.dir.join("kv"));
    kv(&a_kv, &["put", "theme", "dark"]);
    kv(&a_kv, &["put", "volume", "7", "--type", "integer"]);
    kv(&b_kv, &["put", "lang", "fr"]);
    b.trusts(&a, "SL1", None);
    let served = b.serve(&["--kv", b_kv.to_str().unwrap(), "settings"]);
    a.trusts(&b, "SL1", Some(&served.addr));
    let sync = |mode: &str| {
        let (code, out, err) = run(peerlite()
            .args(["sync", "--home"])
            .arg(&a.home)
            .arg("--kv")
            .arg(&a_kv)
            .args(["settings", mode]));
        assert_eq!((code, out.clone()), (0, format!("{} ok\n", b.id)), "{err}");
    };
    sync("--push");
    sync("--pull");
    assert!(served.stop().success());
    for dir in [&a_kv, &b_kv] {
        assert_eq!(kv(dir, &["list"]), "lang\tfr\ntheme\tdark\nvolume\t7\n");
    }
}

#[test]
fn device_collaboration_kv_stores_keep_each_devices_entries_apart() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1");
    let b = Device::new(root.path(), "b", "SL1");
    let (a_kv, b_kv) = (a.dir.join("kv"), b.dir.join("kv"));
    let collab = || Options {
        kv_store_type: KvStoreType::DeviceCollaboration,
        ..Options::default()
    };
    for (dir, value) in [(&a_kv, "from a"), (&b_kv, "from b")] {
        let store = KvManager::at(dir)
            .unwrap()
            .get_kv_store("settings", collab())
            .unwrap();
        store.put("note", value).unwrap();
        store.close().unwrap();
    }
    b.trusts(&a, "SL1", None);
    let served = b.serve(&["--kv", b_kv.to_str().unwrap(), "settings"]);
    a.trusts(&b, "SL1", Some(&served.addr));
    let (code, out, err) = run(peerlite()
        .args(["sync", "--home"])
        .arg(&a.home)
        .arg("--kv")
        .arg(&a_kv)
        .args(["settings", "--push"]));
    assert_eq!((code, out), (0, format!("{} ok\n", b.id)), "{err}");
    assert!(served.stop().success());
    let store = KvManager::at(&b_kv)
        .unwrap()
        .device_id(b.id.clone())
        .get_kv_store("settings", collab())
        .unwrap();
    assert_eq!(store.get("note").unwrap(), KvValue::from("from b"));
    assert_eq!(
        store.get_from_device(&a.id, "note").unwrap(),
        KvValue::from("from a")
    );
}

/// A store made syncable only at its first sync stamped every entry with that moment, so an
/// entry written first on one device beat one written later on another (no conflict, the
/// later write silently lost). Entries `kv put` writes carry their own time now, and rows
/// that existed before capture began carry the oldest time there is.
#[test]
fn the_later_write_wins_whenever_the_stores_first_sync() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1");
    let b = Device::new(root.path(), "b", "SL1");
    let (a_kv, b_kv) = (a.dir.join("kv"), b.dir.join("kv"));
    kv(&a_kv, &["put", "theme", "dark"]);
    // The clock moves on (no timing is asserted: only the order of the two writes).
    std::thread::sleep(std::time::Duration::from_millis(5));
    kv(&b_kv, &["put", "theme", "light"]);
    push_pull_and_expect(&a, &a_kv, &b, &b_kv, "light");
}

/// Entries written before a store was made syncable (by an app through the library) have no
/// known time: any entry written with capture on beats them, on whichever device.
#[test]
fn entries_from_before_capture_lose_to_any_captured_write() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1");
    let b = Device::new(root.path(), "b", "SL1");
    let (a_kv, b_kv) = (a.dir.join("kv"), b.dir.join("kv"));
    // b's entry is written with capture on; a's, later, by an app that never enabled sync.
    kv(&b_kv, &["put", "theme", "light"]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    {
        let manager = KvManager::at(&a_kv).unwrap();
        let store = manager
            .get_kv_store("settings", Options::default())
            .unwrap();
        store.put("theme", "dark").unwrap();
    }
    push_pull_and_expect(&a, &a_kv, &b, &b_kv, "light");
}

/// b serves its store; a pushes, then pulls; both end with `theme` = `expected`.
fn push_pull_and_expect(
    a: &Device,
    a_kv: &std::path::Path,
    b: &Device,
    b_kv: &std::path::Path,
    expected: &str,
) {
    b.trusts(a, "SL1", None);
    let served = b.serve(&["--kv", b_kv.to_str().unwrap(), "settings"]);
    a.trusts(b, "SL1", Some(&served.addr));
    for mode in ["--push", "--pull"] {
        let (code, out, err) = run(peerlite()
            .args(["sync", "--home"])
            .arg(&a.home)
            .arg("--kv")
            .arg(a_kv)
            .args(["settings", mode]));
        assert_eq!(code, 0, "{out}{err}");
    }
    assert!(served.stop().success());
    for dir in [a_kv, b_kv] {
        assert_eq!(kv(dir, &["get", "theme"]), format!("{expected}\n"));
    }
}

/// `sync --kv DIR ID` on a relational database added the key-value entry table to it, then
/// failed with a message about distributed table modes. It is refused first, changing nothing.
#[test]
fn a_relational_database_is_not_synced_as_a_key_value_store() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1");
    let dir = a.dir.join("kv");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("settings.db");
    sql(&db, &["CREATE TABLE note(id INTEGER PRIMARY KEY, t TEXT)"]);
    let before = std::fs::read(&db).unwrap();
    let (code, _, err) = run(peerlite()
        .args(["sync", "--push", "--home"])
        .arg(&a.home)
        .arg("--kv")
        .arg(&dir)
        .arg("settings"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a key-value store"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file is untouched");
}
