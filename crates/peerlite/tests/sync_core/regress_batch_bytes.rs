//! Regression: batches were bounded by rows only. A table of large rows (key-value entries
//! take values up to 4 MiB) made batches of 2,000 such rows — gigabytes read into the sender's
//! memory and one message far over the network's 16 MiB frame limit, so the session could
//! never complete. A batch now also stops after 4 MiB of values (past its first row), and the
//! rows of the other source tables of a device-collaboration table that lie after the cut
//! wait for the next batch, so nothing is skipped.

use peerlite::sync::{MessageV1, SyncMessage, SyncMode};
use peerlite::{Value, bucket};

use crate::common::*;

const ROW: usize = 1 << 20;

fn add_big(store: &peerlite::RdbStore, from: i64, to: i64) {
    store
        .transaction(|tx| {
            for i in from..to {
                tx.insert(
                    "note",
                    &bucket! { "id" => i, "text" => "x".repeat(ROW), "n" => i },
                )?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn batches_of_large_rows_stay_small_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let (phone, laptop, tablet) = (
        note_device(dir.path(), "phone", &clock),
        note_device(dir.path(), "laptop", &clock),
        note_device(dir.path(), "tablet", &clock),
    );
    // The laptop holds its own rows and, in a device table, the phone's: two sources whose
    // sequence numbers interleave.
    add_big(&phone, 1, 7);
    sync(&phone, &laptop, SyncMode::Push);
    add_big(&laptop, 100, 106);
    add_big(&phone, 7, 13);
    sync(&phone, &laptop, SyncMode::Push);
    let pumped = pump(&laptop, &tablet, SyncMode::Push, None, 2000, lossless);
    assert_eq!(pumped.initiator.status, 0, "{:?}", pumped.initiator);
    let batches: Vec<usize> = pumped
        .seen
        .iter()
        .filter_map(|(_, m)| match m {
            SyncMessage::V1(MessageV1::Batch(_)) => Some(m.encode().unwrap().len()),
            _ => None,
        })
        .collect();
    assert!(batches.len() >= 4, "{} batches", batches.len());
    for bytes in &batches {
        assert!(*bytes < 6 * ROW, "a batch of {bytes} bytes");
    }
    let count = |table: &str| {
        rows(
            &tablet,
            &format!("SELECT count(*), sum(length(text)) FROM \"{table}\""),
        )[0]
        .clone()
    };
    let twelve = vec![Value::Integer(12), Value::Integer(12 * ROW as i64)];
    let six = vec![Value::Integer(6), Value::Integer(6 * ROW as i64)];
    assert_eq!(count(&device_table(&tablet, "phone")), twelve);
    assert_eq!(count(&device_table(&tablet, "laptop")), six);
}
