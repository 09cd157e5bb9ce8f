//! Adversary round 2, finding 8, for key-value stores: a store directory put back from a copy
//! (a `cp -a`, a VM snapshot) that then put as many entries as it lost, or more, before it
//! synced numbered them with sequence numbers the peer had already passed — the peer took them
//! for the entries it held, never got them, and every sync said ok. Whether only the database
//! file or the whole directory (clock file included) is put back, both kinds of store now
//! deliver every entry: the first by a new epoch at open, the second by the watermark's stamp
//! (one session ends 17040012, the next sends everything again).

use std::path::{Path, PathBuf};

use peerlite::KvStoreType;
use peerlite::sync::{SyncMode, SyncStatus, sync_in_memory};

use crate::common::*;

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

/// Puts `dir` back as `snapshot` had it; the clock file stays the current one unless `whole`.
fn put_back(dir: &Path, snapshot: &[(PathBuf, Vec<u8>)], whole: bool) {
    let is_clock = |p: &Path| p.to_string_lossy().ends_with(".clock");
    for (path, _) in files(dir) {
        if (whole || !is_clock(&path)) && !snapshot.iter().any(|(p, _)| *p == path) {
            std::fs::remove_file(&path).unwrap();
        }
    }
    for (path, bytes) in snapshot {
        if whole || !is_clock(path) {
            std::fs::write(path, bytes).unwrap();
        }
    }
}

fn reopen(root: &Path, id: &str, ty: KvStoreType, ms: u64) -> Device {
    device_at(root, id, options(ty), ms)
}

#[test]
fn a_store_put_back_that_puts_more_than_it_lost_still_delivers_every_entry() {
    for ty in [KvStoreType::SingleVersion, KvStoreType::DeviceCollaboration] {
        for whole in [false, true] {
            let case = format!("{ty:?}, whole directory: {whole}");
            let root = tempfile::tempdir().unwrap();
            let phone = device(root.path(), "phone", ty);
            let laptop = device(root.path(), "laptop", ty);
            phone.store.put("k1", 1).unwrap();
            sync(&phone, &laptop, SyncMode::Push);
            drop(phone);
            let snapshot = files(&root.path().join("phone"));
            let phone = reopen(root.path(), "phone", ty, T0 + 5_000);
            phone.store.put("k2", 2).unwrap();
            phone.store.put("k3", 3).unwrap();
            sync(&phone, &laptop, SyncMode::Push);
            drop(phone);
            put_back(&root.path().join("phone"), &snapshot, whole);
            let phone = reopen(root.path(), "phone", ty, T0 + 10_000);
            for k in ["n1", "n2", "n3", "n4"] {
                phone.store.put(k, k).unwrap();
            }
            let push = || {
                sync_in_memory(
                    phone.store.sync_store().unwrap(),
                    laptop.store.sync_store().unwrap(),
                    SyncMode::Push,
                    None,
                )
                .unwrap()
                .0
            };
            let first = push();
            if whole {
                assert_eq!(first.status, SyncStatus::RolledBack, "{case}: {first:?}");
                assert!(push().status.is_ok(), "{case}");
            } else {
                assert!(first.status.is_ok(), "{case}: {first:?}");
            }
            let held: Vec<String> = match ty {
                KvStoreType::DeviceCollaboration => device_entries(&laptop.store, "phone"),
                _ => entries(&laptop.store),
            }
            .into_iter()
            .map(|(k, _)| k)
            .collect();
            for k in ["k1", "n1", "n2", "n3", "n4"] {
                assert!(
                    held.contains(&k.to_owned()),
                    "{case}: {k} missing from {held:?}"
                );
            }
        }
    }
}
