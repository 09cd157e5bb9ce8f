//! Push and pull between two real processes, in both distributed modes: device
//! collaboration (the peer's rows land in the table `peerlite table-name` names) and single
//! version (rows merge into the table itself by the sync schema's conflict column).

use serde_json::json;

use crate::common::*;

#[test]
fn collaboration_push_and_pull() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    let served = serve_for(&a, &b, "SL1", "SL1");
    sql(&a.db, &["INSERT INTO note(text) VALUES ('milk'), ('eggs')"]);
    sql(&b.db, &["INSERT INTO note(text) VALUES ('bread')"]);

    let out = a.sync_ok(&["--push"]);
    assert_eq!(out, format!("{} ok\n", b.id));
    assert_eq!(
        b.rows(&format!(
            "SELECT id, text FROM \"{}\" ORDER BY id",
            b.table_of(&a)
        )),
        vec![json!([1, "milk"]), json!([2, "eggs"])]
    );
    // A push sends nothing back.
    assert_eq!(a.device_tables(), 0);

    a.sync_ok(&["--pull"]);
    assert_eq!(
        a.rows(&format!("SELECT id, text FROM \"{}\"", a.table_of(&b))),
        vec![json!([1, "bread"])]
    );
    // Nothing new: a second sync changes nothing and says so.
    let again: serde_json::Value = serde_json::from_str(&a.sync_ok(&["--pull", "--json"])).unwrap();
    assert_eq!(again[0]["received"], json!(0));
    assert_eq!(again[0]["status"], json!("ok"));
    assert_eq!(again[0]["code"], json!(0));
    assert_eq!(again[0]["device"], json!(b.id));
    assert!(served.stop().success());
}

#[test]
fn single_version_push_and_pull() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_items();
    let b = Device::new(root.path(), "b", "SL1").with_items();
    let served = serve_for(&a, &b, "SL1", "SL1");
    sql(
        &a.db,
        &["INSERT INTO item(uuid, title, shop) VALUES ('u1', 'pen', 'north')"],
    );
    sql(
        &b.db,
        &["INSERT INTO item(uuid, title, shop) VALUES ('u2', 'ink', 'south')"],
    );
    let pushed: serde_json::Value =
        serde_json::from_str(&a.sync_ok(&["--push", "--json"])).unwrap();
    assert_eq!(
        (pushed[0]["sent"].clone(), pushed[0]["code"].clone()),
        (json!(1), json!(0))
    );
    a.sync_ok(&["--pull"]);
    let both = vec![json!(["u1", "pen"]), json!(["u2", "ink"])];
    assert_eq!(a.rows("SELECT uuid, title FROM item ORDER BY uuid"), both);
    assert_eq!(b.rows("SELECT uuid, title FROM item ORDER BY uuid"), both);
    assert!(served.stop().success());
}

/// `table-name` named a table that did not exist for the store's own device (whose rows are in
/// the table itself) and for devices never synced, so `SELECT … FROM $(peerlite table-name …)`
/// failed. Now the own device gets the table itself, and a device with no rows here yet gets
/// the name with a note on stderr (`"exists": false` with `--json`).
#[test]
fn table_name_answers_the_own_device_and_says_when_nothing_arrived_yet() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    let served = serve_for(&a, &b, "SL1", "SL1");
    sql(&a.db, &["INSERT INTO note(text) VALUES ('milk')"]);
    a.sync_ok(&["--push"]);
    let table_name = |d: &Device, of: &Device, json: bool| {
        let mut cmd = peerlite();
        if json {
            cmd.arg("--json");
        }
        run(cmd
            .arg("table-name")
            .arg(&d.db)
            .args(["--device", &of.id, "--table", "note"]))
    };
    let (code, out, err) = table_name(&a, &a, false);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "note\n", ""));
    let (code, out, err) = table_name(&a, &b, true);
    assert_eq!(code, 0);
    assert!(err.starts_with("note: no rows of that device"), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["exists"], json!(false));
    let (code, out, err) = table_name(&b, &a, true);
    assert_eq!((code, err.as_str()), (0, ""));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["exists"], json!(true));
    assert!(served.stop().success());
}
