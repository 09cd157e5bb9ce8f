//! Key-value change notifications.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlite::kv::LOCAL_DEVICE;
use peerlite::{ChangeNotification, Entry, Error, KvStore, KvValue, SubscribeType};

use crate::common::kv;

type Log = Arc<Mutex<Vec<ChangeNotification>>>;

fn record(s: &KvStore) -> Log {
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    s.on_data_change(SubscribeType::Local, move |n| {
        sink.lock().unwrap().push(n.clone())
    })
    .unwrap();
    log
}

fn take(log: &Log) -> Vec<ChangeNotification> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn change(inserted: Vec<Entry>, updated: Vec<Entry>, deleted: Vec<Entry>) -> ChangeNotification {
    ChangeNotification {
        insert_entries: inserted,
        update_entries: updated,
        delete_entries: deleted,
        device_id: LOCAL_DEVICE.to_owned(),
    }
}

#[test]
fn insert_update_delete_are_told_apart() {
    let (_dir, _m, s) = kv();
    s.put("existing", "old").unwrap(); // before anyone listens
    let log = record(&s);

    s.put("new", 1).unwrap();
    assert_eq!(
        take(&log),
        [change(vec![Entry::new("new", 1)], vec![], vec![])]
    );

    s.put("existing", "new value").unwrap();
    assert_eq!(
        take(&log),
        [change(
            vec![],
            vec![Entry::new("existing", "new value")],
            vec![]
        )]
    );

    // A delete reports the value the key had.
    assert!(s.delete("existing").unwrap());
    assert_eq!(
        take(&log),
        [change(
            vec![],
            vec![],
            vec![Entry::new("existing", "new value")]
        )]
    );

    // Deleting a missing key changes nothing and reports nothing.
    assert!(!s.delete("existing").unwrap());
    assert!(take(&log).is_empty());
    assert_eq!(s.delete_batch(&["a", "b"]).unwrap(), 0);
    assert!(take(&log).is_empty());
}

#[test]
fn one_notification_per_transaction() {
    let (_dir, _m, s) = kv();
    s.put_batch(&[Entry::new("u", 1), Entry::new("d", true)])
        .unwrap();
    let log = record(&s);
    s.transaction(|tx| {
        tx.put("i", 1.5)?;
        tx.put("u", 2)?;
        tx.delete("d")?;
        assert!(log.lock().unwrap().is_empty(), "nothing before the commit");
        Ok(())
    })
    .unwrap();
    assert_eq!(
        take(&log),
        [change(
            vec![Entry::new("i", 1.5)],
            vec![Entry::new("u", 2)],
            vec![Entry::new("d", true)]
        )]
    );

    s.put_batch(&[Entry::new("x", 1), Entry::new("i", 2.5)])
        .unwrap();
    assert_eq!(
        take(&log),
        [change(
            vec![Entry::new("x", 1)],
            vec![Entry::new("i", 2.5)],
            vec![]
        )]
    );
    assert_eq!(s.delete_batch(&["x", "i", "nope"]).unwrap(), 2);
    assert_eq!(
        take(&log),
        [change(
            vec![],
            vec![],
            vec![Entry::new("x", 1), Entry::new("i", 2.5)]
        )]
    );
}

#[test]
fn rolled_back_changes_are_not_reported() {
    let (_dir, _m, s) = kv();
    let log = record(&s);
    let _ = s.transaction(|tx| {
        tx.put("a", 1)?;
        Err::<(), _>(Error::NotFound { what: "x".into() })
    });
    {
        let tx = s.begin_transaction().unwrap();
        tx.put("b", 1).unwrap();
        tx.rollback().unwrap();
    }
    {
        let tx = s.begin_transaction().unwrap();
        tx.put("c", 1).unwrap();
    }
    // A batch refused for a bad entry reports nothing either.
    s.put_batch(&[Entry::new("d", 1), Entry::new("", 1)])
        .unwrap_err();
    assert!(take(&log).is_empty());
    assert!(s.get_entries("").unwrap().is_empty());
}

#[test]
fn an_observer_may_write_to_the_store() {
    let (_dir, _m, s) = kv();
    let writer = s.clone();
    s.on_data_change(SubscribeType::Local, move |n| {
        if n.insert_entries.iter().any(|e| e.key == "trigger") {
            writer.put("echo", "seen").unwrap();
        }
    })
    .unwrap();
    let s2 = s.clone();
    peerlite_testkit::run_with_timeout(Duration::from_secs(20), move || {
        s2.put("trigger", 1).unwrap();
    });
    assert_eq!(s.get("echo").unwrap(), KvValue::String("seen".into()));
    s.off_data_change(SubscribeType::Local, None);
}

#[test]
fn at_most_eight_observers_and_off_stops_delivery() {
    let (_dir, _m, s) = kv();
    let hits: Vec<Arc<AtomicUsize>> = (0..8).map(|_| Arc::default()).collect();
    let mut ids = Vec::new();
    for h in &hits {
        let h = Arc::clone(h);
        ids.push(
            s.on_data_change(SubscribeType::Local, move |_| {
                h.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap(),
        );
    }
    let err = s.on_data_change(SubscribeType::Local, |_| {}).unwrap_err();
    assert_eq!(err.code(), 15100001);
    assert!(matches!(err, Error::TooManyObservers { max: 8, .. }));
    assert_eq!(
        s.on_data_change(SubscribeType::Remote, |_| {})
            .unwrap_err()
            .code(),
        15100001
    );

    let counts = || -> Vec<usize> { hits.iter().map(|h| h.load(Ordering::SeqCst)).collect() };
    s.put("a", 1).unwrap();
    assert_eq!(counts(), [1; 8]);
    assert_eq!(s.off_data_change(SubscribeType::Local, Some(ids[3])), 1);
    assert_eq!(s.off_data_change(SubscribeType::Local, Some(ids[3])), 0);
    s.put("a", 2).unwrap();
    assert_eq!(counts(), [2, 2, 2, 1, 2, 2, 2, 2]);
    assert_eq!(s.off_data_change(SubscribeType::Local, None), 7);
    s.put("a", 3).unwrap();
    assert_eq!(counts(), [2, 2, 2, 1, 2, 2, 2, 2]);
}

#[test]
fn a_key_deleted_and_put_again_in_one_transaction_is_an_update() {
    let (_dir, _m, s) = kv();
    s.put("k", "old").unwrap();
    let log = record(&s);
    s.transaction(|tx| {
        tx.delete("k")?;
        tx.put("k", "new")
    })
    .unwrap();
    assert_eq!(s.get("k").unwrap(), KvValue::String("new".into()));
    assert_eq!(
        take(&log),
        [change(vec![], vec![Entry::new("k", "new")], vec![])]
    );
}
