//! Data-change observers of the relational store.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlite::{Error, RdbPredicates, RdbStore, SubscribeType, bucket, values};
use peerlite_testkit::{count_rows, run_with_timeout};

use crate::common::store;

type Log = Arc<Mutex<Vec<Vec<String>>>>;

/// A store with a rowid table `t`, a WITHOUT ROWID table `w` and a table `audit`, and a local
/// observer recording each notification's table names (sorted).
fn observed() -> (peerlite_testkit::TempDir, RdbStore, Log) {
    let (dir, s) = store();
    s.execute_script(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, x INTEGER);
         CREATE TABLE w(k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;
         CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT);",
    )
    .unwrap();
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    s.on_data_change(SubscribeType::Local, move |tables| {
        let mut tables = tables.to_vec();
        tables.sort();
        sink.lock().unwrap().push(tables);
    })
    .unwrap();
    (dir, s, log)
}

fn take(log: &Log) -> Vec<Vec<String>> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn one(tables: &[&str]) -> Vec<Vec<String>> {
    vec![tables.iter().map(|t| (*t).to_owned()).collect()]
}

#[test]
fn api_writes_are_reported_after_commit() {
    let (_dir, s, log) = observed();
    s.insert("t", &bucket! { "x" => 1 }).unwrap();
    assert_eq!(take(&log), one(&["t"]));
    s.update(&bucket! { "x" => 2 }, &RdbPredicates::new("t"))
        .unwrap();
    assert_eq!(take(&log), one(&["t"]));
    s.delete(&RdbPredicates::new("t")).unwrap();
    assert_eq!(take(&log), one(&["t"]));
    s.insert("w", &bucket! { "k" => "a", "v" => 1 }).unwrap();
    assert_eq!(take(&log), one(&["w"]));
    s.batch_insert("w", &[bucket! { "k" => "b" }, bucket! { "k" => "c" }])
        .unwrap();
    assert_eq!(take(&log), one(&["w"]));
    // Writes that change nothing report nothing.
    assert_eq!(
        s.update(
            &bucket! { "x" => 9 },
            &RdbPredicates::new("t").equal_to("id", 999)
        )
        .unwrap(),
        0
    );
    assert_eq!(s.delete(&RdbPredicates::new("t")).unwrap(), 0);
    assert!(take(&log).is_empty());
}

#[test]
fn raw_sql_writes_are_reported_including_without_rowid_and_truncate() {
    let (_dir, s, log) = observed();
    s.execute("INSERT INTO t(x) VALUES (1), (2)", &[]).unwrap();
    assert_eq!(take(&log), one(&["t"]));
    s.execute("INSERT INTO w(k, v) VALUES ('a', 1), ('b', 2)", &[])
        .unwrap();
    assert_eq!(take(&log), one(&["w"]));
    s.execute("UPDATE w SET v = v + 1 WHERE k = 'a'", &[])
        .unwrap();
    assert_eq!(take(&log), one(&["w"]));
    s.execute("DELETE FROM w WHERE k = 'b'", &[]).unwrap();
    assert_eq!(take(&log), one(&["w"]));
    // DELETE without WHERE (SQLite's truncate optimisation), on both kinds of table.
    assert_eq!(s.execute("DELETE FROM w", &[]).unwrap(), 1);
    assert_eq!(take(&log), one(&["w"]));
    assert_eq!(s.execute("DELETE FROM t", &[]).unwrap(), 2);
    assert_eq!(take(&log), one(&["t"]));
    // The same statement again (served from the statement cache) is reported again.
    for _ in 0..3 {
        s.execute("INSERT INTO t(x) VALUES (?)", &values![7])
            .unwrap();
    }
    assert_eq!(take(&log).len(), 3);
    // A statement that changes no row reports nothing.
    s.execute("UPDATE t SET x = 0 WHERE id < 0", &[]).unwrap();
    s.execute("DELETE FROM w", &[]).unwrap();
    assert!(take(&log).is_empty());
    // Reads report nothing.
    s.query_sql("SELECT * FROM t", &[]).unwrap();
    assert!(take(&log).is_empty());
}

#[test]
fn one_notification_per_transaction_with_every_table() {
    let (_dir, s, log) = observed();
    s.transaction(|tx| {
        tx.insert("t", &bucket! { "x" => 1 })?;
        tx.insert("t", &bucket! { "x" => 2 })?;
        tx.execute("INSERT INTO w(k) VALUES ('z')", &[])?;
        // Nothing is delivered before the commit.
        assert!(log.lock().unwrap().is_empty());
        Ok(())
    })
    .unwrap();
    assert_eq!(take(&log), one(&["t", "w"]));
    s.execute_script("INSERT INTO audit(what) VALUES ('a'); DELETE FROM t;")
        .unwrap();
    assert_eq!(take(&log), one(&["audit", "t"]));
}

#[test]
fn tables_written_by_triggers_are_reported() {
    let (_dir, s, log) = observed();
    s.execute(
        "CREATE TRIGGER t_audit AFTER INSERT ON t BEGIN INSERT INTO audit(what) VALUES ('t ' || new.x); END",
        &[],
    )
    .unwrap();
    take(&log);
    s.execute("INSERT INTO t(x) VALUES (5)", &[]).unwrap();
    assert_eq!(take(&log), one(&["audit", "t"]));
    s.execute("UPDATE t SET x = 6", &[]).unwrap(); // the trigger is AFTER INSERT only
    assert_eq!(take(&log), one(&["t"]));
    assert_eq!(count_rows(&s, "audit").unwrap(), 1);
}

#[test]
fn api_writes_report_tables_written_by_triggers() {
    let (_dir, s, log) = observed();
    s.execute_script(
        "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN INSERT INTO audit(what) VALUES ('ins'); END;
         CREATE TRIGGER t_upd AFTER UPDATE ON t BEGIN INSERT INTO audit(what) VALUES ('upd'); END;
         CREATE TRIGGER t_del AFTER DELETE ON t BEGIN INSERT INTO audit(what) VALUES ('del'); END;",
    )
    .unwrap();
    take(&log);
    s.insert("t", &bucket! { "x" => 6 }).unwrap();
    s.update(&bucket! { "x" => 7 }, &RdbPredicates::new("t"))
        .unwrap();
    s.delete(&RdbPredicates::new("t")).unwrap();
    assert_eq!(count_rows(&s, "audit").unwrap(), 3);
    let both = vec!["audit".to_owned(), "t".to_owned()];
    assert_eq!(take(&log), vec![both.clone(), both.clone(), both]);
}

#[test]
fn rolled_back_writes_are_not_reported() {
    let (_dir, s, log) = observed();
    let _ = s.transaction(|tx| {
        tx.insert("t", &bucket! { "x" => 1 })?;
        tx.execute("INSERT INTO w(k) VALUES ('a')", &[])?;
        Err::<(), _>(Error::NotFound { what: "x".into() })
    });
    {
        let tx = s.begin_transaction().unwrap();
        tx.insert("t", &bucket! { "x" => 2 }).unwrap();
        tx.rollback().unwrap();
    }
    {
        let tx = s.begin_transaction().unwrap();
        tx.insert("t", &bucket! { "x" => 3 }).unwrap();
    }
    // A failing statement reports nothing either.
    s.execute("INSERT INTO t(id, x) VALUES (1, 1), (1, 2)", &[])
        .unwrap_err();
    assert!(take(&log).is_empty());
    assert_eq!(count_rows(&s, "t").unwrap(), 0);
}

#[test]
fn an_observer_may_write_to_the_store() {
    let (_dir, s, log) = observed();
    let writer = s.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    s.on_data_change(SubscribeType::Local, move |tables| {
        c.fetch_add(1, Ordering::SeqCst);
        if tables.iter().any(|t| t == "t") {
            writer
                .insert("audit", &bucket! { "what" => "saw t" })
                .unwrap();
        }
    })
    .unwrap();
    let s2 = s.clone();
    run_with_timeout(Duration::from_secs(20), move || {
        s2.insert("t", &bucket! { "x" => 1 }).unwrap();
    });
    assert_eq!(count_rows(&s, "audit").unwrap(), 1);
    // The observer's own write was reported too (to both observers).
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Delivered in commit order: the insert into t, then the observer's insert into audit.
    assert_eq!(
        take(&log),
        vec![vec!["t".to_owned()], vec!["audit".to_owned()]]
    );
    // Break the reference cycle store -> observer -> store.
    s.off_data_change(SubscribeType::Local, None);
}

#[test]
fn at_most_eight_observers_and_off_stops_delivery() {
    let (_dir, s) = store();
    s.execute("CREATE TABLE t(x)", &[]).unwrap();
    let hits: Vec<Arc<AtomicUsize>> = (0..8).map(|_| Arc::default()).collect();
    let mut ids = Vec::new();
    for (i, h) in hits.iter().enumerate() {
        let h = Arc::clone(h);
        let kind = if i == 7 {
            SubscribeType::Remote
        } else {
            SubscribeType::Local
        };
        ids.push(
            s.on_data_change(kind, move |_| {
                h.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap(),
        );
    }
    let err = s.on_data_change(SubscribeType::Local, |_| {}).unwrap_err();
    assert_eq!(err.code(), 17000001);
    assert!(matches!(err, Error::TooManyObservers { max: 8, .. }));
    assert_eq!(
        s.on_data_change(SubscribeType::Remote, |_| {})
            .unwrap_err()
            .code(),
        17000001
    );

    s.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    let counts = |hits: &[Arc<AtomicUsize>]| -> Vec<usize> {
        hits.iter().map(|h| h.load(Ordering::SeqCst)).collect()
    };
    // Local changes reach the seven local observers, not the remote one.
    assert_eq!(counts(&hits), [1, 1, 1, 1, 1, 1, 1, 0]);

    assert_eq!(s.off_data_change(SubscribeType::Local, Some(ids[0])), 1);
    assert_eq!(s.off_data_change(SubscribeType::Local, Some(ids[0])), 0);
    // An id only removes an observer of its own kind.
    assert_eq!(s.off_data_change(SubscribeType::Local, Some(ids[7])), 0);
    s.execute("INSERT INTO t VALUES (2)", &[]).unwrap();
    assert_eq!(counts(&hits), [1, 2, 2, 2, 2, 2, 2, 0]);

    // There is room again.
    let extra = s.on_data_change(SubscribeType::Local, |_| {}).unwrap();
    assert_eq!(s.off_data_change(SubscribeType::Local, Some(extra)), 1);

    assert_eq!(s.off_data_change(SubscribeType::Local, None), 6);
    s.execute("INSERT INTO t VALUES (3)", &[]).unwrap();
    assert_eq!(counts(&hits), [1, 2, 2, 2, 2, 2, 2, 0]);
    assert_eq!(s.off_data_change(SubscribeType::Remote, None), 1);
}

#[test]
fn non_ascii_table_names_work_and_are_reported() {
    let (_dir, s, log) = observed();
    for table in ["员工表", "ab表表表", "données_clients"] {
        s.execute(
            &format!("CREATE TABLE \"{table}\"(id INTEGER PRIMARY KEY, name TEXT)"),
            &[],
        )
        .unwrap();
        take(&log);
        let id = s.insert(table, &bucket! { "name" => "Lisa" }).unwrap();
        assert_eq!(id, 1);
        assert_eq!(take(&log), one(&[table]));
        s.execute(&format!("DELETE FROM \"{table}\""), &[]).unwrap();
        assert_eq!(take(&log), one(&[table]));
        assert_eq!(count_rows(&s, table).unwrap(), 0);
    }
}
