//! A filtered sync (`sync --pull --eq g=ten`) sent the rows the filter selected and every
//! delete, but never a row that stopped matching: after `UPDATE … SET g='other'` on the
//! sender, the receiver's copy still said `ten` forever. Now, once a filter has synced, a row
//! whose filtered columns were written since its insert goes with its last state even when it
//! no longer matches, so the copy holds its true values (which the filter no longer selects);
//! rows that never matched still stay home, in both distributed modes.

use peerlite::sync::{SyncMode, sync_in_memory};
use peerlite::{RdbPredicates, Value, values};

use crate::common::*;

fn filtered(a: &peerlite::RdbStore, b: &peerlite::RdbStore, filter: &RdbPredicates) -> u64 {
    let (on_a, on_b) = sync_in_memory(a, b, SyncMode::Pull, Some(filter)).unwrap();
    assert!(on_a.status.is_ok(), "{on_a:?}");
    assert!(on_b.status.is_ok(), "{on_b:?}");
    on_a.received
}

#[test]
fn a_row_that_leaves_a_collaboration_filter_is_updated_on_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    for id in 1..=6 {
        let text = if id % 2 == 0 { "ten" } else { "other" };
        laptop
            .execute(
                "INSERT INTO note(id, text, n) VALUES (?, ?, ?)",
                &[Value::from(id), Value::from(text), Value::from(id)],
            )
            .unwrap();
    }
    let ten = RdbPredicates::new("note").equal_to("text", "ten");
    assert_eq!(filtered(&phone, &laptop, &ten), 3);
    clock.advance(10);
    laptop
        .execute("UPDATE note SET text = 'other' WHERE id = 2", &[])
        .unwrap();
    laptop
        .execute("DELETE FROM note WHERE id = 4", &[])
        .unwrap();
    // Never in the set: an update of another column, a new row.
    laptop
        .execute("UPDATE note SET n = 50 WHERE id = 5", &[])
        .unwrap();
    laptop
        .execute("INSERT INTO note(id, text, n) VALUES (7, 'other', 7)", &[])
        .unwrap();
    filtered(&phone, &laptop, &ten);
    let table = device_table(&phone, "laptop");
    assert_eq!(
        notes(&phone, &table),
        vec![
            values![2, "other", 2].to_vec(),
            values![6, "ten", 6].to_vec()
        ],
        "row 2 has its true value, row 4 is gone, rows 5 and 7 never came"
    );
    // Changed again after leaving (another column): its last state still goes.
    clock.advance(10);
    laptop
        .execute("UPDATE note SET n = 20 WHERE id = 2", &[])
        .unwrap();
    filtered(&phone, &laptop, &ten);
    assert_eq!(notes(&phone, &table)[0], values![2, "other", 20].to_vec());
    // And back into the set.
    laptop
        .execute("UPDATE note SET text = 'ten' WHERE id = 2", &[])
        .unwrap();
    filtered(&phone, &laptop, &ten);
    assert_eq!(notes(&phone, &table)[0], values![2, "ten", 20].to_vec());
}

#[test]
fn a_row_that_leaves_a_single_version_filter_is_updated_on_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = item_device(dir.path(), "phone", &clock);
    let laptop = item_device(dir.path(), "laptop", &clock);
    add_item(&laptop, "u1", "ten", 1);
    add_item(&laptop, "u2", "ten", 2);
    add_item(&laptop, "u3", "other", 3);
    let ten = RdbPredicates::new("item").equal_to("title", "ten");
    assert_eq!(filtered(&phone, &laptop, &ten), 2);
    clock.advance(10);
    set_title(&laptop, "u1", "other");
    laptop
        .execute("UPDATE item SET qty = 30 WHERE uuid = 'u3'", &[])
        .unwrap();
    filtered(&phone, &laptop, &ten);
    assert_eq!(
        items(&phone),
        vec![
            item("u1", Some("other"), Some(1), None),
            item("u2", Some("ten"), Some(2), None)
        ]
    );
}
