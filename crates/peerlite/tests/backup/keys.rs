//! A damaged file is only ever rebuilt when its damage is proven — never when the key is the
//! problem.
//!
//! Issue 9, defect 8: a truncated encrypted store opened without a key was taken for a
//! corrupted plaintext file, and `repair` replaced it with an empty *plaintext* store —
//! encryption at rest silently dropped; with the right key, a page-aligned truncation was
//! reported as a wrong key and could not be repaired. Now a key is proven by SQLCipher's page
//! HMACs (one page that verifies proves it) and a file without a key must be a plaintext
//! SQLite database to be called corrupted. Every combination is checked: plaintext and
//! encrypted, key right, wrong, missing or superfluous, file intact, cut at a page boundary,
//! cut inside a page, header scribbled.

use std::path::Path;

use peerlite::{RdbStore, RebuiltType, StoreConfig, Value};
use peerlite_testkit::{dir_entries, pseudo_random_bytes, temp_store_path};

use crate::common::PAGE_SIZE;

const KEY: &str = "the store's own key";
const ROWS: i64 = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Intact,
    CutAligned,
    CutInsidePage,
    HeaderScribbled,
}

/// A closed store of `ROWS` rows with a backup `good` of them, then damaged as `shape` says.
fn store(encrypted: bool, shape: Shape) -> (peerlite_testkit::TempDir, std::path::PathBuf) {
    let (dir, path) = temp_store_path();
    let mut config = StoreConfig::new(&path);
    if encrypted {
        config = config.encryption_key(KEY);
    }
    let store = RdbStore::open(config).unwrap();
    store
        .execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)", &[])
        .unwrap();
    store
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             INSERT INTO t SELECT i, printf('row-%d-%100c', i, 'x') FROM n",
            &[Value::from(ROWS)],
        )
        .unwrap();
    store.backup("good").unwrap();
    store.close().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let pages = bytes.len() / PAGE_SIZE;
    assert!(pages > 40);
    match shape {
        Shape::Intact => {}
        Shape::CutAligned => bytes.truncate(pages / 2 * PAGE_SIZE),
        Shape::CutInsidePage => bytes.truncate(pages / 2 * PAGE_SIZE + 1234),
        Shape::HeaderScribbled => bytes[16..100].copy_from_slice(&pseudo_random_bytes(8, 84)),
    }
    std::fs::write(&path, &bytes).unwrap();
    (dir, path)
}

fn config(path: &Path, key: Option<&str>) -> StoreConfig {
    match key {
        Some(k) => StoreConfig::new(path).encryption_key(k),
        None => StoreConfig::new(path),
    }
}

/// The code an open reports (0 when it opens and reads the table).
fn open_code(path: &Path, key: Option<&str>) -> u32 {
    match RdbStore::open(config(path, key)) {
        Ok(store) => {
            let read = store
                .query_sql("SELECT count(*) FROM t", &[])
                .and_then(|mut rs| {
                    rs.go_to_first_row()?;
                    rs.get_long(0)
                });
            let code = match read {
                Ok(n) => {
                    assert_eq!(n, ROWS);
                    0
                }
                Err(e) => e.code(),
            };
            let _ = store.close();
            code
        }
        Err(e) => e.code(),
    }
}

/// What an open reports, and what repair then does.
fn case(encrypted: bool, key: Option<&str>, shape: Shape, expected: u32) {
    let label = format!("encrypted {encrypted}, key {key:?}, {shape:?}");
    let (dir, path) = store(encrypted, shape);
    let before = std::fs::read(&path).unwrap();
    assert_eq!(open_code(&path, key), expected, "{label}: open");
    match expected {
        0 => {}
        14800020 => {
            // A key problem: repair refuses and touches nothing.
            let err = RdbStore::open(config(&path, key).allow_rebuild(true))
                .map(|s| s.rebuilt())
                .unwrap_err();
            assert_eq!(err.code(), 14800020, "{label}: repair: {err}");
            assert_eq!(
                std::fs::read(&path).unwrap(),
                before,
                "{label}: the file changed"
            );
            assert!(
                !dir.path().join("quarantine").exists(),
                "{label}: a key problem led to quarantine: {:?}",
                dir_entries(dir.path())
            );
            assert!(!peerlite::repair::repair_pending(&path), "{label}");
        }
        14800011 => {
            let store = RdbStore::open(config(&path, key).allow_rebuild(true)).unwrap();
            assert_eq!(store.rebuilt(), RebuiltType::Repaired, "{label}");
            let report = store.repair_report().unwrap().clone();
            // Page 1 no longer decrypting hides no other page (issue 9 adversarial finding 3).
            assert!(report.salvage.rows > 0, "{label}: {:?}", report.salvage);
            store.close().unwrap();
            // Still encrypted exactly when it was.
            let head = std::fs::read(&path).unwrap();
            assert_eq!(
                head.starts_with(b"SQLite format 3\0"),
                !encrypted,
                "{label}"
            );
            assert_eq!(open_code(&path, key), 0, "{label}: after repair");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_plaintext_store_without_a_key_is_corrupted_only_when_damaged() {
    case(false, None, Shape::Intact, 0);
    case(false, None, Shape::CutAligned, 14800011);
    case(false, None, Shape::CutInsidePage, 14800011);
    case(false, None, Shape::HeaderScribbled, 14800011);
}

#[test]
fn a_superfluous_key_is_a_key_problem_whatever_the_damage() {
    for shape in [
        Shape::Intact,
        Shape::CutAligned,
        Shape::CutInsidePage,
        Shape::HeaderScribbled,
    ] {
        case(false, Some(KEY), shape, 14800020);
    }
}

#[test]
fn an_encrypted_store_with_its_key_is_corrupted_when_cut_or_scribbled_and_repairs() {
    case(true, Some(KEY), Shape::Intact, 0);
    case(true, Some(KEY), Shape::CutAligned, 14800011);
    case(true, Some(KEY), Shape::CutInsidePage, 14800011);
    case(true, Some(KEY), Shape::HeaderScribbled, 14800011);
}

#[test]
fn an_encrypted_store_with_a_wrong_key_is_never_called_corrupted() {
    for shape in [
        Shape::Intact,
        Shape::CutAligned,
        Shape::CutInsidePage,
        Shape::HeaderScribbled,
    ] {
        case(true, Some("not the key"), shape, 14800020);
    }
}

#[test]
fn an_encrypted_store_without_a_key_is_a_missing_key_never_an_empty_plaintext_store() {
    for shape in [
        Shape::Intact,
        Shape::CutAligned,
        Shape::CutInsidePage,
        Shape::HeaderScribbled,
    ] {
        case(true, None, shape, 14800020);
    }
}
