//! Trust stores: what is added survives reopening, duplicates and bad input are refused with
//! codes, a damaged file is never overwritten, and the file is replaced whole, never edited.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use peerlite_net::{DeviceId, DeviceLevel, Home, TrustSet, TrustedDevice};

fn home() -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(dir.path(), Some("me"), DeviceLevel::Sl2).unwrap();
    (dir, home)
}

fn peer(n: u8) -> DeviceId {
    DeviceId::from_public_key(&[n; 44])
}

#[test]
fn devices_survive_reopening_in_id_order() {
    let (dir, home) = home();
    let mut trust = home.trust_store().unwrap();
    assert!(trust.is_empty());
    let devices = vec![
        TrustedDevice::new(peer(1))
            .name("laptop")
            .level(DeviceLevel::Sl3)
            .addr("127.0.0.1:7000")
            .addr("[::1]:7000"),
        TrustedDevice::new(peer(2)),
        TrustedDevice::new(peer(3))
            .level(DeviceLevel::Sl5)
            .addr("phone.lan:1"),
    ];
    for d in &devices {
        trust.add(d.clone()).unwrap();
    }
    assert_eq!(
        fs::metadata(dir.path().join("trust.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let reopened = Home::open(dir.path()).unwrap().trust_store().unwrap();
    let mut expected = devices.clone();
    expected.sort_by_key(|d| d.id);
    assert_eq!(reopened.devices().cloned().collect::<Vec<_>>(), expected);
    assert_eq!(
        reopened.get(&peer(1)).unwrap().name.as_deref(),
        Some("laptop")
    );

    let removed = trust.remove(&peer(1)).unwrap();
    assert_eq!(removed, devices[0]);
    let reopened = home.trust_store().unwrap();
    assert!(reopened.get(&peer(1)).is_none());
    assert_eq!(reopened.len(), 2);
    // Only the three files and the lock that serialises changes; no temporary file left.
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".trust.lock", "device.json", "device.key", "trust.json"]
    );
}

#[test]
fn duplicates_unknown_ids_own_id_and_bad_addresses_are_refused() {
    let (dir, home) = home();
    let mut trust = home.trust_store().unwrap();
    trust.add(TrustedDevice::new(peer(1)).name("a")).unwrap();
    let before = fs::read(dir.path().join("trust.json")).unwrap();

    let dup = trust
        .add(TrustedDevice::new(peer(1)).name("b"))
        .unwrap_err();
    assert_eq!(dup.code(), 17060014);
    assert_eq!(trust.remove(&peer(9)).unwrap_err().code(), 17060015);
    let own = trust.add(TrustedDevice::new(home.id())).unwrap_err();
    assert_eq!(own.code(), 17060016);
    for addr in [
        "nohost",
        ":7000",
        "host:0",
        "host:70000",
        "host:port",
        "::1:7000",
        "[::1:7000",
        "[nothex]:1",
        "a b:1",
    ] {
        let err = trust
            .add(TrustedDevice::new(peer(2)).addr(addr))
            .unwrap_err();
        assert_eq!(err.code(), 17060016, "{addr}");
    }
    let twice = trust
        .add(TrustedDevice::new(peer(2)).addr("h:1").addr("h:1"))
        .unwrap_err();
    assert_eq!(twice.code(), 17060016);
    let bad_name = trust.add(TrustedDevice::new(peer(2)).name("")).unwrap_err();
    assert_eq!(bad_name.code(), 17060016);
    // Nothing refused reached the file.
    assert_eq!(fs::read(dir.path().join("trust.json")).unwrap(), before);
}

/// Two handles on one store (two commands, or a command beside a running node): each change
/// re-reads the file first, so neither loses the other's device.
#[test]
fn a_stale_handle_does_not_lose_another_handles_change() {
    let (_dir, home) = home();
    let mut first = home.trust_store().unwrap();
    let mut second = home.trust_store().unwrap();
    first.add(TrustedDevice::new(peer(1))).unwrap();
    second.add(TrustedDevice::new(peer(2))).unwrap();
    let ids: Vec<DeviceId> = home
        .trust_store()
        .unwrap()
        .devices()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&peer(1)) && ids.contains(&peer(2)));
    // And the stale handle refuses a duplicate it had not seen.
    assert_eq!(
        second.add(TrustedDevice::new(peer(1))).unwrap_err().code(),
        17060014
    );
}

/// The file is replaced (temp + fsync + rename), never rewritten in place: a reader holding
/// the old file (here a hard link to it) still sees it whole after a change, and a temporary
/// file left by a crash does not disturb anything.
#[test]
fn the_file_is_replaced_whole_never_edited_in_place() {
    let (dir, home) = home();
    let mut trust = home.trust_store().unwrap();
    trust.add(TrustedDevice::new(peer(1))).unwrap();
    let file = dir.path().join("trust.json");
    let old = fs::read(&file).unwrap();
    let held = dir.path().join("held-open-by-a-reader");
    fs::hard_link(&file, &held).unwrap();
    fs::write(dir.path().join(".trust.json.tmp-99999-0"), b"{\"form").unwrap();

    trust
        .add(TrustedDevice::new(peer(2)).name("x".repeat(64)))
        .unwrap();
    assert_eq!(fs::read(&held).unwrap(), old);
    assert_ne!(fs::read(&file).unwrap(), old);
    assert_eq!(home.trust_store().unwrap().len(), 2);
}

#[test]
fn a_damaged_trust_store_is_reported_and_left_untouched() {
    let (dir, home) = home();
    let file = dir.path().join("trust.json");
    let cases: [&[u8]; 4] = [
        b"{\"format\":1,\"devices\":[",
        b"{\"format\":2,\"devices\":[]}",
        b"{\"format\":1,\"devices\":[{\"id\":\"NOT-AN-ID\"}]}",
        b"",
    ];
    for bytes in cases {
        fs::write(&file, bytes).unwrap();
        let err = home.trust_store().unwrap_err();
        assert_eq!(err.code(), 17060017, "{}", String::from_utf8_lossy(bytes));
        assert!(err.hint().contains("peerlite trust add"));
        assert_eq!(fs::read(&file).unwrap(), bytes);
    }
    // A device listed twice.
    let id = peer(1).to_string();
    let twice = format!("{{\"format\":1,\"devices\":[{{\"id\":\"{id}\"}},{{\"id\":\"{id}\"}}]}}");
    fs::write(&file, &twice).unwrap();
    assert_eq!(home.trust_store().unwrap_err().code(), 17060017);
}

#[test]
fn a_trust_set_follows_the_store_it_is_replaced_with() {
    let (_dir, home) = home();
    let mut trust = home.trust_store().unwrap();
    trust
        .add(TrustedDevice::new(peer(1)).level(DeviceLevel::Sl4))
        .unwrap();
    let set = TrustSet::from_store(&trust);
    assert_eq!(set.get(&peer(1)).unwrap().level, DeviceLevel::Sl4);
    trust.remove(&peer(1)).unwrap();
    trust.add(TrustedDevice::new(peer(2))).unwrap();
    set.replace(trust.devices().cloned());
    assert!(set.get(&peer(1)).is_none());
    assert!(set.get(&peer(2)).is_some());
}

/// Ten `trust add` (then ten `trust remove`) at once used to leave one device added (and up to
/// nine "removed" devices still trusted): each wrote back the file it had read. The
/// read-modify-write now holds a lock, so none is lost — a revocation above all.
#[test]
fn concurrent_adds_and_removes_all_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(dir.path().join("me"), None, DeviceLevel::Sl1).unwrap();
    let ids: Vec<DeviceId> = (0..10u8)
        .map(|i| DeviceId::from_public_key(&[i; 32]))
        .collect();
    let run = |f: &(dyn Fn(&mut peerlite_net::TrustStore, DeviceId) + Sync)| {
        std::thread::scope(|s| {
            for id in &ids {
                let home = &home;
                s.spawn(move || {
                    let mut store = home.trust_store().unwrap();
                    f(&mut store, *id);
                });
            }
        });
    };
    run(&|store, id| store.add(TrustedDevice::new(id)).unwrap());
    assert_eq!(home.trust_store().unwrap().len(), 10);
    run(&|store, id| {
        store.remove(&id).unwrap();
    });
    assert_eq!(
        home.trust_store().unwrap().len(),
        0,
        "every revocation holds"
    );
}
