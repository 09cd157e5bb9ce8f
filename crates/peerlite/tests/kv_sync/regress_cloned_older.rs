//! Adversary round 4, HIGH-5, for key-value stores: a store directory copied to a clone (the
//! same device id) whose clone put an entry first and the original a moment later — both
//! numbered it change 2. A peer that synced with the original held change 2, stamped with the
//! original's newer write time; the clone's older entry passed the stamp check, every sync said
//! ok, and the clone's entry (a put or a delete) never arrived. The stamp now also keeps the
//! write time and a fingerprint of the key of the change numbered at the watermark: the clone
//! renews its epoch (17040012) and the next sync delivers it — also when the entries were put
//! before the store first synced (their write time is not known: the key tells them apart).

use std::path::Path;

use peerlite::KvStoreType;
use peerlite::sync::{DeviceResult, SyncMode, SyncStatus, sync_in_memory};

use crate::common::*;

/// Copies the directory `from` to `to`, every file.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// One session between `a` and `b`, started by `b` for a pull; returns (a's, b's result).
fn session(a: &Device, b: &Device, mode: SyncMode) -> (DeviceResult, DeviceResult) {
    let (a, b) = (a.store.sync_store().unwrap(), b.store.sync_store().unwrap());
    match mode {
        SyncMode::Pull => {
            let (on_b, on_a) = sync_in_memory(b, a, SyncMode::Pull, None).unwrap();
            (on_a, on_b)
        }
        _ => sync_in_memory(a, b, SyncMode::Push, None).unwrap(),
    }
}

#[test]
fn a_clones_entry_older_than_the_one_received_under_its_number_still_arrives() {
    for ty in [KvStoreType::SingleVersion, KvStoreType::DeviceCollaboration] {
        for mode in [SyncMode::Pull, SyncMode::Push] {
            for (delete, synced_from_start) in [(false, true), (true, true), (false, false)] {
                let case = format!(
                    "{ty:?} {mode:?}, the clone deletes: {delete}, synced from the start: {synced_from_start}"
                );
                let root = tempfile::tempdir().unwrap();
                let clones = tempfile::tempdir().unwrap();
                let phone = device(root.path(), "phone", ty);
                let laptop = device(root.path(), "laptop", ty);
                // Synced from the start: its entries carry their write times (else the first
                // sync gives each copy's entries numbers, and no write time).
                if synced_from_start {
                    phone.store.enable_sync().unwrap();
                }
                phone.store.put("k1", 1).unwrap();
                drop(phone);
                copy_dir(&root.path().join("phone"), &clones.path().join("phone"));
                let clone = device_at(clones.path(), "phone", options(ty), T0 + 1_000);
                let phone = device_at(root.path(), "phone", options(ty), T0 + 2_000);
                // Both number their next change 2: the clone's is the older.
                if delete {
                    clone.store.delete("k1").unwrap();
                } else {
                    clone.store.put("y", "from the clone").unwrap();
                }
                phone.store.put("x", "from the phone").unwrap();
                assert!(session(&phone, &laptop, mode).0.status.is_ok(), "{case}");
                let (first, on_laptop) = session(&clone, &laptop, mode);
                assert_eq!(first.status, SyncStatus::RolledBack, "{case}: {first:?}");
                assert_eq!(on_laptop.status.code(), 17040012, "{case}: {on_laptop:?}");
                assert!(session(&clone, &laptop, mode).0.status.is_ok(), "{case}");
                let held: Vec<String> = match ty {
                    KvStoreType::DeviceCollaboration => device_entries(&laptop.store, "phone"),
                    _ => entries(&laptop.store),
                }
                .into_iter()
                .map(|(k, _)| k)
                .collect();
                let expected = if delete {
                    vec!["x"]
                } else {
                    vec!["k1", "x", "y"]
                };
                assert_eq!(held, expected, "{case}");
            }
        }
    }
}
