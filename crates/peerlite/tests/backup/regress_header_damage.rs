//! One damaged byte of the database header — the schema format number (offsets 44–47, its
//! low byte at 47) set past 4 — made SQLite answer "unsupported file format" (SQLITE_ERROR, not SQLITE_CORRUPT):
//! `check` failed with 14800021 and a hint to check the arguments, and neither `repair` nor
//! `restore` would touch the store, although its verified backup was right there.
//!
//! A header SQLite cannot read is damage. Every byte of the 100-byte header is damaged in
//! turn here (two values each): the store either still opens and checks out, or it is
//! reported as corrupted (14800011) — never as another error — and a rebuild puts the
//! verified backup back.

use peerlite::{CheckMode, RdbStore, RebuiltType, StoreConfig};
use peerlite_testkit::temp_store_path;

use crate::common::{CREATE_ITEM, add_items, items};

#[test]
fn every_damaged_header_byte_is_corruption_or_harmless_and_repairable() {
    let (_dir, db) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&db)).unwrap();
    store.execute(CREATE_ITEM, &[]).unwrap();
    add_items(&store, &["a", "b", "c"]);
    store.backup("b1").unwrap();
    store.close().unwrap();
    let original = std::fs::read(&db).unwrap();
    let mut corrupted = Vec::new();
    for offset in 0..100 {
        for value in [original[offset] ^ 0xFF, 9] {
            if value == original[offset] {
                continue;
            }
            let mut bytes = original.clone();
            bytes[offset] = value;
            std::fs::write(&db, &bytes).unwrap();
            for side in ["-wal", "-shm", ".corrupt"] {
                let _ = std::fs::remove_file(format!("{}{side}", db.display()));
            }
            let checked = RdbStore::open(StoreConfig::new(&db).for_recovery(true))
                .and_then(|s| s.check(CheckMode::Full).map(|()| items(&s)));
            match checked {
                Ok(names) => assert_eq!(names, ["a", "b", "c"], "offset {offset} = {value}"),
                Err(e) => {
                    assert_eq!(e.code(), 14800011, "offset {offset} = {value}: {e}");
                    corrupted.push((offset, value));
                    let repaired = RdbStore::open(StoreConfig::new(&db).allow_rebuild(true))
                        .unwrap_or_else(|e| panic!("offset {offset} = {value}: {e}"));
                    assert_eq!(repaired.rebuilt(), RebuiltType::Repaired, "offset {offset}");
                    assert_eq!(items(&repaired), ["a", "b", "c"]);
                    repaired.close().unwrap();
                    std::fs::remove_dir_all(db.parent().unwrap().join("quarantine")).unwrap();
                }
            }
        }
    }
    assert!(
        corrupted.contains(&(47, 9)),
        "the schema format byte is damage: {corrupted:?}"
    );
}
