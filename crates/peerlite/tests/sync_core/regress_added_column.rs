//! Adding a column to a device-collaboration table on both devices (`ALTER TABLE … ADD COLUMN`
//! then `distribute` again) broke sync in both directions forever: `distribute` added the
//! column to the table's synced columns, but the device tables holding the other devices' rows
//! (`peerlite_dev_*`) kept the old columns, so reading relayed rows for a push and applying the
//! peer's rows selected a column they lacked ("no such column" on every session), while
//! `check --full` said ok. Now distributing again gives every device table the new columns
//! (repairing a store an earlier build left misaligned), and `check --full` names a device table
//! whose columns are not its table's.

use std::process::Command;

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::sync::{SyncMode, sync_in_memory};
use peerlite::{CheckMode, RdbStore, Value, bucket, values};

use crate::common::*;

/// `ALTER TABLE note ADD COLUMN extra TEXT` and `distribute note` again.
fn add_extra(store: &RdbStore) {
    store
        .execute("ALTER TABLE note ADD COLUMN extra TEXT", &[])
        .unwrap();
    store
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
}

/// `(id, text, extra)` of a note table, by id.
fn with_extra(store: &RdbStore, table: &str) -> Vec<Vec<Value>> {
    rows(
        store,
        &format!(
            "SELECT id, text, extra FROM {} ORDER BY id",
            peerlite_testkit::quote(table)
        ),
    )
}

#[test]
fn a_column_added_on_both_devices_keeps_every_direction_and_relayed_rows_syncing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    let tablet = note_device(dir.path(), "tablet", &clock);
    for (store, text) in [(&phone, "p"), (&laptop, "l"), (&tablet, "t")] {
        store
            .insert("note", &bucket! { "text" => text, "n" => 1 })
            .unwrap();
    }
    // Each holds the others' rows, the tablet's relayed to the laptop through the phone.
    sync(&tablet, &phone, SyncMode::PushPull);
    sync(&phone, &laptop, SyncMode::PushPull);
    assert_eq!(has_from(&laptop, "tablet").len(), 1, "relayed");
    for store in [&phone, &laptop, &tablet] {
        add_extra(store);
        store.check(CheckMode::Full).unwrap();
    }
    phone
        .execute("UPDATE note SET extra = 'p-extra'", &[])
        .unwrap();
    laptop
        .execute("UPDATE note SET extra = 'l-extra'", &[])
        .unwrap();
    tablet
        .execute("UPDATE note SET extra = 't-extra'", &[])
        .unwrap();
    // Every mode, started from either side (each failed with "no such column: t.extra").
    for mode in [SyncMode::Push, SyncMode::Pull, SyncMode::PushPull] {
        sync(&phone, &laptop, mode);
        sync(&laptop, &phone, mode);
    }
    sync(&tablet, &phone, SyncMode::PushPull);
    sync(&phone, &laptop, SyncMode::PushPull);
    let on_laptop = |device: &str| with_extra(&laptop, &device_table(&laptop, device));
    assert_eq!(
        on_laptop("phone"),
        vec![values![1, "p", "p-extra"].to_vec()]
    );
    assert_eq!(
        on_laptop("tablet"),
        vec![values![1, "t", "t-extra"].to_vec()]
    );
    assert_eq!(
        with_extra(&phone, &device_table(&phone, "laptop")),
        vec![values![1, "l", "l-extra"].to_vec()]
    );
    for store in [&phone, &laptop, &tablet] {
        store.check(CheckMode::Full).unwrap();
    }
}

#[test]
fn a_column_added_on_one_device_only_is_an_incompatible_table() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 1, 1);
    sync(&phone, &laptop, SyncMode::PushPull);
    add_extra(&phone);
    for mode in [SyncMode::Push, SyncMode::Pull] {
        let (on_phone, _) = sync_in_memory(&phone, &laptop, mode, None).unwrap();
        assert_eq!(on_phone.status.code(), 17040005, "{mode:?}: {on_phone:?}");
    }
}

/// Runs `sql` on `db` with the sqlite3 shell, writing.
fn sqlite3_write(db: &std::path::Path, sql: &str) {
    let out = Command::new(peerlite_testkit::sqlite3_shell())
        .arg("-bail")
        .arg(db)
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_full_names_a_misaligned_device_table_and_distributing_again_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 1, 1);
    sync(&phone, &laptop, SyncMode::PushPull);
    let path = phone.path().to_path_buf();
    phone
        .execute("ALTER TABLE note ADD COLUMN extra TEXT", &[])
        .unwrap();
    drop(phone);
    // What an earlier build left: the table syncs the new column, its device table lacks it.
    sqlite3_write(
        &path,
        r#"UPDATE peerlite_distributed SET columns = '["id","text","n","extra"]' WHERE name = 'note'"#,
    );
    let phone = open_store(dir.path(), "phone", &clock_at(T0));
    let err = phone.check(CheckMode::Full).unwrap_err();
    assert_eq!(err.code(), 17050002, "{err}");
    let laptops = device_table(&phone, "laptop");
    assert!(
        err.to_string().contains(&format!("device table {laptops}")),
        "{err}"
    );
    add_extra_again(&phone);
    phone.check(CheckMode::Full).unwrap();
    add_extra(&laptop);
    sync(&phone, &laptop, SyncMode::PushPull);
    sync(&laptop, &phone, SyncMode::PushPull);
}

/// `distribute note` again (the column is already there).
fn add_extra_again(store: &RdbStore) {
    store
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
}
