//! Online backups: one pinned snapshot under a steady writer, progress, cancellation, explicit
//! destinations.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use peerlite::{BackupRequest, Progress, RdbStore, StoreConfig, bucket};
use peerlite_testkit::{count_rows, dir_entries, query_column, temp_store_path, wait_for};

use crate::common::{
    PAGE_SIZE, add_items, add_padding, backup_dir, code, items, items_in, listed, manifest_of,
    open_read_only, path_str, store_with_items,
};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_backup_under_a_steady_writer_is_one_snapshot_and_never_restarts() {
    let (_dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    add_padding(&store, 1500, 1000);
    store
        .execute(
            "CREATE TABLE pair(id INTEGER PRIMARY KEY, txn INTEGER NOT NULL)",
            &[],
        )
        .unwrap();

    // Transaction n inserts the rows 2n-1 and 2n. `started` is bumped before a transaction
    // begins, `committed` after it commits.
    let started = Arc::new(AtomicU64::new(0));
    let committed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, started, committed, stop) = (
            store.clone(),
            Arc::clone(&started),
            Arc::clone(&committed),
            Arc::clone(&stop),
        );
        std::thread::spawn(move || {
            let mut n: i64 = 0;
            while !stop.load(Ordering::Acquire) && n < 50_000 {
                n += 1;
                started.store(n as u64, Ordering::SeqCst);
                store
                    .transaction(|tx| {
                        tx.insert("pair", &bucket! { "id" => 2 * n - 1, "txn" => n })?;
                        tx.insert("pair", &bucket! { "id" => 2 * n, "txn" => n })?;
                        Ok(())
                    })
                    .unwrap();
                committed.store(n as u64, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    assert!(wait_for(WAIT, || committed.load(Ordering::SeqCst) >= 3));

    let before = committed.load(Ordering::SeqCst);
    let mut steps = 0u32;
    let mut on_progress = |_: Progress| {
        steps += 1;
        // Every tenth step waits for the writer to commit again, so commits certainly land
        // between the steps of this backup.
        if steps % 10 == 1 {
            let seen = committed.load(Ordering::SeqCst);
            assert!(
                wait_for(WAIT, || committed.load(Ordering::SeqCst) > seen),
                "the writer stopped committing during the backup"
            );
        }
    };
    let info = store
        .backup_with(
            BackupRequest::named("under-load")
                .pages_per_step(4)
                .on_progress(&mut on_progress),
        )
        .unwrap();
    let after_committed = committed.load(Ordering::SeqCst);
    let after_started = started.load(Ordering::SeqCst);
    stop.store(true, Ordering::Release);
    writer.join().unwrap();

    assert_eq!(info.restarts, 0);
    assert!(steps > 50, "the backup took only {steps} steps");
    let during = after_committed - before;
    assert!(
        during >= 5,
        "only {during} commits landed during the backup"
    );

    let copy = open_read_only(&info.path);
    let ids = query_column::<i64>(&copy, "SELECT id FROM pair ORDER BY id", &[]).unwrap();
    let k = ids.len() as i64;
    assert_eq!(ids, (1..=k).collect::<Vec<_>>(), "ids are not contiguous");
    assert_eq!(k % 2, 0, "half of a transaction is in the backup");
    let torn = query_column::<i64>(
        &copy,
        "SELECT txn FROM pair GROUP BY txn HAVING count(*) != 2",
        &[],
    )
    .unwrap();
    assert!(torn.is_empty(), "torn transactions {torn:?}");
    let pairs = (k / 2) as u64;
    assert!(
        (before..=after_started).contains(&pairs),
        "the backup holds {pairs} transactions; {before} had committed before the call and {after_started} had started by its end"
    );
    assert!(
        pairs < after_committed,
        "the backup holds {pairs} transactions: it must not contain the ones committed while it ran ({after_committed} by its end)"
    );
    assert_eq!(count_rows(&copy, "pad").unwrap(), 1500);
    copy.close().unwrap();
    // The live store kept every commit.
    assert_eq!(
        count_rows(&store, "pair").unwrap() as u64,
        2 * committed.load(Ordering::SeqCst)
    );
}

#[test]
fn progress_reports_page_counts_and_ends_at_zero_for_backup_and_restore() {
    let (_dir, store) = store_with_items(&["a", "b"]);
    add_padding(&store, 300, 1000);
    let mut seen: Vec<Progress> = Vec::new();
    let mut record = |p: Progress| seen.push(p);
    let info = store
        .backup_with(
            BackupRequest::named("progress")
                .pages_per_step(8)
                .on_progress(&mut record),
        )
        .unwrap();
    check_progress(&seen, info.page_count, 8);
    assert_eq!(info.size_bytes, info.page_count * PAGE_SIZE as u64);
    assert_eq!(
        std::fs::metadata(&info.path).unwrap().len(),
        info.size_bytes
    );
    assert!(info.verified);

    store.execute("DELETE FROM item", &[]).unwrap();
    let mut seen: Vec<Progress> = Vec::new();
    let mut record = |p: Progress| seen.push(p);
    let report = store
        .restore_with(
            peerlite::RestoreRequest::new("progress")
                .pages_per_step(16)
                .on_progress(&mut record),
        )
        .unwrap();
    check_progress(&seen, report.pages, 16);
    assert_eq!(report.pages, info.page_count);
    assert_eq!(items(&store), ["a", "b"]);
}

fn check_progress(seen: &[Progress], pages: u64, per_step: u32) {
    assert!(seen.len() > 3, "only {} progress reports", seen.len());
    let total = seen[0].page_count;
    assert!(total > 0);
    assert_eq!(u64::from(total), pages);
    assert!(seen.iter().all(|p| p.page_count == total), "{seen:?}");
    assert_eq!(seen[0].remaining, total - per_step);
    assert!(
        seen.windows(2).all(|w| w[1].remaining < w[0].remaining),
        "remaining must fall with every step: {seen:?}"
    );
    assert_eq!(seen.last().unwrap().remaining, 0);
}

#[test]
fn a_cancelled_backup_returns_17020005_and_leaves_nothing_behind() {
    let (_dir, store) = store_with_items(&["a"]);
    add_padding(&store, 200, 1000);
    let dir = backup_dir(&store);

    // Cancelled between two steps, after three of them.
    let cancel = AtomicBool::new(false);
    let mut steps = 0;
    let mut cancel_after_three = |_: Progress| {
        steps += 1;
        if steps == 3 {
            cancel.store(true, Ordering::Release);
        }
    };
    let err = store
        .backup_with(
            BackupRequest::named("cancelled")
                .pages_per_step(2)
                .on_progress(&mut cancel_after_three)
                .cancel_when(&cancel),
        )
        .unwrap_err();
    assert_eq!(err.code(), 17020005, "{err}");
    assert_eq!(steps, 3, "the copy went on after the flag was set");
    assert_eq!(
        dir_entries(&dir),
        Vec::<String>::new(),
        "a cancelled backup left files"
    );
    assert!(listed(&store).is_empty());

    // Cancelled before the first step.
    let already = AtomicBool::new(true);
    assert_eq!(
        code(store.backup_with(BackupRequest::named("cancelled").cancel_when(&already))),
        17020005
    );
    assert_eq!(dir_entries(&dir), Vec::<String>::new());

    // Nothing is in the way of the same name afterwards.
    let info = store.backup("cancelled").unwrap();
    assert_eq!(listed(&store), ["cancelled"]);
    assert_eq!(dir_entries(&dir), ["cancelled", "cancelled.manifest.json"]);
    assert_eq!(items_in(&info.path), ["a"]);
}

#[test]
fn a_backup_at_an_explicit_path_restores_from_that_path() {
    let (_dir, store) = store_with_items(&["a", "b"]);
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("exported.db");
    let info = store
        .backup_with(BackupRequest::at_path(&target).unwrap())
        .unwrap();
    assert_eq!(info.path, target);
    assert_eq!(info.name, "exported.db");
    assert!(manifest_of(&target).is_file());
    assert!(
        listed(&store).is_empty(),
        "a backup elsewhere is not in the store's list"
    );

    // `dir` writes a named backup into another directory.
    let other = tempfile::tempdir().unwrap();
    let info2 = store
        .backup_with(BackupRequest::named("in-dir").dir(other.path()))
        .unwrap();
    assert_eq!(info2.path, other.path().join("in-dir"));
    assert_eq!(
        dir_entries(other.path()),
        ["in-dir", "in-dir.manifest.json"]
    );

    store
        .execute("DELETE FROM item WHERE name = 'a'", &[])
        .unwrap();
    add_items(&store, &["c"]);
    let report = store.restore(path_str(&target)).unwrap();
    assert_eq!(report.restored_from, target);
    assert_eq!(items(&store), ["a", "b"]);

    store.execute("DELETE FROM item", &[]).unwrap();
    store.restore(path_str(&info2.path)).unwrap();
    assert_eq!(items(&store), ["a", "b"]);
}
