//! Salvage, case by case: the damage of issue 9 (defects 2 and 3) and the rules salvage keeps
//! (rows refused by their table, a WAL's uncommitted frames, a schema's text, raw pages).

use peerlite::repair::salvage;
use peerlite_testkit::pseudo_random_bytes;
use rusqlite::Connection;

use crate::salvage::{Hit, PAGE, damage, encrypted, open_salvage, plain, run};

/// Defect 3: cut anywhere — one byte short, in the middle of a page, at a page boundary, half
/// the file, just past page 1 — every row on the pages the file still has comes back, for
/// plaintext and encrypted databases alike (the old salvage returned none: SQLite refuses a
/// header counting more pages than the file has).
#[test]
fn a_file_cut_anywhere_gives_up_every_row_on_the_pages_it_still_has() {
    for f in [plain(), encrypted()] {
        let len = f.bytes.len();
        for cut in [
            len - 1,
            len - PAGE,
            len / 2,
            len / 2 / PAGE * PAGE,
            7 * PAGE + 17,
            PAGE + 1,
        ] {
            let (report, counts) = run(f, &f.bytes[..cut]);
            let report = report.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            for table in ["r", "o", "w"] {
                let least = f.readable_rows(table, &[], cut);
                let got = counts.get(table).copied().unwrap_or(0);
                assert!(
                    got >= least,
                    "encrypted {}, cut at {cut} of {len}: {table} has {got} rows, {least} on whole pages; {report:?}",
                    f.key.is_some()
                );
            }
            if cut >= len / 2 {
                assert!(report.rows > 0, "cut at {cut}: {report:?}");
            }
        }
    }
}

/// Defect 2: a quarter of the pages of an encrypted file damaged, one page in two over the
/// middle half. The old salvage reopened the file (deriving the key again) after every failed read
/// and probed its way past each damaged page: minutes of work. Now: one connection, every
/// page fetched at most twice, and the rows on every other page salvaged.
#[test]
fn many_damaged_pages_spread_over_the_middle_cost_one_connection_and_one_pass() {
    for f in [encrypted(), plain()] {
        let n = f.pages();
        let damaged: Vec<u32> = (n / 4..n * 3 / 4).step_by(2).collect();
        let hits: Vec<Hit> = damaged
            .iter()
            .map(|p| Hit::Page(f64::from(p - 2) / f64::from(n - 2) + 1e-9))
            .collect();
        let (bytes, damaged, _) = damage(f, &hits, 99);
        let (report, counts) = run(f, &bytes);
        let report = report.unwrap();
        assert!(damaged.len() > 20, "{} damaged pages", damaged.len());
        assert_eq!(report.connections, u64::from(f.key.is_some()), "{report:?}");
        assert!(report.pages_read <= 2 * u64::from(n), "{report:?}");
        for table in ["r", "o", "w"] {
            let least = f.readable_rows(table, &damaged, bytes.len());
            assert!(
                counts.get(table).copied().unwrap_or(0) >= least,
                "{table}: {report:?}"
            );
        }
    }
}

/// A row a table's constraints refuse once a field is missing (NOT NULL over a blob whose
/// overflow chain is damaged) is kept in `peerlite_lost_and_found`, never dropped.
#[test]
fn rows_the_table_refuses_are_kept_in_lost_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nn.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, big BLOB NOT NULL)")
        .unwrap();
    for id in 1..=20 {
        conn.execute("INSERT INTO t VALUES (?1, zeroblob(20000))", [id])
            .unwrap();
    }
    let overflow: Vec<u32> = conn
        .prepare(
            "SELECT pageno FROM dbstat WHERE name = 't' AND pagetype = 'overflow' ORDER BY pageno",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(conn);
    let mut bytes = std::fs::read(&db).unwrap();
    for page in overflow.iter().step_by(9).take(4) {
        let start = (*page as usize - 1) * PAGE;
        bytes[start..start + PAGE].copy_from_slice(&pseudo_random_bytes(u64::from(*page), PAGE));
    }
    std::fs::write(&db, &bytes).unwrap();
    let dest = dir.path().join("nn.salvage.db");
    let report = salvage(&db, None, &dest).unwrap();
    let conn = open_salvage(&dest, None);
    let kept: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    let lost: i64 = conn
        .query_row(
            "SELECT count(*) FROM peerlite_lost_and_found WHERE tree = 't'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept + lost, 20, "{report:?}");
    assert_eq!(lost, 4, "{report:?}");
    assert_eq!(report.lost_and_found, 4);
    // What is kept of them: the rowid, and the blob as missing.
    let missing: i64 = conn
        .query_row("SELECT count(*) FROM peerlite_lost_and_found WHERE cell_rowid BETWEEN 1 AND 20 AND c0 IS NULL AND c1 IS NULL AND nfield = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(missing, 4);
}

/// `sqlite_dbpage`, compiled in so salvage can read the decrypted pages of encrypted stores,
/// writes raw pages when SQL asks it to: every store connection is in SQLite's defensive
/// mode, where it is read-only, so caller SQL can read pages but never corrupt the file.
#[test]
fn caller_sql_cannot_write_raw_pages() {
    let (_dir, path) = peerlite_testkit::temp_store_path();
    let store = peerlite::RdbStore::open(peerlite::StoreConfig::new(&path)).unwrap();
    store.execute("CREATE TABLE t(x)", &[]).unwrap();
    let err = store
        .execute(
            "UPDATE sqlite_dbpage SET data = zeroblob(4096) WHERE pgno = 2",
            &[],
        )
        .unwrap_err();
    // The guard refuses it first (17050001); defensive mode would refuse it behind the guard.
    assert!(
        err.code() == 17050001 || err.to_string().contains("read-only"),
        "{err}"
    );
    store.check(peerlite::CheckMode::Full).unwrap();
}

/// The WAL a crash leaves holds committed transactions and, after them, the frames of one
/// that never committed (its pages spilled from the cache before the crash). Salvage reads
/// the committed ones — rows the database file does not have yet — and never the others:
/// those rows were never in the database.
#[test]
fn a_wal_gives_its_committed_rows_and_never_an_uncommitted_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let conn = Connection::open(&live).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = 10;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);",
    )
    .unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) \
         INSERT INTO t SELECT i, 'committed' FROM n",
        [],
    )
    .unwrap();
    conn.execute_batch("BEGIN").unwrap();
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 501 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
         INSERT INTO t SELECT i, printf('uncommitted %0200d', i) FROM n",
        [],
    )
    .unwrap();
    // The crash: the files as they are now.
    let db = dir.path().join("crashed.db");
    std::fs::copy(&live, &db).unwrap();
    std::fs::copy(
        dir.path().join("live.db-wal"),
        dir.path().join("crashed.db-wal"),
    )
    .unwrap();
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    let wal_len = std::fs::metadata(dir.path().join("crashed.db-wal"))
        .unwrap()
        .len();
    assert!(
        wal_len > 1_000_000,
        "the uncommitted pages spilled into the WAL: {wal_len}"
    );

    let dest = dir.path().join("crashed.salvage.db");
    let report = salvage(&db, None, &dest).unwrap();
    let out = open_salvage(&dest, None);
    let (n, committed): (i64, i64) = out
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE v = 'committed') FROM t",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, committed), (500, 500), "{report:?}");
}

/// The schema's text comes from the damaged file itself: salvage runs only the `CREATE
/// TABLE` / `CREATE INDEX` statements a schema holds, one each, never anything else the
/// bytes say (here: an ATTACH that would create a file).
#[test]
fn a_schema_entry_runs_nothing_but_its_create_statement() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("odd.db");
    let evil = dir.path().join("evil.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    conn.execute_batch("PRAGMA writable_schema = ON").unwrap();
    conn.execute(
        "UPDATE sqlite_schema SET sql = ?1 WHERE name = 't'",
        [format!(
            "CREATE TABLE t(x); ATTACH DATABASE '{}' AS e; CREATE TABLE e.pwn(y)",
            evil.display()
        )],
    )
    .unwrap();
    drop(conn);
    let dest = dir.path().join("odd.salvage.db");
    let report = salvage(&db, None, &dest).unwrap();
    assert!(!evil.exists(), "salvage ran the schema's text");
    // The rows are kept, in lost-and-found: their table's layout is unknown.
    assert_eq!(report.lost_and_found, 2, "{report:?}");
}

/// A damaged b-tree may loop (a child pointer back to the root) or hand out rowids out of
/// order (two children swapped): the old salvage followed rowids and could go round; now
/// every page is taken once, so the walk ends after at most 2·N fetches, and every row is
/// still found (the page the loop replaced is read as an orphan).
#[test]
fn a_looping_b_tree_and_rowids_out_of_order_cost_no_repeated_work() {
    let f = plain();
    let root: usize = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        std::fs::write(&path, &f.bytes).unwrap();
        Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'r'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|r| r as usize)
            .unwrap()
    };
    let root_page = f.bytes[(root - 1) * PAGE..root * PAGE].to_vec();
    assert_eq!(root_page[0], 5, "r's root is a table interior page");
    let cells = u16::from_be_bytes([root_page[3], root_page[4]]) as usize;
    assert!(cells >= 3);
    let cell_at =
        |i: usize| u16::from_be_bytes([root_page[12 + 2 * i], root_page[13 + 2 * i]]) as usize;
    for (what, edit) in [("loop", 0), ("swapped children", 1)] {
        let mut bytes = f.bytes.clone();
        let base = (root - 1) * PAGE;
        let (a, b) = (base + cell_at(0), base + cell_at(cells - 1));
        if edit == 0 {
            bytes[a..a + 4].copy_from_slice(&(root as u32).to_be_bytes());
        } else {
            let first: [u8; 4] = bytes[a..a + 4].try_into().unwrap();
            let last: [u8; 4] = bytes[b..b + 4].try_into().unwrap();
            bytes[a..a + 4].copy_from_slice(&last);
            bytes[b..b + 4].copy_from_slice(&first);
        }
        let (report, counts) = run(f, &bytes);
        let report = report.unwrap();
        assert!(report.pages_read <= 2 * report.pages, "{what}: {report:?}");
        let deleted = crate::salvage::R_DELETED.count() as i64;
        assert_eq!(
            counts["r"],
            crate::salvage::R_ROWS - deleted,
            "{what}: {report:?}"
        );
    }
}
