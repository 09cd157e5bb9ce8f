//! Transactions: commit, rollback (by error, by panic, by drop), nesting on one thread, and
//! several threads writing and reading at once.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use peerlite::{Error, RdbPredicates, RdbStore, StoreConfig, bucket, values};
use peerlite_testkit::{count_rows, query_column, run_with_timeout, scalar, temp_store_path};

use crate::common::store;

fn with_table() -> (peerlite_testkit::TempDir, RdbStore) {
    let (dir, s) = store();
    s.execute(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, x INTEGER NOT NULL)",
        &[],
    )
    .unwrap();
    (dir, s)
}

fn xs(s: &RdbStore) -> Vec<i64> {
    query_column::<i64>(s, "SELECT x FROM t ORDER BY id", &[]).unwrap()
}

const _: () = {
    const fn send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    send_sync_clone::<RdbStore>();
    send_sync_clone::<peerlite::KvStore>();
};

#[test]
fn closure_commits_on_ok_and_returns_its_value() {
    let (_dir, s) = with_table();
    let out = s
        .transaction(|tx| {
            tx.insert("t", &bucket! { "x" => 1 })?;
            tx.insert("t", &bucket! { "x" => 2 })?;
            // The transaction sees its own writes ...
            let mut rs = tx.query_sql("SELECT count(*) FROM t", &[])?;
            rs.go_to_first_row()?;
            assert_eq!(rs.get_long(0)?, 2);
            let rs = tx.query(&RdbPredicates::new("t").equal_to("x", 2), &["id"])?;
            assert_eq!(rs.row_count()?, 1);
            Ok("done")
        })
        .unwrap();
    assert_eq!(out, "done");
    assert_eq!(xs(&s), [1, 2]);
}

#[test]
fn closure_rolls_back_on_err() {
    let (_dir, s) = with_table();
    s.insert("t", &bucket! { "x" => 0 }).unwrap();
    let err = s
        .transaction(|tx| {
            tx.insert("t", &bucket! { "x" => 1 })?;
            tx.update(&bucket! { "x" => 100 }, &RdbPredicates::new("t"))?;
            tx.execute("INSERT INTO t(x) VALUES (NULL)", &[])?; // NOT NULL
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.code(), 14800032);
    assert_eq!(xs(&s), [0]);

    // An error of the caller's own making also rolls back, and comes back unchanged.
    let err = s
        .transaction(|tx| {
            tx.insert("t", &bucket! { "x" => 5 })?;
            Err::<(), _>(Error::NotFound {
                what: "made up".into(),
            })
        })
        .unwrap_err();
    assert_eq!(err.code(), 15100004);
    assert_eq!(xs(&s), [0]);
}

#[test]
fn closure_rolls_back_on_panic_and_the_store_keeps_working() {
    let (_dir, s) = with_table();
    s.insert("t", &bucket! { "x" => 0 }).unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _ = s.transaction(|tx| -> peerlite::Result<()> {
            tx.insert("t", &bucket! { "x" => 1 })?;
            tx.insert("t", &bucket! { "x" => 2 })?;
            panic!("boom inside a transaction");
        });
    }));
    assert!(result.is_err());
    assert_eq!(xs(&s), [0]);
    // The writer was released: new transactions work, from this thread and from another.
    s.insert("t", &bucket! { "x" => 3 }).unwrap();
    let s2 = s.clone();
    run_with_timeout(Duration::from_secs(20), move || {
        s2.insert("t", &bucket! { "x" => 4 }).unwrap();
    });
    assert_eq!(xs(&s), [0, 3, 4]);
}

#[test]
fn explicit_commit_rollback_and_drop() {
    let (_dir, s) = with_table();
    let tx = s.begin_transaction().unwrap();
    tx.insert("t", &bucket! { "x" => 1 }).unwrap();
    tx.commit().unwrap();
    assert_eq!(xs(&s), [1]);

    let tx = s.begin_transaction().unwrap();
    tx.insert("t", &bucket! { "x" => 2 }).unwrap();
    tx.delete(&RdbPredicates::new("t").equal_to("x", 1))
        .unwrap();
    tx.rollback().unwrap();
    assert_eq!(xs(&s), [1]);

    {
        let tx = s.begin_transaction().unwrap();
        tx.insert("t", &bucket! { "x" => 3 }).unwrap();
        // Dropped without commit.
    }
    assert_eq!(xs(&s), [1]);

    // Uncommitted writes are invisible to the store's readers while the transaction runs.
    let tx = s.begin_transaction().unwrap();
    tx.insert("t", &bucket! { "x" => 4 }).unwrap();
    assert_eq!(xs(&s), [1]);
    tx.commit().unwrap();
    assert_eq!(xs(&s), [1, 4]);
}

#[test]
fn savepoints_inside_a_transaction() {
    let (_dir, s) = with_table();
    s.transaction(|tx| {
        tx.insert("t", &bucket! { "x" => 1 })?;
        tx.execute("SAVEPOINT sp", &[])?;
        tx.insert("t", &bucket! { "x" => 2 })?;
        tx.execute("ROLLBACK TO sp", &[])?;
        tx.execute("RELEASE sp", &[])?;
        tx.insert("t", &bucket! { "x" => 3 })?;
        Ok(())
    })
    .unwrap();
    assert_eq!(xs(&s), [1, 3]);
}

#[test]
fn nested_store_calls_on_the_same_thread_fail_instead_of_deadlocking() {
    let (_dir, s) = with_table();
    let s2 = s.clone();
    let codes = run_with_timeout(Duration::from_secs(20), move || {
        let mut codes = Vec::new();
        s2.transaction(|tx| {
            tx.insert("t", &bucket! { "x" => 1 })?;
            codes.push(s2.insert("t", &bucket! { "x" => 2 }).unwrap_err().code());
            codes.push(s2.execute("DELETE FROM t", &[]).unwrap_err().code());
            codes.push(s2.begin_transaction().map(|_| ()).unwrap_err().code());
            codes.push(s2.transaction(|_| Ok(())).unwrap_err().code());
            codes.push(s2.close().unwrap_err().code());
            // Reads through the store still work (they see committed data only).
            codes.push(peerlite_testkit::count_rows(&s2, "t")? as u32);
            Ok(())
        })
        .unwrap();
        codes
    });
    assert_eq!(codes, [14800001, 14800001, 14800001, 14800001, 14800001, 0]);
    assert_eq!(xs(&s), [1]);
    assert!(!s.is_closed());
}

#[test]
fn execute_refuses_transaction_control_inside_a_transaction() {
    let (_dir, s) = with_table();
    s.transaction(|tx| {
        tx.insert("t", &bucket! { "x" => 1 })?;
        for sql in [
            "COMMIT",
            "commit transaction",
            "END",
            "BEGIN",
            "BEGIN IMMEDIATE",
            "ROLLBACK",
            "  /* sneaky */ COMMIT",
            "-- line\nCOMMIT",
        ] {
            let err = tx.execute(sql, &[]).unwrap_err();
            assert_eq!(err.code(), 14800001, "{sql}");
        }
        tx.insert("t", &bucket! { "x" => 2 })?;
        Ok(())
    })
    .unwrap();
    // The transaction was neither ended early nor broken.
    assert_eq!(xs(&s), [1, 2]);
    assert_eq!(s.execute("COMMIT", &[]).unwrap_err().code(), 14800001);
    assert_eq!(s.execute("BEGIN", &[]).unwrap_err().code(), 14800001);
}

#[test]
fn concurrent_writers_all_land() {
    let (_dir, path) = temp_store_path();
    let s =
        RdbStore::open(StoreConfig::new(&path).durability(peerlite::Durability::Normal)).unwrap();
    s.execute(
        "CREATE TABLE w(id INTEGER PRIMARY KEY, thread INTEGER, n INTEGER, UNIQUE(thread, n))",
        &[],
    )
    .unwrap();
    const THREADS: i64 = 4;
    const PER_THREAD: i64 = 40;
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let s = s.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for n in 0..PER_THREAD {
                    if n % 2 == 0 {
                        s.insert("w", &bucket! { "thread" => t, "n" => n }).unwrap();
                    } else {
                        s.transaction(|tx| {
                            tx.execute("INSERT INTO w(thread, n) VALUES (?, ?)", &values![t, n])
                        })
                        .unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(count_rows(&s, "w").unwrap(), THREADS * PER_THREAD);
    for t in 0..THREADS {
        assert_eq!(
            query_column::<i64>(
                &s,
                "SELECT n FROM w WHERE thread = ? ORDER BY n",
                &values![t]
            )
            .unwrap(),
            (0..PER_THREAD).collect::<Vec<_>>()
        );
    }
}

#[test]
fn readers_on_other_threads_see_committed_data_only() {
    let (_dir, s) = with_table();
    s.insert("t", &bucket! { "x" => 1 }).unwrap();
    let (ask_tx, ask_rx) = mpsc::channel::<()>();
    let (answer_tx, answer_rx) = mpsc::channel::<i64>();
    let reader_store = s.clone();
    let reader = std::thread::spawn(move || {
        while ask_rx.recv().is_ok() {
            let n = scalar::<i64>(&reader_store, "SELECT count(*) FROM t").unwrap();
            answer_tx.send(n).unwrap();
        }
    });
    let ask = || {
        ask_tx.send(()).unwrap();
        answer_rx.recv_timeout(Duration::from_secs(20)).unwrap()
    };

    let tx = s.begin_transaction().unwrap();
    tx.insert("t", &bucket! { "x" => 2 }).unwrap();
    tx.insert("t", &bucket! { "x" => 3 }).unwrap();
    // The reader is not blocked by the open write transaction, and does not see it.
    assert_eq!(ask(), 1);
    tx.commit().unwrap();
    assert_eq!(ask(), 3);

    let tx = s.begin_transaction().unwrap();
    tx.execute("DELETE FROM t", &[]).unwrap();
    assert_eq!(ask(), 3);
    tx.rollback().unwrap();
    assert_eq!(ask(), 3);

    drop(ask_tx);
    reader.join().unwrap();
}

#[test]
fn a_writer_on_another_thread_waits_for_the_open_transaction() {
    let (_dir, s) = with_table();
    let tx = s.begin_transaction().unwrap();
    tx.insert("t", &bucket! { "x" => 1 }).unwrap();
    let other = s.clone();
    let (done_tx, done_rx) = mpsc::channel();
    let writer = std::thread::spawn(move || {
        other.insert("t", &bucket! { "x" => 2 }).unwrap();
        done_tx.send(()).unwrap();
    });
    // While the transaction is open the other writer cannot finish ...
    assert!(done_rx.recv_timeout(Duration::from_millis(300)).is_err());
    tx.commit().unwrap();
    // ... and afterwards it does.
    done_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    writer.join().unwrap();
    assert_eq!(xs(&s), [1, 2]);
}
