//! Adding a column to a collaboration table on both devices (`ALTER TABLE … ADD COLUMN` and
//! `peerlite distribute` again) broke every later `peerlite sync`, in both directions, with a
//! raw "no such column" SQL error, and `peerlite check --full` said ok: the tables holding the
//! other device's rows kept the old columns. Between two real processes: after the change,
//! push and pull succeed, the new column's values arrive, and `check --full` is clean.

use serde_json::json;

use crate::common::*;

#[test]
fn a_column_added_on_both_devices_keeps_syncing_both_ways() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    let served = serve_for(&a, &b, "SL1", "SL1");
    sql(&a.db, &["INSERT INTO note(id, text) VALUES (1, 'a')"]);
    sql(&b.db, &["INSERT INTO note(id, text) VALUES (1, 'B1')"]);
    a.sync_ok(&["--push"]);
    a.sync_ok(&["--pull"]);
    assert!(served.stop().success());
    for d in [&a, &b] {
        sql(&d.db, &["ALTER TABLE note ADD COLUMN extra TEXT"]);
        peerlite()
            .arg("distribute")
            .arg(&d.db)
            .arg("note")
            .assert()
            .success();
    }
    sql(&a.db, &["UPDATE note SET extra = 'a-extra'"]);
    sql(&b.db, &["UPDATE note SET extra = 'b-extra'"]);
    let served = b.serve(&[]);
    a.distrusts(&b);
    a.trusts(&b, "SL1", Some(&served.addr));
    a.sync_ok(&["--push"]);
    a.sync_ok(&["--pull"]);
    assert_eq!(
        b.rows(&format!(
            "SELECT id, text, extra FROM \"{}\"",
            b.table_of(&a)
        )),
        vec![json!([1, "a", "a-extra"])]
    );
    assert_eq!(
        a.rows(&format!(
            "SELECT id, text, extra FROM \"{}\"",
            a.table_of(&b)
        )),
        vec![json!([1, "B1", "b-extra"])]
    );
    assert!(served.stop().success());
    for d in [&a, &b] {
        peerlite()
            .arg("check")
            .arg(&d.db)
            .arg("--full")
            .assert()
            .success();
    }
}
