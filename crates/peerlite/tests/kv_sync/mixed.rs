//! Peers that differ: a single-version store against a device-collaboration store of the same
//! id (refused or inert, never corrupting), another store id, and encrypted stores (encryption
//! is at rest; the wire and the peer do not care).

use peerlite::sync::{SyncMode, sync_in_memory};
use peerlite::{KvStoreType, KvValue, Options};

use crate::common::*;

const MODES: [SyncMode; 3] = [SyncMode::Push, SyncMode::Pull, SyncMode::PushPull];

#[test]
fn single_version_and_device_collaboration_peers_do_not_corrupt_each_other() {
    for initiator_single in [true, false] {
        for mode in MODES {
            let dir = tempfile::tempdir().unwrap();
            let (sv_dev, dc_dev) = (sv(dir.path(), "phone"), dc(dir.path(), "laptop"));
            sv_dev.store.put("k", "single").unwrap();
            sv_dev.store.put("only_sv", 1).unwrap();
            dc_dev.store.put("k", "collab").unwrap();
            dc_dev.store.put("only_dc", true).unwrap();
            let (a, b) = if initiator_single {
                (&sv_dev, &dc_dev)
            } else {
                (&dc_dev, &sv_dev)
            };
            let outcome = sync_in_memory(
                a.store.sync_store().unwrap(),
                b.store.sync_store().unwrap(),
                mode,
                None,
            );
            let ctx = format!("initiator single: {initiator_single}, {mode:?}: {outcome:?}");
            if let Ok((ra, rb)) = &outcome {
                let refused = ra.status != 0 || rb.status != 0;
                let inert = ra.sent == 0 && rb.sent == 0 && ra.received == 0 && rb.received == 0;
                assert!(refused || inert, "{ctx}");
            }
            // Whatever happened, both stores read exactly what they had.
            assert_eq!(
                entries(&sv_dev.store),
                pairs(&[("k", s("single")), ("only_sv", KvValue::Integer(1))]),
                "{ctx}"
            );
            assert_eq!(
                entries(&dc_dev.store),
                pairs(&[("k", s("collab")), ("only_dc", KvValue::Bool(true))]),
                "{ctx}"
            );
            assert!(device_entries(&dc_dev.store, "phone").is_empty(), "{ctx}");
            // And each still syncs with a peer of its own kind.
            let sv_peer = sv(dir.path(), "sv_peer");
            sync(&sv_dev, &sv_peer, SyncMode::Push);
            assert_eq!(entries(&sv_peer.store), entries(&sv_dev.store), "{ctx}");
            let dc_peer = dc(dir.path(), "dc_peer");
            sync(&dc_dev, &dc_peer, SyncMode::Push);
            assert_eq!(
                device_entries(&dc_peer.store, "laptop"),
                entries(&dc_dev.store),
                "{ctx}"
            );
        }
    }
}

#[test]
fn a_refused_table_is_reported_in_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let (sv_dev, dc_dev) = (sv(dir.path(), "phone"), dc(dir.path(), "laptop"));
    sv_dev.store.put("k", "v").unwrap();
    let (ra, _) = sync_in_memory(
        sv_dev.store.sync_store().unwrap(),
        dc_dev.store.sync_store().unwrap(),
        SyncMode::Push,
        None,
    )
    .unwrap();
    assert_eq!(ra.sent, 0, "{ra:?}");
    assert!(
        ra.status != 0 || ra.message.is_some(),
        "the initiator learns why nothing moved: {ra:?}"
    );
}

#[test]
fn stores_with_different_ids_do_not_sync() {
    let dir = tempfile::tempdir().unwrap();
    let phone = sv(dir.path(), "phone");
    phone.store.put("k", "v").unwrap();
    let other = manager_at(dir.path(), "laptop")
        .get_kv_store("other", Options::default())
        .unwrap();
    let result = sync_in_memory(
        phone.store.sync_store().unwrap(),
        other.sync_store().unwrap(),
        SyncMode::Push,
        None,
    );
    match result {
        Ok((ra, rb)) => {
            assert!(ra.status != 0 || rb.status != 0, "{ra:?} {rb:?}");
            assert_eq!(rb.received, 0);
        }
        Err(e) => assert_ne!(e.code(), 0),
    }
    assert!(entries(&other).is_empty());
}

fn manager_at(root: &std::path::Path, id: &str) -> peerlite::KvManager {
    peerlite::KvManager::at(root.join(id))
        .unwrap()
        .device_id(id)
}

#[test]
fn an_encrypted_store_syncs_with_an_unencrypted_one() {
    for ty in [KvStoreType::SingleVersion, KvStoreType::DeviceCollaboration] {
        let dir = tempfile::tempdir().unwrap();
        let secret = device_with(
            dir.path(),
            "phone",
            Options {
                kv_store_type: ty,
                ..Options::default().encrypted("secret")
            },
        );
        let plain = device(dir.path(), "laptop", ty);
        secret.store.put("token", "hunter2-very-secret").unwrap();
        secret.store.put("n", 42).unwrap();
        plain.at(10).store.put("plain", "visible").unwrap();
        sync_both_ways(&secret, &plain);
        let (from_secret, from_plain) = match ty {
            KvStoreType::SingleVersion => (entries(&plain.store), entries(&secret.store)),
            KvStoreType::DeviceCollaboration => (
                device_entries(&plain.store, "phone"),
                device_entries(&secret.store, "laptop"),
            ),
        };
        assert!(
            from_secret.contains(&("token".to_owned(), s("hunter2-very-secret"))),
            "{ty:?}: {from_secret:?}"
        );
        assert!(
            from_secret.contains(&("n".to_owned(), KvValue::Integer(42))),
            "{ty:?}"
        );
        assert!(
            from_plain.contains(&("plain".to_owned(), s("visible"))),
            "{ty:?}: {from_plain:?}"
        );
        // At rest the encrypted file holds neither its own nor the received values in clear.
        secret.manager.close_kv_store(STORE).unwrap();
        let path = dir.path().join("phone").join(format!("{STORE}.db"));
        let mut bytes = std::fs::read(&path).unwrap();
        if let Ok(wal) = std::fs::read(path.with_extension("db-wal")) {
            bytes.extend(wal);
        }
        for needle in [&b"hunter2-very-secret"[..], &b"visible"[..]] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{ty:?}: plaintext {:?} found on disk",
                String::from_utf8_lossy(needle)
            );
        }
    }
}

#[test]
fn two_encrypted_stores_with_different_keys_sync() {
    let dir = tempfile::tempdir().unwrap();
    let a = device_with(dir.path(), "phone", Options::default().encrypted("one"));
    let b = device_with(dir.path(), "laptop", Options::default().encrypted("two"));
    a.store.put("k", vec![1u8, 2, 3]).unwrap();
    sync(&a, &b, SyncMode::Push);
    assert_eq!(b.store.get("k").unwrap(), KvValue::Bytes(vec![1, 2, 3]));
}

#[test]
fn a_store_labelled_above_the_peer_does_not_send_to_it() {
    use peerlite::SecurityLevel;
    let dir = tempfile::tempdir().unwrap();
    let high = device_with(
        dir.path(),
        "phone",
        Options {
            security_level: SecurityLevel::S3,
            ..Options::default()
        },
    );
    let low = sv(dir.path(), "laptop");
    high.store.put("secret", "s3 data").unwrap();
    low.store.put("public", "s1 data").unwrap();
    let (ra, rb) = sync_in_memory(
        high.store.sync_store().unwrap(),
        low.store.sync_store().unwrap(),
        SyncMode::PushPull,
        None,
    )
    .unwrap();
    assert_eq!(ra.status, 17040006, "{ra:?}");
    assert_eq!(ra.sent, 0);
    assert_eq!(rb.received, 0);
    assert_eq!(code_of(low.store.get("secret")), 15100004);
    // The other way data may go: S1 data to an S3 device.
    sync(&low, &high, SyncMode::Push);
    assert_eq!(high.store.get("public").unwrap(), s("s1 data"));
}

/// A store deleted and made again (a new epoch) gets everything again — its own old entries
/// too, in either mode (issue 9, item 14: a re-created device gets back every row it wrote
/// that peers still hold) — and what it writes afterwards reaches peers that knew the old one.
#[test]
fn a_recreated_store_resyncs_from_scratch() {
    for ty in [KvStoreType::SingleVersion, KvStoreType::DeviceCollaboration] {
        let dir = tempfile::tempdir().unwrap();
        let phone = device(dir.path(), "phone", ty);
        let laptop = device(dir.path(), "laptop", ty);
        phone.store.put("a", 1).unwrap();
        phone.store.put("b", 2).unwrap();
        laptop.store.put("l", "old").unwrap();
        sync_both_ways(&phone, &laptop);
        laptop.manager.delete_kv_store(STORE).unwrap();
        drop(laptop);
        // Re-created a minute later (an app reinstalled, say).
        let laptop = device_at(dir.path(), "laptop", options(ty), T0 + 60_000);
        laptop.at(5_000).store.put("fresh", true).unwrap();
        let (_, on_laptop) = sync(&phone, &laptop, SyncMode::Push);
        // The phone's two entries and the laptop's own old one, which the new store lost (its
        // new epoch is not the one the phone's copy was tagged with, so nothing is taken for
        // an echo). In device collaboration the old entry returns to the laptop's own entries.
        assert_eq!(on_laptop.received, 3, "{ty:?}: everything again");
        assert_eq!(
            laptop.store.get("l").unwrap(),
            KvValue::from("old"),
            "{ty:?}"
        );
        let (_, on_phone) = sync(&laptop, &phone, SyncMode::Push);
        assert!(on_phone.received >= 1, "{ty:?}");
        match ty {
            KvStoreType::SingleVersion => {
                assert_eq!(phone.store.get("fresh").unwrap(), KvValue::Bool(true));
                assert_eq!(
                    entries(&laptop.store),
                    pairs(&[
                        ("a", KvValue::Integer(1)),
                        ("b", KvValue::Integer(2)),
                        ("fresh", KvValue::Bool(true)),
                        ("l", KvValue::from("old")),
                    ]),
                    "{ty:?}"
                );
            }
            KvStoreType::DeviceCollaboration => {
                assert_eq!(
                    phone.store.get_from_device("laptop", "fresh").unwrap(),
                    KvValue::Bool(true)
                );
                assert_eq!(
                    device_entries(&laptop.store, "phone"),
                    entries(&phone.store),
                    "{ty:?}"
                );
            }
        }
    }
}

/// A single-version store deleted and made again on the laptop (same device id, new epoch —
/// an app reinstalled, say) has lost its entries, while the phone still holds the ones the
/// laptop once wrote. Syncing must bring them back, or the two never converge.
#[test]
fn a_recreated_store_gets_its_own_old_entries_back() {
    let dir = tempfile::tempdir().unwrap();
    let phone = sv(dir.path(), "phone");
    let laptop = sv(dir.path(), "laptop");
    laptop.store.put("written_on_laptop", "keep me").unwrap();
    phone.store.put("written_on_phone", 1).unwrap();
    sync_both_ways(&phone, &laptop);
    laptop.manager.delete_kv_store(STORE).unwrap();
    drop(laptop);
    // Re-created a minute later: its epoch begins after everything it wrote before.
    let laptop = device_at(
        dir.path(),
        "laptop",
        options(KvStoreType::SingleVersion),
        T0 + 60_000,
    );
    sync_both_ways(&laptop, &phone);
    sync_both_ways(&phone, &laptop);
    assert_eq!(entries(&laptop.store), entries(&phone.store));
    assert_eq!(laptop.store.get("written_on_laptop").unwrap(), s("keep me"));
}
