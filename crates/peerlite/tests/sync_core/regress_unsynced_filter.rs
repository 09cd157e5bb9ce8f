//! `peerlite sync --pull --table T --eq secret=GUESS` worked on a column that does not sync:
//! the serving device evaluated the filter on its local-only column and sent exactly the rows
//! whose secret equalled the guess, so the count received answered each guess. A remote query
//! refused the same column; a filtered sync now refuses it too (14800001), in both
//! directions, and sends nothing.

use peerlite::sync::{SyncMode, sync_in_memory};
use peerlite::{RdbPredicates, Value};

use crate::common::*;

#[test]
fn a_filter_on_a_column_that_does_not_sync_is_refused_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let a = item_device(dir.path(), "a", &clock);
    let b = item_device(dir.path(), "b", &clock);
    add_item(&b, "u1", "bank", 1);
    b.execute("UPDATE item SET local = 'hunter2' WHERE uuid = 'u1'", &[])
        .unwrap();
    for column in ["local", "LOCAL", "rowid", "no_such_column"] {
        let filter = RdbPredicates::new("item").equal_to(column, Value::from("hunter2"));
        let (on_a, on_b) = sync_in_memory(&a, &b, SyncMode::Pull, Some(&filter)).unwrap();
        assert_eq!(on_a.status.code(), 14800001, "{column}: {on_a:?}");
        assert_eq!(on_b.sent, 0, "{column}");
        assert_eq!(items(&a).len(), 0, "{column}: nothing arrived");
    }
    // A synced column filters as before.
    let filter = RdbPredicates::new("item").equal_to("title", Value::from("bank"));
    let (on_a, _) = sync_in_memory(&a, &b, SyncMode::Pull, Some(&filter)).unwrap();
    assert!(on_a.status.is_ok(), "{on_a:?}");
    assert_eq!(items(&a).len(), 1);
}
