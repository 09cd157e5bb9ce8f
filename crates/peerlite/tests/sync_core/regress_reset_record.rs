//! Adversary round 4, MEDIUM-1: a damaged reset record (`DB.reset` emptied, overwritten with
//! random bytes, cut in half — what a crash on a file system without ordered writes can
//! leave — or valid JSON of another shape) was read as "3 client resets failed in a row": every
//! later reset, in any mode, was refused with a false 17040014 until the user removed the file
//! by hand. A reset is crash-safe (the store is always as it was before it or as it left it),
//! so an unreadable record now stands for an interrupted reset with no failed attempt known:
//! the next reset runs, and failures from then on are counted as ever.

use peerlite::reset::{MAX_ATTEMPTS, ResetMode};
use peerlite::sync::{SyncMode, sync_in_memory};

use crate::common::*;

/// `DB.reset` of `store`.
fn record_of(store: &peerlite::RdbStore) -> std::path::PathBuf {
    let mut os = store.path().as_os_str().to_owned();
    os.push(".reset");
    os.into()
}

/// a holds an offline insert b never saw; b holds a's first row.
fn devices() -> (tempfile::TempDir, peerlite::RdbStore, peerlite::RdbStore) {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    add_item(&a, "u1", "shared", 1);
    let (on_a, _) = sync_in_memory(&a, &b, SyncMode::Push, None).unwrap();
    assert!(on_a.status.is_ok());
    clock.advance(10);
    add_item(&a, "u9", "offline insert", 9);
    add_item(&b, "u5", "from b", 5);
    (dir, a, b)
}

/// The damage patterns, made from the record a real reset wrote.
fn damaged(real: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
    vec![
        ("empty", Vec::new()),
        ("random bytes", garbage),
        ("cut in half", real[..real.len() / 2].to_vec()),
        ("JSON of another shape", br#"{"hello": [1, 2, 3]}"#.to_vec()),
        ("a JSON list", b"[0, 0, 0]".to_vec()),
        (
            "attempts not a number",
            br#"{"peer":"b","attempts":"x","backup":null}"#.to_vec(),
        ),
    ]
}

#[test]
fn a_damaged_reset_record_does_not_block_the_next_reset() {
    let real = {
        let (_dir, a, _b) = devices();
        let reseed = a.begin_reset("b").unwrap();
        let bytes = std::fs::read(record_of(&a)).unwrap();
        reseed.abandon().unwrap();
        bytes
    };
    assert!(!real.is_empty());
    for (case, bytes) in damaged(&real) {
        let (_dir, a, b) = devices();
        std::fs::write(record_of(&a), &bytes).unwrap();
        assert!(a.reset_pending(), "{case}: an interrupted reset");
        let reseed = a
            .begin_reset("b")
            .unwrap_or_else(|e| panic!("{case}: {e} [{}]", e.code()));
        let (on_seed, _) = sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
        assert!(on_seed.status.is_ok(), "{case}: {on_seed:?}");
        reseed.finish(ResetMode::RecoverUnsynced).unwrap();
        assert!(!a.reset_pending(), "{case}");
        let uuids: Vec<String> = items(&a).into_iter().map(|i| i.uuid).collect();
        assert_eq!(uuids, ["u1", "u5", "u9"], "{case}");
    }
}

/// Failures after a damaged record are counted from none: the limit still stops the
/// [`MAX_ATTEMPTS`]-th failure's successor, never an earlier reset.
#[test]
fn failures_after_a_damaged_record_are_still_counted() {
    let (_dir, a, b) = devices();
    std::fs::write(record_of(&a), b"\0\0\0").unwrap();
    for attempt in 1..=MAX_ATTEMPTS {
        let reseed = a
            .begin_reset("b")
            .unwrap_or_else(|e| panic!("attempt {attempt}: {e}"));
        sync_in_memory(reseed.seed(), &b, SyncMode::Pull, None).unwrap();
        drop(reseed);
    }
    assert_eq!(a.begin_reset("b").unwrap_err().code(), 17040014);
}
