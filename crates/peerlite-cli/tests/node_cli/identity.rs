//! A store takes the device id of the home that syncs or serves it; one that synced under
//! another home's id is refused (17040009, with a hint naming `--reidentify`) until
//! `peerlite sync --reidentify` gives it the new id (a new epoch), after which it syncs.

use crate::common::*;

#[test]
fn a_store_synced_as_another_device_needs_reidentify() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    // Another home on the same machine, trusted by b, will take a's store.
    let other = Device::new(root.path(), "other", "SL1");
    b.trusts(&other, "SL1", None);
    let served = serve_for(&a, &b, "SL1", "SL1");
    sql(&a.db, &["INSERT INTO note(text) VALUES ('one')"]);
    a.sync_ok(&["--push"]);
    other.trusts(&b, "SL1", Some(&served.addr));
    let sync_as_other = |extra: &[&str]| {
        run(peerlite()
            .args(["sync", "--push", "--home"])
            .arg(&other.home)
            .arg(&a.db)
            .args(extra))
    };
    let (code, out, err) = sync_as_other(&[]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.starts_with("error[17040009]"), "{err}");
    assert!(
        err.contains("hint: ") && err.contains("--reidentify"),
        "{err}"
    );
    let (code, out, err) = sync_as_other(&["--reidentify"]);
    assert_eq!((code, out), (0, format!("{} ok\n", b.id)), "{err}");
    // b now holds the note under both ids: the re-identified store is a device it never met.
    assert_eq!(
        b.rows(&format!("SELECT text FROM \"{}\"", b.table_of(&a))),
        vec![serde_json::json!(["one"])]
    );
    assert_eq!(
        b.rows(&format!("SELECT text FROM \"{}\"", b.table_of(&other))),
        vec![serde_json::json!(["one"])]
    );
    assert!(served.stop().success());
}

/// Adversary F22: b's store was backed up before it ever synced (it still had the random id
/// it was created with), then `peerlite serve` took it (as b) and a synced its rows. A
/// `peerlite restore` of that backup while serve ran brought the backup's id back into the
/// file: the rows captured after it went to a under that id — a device nobody knows — while
/// b's copy on a went stale; and once serve stopped, b's own home was refused with "this
/// store synced as device B; it cannot become B" (the same id twice). A restore under a
/// running serve must leave the store syncing as b, and the store stays b's.
#[test]
fn a_restore_under_a_running_serve_keeps_the_device_id() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    sql(&b.db, &["INSERT INTO note(id, text) VALUES (1, 'one')"]);
    let backup = "b1";
    peerlite()
        .arg("backup")
        .arg(&b.db)
        .arg(backup)
        .assert()
        .success();
    sql(&b.db, &["INSERT INTO note(id, text) VALUES (2, 'two')"]);
    let served = serve_for(&a, &b, "SL1", "SL1");
    a.sync_ok(&["--pull"]);
    peerlite()
        .arg("restore")
        .arg(&b.db)
        .arg(backup)
        .assert()
        .success();
    sql(&b.db, &["INSERT INTO note(id, text) VALUES (4, 'four')"]);
    a.sync_ok(&["--pull"]);
    // Only b's table on a, and it holds the row written after the restore. (Row 2, which
    // the restore took back, stays on a: a restore sends no deletes.)
    assert_eq!(a.device_tables(), serde_json::json!(1));
    assert_eq!(
        a.rows(&format!(
            "SELECT id, text FROM \"{}\" ORDER BY id",
            a.table_of(&b)
        )),
        vec![
            serde_json::json!([1, "one"]),
            serde_json::json!([2, "two"]),
            serde_json::json!([4, "four"])
        ]
    );
    assert_eq!(
        b.rows("SELECT value FROM peerlite_meta WHERE key IN ('device_id', 'synced_as')"),
        vec![serde_json::json!([b.id]), serde_json::json!([b.id])]
    );
    assert!(served.stop().success());
    // The store is still b's: its own home syncs and serves it.
    let a_served = a.serve(&[]);
    b.distrusts(&a);
    b.trusts(&a, "SL1", Some(&a_served.addr));
    sql(&b.db, &["INSERT INTO note(id, text) VALUES (5, 'five')"]);
    assert_eq!(b.sync_ok(&["--push"]), format!("{} ok\n", a.id));
    assert_eq!(a.device_tables(), serde_json::json!(1));
    assert_eq!(
        a.rows(&format!(
            "SELECT text FROM \"{}\" WHERE id = 5",
            a.table_of(&b)
        )),
        vec![serde_json::json!(["five"])]
    );
    assert!(a_served.stop().success());
}
